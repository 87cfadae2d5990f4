"""data_exposure.sensitive_response, fed by the real sensitive-data classifier."""

from __future__ import annotations

from apiward.state import codec

import msgspec

from apiward.detect.data_exposure import SensitiveResponse
from apiward.discover.sensitive import Classifier
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

CLASSIFIER = Classifier()


def ctx_for(call, template):
    segs = call.request.path.strip("/").split("/")
    tsegs = template.strip("/").split("/")
    params = tuple((t[1:-1], s) for t, s in zip(tsegs, segs) if t.startswith("{"))
    return Context(
        endpoint=EndpointRef(host=call.request.host, method=call.request.method, template=template, path_params=params),
        sensitive=CLASSIFIER.classify_call(call),
    )


class Stream:
    def __init__(self, det):
        self.det = det
        self.findings = []
        self.t = 1_764_000_000.0

    def __call__(self, method, path, template, *, claims=None, **kw):
        self.t += 1.0
        c = make_call(method, path, ts=self.t, **kw)
        if claims is not None:
            c.actor = msgspec.structs.replace(c.actor, jwt_claims=claims)
        ctx = ctx_for(c, template)
        self.findings.extend(self.det.score_one(c, ctx))
        self.det.learn_one(c, ctx)
        return c


def email(i):
    return f"person{i}.smith@example.com"


def benign(s, n=40):
    for i in range(n):
        u = f"u{i}"
        s("POST", "/auth/login", "/auth/login", req_json={"username": email(i), "password": "pw"},
          json={"token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig" + str(i) * 8})
        s("PATCH", "/api/profile", "/api/profile", user=u, req_json={"email": email(i)}, json={"ok": True})
        s("GET", f"/api/users/{i}", "/api/users/{userId}", user=u, json={"id": i, "name": f"P {i}", "email": email(i)})
        s("GET", "/api/users/search?q=a", "/api/users/search", user=u, json=[{"id": i, "email": email(i)}])


def test_benign_traffic_is_quiet():
    det = SensitiveResponse()
    s = Stream(det)
    benign(s)
    assert s.findings == []


def test_new_class_beyond_the_endpoint_norm():
    det = SensitiveResponse(warmup=30)
    s = Stream(det)
    benign(s)
    c = s("GET", "/api/users/5", "/api/users/{userId}", user="u5",
          json={"id": 5, "email": email(5), "ssn": "123-45-6789"})
    fs = [f for f in s.findings if f.evidence.get("class") == "ssn"]
    assert len(fs) == 1 and fs[0].event_ids == [c.id]
    assert fs[0].evidence["endpoint_rate"] == 0.0 and fs[0].owasp == "API3:2023"
    # once the endpoint has returned the class, later occurrences are its (rare) normal
    s("GET", "/api/users/6", "/api/users/{userId}", user="u6", json={"id": 6, "email": email(6), "ssn": "123-45-6780"})
    assert len([f for f in s.findings if f.evidence.get("class") == "ssn"]) == 1


def test_password_hash_and_stack_trace_are_endpoint_findings():
    det = SensitiveResponse()
    s = Stream(det)
    a = s("GET", "/api/users/1", "/api/users/{userId}", user="u1",
          json={"id": 1, "password_hash": "$2b$12$abcdefghijklmnopqrstuuFh8G8kXqk4zWQ0Q1nZbI0n4oVYb7y2a"})
    b = s("GET", "/api/orders?sort='", "/api/orders", user="u2", status=500,
          body=b'Traceback (most recent call last):\n  File "/app/db.py", line 3, in q\nsqlite3.OperationalError: near "x": syntax error',
          resp_headers={"content-type": "text/plain"})
    kinds = {f.key.rsplit("|", 1)[1]: f for f in s.findings}
    assert set(kinds) == {"password_hash", "stack_trace", "sql_error"}
    assert kinds["password_hash"].severity == "high" and kinds["password_hash"].event_ids == [a.id]
    assert kinds["sql_error"].cwe == "CWE-209" and kinds["sql_error"].event_ids == [b.id]
    assert kinds["stack_trace"].title == "Stack trace or SQL error in a response"
    assert all(f.actor == "" for f in kinds.values())  # posture: the endpoint's flaw, no suspect
    for _ in range(5):
        s("GET", "/api/users/1", "/api/users/{userId}", user="u3",
          json={"id": 1, "password_hash": "$2b$12$abcdefghijklmnopqrstuuFh8G8kXqk4zWQ0Q1nZbI0n4oVYb7y2a"})
    assert len([f for f in s.findings if f.key.endswith("|password_hash")]) == 3  # a few samples, then quiet


