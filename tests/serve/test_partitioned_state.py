"""The server's read side over a state made by ``apiward analyze --workers 2``
(partitioned by host): inventory, findings, incidents and actors of every
partition, and a later run's partitions' commits seen without a restart."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import orjson

from apiward.model.call import dumps
from apiward.state.partitions import load_partitioner
from apiward.testing import make_call

from .conftest import bearer, make_tokens

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def _traffic(path: Path, hosts: list[str], n: int) -> None:
    with open(path, "wb") as f:
        for i in range(n):
            probe = "?q=1%27%20UNION%20SELECT%20password%20FROM%20users--" if i % 53 == 0 else ""
            c = make_call(("GET", "POST")[i % 2], f"/api/orders/{i % 41}{probe}", json={"id": i % 41}, user=f"u{i % 7}",
                          ts=1_764_000_000 + i, id=f"{path.stem}-{i}", host=hosts[i % len(hosts)])
            f.write(dumps(c) + b"\n")


def _analyze(data: Path, state: Path) -> dict:
    r = subprocess.run([sys.executable, "-m", "apiward", "analyze", str(data), "--state", str(state), "--json", "--quiet", "--workers", "2"],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    return orjson.loads(r.stdout)


def test_the_read_side_sees_every_partition_and_later_commits(tmp_path: Path) -> None:
    from apiward.serve.app import create_app

    hosts = [f"shop{i}.example.com" for i in range(6)]
    state = tmp_path / "state"
    first = tmp_path / "first.jsonl"
    _traffic(first, hosts[:4], 800)
    s1 = _analyze(first, state)
    part = load_partitioner(state)
    assert {part(h) for h in hosts[:4]} == {0, 1}
    tokens = make_tokens(state)
    app = create_app(state, warm=False, ingest=False)
    with TestClient(app) as c:
        h = bearer(tokens["viewer"])
        inv = c.get("/api/inventory", headers=h).json()
        assert len(inv) == s1["endpoints"] and {part(r["host"]) for r in inv} == {0, 1}
        found = c.get("/api/findings", headers=h).json()
        assert len(found) == s1["findings"] and {part(f["host"]) for f in found} == {0, 1}
        assert c.get("/api/incidents", headers=h).status_code == 200
        assert c.get("/api/actors", headers=h).status_code == 200
        # a later run commits to the partitions only: the server sees it without a restart
        second = tmp_path / "second.jsonl"
        _traffic(second, hosts[4:], 400)
        s2 = _analyze(second, state)
        inv2 = c.get("/api/inventory", headers=h).json()
        assert len(inv2) == s2["endpoints"] > s1["endpoints"]  # the summary counts what the state holds
        assert {r["host"] for r in inv2} == set(hosts)
        assert len(c.get("/api/findings", headers=h).json()) == s2["findings"]
