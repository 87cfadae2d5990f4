"""Forward captured events to an apiward server instead of analysing them
in-process: a sink for the capture middleware (``sink=ServerSink(...)``)
and ``apiward proxy --forward``. Batches go to ``POST /api/events`` as
apiward JSONL with an ingest token; a 429 (queue full) or 503 waits for the
server's ``Retry-After`` and tries again, as does a connection error, for
up to ``max_wait`` seconds before the batch is reported as failed (the
capture queue counts it)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from apiward.model.call import ApiCall, dumps

__all__ = ["ForwardError", "ServerSink"]

_PER_REQUEST = 5_000  # the server takes at most 10,000 events per request


class ForwardError(RuntimeError):
    """The server refused a batch, or stayed unreachable for ``max_wait`` seconds."""


class ServerSink:
    """``sink(calls)``: post a batch to an apiward server; blocks while it asks to wait."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0, max_wait: float = 300.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"server URL must start with http:// or https://, not {url!r}")
        self.max_wait = max_wait
        self.sent = 0
        self.retries = 0
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, trust_env=False, transport=transport,
                                    headers={"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"})

    def __call__(self, calls: list[ApiCall]) -> None:
        for i in range(0, len(calls), _PER_REQUEST):
            chunk = calls[i:i + _PER_REQUEST]
            self._post(b"".join(dumps(c) + b"\n" for c in chunk), len(chunk))

    def _post(self, body: bytes, n: int) -> None:
        deadline = time.monotonic() + self.max_wait
        while True:
            wait: float
            try:
                r = self._client.post("/api/events", content=body)
            except httpx.TransportError as exc:
                reason, wait = f"{type(exc).__name__}: {exc}", 1.0
            else:
                if r.status_code == 202:
                    self.sent += n
                    return
                if r.status_code not in (429, 503):
                    raise ForwardError(f"apiward server refused {n} events: HTTP {r.status_code} {r.text[:300]}")
                reason, wait = f"HTTP {r.status_code}", _retry_after(r.headers.get("retry-after"))
            if time.monotonic() + wait > deadline:
                raise ForwardError(f"gave up sending {n} events after {self.max_wait:g}s ({reason})")
            self.retries += 1
            time.sleep(wait)

    def close(self) -> None:
        self._client.close()


def _retry_after(value: Any) -> float:
    try:
        return min(60.0, max(0.1, float(value)))
    except (TypeError, ValueError):
        return 1.0
