"""Actor resolution: credentials, digests, and trusted-proxy IP handling."""

from __future__ import annotations

import base64

import orjson
import pytest

from apiward.ingest.actor import ActorResolver, decode_jwt
from apiward.model.call import Peer
from apiward.testing import make_call


def jwt(payload: dict, alg: str = "HS256") -> str:
    def enc(obj: dict) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()

    return f"{enc({'alg': alg, 'typ': 'JWT'})}.{enc(payload)}." + ("" if alg == "none" else "c2ln")


def call(headers: dict | None = None, ip: str = "203.0.113.7"):
    c = make_call("GET", "/x", headers=headers or {})
    c.src = Peer(ip=ip, port=5555)
    return c


@pytest.fixture
def r() -> ActorResolver:
    return ActorResolver(secret=b"test-secret")


def test_jwt_user_claims_and_alg(r):
    tok = jwt({"sub": "u-123", "preferred_username": "alice", "email": "a@x.io", "iss": "https://idp", "exp": 2000000000, "role": "admin", "password": "nope"})
    a = r.resolve(call({"authorization": f"Bearer {tok}"}))
    assert a.key == "user:u-123" and a.kind == "user" and a.user == "alice"
    assert a.jwt_alg == "HS256" and a.auth_scheme == "bearer"
    assert a.jwt_claims == {"sub": "u-123", "iss": "https://idp", "exp": 2000000000, "role": "admin"}
    assert a.token_id and tok not in repr(a)
    assert a.display == "alice (203.0.113.7)"


def test_alg_none_is_recorded(r):
    a = r.resolve(call({"authorization": f"Bearer {jwt({'sub': 'mallory'}, alg='none')}"}))
    assert a.jwt_alg == "none" and a.key == "user:mallory"


def test_custom_claim(r):
    tok = jwt({"sub": "x", "uid": "42"})
    assert ActorResolver(jwt_claim="uid").resolve(call({"authorization": f"Bearer {tok}"})).key == "user:42"


def test_jwt_without_the_claim_is_a_client_token(r):
    a = r.resolve(call({"authorization": f"Bearer {jwt({'client_id': 'svc-a'})}"}))
    assert a.kind == "apikey" and a.key.startswith("apikey:") and a.jwt_claims == {"client_id": "svc-a"}


def test_basic_auth_user_never_keeps_password(r):
    cred = base64.b64encode(b"bob:hunter2").decode()
    a = r.resolve(call({"authorization": f"Basic {cred}"}))
    assert a.key == "user:bob" and a.kind == "basic" and a.auth_scheme == "basic"
    assert "hunter2" not in repr(a) and cred not in repr(a)


def test_api_key_is_a_keyed_digest(r):
    a = r.resolve(call({"x-api-key": "sk_live_abcdef"}))
    assert a.kind == "apikey" and a.key.startswith("apikey:") and len(a.key) == len("apikey:") + 12
    assert "sk_live" not in repr(a)
    assert r.resolve(call({"X-API-Key": "sk_live_abcdef"})).key == a.key  # stable
    assert ActorResolver(secret=b"other").resolve(call({"x-api-key": "sk_live_abcdef"})).key != a.key  # keyed
    assert r.resolve(call({"x-api-key": "another"})).key != a.key


def test_opaque_bearer_is_an_apikey(r):
    a = r.resolve(call({"authorization": "Bearer 0123456789abcdef"}))
    assert a.kind == "apikey" and a.auth_scheme == "bearer" and "0123456789abcdef" not in repr(a)


def test_session_cookie_digest(r):
    a = r.resolve(call({"cookie": "theme=dark; JSESSIONID=ABCDEF0123"}))
    assert a.kind == "session" and a.key.startswith("session:") and "ABCDEF0123" not in repr(a)
    assert a.auth_scheme == "cookie"


def test_jwt_in_cookie_is_a_user(r):
    a = r.resolve(call({"cookie": f"access_token={jwt({'sub': 'carol'})}; session=s1"}))
    assert a.key == "user:carol" and a.auth_scheme == "cookie"


def test_priority_user_over_apikey_over_session_over_ip(r):
    tok = jwt({"sub": "dave"})
    both = {"authorization": f"Bearer {tok}", "x-api-key": "k1", "cookie": "session=s"}
    assert r.resolve(call(both)).key == "user:dave"
    assert r.resolve(call({"x-api-key": "k1", "cookie": "session=s"})).kind == "apikey"
    assert r.resolve(call({"cookie": "session=s"})).kind == "session"
    ipa = r.resolve(call({}))
    assert ipa.key == "ip:203.0.113.7" and ipa.kind == "ip"


