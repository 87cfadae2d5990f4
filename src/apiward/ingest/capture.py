"""Live capture plumbing shared by the proxy and the middleware.

The request path only does the cheap part: it records what went over the
wire as a :class:`Exchange` (raw headers, body bytes up to a cap, sizes,
timing) and hands it to :class:`CaptureQueue.submit`, which never blocks.
One consumer thread turns exchanges into :class:`ApiCall` events (query
parsing, cookies, decompression, ids) and feeds them in micro-batches
(``batch_size`` events or ``batch_ms`` milliseconds, whichever comes first)
to a sink, normally :meth:`apiward.pipeline.Pipeline.process`.

Overload is explicit: when the queue is full the exchange is dropped and
``dropped`` counts it; the counters are reported by whoever owns the queue
(the proxy prints them and puts them in its status line). Because the sink
runs only in the consumer thread, a non-thread-safe pipeline is fine; a
periodic ``checkpoint`` callable runs in the same thread for the same reason.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from apiward.ingest.base import DEFAULT_BODY_CAP, make_request, make_response
from apiward.model.call import ApiCall, Peer, Workload

__all__ = ["CaptureQueue", "CaptureStats", "Exchange", "new_event_id"]

_PROC_TAG = os.urandom(3).hex()
_seq = itertools.count()
_seq_lock = threading.Lock()


def new_event_id(ts: float | None = None) -> str:
    """A time-ordered unique id: 12 hex digits of milliseconds, a per-process
    random tag and a sequence number (sorts by time across processes at
    millisecond resolution, strictly within one process)."""
    ms = int((time.time() if ts is None else ts) * 1000)
    with _seq_lock:
        n = next(_seq)
    return f"{ms:012x}-{_PROC_TAG}-{n:08x}"


class Exchange:
    """One captured request/response, as cheap to build as possible.

    Header names are lower-case ``str``; values ``str`` (latin-1 decoded).
    ``req_body``/``resp_body`` hold at most the capture cap; ``req_size``/
    ``resp_size`` the full lengths seen on the wire (decoded of chunking).
    ``status`` is 0 when no response was received.
    """

    __slots__ = (
        "ts", "duration_ms", "method", "target", "http_version", "req_headers", "req_body",
        "req_size", "status", "reason", "resp_headers", "resp_body", "resp_size", "src_ip",
        "src_port", "dst_ip", "dst_port", "scheme", "source", "extra", "route", "service",
    )

    def __init__(
        self,
        *,
        ts: float,
        method: str,
        target: str,
        req_headers: list[tuple[str, str]],
        source: str,
        http_version: str = "HTTP/1.1",
        scheme: str = "http",
        src_ip: str = "",
        src_port: int = 0,
        dst_ip: str = "",
        dst_port: int = 0,
    ) -> None:
        self.ts = ts
        self.duration_ms: float | None = None
        self.method = method
        self.target = target
        self.http_version = http_version
        self.req_headers = req_headers
        self.req_body = b""
        self.req_size = 0
        self.status = 0
        self.reason = ""
        self.resp_headers: list[tuple[str, str]] = []
        self.resp_body = b""
        self.resp_size = 0
        self.src_ip = src_ip
        self.src_port = src_port
        self.dst_ip = dst_ip
        self.dst_port = dst_port
        self.scheme = scheme
        self.source = source
        self.extra: dict[str, str] | None = None
        self.route = ""
        self.service = ""

    def note(self, key: str, value: str) -> None:
        """Attach a diagnostic note (``extra`` on the event)."""
        if self.extra is None:
            self.extra = {}
        self.extra[key] = value


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k == name:
            return v
    return None


def _decode_body(body: bytes, encoding: str, cap: int) -> bytes | None:
    """Inflate a gzip/deflate body for analysis (bounded by ``cap``);
    ``None`` when it cannot be decoded."""
    enc = encoding.strip().lower()
    try:
        if enc in ("gzip", "x-gzip"):
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            d = zlib.decompressobj()
        else:
            return None
        return d.decompress(body, cap)
    except zlib.error:
        return None


class CaptureStats:
    """Counters a capture point reports. ``captured`` counts exchanges
    offered, ``dropped`` those refused because the queue was full,
    ``processed`` those the sink accepted, ``errors`` sink/convert failures."""

    __slots__ = ("captured", "dropped", "processed", "errors", "batches", "last_error")

    def __init__(self) -> None:
        self.captured = 0
        self.dropped = 0
        self.processed = 0
        self.errors = 0
        self.batches = 0
        self.last_error = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


class CaptureQueue:
    """Bounded queue plus one consumer thread feeding a sink in batches.

    ``submit`` is O(1), takes a lock for a few hundred nanoseconds and never
    waits for the sink. ``drain()`` waits until everything submitted so far
    has been through the sink; ``close()`` drains, stops the thread and runs
    the final ``checkpoint``.

    >>> got = []
    >>> q = CaptureQueue(got.extend, batch_ms=5)
    >>> _ = q.submit(Exchange(ts=0.0, method="GET", target="/a?x=1", req_headers=[], source="proxy"))
    >>> q.close(); [c.request.path for c in got]
    ['/a']
    """

    def __init__(
        self,
        sink: Callable[[list[ApiCall]], Any],
        *,
        max_queue: int = 10_000,
        batch_size: int = 512,
        batch_ms: float = 200.0,
        checkpoint: Callable[[], Any] | None = None,
        checkpoint_every: float = 2.0,
        body_cap: int = DEFAULT_BODY_CAP,
        trust_sim_clock: bool = False,
        name: str = "apiward-capture",
    ) -> None:
        self.sink = sink
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.batch_s = batch_ms / 1000.0
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.body_cap = body_cap
        self.trust_sim_clock = trust_sim_clock
        self.stats = CaptureStats()
        self._q: deque[Exchange | ApiCall] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._idle = threading.Condition(threading.Lock())
        self._pending = 0  # submitted, not yet through the sink
        self._flush = False
        self._closing = False
        self._dirty = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- producer side ---------------------------------------------------------------
    def submit(self, item: Exchange | ApiCall) -> bool:
        """Queue one exchange (or an already built event). Returns ``False``
        and counts a drop when the queue is full or closed."""
        stats = self.stats
        with self._cond:
            stats.captured += 1
            if self._closing or len(self._q) >= self.max_queue:
                stats.dropped += 1
                return False
            self._q.append(item)
            self._pending += 1
            if len(self._q) == 1 or len(self._q) >= self.batch_size:
                self._cond.notify()
        return True

    def __len__(self) -> int:
        return len(self._q)

    # -- control ---------------------------------------------------------------------
    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted exchange went through the sink.
        Returns ``False`` on timeout."""
        with self._cond:
            self._flush = True
            self._cond.notify()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending > 0 and self._thread.is_alive():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(0.05 if left is None else min(left, 0.05))
        return self._pending == 0

    def close(self, timeout: float | None = 30.0) -> None:
        """Refuse new exchanges, empty the queue into the sink, stop the
        consumer and run the final checkpoint (in the consumer thread)."""
        with self._cond:
            self._closing = True
            self._flush = True
            self._cond.notify()
        self._thread.join(timeout)

    # -- consumer side -----------------------------------------------------------------
    def _take(self) -> list[Exchange | ApiCall] | None:
        """Block until a batch is due; ``None`` when closed and empty."""
        with self._cond:
            while not self._q:
                if self._closing:
                    return None
                if self._flush:
                    self._flush = False
                self._cond.wait(self._wait_for_checkpoint())
                if not self._q and self._checkpoint_due():
                    return []
            if len(self._q) < self.batch_size and not self._flush and not self._closing:
                deadline = time.monotonic() + self.batch_s
                while len(self._q) < self.batch_size and not self._flush and not self._closing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            n = min(len(self._q), self.batch_size)
            batch = [self._q.popleft() for _ in range(n)]
            if not self._q:
                self._flush = False
            return batch

    def _wait_for_checkpoint(self) -> float | None:
        if self.checkpoint is None or not self._dirty:
            return 1.0
        return max(0.01, self._next_checkpoint - time.monotonic())

    def _checkpoint_due(self) -> bool:
        return self.checkpoint is not None and self._dirty and time.monotonic() >= self._next_checkpoint

    def _run(self) -> None:
        self._next_checkpoint = time.monotonic() + self.checkpoint_every
        while True:
            batch = self._take()
            if batch is None:
                break
            if batch:
                self._process(batch)
            if self._checkpoint_due():
                self._do_checkpoint()
        if self.checkpoint is not None:
            self._do_checkpoint(force=True)

    def _do_checkpoint(self, force: bool = False) -> None:
        self._next_checkpoint = time.monotonic() + self.checkpoint_every
        if not (self._dirty or force):
            return
        self._dirty = False
        try:
            self.checkpoint()  # type: ignore[misc]
        except Exception as exc:  # keep capturing; report the failure
            self.stats.errors += 1
            self.stats.last_error = f"checkpoint: {exc!r}"

    def _process(self, batch: list[Exchange | ApiCall]) -> None:
        calls: list[ApiCall] = []
        stats = self.stats
        for item in batch:
            if isinstance(item, ApiCall):
                calls.append(item)
                continue
            try:
                calls.append(self.to_call(item))
            except Exception as exc:
                stats.errors += 1
                stats.last_error = f"convert: {exc!r}"
        try:
            if calls:
                self.sink(calls)
                stats.processed += len(calls)
                stats.batches += 1
                self._dirty = True
        except Exception as exc:
            stats.errors += 1
            stats.last_error = f"sink: {exc!r}"
        with self._idle:
            self._pending -= len(batch)
            self._idle.notify_all()

    # -- conversion ----------------------------------------------------------------------
    def to_call(self, ex: Exchange) -> ApiCall:
        """Build the canonical event from an exchange (consumer thread)."""
        cap = self.body_cap
        path, _, qs = ex.target.partition("?")
        if path.startswith(("http://", "https://")):  # absolute-form target
            rest = path.split("://", 1)[1]
            slash = rest.find("/")
            path = rest[slash:] if slash >= 0 else "/"
        query = parse_qsl(qs, keep_blank_values=True) if qs else []
        req_body = ex.req_body
        request = make_request(
            method=ex.method,
            path=path,
            query=query,
            headers=ex.req_headers,
            body=req_body[:cap],
            scheme=ex.scheme,
            http_version=ex.http_version,
            cap=cap,
            body_size=max(ex.req_size, len(req_body)),
        )
        response = None
        extra = dict(ex.extra) if ex.extra else {}
        if ex.status:
            body = ex.resp_body
            size = max(ex.resp_size, len(body))
            enc = _header(ex.resp_headers, "content-encoding")
            if enc and body and size <= len(body):
                decoded = _decode_body(body, enc, cap + 1)
                if decoded is not None:
                    extra["decoded"] = enc
                    body = decoded
                    size = len(decoded) if len(decoded) <= cap else max(size, len(decoded))
            response = make_response(
                status=ex.status,
                reason=ex.reason,
                headers=ex.resp_headers,
                body=body[:cap],
                cap=cap,
                body_size=size,
            )
        ts = ex.ts
        if self.trust_sim_clock:
            sim_ts = _header(ex.req_headers, "x-apiward-sim-ts")
            if sim_ts:
                try:
                    ts = float(sim_ts)
                except ValueError:
                    pass
        rid = _header(ex.req_headers, "x-request-id")
        return ApiCall(
            id=new_event_id(ts),
            request_id=rid or "",
            ts=ts,
            duration_ms=ex.duration_ms,
            request=request,
            response=response,
            src=Peer(ip=ex.src_ip, port=ex.src_port),
            dst=Peer(ip=ex.dst_ip, port=ex.dst_port),
            workload=Workload(route=ex.route, service=ex.service) if (ex.route or ex.service) else Workload(),
            source=ex.source,
            extra=extra,
        )
