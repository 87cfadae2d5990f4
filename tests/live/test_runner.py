"""The live runner: a bounded queue with counted drops, one consumer thread
converting exchanges into calls and feeding a sink in batches, periodic
and final checkpoints."""

from __future__ import annotations

import threading
import time

from apiward.ingest.capture import Exchange
from apiward.live.runner import LiveRunner, pipeline_runner
from apiward.model.call import ApiCall


class Collector:
    def __init__(self) -> None:
        self.calls: list[ApiCall] = []

    def __call__(self, batch: list[ApiCall]) -> None:
        self.calls.extend(batch)


def test_overload_drops_are_counted_never_silent():
    gate = threading.Event()

    def slow_sink(batch):
        gate.wait(10)

    q = LiveRunner(slow_sink, max_queue=5, batch_size=1, batch_ms=1)
    for i in range(50):
        q.submit(Exchange(ts=0.0, method="GET", target=f"/{i}", req_headers=[], source="proxy"))
    assert q.stats.captured == 50
    assert q.stats.dropped >= 50 - 5 - 1
    assert q.stats.dropped + len(q) + 1 >= 50 - 1
    gate.set()
    assert q.drain(5)
    q.close()
    assert q.stats.processed + q.stats.dropped == 50


def test_drain_and_close_empty_the_queue_and_checkpoint():
    got = Collector()
    checkpoints = []
    q = LiveRunner(got, batch_size=1000, batch_ms=10_000, checkpoint=lambda: checkpoints.append(len(got.calls)))
    for i in range(10):
        q.submit(Exchange(ts=float(i), method="GET", target=f"/{i}", req_headers=[("x-request-id", f"r{i}")], source="asgi"))
    t = time.time()
    assert q.drain(5)
    assert time.time() - t < 5  # drain does not wait out batch_ms
    assert [c.request_id for c in got.calls] == [f"r{i}" for i in range(10)]
    q.close()
    assert checkpoints and checkpoints[-1] == 10
    assert not q.submit(Exchange(ts=0.0, method="GET", target="/late", req_headers=[], source="asgi"))
    assert q.stats.dropped == 1


def test_sim_clock_and_time_ordered_ids():
    got = Collector()
    q = LiveRunner(got, batch_ms=1, trust_sim_clock=True)
    q.submit(Exchange(ts=5.0, method="GET", target="/", req_headers=[("x-apiward-sim-ts", "1700000000.5")], source="proxy"))
    for ts in (5.0, 5.0, 6.0):
        q.submit(Exchange(ts=ts, method="GET", target="/", req_headers=[], source="proxy"))
    q.close()
    assert got.calls[0].ts == 1700000000.5 and got.calls[1].ts == 5.0
    ids = [c.id for c in got.calls[1:]]
    assert ids == sorted(ids) and len(set(ids)) == 3



def test_a_failing_sink_is_counted_and_the_runner_goes_on():
    got = Collector()
    seen = []

    def sink(batch):
        seen.append(len(batch))
        if len(seen) == 1:
            raise RuntimeError("sink down")
        got(batch)

    q = LiveRunner(sink, batch_size=1, batch_ms=1)
    for i in range(3):
        q.submit(Exchange(ts=float(i), method="GET", target=f"/{i}", req_headers=[], source="proxy"))
    q.close()
    assert q.stats.errors == 1 and "sink down" in q.stats.last_error
    assert len(got.calls) == 2 and q.stats.processed == 2


def test_pipeline_runner_feeds_the_lake_and_checkpoints(tmp_path):
    from apiward.lake.query import connect
    from apiward.pipeline import Pipeline

    pipe = Pipeline(tmp_path / "state")
    q = pipeline_runner(pipe, batch_ms=5)
    for i in range(5):
        q.submit(Exchange(ts=1_700_000_000.0 + i, method="GET", target=f"/items/{i}", req_headers=[("x-request-id", f"r{i}")], source="proxy"))
    q.close()
    pipe.close()
    con = connect(tmp_path / "state" / "lake")
    assert con.execute("SELECT count(*) FROM calls WHERE request_id LIKE 'r%'").fetchone()[0] == 5
