"""A state directory split into partitions (``apiward analyze --workers N``).

Layout::

    <state>/state.db                    the layout only: meta workers = N, partition_key = host; the host map
    <state>/partitions/p<i>/state.db    partition i's state store: everything its pipeline learned
    <state>/lake/                       one lake: every partition writes its own files into it
    <state>/secret                      one key: actor keys and digests agree across partitions

A call belongs to the partition of its API host (:class:`Partitioner`: the
hosts in the first records (``apiward.parallel.SAMPLE``) of the input that made the directory
are placed by their calls, busiest first on the least loaded partition, and
kept in the sealed ``layout`` record; other hosts go by hash): every
record keyed by endpoint (templates, inventory, schemas, endpoint
baselines, per-call detectors) lives in the one partition of its host, and
actor-keyed records are per (host partition, actor). Each partition owns its
records (its own store, its own per-file resume marks), so a partitioned
log could feed the same layout. The actor stage (:mod:`apiward.parallel`)
merges findings by key across partitions and groups them per actor into
incidents.

The read side (:meth:`apiward.state.StateDir.load`) merges the partitions:
endpoint records are disjoint by host; findings with the same id merge.
A state directory is made for one worker count: reusing it with another is
refused (:func:`check_layout`), re-partitioning is not implemented.
"""

from __future__ import annotations

import copy
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from apiward.model.keyed import NO_CAP
from apiward.state import StateDir

__all__ = [
    "Partitioner",
    "balance",
    "load_partitioner",
    "PARTITION_KEY",
    "PartitionDir",
    "check_layout",
    "layout_of",
    "merge_findings",
    "merge_inventory",
    "partition_of",
    "partition_stores",
    "write_layout",
]

#: what a call is partitioned by (documented in ARCHITECTURE.md, "Parallel analysis")
PARTITION_KEY = "host"


def partition_of(host: str, n: int) -> int:
    """The partition of a call to ``host`` out of ``n`` by hash (stable
    across runs, processes and Python's hash randomisation): hosts the
    layout's map does not name."""
    if n <= 1:
        return 0
    return zlib.crc32(host.lower().encode("utf-8", "surrogateescape")) % n


class Partitioner:
    """Host -> partition: the layout's map (hosts placed when the directory
    was made, balanced by their calls in the first input), else the hash."""

    def __init__(self, n: int, hosts: dict[str, int] | None = None) -> None:
        self.n = n
        self.hosts = {h: p for h, p in (hosts or {}).items() if 0 <= p < n}

    def __call__(self, host: str) -> int:
        p = self.hosts.get(host.lower())
        return p if p is not None else partition_of(host, self.n)


def balance(calls_per_host: dict[str, int], n: int) -> dict[str, int]:
    """Place hosts on ``n`` partitions so that their calls are as even as
    they can be: the busiest host first, each on the least loaded
    partition (ties by partition number: deterministic)."""
    load = [0] * n
    out: dict[str, int] = {}
    for host, calls in sorted(calls_per_host.items(), key=lambda hc: (-hc[1], hc[0])):
        p = min(range(n), key=lambda i: (load[i], i))
        out[host] = p
        load[p] += calls
    return out


def load_partitioner(root: Path | str) -> Partitioner:
    """The partitioner of a partitioned state directory (1 partition when
    it is not partitioned)."""
    from apiward import __version__
    from apiward.state.store import StateStore

    sd = StateDir(root)
    if not sd.store_path.exists():
        return Partitioner(1)
    store = StateStore(sd.store_path, sd.secret(), version=__version__, readonly=True)
    try:
        return Partitioner(layout_of(store), (store.load("layout") or {}).get("hosts"))
    finally:
        store.close()


class PartitionDir(StateDir):
    """Partition ``index`` of a state directory: its own store under
    ``partitions/p<index>/``; the lake, the quarantine and the secret are
    the directory's."""

    def __init__(self, root: Path | str, index: int) -> None:
        super().__init__(root)
        self.index = index
        self.part = self.root / "partitions" / f"p{index}"
        self.part.mkdir(parents=True, exist_ok=True)

    @property
    def store_path(self) -> Path:
        return self.part / "state.db"

    @property
    def snapshot_path(self) -> Path:
        return self.part / "state.pkl"  # never exists: partitions came after the pickle


