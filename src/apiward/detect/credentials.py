"""``credentials.stuffing`` and ``credentials.account_takeover``: attacks on
the login flow, recognised from traffic.

A login attempt is a POST/PUT whose body carries a credential pair (a
password-like field and a user-like field, see
:func:`apiward.detect.objects.login_fields`); it succeeded when the answer
is 2xx and hands out a credential (a token-named field or ``Set-Cookie``),
failed on 401/403/429, on 404 ("no such user") from an endpoint known to
be a login, or on a 2xx without a credential from an endpoint that does
hand them out. Sign-up forms (201 answers) are not logins. HTTP Basic
credentials are a login on any call: failed when answered 401, accepted
otherwise on an endpoint that does check them (a run of accepted calls
from one source is one login). No path is assumed.

``credentials.stuffing`` flags, within ``window_s``:

- credential stuffing: one source (client IP, else actor) tries
  ``stuffing_users`` distinct usernames, mostly failing;
- brute force: one username fails ``brute_failures`` times (any sources);
- token guessing: one source presents ``brute_failures`` distinct API
  tokens or keys, each refused (401/403), none accepted;
- password spraying: one password (keyed digest, never the value) fails
  for ``spray_users`` distinct usernames, from any number of sources;
- distributed stuffing: ``distributed_users`` distinct usernames failing on
  one login endpoint from ``distributed_sources`` sources, at a failure
  ratio far above the endpoint's learned norm.

Low and slow (``slow_window_s``, two days by default, over the same bounded
rings): one source failing for ``slow_source_users`` usernames at a failure
ratio of ``slow_fail_ratio`` or more; one password failing for
``slow_spray_users`` usernames; and, per login endpoint, failures for
``slow_unknown_users`` usernames that never logged in, from sources that
mostly fail, each counted once ``resolve_s`` passed without a success (a
first login's typo is followed by one). A busy NAT address fails rarely
relative to its successes; a user's typos are not repeated across usernames.

``credentials.account_takeover`` flags a successful login right after such
evidence: the account failed ``ato_failures`` times (unless the guesses came
from elsewhere and the login from an address the account used before: the
owner coming back), or over days failed
``slow_account_failures`` times from the very source that now succeeds with
no success in between, or the source was stuffing/spraying (within minutes,
or over days at a high failure ratio, or as part of a distributed attack on
the endpoint), or a known account (``known_logins`` earlier successes) logs
in from a new IP and new user agent while that source fails on other
accounts; within ``followup_s`` of a takeover, a login to the same account
from an address it never used (with the taker's client or a new one) joins
the same finding. The calls made with the credential a flagged login
handed out (``session_s``, at most ``session_calls``) join it too: what the
attacker did with the account.

Cost per event: an early exit on method and body for every non-login call
(the takeover detector adds a few set look-ups while a taken-over session
is followed); for login attempts, one parse and one history shared by both
detectors (:meth:`LoginTracker.shared`), and ring-buffer scans (<= 64
entries, the endpoint's 512 failures at most once a minute) only where a
finding is possible: a success from a source or account with no failure in
the window skips them. Usernames and passwords are kept only as short keyed
digests.

False-positive assumptions: users mistype a few times (thresholds are well
above that); a NAT'ed office is one source but rarely tries many distinct
usernames mostly failing.
"""

from __future__ import annotations

import os
from itertools import islice
from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.facts import facts
from apiward.detect.objects import LRU, Followups, Ring, basic_credentials, digest
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["Stuffing", "AccountTakeover", "LoginTracker"]


_names: dict[str, str] = {}  # username -> its digest (memory only: usernames repeat)


