"""Self-test scoring and its JSON shape."""

from __future__ import annotations

import orjson
import pytest

from apiward.model.finding import Finding
from apiward.sim.selftest import Scorer, SelftestReport, evaluate, inject
from apiward.testing import make_call


def _calls():
    calls = []
    # benign: alice and bob, 10 events each; attacker mallory: 5 bola events from t=100
    for i in range(10):
        calls.append(make_call("GET", f"/users/{i}", user="alice", id=f"a{i}", ts=float(i)))
        calls.append(make_call("GET", f"/items/{i}", user="bob", id=f"b{i}", ts=float(i) + 0.5))
    for i in range(5):
        calls.append(make_call("GET", f"/users/{100 + i}", user="mallory", id=f"m{i}", ts=100.0 + 10 * i))
    for i in range(4):
        calls.append(make_call("POST", "/login", user="", ip="192.0.2.9", id=f"s{i}", ts=200.0 + i))
    return calls


ATTACKS = [
    {"id": "atk-1", "attack": "bola", "event_ids": ["m0", "m1", "m2", "m3", "m4"], "start": 100.0},
    {"id": "atk-2", "attack": "credential_stuffing", "event_ids": ["s0", "s1", "s2", "s3"], "start": 200.0, "low_and_slow": True},
]


def _finding(det, actor, ids, ts):
    return Finding(detector=det, title=det, actor=actor, endpoint="GET /users/{id}", event_ids=ids, first_seen=ts[0], last_seen=ts[1])


def test_evaluate_per_class_recall_ttd_and_false_positives():
    sc = Scorer()
    calls = _calls()
    raw = [
        _finding("bola.cross_owner", "user:mallory", ["m0", "m1", "m2"], (100.0, 120.0)),  # triggered by m2 at t=120
        _finding("bola.cross_owner", "user:mallory", ["m3"], (130.0, 130.0)),
        _finding("noise.detector", "user:bob", ["b3"], (3.5, 3.5)),  # a false positive
    ]
    sc.observe(calls, raw)
    rep = evaluate(ATTACKS, sc, source="demo", seed=3)
    by = {c.attack: c for c in rep.classes}
    bola, cs = by["bola"], by["credential_stuffing"]
    assert bola.detected and bola.detected_events == 4 and bola.recall == pytest.approx(0.8)
    assert bola.ttd_seconds == pytest.approx(20.0) and bola.events_to_detect == 3.0
    assert bola.detectors == ["bola.cross_owner"]
    assert not cs.detected and cs.recall == 0.0 and cs.ttd_seconds is None and cs.low_and_slow == 1
    assert rep.detected_classes == 1 and rep.overall_recall == pytest.approx(4 / 9)
    # benign actors: alice and bob (the stuffing IP and mallory are attackers)
    assert rep.benign_actors == 2 and rep.fp_actors == 1 and rep.fp_actor_rate == pytest.approx(0.5)
    assert rep.benign_events == 20 and rep.fp_events == 1 and rep.fp_event_rate == pytest.approx(0.05)
    assert rep.fp_detectors == {"noise.detector": 1}


def test_report_json_shape():
    sc = Scorer()
    sc.observe(_calls(), [])
    rep = evaluate(ATTACKS, sc)
    d = orjson.loads(orjson.dumps(rep.to_dict()))
    assert set(d) >= {
        "source", "events", "attack_events", "benign_events", "benign_actors", "fp_actors", "fp_actor_rate",
        "fp_events", "fp_event_rate", "findings", "classes", "detected_classes", "overall_recall",
        "seconds", "virtual_seconds", "seed",
    }
    assert [c["attack"] for c in d["classes"]] == ["bola", "credential_stuffing"]
    assert set(d["classes"][0]) >= {
        "attack", "instances", "detected_instances", "detected", "attack_events", "detected_events", "recall",
        "ttd_seconds", "events_to_detect", "detectors",
    }
    assert d["detected_classes"] == 0 and d["events"] == 29
    SelftestReport(**{k: v for k, v in d.items() if k != "classes"}, classes=[])  # round-trips field names


def test_inject_shifts_attacks_into_the_baseline_window():
    base = [make_call("GET", f"/x/{i}", user=f"u{i % 3}", id=f"base-{i}", ts=1000.0 + i * 10) for i in range(100)]
    atk_calls = [make_call("GET", f"/users/{i}", user="eve", id=f"sim-{i}", ts=5.0 + i) for i in range(6)]
    merged, attacks = inject(base, atk_calls, [{"id": "a", "attack": "bola", "event_ids": [f"sim-{i}" for i in range(6)], "start": 5.0}])
    assert len(merged) == 106 and [c.ts for c in merged] == sorted(c.ts for c in merged)
    inj = [c for c in merged if c.id.startswith("inj-")]
    assert len(inj) == 6 and all(1000.0 <= c.ts <= 1990.0 for c in inj)
    assert attacks[0]["event_ids"] == [c.id for c in inj]
    assert inj[1].ts - inj[0].ts == pytest.approx(1.0)  # pacing kept
    sc = Scorer()
    sc.observe(merged, [_finding("bola.x", "user:eve", [inj[0].id], (0, 0))])
    rep = evaluate(attacks, sc, source="capture.har")
    assert rep.classes[0].detected and rep.benign_events == 100


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_selftest_cli_json_on_a_small_run(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    r = subprocess.run(
        [sys.executable, "-m", "apiward", "selftest", "--format", "json", "--users", "15", "--hours", "3",
         "--attacks", "bola,sqli,credential_stuffing", "--state", str(tmp_path / "st"), "--output", str(tmp_path / "rep.json")],
        capture_output=True, env={**os.environ, "PYTHONPATH": src}, timeout=110,
    )
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    d = orjson.loads(r.stdout)
    assert d == orjson.loads((tmp_path / "rep.json").read_bytes())
    assert d["source"] == "demo" and d["events"] == d["attack_events"] + d["benign_events"]
    labels = orjson.loads((tmp_path / "st" / "selftest" / "labels.json").read_bytes())
    assert d["events"] == labels["requests"]
    assert {c["attack"] for c in d["classes"]} == set(labels["attack_classes"]) == {"bola", "sqli", "credential_stuffing"}
    for c in d["classes"]:
        assert 0.0 <= c["recall"] <= 1.0 and c["detected"] == (c["detected_events"] > 0)
        assert (c["ttd_seconds"] is None) == (c["detected_instances"] == 0)
    assert 0.0 <= d["fp_actor_rate"] <= 1.0 and 0.0 <= d["fp_event_rate"] <= 1.0
    assert d["benign_actors"] > 0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_selftest_injects_into_a_baseline(tmp_path):
    """--baseline: the playbooks' events are injected into the user's own recorded traffic."""
    from apiward.model.call import dumps
    from apiward.sim.selftest import run_selftest

    base = tmp_path / "mine.jsonl"
    with open(base, "wb") as fh:
        for i in range(300):
            c = make_call("GET", f"/catalog/items/{i % 40}", ip=f"198.18.0.{i % 25 + 1}", id=f"mine-{i}", ts=1_750_000_000.0 + i * 30)
            fh.write(dumps(c) + b"\n")
    rep = run_selftest(tmp_path / "st", users=15, duration=3 * 3600, attacks="bola,sqli", baseline=base)
    assert rep.source == str(base)
    assert rep.benign_events == 300 and rep.attack_events > 50
    assert {c.attack for c in rep.classes} == {"bola", "sqli"}
    assert rep.benign_actors == 25
