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

__all__ = ["Bad", "Reader", "ReadOptions", "Record", "make_request", "make_response", "DEFAULT_BODY_CAP"]

DEFAULT_BODY_CAP = 1 << 20  # 1 MiB kept per body; the rest is cut and flagged


class Bad(msgspec.Struct, frozen=True):
    """A record that could not be read: why, and its raw bytes (capped)."""

    reason: str
    raw: bytes = b""


Record = tuple[int, "ApiCall | Bad"]


class ReadOptions(msgspec.Struct, kw_only=True):
    """Reader knobs that come from the command line or config."""

    body_cap: int = DEFAULT_BODY_CAP
    source_name: str = ""  # the file name used in event ids (basename)


class Reader(Protocol):
    """A source format. ``name`` is what ``--format`` takes; ``sniff`` rates
    how likely the first bytes of a file are this format (0 to 1)."""

    name: ClassVar[str]
    description: ClassVar[str]

    def sniff(self, head: bytes, filename: str) -> float: ...

    def read(self, stream: BinaryIO, opts: ReadOptions) -> Iterator[Record]: ...


_TEXTUAL = {"json", "form", "multipart", "xml", "text", ""}


def _body_fields(body: bytes, content_type: str, cap: int, declared_size: int | None = None) -> dict:
    size = declared_size if declared_size is not None and declared_size > len(body) else len(body)
    kind = body_kind(content_type)
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
        return {
            "body": b"",
            "body_size": size,
            "body_sha256": hashlib.sha256(body).hexdigest() if body else None,
            "truncated": size > len(body),
        }
    truncated = size > len(body)
    if len(body) > cap:
        body = body[:cap]
        truncated = True
    return {"body": body, "body_size": size, "truncated": truncated}


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
    hdrs = [(k.lower(), v) for k, v in (headers or [])]
    ct = ""
    cookie_header = []
    for k, v in hdrs:
        if k == "content-type" and not ct:
            ct = v
        elif k == "cookie":
            cookie_header.append(v)
        elif k == "host" and not host:
            host = v
    if cookies is None:
        cookies = {}
        for line in cookie_header:
            for part in line.split(";"):
                name, sep, value = part.strip().partition("=")
                if sep and name:
                    cookies[name] = value
    return Request(
        method=method.upper(),
        scheme=scheme,
        host=host,
        path=path or "/",
        query=query or [],
        headers=hdrs,
        cookies=cookies,
        content_type=ct,
        http_version=http_version,
        **_body_fields(body, ct, cap, body_size),
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
    hdrs = [(k.lower(), v) for k, v in (headers or [])]
    ct = ""
    for k, v in hdrs:
        if k == "content-type":
            ct = v
            break
    return Response(
        status=int(status),
        reason=reason,
        headers=hdrs,
        content_type=ct,
        **_body_fields(body, ct, cap, body_size),
    )
