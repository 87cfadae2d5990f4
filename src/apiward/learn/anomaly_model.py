"""The behaviour anomaly model: per-actor windows of traffic, scored by an
online Half-Space Trees ensemble (:mod:`apiward.learn.hst`), calibrated to percentiles and
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
  standard deviations;
- :class:`AnswerRates`: per endpoint, its usual 4xx/401-403/404-405/5xx
  rates, so the window's error features count only errors *beyond* what
  the endpoints called usually answer;
- :func:`peer_key`, :class:`FeatureStats` and :class:`ActorProfile`: the
  references a window is judged against besides all traffic: its peer
  group (no credentials, or the token's role-like claims) and the actor's
  own past windows.

Everything pickles and is bounded: the trees are fixed-size, the reservoir
holds ``reservoir`` scores, running statistics are one mean/variance pair
per feature (per group), answer rates and actor profiles live in capped
maps.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import deque
from typing import Any

from apiward.learn.hst import HalfSpaceTrees

__all__ = ["COUNT_FEATURES", "FEATURES", "RISK_FEATURES", "AnswerRates", "ActorProfile", "ActorWindow", "AnomalyModel", "FeatureStats", "peer_key", "special_ratio"]

FEATURES: tuple[str, ...] = (
    "events",  # window events / window_events
    "rate",  # log2(1 + calls per minute) / 10
    "endpoint_breadth",  # distinct endpoints / events
    "endpoints",  # log2(1 + distinct endpoints) / 6
    "object_breadth",  # distinct path-parameter values / events
    # error shares *beyond what the endpoints called usually answer*: a
    # login form's wrong passwords or a search's misses are the endpoint's
    # norm, the same answers on endpoints that rarely give them are not
    "client_error_ratio",  # excess 4xx share
    "denied_ratio",  # excess 401/403 share
    "not_found_ratio",  # excess 404/405 share
    "server_error_ratio",  # excess 5xx share
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

#: Features whose *rise* can explain a finding. All features shape the
#: score; these are the ones a security analyst reads as risk. A full
#: window (``events``), slow answers (``latency``), calls without
#: credentials (``anonymous``) or any feature *falling* below its mean
#: describe a different client, not an attack, and never explain one alone.
RISK_FEATURES: tuple[str, ...] = (
    "rate", "endpoint_breadth", "endpoints", "object_breadth", "client_error_ratio", "denied_ratio", "not_found_ratio",
    "server_error_ratio", "request_size", "response_size", "response_size_max", "params", "special_chars",
    "unseen_params", "rare_endpoints",
)
#: Risk features that are shares of the window's calls: one of them
#: explains a finding only when enough calls (``min_count``) stand behind it,
#: so two wrong passwords in a window of five calls are not "40% denied".
COUNT_FEATURES: frozenset[str] = frozenset(
    {"client_error_ratio", "denied_ratio", "not_found_ratio", "server_error_ratio", "unseen_params", "rare_endpoints"}
)
_FI: dict[str, int] = {f: i for i, f in enumerate(FEATURES)}
_RI: dict[str, int] = {f: i for i, f in enumerate(RISK_FEATURES)}

# JWT claims (kept by the actor resolver) that name what a principal may do.
_ROLE_CLAIMS = ("role", "roles", "groups", "scope", "scp", "permissions", "is_admin")

_ALNUM = re.compile(r"[A-Za-z0-9_\-.~ ]+")
_LN2 = math.log(2.0)


def _l2(x: float) -> float:
    return math.log(1.0 + x) / _LN2


def peer_key(actor: Any) -> str:
    """The peer group an actor is compared with: callers without
    credentials form one group (they sign up, log in, browse the public
    catalogue), authenticated callers are grouped by the role-like claims
    of their token (``role``, ``roles``, ``groups``, ``scope``...), so an
    administrator is judged against administrators, not against customers.

    >>> from apiward.model.call import Actor
    >>> peer_key(Actor(kind="ip")), peer_key(Actor(kind="user", jwt_claims={"role": "admin"}))
    ('anon', 'auth|role=admin')
    >>> peer_key(Actor(kind="user", jwt_claims={"scope": "write read"}))
    'auth|scope=read write'
    """
    if actor is None:
        return "anon"
    kind = actor.kind
    if kind in ("ip", "anonymous", ""):
        return "anon"
    claims = actor.jwt_claims
    if claims:
        for c in _ROLE_CLAIMS:
            v = claims.get(c)
            if v is None or v == "":
                continue
            if isinstance(v, str):
                v = " ".join(sorted(v.split())) if " " in v else v
            elif isinstance(v, (list, tuple)):
                v = ",".join(sorted(str(i) for i in v[:8]))
            return f"auth|{c}={str(v)[:48]}"
    return "auth"


def special_ratio(text: str) -> float:
    """Share of characters outside ``[A-Za-z0-9_-.~ ]`` (quotes, angle
    brackets, semicolons, parentheses: injection and traversal syntax)."""
    if not text:
        return 0.0
    return len(_ALNUM.sub("", text)) / len(text)


class ActorWindow:
    """One actor's current window of events: sums and small sets."""

    __slots__ = ("start", "last", "n", "e4", "denied", "nf", "e5", "writes", "sreq", "sresp", "mresp", "slat", "params",
                 "special", "unseen", "rare", "anon", "eps", "objs", "ids", "ref", "who", "x4", "xden", "xnf", "x5")

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
        # expected counts of 4xx, 401/403, 404/405 and 5xx answers, from the
        # usual answer rates of the endpoints called
        self.x4 = self.xden = self.xnf = self.x5 = 0.0

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        self.x4 = self.xden = self.xnf = self.x5 = 0.0  # absent from older states
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)

    def features(self, window_events: int) -> dict[str, float]:
        # min/max spelled as conditionals (the same values, NaN included:
        # min(1.0, nan) and ``nan if nan < 1.0 else 1.0`` are both 1.0)
        n = self.n or 1
        d = self.last - self.start
        dur = 1.0 if 1.0 > d else d  # max(d, 1.0)
        log = math.log
        neps = len(self.eps)
        nobj = len(self.objs) / n
        v = n / window_events
        events = v if v < 1.0 else 1.0
        if n > 1:
            v = log(1.0 + n * 60.0 / dur) / _LN2 / 10.0
            rate = v if v < 1.0 else 1.0
        else:
            rate = 0.0
        v = log(1.0 + neps) / _LN2 / 6.0
        endpoints = v if v < 1.0 else 1.0
        e4 = self.e4 - self.x4
        den = self.denied - self.xden
        nf = self.nf - self.xnf
        e5 = self.e5 - self.x5
        sreq = self.sreq / n / 24.0
        sresp = self.sresp / n / 24.0
        mresp = self.mresp / 24.0
        slat = self.slat / n / 16.0
        v = log(1.0 + self.params / n) / _LN2 / 5.0
        params = v if v < 1.0 else 1.0
        sp = self.special / n
        return {
            "events": events,
            "rate": rate,
            "endpoint_breadth": neps / n,
            "endpoints": endpoints,
            "object_breadth": nobj if nobj < 1.0 else 1.0,
            "client_error_ratio": (e4 if e4 > 0.0 else 0.0) / n,
            "denied_ratio": (den if den > 0.0 else 0.0) / n,
            "not_found_ratio": (nf if nf > 0.0 else 0.0) / n,
            "server_error_ratio": (e5 if e5 > 0.0 else 0.0) / n,
            "write_ratio": self.writes / n,
            "request_size": sreq if sreq < 1.0 else 1.0,
            "response_size": sresp if sresp < 1.0 else 1.0,
            "response_size_max": mresp if mresp < 1.0 else 1.0,
            "latency": slat if slat < 1.0 else 1.0,
            "params": params,
            "special_chars": sp if sp < 1.0 else 1.0,
            "unseen_params": self.unseen / n,
            "rare_endpoints": self.rare / n,
            "anonymous": self.anon / n,
        }


