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


def test_a_commit_while_the_inventory_is_read_is_seen_by_the_next_read(built: Built, tmp_path: Path, monkeypatch):
    """A checkpoint that commits while the server reads the state: that read
    may show the state before it, the next one must show it (the rows were
    once cached under a signature taken after the read, which pinned the
    older state until the writer's next commit)."""
    from apiward.model.call import loads
    from apiward.pipeline import Pipeline
    from apiward.serve.queries import StateReader
    from apiward.serve.triage import TriageStore
    from apiward.state import StateDir

    state = tmp_path / "state"
    state.mkdir()
    calls = [loads(ln) for ln in built.events.read_bytes().splitlines() if ln.strip()][:400]
    pipe = Pipeline(state)
    pipe.process(calls[:200], batch_key="w-0")
    pipe.checkpoint()
    reader = StateReader(state, TriageStore(state))
    real_load = StateDir.load
    commits: list[int] = []

    def load_then_commit(self: StateDir):  # the writer's commit lands right after the read
        snap = real_load(self)
        if not commits:
            pipe.process(calls[200:], batch_key="w-1")
            pipe.checkpoint()
            commits.append(1)
        return snap

    monkeypatch.setattr(StateDir, "load", load_then_commit)
    try:
        during = sum(r["calls"] for r in reader.inventory())
        after = sum(r["calls"] for r in reader.inventory())
        total = sum(r.calls for _, r in pipe.inventory.endpoints.each())
    finally:
        pipe.close()
    assert commits and during < total
    assert after == total


def test_actor_clusters_are_read_again_when_a_file_was_replaced_under_the_query(built: Built, tmp_path: Path, monkeypatch):
    """DuckDB reads a Parquet footer when it binds a query and the data when
    it scans: a checkpoint that replaces a findings day file in between
    fails the query ("Invalid data"). Clusters are then read once more, as
    other lake queries are, instead of failing the page."""
    import apiward.hunt.actors as actors
    from apiward.hunt.session import HuntError
    from apiward.serve.queries import StateReader
    from apiward.serve.triage import TriageStore

    from .conftest import copy_state

    state = copy_state(built, tmp_path / "state")
    real = actors.resolve
    failed: list[int] = []

    def replaced_once(session):
        if not failed:
            failed.append(1)
            raise HuntError("TProtocolException: Invalid data")
        return real(session)

    monkeypatch.setattr(actors, "resolve", replaced_once)
    rows = StateReader(state, TriageStore(state)).actors()
    assert failed and rows and all(r["findings"] > 0 for r in rows)
