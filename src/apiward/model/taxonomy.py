"""MITRE ATT&CK, OWASP API Security Top 10 (2023) and CWE as data.

The tables ship with the package (``model/data/*.json``) so findings, hunts
and reports name the same techniques, categories and weaknesses, and a
new mapping is a data change, not a code change. Loaded once, lazily.

>>> tactic_of("T1110.004")
'credential-access'
>>> owasp_name("API1:2023")
'Broken Object Level Authorization'
>>> stage_index("collection") > stage_index("discovery")
True
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import orjson

__all__ = [
    "KILL_CHAIN",
    "attack_table",
    "owasp_table",
    "cwe_table",
    "technique",
    "tactic_of",
    "tactic_name",
    "owasp_name",
    "owasp_fixes",
    "cwe_name",
    "stage_of",
    "stage_index",
]


@functools.cache
def _load(name: str) -> dict[str, Any]:
    return orjson.loads(resources.files("apiward.model").joinpath("data", name).read_bytes())


def attack_table() -> dict[str, Any]:
    return _load("attack.json")


def owasp_table() -> dict[str, Any]:
    return _load("owasp_api_2023.json")["categories"]


def cwe_table() -> dict[str, str]:
    return _load("cwe.json")["weaknesses"]


#: The stages an attack goes through, in order (ATT&CK tactic short names).
KILL_CHAIN: tuple[str, ...] = tuple(_load("attack.json")["kill_chain"])
_ALIASES: dict[str, str] = _load("attack.json")["kill_chain_aliases"]


def technique(tid: str) -> dict[str, Any] | None:
    """``{"name", "tactics"}`` of an ATT&CK technique (sub-techniques fall
    back to their parent)."""
    t = attack_table()["techniques"]
    return t.get(tid) or t.get(tid.split(".")[0])


def tactic_of(tid: str) -> str:
    """The kill-chain stage an ATT&CK technique stands for ("" when unknown)."""
    t = technique(tid) if tid else None
    if t is None:
        return ""
    if t.get("stage"):
        return t["stage"]
    for tac in t["tactics"]:
        tac = _ALIASES.get(tac, tac)
        if tac in KILL_CHAIN:
            return tac
    return ""


def tactic_name(short: str) -> str:
    for t in attack_table()["tactics"]:
        if t["shortname"] == short:
            return t["name"]
    return short.replace("-", " ").title()


def owasp_name(cat: str) -> str:
    c = owasp_table().get(cat)
    return c["name"] if c else cat


def owasp_fixes(cat: str) -> list[str]:
    c = owasp_table().get(cat)
    return list(c["fixes"]) if c else []


def cwe_name(cwe: str) -> str:
    return cwe_table().get(cwe, cwe)


def stage_of(detector: str = "", tactic: str = "", attack: str = "") -> str:
    """Where a finding sits on the kill chain: the detector's mapped stage,
    else its tactic (when it is a stage), else its technique's tactic."""
    mapped = _load("detectors.json")["stage"].get(detector)
    if mapped:
        return mapped
    tac = _ALIASES.get(tactic, tactic)
    if tac in KILL_CHAIN:
        return tac
    return tactic_of(attack) or "initial-access"


def stage_index(stage: str) -> int:
    """Position on the kill chain (0-based; unknown stages sort first)."""
    stage = _ALIASES.get(stage, stage)
    try:
        return KILL_CHAIN.index(stage)
    except ValueError:
        return -1
