"""The calls table: columns built from bytes, memoised header encoding."""

from __future__ import annotations

from apiward.state import codec

import orjson

from apiward.lake.calls import CALLS_SCHEMA, calls_table
from apiward.lake.redact import Redactor, may_hold_secret
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"


def _ctx(call) -> Context:
    return Context(endpoint=EndpointRef(host=call.request.host, method=call.request.method, template=call.request.path))


def test_body_columns_keep_nulls_cut_bodies_and_bad_utf8() -> None:
    plain = make_call("GET", "/a", status=None, id="c#0")  # no body, no response
    bad = make_call("POST", "/b", req_body=b'{"a": "\xff\xfe"}', json={"ok": True}, id="c#1")
    long = make_call("POST", "/c", req_body=("é" * 100).encode(), id="c#2")  # cut mid-character below
    calls = [plain, bad, long]
    table = calls_table(calls, [_ctx(c) for c in calls], Redactor(b"k" * 32), body_cap=51)
    assert table.schema == CALLS_SCHEMA
    rows = table.to_pylist()
    assert rows[0]["req_body"] is None and rows[0]["resp_body"] is None and rows[0]["resp_headers"] is None
    assert rows[1]["req_body"] == '{"a": "\ufffd\ufffd"}'
    assert orjson.loads(rows[1]["resp_body"]) == {"ok": True}
    assert rows[2]["req_body"] == "é" * 25 + "\ufffd"
    assert rows[2]["req_bytes"] == 200


def test_secret_bodies_redacted_through_the_prefilter() -> None:
    call = make_call("POST", "/login", req_json={"Password": "hunter2", "n": "4111 1111 1111 1111"}, json={"t": JWT}, id="s#0")
    row = calls_table([call], [_ctx(call)], Redactor(b"k" * 32), body_cap=16384).to_pylist()[0]
    assert "hunter2" not in row["req_body"] and "4111" not in row["req_body"]
    assert JWT not in row["resp_body"]
    raw = calls_table([call], [_ctx(call)], Redactor(b"k" * 32, enabled=False), body_cap=16384).to_pylist()[0]
    assert "hunter2" in raw["req_body"]


def test_may_hold_secret() -> None:
    assert not may_hold_secret(b'{"items": [{"id": 12, "price": 3.5, "name": "alpha"}]}')
    assert may_hold_secret(b'{"PASSWORD": "x"}')
    assert may_hold_secret(JWT.encode())
    assert may_hold_secret(b'{"n": "4111111111111111"}')


def test_header_json_memo_matches_and_redacts_every_time() -> None:
    red = Redactor(b"k" * 32)
    headers = [("host", "h"), ("authorization", f"Bearer {JWT}"), ("accept", "*/*")]
    first = red.headers_json(headers)
    again = red.headers_json(list(headers))
    assert first == again == orjson.dumps(red.headers(headers))
    assert JWT.encode() not in again
    other = red.headers_json([("host", "h"), ("authorization", "Bearer other-token")])
    assert b"other-token" not in other and other != first
    clone = codec.loads(codec.dumps(red))
    assert clone._headers_json == {} and clone.headers_json(headers) == first
