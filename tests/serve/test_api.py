"""The REST API over a simulated state: inventory and endpoint detail,
spec export and diff, findings with filters and triage (who and when),
incidents and reports, actors and timelines, hunts (saved, SQL:
read-only and time-limited), changes, selftest, metrics."""

from __future__ import annotations

import warnings

import pytest
import yaml

from .conftest import bearer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def api(served_state):
    from apiward.serve.app import create_app

    state, tokens = served_state
    app = create_app(state, warm=False, ingest=False)
    with TestClient(app) as client:
        yield client, tokens, state
    app.state.ctx.close()


def test_inventory_and_endpoint_detail(api):
    client, tok, _ = api
    h = bearer(tok["viewer"])
    rows = client.get("/api/inventory", headers=h).json()
    assert len(rows) >= 10
    login = next(r for r in rows if r["method"] == "POST" and r["template"].endswith("/login"))
    assert login["calls"] > 0 and login["id"].startswith("E-")
    d = client.get(f"/api/inventory/{login['id']}", headers=h).json()
    assert d["template"] == login["template"] and "parameters" in d and "responses" in d
    assert isinstance(d["findings_list"], list) and isinstance(d["changes"], list)
    only = client.get("/api/inventory", params={"q": "login"}, headers=h).json()
    assert only and all("login" in (r["template"] + r["method"]).lower() or any("login" in s["class"] for s in r["sensitive"]) for r in only)
    assert len(only) < len(rows)
    assert client.get("/api/inventory/E-000000000000", headers=h).status_code == 404
    unauth = client.get("/api/inventory", params={"flag": "unauthenticated"}, headers=h).json()
    assert unauth and len(unauth) < len(rows) and all(r["auth"]["unauthenticated_2xx"] for r in unauth)
    sens = client.get("/api/inventory", params={"flag": "sensitive"}, headers=h).json()
    assert sens and all(r["sensitive"] for r in sens)


def test_spec_export_and_diff(api):
    client, tok, _ = api
    doc = client.get("/api/spec", headers=bearer(tok["viewer"])).json()
    assert doc["openapi"].startswith("3.1") and doc["paths"]
    from apiward.sim.demoapp import demo_spec

    r = client.post("/api/spec/diff", json={"spec": yaml.safe_dump(demo_spec(version=2))}, headers=bearer(tok["analyst"]))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["counts"] and sum(d["counts"].values()) == len(d["items"])
    bad = client.post("/api/spec/diff", json={"spec": "openapi: [unclosed"}, headers=bearer(tok["analyst"]))
    assert bad.status_code == 400 and "spec" in bad.json()["detail"].lower()


def test_findings_filters_and_triage_with_who_and_when(api):
    client, tok, _ = api
    v, a = bearer(tok["viewer"]), bearer(tok["analyst"])
    allf = client.get("/api/findings", headers=v).json()
    assert len(allf) > 10
    kinds = {f["kind"] for f in allf}
    assert kinds == {"attack", "exposure"}
    for k in kinds:
        sub = client.get("/api/findings", params={"kind": k}, headers=v).json()
        assert sub and all(f["kind"] == k for f in sub)
    high = client.get("/api/findings", params={"severity": "high"}, headers=v).json()
    assert all(f["severity"] in ("high", "critical") for f in high)
    assert client.get("/api/findings", params={"kind": "nonsense"}, headers=v).status_code == 422
    target, other = allf[0]["id"], allf[1]["id"]
    assert allf[0]["triage"]["status"] == "open"
    r = client.post(f"/api/findings/{target}/triage", json={"status": "acknowledged", "note": "looking"}, headers=a)
    assert r.status_code == 200 and r.json()["triage"]["by"] == "analyst-user"
    r = client.patch(f"/api/findings/{other}", json={"status": "false-positive", "note": "test traffic"}, headers=a)
    assert r.status_code == 200
    r = client.patch(f"/api/findings/{target}", json={"status": "resolved"}, headers=a)
    t = r.json()["triage"]
    assert t["status"] == "resolved" and t["by"] == "analyst-user" and t["at"].endswith("Z")
    resolved = client.get("/api/findings", params={"status": "resolved"}, headers=v).json()
    assert [f["id"] for f in resolved] == [target]
    fp = client.get("/api/findings", params={"status": "false-positive"}, headers=v).json()
    assert [f["id"] for f in fp] == [other] and fp[0]["triage"]["note"] == "test traffic"
    openf = client.get("/api/findings", params={"status": "open"}, headers=v).json()
    assert len(openf) == len(allf) - 2
    detail = client.get(f"/api/findings/{target}", headers=v).json()
    assert [h["status"] for h in detail["triage_history"]] == ["acknowledged", "resolved"]
    assert detail["events_list"] and detail["evidence"] is not None
    assert client.patch(f"/api/findings/{target}", json={"status": "closed"}, headers=a).status_code == 422
    assert client.patch("/api/findings/F-nope", json={"status": "resolved"}, headers=a).status_code == 404


