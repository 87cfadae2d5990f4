"""HTTP/1.1 message framing as a hardened intermediary reads it (RFC 9110/9112).

Pure functions over bytes, no sockets, so the proxy's parser can be fuzzed
on its own. The rule is the one that defeats request smuggling: a message
whose length two parsers could read differently is refused, never
"repaired" and forwarded. Refused (``HeadError``, ``smuggling`` set):

- both ``Content-Length`` and ``Transfer-Encoding``; ``Transfer-Encoding``
  in HTTP/1.0; more than one ``Transfer-Encoding`` line; any coding other
  than exactly ``chunked`` (``xchunked``, ``chunked, chunked``,
  ``identity``, ``gzip, chunked``);
- a ``Content-Length`` that is not 1 to 15 digits (signs, ``0x``, spaces,
  lists), or repeated (even with the same value);
- obsolete line folding, whitespace before a field name's colon, a bare CR
  or LF, a second ``Host``;
- a chunk size that is not 1 to 15 hex digits, a chunk extension that does
  not follow the grammar or makes the line longer than
  :data:`MAX_CHUNK_LINE`, chunk data not followed by CRLF.

Cost: a regex match per line and per chunk; a few microseconds per head.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "HeadError",
    "Framing",
    "RequestHead",
    "ResponseHead",
    "Incomplete",
    "MAX_CHUNK_LINE",
    "parse_request_head",
    "parse_response_head",
    "request_framing",
    "parse_chunk_line",
    "check_trailer_line",
    "check_chunk_end",
    "parse_request",
]

MAX_CHUNK_LINE = 4096  # bytes of a chunk-size line, extensions included
_CRLF = b"\r\n"
_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN = re.compile(_TCHAR)
_REQUEST_LINE = re.compile(rb"(" + _TCHAR + rb") ([\x21-\x7e\x80-\xff]+) (HTTP/1\.[01])")  # raw UTF-8 targets pass
_STATUS_LINE = re.compile(rb"(HTTP/1\.[01]) ([1-9][0-9]{2})(?: ([\t\x20-\x7e\x80-\xff]*))?")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs but HTAB
_FIELD = _TCHAR + rb":[\t\x20-\x7e\x80-\xff]*"
_FIELDS_OK = re.compile(rb"(?:" + _FIELD + rb"\r\n)*" + _FIELD)  # the common case, checked in one call
_LENGTH = re.compile(rb"[0-9]{1,15}")
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,15})((?:[ \t]*;[ \t]*" + _TCHAR + rb"(?:[ \t]*=[ \t]*(?:" + _TCHAR + rb"|" + _QUOTED + rb"))?)*)\r\n"
)
_OWS = b" \t"
_FRAMING = frozenset({"content-length", "transfer-encoding", "host"})


class HeadError(ValueError):
    """A message the proxy refuses. ``status`` is the answer (400 to a
    client, 502 for an upstream); ``smuggling`` marks an ambiguous framing;
    ``method``/``target``/``version``/``headers`` hold what could be read,
    so the refusal can still be recorded."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        smuggling: bool = False,
        start: tuple[str, str, str] | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.smuggling = smuggling
        self.start = start
        self.headers = headers or []


class Incomplete(Exception):
    """:func:`parse_request` needs more bytes."""


@dataclass(frozen=True, slots=True)
class Framing:
    """How a body is delimited: chunked, a length, or until close."""

    chunked: bool = False
    length: int = 0
    until_close: bool = False


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    version: str
    lines: list[bytes]  # raw lines, request line first
    headers: list[tuple[str, str]]  # (lower-case name, value)
    framing: Framing


@dataclass(frozen=True, slots=True)
class ResponseHead:
    version: str
    status: int
    reason: str
    lines: list[bytes]
    headers: list[tuple[str, str]]
    framing: Framing


def _lenient_headers(lines: list[bytes]) -> list[tuple[str, str]]:
    """Header fields as a lax reader would see them (for the record only)."""
    out = []
    for line in lines:
        name, sep, value = line.partition(b":")
        if sep:
            out.append((name.strip().lower().decode("latin-1"), value.strip().decode("latin-1")))
    return out


