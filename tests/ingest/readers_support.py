"""Shared helpers for the reader tests: sample paths and a reader runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from apiward.ingest.base import Bad, ReadOptions
from apiward.ingest.registry import read_file
from apiward.model.call import ApiCall

SAMPLES = os.path.join(os.path.dirname(__file__), "samples")


def sample(name: str) -> str:
    return os.path.join(SAMPLES, name)


def read_all(path: str, fmt: str | None = None, **opts) -> tuple[str, list]:
    """Read a file through the registry; returns (format, [(index, item)])."""
    f, records = read_file(path, fmt, ReadOptions(**opts) if opts else None)
    return f, list(records)


def read_bytes(fmt: str, data: bytes, tmp_path, name: str = "input", **opts) -> list:
    p = tmp_path / name
    p.write_bytes(data)
    return read_all(str(p), fmt, **opts)[1]


def calls(records: list) -> list[ApiCall]:
    return [r for _, r in records if isinstance(r, ApiCall)]


def bads(records: list) -> list[Bad]:
    return [r for _, r in records if isinstance(r, Bad)]



def analyze(state: Path, *files: Path | str, config: str = "", fmt: str | None = None, timeout: float = 300) -> dict:
    """``apiward analyze --json`` in a subprocess; returns the summary (and
    asserts every file's counts add up: read = stored + quarantined +
    duplicates)."""
    state.mkdir(parents=True, exist_ok=True)
    if config:
        (state / "apiward.toml").write_text(config)
    args = [sys.executable, "-m", "apiward", "analyze", *map(str, files), "--state", str(state), "--json", "-q"]
    if fmt:
        args += ["--format", fmt]
    r = subprocess.run(args, capture_output=True, timeout=timeout, env=dict(os.environ))
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    summary = orjson.loads(r.stdout)
    for name, fc in summary["per_file"].items():
        assert fc["read"] == fc["stored"] + fc["quarantined"] + fc["duplicates"], (name, fc)
    return summary


def lake_rows(state: Path, table: str = "calls") -> list[dict]:
    """Every row of a lake table, read straight from its Parquet files."""
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for p in sorted((state / "lake" / table).glob("date=*/*.parquet")):
        rows.extend(pq.read_table(p).to_pylist())
    return rows


__all__ = ["sample", "read_all", "read_bytes", "calls", "bads", "analyze", "lake_rows"]