def test_incidents_reports_actors_and_timelines(api):
    client, tok, _ = api
    v = bearer(tok["viewer"])
    inc = client.get("/api/incidents", headers=v).json()
    assert inc and inc[0]["id"].startswith("I-")
    rep = client.get(f"/api/incidents/{inc[0]['id']}/report", headers=v).json()
    assert rep["report"] == "apiward incident report" and rep["timeline"]
    html = client.get(f"/api/incidents/{inc[0]['id']}/report", params={"format": "html", "download": True}, headers=v)
    assert html.headers["content-type"].startswith("text/html") and "attachment" in html.headers["content-disposition"]
    assert "script-src" not in html.headers["content-security-policy"] and "<script" not in html.text.lower()
    md = client.get(f"/api/incidents/{inc[0]['id']}/report", params={"format": "md"}, headers=v)
    assert md.text.lstrip().startswith("#")
    actors = client.get("/api/actors", headers=v).json()
    assert actors and all(a["findings"] > 0 for a in actors)
    one = client.get(f"/api/actors/{actors[0]['actor']}", headers=v).json()
    assert one["timeline"] and one["identities"] and one["stages"]
    assert [e["time"] for e in one["timeline"]] == sorted(e["time"] for e in one["timeline"])
    assert client.get("/api/actors/user:no-such-actor-anywhere", headers=v).status_code == 404


def test_hunts_saved_and_sql_are_read_only_and_time_limited(api):
    client, tok, _ = api
    an = bearer(tok["analyst"])
    names = [h["name"] for h in client.get("/api/hunts", headers=bearer(tok["viewer"])).json()]
    assert "stuffing-then-success" in names
    r = client.post("/api/hunts/scanner-404-storm/run", json={"params": {}}, headers=an)
    assert r.status_code == 200 and r.json()["columns"]
    n = client.post("/api/hunts/sql", json={"sql": "SELECT count(*) AS n FROM calls"}, headers=an).json()
    assert n["rows"][0][0] > 1000
    for sql, needle in (("DELETE FROM calls", "read-only"), ("SELECT 1; SELECT 2", "one statement"),
                        ("COPY (SELECT 1) TO '/tmp/x.csv'", "read-only"), ("SELECT * FROM read_csv('/etc/passwd')", "")):
        r = client.post("/api/hunts/sql", json={"sql": sql}, headers=an)
        assert r.status_code == 400, (sql, r.text)
        assert needle in r.json()["detail"]
    slow = "SELECT count(*) FROM range(100000000000) a"
    r = client.post("/api/hunts/sql", json={"sql": slow, "timeout": 0.5}, headers=an)
    assert r.status_code == 408 and "time limit" in r.json()["detail"]
    assert client.post("/api/hunts/nope/run", json={}, headers=an).status_code == 404


def test_changes_selftest_metrics_health(api):
    client, tok, _ = api
    v = bearer(tok["viewer"])
    ch = client.get("/api/changes", headers=v).json()
    assert ch and {"ts", "kind", "endpoint"} <= set(ch[0])
    st = client.get("/api/selftest", headers=v).json()
    assert st["classes"] and 0.0 <= st["overall_recall"] <= 1.0
    m = client.get("/api/metrics", headers=v)
    assert m.headers["content-type"].startswith("text/plain")
    assert "apiward_up 1.0" in m.text and "apiward_server_requests_total" in m.text
    assert client.get("/api/health").json()["status"] == "ok"
