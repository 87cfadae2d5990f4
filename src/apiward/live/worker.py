"""The pipeline worker: a process that owns a state directory's pipeline.

``apiward proxy`` starts it (:class:`apiward.live.supervisor.PipelineWorker`)
as ``python -m apiward.live.worker --in-fd N --out-fd M --state DIR ...``
and sends it batches of calls over a pipe (:mod:`apiward.live.protocol`).
It runs each batch through :meth:`Pipeline.process` under the batch's key,
answers :class:`Done`, checkpoints every ``--checkpoint`` seconds and then
answers :class:`Checkpointed` (the proxy forgets batches only then, so a
worker that dies costs re-running them, never losing them).

It stops, after a final checkpoint, on a :class:`Stop`, at end of input (the
proxy went away) or on SIGTERM. It runs in its own session and ignores
SIGINT: Ctrl-C in a terminal reaches the proxy, which stops it in order.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

from apiward.live.protocol import (
    Batch, Checkpointed, Done, Failed, Ready, Stop, Stopped, decode_to_worker, encode, read_frame, write_frame,
)

__all__ = ["main", "serve"]


class _Replies:
    """The reply pipe; a proxy that went away is not an error here."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.gone = False

    def send(self, msg: Any) -> None:
        if self.gone:
            return
        try:
            write_frame(self.fd, encode(msg))
        except OSError:
            self.gone = True


def serve(in_fd: int, out_fd: int, state: Path, *, mode: str = "both", config: Path | None = None,
          memory_budget: str | None = None, checkpoint_every: float = 2.0, max_unsaved: int = 25_000) -> int:
    """Open the pipeline, answer :class:`Ready` (or :class:`Failed`), then
    process batches until told to stop. Checkpoints every
    ``checkpoint_every`` seconds, and sooner once ``max_unsaved`` events
    came since the last one (the sender keeps them until then). Returns
    the exit status."""
    from apiward.config import load_settings
    from apiward.pipeline import Pipeline, lean_gc

    replies = _Replies(out_fd)
    term = [False]

    def on_term(signum: int, frame: Any) -> None:
        term[0] = True

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_term)
    try:
        settings = load_settings(config, state, memory_budget=memory_budget)
        pipeline = Pipeline(state, mode=mode, settings=settings)
    except Exception as exc:
        replies.send(Failed(message=str(exc) or type(exc).__name__))
        return 2
    replies.send(Ready(pid=os.getpid()))
    with lean_gc():  # a process of its own: GC pauses here never delay the proxy's answers
        return _serve_batches(pipeline, replies, term, in_fd, checkpoint_every, max_unsaved)


def _serve_batches(pipeline: Any, replies: _Replies, term: list[bool], in_fd: int, checkpoint_every: float,
                   max_unsaved: int) -> int:
    """The worker's loop (see :func:`serve`)."""
    from apiward.alert.metrics import pipeline_figures

    def figures() -> dict[str, Any]:
        try:
            return pipeline_figures(pipeline, pipeline.alerts)
        except Exception:
            return {}

    done = 0  # last batch through the pipeline
    unsaved = 0  # events since the last checkpoint
    dirty = False
    next_checkpoint = time.monotonic() + checkpoint_every
    stop_reason = ""
    failed_checkpoint = ""
    while not term[0]:
        wait = max(0.0, next_checkpoint - time.monotonic()) if dirty else 1.0
        ready = select.select([in_fd], [], [], min(wait, 1.0))[0]
        if ready:
            data = read_frame(in_fd)
            if data is None:
                stop_reason = "end of input"
                break
            msg = decode_to_worker(data)
            if isinstance(msg, Stop):
                stop_reason = "stop"
                break
            assert isinstance(msg, Batch)
            errors, last_error = 0, ""
            try:
                pipeline.process(msg.calls, batch_key=msg.key, autocheckpoint=False)
            except Exception as exc:  # stage errors are caught per call; this is a bug: report, go on
                errors, last_error = len(msg.calls), f"pipeline: {exc!r}"
                print(f"apiward pipeline worker: batch {msg.seq} failed: {exc!r}", file=sys.stderr, flush=True)
            done = msg.seq
            dirty = True
            unsaved += len(msg.calls)
            replies.send(Done(seq=msg.seq, events=len(msg.calls), errors=errors, last_error=last_error))
        if dirty and (time.monotonic() >= next_checkpoint or unsaved >= max_unsaved):
            next_checkpoint = time.monotonic() + checkpoint_every
            try:
                pipeline.checkpoint()
            except Exception as exc:  # e.g. a full disk: keep going; the proxy keeps the batches meanwhile
                if repr(exc) != failed_checkpoint:
                    failed_checkpoint = repr(exc)
                    print(f"apiward pipeline worker: checkpoint failed: {exc!r}", file=sys.stderr, flush=True)
                continue
            failed_checkpoint = ""
            dirty, unsaved = False, 0
            replies.send(Checkpointed(upto=done, figures=figures()))
    pipeline.close()
    # Stopped only answers a Stop: after SIGTERM the proxy starts a new worker.
    replies.send(Stopped(upto=done, figures=figures()) if stop_reason == "stop" else Checkpointed(upto=done, figures=figures()))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m apiward.live.worker", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in-fd", type=int, required=True)
    ap.add_argument("--out-fd", type=int, required=True)
    ap.add_argument("--state", type=Path, required=True)
    ap.add_argument("--mode", default="both")
    ap.add_argument("--config", type=Path)
    ap.add_argument("--memory-budget")
    ap.add_argument("--checkpoint", type=float, default=2.0)
    ap.add_argument("--max-unsaved", type=int, default=25_000)
    args = ap.parse_args(argv)
    return serve(args.in_fd, args.out_fd, args.state, mode=args.mode, config=args.config,
                 memory_budget=args.memory_budget, checkpoint_every=args.checkpoint, max_unsaved=args.max_unsaved)


if __name__ == "__main__":
    sys.exit(main())
