"""``apiward proxy`` as a user runs it: a subprocess in front of a real
loopback server, with its pipeline in a worker process (the default).
The worker stores calls and findings; killing it does not break the
proxied traffic (it is started again and loses nothing); SIGTERM flushes
what is queued (SIGINT too, and with ``--pipeline inprocess``)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        if n:
            self.rfile.read(n)
        body = json.dumps({"id": 7, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """``apiward proxy`` in a subprocess; its output in a file."""

    def __init__(self, upstream: str, state: Path, *extra: str) -> None:
        self.port = free_port()
        self.state = state
        self.log_path = state.parent / f"proxy-{self.port}.log"
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "apiward", "proxy", "--listen", f"127.0.0.1:{self.port}", "--upstream", upstream,
             "--state", str(state), *extra],
            stdout=self.log_file, stderr=subprocess.STDOUT, env=ENV,
        )
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, self.log()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, self.log()
                time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return " ".join(self.log_path.read_text(errors="replace").split())  # rich wraps lines

    def wait_log(self, pattern: str, timeout: float = 120.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log())
            if m:
                return m
            assert time.monotonic() < deadline and self.proc.poll() is None, self.log()
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(180)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.log_file.close()
        return self.log()


def query(state: Path, sql: str) -> list[dict]:
    r = subprocess.run([sys.executable, "-m", "apiward", "query", "--state", str(state), "--format", "json", sql],
                       capture_output=True, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return orjson.loads(r.stdout)


def get_all(url: str, prefix: str, n: int) -> list[int]:
    with httpx.Client(timeout=30) as c:
        return [c.get(f"{url}/items/{i}", headers={"x-request-id": f"{prefix}{i}"}).status_code for i in range(n)]


def smuggle(port: int) -> bytes:
    """An ambiguous request (Content-Length and chunked): refused, recorded, a finding."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
                  b"x-request-id: smuggle\r\n\r\n0\r\n\r\n")
        return s.recv(4096)


def test_worker_process_stores_calls_and_findings(upstream: str, tmp_path: Path):
    state = tmp_path / "state"
    px = Proxy(upstream, state)
    try:
        pid = int(px.wait_log(r"pipeline worker started \(pid (\d+)")[1])
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert pid != px.proc.pid and ppid == px.proc.pid  # the pipeline runs in a child process
        assert get_all(px.url, "w", 20) == [200] * 20
        assert smuggle(px.port).startswith(b"HTTP/1.1 400")
    finally:
        log = px.stop()
    assert px.proc.returncode == 0, log
    assert "captured 21, processed 21, dropped 0, errors 0" in log
    assert "0 restarts, 0 events lost" in log
    assert query(state, "SELECT count(*) AS n FROM calls WHERE request_id LIKE 'w%'") == [{"n": 20}]
    found = query(state, "SELECT detector FROM findings")
    assert {"detector": "protocol.request_smuggling"} in found


def test_killing_the_worker_does_not_break_proxied_traffic(upstream: str, tmp_path: Path):
    state = tmp_path / "state"
    px = Proxy(upstream, state, "--checkpoint", "3600")  # nothing checkpointed before the kill
    try:
        pid = int(px.wait_log(r"pipeline worker started \(pid (\d+)")[1])
        assert get_all(px.url, "a", 10) == [200] * 10
        os.kill(pid, signal.SIGKILL)
        assert get_all(px.url, "b", 20) == [200] * 20  # at once: the worker is dead or starting again
        px.wait_log(r"pipeline worker started again \(pid \d+\)")
        assert get_all(px.url, "c", 5) == [200] * 5
    finally:
        log = px.stop()
    assert px.proc.returncode == 0, log
    assert f"pipeline worker (pid {pid}) died: killed by SIGKILL" in log
    assert "captured 35, processed 35, dropped 0" in log and "1 restarts, 0 events lost" in log
    # nothing lost, nothing doubled: what the dead worker had not checkpointed was sent again
    assert query(state, "SELECT count(*) AS n, count(DISTINCT request_id) AS d FROM calls") == [{"n": 35, "d": 35}]


@pytest.mark.parametrize("options, sig", [
    (["--checkpoint", "3600"], signal.SIGTERM),  # the worker: nothing checkpointed until the stop
    (["--pipeline", "inprocess"], signal.SIGINT),  # one process, the pipeline in a thread
])
def test_a_stop_signal_flushes_what_is_queued(upstream: str, tmp_path: Path, options: list[str], sig: int):
    state = tmp_path / "state"
    px = Proxy(upstream, state, *options)
    try:
        assert get_all(px.url, "t", 15) == [200] * 15
    finally:
        log = px.stop(sig)  # at once: the calls are still queued, or in the worker
    assert px.proc.returncode == 0, log
    assert "captured 15, processed 15, dropped 0" in log
    assert ("pipeline worker started" in log) == ("inprocess" not in options)
    assert query(state, "SELECT count(*) AS n FROM calls") == [{"n": 15}]
    assert (state / "state.db").exists()


def test_a_state_the_worker_cannot_open_fails_the_command(upstream: str, tmp_path: Path):
    bad = tmp_path / "a-file"
    bad.write_text("x")
    r = subprocess.run([sys.executable, "-m", "apiward", "proxy", "--listen", f"127.0.0.1:{free_port()}", "--upstream", upstream,
                        "--state", str(bad)], capture_output=True, env=ENV, timeout=180)
    assert r.returncode == 2 and b"error" in r.stderr


def test_metrics_show_the_worker_and_its_figures(upstream: str, tmp_path: Path):
    state = tmp_path / "state"
    mport = free_port()
    px = Proxy(upstream, state, "--checkpoint", "0.2", "--metrics", f"127.0.0.1:{mport}")
    try:
        assert get_all(px.url, "m", 5) == [200] * 5
        deadline = time.monotonic() + 60
        while True:  # the worker's figures come with its next checkpoint
            text = httpx.get(f"http://127.0.0.1:{mport}/metrics", timeout=10).text
            if "apiward_pipeline_events_total 5.0" in text:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
        assert "apiward_pipeline_worker_up 1.0" in text
        assert "apiward_pipeline_worker_restarts_total 0.0" in text
        assert 'apiward_capture_exchanges_total{outcome="lost"} 0.0' in text
    finally:
        log = px.stop()
    assert px.proc.returncode == 0, log