def _fields(lines: list[bytes], status: int, fail: dict, block: bytes | None = None) -> list[tuple[str, str]]:
    """Strictly parse field lines; raise :class:`HeadError` on the first bad
    one. ``block`` (the lines joined by CRLF) allows a one-regex fast path."""
    if block is not None and _FIELDS_OK.fullmatch(block):
        out = []
        for line in lines:
            name, _, value = line.partition(b":")
            out.append((name.lower().decode("latin-1"), value.strip(_OWS).decode("latin-1")))
        return out
    headers: list[tuple[str, str]] = []
    for line in lines:
        if not line:
            raise HeadError(status, "empty line inside the head", smuggling=True, **fail)
        if line[0] in _OWS:
            raise HeadError(status, "obsolete line folding", smuggling=True, **fail)
        if b"\r" in line or b"\n" in line:
            raise HeadError(status, "bare CR or LF in a header line", smuggling=True, **fail)
        name, sep, value = line.partition(b":")
        if not sep:
            raise HeadError(status, "header line without a colon", smuggling=True, **fail)
        if not _TOKEN.fullmatch(name):
            raise HeadError(status, "invalid header name (whitespace before the colon?)", smuggling=True, **fail)
        value = value.strip(_OWS)
        lname = name.lower().decode("latin-1")
        if _BAD_VALUE.search(value):
            # In a framing header (or a NUL anywhere) it hides a length from one parser.
            ambiguous = lname in _FRAMING or b"\x00" in value
            raise HeadError(status, f"control character in the {lname} header", smuggling=ambiguous, **fail)
        headers.append((lname, value.decode("latin-1")))
    return headers


def request_framing(headers: list[tuple[str, str]], version: str = "HTTP/1.1", *, fail: dict | None = None) -> Framing:
    """The body framing of a request, or :class:`HeadError` (400) when two
    parsers could disagree on it."""
    fail = fail or {}
    te = [v for k, v in headers if k == "transfer-encoding"]
    cl = [v for k, v in headers if k == "content-length"]
    if te:
        if cl:
            raise HeadError(400, "both Content-Length and Transfer-Encoding", smuggling=True, **fail)
        if version == "HTTP/1.0":
            raise HeadError(400, "Transfer-Encoding in an HTTP/1.0 request", smuggling=True, **fail)
        if len(te) > 1:
            raise HeadError(400, "repeated Transfer-Encoding header", smuggling=True, **fail)
        codings = [c.strip(" \t").lower() for c in te[0].split(",")]
        if codings != ["chunked"]:
            what = "chunked applied more than once" if codings.count("chunked") > 1 else "unsupported transfer coding"
            raise HeadError(400, f"{what}: {te[0][:64]!r}", smuggling=True, **fail)
        return Framing(chunked=True)
    if cl:
        if len(cl) > 1:
            raise HeadError(400, "repeated Content-Length header", smuggling=True, **fail)
        if not _LENGTH.fullmatch(cl[0].encode("latin-1")):
            raise HeadError(400, f"invalid Content-Length: {cl[0][:32]!r}", smuggling=True, **fail)
        return Framing(length=int(cl[0]))
    return Framing()


def parse_request_head(head: bytes) -> RequestHead:
    """Parse a request head (without the final empty line; leading empty
    lines are ignored as RFC 9112 allows)."""
    while head.startswith(_CRLF):
        head = head[2:]
    lines = head.split(_CRLF)
    m = _REQUEST_LINE.fullmatch(lines[0])
    if m is None:
        raise HeadError(400, "malformed request line")
    start = (m[1].decode("latin-1"), m[2].decode("latin-1"), m[3].decode("latin-1"))
    try:
        cut = head.find(_CRLF)
        headers = _fields(lines[1:], 400, {}, head[cut + 2 :] if cut >= 0 else None)
        if sum(1 for k, _ in headers if k == "host") > 1:
            raise HeadError(400, "more than one Host header", smuggling=True)
        framing = request_framing(headers, start[2])
    except HeadError as exc:  # keep what a lax reader sees, for the record
        exc.start, exc.headers = start, _lenient_headers(lines[1:])
        raise
    return RequestHead(start[0], start[1], start[2], lines, headers, framing)


