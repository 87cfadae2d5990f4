"""The capture side of the pipeline worker: start it, feed it, restart it.

:class:`PipelineWorker` is a sink for :class:`~apiward.live.runner.LiveRunner`:
the runner's consumer thread hands it batches of calls, it encodes them
(:mod:`apiward.live.protocol`, msgspec) and writes them to the worker's
pipe; the worker process (:mod:`apiward.live.worker`) owns the state
directory and the lake. The capturing process keeps no pipeline, so the
analysis never holds its GIL and the relay's latency stays its own.

Each batch is kept until the worker reports a checkpoint that covers it.
When the worker dies (killed, out of memory, a bug), the death is logged
and counted, a new worker is started (backing off up to 30 s between
attempts) and the kept batches are sent again under the same lake keys, so
their lake files are replaced, not doubled, and the state picks up from the
last checkpoint. A batch the worker died on twice is dropped and counted
(``lost``). While no worker runs, batches wait in the kept set up to
``max_unsaved`` events; beyond that the runner's queue fills and its drops
are counted: the proxied traffic never waits.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from apiward.live.protocol import (
    FRAME_TARGET, Checkpointed, Done, Failed, RawBatch, Ready, Stop, Stopped, decode_from_worker, encode, read_frame,
    write_frame,
)
from apiward.model.call import ApiCall

__all__ = ["PipelineWorker", "WorkerFailed"]

_F_SETPIPE_SZ = 1031  # Linux: a 1 MiB pipe holds a few batches without blocking the sender
_MAX_ATTEMPTS = 2  # a batch the worker died on this many times is dropped
_BACKOFF_MAX = 30.0
_CLOSING_RESTARTS = 3  # during shutdown, new workers tried before what is left is given up


class WorkerFailed(RuntimeError):
    """The pipeline worker could not be started (its message says why)."""


class _Kept:
    """One batch sent (or to send) to the worker, kept until checkpointed."""

    __slots__ = ("seq", "frame", "events", "done", "attempts", "gen")

    def __init__(self, seq: int, frame: bytes, events: int) -> None:
        self.seq = seq
        self.frame = frame
        self.events = events
        self.done = False
        self.attempts = 0
        self.gen = -1  # the worker generation it was written to


class PipelineWorker:
    """A pipeline worker process for ``state``, and the sink that feeds it.

    ``start()`` spawns the worker and waits until its pipeline is open
    (raises :class:`WorkerFailed` with the worker's message otherwise);
    calling the object with a list of calls sends them; ``close()`` sends
    what is left, stops the worker (it checkpoints and closes the pipeline)
    and waits for it. ``log`` receives one line per notable event (worker
    started, died, restarted; batches lost)."""

    def __init__(
        self,
        state: Path | str,
        *,
        mode: str = "both",
        config: Path | None = None,
        memory_budget: str | None = None,
        checkpoint_every: float = 2.0,
        max_unsaved: int = 50_000,
        start_timeout: float = 120.0,
        log: Callable[[str], None] | None = None,
        quiet: bool = False,
    ) -> None:
        self.state = Path(state)
        self.mode = mode
        self.config = config
        self.memory_budget = memory_budget
        self.checkpoint_every = checkpoint_every
        self.max_unsaved = max_unsaved
        self.start_timeout = start_timeout
        self.log = log or (lambda line: print(f"apiward: {line}", file=sys.stderr, flush=True))
        self.quiet = quiet  # only deaths, restarts and losses are logged
        self._run = secrets.token_hex(4)  # lake keys: proxy-<run>-<seq>
        self._enc = msgspec.msgpack.Encoder()
        self._cond = threading.Condition(threading.Lock())  # counters and the kept batches
        self._wlock = threading.Lock()  # writes to the worker's pipe, worker (re)starts
        self._kept: OrderedDict[int, _Kept] = OrderedDict()
        self._unsaved = 0  # events in _kept
        self._seq = 0
        self._gen = 0
        self._wfd: int | None = None
        self._rfd: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._closing = False
        self._stop_sent = False
        self._stopped = False  # the worker answered Stop
        self._gave_up = False
        self._thread: threading.Thread | None = None
        self.pid = 0
        self.sent = 0
        self.processed = 0
        self.errors = 0
        self.last_error = ""
        self.lost = 0
        self.restarts = 0
        self.figures: dict[str, Any] = {}

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> PipelineWorker:
        with self._wlock:
            self._spawn()
        if not self.quiet:
            self.log(f"pipeline worker started (pid {self.pid}, state {self.state})")
        self._thread = threading.Thread(target=self._supervise, name="apiward-worker-supervisor", daemon=True)
        self._thread.start()
        return self

    def _spawn(self) -> None:
        """Start a worker and wait for its Ready (caller holds ``_wlock``)."""
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(to_w, _F_SETPIPE_SZ, 1 << 20)
        except (ImportError, OSError):
            pass
        cmd = [sys.executable, "-m", "apiward.live.worker", "--in-fd", str(to_r), "--out-fd", str(from_w),
               "--state", str(self.state), "--mode", self.mode, "--checkpoint", str(self.checkpoint_every),
               "--max-unsaved", str(max(1, self.max_unsaved // 2))]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        if self.memory_budget:
            cmd += ["--memory-budget", self.memory_budget]
        try:
            proc = subprocess.Popen(cmd, pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    start_new_session=True)
        except BaseException:
            for fd in (to_r, to_w, from_r, from_w):
                os.close(fd)
            raise
        os.close(to_r)
        os.close(from_w)
        try:
            try:
                data = read_frame(from_r, timeout=self.start_timeout)
            except TimeoutError:
                proc.kill()
                raise WorkerFailed(f"the pipeline worker did not start within {self.start_timeout:g} s") from None
            msg = decode_from_worker(data) if data is not None else None
            if not isinstance(msg, Ready):
                code = proc.wait(30)
                why = msg.message if isinstance(msg, Failed) else f"the pipeline worker exited with status {code}"
                raise WorkerFailed(why)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
            os.close(to_w)
            os.close(from_r)
            raise
        self._proc, self._wfd, self._rfd, self.pid = proc, to_w, from_r, msg.pid

    def close(self, timeout: float = 120.0) -> None:
        """Send a Stop after every batch, wait for the worker to checkpoint
        and exit; batches still unsaved after ``timeout`` are counted lost."""
        self.begin_close()
        if self._wlock.acquire(timeout=min(timeout, 60.0)):
            try:
                self._send_stop()
            finally:
                self._wlock.release()
        elif self._proc is not None:  # a write to a stuck worker holds the lock: end it
            self.log(f"pipeline worker (pid {self._proc.pid}) is not reading; killing it")
            self._proc.kill()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            if not self._stopped or self._kept:
                self._give_up("the pipeline worker did not stop in time" if self._proc and self._proc.poll() is None
                              else "no pipeline worker left to take them")
            self._gave_up = True  # a batch sent after this is counted lost
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(30)

    def begin_close(self) -> None:
        """From now on a dead worker is restarted only a few times (the
        shutdown must end)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def _send_stop(self) -> None:
        if self._wfd is not None and not self._stop_sent:
            try:
                write_frame(self._wfd, encode(Stop()))
                self._stop_sent = True
            except OSError:
                pass  # dead: the supervisor restarts it and sends the Stop

    # -- the sink ------------------------------------------------------------------
    def __call__(self, calls: list[ApiCall]) -> None:
        """Send a batch (from the runner's consumer thread). Waits while the
        unsaved batches are at ``max_unsaved``: the runner's queue takes the
        pressure and counts its drops."""
        enc = self._enc.encode
        raws: list[msgspec.Raw] = []
        size = 0
        for call in calls:
            data = enc(call)
            raws.append(msgspec.Raw(data))
            size += len(data)
            if size >= FRAME_TARGET:
                self._send(raws)
                raws, size = [], 0
        if raws:
            self._send(raws)

    def _send(self, raws: list[msgspec.Raw]) -> None:
        n = len(raws)
        with self._cond:
            while self._unsaved and self._unsaved + n > self.max_unsaved and not self._gave_up:
                self._cond.wait(0.5)
            if self._gave_up:
                self.lost += n
                return
            self._seq += 1
            seq = self._seq
            kept = _Kept(seq, encode(RawBatch(seq=seq, key=f"proxy-{self._run}-{seq:08d}", calls=raws)), n)
            self._kept[seq] = kept
            self._unsaved += n
            self.sent += n
        with self._wlock:
            if self._wfd is not None and kept.gen != self._gen:
                kept.gen = self._gen
                try:
                    write_frame(self._wfd, kept.frame)
                except OSError:
                    pass  # the worker died: the supervisor sees it and sends this batch again

    # -- supervision ------------------------------------------------------------------
    def _supervise(self) -> None:
        while True:
            self._read_replies()
            proc = self._proc
            code = None
            if proc is not None:
                try:
                    code = proc.wait(60)
                except subprocess.TimeoutExpired:  # its reply pipe broke, yet it runs: end it
                    proc.kill()
                    code = proc.wait()
            with self._wlock:
                for fd in (self._wfd, self._rfd):
                    if fd is not None:
                        os.close(fd)
                self._wfd = self._rfd = None
                self._stop_sent = False
            with self._cond:
                if self._stopped:
                    self._cond.notify_all()
                    return
                failing = next((k for k in self._kept.values() if not k.done), None)
                if failing is not None:
                    failing.attempts += 1
                unsaved = self._unsaved
            self.log(f"pipeline worker (pid {proc.pid if proc else '?'}) died: {_status(code)}; "
                     f"{unsaved} events not yet checkpointed will be sent again to a new worker")
            if not self._restart():
                return

    def _restart(self) -> bool:
        delay, tries = 0.5, 0
        while True:
            with self._cond:
                if self._closing and (not self._kept or tries >= _CLOSING_RESTARTS):
                    self._give_up("no pipeline worker left to take them")
                    return False
                self._cond.wait(0.2 if self._closing else delay)  # close() may come in meanwhile
            tries += 1
            try:
                with self._wlock:
                    self._spawn()
                    replayed = self._replay()
                    if self._closing:
                        self._send_stop()
            except (WorkerFailed, OSError) as exc:
                self.log(f"pipeline worker could not be started again: {exc}; next attempt in {min(delay * 2, _BACKOFF_MAX):g} s")
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            self.restarts += 1
            self.log(f"pipeline worker started again (pid {self.pid}); sent it the {replayed} events not yet checkpointed")
            return True

    def _replay(self) -> int:
        """Send the kept batches to the new worker (caller holds ``_wlock``);
        drop those the worker died on too often. Returns the events sent."""
        with self._cond:
            for seq, k in list(self._kept.items()):
                if k.attempts >= _MAX_ATTEMPTS:
                    del self._kept[seq]
                    self._unsaved -= k.events
                    self.lost += k.events
                    self.log(f"dropped batch {seq} ({k.events} events): the pipeline worker died on it {k.attempts} times")
            self._gen += 1
            kept = list(self._kept.values())
            self._cond.notify_all()
        assert self._wfd is not None
        for k in kept:
            k.gen = self._gen
            write_frame(self._wfd, k.frame)
        return sum(k.events for k in kept)

    def _read_replies(self) -> None:
        fd = self._rfd
        while fd is not None:
            try:
                data = read_frame(fd)
            except (OSError, ValueError):
                data = None
            if data is None:
                return
            try:
                msg = decode_from_worker(data)
            except msgspec.MsgspecError:
                return
            with self._cond:
                if isinstance(msg, Done):
                    k = self._kept.get(msg.seq)
                    if k is not None and not k.done:
                        k.done = True
                        self.processed += msg.events - msg.errors
                        if msg.errors:
                            self.errors += msg.errors
                            self.last_error = msg.last_error
                elif isinstance(msg, (Checkpointed, Stopped)):
                    while self._kept:
                        seq, k = next(iter(self._kept.items()))
                        if seq > msg.upto:
                            break
                        del self._kept[seq]
                        self._unsaved -= k.events
                    if msg.figures:
                        self.figures = msg.figures
                    if isinstance(msg, Stopped):
                        self._stopped = True
                    self._cond.notify_all()

    def _give_up(self, why: str) -> None:
        """Count what is still kept as lost (caller holds ``_cond``)."""
        self._gave_up = True
        if self._unsaved:
            self.log(f"{self._unsaved} events not checkpointed are lost: {why}")
            self.lost += self._unsaved
            self._kept.clear()
            self._unsaved = 0
        self._cond.notify_all()

    # -- reporting -----------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._wfd is not None

    def stats(self) -> dict[str, Any]:
        return {"worker_pid": self._proc.pid if self._proc is not None else 0, "worker_alive": self.alive,
                "worker_restarts": self.restarts, "worker_unsaved": self._unsaved, "sent": self.sent,
                "processed": self.processed, "errors": self.errors, "last_error": self.last_error, "lost": self.lost}


def _status(code: int | None) -> str:
    if code is None:
        return "unknown status"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