def test_spoofed_xff_from_untrusted_peer_is_ignored(r):
    a = r.resolve(call({"x-forwarded-for": "1.1.1.1"}, ip="203.0.113.7"))
    assert a.ip == "203.0.113.7" and a.key == "ip:203.0.113.7"


def test_xff_walked_right_to_left_over_trusted_proxies():
    r = ActorResolver(trusted_proxies=["10.0.0.0/8"])
    # client claims 6.6.6.6, the real client is 198.51.100.4 (first untrusted from the right)
    c = call({"x-forwarded-for": "6.6.6.6, 198.51.100.4, 10.0.0.2"}, ip="10.0.0.1")
    assert r.resolve(c).ip == "198.51.100.4"
    # loopback is not trusted when trusted_proxies replaces the default
    assert r.resolve(call({"x-forwarded-for": "198.51.100.4"}, ip="127.0.0.1")).ip == "127.0.0.1"


def test_loopback_peer_trusted_by_default_and_forwarded_header(r):
    assert r.resolve(call({"x-forwarded-for": "198.51.100.4:5000"}, ip="127.0.0.1")).ip == "198.51.100.4"
    fwd = {"forwarded": 'for="[2001:db8::9]:4711";proto=https, for=127.0.0.2'}
    assert r.resolve(call(fwd, ip="::1")).ip == "2001:db8::9"
    assert r.resolve(call({"x-forwarded-for": "garbage, 198.51.100.4"}, ip="127.0.0.1")).ip == "198.51.100.4"
    assert r.resolve(call({"x-forwarded-for": "unknown"}, ip="127.0.0.1")).ip == "127.0.0.1"


def test_unknown_peer_ignores_forwarding_headers(r):
    a = r.resolve(call({"x-forwarded-for": "198.51.100.4"}, ip=""))
    assert a.ip == "" and a.kind == "anonymous" and a.key == "anonymous"


def test_resolve_many_sets_actor(r):
    cs = [call({"x-api-key": "k"}), call({})]
    out = r.resolve_many(cs)
    assert out[0].actor.kind == "apikey" and out[1].actor.key == "ip:203.0.113.7"
    assert out[0].actor.user_agent == "test-agent/1.0"


def test_decode_jwt_rejects_non_jwts():
    assert decode_jwt("abc") is None and decode_jwt("eyJ.eyJ.x") is None
    assert decode_jwt(jwt({"sub": "s"}))[1] == {"sub": "s"}


def test_bad_trusted_proxy_fails_at_construction():
    with pytest.raises(ValueError, match="trusted_proxies"):
        ActorResolver(trusted_proxies=["not-a-cidr"])


def test_rejected_basic_credentials_are_the_source_not_the_named_user():
    import base64

    from apiward.ingest.actor import ActorResolver
    from apiward.testing import make_call

    auth = {"authorization": "Basic " + base64.b64encode(b"alice:guess").decode()}
    r = ActorResolver()
    refused = make_call("GET", "/x", headers=auth, status=401, ip="203.0.113.8")
    a = r.resolve(refused)
    assert a.key == "ip:203.0.113.8" and a.kind == "ip" and a.auth_scheme == "basic" and a.token_id
    accepted = make_call("GET", "/x", headers=auth, status=200, ip="203.0.113.8")
    assert r.resolve(accepted).key == "user:alice"


def test_basic_403_with_credentials_never_accepted_is_the_source():
    import base64

    from apiward.ingest.actor import ActorResolver
    from apiward.testing import make_call

    def call(pw, status):
        auth = {"authorization": "Basic " + base64.b64encode(f"alice:{pw}".encode()).decode()}
        return make_call("POST", "/", headers=auth, status=status, ip="203.0.113.8")

    r = ActorResolver()
    assert r.resolve(call("guess", 403)).key == "user:alice"  # nothing known yet: take the claim
    assert r.resolve(call("right", 200)).key == "user:alice"
    assert r.resolve(call("right", 403)).key == "user:alice"  # her password, refused an action: authorization
    assert r.resolve(call("guess", 403)).key == "ip:203.0.113.8"  # another password, refused: a guess
