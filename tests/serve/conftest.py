"""A state built once per session from simulated DemoBank traffic (benign
users and every attacker playbook) through the real pipeline, with a
self-test report computed from the same run's ground truth, and tokens
for every role. Servers under test run on copies of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

SIM = dict(users=20, duration=8 * 3600.0, attacks="all", seed=3)
ROLES = ("viewer", "analyst", "admin", "ingest")
SRC = str(Path(__file__).resolve().parents[2] / "src")


class Built:
    def __init__(self, state: Path, events: Path, labels: object) -> None:
        self.state = state
        self.events = events  # the simulated calls as apiward JSONL, time order
        self.labels = labels


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    from apiward.model.call import dumps
    from apiward.sim.selftest import evaluate, run_pipeline, simulate_demo

    work = tmp_path_factory.mktemp("serve-state")
    calls, labels = simulate_demo(work / "sim", **SIM)
    calls.sort(key=lambda c: c.ts)
    events = work / "events.jsonl"
    events.write_bytes(b"".join(dumps(c) + b"\n" for c in calls))
    state = work / "state"
    scorer, merged = run_pipeline(calls, state)
    rep = evaluate(list(labels.attacks), scorer, merged, source="demo", seed=SIM["seed"])
    (state / "selftest").mkdir()
    (state / "selftest" / "report.json").write_bytes(orjson.dumps(rep.to_dict()))
    return Built(state, events, labels)


def copy_state(built: Built, dest: Path) -> Path:
    shutil.copytree(built.state, dest)
    return dest


def make_tokens(state: Path) -> dict[str, str]:
    from apiward.serve.auth import AuthStore

    store = AuthStore(state)
    try:
        return {role: store.create(role, role + "-user")[1] for role in ROLES}
    finally:
        store.close()


@pytest.fixture(scope="session")
def served_state(built: Built, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A copy of the built state with a token per role (shared by the
    read-mostly API tests)."""
    state = copy_state(built, tmp_path_factory.mktemp("served") / "state")
    return state, make_tokens(state)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class LiveServer:
    """``apiward serve`` as a user runs it: a subprocess on a loopback port."""

    def __init__(self, state: Path, *extra: str) -> None:
        from apiward.sim.server import free_port

        self.state = state
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = state.parent / f"serve-{self.port}.log"

    def start(self, timeout: float = 60.0) -> LiveServer:
        env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "apiward", "serve", "--state", str(self.state), "--listen", f"127.0.0.1:{self.port}", "--quiet", *self.extra],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"apiward serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.base + "/api/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("apiward serve did not start")

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no final checkpoint."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
