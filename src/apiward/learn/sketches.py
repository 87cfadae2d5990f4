"""Small bounded summaries that baselines are built from.

Every structure here has a fixed memory ceiling whatever the volume fed to
it, pickles (plain attributes, no lambdas) and is deterministic: nothing
depends on Python's per-process string hash, so a state saved by one process
answers the same in the next. Keys for distinct counting are CRC-32 digests
(:func:`key_hash`).

- :class:`Moments` (formerly ``Welford``): count, mean, variance, min,
  max, from running sums. O(1).
- :class:`LogHistogram`: counts in power-of-two buckets (lengths, sizes,
  latencies), with tail fractions. O(1).
- :class:`Distinct`: distinct count, exact up to a cap, then linear counting
  on a 4096-bit bitmap (a few % error up to about 20,000). O(1).
- :class:`SmallSet`: up to ``cap`` hashes, to ask "have at least k distinct
  actors done this?" cheaply. O(1).
- :class:`CappedCounter`: a dict of counts that stops admitting new keys at
  ``cap`` and says so (``overflow``). O(1).
- :class:`LRU`: an ordered dict that evicts the least recently used key.
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from typing import Any, Generic, TypeVar

__all__ = ["key_hash", "Moments", "Welford", "LogHistogram", "Distinct", "SmallSet", "CappedCounter", "LRU"]

K = TypeVar("K")
V = TypeVar("V")


def key_hash(key: str) -> int:
    """A stable 32-bit digest of ``key`` (CRC-32; not a security boundary)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass"))


class Moments:
    """Running count, mean, variance, min and max, kept as sums (``n``,
    ``s``, ``ss``): an add is three additions and two comparisons. Exact
    for integers (lengths, sizes: Python ints do not round); for floats the
    variance comes from ``(n·ss - s²) / n``, which loses precision only when
    the spread is below about 1e-7 of the mean (latencies, gaps and amounts
    are far from that). Formerly Welford's algorithm (a third more work per
    add); states saved then load as they were."""

    __slots__ = ("n", "s", "ss", "lo", "hi")

    def __init__(self) -> None:
        self.n = 0
        self.s: float = 0
        self.ss: float = 0
        self.lo = math.inf
        self.hi = -math.inf

    def add(self, x: float) -> None:
        self.n += 1
        self.s += x
        self.ss += x * x
        if x < self.lo:
            self.lo = x
        if x > self.hi:
            self.hi = x

    def add_weighted(self, x: float, w: int) -> None:
        """``add(x)`` ``w`` times (a value standing for ``w`` unsampled ones)."""
        self.n += w
        self.s += w * x
        self.ss += w * x * x
        if x < self.lo:
            self.lo = x
        if x > self.hi:
            self.hi = x

    @property
    def mean(self) -> float:
        return self.s / self.n if self.n else 0.0

    @property
    def m2(self) -> float:
        """Sum of squared deviations from the mean."""
        n = self.n
        if n < 2:
            return 0.0
        m2 = (n * self.ss - self.s * self.s) / n
        return m2 if m2 > 0 else 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0

    def z(self, x: float) -> float:
        """Standard score of ``x`` (0 when the spread is unknown)."""
        s = self.std
        return (x - self.mean) / s if s > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        if not self.n:
            return {"n": 0}
        return {"n": self.n, "mean": round(self.mean, 3), "std": round(self.std, 3), "min": self.lo, "max": self.hi}

    def __getstate__(self) -> tuple[Any, ...]:
        return ("sums", self.n, self.s, self.ss, self.lo, self.hi)

    def __setstate__(self, st: tuple[Any, ...]) -> None:
        if st[0] == "sums":
            _, self.n, self.s, self.ss, self.lo, self.hi = st
        else:  # (n, mean, m2, lo, hi) from Welford's algorithm
            n, mean, m2, self.lo, self.hi = st
            self.n, self.s = n, mean * n
            self.ss = m2 + mean * mean * n


#: The former name (and the class that states saved before hold).
Welford = Moments


