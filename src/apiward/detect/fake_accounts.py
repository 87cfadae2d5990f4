"""``fake_accounts.signup_burst``: automated account creation.

A sign-up is recognised from traffic: a 2xx POST whose body names a new
principal (an e-mail or user-like field, usually with a password) and whose
answer is 201, or carries the new object's id, or echoes the name back; an
endpoint whose successful names keep recurring is a login form, not a
sign-up, and is ignored. No path is assumed.

Flags, within ``window_s``:

- one source (client IP, else actor) creating ``source_accounts`` accounts;
- patterned names: ``pattern_accounts`` sign-ups whose user or e-mail local
  part shares a stem once digit runs are removed (``promo.bot017``,
  ``promo.bot018``...);
- a domain burst: ``domain_accounts`` sign-ups from an e-mail domain that
  first appeared after ``domain_history`` sign-ups and within the window,
  making ``domain_share`` of the sign-ups since it appeared;
- accounts created and then logged into by their creator:
  ``reuse_accounts`` distinct new accounts used from the source that made
  them.

Over days (``slow_window_s``): ``slow_pattern_accounts`` patterned names
from at most half as many sources, or ``slow_source_accounts`` accounts from
one source. The logins into accounts a finding names join it (they were
made to be used).

Adapt: normal sign-up waves are many sources with diverse names and
domains; none of the measures above grows with them. The per-source counts
(accounts made, accounts made and then used) must also stand out from what
the source did while learning and from its peers
(:class:`~apiward.learn.norms.Norms`): an office, a campus NAT or a
partner's onboarding tool that creates a few accounts an hour and logs into
them, as it did while apiward learned, is not a bot farm.

Cost per event: an early exit for every non-POST or non-2xx call; a few
dict and ring operations for sign-ups. Names are kept as short digests
except stems (no digits) and domains.

False-positive assumptions: shared NAT addresses rarely create more than a
few accounts an hour; people whose names differ only by digits sign up
rarely in the same hour.
"""

from __future__ import annotations

import re
from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.facts import facts
from apiward.detect.objects import LRU, Ring, digest, id_like
from apiward.learn.norms import Norms
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["SignupBurst"]

_EMAIL_KEYS = ("email", "mail", "email_address", "emailAddress", "emailaddress")
_NAME_KEYS = ("username", "user_name", "userName", "login", "handle", "nickname", "name", "user")
_PASSWORD_KEYS = frozenset({"password", "passwd", "pwd", "pass", "passphrase"})
_DIGITS = re.compile(r"\d+")


def _stem(name: str) -> str:
    """``promo.bot017`` -> ``promo.bot#``; ``""`` when there are no digits
    or too little else to be a pattern."""
    s, n = _DIGITS.subn("#", name.lower())
    if not n or sum(c.isalpha() for c in s) < 3:
        return ""
    return s


class _Sig:
    __slots__ = ("ts", "eid", "src", "user", "acct")

    def __init__(self, ts: float, eid: str, src: str, user: str, acct: str = "") -> None:
        self.ts, self.eid, self.src, self.user, self.acct = ts, eid, src, user, acct

    def __getstate__(self) -> Any:
        return (self.ts, self.eid, self.src, self.user, self.acct)

    def __setstate__(self, s: Any) -> None:
        self.acct = ""
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


class _Acct:
    """A created account: who made it, the logins into it, and the finding
    it belongs to once flagged."""

    __slots__ = ("src", "logins", "key")

    def __init__(self, src: str) -> None:
        self.src = src
        self.logins: list[str] = []
        self.key = ""

    def __getstate__(self) -> Any:
        return (self.src, self.logins, self.key)

    def __setstate__(self, s: Any) -> None:
        self.src, self.logins, self.key = s


class _Ep:
    __slots__ = ("ok", "repeats", "names", "ring")

    def __init__(self) -> None:
        self.ok = 0
        self.repeats = 0
        self.names: LRU[str, bool] = LRU(5_000)
        self.ring: Ring = Ring(256)

    def __getstate__(self) -> Any:
        return (self.ok, self.repeats, self.names, self.ring)

    def __setstate__(self, s: Any) -> None:
        self.ok, self.repeats, self.names, self.ring = s


