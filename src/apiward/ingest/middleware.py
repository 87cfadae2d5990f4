"""Capture middleware for Python services: one line in the app.

ASGI (FastAPI, Starlette, Django ASGI)::

    app.add_middleware(ApiwardASGIMiddleware, state_dir=".apiward")
    # or: app = ApiwardASGIMiddleware(app, state_dir=".apiward")

WSGI (Flask, Django)::

    app.wsgi_app = ApiwardWSGIMiddleware(app.wsgi_app, state_dir=".apiward")
    # Django wsgi.py: application = ApiwardWSGIMiddleware(get_wsgi_application(), state_dir=...)

The middleware copies each request and response body up to ``body_cap``
bytes as they pass (the app and the client see exactly what they would
without it; streaming responses still stream) and hands the exchange to a
:class:`~apiward.ingest.capture.CaptureQueue`, which never blocks the
request. With ``state_dir`` a :class:`apiward.pipeline.Pipeline` analyses
the traffic in the queue's thread; with ``sink`` any callable taking a list
of :class:`ApiCall` receives the batches instead. Middlewares given the same
``state_dir`` in one process share one pipeline. Run one pipeline per state
directory: with several worker processes give each its own ``state_dir``.

The framework's matched route (``scope["route"]`` in Starlette/FastAPI)
becomes ``workload.route``, which wins over learned templating.

Cost per request: a few wrapper calls and a bounded bytes copy per body.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

from apiward.ingest.base import DEFAULT_BODY_CAP
from apiward.ingest.capture import CaptureQueue, Exchange
from apiward.model.call import ApiCall

__all__ = ["ApiwardASGIMiddleware", "ApiwardWSGIMiddleware", "capture_backend"]

_backends: dict[str, "_Backend"] = {}
_backends_lock = threading.Lock()


class _Backend:
    """A capture queue and (optionally) the pipeline it feeds."""

    def __init__(self, queue: CaptureQueue, pipeline: Any = None) -> None:
        self.queue = queue
        self.pipeline = pipeline
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.queue.close()
        if self.pipeline is not None:
            self.pipeline.close()


def capture_backend(
    *,
    state_dir: str | Path | None = None,
    sink: Callable[[list[ApiCall]], Any] | None = None,
    body_cap: int = DEFAULT_BODY_CAP,
    max_queue: int = 10_000,
    batch_ms: float = 200.0,
) -> _Backend:
    """The shared backend for ``state_dir`` (created on first use), or a
    private one around ``sink``."""
    if sink is not None:
        return _Backend(CaptureQueue(sink, max_queue=max_queue, batch_ms=batch_ms, body_cap=body_cap))
    if state_dir is None:
        raise ValueError("give state_dir (analyse with apiward's pipeline) or sink (a callable taking list[ApiCall])")
    key = str(Path(state_dir).resolve())
    with _backends_lock:
        b = _backends.get(key)
        if b is None or b.closed:
            from apiward.pipeline import Pipeline  # a later stage; import only when used

            pipeline = Pipeline(Path(state_dir))
            q = CaptureQueue(
                lambda calls: pipeline.process(calls, autocheckpoint=False),
                max_queue=max_queue,
                batch_ms=batch_ms,
                body_cap=body_cap,
                checkpoint=getattr(pipeline, "checkpoint", None),
            )
            b = _backends[key] = _Backend(q, pipeline)
            atexit.register(b.close)
        return b


def _route_template(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    if route is None:
        return ""
    return getattr(route, "path_format", None) or getattr(route, "path", "") or ""


class _CaptureMiddleware:
    """What both middlewares share: the wrapped app and the capture backend
    (a pipeline on ``state_dir`` or a ``sink``) behind a bounded queue."""

    def __init__(
        self,
        app: Any,
        *,
        state_dir: str | Path | None = None,
        sink: Callable[[list[ApiCall]], Any] | None = None,
        body_cap: int = DEFAULT_BODY_CAP,
        service: str = "",
        max_queue: int = 10_000,
        batch_ms: float = 200.0,
    ) -> None:
        self.app = app
        self.backend = capture_backend(state_dir=state_dir, sink=sink, body_cap=body_cap, max_queue=max_queue, batch_ms=batch_ms)
        self.queue = self.backend.queue
        self.body_cap = body_cap
        self.service = service

    def close(self) -> None:
        """Drain the queue into the sink and checkpoint the pipeline."""
        self.backend.close()


class ApiwardASGIMiddleware(_CaptureMiddleware):
    """ASGI middleware that captures every HTTP exchange (WebSocket and
    lifespan traffic pass through untouched; lifespan shutdown drains the
    queue and checkpoints)."""

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
            self.queue.submit(ex)

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


class ApiwardWSGIMiddleware(_CaptureMiddleware):
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
            self.queue.submit(ex)

        try:
            result = self.app(environ, sr)
        except BaseException as exc:
            if not ex.status:
                ex.status = 500
            ex.note("app_error", exc.__class__.__name__)
            done()
            raise
        return _ResponseCopy(result, done, keep)
