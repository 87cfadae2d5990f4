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

from apiward.model.keyed import LRU

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


