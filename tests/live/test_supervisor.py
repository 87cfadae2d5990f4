"""The capture side of the pipeline worker, against real worker processes:
batches reach the lake; a killed worker is reported, started again and sent
what it had not checkpointed (nothing lost, nothing doubled); a batch the
worker dies on twice is dropped and counted; a worker that cannot start
says why."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import msgspec
import pytest

from apiward.lake.query import connect
from apiward.live.supervisor import PipelineWorker, WorkerFailed
from apiward.testing import make_call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def calls(prefix: str, n: int) -> list:
    return [make_call("GET", f"/items/{i}", id=f"{prefix}{i:03d}", ts=1_764_000_000 + i) for i in range(n)]


def lake(state: Path) -> tuple[int, int]:
    return connect(state / "lake").execute("SELECT count(*), count(DISTINCT id) FROM calls").fetchone()


def wait_for(cond, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_batches_go_through_the_worker_into_the_lake(tmp_path: Path):
    lines: list[str] = []
    w = PipelineWorker(tmp_path / "s", checkpoint_every=0.1, log=lines.append).start()
    assert w.alive and w.stats()["worker_pid"] != os.getpid()
    w(calls("a", 10))
    w(calls("b", 5))
    wait_for(lambda: w.stats()["worker_unsaved"] == 0)  # checkpointed: the worker sent its figures
    assert w.figures["events"] == 15
    w.close()
    st = w.stats()
    assert (st["sent"], st["processed"], st["lost"], st["worker_restarts"]) == (15, 15, 0, 0)
    assert lake(tmp_path / "s") == (15, 15)
    assert any("pipeline worker started" in ln for ln in lines)


def test_a_killed_worker_is_restarted_and_sent_what_it_had_not_saved(tmp_path: Path):
    lines: list[str] = []
    w = PipelineWorker(tmp_path / "s", checkpoint_every=3600, log=lines.append).start()
    w(calls("a", 20))
    wait_for(lambda: w.processed == 20)  # in the lake, not checkpointed
    first = w.stats()["worker_pid"]
    os.kill(first, signal.SIGKILL)
    w(calls("b", 10))  # while it is dead or starting again: kept, never blocks for long
    wait_for(lambda: w.restarts == 1 and w.alive)
    assert w.stats()["worker_pid"] != first
    w(calls("c", 5))
    w.close()
    st = w.stats()
    assert st["lost"] == 0 and st["worker_restarts"] == 1 and st["processed"] == 35
    assert lake(tmp_path / "s") == (35, 35)  # the batch sent again replaced its own lake file
    text = "\n".join(lines)
    assert "died: killed by SIGKILL" in text and "started again" in text


def test_a_batch_the_worker_dies_on_twice_is_dropped_and_counted(tmp_path: Path):
    lines: list[str] = []
    w = PipelineWorker(tmp_path / "s", checkpoint_every=3600, log=lines.append).start()
    w(calls("a", 3))
    w._send([msgspec.Raw(b"\xc1")])  # a frame the worker cannot decode: it dies on it
    wait_for(lambda: w.lost == 1, timeout=120)
    w(calls("b", 4))
    w.close()
    st = w.stats()
    assert st["lost"] == 1 and st["worker_restarts"] == 2 and st["processed"] == 7
    assert lake(tmp_path / "s") == (7, 7)
    assert any("died on it 2 times" in ln for ln in lines)


def test_a_worker_that_cannot_open_the_state_says_why(tmp_path: Path):
    bad = tmp_path / "a-file"
    bad.write_text("x")
    with pytest.raises(WorkerFailed) as info:
        PipelineWorker(bad).start()
    assert str(info.value)


def test_unsaved_events_are_bounded_by_early_checkpoints(tmp_path: Path):
    """With a long checkpoint period the worker still checkpoints once half of
    ``max_unsaved`` came, so the sender never waits for the timer."""
    w = PipelineWorker(tmp_path / "s", checkpoint_every=3600, max_unsaved=10).start()
    for i in range(6):
        w(calls(f"x{i}-", 5))
        assert w.stats()["worker_unsaved"] <= 15
    w.close()
    assert w.stats()["processed"] == 30 and w.stats()["lost"] == 0
    assert lake(tmp_path / "s") == (30, 30)


def test_while_no_worker_can_start_capture_drops_and_counts_then_resumes(tmp_path: Path):
    """The worker dies and its state cannot be opened for a while: each
    attempt is logged, the runner's queue fills and counts its drops (submit
    never waits), and once a worker starts again everything kept reaches it."""
    from apiward.ingest.capture import Exchange
    from apiward.live.runner import LiveRunner

    state, aside = tmp_path / "s", tmp_path / "aside"
    lines: list[str] = []
    w = PipelineWorker(state, checkpoint_every=3600, max_unsaved=4, log=lines.append).start()
    runner = LiveRunner(w, max_queue=5, batch_size=2, batch_ms=1)

    def submit(n: int, prefix: str) -> None:
        for i in range(n):
            runner.submit(Exchange(ts=1_764_000_000.0 + i, method="GET", target=f"/{prefix}/{i}",
                                   req_headers=[("x-request-id", f"{prefix}{i}")], source="proxy"))

    submit(3, "a")
    wait_for(lambda: w.processed == 3)
    state.rename(aside)
    state.write_text("not a state directory")  # what the next worker will find
    os.kill(w.stats()["worker_pid"], signal.SIGKILL)
    wait_for(lambda: any("could not be started again" in ln for ln in lines))
    submit(50, "b")  # nobody to take them: the kept set (4) and the queue (5) fill, the rest is dropped
    assert runner.stats.dropped > 0
    state.unlink()
    aside.rename(state)
    wait_for(lambda: w.restarts == 1 and w.alive, timeout=120)
    submit(2, "c")
    w.begin_close()
    runner.close()
    w.close()
    st, rs = w.stats(), runner.stats
    assert st["lost"] == 0 and rs.captured == 55
    assert st["processed"] + rs.dropped == rs.captured
    n, distinct = lake(state)
    assert n == distinct == st["processed"]
    assert any("pipeline worker started again" in ln for ln in lines)