class _Ep:
    __slots__ = ("tokens", "fails", "signups", "attempts", "fail_rate", "ring", "campaign_until", "reported")

    def __init__(self) -> None:
        self.tokens = 0
        self.fails = 0
        self.signups = 0
        self.attempts = 0
        self.fail_rate = 0.0
        self.ring: Ring = Ring(512)
        self.campaign_until = 0.0  # a slow distributed campaign is flagged until then
        self.reported = 0.0  # failures up to this time are in the campaign's finding

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        self.campaign_until = self.reported = 0.0
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
    username, password digest and endpoint. Score reads it; learn feeds it.

    ``credentials.stuffing`` and ``credentials.account_takeover`` share one
    tracker when both run with the same window and bounds (see
    :meth:`shared`): one parse and one history per login, learned once per
    call."""

    def __init__(self, window_s: float, max_keys: int) -> None:
        #: username digest -> digests of Basic passwords that were accepted
        self.good_pwd: LRU[str, set[str]] = LRU(max_keys)
        self.window_s = window_s
        self.max_keys = max_keys
        self.seen = 0  # calls learned: two trackers fed the same stream agree on it
        self._learned = ""
        self._salt = os.urandom(8)
        self.ep: LRU[str, _Ep] = LRU(2_000)
        self.src: LRU[str, Ring] = LRU(max_keys)
        self.user: LRU[str, Ring] = LRU(max_keys)
        self.pwd: LRU[str, Ring] = LRU(max_keys)
        self.known: LRU[str, list[Any]] = LRU(max_keys)
        self.fail_at: LRU[str, float] = LRU(2 * max_keys)  # source or username digest -> its latest failure
        self._cur: tuple[str, Attempt | None] = ("", None)

    def __setstate__(self, s: Any) -> None:
        self.__dict__.update(s)
        self.__dict__.setdefault("max_keys", self.src.cap)
        self.__dict__.setdefault("seen", 0)
        self.__dict__.setdefault("_learned", "")
        if "good_pwd" not in s:
            self.good_pwd = LRU(self.max_keys)
        if "fail_at" not in s:  # state from before: rebuild from the rings
            self.fail_at = LRU(2 * self.max_keys)
            for rings in (self.src, self.user):
                for k, ring in rings.items():
                    t = max((a.ts for a in ring if not a.ok), default=None)
                    if t is not None:
                        self.fail_at.put(k, t)

    def failed_since(self, key: str, horizon: float) -> bool:
        """Whether the source or username digest ``key`` failed at or after ``horizon``."""
        t = self.fail_at.get(key)
        return t is not None and t >= horizon

    def shared(self, ctx: Context) -> LoginTracker:
        """The tracker to use for this call: within one pipeline
        (``ctx.shared``) the credential detectors use one tracker when their
        settings agree; outside a pipeline, their own."""
        store = ctx.shared
        if store is None:
            return self
        other = store.get("credentials.logins")
        if other is None:
            store["credentials.logins"] = self
            return self
        if other is self or (other.window_s == self.window_s and other.max_keys == self.max_keys):
            return other  # type: ignore[no-any-return]
        return self

    def _digest(self, value: str, salt: bytes = b"apiward-login") -> str:
        return digest(value, salt)  # keyed with the install's secret

    def attempt(self, call: ApiCall, ctx: Context) -> Attempt | None:
        """The login attempt ``call`` is, or ``None``. Cached per call."""
        if self._cur[0] == call.id:
            return self._cur[1]
        att = self._parse(call, ctx)
        self._cur = (call.id, att)
        return att

    def _parse(self, call: ApiCall, ctx: Context) -> Attempt | None:
        req = call.request
        if (req.method != "POST" and req.method != "PUT") or not req.body:
            return self._parse_basic(call, ctx) if call.actor.auth_scheme == "basic" else None
        if call.response is None:
            return None
        lf = facts(call, ctx).login_form
        if lf is None:
            return self._parse_basic(call, ctx) if call.actor.auth_scheme == "basic" else None
        st = call.status
        ep = self.ep.get(facts(call, ctx).ep_key)
        if st == 201 or (ep is not None and ep.signups > 2 * (ep.tokens + ep.fails) + 2):
            return None  # a sign-up form
        if 200 <= st < 300:
            ok = facts(call, ctx).issues_token
            if not ok and (ep is None or ep.tokens < 3):
                return None  # not known to be a login endpoint
        elif st in (401, 403, 429):
            ok = False
        elif st == 404 and ep is not None and ep.tokens + ep.fails > 0:
            ok = False  # "no such user" from a known login endpoint
        else:
            return None
        return self._attempt(call, ctx, lf[0], lf[1], ok)

    def _parse_basic(self, call: ApiCall, ctx: Context) -> Attempt | None:
        """HTTP Basic credentials are a login on every call: failed when
        answered 401; accepted on any other answer from an endpoint known to
        check them (one that answered 401 before: others ignore them). A
        success is an attempt only when the account's previous attempt was
        not a success from the same source (a session is one login, not one
        per call)."""
        if call.response is None:
            return None
        cred = basic_credentials(call)
        if cred is None:
            return None
        st = call.status
        if st == 401:
            ok = False
        elif st == 403:
            # servers that answer bad Basic credentials 403: a failure when the account has a
            # password that works and this is another one (the right one refused is authorization)
            a = self._attempt(call, ctx, cred[0], cred[1], False)
            good = self.good_pwd.get(a.user)
            return a if good and a.pwd not in good else None
        else:
            ep = self.ep.get(facts(call, ctx).ep_key)
            if st >= 500 or st == 0:
                return None
            if ep is None or ep.fails == 0:
                return None
            ok = True
        a = self._attempt(call, ctx, cred[0], cred[1], ok)
        if ok:
            ring = self.user.get(a.user)
            if ring and ring[-1].ok and ring[-1].src == a.src:
                return None
        return a

    def _good_basic(self, call: ApiCall) -> None:
        """Remember (as digests) a Basic password the server accepted, for
        servers that answer wrong ones 403 (see :meth:`_parse_basic`)."""
        cred = basic_credentials(call)
        if cred is None:
            return
        name = cred[0].strip().lower()[:64]
        udig = _names.get(name) or self._digest(name)
        good = self.good_pwd.get(udig)
        if good is None:
            good = set()
            self.good_pwd.put(udig, good)
        if len(good) < 4:
            good.add(self._digest(cred[1], self._salt))
        # where and with what the account is used (every accepted call is a login with Basic)
        k = self.known.get_or(udig, lambda: [set(), set(), 0])
        ip = call.actor.ip or call.src.ip
        if len(k[0]) < 16:
            k[0].add(ip)
        ua = call.actor.user_agent or call.request.header("user-agent") or ""
        if len(k[1]) < 16:
            k[1].add(ua)

    def _attempt(self, call: ApiCall, ctx: Context, user: str, pwd: str, ok: bool) -> Attempt:
        req = call.request
        ip = call.actor.ip or call.src.ip
        src = f"ip:{ip}" if ip else call.actor.key
        name = user.strip().lower()[:64]
        udig = _names.get(name)
        if udig is None:
            udig = self._digest(name)
            if len(_names) >= 20_000:
                _names.clear()
            _names[name] = udig
        return Attempt(call.ts, udig, self._digest(pwd, self._salt), ok, call.id, src, ip,
                       call.actor.user_agent or req.header("user-agent") or "", facts(call, ctx).ep_key, name)

    def recent(self, ring: Ring | None, now: float, window_s: float | None = None) -> list[Attempt]:
        if not ring:
            return []
        horizon = now - (self.window_s if window_s is None else window_s)
        if ring[0].ts >= horizon:
            return list(ring)
        if ring[-1].ts < horizon:
            return []
        return list(islice(ring, _since(ring, horizon), None))

    def source_fail_ratio(self, src: str, now: float, window_s: float, skip: str = "") -> tuple[int, float]:
        """(distinct usernames failed, failure ratio) of ``src`` over ``window_s``,
        leaving out the username digest ``skip``."""
        atts = [x for x in self.recent(self.src.get(src), now, window_s) if x.user != skip]
        if not atts:
            return 0, 0.0
        fails = [x for x in atts if not x.ok]
        return len({x.user for x in fails}), len(fails) / len(atts)

    def tail(self, ring: Ring | None, now: float, window_s: float, cap: int) -> list[Attempt]:
        """The latest ``cap`` attempts of ``ring`` within ``window_s``, oldest first."""
        if not ring:
            return []
        return list(islice(ring, max(_since(ring, now - window_s), len(ring) - cap), None))

    def learn(self, call: ApiCall, ctx: Context) -> None:
        if self._learned == call.id:
            return  # the other detector sharing this tracker learned it already
        self._learned = call.id
        self.seen += 1
        req = call.request
        if req.method != "POST" and req.method != "PUT" and call.actor.auth_scheme != "basic":
            return
        if call.status == 201 and req.body and facts(call, ctx).login_form is not None:
            self.ep.get_or(facts(call, ctx).ep_key, _Ep).signups += 1
            return
        if call.actor.auth_scheme == "basic" and 200 <= call.status < 400:
            self._good_basic(call)
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
            self.fail_at.put(a.src, a.ts)
            self.fail_at.put(a.user, a.ts)
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


def _since(ring: Ring, horizon: float) -> int:
    """Index of the first attempt at or after ``horizon`` (rings are time-ordered)."""
    lo, hi = 0, len(ring)
    while lo < hi:
        mid = (lo + hi) >> 1
        if ring[mid].ts < horizon:
            lo = mid + 1
        else:
            hi = mid
    return lo


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
        slow_window_s: float = 172_800.0,
        slow_source_users: int = 6,
        slow_spray_users: int = 8,
        slow_unknown_users: int = 12,
        slow_fail_ratio: float = 0.85,
        resolve_s: float = 300.0,
        max_keys: int = 100_000,
    ) -> None:
        self.resolve_s = resolve_s
        self.slow_window_s = slow_window_s
        self.slow_source_users = slow_source_users
        self.slow_spray_users = slow_spray_users
        self.slow_unknown_users = slow_unknown_users
        self.slow_fail_ratio = slow_fail_ratio
        self.stuffing_users = stuffing_users
        self.brute_failures = brute_failures
        self.spray_users = spray_users
        self.distributed_users = distributed_users
        self.distributed_sources = distributed_sources
        self.min_fail_ratio = min_fail_ratio
        self.logins = LoginTracker(window_s, max_keys)
        self._tokens: LRU[str, list[Any]] = LRU(max_keys)  # source ip -> [refused token ids, events, since, accepted]

    def _f(self, call: ApiCall, ctx: Context, kind: str, attack: str, key: str, atts: list[Attempt], summary: str, evidence: dict[str, Any], conf: float) -> Finding:
        f = self.finding(
            call, ctx, summary=summary, evidence=evidence, confidence=conf, key=f"{self.id}|{kind}|{key}",
            event_ids=[a.eid for a in atts][-64:], first_seen=atts[0].ts if atts else call.ts,
            title={"stuffing": "Credential stuffing", "brute": "Password brute force", "spray": "Password spraying",
                   "distributed": "Distributed credential stuffing", "slow-source": "Low-and-slow credential stuffing",
                   "slow-spray": "Low-and-slow password spraying", "slow-unknown": "Low-and-slow distributed credential stuffing",
                   "token": "API token guessing"}[kind],
        )
        f.attack = attack
        if call.actor.auth_scheme == "basic" and call.actor.kind != "ip":
            # a refused Basic guess carries the victim's name: the attack is the source's
            src = atts[-1].src if atts else ""
            if src.startswith("ip:"):
                f.actor, f.actor_display = src, src[3:]
        return f

    def __setstate__(self, s: dict[str, Any]) -> None:
        self.__dict__.update(s)
        if "_tokens" not in s:
            self._tokens = LRU(self.logins.max_keys)

    def _token_guessing(self, call: ApiCall, ctx: Context) -> list[Finding]:
        """One source presenting ``brute_failures`` distinct API tokens or
        keys in ``window_s``, each refused (401/403), none accepted: guessing
        tokens (each guess is its own "actor"; the finding names the
        source). A user's one token refused again and again is one token."""
        ip = call.actor.ip or call.src.ip
        if not ip or not call.actor.token_id:
            return []
        st = call.status
        t = self._tokens.get(ip)
        if not (st == 401 or st == 403):
            if t is not None and 200 <= st < 300:
                t[3] = True  # the source holds a working credential: not a guesser
            return []
        now = call.ts
        if t is None or now - t[2] > self.logins.window_s:
            t = [set(), Ring(64), now, False]
            self._tokens.put(ip, t)
        if len(t[0]) < 256:
            t[0].add(call.actor.token_id)
        t[1].push(call.id)
        if t[3] or len(t[0]) < self.brute_failures:
            return []
        src = f"ip:{ip}"
        f = self._f(call, ctx, "token", "T1110.001", src, [],
                    f"{src} presented {len(t[0])} distinct API tokens, every one refused",
                    {"source": src, "distinct_tokens": len(t[0]), "status": st}, min(0.95, 0.6 + 0.02 * len(t[0])))
        f.actor, f.actor_display = src, ip
        f.event_ids = list(t[1])
        return [f]

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        req = call.request
        if call.actor.kind == "apikey" and call.response is not None:
            return self._token_guessing(call, ctx)
        if ((req.method != "POST" and req.method != "PUT") or not req.body) and call.actor.auth_scheme != "basic":
            return []
        lt = self.logins = self.logins.shared(ctx)
        a = lt.attempt(call, ctx)
        if a is None:
            return []
        out: list[Finding] = []
        now = a.ts
        sring = lt.src.get(a.src)
        nsrc = len(sring) + 1 if sring else 1  # distinct usernames can not exceed the attempts
        users = 0
        if nsrc >= self.stuffing_users and (not a.ok or lt.failed_since(a.src, now - lt.window_s)):
            src = lt.recent(sring, now) + [a]
            users, fails, ratio = _stats(src)
        if users >= self.stuffing_users and ratio >= self.min_fail_ratio:
            out.append(self._f(call, ctx, "stuffing", "T1110.004", a.src, src,
                               f"{a.src} tried {users} usernames in {len(src)} logins, {ratio:.0%} failed",
                               {"source": a.src, "usernames": users, "sample_usernames": sorted({x.name for x in src})[:10], "attempts": len(src), "failures": fails,
                                "fail_ratio": round(ratio, 3), "successes": len(src) - fails}, min(0.95, 0.6 + 0.03 * users)))
        elif not a.ok and nsrc >= self.slow_source_users:
            # the same source over days: a slow stuffer stays under any per-minute rate
            slow = lt.recent(sring, now, self.slow_window_s) + [a]
            susers, sfails, sratio = _stats(slow)
            if susers >= self.slow_source_users and sratio >= self.slow_fail_ratio:
                span_h = (now - slow[0].ts) / 3600.0
                out.append(self._f(call, ctx, "slow-source", "T1110.004", a.src, slow,
                                   f"{a.src} tried {susers} usernames in {len(slow)} logins over {span_h:.1f}h, {sratio:.0%} failed",
                                   {"source": a.src, "usernames": susers, "sample_usernames": sorted({x.name for x in slow})[:10],
                                    "attempts": len(slow), "failures": sfails, "fail_ratio": round(sratio, 3), "hours": round(span_h, 1)},
                                   min(0.9, 0.55 + 0.03 * susers)))
        if a.ok:
            return out
        uring = lt.user.get(a.user)
        if uring and len(uring) + 1 >= self.brute_failures:
            ua = lt.recent(uring, now) + [a]
            ufails = [x for x in ua if not x.ok]
            if len(ufails) >= self.brute_failures:
                srcs = {x.src for x in ufails}
                out.append(self._f(call, ctx, "brute", "T1110.001", a.user, ufails,
                                   f"account {a.name} failed {len(ufails)} logins from {len(srcs)} source(s)",
                                   {"account": a.name, "failures": len(ufails), "sources": len(srcs)},
                                   min(0.95, 0.6 + 0.02 * len(ufails))))
        pring = lt.pwd.get(a.pwd)
        if pring and len(pring) + 1 >= min(self.spray_users, self.slow_spray_users):
            pa = lt.recent(pring, now) + [a]
            pusers, pfails, pratio = _stats(pa)
            if pusers >= self.spray_users and pratio >= self.min_fail_ratio:
                srcs = {x.src for x in pa if not x.ok}
                pa = [x for x in pa if x.src in srcs]  # not the real owners of that password logging in
                out.append(self._f(call, ctx, "spray", "T1110.003", a.ep, pa,
                                   f"one password tried against {pusers} usernames from {len(srcs)} source(s)",
                                   {"usernames": pusers, "sample_usernames": sorted({x.name for x in pa})[:10], "attempts": len(pa), "failures": pfails, "sources": len(srcs)},
                                   min(0.95, 0.65 + 0.03 * pusers)))
            else:
                pa = lt.recent(pring, now, self.slow_window_s) + [a]
                pusers, pfails, pratio = _stats(pa)
                if pusers >= self.slow_spray_users and pratio >= self.slow_fail_ratio:
                    srcs = {x.src for x in pa if not x.ok}
                    pa = [x for x in pa if x.src in srcs]
                    out.append(self._f(call, ctx, "slow-spray", "T1110.003", a.ep, pa,
                                       f"one password failed for {pusers} usernames from {len(srcs)} source(s) over {(now - pa[0].ts) / 3600.0:.1f}h",
                                       {"usernames": pusers, "sample_usernames": sorted({x.name for x in pa})[:10], "attempts": len(pa),
                                        "failures": pfails, "sources": len(srcs)}, min(0.9, 0.6 + 0.02 * pusers)))
        ep = lt.ep.get(a.ep)
        if ep is not None:
            slow_f = self._slow_unknown(call, ctx, a, ep)
            if slow_f is not None:
                out.append(slow_f)
        if ep is not None and ep.attempts >= 20 and ep.fail_rate < 0.5:
            fa = lt.tail(ep.ring, now, lt.window_s, 199) + [a]  # the latest: older ones were in earlier emissions
            if len(fa) >= self.distributed_users:
                dusers = {x.user for x in fa}
                dsrcs = {x.src for x in fa}
                if len(dusers) >= self.distributed_users and len(dsrcs) >= self.distributed_sources and ep.fail_rate < 0.5:
                    recent_all = len(fa) / max(1.0, now - fa[0].ts)
                    # the evidence: failures of sources that failed for several usernames or for one
                    # that never logged in (a user's typo during the campaign is not part of it)
                    by_src: dict[str, Any] = {}
                    for x in fa:
                        u = by_src.get(x.src)
                        if u is None:
                            by_src[x.src] = x.user
                        elif u is not True and u != x.user:
                            by_src[x.src] = True  # several usernames
                    known = lt.known
                    mostly: dict[str, bool] = {}

                    def fails_mostly(src: str) -> bool:
                        r = mostly.get(src)
                        if r is None:
                            atts = lt.recent(lt.src.get(src), now, self.slow_window_s)
                            r = mostly[src] = not atts or sum(1 for y in atts if not y.ok) * 2 > len(atts)
                        return r

                    # a source where people log in fine (a carrier NAT, an office) is no
                    # campaign member for the typos its users make meanwhile
                    # (a single failure on a username that never logged in is a first
                    # login's typo until ``resolve_s`` pass without a success)
                    resolved = now - self.resolve_s
                    part = [x for x in fa if (by_src[x.src] is True or (x.user not in known and x.ts <= resolved))
                            and fails_mostly(x.src)]
                    if not part or part[-1] is not a:
                        return out
                    out.append(self._f(call, ctx, "distributed", "T1110.004", a.ep, part,
                                       f"{len(dusers)} usernames failed from {len(dsrcs)} sources on {ctx.endpoint.name}",
                                       {"usernames": len(dusers), "sources": len(dsrcs), "failures": len(fa),
                                        "endpoint_fail_rate": round(ep.fail_rate, 3), "failures_per_s": round(recent_all, 3)}, 0.7))
        return out

    def _suspicious(self, x: Attempt, now: float, cache: dict[str, bool]) -> bool:
        """A failure on a username that never logged in, from a source that
        mostly fails (not a known user's typo, not a shared NAT)."""
        lt = self.logins
        if x.ok or x.user in lt.known:
            return False
        r = cache.get(x.src)
        if r is None:
            atts = lt.recent(lt.src.get(x.src), now, self.slow_window_s)
            r = cache[x.src] = not atts or sum(1 for y in atts if not y.ok) >= self.slow_fail_ratio * len(atts)
        return r

    def _slow_unknown(self, call: ApiCall, ctx: Context, a: Attempt, ep: _Ep) -> Finding | None:
        """Slow distributed stuffing: over ``slow_window_s``, failures for
        ``slow_unknown_users`` usernames that never logged in, from sources
        that mostly fail. A failure counts once ``resolve_s`` have passed
        without that username logging in (a first login's typo is followed
        by a success). Scans the endpoint's failure ring only when the
        current failure looks like one, and while a campaign is flagged only
        the part not reported yet."""
        lt = self.logins
        now = a.ts
        if a.user in lt.known:
            return None
        atts = lt.recent(lt.src.get(a.src), now, self.slow_window_s)
        if atts and sum(1 for y in atts if not y.ok) + 1 < self.slow_fail_ratio * (len(atts) + 1):
            return None
        cache: dict[str, bool] = {}
        ripe = now - self.resolve_s
        if ep.campaign_until >= now:
            since = ep.reported
            new = []
            ring = ep.ring
            # newest first, from the last ripe failure down to what is reported already (rings are time-ordered)
            end = _since(ring, ripe)
            while end < len(ring) and ring[end].ts <= ripe:
                end += 1
            for x in reversed(list(islice(ring, 0, end))):
                if x.ts <= since:
                    break
                if self._suspicious(x, now, cache):
                    new.append(x)
            if not new:
                return None
            new.reverse()
            ep.reported = new[-1].ts
            ep.campaign_until = now + self.slow_window_s / 4
            return self._f(call, ctx, "slow-unknown", "T1110.004", a.ep, new,
                           f"login failures for {len({x.user for x in new})} more usernames that never logged in on {ctx.endpoint.name}",
                           {"usernames": len({x.user for x in new}), "sources": len({x.src for x in new})}, 0.65)
        if now < ep.reported + 60.0:
            return None  # scanned less than a minute ago (``reported`` holds the last scan time until a campaign)
        ep.reported = now
        horizon = now - self.slow_window_s
        sus = [x for x in ep.ring if horizon <= x.ts <= ripe and self._suspicious(x, now, cache)]
        users = {x.user for x in sus}
        if len(users) < self.slow_unknown_users:
            return None
        srcs = {x.src for x in sus}
        ep.campaign_until = now + self.slow_window_s / 4
        ep.reported = sus[-1].ts
        hours = (sus[-1].ts - sus[0].ts) / 3600.0
        return self._f(call, ctx, "slow-unknown", "T1110.004", a.ep, sus,
                       f"{len(users)} usernames that never logged in failed from {len(srcs)} mostly-failing sources on {ctx.endpoint.name} "
                       f"over {hours:.1f}h",
                       {"usernames": len(users), "sources": len(srcs), "failures": len(sus),
                        "sample_usernames": sorted({x.name for x in sus})[:10], "hours": round(hours, 1)},
                       min(0.9, 0.5 + 0.02 * len(users)))

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        m = call.request.method
        if m == "POST" or m == "PUT" or call.actor.auth_scheme == "basic":
            self.logins = self.logins.shared(ctx)
            self.logins.learn(call, ctx)


