"""``bola.cross_owner_access`` and ``bola.enumeration``: broken object level
authorization, judged passively from who touches which object.

Cross-owner access looks at the object references of each call (id-like
path parameters, id-named query/body fields, id headers; see
:mod:`apiward.detect.objects`) and learns which principal each object
belongs to:

- ids returned to a principal by its own listings and creations (weight 2),
- ids equal to the principal's own identity (user name / ``sub``),
- foreign keys every item of a principal's listing shares (``user_id``: 12
  in all of alice's orders makes ``user 12`` alice's),
- ids one principal keeps using on its own (each success adds weight 1).

A principal with weight >= 2 owns the object. A principal's own user
record is known from its credential (``uid``-like JWT claims), from a
"who am I" read naming it, or from the foreign key its listings share.
A caller that gets a 2xx on objects owned by someone else, on
``min_objects`` distinct objects of one kind, is flagged; a caller the API
refuses (401/403/404) on ``min_denied_objects`` distinct objects of one kind
that others own is flagged as an attempt (medium: the API held, but nobody
names other principals' object ids by chance). When nobody known
owns an object of a private kind (most objects touched by one principal),
the response may still say it is someone else's: a user record with
another id than the caller's, or a ``user_id``-like field naming another
user. Listings of ``own_listing_max`` objects or more are directories, not
anybody's own, and reads flagged as cross-owner never make an object
shared. Objects touched by ``shared_principals`` principals are
shared (products, public posts) and never alert; a kind of object that
``max_cross_actors`` other actors already read across owners is public by
the app's own behaviour (adapt) and stops alerting. Admins are skipped:
admin-ish role claims, or learned: principals that succeed on functions
where several others are denied while never being denied themselves.
Privileged principals' listings do not attribute ownership.

Enumeration looks at one actor's object references per kind of object in a
time window: many distinct ids with mostly 401/403/404 answers, or mostly
consecutive numeric ids. Self-contained, so it works from the first event.

Cost per event: a handful of dict look-ups per object reference (the
references and their keys are worked out once per call and shared);
responses are read only for 2xx listings and creations, and a principal
re-reading an unchanged listing, or an endpoint that answers one object
once the caller's own record is known, is looked at one time in 8 or 16.
Both detectors share one :class:`PrivilegeTracker`. State: LRU-bounded
per object, per actor, per kind.

False-positive assumptions: principals have stable keys (JWT subject, API
key digest); unauthenticated (IP) actors are not judged for cross-owner
access; legitimately shared objects are read by several principals early.
"""

from __future__ import annotations

from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.vocabulary import IDENTIFIED as _IDENTIFIED
from apiward.learn.norms import Norms
from apiward.detect.facts import facts
from apiward.detect.objects import (
    LRU,
    Ring,
    field_noun,
    id_like,
    is_denied,
    privileged,
    response_items,
    self_ids,
)
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["CrossOwnerAccess", "Enumeration", "PrivilegeTracker"]



class _Kind:
    """Per kind of object (``host|noun``): who reads across owners, and how
    many objects turned out shared or private."""

    __slots__ = ("cross", "shared_n", "private_n")

    def __init__(self) -> None:
        self.cross: set[str] = set()
        self.shared_n = 0
        self.private_n = 0

    def __getstate__(self) -> Any:
        return (self.cross, self.shared_n, self.private_n)

    def __setstate__(self, s: Any) -> None:
        self.cross, self.shared_n, self.private_n = s


class _Act:
    """Per actor: cross-owner objects and events per kind."""

    __slots__ = ("cross", "events")

    def __init__(self) -> None:
        self.cross: dict[str, set[str]] = {}
        self.events: dict[str, Ring] = {}

    def __getstate__(self) -> Any:
        return (self.cross, self.events)

    def __setstate__(self, s: Any) -> None:
        self.cross, self.events = s


#: Body fields that name a principal (whose record a write is about).
PRINCIPAL_FIELDS = frozenset({
    "owner", "user", "username", "user_name", "userName", "login", "account", "account_name", "author", "member",
    "created_by", "createdBy", "owner_name", "ownerName", "handle", "email", "user_email", "userEmail",
})


