"""The demo API over real HTTP: each hole open in vulnerable mode, closed in fixed mode."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from apiward.sim.demoapp import DEMO_SECRET, create_app, demo_spec, jwt_decode, jwt_encode, set_version
from apiward.sim.population import luhn_ok, population
from apiward.sim.server import ServerThread, free_port

from .conftest import SEED_USERS

PEOPLE = population(SEED_USERS)
ALICE, BOB, CAROL, DAVE, ERIN = PEOPLE[5], PEOPLE[6], PEOPLE[7], PEOPLE[8], PEOPLE[9]


def login(client: httpx.Client, p, **headers: str) -> dict[str, str]:
    r = client.post("/api/v2/auth/login", json={"username": p.email, "password": p.password}, headers=headers)
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


def new_order(client: httpx.Client, h: dict[str, str]) -> dict:
    r = client.post("/api/v2/orders", json={"items": [{"product_id": 3, "quantity": 1}]}, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.parametrize("mode", ["vuln", "fixed"])
def test_bola_orders_and_accounts(mode: str, request: pytest.FixtureRequest) -> None:
    _, c = request.getfixturevalue(mode)
    ha, hb = login(c, ALICE), login(c, BOB)
    order = new_order(c, hb)
    bob_acct = c.get("/api/v2/accounts", headers=hb).json()[0]
    # the owner always can
    assert c.get(f"/api/v2/orders/{order['id']}", headers=hb).status_code == 200
    r_order = c.get(f"/api/v2/orders/{order['id']}", headers=ha)
    r_acct = c.get(f"/api/v2/accounts/{bob_acct['id']}", headers=ha)
    r_put = c.put(f"/api/v2/orders/{order['id']}", json={"shipping_address": "evil"}, headers=ha)
    if mode == "vuln":
        assert r_order.status_code == 200 and r_order.json()["user_id"] == BOB.index + 1
        assert r_acct.status_code == 200 and r_acct.json()["balance"] == bob_acct["balance"]
        assert r_put.status_code == 200 and r_put.json()["shipping_address"] == "evil"
    else:
        assert (r_order.status_code, r_acct.status_code, r_put.status_code) == (404, 404, 404)
        assert c.get(f"/api/v2/orders/{order['id']}", headers=hb).json()["shipping_address"] != "evil"


@pytest.mark.parametrize("mode", ["vuln", "fixed"])
def test_bfla_admin_functions(mode: str, request: pytest.FixtureRequest) -> None:
    _, c = request.getfixturevalue(mode)
    h = login(c, ALICE)
    target = PEOPLE[50].index + 1
    users = c.get("/api/v2/admin/users", headers=h)
    disable = c.post(f"/api/v2/admin/users/{target}/disable", headers=h)
    if mode == "vuln":
        assert users.status_code == 200 and len(users.json()["users"]) > 10
        assert disable.status_code == 200
        r = c.post("/api/v2/auth/login", json={"username": PEOPLE[50].email, "password": PEOPLE[50].password})
        assert r.status_code == 403
    else:
        assert users.status_code == 403 and disable.status_code == 403
        admin_h = login(c, PEOPLE[0])  # the real admin still can
        assert c.get("/api/v2/admin/users", headers=admin_h).status_code == 200


@pytest.mark.parametrize("mode", ["vuln", "fixed"])
def test_mass_assignment(mode: str, request: pytest.FixtureRequest) -> None:
    _, c = request.getfixturevalue(mode)
    h = login(c, CAROL)
    r = c.patch("/api/v2/users/me", json={"phone": "+1-217-555-0100", "role": "admin", "is_admin": True}, headers=h)
    acct = c.get("/api/v2/accounts", headers=h).json()[0]
    r2 = c.patch(f"/api/v2/accounts/{acct['id']}", json={"nickname": "x", "balance": 1e6}, headers=h)
    me = c.get("/api/v2/users/me", headers=h).json()
    after = c.get(f"/api/v2/accounts/{acct['id']}", headers=h).json()
    if mode == "vuln":
        assert r.status_code == 200 and me["role"] == "admin" and me["is_admin"] == 1
        assert r2.status_code == 200 and after["balance"] == 1e6
    else:
        assert r.status_code == 422 and r2.status_code == 422
        assert me["role"] == "user" and after["balance"] == acct["balance"]
        ok = c.patch("/api/v2/users/me", json={"phone": "+1-217-555-0100"}, headers=h)
        assert ok.status_code == 200 and ok.json()["phone"] == "+1-217-555-0100"


@pytest.mark.parametrize("mode", ["vuln", "fixed"])
def test_excessive_data_exposure(mode: str, request: pytest.FixtureRequest) -> None:
    _, c = request.getfixturevalue(mode)
    h = login(c, DAVE)
    me = c.get("/api/v2/users/me", headers=h).json()
    other = c.get(f"/api/v2/users/{ALICE.index + 1}", headers=h).json()
    if mode == "vuln":
        assert me["ssn"] == DAVE.ssn and me["password_hash"].startswith("pbkdf2_sha256$")
        assert me["card_number"] == DAVE.card_number and luhn_ok(me["card_number"])
        assert other["ssn"] == ALICE.ssn and "password_hash" in other
    else:
        assert "password_hash" not in me and me["ssn"] == f"***-**-{DAVE.ssn[-4:]}"
        assert DAVE.card_number not in str(me)
        assert set(other) == {"id", "username", "full_name", "city"}


@pytest.mark.parametrize("mode", ["vuln", "fixed"])
def test_errors_leak_trace_sql_and_email(mode: str, request: pytest.FixtureRequest) -> None:
    _, c = request.getfixturevalue(mode)
    h = login(c, ERIN)
    r = c.get("/api/v2/orders", params={"sort": "date"}, headers=h)
    if mode == "vuln":
        assert r.status_code == 500
        body = r.json()
        assert "Traceback (most recent call last)" in body["trace"]
        assert "SELECT" in body["query"] and ERIN.email in body["query"]
    else:
        assert r.status_code == 400 and ERIN.email not in r.text and "Traceback" not in r.text
    assert c.get("/api/v2/orders", params={"sort": "total"}, headers=h).status_code == 200


@pytest.mark.parametrize("mode", ["vuln", "fixed"])
def test_sql_injection_in_search(mode: str, request: pytest.FixtureRequest) -> None:
    _, c = request.getfixturevalue(mode)
    union = "' UNION ALL SELECT id,email,ssn,card_number FROM users-- -"
    r = c.get("/api/v2/products/search", params={"q": union})
    quote = c.get("/api/v2/products/search", params={"q": "'"})
    normal = c.get("/api/v2/products/search", params={"q": "a"})
    assert normal.status_code == 200 and normal.json()["count"] > 0
    if mode == "vuln":
        names = {row["name"] for row in r.json()["items"]}
        assert ALICE.email in names
        assert quote.status_code == 500 and "LIKE" in quote.json()["query"]
    else:
        assert r.status_code == 200 and r.json()["count"] == 0
        assert quote.status_code == 200


@pytest.mark.parametrize("mode", ["vuln", "fixed"])
def test_login_enumeration_and_rate_limit(mode: str, request: pytest.FixtureRequest) -> None:
    _, c = request.getfixturevalue(mode)
    victim = PEOPLE[20]
    nouser = c.post("/api/v2/auth/login", json={"username": "nobody@example.com", "password": "x"})
    wrong = c.post("/api/v2/auth/login", json={"username": victim.email, "password": "wrong"})
    statuses = [c.post("/api/v2/auth/login", json={"username": victim.email, "password": f"guess{i}"},
                       headers={"x-forwarded-for": f"198.51.100.{i + 1}"}).status_code for i in range(10)]
    right = c.post("/api/v2/auth/login", json={"username": victim.email, "password": victim.password})
    if mode == "vuln":
        assert (nouser.status_code, nouser.json()["detail"]) == (404, "no such user")
        assert (wrong.status_code, wrong.json()["detail"]) == (401, "wrong password")
        assert set(statuses) == {401} and right.status_code == 200
    else:
        assert (nouser.status_code, nouser.json()) == (wrong.status_code, wrong.json()) == (401, {"detail": "invalid credentials"})
        assert 429 in statuses and right.status_code == 429


@pytest.mark.parametrize("mode", ["vuln", "fixed"])
def test_weak_jwt_handling(mode: str, request: pytest.FixtureRequest) -> None:
    _, c = request.getfixturevalue(mode)
    admin = PEOPLE[0]
    none_tok = jwt_encode({"sub": admin.username, "uid": 1, "role": "admin", "iat": 1, "exp": 4_000_000_000}, alg="none")
    r_none = c.get("/api/v2/users/me", headers={"authorization": f"Bearer {none_tok}"})
    t = 1_740_800_000.0
    h = login(c, PEOPLE[21], **{"x-apiward-sim-ts": str(t)})
    fresh = c.get("/api/v2/users/me", headers={**h, "x-apiward-sim-ts": str(t + 60)})
    late = c.get("/api/v2/users/me", headers={**h, "x-apiward-sim-ts": str(t + 7200)})
    forged_sig = jwt_encode({"sub": admin.username, "uid": 1, "role": "admin", "iat": 1, "exp": 4_000_000_000}, secret="guess")
    r_sig = c.get("/api/v2/users/me", headers={"authorization": f"Bearer {forged_sig}"})
    assert fresh.status_code == 200 and r_sig.status_code == 401
    if mode == "vuln":
        assert r_none.status_code == 200 and r_none.json()["username"] == admin.username
        assert late.status_code == 200
    else:
        assert r_none.status_code == 401 and late.status_code == 401


def test_jwt_codec() -> None:
    tok = jwt_encode({"sub": "a", "exp": 100}, DEMO_SECRET)
    assert jwt_decode(tok, DEMO_SECRET, now=50, strict=True) == {"sub": "a", "exp": 100}
    assert jwt_decode(tok, DEMO_SECRET, now=150, strict=True) is None
    assert jwt_decode(tok, DEMO_SECRET, now=150, strict=False) == {"sub": "a", "exp": 100}
    assert jwt_decode(tok, "other", now=50, strict=False) is None
    assert jwt_decode("garbage", DEMO_SECRET, now=0, strict=False) is None


@pytest.mark.parametrize("mode", ["vuln", "fixed"])
def test_shadow_endpoints(mode: str, request: pytest.FixtureRequest) -> None:
    _, c = request.getfixturevalue(mode)
    spec = c.get("/openapi.json").json()
    debug = c.get("/api/v2/internal/debug")
    export = c.get("/api/v2/users/export", headers=login(c, ALICE))
    assert "/api/v2/internal/debug" not in spec["paths"]
    if mode == "vuln":
        assert debug.status_code == 200 and "recent_queries" in debug.json()
        assert export.status_code == 200 and export.json()["count"] >= SEED_USERS
        assert "/api/v2/users/export" not in spec["paths"]
    else:
        assert debug.status_code == 404 and export.status_code == 403
        assert "/api/v2/users/export" in spec["paths"]


@pytest.mark.parametrize("mode", ["vuln", "fixed"])
def test_v1_zombie(mode: str, request: pytest.FixtureRequest) -> None:
    _, c = request.getfixturevalue(mode)
    spec = c.get("/openapi.json").json()
    v1 = {p: ops for p, ops in spec["paths"].items() if p.startswith("/api/v1/")}
    assert v1 and all(op.get("deprecated") is True for ops in v1.values() for op in ops.values())
    assert all(not op.get("deprecated") for p, ops in spec["paths"].items() if p.startswith("/api/v2/") for op in ops.values())
    r = c.get(f"/api/v1/users/{ALICE.index + 1}")  # no token at all
    if mode == "vuln":
        assert r.status_code == 200 and r.json()["ssn"] == ALICE.ssn
    else:
        assert r.status_code == 410


def test_demo_spec_shape() -> None:
    spec = demo_spec()
    assert spec["openapi"].startswith("3.")
    assert "/api/v2/orders/{order_id}" in spec["paths"] and "/api/v2/rewards" not in spec["paths"]
    assert "/api/v2/internal/debug" not in spec["paths"] and "/api/v2/users/export" not in spec["paths"]
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    v3 = demo_spec(version=3)
    assert "/api/v2/rewards" in v3["paths"]
    assert "preferred_language" in v3["components"]["schemas"]["ProfilePatch"]["properties"]
    assert "preferred_language" not in spec["components"]["schemas"]["ProfilePatch"]["properties"]
    try:
        from openapi_spec_validator import validate
    except ImportError:
        return
    validate(spec)


def test_deploy_v3_mid_stream(tmp_path) -> None:
    app = create_app(str(tmp_path / "d.sqlite"), seed_users=12)
    with ServerThread(app) as srv, httpx.Client(base_url=srv.base_url, trust_env=False) as c:
        h = login(c, PEOPLE[3])
        assert c.get("/api/v2/rewards", headers=h).status_code == 404
        assert "/api/v2/rewards" not in c.get("/openapi.json").json()["paths"]
        assert "loyalty_tier" not in c.get("/api/v2/users/me", headers=h).json()
        set_version(app, 3)
        r = c.get("/api/v2/rewards", headers=h)
        assert r.status_code == 200 and "points" in r.json()
        assert "/api/v2/rewards" in c.get("/openapi.json").json()["paths"]
        assert "loyalty_tier" in c.get("/api/v2/users/me", headers=h).json()
    app.state.store.close()


@pytest.mark.parametrize("fixed_flag", [False, True])
def test_runner_subprocess(tmp_path, fixed_flag: bool) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "apiward.sim.demoapp", "--port", str(port), "--db", str(tmp_path / "r.sqlite"), "--users", "20"]
    if fixed_flag:
        cmd.append("--fixed")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(os.path.dirname(__file__), "..", "..", "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0, trust_env=False)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode() if proc.poll() is not None else "runner did not start")
                time.sleep(0.1)
        assert r.json()["mode"] == ("fixed" if fixed_flag else "vulnerable")
    finally:
        proc.terminate()
        proc.wait(10)