class SignupBurst(DetectorBase):
    """Automated sign-ups: bursts per source, patterned names, new domains."""

    id = "fake_accounts.signup_burst"
    title = "Fake account creation"
    severity = "medium"
    owasp = "API6:2023"
    attack = "T1585"
    tactic = "resource-development"
    cwe = "CWE-799"

    def __init__(
        self,
        *,
        window_s: float = 3600.0,
        source_accounts: int = 5,
        pattern_accounts: int = 5,
        domain_accounts: int = 8,
        domain_share: float = 0.8,
        reuse_accounts: int = 3,
        domain_history: int = 20,
        slow_window_s: float = 259_200.0,
        slow_pattern_accounts: int = 6,
        slow_source_accounts: int = 8,
        max_keys: int = 100_000,
    ) -> None:
        self.slow_window_s = slow_window_s
        self.slow_pattern_accounts = slow_pattern_accounts
        self.slow_source_accounts = slow_source_accounts
        self._acct: LRU[str, _Acct] = LRU(max_keys)
        self.window_s = window_s
        self.source_accounts = source_accounts
        self.pattern_accounts = pattern_accounts
        self.domain_accounts = domain_accounts
        self.domain_share = domain_share
        self.reuse_accounts = reuse_accounts
        self.domain_history = domain_history
        self._ep: LRU[str, _Ep] = LRU(2_000)
        self._src: LRU[str, Ring] = LRU(max_keys)
        self._stem: LRU[str, Ring] = LRU(max_keys)
        self._domain_first: LRU[str, tuple[float, int]] = LRU(max_keys)
        self._domain: LRU[str, Ring] = LRU(max_keys)
        self._creator: LRU[str, str] = LRU(max_keys)
        self._reuse: LRU[str, Ring] = LRU(max_keys)
        self._cur: tuple[str, Any] = ("", None)
        self.norms = Norms()

    # -- recognition ------------------------------------------------------------
    def _signup(self, call: ApiCall, ctx: Context) -> tuple[str, str, str, str] | None:
        """``(name, email domain, source, email)`` when ``call`` is a sign-up."""
        if self._cur[0] == call.id:
            return self._cur[1]
        out = self._parse(call, ctx)
        self._cur = (call.id, out)
        return out

    def _parse(self, call: ApiCall, ctx: Context) -> tuple[str, str, str, str] | None:
        req = call.request
        st = call.status
        if req.method != "POST" or st < 200 or st >= 300 or not req.body:
            return None
        ep = self._ep.get(facts(call, ctx).ep_key)
        if ep is not None and ep.ok >= 10 and ep.repeats * 5 > ep.ok:
            return None  # names recur: a login or profile form
        params = req.params()
        if not params or len(params) > 40:
            return None
        if st != 201 and len(params) <= 2 and facts(call, ctx).login_form is not None and facts(call, ctx).issues_token:
            return None  # a two-field login that returns the user
        email = ""
        for k in _EMAIL_KEYS:
            v = params.get(k)
            if isinstance(v, str) and "@" in v:
                email = v.strip().lower()
                break
        name = ""
        for k in _NAME_KEYS:
            v = params.get(k)
            if isinstance(v, str) and v and "@" not in v:
                name = v.strip().lower()
                break
        if not email and not name:
            return None
        has_pwd = any(isinstance(k, str) and k.lower() in _PASSWORD_KEYS for k in params)
        created = st == 201
        if not created:
            doc = call.response.json() if call.response is not None else None
            if isinstance(doc, dict):
                inner = doc.get("user") if isinstance(doc.get("user"), dict) else doc
                v = inner.get("id", inner.get("user_id"))
                created = (v is not None and id_like(v)) or (email and inner.get("email") == email) or (name and inner.get("username") == name)
        if not created or not (has_pwd or (email and name)):
            return None
        ip = call.actor.ip or call.src.ip
        src = f"ip:{ip}" if ip else call.actor.key
        local = (email.partition("@")[0] if email else "") or name
        return (name or local, email.partition("@")[2] if email else "", src, email)

    # -- scoring ---------------------------------------------------------------
    def _recent(self, ring: Ring | None, now: float, window_s: float | None = None) -> list[_Sig]:
        if not ring:
            return []
        h = now - (self.window_s if window_s is None else window_s)
        return [s for s in ring if s.ts >= h]

    @staticmethod
    def _acct_key(name: str, email: str) -> str:
        return digest(email or name)

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        req = call.request
        if req.method != "POST" or not req.body:
            return []
        resp = call.response
        if resp is None or resp.status < 200 or resp.status >= 300:
            self._cur = (call.id, None)  # neither a sign-up nor a successful login
            return []
        su = self._signup(call, ctx)
        if su is None:
            return self._score_reuse(call, ctx)
        name, domain, src, email = su
        now = call.ts
        me = _Sig(now, call.id, src, digest(name), self._acct_key(name, email))
        out: list[Finding] = []
        scope = call.request.host
        by_src = self._recent(self._src.get(src), now) + [me]
        stands, nev = (self.norms.stands_out("source_accounts", scope, src, len(by_src), floor=self.source_accounts)
                       if len(by_src) >= self.source_accounts else (False, {}))
        if stands:
            out.append(self._f(call, ctx, f"src|{src}", by_src,
                               f"{src} created {len(by_src)} accounts within {self.window_s:.0f}s",
                               {"source": src, "accounts": len(by_src), "norms": nev}, min(0.95, 0.6 + 0.04 * len(by_src))))
        elif len(by_src) < self.source_accounts:
            slow = self._recent(self._src.get(src), now, self.slow_window_s) + [me]
            if len(slow) >= self.slow_source_accounts:
                stands, nev = self.norms.stands_out("source_accounts_slow", scope, src, len(slow), floor=self.slow_source_accounts)
                if stands:
                    out.append(self._f(call, ctx, f"src|{src}", slow,
                                       f"{src} created {len(slow)} accounts over {(now - slow[0].ts) / 3600.0:.1f}h",
                                       {"source": src, "accounts": len(slow), "hours": round((now - slow[0].ts) / 3600.0, 1),
                                        "norms": nev}, 0.6))
        stem = _stem(name)
        if stem:
            by_stem = self._recent(self._stem.get(stem), now) + [me]
            if len(by_stem) >= self.pattern_accounts:
                out.append(self._f(call, ctx, f"stem|{stem}", by_stem,
                                   f"{len(by_stem)} accounts named like '{stem}' created from {len({s.src for s in by_stem})} source(s)",
                                   {"pattern": stem, "accounts": len(by_stem), "sources": len({s.src for s in by_stem})}, 0.8))
            else:
                # days apart, from few sources: a patient bot; people sharing a name sign up from their own addresses
                slow = self._recent(self._stem.get(stem), now, self.slow_window_s) + [me]
                nsrc = len({s.src for s in slow})
                if len(slow) >= self.slow_pattern_accounts and 2 * nsrc <= len(slow):
                    out.append(self._f(call, ctx, f"stem|{stem}", slow,
                                       f"{len(slow)} accounts named like '{stem}' created from {nsrc} source(s) over {(now - slow[0].ts) / 3600.0:.1f}h",
                                       {"pattern": stem, "accounts": len(slow), "sources": nsrc,
                                        "hours": round((now - slow[0].ts) / 3600.0, 1)}, 0.7))
        if domain:
            ep = self._ep.get(facts(call, ctx).ep_key)
            done = ep.ok if ep is not None else 0
            first = self._domain_first.get(domain)
            if first is None:
                first = (now, done)
            if first[1] >= self.domain_history and first[0] >= now - self.window_s:
                by_dom = self._recent(self._domain.get(domain), now) + [me]
                since = done - first[1] + 1
                if len(by_dom) >= self.domain_accounts and len(by_dom) >= self.domain_share * since:
                    out.append(self._f(call, ctx, f"domain|{domain}", by_dom,
                                       f"{len(by_dom)} of {since} sign-ups since it first appeared use the new domain {domain}",
                                       {"domain": domain, "accounts": len(by_dom), "signups_since_first_seen": since}, 0.65))
        return out

    def _score_reuse(self, call: ApiCall, ctx: Context) -> list[Finding]:
        lu = facts(call, ctx).login_user
        if lu is None:
            return []
        lf, user = lu, lu[1]
        acct = self._acct.get(user)
        if acct is not None and acct.key:
            # a login into an account already found fake
            return [self.finding(call, ctx, summary=f"login into an automatically created account ({lf[0][:64]})",
                                 evidence={"account": lf[0][:64]}, confidence=0.7, key=acct.key)]
        used = self._reused(call, user)
        if used is None or len({s.user for s in used}) < self.reuse_accounts:
            return []
        src = used[-1].src
        stands, nev = self.norms.stands_out("reused_accounts", call.request.host, src, len(used), floor=self.reuse_accounts)
        if not stands:
            return []
        return [self._f(call, ctx, f"reuse|{src}", used,
                        f"{src} logged into {len(used)} accounts it had just created",
                        {"source": src, "accounts_used": len(used), "norms": nev}, 0.75)]

    def _reused(self, call: ApiCall, user: str) -> list[_Sig] | None:
        """A login by the source that created the account: the source's
        recent created-then-used accounts (``None`` for other logins)."""
        ip = call.actor.ip or call.src.ip
        src = f"ip:{ip}" if ip else call.actor.key
        if self._creator.get(user) != src:
            return None
        ring = self._reuse.get_or(src, lambda: Ring(64))
        if not any(s.user == user for s in ring):
            ring.push(_Sig(call.ts, call.id, src, user))
        return self._recent(ring, call.ts)

    def _flagged(self, call: ApiCall, ctx: Context) -> bool:
        trust = ctx.trust
        return facts(call, ctx).flagged or (trust is not None and trust.flagged(call.actor.key, call.ts))

    def _f(self, call: ApiCall, ctx: Context, key: str, sigs: list[_Sig], summary: str, evidence: dict[str, Any], conf: float) -> Finding:
        fkey = f"{self.id}|{key}"
        eids = [s.eid for s in sigs][-64:]
        for s in sigs[-64:]:
            # the accounts' own logins are part of the evidence: made to be used
            a = self._acct.get_or(s.acct, lambda: _Acct(s.src)) if s.acct else None
            if a is not None:
                if not a.key:
                    a.key = fkey
                eids.extend(a.logins)
        return self.finding(
            call, ctx, summary=summary, evidence=evidence, confidence=conf,
            key=fkey, event_ids=eids, first_seen=sigs[0].ts,
        )

    # -- learning ----------------------------------------------------------------
    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        req = call.request
        if req.method != "POST" or not req.body:
            return
        su = self._cur[1] if self._cur[0] == call.id else self._signup(call, ctx)
        learn_mode = ctx.mode == "learn"
        if su is None:
            if self._acct or self._creator:
                lu = facts(call, ctx).login_user
                if lu is not None:
                    a = self._acct.get(lu[1])
                    if a is not None and len(a.logins) < 4:
                        a.logins.append(call.id)
                    resp = call.response
                    if resp is not None and 200 <= resp.status < 300:
                        used = self._reused(call, lu[1]) if learn_mode else None
                        if learn_mode or self._creator.get(lu[1]):
                            ip = call.actor.ip or call.src.ip
                            src = f"ip:{ip}" if ip else call.actor.key
                            ring = self._reuse.get(src)
                            n = len({s.user for s in (used if used is not None else self._recent(ring, call.ts))})
                            if n:
                                self.norms.observe("reused_accounts", call.request.host, src, n, window=int(call.ts // self.window_s),
                                                   learn_mode=learn_mode, flagged=self._flagged(call, ctx))
            return
        name, domain, src, email = su
        now = call.ts
        d = digest(name)
        ep = self._ep.get_or(facts(call, ctx).ep_key, _Ep)
        ep.ok += 1
        if d in ep.names:
            ep.repeats += 1
        else:
            ep.names.put(d, True)
        ak = self._acct_key(name, email)
        sig = _Sig(now, call.id, src, d, ak)
        if ak not in self._acct:
            self._acct.put(ak, _Acct(src))
        ep.ring.push(sig)
        ring = self._src.get_or(src, lambda: Ring(64))
        ring.push(sig)
        flagged = self._flagged(call, ctx)
        self.norms.observe("source_accounts", call.request.host, src, len(self._recent(ring, now)), window=int(now // self.window_s),
                           learn_mode=learn_mode, flagged=flagged)
        self.norms.observe("source_accounts_slow", call.request.host, src, len(self._recent(ring, now, self.slow_window_s)),
                           window=int(now // self.slow_window_s), learn_mode=learn_mode, flagged=flagged)
        stem = _stem(name)
        if stem:
            self._stem.get_or(stem, lambda: Ring(64)).push(sig)
        if domain:
            if domain not in self._domain_first:
                self._domain_first.put(domain, (now, ep.ok - 1))
            self._domain.get_or(domain, lambda: Ring(64)).push(sig)
        self._creator.put(d, src)
        if email:
            self._creator.put(digest(email), src)
