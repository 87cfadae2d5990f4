"""The streaming JSON splitter: element boundaries, chunk independence,
and the batch path falling back to element-by-element around bad records."""

from __future__ import annotations

import io
import json

import msgspec
import pytest

from apiward.ingest.jsonl import Broken, JsonSplitter

from .readers_support import bads, calls, read_bytes


class Item(msgspec.Struct):
    k: int
    s: str = ""


LIST = msgspec.json.Decoder(list[Item])
TRICKY = [{"k": i, "s": s} for i, s in enumerate(['}, {"k": 1', "]", "\\", '"', "{[", "é", "x" * 5000, "", "\n"] * 30)]


def _split(data: bytes, path=(), chunk=1 << 20, batch=None) -> list:
    out = []
    for x in JsonSplitter(io.BytesIO(data), path, chunk, batch):
        out.append(msgspec.json.decode(x, type=Item) if isinstance(x, bytes) else x)
    return out


@pytest.mark.parametrize("chunk", [7, 100, 4096, 1 << 20])
@pytest.mark.parametrize("batch", [None, LIST])
def test_array_elements_independent_of_chunk_and_batch(chunk, batch):
    data = json.dumps({"meta": {"x": [1, {"entries": "decoy"}]}, "wrap": {"entries": TRICKY}}, indent=1).encode()
    got = _split(data, ("wrap", "entries"), chunk, batch)
    assert [(g.k, g.s) for g in got] == [(t["k"], t["s"]) for t in TRICKY]


@pytest.mark.parametrize("chunk", [5, 64, 1 << 20])
def test_value_sequences(chunk):
    data = b'{"k": 1}\n\n{"k": 2, "s": "a\\nb"}\n  {\n "k": 3\n}\n{"k":4}{"k":5}'
    assert [g.k for g in _split(data, (), chunk)] == [1, 2, 3, 4, 5]


def test_malformed_value_in_sequence_resyncs_on_next_line():
    data = b'{"k": 1}\n{"k": 2 oops}\n{"k": 3}\n'
    out = list(JsonSplitter(io.BytesIO(data)))
    assert isinstance(out[1], Broken) and out[0] == b'{"k": 1}' and out[2].strip() == b'{"k": 3}'


def test_batch_path_falls_back_around_bad_entries(tmp_path):
    def entry(i):
        return {"startedDateTime": "2025-01-01T00:00:00Z", "request": {"method": "GET", "url": f"http://h/{i}"}, "response": {"status": 200}}

    entries = [entry(i) for i in range(300)]
    del entries[200]["request"]["method"]
    text = json.dumps({"log": {"entries": entries}})
    text = text.replace('"http://h/150"', '"http://h/150" junk', 1)
    recs = read_bytes("har", text.encode(), tmp_path, "many.har")
    assert [i for i, _ in recs] == list(range(300))
    assert [b.reason.split(":")[0] for b in bads(recs)] == ["invalid JSON", "invalid record"]
    assert [i for i, r in recs if not hasattr(r, "request")] == [150, 200]
    assert calls(recs)[-1].request.path == "/299" and calls(recs)[-1].id == "many.har#299"