class AnswerRates:
    """Per endpoint, how often it answers 4xx, 401/403, 404/405 and 5xx:
    decayed counts (about the last ``horizon`` calls of each endpoint),
    shrunk towards the rates of all traffic while an endpoint has few calls,
    so a path nobody called before expects what an average call gets.

    ``expect(h)`` returns the four expected rates for endpoint hash ``h``;
    ``add(h, status)`` folds one answer in. Bounded to ``cap`` endpoints
    (the oldest is forgotten first); about 1 µs per call.

    >>> r = AnswerRates()
    >>> for i in range(200):
    ...     r.add(1, 401 if i % 5 == 0 else 200)
    ...     r.add(2, 200)
    >>> [round(v, 2) for v in r.expect(1)][:2], r.expect(2)[1] < 0.01
    ([0.2, 0.2], True)
    """

    __slots__ = ("cap", "prior", "decay", "rates", "total")

    def __init__(self, *, cap: int = 20_000, prior: float = 5.0, horizon: float = 2000.0) -> None:
        self.cap = cap
        self.prior = prior
        self.decay = 1.0 - 1.0 / horizon
        self.rates: dict[int, list[float]] = {}
        self.total = [1.0, 0.0, 0.0, 0.0, 0.0]  # all traffic: calls, 4xx, denied, not found, 5xx

    def expect(self, h: int) -> tuple[float, float, float, float]:
        g = self.total
        k = self.prior / g[0]
        r = self.rates.get(h)
        if r is None:
            return g[1] / g[0], g[2] / g[0], g[3] / g[0], g[4] / g[0]
        c = r[0] + self.prior
        return (r[1] + k * g[1]) / c, (r[2] + k * g[2]) / c, (r[3] + k * g[3]) / c, (r[4] + k * g[4]) / c

    def add(self, h: int, status: int) -> None:
        r = self.rates.get(h)
        if r is None:
            rates = self.rates
            if len(rates) >= self.cap:
                del rates[next(iter(rates))]
            r = rates[h] = [0.0, 0.0, 0.0, 0.0, 0.0]
        d = self.decay
        g = self.total
        # the endpoint's counts, then all traffic's (unrolled: hot path)
        r[0] = r[0] * d + 1.0
        r[1] *= d
        r[2] *= d
        r[3] *= d
        r[4] *= d
        g[0] = g[0] * d + 1.0
        g[1] *= d
        g[2] *= d
        g[3] *= d
        g[4] *= d
        if status >= 400:
            if status >= 500:
                r[4] += 1.0
                g[4] += 1.0
            else:
                r[1] += 1.0
                g[1] += 1.0
                if status == 401 or status == 403:
                    r[2] += 1.0
                    g[2] += 1.0
                elif status == 404 or status == 405:
                    r[3] += 1.0
                    g[3] += 1.0

    def __getstate__(self) -> Any:
        return (self.cap, self.prior, self.decay, self.rates, self.total)

    def __setstate__(self, s: Any) -> None:
        self.cap, self.prior, self.decay, self.rates, self.total = s


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


