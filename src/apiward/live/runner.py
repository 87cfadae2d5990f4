"""The live runner: captured calls from a bounded queue into a sink.

Capture (:mod:`apiward.ingest.capture`, the proxy and the middleware)
produces :class:`~apiward.ingest.capture.Exchange` records and hands them to
:meth:`LiveRunner.submit`, which never blocks. One consumer thread turns
exchanges into :class:`ApiCall` events (:func:`~apiward.ingest.capture.to_call`)
and feeds them in micro-batches (``batch_size`` events or ``batch_ms``
milliseconds, whichever comes first) to a sink: the pipeline in this process
(:func:`pipeline_runner`), the pipeline worker process
(:class:`apiward.live.supervisor.PipelineWorker`) or a server
(:class:`apiward.ingest.forward.ServerSink`).

Overload is explicit: when the queue is full the exchange is dropped and
``dropped`` counts it; the counters are reported by whoever owns the runner
(the proxy prints them and puts them in its status line). Because the sink
runs only in the consumer thread, a non-thread-safe pipeline is fine; a
periodic ``checkpoint`` callable runs in the same thread for the same reason.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from apiward.ingest.base import DEFAULT_BODY_CAP
from apiward.ingest.capture import Exchange, to_call
from apiward.model.call import ApiCall

__all__ = ["CaptureStats", "LiveRunner", "pipeline_runner"]


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


class LiveRunner:
    """Bounded queue plus one consumer thread feeding a sink in batches.

    ``submit`` is O(1), takes a lock for a few hundred nanoseconds and never
    waits for the sink. ``drain()`` waits until everything submitted so far
    has been through the sink; ``close()`` drains, stops the thread and runs
    the final ``checkpoint``.

    >>> got = []
    >>> q = LiveRunner(got.extend, batch_ms=5)
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
        name: str = "apiward-live",
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
                calls.append(to_call(item, body_cap=self.body_cap, trust_sim_clock=self.trust_sim_clock))
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


def pipeline_runner(pipeline: Any, **options: Any) -> LiveRunner:
    """A runner feeding ``pipeline`` (an :class:`apiward.pipeline.Pipeline`)
    in this process: each batch through ``process``, ``checkpoint`` every
    ``checkpoint_every`` seconds and at close, both in the consumer thread."""
    return LiveRunner(lambda calls: pipeline.process(calls, autocheckpoint=False), checkpoint=pipeline.checkpoint, **options)
