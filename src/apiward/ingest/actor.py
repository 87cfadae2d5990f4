"""Who made a call: the principal behind each :class:`ApiCall`.

:class:`ActorResolver` looks at the request's credentials and addresses and
fills :class:`apiward.model.call.Actor`. Key priority: a user (JWT claim or
HTTP Basic user) over an API key (or opaque bearer token) over a session
cookie over the client IP.

- JWTs (``Authorization: Bearer``, API-key headers, or any cookie holding
  one) are read without verifying the signature (apiward observes, it does
  not authenticate): the header's ``alg`` is recorded (``none`` included, so
  detectors can flag it), the configured claim (``sub``) becomes the user
  key, ``preferred_username``/``email``/``name`` the display name, and a few
  non-secret claims are kept (``sub iss aud exp iat nbf role roles scope
  scp azp client_id tenant``).
- API keys, opaque tokens and session cookies are never kept: only a keyed
  digest (HMAC-SHA256 with ``secret``, 12 hex), e.g. ``apikey:3f9a0c1d2e4b``.
- HTTP Basic credentials answered 401 (or 403 when other credentials of
  that user were accepted before and these never were) were rejected: the
  call's actor is its client address (a guess at alice's password is not
  alice's call).
- The client IP walks ``X-Forwarded-For`` (or ``Forwarded``) right to left
  starting from the peer address, stepping over trusted proxies only; an
  untrusted peer's forwarding headers are ignored (they are spoofable). When
  the peer address is unknown (file sources without one) the headers are
  ignored too and the IP stays empty.

Cost per event: one pass over the request headers plus dictionary hits;
credentials are decoded once and cached (bounded caches).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from typing import Any

import orjson

from apiward.model.call import Actor, ApiCall

__all__ = ["ActorResolver", "DEFAULT_SESSION_COOKIES", "DEFAULT_API_KEY_HEADERS", "decode_jwt"]

DEFAULT_SESSION_COOKIES = (
    "session",
    "sessionid",
    "session_id",
    "sid",
    "jsessionid",
    "phpsessid",
    "asp.net_sessionid",
    "connect.sid",
    "laravel_session",
    "_session_id",
    "rack.session",
)
DEFAULT_API_KEY_HEADERS = ("x-api-key", "api-key", "apikey", "x-auth-token", "x-access-token", "x-apikey", "x-token")
DEFAULT_TRUSTED = ("127.0.0.0/8", "::1/128")
KEPT_CLAIMS = (
    "sub", "iss", "aud", "exp", "iat", "nbf", "role", "roles", "scope", "scp", "groups", "is_admin", "permissions",
    "azp", "client_id", "tenant",
)
DISPLAY_CLAIMS = ("preferred_username", "email", "name", "username")
_CACHE_MAX = 50_000


def _b64url(seg: str) -> bytes:
    seg = seg.strip()
    return binascii.a2b_base64(seg.replace("-", "+").replace("_", "/") + "=" * (-len(seg) % 4))


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(header, payload)`` of a compact JWS, unverified; ``None`` if it is
    not one."""
    if token.count(".") != 2 or not token.startswith("eyJ"):
        return None
    h, p, _ = token.split(".")
    try:
        header = orjson.loads(_b64url(h))
        payload = orjson.loads(_b64url(p))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return header, payload


class _Cred:
    """What a credential resolves to (cached per credential string)."""

    __slots__ = ("kind", "key", "user", "alg", "claims", "token_id", "scheme")

    def __init__(self, kind: str, key: str, user: str, alg: str, claims: dict[str, Any], token_id: str, scheme: str):
        self.kind, self.key, self.user, self.alg = kind, key, user, alg
        self.claims, self.token_id, self.scheme = claims, token_id, scheme


