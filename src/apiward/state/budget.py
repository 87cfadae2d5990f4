"""A memory budget: the caps of every keyed table derived from one figure.

Every piece of per-key state (per endpoint, actor, object, token...) lives
in an :class:`~apiward.model.keyed.LRU`. Each part sets a cap on its tables
(constructor arguments, the design's relative sizes). :class:`MemoryBudget`
scales those caps down together so that what the tables hold fits in the
budget: it measures what one entry of each table costs (a deep size of a
few recent entries), gives each table the share of the budget its designed
cap would take, and sets ``cap = min(designed cap, share / entry size)``.
Tables that spill (ownership, baselines of rarely called endpoints, trust)
then keep their cold entries in the state store instead of memory; the
others forget their least recently used entries. A feedback term scales the
caps further down (at most 4x) while the process's RSS stays above the
budget (what the sizes miss: allocator slack, batches in flight, caches),
each further cut only when the last one brought RSS down (else what is over
is not the tables, and cutting them only churns entries through the store),
and lets them grow back when it falls well below.

Tables whose cap is :data:`~apiward.model.keyed.NO_CAP` (the inventory) and
the run's findings are never cut: their size counts against the budget.

Cost: a re-derivation samples 16 entries of each table (about 60 tables):
milliseconds, done every few batches and at each checkpoint.
"""

from __future__ import annotations

import sys
from collections import OrderedDict, deque
from typing import Any

from apiward.model.keyed import LRU, NO_CAP

__all__ = ["MemoryBudget", "parse_size", "rss_bytes", "DEFAULT_BUDGET"]

DEFAULT_BUDGET = 512 << 20
_SAMPLE = 16
#: a table's measured entry size is reused until the table's length moves
#: by this share or this many applies passed: measuring walks the sampled
#: entries' whole object graphs, which for a large entry (the template tree
#: of a host with thousands of endpoints) costs as much as a checkpoint
_RESIZE_SHARE = 0.25
_REMEASURE_EVERY = 20
_MIN_CAP = 64  # below this a table stops being useful; the budget is then too small
#: the RSS feedback cuts at most this much beyond the size-based derivation:
#: past that, what is over the budget is not the tables' (the inventory,
#: allocator slack) and cutting them further only blinds the detectors
MIN_FEEDBACK = 0.25
#: a cut of the feedback must have brought RSS down by this share before it cuts again
CUT_GAIN = 0.03


def parse_size(text: str | int) -> int:
    """Bytes from ``512``, ``512M``, ``512MB``, ``1.5G`` (a bare number is MB)."""
    if isinstance(text, int):
        return text << 20
    s = text.strip().upper().removesuffix("B")
    mult = 1 << 20
    if s and s[-1] in "KMG":
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[s[-1]]
        s = s[:-1]
    try:
        value = float(s)
    except ValueError:
        raise ValueError(f"memory budget {text!r}: expected a size like 512M or 2G") from None
    if value <= 0:
        raise ValueError(f"memory budget {text!r} must be positive")
    return int(value * mult)


def rss_bytes() -> int:
    """This process's resident set size (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except (OSError, IndexError, ValueError):
        return 0


def _trim() -> None:
    """``malloc_trim(0)`` where glibc has it: freed heap pages go back to the
    system instead of staying in the process's RSS."""
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim  # noqa: B018 (present?)
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


_libc: Any = None


def deep_size(obj: Any, seen: set[int] | None = None, depth: int = 0) -> int:
    """Approximate bytes held by ``obj`` (containers, ``__dict__`` and
    ``__slots__`` followed; shared objects counted once; a class may say
    for its objects with a ``__deep_size__`` method)."""
    if seen is None:
        seen = set()
    i = id(obj)
    if i in seen or depth > 12:
        return 0
    seen.add(i)
    t = type(obj)
    own = getattr(t, "__deep_size__", None)
    if own is not None:  # an object that knows (a template tree's chunk: not the chunks below it)
        return int(own(obj))
    size = sys.getsizeof(obj)
    if t in (str, bytes, int, float, bool, type(None)):
        return size
    if isinstance(obj, dict):
        for k, v in obj.items():
            size += deep_size(k, seen, depth + 1) + deep_size(v, seen, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset, deque)):
        for x in obj:
            size += deep_size(x, seen, depth + 1)
    d = getattr(obj, "__dict__", None)
    if d is not None:
        size += deep_size(d, seen, depth + 1)
    for cls in t.__mro__:
        for name in getattr(cls, "__slots__", ()):
            if isinstance(name, str) and name != "__dict__":
                size += deep_size(getattr(obj, name, None), seen, depth + 1)
    return size


