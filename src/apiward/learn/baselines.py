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
(:mod:`apiward.learn.sketches`). Cost per call: a few µs; once an endpoint
has ``sample_after`` calls its parameter profiles learn from one call in
``sample_every`` (new parameter names are always learned, so they never
look unseen), while endpoint and actor counters see every call.

Adapting: profiles count the distinct actors behind each feature
(:mod:`apiward.learn.profiles`), so a change many actors make becomes normal
and a deviation by one actor does not.
"""

from __future__ import annotations

from typing import Any

from apiward.learn.parameters import Param, call_params
from apiward.learn.profiles import ValueProfile
from apiward.learn.sketches import LRU, CappedCounter, Distinct, LogHistogram, Welford, key_hash
from apiward.model.call import ApiCall
from apiward.model.context import Context

__all__ = ["Baselines", "EndpointStats", "ActorStats", "HostStats", "ParamScore"]

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
    )

    def __init__(self) -> None:
        self.calls = 0
        self.actors = Distinct()
        self.status: CappedCounter[int] = CappedCounter(32)
        self.resp_size = Welford()
        self.resp_sizes = LogHistogram()
        self.latency = Welford()
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
        self.calls += 1
        a = max(self.alpha, 1.0 / self.calls)  # a plain mean until 1/alpha calls
        self.novelty = self.novelty * (1.0 - a) + (a if new_endpoint else 0.0)
        if new_endpoint:
            self.endpoints += 1

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
    )

    def __init__(self) -> None:
        self.calls = 0
        self.errors_4xx = 0
        self.errors_5xx = 0
        self.first_seen = 0.0
        self.last_seen = 0.0
        self.endpoints: CappedCounter[str] = CappedCounter(64)
        self.objects = Distinct()
        self.transitions: CappedCounter[tuple[int, int]] = CappedCounter(128)
        self.hours = [0] * 24
        self.prev_endpoint = 0
        self.minute = -1
        self.minute_calls = 0
        self.max_per_minute = 0
        self.gap = Welford()

    def error_ratio(self) -> float:
        return (self.errors_4xx + self.errors_5xx) / self.calls if self.calls else 0.0

    def rate_per_minute(self) -> float:
        """Average calls per minute over the actor's active span."""
        span = self.last_seen - self.first_seen
        return self.calls / max(span / 60.0, 1.0)

    def transition_seen(self, a: str, b: str) -> bool:
        return (key_hash(a), key_hash(b)) in self.transitions

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
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


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
    ) -> None:
        if min(max_endpoints, max_actors, max_params, min_actors, sample_after, sample_every) < 1:
            raise ValueError("Baselines limits must be >= 1")
        self.max_params = max_params
        self.min_actors = min_actors
        self.sample_after = sample_after
        self.sample_every = sample_every
        self.endpoints: LRU[str, EndpointStats] = LRU(max_endpoints)
        self.actors: LRU[str, ActorStats] = LRU(max_actors)
        self.hosts: LRU[str, HostStats] = LRU(1000)
        self.calls = 0

    # -- learning -----------------------------------------------------------------
    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        """Fold one call into endpoint, parameter and actor baselines."""
        self.calls += 1
        ref = ctx.endpoint
        ep_key = ref.key
        ts = call.ts
        actor_key = call.actor.key or call.actor.ip or "anonymous"
        ah = key_hash(actor_key)
        ep = self.endpoints.touch(ep_key)
        host = self.hosts.touch(ref.host)
        if host is None:
            host = HostStats()
            self.hosts.put(ref.host, host)
        host.observe(ep is None)
        if ep is None:
            ep = EndpointStats()
            ep.first_seen = ts
            self.endpoints.put(ep_key, ep)
        ep.calls += 1
        ep.last_seen = ts
        ep.actors.add(ah)
        resp = call.response
        status = resp.status if resp is not None else 0
        if resp is not None:
            ep.status.add(status)
            ep.resp_size.add(resp.body_size)
            ep.resp_sizes.add(resp.body_size)
        if call.duration_ms is not None:
            ep.latency.add(call.duration_ms)

        # Parameters: every call while young, then a deterministic sample.
        params = call_params(call, ref.path_params)
        if params:
            sample = ep.calls <= self.sample_after or ep.calls % self.sample_every == 0
            profiles = ep.params
            for loc, name, value in params:
                if loc == "header":
                    continue
                prof = profiles.get((loc, name))
                if prof is None:
                    if len(profiles) >= self.max_params:
                        ep.params_overflow += 1
                        continue
                    prof = profiles[(loc, name)] = ValueProfile(min_actors=self.min_actors)
                elif not sample:
                    continue
                prof.learn(value, ah)
            if sample:
                ep.sampled += 1

        # Actor behaviour.
        act = self.actors.touch(actor_key)
        if act is None:
            act = ActorStats()
            act.first_seen = ts
            self.actors.put(actor_key, act)
        elif ts > act.last_seen:
            act.gap.add(ts - act.last_seen)
        act.calls += 1
        act.last_seen = max(act.last_seen, ts)
        if status >= 500:
            act.errors_5xx += 1
        elif status >= 400:
            act.errors_4xx += 1
        act.endpoints.add(ref.name)
        eh = key_hash(ep_key)
        if act.prev_endpoint:
            act.transitions.add((act.prev_endpoint, eh))
        act.prev_endpoint = eh
        for _, v in ref.path_params:
            act.objects.add(key_hash(v))
        act.hours[int(ts // 3600) % 24] += 1
        minute = int(ts // 60)
        if minute == act.minute:
            act.minute_calls += 1
        else:
            act.minute = minute
            act.minute_calls = 1
        if act.minute_calls > act.max_per_minute:
            act.max_per_minute = act.minute_calls

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
        self, call: ApiCall, ctx: Context, *, min_calls: int = 20, params: list[Param] | None = None
    ) -> list[ParamScore]:
        """Score every parameter of ``call`` against its endpoint's profiles.

        Returns only deviating parameters (score > 0). A parameter the
        endpoint never had, once the endpoint has ``min_calls`` calls, scores
        by how established the endpoint is (reason ``unseen parameter``).
        Empty when the endpoint is unknown or young. Headers are not judged
        here (they vary with clients, not with the API)."""
        ep = self.endpoints.get(ctx.endpoint.key)
        if ep is None or ep.calls < min_calls:
            return []
        if params is None:
            params = call_params(call, ctx.endpoint.path_params)
        out: list[ParamScore] = []
        profiles = ep.params
        for loc, name, value in params:
            if loc == "header":
                continue
            prof = profiles.get((loc, name))
            if prof is None:
                if len(profiles) < self.max_params:
                    s = round(0.5 + 0.4 * ep.calls / (ep.calls + 100.0), 3)
                    out.append((loc, name, value, s, ["unseen parameter"]))
                continue
            s, reasons = prof.score(value, min_n=min_calls)
            if s > 0:
                out.append((loc, name, value, s, reasons))
        return out

    def __len__(self) -> int:
        return self.calls
