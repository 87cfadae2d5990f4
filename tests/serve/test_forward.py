"""The capture middleware and ``apiward proxy --forward`` post what they
capture to a running apiward server (``ServerSink``), waiting out its
back-pressure (429 + Retry-After) instead of dropping events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import httpx
import pytest

from .conftest import SRC, bearer, make_tokens

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi import FastAPI
    from fastapi.testclient import TestClient


def shop() -> FastAPI:
    app = FastAPI()

    @app.get("/api/items/{item_id}")
    def item(item_id: int) -> dict:
        return {"id": item_id, "name": f"item {item_id}", "owner_email": f"user{item_id}@example.com"}

    return app


@pytest.fixture()
def server(tmp_path: Path):
    from apiward.serve.app import create_app
    from apiward.sim.server import ServerThread

    state = tmp_path / "server-state"
    state.mkdir()
    tokens = make_tokens(state)
    app = create_app(state, warm=False, max_pending=3)
    srv = ServerThread(app).start()
    yield srv.base_url, tokens, app
    srv.stop()
    app.state.ctx.close()


def _ids(base: str, token: str) -> list[str]:
    with httpx.Client(base_url=base, headers=bearer(token), timeout=60) as c:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and c.get("/api/ingest").json()["pending"]:
            time.sleep(0.1)
        return [r[0] for r in c.post("/api/hunts/sql", json={"sql": "SELECT path FROM calls ORDER BY ts"}).json()["rows"]]


def test_middleware_forwards_and_waits_out_back_pressure(server):
    from apiward.ingest.forward import ServerSink
    from apiward.live.middleware import ApiwardASGIMiddleware

    base, tokens, app = server
    consumer = app.state.ctx.consumer
    release = threading.Event()
    real = consumer.make_pipeline
    consumer.make_pipeline = lambda: (release.wait(60), real())[1]  # the server's analysis stalls at first
    sink = ServerSink(base, tokens["ingest"], max_wait=60)
    api = shop()
    api.add_middleware(ApiwardASGIMiddleware, sink=sink, batch_ms=20)
    with TestClient(api) as c:
        for i in range(3):
            assert c.get(f"/api/items/{i}").status_code == 200
        time.sleep(0.5)  # one batch of 3 accepted: the server's queue (3) is full
        for i in range(3, 6):
            assert c.get(f"/api/items/{i}").status_code == 200
        threading.Timer(1.0, release.set).start()
        mw = api.middleware_stack
        while mw is not None and not isinstance(mw, ApiwardASGIMiddleware):
            mw = getattr(mw, "app", None)
        assert mw is not None
        mw.backend.close()  # drain: the sink retries until the server has room
    assert sink.retries >= 1 and sink.sent == 6
    assert _ids(base, tokens["admin"]) == [f"/api/items/{i}" for i in range(6)]


@pytest.mark.slow
def test_proxy_forward_sends_events_to_the_server(server, tmp_path: Path):
    from apiward.sim.server import ServerThread, free_port

    base, tokens, _ = server
    upstream = ServerThread(shop()).start()
    port = free_port()
    env = dict(os.environ, PYTHONPATH=SRC, APIWARD_INGEST_TOKEN=tokens["ingest"])
    proc = subprocess.Popen([sys.executable, "-m", "apiward", "proxy", "--listen", f"127.0.0.1:{port}", "--upstream", upstream.base_url,
                             "--state", str(tmp_path / "proxy-state"), "--forward", base, "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/items/0", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            for i in range(1, 3):
                assert c.get(f"/api/items/{i}").json()["id"] == i
                time.sleep(0.3)  # each batch fits the small server queue
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        upstream.stop()
    assert proc.returncode == 0, err.decode()
    assert "errors 0" in err.decode()
    assert _ids(base, tokens["admin"]) == [f"/api/items/{i}" for i in range(3)]
    assert not (tmp_path / "proxy-state" / "lake").exists()  # analysed by the server, not locally
