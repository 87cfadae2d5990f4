"""Tiny factories for tests and examples (mitmproxy's ``tflow`` idea).

``make_call(method="GET", path="/users/42", status=200, json={...})`` builds a
realistic :class:`ApiCall` without the ceremony.
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import urlsplit, parse_qsl

import orjson

from apiward.model.call import Actor, ApiCall, Peer, Workload
from apiward.ingest.base import make_request, make_response

__all__ = ["ServedASGI", "lax_request_end", "make_call"]

_counter = itertools.count()


def make_call(
    method: str = "GET",
    path: str = "/",
    *,
    status: int | None = 200,
    json: Any = None,
    req_json: Any = None,
    body: bytes | None = None,
    req_body: bytes | None = None,
    headers: dict[str, str] | None = None,
    resp_headers: dict[str, str] | None = None,
    host: str = "api.example.com",
    scheme: str = "https",
    user: str = "",
    actor_key: str = "",
    ip: str = "203.0.113.7",
    user_agent: str = "test-agent/1.0",
    ts: float = 1_764_000_000.0,
    id: str | None = None,
    route: str = "",
    service: str = "",
) -> ApiCall:
    """An ApiCall. ``json``/``body`` is the response body, ``req_json``/
    ``req_body`` the request body; ``path`` may carry a query string;
    ``user`` sets a resolved user actor, else the actor is the IP."""
    parts = urlsplit(path)
    hdrs = dict(headers or {})
    if req_json is not None:
        req_body = orjson.dumps(req_json)
        hdrs.setdefault("content-type", "application/json")
    hdrs.setdefault("user-agent", user_agent)
    request = make_request(
        method=method,
        path=parts.path or "/",
        query=parse_qsl(parts.query, keep_blank_values=True),
        headers=list(hdrs.items()),
        body=req_body or b"",
        scheme=scheme,
        host=host,
    )
    response = None
    if status is not None:
        rh = dict(resp_headers or {})
        if json is not None:
            body = orjson.dumps(json)
            rh.setdefault("content-type", "application/json")
        response = make_response(status=status, headers=list(rh.items()), body=body or b"")
    if user:
        actor = Actor(key=actor_key or f"user:{user}", kind="user", user=user, ip=ip, user_agent=user_agent, auth_scheme="bearer")
    else:
        actor = Actor(key=actor_key or f"ip:{ip}", kind="ip", ip=ip, user_agent=user_agent)
    return ApiCall(
        id=id or f"test#{next(_counter)}",
        ts=ts,
        duration_ms=12.0,
        request=request,
        response=response,
        src=Peer(ip=ip, port=40000),
        dst=Peer(ip="10.0.0.5", port=443),
        workload=Workload(route=route, service=service),
        actor=actor,
        source="test",
    )


def lax_request_end(data: bytes, prefer_te: bool) -> int | None:
    """Where a lax HTTP/1.1 server thinks the first request in ``data`` ends
    (``None``: it cannot tell). Lines split on LF, names trimmed and
    lower-cased, the first of a Content-Length list, any Transfer-Encoding
    naming ``chunked``; ``prefer_te`` picks which framing wins when both are
    present. The reference the proxy's parser is fuzzed against: a request
    it accepts must end at the same byte for either style."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    cl: int | None = None
    te = False
    for line in data[:end].split(b"\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                cl = int(value.strip().split(b",")[0])
            except ValueError:
                cl = 0
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            te = True
    pos = end + 4
    if not (te and (prefer_te or cl is None)):
        return pos + (cl or 0)
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return None
        try:
            size = int(data[pos:nl].split(b";")[0].strip() or b"0", 16)
        except ValueError:
            return None
        pos = nl + 1
        if size == 0:
            while True:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    return None
                line, pos = data[pos:nl], nl + 1
                if not line.strip():
                    return pos
        pos += size + 2


class ServedASGI:
    """An ASGI app under uvicorn in a daemon thread on a free loopback port,
    as a context manager (tests: real servers, real sockets)."""

    def __init__(self, asgi: Any, *, lifespan: str = "off") -> None:
        import socket
        import threading

        import uvicorn

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(asgi, log_level="critical", lifespan=lifespan))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "ServedASGI":
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
