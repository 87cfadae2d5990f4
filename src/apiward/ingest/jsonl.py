"""apiward's own JSONL events, and the streaming JSON splitter every JSON
reader shares.

:class:`JsonSplitter` cuts a JSON stream into the raw bytes of its records
without ever holding the whole file: the elements of an array (optionally
found under a key path such as HAR's ``log.entries``), or a sequence of
top-level values (JSON lines, concatenated or pretty-printed objects). Each
element's end is found by msgspec's C skipper (decoding as ``msgspec.Raw``
stops at the end of the first value and reports where the trailing bytes
start), so Python runs a few steps per record, not per byte. A pure-Python
bracket scanner is the fallback to resynchronise after a malformed record.

JSONL rule: blank lines are skipped and consume no record index; every
non-blank line is one record (good or bad) and consumes one index.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import msgspec

from apiward.ingest.base import Bad, ReadOptions, Record
from apiward.model.call import ApiCall, loads

__all__ = ["JsonlReader", "JsonSplitter", "Broken", "lines", "read_some", "first_json_line", "decode_error_reason", "BAD_RAW_CAP"]

BAD_RAW_CAP = 4096
_WS = b" \t\r\n"
_raw_decoder = msgspec.json.Decoder(msgspec.Raw)
_TRAILING = "trailing characters (byte "
_TRAILING_MSG = "JSON is malformed: " + _TRAILING
# Everything up to the next bracket outside a string, skipped in C.
_SKIP = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+', re.S)
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.S)
_RESYNC = re.compile(rb"\n(?=[{\[])")


class Broken(msgspec.Struct, frozen=True):
    """A piece of the stream that is not a complete JSON value."""

    reason: str
    raw: bytes


def decode_error_reason(exc: Exception, raw: bytes) -> str:
    """A readable reason for a msgspec decode/validation error."""
    msg = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        return f"invalid record: {msg}"
    if "UTF-8" in msg or "utf-8" in msg:
        return f"invalid UTF-8 in record (wrong encoding? e.g. Latin-1): {msg}"
    if "truncated" in msg:
        return "truncated record: input ends inside a JSON value"
    return f"invalid JSON: {msg}"


def read_some(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes; a compressed stream that ends early (a cut
    ``.gz``) reads as EOF after the last bytes it could decompress."""
    read1 = getattr(stream, "read1", None)
    parts: list[bytes] = []
    try:
        if read1 is None:
            return stream.read(size)
        got = 0
        while got < size:
            piece = read1(size - got)
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
    except (EOFError, OSError):
        pass
    return b"".join(parts)


def lines(stream: BinaryIO) -> Iterator[bytes | Bad]:
    """The lines of ``stream``; a cut compressed stream ends with a ``Bad``."""
    it = iter(stream)
    while True:
        try:
            line = next(it)
        except StopIteration:
            return
        except (EOFError, OSError) as exc:
            yield Bad(f"truncated: compressed input ends early ({exc})", b"")
            return
        yield line


def _learn_separator(buf: bytes, comma: int) -> tuple[bytes, int]:
    """The bytes from the ``}`` closing one array element to the end of the
    next element's first key (``}, {"key":``), and the offset of that
    ``{``; ``(b"", 0)`` when they do not look like that."""
    close = comma - 1
    while close >= 0 and buf[close] in _WS:
        close -= 1
    start = comma + 1
    n = len(buf)
    while start < n and buf[start] in _WS:
        start += 1
    if close < 0 or buf[close] != 0x7D or buf[start : start + 2] != b'{"':
        return b"", 0
    key_end = buf.find(b'":', start + 2, start + 80)
    if key_end < 0 or b"\\" in buf[start:key_end]:
        return b"", 0
    return buf[close : key_end + 2], start - close


def _near_end(msg: str, n: int) -> bool:
    """Whether a malformed-JSON error points at the last bytes of the buffer."""
    i = msg.rfind("(byte ")
    if i < 0:
        return False
    try:
        return int(msg[i + 6 : msg.find(")", i)]) >= n - 8
    except ValueError:
        return False


