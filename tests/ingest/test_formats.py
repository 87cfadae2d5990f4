"""Each reader turns its sample into the expected events."""

from __future__ import annotations

import os

import pytest

from apiward.ingest.atrdf import atrdf_labels
from apiward.ingest.base import Bad
from apiward.model.call import dumps
from apiward.testing import make_call

from .readers_support import bads, calls, read_all, read_bytes, sample

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")


def test_har_fields_and_quirks():
    fmt, recs = read_all(sample("sample.har"))
    assert fmt == "har"
    assert [i for i, _ in recs] == [0, 1, 2, 3]
    a, b, c, d = calls(recs)
    assert a.id == "sample.har#0" and a.source == "har"
    assert a.ts == pytest.approx(1740819600.25)  # +01:00 offset applied
    assert a.duration_ms == 42.5
    assert a.request.scheme == "https" and a.request.host == "api.example.com"
    # decoded path, but %2F kept; the raw path is kept in extra
    assert a.request.path == "/v1/users/42/files/a%2Fb c"
    assert a.extra["raw_path"] == "/v1/users/42/files/a%2Fb%20c"
    assert a.request.query == [("q", "café"), ("tag", "x"), ("tag", "y"), ("empty", ""), ("plus", "a b")]
    assert a.request.http_version == "HTTP/2"
    assert a.request.cookies == {"session": "s1", "theme": "dark"}
    assert a.response.json() == {"id": 42, "name": "alice"}
    assert a.dst.ip == "2001:db8::10" and a.dst.port == 443
    # postData.params rebuilt into a form body; method upper-cased
    assert b.request.method == "POST" and b.request.form() == [("user", "bob"), ("pass", "p&ss w")]
    assert not b.request.truncated
    assert b.dst.port == 8080 and b.ts == pytest.approx(1740819601.0)
    # base64 bodies: binary request hashed, JSON response decoded
    assert c.request.body == b"" and c.request.body_size == 8 and c.request.body_sha256
    assert c.response.json() == {"ok": True}
    assert c.ts == pytest.approx(1740837602.0)  # -05:00
    # status 0: blocked request, no response; negative time -> None
    assert d.response is None and d.duration_ms is None


def test_jsonl_roundtrip_keeps_ids_and_skips_blank_lines(tmp_path):
    c1 = make_call("GET", "/a?x=1", json={"k": 1}, id="evt-1")
    c2 = make_call("POST", "/b", req_json={"n": 2})
    c2.id = ""
    data = dumps(c1) + b"\n\n   \n" + dumps(c2) + b"\n"
    recs = read_bytes("jsonl", data, tmp_path, "events.jsonl")
    assert [i for i, _ in recs] == [0, 1]  # blank lines consume no index
    got = calls(recs)
    assert got[0].id == "evt-1" and got[0].response.json() == {"k": 1}
    assert got[0].request.query == [("x", "1")]
    assert got[1].id == "events.jsonl#1"  # no id: file name + index
    assert got[1].request.json() == {"n": 2}


def test_jsonl_recaps_bodies(tmp_path):
    c = make_call("GET", "/big", body=b"x" * 5000, resp_headers={"content-type": "text/plain"})
    recs = read_bytes("jsonl", dumps(c) + b"\n", tmp_path, "e.jsonl", body_cap=100)
    (got,) = calls(recs)
    assert len(got.response.body) == 100 and got.response.truncated


def test_apiclarity():
    fmt, recs = read_all(sample("apiclarity.json"))
    assert fmt == "apiclarity"
    a, b = calls(recs)
    assert (a.id, b.id) == ("apiclarity.json#0", "apiclarity.json#1")  # apiward's own ids
    assert (a.request_id, b.request_id) == ("req-1", "req-2")  # the gateway's, kept as data
    assert a.ts == 1700000000.0 and a.duration_ms == 125.0
    assert a.request.json() == {"item": 3} and a.request.query == [("dry", "1")]
    assert a.response.status == 201 and a.response.json() is None  # flagged truncated: not parsed
    assert a.response.truncated
    assert (a.src.ip, a.src.port, a.dst.ip, a.dst.port) == ("10.0.1.3", 51514, "10.0.0.7", 8080)
    assert a.workload.namespace == "shop" and a.workload.service == "orders"
    assert b.response is None and b.request.scheme == "https"


