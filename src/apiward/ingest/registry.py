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


RATIO_FLOOR = 64 << 20  # decompressed bytes before the ratio guard looks


class Budget:
    """A read-only stream that ends after ``limit`` bytes (0: never), or
    once a compressed file expands more than ``max_ratio`` times (past the
    first 64 MiB: a decompression bomb), so a reader of any format reads no
    more of a file than it may. ``exceeded`` says why it stopped early."""

    def __init__(self, stream: BinaryIO, limit: int, *, raw: BinaryIO | None = None, max_ratio: int = 0) -> None:
        self.stream = stream
        self.left = limit
        self.limited = limit > 0
        self.raw = raw if max_ratio > 0 else None
        self.max_ratio = max_ratio
        self.taken = 0
        self.exceeded = ""

    def _room(self, n: int | None) -> int | None:
        """How much of a request of ``n`` bytes may still be read."""
        if self.exceeded:
            return 0
        if self.raw is not None and self.taken > RATIO_FLOOR:
            packed = max(1, self.raw.tell())
            if self.taken > packed * self.max_ratio:
                self.exceeded = (
                    f"compressed file expands more than max_gzip_ratio ({self.max_ratio}x: {self.taken:,} bytes from "
                    f"{packed:,}), a decompression bomb?: the rest is not read"
                )
                return 0
        if not self.limited:
            return n
        if self.left <= 0:
            if self.stream.read(1):
                self.exceeded = f"file longer than max_file_bytes ({self.taken:,} bytes decompressed): the rest is not read"
            return 0
        return self.left if n is None or n < 0 else min(n, self.left)

    def _took(self, data: bytes) -> bytes:
        self.taken += len(data)
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
        if peek is None or self.exceeded or (self.limited and self.left <= 0):
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
    raw = getattr(f, "fileobj", None)  # the compressed file under a GzipFile
    ratio = opts.max_gzip_ratio if raw is not None else 0
    stream = Budget(f, opts.max_file_bytes, raw=raw, max_ratio=ratio) if opts.max_file_bytes > 0 or ratio > 0 else None

    def records() -> Iterator[Record]:
        if stream is None:
            try:
                yield from checked(reader.read(f, opts))
            finally:
                f.close()
            return
        pending: Record | None = None  # held back one: the record the limit cut is reported as cut by it
        try:
            for rec in checked(reader.read(stream, opts)):  # type: ignore[arg-type]
                if pending is not None:
                    yield pending
                pending = rec
            if stream.exceeded:
                if pending is not None and type(pending[1]) is Bad:
                    pending = (pending[0], Bad(f"{stream.exceeded} (the record it cut: {pending[1].reason})", pending[1].raw))
                else:
                    if pending is not None:
                        yield pending
                    pending = ((pending[0] + 1) if pending is not None else 0, Bad(stream.exceeded))
            if pending is not None:
                yield pending
        finally:
            f.close()

    return fmt, records()
