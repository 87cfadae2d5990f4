"""Streaming limits (issue 10, item 4): a record, line or file over its
configured limit is skipped without being held and quarantined with the
reason; the records around it are kept and the counts add up. Smaller bombs
than ``bench/bombs.py`` (which prints wall time and peak RSS)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from apiward.ingest.base import ReadOptions
from apiward.ingest.registry import read_file
from apiward.model.call import dumps
from apiward.testing import make_call

from .readers_support import analyze, bads, calls, lake_rows

MB = 1 << 20


def _entry(i: int, text: str = "{}") -> dict:
    return {
        "startedDateTime": "2025-01-01T00:00:00Z",
        "request": {"method": "GET", "url": f"https://x.test/items/{i}", "headers": []},
        "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "text/plain"}], "content": {"size": 2, "text": text}},
    }


def _har_bomb(path: Path, size: int) -> None:
    """Two entries, one whose text is ``size`` bytes, then six more (gzip)."""
    before = ", ".join(json.dumps(_entry(i)) for i in range(2))
    big = json.dumps(_entry(2, "@"))
    cut = big.index('"text": "') + len('"text": "')
    after = ", ".join(json.dumps(_entry(i)) for i in range(3, 9))
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(('{"log": {"entries": [' + before + ", " + big[:cut]).encode())
        block = b"A" * MB
        for _ in range(size // MB):
            f.write(block)
        f.write((big[cut + 1 :] + ", " + after + "]}}").encode())


def _events(n: int, prefix: str = "ok") -> bytes:
    return b"".join(dumps(make_call("GET", f"/{prefix}/{i}", id=f"{prefix}-{i}", status=200)) + b"\n" for i in range(n))


def test_har_bomb_entry_is_quarantined_and_the_six_after_it_kept(tmp_path: Path) -> None:
    data = tmp_path / "bomb.har.gz"
    _har_bomb(data, 50 * MB)
    state = tmp_path / "state"
    s = analyze(state, data, config="max_record_bytes = 5242880\n")
    fc = s["per_file"][str(data)]
    assert (fc["read"], fc["stored"], fc["quarantined"]) == (9, 8, 1)
    assert "record longer than max_record_bytes (5,242,880 bytes" in next(iter(s["quarantine_reasons"]))
    assert sorted(r["path"] for r in lake_rows(state)) == sorted(f"/items/{i}" for i in range(9) if i != 2)


def test_jsonl_single_huge_line_is_quarantined(tmp_path: Path) -> None:
    data = tmp_path / "line.jsonl.gz"
    with gzip.open(data, "wb", compresslevel=1) as f:
        f.write(_events(2, "a"))
        f.write(b'{"id": "huge", "pad": "' + b"B" * (50 * MB) + b'"}\n')
        f.write(_events(3, "b"))
    state = tmp_path / "state"
    s = analyze(state, data, config="max_line_bytes = 5242880\n")
    fc = s["per_file"][str(data)]
    assert (fc["read"], fc["stored"], fc["quarantined"]) == (6, 5, 1)
    (reason,) = s["quarantine_reasons"]
    assert reason.startswith("line longer than max_line_bytes (5,242,880 bytes")
    assert len(lake_rows(state)) == 5


def test_raw_http_huge_body_and_line(tmp_path: Path) -> None:
    data = tmp_path / "raw.txt"
    big = 8 * MB
    data.write_bytes(
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
        + b"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: " + str(big).encode() + b"\r\n\r\n" + b"x" * big
        + b"GET /" + b"p" * big + b" HTTP/1.1\r\nHost: h\r\n\r\n"
        + b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    recs = list(read_file(str(data), "raw-http", ReadOptions(max_record_bytes=MB, max_line_bytes=MB))[1])
    assert [c.request.path for c in calls(recs)] == ["/a", "/b"]
    reasons = [b.reason for b in bads(recs)]
    assert reasons[0].startswith("body longer than max_record_bytes") and reasons[1].startswith("line longer than max_line_bytes")


def test_blank_line_gzip_bomb_stops_at_the_ratio_guard(tmp_path: Path) -> None:
    data = tmp_path / "blank.jsonl.gz"
    member = gzip.compress(b"\n" * (16 * MB), compresslevel=9)
    data.write_bytes(gzip.compress(_events(2, "a")) + member * 6 + gzip.compress(_events(2, "b")))
    state = tmp_path / "state"
    s = analyze(state, data)
    fc = s["per_file"][str(data)]
    assert (fc["read"], fc["stored"], fc["quarantined"]) == (3, 2, 1)
    (reason,) = s["quarantine_reasons"]
    assert "max_gzip_ratio (200x" in reason
    # with the guard off the whole file is read, still line by line in bounded chunks
    s = analyze(tmp_path / "state2", data, config="max_gzip_ratio = 0\n")
    assert s["per_file"][str(data)]["stored"] == 4


def test_max_file_bytes_stops_reading_and_says_so(tmp_path: Path) -> None:
    data = tmp_path / "many.jsonl"
    data.write_bytes(_events(100))
    one = len(data.read_bytes()) // 100
    recs = list(read_file(str(data), "jsonl", ReadOptions(max_file_bytes=one * 10 + one // 2))[1])
    assert len(calls(recs)) == 10
    assert [b.reason.split(" (")[0] for b in bads(recs)] == ["file longer than max_file_bytes"]
    assert [i for i, _ in recs] == list(range(11))  # the cut record is the one reported


def test_depth_limit_is_configurable(tmp_path: Path) -> None:
    rec = json.loads(dumps(make_call("GET", "/d", id="d", status=200)))
    rec["extra"] = {}
    line = json.dumps(rec)[:-1] + ', "x": ' + "[" * 40 + "]" * 40 + "}"
    data = tmp_path / "d.jsonl"
    data.write_text(line + "\n")
    assert len(bads(list(read_file(str(data), "jsonl", ReadOptions(max_depth=32))[1]))) == 1
    assert len(calls(list(read_file(str(data), "jsonl", ReadOptions(max_depth=64))[1]))) == 1


def test_raw_http_blank_line_bomb_stops_at_the_ratio_guard(tmp_path: Path) -> None:
    data = tmp_path / "blank.txt.gz"
    req = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
    data.write_bytes(gzip.compress(req) + gzip.compress(b"\r\n" * (8 * MB), compresslevel=9) * 6 + gzip.compress(req))
    recs = list(read_file(str(data), "raw-http")[1])
    assert [c.request.path for c in calls(recs)] == ["/a"]
    assert "max_gzip_ratio" in bads(recs)[-1].reason
