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
from apiward.ingest.validate import json_too_deep
from apiward.model.call import ApiCall, loads

__all__ = [
    "JsonlReader", "JsonSplitter", "Broken", "lines", "read_chunk", "read_some", "splitter", "first_json_line",
    "decode_error_reason", "BAD_RAW_CAP",
]

BAD_RAW_CAP = 4096
_WS = b" \t\r\n"
_raw_decoder = msgspec.json.Decoder(msgspec.Raw)
_TRAILING = "trailing characters (byte "
_TRAILING_MSG = "JSON is malformed: " + _TRAILING
# Everything up to the next bracket outside a string, skipped in C.
_SKIP = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+', re.S)
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.S)
_RESYNC = re.compile(rb"\n(?=[{\[])")
_WS_RUN = re.compile(rb"[ \t\r\n]*")
_FIRST_KEY = re.compile(rb'\{\s*("(?:[^"\\]|\\.){1,80}?")\s*:')
_STRUCT = re.compile(rb'["\[\]{}]')
_IN_STRING = re.compile(rb'["\\]')
_QUOTE = re.compile(rb'"')
_SCALAR_END = re.compile(rb"[\s,\]}]")
_PAIRS = {0x5D: 0x5B, 0x7D: 0x7B}  # closer -> opener


class _Oversized(Exception):
    """The value being read is longer than the record limit."""


class Broken(msgspec.Struct, frozen=True):
    """A piece of the stream that is not a complete JSON value."""

    reason: str
    raw: bytes


def decode_error_reason(exc: Exception, raw: bytes) -> str:
    """A readable reason for a msgspec decode/validation error."""
    if isinstance(exc, RecursionError):
        return _nesting_reason(0)
    msg = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        return f"invalid record: {msg}"
    if "UTF-8" in msg or "utf-8" in msg:
        return f"invalid UTF-8 in record (wrong encoding? e.g. Latin-1): {msg}"
    if "truncated" in msg:
        return "truncated record: input ends inside a JSON value"
    return f"invalid JSON: {msg}"


def read_chunk(stream: BinaryIO, size: int) -> tuple[bytes, str]:
    """Up to ``size`` bytes and, when a compressed stream ends early (a cut
    ``.gz``), why: it reads as EOF after the last bytes it could decompress."""
    read1 = getattr(stream, "read1", None)
    parts: list[bytes] = []
    try:
        if read1 is None:
            return stream.read(size), ""
        got = 0
        while got < size:
            piece = read1(size - got)
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
    except (EOFError, OSError) as exc:
        return b"".join(parts), str(exc) or type(exc).__name__
    return b"".join(parts), ""


