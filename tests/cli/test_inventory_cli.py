"""End to end: analyze a JSONL capture, then inventory, spec export and spec
diff, each in a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from apiward.model.call import dumps
from apiward.testing import make_call

pytestmark = pytest.mark.slow

SPEC = """
swagger: "2.0"
info: {title: shop, version: "1"}
basePath: /api
paths:
  /users/{id}:
    get:
      parameters: [{name: id, in: path, required: true, type: integer}]
      responses: {"200": {description: ok}}
  /orders:
    get:
      responses: {"200": {description: ok}}
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    p = subprocess.run([sys.executable, "-m", "apiward", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"apiward {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}"
    return p


def test_inventory_spec_export_and_diff(tmp_path: Path) -> None:
    calls = []
    for i in range(40):
        calls.append(make_call("GET", f"/api/users/{1000 + i}", user=f"user{i % 6}", ts=1_764_000_000 + i,
                               json={"id": 1000 + i, "email": f"person{i}@example.com", "plan": ["free", "pro"][i % 2]}))
        calls.append(make_call("POST", "/api/debug/flags", ts=1_764_000_000 + i, req_json={"flag": "x", "on": True}, json={"ok": True}))
    (tmp_path / "traffic.jsonl").write_bytes(b"\n".join(dumps(c) for c in calls) + b"\n")
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "owners.yaml").write_text('owners:\n  - path: "/api/users/*"\n    team: identity\n')
    state = str(tmp_path / "st")

    run("analyze", "traffic.jsonl", "--state", state, "-q", cwd=tmp_path)

    rows = json.loads(run("inventory", "--format", "json", "--state", state, "--owners", "owners.yaml", cwd=tmp_path).stdout)
    by_t = {(r["method"], r["template"]): r for r in rows}
    users = by_t[("GET", "/api/users/{userId}")]
    for key in ("service", "host", "method", "template", "calls", "first_seen", "last_seen", "auth", "owner", "risk", "status", "sensitive"):
        assert key in users
    assert users["calls"] == 40 and users["status"] == "unknown" and users["owner"] == "identity"
    assert users["first_seen"] == "2025-11-24T16:00:00Z"
    assert isinstance(users["sensitive"], list) and 0 <= users["risk"] <= 100
    debug = by_t[("POST", "/api/debug/flags")]
    assert debug["auth"]["unauthenticated_2xx"] is True and debug["auth"]["schemes"] == []

    table = run("inventory", "--state", state, cwd=tmp_path).stdout
    assert "/api/users/{userId}" in table and "risk" in table

    doc = json.loads(run("spec", "export", "--format", "json", "--state", state, cwd=tmp_path).stdout)
    validate(doc)
    assert "/api/users/{userId}" in doc["paths"]
    ydoc = yaml.safe_load(run("spec", "export", "--format", "yaml", "--state", state, cwd=tmp_path).stdout)
    validate(ydoc)

    diff = json.loads(run("spec", "diff", "--spec", "spec.yaml", "--format", "json", "--state", state, cwd=tmp_path).stdout)
    assert diff["counts"]["shadow"] == 1 and diff["counts"]["orphan"] == 1
    assert len(diff["findings"]) >= 2 and diff["recorded"] is True
    diff_table = run("spec", "diff", "--spec", "spec.yaml", "--state", state, "--no-record", cwd=tmp_path).stdout
    assert "shadow" in diff_table and "/api/debug/flags" in diff_table

    rows = json.loads(run("inventory", "--format", "json", "--state", state, cwd=tmp_path).stdout)
    status = {(r["method"], r["template"]): r["status"] for r in rows}
    assert status[("GET", "/api/users/{userId}")] == "documented"
    assert status[("POST", "/api/debug/flags")] == "shadow"
    assert status[("GET", "/api/orders")] == "orphan"

    found = run("query", "select detector, owasp from findings where detector = 'inventory.spec_diff'", "--format", "json",
                "--state", state, cwd=tmp_path).stdout
    recorded = json.loads(found)
    assert len(recorded) >= 2 and all(r["owasp"].startswith("API9:2023") for r in recorded)

    changes = json.loads(run("inventory", "--changes", "--format", "json", "--state", state, cwd=tmp_path).stdout)
    assert isinstance(changes, list)
    explain = json.loads(run("inventory", "--explain", "--format", "json", "--state", state, cwd=tmp_path).stdout)
    assert any(e["template"] == "/api/users/{userId}" for e in explain)


def test_probes_stay_out_of_the_inventory_and_are_listed(tmp_path: Path) -> None:
    calls = []
    for i in range(30):
        calls.append(make_call("GET", f"/api/users/{1000 + i}", user=f"user{i % 5}", ts=1_764_000_000 + i, json={"id": i, "n": "x"}))
    scan = ["/.env", "/wp-login.php", "/admin/config", "/backup.tar.gz", "/api/v1/debug", "/server-status"]
    for j, p in enumerate(scan * 2):
        calls.append(make_call("GET", p, status=404, ts=1_764_000_100 + j, ip="198.51.100.23", user_agent="zgrab/0.x"))
    calls.append(make_call("DELETE", "/api/users/1000", status=405, ts=1_764_000_200, ip="198.51.100.23"))
    (tmp_path / "traffic.jsonl").write_bytes(b"\n".join(dumps(c) for c in calls) + b"\n")
    state = str(tmp_path / "st")
    run("analyze", "traffic.jsonl", "--state", state, "-q", cwd=tmp_path)

    rows = json.loads(run("inventory", "--format", "json", "--state", state, cwd=tmp_path).stdout)
    assert [(r["method"], r["template"]) for r in rows] == [("GET", "/api/users/{userId}")]
    probes = json.loads(run("inventory", "--probes", "--format", "json", "--state", state, cwd=tmp_path).stdout)
    by_path = {(p["method"], p["path"]): p for p in probes}
    assert set(by_path) == {("GET", p) for p in scan} | {("DELETE", "/api/users/1000")}
    env = by_path[("GET", "/.env")]
    assert env["calls"] == 2 and env["statuses"] == {"404": 2} and env["first_seen"] < env["last_seen"]
    assert env["actors"] and "198.51.100.23" in env["actors"][0]
    assert by_path[("DELETE", "/api/users/1000")]["template"] == "/api/users/{userId}"
    table = run("inventory", "--probes", "--state", state, cwd=tmp_path).stdout
    assert "/.env" in table and "404x2" in table
