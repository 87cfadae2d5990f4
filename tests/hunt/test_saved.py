"""Every shipped hunt runs on a lake of simulated traffic and finds the
attack it is for (ground truth from the simulator), and nothing benign."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from apiward.hunt.saved import BadHunt, HuntError, load_hunts, shipped_hunts
from apiward.hunt.session import HuntSession


def _actors(rows: list[dict], key: str = "actor") -> set[str]:
    return {r[key] for r in rows}


def check_stuffing(rows, atk, every, admins):
    ato = atk["account_takeover"]
    assert rows and all(r["failures"] >= 5 for r in rows)
    assert {f"ip:{r['success_ip']}" for r in rows} <= ato | every
    assert {f"ip:{a}" for r in rows for a in r["failure_addresses"]} <= every


def check_spray(rows, atk, every, admins):
    assert rows and {f"ip:{r['client_ip']}" for r in rows} <= atk["password_spraying"] | atk["credential_stuffing"]
    assert all(r["accounts_tried"] >= 10 and r["successes"] > 0 for r in rows)


def check_cross_principal(rows, atk, every, admins):
    got = _actors(rows)
    assert atk["bola"] & got and atk["bola_slow"] & got and atk["scraping"] & got
    assert got <= every | admins, got - every - admins


def check_new_endpoint(rows, atk, every, admins):
    assert rows and _actors(rows) <= every
    assert any(r["actor"] in atk["recon"] for r in rows)


def check_sensitive_new(rows, atk, every, admins):
    got = _actors(rows)
    assert got and got <= every
    assert got & atk["data_exposure"]


def check_low_and_slow(rows, atk, every, admins):
    got = _actors(rows)
    assert got & atk["bola_slow"] and got & atk["scraping_slow"]
    assert got <= atk["bola_slow"] | atk["scraping_slow"]
    assert all(r["days"] >= 2 and r["max_per_hour"] <= 30 for r in rows)


def check_token_networks(rows, atk, every, admins):
    assert len(rows) >= 1
    tm = atk["token_misuse"]
    assert all(r["actor"] in tm for r in rows)
    assert any(f"ip:{a}" in tm for r in rows for a in r["addresses"])


def check_zombie(rows, atk, every, admins):
    eps = {r["endpoint"] for r in rows}
    assert "GET /api/v1/users/{userId}" in eps
    assert all(r["current_version"] > r["version"] for r in rows)


def check_scanner(rows, atk, every, admins):
    # recon's wordlist storm, and possibly an enumeration that missed often (a BOLA walk over ids that do not exist)
    assert _actors(rows) & atk["recon"] and _actors(rows) <= every


def check_admin_newcomer(rows, atk, every, admins):
    got = _actors(rows)
    assert got & atk["bfla"] and got <= every


def check_injection(rows, atk, every, admins):
    got = _actors(rows)
    assert got & atk["sqli"] and got <= every


def check_signup_burst(rows, atk, every, admins):
    assert rows and {f"ip:{r['client_ip']}" for r in rows} <= atk["fake_accounts"]


def check_forged(rows, atk, every, admins):
    assert rows and all(r["jwt_alg"] == "none" for r in rows)
    assert {f"ip:{r['client_ip']}" for r in rows} <= atk["token_misuse"]


def check_bulk(rows, atk, every, admins):
    assert rows and _actors(rows) <= every


def check_privileged(rows, atk, every, admins):
    got = _actors(rows)
    assert got & atk["mass_assignment"] and got <= every
    assert any({"role", "is_admin"} & set(r["fields"]) for r in rows)


CHECKS: dict[str, Callable] = {
    "stuffing-then-success": check_stuffing,
    "spray-then-success": check_spray,
    "cross-principal-objects": check_cross_principal,
    "new-endpoint-single-actor": check_new_endpoint,
    "sensitive-to-new-actor": check_sensitive_new,
    "low-and-slow-enumeration": check_low_and_slow,
    "token-many-networks": check_token_networks,
    "zombie-endpoint-serving-data": check_zombie,
    "scanner-404-storm": check_scanner,
    "admin-by-newcomer": check_admin_newcomer,
    "injection-probes": check_injection,
    "signup-burst": check_signup_burst,
    "forged-or-unsigned-tokens": check_forged,
    "bulk-export": check_bulk,
    "privileged-field-writes": check_privileged,
}


def test_at_least_twelve_shipped_hunts_each_with_a_check() -> None:
    hunts = shipped_hunts()
    assert len(hunts) >= 12
    assert set(hunts) == set(CHECKS), "every shipped hunt needs a check here"
    for h in hunts.values():
        assert h.title and h.description and h.tactic and h.owasp and h.attack


@pytest.fixture(scope="module")
def session(sim_lake):
    s = HuntSession(sim_lake[0])
    yield s
    s.close()


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_shipped_hunt_finds_its_attack(name: str, session: HuntSession, sim_lake, attackers, all_attackers) -> None:
    _, labels = sim_lake
    admins = {f"user:{b.user}" for b in labels.benign if b.role == "admin"}
    res = shipped_hunts()[name].run(session)
    CHECKS[name](res.dicts(), attackers, all_attackers, admins)


def test_parameters_override_and_are_checked(session: HuntSession) -> None:
    h = shipped_hunts()["scanner-404-storm"]
    assert h.run(session, {"min_paths": "100000"}).rows == []
    with pytest.raises(HuntError, match="no parameter"):
        h.run(session, {"nope": "1"})
    with pytest.raises(HuntError, match="not a int"):
        h.run(session, {"min_paths": "many"})


def test_user_hunts_from_a_folder_and_bad_files(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("name: my-hunt\ntitle: Mine\ndescription: d\nsql: select 1 as x\n")
    hunts = load_hunts(tmp_path)
    assert hunts["my-hunt"].source.endswith("mine.yaml") and "stuffing-then-success" in hunts
    (tmp_path / "bad.yaml").write_text("name: Bad Name\nsql: select 1\n")
    with pytest.raises(BadHunt, match="bad.yaml"):
        load_hunts(tmp_path)
    (tmp_path / "bad.yaml").write_text("name: ok-name\nsql: select 1\nextra: 1\n")
    with pytest.raises(BadHunt, match="unknown key"):
        load_hunts(tmp_path)
