"""Reader registry and format sniffing.

Adding a reader: write ``ingest/<format>.py`` with a class following
:class:`apiward.ingest.base.Reader` and add one line to ``READERS`` below.
Third-party readers register under the ``apiward.readers`` entry point group.
"""

from __future__ import annotations

import gzip
import functools
import importlib
import os
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import BinaryIO

from apiward.ingest.base import Reader, ReadOptions, Record

__all__ = ["READERS", "get_reader", "reader_names", "sniff", "open_file", "read_file", "UnknownFormat"]

# name -> "module:Class"; order breaks sniffing ties.
READERS: dict[str, str] = {
    "jsonl": "apiward.ingest.jsonl:JsonlReader",
    "har": "apiward.ingest.har:HarReader",
    "apiclarity": "apiward.ingest.apiclarity:ApiClarityReader",
    "akto": "apiward.ingest.akto:AktoReader",
    "atrdf": "apiward.ingest.atrdf:AtrdfReader",
    "raw-http": "apiward.ingest.raw_http:RawHttpReader",
    "nginx": "apiward.ingest.nginx:NginxJsonReader",
    "envoy": "apiward.ingest.envoy:EnvoyJsonReader",
    "mitmproxy": "apiward.ingest.mitmflow:MitmproxyReader",
}

SNIFF_BYTES = 64 * 1024


class UnknownFormat(ValueError):
    """No reader recognised the file."""


def _load(spec: str) -> type:
    mod, _, cls = spec.partition(":")
    return getattr(importlib.import_module(mod), cls)


@functools.lru_cache(maxsize=1)
def _all_specs() -> dict[str, str]:
    specs = dict(READERS)
    for ep in entry_points(group="apiward.readers"):
        specs.setdefault(ep.name, ep.value)
    return specs


def reader_names() -> list[str]:
    return list(_all_specs())


def get_reader(name: str) -> Reader:
    specs = _all_specs()
    if name not in specs:
        raise UnknownFormat(f"unknown format {name!r}; known: {', '.join(specs)}")
    return _load(specs[name])()


def open_file(path: str) -> BinaryIO:
    """Open a file for reading, transparently gunzipping ``.gz`` or gzip
    magic."""
    f = open(path, "rb")
    magic = f.read(2)
    f.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.open(f, "rb")  # type: ignore[return-value]
    return f


def sniff(head: bytes, filename: str) -> str:
    """The format whose reader is most confident about ``head``."""
    best, best_score = "", 0.0
    for name in _all_specs():
        try:
            reader = get_reader(name)
        except ImportError:
            continue
        try:
            score = reader.sniff(head, filename)
        except Exception:  # a sniffer must never break ingestion
            score = 0.0
        if score > best_score:
            best, best_score = name, score
    if not best or best_score < 0.2:
        raise UnknownFormat(f"{filename}: could not recognise the format; pass --format (one of {', '.join(reader_names())})")
    return best


def read_file(path: str, fmt: str | None = None, opts: ReadOptions | None = None) -> tuple[str, Iterator[Record]]:
    """Open ``path``, choose its reader (``fmt`` overrides sniffing) and
    return ``(format, records)``."""
    opts = opts or ReadOptions()
    if not opts.source_name:
        opts.source_name = os.path.basename(path)
    f = open_file(path)
    if fmt is None:
        head = f.read(SNIFF_BYTES)
        f.close()
        fmt = sniff(head, os.path.basename(path))
        f = open_file(path)
    reader = get_reader(fmt)

    def records() -> Iterator[Record]:
        try:
            yield from reader.read(f, opts)
        finally:
            f.close()

    return fmt, records()
