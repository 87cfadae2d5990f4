"""``mass_assignment.readonly_write``: a request writes fields the API only
ever returns (``role``, ``is_admin``, ``balance``, ``owner_id``) or that no
other principal writes, above all when the response echoes the new value.

Looks at: per kind of object (the noun of the endpoint template, so
``POST /users`` and ``PATCH /users/{id}`` share state), the fields responses
return and, per field, which principals write it in 2xx POST/PUT/PATCH
bodies (top-level JSON or form fields; inside a ``data`` / ``attributes``
envelope only strongly privilege-like fields with an elevating value, for
the echoed-escalation rule). A written field is read-only when
responses return it, the kind has seen enough writes by several principals,
and no other principal (at most one) writes it. It is flagged when it is
read-only and privilege-like with an elevating value, or a read-only
reference (``account_id``) on a busy kind; a
privilege-like field (role, admin, permissions, balance, owner...) set to an
elevating value and echoed back is flagged from the first event.

A write of a strongly privilege-like field (role, admin, balance, credit,
owner...) with an elevating value that the kind never returns and nobody
writes is flagged as an attempt (lower confidence) even when not echoed.

What an escalation enabled joins its finding, for ``followup_s`` and at
most ``followup_calls`` calls: a login from the address that over-posted
at sign-up whose token carries the escalated value; responses to the
escalated principal echoing an escalated value; functions only privileged
principals use (at most ``few_regular`` regular ones), called with the
privileged claims.

Adapt: a field ``adapt_writers`` principals write is writable; a flagged
write is not learned as normal until then.

Cost per event: nothing for reads past a sampling budget (response fields
are learned from every response until a kind has ``full_learning``
responses, then from one in ``sample_every``); the values a principal read
are kept for principals only; a set look-up per body field for writes.

False-positive assumptions: clients that PUT whole objects back write every
field, so those fields become writable quickly (several writers); a field
name alone never alerts.
"""

from __future__ import annotations

import re
from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.vocabulary import IDENTIFIED as _IDENTIFIED
from apiward.detect.facts import facts
from apiward.detect.objects import (
    LRU,
    Followups,
    field_noun,
    issued_token,
    response_items,
    token_claims,
)
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["ReadonlyWrite"]

_WRITES = frozenset({"POST", "PUT", "PATCH"})
_PRIV_FIELD = re.compile(
    r"role|admin|permission|privilege|scope|group|balance|credit|owner|verified|approved|staff|superuser|tier|plan"
    r"|account_?type|user_?type|is_?active|price|discount|quota|points|karma|level|trusted|internal",
    re.IGNORECASE,
)
_STRONG_PRIV = re.compile(r"role|admin|permission|privilege|superuser|staff|balance|credit|owner|is_?verified", re.IGNORECASE)
_PLAIN_ROLE = frozenset({"user", "customer", "member", "guest", "basic", "free", "viewer", "reader", "default", "none", ""})


_priv_cache: dict[str, bool] = {}
_UNSET: Any = object()
#: Keys that wrap the object itself in request and response bodies
#: (``{"data": {...}}``, JSON:API ``{"data": {"attributes": {...}}}``).
_ENVELOPES = ("data", "attributes", "record", "item", "object", "resource")


def _unwrap(doc: Any) -> Any:
    """The object inside an envelope of at most three keys (``{"data":
    {...}, "permissions": {...}}``), two levels at most; ``doc`` otherwise."""
    for _ in range(2):
        if not isinstance(doc, dict) or len(doc) > 3:
            return doc
        for k in _ENVELOPES:
            inner = doc.get(k)
            if isinstance(inner, dict) and inner:
                doc = inner
                break
        else:
            return doc
    return doc


def _is_priv(field: str) -> bool:
    r = _priv_cache.get(field)
    if r is None:
        r = _PRIV_FIELD.search(field) is not None
        if len(_priv_cache) < 20_000:
            _priv_cache[field] = r
    return r


def _elevating(value: Any) -> bool:
    if value is True:
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, str):
        return value.lower() not in _PLAIN_ROLE and value.lower() not in ("false", "0", "no")
    if isinstance(value, list):
        return any(_elevating(v) for v in value)
    return False


