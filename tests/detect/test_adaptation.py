"""Adapt: a deploy that every user exercises is an API change, not an alert storm.

DemoBank is upgraded from v2 to v3 half way through a day of benign traffic
(a new endpoint, new response fields, new request fields). The whole
pipeline, every detector on, must log the change and stay quiet about it.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from apiward.lake.query import connect
from apiward.sim.selftest import run_pipeline, simulate_demo
from apiward.sim.simulator import DEFAULT_START

V3_MARKERS = ("rewards", "loyalty_tier", "preferred_language")


@pytest.mark.slow
def test_deploy_mid_stream_is_a_change_not_an_alert_storm(tmp_path: Path) -> None:
    duration = 86_400.0
    calls, labels = simulate_demo(tmp_path / "sim", users=60, duration=duration, attacks="none", seed=3)
    assert not labels.attacks
    deploy = DEFAULT_START + duration / 2
    assert any("rewards" in c.request.path for c in calls if c.ts > deploy), "v3 traffic happened"
    _, findings = run_pipeline(calls, tmp_path / "state")
    about_v3 = [f for f in findings.values() if any(m in (f.endpoint + orjson.dumps(f.evidence, default=str).decode()) for m in V3_MARKERS)]
    assert about_v3 == [], [(f.detector, f.endpoint, f.summary) for f in about_v3]
    after = [f for f in findings.values() if deploy <= f.first_seen <= deploy + 3600]
    assert len(after) <= 3, [(f.detector, f.endpoint, f.summary) for f in after]
    changes = connect(tmp_path / "state" / "lake").execute("select kind, endpoint, field, detail from changes").fetchall()
    assert any(k == "new_endpoint" and "rewards" in e for k, e, _, _ in changes), changes
    assert any(k == "new_field" and "loyalty_tier" in (fld or "") for k, _, fld, _ in changes), changes