def test_bulk_personal_data_and_admin_exemption():
    det = SensitiveResponse()
    s = Stream(det)
    benign(s)
    everyone = [{"id": i, "email": email(i)} for i in range(40)]
    s("GET", "/api/users/search?q=", "/api/users/search", user="u3", claims={"role": "admin"}, json=everyone)
    assert s.findings == []
    c = s("GET", "/api/users/search?q=", "/api/users/search", user="u7", claims={"role": "user"}, json=everyone)
    bulk = [f for f in s.findings if f.key.endswith("|bulk")]
    assert len(bulk) == 1 and bulk[0].evidence["distinct_values"] == 40 and bulk[0].event_ids == [c.id]
    codec.loads(codec.dumps(det))


def test_other_principals_personal_data():
    det = SensitiveResponse()
    s = Stream(det)
    benign(s)
    c = s("GET", "/api/users/9", "/api/users/{userId}", user="u20", json={"id": 9, "name": "P 9", "email": email(9)})
    foreign = [f for f in s.findings if f.key.endswith("|foreign")]
    assert len(foreign) == 1 and foreign[0].evidence["owners"] == ["user:u9"] and foreign[0].event_ids == [c.id]


def test_records_harvested_one_by_one_even_unauthenticated_and_signups_are_not():
    det = SensitiveResponse()
    s = Stream(det)
    benign(s)
    # sign-ups from one address get their own submitted data back
    for i in range(5):
        s("POST", "/auth/signup", "/auth/signup", ip="198.51.100.9", status=201,
          req_json={"email": email(500 + i), "password": "x"}, json={"id": 500 + i, "email": email(500 + i)})
    assert s.findings == []
    calls = [s("GET", f"/api/v1/users/{i}", "/api/v1/users/{userId}", ip="192.0.2.13",
               json={"id": i, "email": email(i), "phone": f"+1-555-010-{1000 + i}"}) for i in range(10)]
    f = [x for x in s.findings if x.key.endswith("|harvest")]
    assert f and f[0].evidence["authenticated"] is False and f[0].severity == "high"
    assert {c.id for c in calls[2:]} <= {e for x in f for e in x.event_ids}


def _users_dump(n: int) -> list[dict]:
    return [{"id": i, "username": f"user{i}", "email": f"user{i}@example.com", "password": f"Hunter{i}!pw",
             "password_hash": "$2b$12$" + f"{i:022d}" + "abcdefghijklmnopqrstuvwxyzABC"} for i in range(n)]


def test_taking_many_credentials_from_an_endpoint_nobody_uses_is_an_attack(tmp_path) -> None:
    """An unauthenticated debug endpoint returning every user's password,
    called twice: the endpoint's exposure, and the caller's attack."""
    from apiward.pipeline import Pipeline

    t0 = 1_764_000_000.0
    learn = Pipeline(tmp_path / "s", mode="learn")
    learn.process([make_call("GET", "/api/users/me", ts=t0 + i, user=f"u{i % 30}", ip=f"203.0.113.{i % 30 + 1}",
                             json={"id": i % 30, "username": f"u{i % 30}", "email": f"u{i % 30}@example.com"}) for i in range(300)])
    learn.close()
    pipe = Pipeline(tmp_path / "s", mode="detect")
    found = pipe.process([make_call("GET", "/api/debug/users", ts=t0 + 1000 + k, ip="192.0.2.9", user_agent="curl/8.0",
                                    json=_users_dump(40)) for k in range(2)])
    pipe.close()
    attacks = [f for f in found if f.kind == "attack" and f.detector == "data_exposure.sensitive_response"]
    assert attacks and attacks[0].actor == "ip:192.0.2.9" and attacks[0].severity == "critical"
    assert attacks[0].owasp.startswith("API3")
    exposures = [f for f in found if f.kind == "exposure" and f.detector == "data_exposure.sensitive_response"]
    assert exposures and not exposures[0].actor


def test_an_endpoint_that_hands_hashes_to_its_ordinary_callers_accuses_none_of_them(tmp_path) -> None:
    from apiward.pipeline import Pipeline

    t0 = 1_764_000_000.0
    calls = [make_call("GET", "/api/team/members", ts=t0 + i * 60, user=f"lead{i % 6}", ip=f"198.51.100.{i % 6 + 1}",
                       json=_users_dump(5)) for i in range(60)]
    learn = Pipeline(tmp_path / "s", mode="learn")
    learn.process(calls[:40])
    learn.close()
    pipe = Pipeline(tmp_path / "s", mode="detect")
    found = pipe.process(calls[40:])
    pipe.close()
    assert not [f for f in found if f.kind == "attack"]
    assert [f for f in found if f.kind == "exposure"]
