"""Splunk HTTP Event Collector sink: alerts as HEC events
(``/services/collector/event``, ``Authorization: Splunk <token>``), one
JSON object per alert in one request; HEC's ``{"code": 0}`` is success.
"""

from __future__ import annotations

import os
import socket
from typing import Any, ClassVar

import httpx
import msgspec
import orjson

from apiward.alert.base import Alert, DeliveryError

__all__ = ["SplunkSink", "SplunkConfig"]


class SplunkConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: str = "splunk"
    url: str  # https://splunk.example:8088
    token: str = ""
    token_env: str = ""
    index: str = ""
    source: str = "apiward"
    sourcetype: str = "apiward:alert"
    timeout: float = 5.0
    verify_tls: bool = True

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("url must be http(s)://host:port")
        if not (self.token or self.token_env):
            raise ValueError("set token or token_env")


class SplunkSink:
    type: ClassVar[str] = "splunk"

    def __init__(self, name: str, cfg: SplunkConfig, transport: Any = None) -> None:
        self.name = name
        self.cfg = cfg
        self._token = cfg.token or os.environ.get(cfg.token_env, "")
        self._host = socket.gethostname()
        self._client = httpx.Client(timeout=cfg.timeout, verify=cfg.verify_tls, transport=transport, trust_env=False)

    def send(self, alerts: list[Alert]) -> None:
        if not self._token:
            raise DeliveryError(f"{self.name}: no HEC token (token_env {self.cfg.token_env} is empty)")
        events = []
        for a in alerts:
            e: dict[str, Any] = {"time": round(a.last_seen, 3), "host": self._host, "source": self.cfg.source,
                                 "sourcetype": self.cfg.sourcetype, "event": a.to_dict()}
            if self.cfg.index:
                e["index"] = self.cfg.index
            events.append(orjson.dumps(e))
        try:
            r = self._client.post(self.cfg.url.rstrip("/") + "/services/collector/event", content=b"\n".join(events),
                                  headers={"authorization": f"Splunk {self._token}", "content-type": "application/json"})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.name}: {type(exc).__name__}: {exc}") from None
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code != 200 or body.get("code", 0) != 0:
            raise DeliveryError(f"{self.name}: HTTP {r.status_code} {body.get('text', '')}".strip())

    def close(self) -> None:
        self._client.close()
