"""The durable outbox: a receiver that is down then back gets every alert
once; one incident makes one alert and its updates; rate limits; the
pipeline hook; Prometheus metrics."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import orjson
import pytest

from apiward.alert.base import Alert
from apiward.alert.dispatcher import AlertDispatcher
from apiward.alert.outbox import Outbox
from apiward.config import load_settings

from .receivers import HttpReceiver

T = 1_740_900_000.0


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def settings(url: str, **alerts):
    return load_settings(sinks={"soc": {"type": "webhook", "url": url, "retries": 1, "timeout": 1.0}},
                         alerts={"min_severity": "low", "retry_base": 1.0, "retry_max": 2.0, **alerts})


def alert(i: int, **kw) -> Alert:
    return Alert(**{"id": f"I-{i}", "kind": "incident", "severity": "high", "title": f"incident {i}", "findings": [f"F-{i}"],
                    "first_seen": T, "last_seen": T, **kw})


def test_receiver_down_then_back_gets_every_alert_once(tmp_path: Path) -> None:
    port = free_port()
    d = AlertDispatcher(tmp_path, settings(f"http://127.0.0.1:{port}/hook"), start=False)
    d.enqueue([alert(i) for i in range(5)])
    assert d.pump() == 0  # nobody listening: kept, not lost
    st = d.outbox.stats()["soc"]
    assert st["pending"] == 5 and st["delivered"] == 0 and st["failed_attempts"] >= 1 and st["last_error"]
    d.close()
    # a restart in between: the outbox is on disk
    rx = HttpReceiver(port=port)
    try:
        d = AlertDispatcher(tmp_path, settings(f"http://127.0.0.1:{port}/hook"), start=False)
        assert d.pump() == 0  # the retry is not due yet (backoff)
        assert d.pump(now=time.time() + 10) == 5
        assert d.pump(now=time.time() + 100) == 0
        d.close()
    finally:
        rx.stop()
    got = [a["id"] for _, _, body in rx.requests for a in orjson.loads(body)["alerts"]]
    assert sorted(got) == [f"I-{i}" for i in range(5)]  # each once


def test_one_incident_one_alert_and_its_updates(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", update_interval=300.0)
    base = alert(1)
    assert ob.enqueue("s", [base], now=T) == 1
    for k in range(1000):  # more events of the same incident: nothing new to say
        assert ob.enqueue("s", [alert(1, events=k)], now=T + k) == 0
    rows = ob.due("s", now=T + 1)
    assert [(r.alert.id, r.alert.version, r.alert.action) for r in rows] == [("I-1", 1, "new")]
    ob.delivered(rows, now=T + 1)
    # a material change (new finding) is an update, paced by update_interval
    assert ob.enqueue("s", [alert(1, findings=["F-1", "F-2"])], now=T + 10) == 1
    assert ob.due("s", now=T + 20) == []
    # a further change before it went out replaces it (still one row waiting)
    assert ob.enqueue("s", [alert(1, findings=["F-1", "F-2", "F-3"], severity="critical")], now=T + 30) == 1
    rows = ob.due("s", now=T + 302)
    assert len(rows) == 1 and rows[0].alert.action == "update" and rows[0].alert.severity == "critical"
    ob.close()


def test_rate_limit_holds_the_rest_in_order(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", rate_per_minute=10)
    ob.enqueue("s", [alert(i) for i in range(25)], now=T)
    first = ob.due("s", limit=100, now=T)
    assert len(first) == 10
    ob.delivered(first, now=T)
    assert ob.due("s", limit=100, now=T + 1) == []
    nxt = ob.due("s", limit=100, now=T + 61)
    assert [r.alert.id for r in nxt] == [f"I-{i}" for i in range(10, 20)]
    ob.close()


def test_pipeline_feeds_sinks_after_checkpoint(tmp_path: Path) -> None:
    from apiward.detect.cleartext import CleartextCredentials
    from apiward.pipeline import Pipeline
    from apiward.testing import make_call

    rx = HttpReceiver()
    try:
        st = load_settings(sinks={"soc": {"type": "webhook", "url": rx.url, "retries": 1}},
                           alerts={"min_severity": "low", "include_exposures": True})
        pipe = Pipeline(tmp_path / "s", settings=st, detectors=[CleartextCredentials()])
        for k in range(3):
            pipe.process([make_call("POST", "/login", req_json={"password": "x"}, scheme="http", user="alice", id=f"e{k}-{i}", ts=T + k * 10 + i)
                          for i in range(5)])
            pipe.checkpoint()
        pipe.close()
    finally:
        rx.stop()
    alerts = [a for _, _, body in rx.requests for a in orjson.loads(body)["alerts"]]
    # cleartext credentials are an exposure (the API's weakness, not alice's act): one alert, updated not repeated
    assert [a["kind"] for a in alerts] == ["finding"] and "cleartext" in alerts[0]["title"].lower() + alerts[0].get("detector", "")


def test_metrics_exposition(tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    from apiward.alert.metrics import ApiwardCollector, registry_for
    from apiward.pipeline import Pipeline
    from apiward.testing import make_call

    rx = HttpReceiver()
    try:
        st = load_settings(sinks={"soc": {"type": "webhook", "url": rx.url}})
        pipe = Pipeline(tmp_path / "s", settings=st)
        pipe.process([make_call("GET", f"/x/{i}", id=f"m{i}", ts=T + i) for i in range(10)])
        text = generate_latest(registry_for(ApiwardCollector(pipeline=pipe, capture=lambda: {"captured": 12, "dropped": 2},
                                                             queue_depth=lambda: 3, dispatcher=pipe.alerts))).decode()
        pipe.close()
    finally:
        rx.stop()
    for line in ("apiward_up 1.0", "apiward_pipeline_events_total 10.0", 'apiward_capture_exchanges_total{outcome="dropped"} 2.0',
                 "apiward_capture_queue_depth 3.0", "apiward_checkpoint_age_seconds", 'apiward_sink_pending{sink="soc"}'):
        assert line in text, line


def test_bad_sink_config_fails_at_load(tmp_path: Path) -> None:
    from apiward.config import ConfigError

    (tmp_path / "apiward.toml").write_text('[sinks.soc]\ntype = "webhook"\nurl = "http://x"\nretry = 3\n')
    with pytest.raises(ConfigError, match="sinks.soc.*retry"):
        load_settings(state_dir=tmp_path)
    (tmp_path / "apiward.toml").write_text('[sinks.siem]\ntype = "cef"\nhost = "127.0.0.1"\nprotocol = "sctp"\n')
    with pytest.raises(ConfigError, match="protocol"):
        load_settings(state_dir=tmp_path)
    (tmp_path / "apiward.toml").write_text('[alerts]\nunit = "everything"\n')
    with pytest.raises(ConfigError, match="unit"):
        load_settings(state_dir=tmp_path)


def test_analyze_with_workers_alerts_once_per_merged_finding(tmp_path: Path) -> None:
    """The actor stage feeds the outbox with the findings of every partition
    (workers have no sinks of their own)."""
    import os
    import subprocess
    import sys

    import duckdb

    from apiward.model.call import dumps
    from apiward.state.partitions import load_partitioner
    from apiward.testing import make_call

    state = tmp_path / "s"
    state.mkdir()
    data = tmp_path / "t.jsonl"
    hosts = [f"h{i}.example" for i in range(4)]
    with open(data, "wb") as f:
        for i in range(40):
            c = make_call("POST", "/login", req_json={"password": "x"}, scheme="http", user=f"u{i % 3}", id=f"e{i}", ts=T + i, host=hosts[i % 4])
            f.write(dumps(c) + b"\n")
    rx = HttpReceiver()
    try:
        (state / "apiward.toml").write_text(f'[sinks.soc]\ntype = "webhook"\nurl = "{rx.url}"\nretries = 1\n\n'
                                            '[alerts]\nmin_severity = "low"\ninclude_exposures = true\n')
        r = subprocess.run([sys.executable, "-m", "apiward", "analyze", str(data), "--state", str(state), "--quiet", "--workers", "2"],
                           capture_output=True, text=True, timeout=300, env=dict(os.environ))
        assert r.returncode == 0, r.stderr
    finally:
        rx.stop()
    alerts = [a for _, _, body in rx.requests for a in orjson.loads(body)["alerts"]]
    rows = duckdb.connect().execute(f"SELECT id, host FROM read_parquet('{state}/lake/findings/*/*.parquet')").fetchall()
    part = load_partitioner(state)
    assert {part(h) for _, h in rows} == {0, 1}
    assert sorted(a["id"] for a in alerts) == sorted(i for i, _ in rows)  # one alert per finding, none twice
