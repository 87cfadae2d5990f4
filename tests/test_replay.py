"""A client replaying the workload apiward learned from is not accused;
a newcomer doing the same is. Every registered detector, default settings,
through the pipeline in learn then detect (and both) mode."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from apiward.model.call import ApiCall
from apiward.pipeline import Pipeline
from apiward.testing import make_call

T0 = 1_764_000_000.0
SYNC_IP = "198.51.100.250"


def day(start: float, rng: random.Random, *, sync_user: str = "sync-bot", sync_ip: str = SYNC_IP) -> list[ApiCall]:
    """One day: 30 customers reading a few items each through the day, and
    a sync client that, every 2 hours, pages the whole catalogue, reads
    200 items in id order in two minutes, and meets a few deleted ones."""
    out: list[ApiCall] = []
    for u in range(30):
        t = start + rng.uniform(0, 80_000)
        for _ in range(rng.randint(3, 8)):
            t += rng.uniform(5, 120)
            out.append(make_call("GET", f"/api/items/{rng.randint(1, 400)}", ts=t, user=f"cust{u}", ip=f"203.0.113.{u + 1}",
                                 json={"id": 1, "name": "lamp", "price": 12.5}))
    for run in range(12):
        t = start + run * 7200 + rng.uniform(0, 60)
        for page in range(1, 9):
            t += 0.3
            out.append(make_call("GET", f"/api/items?page={page}&limit=50", ts=t, user=sync_user, ip=sync_ip,
                                 json=[{"id": i, "name": "x"} for i in range(5)]))
        for i in range(1, 201):
            t += 0.6
            gone = i % 37 == 0
            out.append(make_call("GET", f"/api/items/{i}", ts=t, user=sync_user, ip=sync_ip, status=404 if gone else 200,
                                 json=None if gone else {"id": i, "name": "lamp", "price": 12.5}))
    out.sort(key=lambda c: c.ts)
    return out


@pytest.mark.parametrize("mode", ["detect", "both"])
def test_replayed_workload_is_not_accused_but_a_newcomer_is(tmp_path: Path, mode: str) -> None:
    rng = random.Random(4)
    learn = Pipeline(tmp_path / "s", mode="learn")
    for d in range(3):
        learn.process(day(T0 + d * 86_400, rng))
    learn.close()
    pipe = Pipeline(tmp_path / "s", mode=mode)
    found = pipe.process(day(T0 + 3 * 86_400, rng))
    found += pipe.flush_pending()
    pipe.close()
    accused = {f.detector for f in found if f.kind == "attack" and "sync-bot" in f.actor}
    assert accused == set(), f"the replaying client was accused by {accused}"
    customers = {f.actor for f in found if f.kind == "attack" and "cust" in f.actor}
    assert customers == set()

    # the same workload from an account nobody saw before stands out
    rng = random.Random(5)
    pipe = Pipeline(tmp_path / "s", mode=mode)
    found = pipe.process(day(T0 + 4 * 86_400, rng, sync_user="new-harvester", sync_ip="192.0.2.66"))
    pipe.close()
    assert {f.detector for f in found if f.kind == "attack" and "new-harvester" in f.actor}
