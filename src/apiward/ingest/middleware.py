"""Capture middleware for Python services: the part on the request path.

:class:`ASGICapture` and :class:`WSGICapture` copy each request and
response body up to ``body_cap`` bytes as they pass (the app and the client
see exactly what they would without it; streaming responses still stream)
and hand each exchange to ``submit``, which must never block (a
:meth:`apiward.live.LiveRunner.submit`). They only capture: the
middlewares that also analyse, ``ApiwardASGIMiddleware`` and
``ApiwardWSGIMiddleware`` (``state_dir=`` or ``sink=``), are in
:mod:`apiward.live.middleware`, above the pipeline.

The framework's matched route (``scope["route"]`` in Starlette/FastAPI)
becomes ``workload.route``, which wins over learned templating.

Cost per request: a few wrapper calls and a bounded bytes copy per body.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from io import BytesIO
from typing import Any

from apiward.ingest.base import DEFAULT_BODY_CAP
from apiward.ingest.capture import Exchange

__all__ = ["ASGICapture", "WSGICapture"]

_MOVED = ("ApiwardASGIMiddleware", "ApiwardWSGIMiddleware", "capture_backend")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        raise ImportError(f"{name} moved to apiward.live.middleware: from apiward.live.middleware import {name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _route_template(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    if route is None:
        return ""
    return getattr(route, "path_format", None) or getattr(route, "path", "") or ""


class _Capture:
    """What both share: the wrapped app and where exchanges go."""

    def __init__(self, app: Any, submit: Callable[[Exchange], Any], *, body_cap: int = DEFAULT_BODY_CAP, service: str = "") -> None:
        self.app = app
        self.submit = submit
        self.body_cap = body_cap
        self.service = service

    def close(self) -> None:
        """Called at the app's shutdown (ASGI lifespan); nothing to release
        here (the live middlewares drain and checkpoint)."""


class ASGICapture(_Capture):
    """ASGI middleware that captures every HTTP exchange (WebSocket and
    lifespan traffic pass through untouched; lifespan shutdown calls
    :meth:`close`)."""

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return

        ts = time.time()
        t0 = time.perf_counter()
        cap = self.body_cap
        raw_path = scope.get("raw_path")
        target = raw_path.decode("latin-1") if raw_path else scope.get("path", "/")
        qs = scope.get("query_string", b"")
        if qs:
            target = f"{target}?{qs.decode('latin-1')}"
        client = scope.get("client") or ("", 0)
        server = scope.get("server") or ("", 0)
        ex = Exchange(
            ts=ts,
            method=scope.get("method", "GET"),
            target=target,
            req_headers=[(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", ())],
            source="asgi",
            http_version="HTTP/" + scope.get("http_version", "1.1"),
            scheme=scope.get("scheme", "http"),
            src_ip=client[0] or "",
            src_port=client[1] or 0,
            dst_ip=server[0] or "",
            dst_port=server[1] or 0,
        )
        ex.service = self.service
        req_buf = bytearray()
        resp_buf = bytearray()
        sizes = [0, 0]
        done = [False]

        async def recv() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                if body:
                    sizes[0] += len(body)
                    room = cap - len(req_buf)
                    if room > 0:
                        req_buf.extend(body[:room])
            elif message["type"] == "http.disconnect" and not done[0]:
                ex.note("client", "disconnected")
            return message

        async def snd(message: dict[str, Any]) -> None:
            t = message["type"]
            if t == "http.response.start":
                ex.status = message["status"]
                ex.resp_headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in message.get("headers", ())]
            elif t == "http.response.body":
                body = message.get("body", b"")
                if body:
                    sizes[1] += len(body)
                    room = cap - len(resp_buf)
                    if room > 0:
                        resp_buf.extend(body[:room])
                if not message.get("more_body", False):
                    done[0] = True
            await send(message)

        try:
            await self.app(scope, recv, snd)
        except BaseException as exc:
            if not ex.status:
                ex.status = 500
            ex.note("app_error", exc.__class__.__name__)
            raise
        finally:
            ex.req_body, ex.req_size = bytes(req_buf), sizes[0]
            ex.resp_body, ex.resp_size = bytes(resp_buf), sizes[1]
            ex.route = _route_template(scope)
            ex.duration_ms = (time.perf_counter() - t0) * 1000.0
            if ex.status and not done[0]:
                ex.note("response", "incomplete")
            self.submit(ex)

    def _lifespan_send(self, send: Callable) -> Callable:
        async def wrapped(message: dict[str, Any]) -> None:
            if message.get("type") == "lifespan.shutdown.complete":
                self.close()
            await send(message)

        return wrapped


class _InputCopy:
    """A ``wsgi.input`` wrapper that copies what the app reads (up to a cap)."""

    def __init__(self, stream: Any, cap: int) -> None:
        self._s = stream
        self.buf = bytearray()
        self.size = 0
        self.cap = cap

    def _keep(self, data: bytes) -> bytes:
        if data:
            self.size += len(data)
            room = self.cap - len(self.buf)
            if room > 0:
                self.buf.extend(data[:room])
        return data

    def read(self, *args: Any) -> bytes:
        return self._keep(self._s.read(*args))

    def readline(self, *args: Any) -> bytes:
        return self._keep(self._s.readline(*args))

    def readlines(self, *args: Any) -> list[bytes]:
        return [self._keep(line) for line in self._s.readlines(*args)]

    def __iter__(self) -> Iterator[bytes]:
        for line in self._s:
            yield self._keep(line)


class _ResponseCopy:
    """Wraps the app's response iterable: passes each chunk through as it
    comes (streaming preserved), copies up to the cap, submits on close."""

    def __init__(self, it: Iterable[bytes], done: Callable[[], None], keep: Callable[[bytes], None]) -> None:
        self._it = it
        self._done = done
        self._keep = keep

    def __iter__(self) -> Iterator[bytes]:
        keep = self._keep
        for chunk in self._it:
            keep(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._it, "close", None)
            if close is not None:
                close()
        finally:
            self._done()


def _environ_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in environ.items():
        if k.startswith("HTTP_"):
            out.append((k[5:].replace("_", "-").lower(), v))
        elif k == "CONTENT_TYPE" and v:
            out.append(("content-type", v))
        elif k == "CONTENT_LENGTH" and v:
            out.append(("content-length", v))
    return out


class WSGICapture(_Capture):
    """WSGI middleware that captures every exchange. Small request bodies
    (declared length up to the cap) are read up front and replayed to the
    app from memory; larger ones are copied as the app reads them."""

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        ts = time.time()
        t0 = time.perf_counter()
        cap = self.body_cap
        target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if not target:
            from urllib.parse import quote

            target = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") or "/", safe="/;=,@:+$!*'()~")
            if environ.get("QUERY_STRING"):
                target = f"{target}?{environ['QUERY_STRING']}"
        try:
            port = int(environ.get("REMOTE_PORT") or 0)
        except ValueError:
            port = 0
        ex = Exchange(
            ts=ts,
            method=environ.get("REQUEST_METHOD", "GET"),
            target=target,
            req_headers=_environ_headers(environ),
            source="wsgi",
            http_version=environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            scheme=environ.get("wsgi.url_scheme", "http"),
            src_ip=environ.get("REMOTE_ADDR", ""),
            src_port=port,
            dst_ip=environ.get("SERVER_NAME", ""),
            dst_port=int(environ.get("SERVER_PORT") or 0),
        )
        ex.service = self.service

        stream = environ.get("wsgi.input")
        pre: bytes | None = None
        copy: _InputCopy | None = None
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if stream is not None:
            if 0 < length <= cap:
                pre = stream.read(length)
                environ["wsgi.input"] = BytesIO(pre)
            else:  # no, unknown (chunked) or large body: copy what the app reads
                copy = _InputCopy(stream, cap)
                environ["wsgi.input"] = copy

        resp_buf = bytearray()
        size = [0]
        submitted = [False]

        def keep(chunk: bytes) -> None:
            if chunk:
                size[0] += len(chunk)
                room = cap - len(resp_buf)
                if room > 0:
                    resp_buf.extend(chunk[:room])

        def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            code, _, reason = status.partition(" ")
            try:
                ex.status = int(code)
            except ValueError:
                ex.status = 0
            ex.reason = reason
            ex.resp_headers = [(k.lower(), v) for k, v in headers]
            write = start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)

            def write_copy(data: bytes) -> Any:
                keep(data)
                return write(data)

            return write_copy

        def done() -> None:
            if submitted[0]:
                return
            submitted[0] = True
            if pre is not None:
                ex.req_body, ex.req_size = pre, len(pre)
            elif copy is not None:
                ex.req_body, ex.req_size = bytes(copy.buf), copy.size
            ex.resp_body, ex.resp_size = bytes(resp_buf), size[0]
            ex.duration_ms = (time.perf_counter() - t0) * 1000.0
            self.submit(ex)

        try:
            result = self.app(environ, sr)
        except BaseException as exc:
            if not ex.status:
                ex.status = 500
            ex.note("app_error", exc.__class__.__name__)
            done()
            raise
        return _ResponseCopy(result, done, keep)
