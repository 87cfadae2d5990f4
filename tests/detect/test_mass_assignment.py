"""mass_assignment.readonly_write: writes to fields only the API sets."""

from __future__ import annotations

from apiward.state import codec

from apiward.detect.mass_assignment import ReadonlyWrite
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call


def ctx_for(call, template):
    segs = call.request.path.strip("/").split("/")
    tsegs = template.strip("/").split("/")
    params = tuple((t[1:-1], s) for t, s in zip(tsegs, segs) if t.startswith("{"))
    return Context(endpoint=EndpointRef(host=call.request.host, method=call.request.method, template=template, path_params=params))


class Stream:
    def __init__(self, det):
        self.det = det
        self.findings = []
        self.t = 1_764_000_000.0

    def __call__(self, method, path, template, **kw):
        self.t += 1.0
        c = make_call(method, path, ts=self.t, **kw)
        ctx = ctx_for(c, template)
        self.findings.extend(self.det.score_one(c, ctx))
        self.det.learn_one(c, ctx)
        return c


def profile(i, **over):
    d = {"id": i, "name": f"n{i}", "email": f"u{i}@example.com", "role": "user", "balance": 10, "created_at": "2025-01-01"}
    d.update(over)
    return d


def benign(s):
    for i in range(8):
        u = f"u{i}"
        s("GET", f"/api/users/{i}", "/api/users/{userId}", user=u, json=profile(i))
        s("PATCH", f"/api/users/{i}", "/api/users/{userId}", user=u, req_json={"name": f"new{i}"}, json=profile(i, name=f"new{i}"))
        s("PATCH", f"/api/users/{i}", "/api/users/{userId}", user=u, req_json={"email": f"x{i}@example.org"}, json=profile(i, email=f"x{i}@example.org"))
        s("GET", "/api/users", "/api/users", user=u, json={"items": [profile(i)], "total": 1})


def test_privileged_readonly_field_write_with_echo_is_flagged():
    det = ReadonlyWrite()
    s = Stream(det)
    benign(s)
    assert s.findings == []
    c = s("PATCH", "/api/users/3", "/api/users/{userId}", user="u3", req_json={"name": "z", "role": "admin"}, json=profile(3, role="admin"))
    assert len(s.findings) == 1
    f = s.findings[0]
    assert f.detector == "mass_assignment.readonly_write" and f.event_ids == [c.id]
    assert [h["field"] for h in f.evidence["fields"]] == ["role"]
    assert f.evidence["fields"][0]["echoed"] is True and f.confidence >= 0.9
    assert f.owasp == "API3:2023" and f.cwe == "CWE-915"
    codec.loads(codec.dumps(det))


def test_readonly_write_without_echo_on_a_warm_kind():
    det = ReadonlyWrite()
    s = Stream(det)
    benign(s)
    s("PATCH", "/api/users/4", "/api/users/{userId}", user="u4", req_json={"balance": 99999}, status=200, json={"ok": True})
    assert [h["field"] for h in s.findings[0].evidence["fields"]] == ["balance"]
    assert s.findings[0].evidence["fields"][0]["echoed"] is False


def test_self_contained_early_signup_with_is_admin():
    det = ReadonlyWrite()
    s = Stream(det)
    s("POST", "/api/register", "/api/register", req_json={"username": "mal", "password": "x", "is_admin": True},
      status=201, json={"id": 77, "username": "mal", "is_admin": True})
    assert s.findings and s.findings[0].evidence["fields"][0]["field"] == "is_admin"


def test_benign_writes_do_not_alert():
    det = ReadonlyWrite()
    s = Stream(det)
    benign(s)
    # a signup wave that sends the default role and a field the API never returns
    for i in range(20, 30):
        s("POST", "/api/users", "/api/users", ip=f"198.51.100.{i}", req_json={"name": f"n{i}", "email": f"a{i}@example.com", "role": "user", "newsletter": True},
          status=201, json=profile(i))
    # one user sets a rare, non-returned preference
    s("PATCH", "/api/users/2", "/api/users/{userId}", user="u2", req_json={"timezone": "UTC"}, json={"ok": True})
    # rejected attempts do not count
    s("PATCH", "/api/users/2", "/api/users/{userId}", user="u2", req_json={"role": "admin"}, status=403, json={"error": "no"})
    assert s.findings == []


