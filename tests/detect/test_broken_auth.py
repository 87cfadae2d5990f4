"""auth.broken_authentication: unsigned, expired and tampered tokens
accepted, credentials in URLs, one token used by several clients."""

from __future__ import annotations

import base64

import orjson

from apiward.detect.broken_auth import BrokenAuthentication
from apiward.ingest.actor import ActorResolver
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

T0 = 1_764_000_000.0
RESOLVER = ActorResolver(secret=b"test", trusted_proxies=["0.0.0.0/0"])


def b64(d: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(d)).rstrip(b"=").decode()


def jwt(claims: dict, alg: str = "HS256", sig: str = "c2lnbmF0dXJlLW9mLXRoZS1zZXJ2ZXItMTIzNDU2") -> str:
    return f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims)}.{sig}"


class Stream:
    def __init__(self, det: BrokenAuthentication) -> None:
        self.det = det
        self.findings: list = []

    def __call__(self, path: str = "/api/v2/users/me", *, token: str = "", status: int = 200, ts: float = T0, ip: str = "198.51.100.5",
                 ua: str = "Mozilla/5.0 Firefox/126.0"):
        headers = {"authorization": f"Bearer {token}"} if token else {}
        c = make_call("GET", path, status=status, ts=ts, headers=headers, ip=ip, user_agent=ua, json={"ok": True})
        c.actor = RESOLVER.resolve(c)
        ctx = Context(endpoint=EndpointRef(host=c.request.host, method="GET", template=path.split("?")[0]))
        new = self.det.score_one(c, ctx)
        self.findings.extend(new)
        self.det.learn_one(c, ctx)
        return c, new


def test_valid_looking_tokens_with_future_expiry_are_quiet() -> None:
    s = Stream(BrokenAuthentication())
    for i in range(20):
        tok = jwt({"sub": f"user{i}", "iat": T0 - 60, "exp": T0 + 3600, "role": "user"}, sig=f"sig{i:04d}" * 8)
        for k in range(5):
            s(token=tok, ts=T0 + k * 30, ip=f"198.51.100.{i}")
    # an expired token that the API refuses is the API working
    s(token=jwt({"sub": "old", "exp": T0 - 7200}), status=401, ts=T0)
    assert s.findings == []


def test_alg_none_accepted_is_critical_and_refused_is_an_attempt() -> None:
    s = Stream(BrokenAuthentication())
    forged = jwt({"sub": "admin", "role": "admin", "exp": T0 + 3600}, alg="none", sig="")
    c, found = s(token=forged, status=200)
    assert len(found) == 1 and found[0].severity == "critical" and found[0].event_ids == [c.id]
    assert found[0].evidence["signal"] == "unsigned_token_accepted" and found[0].owasp == "API2:2023"
    forged2 = jwt({"sub": "bob", "exp": T0 + 3600}, alg="None", sig="")
    _, found = s(token=forged2, status=401)
    assert found[0].severity == "medium" and found[0].evidence["signal"] == "unsigned_token_attempt"


def test_empty_signature_with_a_signing_alg() -> None:
    s = Stream(BrokenAuthentication())
    _, found = s(token=jwt({"sub": "carol", "exp": T0 + 60}, sig=""), status=200)
    assert [f.evidence["signal"] for f in found] == ["unsigned_token_accepted"]
    # the same token again still counts (state remembers it)
    _, found = s(token=jwt({"sub": "carol", "exp": T0 + 60}, sig=""), status=200, ts=T0 + 5)
    assert found and found[0].evidence["signal"] == "unsigned_token_accepted"


def test_expired_token_accepted() -> None:
    s = Stream(BrokenAuthentication(leeway_s=300))
    tok = jwt({"sub": "dave", "exp": T0 - 100})
    _, found = s(token=tok, ts=T0)  # within leeway: clock skew
    assert found == []
    c, found = s(token=tok, ts=T0 + 3600)
    assert len(found) == 1 and found[0].evidence["signal"] == "expired_token_accepted"
    assert found[0].evidence["expired_for_s"] == 3700 and found[0].severity == "high"


def test_tampered_payload_with_reused_signature() -> None:
    s = Stream(BrokenAuthentication())
    sig = "Zm9yZ2VkLXNpZ25hdHVyZS0xMjM0NTY3ODkw"
    s(token=jwt({"sub": "eve", "role": "user", "exp": T0 + 3600}, sig=sig))
    _, found = s(token=jwt({"sub": "eve", "role": "admin", "exp": T0 + 3600}, sig=sig), status=403)
    assert len(found) == 1 and found[0].evidence["signal"] == "tampered_token_attempt"


def test_credentials_in_urls_but_not_reset_links() -> None:
    s = Stream(BrokenAuthentication())
    _, found = s("/api/v2/reports?access_token=abcdef0123456789abcdef")
    assert found and found[0].evidence["signal"] == "credential_in_url" and found[0].evidence["cwe"] == "CWE-598"
    assert found[0].key.endswith("|url|access_token")
    # a single-use token in a password-reset link is how reset links work
    _, found = s("/account/reset-password?token=9f8e7d6c5b4a39281706f5e4d3c2b1a0")
    assert found == []
    # ...but a JWT named "token" anywhere is a bearer credential in the URL
    _, found = s("/account/reset-password?token=" + jwt({"sub": "x"}))
    assert found and found[0].evidence["jwt"] is True
    # short or non-credential values are ignored
    _, found = s("/api/v2/search?q=token&sort=asc")
    assert found == []


def test_stolen_token_used_from_another_client() -> None:
    s = Stream(BrokenAuthentication())
    tok = jwt({"sub": "frank", "exp": T0 + 3600}, sig="ZnJhbmtzLXNpZ25hdHVyZS0xMjM0NTY3ODkw")
    for k in range(5):
        s(token=tok, ts=T0 + k * 60, ip="198.51.100.20", ua="Mozilla/5.0 (iPhone) Safari/605")
    # a phone roaming to another network keeps its agent: not enough
    s(token=tok, ts=T0 + 400, ip="198.51.100.21", ua="Mozilla/5.0 (iPhone) Safari/605")
    assert s.findings == []
    c, found = s(token=tok, ts=T0 + 900, ip="203.0.113.66", ua="python-requests/2.31.0")
    assert len(found) == 1 and found[0].evidence["signal"] == "token_shared"
    assert c.id in found[0].event_ids and found[0].actor == "user:frank"
    assert found[0].evidence["origin_ip"] == "198.51.100.20"
