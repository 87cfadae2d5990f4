"""`apiward analyze` + `apiward query` end to end, in subprocesses."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from apiward.model.call import dumps
from apiward.testing import make_call

CLI = [sys.executable, "-m", "apiward"]


def run(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def write_events(path: Path, n: int) -> None:
    with open(path, "wb") as f:
        for i in range(n):
            method = ("GET", "POST", "PUT", "DELETE")[i % 4]
            c = make_call(method, f"/api/items/{i % 97}", json={"id": i % 97, "name": "x" * (i % 50)}, user=f"u{i % 13}", ts=1_764_000_000 + i, id=f"ev-{i}")
            f.write(dumps(c) + b"\n")


def test_analyze_then_query_json_and_csv(tmp_path: Path) -> None:
    data = tmp_path / "traffic.jsonl"
    write_events(data, 200)
    state = tmp_path / "state"
    r = run("analyze", str(data), "--state", str(state), "--json")
    assert r.returncode == 0, r.stderr
    summary = orjson.loads(r.stdout)
    assert summary["events"] == 200 and summary["per_format"] == {"jsonl": 200}
    assert summary["quarantined"] == 0
    r = run("query", "select method, count(*) as n from calls group by 1 order by 1", "--format", "json", env={"APIWARD_STATE": str(state)})
    assert r.returncode == 0, r.stderr
    rows = orjson.loads(r.stdout)
    assert rows == [{"method": m, "n": 50} for m in ("DELETE", "GET", "POST", "PUT")]
    r = run("query", "select id from calls order by id limit 2", "--format", "csv", "--state", str(state))
    assert list(csv.reader(io.StringIO(r.stdout))) == [["id"], ["ev-0"], ["ev-1"]]
    r = run("query", "select * from nowhere", "--state", str(state))
    assert r.returncode == 2 and "nowhere" in r.stderr


def test_analyze_reports_unreadable_and_bad_input(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    write_events(good, 5)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(good.read_bytes().splitlines()[0] + b"\n{not json\n\x00\x01\x02junk\n" + good.read_bytes().splitlines()[1] + b"\n")
    state = tmp_path / "s"
    r = run("analyze", str(good), str(bad), str(tmp_path / "missing.har"), "--state", str(state), "--json")
    assert r.returncode == 0, r.stderr
    s = orjson.loads(r.stdout)
    assert s["events"] == 5 + 2
    assert s["quarantined"] == 2
    assert any("missing.har" in m for m in s["failed_files"])
    q = (state / "quarantine" / "bad.jsonl.bad.jsonl").read_text().splitlines()
    assert [orjson.loads(x)["record"] for x in q] == [1, 2]


def test_help_is_followable() -> None:
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("analyze", "query", "version"):
        assert cmd in r.stdout
    r = run("analyze", "--help")
    assert "--state" in r.stdout and "--mode" in r.stdout


@pytest.mark.slow
def test_kill_9_mid_run_leaves_readable_state_and_no_duplicates(tmp_path: Path) -> None:
    data = tmp_path / "big.jsonl"
    n = 30_000
    write_events(data, n)
    state = tmp_path / "state"
    env = {**os.environ, "APIWARD_BATCH_SIZE": "500", "APIWARD_CHECKPOINT_SECONDS": "0"}
    proc = subprocess.Popen([*CLI, "analyze", str(data), "--state", str(state), "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((state / "lake" / "calls").rglob("*.parquet"))) < 4:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The state and lake are readable right after the crash.
    r = run("query", "select count(*) as n from calls", "--format", "json", "--state", str(state))
    assert r.returncode == 0, r.stderr
    partial = orjson.loads(r.stdout)[0]["n"]
    assert 0 < partial < n
    # Rerunning finishes the file without duplicating anything.
    r = run("analyze", str(data), "--state", str(state), "--json", env={"APIWARD_BATCH_SIZE": "500"})
    assert r.returncode == 0, r.stderr
    r = run("query", "select count(*) as n, count(distinct id) as d from calls", "--format", "json", "--state", str(state))
    assert orjson.loads(r.stdout) == [{"n": n, "d": n}]


def test_memory_budget_option_is_checked_and_applied(tmp_path: Path) -> None:
    data = tmp_path / "ev.jsonl"
    write_events(data, 200)
    bad = run("analyze", str(data), "--state", str(tmp_path / "s"), "--memory-budget", "12Q", "--quiet")
    assert bad.returncode != 0 and "memory budget '12Q'" in bad.stderr + bad.stdout
    ok = run("analyze", str(data), "--state", str(tmp_path / "s"), "--memory-budget", "300M", "--json", "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert orjson.loads(ok.stdout)["events"] == 200
