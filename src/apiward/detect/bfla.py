"""``bfla.admin_function``: a regular principal successfully calls a function
that only privileged principals use (broken function level authorization).

Looks at: per function (endpoint = method + template), which principals got a
2xx, which were denied (401/403), and the roles of the callers from JWT claims
(``role``, ``roles``, ``scope``, ``groups``, ``is_admin``; see
:func:`apiward.detect.objects.roles`). That is a learned role-to-function
matrix plus, when tokens carry no roles, a learned principal-to-function one.
A 2xx by a principal not yet seen on the function is flagged when

- the function has only been used by admin-role principals and the caller's
  roles are not admin-ish (role matrix), or
- the caller was denied on this function before and it is used by few
  principals (403 then success), or
- several other principals were denied on it, few succeed, and no principal
  is both denied and allowed there (which would mean object-level checks), or
- it writes (POST/PUT/PATCH/DELETE) a shared resource that many principals
  read (GET on the same template, most objects read by several of them) but
  only a few ever changed (staff editing the catalogue; each user's own
  orders are not shared): also when the call is refused (an attempt, medium).

A caller refused (403) ``min_refused`` times on functions only a few
principals ever succeeded on is flagged as an attempt (medium).

"Few" is at most ``max(few_principals, admin_share * population)`` where the
population is the number of identified principals seen. Admin-ish words in
the path only raise confidence. Adapt: once ``adapt_actors`` distinct
regular principals have succeeded on a function it is theirs too (a feature
opened to users) and stops alerting; a flagged success is not learned as
normal until then.

Cost per event: two or three dict look-ups; role parsing only for the rare
candidate calls. State: LRU per function, per principal, per (principal,
function) denial.

False-positive assumptions: principals have stable keys; a role claim, when
present, is trustworthy (apiward does not verify signatures: the auth
detectors judge tokens).
"""

from __future__ import annotations

import re
from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.vocabulary import IDENTIFIED as _IDENTIFIED
from apiward.detect.facts import facts
from apiward.detect.objects import LRU, roles
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["AdminFunction"]

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ADMIN_PATH = re.compile(r"admin|manage|internal|staff|superuser|backoffice|console|debug|ops\b|sudo|impersonat|role|permission", re.IGNORECASE)


class _Fn:
    __slots__ = ("ok", "denied", "ok_calls", "ok_admin", "ok_regular", "mixed", "flagged", "events")

    def __init__(self) -> None:
        self.ok: set[str] = set()
        self.denied: set[str] = set()
        self.ok_calls = 0
        self.ok_admin = 0
        self.ok_regular = 0
        self.mixed = False
        self.flagged: set[str] = set()
        self.events: dict[str, str] = {}

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


