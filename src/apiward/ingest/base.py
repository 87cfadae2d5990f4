"""What every reader shares: the reader protocol, bad-record reporting and
the helpers that build messages with the body cap applied.

A reader turns one file (or stream) into ``(record_index, item)`` pairs in
order, where ``item`` is an :class:`ApiCall` or a :class:`Bad` describing a
malformed record. Readers never raise on bad records: they yield ``Bad`` and
go on; the pipeline quarantines and counts them. Readers stream: memory stays
constant whatever the file size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import BinaryIO, ClassVar, Protocol

import msgspec

from apiward.model.call import ApiCall, Request, Response, body_kind

__all__ = [
    "Bad",
    "Reader",
    "ReadOptions",
    "Record",
    "build_request",
    "build_response",
    "lower_headers",
    "lower_name",
    "make_request",
    "make_response",
    "DEFAULT_BODY_CAP",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_RECORD_BYTES",
]

DEFAULT_BODY_CAP = 1 << 20  # 1 MiB kept per body; the rest is cut and flagged


class Bad(msgspec.Struct, frozen=True):
    """A record that could not be read: why, and its raw bytes (capped)."""

    reason: str
    raw: bytes = b""


Record = tuple[int, "ApiCall | Bad"]


DEFAULT_MAX_RECORD_BYTES = 32 << 20  # one record's (decompressed) bytes; a longer one is quarantined unread
DEFAULT_MAX_DEPTH = 256  # JSON nesting of one record


class ReadOptions(msgspec.Struct, kw_only=True):
    """Reader knobs that come from the command line or config.

    The limits bound what one record or file may cost, whatever the input
    (a gzip bomb, one endless line, a 100,000-deep array): a record over a
    limit is skipped without being held and quarantined with the reason;
    0 means no limit."""

    body_cap: int = DEFAULT_BODY_CAP
    source_name: str = ""  # the file name used in event ids (basename)
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES  # bytes of one JSON record (HAR entry, array element)
    max_line_bytes: int = DEFAULT_MAX_RECORD_BYTES  # bytes of one line of a line format
    max_depth: int = DEFAULT_MAX_DEPTH  # JSON nesting of one record
    max_file_bytes: int = 0  # decompressed bytes read from one file; the rest is reported, not read
    max_gzip_ratio: int = 200  # a compressed file expanding more (past 64 MiB) is a bomb: the rest is reported, not read


class Reader(Protocol):
    """A source format. ``name`` is what ``--format`` takes; ``sniff`` rates
    how likely the first bytes of a file are this format (0 to 1)."""

    name: ClassVar[str]
    description: ClassVar[str]

    def sniff(self, head: bytes, filename: str) -> float: ...

    def read(self, stream: BinaryIO, opts: ReadOptions) -> Iterator[Record]: ...


_TEXTUAL = {"json", "form", "multipart", "xml", "text", ""}

_LOWER: dict[str, str] = {}  # header names repeat: lower-case each spelling once


def lower_name(name: str) -> str:
    """``name.lower()``, memoised (bounded): header names repeat endlessly."""
    low = _LOWER.get(name)
    if low is None:
        low = name.lower()
        if len(_LOWER) >= 4096:
            _LOWER.clear()
        _LOWER[name] = low
    return low


def lower_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Header pairs with lower-cased names (a new list)."""
    get = _LOWER.get
    return [(get(k) or lower_name(k), v) for k, v in headers]


def _body_parts(
    body: bytes, content_type: str, cap: int, declared_size: int | None = None
) -> tuple[bytes, int, bool, str | None]:
    """``(body kept, full size, truncated, sha256 of a binary body)``: the
    cap applied, binary bodies dropped and hashed instead."""
    n = len(body)
    size = declared_size if declared_size is not None and declared_size > n else n
    kind = body_kind(content_type) if content_type else ""
    if kind == "" and body:
        # Unknown type: keep it if it looks like text, hash it if binary.
        sample = body[:512]
        if b"\x00" in sample:
            kind = "binary"
        else:
            try:
                sample.decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.start < len(sample) - 4:
                    kind = "binary"
    if kind == "binary":
        return b"", size, size > n, hashlib.sha256(body).hexdigest() if body else None
    truncated = size > n
    if n > cap:
        body = body[:cap]
        truncated = True
    return body, size, truncated, None


def _body_fields(body: bytes, content_type: str, cap: int, declared_size: int | None = None) -> dict:
    body, size, truncated, sha = _body_parts(body, content_type, cap, declared_size)
    return {"body": body, "body_size": size, "truncated": truncated, "body_sha256": sha}


def build_request(
    hdrs: list[tuple[str, str]],
    method: str,
    path: str,
    query: list[tuple[str, str]],
    body: bytes,
    scheme: str,
    host: str,
    http_version: str,
    cap: int,
    body_size: int | None,
    cookies: dict[str, str] | None = None,
) -> Request:
    """:func:`make_request` for readers whose header names are already
    lower-case (``hdrs`` is kept, not copied)."""
    ct = ""
    cookie_header = None
    for k, v in hdrs:
        if k == "content-type":
            if not ct:
                ct = v
        elif k == "cookie":
            if cookie_header is None:
                cookie_header = [v]
            else:
                cookie_header.append(v)
        elif k == "host" and not host:
            host = v
    if cookies is None:
        cookies = {}
        if cookie_header is not None:
            for line in cookie_header:
                for part in line.split(";"):
                    name, sep, value = part.strip().partition("=")
                    if sep and name:
                        cookies[name] = value
    kept, size, truncated, sha = _body_parts(body, ct, cap, body_size)
    return Request(
        method=method if method.isupper() else method.upper(),
        scheme=scheme,
        host=host,
        path=path or "/",
        query=query,
        headers=hdrs,
        cookies=cookies,
        content_type=ct,
        http_version=http_version,
        body=kept,
        body_size=size,
        truncated=truncated,
        body_sha256=sha,
    )


def make_request(
    *,
    method: str,
    path: str,
    query: list[tuple[str, str]] | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    scheme: str = "http",
    host: str = "",
    cookies: dict[str, str] | None = None,
    http_version: str = "HTTP/1.1",
    cap: int = DEFAULT_BODY_CAP,
    body_size: int | None = None,
) -> Request:
    """A :class:`Request` with lower-cased header names, content type and
    cookies filled from the headers when not given, and the body capped."""
    return build_request(
        lower_headers(headers) if headers else [],
        method, path, query or [], body, scheme, host, http_version, cap, body_size, cookies,
    )


def build_response(
    hdrs: list[tuple[str, str]], status: int, reason: str, body: bytes, cap: int, body_size: int | None
) -> Response:
    """:func:`make_response` for already lower-cased header names."""
    ct = ""
    for k, v in hdrs:
        if k == "content-type":
            ct = v
            break
    kept, size, truncated, sha = _body_parts(body, ct, cap, body_size)
    return Response(
        status=int(status),
        reason=reason,
        headers=hdrs,
        content_type=ct,
        body=kept,
        body_size=size,
        truncated=truncated,
        body_sha256=sha,
    )


def make_response(
    *,
    status: int,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    reason: str = "",
    cap: int = DEFAULT_BODY_CAP,
    body_size: int | None = None,
) -> Response:
    """A :class:`Response` with lower-cased header names and the body capped."""
    return build_response(lower_headers(headers) if headers else [], status, reason, body, cap, body_size)
