"""Entity resolution, kill-chain stages and risk on a scripted
multi-identity, multi-day attack; a NAT address links nobody."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiward.hunt.actors import resolve
from apiward.hunt.session import HuntSession
from apiward.hunt.timerange import TimeRange

from .scenario import A, B, C, DAY2, H, N, build


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("scripted") / "s"
    build(state)
    return state


@pytest.fixture(scope="module")
def clusters(scripted: Path):
    with HuntSession(scripted) as s:
        return resolve(s, now=DAY2 + 86400)


def test_one_attacker_across_identities_and_days(clusters) -> None:
    c = clusters.find(f"ip:{A}")
    assert c is not None and c.key == f"ip:{A}"  # the first identity that did something
    assert set(c.members) == {f"ip:{A}", "user:mallory", f"ip:{B}", f"ip:{C}", "user:victim"}
    kinds = {lk.kind for lk in c.links}
    assert {"token_issued", "account_takeover", "device"} <= kinds
    for lk in c.links:
        assert 0 < lk.confidence <= 1 and lk.evidence
    ato = [lk for lk in c.links if lk.kind == "account_takeover"][0]
    assert (ato.a, ato.b) == (f"ip:{B}", f"ip:{C}") and ato.evidence["failures_before"] >= 3
    idents = {i.key for i in c.identities}
    assert {f"ip:{A}", f"ip:{B}", f"ip:{C}", "user:mallory", "user:victim"} <= idents
    # the victim's own session from home is not the attacker's
    assert f"ip:{H}" not in idents
    assert all(clusters.find(k) is c for k in (f"ip:{B}", "user:mallory", f"ip:{C}"))


def test_stage_order_and_risk(clusters) -> None:
    c = clusters.find(f"ip:{A}")
    assert c.stages == ["reconnaissance", "resource-development", "credential-access", "initial-access", "collection", "exfiltration"]
    assert c.stage == "exfiltration"
    times = [e["ts"] for e in c.timeline if e["kind"] == "stage"]
    assert times == sorted(times)
    fp = clusters.find("user:nat1")
    assert c.risk > fp.risk > 0
    assert clusters.clusters[0] is c  # ranked first


def test_risk_decays_with_time(scripted: Path) -> None:
    with HuntSession(scripted) as s:
        soon = resolve(s, now=DAY2 + 3600 * 3).find(f"ip:{A}")
        late = resolve(s, now=DAY2 + 86400 * 60).find(f"ip:{A}")
    assert late.risk < soon.risk / 4 and late.peak_risk == soon.peak_risk


def test_a_shared_nat_address_links_nobody(clusters) -> None:
    fp = clusters.find("user:nat1")
    # nat1 is linked to its own login only (the address stands for that one login), to no other user
    assert set(fp.members) <= {"user:nat1", f"ip:{N}#n1-login"}
    assert fp.refused and all("shared address" in lk.refused for lk in fp.refused)
    for c in clusters.clusters:
        assert not ({f"user:nat{u}" for u in range(6)} & set(c.members)) or c is fp
        if c is not fp:
            assert f"ip:{N}" not in {i.key for i in c.identities}


def test_actors_view_in_sql(scripted: Path) -> None:
    with HuntSession(scripted, TimeRange()) as s:
        rows = s.query("select actor, stage, risk, identities from actors order by risk desc").dicts()
        ids = s.query(f"select identity, confidence, evidence from identities where actor = 'ip:{A}'").dicts()
    assert rows[0]["actor"] == f"ip:{A}" and rows[0]["stage"] == "exfiltration"
    assert any(i["identity"] == f"ip:{C}" and i["confidence"] < 1 for i in ids)
