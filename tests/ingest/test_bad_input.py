"""Malformed input never crashes a reader and is never dropped silently:
each bad record becomes a ``Bad`` with a reason naming the problem, and the
good records around it still come through with their own indexes."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from apiward.ingest.base import Bad
from apiward.ingest.registry import UnknownFormat, read_file
from apiward.model.call import dumps
from apiward.testing import make_call

from .readers_support import bads, calls, read_bytes


def _har(entries: list) -> bytes:
    return json.dumps({"log": {"version": "1.2", "creator": {"name": "t"}, "entries": entries}}).encode()


def _entry(i: int, body: str = "{}") -> dict:
    return {
        "startedDateTime": "2025-01-01T00:00:00Z",
        "time": 1,
        "request": {"method": "GET", "url": f"https://x.test/items/{i}", "headers": []},
        "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "application/json"}], "content": {"size": len(body), "text": body}},
    }


def test_har_cut_mid_entry_reads_complete_entries_and_reports_the_cut_one(tmp_path):
    data = _har([_entry(i) for i in range(5)])
    cut = data[: data.index(b"/items/3") + 20]
    recs = read_bytes("har", cut, tmp_path, "cut.har")
    assert [i for i, _ in recs] == [0, 1, 2, 3]
    assert [c.request.path for c in calls(recs)] == ["/items/0", "/items/1", "/items/2"]
    (bad,) = bads(recs)
    assert "truncated" in bad.reason and b"/items/3" in bad.raw


def test_har_gzip_cut_mid_entry(tmp_path):
    rng = random.Random(1)
    entries = [_entry(i, json.dumps({"noise": rng.randbytes(3000).hex()})) for i in range(200)]
    data = gzip.compress(_har(entries))
    p = tmp_path / "cut.har.gz"
    p.write_bytes(data[: len(data) // 2])
    fmt, records = read_file(str(p), "har")
    got = list(records)
    # gzip loses at most the block it was decompressing when the data ran out
    assert 50 < len(calls(got)) < 100, "complete entries before the cut must come through"
    assert "truncated" in bads(got)[-1].reason


def test_line_formats_cut_gzip(tmp_path):
    rows = b"".join(dumps(make_call("GET", f"/r/{i}", id=f"e{i}")) + b"\n" for i in range(400))
    data = gzip.compress(rows)
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(data[: len(data) * 2 // 3])
    got = list(read_file(str(p), "jsonl")[1])
    assert calls(got) and "truncated" in bads(got)[-1].reason


def test_har_invalid_entry_between_good_ones(tmp_path):
    good = _har([_entry(0), _entry(1), _entry(2)])
    broken = good.replace(b'"https://x.test/items/1"', b'"https://x.test/items/1" oops', 1)
    recs = read_bytes("har", broken, tmp_path, "b.har")
    assert [i for i, _ in recs] == [0, 1, 2]
    assert [c.request.path for c in calls(recs)] == ["/items/0", "/items/2"]
    (bad,) = bads(recs)
    assert "invalid JSON" in bad.reason


def test_har_entry_missing_method_names_the_field(tmp_path):
    e = _entry(0)
    del e["request"]["method"]
    recs = read_bytes("har", _har([e, _entry(1)]), tmp_path, "m.har")
    (bad,) = bads(recs)
    assert "method" in bad.reason and "request" in bad.reason
    assert len(calls(recs)) == 1


def test_har_wrong_type_names_the_path(tmp_path):
    e = _entry(0)
    e["response"]["status"] = "two hundred"
    (bad,) = bads(read_bytes("har", _har([e]), tmp_path, "t.har"))
    assert "status" in bad.reason


def test_har_invalid_base64_body(tmp_path):
    e = _entry(0)
    e["response"]["content"] = {"size": 4, "text": "!!!not base64!!!", "encoding": "base64"}
    (bad,) = bads(read_bytes("har", _har([e]), tmp_path, "b64.har"))
    assert "base64" in bad.reason


def test_har_without_entries_is_one_clear_bad(tmp_path):
    (bad,) = bads(read_bytes("har", b'{"something": "else"}', tmp_path, "x.har"))
    assert "log.entries" in bad.reason


def test_huge_body_is_capped_and_flagged(tmp_path):
    big = json.dumps({"blob": "a" * 300_000})
    (call,) = calls(read_bytes("har", _har([_entry(0, big)]), tmp_path, "big.har", body_cap=1000))
    assert len(call.response.body) == 1000
    assert call.response.truncated and call.response.body_size == len(big)
    assert call.response.json() is None  # a cut body is not parsed


def test_huge_entry_larger_than_the_read_chunk(tmp_path):
    big = json.dumps({"blob": "b" * (3 << 20)})  # 3 MiB entry: buffer must grow
    recs = read_bytes("har", _har([_entry(0), _entry(1, big), _entry(2)]), tmp_path, "huge.har")
    assert len(calls(recs)) == 3
    assert calls(recs)[1].response.body_size == len(big) and calls(recs)[1].response.truncated  # over the 1 MiB default cap


def test_jsonl_latin1_and_invalid_utf8(tmp_path):
    good = dumps(make_call("GET", "/ok", id="a"))
    latin1 = dumps(make_call("GET", "/caf\u00e9", id="b")).replace("caf\u00e9".encode(), "caf\u00e9".encode("latin-1"))
    junk = b'{"id": "c", "request": {"method": "GET", "path": "/\xff\xfe"}}'
    recs = read_bytes("jsonl", b"\n".join([good, latin1, junk, good]) + b"\n", tmp_path, "enc.jsonl")
    assert [i for i, _ in recs] == [0, 1, 2, 3]
    b1, b2 = bads(recs)
    assert "UTF-8" in b1.reason and "UTF-8" in b2.reason
    assert len(calls(recs)) == 2


def test_jsonl_invalid_json_and_missing_fields(tmp_path):
    lines = [b'{"id": "x", "request": {"method": "GET"', b'[1, 2]', b'{"request": {"method": "GET"}}', b"\x00\x01\x02binary"]
    recs = read_bytes("jsonl", b"\n".join(lines) + b"\n", tmp_path, "bad.jsonl")
    assert len(recs) == 4 and len(bads(recs)) == 4
    reasons = [b.reason for b in bads(recs)]
    assert "truncated" in reasons[0] or "invalid JSON" in reasons[0]
    assert "`id`" in reasons[2]  # the missing required field is named
    assert all(b.raw for b in bads(recs))


def test_akto_bad_header_string_and_missing_method(tmp_path):
    rows = [
        {"path": "/a", "method": "GET", "requestHeaders": "not json", "responseHeaders": "{}", "statusCode": "200"},
        {"path": "/b", "requestHeaders": "{}", "responseHeaders": "{}", "statusCode": "200"},
        {"path": "/c", "method": "GET", "requestHeaders": "{}", "responseHeaders": "{}", "statusCode": "200", "time": "1700000000"},
    ]
    data = b"\n".join(json.dumps(r).encode() for r in rows) + b"\n{broken\n"
    recs = read_bytes("akto", data, tmp_path, "a.jsonl")
    assert [i for i, _ in recs] == [0, 1, 2, 3]
    r = [b.reason for b in bads(recs)]
    assert "requestHeaders" in r[0] and "method" in r[1] and "invalid JSON" in r[2] or "truncated" in r[2]
    assert [c.request.path for c in calls(recs)] == ["/c"]


def test_apiclarity_bad_status_and_base64(tmp_path):
    rows = [
        {"requestID": "1", "request": {"method": "GET", "path": "/", "common": {"body": "%%%"}}},
        {"requestID": "2", "request": {"method": "GET", "path": "/"}, "response": {"statusCode": "abc"}},
    ]
    recs = read_bytes("apiclarity", json.dumps(rows).encode(), tmp_path, "t.json")
    b1, b2 = bads(recs)
    assert "body" in b1.reason and "statusCode" in b2.reason


def test_raw_http_junk_and_truncated_body(tmp_path):
    data = (
        b"this is not http\r\nnor this\r\n\r\n"
        b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /cut HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly-a-bit"
    )
    recs = read_bytes("raw-http", data, tmp_path, "r.txt")
    assert [i for i, _ in recs] == [0, 1, 2]
    b1, b2 = bads(recs)
    assert "request line" in b1.reason and b"not http" in b1.raw
    assert "Content-Length 100" in b2.reason
    assert [c.request.path for c in calls(recs)] == ["/ok"]


def test_nginx_and_envoy_bad_lines(tmp_path):
    data = b'{"remote_addr": "1.2.3.4", "status": 200}\nnot json\n[1]\n'
    r = read_bytes("nginx", data, tmp_path, "n.jsonl")
    assert [b.reason.split(":")[0] for b in bads(r)] == ["invalid record", "invalid JSON", "invalid record"]
    assert "method" in bads(r)[0].reason
    e = read_bytes("envoy", b'{"path": "/x", "response_code": 200}\n', tmp_path, "e.jsonl")
    assert "method" in bads(e)[0].reason


def test_binary_junk_is_rejected_by_sniffing(tmp_path):
    p = tmp_path / "junk.bin"
    p.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(UnknownFormat, match="could not recognise"):
        read_file(str(p))


def test_binary_junk_forced_through_json_readers(tmp_path):
    junk = bytes(range(256)) * 4
    for fmt in ("har", "atrdf", "apiclarity", "akto", "jsonl", "nginx", "envoy", "raw-http"):
        recs = read_bytes(fmt, junk, tmp_path, f"junk.{fmt}")
        assert recs and all(isinstance(r, Bad) for _, r in recs), fmt
        assert all(len(r.raw) <= 4096 for _, r in recs)
