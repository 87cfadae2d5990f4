"""Webhook sink: JSON over HTTP POST, signed, retried with backoff.

Body: ``{"apiward": 1, "alerts": [alert, ...]}``. Headers:
``X-Apiward-Timestamp`` (Unix seconds) and, with a secret,
``X-Apiward-Signature: sha256=<hex>``, the HMAC-SHA256 of
``"<timestamp>." + body`` (a receiver recomputes it and rejects stale
timestamps, so a captured request cannot be replayed later).
``Idempotency-Key`` lists ``<id>:<version>`` of the batch.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import Any, ClassVar

import httpx
import msgspec
import orjson

from apiward.alert.base import Alert, DeliveryError

__all__ = ["WebhookSink", "WebhookConfig", "sign"]


class WebhookConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: str = "webhook"
    url: str
    secret: str = ""  # HMAC key; prefer secret_env
    secret_env: str = ""  # environment variable holding the HMAC key
    timeout: float = 5.0
    retries: int = 3  # attempts per delivery before the outbox takes over
    backoff: float = 0.5  # seconds, doubled per attempt
    headers: dict[str, str] = {}
    verify_tls: bool = True

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("url must be http(s)://...")
        if self.retries < 1:
            raise ValueError("retries must be >= 1")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookSink:
    type: ClassVar[str] = "webhook"

    def __init__(self, name: str, cfg: WebhookConfig, transport: Any = None) -> None:
        self.name = name
        self.cfg = cfg
        secret = cfg.secret or (os.environ.get(cfg.secret_env, "") if cfg.secret_env else "")
        self._secret = secret.encode() if secret else b""
        self._client = httpx.Client(timeout=cfg.timeout, verify=cfg.verify_tls, transport=transport, trust_env=False)

    def send(self, alerts: list[Alert]) -> None:
        body = orjson.dumps({"apiward": 1, "alerts": [a.to_dict() for a in alerts]})
        last = ""
        for attempt in range(self.cfg.retries):
            ts = str(int(time.time()))
            headers = {"content-type": "application/json", "user-agent": "apiward-webhook/1", "x-apiward-timestamp": ts,
                       "idempotency-key": ",".join(f"{a.id}:{a.version}" for a in alerts), **self.cfg.headers}
            if self._secret:
                headers["x-apiward-signature"] = sign(self._secret, ts, body)
            try:
                r = self._client.post(self.cfg.url, content=body, headers=headers)
                if 200 <= r.status_code < 300:
                    return
                last = f"HTTP {r.status_code}"
                if 400 <= r.status_code < 500 and r.status_code not in (408, 409, 425, 429):
                    raise DeliveryError(f"{self.name}: {last} (rejected)")
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < self.cfg.retries:
                time.sleep(self.cfg.backoff * (2**attempt))
        raise DeliveryError(f"{self.name}: {last}")

    def close(self) -> None:
        self._client.close()
