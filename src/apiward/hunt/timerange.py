"""Time ranges for hunts: ``--since 7d --until 2025-03-04``.

A bound is relative to now (``90s``, ``30m``, ``12h``, ``7d``, ``2w``), an
ISO date or time (UTC unless it says otherwise), a Unix timestamp, or
``all``/``now``. "Now" is the wall clock unless ``APIWARD_NOW`` pins it
(ISO or Unix seconds), which makes demos over recorded or simulated traffic
and tests reproducible.

>>> r = TimeRange.parse("2d", "2025-03-03", now=1741000000.0)
>>> r.days()
['2025-03-01', '2025-03-02', '2025-03-03']
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, timezone

__all__ = ["TimeRange", "parse_when", "now", "BadTime"]

_REL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: The earliest bound ``all`` stands for (before any traffic apiward can hold).
EPOCH = 0.0
FAR = 32503680000.0  # 3000-01-01


class BadTime(ValueError):
    """A time bound nobody can read."""


def now() -> float:
    """Unix seconds: ``APIWARD_NOW`` when set, else the wall clock."""
    pinned = os.environ.get("APIWARD_NOW", "").strip()
    if pinned:
        return parse_when(pinned, now=0.0)
    return time.time()


def parse_when(value: str | float | int | None, *, now: float | None = None, default: float | None = None) -> float:
    """A bound as Unix seconds. Relative bounds count back from ``now``."""
    if value is None or value == "":
        if default is None:
            raise BadTime("no time given")
        return default
    if isinstance(value, (int, float)):
        return float(value)
    v = value.strip()
    ref = globals()["now"]() if now is None else now
    low = v.lower()
    if low == "all":
        return EPOCH
    if low == "now":
        return ref
    m = _REL.match(v)
    if m:
        return ref - float(m.group(1)) * _UNIT[m.group(2).lower()]
    try:
        return float(v)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise BadTime(f"{value!r} is not a time: use 7d, 12h, 30m, 2w, an ISO date (2025-03-01) or time, or 'all'") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class TimeRange:
    """``[since, until)`` in Unix seconds."""

    __slots__ = ("since", "until")

    def __init__(self, since: float = EPOCH, until: float = FAR) -> None:
        if until <= since:
            raise BadTime("--until must be after --since")
        self.since = since
        self.until = until

    @classmethod
    def parse(cls, since: str | float | None = None, until: str | float | None = None, *, now: float | None = None,
              default_since: str = "all") -> "TimeRange":
        ref = globals()["now"]() if now is None else now
        s = parse_when(since if since not in (None, "") else default_since, now=ref)
        u = parse_when(until, now=ref, default=FAR) if until not in (None, "") else FAR
        return cls(s, u)

    @property
    def bounded(self) -> bool:
        return self.since > EPOCH or self.until < FAR

    def days(self) -> list[str] | None:
        """The UTC days the range touches (``None`` when unbounded or longer
        than ~30 years: no pruning then)."""
        if not self.bounded:
            return None
        first = int(self.since // 86400)
        last = int((min(self.until, FAR) - 1e-6) // 86400)
        if last - first > 11000:
            return None
        return [datetime.fromtimestamp(d * 86400, tz=timezone.utc).strftime("%Y-%m-%d") for d in range(first, last + 1)]

    def contains_day(self, day: str) -> bool:
        days = self.days()
        return days is None or days[0] <= day <= days[-1]

    def iso(self) -> tuple[str, str]:
        f = lambda t: datetime.fromtimestamp(t, tz=timezone.utc).isoformat().replace("+00:00", "Z")  # noqa: E731
        return f(self.since), f(self.until)

    def __repr__(self) -> str:
        a, b = self.iso()
        return f"TimeRange({a} .. {b})"
