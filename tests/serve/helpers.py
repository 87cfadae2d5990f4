"""Small helpers shared by the server tests."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')


def login(client: Any, token: str, next_url: str = "/") -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    page = client.get("/login")
    pre = CSRF_INPUT.search(page.text).group(1)
    r = client.post("/login", data={"csrf": pre, "token": token, "next": next_url}, follow_redirects=False)
    assert r.status_code == 303, r.text
    home = client.get("/findings")
    return CSRF_INPUT.search(home.text).group(1)


def telemetry(method: str = "GET", path: str = "/api/v1/accounts/7", status: int = 200, *, ts_ms: int | None = None,
              req_id: str = "", body: bytes = b'{"id": 7, "email": "kim@example.com"}', src: str = "198.51.100.23:50123",
              headers: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """One APIClarity telemetry object, as its Envoy/Kong/Tyk plugins post it."""
    t = ts_ms if ts_ms is not None else int(time.time() * 1000)
    hs = [{"key": k, "value": v} for k, v in (headers or [("authorization", "Bearer abc.def.ghi"), ("user-agent", "curl/8.4.0")])]
    return {
        "requestID": req_id,
        "scheme": "https",
        "sourceAddress": src,
        "destinationAddress": "10.0.0.5:8080",
        "destinationNamespace": "shop",
        "request": {"method": method, "path": path, "host": "shop.test",
                    "common": {"version": "1.1", "headers": hs, "body": "", "time": t}},
        "response": {"statusCode": str(status),
                     "common": {"version": "1.1", "headers": [{"key": "content-type", "value": "application/json"}],
                                "body": base64.b64encode(body).decode(), "time": t + 12}},
    }
