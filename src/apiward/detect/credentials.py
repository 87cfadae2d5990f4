"""``credentials.stuffing`` and ``credentials.account_takeover``: attacks on
the login flow, recognised from traffic.

A login attempt is a POST/PUT whose body carries a credential pair (a
password-like field and a user-like field, see
:func:`apiward.detect.objects.login_fields`); it succeeded when the answer
is 2xx and hands out a credential (a token-named field or ``Set-Cookie``),
failed on 401/403/429, on 404 ("no such user") from an endpoint known to
be a login, or on a 2xx without a credential from an endpoint that does
hand them out. Sign-up forms (201 answers) are not logins. No path
is assumed.

``credentials.stuffing`` flags, within ``window_s``:

- credential stuffing: one source (client IP, else actor) tries
  ``stuffing_users`` distinct usernames, mostly failing;
- brute force: one username fails ``brute_failures`` times (any sources);
- password spraying: one password (keyed digest, never the value) fails
  for ``spray_users`` distinct usernames, from any number of sources;
- distributed stuffing: ``distributed_users`` distinct usernames failing on
  one login endpoint from ``distributed_sources`` sources, at a failure
  ratio far above the endpoint's learned norm.

``credentials.account_takeover`` flags a successful login right after such
evidence: the account failed ``ato_failures`` times, or the source was
stuffing/spraying, or a known account (``known_logins`` earlier successes)
logs in from a new IP and new user agent while that source fails on other
accounts; and, within ``followup_s`` of a takeover, a login to the same
account from yet another address and client (the attacker moving to its
own device) joins the same finding.

Cost per event: an early exit on method and body for every non-login call;
for login attempts, a few ring-buffer scans (<= 64 entries). Usernames and
passwords are kept only as short keyed digests.

False-positive assumptions: users mistype a few times (thresholds are well
above that); a NAT'ed office is one source but rarely tries many distinct
usernames mostly failing.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.objects import LRU, Ring, has_token, login_fields
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["Stuffing", "AccountTakeover", "LoginTracker"]


class _Ep:
    __slots__ = ("tokens", "fails", "signups", "attempts", "fail_rate", "ring")

    def __init__(self) -> None:
        self.tokens = 0
        self.fails = 0
        self.signups = 0
        self.attempts = 0
        self.fail_rate = 0.0
        self.ring: Ring = Ring(256)

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


class Attempt:
    """One login attempt; ``user`` is a digest, ``name`` the username as
    typed (capped), ``pwd`` a per-instance salted digest of the password."""

    __slots__ = ("ts", "user", "pwd", "ok", "eid", "src", "ip", "ua", "ep", "name")

    def __init__(self, ts: float, user: str, pwd: str, ok: bool, eid: str, src: str, ip: str, ua: str, ep: str, name: str = "") -> None:
        self.ts, self.user, self.pwd, self.ok, self.eid = ts, user, pwd, ok, eid
        self.src, self.ip, self.ua, self.ep, self.name = src, ip, ua, ep, name

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


class LoginTracker:
    """Recognises login attempts and keeps bounded recent history per source,
    username, password digest and endpoint. Score reads it; learn feeds it."""

    def __init__(self, window_s: float, max_keys: int) -> None:
        self.window_s = window_s
        self._salt = os.urandom(8)
        self.ep: LRU[str, _Ep] = LRU(2_000)
        self.src: LRU[str, Ring] = LRU(max_keys)
        self.user: LRU[str, Ring] = LRU(max_keys)
        self.pwd: LRU[str, Ring] = LRU(max_keys)
        self.known: LRU[str, list[Any]] = LRU(max_keys)
        self._cur: tuple[str, Attempt | None] = ("", None)

    def _digest(self, value: str, salt: bytes = b"apiward-login") -> str:
        return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), key=salt, digest_size=6).hexdigest()

    def attempt(self, call: ApiCall, ctx: Context) -> Attempt | None:
        """The login attempt ``call`` is, or ``None``. Cached per call."""
        if self._cur[0] == call.id:
            return self._cur[1]
        att = self._parse(call, ctx)
        self._cur = (call.id, att)
        return att

    def _parse(self, call: ApiCall, ctx: Context) -> Attempt | None:
        req = call.request
        if req.method != "POST" and req.method != "PUT":
            return None
        if not req.body or call.response is None:
            return None
        lf = login_fields(req.params())
        if lf is None:
            return None
        st = call.status
        ep = self.ep.get(ctx.endpoint.key)
        if st == 201 or (ep is not None and ep.signups > 2 * (ep.tokens + ep.fails) + 2):
            return None  # a sign-up form
        if 200 <= st < 300:
            ok = has_token(call)
            if not ok and (ep is None or ep.tokens < 3):
                return None  # not known to be a login endpoint
        elif st in (401, 403, 429):
            ok = False
        elif st == 404 and ep is not None and ep.tokens + ep.fails > 0:
            ok = False  # "no such user" from a known login endpoint
        else:
            return None
        user, pwd, _ = lf
        ip = call.actor.ip or call.src.ip
        src = f"ip:{ip}" if ip else call.actor.key
        name = user.strip().lower()[:64]
        return Attempt(call.ts, self._digest(name), self._digest(pwd, self._salt), ok, call.id, src, ip,
                       call.actor.user_agent or req.header("user-agent") or "", ctx.endpoint.key, name)

    def recent(self, ring: Ring | None, now: float) -> list[Attempt]:
        if not ring:
            return []
        horizon = now - self.window_s
        return [a for a in ring if a.ts >= horizon]

    def learn(self, call: ApiCall, ctx: Context) -> None:
        req = call.request
        if req.method != "POST" and req.method != "PUT":
            return
        if call.status == 201 and req.body and login_fields(req.params()) is not None:
            self.ep.get_or(ctx.endpoint.key, _Ep).signups += 1
            return
        a = self.attempt(call, ctx)
        if a is None:
            return
        ep = self.ep.get_or(a.ep, _Ep)
        ep.attempts += 1
        if a.ok:
            ep.tokens += 1
        else:
            ep.fails += 1
            ep.ring.push(a)
        ep.fail_rate = 0.998 * ep.fail_rate + 0.002 * (0.0 if a.ok else 1.0)
        self.src.get_or(a.src, Ring).push(a)
        self.user.get_or(a.user, Ring).push(a)
        self.pwd.get_or(a.pwd, Ring).push(a)
        if a.ok:
            k = self.known.get_or(a.user, lambda: [set(), set(), 0])
            if len(k[0]) < 16:
                k[0].add(a.ip)
            if len(k[1]) < 16:
                k[1].add(a.ua)
            k[2] += 1


def _stats(atts: list[Attempt]) -> tuple[int, int, float]:
    users = {a.user for a in atts}
    fails = sum(1 for a in atts if not a.ok)
    return len(users), fails, (fails / len(atts) if atts else 0.0)


class Stuffing(DetectorBase):
    """Credential stuffing, brute force and password spraying on a login flow."""

    id = "credentials.stuffing"
    title = "Credential stuffing"
    severity = "high"
    owasp = "API2:2023"
    attack = "T1110.004"
    tactic = "credential-access"
    cwe = "CWE-307"

    def __init__(
        self,
        *,
        window_s: float = 900.0,
        stuffing_users: int = 5,
        brute_failures: int = 8,
        spray_users: int = 6,
        distributed_users: int = 20,
        distributed_sources: int = 5,
        min_fail_ratio: float = 0.6,
        max_keys: int = 100_000,
    ) -> None:
        self.stuffing_users = stuffing_users
        self.brute_failures = brute_failures
        self.spray_users = spray_users
        self.distributed_users = distributed_users
        self.distributed_sources = distributed_sources
        self.min_fail_ratio = min_fail_ratio
        self.logins = LoginTracker(window_s, max_keys)

    def _f(self, call: ApiCall, ctx: Context, kind: str, attack: str, key: str, atts: list[Attempt], summary: str, evidence: dict[str, Any], conf: float) -> Finding:
        f = self.finding(
            call, ctx, summary=summary, evidence=evidence, confidence=conf, key=f"{self.id}|{kind}|{key}",
            event_ids=[a.eid for a in atts][-64:], first_seen=atts[0].ts if atts else call.ts,
            title={"stuffing": "Credential stuffing", "brute": "Password brute force", "spray": "Password spraying",
                   "distributed": "Distributed credential stuffing"}[kind],
        )
        f.attack = attack
        return f

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        lt = self.logins
        a = lt.attempt(call, ctx)
        if a is None:
            return []
        out: list[Finding] = []
        now = a.ts
        src = lt.recent(lt.src.get(a.src), now) + [a]
        users, fails, ratio = _stats(src)
        if users >= self.stuffing_users and ratio >= self.min_fail_ratio:
            out.append(self._f(call, ctx, "stuffing", "T1110.004", a.src, src,
                               f"{a.src} tried {users} usernames in {len(src)} logins, {ratio:.0%} failed",
                               {"source": a.src, "usernames": users, "sample_usernames": sorted({x.name for x in src})[:10], "attempts": len(src), "failures": fails,
                                "fail_ratio": round(ratio, 3), "successes": len(src) - fails}, min(0.95, 0.6 + 0.03 * users)))
        if not a.ok:
            ua = lt.recent(lt.user.get(a.user), now) + [a]
            ufails = [x for x in ua if not x.ok]
            if len(ufails) >= self.brute_failures:
                srcs = {x.src for x in ufails}
                out.append(self._f(call, ctx, "brute", "T1110.001", a.user, ufails,
                                   f"account {a.name} failed {len(ufails)} logins from {len(srcs)} source(s)",
                                   {"account": a.name, "failures": len(ufails), "sources": len(srcs)},
                                   min(0.95, 0.6 + 0.02 * len(ufails))))
            pa = lt.recent(lt.pwd.get(a.pwd), now) + [a]
            pusers, pfails, pratio = _stats(pa)
            if pusers >= self.spray_users and pratio >= self.min_fail_ratio:
                srcs = {x.src for x in pa if not x.ok}
                pa = [x for x in pa if x.src in srcs]  # not the real owners of that password logging in
                out.append(self._f(call, ctx, "spray", "T1110.003", a.ep, pa,
                                   f"one password tried against {pusers} usernames from {len(srcs)} source(s)",
                                   {"usernames": pusers, "sample_usernames": sorted({x.name for x in pa})[:10], "attempts": len(pa), "failures": pfails, "sources": len(srcs)},
                                   min(0.95, 0.65 + 0.03 * pusers)))
            ep = lt.ep.get(a.ep)
            if ep is not None and ep.attempts >= 20:
                fa = lt.recent(ep.ring, now) + [a]
                dusers = {x.user for x in fa}
                dsrcs = {x.src for x in fa}
                if len(dusers) >= self.distributed_users and len(dsrcs) >= self.distributed_sources and ep.fail_rate < 0.5:
                    recent_all = len(fa) / max(1.0, now - fa[0].ts)
                    out.append(self._f(call, ctx, "distributed", "T1110.004", a.ep, fa,
                                       f"{len(dusers)} usernames failed from {len(dsrcs)} sources on {ctx.endpoint.name}",
                                       {"usernames": len(dusers), "sources": len(dsrcs), "failures": len(fa),
                                        "endpoint_fail_rate": round(ep.fail_rate, 3), "failures_per_s": round(recent_all, 3)}, 0.7))
        return out

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        self.logins.learn(call, ctx)


class AccountTakeover(DetectorBase):
    """A successful login right after credential attacks on that account or
    from that source."""

    id = "credentials.account_takeover"
    title = "Account takeover after credential attack"
    severity = "critical"
    owasp = "API2:2023"
    attack = "T1078"
    tactic = "initial-access"
    cwe = "CWE-307"

    def __init__(
        self,
        *,
        window_s: float = 900.0,
        ato_failures: int = 5,
        source_users: int = 3,
        spray_users: int = 4,
        known_logins: int = 3,
        followup_s: float = 7200.0,
        max_keys: int = 100_000,
    ) -> None:
        self.followup_s = followup_s
        self._taken: LRU[str, tuple[float, str, str]] = LRU(max_keys)
        self.ato_failures = ato_failures
        self.source_users = source_users
        self.spray_users = spray_users
        self.known_logins = known_logins
        self.logins = LoginTracker(window_s, max_keys)

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        lt = self.logins
        a = lt.attempt(call, ctx)
        if a is None or not a.ok:
            return []
        now = a.ts
        reasons: list[str] = []
        basis: list[Attempt] = []
        uf = [x for x in lt.recent(lt.user.get(a.user), now) if not x.ok]
        if len(uf) >= self.ato_failures:
            reasons.append(f"{len(uf)} failed logins on this account just before")
            basis += uf
        sf = [x for x in lt.recent(lt.src.get(a.src), now) if not x.ok and x.user != a.user]
        other_users = {x.user for x in sf}
        if len(other_users) >= self.source_users:
            reasons.append(f"the source failed on {len(other_users)} other accounts just before")
            basis += sf
        pa = lt.recent(lt.pwd.get(a.pwd), now)
        pf = [x for x in pa if not x.ok and x.user != a.user]
        if len({x.user for x in pf}) >= self.spray_users and len(pf) >= 0.6 * len(pa) and any(x.src == a.src for x in pf):
            reasons.append("the same password failed on other accounts (spraying)")
            basis += pf
        k = lt.known.get(a.user)
        if k is not None and k[2] >= self.known_logins and a.ip not in k[0] and a.ua not in k[1] and len(other_users) >= 2:
            reasons.append("a known account logged in from a new address and client")
            basis += sf
        taken = self._taken.get(a.user)
        if taken is not None and now - taken[0] <= self.followup_s and a.src != taken[1] and a.ua != taken[2]:
            reasons.append(f"the account was taken over {now - taken[0]:.0f}s before; now used from a new address and client")
            basis.append(a)
        if not reasons:
            return []
        seen: set[str] = set()
        eids = []
        for x in sorted(basis, key=lambda x: x.ts)[-63:]:
            if x.eid not in seen:
                seen.add(x.eid)
                eids.append(x.eid)
        eids.append(call.id)
        if self._taken.get(a.user) is None:
            self._taken.put(a.user, (now, a.src, a.ua))
        return [
            self.finding(
                call, ctx,
                summary=f"login to {a.name} succeeded from {a.src} after a credential attack: {'; '.join(reasons)}",
                evidence={"account": a.name, "source": a.src, "reasons": reasons, "user_agent": a.ua[:120]},
                confidence=min(0.97, 0.7 + 0.1 * len(reasons)),
                key=f"{self.id}|{a.user}",
                event_ids=eids,
                first_seen=min((x.ts for x in basis), default=call.ts),
            )
        ]

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        self.logins.learn(call, ctx)
