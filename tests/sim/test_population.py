"""Synthetic people: deterministic, unique, and formats that PII detectors accept."""

from __future__ import annotations

import re

import pytest

from apiward.sim.population import ADMIN_COUNT, luhn_complete, luhn_ok, person, population
from apiward.sim.traffic import AddressPool


def test_population_is_deterministic_and_unique() -> None:
    a, b = population(300), population(300)
    assert a == b
    assert len({p.email for p in a}) == len({p.username for p in a}) == 300
    assert [p.role for p in a[:ADMIN_COUNT + 1]] == ["admin"] * ADMIN_COUNT + ["user"]
    assert population(10, seed=8) != population(10)
    assert person(3, tag="signup") != a[3]


def test_pii_formats() -> None:
    for p in population(200):
        area, group, serial = p.ssn.split("-")
        assert len(area) == 3 and area not in ("000", "666") and int(area) < 900
        assert group != "00" and serial != "0000"
        assert luhn_ok(p.card_number) and len(p.card_number) in (15, 16)
        assert re.fullmatch(r"\+1-\d{3}-\d{3}-\d{4}", p.phone)
        assert re.fullmatch(r"[^@\s]+@[a-z.]+", p.email)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.dob)


def test_stdnum_agrees_on_ssn_and_cards() -> None:
    ssn = pytest.importorskip("stdnum.us.ssn")
    luhn = pytest.importorskip("stdnum.luhn")
    people = population(100)
    assert sum(ssn.is_valid(p.ssn) for p in people) >= 95  # stdnum also blacklists a few advertising numbers
    assert all(luhn.is_valid(p.card_number) for p in people)


@pytest.mark.parametrize("digits,check", [("7992739871", "3"), ("411111111111111", "1")])
def test_luhn(digits: str, check: str) -> None:
    assert luhn_complete(digits) == digits + check
    assert luhn_ok(digits + check) and not luhn_ok(digits + str((int(check) + 1) % 10))


def test_address_pool_disjoint_and_documentation_only() -> None:
    import random

    pool = AddressPool(random.Random(1))
    benign = {pool.benign() for _ in range(700)}
    attackers = {pool.attacker() for _ in range(300)}
    assert len(benign) == 700 and len(attackers) == 300 and benign.isdisjoint(attackers)
    assert all(ip.startswith(("198.51.100.", "203.0.113.", "192.0.2.", "2001:db8:")) for ip in benign | attackers)