class _Self:
    """One body field of one write endpoint: the value each caller names
    there, and how often callers name themselves (their own first value)."""

    __slots__ = ("mine", "selfs", "total")

    def __init__(self) -> None:
        self.mine: dict[str, str] = {}  # actor -> the value it named first (its own, if the field is a "my record" field)
        self.selfs = 0
        self.total = 0

    def __getstate__(self) -> Any:
        return (self.mine, self.selfs, self.total)

    def __setstate__(self, s: Any) -> None:
        self.mine, self.selfs, self.total = s


def _principal_values(call: ApiCall) -> list[tuple[str, str]]:
    """``(field, value)`` of top-level body fields that name a principal."""
    req = call.request
    if req.method not in ("POST", "PUT", "PATCH", "DELETE") or not req.body:
        return []
    params = req.params()
    out = []
    for k in PRINCIPAL_FIELDS.intersection(params):
        v = params[k]
        if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v):
            out.append((k, str(v).strip().lower()))
    return out


class PrivilegeTracker:
    """Learns privileged principals from traffic: a principal that gets a 2xx
    on a function where at least ``min_denied`` other principals were denied
    (401/403) and at most ``max_ok`` principals succeed, while never being
    denied anywhere itself. Roles in JWT claims win when present."""

    def __init__(self, min_denied: int = 2, max_ok: int = 3, cap: int = 20_000) -> None:
        self.min_denied = min_denied
        self.max_ok = max_ok
        self.seen = 0  # calls learned: trackers fed the same stream agree on it
        self._learned = ""
        self._ep: LRU[str, list[set[str]]] = LRU(cap)
        self._denied: LRU[str, int] = LRU(cap * 5)
        self._priv: LRU[str, bool] = LRU(cap)

    def __setstate__(self, s: dict[str, Any]) -> None:
        self.__dict__.update(s)
        self.__dict__.setdefault("seen", 0)
        self.__dict__.setdefault("_learned", "")

    def shared(self, ctx: Context) -> PrivilegeTracker:
        """The tracker to use for this call: both BOLA detectors learn the
        same thing, so within one pipeline (``ctx.shared``) they use one
        tracker when their settings agree; outside a pipeline, their own."""
        store = ctx.shared
        if store is None:
            return self
        other = store.get("bola.privileges")
        if other is None:
            store["bola.privileges"] = self
            return self
        if other is self or (other.min_denied, other.max_ok, other._ep.cap) == (self.min_denied, self.max_ok, self._ep.cap):
            return other  # type: ignore[no-any-return]
        return self

    def learn_call(self, call: ApiCall, ctx: Context) -> None:
        """:meth:`learn` an identified call, once per call however many detectors share this tracker."""
        if self._learned == call.id:
            return
        self._learned = call.id
        self.seen += 1
        resp = call.response
        st = resp.status if resp is not None else 0
        ek = facts(call, ctx).ep_key
        if 200 <= st < 300:
            sets = self._ep.get(ek)
            if sets is not None and (call.actor.key in sets[0] or len(sets[0]) > self.max_ok):
                return  # nothing new: known or crowded function
        self.learn(call.actor.key, ek, st)

    def learn(self, actor: str, ep_key: str, status: int) -> None:
        if 200 <= status < 300:
            sets = self._ep.get(ep_key)
            if sets is None:
                sets = [set(), set()]
                self._ep.put(ep_key, sets)
            ok = sets[0]
            if actor not in ok and len(ok) <= self.max_ok:
                ok.add(actor)
                if len(sets[1]) >= self.min_denied and len(ok) <= self.max_ok:
                    for a in ok:
                        if a not in self._denied:
                            self._priv.put(a, True)
        elif status == 401 or status == 403:
            self._denied.put(actor, self._denied.get(actor, 0) + 1)
            self._priv.pop(actor, None)
            sets = self._ep.get(ep_key)
            if sets is None:
                sets = [set(), set()]
                self._ep.put(ep_key, sets)
            den = sets[1]
            if len(den) < 16:
                den.add(actor)
                if len(den) == self.min_denied and len(sets[0]) <= self.max_ok:
                    for a in sets[0]:
                        if a not in self._denied:
                            self._priv.put(a, True)

    def is_privileged(self, actor: str, claims: dict[str, Any]) -> bool:
        p = privileged(claims) if claims else None
        if p is not None:
            return p
        return actor in self._priv

    def caller(self, call: ApiCall, ctx: Context) -> bool:
        """:meth:`is_privileged` for the caller, with the per-call cached role verdict."""
        p = facts(call, ctx).caller_privileged
        if p is not None:
            return p
        return call.actor.key in self._priv


