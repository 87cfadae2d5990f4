"""What live capture produces: exchanges, and the calls made of them.

The request path of the proxy and the middleware only does the cheap part:
it records what went over the wire as an :class:`Exchange` (raw headers,
body bytes up to a cap, sizes, timing) and hands it to a ``submit``
callable that never blocks. :func:`to_call` turns an exchange into the
canonical :class:`ApiCall` (query parsing, cookies, decompression, a
time-ordered id from :func:`new_event_id`).

Capture stops there: it never runs stages. What takes captured calls from a
queue, batches them and runs the pipeline is the live runner, above the
pipeline (:mod:`apiward.live`).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import zlib
from urllib.parse import parse_qsl

from apiward.ingest.base import DEFAULT_BODY_CAP, make_request, make_response
from apiward.model.call import ApiCall, Peer, Workload

__all__ = ["Exchange", "new_event_id", "to_call"]

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


def to_call(ex: Exchange, *, body_cap: int = DEFAULT_BODY_CAP, trust_sim_clock: bool = False) -> ApiCall:
    """The canonical event of an exchange: query parsing, cookies,
    decompression of the response body for analysis (bounded by
    ``body_cap``), a fresh time-ordered id. ``trust_sim_clock`` takes the
    event time from ``x-apiward-sim-ts`` (the demo's virtual time).

    >>> ex = Exchange(ts=0.0, method="GET", target="/a?x=1", req_headers=[], source="proxy")
    >>> c = to_call(ex); (c.request.path, c.request.query, c.status)
    ('/a', [('x', '1')], 0)
    """
    cap = body_cap
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
    if trust_sim_clock:
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
