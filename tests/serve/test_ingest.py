"""Live ingestion: APIClarity telemetry and apiward JSONL batches with
ingest tokens, refused whole when a record is bad, back-pressure (429 +
Retry-After), nothing acknowledged lost when the server is killed, and new
findings pushed as server-sent events."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import httpx
import orjson
import pytest

from .conftest import Built, LiveServer, bearer, make_tokens
from .helpers import telemetry

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def wait_drained(get, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    st: dict = {}
    while time.monotonic() < deadline:
        st = get()
        if st["pending"] == 0 and st.get("processed", 0) > 0:
            return st
        time.sleep(0.1)
    raise AssertionError(f"ingestion did not drain: {st}")


def test_apiclarity_telemetry_is_accepted_and_analysed(tmp_path: Path):
    from apiward.serve.app import create_app

    tokens = make_tokens(tmp_path)
    app = create_app(tmp_path, warm=False)
    t0 = int(time.time() * 1000)
    batch = [telemetry(path=f"/api/v1/accounts/{1000 + i}", ts_ms=t0 + i * 50, req_id=f"req-{i}") for i in range(40)]
    try:
        with TestClient(app) as c:
            r = c.post("/api/telemetry", content=orjson.dumps(batch), headers={**bearer(tokens["ingest"]), "content-type": "application/json"})
            assert r.status_code == 202, r.text
            assert r.json()["accepted"] == 40
            one = c.post("/api/telemetry", content=orjson.dumps(telemetry(path="/api/v1/orders/77", req_id="single")),
                         headers=bearer(tokens["ingest"]))
            assert one.status_code == 202 and one.json()["accepted"] == 1
            st = wait_drained(lambda: c.get("/api/ingest", headers=bearer(tokens["viewer"])).json())
            assert st["processed"] == 41 and st["errors"] == 0
            inv = c.get("/api/inventory", headers=bearer(tokens["viewer"])).json()
            eps = {(r["host"], r["method"], r["template"]) for r in inv}
            assert ("shop.test", "GET", "/api/v1/accounts/{accountId}") in eps or any(
                h == "shop.test" and t.startswith("/api/v1/accounts/{") for h, _, t in eps), eps
            q = c.post("/api/hunts/sql", json={"sql": "SELECT count(*), count(DISTINCT id), min(client_ip) FROM calls"},
                       headers=bearer(tokens["analyst"])).json()
            assert q["rows"][0][:2] == [41, 41] and q["rows"][0][2] == "198.51.100.23"
            ids = c.post("/api/hunts/sql", json={"sql": "SELECT request_id FROM calls WHERE request_id IN ('req-3', 'single')"},
                         headers=bearer(tokens["analyst"])).json()
            assert sorted(r[0] for r in ids["rows"]) == ["req-3", "single"]  # APIClarity's requestID is kept as data; the event id is apiward's own
    finally:
        app.state.ctx.close()


def test_a_bad_record_refuses_the_whole_batch_and_names_it(tmp_path: Path):
    from apiward.serve.app import create_app

    tokens = make_tokens(tmp_path)
    app = create_app(tmp_path, warm=False)
    bad = telemetry()
    bad["request"].pop("method")
    try:
        with TestClient(app) as c:
            h = bearer(tokens["ingest"])
            r = c.post("/api/telemetry", content=orjson.dumps([telemetry(), bad, telemetry()]), headers=h)
            assert r.status_code == 400
            body = r.json()
            assert "nothing from this batch was accepted" in body["detail"]
            assert [e["record"] for e in body["errors"]] == [1] and "method" in body["errors"][0]["reason"]
            r = c.post("/api/events", content=b'{"not": "an event"}\n', headers=h)
            assert r.status_code == 400 and body["errors"]
            assert c.post("/api/events", content=b"", headers=h).json()["detail"].startswith("empty body")
            st = c.get("/api/ingest", headers=bearer(tokens["viewer"])).json()
            assert st["accepted"] == 0 and st["pending"] == 0
    finally:
        app.state.ctx.close()


def test_back_pressure_answers_429_with_retry_after_and_recovers(tmp_path: Path):
    from apiward.serve.app import create_app

    tokens = make_tokens(tmp_path)
    app = create_app(tmp_path, warm=False, max_pending=5)
    consumer = app.state.ctx.consumer
    release = threading.Event()
    real = consumer.make_pipeline

    def slow_pipeline():  # the analysis stalls: the queue fills
        release.wait(60)
        return real()

    consumer.make_pipeline = slow_pipeline
    h = {**bearer(tokens["ingest"]), "content-type": "application/json"}
    try:
        with TestClient(app) as c:
            assert c.post("/api/telemetry", content=orjson.dumps([telemetry(req_id=f"a{i}") for i in range(3)]), headers=h).status_code == 202
            assert c.post("/api/telemetry", content=orjson.dumps([telemetry(req_id=f"b{i}") for i in range(2)]), headers=h).status_code == 202
            r = c.post("/api/telemetry", content=orjson.dumps(telemetry(req_id="c0")), headers=h)
            assert r.status_code == 429, r.text
            assert int(r.headers["retry-after"]) >= 1 and "queue full" in r.json()["detail"]
            big = c.post("/api/telemetry", content=orjson.dumps([telemetry(req_id=f"d{i}") for i in range(6)]), headers=h)
            assert big.status_code == 429
            release.set()
            wait_drained(lambda: c.get("/api/ingest", headers=bearer(tokens["viewer"])).json())
            assert c.post("/api/telemetry", content=orjson.dumps(telemetry(req_id="c0")), headers=h).status_code == 202
            st = wait_drained(lambda: c.get("/api/ingest", headers=bearer(tokens["viewer"])).json())
            assert st["processed"] == 6 and st["refused"] == 7
            ids = c.post("/api/hunts/sql", json={"sql": "SELECT request_id FROM calls ORDER BY request_id"}, headers=bearer(tokens["analyst"])).json()
            assert [r[0] for r in ids["rows"]] == ["a0", "a1", "a2", "b0", "b1", "c0"]  # refused events were never half-kept
    finally:
        release.set()
        app.state.ctx.close()


def _post_events(base: str, token: str, lines: list[bytes], per: int) -> list[str]:
    acked: list[str] = []
    with httpx.Client(base_url=base, timeout=60) as c:
        for i in range(0, len(lines), per):
            chunk = lines[i:i + per]
            r = c.post("/api/events", content=b"".join(chunk), headers={**bearer(token), "content-type": "application/x-ndjson"})
            assert r.status_code == 202, r.text
            acked += [orjson.loads(x)["id"] for x in chunk]
    return acked


@pytest.mark.slow
def test_no_acknowledged_event_is_lost_when_the_server_is_killed(built: Built, tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir()
    tokens = make_tokens(state)
    lines = [ln for ln in built.events.read_bytes().splitlines(keepends=True) if ln.strip()][:1200]
    srv = LiveServer(state).start()
    try:
        acked = _post_events(srv.base, tokens["ingest"], lines, 100)
        srv.kill()  # kill -9 right after the last acknowledgement: most events are still spooled
    finally:
        srv.kill()
    import sqlite3

    db = sqlite3.connect(state / "spool.db")
    spooled = db.execute("SELECT count(*) FROM events").fetchone()[0]
    db.close()
    assert 0 < spooled <= len(acked)  # the kill caught acknowledged events not yet analysed
    srv2 = LiveServer(state).start()
    try:
        with httpx.Client(base_url=srv2.base, timeout=60, headers=bearer(tokens["admin"])) as c:
            wait_drained(lambda: c.get("/api/ingest").json(), timeout=300)
            res = c.post("/api/hunts/sql", json={"sql": "SELECT id, count(*) FROM calls GROUP BY id", "limit": 100_000}).json()
            assert not res["truncated"]
    finally:
        srv2.stop()
    counts = {r[0]: r[1] for r in res["rows"]}
    assert set(counts) == set(acked), (len(counts), len(acked))
    assert max(counts.values()) == 1  # re-run batches replaced their own lake files: no duplicates


@pytest.mark.slow
def test_new_findings_are_streamed_as_server_sent_events(built: Built, tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir()
    tokens = make_tokens(state)
    lines = [ln for ln in built.events.read_bytes().splitlines(keepends=True) if ln.strip()]
    srv = LiveServer(state).start()
    got: list[dict] = []
    opened = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", srv.base + "/api/findings/stream", params={"max_seconds": 120, "interval": 0.5},
                          headers=bearer(tokens["viewer"]), timeout=150) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            event = ""
            for line in r.iter_lines():
                opened.set()
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "finding":
                    got.append(orjson.loads(line[6:]))
                    return

    th = threading.Thread(target=listen, daemon=True)
    try:
        th.start()
        assert opened.wait(30)
        t0 = time.monotonic()
        _post_events(srv.base, tokens["ingest"], lines, 250)
        th.join(120)
        latency = time.monotonic() - t0
        assert got, "no finding was streamed"
        f = got[0]
        assert f["id"].startswith("F-") and f["title"] and f["change"] in ("new", "updated")
        with httpx.Client(base_url=srv.base, headers=bearer(tokens["viewer"]), timeout=60) as c:
            ids = {x["id"] for x in c.get("/api/findings").json()}
        assert f["id"] in ids
        assert latency < 120
    finally:
        srv.stop()


def test_attacker_controlled_text_is_escaped_in_the_console(tmp_path: Path):
    from apiward.serve.app import create_app

    from .helpers import login

    tokens = make_tokens(tmp_path)
    app = create_app(tmp_path, warm=False)
    evil = '/api/x"><img src=x onerror=alert(1)><script>alert(2)</script>'
    try:
        with TestClient(app) as c:
            r = c.post("/api/telemetry", content=orjson.dumps([telemetry(path=evil, req_id=f"e{i}") for i in range(30)]),
                       headers=bearer(tokens["ingest"]))
            assert r.status_code == 202
            wait_drained(lambda: c.get("/api/ingest", headers=bearer(tokens["viewer"])).json())
            csrf = login(c, tokens["analyst"])
            page = c.post("/hunts", data={"csrf": csrf, "sql": "SELECT DISTINCT path FROM calls", "action": "run"}).text
            assert "onerror=alert" in page  # the text is shown ...
            assert "<img src=x" not in page and "<script>alert" not in page  # ... but never as markup
            assert "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;" in page
    finally:
        app.state.ctx.close()
