"""``auth.broken_authentication``: the API accepts credentials it must
reject, or credentials travel and get used where they should not.

Looks at:

- **unsigned tokens**: a JWT whose header says ``alg: none`` (any case) or
  whose signature segment is empty. Answered 2xx it is critical (the API
  skips verification, CWE-347); refused, it is a forgery attempt (medium);
- **expired tokens accepted** (an exposure of the endpoint): ``exp`` earlier than the call time minus
  ``leeway_s`` and a 2xx answer (CWE-613);
- **tampered tokens**: one signature seen with two different payloads (the
  payload was edited and the old signature kept; CWE-347). Signatures are
  learned from tokens presented *and* from tokens the API issues (a JWT in
  a 2xx answer to a POST, e.g. a login), so a token edited before its first
  use is caught on that use, and the finding names the event that issued
  the original;
- **rejected tokens**: a signed JWT, valid by its own claims (not expired,
  not issued in the future), refused with 401 the first time it is seen:
  its signature did not verify (forged, tampered, or signed with a key the
  API does not trust): an attempt, low severity (CWE-347). Benign clients
  get 401 for *expired* tokens, which are left alone; a key rotation that
  refuses many fresh tokens at once (more than ``max_rejected`` in ten
  minutes) silences the signal until it passes;
- **tokens in URLs** (an exposure: about the endpoint, not its callers): credential-named query parameters (``access_token``,
  ``id_token``, ``jwt``, ``api_key``, ...; CWE-598). The ambiguous name
  ``token`` is flagged only when its value is a JWT, or when the path is not
  a one-time-link flow: password reset, e-mail verification, invitations,
  unsubscribe and magic links legitimately carry single-use tokens in the
  URL, so ``/reset-password?token=...`` is not flagged;
- **token sharing / theft**: one token (``actor.token_id``) used from two
  or more addresses *and* two or more user agents, or from ``min_ips``
  addresses, within ``window_s``. A token is issued to one client; a second
  device with the same token is a copy (CWE-287).

Credentials over plain HTTP belong to ``auth.cleartext_credentials``. The
class CWE is CWE-287; each finding's ``evidence["cwe"]`` names the precise
weakness of its signal.

Cost per event: a few dictionary look-ups; for a JWT, one header scan and
two CRC-32s the first time each token is seen; a loop over query names.

False-positive assumptions: clock skew between the API and apiward's event
time is under ``leeway_s``; a token that a client uses for the first time
is one the API issued and accepts (a revoked token is refused, but it was
used before, unless apiward started after that); a mobile client roaming between networks keeps
its user agent, so it needs ``min_ips`` addresses in ``window_s`` to count;
a test environment that signs nothing is still worth an alert.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.objects import LRU, Ring
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding, finding_id

__all__ = ["BrokenAuthentication", "URL_CREDENTIALS"]

#: Query parameter names that always carry a credential.
URL_CREDENTIALS = frozenset(
    {"access_token", "accesstoken", "id_token", "idtoken", "jwt", "api_key", "apikey", "api-key", "x-api-key",
     "auth_token", "authtoken", "bearer", "refresh_token", "refreshtoken", "session_id", "sessionid", "sessiontoken",
     "session_token", "client_secret", "password", "passwd", "secret_key", "private_token", "access_key"}
)
_AMBIGUOUS = frozenset({"token", "auth", "key", "sid"})
_ONE_TIME_LINK = re.compile(r"reset|recover|forgot|verif|confirm|activat|invit|unsubscri|magic|onboard|email|signup|register|download|share", re.IGNORECASE)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.")
# a signed JWT inside an answer: payload and signature segments
_ISSUED = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{16,})")
_ISSUE_MAX = 16_384  # bytes of answer body searched for issued tokens


class _Tok:
    __slots__ = ("start", "ips", "uas", "origin", "ring", "flagged")

    def __init__(self, ts: float, ip: str, ua: str) -> None:
        self.start = ts
        self.ips: set[str] = {ip}
        self.uas: set[str] = {ua}
        self.origin = (ip, ua)
        self.ring: Ring = Ring(16)
        self.flagged = 0

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


def _bearer(call: ApiCall) -> str:
    auth = call.request.header("authorization") or ""
    scheme, _, value = auth.strip().partition(" ")
    value = value.strip()
    if value:
        return value
    return scheme if scheme.startswith("eyJ") else ""


class BrokenAuthentication(DetectorBase):
    """Unsigned, expired or tampered tokens accepted; tokens in URLs; one
    token used by several clients."""

    id = "auth.broken_authentication"
    title = "Broken authentication"
    severity = "high"
    owasp = "API2:2023"
    attack = "T1550.001"
    tactic = "credential-access"
    cwe = "CWE-287"

    def __init__(
        self,
        *,
        leeway_s: float = 300.0,
        window_s: float = 7200.0,
        min_ips: int = 4,
        max_tokens: int = 50_000,
        max_signatures: int = 50_000,
        max_rejected: int = 10,
    ) -> None:
        self.leeway_s = leeway_s
        self.window_s = window_s
        self.min_ips = min_ips
        self.max_rejected = max_rejected
        self._tokens: LRU[str, _Tok] = LRU(max_tokens)
        # signature hash -> (payload hash, id of the event that issued or first presented it)
        self._sigs: LRU[int, tuple[int, str]] = LRU(max_signatures)
        self._rejected = [0.0, 0]  # ten-minute bucket: start, rejected fresh tokens in it
        self._fids: dict[str, str] = {}  # finding key -> id (a cache, not state)

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_fids"] = {}
        return d

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_fids", {})  # absent from older states

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        out: list[Finding] = []
        req = call.request
        if req.query:
            self._url_credentials(call, ctx, out)
        resp = call.response
        st = resp.status if resp is not None else 0
        if req.method == "POST" and 200 <= st < 300:
            self._issued(call)
        actor = call.actor
        tid = actor.token_id
        if not tid:
            return out
        ok = 200 <= st < 300
        alg = actor.jwt_alg
        ts = call.ts
        tok = self._tokens.get(tid)
        first = tok is None
        ip = actor.ip or call.src.ip
        ua = actor.user_agent
        if first:
            tok = _Tok(ts, ip, ua)
            self._tokens.put(tid, tok)
        else:
            self._tokens.move_to_end(tid)
        assert tok is not None
        if alg:
            if alg.lower() == "none" or (first and _bearer(call).endswith(".")) or (not first and tok.flagged & 1):
                if first:
                    tok.flagged |= 1
                self._unsigned(call, ctx, alg, ok, out)
            elif first:
                if not self._tampered(call, ctx, ok, out) and st == 401:
                    self._rejected_fresh(call, ctx, alg, ts, out)
            if ok:
                exp = actor.jwt_claims.get("exp")
                if isinstance(exp, (int, float)) and not isinstance(exp, bool) and ts > 0 and exp + self.leeway_s < ts:
                    out.append(self._expired(call, ctx, exp, ts, st, tid))
        o = tok.origin
        if ts - tok.start <= self.window_s and ip == o[0] and ua == o[1]:
            return out  # the token's first client, within the window: the common call
        self._sharing(call, ctx, tok, ts, ip, ua, out)
        return out

    # -- signals -------------------------------------------------------------

    def _expired(self, call: ApiCall, ctx: Context, exp: float, ts: float, st: int, tid: str) -> Finding:
        """An expired token accepted. Raised on every such call (each one is
        an access the API should have refused), so built directly, with the
        finding id cached per key (what :meth:`finding` would compute)."""
        ep = ctx.endpoint
        key = f"{self.id}|{ep.key}|expired"
        fid = self._fids.get(key)
        if fid is None:
            if len(self._fids) >= 4096:
                self._fids.clear()
            fid = self._fids[key] = finding_id(key)
        return Finding(
            id=fid,
            key=key,
            detector=self.id,
            title="Expired token accepted",
            kind="exposure",  # the API's flaw: whoever presented the old token is not a suspect
            severity="high",
            confidence=0.9,
            owasp=self.owasp,
            attack=self.attack,
            tactic=self.tactic,
            cwe=self.cwe,
            service=ep.service,
            host=ep.host,
            endpoint=ep.name,
            event_ids=[call.id],
            first_seen=ts,
            last_seen=ts,
            summary=f"expired token accepted: expired {int(ts - exp)} s before the call, answered {st}",
            evidence={"signal": "expired_token_accepted", "cwe": "CWE-613", "exp": exp, "call_ts": ts, "expired_for_s": round(ts - exp, 1),
                      "status": st, "token_id": tid},
        )

    def _unsigned(self, call: ApiCall, ctx: Context, alg: str, ok: bool, out: list[Finding]) -> None:
        st = call.status
        what = f"alg {alg!r}" if alg.lower() == "none" else "empty signature"
        out.append(
            self.finding(
                call, ctx,
                summary=f"unsigned JWT ({what}) {'accepted' if ok else 'sent'}: answered {st}",
                evidence={"signal": "unsigned_token_accepted" if ok else "unsigned_token_attempt", "cwe": "CWE-347", "alg": alg, "status": st,
                          "claims": {k: v for k, v in call.actor.jwt_claims.items() if k in ("sub", "role", "roles", "scope", "exp", "iat")}},
                confidence=0.95 if ok else 0.8,
                severity="critical" if ok else "medium",
                key=f"{self.id}|{call.actor.key}|unsigned",
                title="Unsigned JWT accepted" if ok else "Forged unsigned JWT",
            )
        )

    def _issued(self, call: ApiCall) -> None:
        """Learn the signatures of JWTs the API hands out (login, refresh)."""
        resp = call.response
        body = resp.body if resp is not None else b""
        if not body or len(body) > _ISSUE_MAX or b"eyJ" not in body:
            return
        sigs = self._sigs
        for m in _ISSUED.finditer(body):
            sk = zlib.crc32(m.group(2))
            if sk not in sigs:
                sigs.put(sk, (zlib.crc32(m.group(1)), call.id))

    def _tampered(self, call: ApiCall, ctx: Context, ok: bool, out: list[Finding]) -> bool:
        token = _bearer(call)
        head, dot, rest = token.partition(".")
        payload, dot2, sig = rest.partition(".")
        if not dot2 or len(sig) < 16:
            return False
        sk = zlib.crc32(sig.encode())
        pk = zlib.crc32(payload.encode())
        prev = self._sigs.get(sk)
        if prev is None:
            self._sigs.put(sk, (pk, call.id))
            return False
        if isinstance(prev, int):  # a state saved before origins were kept
            prev = (prev, call.id)
        if prev[0] == pk:
            return False
        st = call.status
        origin = prev[1]
        out.append(
            self.finding(
                call, ctx,
                summary=f"JWT signature reused with a different payload (tampered claims), answered {st}; the signature belongs to the token of event {origin}",
                evidence={"signal": "tampered_token_accepted" if ok else "tampered_token_attempt", "cwe": "CWE-347", "status": st,
                          "original_event": origin,
                          "claims": {k: v for k, v in call.actor.jwt_claims.items() if k in ("sub", "role", "roles", "scope")}},
                confidence=0.9,
                severity="critical" if ok else "medium",
                key=f"{self.id}|{call.actor.key}|tampered",
                title="Tampered JWT accepted" if ok else "Tampered JWT",
                event_ids=[origin, call.id] if origin != call.id else [call.id],
            )
        )
        return True

    def _rejected_fresh(self, call: ApiCall, ctx: Context, alg: str, ts: float, out: list[Finding]) -> None:
        """A signed token, valid by its claims, refused on first sight."""
        claims = call.actor.jwt_claims
        exp = claims.get("exp")
        iat = claims.get("iat")
        lee = self.leeway_s
        if isinstance(exp, bool) or (isinstance(exp, (int, float)) and exp + lee < ts):
            return  # expired: the everyday 401 before a refresh
        if isinstance(iat, (int, float)) and not isinstance(iat, bool) and iat - lee > ts:
            return  # issued in the future: a clock problem, not a forgery
        b = self._rejected
        if ts - b[0] > 600.0:
            b[0], b[1] = ts, 0
        b[1] += 1
        if b[1] > self.max_rejected:
            return  # many at once: a key rotation or an outage, not one forger
        priv = {k: v for k, v in claims.items() if k in ("sub", "role", "roles", "scope", "scp", "groups", "is_admin", "exp")}
        out.append(
            self.finding(
                call, ctx,
                summary=f"a {alg} token valid by its claims was refused on its first use (401): its signature did not verify",
                evidence={"signal": "rejected_token_attempt", "cwe": "CWE-347", "alg": alg, "status": call.status, "claims": priv},
                confidence=0.55,
                severity="low",
                key=f"{self.id}|{call.actor.key}|rejected",
                title="Forged or tampered JWT refused",
            )
        )

    def _url_credentials(self, call: ApiCall, ctx: Context, out: list[Finding]) -> None:
        req = call.request
        for name, value in req.query:
            low = name.lower()
            if low in URL_CREDENTIALS:
                pass
            elif low in _AMBIGUOUS:
                if not value or not (_JWT.match(value) or (len(value) >= 16 and not _ONE_TIME_LINK.search(req.path))):
                    continue
            else:
                continue
            if not value:
                continue
            ep = ctx.endpoint
            out.append(
                self.finding(
                    call, ctx,
                    summary=f"credential in the URL: query parameter {name!r} on {ep.name}",
                    evidence={"signal": "credential_in_url", "cwe": "CWE-598", "parameter": name, "jwt": bool(_JWT.match(value)), "length": len(value),
                              "status": call.status},
                    confidence=0.85 if low in URL_CREDENTIALS else 0.6,
                    severity="medium",
                    key=f"{self.id}|{ep.key}|url|{low}",
                    title="Credential in URL",
                    kind="exposure",  # the endpoint takes credentials in its URL; its callers are not suspects
                )
            )
            return

    def _sharing(self, call: ApiCall, ctx: Context, tok: _Tok, ts: float, ip: str, ua: str, out: list[Finding]) -> None:
        if ts - tok.start > self.window_s:
            tok.start = ts
            tok.ips = {ip}
            tok.uas = {ua}
            tok.origin = (ip, ua)
            tok.ring = Ring(16)
            tok.flagged &= 1
            return
        if (ip, ua) == tok.origin:
            return
        tok.ring.push(call.id)
        if len(tok.ips) < 16:
            tok.ips.add(ip)
        if len(tok.uas) < 16:
            tok.uas.add(ua)
        nip, nua = len(tok.ips), len(tok.uas)
        if not ((nip >= 2 and nua >= 2) or nip >= self.min_ips):
            return
        actor = call.actor
        first = not (tok.flagged & 2)
        tok.flagged |= 2
        out.append(
            self.finding(
                call, ctx,
                summary=f"one token used from {nip} addresses and {nua} user agents within {int(ts - tok.start)} s (copied or stolen token)",
                evidence={"signal": "token_shared", "cwe": "CWE-287", "token_id": actor.token_id, "addresses": sorted(tok.ips)[:8], "user_agents": nua,
                          "origin_ip": tok.origin[0], "window_s": self.window_s},
                confidence=0.75,
                severity="high",
                key=f"{self.id}|{actor.key}|shared|{actor.token_id}",
                title="Token used by several clients",
                event_ids=list(tok.ring) if first else [call.id],
            )
        )
