"""The fuzzing harness every reader is held to, shared by the brief
property tests (``test_fuzz_readers.py``) and the long run
(``bench/fuzz_readers.py``): seeds from the real samples, structured
mutations, and :func:`problems`, the invariants one read must keep."""

from __future__ import annotations

import gzip
import io
import os
import re
from collections.abc import Iterator

from apiward.ingest.base import Bad, ReadOptions
from apiward.ingest.registry import get_reader, reader_names
from apiward.lake.calls import calls_table
from apiward.lake.redact import Redactor
from apiward.model.call import ApiCall, dumps
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

try:
    from apiward.ingest.registry import checked
except ImportError:  # an apiward from before event checks (bench/fuzz_readers.py --src)

    def checked(records):  # type: ignore[no-untyped-def]
        return records

SAMPLES = os.path.join(os.path.dirname(__file__), "samples")
SEED_FILES = {
    "har": "sample.har", "apiclarity": "apiclarity.json", "akto": "akto.jsonl", "atrdf": "atrdf.json",
    "raw-http": "csic.txt", "nginx": "nginx.jsonl", "envoy": "envoy.jsonl",
}
# Bytes that break JSON and HTTP in interesting ways, and absurd values.
TOKENS = [
    b"[", b"]", b"{", b"}", b'"', b",", b":", b"\\", b"\n", b"\r\n\r\n", b"\x00", b"\xff\xfe", b"[" * 300, b"{\"a\":" * 50,
    b"1e400", b"-1e20", b"NaN", b"null", b"true", b"-", b"99999999999999999999999", b'"0000-01-01T00:00:00Z"',
    b'"status": 7000000', b'"ts": 1e300', b"Content-Length: 99999999999\r\n", b"Transfer-Encoding: chunked\r\n",
    b"GET / HTTP/1.1\r\n", b'"method": ""', b'"url": "http://[::1"', b'"encoding": "base64"', b"\xc3\x28",
]
KINDS = ("flip", "delete", "insert", "duplicate", "truncate", "replace", "value", "value")
# Values a JSON field may be set to ("value" mutations keep the JSON valid).
VALUES = [
    b"1e20", b"-1e20", b"1e300", b"-1", b"0", b"99999999999999999999999", b"1.5", b"null", b"[]", b"{}", b'""', b'"-"',
    b'"0000-01-01T00:00:00Z"', b'"9999-99-99"', b'"1e400"', b'"NaN"', b'"inf"', b'"\\u0000"', b"[" * 40 + b"]" * 40,
    b'"' + b"A" * 3000 + b'"', b'"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."', b"true", b'"GET"', b'"http://[::1"',
]
_VALUE = re.compile(rb'(?<=:)\s*(-?\d[\d.eE+-]*|"(?:[^"\\]|\\.)*"|true|false|null)')
# Small limits, so the limit paths are walked too.
_TIGHT = {"max_record_bytes": 2048, "max_line_bytes": 2048, "max_depth": 16, "body_cap": 512, "max_file_bytes": 1500}
TIGHT = ReadOptions(**{k: v for k, v in _TIGHT.items() if k in ReadOptions.__struct_fields__})


def fuzz_formats() -> list[str]:
    """Every registered reader that can run here (mitmproxy is an extra)."""
    out = []
    for name in reader_names():
        try:
            get_reader(name)
        except ImportError:
            continue
        if name == "mitmproxy":
            try:
                import mitmproxy  # noqa: F401
            except ImportError:
                continue
        out.append(name)
    return out


def seed(fmt: str) -> bytes:
    """A real sample of ``fmt`` (apiward's own JSONL is written here)."""
    if fmt == "jsonl":
        return b"".join(dumps(make_call("POST", f"/api/items/{i}?q={i}", req_json={"password": "pw", "n": i}, json={"id": i}, status=200,
                                        user=f"u{i}", id=f"e{i}")) + b"\n" for i in range(3))
    name = SEED_FILES.get(fmt)
    if name is None:
        return b""
    with open(os.path.join(SAMPLES, name), "rb") as f:
        return f.read()


