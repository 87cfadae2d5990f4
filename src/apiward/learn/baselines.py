"""Baselines: what normal looks like per endpoint, per parameter and per
actor, learned online from traffic.

The pipeline owns one :class:`Baselines`, calls :meth:`Baselines.learn_one`
after the detectors scored each call (score before learn) and hands the same
object to detectors as ``ctx.baselines``. Detectors only read it:

- :meth:`Baselines.param_profile` -> :class:`~apiward.learn.profiles.ValueProfile`
  (``profile.score(value) -> (0..1, reasons)``);
- :meth:`Baselines.score_params` scores every parameter of a call at once,
  including parameters the endpoint never had;
- :meth:`Baselines.endpoint_stats` -> :class:`EndpointStats` (calls, actors,
  status and size distributions, parameters);
- :meth:`Baselines.actor_stats` -> :class:`ActorStats` (rates, endpoints and
  objects touched, error ratio, transitions, working hours);
- :meth:`Baselines.host_stats` -> :class:`HostStats` (calls, endpoints and
  how often new endpoints still appear).

Bounded memory whatever the volume: endpoints and actors live in LRUs
(``max_endpoints``, ``max_actors``), parameters per endpoint are capped
(``max_params``), and every summary is a fixed-size sketch
(:mod:`apiward.learn.sketches`). Endpoint, host and actor counters see
every call. A parameter profile learns every value until it has
``sample_after``; then from one call in ``sample_every``, plus, on every
call, the values :meth:`Baselines.score_params` found not normal (a new
shape, character, kind or enum value gains support at once, so a change many
actors make becomes normal as fast as without sampling). When scoring ran,
sampled normal values count ``sample_every`` times, so counts and novelty
rates stay unbiased estimates; learn-only runs sample plainly. New parameter
names are always learned, so they never look unseen.

Cost per call (DemoBank simulator traffic, ``bench/baselines.py``): about
5 µs for :meth:`learn_one` and a few set lookups per parameter in
:meth:`score_params` when values are normal (each profile remembers values
it found normal, in memory only). Parameters are extracted once per call
(:func:`~apiward.learn.parameters.profiled_params`) and the endpoint key
once per context (:func:`endpoint_key`); detectors share both.

Adapting: profiles count the distinct actors behind each feature
(:mod:`apiward.learn.profiles`), so a change many actors make becomes normal
and a deviation by one actor does not.
"""

from __future__ import annotations

from typing import Any

from apiward.detect.facts import facts
from apiward.learn.parameters import Param, secret_name
from apiward.learn.profiles import ValueProfile, value_features
from apiward.learn.profiles import _cache as _features_cache  # read directly on the hot path
from apiward.learn.sketches import LRU, CappedCounter, Distinct, LogHistogram, Moments, key_hash
from apiward.model.call import ApiCall
from apiward.model.context import Context

__all__ = ["Baselines", "EndpointStats", "ActorStats", "HostStats", "ParamScore", "endpoint_key"]

#: ``(location, name, value, score, reasons)`` for one scored parameter.
ParamScore = tuple[str, str, str, float, list[str]]


class EndpointStats:
    """Per-endpoint counters: calls, distinct actors, status codes, response
    sizes and latency, and the profiles of its parameters."""

    __slots__ = (
        "calls",
        "actors",
        "status",
        "resp_size",
        "resp_sizes",
        "latency",
        "params",
        "params_overflow",
        "first_seen",
        "last_seen",
        "sampled",
        "hash",
        "name",
    )

    def __init__(self, name: str = "", key: str = "") -> None:
        self.name = name  # "GET /items/{id}", as actors count endpoints
        self.hash = key_hash(key) if key else 0  # of the endpoint key, for transitions
        self.calls = 0
        self.actors = Distinct()
        self.status: CappedCounter[int] = CappedCounter(32)
        self.resp_size = Moments()
        self.resp_sizes = LogHistogram()
        self.latency = Moments()
        self.params: dict[tuple[str, str], ValueProfile] = {}
        self.params_overflow = 0
        self.first_seen = 0.0
        self.last_seen = 0.0
        self.sampled = 0

    def error_ratio(self) -> float:
        if not self.status.total:
            return 0.0
        errs = sum(n for s, n in self.status.counts.items() if s >= 400)
        return errs / self.status.total

    def known_param(self, location: str, name: str) -> bool:
        return (location, name) in self.params

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "actors": len(self.actors),
            "status": dict(self.status.top(10)),
            "error_ratio": round(self.error_ratio(), 4),
            "response_size": self.resp_size.to_dict(),
            "latency_ms": self.latency.to_dict(),
            "params": sorted(f"{loc}:{name}" for loc, name in self.params),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }

    def __getstate__(self) -> tuple[Any, ...]:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.hash, self.name = 0, ""  # states saved before these existed
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


