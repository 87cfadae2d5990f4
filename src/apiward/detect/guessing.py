"""``credentials.code_guessing``: one client guessing a short secret value
(a password-reset or verification code, a one-time password, a PIN, an
invitation or voucher code) on one endpoint.

Looks at: the request parameters that carry a code, by name (``code``,
``otp``, ``pin``, ``token``, ``reset``, ``verification``, ``voucher``,
``coupon``, ``invite``...) or by value (4 to 12 digits, or a 4 to 10
character letters-and-digits token, in a query or body field that does not
name an object id). Per client (its address when anonymous, else its actor
key), endpoint and parameter, over ``window_s``: the distinct values
answered with a failure (400, 401, 403, 404, 409, 410, 422, 429). At
``min_guesses`` distinct failed values with at least ``min_fail_share`` of
the client's answers on that parameter failing, the client is guessing; a
later success on the same parameter makes the finding critical (the code
was found). Password forms are ``credentials.stuffing``'s.

The count must also stand out from what the client and its peers do on that
parameter while it is normal (:class:`~apiward.learn.norms.Norms`): people
mistype a code two or three times, not twenty.

Cost per event: an early exit without a 4xx/2xx answer or without a
candidate parameter; a set insert per candidate otherwise.

False-positive assumptions: a client that fails the same code repeatedly
adds one value, not many; an API that answers every request 400 (a broken
client) fails on many parameters at once, which the per-parameter count
and the peers' norms absorb.
"""

from __future__ import annotations

import re
from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.facts import facts
from apiward.detect.objects import LRU, field_noun
from apiward.learn.norms import Norms
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["CodeGuessing"]

_CODE_NAME = re.compile(r"(?:^|[_\-.\[])(?:code|otp|totp|pin|passcode|token|reset|verif\w*|voucher|coupon|invite|invitation|secret|mfa|2fa)(?:$|[_\-.\]])"
                        r"|^(?:code|otp|pin|token)\w*|\w*(?:code|otp|pin|token)$", re.IGNORECASE)
_CODE_VALUE = re.compile(r"\d{4,12}|(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{4,10}")
_FAIL = frozenset({400, 401, 403, 404, 409, 410, 422, 429})
_PASSWORDS = frozenset({"password", "passwd", "pwd", "pass", "passphrase", "new_password", "old_password"})


def _candidates(call: ApiCall, ctx: Context) -> list[tuple[str, str]]:
    """``(parameter, value)`` pairs that look like a guessed code."""
    out = []
    for loc, name, value in facts(call, ctx).params:
        if loc == "cookie" or not value or len(value) > 64:
            continue
        low = name.lower()
        if low in _PASSWORDS:
            continue
        named = _CODE_NAME.search(low) is not None
        if loc == "path":
            if named:
                out.append((f"path:{name}", value))
            continue
        if named or (_CODE_VALUE.fullmatch(value) is not None and field_noun(name) is None and low not in ("page", "limit", "offset", "size", "per_page")):
            out.append((f"{loc}:{name}", value))
    return out


class _Guess:
    __slots__ = ("start", "failed", "answers", "fails", "events", "ok", "flagged")

    def __init__(self, ts: float) -> None:
        self.start = ts
        self.failed: set[str] = set()
        self.answers = 0
        self.fails = 0
        self.events: list[str] = []
        self.ok = ""
        self.flagged = False

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