def parse_response_head(head: bytes, method: str = "GET") -> ResponseHead:
    """Parse an upstream's response head; a malformed one is a
    :class:`HeadError` with status 502 (never passed through)."""
    lines = head.split(_CRLF)
    m = _STATUS_LINE.fullmatch(lines[0])
    if m is None:
        raise HeadError(502, "malformed upstream status line")
    version, status, reason = m[1].decode("latin-1"), int(m[2]), (m[3] or b"").decode("latin-1")
    cut = head.find(_CRLF)
    headers = _fields(lines[1:], 502, {}, head[cut + 2 :] if cut >= 0 else None)
    te = [v for k, v in headers if k == "transfer-encoding"]
    cl = [v for k, v in headers if k == "content-length"]
    if te and cl:
        raise HeadError(502, "upstream sent both Content-Length and Transfer-Encoding", smuggling=True)
    if len(cl) > 1 and len(set(cl)) > 1:
        raise HeadError(502, "upstream sent conflicting Content-Length headers", smuggling=True)
    if cl and not _LENGTH.fullmatch(cl[0].encode("latin-1")):
        raise HeadError(502, "upstream sent an invalid Content-Length", smuggling=True)
    if method == "HEAD" or status in (204, 304) or status < 200:
        framing = Framing()
    elif te:
        codings = [c.strip(" \t").lower() for t in te for c in t.split(",")]
        if codings.count("chunked") > 1 or ("chunked" in codings and codings[-1] != "chunked"):
            raise HeadError(502, "upstream sent a misplaced or repeated chunked coding", smuggling=True)
        framing = Framing(chunked=True) if codings[-1] == "chunked" else Framing(until_close=True)
    elif cl:
        framing = Framing(length=int(cl[0]))
    else:
        framing = Framing(until_close=True)
    return ResponseHead(version, status, reason, lines, headers, framing)


def parse_chunk_line(line: bytes) -> int:
    """The size of a chunk from its size line (CRLF included)."""
    if len(line) > MAX_CHUNK_LINE:
        raise HeadError(400, "chunk-size line too long (extension abuse)", smuggling=True)
    m = _CHUNK_LINE.fullmatch(line)
    if m is None:
        raise HeadError(400, f"invalid chunk-size line: {line[:40]!r}", smuggling=True)
    return int(m[1], 16)


def check_trailer_line(line: bytes) -> bool:
    """Validate one trailer line (CRLF included); ``True`` at the final empty line."""
    if line == _CRLF:
        return True
    if not line.endswith(_CRLF) or len(line) > MAX_CHUNK_LINE:
        raise HeadError(400, "invalid trailer line", smuggling=True)
    _fields([line[:-2]], 400, {})
    return False


def check_chunk_end(data: bytes) -> None:
    """Chunk data must be followed by exactly CRLF."""
    if data != _CRLF:
        raise HeadError(400, "chunk data not followed by CRLF", smuggling=True)


def _line(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(b"\n", pos)
    if end < 0:
        if len(data) - pos > MAX_CHUNK_LINE:
            raise HeadError(400, "chunk-size line too long (extension abuse)", smuggling=True)
        raise Incomplete()
    return data[pos : end + 1], end + 1


def parse_request(data: bytes, max_head: int = 64 * 1024) -> tuple[RequestHead, bytes, int]:
    """Parse one whole request from ``data``: (head, decoded body, bytes
    consumed). The same steps the proxy takes on a socket; raises
    :class:`HeadError` or :class:`Incomplete`. Used by tests and fuzzing."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > max_head:
            raise HeadError(431, "request head too large")
        raise Incomplete()
    head = parse_request_head(data[:end])
    pos = end + 4
    f = head.framing
    if not f.chunked:
        if len(data) - pos < f.length:
            raise Incomplete()
        return head, data[pos : pos + f.length], pos + f.length
    body = bytearray()
    while True:
        line, pos = _line(data, pos)
        size = parse_chunk_line(line)
        if size == 0:
            while True:
                line, pos = _line(data, pos)
                if check_trailer_line(line):
                    return head, bytes(body), pos
        if len(data) - pos < size + 2:
            raise Incomplete()
        body += data[pos : pos + size]
        check_chunk_end(data[pos + size : pos + size + 2])
        pos += size + 2
