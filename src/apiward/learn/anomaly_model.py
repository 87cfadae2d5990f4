"""The behaviour anomaly model: per-actor windows of traffic, scored by an
online Half-Space Trees ensemble (river), calibrated to percentiles and
explained by feature z-scores.

Why windows: scoring every event with an ensemble costs tens of µs; the
pipeline budget is a few µs per event per detector. Events fold into a
cheap per-actor accumulator (:class:`ActorWindow`, ~2 µs per event); the
model sees one feature vector per window (``window_events`` events of one
actor, or fewer when the actor pauses ``window_s``), so its cost is
amortised over the window. Behaviour is also what a window shows and an
event does not: rate, breadth, error mix.

Pieces:

- :data:`FEATURES`: the window features, each squashed into [0, 1] by a
  fixed transform (ratios as they are, counts and sizes as capped log2), so
  Half-Space Trees get fixed ``limits`` and no scaler is needed;
- :class:`ActorWindow`: the accumulator; ``features()`` builds the vector;
- :class:`AnomalyModel`: ``score(x) -> (raw, percentile)`` and ``learn(x)``,
  a warm-up (``warmup`` windows learned before any percentile is given),
  calibration against a reservoir of recent benign raw scores (so a
  threshold of 0.999 means "the top 0.1% of recent windows"), and
  ``explain(x)``: the features furthest from their running mean in
  standard deviations.

Everything pickles and is bounded: the trees are fixed-size, the reservoir
holds ``reservoir`` scores, running statistics are one mean/variance pair
per feature.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import deque
from typing import Any

from river import anomaly

__all__ = ["FEATURES", "ActorWindow", "AnomalyModel", "special_ratio"]

FEATURES: tuple[str, ...] = (
    "events",  # window events / window_events
    "rate",  # log2(1 + calls per minute) / 10
    "endpoint_breadth",  # distinct endpoints / events
    "endpoints",  # log2(1 + distinct endpoints) / 6
    "object_breadth",  # distinct path-parameter values / events
    "client_error_ratio",  # 4xx share
    "denied_ratio",  # 401/403 share
    "not_found_ratio",  # 404/405 share
    "server_error_ratio",  # 5xx share
    "write_ratio",  # non-GET/HEAD/OPTIONS share
    "request_size",  # mean log2(1 + request bytes) / 24
    "response_size",  # mean log2(1 + response bytes) / 24
    "response_size_max",  # max log2(1 + response bytes) / 24
    "latency",  # mean log2(1 + ms) / 16
    "params",  # log2(1 + mean parameters per call) / 5
    "special_chars",  # mean share of non-alphanumeric characters in query values
    "unseen_params",  # share of calls with a parameter the endpoint never had
    "rare_endpoints",  # share of calls to endpoints at most two actors used
    "anonymous",  # share of calls without credentials
)
LIMITS: dict[str, tuple[float, float]] = {f: (0.0, 1.0) for f in FEATURES}

_ALNUM = re.compile(r"[A-Za-z0-9_\-.~ ]+")
_LN2 = math.log(2.0)


def _l2(x: float) -> float:
    return math.log(1.0 + x) / _LN2


def special_ratio(text: str) -> float:
    """Share of characters outside ``[A-Za-z0-9_-.~ ]`` (quotes, angle
    brackets, semicolons, parentheses: injection and traversal syntax)."""
    if not text:
        return 0.0
    return len(_ALNUM.sub("", text)) / len(text)


class ActorWindow:
    """One actor's current window of events: sums and small sets."""

    __slots__ = ("start", "last", "n", "e4", "denied", "nf", "e5", "writes", "sreq", "sresp", "mresp", "slat", "params",
                 "special", "unseen", "rare", "anon", "eps", "objs", "ids", "ref", "who")

    def __init__(self, ts: float) -> None:
        self.start = ts
        self.last = ts
        self.n = 0
        self.e4 = self.denied = self.nf = self.e5 = self.writes = 0
        self.sreq = self.sresp = self.mresp = self.slat = 0.0
        self.params = 0
        self.special = 0.0
        self.unseen = self.rare = self.anon = 0
        self.eps: set[int] = set()
        self.objs: set[str] = set()
        self.ids: list[str] = []
        self.ref: Any = None  # the caller's last endpoint and actor, for findings
        self.who: Any = None

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)

    def features(self, window_events: int) -> dict[str, float]:
        n = self.n or 1
        dur = max(self.last - self.start, 1.0)
        return {
            "events": min(1.0, n / window_events),
            "rate": min(1.0, _l2(n * 60.0 / dur) / 10.0) if n > 1 else 0.0,
            "endpoint_breadth": len(self.eps) / n,
            "endpoints": min(1.0, _l2(len(self.eps)) / 6.0),
            "object_breadth": min(1.0, len(self.objs) / n),
            "client_error_ratio": self.e4 / n,
            "denied_ratio": self.denied / n,
            "not_found_ratio": self.nf / n,
            "server_error_ratio": self.e5 / n,
            "write_ratio": self.writes / n,
            "request_size": min(1.0, self.sreq / n / 24.0),
            "response_size": min(1.0, self.sresp / n / 24.0),
            "response_size_max": min(1.0, self.mresp / 24.0),
            "latency": min(1.0, self.slat / n / 16.0),
            "params": min(1.0, _l2(self.params / n) / 5.0),
            "special_chars": min(1.0, self.special / n),
            "unseen_params": self.unseen / n,
            "rare_endpoints": self.rare / n,
            "anonymous": self.anon / n,
        }


