"""`apiward findings` and `findings show` in subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from apiward.detect.cleartext import CleartextCredentials
from apiward.pipeline import Pipeline
from apiward.testing import make_call

CLI = [sys.executable, "-m", "apiward"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_findings_list_filter_and_show(tmp_path: Path) -> None:
    state = tmp_path / "s"
    pipe = Pipeline(state, detectors=[CleartextCredentials()])
    calls = [make_call("POST", "/login", req_json={"password": "x"}, scheme="http", user="alice", ip="198.51.100.4", id=f"e{i}", ts=1_764_000_000 + i) for i in range(3)]
    calls.append(make_call("GET", "/me", headers={"authorization": "Basic eDp5"}, scheme="http", user="bob", id="b1", ts=1_764_000_100))
    pipe.process(calls)
    pipe.close()
    rows = [orjson.loads(x) for x in run("findings", "--state", str(state), "--format", "jsonl").stdout.splitlines()]
    assert len(rows) == 2
    need = {"id", "detector", "title", "severity", "confidence", "owasp", "attack", "tactic", "cwe", "actor", "endpoint", "event_ids", "first_seen", "last_seen", "evidence", "summary"}
    assert need <= set(rows[0])
    alice = [r for r in rows if r["actor"] == "user:alice"][0]
    assert alice["event_ids"] == ["e0", "e1", "e2"] and alice["actor_display"] == "alice (198.51.100.4)"
    only_bob = orjson.loads(run("findings", "--state", str(state), "--format", "json", "--actor", "bob").stdout)
    assert [r["actor"] for r in only_bob] == ["user:bob"]
    assert orjson.loads(run("findings", "--state", str(state), "-f", "json", "--severity", "high").stdout) == []
    assert orjson.loads(run("findings", "--state", str(state), "-f", "json", "--since", "2030-01-01").stdout) == []
    r = run("findings", "show", alice["id"], "--state", str(state), "--format", "json")
    shown = orjson.loads(r.stdout)
    assert [e["id"] for e in shown["events"]] == ["e0", "e1", "e2"]
    r = run("findings", "show", alice["id"], "--state", str(state))
    assert "password field" in r.stdout and "CWE-319" in r.stdout
    r = run("findings", "show", "F-nope", "--state", str(state))
    assert r.returncode == 2 and "F-nope" in r.stderr
    r = run("findings", "--state", str(state), "--since", "yesterday")
    assert r.returncode == 2 and "--since" in r.stderr
