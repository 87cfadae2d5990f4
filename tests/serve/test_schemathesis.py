"""Fuzz the REST API against its own OpenAPI document with schemathesis
(a subprocess, as in CI) on a live ``apiward serve`` on loopback, with an
admin token: no request may get a 5xx answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .conftest import Built, LiveServer, copy_state, make_tokens

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the test extra: pip install -e '.[test]'")


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors(built: Built, tmp_path: Path):
    state = copy_state(built, tmp_path / "state")
    token = make_tokens(state)["admin"]
    srv = LiveServer(state).start()
    try:
        doc = httpx.get(f"{srv.base}/api/openapi.json", headers={"authorization": f"Bearer {token}"}).json()
        ops = sum(len(v) for v in doc["paths"].values())
        r = subprocess.run(
            [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()", "run",
             f"{srv.base}/api/openapi.json", "-H", f"Authorization: Bearer {token}",
             "--checks", "not_a_server_error", "--max-examples", "6", "--seed", "7", "-w", "1",
             "--exclude-path", "/api/findings/stream",  # never ends by design; covered in test_ingest
             "--request-timeout", "60", "--no-color"],
            check=False, capture_output=True, text=True, timeout=900, cwd=tmp_path,
        )
    finally:
        srv.stop()
    out = r.stdout + r.stderr
    assert "API Operations" in out and f"Tested: {ops - 1}\n" in out, out[-3000:]  # every operation but the stream
    assert r.returncode == 0, out[-5000:]
    assert " passed" in out and "failed" not in out.split("Test cases:")[-1].splitlines()[1], out[-3000:]