def test_apiclarity_single_object_and_jsonl(tmp_path):
    obj = b'{"requestID":"r9","request":{"method":"GET","path":"/x","common":{"headers":[]}},"response":{"statusCode":"200","common":{}}}'
    assert [c.request_id for c in calls(read_bytes("apiclarity", obj, tmp_path, "one.json"))] == ["r9"]
    two = obj + b"\n" + obj.replace(b"r9", b"r10") + b"\n"
    got = calls(read_bytes("apiclarity", two, tmp_path, "two.jsonl"))
    assert [c.request_id for c in got] == ["r9", "r10"] and len({c.id for c in got}) == 2


def test_akto():
    fmt, recs = read_all(sample("akto.jsonl"))
    assert fmt == "akto"
    a, b = calls(recs)
    assert a.id == "akto.jsonl#0" and a.ts == 1700000000.0
    assert a.request.scheme == "https"  # from X-Forwarded-Proto
    assert a.request.host == "app.example.com" and a.request.query == [("fields", "name")]
    assert a.src.ip == "192.0.2.10" and a.response.json() == {"id": 7, "name": "Dan"}
    assert a.extra["akto_collection"] == "123"
    assert b.ts == 1700000000.5  # milliseconds recognised
    assert b.response.status == 401 and b.request.json() == {"user": "eve"}
    assert b.request.host == "app.example.com"  # full URL in path


def test_atrdf_keeps_labels_out_of_events():
    fmt, recs = read_all(sample("atrdf.json"))
    assert fmt == "atrdf"
    a, b = calls(recs)
    assert a.ts == 1669054336.0 and a.request.query == [("val", "9306")]
    assert a.response.status == 200 and a.response.reason == "OK"
    assert b.request.path == "/static/../../etc/passwd"
    for c in (a, b):
        assert b"Attack" not in dumps(c) and "Directory" not in repr(c)
    assert atrdf_labels(sample("atrdf.json")) == [None, "Directory Traversal"]


def test_raw_http_csic_style():
    fmt, recs = read_all(sample("csic.txt"))
    assert fmt == "raw-http"
    a, b, c = calls(recs)
    assert [x.id for x in (a, b, c)] == ["csic.txt#0", "csic.txt#1", "csic.txt#2"]
    assert a.response is None
    assert a.request.query[-1] == ("B1", "Añadir al carrito")  # Latin-1 escape
    assert a.request.cookies == {"JSESSIONID": "1F767F17239C9B670A39E9B10C3825F4"}
    assert b.request.method == "POST" and b.request.body.endswith(b"B1=Ent")
    assert dict(b.request.form())["login"] == "choong"
    assert c.request.path == "/tienda1/global/creditos.jsp" and c.request.host == "localhost:8080"  # origin-form


def test_nginx():
    fmt, recs = read_all(sample("nginx.jsonl"))
    assert fmt == "nginx"
    a, b = calls(recs)
    assert (a.id, b.id) == ("nginx.jsonl#0", "nginx.jsonl#1") and a.request_id == "5f2b9c"
    assert a.ts == pytest.approx(1740823200.123) and a.duration_ms == pytest.approx(12.0)
    assert a.request.header("x-forwarded-for") == "203.0.113.50" and a.request.host == "shop.example.com"
    assert a.response.body_size == 512 and a.response.body == b"" and not a.response.truncated
    assert (a.src.ip, a.src.port) == ("127.0.0.1", 50000)
    assert b.request.method == "DELETE" and b.response.status == 403
    assert b.request.header("user-agent") is None  # "-" is empty
    assert b.ts == 1740823201.0


def test_envoy():
    fmt, recs = read_all(sample("envoy.jsonl"))
    assert fmt == "envoy"
    a, b = calls(recs)
    assert a.id == "envoy.jsonl#0" and a.request_id == "7c4f-aa" and a.duration_ms == 8.0
    assert a.request.query == [("x", "1")] and a.request.host == "reviews:9080"
    assert a.workload.service == "reviews" and a.workload.namespace == "bookinfo"
    assert a.src.ip == "10.1.0.4" and a.response.body_size == 358
    assert b.response is None and b.extra["response_flags"] == "DC"  # response_code 0
    assert b.request.header("user-agent") == "curl/8"  # hyphenated key accepted


