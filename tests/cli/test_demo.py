"""``apiward demo --quick`` end to end, as a user runs it: a subprocess that
starts the demo API and ``apiward proxy`` and simulates traffic through it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "160"}
    env.pop("APIWARD_STATE", None)
    return subprocess.run([sys.executable, "-m", "apiward", *args], capture_output=True, env=env, timeout=timeout)


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_demo_quick_end_to_end(tmp_path: Path):
    state = tmp_path / "demo-state"
    r = _run("demo", "--quick", "--no-serve", "--users", "15", "--hours", "3", "--state", str(state))
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    for title in ("API inventory", "Shadow (undocumented) and zombie", "Sensitive fields", "Findings (", "Actors with findings"):
        assert title in out
    assert "zombie" in out and "/api/v1/" in out  # the deprecated v1 API is called by legacy clients
    assert "dropped 0" in r.stderr.decode()  # the proxy's final counters, shown in the progress
    # The state stays for later commands.
    q = _run("query", "--state", str(state), "--format", "json",
             "SELECT count(*) AS n, count(DISTINCT actor) AS actors FROM calls WHERE source = 'proxy'")
    assert q.returncode == 0, q.stderr.decode()
    row = orjson.loads(q.stdout)[0]
    assert row["n"] > 200 and row["actors"] > 5
    labels = orjson.loads((state / "demo" / "labels.json").read_bytes())
    assert labels["requests"] == row["n"]  # every simulated request was captured
    # A second run reuses (wipes) its own demo state, but refuses a foreign one.
    foreign = tmp_path / "real-state"
    foreign.mkdir()
    (foreign / "state.pkl").write_bytes(b"x")
    r2 = _run("demo", "--quick", "--no-serve", "--state", str(foreign))
    assert r2.returncode != 0 and (foreign / "state.pkl").read_bytes() == b"x"
