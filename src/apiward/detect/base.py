"""The detector protocol (river's verbs, mitmproxy's optional hooks).

A detector is a plain object with class-level metadata and two methods:
``score_one`` judges a call by what came before it and returns findings;
``learn_one`` folds the call into the detector's own state. The pipeline
calls score before learn for every call. State is created lazily, keyed
(by endpoint, actor, object) and must pickle: it is saved in the state
directory and survives restarts. Constructor arguments are the only knobs.

Cost and false-positive assumptions go in each detector's docstring.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["Detector", "DetectorBase"]


@runtime_checkable
class Detector(Protocol):
    id: ClassVar[str]

    def learn_one(self, call: ApiCall, ctx: Context) -> None: ...

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]: ...


class DetectorBase:
    """Convenience base: class metadata plus :meth:`finding` to build
    findings that carry it. Subclasses set the ClassVars and override
    ``learn_one``/``score_one``; the optional hooks ``learn_many`` and
    ``score_many`` exist for batch speed-ups (defaults loop), and
    ``move_endpoint(old_key, new_key)`` (endpoint keys as
    :attr:`EndpointRef.key`) lets a detector re-key per-endpoint state when
    the templater merges or splits templates."""

    id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    severity: ClassVar[str] = "medium"
    owasp: ClassVar[str] = ""
    attack: ClassVar[str] = ""
    tactic: ClassVar[str] = ""
    cwe: ClassVar[str] = ""
    description: ClassVar[str] = ""
    kind: ClassVar[str] = "attack"  # default kind of its findings: attack | exposure

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        return None

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        return []

    def finding(
        self,
        call: ApiCall,
        ctx: Context,
        *,
        summary: str,
        evidence: dict[str, Any] | None = None,
        confidence: float = 0.7,
        severity: str | None = None,
        key: str | None = None,
        event_ids: list[str] | None = None,
        first_seen: float | None = None,
        title: str | None = None,
        kind: str | None = None,
    ) -> Finding:
        """A finding about ``call`` with this detector's metadata.

        ``key`` defaults to detector + actor + endpoint, so repeats of the same
        behaviour fold into one finding instead of an alert storm. An
        ``exposure`` (the API is weak, see :data:`~apiward.model.finding.KINDS`)
        names no actor and its key defaults to detector + endpoint."""
        ep = ctx.endpoint
        kind = kind or self.kind
        if kind == "exposure":
            return Finding(
                key=key or "|".join((self.id, ep.key)),
                detector=self.id,
                title=title or self.title,
                kind=kind,
                severity=severity or self.severity,
                confidence=confidence,
                owasp=self.owasp,
                attack=self.attack,
                tactic=self.tactic,
                cwe=self.cwe,
                service=ep.service,
                host=ep.host,
                endpoint=ep.name,
                event_ids=event_ids if event_ids is not None else [call.id],
                first_seen=first_seen if first_seen is not None else call.ts,
                last_seen=call.ts,
                summary=summary,
                evidence=evidence or {},
            )
        return Finding(
            key=key or "|".join((self.id, call.actor.key, ep.key)),
            detector=self.id,
            title=title or self.title,
            kind=kind,
            severity=severity or self.severity,
            confidence=confidence,
            owasp=self.owasp,
            attack=self.attack,
            tactic=self.tactic,
            cwe=self.cwe,
            actor=call.actor.key,
            actor_display=call.actor.display,
            service=ep.service,
            host=ep.host,
            endpoint=ep.name,
            event_ids=event_ids if event_ids is not None else [call.id],
            first_seen=first_seen if first_seen is not None else call.ts,
            last_seen=call.ts,
            summary=summary,
            evidence=evidence or {},
        )