class JsonSplitter:
    """Streams the raw bytes of JSON records out of ``stream``.

    ``path`` names object keys to descend through before the array of
    records (``("log", "entries")`` for HAR). With an empty path the stream
    is either one array of records or a sequence of values (JSONL,
    concatenated or pretty-printed objects). Yields ``bytes`` for each
    complete value and :class:`Broken` for malformed or truncated pieces.

    With ``batch_decoder`` (a ``Decoder(list[T])``), array elements may also
    come out already decoded as ``T``: once the separator between elements
    is learned (``}``, whitespace, ``{"<first key>":``, which can only occur
    outside strings because a quote inside a JSON string is escaped), the
    buffer up to its last occurrence is decoded as one list in one C call.
    Any failure (a malformed or invalid element, a nested match) falls back
    to the element-by-element path for that stretch, so bad records are
    still reported one by one. Records stay in order either way.
    """

    def __init__(
        self,
        stream: BinaryIO,
        path: tuple[str, ...] = (),
        chunk: int = 1 << 20,
        batch_decoder: msgspec.json.Decoder | None = None,
    ) -> None:
        self.stream = stream
        self.path = path
        self.chunk = chunk
        self.batch_decoder = batch_decoder
        self.buf = b""
        self.pos = 0
        self.base = 0  # stream offset of buf[0]
        self.eof = False
        self._in_array = False

    # -- buffer -----------------------------------------------------------

    def _fill(self) -> bool:
        """Read more input, keeping the unread tail; False at EOF."""
        if self.eof:
            return False
        size = max(self.chunk, len(self.buf) - self.pos)  # doubles for huge records
        data = read_some(self.stream, size)
        if not data:
            self.eof = True
            return False
        self.base += self.pos
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def _peek(self) -> int:
        """The next non-whitespace byte (-1 at EOF), positioned on it."""
        while True:
            buf, n = self.buf, len(self.buf)
            p = self.pos
            while p < n and buf[p] in _WS:
                p += 1
            self.pos = p
            if p < n:
                return buf[p]
            if not self._fill():
                return -1

    def _value_end(self) -> int | None:
        """End offset (into ``buf``) of the value starting at ``pos``, reading
        more input as needed; ``None`` when the input ends inside it.
        Raises ``msgspec.DecodeError`` for malformed JSON."""
        while True:
            try:
                _raw_decoder.decode(memoryview(self.buf)[self.pos :])
            except msgspec.DecodeError as exc:
                msg = str(exc)
                i = msg.find(_TRAILING)
                if i >= 0:
                    j = msg.find(")", i)
                    # msgspec reports the offset just past the first trailing byte
                    return self.pos + int(msg[i + len(_TRAILING) : j]) - 1
                if "truncated" in msg or _near_end(msg, len(self.buf) - self.pos):
                    # (msgspec calls a number cut after its '-' "invalid")
                    if not self._fill():
                        if "truncated" in msg:
                            return None
                        raise
                    continue
                raise
            # The whole rest is one value: the end is not known until more
            # input shows what follows it.
            if not self._fill():
                return len(self.buf.rstrip(_WS))

    def _scan_end(self) -> int | None:
        """Lenient bracket matcher from ``pos`` (used to resynchronise after
        a malformed value); ``None`` if the input ends first."""
        while True:
            buf, p, depth = self.buf, self.pos, 0
            n = len(buf)
            while True:
                p = _SKIP.match(buf, p).end()
                if p >= n or buf[p] == 0x22:  # end of data or an unterminated string
                    break
                c = buf[p]
                p += 1
                if c in b"[{":
                    depth += 1
                else:
                    depth -= 1
                    if depth <= 0:
                        return p
            if not self._fill():
                return None

    def _broken(self, reason: str, end: int | None) -> Broken:
        stop = len(self.buf) if end is None else end
        raw = self.buf[self.pos : min(stop, self.pos + BAD_RAW_CAP)]
        self.pos = stop
        return Broken(reason, raw)

    def _take(self) -> bytes | Broken:
        """The value at ``pos`` (complete, or a Broken piece); advances."""
        start = self.pos
        try:
            end = self._value_end()
        except msgspec.DecodeError as exc:
            reason = f"invalid JSON: {exc}"
            start = self.pos
            if self.path or self._in_array:
                end = self._scan_end()
            else:
                end = self._resync_line()
            self.pos = start
            return self._broken(reason, end)
        if end is None:
            return self._broken("truncated: input ends inside a record", None)
        start = self.pos
        self.pos = end
        return self.buf[start:end].rstrip(_WS)

    def _resync_line(self) -> int | None:
        """For value sequences: the next line that starts a new value."""
        while True:
            m = _RESYNC.search(self.buf, self.pos + 1)
            if m:
                return m.end()
            if not self._fill():
                return None

    # -- navigation ---------------------------------------------------------

    def _descend(self, key: str) -> bool:
        """Inside an object (at its ``{``), move to the value of ``key``."""
        if self._peek() != 0x7B:
            return False
        self.pos += 1
        while True:
            c = self._peek()
            if c == 0x7D or c < 0:  # '}' or EOF
                return False
            if c == 0x2C:  # ','
                self.pos += 1
                continue
            m = _STRING.match(self.buf, self.pos)
            while m is None:
                if not self._fill():
                    return False
                m = _STRING.match(self.buf, self.pos)
            name = msgspec.json.decode(m.group())
            self.pos = m.end()
            if self._peek() != 0x3A:  # ':'
                return False
            self.pos += 1
            self._peek()
            if name == key:
                return True
            end = self._value_end()
            if end is None:
                return False
            self.pos = end

    def __iter__(self) -> Iterator[bytes | Broken]:
        for i, key in enumerate(self.path):
            try:
                found = self._descend(key)
            except msgspec.DecodeError as exc:
                found = False
                yield self._broken(f"invalid JSON before {'.'.join(self.path[: i + 1])}: {exc}", None)
                return
            if not found:
                yield self._broken(f"no {'.'.join(self.path)} array found (is this the right format?)", None)
                return
        c = self._peek()
        if c < 0:
            return
        if c == 0x5B:  # '['
            self._in_array = True
            self.pos += 1
            decode = _raw_decoder.decode
            decode_error = msgspec.DecodeError
            plen = len(_TRAILING_MSG)
            batch = self.batch_decoder
            sep_pat = b""  # learned separator: '}' , ws, '{"firstkey":'
            sep_brace = 0
            guard = 0  # absolute offset: per-element mode until past a failed batch
            while True:
                buf = self.buf
                view = memoryview(buf)
                pos = self.pos
                base = self.base
                while True:
                    if sep_pat and base + pos >= guard:
                        # Batch path: everything up to the last separator in
                        # the buffer decoded as one typed list in one C call.
                        if buf[pos : pos + 1] == b",":  # left by the slow path
                            pos += 1
                        idx = buf.rfind(sep_pat, pos)
                        if idx > pos:
                            try:
                                items = batch.decode(b"".join((b"[", view[pos : idx + 1], b"]")))  # type: ignore[union-attr]
                            except (decode_error, msgspec.ValidationError):
                                guard = base + idx + 1  # find the bad one element by element
                            else:
                                yield from items
                                pos = idx + sep_brace
                                continue
                    # Element path: one C skip per element; the error message
                    # says where the element ends (the separator after it).
                    try:
                        decode(view[pos:])
                    except decode_error as exc:
                        msg = exc.args[0]
                        if msg[:plen] == _TRAILING_MSG:
                            end = pos + int(msg[plen:-1]) - 1
                            sep = buf[end]
                            if sep == 0x2C:  # ','
                                yield buf[pos:end]
                                if batch is not None and not sep_pat:
                                    sep_pat, sep_brace = _learn_separator(buf, end)
                                pos = end + 1
                                continue
                            if sep == 0x5D:  # ']'
                                yield buf[pos:end]
                                return
                    break
                # Slow path: refills, truncation, malformed elements, odd separators.
                self.pos = pos
                c = self._peek()
                if c < 0:
                    return  # array not closed: every complete element was read
                if c == 0x5D:  # ']'
                    return
                if c == 0x2C:
                    self.pos += 1
                    continue
                yield self._take()
        elif self.path:
            yield self._broken(f"{'.'.join(self.path)} is not an array", None)
        else:
            self._in_array = False
            while self._peek() >= 0:
                yield self._take()


