"""``abuse.resource``: an actor consumes far more of the API than it and its
peers normally do: request rates, payload sizes, response sizes, page sizes.

Looks at:

- **rate**: the actor's calls per ``bucket_s`` (default one minute of
  virtual time from ``call.ts``). When a bucket closes its count folds into
  the actor's own mean (EWMA over its active buckets), its own peak (the
  busiest unflagged bucket) and a log-scale histogram of all actors'
  bucket counts. The current bucket is flagged when it reaches
  ``max(min_rate, factor x own mean, 1.5 x own peak, factor x p99 of all
  actors)``, the bar fixed when the bucket opens: a client replaying the
  workload apiward learned from is not news;
- **request and response body sizes** per endpoint: a robust running
  centre and spread of ``log2(size)`` (EWMA of the mean and of the mean
  absolute deviation, updates winsorised so one outlier cannot drag them).
  A size is flagged when the endpoint has ``min_samples`` calls, the size
  is at least ``min_request_bytes``/``min_response_bytes``, and it lies
  ``k`` spreads and ``ratio`` times above the centre;
- **page size**: a ``limit``-like query value of at least ``huge_page``.

Adapt: norms are per endpoint and per actor, so an upload endpoint whose
normal payloads are large keeps them normal, and a busy integration whose
rate is steady is compared with itself.

Cost per event: one LRU hit per actor and per endpoint, two ``log2`` and a
few float operations; the p99 is recomputed once per closed bucket from 40
histogram cells.

False-positive assumptions: batch jobs that burst only at night still burst
above their own mean (they are reported once per bucket, as what they are);
endpoints with fewer than ``min_samples`` calls are not judged on sizes.
"""

from __future__ import annotations

import math
from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.objects import LRU, Ring
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["ResourceAbuse", "PAGE_SIZE_PARAMS"]

PAGE_SIZE_PARAMS = frozenset(
    {"limit", "per_page", "perpage", "page_size", "pagesize", "size", "count", "max", "top", "$top", "first", "rows",
     "page[size]", "max_results", "maxresults", "results", "take", "batch_size", "batchsize", "num"}
)
_CELLS = 48  # histogram cells of log2(count) in half-octave steps


class _Rate:
    __slots__ = ("bucket", "count", "bar", "own", "buckets", "ring", "pending", "flagged", "peak")

    def __init__(self) -> None:
        self.bucket = -1
        self.count = 0
        self.bar = 0.0
        self.own = 0.0  # EWMA of closed bucket counts
        self.buckets = 0
        self.ring: Ring = Ring(16)
        self.pending: list[str] = []
        self.flagged = False
        self.peak = 0  # highest count of a closed bucket nothing flagged: what this client does

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        self.peak = 0
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


class _Robust:
    """Running centre and spread of log2 sizes (EWMA mean and MAD)."""

    __slots__ = ("n", "mean", "dev")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.dev = 0.0

    def add(self, x: float, alpha: float, k: float) -> None:
        self.n += 1
        if self.n == 1:
            self.mean = x
            return
        a = max(alpha, 1.0 / self.n)
        lim = k * max(self.dev, 0.25)
        d = x - self.mean
        if d > lim:
            d = lim
        elif d < -lim:
            d = -lim
        self.mean += a * d
        self.dev += a * (abs(d) - self.dev)

    def __getstate__(self) -> Any:
        return (self.n, self.mean, self.dev)

    def __setstate__(self, s: Any) -> None:
        self.n, self.mean, self.dev = s


def _robust_add(st: _Robust, x: float, alpha: float, k: float) -> None:
    """:meth:`_Robust.add` without the method call (the same arithmetic)."""
    n = st.n = st.n + 1
    if n == 1:
        st.mean = x
        return
    a = 1.0 / n
    if a < alpha:
        a = alpha
    dev = st.dev
    lim = k * (dev if dev > 0.25 else 0.25)
    d = x - st.mean
    if d > lim:
        d = lim
    elif d < -lim:
        d = -lim
    st.mean += a * d
    st.dev = dev + a * ((d if d >= 0.0 else -d) - dev)


class _Endpoint:
    __slots__ = ("req", "resp")

    def __init__(self) -> None:
        self.req = _Robust()
        self.resp = _Robust()

    def __getstate__(self) -> Any:
        return (self.req, self.resp)

    def __setstate__(self, s: Any) -> None:
        self.req, self.resp = s


