"""What every event must satisfy before it enters the pipeline.

Readers turn source fields into an :class:`ApiCall`; a value that is
well-formed JSON but absurd (``"ts": 1e20``, a NaN duration, status
``7000000``, a year-0 date) would overflow later, in a day partition, an
Arrow column or a detector's window, and stop a run far from its cause.
:func:`check_call` names the first such field so the record is quarantined
with that reason and its neighbours go on. :func:`json_too_deep` bounds the
nesting of one JSON record before any decoder recurses into it.

Cost: a few comparisons per call; the depth check is two ``bytes.count``
calls unless a record has more brackets than the limit.
"""

from __future__ import annotations

import math
import re

from apiward.model.call import ApiCall

__all__ = ["MAX_TS", "MIN_TS", "check_call", "json_too_deep"]

MIN_TS = 0.0  # 1970-01-01: 0 is also what readers use for "no timestamp"
MAX_TS = 253402300799.0  # 9999-12-31T23:59:59Z, the last second a day partition can name
MAX_DURATION_MS = 1e12  # ~31 years
MAX_BODY_SIZE = (1 << 63) - 1
MAX_METHOD = 64


def _bad_float(name: str, v: float, lo: float, hi: float) -> str | None:
    if not math.isfinite(v):
        return f"invalid record: {name} is {v!r} (not a finite number)"
    if v < lo or v > hi:
        return f"invalid record: {name} {v!r} is outside {lo:g}..{hi:g}"
    return None


def check_call(call: ApiCall) -> str | None:
    """The reason ``call`` cannot be stored, naming the field; ``None`` when
    every value is in range. One chain of comparisons for the usual call (a
    NaN fails every comparison and takes the slow path)."""
    try:
        d = call.duration_ms
        req = call.request
        resp = call.response
        if (
            MIN_TS <= call.ts <= MAX_TS
            and (d is None or 0.0 <= d <= MAX_DURATION_MS)
            and 0 < len(req.method) <= MAX_METHOD
            and 0 <= req.body_size <= MAX_BODY_SIZE
            and (resp is None or (100 <= resp.status <= 999 and 0 <= resp.body_size <= MAX_BODY_SIZE))
            and 0 <= call.src.port <= 65535
            and 0 <= call.dst.port <= 65535
        ):
            return None
    except TypeError:
        pass
    return _explain(call)


def _explain(call: ApiCall) -> str | None:
    """:func:`check_call`'s slow path: which field, and why."""
    ts = call.ts
    if not isinstance(ts, (int, float)):
        return f"invalid record: ts is {type(ts).__name__}, not a number"
    if ts != ts or ts < MIN_TS or ts > MAX_TS:
        why = _bad_float("ts", float(ts), MIN_TS, MAX_TS)
        return (why or f"invalid record: ts {ts!r} out of range") + " (Unix seconds from 1970 to 9999)"
    d = call.duration_ms
    if d is not None:
        why = _bad_float("duration_ms", float(d), 0.0, MAX_DURATION_MS)
        if why:
            return why
    req = call.request
    if not req.method or len(req.method) > MAX_METHOD:
        return f"invalid record: request.method {req.method[:80]!r} is empty or longer than {MAX_METHOD} characters"
    if not 0 <= req.body_size <= MAX_BODY_SIZE:
        return f"invalid record: request.body_size {req.body_size} out of range"
    resp = call.response
    if resp is not None:
        if not 100 <= resp.status <= 999:
            return f"invalid record: response.status {resp.status} is not an HTTP status code (100..999)"
        if not 0 <= resp.body_size <= MAX_BODY_SIZE:
            return f"invalid record: response.body_size {resp.body_size} out of range"
    for side, peer in (("src", call.src), ("dst", call.dst)):
        if not 0 <= peer.port <= 65535:
            return f"invalid record: {side}.port {peer.port} is not a port (0..65535)"
    return None


# A JSON string (skipped whole) or any run of bytes without brackets or quotes.
_NOT_BRACKET = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+', re.S)


def json_too_deep(raw: bytes | memoryview, limit: int) -> bool:
    """Whether the JSON text ``raw`` nests deeper than ``limit`` (0: no
    limit). Cheap unless the record has more brackets than ``limit``."""
    if limit <= 0:
        return False
    data = bytes(raw) if isinstance(raw, memoryview) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    p = 0
    n = len(data)
    skip = _NOT_BRACKET.match
    while True:
        p = skip(data, p).end()
        if p >= n or data[p] == 0x22:  # end, or an unterminated string
            return False
        c = data[p]
        p += 1
        if c == 0x5B or c == 0x7B:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