def _learn_stats(pairs: Any, x: dict[str, float], alpha: float) -> None:
    """``_Stat.add`` over ``(feature, stat)`` pairs, inlined (the same
    arithmetic, without a method call per feature)."""
    for f, st in pairs:
        n = st.n + 1
        st.n = n
        a = 1.0 / n
        if a < alpha:
            a = alpha
        d = x[f] - st.mean
        st.mean += a * d
        st.var = (1.0 - a) * (st.var + a * d * d)


class FeatureStats:
    """Running mean and variance of every feature over the windows of one
    group (all traffic, or one peer group); ``n`` windows seen."""

    __slots__ = ("n", "stats")

    def __init__(self) -> None:
        self.n = 0
        self.stats = [_Stat() for _ in FEATURES]

    def learn(self, x: dict[str, float], alpha: float) -> None:
        self.n += 1
        _learn_stats(zip(FEATURES, self.stats), x, alpha)

    def mean(self, f: str) -> float:
        return self.stats[_FI[f]].mean

    def z(self, f: str, v: float, floor: float) -> float:
        return self.stats[_FI[f]].z(v, floor)

    def __getstate__(self) -> Any:
        return (self.n, self.stats)

    def __setstate__(self, s: Any) -> None:
        self.n, self.stats = s


class ActorProfile:
    """What one actor has done before: how many of its windows were
    learned and, per risk feature, the highest value any of them had. A
    value above that (plus a margin) is *new for the actor*; an admin who
    always pages through the user list has done it before.

    About 200 bytes per actor (a float array over :data:`RISK_FEATURES`)."""

    __slots__ = ("n", "hi")

    def __init__(self) -> None:
        self.n = 0
        self.hi = [0.0] * len(RISK_FEATURES)

    def learn(self, x: dict[str, float]) -> None:
        self.n += 1
        hi = self.hi
        for j, f in enumerate(RISK_FEATURES):
            v = x[f]
            if v > hi[j]:
                hi[j] = v

    def highest(self, f: str) -> float:
        return self.hi[_RI[f]]

    def __getstate__(self) -> Any:
        return (self.n, self.hi)

    def __setstate__(self, s: Any) -> None:
        self.n, self.hi = s


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
        self.hst = HalfSpaceTrees(tuple(FEATURES), n_trees=n_trees, height=height, window_size=window_size, seed=seed, limits=dict(LIMITS))
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

    def learn(self, x: dict[str, float], *, trees: bool = True) -> None:
        """Learn a window: the trees (unless :meth:`score_learn` already
        did) and the running statistics."""
        if trees:
            self.hst.learn_one(x)
        self.learned += 1
        _learn_stats(self._stats.items(), x, self.alpha)

    def score_learn(self, x: dict[str, float]) -> tuple[float, float]:
        """:meth:`score` and the trees' half of :meth:`learn` in one walk
        down each tree; finish with ``learn(x, trees=False)``."""
        raw = self.hst.score_learn(x)
        if not self.warm:
            return raw, 0.0
        srt = self._sorted
        return raw, bisect.bisect_left(srt, raw) / len(srt)

    def z(self, f: str, v: float, floor: float = 0.1) -> float:
        """``v``'s distance from feature ``f``'s running mean over all
        windows, in standard deviations (spread floored at ``floor``)."""
        return self._stats[f].z(v, floor)

    def mean(self, f: str) -> float:
        return self._stats[f].mean

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