def partition_stores(root: Path | str) -> list[Path]:
    """The partitions' state stores that exist, in partition order."""
    base = Path(root) / "partitions"
    if not base.is_dir():
        return []
    found = [(int(p.name[1:]), p / "state.db") for p in base.glob("p*") if p.name[1:].isdigit() and (p / "state.db").exists()]
    return [p for _, p in sorted(found)]


def layout_of(store: Any) -> int:
    """The worker count a state store's directory was made with (1: one
    pipeline, the default)."""
    v = store.meta("workers")
    try:
        return int(v) if v is not None else 1
    except ValueError:
        return 1


def check_layout(store: Any, workers: int, root: Path | str) -> None:
    """Refuse, naming ``--workers``, a state directory made with another
    worker count (its records are owned by other partitions)."""
    from apiward.state.store import StateError

    made = layout_of(store)
    if made == 1 and workers > 1 and set(store.components()) - {"layout"}:
        raise StateError(
            f"{root}: this state directory was made by one pipeline (--workers 1, the default); --workers {workers} "
            "needs a state directory partitioned for it from the start (re-partitioning is not implemented). "
            "Run without --workers, or use a new --state."
        )
    if made > 1 and made != workers:
        raise StateError(
            f"{root}: this state directory was made with --workers {made}; its state is partitioned for {made} workers "
            f"(re-partitioning is not implemented). Run with --workers {made}, or use a new --state."
        )


def write_layout(store: Any, workers: int, hosts: dict[str, int] | None = None) -> None:
    """Record the worker count and, for a new directory, the host map (a
    MAC-sealed record: a changed map would split hosts' state)."""
    if hosts is not None:
        store.save({"layout": {"hosts": hosts}})
    store.set_meta("workers", str(workers))
    store.set_meta("partition_key", PARTITION_KEY)


def merge_findings(parts: Iterable[Iterable[Any]]) -> dict[str, Any]:
    """Findings of every partition, those with the same id merged into one
    (events add up, seen times widen, the most severe wins). Inputs are
    not changed."""
    out: dict[str, Any] = {}
    for findings in parts:
        for f in findings:
            cur = out.get(f.id)
            if cur is None:
                out[f.id] = copy.deepcopy(f)
            else:
                cur.merge(f, new_events=f.events)
    return out


def merge_inventory(into: Any, other: Any) -> Any:
    """Fold partition ``other``'s inventory into ``into`` for reading:
    endpoint and probe records and template trees are disjoint by host
    (each host lives in one partition); the change log and counters add
    up. Not for learning: the result is a read model."""
    put = OrderedDict.__setitem__  # a read model: held whole, never evicted or spilled
    into.endpoints.cap = NO_CAP
    for key, rec in other.endpoints.each():
        put(into.endpoints, key, rec)
    into.probes.update(other.probes)
    into.templater._trees.update(other.templater._trees)
    into.templater._roots.update(other.templater._roots)
    into.templater._specific_of.update(other.templater._specific_of)
    into.templater._shape_depths.update(other.templater._shape_depths)
    into.templater._cache.clear()
    into.total += other.total
    into.probes_dropped += other.probes_dropped
    into.clock = max(into.clock, other.clock)
    starts = [s for s in (into.start, other.start) if s]
    into.start = min(starts) if starts else 0.0
    into.warm = into.warm or other.warm
    into.orphans = [*into.orphans, *other.orphans]
    into.spec_source = into.spec_source or other.spec_source
    into.spec_diffed_at = max(into.spec_diffed_at, other.spec_diffed_at)
    for k, v in other._created_by.items():
        into._created_by.setdefault(k, []).extend(v)
    log, olog = into.changes, other.changes
    merged = sorted([*log.recent, *olog.recent], key=lambda ch: getattr(ch, "ts", 0.0))
    log.recent.clear()
    log.recent.extend(merged[-log.recent.maxlen:] if log.recent.maxlen else merged)
    log.open = [*log.open, *olog.open]
    return into
