"""Each sink delivers to a real receiver on loopback."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from pathlib import Path

import orjson
import pytest

from apiward.alert.base import Alert, DeliveryError
from apiward.alert.cef import CefConfig, CefSink, cef_line, escape_ext, escape_header
from apiward.alert.ecs import EcsConfig, EcsSink
from apiward.alert.ocsf import OcsfConfig, OcsfSink
from apiward.alert.splunk import SplunkConfig, SplunkSink
from apiward.alert.webhook import WebhookConfig, WebhookSink

from .receivers import HttpReceiver, TcpReceiver, UdpReceiver

T = 1_740_900_000.0


def alert(**kw) -> Alert:
    base = dict(id="I-abc", kind="incident", severity="high", title="alice (203.0.113.9): BOLA | cross owner", summary="read 30 records\nof others; a=b",
                actor="user:alice", actor_display="alice (203.0.113.9)", client_ip="203.0.113.9", endpoint="GET /orders/{id}",
                detector="bola.cross_owner_access", detectors=["bola.cross_owner_access"], owasp=["API1:2023"], attack=["T1213"],
                tactics=["collection"], cwe=["CWE-639"], confidence=0.9, first_seen=T, last_seen=T + 60, events=30,
                event_ids=["e1", "e2"], findings=["F-1"], incident="I-abc")
    base.update(kw)
    return Alert(**base)


@pytest.fixture()
def http():
    r = HttpReceiver()
    yield r
    r.stop()


def test_webhook_signs_and_delivers(http: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_KEY", "s3cret")
    sink = WebhookSink("soc", WebhookConfig(url=http.url + "/hook", secret_env="HOOK_KEY", retries=1))
    sink.send([alert()])
    path, headers, body = http.requests[0]
    assert path == "/hook" and orjson.loads(body)["alerts"][0]["id"] == "I-abc"
    ts = headers["x-apiward-timestamp"]
    want = "sha256=" + hmac.new(b"s3cret", ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-apiward-signature"], want)
    assert headers["idempotency-key"] == "I-abc:1"
    assert "s3cret" not in repr(sink.cfg) or sink.cfg.secret == ""  # the key came from the environment


def test_webhook_retries_with_backoff_then_gives_up(http: HttpReceiver) -> None:
    http.status = 503
    sink = WebhookSink("soc", WebhookConfig(url=http.url, retries=3, backoff=0.05))
    t0 = time.perf_counter()
    with pytest.raises(DeliveryError, match="503"):
        sink.send([alert()])
    assert len(http.requests) == 3 and time.perf_counter() - t0 >= 0.15
    http.status, http.requests[:] = 200, []
    sink.send([alert()])
    assert len(http.requests) == 1


def test_ocsf_detection_finding_and_api_activity(http: HttpReceiver, tmp_path: Path) -> None:
    calls = [{"id": "e1", "ts": T, "method": "GET", "host": "bank.test", "path": "/orders/7", "template": "/orders/{id}", "status": 200,
              "actor": "user:alice", "actor_user": "alice", "client_ip": "203.0.113.9", "user_agent": "ua"}]
    sink = OcsfSink("ocsf", OcsfConfig(url=http.url + "/ocsf"), lookup=lambda a: calls)
    sink.send([alert(), alert(id="I-2", action="update", version=2, severity="critical")])
    lines = [orjson.loads(x) for x in http.requests[0][2].splitlines()]
    assert http.requests[0][1]["content-type"] == "application/x-ndjson"
    df = [x for x in lines if x["class_uid"] == 2004]
    api = [x for x in lines if x["class_uid"] == 6003]
    assert len(df) == 2 and len(api) == 2
    d = df[0]
    assert d["type_uid"] == 200401 and d["severity_id"] == 4 and d["finding_info"]["uid"] == "I-abc"
    assert d["finding_info"]["attacks"][0]["technique"]["uid"] == "T1213" and d["finding_info"]["attacks"][0]["tactic"]["uid"] == "TA0009"
    assert d["metadata"]["version"].startswith("1.") and d["metadata"]["product"]["name"] == "apiward"
    assert df[1]["activity_id"] == 2 and df[1]["type_uid"] == 200402 and df[1]["severity_id"] == 5
    a = api[0]
    assert a["type_uid"] == 600302 and a["api"]["response"]["code"] == 200 and a["src_endpoint"]["ip"] == "203.0.113.9"
    # the same lines to a file
    out = tmp_path / "ocsf.jsonl"
    OcsfSink("f", OcsfConfig(path=str(out), api_activity=False)).send([alert()])
    assert [orjson.loads(x)["class_uid"] for x in out.read_bytes().splitlines()] == [2004]


def test_ecs_bulk(http: HttpReceiver) -> None:
    http.reply = b'{"took": 1, "errors": false, "items": []}'
    EcsSink("es", EcsConfig(url=http.url, index="sec-apiward")).send([alert()])
    path, headers, body = http.requests[0]
    assert path == "/_bulk" and headers["content-type"] == "application/x-ndjson"
    action, doc = [orjson.loads(x) for x in body.splitlines()]
    assert action == {"index": {"_index": "sec-apiward", "_id": "I-abc:1"}}
    assert doc["event"]["kind"] == "alert" and doc["ecs"]["version"].startswith("8.")
    assert doc["threat"]["technique"]["id"] == ["T1213"] and doc["source"]["ip"] == "203.0.113.9" and doc["user"]["name"] == "alice"
    assert doc["url"]["path"] == "/orders/{id}" and doc["http"]["request"]["method"] == "GET"
    http.reply = b'{"errors": true, "items": [{"index": {"error": "mapping"}}]}'
    with pytest.raises(DeliveryError, match="bulk errors"):
        EcsSink("es", EcsConfig(url=http.url)).send([alert()])


def test_cef_escaping() -> None:
    assert escape_header("a|b\\c\nd") == "a\\|b\\\\c d"
    assert escape_ext("a=b\\c\nd|e") == "a\\=b\\\\c\\nd|e"
    line = cef_line(alert())
    head = re.split(r"(?<!\\)\|", line)
    assert head[:7] == ["CEF:0", "apiward", "apiward", head[3], "bola.cross_owner_access", "alice (203.0.113.9): BOLA \\| cross owner", "8"]
    assert "msg=read 30 records\\nof others; a\\=b" in line and "src=203.0.113.9" in line and "cs1=API1:2023" in line


def test_cef_over_udp_rfc5424() -> None:
    rx = UdpReceiver()
    try:
        CefSink("siem", CefConfig(host="127.0.0.1", port=rx.port, protocol="udp", hostname="probe")).send([alert()])
        msg = rx.recv().decode()
    finally:
        rx.stop()
    m = re.match(r"^<(\d+)>1 (\S+) probe apiward \d+ alert - (CEF:0\|.*)$", msg, re.S)
    assert m, msg
    assert int(m.group(1)) == 10 * 8 + 3  # authpriv, error (high)
    assert m.group(2).startswith("2025-03-02T") and m.group(2).endswith("Z")


def test_cef_over_tcp_octet_counting() -> None:
    rx = TcpReceiver()
    sink = CefSink("siem", CefConfig(host="127.0.0.1", port=rx.port, protocol="tcp"))
    try:
        sink.send([alert(), alert(id="I-2", severity="critical")])
        sink.close()
        deadline = time.time() + 5
        while len(rx.frames() if rx.data else []) < 2 and time.time() < deadline:
            time.sleep(0.02)
        frames = rx.frames()
    finally:
        rx.stop()
    assert len(frames) == 2 and frames[1].startswith(b"<82>1 ")  # authpriv, critical
    assert all(b"CEF:0|apiward|apiward|" in f for f in frames)


def test_splunk_hec(http: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEC", "tok-123")
    http.reply = b'{"text":"Success","code":0}'
    SplunkSink("splunk", SplunkConfig(url=http.url, token_env="HEC", index="sec")).send([alert(), alert(id="I-2")])
    path, headers, body = http.requests[0]
    assert path == "/services/collector/event" and headers["authorization"] == "Splunk tok-123"
    events = [orjson.loads(x) for x in body.splitlines()]
    assert [e["event"]["id"] for e in events] == ["I-abc", "I-2"] and events[0]["index"] == "sec"
    assert events[0]["sourcetype"] == "apiward:alert" and events[0]["time"] == T + 60
    http.status, http.reply = 403, b'{"text":"Invalid token","code":4}'
    with pytest.raises(DeliveryError, match="Invalid token"):
        SplunkSink("splunk", SplunkConfig(url=http.url, token="bad")).send([alert()])