class AdminFunction(DetectorBase):
    """A regular principal successfully calls an admin-only function."""

    id = "bfla.admin_function"
    title = "Regular principal called an admin-only function (BFLA)"
    severity = "high"
    owasp = "API5:2023"
    attack = "T1078"
    tactic = "privilege-escalation"
    cwe = "CWE-285"
    config_attrs = ("cap",)  # derived from constructor arguments: rebuilt from the configuration

    def __init__(
        self,
        *,
        few_principals: int = 3,
        admin_share: float = 0.05,
        min_population: int = 10,
        min_calls: int = 3,
        adapt_actors: int = 3,
        max_functions: int = 20_000,
        max_principals: int = 200_000,
        cap_per_function: int = 64,
        min_refused: int = 2,
    ) -> None:
        self.min_refused = min_refused
        self._refusals: LRU[str, list[str]] = LRU(max_principals)
        self.few_principals = few_principals
        self.admin_share = admin_share
        self.min_population = min_population
        self.min_calls = min_calls
        self.adapt_actors = adapt_actors
        self.cap = cap_per_function
        self._fn: LRU[str, _Fn] = LRU(max_functions)
        self._seen: LRU[str, bool] = LRU(max_principals)
        self._denied_at: LRU[str, str] = LRU(max_principals)
        self._last_flag = ""
        # host|template -> [principals that read it, {object id: its readers}] (capped)
        self._readers: LRU[str, list[Any]] = LRU(max_functions)

    def __setstate__(self, s: dict[str, Any]) -> None:
        self.__dict__.update(s)
        if "_refusals" not in s:
            self.min_refused, self._refusals = 2, LRU(self._seen.cap)

    def move_endpoint(self, old: str, new: str) -> None:
        """A template merge or split: the function's history moves with it
        (merged into what the new template already has)."""
        fn = self._fn.get(old)
        if fn is None:
            return
        self._fn.pop(old, None)
        cur = self._fn.get(new)
        if cur is None:
            self._fn.put(new, fn)
            return
        cur.ok |= fn.ok
        cur.denied |= fn.denied
        cur.ok_calls += fn.ok_calls
        cur.ok_admin += fn.ok_admin
        cur.ok_regular += fn.ok_regular
        cur.mixed = cur.mixed or fn.mixed or bool(cur.ok & cur.denied)
        cur.flagged |= fn.flagged
        cur.events.update(fn.events)

    def _few(self) -> int:
        return max(self.few_principals, int(self.admin_share * len(self._seen)))

    def _readers_key(self, ctx: Context) -> str:
        ep = ctx.endpoint
        return f"{ep.host}|{ep.template}"

    def _privileged_write(self, call: ApiCall, ctx: Context, fn: _Fn | None) -> tuple[int, int] | None:
        """``(writers, readers)`` when the call writes a shared resource that
        only a few principals ever change: a write method on a template
        that many principals read (GET 2xx) but at most ``_few()`` (and at
        most a fifth as many) ever wrote successfully, ``min_calls`` times.
        Staff editing the catalogue, moderators deleting posts."""
        if call.request.method not in _WRITES or fn is None or fn.ok_calls < self.min_calls or not fn.ok:
            return None
        rd = self._readers.get(self._readers_key(ctx))
        if rd is None:
            return None
        readers, objects = rd
        n_read = len(readers)
        n_ok = len(fn.ok)
        # shared: most objects read there are read by several principals (a catalogue), not each by its owner (orders)
        shared = len(objects) >= 5 and sum(1 for r in objects.values() if len(r) >= 2) >= 0.5 * len(objects)
        if shared and n_read >= max(self.min_population, 5 * n_ok) and n_ok <= self._few() and call.actor.key not in fn.ok:
            return n_ok, n_read
        return None

    def _attempt(self, call: ApiCall, ctx: Context) -> list[Finding]:
        """A denied call (401/403) on a privileged write function by a
        principal that never used it: an attempt at the function."""
        actor = call.actor
        if actor.kind not in _IDENTIFIED or facts(call, ctx).caller_privileged is True:
            return []
        fn = self._fn.get(facts(call, ctx).ep_key)
        pw = self._privileged_write(call, ctx, fn)
        if pw is None:
            return self._refused(call, ctx, fn)
        if fn is None or actor.key in fn.denied and len(fn.denied) > self.few_principals:
            return []  # many principals get refused there: the function works as designed, nobody stands out
        ep = ctx.endpoint
        return [
            self.finding(
                call, ctx,
                summary=f"{actor.display} tried {ep.name} ({call.status}), a function only {pw[0]} of the {pw[1]} principals "
                        f"reading this resource use",
                evidence={"function": ep.name, "reasons": ["write on a shared resource only a few principals change"],
                          "principals_allowed_before": sorted(fn.ok)[:10], "readers": pw[1], "status": call.status},
                confidence=0.7, severity="medium", key=f"{self.id}|{actor.key}|{ep.key}",
                title="Attempt at an admin-only function (BFLA)",
            )
        ]

    def _refused(self, call: ApiCall, ctx: Context, fn: _Fn | None) -> list[Finding]:
        """A 403 on a function only a few principals ever succeeded on
        (``min_calls`` times, nobody both refused and allowed there), in a
        population of ``min_population``: the caller is refused a function
        that is someone else's job. One refusal is a stray click; the
        caller's ``min_refused`` such refusals (on any of these functions)
        are an attempt at privileged functions."""
        if call.status != 403 or fn is None or not fn.ok or fn.mixed or fn.ok_calls < self.min_calls:
            return []
        me = call.actor.key
        if me in fn.ok or len(fn.ok) > self._few() or len(self._seen) < self.min_population:
            return []
        if len(fn.denied - {me}) > self.few_principals:
            return []  # many principals get refused there: the function works as designed, nobody stands out
        tries = self._refusals.get(me)
        if tries is None:
            tries = []
            self._refusals.put(me, tries)
        if len(tries) < 20 and call.id not in tries:
            tries.append(call.id)
        if len(tries) < self.min_refused:
            return []
        ep = ctx.endpoint
        return [
            self.finding(
                call, ctx,
                summary=f"{call.actor.display} was refused {ep.name} ({call.status}), a function only {len(fn.ok)} "
                        f"principal(s) use; {len(tries)} such refusals",
                evidence={"function": ep.name, "reasons": ["refused a function only a few principals use"],
                          "principals_allowed_before": sorted(fn.ok)[:10], "refusals": len(tries), "status": call.status},
                confidence=0.65, severity="medium", key=f"{self.id}|{me}|refused", event_ids=list(tries),
                title="Attempt at an admin-only function (BFLA)",
            )
        ]

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        resp = call.response
        if resp is None:
            return []
        if resp.status in (401, 403):
            return self._attempt(call, ctx)
        if resp.status < 200 or resp.status >= 300:
            return []
        st = resp.status
        actor = call.actor
        if actor.kind not in _IDENTIFIED:
            return []
        ep = ctx.endpoint
        ek = facts(call, ctx).ep_key
        fn = self._fn.get(ek)
        me = actor.key
        if fn is None:
            denied_ev = self._denied_at.get(f"{me}|{ek}")
            if denied_ev is None or len(self._seen) < self.min_population:
                return []
            fn = _Fn()  # never succeeded for anyone: judged on the denial alone
        if me in fn.ok or len(fn.ok) >= self.cap or fn.mixed:
            return []
        if len(fn.flagged - {me}) >= self.adapt_actors:
            return []
        p = facts(call, ctx).caller_privileged
        if p is True:
            return []
        n_ok = len(fn.ok)
        few = n_ok <= self._few() and len(self._seen) >= self.min_population
        denied_ev = self._denied_at.get(f"{me}|{ek}")
        reasons: list[str] = []
        conf = 0.0
        if p is False and fn.ok_admin >= 1 and fn.ok_regular == 0 and fn.ok_calls >= self.min_calls:
            reasons.append("only admin-role principals used this function before")
            conf = 0.85
        if denied_ev is not None and few:
            reasons.append("caller was denied on this function before")
            conf = max(conf, 0.9)
        others_denied = len(fn.denied - fn.ok - {me})
        if others_denied >= 2 and few and fn.ok_calls >= self.min_calls:
            reasons.append(f"{others_denied} other principals were denied here; {n_ok} succeed")
            conf = max(conf, 0.75)
        pw = self._privileged_write(call, ctx, fn)
        if pw is not None:
            reasons.append(f"a write on a resource {pw[1]} principals read and only {pw[0]} ever changed")
            conf = max(conf, 0.75)
        if not reasons:
            return []
        if _ADMIN_PATH.search(ep.template):
            conf = min(0.97, conf + 0.05)
            reasons.append("admin-ish path")
        self._last_flag = call.id
        ev = [e for e in (denied_ev, call.id) if e]
        return [
            self.finding(
                call,
                ctx,
                summary=f"{actor.display} got {st} on {ep.name}, a function used by {n_ok} privileged principal(s)",
                evidence={
                    "function": ep.name,
                    "reasons": reasons,
                    "principals_allowed_before": sorted(fn.ok)[:10],
                    "principals_denied": len(fn.denied),
                    "caller_roles": sorted(roles(actor.jwt_claims))[:10],
                    "status": st,
                },
                confidence=conf,
                key=f"{self.id}|{me}|{ep.key}",
                event_ids=ev,
            )
        ]

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        actor = call.actor
        if actor.kind not in _IDENTIFIED:
            return
        me = actor.key
        if me not in self._seen:
            self._seen.put(me, True)
        resp = call.response
        st = resp.status if resp is not None else 0
        ek = facts(call, ctx).ep_key
        if st == 401 or st == 403:
            self._denied_at.put(f"{me}|{ek}", call.id)
            fn = self._fn.get_or(ek, _Fn)
            if len(fn.denied) < self.cap:
                fn.denied.add(me)
            if me in fn.ok:
                fn.mixed = True
            return
        if st < 200 or st >= 300:
            return
        if call.request.method == "GET":
            rk = self._readers_key(ctx)
            rd = self._readers.get(rk)
            if rd is None:
                rd = [set(), {}]
                self._readers.put(rk, rd)
            readers, objects = rd
            if len(readers) < 256:
                readers.add(me)
            refs = facts(call, ctx).path_refs
            if refs:
                obj = objects.get(refs[-1][1])
                if obj is None and len(objects) < 200:
                    obj = objects[refs[-1][1]] = set()
                if obj is not None and len(obj) < 4:
                    obj.add(me)
        fns = self._fn
        fn = fns.get(ek)
        if fn is None:
            fn = _Fn()
            fns.put(ek, fn)
        else:
            fns.move_to_end(ek)
        fn.ok_calls += 1
        if me in fn.ok or len(fn.ok) >= self.cap:
            return
        if self._last_flag == call.id:
            fn.flagged.add(me)
            if len(fn.flagged) < self.adapt_actors:
                return  # one deviant actor does not teach the function is open
        fn.ok.add(me)
        if me in fn.denied:
            fn.mixed = True
        p = facts(call, ctx).caller_privileged
        if p is True:
            fn.ok_admin += 1
        elif p is False:
            fn.ok_regular += 1