class _Stat:
    """Exponentially weighted mean and variance of one feature."""

    __slots__ = ("n", "mean", "var")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.var = 0.0

    def add(self, x: float, alpha: float) -> None:
        self.n += 1
        a = max(alpha, 1.0 / self.n)
        d = x - self.mean
        self.mean += a * d
        self.var = (1.0 - a) * (self.var + a * d * d)

    def z(self, x: float, floor: float) -> float:
        return (x - self.mean) / max(math.sqrt(self.var), floor)

    def __getstate__(self) -> Any:
        return (self.n, self.mean, self.var)

    def __setstate__(self, s: Any) -> None:
        self.n, self.mean, self.var = s


class AnomalyModel:
    """Half-Space Trees over window features, with warm-up, percentile
    calibration and z-score explanations.

    Cost: ``score`` + ``learn`` about 30 µs per window with the defaults
    (10 trees of height 6); ``explain`` a few µs, only for flagged windows.

    >>> m = AnomalyModel(warmup=50, seed=1)
    >>> normal = {f: 0.1 for f in FEATURES}
    >>> for _ in range(300):
    ...     m.calibrate(m.score(normal)[0])
    ...     m.learn(normal)
    >>> odd = dict(normal, not_found_ratio=1.0, endpoint_breadth=1.0)
    >>> m.warm, m.score(odd)[1] > m.score(normal)[1]
    (True, True)
    >>> m.explain(odd)[0][0] in ("not_found_ratio", "endpoint_breadth")
    True
    """

    def __init__(
        self,
        *,
        n_trees: int = 10,
        height: int = 6,
        window_size: int = 250,
        warmup: int = 300,
        reservoir: int = 2000,
        alpha: float = 0.005,
        seed: int = 42,
    ) -> None:
        self.warmup = warmup
        self.alpha = alpha
        self.hst = anomaly.HalfSpaceTrees(n_trees=n_trees, height=height, window_size=window_size, seed=seed, limits=dict(LIMITS))
        self.learned = 0
        self._recent: deque[float] = deque(maxlen=reservoir)
        self._sorted: list[float] = []
        self._stats = {f: _Stat() for f in FEATURES}

    @property
    def warm(self) -> bool:
        return self.learned >= self.warmup and len(self._sorted) >= min(self.warmup, 100)

    def score(self, x: dict[str, float]) -> tuple[float, float]:
        """``(raw, percentile)``: the ensemble's raw score (higher is more
        anomalous) and its rank among recent benign windows (0..1; 0 while
        warming up)."""
        raw = float(self.hst.score_one(x))
        if not self.warm:
            return raw, 0.0
        s = self._sorted
        return raw, bisect.bisect_left(s, raw) / len(s)

    def calibrate(self, raw: float) -> None:
        """Add a benign window's raw score to the calibration reservoir."""
        rec = self._recent
        if len(rec) == rec.maxlen:
            old = rec[0]
            i = bisect.bisect_left(self._sorted, old)
            if i < len(self._sorted):
                del self._sorted[i]
        rec.append(raw)
        bisect.insort(self._sorted, raw)

    def learn(self, x: dict[str, float]) -> None:
        self.hst.learn_one(x)
        self.learned += 1
        a = self.alpha
        for f, st in self._stats.items():
            st.add(x[f], a)

    def explain(self, x: dict[str, float], top: int = 4, floor: float = 0.1) -> list[tuple[str, float, float, float]]:
        """The features furthest above or below their running mean:
        ``(feature, value, mean, z)`` sorted by ``|z|``. The spread is
        floored at ``floor`` (a tenth of the [0, 1] range): a feature that is
        almost always 0 must move by a meaningful amount, not by one event in
        five, to explain anything."""
        out = []
        for f, st in self._stats.items():
            v = x[f]
            out.append((f, round(v, 4), round(st.mean, 4), round(st.z(v, floor), 2)))
        out.sort(key=lambda t: -abs(t[3]))
        return out[:top]
