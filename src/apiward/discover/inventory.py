"""The API inventory: every endpoint seen, with its template, counts, auth
posture, sensitive data and first/last seen.

The pipeline calls :meth:`Inventory.observe` once per call; it resolves the
call to an endpoint (templating) and folds the call into that endpoint's
record. Bounded memory: per-endpoint state is counters and capped sets.
"""

from __future__ import annotations

from typing import Any

import msgspec

from apiward.discover.templating import Templater
from apiward.model.call import ApiCall
from apiward.model.context import EndpointRef, SensitiveHit

__all__ = ["Inventory", "EndpointRecord", "service_of"]


def service_of(call: ApiCall) -> str:
    """The service a call belongs to: the workload's service when known, else
    the host without its port."""
    if call.workload.service:
        return call.workload.service
    host = call.request.host
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class EndpointRecord(msgspec.Struct, kw_only=True):
    service: str
    host: str
    method: str
    template: str
    calls: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    statuses: dict[int, int] = {}
    auth_schemes: dict[str, int] = {}
    unauth_2xx: int = 0
    sensitive: dict[str, list[str]] = {}  # "location|field" -> [classes]
    actors: int = 0  # distinct actors (capped count)
    _actor_sample: set[str] = set()

    def fold(self, call: ApiCall, hits: list[SensitiveHit]) -> None:
        self.calls += 1
        ts = call.ts
        if not self.first_seen or ts < self.first_seen:
            self.first_seen = ts
        if ts > self.last_seen:
            self.last_seen = ts
        st = call.status
        self.statuses[st] = self.statuses.get(st, 0) + 1
        scheme = call.actor.auth_scheme
        if scheme:
            self.auth_schemes[scheme] = self.auth_schemes.get(scheme, 0) + 1
        elif 200 <= st < 300:
            self.unauth_2xx += 1
        if len(self._actor_sample) < 256 and call.actor.key not in self._actor_sample:
            self._actor_sample.add(call.actor.key)
            self.actors = len(self._actor_sample)
        for h in hits:
            k = f"{h.location}|{h.field}"
            classes = self.sensitive.get(k)
            if classes is None:
                if len(self.sensitive) < 500:
                    self.sensitive[k] = [h.cls]
            elif h.cls not in classes:
                classes.append(h.cls)


class Inventory:
    """Endpoints keyed by (host, method, template)."""

    def __init__(self, *, templater: Templater | None = None) -> None:
        self.templater = templater or Templater()
        self.endpoints: dict[tuple[str, str, str], EndpointRecord] = {}

    def resolve(self, call: ApiCall) -> EndpointRef:
        req = call.request
        self.templater.observe(req.method, req.host, req.path, route=call.workload.route)
        template, params = self.templater.resolve(req.method, req.host, req.path, route=call.workload.route)
        return EndpointRef(service=service_of(call), host=req.host, method=req.method, template=template, path_params=params)

    def observe(self, call: ApiCall, ref: EndpointRef, hits: list[SensitiveHit]) -> bool:
        """Fold ``call`` into its endpoint; True when the endpoint is new."""
        key = (ref.host, ref.method, ref.template)
        rec = self.endpoints.get(key)
        new = rec is None
        if rec is None:
            rec = self.endpoints[key] = EndpointRecord(service=ref.service, host=ref.host, method=ref.method, template=ref.template)
        rec.fold(call, hits)
        return new

    def to_list(self) -> list[dict[str, Any]]:
        return [msgspec.to_builtins(r) for r in sorted(self.endpoints.values(), key=lambda r: (r.service, r.template, r.method))]
