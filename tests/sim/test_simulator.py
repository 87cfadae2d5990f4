"""The traffic simulator against the demo API over real loopback HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import orjson
import pytest

from apiward.model.call import loads
from apiward.sim.demoapp import create_app, set_version
from apiward.sim.labels import load_labels
from apiward.sim.playbooks import ATTACK_CLASSES
from apiward.sim.server import ServerThread
from apiward.sim.simulator import SimConfig, expand_attacks, plan, simulate

POP = 120
SMALL = dict(seed=3, users=20, duration=4 * 3600.0, population=POP, intensity=0.25)


def run_once(tmp: Path, *, fixed: bool = False, **kw):
    app = create_app(str(tmp / "demo.sqlite"), vulnerable=not fixed, seed_users=POP)
    try:
        with ServerThread(app) as srv:
            args = {**SMALL, **kw}
            return simulate(srv.base_url, out_dir=tmp / "out", host="api.demobank.test",
                            on_deploy=lambda: set_version(app, 3), **args)
    finally:
        app.state.store.close()


def read_events(path: Path) -> list:
    return [loads(line) for line in path.read_bytes().splitlines()]


def _stable(call) -> dict:
    """An event with the wall-clock and port fields taken out (see the simulator docstring)."""
    d = msgspec.to_builtins(call)
    d.pop("duration_ms")
    d["dst"].pop("port", None)
    d["response"]["headers"] = [h for h in d["response"]["headers"] if h[0] != "date"]
    return d


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("sim")
    res = run_once(tmp, attacks="all")
    return res, read_events(res.events_path), load_labels(res.labels_path)


def test_plan_is_deterministic() -> None:
    cfg = SimConfig(**{k: v for k, v in SMALL.items()})
    a, _ = plan(cfg)
    b, _ = plan(cfg)
    assert [s.plan_row() for s in a] == [s.plan_row() for s in b]
    c, _ = plan(SimConfig(**{**SMALL, "seed": 4}))
    assert [s.plan_row() for s in a] != [s.plan_row() for s in c]
    assert sum(1 for s in a if s.attack) == len(ATTACK_CLASSES)


def test_same_seed_same_events(tmp_path: Path, full_run) -> None:
    res1, ev1, _ = full_run
    res2 = run_once(tmp_path, attacks="all")
    ev2 = read_events(res2.events_path)
    assert len(ev1) == len(ev2) == res1.requests > 300
    assert [_stable(c) for c in ev1] == [_stable(c) for c in ev2]
    assert res2.labels_path.read_bytes() == res1.labels_path.read_bytes()


def test_events_carry_ids_times_and_client_ips(full_run) -> None:
    res, events, labels = full_run
    assert [c.id for c in events] == [f"sim-{i}" for i in range(1, len(events) + 1)]
    ts = [c.ts for c in events]
    assert ts == sorted(ts) and labels.start <= ts[0] and ts[-1] <= labels.end + 3 * 3600
    for c in events[:50]:
        assert c.request.header("x-request-id") == c.id
        assert float(c.request.header("x-apiward-sim-ts")) == pytest.approx(c.ts)
        assert c.request.header("x-forwarded-for") == c.src.ip
        assert c.src.ip.startswith(("198.51.100.", "203.0.113.", "192.0.2.", "2001:db8:"))
        assert c.request.host == "api.demobank.test" and c.response is not None and c.response.status > 0
        assert c.source == "sim"
    kinds = {c.response.content_type.split(";")[0] for c in events if c.response.body}
    assert "application/json" in kinds


def test_labels_cover_every_attack_request(full_run) -> None:
    res, events, labels = full_run
    ids = {c.id for c in events}
    attack_ids = [e for a in labels.attacks for e in a.event_ids]
    benign_ids = [e for b in labels.benign for e in b.event_ids]
    assert len(attack_ids) == len(set(attack_ids)), "an event in two attack instances"
    assert set(attack_ids).isdisjoint(benign_ids)
    assert set(attack_ids) | set(benign_ids) == ids
    assert {a.attack for a in labels.attacks} == set(ATTACK_CLASSES)
    by_id = {c.id: c for c in events}
    benign_ips = {ip for b in labels.benign for ip in b.ips}
    for a in labels.attacks:
        assert a.start <= a.end and a.ips and set(a.ips).isdisjoint(benign_ips)
        assert {by_id[e].src.ip for e in a.event_ids} == set(a.ips)
    # scanner agents and attacker addresses only ever appear in attack events
    for c in events:
        ua = c.request.header("user-agent") or ""
        if "sqlmap" in ua or "Nikto" in ua or c.src.ip not in benign_ips:
            assert c.id in set(attack_ids)
    assert res.attack_requests == len(attack_ids) and res.benign_requests == len(benign_ids)


def test_attacks_do_what_they_say(full_run) -> None:
    _, events, labels = full_run
    by_id = {c.id: c for c in events}
    inst = {a.attack: [by_id[e] for e in a.event_ids] for a in labels.attacks}
    assert any("sqlmap" in (c.request.header("user-agent") or "") and "UNION" in (c.request.query_get("q") or "") for c in inst["sqli"])
    assert sum(c.status == 404 for c in inst["recon"]) > len(inst["recon"]) / 3
    assert any(c.request.path == "/openapi.json" for c in inst["recon"])
    assert any("role" in c.request.params() for c in inst["mass_assignment"] if c.request.method == "PATCH")
    assert any(c.request.path.startswith("/api/v2/admin/") and c.status == 200 for c in inst["bfla"])
    stuffing_users = {c.request.json()["username"] for c in inst["credential_stuffing"] if c.request.path.endswith("/login")}
    assert len(stuffing_users) > 10
    ato = inst["account_takeover"]
    assert ato[0].status == 401 and any(c.status == 200 for c in ato) and len({c.src.ip for c in ato}) == 2
    alg_none = [c for c in inst["token_misuse"] if (c.request.header("authorization") or "").endswith(".")]
    assert alg_none and all(c.status == 200 for c in alg_none)  # the vulnerable app takes them
    bola_paths = {c.request.path for c in inst["bola"] if c.request.method == "GET"}
    assert len([p for p in bola_paths if p.startswith("/api/v2/orders/")]) > 5


def test_benign_traffic_looks_benign(full_run) -> None:
    _, events, labels = full_run
    attack = labels.attack_of()
    benign = [c for c in events if c.id not in attack]
    assert len(benign) > 0.3 * len(events)
    ok = sum(200 <= c.status < 300 for c in benign)
    assert ok / len(benign) > 0.93
    roles = {b.role for b in labels.benign}
    assert {"user", "admin", "anonymous"} <= roles
    uas = {c.request.header("user-agent") for c in benign}
    assert not any("sqlmap" in u or "Nikto" in u for u in uas)


def test_fixed_mode_closes_holes_under_attack(tmp_path: Path) -> None:
    res = run_once(tmp_path, fixed=True, attacks="bola,token_misuse,sqli")
    events = {c.id: c for c in read_events(res.events_path)}
    labels = load_labels(res.labels_path)
    for a in labels.attacks:
        calls = [events[e] for e in a.event_ids]
        if a.attack == "bola":
            walked = [c for c in calls if c.request.path.startswith("/api/v2/orders/")]
            assert walked and all(c.status == 404 for c in walked)
        if a.attack == "token_misuse":
            alg_none = [c for c in calls if (c.request.header("authorization") or "").endswith(".")]
            assert alg_none and all(c.status == 401 for c in alg_none)
        if a.attack == "sqli":
            assert all(c.status == 200 for c in calls)


def test_low_and_slow_spreads_out(tmp_path: Path) -> None:
    res = run_once(tmp_path, attacks="bola,bola_slow", duration=8 * 3600.0)
    labels = load_labels(res.labels_path)
    fast = next(a for a in labels.attacks if not a.low_and_slow)
    slow = next(a for a in labels.attacks if a.low_and_slow)
    assert fast.attack == slow.attack == "bola" and slow.playbook == "bola_slow"
    rate = lambda a: len(a.event_ids) / max(1.0, a.end - a.start)  # noqa: E731
    assert rate(slow) < rate(fast) / 20
    assert slow.end - slow.start > 2 * 3600


def test_deploy_mid_stream(tmp_path: Path) -> None:
    res = run_once(tmp_path, attacks="none", deploy_at=2 * 3600.0)
    events = read_events(res.events_path)
    labels = load_labels(res.labels_path)
    assert not labels.attacks
    rewards = [c for c in events if c.request.path == "/api/v2/rewards"]
    assert rewards and all(c.ts >= labels.start + 2 * 3600 for c in rewards)
    assert all(c.status == 200 for c in rewards)


def test_expand_attacks() -> None:
    assert expand_attacks("all") == list(ATTACK_CLASSES)
    assert expand_attacks("none") == []
    assert expand_attacks("sqli, bola_slow") == ["sqli", "bola_slow"]
    assert len(expand_attacks(["all_slow"])) == len(ATTACK_CLASSES)
    with pytest.raises(ValueError):
        expand_attacks("teleport")


def test_cli(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    help_out = subprocess.run([sys.executable, "-m", "apiward.sim.simulator", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert help_out.returncode == 0 and "--attacks" in help_out.stdout
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "-m", "apiward.sim.simulator", "--serve", "--users", "10", "--duration", "3600",
                        "--population", "80", "--attacks", "sqli,recon", "--intensity", "0.2", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    labels = orjson.loads((out / "labels.json").read_bytes())
    assert {a["attack"] for a in labels["attacks"]} == {"sqli", "recon"}
    assert len((out / "events.jsonl").read_bytes().splitlines()) == labels["requests"]
