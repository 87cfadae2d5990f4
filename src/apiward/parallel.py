"""``apiward analyze --workers N``: the pipeline in N processes, partitioned by host.

Stage 1, keyed by host: worker ``i`` runs a whole :class:`~apiward.pipeline.Pipeline`
(discover, detect, learn, lake) over the calls whose API host is in
partition ``i`` (:class:`apiward.state.partitions.Partitioner`: the hosts of
the first input placed by their calls when the directory is made, so that
the partitions' work is even; other hosts by hash), with its own
state store under ``<state>/partitions/p<i>/`` and its own per-file resume
marks. Every worker reads the input files itself and keeps only its own
calls: parsing is a few percent of the pipeline's cost per event, so this
costs less than parsing once and shipping calls between processes, and it
makes each partition exactly what a partitioned log would feed. Bad records
are quarantined and counted by partition 0 only. Workers write their own
lake files (batch keys end in ``-p<i>``) into the one lake.

Stage 2, keyed by actor (:class:`ActorStage`, in the parent): each
partition sends the findings that changed at each of its checkpoints, and
the parent, while the workers run (at most every ``checkpoint_seconds``)
and when they are done, merges the findings of every partition by key (the same finding raised on
two partitions is one finding, its events added up), grouped per actor into
incidents across all hosts, written to the lake's ``findings`` and
``incidents`` and handed to the alert outbox; retention is applied once.
Per-call state that must see all of an actor's calls on one API host is
whole (all of a host's calls go to one partition); what is per actor across
hosts is per (host partition, actor) under ``--workers > 1``: see
ARCHITECTURE.md, "Parallel analysis", for each detector.

Traffic never crosses a process boundary; what does (run summaries,
findings at the end) is MessagePack (``msgspec`` and the state codec), not
pickle. Workers die with the parent (``PR_SET_PDEATHSIG``), so a kill -9 of
``apiward analyze`` stops them all; resuming continues each partition from
its own marks, and re-run batches replace their own lake files.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import resource
import signal
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import msgspec

from apiward.config import Settings
from apiward.lake.findings import findings_by_day, incidents_by_day
from apiward.lake.store import Lake
from apiward.model.call import ApiCall
from apiward.pipeline import (
    Pipeline,
    RunSummary,
    _alert_dispatcher,
    _feed_alerts,
    group_incidents,
)
from apiward.state import StateDir, codec
from apiward.state.budget import parse_size
from apiward.state.partitions import (
    PartitionDir,
    Partitioner,
    balance,
    check_layout,
    layout_of,
    merge_findings,
    write_layout,
)

__all__ = ["PartitionPipeline", "WorkerFailed", "prepare", "run_partitioned"]

#: error messages a worker sends back (the rest are counted in stage errors)
MAX_MESSAGES = 200
#: records of the first input whose hosts a new directory places by their calls
SAMPLE = 50_000


class WorkerFailed(RuntimeError):
    """A worker process died or raised: its partition is incomplete (a
    rerun continues it from its marks)."""


class PartitionPipeline(Pipeline):
    """Partition ``index`` of ``workers``: owns the calls whose host hashes
    to it, keeps its state in its own store, and leaves findings and
    incidents in the lake to the actor stage: at each checkpoint it sends
    the findings that changed to ``send`` (the parent)."""

    def __init__(self, root: Path | str, index: int, workers: int, *, mode: str, settings: Settings,
                 send: Callable[[bytes], None] | None = None, partitioner: Partitioner | None = None) -> None:
        super().__init__(PartitionDir(root, index), mode=mode, settings=settings)
        self.index = index
        self.workers = workers
        self.partitioner = partitioner or Partitioner(workers)
        self.owns = self._owns
        self.owns_bad = index == 0
        self.batch_suffix = f"-p{index}"
        self.send = send

    def _owns(self, call: ApiCall) -> bool:
        return self.partitioner(call.request.host) == self.index

    def _publish_findings(self) -> None:
        if self.send is not None:
            found = self.findings
            self.send(_findings_message([found[i] for i in self._dirty_findings if i in found]))
        self._dirty_findings.clear()


def _findings_message(findings: list[Any]) -> bytes:
    return msgspec.msgpack.encode({"findings": codec.dumps(findings)})


def _die_with_parent(parent: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent was already gone
        os._exit(1)


def _worker(root: str, index: int, workers: int, mode: str, settings: Settings, files: list[str], fmt: str | None,
            flush_pending: bool, parent: int, barrier: Any, progress: Any, conn: Any, partitioner: Partitioner) -> None:
    _die_with_parent(parent)
    messages: list[str] = []

    def on_error(msg: str) -> None:
        if len(messages) < MAX_MESSAGES:
            messages.append(msg)

    def on_progress(n: int) -> None:
        progress.value += n

    try:
        pipe = PartitionPipeline(root, index, workers, mode=mode, settings=settings, send=conn.send_bytes, partitioner=partitioner)
        before = list(pipe.findings.keys())
        conn.send_bytes(_findings_message(list(pipe.findings.values())))  # what the actor stage starts from
        # every partition has cleaned the lake's temporaries before any writes into it
        barrier.wait()
        summary = pipe.run_files(files, fmt=fmt, on_progress=on_progress, on_error=on_error)
        if flush_pending:
            pipe.flush_pending()
        pipe.close(prune=False)
        result = {
            "summary": msgspec.to_builtins(summary),
            "messages": messages,
            "before": before,
            "findings": codec.dumps(list(pipe.findings.values())),
            "process_cpu_seconds": _cpu(),
        }
    except BaseException as exc:  # reported by the parent, which fails the run
        barrier.abort()
        result = {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-4000:]}"}
    conn.send_bytes(msgspec.msgpack.encode(result))
    conn.close()


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)  # a forked child's own, from zero
    return ru.ru_utime + ru.ru_stime


def _worker_settings(settings: Settings, workers: int) -> Settings:
    """A worker's settings: its share of the memory budget, no alert sinks
    (the actor stage alerts on the merged findings)."""
    share = max(parse_size(settings.memory_budget) // workers, 64 << 20)
    return msgspec.structs.replace(settings, memory_budget=f"{share >> 10}K", sinks={})


def _add_summary(total: RunSummary, part: RunSummary, index: int) -> None:
    total.events += part.events
    total.quarantined += part.quarantined
    total.endpoints += part.endpoints  # disjoint: an endpoint's host is in one partition
    total.cpu_seconds += part.cpu_seconds
    for k, v in part.per_format.items():
        total.per_format[k] = total.per_format.get(k, 0) + v
    for k, v in part.quarantine_reasons.items():
        total.quarantine_reasons[k] = total.quarantine_reasons.get(k, 0) + v
    for k, v in part.stage_errors.items():
        total.stage_errors[k] = total.stage_errors.get(k, 0) + v
    total.error_messages.extend(m for m in part.error_messages if m not in total.error_messages)
    for path, fc in part.per_file.items():
        cur = total.per_file.get(path)
        if cur is None:
            total.per_file[path] = msgspec.structs.replace(fc)
            continue
        cur.format = cur.format or fc.format
        cur.read += fc.read
        cur.stored += fc.stored
        cur.quarantined += fc.quarantined
        cur.duplicates += fc.duplicates
        cur.skipped = min(cur.skipped, fc.skipped)  # records no partition read again
        cur.pending = max(cur.pending, fc.pending)
    if index == 0:  # every worker read the same files: report them once
        total.files = part.files
        total.failed_files = list(part.failed_files)
        total.skipped_already_ingested = part.skipped_already_ingested
    else:
        total.skipped_already_ingested = min(total.skipped_already_ingested, part.skipped_already_ingested)


class ActorStage:
    """Stage 2, keyed by actor: each partition's current findings (replaced
    as it sends them), merged by key and grouped per actor into incidents,
    published to the lake at most every ``every`` seconds while the
    workers run (as one pipeline's checkpoints publish them) and at the end,
    with alerts (``alerts``: the outbox's dispatcher, when sinks are
    configured) for the findings that changed."""

    def __init__(self, lake: Lake, workers: int, every: float, alerts: Any = None) -> None:
        self.lake = lake
        self.parts: list[dict[str, Any] | None] = [None] * workers  # None: not heard from yet
        self.every = every
        self.alerts = alerts
        self.dirty = False
        self.changed: set[str] = set()
        self._last = time.monotonic()

    def update(self, index: int, raw: bytes, *, whole: bool = False) -> None:
        """A partition's findings: all of them (its first message, and its
        result: ``whole``), else those that changed at its checkpoint."""
        found = codec.loads(raw)
        part = self.parts[index]
        if part is None or whole:
            part = self.parts[index] = {}
        else:
            self.changed.update(f.id for f in found)
        part.update((f.id, f) for f in found)
        self.dirty = True

    def maybe_publish(self) -> None:
        if self.dirty and time.monotonic() - self._last >= self.every and all(p is not None for p in self.parts):
            self.publish()

    def publish(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        findings = merge_findings(p.values() for p in self.parts if p is not None)
        incidents = group_incidents(findings.values())
        if findings:  # whole days: what a killed run's partitions committed is published too
            self.lake.replace_days("findings", findings_by_day(list(findings.values())))
            self.lake.replace_days("incidents", incidents_by_day(incidents))
        if self.alerts is not None and self.changed:
            _feed_alerts(self.alerts, findings, self.changed, incidents)
        self.changed = set()
        self.dirty = False
        self._last = time.monotonic()
        return findings, incidents


def _collect(procs: list[Any], conns: list[Any], counters: list[Any], results: dict[int, dict[str, Any]],
             on_progress: Callable[[int], None] | None, stage: ActorStage, barrier: Any) -> None:
    """Each worker's findings as they change and its result (or how it
    died), reporting progress meanwhile. A worker that dies releases the
    others from the start barrier (they then stop too)."""
    shown = 0
    pending = dict(enumerate(conns))
    while pending:
        ready = wait(list(pending.values()) + [procs[i].sentinel for i in pending], timeout=0.2)
        for i, c in list(pending.items()):
            if c in ready:
                try:
                    msg = msgspec.msgpack.decode(c.recv_bytes())
                except (EOFError, OSError):
                    procs[i].join()
                    msg = {"error": f"worker {i} died (exit code {procs[i].exitcode}) before its result"}
                if "summary" in msg or "error" in msg:
                    results[i] = msg
                    del pending[i]
                else:
                    stage.update(i, msg["findings"])
            elif procs[i].sentinel in ready and not c.poll():
                procs[i].join()
                results[i] = {"error": f"worker {i} died (exit code {procs[i].exitcode})"}
                del pending[i]
            if "error" in results.get(i, {}):
                barrier.abort()
        if on_progress is not None:
            done = sum(v.value for v in counters)
            if done > shown:
                on_progress(done - shown)
                shown = done
        if not any("error" in r for r in results.values()):
            stage.maybe_publish()


def sample_hosts(files: list[str], fmt: str | None, settings: Settings, limit: int = SAMPLE) -> dict[str, int]:
    """Calls per (lower-cased) host in the first ``limit`` records of the input."""
    from apiward.ingest.base import ReadOptions
    from apiward.ingest.registry import UnknownFormat, read_file

    counts: dict[str, int] = {}
    seen = 0
    for path in files:
        try:
            _fmt, records = read_file(path, fmt, ReadOptions(body_cap=settings.body_cap, source_name=os.path.basename(path),
                                                              max_record_bytes=settings.max_record_bytes,
                                                              max_line_bytes=settings.max_line_bytes, max_depth=settings.max_depth,
                                                              max_file_bytes=settings.max_file_bytes,
                                                              max_gzip_ratio=settings.max_gzip_ratio))
            for _i, item in records:
                if isinstance(item, ApiCall):
                    h = item.request.host.lower()
                    counts[h] = counts.get(h, 0) + 1
                seen += 1
                if seen >= limit:
                    return counts
        except (OSError, UnknownFormat, ValueError):
            continue  # the workers report it
    return counts


def prepare(state: Path | str, workers: int, *, files: list[str] | None = None, fmt: str | None = None,
            settings: Settings | None = None) -> tuple[StateDir, Partitioner]:
    """Check (and on first use record) that ``state`` is partitioned for
    ``workers``: a new directory places the hosts of the input's first
    records on the partitions by their calls (:func:`balance`; hosts seen
    later go by hash). Cleans what a kill left. Raises StateError naming
    the option."""
    from apiward import __version__
    from apiward.state.store import StateStore

    sd = StateDir(state)
    sd.clean_temp()
    if sd.snapshot_path.exists() and not sd.store_path.exists():
        sd.open_store()  # raises the clear message about old pickles
    store = StateStore(sd.store_path, sd.secret(), version=__version__)
    try:
        check_layout(store, workers, sd.root)
        if layout_of(store) == 1:  # a new directory
            hosts = balance(sample_hosts(files or [], fmt, settings), workers) if settings is not None else {}
            write_layout(store, workers, hosts)
        hosts = (store.load("layout") or {}).get("hosts")
    finally:
        store.close()
    Lake(sd.lake).clean_temp()
    return sd, Partitioner(workers, hosts)


def run_partitioned(
    state: Path | str,
    files: list[str],
    *,
    workers: int,
    mode: str,
    settings: Settings,
    fmt: str | None = None,
    flush_pending: bool = False,
    progress: Callable[[], AbstractContextManager[Callable[[int], None]]] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> tuple[RunSummary, list[dict[str, Any]]]:
    """Run ``files`` through ``workers`` partition pipelines, then the actor
    stage. Returns the summary added up across workers and, per worker,
    its events, CPU and wall seconds. ``progress()``, entered once the
    workers are forked (no display thread runs at the fork), gives the
    callback told how many events were done."""
    t0, c0 = time.perf_counter(), time.process_time()
    sd, partitioner = prepare(state, workers, files=files, fmt=fmt, settings=settings)
    ctx = mp.get_context("fork")  # no pickling of anything: the children start from this process
    barrier = ctx.Barrier(workers)
    wsettings = _worker_settings(settings, workers)
    counters = [ctx.Value("q", 0, lock=False) for _ in range(workers)]
    procs, conns = [], []
    for i in range(workers):
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_worker, name=f"apiward-partition-{i}", daemon=True,
                        args=(str(sd.root), i, workers, mode, wsettings, files, fmt, flush_pending, os.getpid(), barrier, counters[i], send, partitioner))
        p.start()
        send.close()
        procs.append(p)
        conns.append(recv)
    results: dict[int, dict[str, Any]] = {}
    lake = Lake(sd.lake)
    # the outbox's delivery thread starts here, after the fork
    stage = ActorStage(lake, workers, max(settings.checkpoint_seconds, 1.0), _alert_dispatcher(sd.root, settings))
    try:
        # the display (and its thread) starts after the fork
        with progress() if progress is not None else nullcontext(None) as on_progress:
            _collect(procs, conns, counters, results, on_progress, stage, barrier)
    except BaseException:
        for p in procs:
            if p.is_alive():
                p.kill()
        raise
    finally:
        for p in procs:
            p.join()
    try:
        return _finish(stage, results, workers, t0, c0, settings, on_error)
    finally:
        if stage.alerts is not None:
            stage.alerts.close()


def _finish(stage: ActorStage, results: dict[int, dict[str, Any]], workers: int, t0: float, c0: float, settings: Settings,
            on_error: Callable[[str], None] | None) -> tuple[RunSummary, list[dict[str, Any]]]:
    """The run's summary from the workers' results, and the actor stage's
    last publication of findings, incidents and alerts."""
    failed = [f"partition {i}: {r['error']}" for i, r in sorted(results.items()) if "error" in r]
    if failed:
        raise WorkerFailed("; ".join(failed))
    parts = [msgspec.convert(results[i]["summary"], RunSummary) for i in range(workers)]
    summary = RunSummary()
    for i, part in enumerate(parts):
        _add_summary(summary, part, i)
        if on_error is not None:
            for msg in results[i]["messages"]:
                on_error(msg)
    # stage 2, keyed by actor: findings merged by key, incidents per actor across partitions
    for i in range(workers):
        stage.update(i, results[i]["findings"], whole=True)
    findings, incidents = stage.publish()
    before = set().union(*(results[i]["before"] for i in range(workers)))
    stage.lake.prune(settings.retention_days)
    summary.findings = len(findings)
    summary.new_findings = len(set(findings) - before)
    summary.seconds = time.perf_counter() - t0
    summary.cpu_seconds += time.process_time() - c0
    per_worker = [{"partition": i, "events": p.events, "run_cpu_seconds": p.cpu_seconds, "process_cpu_seconds": results[i]["process_cpu_seconds"],
                   "seconds": p.seconds, "endpoints": p.endpoints} for i, p in enumerate(parts)]
    return summary, per_worker

