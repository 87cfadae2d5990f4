"""The zoo's fast subset: real applications from PyPI behind the real
``apiward proxy`` CLI, with scripted benign users and attacks written
against each app's own authorization model; asserted on what
``apiward findings`` and ``apiward inventory`` print (see
:mod:`apiward.sim.zoo`; the full run is ``bench/zoo.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiward.sim.zoo import APPS
from apiward.sim.zoo.harness import run_app
from apiward.sim.zoo.score import score_run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _run(name: str, tmp_path: Path):
    pytest.importorskip(APPS[name].package, reason=f"{name} is not installed: pip install -e '.[zoo]'")
    run = run_app(APPS[name], tmp_path / name, quick=True, seed=1)
    return run, score_run(run)


def _check(run, s) -> None:
    missed = [(a["id"], a["owasp"], a["found"]) for a in s.attacks if not a["caught"]]
    assert not missed, f"attacks missed or mis-categorised (id, expected, found): {missed}"
    assert not s.benign_accused, f"benign actors accused: {s.benign_accused}"
    assert s.benign_actors >= 5 and len(s.attacks) >= 3
    # the scanner's wordlist is kept apart from the served endpoints
    scanner = next(a.actor for a in run.attacks if a.kind == "probing")
    probe_paths = {p["path"] for p in run.probes}
    scanned = {r.path for r in run.sent if r.actor == scanner.name}
    assert len(scanned & probe_paths) >= 0.5 * len(scanned), "scanner paths missing from `apiward inventory --probes`"
    assert not [e["template"] for e in run.inventory if e.get("template") in scanned], "scanner paths became endpoints"


def test_kinto_accounts_buckets_and_attacks(tmp_path: Path) -> None:
    run, s = _run("kinto", tmp_path)
    _check(run, s)
    kinds = {a["kind"] for a in s.attacks}
    assert {"bola_read", "bfla", "brute_force", "injection", "probing"} <= kinds
    assert s.f1 >= 0.95, f"templates F1 {s.f1:.3f}: missing {s.missing_templates}, extra {s.extra_templates}"
    # the record route of Kinto's own OpenAPI document was recovered as one template
    assert "GET /v1/buckets/{}/collections/{}/records/{}" in s.found_templates


def test_pypiserver_index_and_attacks(tmp_path: Path) -> None:
    run, s = _run("pypiserver", tmp_path)
    _check(run, s)
    assert s.recall >= 0.85 and s.precision >= 0.85, (s.missing_templates, s.extra_templates)