def test_clients_putting_whole_objects_back_adapt():
    det = ReadonlyWrite()
    s = Stream(det)
    benign(s)
    for i in range(8):
        s("PUT", f"/api/users/{i}", "/api/users/{userId}", user=f"u{i}", req_json=profile(i, name="q"), json=profile(i, name="q"))
    # whole-object PUTs write back what the API returned: unchanged values, and fields that become writable
    assert s.findings == []


def test_what_the_escalation_enabled_joins_the_finding():
    """Over-posting ``role`` at sign-up: the login's token carries it, reads
    echo it, an admin-only function is called with it; a regular user's
    calls never join."""
    import base64

    import msgspec
    import orjson

    def jwt(claims):
        body = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
        return f"eyJhbGciOiJIUzI1NiJ9.{body}.sig"

    det = ReadonlyWrite()
    s = Stream(det)
    benign(s)

    def call(method, path, template, claims=None, **kw):
        s.t += 1.0
        c = make_call(method, path, ts=s.t, **kw)
        if claims is not None:
            c.actor = msgspec.structs.replace(c.actor, jwt_claims=claims, token_id=jwt(claims)[-12:])
        ctx = ctx_for(c, template)
        s.findings.extend(det.score_one(c, ctx))
        det.learn_one(c, ctx)
        return c

    admin = {"sub": "boss", "role": "admin"}
    for _ in range(3):
        call("GET", "/api/admin/users", "/api/admin/users", user="boss", claims=admin, json={"items": [profile(1)]})
    for i in range(4):
        call("GET", "/api/users/me", "/api/users/me", user=f"u{i}", claims={"sub": f"u{i}", "role": "user"}, json=profile(i))
    signup = call("POST", "/api/users", "/api/users", ip="192.0.2.66", req_json={"email": "m@example.com", "password": "x", "role": "admin"},
                  status=201, json=profile(66, role="admin"))
    assert s.findings and s.findings[-1].event_ids == [signup.id]
    key = s.findings[-1].key
    tok = jwt({"sub": "mal", "role": "admin"})
    login = call("POST", "/api/login", "/api/login", ip="192.0.2.66", req_json={"username": "m@example.com", "password": "x"},
                 json={"access_token": tok})
    mal = {"sub": "mal", "role": "admin"}
    hdr = {"authorization": f"Bearer {tok}"}
    me = call("GET", "/api/users/me", "/api/users/me", user="mal", ip="192.0.2.66", headers=hdr, claims=mal, json=profile(66, role="admin"))
    adm = call("GET", "/api/admin/users", "/api/admin/users", user="mal", ip="192.0.2.66", headers=hdr, claims=mal, json={"items": []})
    plain = call("GET", "/api/orders", "/api/orders", user="mal", ip="192.0.2.66", headers=hdr, claims=mal, json=[])
    joined = {e for f in s.findings if f.key == key for e in f.event_ids}
    assert {signup.id, login.id, me.id, adm.id} <= joined and plain.id not in joined
    # a later attempt on a privilege field the API never returns is flagged too
    att = call("PATCH", "/api/users/2", "/api/users/{userId}", user="u2", req_json={"credit_limit": 50000}, json=profile(2))
    assert any(att.id in f.event_ids for f in s.findings)
    codec.loads(codec.dumps(det))


def test_privilege_field_inside_a_data_envelope_echoed_back_is_flagged():
    from apiward.detect.mass_assignment import ReadonlyWrite
    from apiward.model.context import Context, EndpointRef
    from apiward.testing import make_call

    det = ReadonlyWrite()
    body = {"data": {"password": "x", "is_admin": True, "role": "admin"}}
    c = make_call("PATCH", "/v1/accounts/oscar", user="oscar", req_json=body,
                  json={"permissions": {"write": ["account:oscar"]}, "data": {"id": "oscar", "is_admin": True, "role": "admin"}})
    ctx = Context(endpoint=EndpointRef(host=c.request.host, method="PATCH", template="/v1/accounts/{account}", path_params=(("account", "oscar"),)))
    found = det.score_one(c, ctx)
    assert found and found[0].actor == "user:oscar" and found[0].owasp.startswith("API3")
    assert {h["field"] for h in found[0].evidence["fields"]} >= {"role"}