def read_some(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes; a cut compressed stream reads as EOF."""
    return read_chunk(stream, size)[0]


LINE_CHUNK = 1 << 20


def lines(stream: BinaryIO, max_line: int = 0) -> Iterator[bytes | Bad]:
    """The non-blank lines of ``stream`` (with their newline), by the
    stream's own C ``readline`` bounded at ``max_line`` bytes (0: no limit):
    a longer line is read on and dropped chunk by chunk, never held, and
    comes out as a ``Bad``; runs of empty lines are skipped a buffer at a
    time; a cut compressed stream ends with a ``Bad``."""
    readline = stream.readline
    limit = max_line + 1 if max_line > 0 else -1
    peek = getattr(stream, "peek", None)
    while True:
        try:
            line = readline(limit)
        except (EOFError, OSError) as exc:
            yield Bad(f"truncated: compressed input ends early ({exc})", b"")
            return
        if not line:
            return
        if limit > 0 and len(line) > max_line and not line.endswith(b"\n"):
            head, size = line[:BAD_RAW_CAP], len(line)
            cut = ""
            while True:  # the rest of the line, read and dropped
                try:
                    more = readline(LINE_CHUNK)
                except (EOFError, OSError) as exc:
                    cut = str(exc)
                    break
                size += len(more)
                if not more or more.endswith(b"\n"):
                    break
            yield Bad(f"line longer than max_line_bytes ({max_line:,} bytes; {size:,}): not read", head)
            if cut:
                yield Bad(f"truncated: compressed input ends early ({cut})", b"")
                return
            continue
        if line.isspace():
            if peek is not None:
                _skip_blank(stream, peek)
            continue
        yield line


def _skip_blank(stream: BinaryIO, peek: Any) -> None:
    """Consume the empty lines buffered ahead (a gzip of newlines costs a
    read per buffer, not per line)."""
    while True:
        try:
            data = peek(LINE_CHUNK)
        except (EOFError, OSError):
            return
        k = len(data) - len(data.lstrip(b"\r\n"))
        if k == 0:
            return
        try:
            if not stream.read(k):
                return
        except (EOFError, OSError):
            return


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
        max_record: int = 0,
        max_depth: int = 0,
    ) -> None:
        self.stream = stream
        self.path = path
        self.chunk = chunk
        self.batch_decoder = batch_decoder
        self.max_record = max_record  # bytes of one value (0: no limit)
        self.max_depth = max_depth  # nesting of one value (0: only the decoder's own guard)
        self.cut = ""  # why a compressed stream ended early
        self.buf = b""
        self.pos = 0
        self.base = 0  # stream offset of buf[0]
        self.eof = False
        self._in_array = False

    # -- buffer -----------------------------------------------------------

    def _fill(self) -> bool:
        """Read more input, keeping the unread tail; False at EOF. Raises
        :class:`_Oversized` when the tail is already longer than a record
        may be."""
        if self.eof:
            return False
        tail = len(self.buf) - self.pos
        if self.max_record and tail > self.max_record:
            raise _Oversized
        size = max(self.chunk, tail)  # doubles for huge records
        if self.max_record:
            size = min(size, max(self.chunk, self.max_record + 1 - tail))
        data, cut = read_chunk(self.stream, size)
        if cut:
            self.cut = cut
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
            p = _WS_RUN.match(buf, self.pos).end()
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
        """End of the malformed array element at ``pos`` (to resynchronise),
        ``None`` if the input ends first. Where its brackets close in order;
        when they do not match (an open ``[`` in a garbled element), at the
        next ``}, {"<its first key>":``, so a broken element never takes the
        elements after it."""
        sep = self._separator()
        while True:
            buf, start = self.buf, self.pos
            at_sep = sep.search(buf, start + 1) if sep is not None else None
            sep_end = at_sep.start() + 1 if at_sep else None
            end, matched = _bracket_end(buf, start)
            if end is not None and matched:
                return end if sep_end is None else min(end, sep_end)
            if sep_end is not None:
                return sep_end
            if not self._fill():
                return end

    def _separator(self) -> re.Pattern[bytes] | None:
        """``}, {"<first key>":`` for the element at ``pos``: what starts the
        next element (a quote inside a string is escaped, so this cannot
        match inside one)."""
        m = _FIRST_KEY.match(self.buf, self.pos)
        return re.compile(rb"\}\s*,\s*\{\s*" + re.escape(m.group(1)) + rb"\s*:") if m else None

    def _skip_to(self, pattern: re.Pattern[bytes], back: int) -> int:
        """Drop input up to the next match of ``pattern`` after ``pos``, read
        chunk by chunk and searched in C, never held whole; ``pos`` ends on
        the match's start plus ``back`` (or at EOF). Returns bytes dropped."""
        dropped = -self.pos
        buf, p = self.buf, self.pos + 1
        while True:
            m = pattern.search(buf, p)
            if m is not None:
                self.buf, self.pos = buf, m.start() + back
                return dropped + m.start()
            keep = min(len(buf), 256)  # a match may straddle two chunks
            dropped += len(buf) - keep
            self.base += len(buf) - keep
            data, cut = read_chunk(self.stream, max(self.chunk, 1 << 20))
            if cut:
                self.cut = cut
            if not data:
                self.eof = True
                self.base += keep
                self.buf, self.pos = b"", 0
                return dropped + keep
            buf, p = buf[len(buf) - keep :] + data, 0

    def _skip_brackets(self) -> int:
        """Drop the value at ``pos`` by following its strings and brackets
        chunk by chunk (when no separator is known). Returns bytes dropped."""
        depth = 0
        in_str = False
        buf, p = self.buf, self.pos
        dropped = 0
        if buf[p : p + 1] not in (b'"', b"[", b"{"):  # a bare scalar ends at a delimiter
            return self._skip_to(_SCALAR_END, 0)
        while True:
            n = len(buf)
            while p < n:
                if in_str:
                    m = _IN_STRING.search(buf, p)
                    if m is None:
                        p = n
                        break
                    if buf[m.start()] == 0x5C:  # backslash: skip the escaped byte
                        p = m.start() + 2
                        continue
                    in_str = False
                    p = m.end()
                    if depth <= 0:
                        self.buf, self.pos = buf, p
                        return dropped + p
                    continue
                q = _QUOTE.search(buf, p)
                stop = q.start() if q else n
                closes = buf.count(b"]", p, stop) + buf.count(b"}", p, stop)
                if closes < depth:  # cannot close before the quote: one step for the run
                    depth += buf.count(b"[", p, stop) + buf.count(b"{", p, stop) - closes
                    p = stop + 1 if q else n
                    in_str = q is not None
                    continue
                m = _STRUCT.search(buf, p)
                if m is None:
                    p = n
                    break
                c = buf[m.start()]
                p = m.end()
                if c == 0x22:
                    in_str = True
                elif c == 0x5B or c == 0x7B:
                    depth += 1
                else:
                    depth -= 1
                    if depth <= 0:
                        self.buf, self.pos = buf, p
                        return dropped + p
            dropped += n
            carry = p - n  # an escape split across chunks
            self.base += n
            buf, cut = read_chunk(self.stream, max(self.chunk, 1 << 20))
            if cut:
                self.cut = cut
            if not buf:
                self.eof = True
                self.buf, self.pos = b"", 0
                return dropped
            p = carry

    def _oversized(self, reason: str = "") -> Broken:
        """A Broken for the too-long value at ``pos``, which is dropped up to
        the next element (arrays) or the next line starting a value
        (sequences), without ever being held whole."""
        raw = self.buf[self.pos : self.pos + BAD_RAW_CAP]
        if self._in_array or self.path:
            sep = self._separator()
            size = self._skip_to(sep, 1) if sep is not None else self._skip_brackets()
        else:
            size = self._skip_to(_RESYNC, 1)
        why = f"record longer than max_record_bytes ({self.max_record:,} bytes; {size:,} dropped)"
        return Broken(f"{why}; {reason}" if reason else why, raw)

    def _broken(self, reason: str, end: int | None) -> Broken:
        stop = len(self.buf) if end is None else end
        raw = self.buf[self.pos : min(stop, self.pos + BAD_RAW_CAP)]
        self.pos = stop
        return Broken(reason, raw)

    def _take(self) -> bytes | Broken:
        """The value at ``pos`` (complete, or a Broken piece); advances."""
        # (``pos`` stays on the value's first byte: refills keep ``buf[pos:]``)
        try:
            end = self._value_end()
        except _Oversized:
            return self._oversized()
        except (msgspec.DecodeError, RecursionError) as exc:
            reason = _nesting_reason(self.max_depth) if isinstance(exc, RecursionError) else f"invalid JSON: {exc}"
            try:
                end = self._scan_end() if self.path or self._in_array else self._resync_line()
            except _Oversized:
                return self._oversized(reason)
            return self._broken(reason, end)
        if end is None:
            return self._broken("truncated: input ends inside a record", None)
        start = self.pos
        self.pos = end
        value = self.buf[start:end].rstrip(_WS)
        if self.max_depth and json_too_deep(value, self.max_depth):
            return Broken(_nesting_reason(self.max_depth), value[:BAD_RAW_CAP])
        return value

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
            try:
                end = self._value_end()
            except _Oversized:
                self._skip_brackets()
                continue
            except RecursionError:
                end = self._scan_end()
            if end is None:
                return False
            self.pos = end

    def __iter__(self) -> Iterator[bytes | Broken]:
        for i, key in enumerate(self.path):
            try:
                found = self._descend(key)
            except _Oversized:
                found = False
                yield self._broken(f"a key of {'.'.join(self.path[: i + 1])} longer than max_record_bytes", None)
                return
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
            depth = self.max_depth
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
                            except (decode_error, msgspec.ValidationError, RecursionError):
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
                            if depth and (sep == 0x2C or sep == 0x5D) and json_too_deep(view[pos:end], depth):
                                yield Broken(_nesting_reason(depth), buf[pos : min(end, pos + BAD_RAW_CAP)])
                                pos = end + 1
                                if sep == 0x5D:
                                    return
                                continue
                            if sep == 0x2C:  # ','
                                yield buf[pos:end]
                                if batch is not None and not sep_pat:
                                    sep_pat, sep_brace = _learn_separator(buf, end)
                                pos = end + 1
                                continue
                            if sep == 0x5D:  # ']'
                                yield buf[pos:end]
                                return
                    except RecursionError:
                        pass  # the slow path reports it
                    break
                # Slow path: refills, truncation, malformed elements, odd separators.
                self.pos = pos
                try:
                    c = self._peek()
                except _Oversized:  # (cannot happen: _peek only reads past whitespace)
                    return
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


def _bracket_end(buf: bytes, p: int) -> tuple[int | None, bool]:
    """``(end, matched)`` of the value at ``p``: where its outermost bracket
    closes and whether every bracket closed its own opener; ``(None, True)``
    when the buffer ends first."""
    stack: list[int] = []
    n = len(buf)
    while True:
        p = _SKIP.match(buf, p).end()
        if p >= n or buf[p] == 0x22:  # end of data or an unterminated string
            return None, True
        c = buf[p]
        p += 1
        if c == 0x5B or c == 0x7B:
            stack.append(c)
            continue
        if not stack or stack.pop() != _PAIRS[c]:
            return p, False
        if not stack:
            return p, True


def _nesting_reason(limit: int) -> str:
    if limit:
        return f"JSON nested deeper than max_depth ({limit}): not read"
    return "JSON nested deeper than the decoder allows: not read"


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
        named = filename.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz"))
        if not line.startswith(b"{"):
            # blank so far (a run of empty lines) and named like JSONL: a weak yes
            return 0.3 if named and not line else 0.0
        score = 0.0
        if b'"request":{' in line.replace(b" ", b"") and b'"id":' in line.replace(b" ", b""):
            score = 0.6
            try:
                loads(line)
                score = 0.95
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                pass
        if named:
            # a first line longer than the sniffed head still reads as JSONL by its name
            score = min(1.0, score + 0.05) if score else 0.3
        return score

    def read(self, stream: BinaryIO, opts: ReadOptions) -> Iterator[Record]:
        index = 0
        depth = opts.max_depth
        for line in lines(stream, opts.max_line_bytes):  # blank lines do not consume an index
            if type(line) is Bad:
                yield index, line
                index += 1
                continue
            call: ApiCall | Bad
            if depth and json_too_deep(line, depth):
                call = Bad(_nesting_reason(depth), line[:BAD_RAW_CAP])
                yield index, call
                index += 1
                continue
            try:
                call = loads(line)
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
                call = Bad(decode_error_reason(exc, line), bytes(line[:BAD_RAW_CAP]))
            else:
                if not call.id:
                    call.id = f"{opts.source_name or self.name}#{index}"
                if not call.source:
                    call.source = self.name
                _recap(call, opts.body_cap)
            yield index, call
            index += 1


def splitter(stream: BinaryIO, opts: ReadOptions, path: tuple[str, ...] = (), batch_decoder: msgspec.json.Decoder | None = None) -> JsonSplitter:
    """A :class:`JsonSplitter` with the record limits of ``opts``."""
    return JsonSplitter(stream, path, batch_decoder=batch_decoder, max_record=opts.max_record_bytes, max_depth=opts.max_depth)


def decoded_records(stream: BinaryIO, decoder: msgspec.json.Decoder, opts: ReadOptions | None = None) -> Iterator[tuple[int, Any, bytes]]:
    """``(index, struct or Bad, raw)`` for each JSON value of a stream (an
    array, a single object or JSON lines), decoded with ``decoder``: the
    shared loop of the readers whose records are JSON objects."""
    for index, raw in enumerate(splitter(stream, opts or ReadOptions())):
        if type(raw) is Broken:
            yield index, Bad(raw.reason, raw.raw), b""
            continue
        try:
            yield index, decoder.decode(raw), raw
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            yield index, Bad(decode_error_reason(exc, raw), raw[:4096]), raw