class ResourceAbuse(DetectorBase):
    """Rates and sizes far above the actor's own history and the endpoint's
    norm; oversized pages."""

    id = "abuse.resource"
    title = "Unrestricted resource consumption"
    severity = "medium"
    owasp = "API4:2023"
    attack = "T1499"
    tactic = "impact"
    cwe = "CWE-770"
    config_attrs = ("log_ratio",)  # derived from constructor arguments: rebuilt from the configuration
    # the endpoint state score_one found for the call it scored (defaults
    # for states saved before these existed)
    _last_key = ""
    _last_ep: _Endpoint | None = None

    def __init__(
        self,
        *,
        bucket_s: float = 60.0,
        min_rate: int = 120,
        factor: float = 4.0,
        min_own_buckets: int = 5,
        min_samples: int = 50,
        k: float = 6.0,
        ratio: float = 10.0,
        alpha: float = 0.02,
        min_request_bytes: int = 256 * 1024,
        min_response_bytes: int = 512 * 1024,
        huge_page: int = 5000,
        flush_every: int = 16,
        max_actors: int = 50_000,
        max_endpoints: int = 10_000,
    ) -> None:
        self.bucket_s = bucket_s
        self.min_rate = min_rate
        self.factor = factor
        self.min_own_buckets = min_own_buckets
        self.min_samples = min_samples
        self.k = k
        self.log_ratio = math.log2(ratio)
        self.alpha = alpha
        self.min_request_bytes = min_request_bytes
        self.min_response_bytes = min_response_bytes
        self.huge_page = huge_page
        self.flush_every = flush_every
        self._rates: LRU[str, _Rate] = LRU(max_actors)
        self._eps: LRU[str, _Endpoint] = LRU(max_endpoints)
        self._hist = [0] * _CELLS
        self._p99 = 0.0
        self._last = ""
        self._last_key = ""
        self._last_ep: _Endpoint | None = None

    # -- protocol --------------------------------------------------------------

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        self._last = call.id
        out: list[Finding] = []
        self._rate(call, ctx, True, out)
        req = call.request
        if req.query:
            self._page(call, ctx, out)
        # the endpoint's state, found once for score and learn
        ek = self._last_key = ctx.endpoint.key
        ep = self._last_ep = self._eps.get(ek)
        if ep is not None:
            resp = call.response
            if req.body_size >= self.min_request_bytes or (resp is not None and resp.body_size >= self.min_response_bytes):
                self._sizes(call, ctx, ep, out)
        return out

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        eps = self._eps
        if self._last != call.id:  # learn-only mode: keep rates current
            self._rate(call, ctx, False, [])
            ek = ctx.endpoint.key
            ep = eps.get(ek)
        else:
            ek = self._last_key
            ep = self._last_ep
        if ep is None:
            ep = eps.get_or(ek, _Endpoint)
        else:
            eps.move_to_end(ek)
        n = call.request.body_size
        if n:
            _robust_add(ep.req, math.log2(n + 1), self.alpha, self.k)
        resp = call.response
        if resp is not None and 200 <= resp.status < 300:
            _robust_add(ep.resp, math.log2(resp.body_size + 1), self.alpha, self.k)

    # -- rate ------------------------------------------------------------------

    def _p99_now(self) -> float:
        h = self._hist
        total = sum(h)
        if total < 20:
            return 0.0
        rank = total * 0.99
        run = 0
        for i, c in enumerate(h):
            run += c
            if run >= rank:
                return 2.0 ** ((i + 1) / 2.0)
        return 2.0 ** (_CELLS / 2.0)

    def _rate(self, call: ApiCall, ctx: Context, score: bool, out: list[Finding]) -> None:
        actor = call.actor
        key = actor.key or actor.ip or call.src.ip
        if not key:
            return
        rates = self._rates
        r = rates.get(key)
        if r is None:
            r = rates.get_or(key, _Rate)
        else:
            rates.move_to_end(key)
        b = int(call.ts // self.bucket_s)
        if b != r.bucket:
            if r.bucket >= 0 and r.count:
                c = r.count
                r.buckets += 1
                r.own = c if r.buckets == 1 else r.own + (c - r.own) * 0.1
                if not r.flagged and c > r.peak:
                    r.peak = c
                cell = min(_CELLS - 1, int(2.0 * math.log2(c)))
                self._hist[cell] += 1
                self._p99 = self._p99_now()
            r.bucket = b
            r.count = 0
            r.flagged = False
            r.pending = []
            bar = float(self.min_rate)
            if r.buckets >= self.min_own_buckets:
                # its own habit: the mean, and the busiest minute it had unflagged
                bar = max(bar, self.factor * r.own, 1.5 * r.peak)
            r.bar = max(bar, self.factor * self._p99)
        r.count += 1
        if not score:
            return
        r.ring.push(call.id)
        if r.count < r.bar:
            return
        if not r.flagged:
            r.flagged = True
            ids = list(r.ring)
        else:
            r.pending.append(call.id)
            if len(r.pending) < self.flush_every:
                return
            ids = r.pending
            r.pending = []
        out.append(
            self.finding(
                call, ctx,
                summary=f"{actor.display} sent {r.count} calls within {int(self.bucket_s)} s (bar {r.bar:.0f}: own mean {r.own:.1f}, "
                        f"all-actor p99 {self._p99:.0f})",
                evidence={"signal": "rate", "calls_in_bucket": r.count, "bucket_s": self.bucket_s, "bar": round(r.bar, 1),
                          "own_mean": round(r.own, 2), "own_buckets": r.buckets, "all_actor_p99": round(self._p99, 1)},
                confidence=0.7 if r.count < 2 * r.bar else 0.85,
                severity="medium" if r.count < 3 * r.bar else "high",
                key=f"{self.id}|{key}|rate",
                event_ids=ids,
                title="Request rate far above normal",
            )
        )

    # -- sizes -----------------------------------------------------------------

    def _over(self, st: _Robust, size: int, floor: int) -> float:
        """How many doublings ``size`` lies above the endpoint's centre, when
        flagged; 0 otherwise."""
        if st.n < self.min_samples or size < floor:
            return 0.0
        x = math.log2(size + 1)
        if x - st.mean >= max(self.k * max(st.dev, 0.25), self.log_ratio):
            return x - st.mean
        return 0.0

    def _sizes(self, call: ApiCall, ctx: Context, ep: _Endpoint, out: list[Finding]) -> None:
        req = call.request
        size = req.body_size
        if size >= self.min_request_bytes:
            d = self._over(ep.req, size, self.min_request_bytes)
            if d:
                out.append(self._size_finding(call, ctx, "request", size, ep.req, d))
        resp = call.response
        if resp is not None and resp.body_size >= self.min_response_bytes and 200 <= resp.status < 300:
            d = self._over(ep.resp, resp.body_size, self.min_response_bytes)
            if d:
                out.append(self._size_finding(call, ctx, "response", resp.body_size, ep.resp, d))

    def _size_finding(self, call: ApiCall, ctx: Context, which: str, size: int, st: _Robust, d: float) -> Finding:
        typical = int(2.0 ** st.mean)
        return self.finding(
            call, ctx,
            summary=f"{which} body of {size:,} bytes on {ctx.endpoint.name}, {2.0 ** d:.0f}x the endpoint's typical {typical:,}",
            evidence={"signal": f"{which}_size", "bytes": size, "typical_bytes": typical, "times_typical": round(2.0 ** d, 1),
                      "endpoint_samples": st.n},
            confidence=0.7,
            severity="medium" if d < 8 else "high",
            key=f"{self.id}|{call.actor.key}|{ctx.endpoint.key}|{which}_size",
            title=f"Oversized {which}",
        )

    def _page(self, call: ApiCall, ctx: Context, out: list[Finding]) -> None:
        for name, value in call.request.query:
            if name.lower() in PAGE_SIZE_PARAMS and value.isdigit() and len(value) <= 12:
                n = int(value)
                if n >= self.huge_page:
                    st = call.status
                    out.append(
                        self.finding(
                            call, ctx,
                            summary=f"page size {name}={n} on {ctx.endpoint.name}, answered {st}",
                            evidence={"signal": "page_size", "parameter": name, "value": n, "status": st,
                                      "response_bytes": call.response.body_size if call.response is not None else 0},
                            confidence=0.8 if 200 <= st < 300 else 0.6,
                            severity="medium" if 200 <= st < 300 else "low",
                            key=f"{self.id}|{call.actor.key}|{ctx.endpoint.key}|page",
                            title="Oversized page requested",
                        )
                    )
                    return
