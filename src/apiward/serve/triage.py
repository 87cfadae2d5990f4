"""Finding triage: status (open, acknowledged, resolved, false-positive),
who set it and when, with a note; kept in ``<state>/triage.db`` apart from
the lake, which the pipeline rewrites. Every change is also appended to a
history table, so a triage decision is never lost by a later one."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import UTC
from pathlib import Path
from typing import Any

__all__ = ["STATUSES", "TriageError", "TriageStore"]

STATUSES = ("open", "acknowledged", "resolved", "false-positive")


class TriageError(ValueError):
    """A bad status or note."""


class TriageStore:
    def __init__(self, state_dir: Path | str) -> None:
        path = Path(state_dir) / "triage.db"
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._lock = threading.Lock()
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS triage (finding TEXT PRIMARY KEY, status TEXT, who TEXT, at REAL, note TEXT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS history (finding TEXT, status TEXT, who TEXT, at REAL, note TEXT)")

    def set(self, finding: str, status: str, who: str, note: str = "") -> dict[str, Any]:
        if status not in STATUSES:
            raise TriageError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        if len(note) > 2000:
            raise TriageError("note is longer than 2000 characters")
        row = (finding, status, who, time.time(), note)
        with self._lock:
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR REPLACE INTO triage VALUES (?, ?, ?, ?, ?)", row)
            self.db.execute("INSERT INTO history VALUES (?, ?, ?, ?, ?)", row)
            self.db.execute("COMMIT")
        return self._dict(row)

    @staticmethod
    def _dict(row: tuple[Any, ...]) -> dict[str, Any]:
        return {"status": row[1], "by": row[2], "at": _iso(row[3]), "note": row[4] or ""}

    def get(self, finding: str) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM triage WHERE finding = ?", (finding,)).fetchone()
        return self._dict(row) if row else {"status": "open", "by": None, "at": None, "note": ""}

    def all(self) -> dict[str, dict[str, Any]]:
        return {r[0]: self._dict(r) for r in self.db.execute("SELECT * FROM triage")}

    def history(self, finding: str) -> list[dict[str, Any]]:
        return [self._dict(r) for r in self.db.execute("SELECT * FROM history WHERE finding = ? ORDER BY at", (finding,))]

    def close(self) -> None:
        self.db.close()


def _iso(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
