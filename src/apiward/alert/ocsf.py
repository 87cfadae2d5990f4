"""OCSF 1.x sink: each alert as a Detection Finding (class 2004) and its
evidence calls as API Activity events (class 6003), as JSON lines, POSTed
to ``url`` (``application/x-ndjson``) or appended to ``path``.

Mapping: severity -> ``severity_id`` (1 informational .. 5 critical);
ATT&CK technique and tactic -> ``finding_info.attacks``; OWASP category
and CWE -> ``finding_info.types`` and ``unmapped``; the actor and its
address -> ``evidences``; ``new``/``update`` -> ``activity_id`` 1/2.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
import msgspec
import orjson

from apiward import __version__
from apiward.alert.base import Alert, DeliveryError
from apiward.model.taxonomy import attack_table, technique

__all__ = ["OcsfSink", "OcsfConfig", "detection_finding", "api_activity", "OCSF_VERSION"]

OCSF_VERSION = "1.3.0"
_SEV = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_SEV_NAME = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
_METHOD_ACTIVITY = {"POST": (1, "Create"), "GET": (2, "Read"), "HEAD": (2, "Read"), "PUT": (3, "Update"), "PATCH": (3, "Update"), "DELETE": (4, "Delete")}


class OcsfConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: str = "ocsf"
    url: str = ""
    path: str = ""
    timeout: float = 5.0
    api_activity: bool = True  # also emit the evidence calls as API Activity
    max_evidence: int = 5
    headers: dict[str, str] = {}

    def __post_init__(self) -> None:
        if bool(self.url) == bool(self.path):
            raise ValueError("set exactly one of url or path")


def _metadata(uid: str) -> dict[str, Any]:
    return {"version": OCSF_VERSION, "uid": uid, "product": {"name": "apiward", "vendor_name": "apiward", "version": __version__}}


def _tactic_uid(short: str) -> str:
    for t in attack_table()["tactics"]:
        if t["shortname"] == short:
            return t["id"]
    return ""


def detection_finding(a: Alert) -> dict[str, Any]:
    sev = _SEV.get(a.severity, 3)
    activity = 2 if a.action == "update" else 1
    attacks = []
    for tid in a.attack:
        t = technique(tid) or {}
        tac = a.tactics[0] if a.tactics else (t.get("tactics") or [""])[0]
        attacks.append({"technique": {"uid": tid, "name": t.get("name", "")}, "tactic": {"uid": _tactic_uid(tac), "name": tac},
                        "version": attack_table()["version"]})
    ev: dict[str, Any] = {"actor": {"user": {"name": a.actor_display or a.actor, "uid": a.actor}}}
    if a.client_ip:
        ev["src_endpoint"] = {"ip": a.client_ip}
    if a.endpoint:
        method, _, path = a.endpoint.partition(" ")
        ev["http_request"] = {"http_method": method, "url": {"path": path}}
    return {
        "class_uid": 2004, "class_name": "Detection Finding", "category_uid": 2, "category_name": "Findings",
        "activity_id": activity, "activity_name": "Create" if activity == 1 else "Update", "type_uid": 200400 + activity,
        "time": int(a.last_seen * 1000), "severity_id": sev, "severity": _SEV_NAME[sev], "status_id": 1, "status": "New",
        "confidence_score": int(round(a.confidence * 100)),
        "message": a.summary or a.title,
        "metadata": _metadata(f"{a.id}:{a.version}"),
        "finding_info": {
            "uid": a.id, "title": a.title, "desc": a.summary, "types": [*a.detectors, *a.owasp],
            "first_seen_time": int(a.first_seen * 1000), "last_seen_time": int(a.last_seen * 1000), "created_time": int(a.first_seen * 1000),
            "analytic": {"name": a.detector, "uid": a.detector, "type_id": 1, "type": "Rule"},
            "attacks": attacks, "related_events": [{"uid": e} for e in a.event_ids],
        },
        "evidences": [ev],
        "resources": [{"name": a.endpoint, "type": "API Endpoint"}] if a.endpoint else [],
        "unmapped": {"owasp": a.owasp, "cwe": a.cwe, "incident": a.incident, "kind": a.kind, "events": a.events, "version": a.version},
    }


def api_activity(call: dict[str, Any], alert: Alert) -> dict[str, Any]:
    method = (call.get("method") or "GET").upper()
    act, name = _METHOD_ACTIVITY.get(method, (99, "Other"))
    status = call.get("status")
    out = {
        "class_uid": 6003, "class_name": "API Activity", "category_uid": 6, "category_name": "Application Activity",
        "activity_id": act, "activity_name": name, "type_uid": 600300 + act, "time": int(float(call["ts"]) * 1000),
        "severity_id": 1, "severity": "Informational",
        "status_id": 1 if status and status < 400 else 2, "status": "Success" if status and status < 400 else "Failure",
        "metadata": _metadata(call["id"]),
        "actor": {"user": {"name": call.get("actor_user") or call.get("actor") or "", "uid": call.get("actor") or ""}},
        "api": {"operation": f"{method} {call.get('template') or call.get('path')}", "request": {"uid": call["id"]},
                "response": {"code": status}},
        "src_endpoint": {"ip": call.get("client_ip") or ""},
        "http_request": {"http_method": method, "url": {"path": call.get("path") or "", "hostname": call.get("host") or ""},
                         "user_agent": call.get("user_agent") or ""},
        "http_response": {"code": status},
        "unmapped": {"finding": alert.id},
    }
    return out


class OcsfSink:
    type: ClassVar[str] = "ocsf"

    def __init__(self, name: str, cfg: OcsfConfig, lookup: Callable[[Alert], list[dict[str, Any]]] | None = None, transport: Any = None) -> None:
        self.name = name
        self.cfg = cfg
        self.lookup = lookup
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=cfg.timeout, transport=transport, trust_env=False) if cfg.url else None

    def lines(self, alerts: list[Alert]) -> bytes:
        out = []
        for a in alerts:
            out.append(orjson.dumps(detection_finding(a)))
            if self.cfg.api_activity and self.lookup is not None and a.event_ids:
                for call in self.lookup(a)[: self.cfg.max_evidence]:
                    out.append(orjson.dumps(api_activity(call, a)))
        return b"\n".join(out) + b"\n"

    def send(self, alerts: list[Alert]) -> None:
        data = self.lines(alerts)
        if self._client is not None:
            try:
                r = self._client.post(self.cfg.url, content=data, headers={"content-type": "application/x-ndjson", **self.cfg.headers})
            except httpx.HTTPError as exc:
                raise DeliveryError(f"{self.name}: {type(exc).__name__}: {exc}") from None
            if not 200 <= r.status_code < 300:
                raise DeliveryError(f"{self.name}: HTTP {r.status_code}")
            return
        try:
            with self._lock, open(self.cfg.path, "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise DeliveryError(f"{self.name}: {exc}") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