class ActorResolver:
    """Resolves the actor of calls. Constructor arguments are the knobs.

    >>> from apiward.testing import make_call
    >>> r = ActorResolver(secret=b"k")
    >>> r.resolve(make_call(headers={"x-api-key": "s3cr3t"})).key.startswith("apikey:")
    True
    """

    def __init__(
        self,
        *,
        jwt_claim: str = "sub",
        session_cookies: Iterable[str] = DEFAULT_SESSION_COOKIES,
        api_key_headers: Iterable[str] = DEFAULT_API_KEY_HEADERS,
        trusted_proxies: Iterable[str] = DEFAULT_TRUSTED,
        secret: bytes | str = b"apiward-default-digest-key",
    ) -> None:
        self.jwt_claim = jwt_claim
        self.session_cookies = frozenset(c.lower() for c in session_cookies)
        self.api_key_headers = frozenset(h.lower() for h in api_key_headers)
        try:
            self.trusted = [ipaddress.ip_network(c, strict=False) for c in trusted_proxies]
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: {exc}") from None
        self.secret = secret.encode() if isinstance(secret, str) else secret
        self._creds: dict[str, _Cred | None] = {}
        #: Basic user -> digests of its credentials the server accepted (a few)
        self._accepted: dict[str, set[str]] = {}
        self._trust: dict[str, bool] = {}
        self._ips: dict[str, str] = {}

    # -- digests and credentials -------------------------------------------

    def digest(self, value: str) -> str:
        """Keyed digest (12 hex) of a secret value."""
        return hmac.new(self.secret, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:12]

    def _cache(self, k: str, v: _Cred | None) -> _Cred | None:
        if len(self._creds) >= _CACHE_MAX:
            self._creds.clear()
        self._creds[k] = v
        return v

    def _jwt(self, token: str, scheme: str) -> _Cred | None:
        ck = "j" + token
        if ck in self._creds:
            return self._creds[ck]
        parts = decode_jwt(token)
        if parts is None:
            return self._cache(ck, None)
        header, payload = parts
        claims = {k: payload[k] for k in KEPT_CLAIMS if k in payload}
        alg = str(header.get("alg", ""))
        tid = self.digest(token)
        subject = payload.get(self.jwt_claim)
        display = next((str(payload[c]) for c in DISPLAY_CLAIMS if isinstance(payload.get(c), str) and payload[c]), "")
        if subject is None or subject == "":
            # A JWT without the user claim identifies a client, not a user.
            cred = _Cred("apikey", f"apikey:{tid}", display, alg, claims, tid, scheme)
        else:
            cred = _Cred("user", f"user:{subject}", display or str(subject), alg, claims, tid, scheme)
        return self._cache(ck, cred)

    def _opaque(self, value: str, kind: str, scheme: str) -> _Cred:
        ck = kind[0] + value
        cred = self._creds.get(ck)
        if cred is None:
            tid = self.digest(value)
            cred = self._cache(ck, _Cred(kind, f"{kind}:{tid}", "", "", {}, tid, scheme))
        return cred  # type: ignore[return-value]

    def _basic(self, value: str) -> _Cred | None:
        ck = "b" + value
        if ck in self._creds:
            return self._creds[ck]
        try:
            raw = binascii.a2b_base64(value + "=" * (-len(value) % 4))
            user, sep, _ = raw.decode("utf-8", "replace").partition(":")
        except (binascii.Error, ValueError):
            return self._cache(ck, None)
        if not sep or not user:
            return self._cache(ck, None)
        return self._cache(ck, _Cred("basic", f"user:{user}", user, "", {}, self.digest(value), "basic"))

    # -- client address ------------------------------------------------------

    def _trusted(self, ip: str) -> bool:
        t = self._trust.get(ip)
        if t is None:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                t = False
            else:
                t = any(addr in net for net in self.trusted)
            if len(self._trust) >= _CACHE_MAX:
                self._trust.clear()
            self._trust[ip] = t
        return t

    @staticmethod
    def _hop(token: str) -> str:
        """An address from one XFF/Forwarded hop, port stripped; ``""`` if
        it is not an IP address."""
        t = token.strip().strip('"')
        if t.startswith("["):
            t = t[1:].partition("]")[0]
        elif t.count(":") == 1:
            t = t.partition(":")[0]
        try:
            return str(ipaddress.ip_address(t))
        except ValueError:
            return ""

    def client_ip(self, peer: str, xff: list[str], forwarded: list[str]) -> str:
        """The real client address: walk the forwarding chain right to left
        from ``peer`` while the current hop is a trusted proxy."""
        if not peer:
            return ""
        if not (xff or forwarded) or not self._trusted(peer):
            return peer
        if xff:
            chain = [h for v in xff for h in v.split(",")]
        else:
            chain = []
            for v in forwarded:
                for element in v.split(","):
                    for pair in element.split(";"):
                        k, _, val = pair.strip().partition("=")
                        if k.lower() == "for":
                            chain.append(val)
        current = peer
        for token in reversed(chain):
            hop = self._hop(token)
            if not hop:
                break  # garbage or an obfuscated identifier: stop at the last real address
            current = hop
            if not self._trusted(hop):
                break
        return current

    # -- resolution ----------------------------------------------------------

    def resolve(self, call: ApiCall) -> Actor:
        """The actor of ``call`` (the call is not modified)."""
        req = call.request
        auth = ua = ""
        xff: list[str] = []
        fwd: list[str] = []
        apikey = ""
        akh = self.api_key_headers
        for k, v in req.headers:
            if k == "authorization":
                auth = auth or v
            elif k == "user-agent":
                ua = v
            elif k == "x-forwarded-for":
                xff.append(v)
            elif k == "forwarded":
                fwd.append(v)
            elif k in akh and v and not apikey:
                apikey = v
        cred: _Cred | None = None
        if auth:
            scheme, _, value = auth.strip().partition(" ")
            s = scheme.lower()
            value = value.strip()
            if s == "bearer" and value:
                cred = self._jwt(value, "bearer") or self._opaque(value, "apikey", "bearer")
            elif s == "basic" and value:
                cred = self._basic(value)
            elif value:  # "Token x", "ApiKey x", custom schemes
                cred = self._opaque(value, "apikey", "apikey")
            elif scheme:  # a bare token with no scheme
                cred = self._jwt(scheme, "bearer") or self._opaque(scheme, "apikey", "apikey")
        if apikey and (cred is None or cred.kind not in ("user", "basic")):
            alt = self._jwt(apikey, "apikey") or self._opaque(apikey, "apikey", "apikey")
            if cred is None or alt.kind == "user":
                cred = alt
        if (cred is None or cred.kind not in ("user", "basic")) and req.cookies:
            session = None
            for name, value in req.cookies.items():
                if not value:
                    continue
                if value.startswith("eyJ"):
                    jc = self._jwt(value, "cookie")
                    if jc is not None and jc.kind == "user":
                        cred = jc
                        session = None
                        break
                if session is None and name.lower() in self.session_cookies:
                    session = value
            if session is not None and cred is None:
                cred = self._opaque(session, "session", "cookie")
        peer = call.src.ip
        ip = self.client_ip(peer, xff, fwd) if peer else ""
        if cred is not None and cred.kind == "basic" and ip and call.response is not None and self._rejected(cred, call.response.status):
            # HTTP Basic credentials the server rejected are a claim, not an identity: a
            # password guess on alice's account is made by its source, not by alice
            return Actor(key=f"ip:{ip}", kind="ip", ip=ip, user_agent=ua, auth_scheme="basic", token_id=cred.token_id)
        if cred is not None:
            return Actor(
                key=cred.key,
                kind=cred.kind,
                user=cred.user,
                ip=ip,
                user_agent=ua,
                auth_scheme=cred.scheme,
                jwt_alg=cred.alg,
                jwt_claims=cred.claims,
                token_id=cred.token_id,
            )
        if ip:
            return Actor(key=f"ip:{ip}", kind="ip", ip=ip, user_agent=ua)
        return Actor(key="anonymous", kind="anonymous", user_agent=ua)

    def _rejected(self, cred: _Cred, status: int) -> bool:
        """Were these Basic credentials rejected? Answered 401; or 403 (servers
        that answer bad passwords so) when other credentials of the same user
        were accepted before and these never were (the right password refused
        is authorization, not a wrong password). Accepted ones are remembered."""
        if status == 401:
            return True
        acc = self._accepted.get(cred.user)
        if 200 <= status < 400:
            if acc is None:
                if len(self._accepted) >= _CACHE_MAX:
                    self._accepted.clear()
                acc = self._accepted[cred.user] = set()
            if len(acc) < 4:
                acc.add(cred.token_id)
            return False
        return status == 403 and acc is not None and cred.token_id not in acc

    def resolve_many(self, calls: Iterable[ApiCall]) -> list[ApiCall]:
        """Set ``call.actor`` on each call (ingest owns the actor field) and
        return them as a list."""
        out = []
        resolve = self.resolve
        for call in calls:
            call.actor = resolve(call)
            out.append(call)
        return out
