"""Shared helpers for the reader tests: sample paths and a reader runner."""

from __future__ import annotations

import os

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




__all__ = ["sample", "read_all", "read_bytes", "calls", "bads"]
