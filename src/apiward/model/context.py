"""What the discover stage tells later stages about one call.

The pipeline builds a :class:`Context` per call (endpoint template, path
parameters, sensitive data found) so every detector reuses that work instead
of redoing it.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["Context", "EndpointRef", "SensitiveHit"]


class EndpointRef(msgspec.Struct, kw_only=True, frozen=True):
    """The endpoint a call was resolved to: ``GET /users/{userId}``."""

    service: str = ""
    host: str = ""
    method: str = "GET"
    template: str = "/"
    path_params: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def key(self) -> str:
        """Partition key of per-endpoint state."""
        return f"{self.host}|{self.method} {self.template}"

    def param(self, name: str) -> str | None:
        for k, v in self.path_params:
            if k == name:
                return v
        return None


class SensitiveHit(msgspec.Struct, kw_only=True, frozen=True):
    """One sensitive value found in a call.

    ``location`` is one of ``path``, ``query``, ``header``, ``cookie``,
    ``request_body``, ``response_body``, ``error_body``; ``field`` a dotted
    path into the body (``user.cards[].number``) or the parameter name;
    ``cls`` a lower-case class name (``email``, ``credit_card``...).
    ``value_hash`` is a keyed digest of the value so detectors can tell values
    apart (whose email is this?) without holding it.
    """

    location: str
    field: str
    cls: str
    value_hash: str = ""
    confidence: float = 1.0


class Context(msgspec.Struct, kw_only=True, dict=True):
    """Per-call facts shared with detectors. ``inventory`` and ``baselines``
    are the live discover/learn objects (read them, do not mutate them);
    ``mode`` is ``learn``, ``detect`` or ``both``."""

    endpoint: EndpointRef
    sensitive: list[SensitiveHit] = []
    mode: str = "both"
    inventory: Any = None
    baselines: Any = None
    new_endpoint: bool = False
    #: Per-call facts shared by detectors and baselines
    #: (:class:`apiward.detect.facts.Facts`, made on first use by ``facts(call, ctx)``).
    facts: Any = None
    #: Learners the pipeline shares between detectors (login history,
    #: privileges...), by name; ``None`` outside a pipeline.
    shared: Any = None
    #: The pipeline's actor trust (:class:`apiward.learn.trust.Trust`), ``None`` outside one.
    trust: Any = None

    def classes(self, location: str | None = None) -> set[str]:
        """Sensitive classes seen, optionally only at one location."""
        return {h.cls for h in self.sensitive if location is None or h.location == location}
