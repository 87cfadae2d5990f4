"""Findings: what a detector concluded, with the evidence it rests on.

A finding type's fixed metadata (title, severity, OWASP API 2023 category,
ATT&CK technique and tactic, CWE) lives on the detector class (pySigma style);
instances carry the actor, endpoint, event ids and evidence.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

__all__ = ["Finding", "SEVERITIES", "KINDS", "MAX_EVENT_IDS", "severity_rank", "finding_id"]

SEVERITIES = ("info", "low", "medium", "high", "critical")
#: ``attack``: an actor did something; ``exposure``: the API itself is weak
#: (returns others' data, takes credentials in URLs...). Exposures are about
#: endpoints and never name the ordinary users who call them.
KINDS = ("attack", "exposure")
#: How many event ids a finding carries itself; every event it rests on is
#: in the lake's ``finding_events`` table.
MAX_EVENT_IDS = 200


def severity_rank(severity: str) -> int:
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return 0


def finding_id(*parts: str) -> str:
    """Deterministic id from the finding's identity (same input, same id)."""
    h = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=6).hexdigest()
    return f"F-{h}"


class Finding(msgspec.Struct, kw_only=True):
    """One finding. ``key`` groups repeated observations of the same thing
    (same detector, actor, endpoint, object...) into one finding whose
    ``event_ids`` grow and whose ``last_seen`` moves; ``id`` derives from it.

    ``evidence`` is structured (JSON-able); ``summary`` is the human sentence.
    """

    id: str = ""
    key: str = ""
    detector: str
    title: str
    kind: str = "attack"  # attack | exposure (see KINDS)
    severity: str = "medium"
    confidence: float = 0.5
    owasp: str = ""
    attack: str = ""
    tactic: str = ""
    cwe: str = ""
    actor: str = ""  # actor key
    actor_display: str = ""  # user name and address a person recognises
    service: str = ""
    host: str = ""
    endpoint: str = ""  # "GET /users/{userId}"
    event_ids: list[str] = []
    first_seen: float = 0.0
    last_seen: float = 0.0
    count: int = 1
    events: int = 0  # distinct events it rests on (event_ids keeps the first MAX_EVENT_IDS)
    summary: str = ""
    evidence: dict[str, Any] = {}
    incident: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            self.key = "|".join((self.detector, self.actor, self.endpoint))
        if not self.id:
            self.id = finding_id(self.key)
        if len(self.event_ids) > MAX_EVENT_IDS:
            self.event_ids = self.event_ids[:MAX_EVENT_IDS]
        if not self.events:
            self.events = len(self.event_ids)

    def merge(self, newer: "Finding", new_events: int | None = None) -> None:
        """Fold a later observation of the same finding into this one.
        ``new_events``: how many of ``newer``'s events are new to this
        finding, when the caller knows (the pipeline does); else counted
        from the kept ``event_ids``."""
        seen = set(self.event_ids)
        added = 0
        for e in newer.event_ids:
            if e not in seen:
                added += 1
                seen.add(e)
                if len(self.event_ids) < MAX_EVENT_IDS:
                    self.event_ids.append(e)
        self.events += added if new_events is None else new_events
        self.first_seen = min(self.first_seen, newer.first_seen)
        self.last_seen = max(self.last_seen, newer.last_seen)
        self.count += newer.count
        if severity_rank(newer.severity) > severity_rank(self.severity):
            self.severity = newer.severity
        self.confidence = max(self.confidence, newer.confidence)
        self.summary = newer.summary or self.summary
        if newer.evidence:
            self.evidence = newer.evidence
