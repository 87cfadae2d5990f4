"""Values that overflow, nest or are absurd quarantine their own record
with a reason and never stop the run or take neighbours with them (issue
10, item 3). Run through ``apiward analyze`` in a subprocess: the counts of
every file add up (read = stored + quarantined) in ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from apiward.model.call import dumps
from apiward.testing import make_call

from .readers_support import analyze, bads, calls, lake_rows, read_bytes


def _jsonl_with_ts(path: Path, ts_literal: str) -> None:
    """Two events; the first's ``ts`` written as the raw JSON literal."""
    first = dumps(make_call("GET", "/first", id="first", status=200))
    second = dumps(make_call("GET", "/second", id="second", status=200))
    bad = first.replace(b'"ts":1764000000.0', b'"ts":' + ts_literal.encode())
    assert bad != first
    path.write_bytes(bad + b"\n" + second + b"\n")


def _quarantine(state: Path) -> list[dict]:
    return [orjson.loads(line) for p in (state / "quarantine").glob("*.bad.jsonl") for line in p.read_bytes().splitlines()]


@pytest.mark.parametrize(
    "literal, field",
    [("1e20", "ts"), ("-1e20", "ts"), ("1e300", "ts"), ("-62135596800", "ts"), ("-5", "ts")],
)
def test_absurd_timestamp_quarantines_its_record_only(tmp_path: Path, literal: str, field: str) -> None:
    data = tmp_path / "events.jsonl"
    _jsonl_with_ts(data, literal)
    state = tmp_path / "state"
    s = analyze(state, data)
    fc = s["per_file"][str(data)]
    assert (fc["read"], fc["stored"], fc["quarantined"]) == (2, 1, 1)
    assert s["stage_errors"] == {}
    (q,) = _quarantine(state)
    assert q["record"] == 0 and q["reason"].startswith(f"invalid record: {field}")
    assert [r["id"] for r in lake_rows(state)] == ["second"]
    # and again: a rerun neither aborts nor stores anything twice
    s2 = analyze(state, data)
    assert s2["per_file"][str(data)]["read"] == 0 and len(lake_rows(state)) == 1


def test_nan_and_huge_status_and_duration(tmp_path: Path) -> None:
    good = dumps(make_call("GET", "/ok", id="ok", status=200))
    nan_ts = good.replace(b'"id":"ok"', b'"id":"nan"').replace(b'"ts":1764000000.0', b'"ts":NaN')
    status = good.replace(b'"id":"ok"', b'"id":"st"').replace(b'"status":200', b'"status":7000000')
    dur = good.replace(b'"id":"ok"', b'"id":"du"').replace(b'"duration_ms":12.0', b'"duration_ms":-1e300')
    data = tmp_path / "mixed.jsonl"
    data.write_bytes(b"\n".join([nan_ts, good, status, dur]) + b"\n")
    state = tmp_path / "state"
    s = analyze(state, data)
    fc = s["per_file"][str(data)]
    assert (fc["read"], fc["stored"], fc["quarantined"]) == (4, 1, 3)
    reasons = [q["reason"] for q in _quarantine(state)]
    assert "invalid JSON" in reasons[0]  # NaN is not JSON
    assert "response.status 7000000" in reasons[1]
    assert "duration_ms" in reasons[2]


