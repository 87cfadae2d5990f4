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


def login(det: BrokenAuthentication, token: str, ts: float) -> object:
    """A login answered with a token: the API issues its signature."""
    c = make_call("POST", "/api/v2/auth/login", ts=ts, ip="198.51.100.40", req_json={"username": "mallory", "password": "pw"},
                  json={"access_token": token, "token_type": "bearer", "expires_in": 3600})
    c.actor = RESOLVER.resolve(c)
    ctx = Context(endpoint=EndpointRef(host=c.request.host, method="POST", template="/api/v2/auth/login"))
    assert det.score_one(c, ctx) == []
    det.learn_one(c, ctx)
    return c


def test_token_edited_before_first_use_is_caught_from_the_issued_signature() -> None:
    det = BrokenAuthentication()
    s = Stream(det)
    sig = "aXNzdWVkLWJ5LXRoZS1hcGktMTIzNDU2Nzg5"
    issued = jwt({"sub": "mallory", "role": "user", "iat": T0, "exp": T0 + 3600}, sig=sig)
    lc = login(det, issued, T0)
    # the attacker edits the role and keeps the signature; never used the original
    edited = jwt({"sub": "mallory", "role": "admin", "iat": T0, "exp": T0 + 3600}, sig=sig)
    c, found = s("/api/v2/admin/stats", token=edited, status=401, ts=T0 + 60)
    assert len(found) == 1
    f = found[0]
    assert f.evidence["signal"] == "tampered_token_attempt" and f.evidence["original_event"] == lc.id
    assert f.event_ids == [lc.id, c.id] and f.severity == "medium"
    # the genuine token, used as issued, is quiet
    _, found = s(token=issued, status=200, ts=T0 + 120, ip="198.51.100.40")
    assert found == []


def test_fresh_signed_token_refused_on_first_use_is_a_low_attempt() -> None:
    s = Stream(BrokenAuthentication())
    forged = jwt({"sub": "x", "role": "admin", "iat": T0 - 10, "exp": T0 + 3600}, sig="Zm9yZ2VkLXdpdGgtYW5vdGhlci1rZXktMTIz")
    c, found = s("/api/v2/admin/stats", token=forged, status=401, ts=T0)
    assert len(found) == 1
    f = found[0]
    assert f.evidence["signal"] == "rejected_token_attempt" and f.severity == "low" and f.event_ids == [c.id]
    assert f.evidence["claims"]["role"] == "admin"


def test_refused_tokens_that_benign_clients_send_are_quiet() -> None:
    s = Stream(BrokenAuthentication(max_rejected=5))
    # an expired token refused before a refresh (even long expired)
    s(token=jwt({"sub": "a", "iat": T0 - 90_000, "exp": T0 - 86_400}, sig="ZXhwaXJlZC10b2tlbi1zaWduYXR1cmUtMQ"), status=401, ts=T0)
    # a token that worked, later revoked (logout elsewhere)
    tok = jwt({"sub": "b", "iat": T0 - 10, "exp": T0 + 3600}, sig="cmV2b2tlZC10b2tlbi1zaWduYXR1cmUtMg")
    s(token=tok, status=200, ts=T0)
    s(token=tok, status=401, ts=T0 + 600)
    # a token the API refuses as not yet valid for our clock (issued in the future)
    s(token=jwt({"sub": "c", "iat": T0 + 7200, "exp": T0 + 10_800}, sig="ZnV0dXJlLXRva2VuLXNpZ25hdHVyZS0zNA"), status=401, ts=T0)
    assert s.findings == []
    # a signing-key rotation refuses every fresh token at once: a handful of reports, then silence
    for i in range(40):
        s(token=jwt({"sub": f"u{i}", "iat": T0, "exp": T0 + 3600}, sig=f"cm90YXRlZC1rZXktc2lnbmF0dXJl{i:04d}"), status=401, ts=T0 + 900 + i,
          ip=f"198.51.100.{i + 50}")
    assert len(s.findings) == 5
