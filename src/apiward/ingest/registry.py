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

from apiward.ingest.base import Bad, Reader, ReadOptions, Record
from apiward.ingest.validate import check_call
from apiward.model.call import ApiCall, dumps

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


class Budget:
    """A read-only stream that ends after ``limit`` bytes (0: never), so a
    reader of any format reads no more of a file than it may; ``exceeded``
    says the file had more."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream = stream
        self.left = limit
        self.limited = limit > 0
        self.exceeded = False

    def _room(self, n: int | None) -> int | None:
        """How much of a request of ``n`` bytes may still be read."""
        if not self.limited:
            return n
        if self.left <= 0:
            if not self.exceeded and self.stream.read(1):
                self.exceeded = True
            return 0
        return self.left if n is None or n < 0 else min(n, self.left)

    def _took(self, data: bytes) -> bytes:
        if self.limited:
            self.left -= len(data)
        return data

    def read(self, n: int | None = -1) -> bytes:
        room = self._room(n)
        return b"" if room == 0 else self._took(self.stream.read(-1 if room is None else room))

    def read1(self, n: int = -1) -> bytes:
        room = self._room(n)
        if room == 0:
            return b""
        read1 = getattr(self.stream, "read1", self.stream.read)
        return self._took(read1(-1 if room is None else room))

    def readline(self, n: int = -1) -> bytes:
        room = self._room(n)
        return b"" if room == 0 else self._took(self.stream.readline(-1 if room is None else room))

    def peek(self, n: int = 1) -> bytes:
        peek = getattr(self.stream, "peek", None)
        if peek is None or (self.limited and self.left <= 0):
            return b""
        data = peek(n)
        return data[: self.left] if self.limited else data

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.stream.close()


def checked(records: Iterator[Record]) -> Iterator[Record]:
    """``records`` with every event checked (:func:`check_call`): one with an
    absurd value (a year-10^12 timestamp, a NaN duration, status 7000000)
    becomes a ``Bad`` naming the field instead of failing later."""
    for index, item in records:
        if type(item) is ApiCall:
            why = check_call(item)
            if why is not None:
                try:
                    raw = dumps(item)[:4096]
                except Exception:  # noqa: BLE001 - an unencodable value: report without it
                    raw = b""
                item = Bad(why, raw)
        yield index, item


def read_file(path: str, fmt: str | None = None, opts: ReadOptions | None = None) -> tuple[str, Iterator[Record]]:
    """Open ``path``, choose its reader (``fmt`` overrides sniffing) and
    return ``(format, records)``: every event checked, and the file read no
    further than ``opts.max_file_bytes`` (then one ``Bad`` says so)."""
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
    stream = Budget(f, opts.max_file_bytes) if opts.max_file_bytes > 0 else None

    def records() -> Iterator[Record]:
        last = -1
        try:
            for index, item in checked(reader.read(stream or f, opts)):  # type: ignore[arg-type]
                last = index
                yield index, item
            if stream is not None and stream.exceeded:
                yield last + 1, Bad(f"file longer than max_file_bytes ({opts.max_file_bytes:,} bytes decompressed): the rest is not read")
        finally:
            f.close()

    return fmt, records()
