"""The event lake on disk: hive-partitioned Parquet under ``<state>/lake``.

Layout::

    lake/calls/date=2026-11-29/part-<batch key>.parquet
    lake/findings/date=2026-11-29/findings.parquet     (rewritten as findings change)
    lake/changes/date=2026-11-29/part-<key>.parquet

Files are written to a temporary name, fsynced, and renamed into place
(then the directory is fsynced), so a reader, a crash or a power cut never
sees half a file; temporaries a kill left behind are removed at start. Batch keys are deterministic for file
input, so a batch re-run after a crash replaces its own file instead of
adding a duplicate.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from apiward.lake.calls import day_of

__all__ = ["Lake", "fsync_path"]


def fsync_path(path: Path | str) -> None:
    """fsync a file or a directory by name (a directory fsync makes a rename
    or a new entry in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

TABLES = ("calls", "findings", "changes", "incidents", "finding_events")


# Free-text columns (headers, bodies, queries) are near-unique per row: a
# dictionary attempt only hashes megabytes before falling back, and min/max
# statistics on them prune nothing. Other columns keep both.
_FREE_TEXT = frozenset({"req_headers", "resp_headers", "req_body", "resp_body", "query"})
_OPTIONS: dict[tuple[str, ...], dict] = {}


def _column_options(schema: pa.Schema) -> dict:
    names = tuple(schema.names)
    opts = _OPTIONS.get(names)
    if opts is None:
        rest = [n for n in names if n not in _FREE_TEXT]
        opts = {} if len(rest) == len(names) else {"use_dictionary": rest, "write_statistics": rest}
        _OPTIONS[names] = opts
    return opts


class Lake:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        for t in TABLES:
            (self.root / t).mkdir(parents=True, exist_ok=True)

    def _atomic_write(self, table: pa.Table, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        pq.write_table(table, tmp, compression="zstd", compression_level=1, **_column_options(table.schema))
        fsync_path(tmp)  # the data is on disk before the name that publishes it
        os.replace(tmp, path)
        fsync_path(path.parent)  # and the rename itself

    def write_partitioned(self, name: str, table: pa.Table, key: str, ts_column: str = "ts") -> int:
        """Write ``table`` split by UTC day of ``ts_column`` as
        ``<name>/date=D/part-<key>.parquet``; returns rows written."""
        if table.num_rows == 0:
            return 0
        ts = table.column(ts_column)
        days = pc.strftime(ts, format="%Y-%m-%d", locale="C") if pa.types.is_timestamp(ts.type) else None
        if days is None:
            raise TypeError(f"{ts_column} must be a timestamp column")
        uniq = pc.unique(days).to_pylist()
        for d in uniq:
            part = table if len(uniq) == 1 else table.filter(pc.equal(days, d))
            self._atomic_write(part, self.root / name / f"date={d}" / f"part-{key}.parquet")
        return table.num_rows

    def replace_days(self, name: str, rows_by_day: dict[str, pa.Table]) -> None:
        """Rewrite whole-day files of a small table (findings, incidents)."""
        for d, table in rows_by_day.items():
            self._atomic_write(table, self.root / name / f"date={d}" / f"{name}.parquet")

    def prune(self, retention_days: int, now: float | None = None) -> list[str]:
        """Delete partitions older than ``retention_days``; returns what went."""
        if retention_days <= 0:
            return []
        cutoff = day_of((now or time.time()) - retention_days * 86400)
        gone = []
        for t in TABLES:
            for p in (self.root / t).glob("date=*"):
                if p.name[5:] < cutoff:
                    shutil.rmtree(p, ignore_errors=True)
                    gone.append(f"{t}/{p.name}")
        return gone

    def clean_temp(self) -> int:
        """Remove temporaries a crash left behind (never read: they start
        with a dot), zero-byte or partial; returns how many."""
        n = 0
        for p in self.root.rglob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
        return n

    def files(self, name: str) -> list[Path]:
        return sorted((self.root / name).glob("date=*/*.parquet"))


def group_by_day(rows: list[dict], ts_key: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        out[day_of(r[ts_key])].append(r)
    return out
