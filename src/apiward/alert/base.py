"""What every sink shares: the alert, the sink protocol, delivery errors.

An :class:`Alert` is one incident (or one finding, with ``unit =
"finding"``) in a version: ``action`` is ``new`` the first time and
``update`` when it changed materially (a new finding, a higher severity, a
new stage). ``id`` plus ``version`` is the idempotency key receivers can
use to drop a redelivery.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Protocol

import msgspec

from apiward.model.finding import Finding, severity_rank

__all__ = ["Alert", "Sink", "DeliveryError", "alert_from_finding", "alert_from_incident", "test_alert", "SYSLOG_SEVERITY"]

#: apiward severity -> syslog severity (RFC 5424: 2 critical .. 6 informational)
SYSLOG_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}


class DeliveryError(Exception):
    """A delivery that failed and should be retried later."""


class Alert(msgspec.Struct, kw_only=True):
    id: str  # dedup key: incident id or finding id
    kind: str  # incident | finding | test
    action: str = "new"  # new | update | test
    version: int = 1
    severity: str = "medium"
    title: str = ""
    summary: str = ""
    actor: str = ""
    actor_display: str = ""
    client_ip: str = ""
    endpoint: str = ""
    detector: str = ""
    detectors: list[str] = []
    owasp: list[str] = []
    attack: list[str] = []
    tactics: list[str] = []
    cwe: list[str] = []
    confidence: float = 0.5
    first_seen: float = 0.0
    last_seen: float = 0.0
    events: int = 0
    event_ids: list[str] = []
    findings: list[str] = []
    incident: str = ""

    def fingerprint(self) -> str:
        """What makes an update worth sending (not every new event)."""
        raw = "|".join([self.severity, ",".join(sorted(self.findings)), ",".join(sorted(self.tactics)), self.title])
        return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


class Sink(Protocol):
    """A destination. ``send`` delivers a batch or raises
    :class:`DeliveryError` (the outbox keeps the batch and retries)."""

    type: ClassVar[str]
    name: str

    def send(self, alerts: list[Alert]) -> None: ...

    def close(self) -> None: ...


def _client_ip(display: str) -> str:
    if "(" in display and display.endswith(")"):
        return display[display.rindex("(") + 1 : -1]
    return display if display.replace(".", "").replace(":", "").isalnum() and any(c in display for c in ".:") else ""


def alert_from_finding(f: Finding) -> Alert:
    return Alert(
        id=f.id, kind="finding", severity=f.severity, title=f.title, summary=f.summary, actor=f.actor,
        actor_display=f.actor_display, client_ip=_client_ip(f.actor_display), endpoint=f.endpoint, detector=f.detector,
        detectors=[f.detector], owasp=[f.owasp] if f.owasp else [], attack=[f.attack] if f.attack else [],
        tactics=[f.tactic] if f.tactic else [], cwe=[f.cwe] if f.cwe else [], confidence=f.confidence,
        first_seen=f.first_seen, last_seen=f.last_seen, events=f.events, event_ids=f.event_ids[:20], findings=[f.id],
        incident=f.incident,
    )


def alert_from_incident(inc: dict[str, Any], findings: dict[str, Finding]) -> Alert:
    fs = [findings[i] for i in inc["finding_ids"] if i in findings]
    fs.sort(key=lambda f: (-severity_rank(f.severity), f.first_seen))
    top = fs[0] if fs else None
    n = len(fs)
    title = f"{inc['actor_display'] or inc['actor']}: {top.title if top else 'incident'}" + (f" (+{n - 1} more)" if n > 1 else "")
    return Alert(
        id=inc["id"], kind="incident", severity=inc["severity"], title=title, summary=inc.get("summary", ""),
        actor=inc["actor"], actor_display=inc["actor_display"], client_ip=_client_ip(inc["actor_display"] or ""),
        endpoint=top.endpoint if top else "", detector=top.detector if top else "",
        detectors=sorted({f.detector for f in fs}), owasp=sorted({f.owasp for f in fs if f.owasp}),
        attack=sorted({f.attack for f in fs if f.attack}), tactics=list(inc.get("tactics", [])), cwe=sorted({f.cwe for f in fs if f.cwe}),
        confidence=max((f.confidence for f in fs), default=0.5), first_seen=inc["first_seen"], last_seen=inc["last_seen"],
        events=sum(f.events for f in fs), event_ids=[e for f in fs[:3] for e in f.event_ids[:5]], findings=sorted(inc["finding_ids"]),
        incident=inc["id"],
    )


def test_alert(now: float) -> Alert:
    """What ``apiward alerts test`` sends."""
    return Alert(
        id=f"T-{int(now)}", kind="test", action="test", severity="low", title="apiward test alert",
        summary="A test alert from `apiward alerts test`: the sink is configured and reachable.", actor="test",
        actor_display="apiward", endpoint="GET /apiward/test", detector="apiward.test", detectors=["apiward.test"],
        owasp=["API9:2023"], attack=["T1595"], tactics=["reconnaissance"], cwe=["CWE-1059"], first_seen=now, last_seen=now,
    )
