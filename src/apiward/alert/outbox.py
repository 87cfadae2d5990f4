"""The durable outbox: alerts wait in SQLite (``<state>/outbox.db``) until
their sink takes them, so a sink that is down loses nothing.

- **dedup**: per (sink, alert id) the outbox remembers the last
  fingerprint it queued; an unchanged alert is not queued again, and a
  changed one replaces a still-pending version (one row per alert and
  sink waits at a time);
- **update pacing**: an update is not sent sooner than
  ``update_interval`` seconds after the previous version;
- **retries**: a failed delivery waits ``retry_base * 2**attempts``
  seconds (capped at ``retry_max``) and is tried again, forever unless
  ``max_attempts`` says otherwise;
- **rate limit**: the deliverer takes at most ``rate_per_minute`` rows per
  sink per minute; the rest wait their turn, in order.

Delivery is at least once; ``id:version`` lets receivers drop a repeat.
WAL mode: the pipeline thread enqueues while the delivery thread sends.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from apiward.alert.base import Alert

__all__ = ["Outbox", "Row"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL, alert_id TEXT NOT NULL, version INTEGER NOT NULL,
  payload BLOB NOT NULL, created REAL NOT NULL, next_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT, delivered REAL, dead INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS pending_due ON pending (sink, delivered, dead, next_at, seq);
CREATE TABLE IF NOT EXISTS seen (
  sink TEXT NOT NULL, alert_id TEXT NOT NULL, fingerprint TEXT NOT NULL, version INTEGER NOT NULL, sent_at REAL,
  PRIMARY KEY (sink, alert_id)
);
CREATE TABLE IF NOT EXISTS sends (sink TEXT NOT NULL, at REAL NOT NULL);
"""


class Row:
    __slots__ = ("seq", "sink", "alert", "attempts")

    def __init__(self, seq: int, sink: str, alert: Alert, attempts: int) -> None:
        self.seq, self.sink, self.alert, self.attempts = seq, sink, alert, attempts


class Outbox:
    def __init__(self, path: Path | str, *, update_interval: float = 300.0, retry_base: float = 2.0, retry_max: float = 300.0,
                 max_attempts: int = 0, rate_per_minute: int = 60) -> None:
        self.path = Path(path)
        self.update_interval = update_interval
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.max_attempts = max_attempts
        self.rate_per_minute = rate_per_minute
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    # -- producer ---------------------------------------------------------------
    def enqueue(self, sink: str, alerts: list[Alert], now: float | None = None) -> int:
        """Queue what changed; returns rows queued or replaced."""
        now = time.time() if now is None else now
        n = 0
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for a in alerts:
                    fp = a.fingerprint()
                    row = db.execute("SELECT fingerprint, version, sent_at FROM seen WHERE sink=? AND alert_id=?", (sink, a.id)).fetchone()
                    if row is not None and row[0] == fp:
                        continue
                    version = 1 if row is None else row[1] + 1
                    a = Alert(**{**a.to_dict(), "version": version, "action": a.action if a.kind == "test" else ("new" if row is None else "update")})
                    due = now
                    if row is not None and row[2] is not None:
                        due = max(now, row[2] + self.update_interval)
                    payload = orjson.dumps(a.to_dict())
                    pend = db.execute("SELECT seq FROM pending WHERE sink=? AND alert_id=? AND delivered IS NULL AND dead=0", (sink, a.id)).fetchone()
                    if pend is not None:
                        db.execute("UPDATE pending SET payload=?, version=? WHERE seq=?", (payload, version, pend[0]))
                    else:
                        db.execute("INSERT INTO pending (sink, alert_id, version, payload, created, next_at) VALUES (?,?,?,?,?,?)",
                                   (sink, a.id, version, payload, now, due))
                    db.execute("INSERT INTO seen (sink, alert_id, fingerprint, version, sent_at) VALUES (?,?,?,?,NULL) "
                               "ON CONFLICT(sink, alert_id) DO UPDATE SET fingerprint=excluded.fingerprint, version=excluded.version",
                               (sink, a.id, fp, version))
                    n += 1
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return n

    # -- consumer -----------------------------------------------------------------
    def due(self, sink: str, limit: int = 100, now: float | None = None) -> list[Row]:
        now = time.time() if now is None else now
        with self._lock:
            sent = self._db.execute("SELECT count(*) FROM sends WHERE sink=? AND at > ?", (sink, now - 60.0)).fetchone()[0]
            room = max(0, self.rate_per_minute - sent) if self.rate_per_minute > 0 else limit
            if room <= 0:
                return []
            rows = self._db.execute(
                "SELECT seq, payload, attempts FROM pending WHERE sink=? AND delivered IS NULL AND dead=0 AND next_at <= ? ORDER BY seq LIMIT ?",
                (sink, now, min(limit, room)),
            ).fetchall()
        return [Row(seq, sink, Alert(**orjson.loads(p)), att) for seq, p, att in rows]

    def delivered(self, rows: list[Row], now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            for r in rows:
                db.execute("UPDATE pending SET delivered=?, last_error=NULL WHERE seq=?", (now, r.seq))
                db.execute("UPDATE seen SET sent_at=? WHERE sink=? AND alert_id=?", (now, r.sink, r.alert.id))
                db.execute("INSERT INTO sends (sink, at) VALUES (?, ?)", (r.sink, now))
            db.execute("DELETE FROM sends WHERE at < ?", (now - 120.0,))
            db.execute("COMMIT")

    def failed(self, rows: list[Row], error: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            for r in rows:
                att = r.attempts + 1
                wait = min(self.retry_max, self.retry_base * (2 ** (att - 1)))
                dead = 1 if self.max_attempts and att >= self.max_attempts else 0
                db.execute("UPDATE pending SET attempts=?, next_at=?, last_error=?, dead=? WHERE seq=?", (att, now + wait, error[:500], dead, r.seq))
            db.execute("COMMIT")

    def retry_now(self, sink: str | None = None) -> None:
        """Make every waiting row due (``apiward alerts flush``)."""
        with self._lock:
            if sink:
                self._db.execute("UPDATE pending SET next_at=0 WHERE delivered IS NULL AND dead=0 AND sink=?", (sink,))
            else:
                self._db.execute("UPDATE pending SET next_at=0 WHERE delivered IS NULL AND dead=0")

    def stats(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                """SELECT sink, count(*) FILTER (WHERE delivered IS NOT NULL), count(*) FILTER (WHERE delivered IS NULL AND dead=0),
                          count(*) FILTER (WHERE dead=1), sum(attempts), max(last_error) FILTER (WHERE delivered IS NULL)
                   FROM pending GROUP BY sink"""
            ).fetchall()
        return {r[0]: {"delivered": r[1], "pending": r[2], "dead": r[3], "failed_attempts": r[4] or 0, "last_error": r[5] or ""} for r in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