class HostStats:
    """Per-host (API) counters: calls, endpoints, and ``novelty``, a moving
    estimate (the mean at first, then over about ``1/alpha`` calls) of the chance that a call hits an
    endpoint not seen before. A settled API has novelty near 0; an API being
    rolled out or badly templated stays high, and detectors that flag
    unseen endpoints back off accordingly."""

    __slots__ = ("calls", "endpoints", "novelty", "alpha")

    def __init__(self, alpha: float = 1 / 500) -> None:
        self.calls = 0
        self.endpoints = 0
        self.novelty = 1.0
        self.alpha = alpha

    def observe(self, new_endpoint: bool) -> None:
        n = self.calls = self.calls + 1
        a = 1.0 / n
        if a < self.alpha:
            a = self.alpha  # a plain mean until 1/alpha calls
        if new_endpoint:
            self.novelty = self.novelty * (1.0 - a) + a
            self.endpoints += 1
        else:
            self.novelty *= 1.0 - a

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "endpoints": self.endpoints, "novelty": round(self.novelty, 5)}

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.calls, self.endpoints, self.novelty, self.alpha)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.calls, self.endpoints, self.novelty, self.alpha = s


class ActorStats:
    """Per-actor behaviour: volume and rate, errors, endpoints and objects
    touched, endpoint-to-endpoint transitions and hours of activity (UTC)."""

    __slots__ = (
        "calls",
        "errors_4xx",
        "errors_5xx",
        "first_seen",
        "last_seen",
        "endpoints",
        "objects",
        "transitions",
        "hours",
        "prev_endpoint",
        "minute",
        "minute_calls",
        "max_per_minute",
        "gap",
        "hash",
    )

    def __init__(self, key: str = "") -> None:
        self.hash = key_hash(key) if key else 0  # of the actor key, as profiles count actors
        self.calls = 0
        self.errors_4xx = 0
        self.errors_5xx = 0
        self.first_seen = 0.0
        self.last_seen = 0.0
        self.endpoints: CappedCounter[str] = CappedCounter(64)
        self.objects = Distinct()
        self.transitions: CappedCounter[int] = CappedCounter(128)  # prev << 32 | next endpoint hash
        self.hours = [0] * 24
        self.prev_endpoint = 0
        self.minute = -1
        self.minute_calls = 0
        self.max_per_minute = 0
        self.gap = Moments()

    def error_ratio(self) -> float:
        return (self.errors_4xx + self.errors_5xx) / self.calls if self.calls else 0.0

    def rate_per_minute(self) -> float:
        """Average calls per minute over the actor's active span."""
        span = self.last_seen - self.first_seen
        return self.calls / max(span / 60.0, 1.0)

    def transition_seen(self, a: str, b: str) -> bool:
        """Whether the actor called endpoint key ``b`` right after ``a``."""
        return (key_hash(a) << 32 | key_hash(b)) in self.transitions

    def usual_hour(self, ts: float, min_share: float = 0.01) -> bool:
        """Whether the actor was active at this UTC hour before."""
        total = sum(self.hours)
        return total == 0 or self.hours[int(ts // 3600) % 24] / total >= min_share

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "error_ratio": round(self.error_ratio(), 4),
            "errors_4xx": self.errors_4xx,
            "errors_5xx": self.errors_5xx,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "endpoints": len(self.endpoints) + (1 if self.endpoints.overflow else 0),
            "top_endpoints": dict(self.endpoints.top(5)),
            "objects": len(self.objects),
            "max_per_minute": self.max_per_minute,
            "rate_per_minute": round(self.rate_per_minute(), 3),
            "hours": list(self.hours),
        }

    def __getstate__(self) -> tuple[Any, ...]:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.hash = 0  # states saved before it existed
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)
        tr = self.transitions.counts
        if tr and type(next(iter(tr))) is tuple:  # saved when keys were pairs
            self.transitions.counts = {a << 32 | b: n for (a, b), n in tr.items()}


