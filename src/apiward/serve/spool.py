"""Live ingestion: a durable spool in front of the pipeline.

``POST /api/telemetry`` and ``POST /api/events`` decode and check a batch,
then append its events to ``<state>/spool.db`` (SQLite, WAL,
``synchronous=FULL``) in one transaction *before* answering 202: an
acknowledged event is on disk. One consumer thread takes events in
sequence order, runs them through the pipeline, checkpoints, and only then
deletes them from the spool. After a crash or restart the events not yet
checkpointed are taken again from the same first sequence number; their
lake file is named after it (``spool-<first seq>``), so the re-run
replaces what the interrupted batch wrote.

Back-pressure: at most ``max_pending`` events wait; a batch that would go
over is refused with 429 and a ``Retry-After`` estimated from the recent
consumption rate. The pipeline is opened lazily, on the first event: a
server that only reads never becomes a second writer beside a proxy.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apiward.model.call import ApiCall, dumps, loads

__all__ = ["Spool", "SpoolConsumer", "SpoolFull"]


class SpoolFull(RuntimeError):
    """The spool holds ``max_pending`` events; retry after ``retry_after`` seconds."""

    def __init__(self, pending: int, retry_after: int) -> None:
        super().__init__(f"ingestion queue full ({pending} events waiting); retry after {retry_after}s")
        self.pending = pending
        self.retry_after = retry_after


class Spool:
    """The durable, bounded queue of events waiting for the pipeline."""

    def __init__(self, path: Path | str, *, max_pending: int = 100_000) -> None:
        self.path = Path(path)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, received REAL, data BLOB)")
        self._pending = self.db.execute("SELECT count(*) FROM events").fetchone()[0]
        self.accepted = 0
        self.refused = 0
        self.rate = 0.0  # events per second the consumer recently took

    def __len__(self) -> int:
        return self._pending

    def append(self, calls: list[ApiCall]) -> int:
        """Append a batch durably (all or nothing); raises :class:`SpoolFull`."""
        rows = [(time.time(), dumps(c)) for c in calls]
        with self._lock:
            if self._pending + len(rows) > self.max_pending:
                self.refused += len(rows)
                wait = (self._pending + len(rows) - self.max_pending) / self.rate if self.rate > 0 else 5.0
                raise SpoolFull(self._pending, max(1, min(300, int(wait) + 1)))
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany("INSERT INTO events (received, data) VALUES (?, ?)", rows)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self._pending += len(rows)
            self.accepted += len(rows)
        return len(rows)

    def take(self, after: int, limit: int) -> list[tuple[int, ApiCall]]:
        """Up to ``limit`` events with sequence numbers above ``after``."""
        with self._lock:
            rows = self.db.execute("SELECT seq, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)).fetchall()
        return [(seq, loads(data)) for seq, data in rows]

    def ack(self, upto: int) -> None:
        """Forget events up to ``upto`` (checkpointed by the pipeline)."""
        with self._lock:
            n = self.db.execute("DELETE FROM events WHERE seq <= ?", (upto,)).rowcount
            self._pending = max(0, self._pending - n)

    def stats(self) -> dict[str, Any]:
        return {"pending": self._pending, "max_pending": self.max_pending, "accepted": self.accepted, "refused": self.refused,
                "rate": round(self.rate, 1)}

    def close(self) -> None:
        self.db.close()


class SpoolConsumer:
    """The thread that feeds spooled events to the pipeline.

    ``make_pipeline()`` is called on the first event (lazily); each batch is
    processed, checkpointed, then acknowledged in the spool."""

    def __init__(self, spool: Spool, make_pipeline: Callable[[], Any], *, batch: int = 500, idle: float = 0.2) -> None:
        self.spool = spool
        self.make_pipeline = make_pipeline
        self.batch = batch
        self.idle = idle
        self.pipeline: Any = None
        self.processed = 0
        self.errors = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="apiward-spool", daemon=True)

    def start(self) -> SpoolConsumer:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                got = self._step()
            except Exception as exc:  # keep serving; the events stay spooled
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                got = 0
                self._stop.wait(1.0)
            if not got:
                self._wake.wait(self.idle)
                self._wake.clear()

    def _step(self) -> int:
        items = self.spool.take(0, self.batch)
        if not items:
            return 0
        if self.pipeline is None:
            self.pipeline = self.make_pipeline()
        t0 = time.monotonic()
        first, last = items[0][0], items[-1][0]
        self.pipeline.process([c for _, c in items], batch_key=f"spool-{first:012d}", autocheckpoint=False)
        self.pipeline.checkpoint()
        self.spool.ack(last)
        self.processed += len(items)
        dt = max(time.monotonic() - t0, 1e-3)
        self.spool.rate = len(items) / dt if self.spool.rate == 0 else 0.7 * self.spool.rate + 0.3 * len(items) / dt
        return len(items)

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until the spool is empty (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.spool) == 0:
                return True
            self.wake()
            time.sleep(0.05)
        return len(self.spool) == 0

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None

    def stats(self) -> dict[str, Any]:
        return {"processed": self.processed, "errors": self.errors, "last_error": self.last_error,
                "pipeline_open": self.pipeline is not None}
