"""The server reads a state while a pipeline writes it (as beside a running
``apiward analyze`` or ``proxy``): reads never fail or block the writer's
checkpoints, and they see what the writer has checkpointed."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

from .conftest import Built, bearer, make_tokens

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_reads_beside_a_writing_pipeline(built: Built, tmp_path: Path):
    from apiward.model.call import loads
    from apiward.pipeline import Pipeline
    from apiward.serve.app import create_app

    state = tmp_path / "state"
    state.mkdir()
    tokens = make_tokens(state)
    calls = [loads(ln) for ln in built.events.read_bytes().splitlines() if ln.strip()]
    pipe = Pipeline(state)
    pipe.process(calls[:200], batch_key="w-0")
    pipe.checkpoint()
    app = create_app(state, warm=False, ingest=False)
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for i in range(200, len(calls), 200):
                pipe.process(calls[i:i + 200], batch_key=f"w-{i}")
                pipe.checkpoint()  # the store commits beside the server's read-only connection
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    seen_calls: list[int] = []
    with TestClient(app) as c:
        h = bearer(tokens["viewer"])
        first = c.post("/api/hunts/sql", json={"sql": "SELECT count(*) FROM calls"}, headers=bearer(tokens["analyst"])).json()["rows"][0][0]
        th = threading.Thread(target=write)
        th.start()
        reads = 0
        while not done.is_set() or reads < 5:
            for path in ("/api/inventory", "/api/findings", "/api/actors"):
                r = c.get(path, headers=h)
                assert r.status_code == 200, r.text
                reads += 1
            seen_calls.append(sum(r["calls"] for r in c.get("/api/inventory", headers=h).json()))
        th.join()
        final = sum(r["calls"] for r in c.get("/api/inventory", headers=h).json())
        seen_calls.append(final)
        n = c.post("/api/hunts/sql", json={"sql": "SELECT count(*) FROM calls"}, headers=bearer(tokens["analyst"])).json()["rows"][0][0]
    app.state.ctx.close()
    pipe.close()
    assert not errors, errors
    assert first == 200 and n == len(calls)
    assert seen_calls[0] < final and final == sum(r.calls for _, r in pipe.inventory.endpoints.each())
    assert seen_calls == sorted(seen_calls)  # never went backwards while the writer checkpointed