class CodeGuessing(DetectorBase):
    """A client tries many values of a short code on one endpoint."""

    id = "credentials.code_guessing"
    title = "Code guessing (brute force of a reset, verification or one-time code)"
    severity = "high"
    owasp = "API2:2023"
    attack = "T1110.001"
    tactic = "credential-access"
    cwe = "CWE-307"

    def __init__(self, *, window_s: float = 3600.0, min_guesses: int = 15, min_fail_share: float = 0.8, max_keys: int = 50_000) -> None:
        if min_guesses < 2 or not 0 < min_fail_share <= 1:
            raise ValueError("min_guesses must be >= 2 and min_fail_share within (0, 1]")
        self.window_s = window_s
        self.min_guesses = min_guesses
        self.min_fail_share = min_fail_share
        self._g: LRU[str, _Guess] = LRU(max_keys)
        self.norms = Norms()

    @staticmethod
    def _source(call: ApiCall) -> str:
        a = call.actor
        if a.kind in ("user", "apikey", "basic", "session"):
            return a.key
        return "ip:" + (a.ip or call.src.ip) if (a.ip or call.src.ip) else a.key

    def _track(self, call: ApiCall, ctx: Context) -> list[tuple[str, _Guess]]:
        """Fold the call into its client's guesses (once per call)."""
        st = call.status
        if not st or (st not in _FAIL and not 200 <= st < 300):
            return []
        cands = _candidates(call, ctx)
        if not cands:
            return []
        src = self._source(call)
        ek = facts(call, ctx).ep_key
        out = []
        for param, value in cands:
            k = f"{src}|{ek}|{param}"
            g = self._g.get(k)
            if g is None or call.ts - g.start > self.window_s:
                g = _Guess(call.ts)
                self._g.put(k, g)
            else:
                self._g.move_to_end(k)
            if g.events and g.events[-1] == call.id:
                out.append((k, g))
                continue
            g.answers += 1
            if st in _FAIL:
                g.fails += 1
                if len(g.failed) < 512:
                    g.failed.add(value)
            else:
                g.ok = call.id
            if len(g.events) < 256:
                g.events.append(call.id)
            out.append((k, g))
        return out

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        out = []
        for k, g in self._track(call, ctx):
            n = len(g.failed)
            if n < self.min_guesses or g.fails < self.min_fail_share * g.answers and not g.flagged:
                continue
            param = k.rsplit("|", 1)[1]
            found = g.ok == call.id
            if g.flagged and not found:
                if call.status in _FAIL:
                    out.append(self._finding(call, ctx, k, g, param, n, {}, joined=True))
                continue
            stands, nev = self.norms.stands_out("failed_values", k.split("|", 1)[1], k.split("|", 1)[0], n, floor=self.min_guesses,
                                                calls=g.answers)
            if not stands and not found:
                continue
            g.flagged = True
            out.append(self._finding(call, ctx, k, g, param, n, nev, found=found))
        return out

    def _finding(self, call: ApiCall, ctx: Context, k: str, g: _Guess, param: str, n: int, nev: dict[str, Any], *,
                 found: bool = False, joined: bool = False) -> Finding:
        loc, _, name = param.partition(":")
        return self.finding(
            call, ctx,
            summary=(f"{call.actor.display} guessed {loc} parameter {name!r} of {ctx.endpoint.name}: {n} wrong values"
                     + (", then one succeeded" if found else "") + f" within {self.window_s / 60:.0f} min"),
            evidence={"parameter": name, "location": loc, "failed_values": n, "answers": g.answers, "failures": g.fails,
                      "succeeded": found, "norms": nev} if not joined else {},
            confidence=0.9 if found else 0.8,
            severity="critical" if found else "high",
            key=f"{self.id}|{k}",
            event_ids=list(g.events) if not joined else [call.id],
            first_seen=g.start,
        )

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        """What clients normally fail on each code parameter (in ``learn``
        mode the guesses are counted here, scoring did not run)."""
        learn_mode = ctx.mode == "learn"
        tracked = self._track(call, ctx) if learn_mode else None
        if tracked is None:
            st = call.status
            if not st or (st not in _FAIL and not 200 <= st < 300):
                return
            src = self._source(call)
            ek = facts(call, ctx).ep_key
            tracked = [(f"{src}|{ek}|{p}", g) for p, _ in _candidates(call, ctx) if (g := self._g.get(f"{src}|{ek}|{p}")) is not None]
        if not tracked:
            return
        fx = facts(call, ctx)
        trust = ctx.trust
        for k, g in tracked:
            actor, scope = k.split("|", 1)
            flagged = g.flagged or fx.flagged or (trust is not None and trust.flagged(call.actor.key, call.ts))
            self.norms.observe("failed_values", scope, actor, len(g.failed), window=g.start, calls=g.answers,
                               learn_mode=learn_mode, flagged=flagged)
