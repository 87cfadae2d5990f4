"""Authentication and roles: every route of the app against every kind of
caller (anonymous, viewer, analyst, admin, ingest), tokens hashed at rest
and shown once, the console's session cookie, CSRF, secure headers and the
login rate limit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import orjson
import pytest

from .conftest import ROLES, SRC, Built, bearer, copy_state, make_tokens
from .helpers import login, telemetry

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

# (method, path) -> the least role that may use it. "anon": anyone;
# "ingest": ingest and admin tokens only; viewer < analyst < admin otherwise.
API_ROUTES = {
    ("GET", "/api/health"): "anon",
    ("GET", "/api/metrics"): "viewer",
    ("GET", "/api/openapi.json"): "viewer",
    ("GET", "/api/inventory"): "viewer",
    ("GET", "/api/inventory/{endpoint_id}"): "viewer",
    ("GET", "/api/spec"): "viewer",
    ("POST", "/api/spec/diff"): "analyst",
    ("GET", "/api/findings"): "viewer",
    ("GET", "/api/findings/stream"): "viewer",
    ("GET", "/api/findings/{finding_id}"): "viewer",
    ("POST", "/api/findings/{finding_id}/triage"): "analyst",
    ("PATCH", "/api/findings/{finding_id}"): "analyst",
    ("GET", "/api/incidents"): "viewer",
    ("GET", "/api/incidents/{target}/report"): "viewer",
    ("GET", "/api/actors"): "viewer",
    ("GET", "/api/actors/{actor}"): "viewer",
    ("GET", "/api/changes"): "viewer",
    ("GET", "/api/selftest"): "viewer",
    ("GET", "/api/hunts"): "viewer",
    ("POST", "/api/hunts/sql"): "analyst",
    ("POST", "/api/hunts/{name}/run"): "analyst",
    ("POST", "/api/telemetry"): "ingest",
    ("POST", "/api/events"): "ingest",
    ("GET", "/api/ingest"): "viewer",
    ("GET", "/api/tokens"): "admin",
    ("POST", "/api/tokens"): "admin",
    ("DELETE", "/api/tokens/{token_id}"): "admin",
}
CONSOLE_ROUTES = {
    ("GET", "/login"): "anon",
    ("POST", "/login"): "anon",
    ("POST", "/logout"): "viewer",
    ("GET", "/"): "viewer",
    ("GET", "/inventory"): "viewer",
    ("GET", "/endpoints/{endpoint_id}"): "viewer",
    ("GET", "/findings"): "viewer",
    ("GET", "/findings/{finding_id}"): "viewer",
    ("POST", "/findings/{finding_id}/triage"): "analyst",
    ("GET", "/actors"): "viewer",
    ("GET", "/actors/{actor}"): "viewer",
    ("GET", "/hunts"): "viewer",
    ("POST", "/hunts"): "analyst",
    ("GET", "/incidents"): "viewer",
    ("GET", "/incidents/{target}"): "viewer",
    ("GET", "/selftest"): "viewer",
}
RANK = {"viewer": 1, "analyst": 2, "admin": 3}


def may(role: str | None, need: str) -> bool:
    if need == "anon":
        return True
    if role is None:
        return False
    if need == "ingest":
        return role in ("ingest", "admin")
    return RANK.get(role, 0) >= RANK[need]


@pytest.fixture(scope="module")
def env(built: Built, tmp_path_factory: pytest.TempPathFactory):
    from apiward.serve.app import create_app

    state = copy_state(built, tmp_path_factory.mktemp("roles") / "state")
    tokens = make_tokens(state)
    app = create_app(state, warm=False)
    with TestClient(app) as admin_client:
        h = bearer(tokens["admin"])
        values = {
            "endpoint_id": admin_client.get("/api/inventory", headers=h).json()[0]["id"],
            "finding_id": admin_client.get("/api/findings", headers=h).json()[0]["id"],
            "target": admin_client.get("/api/incidents", headers=h).json()[0]["id"],
            "actor": admin_client.get("/api/actors", headers=h).json()[0]["actor"],
            "name": "stuffing-then-success",
        }
        yield app, state, tokens, values, built
    app.state.ctx.close()


def _route_table(app) -> set[tuple[str, str]]:
    from fastapi import routing

    out = set()
    # FastAPI keeps included routers as wrappers; walk every effective route
    contexts = routing.iter_route_contexts(app.routes) if hasattr(routing, "iter_route_contexts") else app.routes
    for r in contexts:
        path, methods = getattr(r, "path", None), getattr(r, "methods", None)
        if path is None or not methods or path.startswith("/static"):
            continue
        for m in set(methods) - {"HEAD"}:
            out.add((m, path.replace(":path}", "}")))
    return out


def test_the_tables_cover_every_route_and_the_openapi_document(env):
    app, *_ = env
    routes = _route_table(app)
    assert routes == set(API_ROUTES) | set(CONSOLE_ROUTES), "a route was added or removed: put it in the role table"
    doc = app.openapi()
    assert doc["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented, "the OpenAPI document lists no routes"
    assert documented <= set(API_ROUTES), documented - set(API_ROUTES)
    assert documented == set(API_ROUTES) - {("GET", "/api/openapi.json")}


def _api_request(client, method: str, path: str, values: dict[str, str], state: Path, built: Built, headers: dict[str, str]):
    from apiward.serve.auth import AuthStore

    if "{token_id}" in path:
        store = AuthStore(state)
        values = {**values, "token_id": store.create("viewer", "to-revoke")[0]}
        store.close()
    url = path.format(**values)
    kw: dict = {"headers": dict(headers)}
    if path == "/api/findings/stream":
        kw["params"] = {"max_seconds": 0.3, "interval": 0.2}
    if path.endswith("/triage") or (method == "PATCH"):
        kw["json"] = {"status": "acknowledged", "note": "role test"}
    elif path == "/api/spec/diff":
        from apiward.sim.demoapp import demo_spec

        kw["json"] = {"spec": demo_spec(version=2)}
    elif path == "/api/hunts/sql":
        kw["json"] = {"sql": "SELECT count(*) FROM calls"}
    elif path.endswith("/run"):
        kw["json"] = {}
    elif path == "/api/telemetry":
        kw["content"] = orjson.dumps(telemetry())
        kw["headers"]["content-type"] = "application/json"
    elif path == "/api/events":
        with open(built.events, "rb") as fh:
            kw["content"] = fh.readline()
        kw["headers"]["content-type"] = "application/x-ndjson"
    elif path == "/api/tokens" and method == "POST":
        kw["json"] = {"role": "viewer", "name": "made-by-test"}
    return client.request(method, url, **kw)


@pytest.mark.parametrize("who", [None, *ROLES])
def test_every_api_route_gives_each_role_exactly_its_due(env, who):
    app, state, tokens, values, built = env
    headers = bearer(tokens[who]) if who else {}
    with TestClient(app) as client:
        for (method, path), need in sorted(API_ROUTES.items()):
            r = _api_request(client, method, path, values, state, built, headers)
            where = f"{method} {path} as {who or 'anonymous'}: {r.status_code} {r.text[:200]}"
            if may(who, need):
                assert 200 <= r.status_code < 300, where
            elif who is None:
                assert r.status_code == 401, where
                assert r.json() == {"detail": "authentication required: send Authorization: Bearer <token>"}, where
                assert r.headers["www-authenticate"] == "Bearer"
            else:
                assert r.status_code == 403, where
                detail = r.json()["detail"]
                assert detail.startswith(f"forbidden: this needs the {need} role"), where
                assert f"has role {who}" in detail, where
                assert set(r.json()) == {"detail"}, where  # nothing else leaks


def _console_request(client, method: str, path: str, values: dict[str, str], csrf: str):
    url = path.format(**values)
    if method == "GET":
        return client.get(url, follow_redirects=False)
    data = {"csrf": csrf}
    if path.endswith("/triage"):
        data.update(status="resolved", note="console role test")
    elif path == "/hunts":
        data.update(sql="SELECT 1 AS one", action="run")
    elif path == "/login":
        return client.get(url, follow_redirects=False)  # the form itself is tested below
    return client.post(url, data=data, follow_redirects=False)


@pytest.mark.parametrize("who", [None, "viewer", "analyst", "admin"])
def test_every_console_route_gives_each_role_exactly_its_due(env, who):
    app, _, tokens, values, _ = env
    with TestClient(app) as client:
        csrf = login(client, tokens[who]) if who else "x"
        for (method, path), need in sorted(CONSOLE_ROUTES.items()):
            if path == "/logout":
                continue  # ends the session: checked on its own below
            r = _console_request(client, method, path, values, csrf)
            where = f"{method} {path} as {who or 'anonymous'}: {r.status_code} {r.text[:200]}"
            if may(who, need):
                assert r.status_code in (200, 303), where
                if r.status_code == 303:
                    assert not r.headers["location"].startswith("/login"), where
            elif who is None and method == "GET":
                assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), where
                assert r.text == ""
            elif who is None:
                assert r.status_code == 401 and "authentication required" in r.json()["detail"], where
            else:
                assert r.status_code == 403, where
                assert r.json()["detail"].startswith(f"forbidden: this needs the {need} role"), where
        if who:
            r = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/login"
            assert client.get("/", follow_redirects=False).status_code == 303  # the session is gone


def test_ingest_tokens_cannot_sign_in_to_the_console(env):
    app, _, tokens, *_ = env
    with TestClient(app) as client:
        page = client.get("/login")
        pre = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = client.post("/login", data={"csrf": pre, "token": tokens["ingest"], "next": "/"}, follow_redirects=False)
        assert r.status_code == 401 and "Ingest tokens cannot sign in" in r.text
        assert "aw_session" not in r.headers.get("set-cookie", "")


def test_tokens_cli_prints_the_token_last_and_keeps_only_a_hash(tmp_path: Path):
    env_ = dict(os.environ, PYTHONPATH=SRC)
    r = subprocess.run([sys.executable, "-m", "apiward", "tokens", "create", "--role", "analyst", "--name", "alice", "--state", str(tmp_path)],
                       check=False, capture_output=True, text=True, env=env_, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    token = lines[-1]
    assert re.fullmatch(r"aw_[A-Za-z0-9_-]{40,}", token), lines
    assert "analyst" in lines[0] and "alice" in lines[0]
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("auth.db*"))
    assert token.encode() not in raw and token[3:].encode() not in raw  # hashed at rest
    from apiward.serve.auth import AuthStore

    store = AuthStore(tmp_path)
    p = store.check(token)
    assert p is not None and (p.role, p.name) == ("analyst", "alice")
    assert store.check(token + "x") is None
    store.close()
    bad = subprocess.run([sys.executable, "-m", "apiward", "tokens", "create", "--role", "root", "--name", "x", "--state", str(tmp_path)],
                         check=False, capture_output=True, text=True, env=env_, timeout=120)
    assert bad.returncode != 0 and "role must be one of viewer, analyst, admin, ingest" in bad.stderr


def test_revoked_token_is_refused(env):
    app, state, *_ = env
    from apiward.serve.auth import AuthStore

    store = AuthStore(state)
    tid, tok = store.create("viewer", "short-lived")
    store.close()
    with TestClient(app) as client:
        assert client.get("/api/findings", headers=bearer(tok)).status_code == 200
        admin = AuthStore(state)
        assert admin.revoke(tid)
        admin.close()
        r = client.get("/api/findings", headers=bearer(tok))
        assert r.status_code == 401 and r.json()["detail"].startswith("authentication required")


def test_session_cookie_flags_csrf_and_secure_headers(env):
    app, _, tokens, values, _ = env
    with TestClient(app) as client:
        page = client.get("/login")
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        script_src = re.search(r"script-src ([^;]+)", csp).group(1)
        assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in page.text and " on" + "click=" not in page.text  # no inline scripts to allow
        pre = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        # the sign-in form has its own CSRF token
        r = client.post("/login", data={"csrf": "wrong", "token": tokens["admin"]}, follow_redirects=False)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
        r = client.post("/login", data={"csrf": pre, "token": tokens["analyst"], "next": "//evil.example/"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("aw_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie  # plain http here
        # a form without the session's CSRF token changes nothing
        fid = values["finding_id"]
        r = client.post(f"/findings/{fid}/triage", data={"status": "false-positive"}, follow_redirects=False)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
        r = client.patch(f"/api/findings/{fid}", json={"status": "false-positive"})  # cookie-authenticated API write
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
        api = client.get("/api/health")
        assert api.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in api.headers["content-security-policy"]


def test_cookie_is_secure_behind_tls(env):
    app, _, tokens, *_ = env
    with TestClient(app, base_url="https://apiward.test") as client:
        page = client.get("/login")
        pre = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = client.post("/login", data={"csrf": pre, "token": tokens["viewer"]}, follow_redirects=False)
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("aw_session="))
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert r.headers["strict-transport-security"].startswith("max-age=")


def test_login_is_rate_limited_per_address(env):
    app, _, tokens, *_ = env
    app.state.ctx.login_limiter._fails.clear()
    with TestClient(app) as client:
        page = client.get("/login")
        pre = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        codes = [client.post("/login", data={"csrf": pre, "token": f"aw_wrong{i}"}, follow_redirects=False).status_code for i in range(5)]
        assert codes == [401] * 5
        r = client.post("/login", data={"csrf": pre, "token": tokens["admin"]}, follow_redirects=False)
        assert r.status_code == 429 and "Too many failed sign-ins" in r.text  # even the right token waits
    app.state.ctx.login_limiter._fails.clear()


def test_first_start_prints_a_one_time_admin_token(tmp_path: Path):
    import httpx

    from .conftest import LiveServer

    state = tmp_path / "state"
    state.mkdir()
    srv = LiveServer(state).start()
    try:
        token = re.search(r"admin token: (aw_\S+)", srv.log.read_text()).group(1)
        r = httpx.get(srv.base + "/api/tokens", headers=bearer(token), timeout=30)
        assert r.status_code == 200 and [t["role"] for t in r.json()] == ["admin"]
        assert token not in r.text
    finally:
        srv.stop()
    srv.log.unlink()
    again = LiveServer(state).start()
    try:
        assert "admin token" not in again.log.read_text()  # shown once, on the first start only
    finally:
        again.stop()