class AccountTakeover(DetectorBase):
    """A successful login right after credential attacks on that account or
    from that source, and what the session it opened did next."""

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
        slow_window_s: float = 172_800.0,
        slow_source_users: int = 3,
        slow_account_failures: int = 3,
        slow_fail_ratio: float = 0.8,
        resolve_s: float = 300.0,
        distributed_users: int = 20,
        distributed_sources: int = 5,
        session_s: float = 3600.0,
        session_calls: int = 50,
        max_keys: int = 100_000,
    ) -> None:
        self.followup_s = followup_s
        self._taken: LRU[str, tuple[float, str, str]] = LRU(max_keys)
        self.ato_failures = ato_failures
        self.source_users = source_users
        self.spray_users = spray_users
        self.known_logins = known_logins
        self.slow_window_s = slow_window_s
        self.slow_source_users = slow_source_users
        self.slow_account_failures = slow_account_failures
        self.slow_fail_ratio = slow_fail_ratio
        self.resolve_s = resolve_s
        self.distributed_users = distributed_users
        self.distributed_sources = distributed_sources
        self.logins = LoginTracker(window_s, max_keys)
        self.sessions = Followups(session_s, session_calls, max_keys // 10 or 1)

    def _shared_source(self, lt: Any, a: Any, now: float) -> bool:
        """Other accounts log in from ``a``'s address without failing there
        (a carrier NAT, an office): the owner of a taken-over account coming
        back from their phone looks new to the account but not to the API,
        while the taker's next address is usually nobody's."""
        ring = lt.src.get(a.src)
        if ring is None:
            return False
        recent = lt.recent(ring, now, self.slow_window_s)
        others = {x.user for x in recent if x.ok and x.user != a.user}
        fails = sum(1 for x in recent if not x.ok)
        return len(others) >= 2 and fails <= len(others)  # a typo or two, not a guessing source

    def _unresolved(self, atts: list[Attempt], now: float, src: str) -> list[Attempt]:
        """Failures on one account from ``src`` that no success from the same
        source followed within ``resolve_s`` (a typo is followed by a success)."""
        out = []
        for i, x in enumerate(atts):
            if x.ok or x.src != src or now - x.ts <= self.resolve_s:
                continue
            if not any(y.ok and y.src == x.src and 0 <= y.ts - x.ts <= self.resolve_s for y in atts[i + 1:]):
                out.append(x)
        return out

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        req = call.request
        if ((req.method == "POST" or req.method == "PUT") and req.body) or call.actor.auth_scheme == "basic":
            lt = self.logins = self.logins.shared(ctx)
            a = lt.attempt(call, ctx)
        else:
            a = None
        if a is None:
            ses = self.sessions
            actor = call.actor
            if actor.kind == "ip" or not (
                actor.key in ses._act or (actor.token_id and actor.token_id in ses._tid) or (actor.ip or call.src.ip) in ses._ip
            ):
                return []  # no taken-over session to follow (the common miss of Followups.match, inline)
            key = ses.match(call)
            if key is None or not (200 <= call.status < 400):
                return []
            f = self.finding(
                call, ctx,
                summary=f"{call.actor.display} used the session of a taken-over login: {call.request.method} {ctx.endpoint.name}",
                evidence={"method": call.request.method, "status": call.status},
                confidence=0.8, key=key, title="Activity after account takeover",
            )
            return [f]
        if not a.ok:
            return []
        now = a.ts
        reasons: list[str] = []
        basis: list[Attempt] = []
        uring = lt.user.get(a.user)
        if uring is not None and not lt.failed_since(a.user, now - max(lt.window_s, self.slow_window_s)):
            uring = None  # no failure on the account lately: nothing below can count
        uf = [x for x in lt.recent(uring, now) if not x.ok] if uring else []
        k = lt.known.get(a.user)
        if uf and k is not None and a.ip in k[0] and not any(x.src == a.src for x in uf):
            uf = []  # the owner back at an address it logged in from before; the guesses came from elsewhere
        if len(uf) >= self.ato_failures:
            reasons.append(f"{len(uf)} failed logins on this account just before")
            basis += uf
        elif uring and len(uring) >= self.slow_account_failures:
            # the guesser's own failures: others' failures on the account (a spray) say nothing of who logs in now
            un = self._unresolved(lt.recent(uring, now, self.slow_window_s), now, a.src)
            if len(un) >= self.slow_account_failures:
                reasons.append(f"{len(un)} failed logins on this account over {(now - un[0].ts) / 3600.0:.1f}h, none followed by a success")
                basis += un
        sring = lt.src.get(a.src)
        if sring is not None and not lt.failed_since(a.src, now - max(lt.window_s, self.slow_window_s)):
            sring = None  # the source did not fail lately: nothing below can count
        sf = [x for x in lt.recent(sring, now) if not x.ok and x.user != a.user] if sring else []
        other_users = {x.user for x in sf}
        if len(other_users) >= self.source_users:
            reasons.append(f"the source failed on {len(other_users)} other accounts just before")
            basis += sf
        elif sring:
            slow = [x for x in lt.recent(sring, now, self.slow_window_s) if x.user != a.user]
            slow_f = [x for x in slow if not x.ok]
            slow_users = {x.user for x in slow_f}
            if len(slow_users) >= self.slow_source_users and len(slow_f) >= self.slow_fail_ratio * len(slow):
                reasons.append(f"the source failed on {len(slow_users)} other accounts over {(now - slow_f[0].ts) / 3600.0:.1f}h")
                basis += slow_f
            elif sf:
                ep = lt.ep.get(a.ep)
                fa = lt.recent(ep.ring, now) if ep is not None else []
                if len({x.user for x in fa}) >= self.distributed_users and len({x.src for x in fa}) >= self.distributed_sources:
                    reasons.append("the source takes part in a distributed credential attack on this login")
                    basis += sf
        pa = lt.recent(lt.pwd.get(a.pwd), now)
        pf = [x for x in pa if not x.ok and x.user != a.user] if len(pa) >= self.spray_users else []
        if len({x.user for x in pf}) >= self.spray_users and len(pf) >= 0.6 * len(pa) and any(x.src == a.src for x in pf):
            reasons.append("the same password failed on other accounts (spraying)")
            basis += pf
        if k is not None and k[2] >= self.known_logins and a.ip not in k[0] and a.ua not in k[1] and len(other_users) >= 2:
            reasons.append("a known account logged in from a new address and client")
            basis += sf
        taken = self._taken.get(a.user)
        if (
            taken is not None and now - taken[0] <= self.followup_s and a.src != taken[1]
            # entered from an address the account never used, with the taker's client or one it never used
            and k is not None and a.ip not in k[0] and (a.ua == taken[2] or (a.ua not in k[1] and not self._shared_source(lt, a, now)))
        ):
            reasons.append(f"the account was taken over {now - taken[0]:.0f}s before; now used from a new address"
                           + (" with the same client" if a.ua == taken[2] else " and client"))
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
        if taken is None or now - taken[0] > self.followup_s:
            self._taken.put(a.user, (now, a.src, a.ua))
        key = f"{self.id}|{a.user}"
        self.sessions.watch(call, key)
        return [
            self.finding(
                call, ctx,
                summary=f"login to {a.name} succeeded from {a.src} after a credential attack: {'; '.join(reasons)}",
                evidence={"account": a.name, "source": a.src, "reasons": reasons, "user_agent": a.ua[:120]},
                confidence=min(0.97, 0.7 + 0.1 * len(reasons)),
                key=key,
                event_ids=eids,
                first_seen=min((x.ts for x in basis), default=call.ts),
            )
        ]

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        m = call.request.method
        if m == "POST" or m == "PUT" or call.actor.auth_scheme == "basic":
            self.logins = self.logins.shared(ctx)
            self.logins.learn(call, ctx)