def _same(a: Any, b: Any) -> bool:
    """Equal, counting ``True``/``1``/``"true"`` as one value (APIs echo
    booleans as integers)."""
    if a == b:
        return True
    t = (True, 1, "1", "true", "True")
    return a in t and b in t


def _echoes(doc: Any, values: dict[str, Any]) -> list[str]:
    """Escalated fields a response object carries with their escalated value."""
    if not isinstance(doc, dict):
        return []
    return [f for f, v in values.items() if f in doc and _same(doc[f], v)]


class _Kind:
    __slots__ = ("returned", "responses", "written", "writers", "write_calls", "flagged", "priv")

    def __init__(self) -> None:
        self.returned: dict[str, int] = {}
        self.responses = 0
        self.written: dict[str, set[str]] = {}
        self.writers: set[str] = set()
        self.write_calls = 0
        self.flagged: dict[str, set[str]] = {}
        self.priv: set[str] = set()

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


class ReadonlyWrite(DetectorBase):
    """A write sets a field that only the API sets (mass assignment)."""

    id = "mass_assignment.readonly_write"
    title = "Write to a read-only or privileged field (mass assignment)"
    severity = "high"
    owasp = "API3:2023"
    attack = "T1098"
    tactic = "privilege-escalation"
    cwe = "CWE-915"

    def __init__(
        self,
        *,
        min_returned: int = 5,
        min_writers: int = 3,
        min_write_calls: int = 10,
        busy_write_calls: int = 30,
        adapt_writers: int = 2,
        full_learning: int = 200,
        sample_every: int = 8,
        max_kinds: int = 5_000,
        max_fields: int = 256,
        followup_s: float = 86_400.0,
        followup_calls: int = 30,
        few_regular: int = 2,
    ) -> None:
        self.min_returned = min_returned
        self.min_writers = min_writers
        self.min_write_calls = min_write_calls
        self.busy_write_calls = busy_write_calls
        self.adapt_writers = adapt_writers
        self.full_learning = full_learning
        self.sample_every = sample_every
        self.max_fields = max_fields
        self._kind: LRU[str, _Kind] = LRU(max_kinds)
        self._last_flag: tuple[str, frozenset[str]] = ("", frozenset())
        self._values: LRU[str, dict[str, Any]] = LRU(max_kinds * 20)
        self.followup_s = followup_s
        self.few_regular = few_regular
        # after an escalation: its key and values per actor, per source address (sign-ups), and the calls made with it
        self._escalated: LRU[str, tuple[str, dict[str, Any], float]] = LRU(10_000)
        self.sessions = Followups(followup_s, followup_calls, 10_000)
        self._fn: LRU[str, list[Any]] = LRU(max_kinds * 4)  # endpoint -> [regular principals, privileged successes]

    def _followup(self, call: ApiCall, ctx: Context) -> list[Finding]:
        """Calls that show an escalation took: a login from the address
        that over-posted at sign-up whose token carries the escalated
        values; responses echoing them to the escalated principal; admin-only
        functions it now calls with privileged claims."""
        resp = call.response
        if resp is None or resp.status < 200 or resp.status >= 300:
            return []
        st = resp.status
        req = call.request
        actor = call.actor
        why = ""
        key = None
        if actor.kind == "ip" or actor.kind == "anonymous":
            if req.method != "POST" or not req.body:
                return []
            esc = self._escalated.get("ip:" + (actor.ip or call.src.ip))
            if esc is None or call.ts > esc[2]:
                return []
            if facts(call, ctx).login_form is None:
                return []
            tok = issued_token(call)
            hit = _echoes(token_claims(tok), esc[1]) if tok else []
            if not hit:
                return []
            key = esc[0]
            why = f"the credential it issued carries {', '.join(hit)}"
            self.sessions.watch(call, key, token=tok)
        else:
            key = self.sessions.match(call)
            if key is None:
                return []
            values: dict[str, Any] = {}
            keys: dict[str, str] = {}
            for src in (self._escalated.get(key), self._escalated.get(actor.key)):
                if src is not None:
                    values.update(src[1])
                    keys.update(dict.fromkeys(src[1], src[0]))
            resp = call.response
            hit = []
            if resp is not None and resp.body:
                items, listing = response_items(resp.json(), 1)
                if items and not listing:
                    hit = _echoes(items[0], values)
            if hit:
                why = f"the response echoes {', '.join(hit)}"
                key = keys.get(hit[0], key)
            elif facts(call, ctx).caller_privileged:
                fn = self._fn.get(facts(call, ctx).ep_key)
                if fn is not None and fn[1] >= 1 and len(fn[0] - {actor.key}) <= self.few_regular:
                    why = "a function only privileged principals use, called with the escalated role"
            if not why:
                return []
        return [self.finding(call, ctx, summary=f"{actor.display}: after the mass assignment, {why}",
                             evidence={"after_escalation": why, "status": st}, confidence=0.75, key=key)]

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        resp = call.response
        if resp is None or resp.status < 200 or resp.status >= 300:
            return []  # follow-ups and over-posting both need a success
        req = call.request
        out: list[Finding] = []
        if self._escalated:
            actor = call.actor
            if actor.kind == "ip" or actor.kind == "anonymous":
                if req.method == "POST" and req.body:
                    out = self._followup(call, ctx)
            else:
                ses = self.sessions  # inline the common miss of Followups.match: a caller nobody follows
                if actor.key in ses._act or (actor.token_id and actor.token_id in ses._tid) or ses._ip:
                    out = self._followup(call, ctx)
        if req.method not in _WRITES or not req.body:
            return out
        st = resp.status
        params = req.params()
        if not params:
            return out
        inner = _unwrap(params)
        if inner is not params and isinstance(inner, dict):
            # the object inside an envelope: only the from-the-first-event rule (a strongly
            # privilege-like field set to an elevating value and echoed back) applies there
            params = {**params, **{k: v for k, v in inner.items() if isinstance(k, str) and _STRONG_PRIV.search(k) and _elevating(v)}}
        ep = ctx.endpoint
        kk = facts(call, ctx).kind_key
        kind = self._kind.get(kk)
        me = call.actor.key
        echo_doc: Any = _UNSET  # the response object, parsed when a field needs it
        warm = kind is not None and kind.write_calls >= self.min_write_calls and len(kind.writers) >= self.min_writers
        busy = warm and kind is not None and kind.write_calls >= self.busy_write_calls and len(kind.writers) >= 2 * self.min_writers
        last: Any = _UNSET
        hits: list[dict[str, Any]] = []
        for f, v in params.items():
            if not isinstance(f, str):
                continue
            if kind is not None:
                wr = kind.written.get(f)
                fl = kind.flagged.get(f)
                others = (len(wr) - (me in wr) if wr else 0) + (len(fl) - (me in fl) if fl else 0)
                if others >= self.adapt_writers:
                    continue
            priv = _is_priv(f)
            if priv:
                if last is _UNSET:
                    last = self._values.get(me + "|" + kk)
                if last is not None and f in last and last[f] == v:
                    continue  # writing back the value the API gave this principal: unchanged
            if echo_doc is _UNSET:
                echo_doc = None
                resp = call.response
                if resp is not None and resp.body:
                    items, _ = response_items(resp.json(), 1)
                    echo_doc = items[0] if items else None
                    if echo_doc is not None and inner is not params:
                        echo_doc = {**echo_doc, **(_unwrap(echo_doc) if isinstance(_unwrap(echo_doc), dict) else {})}
            echoed = echo_doc is not None and f in echo_doc and echo_doc[f] == v
            returned = kind.returned.get(f, 0) if kind is not None else 0
            readonly = warm and returned >= self.min_returned
            conf = 0.0
            if readonly and priv and _elevating(v):
                conf = 0.65 + 0.15 + 0.15 * echoed
            elif priv and echoed and _STRONG_PRIV.search(f) and _elevating(v):
                conf = 0.7
            elif readonly and busy and not priv and field_noun(f):  # a reference: re-parenting the object
                conf = 0.55 + 0.1 * echoed
            elif warm and returned == 0 and _STRONG_PRIV.search(f) and _elevating(v) and not (kind and kind.written.get(f)):
                conf = 0.5  # an attempt: a privilege field the kind never returns and nobody writes
            if conf:
                hits.append({"field": f, "privilege_like": priv, "echoed": echoed, "returned_by_api": returned, "confidence": conf,
                             "value": v if isinstance(v, (bool, int, float)) or (isinstance(v, str) and len(v) <= 32) else None})
        if not hits:
            return out
        self._last_flag = (call.id, frozenset(h["field"] for h in hits))
        fields = [h["field"] for h in hits]
        key = f"{self.id}|{me}|{ep.key}"
        esc = {h["field"]: h["value"] for h in hits if h["privilege_like"] and h["value"] is not None and h["confidence"] > 0.5}
        if esc:
            until = call.ts + self.followup_s
            self._escalated.put(key, (key, esc, until))
            if call.actor.kind in ("ip", "anonymous"):
                self._escalated.put(f"ip:{call.actor.ip or call.src.ip}", (key, esc, until))
            else:
                prev = self._escalated.get(me)
                self._escalated.put(me, (key, {**(prev[1] if prev else {}), **esc}, until))
                self.sessions.watch_actor(call, key)
        return out + [
            self.finding(
                call,
                ctx,
                summary=f"{call.actor.display} wrote read-only field(s) {', '.join(fields)} on {ep.name}"
                + (" and the response echoed the new value" if any(h["echoed"] for h in hits) else ""),
                evidence={"fields": hits, "writers_of_kind": len(kind.writers) if kind else 0, "status": st},
                confidence=min(0.97, max(h["confidence"] for h in hits)),
                key=key,
            )
        ]

    def _learn_fields(self, kind: _Kind, doc: Any) -> None:
        items, _ = response_items(doc, 5)
        ret = kind.returned
        cap = self.max_fields
        for it in items:
            for k in it:
                n = ret.get(k)
                if n is not None:
                    ret[k] = n + 1
                elif len(ret) < cap:
                    ret[k] = 1
                    if isinstance(k, str) and _is_priv(k):
                        kind.priv.add(k)

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        resp = call.response
        if resp is None or resp.status < 200 or resp.status >= 300:
            return
        actor = call.actor
        if actor.jwt_claims:
            # only "any privileged success" and up to 9 regular principals are ever read
            ek = facts(call, ctx).ep_key
            fns = self._fn
            fn = fns.get(ek)
            if fn is not None:
                fns.move_to_end(ek)
            if fn is None or not fn[1] or len(fn[0]) <= 8:
                p = facts(call, ctx).caller_privileged
                if p is not None:
                    if fn is None:
                        fn = [set(), 0]
                        fns.put(ek, fn)
                    if p:
                        fn[1] += 1
                    elif len(fn[0]) <= 8:
                        fn[0].add(actor.key)
        ep = ctx.endpoint
        req = call.request
        write = req.method in _WRITES and bool(req.body)
        doc = resp.json() if resp.body else None
        if not write and doc is None:
            return
        kk = facts(call, ctx).kind_key
        if kk[-1] == "|":
            return  # no noun: not an object endpoint
        kinds = self._kind
        kind = kinds.get(kk)
        if kind is None:
            kind = _Kind()
            kinds.put(kk, kind)
        else:
            kinds.move_to_end(kk)
        if doc is not None:
            kind.responses += 1
            if kind.responses <= self.full_learning or kind.responses % self.sample_every == 0:
                self._learn_fields(kind, doc)
            if kind.priv and ep.path_params and actor.kind in _IDENTIFIED and isinstance(doc, dict):
                # privilege-like values the API gave this principal, to tell a write-back from a change
                # (principals only: an address reading a catalogue does not write it back)
                vals = {k: doc[k] for k in kind.priv if k in doc and not isinstance(doc[k], (dict, list))}
                if vals:
                    self._values.put(actor.key + "|" + kk, vals)
        if not write:
            return
        params = req.params()
        if not params:
            return
        me = call.actor.key
        kind.write_calls += 1
        if len(kind.writers) < 64:
            kind.writers.add(me)
        flagged = self._last_flag[1] if self._last_flag[0] == call.id else frozenset()
        for f in params:
            if not isinstance(f, str):
                continue
            if f in flagged:
                fl = kind.flagged.setdefault(f, set())
                if len(fl) < 16:
                    fl.add(me)
                continue
            wr = kind.written.get(f)
            if wr is None:
                if len(kind.written) >= self.max_fields:
                    continue
                wr = kind.written[f] = set()
            if len(wr) < 8:
                wr.add(me)
