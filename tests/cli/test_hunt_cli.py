"""`apiward hunt`, `actors`, `incident report` and `alerts test` in
subprocesses: the contract scripts rely on."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

CLI = [sys.executable, "-m", "apiward"]
ENV = {**os.environ, "APIWARD_NOW": "2025-03-04T00:00:00Z", "COLUMNS": "200"}


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180, env={**ENV, **(env or {})})


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location("scenario", Path(__file__).parent.parent / "hunt" / "scenario.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    st = tmp_path_factory.mktemp("cli") / "s"
    mod.build(st)
    return st


def js(r: subprocess.CompletedProcess):
    assert r.returncode == 0, r.stderr
    return orjson.loads(r.stdout)


def test_hunt_list_run_sql(state: Path) -> None:
    hunts = js(run("hunt", "list", "--state", str(state), "--format", "json"))
    assert len(hunts) >= 12 and all(h["name"] and h["description"] for h in hunts)
    rows = js(run("hunt", "run", "stuffing-then-success", "--state", str(state), "--since", "7d", "--format", "json"))
    assert rows and rows[0]["success_ip"] == "198.51.100.77" and rows[0]["failures"] >= 5
    csv = run("hunt", "run", "stuffing-then-success", "--state", str(state), "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("account,success_at")
    rows = js(run("hunt", "sql", "select actor, count(*) as n from calls where status = 401 group by 1", "--state", str(state), "-f", "json"))
    assert rows == [{"actor": "ip:198.51.100.77", "n": 12}]
    assert js(run("hunt", "sql", "select count(*) as n from calls", "--state", str(state), "--since", "2025-03-02", "-f", "json")) == [{"n": 46}]
    r = run("hunt", "sql", "delete from calls", "--state", str(state))
    assert r.returncode == 2 and "read-only" in r.stderr
    r = run("hunt", "run", "nope", "--state", str(state))
    assert r.returncode == 2 and "no hunt" in r.stderr
    r = run("hunt", "run", "scanner-404-storm", "--state", str(state), "--since", "last week")
    assert r.returncode == 2 and "not a time" in r.stderr


def test_hunt_sigma(state: Path, tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text("title: logins failing\nid: 00000000-0000-4000-8000-000000000009\nlogsource: {category: webserver}\n"
                                    "detection:\n  sel:\n    cs-method: post\n    sc-status: 401\n  condition: sel\n")
    rows = js(run("hunt", "sigma", str(tmp_path), "--state", str(state), "-f", "json"))
    assert len(rows) == 12 and {r["rule"] for r in rows} == {"logins failing"} and all(r["client_ip"] == "198.51.100.77" for r in rows)
    r = run("hunt", "sigma", str(tmp_path), "--show-sql")
    assert "ILIKE 'post'" in r.stdout


def test_actors_and_show(state: Path) -> None:
    rows = js(run("actors", "--state", str(state), "--since", "30d", "--format", "json"))
    for k in ("actor", "display", "risk", "stage", "identities", "first_seen", "last_seen"):
        assert k in rows[0]
    top = rows[0]
    assert top["actor"] == "ip:203.0.113.50" and top["stage"] == "exfiltration" and top["risk"] > 0
    shown = js(run("actors", "show", top["actor"], "--state", str(state), "--format", "json"))
    assert {i["identity"] for i in shown["identities"]} >= {"ip:192.0.2.99", "user:victim"}
    assert [e for e in shown["timeline"] if e["kind"] == "stage"][0]["stage"] == "reconnaissance"
    again = js(run("actors", "show", "ip:192.0.2.99", "--state", str(state), "-f", "json"))  # any identity finds the actor
    assert again["actor"] == top["actor"]
    text = run("actors", "show", top["actor"], "--state", str(state))
    assert "linked identities" in text.stdout and "timeline" in text.stdout
    r = run("actors", "show", "ip:10.9.9.9", "--state", str(state))
    assert r.returncode == 2


def test_incident_report_formats(state: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    r = run("incident", "report", "ip:203.0.113.50", "--state", str(state), "--format", "html", "--out", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert "<svg" in html and "Recommended fixes" in html
    incidents = js(run("query", "select id, actor from incidents", "--state", str(state), "-f", "json"))
    inc = next(i["id"] for i in incidents if i["actor"] == "user:victim")
    rep = js(run("incident", "report", inc, "--state", str(state), "--format", "json"))
    assert rep["actor"] == "ip:203.0.113.50" and inc in rep["incidents"]
    md = run("incident", "report", inc, "--state", str(state), "--format", "md")
    assert md.stdout.startswith("# Incident report")


def test_alerts_test_through_a_sink(state: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent))
    from alert.receivers import HttpReceiver  # type: ignore[import-not-found]

    rx = HttpReceiver()
    try:
        cfg = tmp_path / "apiward.toml"
        cfg.write_text(f'[sinks.soc]\ntype = "webhook"\nurl = "{rx.url}/hook"\nsecret_env = "HOOK_SECRET"\n')
        r = run("alerts", "test", "--sink", "soc", "--state", str(state), "--config", str(cfg), env={"HOOK_SECRET": "hunter2-secret"})
        assert r.returncode == 0, r.stderr
        assert "delivered" in r.stderr and "hunter2-secret" not in r.stderr + r.stdout
        body = orjson.loads(rx.requests[0][2])
        assert body["alerts"][0]["kind"] == "test" and "x-apiward-signature" in rx.requests[0][1]
        r = run("alerts", "test", "--sink", "nope", "--state", str(state), "--config", str(cfg))
        assert r.returncode == 2 and "no sink" in r.stderr
    finally:
        rx.stop()
    r = run("alerts", "test", "--sink", "soc", "--state", str(state), "--config", str(cfg))
    assert r.returncode == 1 and "delivery failed" in r.stderr


def test_hunt_retro_cli(state: Path) -> None:
    rows = js(run("hunt", "retro", "--state", str(state), "--detector", "recon.scanning", "--format", "json"))
    assert isinstance(rows, list)