class LogHistogram:
    """Counts of non-negative values in buckets ``[0], [1], [2,3], [4,7]...``
    (bucket = ``int.bit_length``), up to 2**40."""

    __slots__ = ("counts", "n")

    BUCKETS = 42

    def __init__(self) -> None:
        self.counts = [0] * self.BUCKETS
        self.n = 0

    def add(self, x: float) -> None:
        b = int(x).bit_length() if x > 0 else 0
        if b >= 42:  # BUCKETS
            b = 41
        self.counts[b] += 1
        self.n += 1

    def add_weighted(self, x: float, w: int) -> None:
        """``add(x)`` ``w`` times."""
        b = int(x).bit_length() if x > 0 else 0
        self.counts[b if b < 42 else 41] += w
        self.n += w

    def frac_at_least(self, x: float) -> float:
        """Share of values in ``x``'s bucket or above (a tail probability
        with bucket resolution)."""
        if not self.n:
            return 1.0
        b = min(int(x).bit_length() if x > 0 else 0, self.BUCKETS - 1)
        return sum(self.counts[b:]) / self.n

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.counts, self.n)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.counts, self.n = s


class Distinct:
    """Approximate distinct count: exact below ``exact`` items, then linear
    counting over a 4096-bit bitmap (a ``bytearray`` set in place: no
    allocation per add), built from the exact set when it overflows."""

    __slots__ = ("items", "bits", "exact")

    M = 4096

    def __init__(self, exact: int = 64) -> None:
        self.items: set[int] | None = set()
        self.bits: bytearray | None = None
        self.exact = exact

    def add(self, h: int) -> None:
        items = self.items
        if items is not None:
            if h in items:
                return
            if len(items) < self.exact:
                items.add(h)
                return
            self.bits = bits = bytearray(512)
            for x in items:
                bits[x >> 3 & 511] |= 1 << (x & 7)
            self.items = None
        self.bits[h >> 3 & 511] |= 1 << (h & 7)  # type: ignore[index]  # bit h % 4096

    def __len__(self) -> int:
        if self.items is not None:
            return len(self.items)
        zeros = self.M - int.from_bytes(self.bits or b"", "little").bit_count()
        if zeros <= 0:
            return self.M * 8  # saturated: "many"
        return int(round(-self.M * math.log(zeros / self.M)))

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.items, bytes(self.bits) if self.bits is not None else b"", self.exact)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.items, bits, self.exact = s
        if self.items is not None:
            self.bits = None
        elif isinstance(bits, int):  # states saved when the bitmap was an int
            self.bits = bytearray(bits.to_bytes(512, "little"))
        else:
            self.bits = bytearray(bits[:512].ljust(512, b"\0"))


class SmallSet:
    """Up to ``cap`` distinct hashes; ``len`` saturates at ``cap``."""

    __slots__ = ("items", "cap")

    def __init__(self, cap: int = 8) -> None:
        self.items: list[int] = []
        self.cap = cap

    def add(self, h: int) -> None:
        items = self.items
        if len(items) < self.cap and h not in items:
            items.append(h)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, h: object) -> bool:
        return h in self.items

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.items, self.cap)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.items, self.cap = s


class CappedCounter(Generic[K]):
    """Counts per key for at most ``cap`` keys; later new keys only bump
    ``overflow`` (so ``overflow > 0`` means "high cardinality")."""

    __slots__ = ("counts", "cap", "overflow", "total")

    def __init__(self, cap: int = 64) -> None:
        self.counts: dict[K, int] = {}
        self.cap = cap
        self.overflow = 0
        self.total = 0

    def add(self, key: K, n: int = 1) -> bool:
        """Count ``key``; False when it was not admitted (cap reached)."""
        self.total += n
        counts = self.counts
        if key in counts:
            counts[key] += n
            return True
        if len(counts) < self.cap:
            counts[key] = n
            return True
        self.overflow += n
        return False

    def get(self, key: K) -> int:
        return self.counts.get(key, 0)

    def __contains__(self, key: object) -> bool:
        return key in self.counts

    def __len__(self) -> int:
        return len(self.counts)

    def top(self, k: int = 10) -> list[tuple[K, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:k]

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.counts, self.cap, self.overflow, self.total)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.counts, self.cap, self.overflow, self.total = s


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
