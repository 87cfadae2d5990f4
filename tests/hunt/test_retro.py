"""Retro-hunting finds an attack stored before its detector was enabled,
marks the findings retro and does not repeat live ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiward.config import load_settings
from apiward.hunt.retro import retro_hunt
from apiward.hunt.session import HuntSession
from apiward.hunt.timerange import TimeRange
from apiward.pipeline import Pipeline


@pytest.fixture(scope="module")
def lake_without_injection(tmp_path_factory: pytest.TempPathFactory):
    from apiward.sim.selftest import simulate_demo

    work = tmp_path_factory.mktemp("retro")
    calls, labels = simulate_demo(work / "sim", users=30, duration=86400.0, attacks="sqli,recon", seed=7)
    calls.sort(key=lambda c: c.ts)
    pipe = Pipeline(work / "s", settings=load_settings(disable_detectors=["injection.payload"]))
    for i in range(0, len(calls), 500):
        pipe.process(calls[i : i + 500])
    pipe.close()
    return work / "s", labels


def test_retro_finds_what_was_stored_before_the_detector(lake_without_injection) -> None:
    state, labels = lake_without_injection
    sqli = next(a for a in labels.attacks if a.attack == "sqli")
    with HuntSession(state) as s:
        assert s.query("select count(*) from findings where detector = 'injection.payload'").rows == [(0,)]
    res = retro_hunt(state, TimeRange.parse("2025-02-28", "2025-03-03"), detectors=["injection.payload"])
    assert res.calls > 1000 and res.kept >= 1
    with HuntSession(state) as s:
        rows = s.query("select actor, origin, retro_run, events from findings where detector = 'injection.payload'").dicts()
        linked = s.query("select count(distinct event_id) from finding_events where detector = 'injection.payload'").rows[0][0]
    assert rows and all(r["origin"] == "retro" and r["retro_run"] == res.run for r in rows)
    assert {r["actor"] for r in rows} & {f"ip:{ip}" for ip in sqli.ips}
    found = set()
    with HuntSession(state) as s:
        found = {r[0] for r in s.query("select event_id from finding_events where detector = 'injection.payload'").rows}
    assert len(found & set(sqli.event_ids)) >= len(sqli.event_ids) // 2 and linked == len(found)
    # a second run updates its own findings instead of adding copies
    again = retro_hunt(state, TimeRange.parse("2025-02-28", "2025-03-03"), detectors=["injection.payload"])
    assert again.kept == 0 and again.updated_retro == res.kept
    with HuntSession(state) as s:
        assert s.query("select count(*) from findings where detector = 'injection.payload'").rows == [(len(rows),)]


def test_retro_does_not_repeat_live_findings(lake_without_injection) -> None:
    state, _ = lake_without_injection
    with HuntSession(state) as s:
        live = s.query("select count(*) from findings where detector = 'recon.scanning' and origin = 'live'").rows[0][0]
    assert live >= 1
    res = retro_hunt(state, detectors=["recon.scanning"])
    assert res.found >= 1 and res.kept == 0 and res.known_live >= 1
    with pytest.raises(ValueError, match="unknown detector"):
        retro_hunt(state, detectors=["nope.nothing"])
