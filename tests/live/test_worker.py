"""The pipeline worker process, driven over its pipes as the proxy does:
Ready, Batch -> Done, periodic Checkpointed, Stop -> Stopped; end of input
and SIGTERM checkpoint and exit; a state it cannot open answers Failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from apiward.lake.query import connect
from apiward.live.protocol import Batch, Checkpointed, Done, Failed, Ready, Stop, Stopped, decode_from_worker, encode, read_frame, write_frame
from apiward.testing import make_call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


class Worker:
    def __init__(self, state: Path, checkpoint: float = 3600.0) -> None:
        to_r, self.w = os.pipe()
        self.r, from_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "apiward.live.worker", "--in-fd", str(to_r), "--out-fd", str(from_w), "--state", str(state),
             "--checkpoint", str(checkpoint)], pass_fds=(to_r, from_w))
        os.close(to_r)
        os.close(from_w)

    def send(self, msg) -> None:
        write_frame(self.w, encode(msg))

    def recv(self):
        data = read_frame(self.r, timeout=120)
        return None if data is None else decode_from_worker(data)

    def close(self) -> int:
        for fd in (self.w, self.r):
            try:
                os.close(fd)
            except OSError:
                pass
        return self.proc.wait(120)


def batch(seq: int, n: int, prefix: str) -> Batch:
    calls = [make_call("GET", f"/items/{i}", id=f"{prefix}{i}", ts=1_764_000_000 + i) for i in range(n)]
    return Batch(seq=seq, key=f"test-{seq:04d}", calls=calls)


def lake_ids(state: Path) -> list[str]:
    return [r[0] for r in connect(state / "lake").execute("SELECT id FROM calls ORDER BY id").fetchall()]


def test_batches_done_then_stop_checkpoints_and_answers_stopped(tmp_path: Path):
    w = Worker(tmp_path / "s")
    assert isinstance(w.recv(), Ready)
    w.send(batch(1, 3, "a"))
    w.send(batch(2, 2, "b"))
    assert [(m.seq, m.events) for m in (w.recv(), w.recv())] == [(1, 3), (2, 2)]
    w.send(Stop())
    msg = w.recv()
    assert isinstance(msg, Stopped) and msg.upto == 2 and msg.figures["events"] == 5
    assert w.close() == 0
    assert lake_ids(tmp_path / "s") == ["a0", "a1", "a2", "b0", "b1"]


def test_the_same_batch_key_replaces_its_lake_file(tmp_path: Path):
    """What a new worker relies on when the proxy sends it unsaved batches again."""
    for _ in range(2):
        w = Worker(tmp_path / "s")
        assert isinstance(w.recv(), Ready)
        w.send(batch(1, 3, "a"))
        assert isinstance(w.recv(), Done)
        w.send(Stop())
        assert isinstance(w.recv(), Stopped)
        assert w.close() == 0
    assert lake_ids(tmp_path / "s") == ["a0", "a1", "a2"]


def test_end_of_input_and_sigterm_checkpoint_and_exit(tmp_path: Path):
    w = Worker(tmp_path / "s")
    assert isinstance(w.recv(), Ready)
    w.send(batch(1, 2, "a"))
    assert isinstance(w.recv(), Done)
    os.close(w.w)  # the proxy went away
    msg = w.recv()
    assert isinstance(msg, Checkpointed) and msg.upto == 1  # not Stopped: nobody asked it to stop
    assert w.close() == 0
    assert lake_ids(tmp_path / "s") == ["a0", "a1"]

    w = Worker(tmp_path / "s")
    assert isinstance(w.recv(), Ready)
    w.send(batch(1, 1, "b"))
    assert isinstance(w.recv(), Done)
    w.proc.send_signal(signal.SIGTERM)
    assert isinstance(w.recv(), Checkpointed)
    assert w.close() == 0


def test_periodic_checkpoints_report_figures(tmp_path: Path):
    w = Worker(tmp_path / "s", checkpoint=0.05)
    assert isinstance(w.recv(), Ready)
    w.send(batch(1, 4, "a"))
    assert isinstance(w.recv(), Done)
    msg = w.recv()
    assert isinstance(msg, Checkpointed) and msg.upto == 1 and msg.figures["events"] == 4
    w.send(Stop())
    assert isinstance(w.recv(), Stopped)
    assert w.close() == 0


def test_a_state_it_cannot_open_answers_failed(tmp_path: Path):
    bad = tmp_path / "a-file"
    bad.write_text("not a directory")
    w = Worker(bad)
    msg = w.recv()
    assert isinstance(msg, Failed) and msg.message
    assert w.close() == 2


def test_frames_are_typed_msgpack_never_pickle():
    call = make_call("POST", "/x", id="e1", req_json={"password": "x"})
    data = encode(Batch(seq=1, key="k", calls=[call]))
    assert b"\x80\x04" not in data[:2]  # not a pickle stream
    assert msgspec.msgpack.decode(data)["type"] == "batch"
    with pytest.raises(msgspec.ValidationError):
        decode_from_worker(encode(Batch(seq=1, key="k", calls=[])))  # a batch is not a reply