def _obj_keys(host: str, refs: list[tuple[str, str, str]]) -> list[str]:
    """``host|noun|value`` of each request reference."""
    return [f"{host}|{noun}|{value}" for _, noun, value in refs]


class CrossOwnerAccess(DetectorBase):
    """A principal reads or changes objects that belong to another principal."""

    id = "bola.cross_owner_access"
    title = "Access to another principal's objects (BOLA)"
    severity = "high"
    owasp = "API1:2023"
    attack = "T1213"
    tactic = "collection"
    cwe = "CWE-639"

    def __init__(
        self,
        *,
        min_objects: int = 2,
        shared_principals: int = 3,
        max_cross_actors: int = 3,
        max_objects: int = 200_000,
        max_actors: int = 50_000,
        listing_cap: int = 200,
        own_listing_max: int = 50,
        min_denied_objects: int = 5,
    ) -> None:
        self.min_objects = min_objects
        self.shared_principals = shared_principals
        self.max_cross_actors = max_cross_actors
        self.listing_cap = listing_cap
        self._obj: LRU[str, dict[str, int]] = LRU(max_objects, spill=True)  # ownership outlives the cap: on disk
        self._kind: LRU[str, _Kind] = LRU(max_objects // 20 or 1)
        self._act: LRU[str, _Act] = LRU(max_actors)
        self.privilege = PrivilegeTracker()
        self._public: LRU[str, int] = LRU(20_000)
        self._me: LRU[str, dict[str, str]] = LRU(max_actors, spill=True)  # actor -> {noun: its own id}
        self._cross: tuple[str, set[str]] = ("", set())  # the call just scored and the foreign objects it touched
        self.own_listing_max = own_listing_max
        self._lists: LRU[str, dict[str, list[Any]]] = LRU(max_actors)  # actor -> {listing endpoint: [fingerprint, repeats]}
        self._single: dict[str, int] = {}  # endpoint -> single-object GET answers in a row
        self._self: LRU[str, _Self] = LRU(20_000)  # write endpoint|field -> who names whom there
        self.min_self_callers = 5
        self.min_denied_objects = min_denied_objects
        self._tried: LRU[str, dict[str, list[Any]]] = LRU(max_actors)  # actor -> {kind: [object ids, events, owners]}

    def __setstate__(self, s: dict[str, Any]) -> None:
        self.__dict__.update(s)
        if "_tried" not in s:
            self._tried, self.min_denied_objects = LRU(self._act.cap), 5
        if "_lists" not in s:
            self._lists = LRU(self._act.cap)
        if "_single" not in s:
            self._single = {}
        if "_self" not in s:
            self._self, self.min_self_callers = LRU(20_000), 5

    def _named_other(self, call: ApiCall, ctx: Context) -> list[Finding]:
        """A write naming another principal in a field where callers name
        themselves: on an endpoint where at least ``min_self_callers``
        principals each keep naming one value of their own, distinct from
        the others' (a "my record" field: ``owner``, ``username``,
        ``email``...), this caller names a
        value another principal uses as its own. The API took it (2xx):
        the caller wrote someone else's record."""
        pv = _principal_values(call)
        if not pv:
            return []
        me = call.actor.key
        ek = facts(call, ctx).ep_key
        out = []
        for field, value in pv:
            st = self._self.get(f"{ek}|{field}")
            if st is None or len(st.mine) < self.min_self_callers or st.selfs < 0.9 * st.total:
                continue
            if len(set(st.mine.values())) < 0.8 * len(st.mine):
                continue  # callers share values there (a team, a category): no one's own record
            own = st.mine.get(me)
            if own == value:
                continue
            victims = [a for a, v in st.mine.items() if v == value and a != me]
            if not victims:
                continue
            if self.privilege.caller(call, ctx):
                continue
            out.append(
                self.finding(
                    call, ctx,
                    summary=f"{call.actor.display} wrote {ctx.endpoint.name} naming {value!r} in {field!r}, the value "
                            f"{len(victims)} other principal(s) name as their own (callers name themselves there)",
                    evidence={"field": field, "named": value, "own_value": own, "victims": victims[:5],
                              "callers_naming_themselves": st.selfs, "writes": st.total, "method": call.request.method,
                              "status": call.status},
                    confidence=0.85 if own else 0.7,
                    key=f"{self.id}|{me}|{ek}|{field}",
                )
            )
        return out

    def _learn_named(self, call: ApiCall, ctx: Context) -> None:
        pv = _principal_values(call)
        if not pv or facts(call, ctx).flagged:
            return
        me = call.actor.key
        ek = facts(call, ctx).ep_key
        for field, value in pv:
            st = self._self.get_or(f"{ek}|{field}", _Self)
            own = st.mine.get(me)
            if own is None:
                if len(st.mine) < 512:
                    st.mine[me] = value
                own = value
            st.total += 1
            if own == value:
                st.selfs += 1

    def _private(self, kind: _Kind | None, me: str) -> bool:
        """Whether a kind of object is private by the app's behaviour: most
        objects are touched by one principal and few actors read across."""
        if kind is None or kind.private_n < 5 or kind.shared_n * 4 >= kind.private_n:
            return False
        return len(kind.cross) - (me in kind.cross) < self.max_cross_actors

    def _response_owner(self, call: ApiCall, host: str, noun: str, value: str, me: str) -> str:
        """The owner a detail response names for the object ``noun``/``value``
        when it is not the caller: the object is the caller's kind of
        self (a user record) with another id, or it carries a foreign key
        (``user_id``) of another principal's self. ``""`` otherwise."""
        mine = self._me.get(me)
        if not mine:
            return ""
        own = mine.get(noun)
        if own is not None:
            return f"{noun} {value}" if own != value else ""
        resp = call.response
        if resp is None or not resp.body:
            return ""
        items, listing = response_items(resp.json(), 1)
        if listing or not items:
            return ""
        for k, v in items[0].items():
            if not isinstance(k, str) or v is None or isinstance(v, (dict, list, bool)):
                continue
            fn = field_noun(k)
            if not fn or fn == noun:
                continue
            own = mine.get(fn)
            if own is not None and id_like(v) and str(v) != own:
                entry = self._obj.get(f"{host}|{fn}|{v}")
                if entry is not None and me in entry:
                    continue
                return f"{fn} {v}"
        return ""

    # -- scoring --------------------------------------------------------------
    def _denied_attempts(self, call: ApiCall, ctx: Context) -> list[Finding]:
        """Attempts on objects known to be other principals' that the API
        refused (401/403/404): a principal has no reason to name another's
        object ids, so ``min_denied_objects`` distinct ones of one kind is an
        attempted BOLA (the API held, the caller tried)."""
        refs = facts(call, ctx).request_refs
        if not refs:
            return []
        me = call.actor.key
        host = ctx.endpoint.host
        out: list[Finding] = []
        for (_loc, noun, value), okey in zip(refs, _obj_keys(host, refs)):
            entry = self._obj.get(okey)
            if entry is None or me in entry or len(entry) >= self.shared_principals:
                continue
            owner = next((p for p, w in entry.items() if w >= 2), "")
            if not owner:
                continue
            kkey = f"{host}|{noun}"
            # (no "shared kind" test here: the object has one owner and the API itself refused the caller)
            if self.privilege.caller(call, ctx):
                return []
            per = self._tried.get_or(me, dict)
            t = per.get(kkey)
            if t is None:
                if len(per) >= 64:
                    continue
                t = per[kkey] = [set(), Ring(20), set()]
            if len(t[0]) < 256:
                t[0].add(value)
            if len(t[2]) < 64:
                t[2].add(owner)
            if not t[1] or t[1][-1] != call.id:
                t[1].push(call.id)
            n = len(t[0])
            if n >= self.min_denied_objects:
                owners = sorted(t[2])
                out.append(self.finding(
                    call, ctx,
                    summary=f"{call.actor.display} tried {n} {noun} object(s) owned by other principals "
                            f"({', '.join(owners[:3])}); the API refused",
                    evidence={"object_kind": noun, "objects": sorted(t[0])[:20], "distinct_objects": n,
                              "owners": owners[:10], "method": call.request.method, "status": call.status, "refused": True},
                    confidence=min(0.9, 0.45 + 0.05 * n), severity="medium",
                    key=f"{self.id}|tried|{me}|{kkey}", event_ids=list(t[1]), first_seen=None,
                    title="Attempted access to other principals' objects (BOLA)",
                ))
        return out

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        resp = call.response
        if resp is None:
            return []
        st = resp.status
        actor = call.actor
        if actor.kind not in _IDENTIFIED:
            return []
        if st == 401 or st == 403 or st == 404:
            return self._denied_attempts(call, ctx)
        if st < 200 or st >= 300:
            return []
        out: list[Finding] = self._named_other(call, ctx) if call.request.method != "GET" else []
        refs = facts(call, ctx).request_refs
        if not refs:
            return out
        me = actor.key
        host = ctx.endpoint.host
        objs = self._obj
        for (loc, noun, value), okey in zip(refs, _obj_keys(host, refs)):
            entry = objs.get(okey)
            if entry is not None and (me in entry or len(entry) >= self.shared_principals):
                continue
            owner = ""
            if entry is not None:
                for p, w in entry.items():
                    if w >= 2:
                        owner = p
                        break
            kkey = f"{host}|{noun}"
            kind = self._kind.get(kkey)
            if not owner:
                # nobody known owns it: the response itself may say whose it is
                if loc != "path" or not self._private(kind, me):
                    continue
                owner = self._response_owner(call, host, noun, value, me)
                if not owner:
                    continue
            if kind is not None:
                others = len(kind.cross) - (me in kind.cross)
                if others >= self.max_cross_actors:
                    continue
                if kind.shared_n >= 3 and kind.shared_n * 4 >= kind.private_n:
                    continue
            if self.privilege.caller(call, ctx):
                return []
            if kind is None:
                kind = self._kind.get_or(kkey, _Kind)
            if len(kind.cross) < 16:
                kind.cross.add(me)
            act = self._act.get_or(me, _Act)
            taken = act.cross.get(kkey)  # not ``objs``: that is the owner table for the next reference
            if taken is None:
                taken = act.cross[kkey] = set()
                act.events[kkey] = Ring(20)
            if len(taken) < 256:
                taken.add(value)
            if self._cross[0] != call.id:
                self._cross = (call.id, set())
            self._cross[1].add(okey)
            ring = act.events[kkey]
            if not ring or ring[-1][0] != call.id:
                ring.push((call.id, value, owner, loc))
            if len(taken) >= self.min_objects:
                owners = sorted({r[2] for r in ring})
                n = len(taken)
                out.append(
                    self.finding(
                        call,
                        ctx,
                        summary=f"{actor.display} accessed {n} {noun} object(s) owned by other principals ({', '.join(owners[:3])})",
                        evidence={
                            "object_kind": noun,
                            "objects": sorted(taken)[:20],
                            "distinct_objects": n,
                            "owners": owners[:10],
                            "reference_locations": sorted({r[3] for r in ring}),
                            "method": call.request.method,
                            "status": st,
                        },
                        confidence=min(0.95, 0.55 + 0.1 * n),
                        key=f"{self.id}|{me}|{kkey}",
                        event_ids=[r[0] for r in ring],
                        first_seen=None,
                    )
                )
        return out

    # -- learning -----------------------------------------------------------
    def _attribute(self, okey: str, actor: str, weight: int, kkey: str) -> None:
        """Add ``weight`` to ``actor``'s claim on an object. ``kkey`` is the
        kind's key, or ``""`` to derive it from ``okey`` when needed."""
        objs = self._obj
        entry = objs.get(okey)
        if entry is None:
            objs.put(okey, {actor: weight})
            if weight >= 2:
                self._kind.get_or(kkey or okey.rpartition("|")[0], _Kind).private_n += 1
            return
        n = len(entry)
        if n >= self.shared_principals:
            return
        objs.move_to_end(okey)
        old = entry.get(actor, 0)
        if old >= 3:
            return
        kkey = kkey or okey.rpartition("|")[0]
        new = min(3, old + weight)
        entry[actor] = new
        if n == 1 and old and old < 2 <= new:
            self._kind.get_or(kkey, _Kind).private_n += 1
        elif len(entry) == self.shared_principals:
            self._kind.get_or(kkey, _Kind).shared_n += 1

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        actor = call.actor
        if actor.kind not in _IDENTIFIED:
            return
        me = actor.key
        resp = call.response
        st = resp.status if resp is not None else 0
        ep = ctx.endpoint
        priv = self.privilege = self.privilege.shared(ctx)
        priv.learn_call(call, ctx)
        if st < 200 or st >= 300:
            return
        if ep.method != "GET":
            self._learn_named(call, ctx)
        host = ep.host
        refs = facts(call, ctx).request_refs
        mine = self._me.get(me)
        if mine is None:
            mine = {}
            self._me.put(me, mine)
            for v in self_ids(call):  # the credential names the caller's own user record
                mine.setdefault("user", v)
                self._attribute(f"{host}|user|{v}", me, 2, f"{host}|user")
        if refs:
            claims = actor.jwt_claims
            sub = claims.get("sub") if claims else None
            user = actor.user
            foreign = self._cross[1] if self._cross[0] == call.id else ()
            objs = self._obj
            cap = self.shared_principals
            for (_, noun, value), okey in zip(refs, _obj_keys(host, refs)):
                if okey in foreign:
                    continue  # reading someone else's object does not make it shared
                entry = objs.get(okey)
                if entry is not None:  # the common case, inline: shared already, or mine for good
                    if len(entry) >= cap:
                        continue
                    if entry.get(me, 0) >= 3:
                        objs.move_to_end(okey)
                        continue
                w = 2 if value == user or (sub is not None and value == str(sub)) else 1
                self._attribute(okey, me, w, "")
        method = ep.method
        if method not in ("GET", "POST", "PUT"):
            return
        if method == "GET" and ep.template.endswith("}"):
            return  # a detail read: its id is already a request reference
        if resp is None or not resp.body:
            return
        kk = facts(call, ctx).kind_key
        tnoun = kk.rpartition("|")[2]
        if not tnoun:
            return
        lkey = facts(call, ctx).ep_key
        single = self._single
        if method == "GET" and "user" in mine:
            # an endpoint that answers one object teaches nothing more once the caller's own record
            # is known: look at one call in 16
            sc = single.get(lkey, 0)
            if sc >= 8 and sc % 16:
                single[lkey] = sc + 1
                return
        public = self._public.get(lkey, 0)
        if public >= 5:
            # a listing everybody gets the same objects from: sample it
            self._public[lkey] = public + 1
            if public % 16:
                return
        doc = resp.json()
        if doc is None:
            return
        if self.privilege.caller(call, ctx):
            return  # an admin's listings do not make objects the admin's
        items, listing = response_items(doc, self.listing_cap)
        if method == "GET":
            if listing or not items:
                if lkey in single:
                    single[lkey] = 0
            elif len(single) < 20_000 or lkey in single:
                single[lkey] = single.get(lkey, 0) + 1
        if method == "GET" and not listing and items and "user" not in mine and not ep.path_params:
            # a "who am I" read: one object naming the caller is the caller's user record
            it = items[0]
            v = it.get("id")
            if v is not None and id_like(v) and actor.user and actor.user in (it.get("username"), it.get("login"), it.get("email"), it.get("sub")):
                mine["user"] = str(v)
                self._attribute(f"{host}|user|{v}", me, 2, f"{host}|user")
        if not items or (method == "GET" and not listing) or len(items) >= self.own_listing_max:
            return  # a directory-sized listing is nobody's own objects
        if listing:
            # the same principal re-reading an unchanged listing teaches nothing new: re-learn one in 8
            fp = (len(items), items[0].get("id"), items[-1].get("id"))
            seen = self._lists.get(me)
            if seen is None:
                seen = {}
                self._lists.put(me, seen)
            last = seen.get(lkey)
            if last is not None and last[0] == fp and last[1] % 8:
                last[1] += 1
                return
            if last is None and len(seen) >= 32:
                seen.clear()
            seen[lkey] = [fp, 1]
        kkey = f"{host}|{tnoun}"
        fk: dict[str, Any] | None = None
        shared = 0
        objs = self._obj
        cap = self.shared_principals
        for it in items:
            v = it.get("id")
            if v is not None and id_like(v):
                okey = f"{host}|{tnoun}|{v}"
                e = objs.get(okey)
                if e is not None and len(e) >= cap:
                    shared += 1
                    continue
                self._attribute(okey, me, 2, kkey)
            if listing:
                if fk is None:
                    fk = {k: x for k, x in it.items() if k != "id" and isinstance(k, str) and id_like(x) and field_noun(k)}
                elif fk:
                    fk = {k: x for k, x in fk.items() if it.get(k) == x}
        if listing and len(items) >= 2 and public < 5:
            if shared * 5 >= len(items) * 4:
                self._public[lkey] = public + 1
            elif public:
                self._public[lkey] = 0
        if fk and len(items) >= 2:
            for k, x in fk.items():
                fn = field_noun(k)
                if fn and fn != tnoun:
                    self._attribute(f"{host}|{fn}|{x}", me, 2, f"{host}|{fn}")
                    mine.setdefault(fn, str(x))  # every item of my listing points at it: my own


class _Walk:
    __slots__ = ("ring", "since")

    def __init__(self) -> None:
        self.ring: Ring = Ring(64)
        self.since = 0

    def __getstate__(self) -> Any:
        return (self.ring, self.since)

    def __setstate__(self, s: Any) -> None:
        self.ring, self.since = s[0], s[1]


class Enumeration(DetectorBase):
    """One actor probes many object ids of one kind: mostly denied/not found,
    or consecutive numeric ids."""

    id = "bola.enumeration"
    title = "Object id enumeration (BOLA probing)"
    severity = "medium"
    owasp = "API1:2023"
    attack = "T1087"
    tactic = "discovery"
    cwe = "CWE-639"

    def __init__(
        self,
        *,
        min_ids: int = 15,
        window_s: float = 900.0,
        min_miss_ratio: float = 0.5,
        min_sequential: float = 0.8,
        max_actors: int = 50_000,
    ) -> None:
        self.min_ids = min_ids
        self.window_s = window_s
        self.min_miss_ratio = min_miss_ratio
        self.min_sequential = min_sequential
        self._walk: LRU[str, _Walk] = LRU(max_actors)
        self.privilege = PrivilegeTracker()
        self.norms = Norms()

    def _track(self, call: ApiCall, ctx: Context) -> tuple[_Walk, str, str] | None:
        """Add the call to its actor's walk over one object kind (once per
        call); ``(walk, walk key, noun)`` or None when it names no object."""
        ep = ctx.endpoint
        if not ep.path_params:
            return None
        refs = facts(call, ctx).path_refs
        if not refs:
            return None
        noun, value = refs[-1]
        wkey = f"{call.actor.key}|{ep.host}|{noun}"
        walks = self._walk
        walk = walks.get(wkey)
        if walk is None:
            walk = _Walk()
            walks.put(wkey, walk)
        else:
            walks.move_to_end(wkey)
        ring = walk.ring
        if ring and ring[-1][3] == call.id:
            return walk, wkey, noun
        st = call.status
        ring.append((call.ts, value, st, call.id))
        walk.since += 1
        return walk, wkey, noun

    def _window(self, walk: _Walk, now: float) -> tuple[list[Any], set[str], int, float, float]:
        """The walk's calls within ``window_s``: (calls, distinct ids,
        distinct ids denied or not found, miss ratio, consecutive ratio)."""
        ring = walk.ring
        horizon = now - self.window_s
        recent = list(ring) if ring[0][0] >= horizon else [r for r in ring if r[0] >= horizon]
        ids = {r[1] for r in recent}
        missed = {r[1] for r in recent if r[2] == 404 or is_denied(r[2]) or r[2] == 410}
        ratio = sum(1 for r in recent if r[2] == 404 or is_denied(r[2]) or r[2] == 410) / max(len(recent), 1)
        nums = sorted(int(i) for i in ids if i.isdigit())
        seq = 0.0
        if len(nums) >= self.min_ids:
            adj = sum(1 for a, b in zip(nums, nums[1:]) if b - a == 1)
            seq = adj / (len(nums) - 1)
        return recent, ids, len(missed), ratio, seq

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        got = self._track(call, ctx)
        if got is None:
            return []
        walk, _, noun = got
        ring = walk.ring
        if len(ring) < self.min_ids or walk.since < 4:
            return []
        walk.since = 0
        recent, ids, missed, ratio, seq = self._window(walk, call.ts)
        if len(ids) < self.min_ids:
            return []
        if ratio < self.min_miss_ratio and seq < self.min_sequential:
            return []
        if ratio < self.min_miss_ratio and self.privilege.caller(call, ctx):
            return []
        # An actor stands out from what it and its peers do on this kind of
        # object (a client whose normal work probes ids is not news).
        actor = call.actor
        ep = ctx.endpoint
        scope = f"{ep.host}|{noun}"
        norms_ev: dict[str, Any] = {}
        if ratio >= self.min_miss_ratio:
            out, norms_ev = self.norms.stands_out("missed_ids", scope, actor.key, missed, floor=self.min_ids * self.min_miss_ratio,
                                                  calls=len(recent))
            if not out and seq < self.min_sequential:
                return []
        if seq >= self.min_sequential and not norms_ev:
            out, norms_ev = self.norms.stands_out("distinct_ids", scope, actor.key, len(ids), floor=self.min_ids, calls=len(recent))
            if not out:
                return []
        how = []
        if ratio >= self.min_miss_ratio:
            how.append(f"{ratio:.0%} denied/not found")
        if seq >= self.min_sequential:
            how.append(f"{seq:.0%} consecutive ids")
        nums = sorted(int(i) for i in ids if i.isdigit())
        return [
            self.finding(
                call,
                ctx,
                summary=f"{actor.display} probed {len(ids)} distinct {noun} ids ({', '.join(how)})",
                evidence={
                    "object_kind": noun,
                    "distinct_ids": len(ids),
                    "miss_ratio": round(ratio, 3),
                    "sequential_ratio": round(seq, 3),
                    "id_range": [nums[0], nums[-1]] if nums else None,
                    "sample_ids": sorted(ids)[:20],
                    "window_s": self.window_s,
                    "norms": norms_ev,
                },
                confidence=min(0.95, 0.5 + 0.3 * ratio + 0.2 * seq),
                key=f"{self.id}|{actor.key}|{ep.host}|{noun}",
                event_ids=[r[3] for r in recent],
                first_seen=recent[0][0],
            )
        ]

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        """Learn privileged principals, and what each actor and its peers
        normally reach per window on each kind of object (ids denied or not
        found, distinct ids)."""
        if call.actor.kind in _IDENTIFIED:
            priv = self.privilege = self.privilege.shared(ctx)
            priv.learn_call(call, ctx)
        fx = facts(call, ctx)
        refs = fx.path_refs
        if not refs:
            return
        learn_mode = ctx.mode == "learn"
        noun = refs[-1][0]
        if learn_mode:
            self._track(call, ctx)  # scoring did not run
        walk = self._walk.get(f"{call.actor.key}|{ctx.endpoint.host}|{noun}")
        if walk is None or not walk.ring:
            return
        recent, ids, missed, _, _ = self._window(walk, call.ts)
        trust = ctx.trust
        akey = call.actor.key
        flagged = fx.flagged or (trust is not None and trust.flagged(akey, call.ts))
        scope = f"{ctx.endpoint.host}|{noun}"
        window = int(call.ts // self.window_s)
        self.norms.observe("missed_ids", scope, akey, missed, window=window, calls=len(recent), learn_mode=learn_mode, flagged=flagged)
        self.norms.observe("distinct_ids", scope, akey, len(ids), window=window, calls=len(recent), learn_mode=learn_mode, flagged=flagged)