def test_mitmproxy_flows(tmp_path):
    pytest.importorskip("mitmproxy", reason="mitmproxy extra not installed")
    from mitmproxy import io as mitm_io
    from mitmproxy.test import tflow

    f1 = tflow.tflow(resp=True)
    f1.request.path = "/api/items?id=5&q=a%20b"
    f1.request.headers["authorization"] = "Bearer tok"
    f1.request.content = b'{"a": 1}'
    f1.request.headers["content-type"] = "application/json"
    f2 = tflow.tflow(resp=False)
    p = tmp_path / "capture.mitm"
    with open(p, "wb") as fo:
        w = mitm_io.FlowWriter(fo)
        w.add(f1)
        w.add(f2)
        w.add(tflow.ttcpflow())
    fmt, recs = read_all(str(p))
    assert fmt == "mitmproxy"
    a, b = calls(recs)
    assert a.id == f1.id and a.request.query == [("id", "5"), ("q", "a b")]
    assert a.request.json() == {"a": 1} and a.response.status == f1.response.status_code
    assert a.src.ip == f1.client_conn.peername[0]
    assert b.response is None
    (bad,) = bads(recs)
    assert "not an HTTP flow" in bad.reason and [i for i, _ in recs] == [0, 1, 2]


def test_mitmproxy_missing_message():
    from apiward.ingest.mitmflow import INSTALL_HINT

    assert "pip install 'apiward[mitmproxy]'" in INSTALL_HINT


@pytest.mark.skipif(not os.path.isdir(DATA), reason="../shared/data not present")
def test_real_csic_and_atrdf_read_without_bad_records():
    for name, fmt, n in (("csic2010/anomalous-dev.txt.gz", "raw-http", 8355), ("atrdf/dataset_1-dev.json.gz", "atrdf", 2130)):
        got_fmt, recs = read_all(os.path.join(DATA, name))
        assert got_fmt == fmt
        assert len(recs) == n and not bads(recs)
    labels = atrdf_labels(os.path.join(DATA, "atrdf/dataset_1-dev.json.gz"))
    assert len(labels) == 2130 and any(labels) and None in labels


def test_every_item_is_call_or_bad():
    for name in ("sample.har", "akto.jsonl", "apiclarity.json", "atrdf.json", "csic.txt", "nginx.jsonl", "envoy.jsonl"):
        _, recs = read_all(sample(name))
        assert recs and all(isinstance(r, Bad) or r.request.method for _, r in recs)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1/users/42?page=2&&limit=&x",
        "HTTPS://user:pw@Api.Example.com:8443/a/b?x=1",
        "http://h",
        "http://h?q=1",
        "http://h/p%2Fq?a=b%20c+d",
        "http://h/p#frag?x=1",
        "/relative/only?x=1",
        "http://[2001:db8::1]:8080/x?y=2",
        "http://h:abc/x",
        "ftp://h/x?a=1=2",
    ],
)
def test_har_url_fast_path_agrees_with_target_parts(url):
    from apiward.ingest.har import _url_parts
    from apiward.ingest.raw_http import host_port, target_parts

    scheme, host, path, query, raw_path = target_parts(url)
    assert _url_parts(url) == (scheme, host, host_port(host, scheme)[1], path, query, raw_path)
    assert _url_parts(url) == _url_parts(url)  # the memoised origin gives the same answer


def test_har_header_names_lowered_and_content_type_fallbacks(tmp_path):
    import orjson

    entry = {
        "startedDateTime": "2025-01-01T00:00:00Z",
        "request": {
            "method": "post",
            "url": "https://h/x",
            "headers": [{"name": "X-Mixed-Case", "value": "1"}, {"name": "COOKIE", "value": "a=1; b=2"}],
            "postData": {"mimeType": "application/json", "text": '{"a": 1}'},
        },
        "response": {"status": 200, "headers": [{"name": "X-Null", "value": None}], "content": {"size": 7, "mimeType": "application/json", "text": '{"b":2}'}},
    }
    p = tmp_path / "t.har"
    p.write_bytes(orjson.dumps({"log": {"entries": [entry, entry]}}))
    _, recs = read_all(str(p))
    for c in calls(recs):
        assert c.request.method == "POST"
        assert c.request.headers[:2] == [("x-mixed-case", "1"), ("cookie", "a=1; b=2")]
        assert c.request.cookies == {"a": "1", "b": "2"}
        assert c.request.content_type == "application/json" and c.request.json() == {"a": 1}
        assert c.response.headers[0] == ("x-null", "")
        assert c.response.content_type == "application/json" and c.response.json() == {"b": 2}
