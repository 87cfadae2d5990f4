"""A lake built from simulated DemoBank traffic (benign users plus every
attacker playbook, low-and-slow variants included, over three days),
shared by the hunt tests, with its ground truth."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SIM = dict(users=60, duration=3 * 86400.0, attacks="all,bola_slow,scraping_slow", seed=5)
NOW = "2025-03-05T00:00:00Z"  # risk decays from here (APIWARD_NOW)


@pytest.fixture(scope="session")
def sim_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    from apiward.sim.selftest import run_pipeline, simulate_demo

    work = tmp_path_factory.mktemp("simlake")
    calls, labels = simulate_demo(work / "sim", **SIM)
    calls.sort(key=lambda c: c.ts)
    run_pipeline(calls, work / "state")
    return work / "state", labels


@pytest.fixture(scope="session")
def attackers(sim_lake: tuple[Path, object]) -> dict[str, set[str]]:
    """Attack class -> actor keys its instances used (ip:..., user:...)."""
    _, labels = sim_lake
    out: dict[str, set[str]] = {}
    for a in labels.attacks:
        keys = out.setdefault(a.playbook, set())
        keys |= {f"ip:{ip}" for ip in a.ips} | {f"user:{u}" for u in a.users}
    return out


@pytest.fixture(scope="session")
def all_attackers(attackers: dict[str, set[str]]) -> set[str]:
    return set().union(*attackers.values())


@pytest.fixture()
def pinned_now(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("APIWARD_NOW", NOW)
    return NOW


os.environ.setdefault("APIWARD_NOW", NOW)
