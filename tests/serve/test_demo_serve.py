"""``apiward demo`` ends with the console serving the demo's data (the
other demo tests pass --no-serve so they end)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import SRC
from .helpers import login


@pytest.mark.slow
def test_demo_ends_with_the_console_running(tmp_path: Path):
    from apiward.sim.server import free_port

    port = free_port()
    env = dict(os.environ, PYTHONPATH=SRC, COLUMNS="200")
    proc = subprocess.Popen(
        [sys.executable, "-m", "apiward", "demo", "--quick", "--users", "10", "--hours", "2", "--state", str(tmp_path / "demo"),
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )
    token, seen = None, []
    try:
        deadline = time.monotonic() + 600
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.match(r"admin token: (aw_\S+)", line.strip())
            if m:
                token = m.group(1)
                break
        assert token, "".join(seen)[-3000:]
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        h = {"authorization": f"Bearer {token}"}
        findings = httpx.get(base + "/api/findings", headers=h, timeout=60).json()
        assert findings and all(f["id"].startswith("F-") for f in findings)
        inv = httpx.get(base + "/api/inventory", headers=h, timeout=60).json()
        assert any(r["status"] in ("shadow", "zombie") for r in inv)  # the demo's spec is applied
        with httpx.Client(base_url=base, timeout=60) as c:
            login(c, token)
            page = c.get("/")
            assert page.status_code == 200 and "Overview" in page.text and "apiward" in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
