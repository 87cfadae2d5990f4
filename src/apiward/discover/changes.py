"""The API change log: new endpoints, new fields, type changes, endpoints
gone quiet.

A change stays *open* for ``window`` seconds of event time after it is first
seen, counting the distinct actors that exercise it (capped). When it closes
it is drained to the lake (``changes`` table) with that count. Many distinct
actors means the application evolved (an API change, not an alert); one
actor means a deviation worth a look (detectors judge that, not this log).

Cost: a change is created at most once per new endpoint/field; while open,
each observation adds one actor key to a capped set.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

__all__ = ["Change", "ChangeLog", "changes_table", "KINDS", "CHANGE_SCHEMA"]

# Same columns as the lake's ``changes`` table (apiward.lake.query.CHANGES_SCHEMA);
# defined here because discover never imports a later stage.
CHANGE_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("kind", pa.string()),
        ("host", pa.string()),
        ("endpoint", pa.string()),
        ("field", pa.string()),
        ("detail", pa.string()),
    ]
)

KINDS = ("new_endpoint", "new_field", "type_change", "endpoint_quiet")
ACTOR_CAP = 1000


class Change:
    """One change. ``actors`` is the number of distinct actors that
    exercised it while it was open."""

    __slots__ = ("ts", "kind", "host", "endpoint", "field", "detail", "closes_at", "_actors", "actors", "closed", "drained", "api_change_at")

    def __init__(self, ts: float, kind: str, host: str, endpoint: str, field: str = "", detail: str = "",
                 window: float = 3600.0, api_change_at: int = 5) -> None:
        self.ts = ts
        self.kind = kind
        self.host = host
        self.endpoint = endpoint
        self.field = field
        self.detail = detail
        self.closes_at = ts + window
        self._actors: set[str] | None = set()
        self.actors = 0
        self.closed = False
        self.drained = False
        self.api_change_at = api_change_at

    def add_actor(self, actor: str) -> None:
        a = self._actors
        if a is not None and actor not in a:
            a.add(actor)
            self.actors = len(a)
            if self.actors >= ACTOR_CAP:
                self.close()

    def close(self) -> None:
        self.closed = True
        self._actors = None

    @property
    def verdict(self) -> str:
        """``api change`` when enough distinct actors exercised it, else
        ``deviation``; quiet endpoints and type changes are ``api change``
        by nature only when many actors saw them too."""
        if self.kind == "endpoint_quiet":
            return "gone quiet"
        return "api change" if self.actors >= self.api_change_at else "deviation"

    def describe(self) -> str:
        if self.kind == "endpoint_quiet":
            return self.detail
        who = f"{self.actors} distinct actor{'s' if self.actors != 1 else ''}"
        base = f"{self.detail}; " if self.detail else ""
        return f"{base}exercised by {who} ({self.verdict})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "kind": self.kind,
            "host": self.host,
            "endpoint": self.endpoint,
            "field": self.field,
            "actors": self.actors,
            "verdict": self.verdict,
            "open": not self.closed,
            "detail": self.describe(),
        }

    def lake_row(self) -> dict[str, Any]:
        return {
            "ts": datetime.fromtimestamp(self.ts, tz=timezone.utc),
            "kind": self.kind,
            "host": self.host,
            "endpoint": self.endpoint,
            "field": self.field,
            "detail": self.describe(),
        }


class ChangeLog:
    """Open and recent changes (the most recent ``keep`` are remembered)."""

    def __init__(self, *, window: float = 3600.0, api_change_at: int = 5, keep: int = 10_000) -> None:
        self.window = window
        self.api_change_at = api_change_at
        self.recent: deque[Change] = deque(maxlen=keep)
        self.open: list[Change] = []

    def add(self, ts: float, kind: str, host: str, endpoint: str, field: str = "", detail: str = "", actor: str = "") -> Change:
        ch = Change(ts, kind, host, endpoint, field, detail, self.window if kind != "endpoint_quiet" else 0.0, self.api_change_at)
        if actor:
            ch.add_actor(actor)
        if kind == "endpoint_quiet":
            ch.close()
        else:
            self.open.append(ch)
        self.recent.append(ch)
        return ch

    def drain(self, now: float, *, flush: bool = False) -> list[dict[str, Any]]:
        """Close changes whose window has passed (all of them with
        ``flush``) and return every closed, not yet drained change as a lake
        row (``ts, kind, host, endpoint, field, detail``)."""
        if self.open:
            still = []
            for ch in self.open:
                if flush or ch.closed or now >= ch.closes_at:
                    ch.close()
                else:
                    still.append(ch)
            self.open = still
        rows = []
        for ch in self.recent:
            if ch.closed and not ch.drained:
                ch.drained = True
                rows.append(ch.lake_row())
        return rows

    def entries(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.recent]


def changes_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows from :meth:`ChangeLog.drain` as a table with the lake's
    ``changes`` schema (write with ``Lake.write_partitioned("changes", t, key)``)."""
    return pa.Table.from_pylist(rows, schema=CHANGE_SCHEMA)
