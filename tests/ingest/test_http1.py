"""The proxy's framing parser: rules, and hypothesis properties.

Properties: on any bytes it raises nothing but its own errors; whatever it
accepts, two lax parsers (one preferring Transfer-Encoding, one preferring
Content-Length, both splitting lines on LF as many servers do) end the
message exactly where it does, so no accepted request can hide another.
The longer run is ``bench/fuzz_proxy.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiward.testing import lax_request_end as lax_end
from apiward.ingest.http1 import (
    HeadError,
    Incomplete,
    parse_chunk_line,
    parse_request,
    parse_response_head,
)

SMUG = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- strategies: requests built from smuggling-prone pieces ---------------------------------

def _mostly(valid: list[bytes], tricks: list[bytes], weight: int = 4) -> st.SearchStrategy[bytes]:
    """Valid pieces most of the time, so whole messages often parse and the
    tricks meet the parser in otherwise well-formed requests."""
    return st.sampled_from(valid * weight + tricks)


_CL_NAMES = _mostly([b"Content-Length", b"content-length"], [b"Content-Length ", b" Content-Length", b"Content-Length\x00"])
_TE_NAMES = _mostly([b"Transfer-Encoding", b"transfer-encoding"], [b" Transfer-Encoding", b"Transfer-Encoding\t", b"Transfer_Encoding"])
_CL_VALUES = st.one_of(
    st.integers(0, 40).map(lambda n: str(n).encode()),
    st.sampled_from([b"+5", b"-1", b"0x5", b"5, 5", b"5 5", b"05", b"", b"18446744073709551621", b"5\x0b"]),
)
_TE_VALUES = _mostly(
    [b"chunked", b"Chunked", b"chunked "],
    [b"xchunked", b"chunked, chunked", b"identity", b"gzip, chunked", b"\x0bchunked", b"chunked\x00", b"", b"chunked;q"],
)
_OTHER = _mostly([b"X-A: 1", b"Accept: */*"], [b"Host: y", b" folded", b"X-B:\x00"])
_SEPS = _mostly([b": ", b":", b":\t"], [b" : ", b":\r\n "])
_EOLS = _mostly([b"\r\n"], [b"\n", b"\r", b"\r\n "], weight=12)
_PLANS = st.sampled_from(["cl", "te", "cl te", "te cl", "te te", "cl cl", "", "cl te te"])


@st.composite
def header_lines(draw) -> bytes:
    """Framing headers in a drawn combination (CL, TE, both, repeated),
    each with possible tricks, among ordinary headers."""
    out = b""
    for kind in draw(_PLANS).split():
        if draw(st.booleans()):
            out += draw(_OTHER) + draw(_EOLS)
        if kind == "cl":
            out += draw(_CL_NAMES) + draw(_SEPS) + draw(_CL_VALUES) + draw(_EOLS)
        else:
            out += draw(_TE_NAMES) + draw(_SEPS) + draw(_TE_VALUES) + draw(_EOLS)
    return out


@st.composite
def chunk_body(draw) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 3))):
        data = draw(st.binary(min_size=1, max_size=20))
        fmt = draw(_mostly([b"%x", b"%X", b"%x;e=v", b"%x ;q"], [b"0x%x", b"+%x", b"%x ", b"%x;", b"%017x", b"%x;e=\"v"]))
        out += (fmt % len(data)) + draw(_EOLS) + data + draw(_mostly([b"\r\n"], [b"", b"\n", b"xx"], weight=8))
    out += draw(_mostly([b"0\r\n\r\n", b"0\r\nT: 1\r\n\r\n"], [b"0\n\n", b"00\r\n\r\n", b"0\r\nT: 1\r\n x\r\n\r\n"]))
    return out


@st.composite
def requests(draw) -> bytes:
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]))
    head = b"POST /a " + version + b"\r\nHost: x\r\n" + draw(header_lines()) + b"\r\n"
    body = draw(st.one_of(chunk_body(), st.binary(max_size=40)))
    return head + body + SMUG


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    b = bytearray(data)
    for pos, byte in edits:
        if b:
            b[pos % len(b)] = byte
    return bytes(b)


# -- properties ---------------------------------------------------------------------------


def _accepted(data: bytes):
    try:
        return parse_request(data)
    except (HeadError, Incomplete):
        return None


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_raise_only_the_parsers_errors(data: bytes) -> None:
    _accepted(data)
    try:
        parse_response_head(data)
    except HeadError as exc:
        assert exc.status == 502


@FUZZ
@given(requests())
def test_accepted_requests_have_one_reading(data: bytes) -> None:
    got = _accepted(data)
    if got is None:
        return
    head, body, consumed = got
    assert not (head.framing.chunked and any(k == "content-length" for k, _ in head.headers))
    assert lax_end(data, prefer_te=True) == consumed
    assert lax_end(data, prefer_te=False) == consumed


@FUZZ
@given(requests(), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=3))
def test_mutated_requests_have_one_reading(data: bytes, edits: list[tuple[int, int]]) -> None:
    data = _mutate(data, edits)
    got = _accepted(data)
    if got is None:
        return
    _, _, consumed = got
    assert lax_end(data, prefer_te=True) == consumed
    assert lax_end(data, prefer_te=False) == consumed


# -- rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line,size",
    [(b"0\r\n", 0), (b"1a\r\n", 26), (b"A;x=y\r\n", 10), (b'5 ; q="a b"\r\n', 5), (b"fffffffffffffff\r\n", 16**15 - 1)],
)
def test_valid_chunk_lines(line: bytes, size: int) -> None:
    assert parse_chunk_line(line) == size


@pytest.mark.parametrize(
    "line",
    [b"0x5\r\n", b"+5\r\n", b"-5\r\n", b"5 \r\n", b"5\n", b"1000000000000000\r\n", b"5;\r\n", b"5;a=\r\n",
     b'5;a="x\r\n', b"5;a\nb\r\n", b"\r\n", b"5;" + b"a" * 5000 + b"\r\n"],
)
def test_invalid_chunk_lines(line: bytes) -> None:
    with pytest.raises(HeadError) as exc:
        parse_chunk_line(line)
    assert exc.value.smuggling


def test_refusal_keeps_what_it_could_read() -> None:
    with pytest.raises(HeadError) as exc:
        parse_request(b"PUT /x?y=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
    err = exc.value
    assert err.status == 400 and err.smuggling and err.start == ("PUT", "/x?y=1", "HTTP/1.1")
    assert ("transfer-encoding", "chunked") in err.headers


def test_whole_requests_parse() -> None:
    head, body, n = parse_request(b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nrest")
    assert (head.method, body, n) == ("POST", b"abc", 70)
    with pytest.raises(Incomplete):
        parse_request(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc")
    head, body, _ = parse_request(b"GET /b HTTP/1.1\r\nHost: x\r\nContent-Length:\t0\t\r\n\r\n")
    assert head.framing.length == 0 and body == b""