def mutate(data: bytes, ops: list[tuple[str, float, float, int]]) -> bytes:
    """``data`` after ``ops``: ``(kind, where, how much, token index)``."""
    for kind, where, amount, tok in ops:
        n = len(data)
        at = int(where * n)
        span = max(1, int(amount * min(n, 200)))
        token = TOKENS[tok % len(TOKENS)]
        if kind == "flip" and n:
            at = min(at, n - 1)
            data = data[:at] + bytes([data[at] ^ (1 << (tok % 8))]) + data[at + 1 :]
        elif kind == "delete":
            data = data[:at] + data[at + span :]
        elif kind == "insert":
            data = data[:at] + token + data[at:]
        elif kind == "duplicate":
            data = data[:at] + data[at : at + span] + data[at:]
        elif kind == "truncate":
            data = data[:at]
        elif kind == "replace":
            data = data[:at] + token + data[at + span :]
        elif kind == "value":
            spots = list(_VALUE.finditer(data))
            if spots:
                m = spots[int(where * len(spots)) % len(spots)]
                data = data[: m.start(1)] + VALUES[tok % len(VALUES)] + data[m.end(1) :]
    return data


def _records(fmt: str, data: bytes, opts: ReadOptions, compressed: bool) -> Iterator[tuple[int, ApiCall | Bad]]:
    if compressed:  # a .gz cut halfway, as a copy interrupted mid-transfer leaves it
        packed = gzip.compress(data)
        stream: io.IOBase = gzip.GzipFile(fileobj=io.BytesIO(packed[: max(10, len(packed) // 2)]))
    else:
        stream = io.BytesIO(data)
    if getattr(opts, "max_file_bytes", 0):  # the registry's file budget (its peek and read paths)
        from apiward.ingest.registry import Budget

        stream = Budget(stream, opts.max_file_bytes)  # type: ignore[assignment]
    opts = ReadOptions(**{f: getattr(opts, f) for f in opts.__struct_fields__})
    opts.source_name = f"fuzz.{fmt}"
    return checked(get_reader(fmt).read(stream, opts))  # type: ignore[arg-type]


_REDACTOR = Redactor(b"f" * 32)


def problems(fmt: str, data: bytes, opts: ReadOptions | None = None, compressed: bool = False) -> list[str]:
    """What one read of ``data`` broke (empty when nothing): an exception
    out of the read loop; records not numbered 0, 1, 2, ...; an item that is
    neither an event nor a Bad with a reason; a raw excerpt over 4 KiB; an
    event whose lake row cannot be built."""
    found: list[str] = []
    try:
        recs = list(_records(fmt, data, opts or ReadOptions(), compressed))
    except Exception as exc:  # noqa: BLE001 - this is what the harness looks for
        return [f"{fmt}: {type(exc).__name__} out of the read loop: {exc}"[:300]]
    if [i for i, _ in recs] != list(range(len(recs))):
        found.append(f"{fmt}: record indexes {[i for i, _ in recs][:20]} are not 0, 1, 2, ...")
    good: list[ApiCall] = []
    for i, item in recs:
        if type(item) is Bad:
            if not item.reason or not isinstance(item.reason, str):
                found.append(f"{fmt}: record {i}: a Bad without a reason")
            if len(item.raw) > 4096:
                found.append(f"{fmt}: record {i}: raw excerpt of {len(item.raw)} bytes")
        elif type(item) is ApiCall:
            good.append(item)
        else:
            found.append(f"{fmt}: record {i}: {type(item).__name__} is neither an ApiCall nor a Bad")
    for call in good:
        try:
            ctx = Context(endpoint=EndpointRef(host=call.request.host, method=call.request.method, template=call.request.path))
            calls_table([call], [ctx], _REDACTOR, 4096)
        except Exception as exc:  # noqa: BLE001
            found.append(f"{fmt}: event {call.id}: lake row fails: {type(exc).__name__}: {exc}"[:300])
    return found
