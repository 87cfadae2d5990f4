"""Ground truth written beside simulated traffic (``labels.json``).

Shape (version 1)::

    {"version": 1, "seed": 1, "start": ts, "end": ts, "requests": N,
     "attack_classes": ["bola", ...],
     "attacks": [{"id": "atk-01", "attack": "bola", "playbook": "bola_slow",
                  "low_and_slow": true,
                  "actor": {"ip": "203.0.113.9", "ips": [...], "user": "...", "users": [...]},
                  "event_ids": ["sim-17", ...], "start": ts, "end": ts, "requests": 143}],
     "benign": [{"actor": {"ip": ..., "ips": [...], "user": "alice.smith12"},
                 "role": "user|admin|anonymous", "event_ids": [...], "requests": 42}]}

``event_ids`` are the ``x-request-id`` values the simulator sent (``sim-<n>``)
which are also the ids of the recorded events. Every attack request belongs to
exactly one attack instance; benign actors never appear in attack instances'
event ids. ``actor.user`` is the first identity the attack used or
compromised (its own sign-up, a victim), empty when it used none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["AttackLabel", "BenignLabel", "Labels", "load_labels"]


@dataclass
class AttackLabel:
    id: str
    attack: str
    playbook: str
    low_and_slow: bool
    ips: list[str]
    users: list[str]
    event_ids: list[str]
    start: float
    end: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "attack": self.attack,
            "playbook": self.playbook,
            "low_and_slow": self.low_and_slow,
            "actor": {"ip": self.ips[0] if self.ips else "", "ips": self.ips, "user": self.users[0] if self.users else "", "users": self.users},
            "event_ids": self.event_ids,
            "start": self.start,
            "end": self.end,
            "requests": len(self.event_ids),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AttackLabel":
        a = d.get("actor", {})
        return cls(d["id"], d["attack"], d.get("playbook", d["attack"]), bool(d.get("low_and_slow")), list(a.get("ips", [])),
                   list(a.get("users", [])), list(d["event_ids"]), float(d["start"]), float(d["end"]))


@dataclass
class BenignLabel:
    user: str
    role: str
    ips: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "actor": {"ip": self.ips[0] if self.ips else "", "ips": self.ips, "user": self.user},
            "role": self.role,
            "event_ids": self.event_ids,
            "requests": len(self.event_ids),
        }


@dataclass
class Labels:
    seed: int
    start: float
    end: float
    requests: int
    attacks: list[AttackLabel]
    benign: list[BenignLabel]
    meta: dict[str, Any] = field(default_factory=dict)

    def attack_of(self) -> dict[str, AttackLabel]:
        """event id -> the attack instance it belongs to."""
        return {eid: a for a in self.attacks for eid in a.event_ids}

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "seed": self.seed,
            "start": self.start,
            "end": self.end,
            "requests": self.requests,
            "attack_classes": sorted({a.attack for a in self.attacks}),
            "attacks": [a.to_dict() for a in self.attacks],
            "benign": [b.to_dict() for b in self.benign],
            "meta": self.meta,
        }

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2))
        return path


def load_labels(path: str | Path) -> Labels:
    """Read a ``labels.json`` written by the simulator."""
    d = orjson.loads(Path(path).read_bytes())
    benign = [BenignLabel(b["actor"].get("user", ""), b.get("role", ""), list(b["actor"].get("ips", [])), list(b.get("event_ids", [])))
              for b in d.get("benign", [])]
    return Labels(int(d.get("seed", 0)), float(d["start"]), float(d["end"]), int(d["requests"]),
                  [AttackLabel.from_dict(a) for a in d.get("attacks", [])], benign, dict(d.get("meta", {})))
