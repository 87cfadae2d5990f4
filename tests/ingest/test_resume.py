"""Files are resumed, not re-read (issue 10, item 5): ``apiward analyze``
twice on the same state stores each record exactly once, for a JSONL that
grew, a file still being written, a rotated file and a re-exported HAR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson

from apiward.model.call import dumps
from apiward.testing import make_call

from .readers_support import analyze


def _count(state: Path) -> tuple[int, int]:
    """``(rows, distinct ids)`` in the lake's calls, by ``apiward query``."""
    r = subprocess.run(
        [sys.executable, "-m", "apiward", "query", "select count(*) as n, count(distinct id) as d from calls", "--format", "json", "--state", str(state)],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )
    assert r.returncode == 0, r.stderr
    (row,) = orjson.loads(r.stdout)
    return row["n"], row["d"]


def _lines(start: int, n: int, tag: str = "e") -> bytes:
    return b"".join(
        dumps(make_call("GET", f"/items/{i % 50}", id=f"{tag}-{i}", status=200, ts=1_764_000_000 + i)) + b"\n" for i in range(start, start + n)
    )


def test_appended_jsonl_stores_each_record_once(tmp_path: Path) -> None:
    data = tmp_path / "events.jsonl"
    data.write_bytes(_lines(0, 1000))
    state = tmp_path / "state"
    s1 = analyze(state, data)
    assert s1["per_file"][str(data)]["stored"] == 1000
    with open(data, "ab") as f:
        f.write(_lines(1000, 500))
    s2 = analyze(state, data)
    fc = s2["per_file"][str(data)]
    assert (fc["read"], fc["stored"], fc["skipped"]) == (500, 500, 1000)
    assert _count(state) == (1500, 1500)
    s3 = analyze(state, data)  # nothing new: nothing read
    assert s3["per_file"][str(data)]["read"] == 0 and _count(state) == (1500, 1500)


def test_a_record_being_written_is_read_when_complete(tmp_path: Path) -> None:
    data = tmp_path / "live.jsonl"
    full = _lines(0, 12)
    cut = full.index(b"\n", full.index(b'"e-10"')) - 40  # record 10 half written
    data.write_bytes(full[:cut])
    state = tmp_path / "state"
    fc = analyze(state, data)["per_file"][str(data)]
    assert (fc["stored"], fc["quarantined"], fc["pending"]) == (10, 0, 1)
    data.write_bytes(full)  # the writer finishes record 10 and adds 11
    fc = analyze(state, data)["per_file"][str(data)]
    assert (fc["read"], fc["stored"], fc["quarantined"], fc["pending"]) == (2, 2, 0, 0)
    assert _count(state) == (12, 12)


def test_a_rotated_file_is_read_from_the_start(tmp_path: Path) -> None:
    data = tmp_path / "app.jsonl"
    data.write_bytes(_lines(0, 300, "old"))
    state = tmp_path / "state"
    analyze(state, data)
    os.rename(data, tmp_path / "app.jsonl.1")
    data.write_bytes(_lines(0, 200, "new"))  # same name, new content, shorter
    fc = analyze(state, data)["per_file"][str(data)]
    assert (fc["read"], fc["stored"], fc["skipped"]) == (200, 200, 0)
    # the rotated file is known by its first bytes under its new name
    old = tmp_path / "app.jsonl.1"
    fc = analyze(state, old)["per_file"][str(old)]
    assert (fc["read"], fc["skipped"]) == (0, 300)
    assert _count(state) == (500, 500)


def _har(entries: list[dict], creator: str) -> bytes:
    return json.dumps({"log": {"version": "1.2", "creator": {"name": creator, "version": "1"}, "entries": entries}}, indent=1).encode()


def _entry(i: int) -> dict:
    return {
        "startedDateTime": f"2025-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
        "time": 5,
        "request": {"method": "GET", "url": f"https://x.test/items/{i % 40}?page={i}", "headers": [{"name": "Accept", "value": "*/*"}]},
        "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "application/json"}], "content": {"size": 9, "text": f'{{"n":{i}}}'}},
    }


def test_a_longer_re_exported_har_stores_each_entry_once(tmp_path: Path) -> None:
    first = tmp_path / "session.har"
    first.write_bytes(_har([_entry(i) for i in range(500)], "browser 1"))
    state = tmp_path / "state"
    analyze(state, first)
    # a later export of the same session: a new head, the old entries and 250 more
    first.write_bytes(_har([_entry(i) for i in range(750)], "browser 2 (re-export)"))
    fc = analyze(state, first)["per_file"][str(first)]
    assert (fc["read"], fc["stored"], fc["duplicates"]) == (750, 250, 500)
    assert _count(state)[0] == 750
    # under another name too
    other = tmp_path / "copy.har"
    other.write_bytes(_har([_entry(i) for i in range(760)], "browser 3"))
    fc = analyze(state, other)["per_file"][str(other)]
    assert (fc["stored"], fc["duplicates"]) == (10, 750)
    assert _count(state)[0] == 760
