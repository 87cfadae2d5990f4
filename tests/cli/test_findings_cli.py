"""`apiward findings` and `findings show` in subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from apiward.detect.base import DetectorBase
from apiward.detect.cleartext import CleartextCredentials
from apiward.pipeline import Pipeline
from apiward.testing import make_call

CLI = [sys.executable, "-m", "apiward"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


class CredentialUse(DetectorBase):
    """Test detector: an attack finding per actor that sends credentials."""

    id = "test.credential_use"
    title = "Credential use"
    severity = "medium"
    owasp = "API2:2023"
    attack = "T1078"
    tactic = "credential-access"
    cwe = "CWE-287"

    def score_one(self, call, ctx):
        if call.request.body or call.request.header("authorization"):
            return [self.finding(call, ctx, summary="credentials sent", evidence={"how": "body or header"})]
        return []


def test_findings_list_filter_and_show(tmp_path: Path) -> None:
    state = tmp_path / "s"
    pipe = Pipeline(state, detectors=[CleartextCredentials(), CredentialUse()])
    calls = [make_call("POST", "/login", req_json={"password": "x"}, scheme="http", user="alice", ip="198.51.100.4", id=f"e{i}", ts=1_764_000_000 + i) for i in range(3)]
    calls.append(make_call("GET", "/me", headers={"authorization": "Basic eDp5"}, scheme="http", user="bob", id="b1", ts=1_764_000_100))
    pipe.process(calls)
    pipe.close()
    rows = [orjson.loads(x) for x in run("findings", "--state", str(state), "--format", "jsonl").stdout.splitlines()]
    assert len(rows) == 4
    need = {"id", "kind", "detector", "title", "severity", "confidence", "owasp", "attack", "tactic", "cwe", "actor", "endpoint", "event_ids",
            "events", "first_seen", "last_seen", "evidence", "summary"}
    assert need <= set(rows[0])
    # cleartext credentials are exposures: about the host, no actor named
    exposures = orjson.loads(run("findings", "--state", str(state), "--format", "json", "--kind", "exposure").stdout)
    assert {r["detector"] for r in exposures} == {"auth.cleartext_credentials"} and len(exposures) == 2
    assert all(r["actor"] == "" and r["kind"] == "exposure" for r in exposures)
    attacks = orjson.loads(run("findings", "--state", str(state), "--format", "json", "--kind", "attack").stdout)
    assert {r["actor"] for r in attacks} == {"user:alice", "user:bob"}
    alice = [r for r in rows if r["actor"] == "user:alice"][0]
    assert alice["event_ids"] == ["e0", "e1", "e2"] and alice["actor_display"] == "alice (198.51.100.4)" and alice["events"] == 3
    only_bob = orjson.loads(run("findings", "--state", str(state), "--format", "json", "--actor", "bob").stdout)
    assert [r["actor"] for r in only_bob] == ["user:bob"]
    assert orjson.loads(run("findings", "--state", str(state), "-f", "json", "--severity", "high").stdout) == []
    r = run("findings", "--state", str(state), "--kind", "posture")
    assert r.returncode == 2 and "--kind" in r.stderr
    assert orjson.loads(run("findings", "--state", str(state), "-f", "json", "--since", "2030-01-01").stdout) == []
    r = run("findings", "show", alice["id"], "--state", str(state), "--format", "json")
    shown = orjson.loads(r.stdout)
    assert [e["id"] for e in shown["events"]] == ["e0", "e1", "e2"]
    r = run("findings", "show", exposures[0]["id"], "--state", str(state))
    assert "plain HTTP" in r.stdout and "CWE-319" in r.stdout and "exposure" in r.stdout
    r = run("findings", "show", "F-nope", "--state", str(state))
    assert r.returncode == 2 and "F-nope" in r.stderr
    r = run("findings", "--state", str(state), "--since", "yesterday")
    assert r.returncode == 2 and "--since" in r.stderr