def test_100000_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    a = json.loads(dumps(make_call("GET", "/a", id="a", status=200)))
    a["extra"] = {"k": "v"}
    deep = json.dumps(a)[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    rest = [dumps(make_call("GET", f"/n{i}", id=f"n{i}", status=200)).decode() for i in range(3)]
    data = tmp_path / "deep.jsonl"
    data.write_text("\n".join([deep, *rest]) + "\n")
    state = tmp_path / "state"
    s = analyze(state, data, fmt="jsonl")
    fc = s["per_file"][str(data)]
    assert (fc["read"], fc["stored"], fc["quarantined"]) == (4, 3, 1)
    (q,) = _quarantine(state)
    assert "nested deeper than max_depth" in q["reason"]


def _entry(i: int, ts: str = "2025-01-01T00:00:00Z") -> dict:
    return {
        "startedDateTime": ts,
        "time": 1,
        "request": {"method": "GET", "url": f"https://x.test/items/{i}", "headers": [{"name": "Accept", "value": "*/*"}]},
        "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "application/json"}], "content": {"size": 2, "text": "{}"}},
    }


@pytest.mark.parametrize("indent", [None, 2])
def test_garbled_har_entry_with_open_bracket_keeps_the_six_after_it(tmp_path: Path, indent: int | None) -> None:
    entries = [json.dumps(_entry(i), indent=indent) for i in range(8)]
    k = entries[1].index("]")  # request.headers is never closed
    entries[1] = entries[1][:k] + entries[1][k + 1 :]
    data = tmp_path / "garbled.har"
    data.write_text('{"log": {"version": "1.2", "entries": [' + ", ".join(entries) + "]}}")
    state = tmp_path / "state"
    s = analyze(state, data)
    fc = s["per_file"][str(data)]
    assert (fc["read"], fc["stored"], fc["quarantined"]) == (8, 7, 1)
    paths = sorted(r["path"] for r in lake_rows(state))
    assert paths == sorted(f"/items/{i}" for i in range(8) if i != 1)
    (q,) = _quarantine(state)
    assert q["record"] == 1 and "invalid JSON" in q["reason"]


def test_unparseable_har_timestamps_are_quarantined_not_1970(tmp_path: Path) -> None:
    entries = [_entry(0), _entry(1, "0000-01-01T00:00:00Z"), _entry(2, "yesterday"), _entry(3, "0001-01-01T00:00:00+00:00"), _entry(4)]
    data = tmp_path / "ts.har"
    data.write_text(json.dumps({"log": {"entries": entries}}))
    state = tmp_path / "state"
    s = analyze(state, data)
    fc = s["per_file"][str(data)]
    assert (fc["read"], fc["stored"], fc["quarantined"]) == (5, 2, 3)
    rows = lake_rows(state)
    assert all(r["ts"].year == 2025 for r in rows)
    reasons = [q["reason"] for q in _quarantine(state)]
    assert "startedDateTime" in reasons[0] and "0000-01-01" in reasons[0]
    assert "'yesterday'" in reasons[1]
    assert "ts -62135596800" in reasons[2]


def test_deep_har_entry_is_quarantined_and_neighbours_kept(tmp_path: Path) -> None:
    deep = json.dumps(_entry(1))[:-1] + ', "_x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    data = b'{"log": {"entries": [' + json.dumps(_entry(0)).encode() + b"," + deep.encode() + b"," + json.dumps(_entry(2)).encode() + b"]}}"
    recs = read_bytes("har", data, tmp_path, "deep.har")
    assert [c.request.path for c in calls(recs)] == ["/items/0", "/items/2"]
    (bad,) = bads(recs)
    assert "nested deeper" in bad.reason


@pytest.mark.parametrize("fmt, line", [
    ("nginx", b'{"remote_addr": "1.2.3.4", "request": "GET /x HTTP/1.1", "status": 200, "msec": "1e300"}'),
    ("nginx", b'{"remote_addr": "1.2.3.4", "request": "GET /x HTTP/1.1", "status": "1e400"}'),
    ("nginx", b'{"remote_addr": "1.2.3.4", "request": "GET /x HTTP/1.1", "status": 200, "time_local": "00/Foo/0000:99:99:99 +0000"}'),
    ("envoy", b'{"method": "GET", "path": "/x", "response_code": 200, "start_time": "0000-00-00T00:00:00Z"}'),
    ("akto", b'{"path": "/x", "method": "GET", "requestHeaders": "{}", "responseHeaders": "{}", "statusCode": "1e999", "time": "1"}'),
])
def test_access_log_absurd_values(tmp_path: Path, fmt: str, line: bytes) -> None:
    good = {
        "nginx": b'{"remote_addr": "1.2.3.4", "request": "GET /ok HTTP/1.1", "status": 200, "msec": "1764000000.5"}',
        "envoy": b'{"method": "GET", "path": "/ok", "response_code": 200, "start_time": "2025-01-01T00:00:00Z"}',
        "akto": b'{"path": "/ok", "method": "GET", "requestHeaders": "{}", "responseHeaders": "{}", "statusCode": "200", "time": "1764000000"}',
    }[fmt]
    recs = read_bytes(fmt, line + b"\n" + good + b"\n", tmp_path, f"x.{fmt}")
    assert [i for i, _ in recs] == [0, 1]
    assert len(bads(recs)) == 1 and bads(recs)[0].reason.startswith("invalid record")
    assert [c.request.path for c in calls(recs)] == ["/ok"]