def _recap(call: ApiCall, cap: int) -> None:
    """Apply this run's body cap to an event written under a larger one."""
    for msg in (call.request, call.response):
        if msg is not None and len(msg.body) > cap:
            msg.body = msg.body[:cap]
            msg.truncated = True


def first_json_line(head: bytes) -> bytes:
    """The first non-blank line of ``head`` (for sniffers)."""
    for line in head.split(b"\n", 8):
        s = line.strip()
        if s:
            return s
    return b""


class JsonlReader:
    """apiward's own event stream: one :class:`ApiCall` per line, as written
    by :func:`apiward.model.call.dumps`. The event's own ``id`` is kept."""

    name = "jsonl"
    description = "apiward events, one JSON ApiCall per line (apiward's own wire format)"

    def sniff(self, head: bytes, filename: str) -> float:
        line = first_json_line(head)
        if not line.startswith(b"{"):
            return 0.0
        score = 0.0
        if b'"request":{' in line.replace(b" ", b"") and b'"id":' in line.replace(b" ", b""):
            score = 0.6
            try:
                loads(line)
                score = 0.95
            except (msgspec.DecodeError, msgspec.ValidationError):
                pass
        if score and filename.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
            score = min(1.0, score + 0.05)
        return score

    def read(self, stream: BinaryIO, opts: ReadOptions) -> Iterator[Record]:
        index = 0
        for line in lines(stream):
            if type(line) is Bad:
                yield index, line
                return
            if not line.strip():
                continue  # blank lines do not consume an index
            try:
                call: ApiCall | Bad = loads(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                call = Bad(decode_error_reason(exc, line), bytes(line[:BAD_RAW_CAP]))
            else:
                if not call.id:
                    call.id = f"{opts.source_name or self.name}#{index}"
                if not call.source:
                    call.source = self.name
                _recap(call, opts.body_cap)
            yield index, call
            index += 1


def decoded_records(stream: BinaryIO, decoder: msgspec.json.Decoder) -> Iterator[tuple[int, Any, bytes]]:
    """``(index, struct or Bad, raw)`` for each JSON value of a stream (an
    array, a single object or JSON lines), decoded with ``decoder``: the
    shared loop of the readers whose records are JSON objects."""
    for index, raw in enumerate(JsonSplitter(stream)):
        if type(raw) is Broken:
            yield index, Bad(raw.reason, raw.raw), b""
            continue
        try:
            yield index, decoder.decode(raw), raw
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            yield index, Bad(decode_error_reason(exc, raw), raw[:4096]), raw