def _entry_size(lru: LRU[Any, Any]) -> float:
    """Mean bytes of one entry (key and value), from the most recent ones."""
    n = len(lru)
    if not n:
        return 0.0
    total = 0
    taken = 0
    get = dict.get
    for k in reversed(OrderedDict.keys(lru)):
        total += deep_size(k) + deep_size(get(lru, k)) + 100  # + the ordered dict's own node
        taken += 1
        if taken >= _SAMPLE:
            break
    return total / taken


def tables(components: dict[str, dict[str, Any]]) -> list[tuple[str, LRU[Any, Any]]]:
    """Every keyed table of the pipeline's components (as the store sees them)."""
    from apiward.state.store import _tables_in

    out: list[tuple[str, LRU[Any, Any]]] = []
    seen: set[int] = set()
    for comp, attrs in components.items():
        for name, value in attrs.items():
            for tbl, lru in _tables_in(name, value):
                if id(lru) not in seen:
                    seen.add(id(lru))
                    out.append((f"{comp}/{tbl}", lru))
    return out


class MemoryBudget:
    """Derives the caps of the pipeline's keyed tables from ``budget`` bytes
    (see the module docstring). ``reserve`` is what the process needs
    besides the tables: the interpreter, libraries and batches in flight,
    measured at start as the RSS before any state is held, plus a margin."""

    def __init__(self, budget: int = DEFAULT_BUDGET, *, margin: float = 0.15) -> None:
        if budget <= 0:
            raise ValueError("memory budget must be positive")
        self.budget = budget
        self.margin = margin
        self.reserve = 0
        self.designed: dict[int, int] = {}  # id(table) -> the cap its part gave it
        self.feedback = 1.0
        self._cut_rss: int | None = None  # RSS when the feedback last cut
        self.last: dict[str, Any] = {}
        self._sizes: dict[int, tuple[int, int, float]] = {}  # id(table) -> (len measured at, applies since, bytes per entry)

    def _size_of(self, lru: LRU[Any, Any]) -> float:
        """Mean entry bytes of ``lru``, measured again only when its length
        moved by a quarter or after :data:`_REMEASURE_EVERY` applies."""
        n = len(lru)
        hit = self._sizes.get(id(lru))
        if hit is not None:
            at, since, size = hit
            if since < _REMEASURE_EVERY and abs(n - at) <= _RESIZE_SHARE * max(at, 1) and (n == 0) == (at == 0):
                self._sizes[id(lru)] = (at, since + 1, size)
                return size
        size = _entry_size(lru)
        self._sizes[id(lru)] = (n, 0, size)
        return size

    def start(self, components: dict[str, dict[str, Any]]) -> None:
        """Remember each table's designed cap and what the process holds
        without state (call once the parts are built, before they learn)."""
        for _name, lru in tables(components):
            self.designed.setdefault(id(lru), lru.cap)
        self.reserve = min(rss_bytes(), self.budget // 2)

    def apply(self, components: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Re-derive and set every table's cap; returns what was decided."""
        found = tables(components)
        avail = self.budget * (1 - self.margin) - self.reserve
        fixed = 0.0
        want: list[tuple[str, LRU[Any, Any], int, float]] = []
        for name, lru in found:
            designed = self.designed.setdefault(id(lru), lru.cap)
            size = self._size_of(lru) or 256.0  # an empty table: a small entry until one is measured
            if designed >= NO_CAP or name.startswith("run/"):
                fixed += size * len(lru)
                continue
            want.append((name, lru, designed, size))
        avail = max(avail - fixed, 0.0)
        total = sum(d * s for _, _, d, s in want) or 1.0
        rss = rss_bytes()
        over = rss > self.budget * (1 - self.margin)
        if over:
            if self._cut_rss is None or rss < self._cut_rss * (1 - CUT_GAIN):
                self.feedback = max(MIN_FEEDBACK, self.feedback * 0.7)
                self._cut_rss = rss
            # else the last cut did not bring RSS down (what is over is not the
            # tables: the allocator's free but fragmented pages, fixed records):
            # cutting further would only move entries to and from the store
            # on every call, for no memory
        else:
            self._cut_rss = None
            if rss < self.budget * (1 - 2 * self.margin) and self.feedback < 1.0:
                self.feedback = min(1.0, self.feedback * 1.1)
        scale = min(1.0, avail / total) * self.feedback
        caps: dict[str, int] = {}
        for name, lru, designed, size in want:
            cap = max(_MIN_CAP, min(designed, int(designed * scale)))
            if cap != lru.cap:
                lru.set_cap(cap)
            caps[name] = cap
        if over:
            _trim()  # hand what the cut freed back to the system, else RSS keeps it
        self.last = {"rss": rss, "scale": scale, "feedback": self.feedback, "fixed_bytes": int(fixed), "caps": caps}
        return self.last
