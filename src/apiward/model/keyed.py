"""The bounded keyed table every piece of per-key state lives in.

:class:`LRU` is shared by every stage (the inventory's endpoint records,
baselines, detectors' per-actor and per-object state) and by the state
store, which keeps each entry as a record of its own; so it lives with the
shared types rather than in any one stage.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, TypeVar

__all__ = ["LRU", "NO_CAP"]

K = TypeVar("K")
V = TypeVar("V")

#: the cap of a table that must never forget an entry (the inventory)
NO_CAP = 1 << 62


class LRU(OrderedDict[K, V]):
    """An ordered dict holding at most ``cap`` keys; :meth:`touch` returns
    the value and marks it recently used, evicting the oldest on insert.

    Keyed state lives in LRUs, and the state store keeps each entry as a
    record of its own: the LRU remembers which keys were touched since the
    last checkpoint (``dirty``; a value read may have been changed in place)
    and which left (``gone``), so a checkpoint writes only those. With a
    ``backing`` (see :mod:`apiward.state.store`), an entry evicted over
    ``cap`` is spilled to the store instead of forgotten and read back on
    its next use."""

    def __init__(self, cap: int = 10000, *, spill: bool = False) -> None:
        super().__init__()
        self.cap = cap
        self.evicted = 0
        self.spill = spill
        self.dirty: set[Any] = set()
        self.gone: set[Any] = set()
        self.backing: Any = None  # set by the state store: spilled entries and loads on a miss

    # reads and writes mark the key dirty (values are often changed in place)
    def get(self, key: K, default: Any = None) -> Any:  # type: ignore[override]
        v = OrderedDict.get(self, key, _MISS)
        if v is _MISS:
            b = self.backing
            if b is None or not b.has(key):
                return default
            v = b.take(key)
            self._insert(key, v)
        self.dirty.add(key)
        return v

    def __getitem__(self, key: K) -> V:
        v = self.get(key, _MISS)
        if v is _MISS:
            raise KeyError(key)
        return v  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        if OrderedDict.__contains__(self, key):
            return True
        b = self.backing
        return b is not None and b.has(key)

    def __setitem__(self, key: K, value: V) -> None:
        OrderedDict.__setitem__(self, key, value)
        self.dirty.add(key)
        self.gone.discard(key)

    def __delitem__(self, key: K) -> None:
        OrderedDict.__delitem__(self, key)
        self.dirty.discard(key)
        self.gone.add(key)

    def pop(self, key: K, *default: Any) -> Any:  # type: ignore[override]
        if OrderedDict.__contains__(self, key):
            v = OrderedDict.pop(self, key)
            self.dirty.discard(key)
            self.gone.add(key)
            return v
        b = self.backing
        if b is not None and b.has(key):
            v = b.take(key)
            self.gone.add(key)
            return v
        if default:
            return default[0]
        raise KeyError(key)

    def clear(self) -> None:
        self.gone.update(OrderedDict.keys(self))
        self.dirty.clear()
        OrderedDict.clear(self)
        if self.backing is not None:
            self.gone.update(self.backing.clear())

    def _insert(self, key: K, value: V) -> None:
        OrderedDict.__setitem__(self, key, value)
        self.dirty.add(key)
        self.gone.discard(key)
        if len(self) > self.cap:
            self._evict()

    def _evict(self) -> None:
        k, v = OrderedDict.popitem(self, last=False)
        self.dirty.discard(k)
        b = self.backing
        if self.spill and b is not None:
            b.spill(k, v)  # kept in the store, read back on its next use
        else:
            self.gone.add(k)
            self.evicted += 1

    def changed(self, key: K) -> None:
        """``key``'s value was changed in place without a read through
        :meth:`get` (while iterating): the next checkpoint writes it."""
        self.dirty.add(key)

    def put(self, key: K, value: V) -> None:
        self._insert(key, value)
        self.move_to_end(key)

    def touch(self, key: K) -> V | None:
        v = self.get(key)
        if v is not None:
            self.move_to_end(key)
        return v

    def get_or(self, key: K, factory: Any) -> V:
        """The value at ``key`` marked recent, created with ``factory()``
        when absent (state made lazily)."""
        v = self.get(key)
        if v is None:
            v = factory()
            self.put(key, v)
        else:
            self.move_to_end(key)
        return v  # type: ignore[no-any-return]

    def peek(self, key: K, default: Any = None) -> Any:
        """The value at ``key`` without marking it used or changed (a view);
        a spilled entry is read as a copy and stays spilled: change an
        entry through :meth:`get`, never through what this returns."""
        v = OrderedDict.get(self, key, _MISS)
        if v is not _MISS:
            return v
        b = self.backing
        if b is not None and b.has(key):
            v = b.peek(key)
            if v is not None:
                return v
        return default

    def all_keys(self) -> list[K]:
        """Every key: in memory (oldest first), then spilled."""
        keys = list(OrderedDict.keys(self))
        b = self.backing
        if b is not None and b.keys:
            inside = OrderedDict.__contains__
            keys.extend(k for k in b.keys if not inside(self, k))
        return keys

    def each(self) -> Iterator[tuple[K, V]]:
        """``(key, value)`` of every entry, in memory then spilled (read
        from the store one by one): what views iterate. Spilled values are
        copies (see :meth:`peek`)."""
        yield from list(OrderedDict.items(self))
        b = self.backing
        if b is not None and b.keys:
            inside = OrderedDict.__contains__
            for k in list(b.keys):
                if inside(self, k):
                    continue
                v = b.peek(k)
                if v is not None:
                    yield k, v

    def size(self) -> int:
        """Entries known, in memory and spilled (``len`` counts memory only)."""
        b = self.backing
        return len(self) + (len(b.keys) if b is not None else 0)

    def _codec_attrs(self) -> dict[str, Any]:
        """What the state codec keeps besides the entries."""
        return {"cap": self.cap, "evicted": self.evicted, "spill": self.spill}

    def _codec_init(self) -> None:
        """Bookkeeping of a freshly decoded LRU."""
        self.__dict__.setdefault("spill", False)
        self.dirty, self.gone, self.backing = set(), set(), None

    def set_cap(self, cap: int) -> None:
        """Change the bound (a memory budget), evicting or spilling the oldest now."""
        self.cap = max(1, cap)
        while len(self) > self.cap:
            self._evict()

    def __reduce__(self) -> Any:
        return (_rebuild_lru, (self.cap, self.evicted, list(self.items())))


_MISS: Any = object()


def _rebuild_lru(cap: int, evicted: int, items: list[tuple[Any, Any]]) -> LRU[Any, Any]:
    lru: LRU[Any, Any] = LRU(cap)
    lru.evicted = evicted
    for k, v in items:
        lru[k] = v
    return lru
