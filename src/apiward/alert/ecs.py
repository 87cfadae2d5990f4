"""Elastic sink: each alert as an Elastic Common Schema (ECS 8.x)
document, indexed with the ``_bulk`` API at ``url`` (an Elasticsearch or
OpenSearch base URL) or appended as JSON lines to ``path``.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from typing import Any, ClassVar

import httpx
import msgspec
import orjson

from apiward import __version__
from apiward.alert.base import Alert, DeliveryError
from apiward.model.taxonomy import tactic_name, technique

__all__ = ["EcsSink", "EcsConfig", "ecs_document"]

_SEV = {"info": 21, "low": 21, "medium": 47, "high": 73, "critical": 99}


class EcsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: str = "ecs"
    url: str = ""
    index: str = "apiward-alerts"
    path: str = ""
    api_key_env: str = ""  # environment variable with an Elasticsearch API key
    timeout: float = 5.0
    verify_tls: bool = True

    def __post_init__(self) -> None:
        if bool(self.url) == bool(self.path):
            raise ValueError("set exactly one of url or path")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ecs_document(a: Alert) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": _iso(a.last_seen),
        "ecs": {"version": "8.11.0"},
        "message": a.summary or a.title,
        "event": {"kind": "alert", "category": ["intrusion_detection", "web"], "type": ["info"], "module": "apiward",
                  "dataset": "apiward.alert", "id": f"{a.id}:{a.version}", "action": a.action, "severity": _SEV.get(a.severity, 47),
                  "risk_score": round(a.confidence * 100, 1), "start": _iso(a.first_seen), "end": _iso(a.last_seen)},
        "rule": {"id": a.detector, "name": a.title, "category": ", ".join(a.owasp), "ruleset": "apiward", "author": ["apiward"]},
        "threat": {"framework": "MITRE ATT&CK",
                   "technique": {"id": a.attack, "name": [(technique(t) or {}).get("name", "") for t in a.attack]},
                   "tactic": {"name": [tactic_name(t) for t in a.tactics]}},
        "observer": {"vendor": "apiward", "product": "apiward", "type": "api-security", "version": __version__},
        "labels": {"severity": a.severity, "kind": a.kind, "incident": a.incident, "owasp": ",".join(a.owasp), "cwe": ",".join(a.cwe)},
        "apiward": {"id": a.id, "version": a.version, "findings": a.findings, "detectors": a.detectors, "events": a.events,
                    "event_ids": a.event_ids, "actor": a.actor},
    }
    if a.actor.startswith("user:"):
        doc["user"] = {"name": a.actor[5:]}
    if a.client_ip:
        doc["source"] = {"ip": a.client_ip}
    if a.endpoint:
        method, _, path = a.endpoint.partition(" ")
        doc["http"] = {"request": {"method": method}}
        doc["url"] = {"path": path}
    if a.cwe:
        doc["vulnerability"] = {"id": a.cwe, "classification": "CWE"}
    return doc


class EcsSink:
    type: ClassVar[str] = "ecs"

    def __init__(self, name: str, cfg: EcsConfig, transport: Any = None) -> None:
        self.name = name
        self.cfg = cfg
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=cfg.timeout, verify=cfg.verify_tls, transport=transport, trust_env=False) if cfg.url else None

    def send(self, alerts: list[Alert]) -> None:
        docs = [ecs_document(a) for a in alerts]
        if self._client is None:
            try:
                with self._lock, open(self.cfg.path, "ab") as f:
                    f.write(b"".join(orjson.dumps(d) + b"\n" for d in docs))
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                raise DeliveryError(f"{self.name}: {exc}") from None
            return
        lines = []
        for a, d in zip(alerts, docs):
            lines.append(orjson.dumps({"index": {"_index": self.cfg.index, "_id": f"{a.id}:{a.version}"}}))
            lines.append(orjson.dumps(d))
        headers = {"content-type": "application/x-ndjson"}
        key = os.environ.get(self.cfg.api_key_env, "") if self.cfg.api_key_env else ""
        if key:
            headers["authorization"] = f"ApiKey {key}"
        try:
            r = self._client.post(self.cfg.url.rstrip("/") + "/_bulk", content=b"\n".join(lines) + b"\n", headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.name}: {type(exc).__name__}: {exc}") from None
        if not 200 <= r.status_code < 300:
            raise DeliveryError(f"{self.name}: HTTP {r.status_code}")
        try:
            body = r.json()
        except ValueError:
            body = {}
        if body.get("errors"):
            raise DeliveryError(f"{self.name}: bulk errors: {str(body)[:200]}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