def endpoint_key(ctx: Context) -> str:
    """``ctx.endpoint.key`` (through the call's facts when it has them)."""
    f = ctx.facts
    return f.ep_key if f is not None else ctx.endpoint.key  # type: ignore[no-any-return]


class Baselines:
    """Online baselines of endpoints, parameters and actors (see module doc).

    >>> from apiward.testing import make_call
    >>> from apiward.model.context import Context, EndpointRef
    >>> b = Baselines()
    >>> ep = EndpointRef(host="api.example.com", method="GET", template="/items")
    >>> for i in range(50):
    ...     c = make_call("GET", f"/items?page={i % 7}", user=f"u{i % 9}")
    ...     b.learn_one(c, Context(endpoint=ep))
    >>> b.param_profile(ep.key, "query", "page").n
    50
    >>> b.endpoint_stats(ep.key).calls, b.actor_stats("user:u1").calls
    (50, 6)
    """

    def __init__(
        self,
        *,
        max_endpoints: int = 5000,
        max_actors: int = 20000,
        max_params: int = 64,
        min_actors: int = 3,
        sample_after: int = 1000,
        sample_every: int = 4,
        judge_after: int = 30,
        trust_after: int = 200,
    ) -> None:
        if min(max_endpoints, max_actors, max_params, min_actors, sample_after, sample_every, judge_after) < 1:
            raise ValueError("Baselines limits must be >= 1")
        self.judge_after = judge_after  # values a profile learns before it judges (the odd check of learn_one)
        self.trust_after = trust_after  # an endpoint's calls during which every unflagged actor counts as support
        self.max_params = max_params
        self.min_actors = min_actors
        self.sample_after = sample_after
        self.sample_every = sample_every
        self.endpoints: LRU[str, EndpointStats] = LRU(max_endpoints, spill=True)  # rarely called endpoints keep their baselines on disk
        self.actors: LRU[str, ActorStats] = LRU(max_actors, spill=True)
        self.hosts: LRU[str, HostStats] = LRU(1000)
        self.calls = 0

    # -- learning -----------------------------------------------------------------
    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        """Fold one call into endpoint, parameter and actor baselines."""
        self.calls += 1
        ref = ctx.endpoint
        fx = facts(call, ctx)
        ep_key = fx.ep_key
        ts = call.ts
        actor = call.actor
        actor_key = actor.key or actor.ip or "anonymous"

        # Actor first: its hash counts it on the endpoint and its profiles.
        actors = self.actors
        act = actors.get(actor_key)
        if act is None:
            act = ActorStats(actor_key)
            act.first_seen = ts
            actors.put(actor_key, act)
        else:
            actors.move_to_end(actor_key)
            if not act.hash:
                act.hash = key_hash(actor_key)
            if ts > act.last_seen:
                act.gap.add(ts - act.last_seen)
        ah = act.hash

        endpoints = self.endpoints
        ep = endpoints.get(ep_key)
        resp = call.response
        status = resp.status if resp is not None else 0
        if ep is None and fx.flagged:
            # An attack on an endpoint nobody served before teaches nothing
            # about the API: no endpoint, no host novelty (the next probe of
            # it is as unseen as this one). The actor's behaviour still counts.
            ep_name, eh = ref.name, key_hash(ep_key)
        else:
            ep = self._learn_endpoint(call, ref, fx, ep_key, ep, ah, ts)
            ep_name, eh = ep.name, ep.hash

        # Actor behaviour.
        act.calls += 1
        if ts > act.last_seen:
            act.last_seen = ts
        if status >= 400:
            if status >= 500:
                act.errors_5xx += 1
            else:
                act.errors_4xx += 1
        act.endpoints.add(ep_name)
        prev = act.prev_endpoint
        if prev:
            act.transitions.add(prev << 32 | eh)
        act.prev_endpoint = eh
        if ref.path_params:
            objects = act.objects
            for _, v in ref.path_params:
                objects.add(key_hash(v))
        minute = int(ts // 60)
        if minute == act.minute:
            m = act.minute_calls = act.minute_calls + 1
            if m > act.max_per_minute:
                act.max_per_minute = m
        else:
            act.minute = minute
            act.minute_calls = 1
            if act.max_per_minute < 1:
                act.max_per_minute = 1
        act.hours[minute // 60 % 24] += 1  # UTC hour

    def _learn_endpoint(self, call: ApiCall, ref: Any, fx: Any, ep_key: str, ep: EndpointStats | None, ah: int, ts: float) -> EndpointStats:
        """Endpoint, host and parameter baselines of one call."""
        endpoints = self.endpoints
        hosts = self.hosts
        host = hosts.get(ref.host)
        if host is None:
            host = HostStats()
            hosts.put(ref.host, host)
        else:
            hosts.move_to_end(ref.host)
        host.observe(ep is None)
        if ep is None:
            ep = EndpointStats(ref.name, ep_key)
            ep.first_seen = ts
            endpoints.put(ep_key, ep)
        else:
            endpoints.move_to_end(ep_key)
            if not ep.hash:
                ep.hash, ep.name = key_hash(ep_key), ref.name
        n = ep.calls = ep.calls + 1
        ep.last_seen = ts
        ep.actors.add(ah)
        resp = call.response
        if resp is not None:
            ep.status.add(resp.status)
            size = resp.body_size
            ep.resp_size.add(size)
            ep.resp_sizes.add(size)
        if call.duration_ms is not None:
            ep.latency.add(call.duration_ms)

        # Parameters: a profile learns every value until it has
        # ``sample_after``; then, on one call in ``sample_every``, each value
        # (counted ``sample_every`` times, so counts and novelty rates stay
        # unbiased estimates), and on every call the values that are not
        # normal (new shapes, characters, kinds or enum values gain support
        # at once: :meth:`_odd`, computed by scoring or here, so what is
        # learned never depends on which detectors ran). New parameter
        # names are always learned, so they never look unseen.
        #
        # What may teach (:mod:`apiward.learn.trust`): a call an attack
        # finding rests on teaches nothing; an actor that is not an
        # established, unflagged principal adds counts but no actor
        # support once the endpoint is past ``trust_after`` calls, so a
        # change becomes normal only when established principals make it.
        params = fx.params
        if params and not fx.flagged:
            every = self.sample_every
            sample = n % every == 0
            odd = fx.odd
            if odd is None:
                odd = fx.odd = self._odd(ep, params, self.judge_after)
            learn_all = {(o[0], o[1]) for o in odd} if odd else ()
            support = ah if (fx.trusted or n <= self.trust_after) else None
            profiles = ep.params
            mature = self.sample_after
            for loc, name, value in params:
                prof = profiles.get((loc, name))
                if prof is None:
                    if len(profiles) >= self.max_params:
                        ep.params_overflow += 1
                        continue
                    prof = profiles[(loc, name)] = ValueProfile(min_actors=self.min_actors)
                elif prof.n >= mature:
                    if (loc, name) in learn_all:
                        prof.learn(value, support)
                    elif sample:
                        prof.learn(value, support, every)
                    continue
                prof.learn(value, support)
            if sample:
                ep.sampled += 1
        return ep

    # -- queries ----------------------------------------------------------------------
    def endpoint_stats(self, endpoint_key: str) -> EndpointStats | None:
        """Stats of an endpoint by :attr:`EndpointRef.key`, None if unknown."""
        return self.endpoints.get(endpoint_key)

    def actor_stats(self, actor_key: str) -> ActorStats | None:
        """Stats of an actor by :attr:`Actor.key`, None if unknown."""
        return self.actors.get(actor_key)

    def host_stats(self, host: str) -> HostStats | None:
        """Stats of a host (API), None if unknown."""
        return self.hosts.get(host)

    def param_profile(self, endpoint_key: str, location: str, name: str) -> ValueProfile | None:
        """The profile of one parameter, None if the endpoint never had it."""
        ep = self.endpoints.get(endpoint_key)
        if ep is None:
            return None
        return ep.params.get((location, name))

    def score_params(
        self,
        call: ApiCall,
        ctx: Context,
        *,
        min_calls: int = 20,
        params: list[Param] | None = None,
        stats: EndpointStats | None = None,
    ) -> list[ParamScore]:
        """Score every parameter of ``call`` against its endpoint's profiles.

        Returns only deviating parameters (score > 0). A parameter the
        endpoint never had, once the endpoint has ``min_calls`` calls, scores
        by how established the endpoint is (reason ``unseen parameter``).
        Empty when the endpoint is unknown or young. Headers are not judged
        here (they vary with clients, not with the API). Parameters named
        as secrets (:func:`~apiward.learn.parameters.secret_name`) are
        judged as secrets (:meth:`ValueProfile.score`). Cost: a few set
        lookups per parameter whose value is normal in every respect
        (:meth:`ValueProfile.normal`), about 2 µs for the others.
        ``params`` and ``stats`` (the endpoint's, from
        :meth:`endpoint_stats`) save looking them up again."""
        ep = stats if stats is not None else self.endpoints.get(endpoint_key(ctx))
        if ep is None or ep.calls < min_calls:
            return []
        fx = facts(call, ctx)
        if params is None:
            params = fx.params
        out: list[ParamScore] = []
        odd = self._odd(ep, params, min_calls)
        if fx.odd is None and min_calls == self.judge_after:
            fx.odd = odd  # learn_one reuses it
        profiles = ep.params
        for loc, name, value, judge in odd:
            if not judge:
                continue
            prof = profiles.get((loc, name))
            if prof is None:
                if len(profiles) < self.max_params:
                    s = round(0.5 + 0.4 * ep.calls / (ep.calls + 100.0), 3)
                    out.append((loc, name, value, s, ["unseen parameter"]))
                continue
            s, reasons = prof.score(value, min_n=min_calls, secret=secret_name(name))
            if s > 0:
                out.append((loc, name, value, s, reasons))
        return out

    def _odd(self, ep: EndpointStats, params: list[Param], min_calls: int) -> list[tuple[str, str, str, bool]]:
        """``(location, name, value, judge)`` of the parameters a learner
        must learn on every call: unseen or young (fewer than
        ``sample_after`` values) profiles, and values a profile does not
        find normal in every respect; ``judge`` says whether scoring should
        look at it (unseen, or not normal once ``min_calls`` values were
        learned). Headers are not judged."""
        odd: list[tuple[str, str, str, bool]] = []
        profiles = ep.params
        cache = _features_cache
        mature = self.sample_after
        for loc, name, value in params:
            if loc == "header":
                continue
            prof = profiles.get((loc, name))
            if prof is None:
                odd.append((loc, name, value, True))
                continue
            young = prof.n < mature
            if young and prof.n < min_calls:
                odd.append((loc, name, value, False))
                continue
            if value in prof.ok:
                if young:
                    odd.append((loc, name, value, False))
                continue
            f = cache.get(value)
            if f is None:
                f = value_features(value)
            if f[5] in prof.values.full or prof.normal_memo(value, f, min_calls):
                if young:
                    odd.append((loc, name, value, False))
                continue
            odd.append((loc, name, value, True))
        return odd

    def __len__(self) -> int:
        return self.calls
