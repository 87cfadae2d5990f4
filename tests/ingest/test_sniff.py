"""Sniffing picks the right reader for every sample and rejects junk."""

from __future__ import annotations

import gzip

import pytest

from apiward.ingest.registry import SNIFF_BYTES, UnknownFormat, get_reader, read_file, reader_names, sniff
from apiward.model.call import dumps
from apiward.testing import make_call

from .readers_support import sample

MATRIX = {
    "sample.har": "har",
    "apiclarity.json": "apiclarity",
    "akto.jsonl": "akto",
    "atrdf.json": "atrdf",
    "csic.txt": "raw-http",
    "nginx.jsonl": "nginx",
    "envoy.jsonl": "envoy",
}


def _head(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(SNIFF_BYTES)


@pytest.mark.parametrize("name,fmt", sorted(MATRIX.items()))
def test_sniff_matrix(name, fmt):
    path = sample(name)
    assert sniff(_head(path), name) == fmt
    # and the winner is clear: every other reader scores lower
    scores = {n: get_reader(n).sniff(_head(path), name) for n in reader_names() if n in MATRIX.values() or n in ("jsonl", "mitmproxy")}
    assert max(scores, key=scores.get) == fmt
    assert sorted(scores.values())[-2] < scores[fmt]


def test_sniff_names_do_not_matter(tmp_path):
    # content wins over a misleading extension
    p = tmp_path / "traffic.har"
    p.write_bytes(open(sample("akto.jsonl"), "rb").read())
    assert read_file(str(p))[0] == "akto"


def test_sniff_apiward_jsonl_and_gzip(tmp_path):
    p = tmp_path / "events.jsonl.gz"
    p.write_bytes(gzip.compress(dumps(make_call("GET", "/x")) + b"\n"))
    fmt, recs = read_file(str(p))
    assert fmt == "jsonl" and len(list(recs)) == 1


def test_sniff_mitmproxy(tmp_path):
    pytest.importorskip("mitmproxy", reason="mitmproxy extra not installed")
    from mitmproxy import io as mitm_io
    from mitmproxy.test import tflow

    p = tmp_path / "dump"  # no telling extension
    with open(p, "wb") as fo:
        mitm_io.FlowWriter(fo).add(tflow.tflow(resp=True))
    assert sniff(_head(str(p)), "dump") == "mitmproxy"


@pytest.mark.parametrize(
    "junk",
    [b"", b"\x00\x01\x02\x03" * 100, b"hello world\nthis is prose\n", b'{"just": "some json"}\n', b"[1, 2, 3]", b"id,name\n1,a\n"],
)
def test_junk_is_rejected_with_a_clear_message(junk):
    with pytest.raises(UnknownFormat, match="could not recognise the format; pass --format"):
        sniff(junk, "mystery.dat")
