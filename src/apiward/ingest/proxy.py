"""A capturing HTTP/1.1 reverse proxy on asyncio streams.

It forwards every request to one upstream and every response back, byte for
byte: request and status lines, header names and order, chunked framing
(chunk boundaries and trailers) and bodies are passed through as they
arrive, so large and streaming bodies never sit in memory. The only changes
are standard proxy ones: the client address is appended to
``X-Forwarded-For``; the hop-by-hop ``Connection``/``Keep-Alive``/
``Proxy-Connection`` headers (and any header ``Connection`` names) are
handled per hop; ``Expect: 100-continue`` is answered by the proxy.

While relaying, it keeps a copy of each body up to ``body_cap`` bytes
(``truncated`` is then set downstream) and, once the response is complete,
hands an :class:`~apiward.ingest.capture.Exchange` to ``submit`` -- a
non-blocking append (:meth:`apiward.live.LiveRunner.submit`); all parsing
and analysis happen elsewhere (the runner's thread, the pipeline worker).

Connections: client keep-alive and pipelining are honoured; each client
connection pins one upstream connection, reused while both sides allow it
(a stale reused connection is retried once when the request can be
replayed). Upstream failures give the client a ``502`` (``504`` on timeout)
and still record the event, with the reason in ``extra["proxy_error"]``.
``Upgrade`` (WebSocket) handshakes are tunnelled after the ``101``.

Cost on the request path: one head parse (split + lower-case names), one
rebuilt head, a few socket writes; no per-request logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from apiward.ingest.base import DEFAULT_BODY_CAP
from apiward.ingest.capture import Exchange
from apiward.ingest.http1 import (
    Framing,
    HeadError,
    RequestHead,
    check_chunk_end,
    check_trailer_line,
    parse_chunk_line,
    parse_request_head,
    parse_response_head,
)

__all__ = ["BackgroundProxy", "CaptureProxy", "ProxyError", "REJECT_HEADER", "parse_hostport"]

_CRLF = b"\r\n"
_HEAD_END = b"\r\n\r\n"
_PIECE = 1 << 16  # relay unit for large bodies
_SMALL_BODY = 1 << 16  # bodies up to this size are read whole and written with the head
_HOP = frozenset({"connection", "keep-alive", "proxy-connection"})
_STATUS_NO_BODY = frozenset({204, 304})
_ERR_HDR = b"Content-Type: text/plain; charset=utf-8\r\nX-Apiward-Proxy-Error: 1\r\n"
#: Response header (and ``extra`` key) marking a request the proxy refused
#: for an ambiguous framing; it is kept with the call in the lake.
REJECT_HEADER = "X-Apiward-Rejected"
SMUGGLING = "request_smuggling"


ProxyError = HeadError  # the name earlier callers imported


class _BodyTimeout(Exception):
    """The client did not send its whole request body within ``body_timeout``."""


class _UpstreamFailed(Exception):
    """The upstream failed before a complete response head was received."""

    def __init__(self, status: int, message: str, replayable_failure: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.replayable_failure = replayable_failure


def parse_hostport(value: str, default_port: int = 8080) -> tuple[str, int]:
    """``"127.0.0.1:8080"``, ``":8080"``, ``"[::1]:80"`` -> (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, sep, port = value.rpartition(":")
        if not sep:
            host, port = value, ""
    return host or "127.0.0.1", int(port) if port else default_port


def _tokens(value: str | None) -> set[str]:
    if not value:
        return set()
    return {t.strip().lower() for t in value.split(",") if t.strip()}


class _Conn:
    """One client connection's state (for graceful shutdown)."""

    __slots__ = ("writer", "busy", "task")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.busy = False
        self.task: asyncio.Task[Any] | None = asyncio.current_task()


class _Capture:
    """A bounded copy of a body as it streams past."""

    __slots__ = ("buf", "size", "cap")

    def __init__(self, cap: int) -> None:
        self.buf = bytearray()
        self.size = 0
        self.cap = cap

    def add(self, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        self.size += n
        room = self.cap - len(self.buf)
        if room > 0:
            self.buf += data if n <= room else data[:room]


class CaptureProxy:
    """Reverse proxy to ``upstream`` (``http://host:port`` or ``https://...``)
    that offers each exchange to ``submit`` (normally
    :meth:`apiward.live.LiveRunner.submit`, which never blocks).

    ``body_cap`` bounds the captured copy of each body (traffic itself is
    never cut). ``connect_timeout`` and ``read_timeout`` bound the wait for
    the upstream (connection, then response head) before a ``504``.
    Client side: ``header_timeout`` bounds the time to send a whole request
    head (``408``), ``body_timeout`` the time to send a whole request body
    (``408``, the upstream connection is closed), ``idle_timeout`` the wait
    for the next request on a keep-alive connection. ``max_concurrent``
    requests in flight and ``max_upstream`` open upstream connections are
    caps: beyond them the client gets ``503`` with ``Retry-After`` and a
    counter moves (see :meth:`stats`).

    Requests with an ambiguous framing (see :mod:`apiward.ingest.http1`) are
    answered ``400``, never forwarded, and recorded with
    ``extra["proxy_rejected"] = "request_smuggling"``; a malformed upstream
    response becomes a ``502``.
    """

    def __init__(
        self,
        upstream: str,
        submit: Callable[[Exchange], Any],
        *,
        body_cap: int = DEFAULT_BODY_CAP,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        idle_timeout: float = 60.0,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        max_concurrent: int = 1024,
        max_upstream: int = 512,
        retry_after: int = 1,
        max_head: int = 64 * 1024,
    ) -> None:
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout),
                            ("idle_timeout", idle_timeout), ("header_timeout", header_timeout),
                            ("body_timeout", body_timeout)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if max_concurrent < 1 or max_upstream < 1:
            raise ValueError("max_concurrent and max_upstream must be >= 1")
        u = urlsplit(upstream if "://" in upstream else f"http://{upstream}")
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"upstream must be http(s)://host[:port], got {upstream!r}")
        self.upstream = upstream
        self.up_host = u.hostname
        self.up_port = u.port or (443 if u.scheme == "https" else 80)
        self.up_ssl: ssl.SSLContext | None = ssl.create_default_context() if u.scheme == "https" else None
        self.submit = submit
        self.body_cap = body_cap
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_concurrent = max_concurrent
        self.max_upstream = max_upstream
        self.retry_after = retry_after
        self.max_head = max_head
        self.requests = 0
        self.rejected = 0  # requests answered 400 (malformed or ambiguous)
        self.smuggling = 0  # of which ambiguous framings (request smuggling attempts)
        self.upstream_malformed = 0  # upstream responses refused (502)
        self.header_timeouts = 0
        self.body_timeouts = 0
        self.idle_closed = 0
        self.overload_concurrent = 0  # 503: max_concurrent reached
        self.overload_upstream = 0  # 503: max_upstream reached
        self.in_flight = 0
        self._up_open: set[asyncio.StreamWriter] = set()
        self._up_pending = 0
        self.upstream_errors = 0
        self.internal_errors = 0
        self.last_error = ""
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[_Conn] = set()
        self._listen_port = 0

    def stats(self) -> dict[str, int]:
        """The proxy's counters (summary line and Prometheus metrics)."""
        return {
            "requests": self.requests,
            "rejected": self.rejected,
            "smuggling": self.smuggling,
            "upstream_errors": self.upstream_errors,
            "upstream_malformed": self.upstream_malformed,
            "header_timeouts": self.header_timeouts,
            "body_timeouts": self.body_timeouts,
            "idle_closed": self.idle_closed,
            "overload_concurrent": self.overload_concurrent,
            "overload_upstream": self.overload_upstream,
            "internal_errors": self.internal_errors,
            "in_flight": self.in_flight,
            "upstream_open": len(self._up_open),
        }

    def _close_up(self, w: asyncio.StreamWriter | None) -> None:
        if w is not None:
            self._up_open.discard(w)
            w.close()

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Bind and start accepting; returns the bound (host, port)."""
        self._server = await asyncio.start_server(
            self._handle, host, port, limit=self.max_head, reuse_address=True, backlog=1024
        )
        sock = self._server.sockets[0]
        addr = sock.getsockname()
        self._listen_port = addr[1]
        return addr[0], addr[1]

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop accepting, close idle connections, give in-flight exchanges
        ``grace`` seconds to finish, then cancel the rest."""
        if self._server is not None:
            self._server.close()
        for c in list(self._conns):
            if not c.busy:
                c.writer.close()
        deadline = time.monotonic() + grace
        while any(c.busy for c in self._conns) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for c in list(self._conns):
            if c.task is not None and not c.task.done():
                c.task.cancel()
            c.writer.close()
        await asyncio.sleep(0)

    # -- per connection ------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(writer)
        self._conns.add(conn)
        peer = writer.get_extra_info("peername") or ("", 0)
        local = writer.get_extra_info("sockname") or ("", 0)
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        first = True
        try:
            while True:
                started = first
                try:
                    # asyncio.timeout, not wait_for: no task per request.
                    if first:  # a new connection sends its head within header_timeout
                        async with asyncio.timeout(self.header_timeout):
                            head = await reader.readuntil(_HEAD_END)
                    else:  # keep-alive: idle_timeout for the next request, then header_timeout
                        async with asyncio.timeout(self.idle_timeout) as deadline:
                            lead = await reader.readexactly(1)
                            started = True
                            deadline.reschedule(asyncio.get_running_loop().time() + self.header_timeout)
                            head = lead + await reader.readuntil(_HEAD_END)
                except asyncio.TimeoutError:
                    if started:
                        self.header_timeouts += 1
                        await self._reply_error(writer, 408, "request head not received in time")
                    else:
                        self.idle_closed += 1
                    break
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                except asyncio.LimitOverrunError:
                    await self._reply_error(writer, 431, "request head too large")
                    break
                first = False
                conn.busy = True
                keep, up = await self._exchange(head, reader, writer, up, peer, local)
                conn.busy = False
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a proxy bug must not kill the server; count it
            self.internal_errors += 1
            self.last_error = repr(exc)
        finally:
            self._conns.discard(conn)
            if up is not None:
                self._close_up(up[1])
            writer.close()

    async def _reply_error(
        self, writer: asyncio.StreamWriter, status: int, message: str, close: bool = True,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        body = message.encode("utf-8", "replace") + b"\n"
        reason = _REASONS.get(status, "Error")
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers or ()).encode("latin-1", "replace")
        head = (
            f"HTTP/1.1 {status} {reason}\r\n".encode()
            + _ERR_HDR
            + extra
            + f"Content-Length: {len(body)}\r\n".encode()
            + (b"Connection: close\r\n" if close else b"")
            + _CRLF
        )
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.write(head + body)
            await writer.drain()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if len(self._up_open) + self._up_pending >= self.max_upstream:
            self.overload_upstream += 1
            raise _UpstreamFailed(503, "upstream connection cap reached")
        self._up_pending += 1
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(
                    self.up_host, self.up_port, ssl=self.up_ssl, limit=self.max_head,
                    server_hostname=self.up_host if self.up_ssl else None,
                ),
                self.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise _UpstreamFailed(504, "upstream connect timeout") from None
        except OSError as exc:
            raise _UpstreamFailed(502, f"upstream connect failed: {exc.__class__.__name__}: {exc.strerror or exc}") from None
        finally:
            self._up_pending -= 1
        sock = w.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._up_open.add(w)
        return r, w

    async def _exchange(
        self,
        head: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
        peer: tuple[Any, ...],
        local: tuple[Any, ...],
    ) -> tuple[bool, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
        """Parse one request head and relay the exchange, or refuse it.
        Returns (keep client connection, upstream connection to reuse or
        ``None``)."""
        ts = time.time()
        self.requests += 1
        try:
            req = parse_request_head(head[:-4])
        except HeadError as exc:
            await self._refuse(exc, writer, ts, peer, local)
            return False, up
        if self.in_flight >= self.max_concurrent:
            self.overload_concurrent += 1
            ex = self._new_exchange(ts, req.method, req.target, req.version, req.headers, peer, local)
            await self._refuse_overload(ex, writer, "concurrent request cap reached")
            return False, up
        self.in_flight += 1
        try:
            return await self._relay(ts, req, reader, writer, up, peer, local)
        finally:
            self.in_flight -= 1

    @staticmethod
    def _new_exchange(
        ts: float, method: str, target: str, version: str, headers: list[tuple[str, str]],
        peer: tuple[Any, ...], local: tuple[Any, ...],
    ) -> Exchange:
        return Exchange(
            ts=ts, method=method, target=target, req_headers=headers, source="proxy",
            http_version=version, src_ip=peer[0], src_port=peer[1], dst_ip=local[0], dst_port=local[1],
        )

    async def _refuse(
        self, exc: HeadError, writer: asyncio.StreamWriter, ts: float, peer: tuple[Any, ...], local: tuple[Any, ...],
        ex: Exchange | None = None,
    ) -> None:
        """Answer a refused request (400) and record it when its request line
        could be read; an ambiguous framing is marked as a smuggling attempt."""
        self.rejected += 1
        marker = [(REJECT_HEADER, SMUGGLING)] if exc.smuggling else []
        if exc.smuggling:
            self.smuggling += 1
        await self._reply_error(writer, exc.status, str(exc), headers=marker)
        if ex is None and exc.start is not None:
            ex = self._new_exchange(ts, *exc.start, exc.headers, peer, local)
        if ex is None:
            return
        if exc.smuggling:
            ex.note("proxy_rejected", SMUGGLING)
        self._finish_refusal(ex, exc.status, str(exc), marker)

    def _finish_refusal(self, ex: Exchange, status: int, message: str, marker: list[tuple[str, str]]) -> None:
        body = message.encode("utf-8", "replace") + b"\n"
        ex.status = status
        ex.reason = _REASONS.get(status, "")
        ex.resp_headers = [("content-type", "text/plain; charset=utf-8"), ("x-apiward-proxy-error", "1")] + [
            (k.lower(), v) for k, v in marker
        ]
        ex.resp_body, ex.resp_size = body, len(body)
        ex.note("proxy_error", message)
        ex.duration_ms = (time.time() - ex.ts) * 1000.0
        self.submit(ex)

    async def _refuse_overload(self, ex: Exchange, writer: asyncio.StreamWriter, message: str) -> None:
        retry = [("Retry-After", str(self.retry_after))]
        await self._reply_error(writer, 503, message, headers=retry)
        self._finish_refusal(ex, 503, message, [])

    async def _relay(
        self,
        ts: float,
        req: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
        peer: tuple[Any, ...],
        local: tuple[Any, ...],
    ) -> tuple[bool, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
        """Relay one parsed request and its response."""
        t0 = time.perf_counter()
        method, target, version, lines, headers, req_framing = (
            req.method, req.target, req.version, req.lines, req.headers, req.framing
        )
        ex = self._new_exchange(ts, method, target, version, headers, peer, local)
        conn_tokens: set[str] = set()
        xff: list[str] = []
        expect_continue = False
        upgrade = False
        for k, v in headers:
            if k == "connection":
                conn_tokens |= _tokens(v)
            elif k == "x-forwarded-for":
                xff.append(v)
            elif k == "expect" and v.lower() == "100-continue":
                expect_continue = True
        if version == "HTTP/1.0":
            client_keep = "keep-alive" in conn_tokens
        else:
            client_keep = "close" not in conn_tokens
        upgrade = "upgrade" in conn_tokens and any(k == "upgrade" for k, _ in headers)
        drop = set(_HOP) | conn_tokens
        if upgrade:
            drop.discard("upgrade")
        drop.add("x-forwarded-for")
        if expect_continue:
            drop.add("expect")

        # Rebuild the head: same lines minus hop-by-hop, plus X-Forwarded-For.
        out = [lines[0]]
        for line in lines[1:]:
            if not line:
                continue
            name = line.partition(b":")[0].strip().lower().decode("latin-1")
            if name not in drop:
                out.append(line)
        if upgrade:
            out.append(b"Connection: Upgrade")
        xff.append(str(peer[0]))
        out.append(("X-Forwarded-For: " + ", ".join(xff)).encode("latin-1"))
        up_head = _CRLF.join(out) + _HEAD_END

        if expect_continue and (req_framing.chunked or req_framing.length):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")

        req_cap = _Capture(self.body_cap)
        loop = asyncio.get_running_loop()
        body_deadline = loop.time() + self.body_timeout
        # Small bodies (fixed-length, or chunked up to _SMALL_BODY) are read
        # and checked whole before anything goes upstream: one write, they
        # are replayable, a slow client holds no upstream connection, and a
        # bad chunk is refused before the upstream sees the request.
        replay: bytes | None = None
        prefix = b""  # a long chunked body's first chunks, already read
        pending: bytes | None = None  # and the size line of the chunk that did not fit
        try:
            if req_framing.chunked:
                raw, pending = await asyncio.wait_for(_read_chunked_prefix(reader, req_cap, _SMALL_BODY), self.body_timeout)
                if pending is None:
                    replay = up_head + raw
                else:
                    prefix = raw
            elif req_framing.length <= _SMALL_BODY:
                body = (
                    await asyncio.wait_for(reader.readexactly(req_framing.length), self.body_timeout)
                    if req_framing.length else b""
                )
                req_cap.add(body)
                replay = up_head + body
        except asyncio.IncompleteReadError as exc:
            if not req_framing.chunked:
                req_cap.add(exc.partial)
            ex.req_body, ex.req_size = bytes(req_cap.buf), req_cap.size
            ex.note("proxy_error", "client closed before sending the whole request body")
            self.submit(ex)
            return False, up
        except asyncio.TimeoutError:
            await self._body_timed_out(ex, writer, req_cap, None)
            return False, up
        except HeadError as exc:
            ex.req_body, ex.req_size = bytes(req_cap.buf), req_cap.size
            await self._refuse(exc, writer, ts, peer, local, ex)
            return False, up

        reused = up is not None
        try:
            for attempt in (0, 1):
                try:
                    if up is None:
                        up = await self._open_upstream()
                    ur, uw = up
                    if replay is not None:
                        uw.write(replay)
                    else:
                        uw.write(up_head + prefix)
                        relay = (
                            _relay_chunked(reader, uw, req_cap, pending) if req_framing.chunked
                            else _relay_length(reader, uw, req_framing.length, req_cap)
                        )
                        try:
                            await asyncio.wait_for(relay, body_deadline - loop.time())
                        except asyncio.TimeoutError:
                            raise _BodyTimeout() from None
                    await uw.drain()
                    status, resp_lines, resp_headers, resp_version, resp_framing_ = await self._read_response_head(
                        ur, writer, reused and replay is not None, method
                    )
                    break
                except _UpstreamFailed as exc:
                    if up is not None:
                        self._close_up(up[1])
                        up = None
                    if attempt == 0 and exc.replayable_failure:
                        reused = False
                        continue
                    raise
                except (ConnectionError, OSError) as exc:
                    # Writing to the upstream failed (reset mid-request).
                    if up is not None:
                        self._close_up(up[1])
                        up = None
                    if attempt == 0 and reused and replay is not None:
                        reused = False
                        continue
                    raise _UpstreamFailed(502, f"upstream write failed: {exc.__class__.__name__}") from None
        except _BodyTimeout:
            await self._body_timed_out(ex, writer, req_cap, up)
            return False, None
        except HeadError as exc:
            # A chunk of the request body broke the framing: the upstream got
            # an unfinished request and loses its connection; nothing after
            # the bad line was forwarded.
            if up is not None:
                self._close_up(up[1])
            ex.req_body, ex.req_size = bytes(req_cap.buf), req_cap.size
            await self._refuse(exc, writer, ts, peer, local, ex)
            return False, None
        except asyncio.IncompleteReadError:
            # The client went away in the middle of its request body.
            if up is not None:
                self._close_up(up[1])
            ex.req_body, ex.req_size = bytes(req_cap.buf), req_cap.size
            ex.note("proxy_error", "client closed before sending the whole request body")
            ex.duration_ms = (time.perf_counter() - t0) * 1000.0
            self.submit(ex)
            return False, None
        except _UpstreamFailed as exc:
            if up is not None:
                self._close_up(up[1])
            ex.req_body, ex.req_size = bytes(req_cap.buf), req_cap.size
            if exc.status == 503:  # the upstream connection cap
                await self._refuse_overload(ex, writer, str(exc))
                return False, None
            self.upstream_errors += 1
            ex.status = exc.status
            ex.reason = _REASONS.get(exc.status, "")
            ex.note("proxy_error", str(exc))
            # The client's request body may be half read: only keep the
            # connection when the whole request was consumed.
            whole = replay is not None or req_cap.size >= req_framing.length
            keep = client_keep and whole and not req_framing.chunked
            await self._reply_error(writer, exc.status, str(exc), close=not keep)
            ex.duration_ms = (time.perf_counter() - t0) * 1000.0
            self.submit(ex)
            return keep, None

        ur, uw = up
        ex.req_body, ex.req_size = bytes(req_cap.buf), req_cap.size
        ex.status = status
        first = resp_lines[0].split(b" ", 2)
        ex.reason = first[2].decode("latin-1") if len(first) > 2 else ""
        ex.resp_headers = resp_headers

        up_tokens: set[str] = set()
        for k, v in resp_headers:
            if k == "connection":
                up_tokens |= _tokens(v)
        if resp_version == "HTTP/1.0":
            up_keep = "keep-alive" in up_tokens
        else:
            up_keep = "close" not in up_tokens

        if status == 101:
            writer.write(_CRLF.join(resp_lines) + _HEAD_END)
            ex.duration_ms = (time.perf_counter() - t0) * 1000.0
            ex.note("upgraded", "101")
            self.submit(ex)
            await _tunnel(reader, writer, ur, uw)
            self._close_up(uw)
            return False, None

        resp_framing = resp_framing_
        keep = client_keep and not resp_framing.until_close
        reuse = up_keep and not resp_framing.until_close

        drop = _HOP | up_tokens
        out = [resp_lines[0]]
        for line in resp_lines[1:]:
            if not line:
                continue
            name = line.partition(b":")[0].strip().lower().decode("latin-1")
            if name not in drop:
                out.append(line)
        if not keep:
            out.append(b"Connection: close")
        elif version == "HTTP/1.0":
            out.append(b"Connection: keep-alive")
        client_head = _CRLF.join(out) + _HEAD_END

        resp_cap = _Capture(self.body_cap)
        try:
            if not resp_framing.chunked and not resp_framing.until_close and resp_framing.length <= _SMALL_BODY:
                body = await asyncio.wait_for(ur.readexactly(resp_framing.length), self.read_timeout) if resp_framing.length else b""
                resp_cap.add(body)
                writer.write(client_head + body)
            else:
                writer.write(client_head)
                if resp_framing.chunked:
                    await _relay_chunked(ur, writer, resp_cap)
                elif resp_framing.until_close:
                    await _relay_until_close(ur, writer, resp_cap)
                    reuse = False
                else:
                    await _relay_length(ur, writer, resp_framing.length, resp_cap)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.TimeoutError, HeadError) as exc:
            # Either side failed mid-response: the client sees a cut
            # response (closed connection); the event records it.
            if isinstance(exc, HeadError):
                self.upstream_malformed += 1
            ex.resp_body, ex.resp_size = bytes(resp_cap.buf), resp_cap.size
            ex.note("proxy_error", f"response relay failed: {exc.__class__.__name__}")
            ex.duration_ms = (time.perf_counter() - t0) * 1000.0
            self.submit(ex)
            self._close_up(uw)
            return False, None
        ex.resp_body, ex.resp_size = bytes(resp_cap.buf), resp_cap.size
        ex.duration_ms = (time.perf_counter() - t0) * 1000.0
        self.submit(ex)
        if not reuse:
            self._close_up(uw)
            return keep, None
        return keep, up

    async def _body_timed_out(
        self, ex: Exchange, writer: asyncio.StreamWriter, req_cap: "_Capture",
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> None:
        """A slow client: 408, its upstream connection closed, the event kept."""
        self.body_timeouts += 1
        if up is not None:
            self._close_up(up[1])
        ex.req_body, ex.req_size = bytes(req_cap.buf), req_cap.size
        message = f"request body not received within {self.body_timeout:g} s"
        await self._reply_error(writer, 408, message)
        self._finish_refusal(ex, 408, message, [])

    async def _read_response_head(
        self, ur: asyncio.StreamReader, writer: asyncio.StreamWriter, may_retry: bool, method: str = "GET"
    ) -> tuple[int, list[bytes], list[tuple[str, str]], str, Framing]:
        """Read the final response head, forwarding interim 1xx responses."""
        got_any = False
        while True:
            try:
                head = await asyncio.wait_for(ur.readuntil(_HEAD_END), self.read_timeout)
            except asyncio.TimeoutError:
                raise _UpstreamFailed(504, "upstream response timeout") from None
            except asyncio.IncompleteReadError as exc:
                stale = may_retry and not got_any and not exc.partial
                raise _UpstreamFailed(502, "upstream closed the connection before a response", stale) from None
            except asyncio.LimitOverrunError:
                raise _UpstreamFailed(502, "upstream response head too large") from None
            except (ConnectionError, OSError) as exc:
                stale = may_retry and not got_any
                raise _UpstreamFailed(502, f"upstream connection failed: {exc.__class__.__name__}", stale) from None
            got_any = True
            try:
                resp = parse_response_head(head[:-4], method)
            except HeadError as exc:
                self.upstream_malformed += 1
                raise _UpstreamFailed(502, f"malformed upstream response: {exc}") from None
            if 100 <= resp.status < 200 and resp.status != 101:
                writer.write(head)  # interim (100 Continue, 103 Early Hints)
                continue
            return resp.status, resp.lines, resp.headers, resp.version, resp.framing


async def _relay_length(src: asyncio.StreamReader, dst: asyncio.StreamWriter, n: int, cap: _Capture) -> None:
    while n > 0:
        data = await src.read(min(n, _PIECE))
        if not data:
            raise asyncio.IncompleteReadError(b"", n)
        n -= len(data)
        cap.add(data)
        dst.write(data)
        await dst.drain()


async def _relay_until_close(src: asyncio.StreamReader, dst: asyncio.StreamWriter, cap: _Capture) -> None:
    while True:
        data = await src.read(_PIECE)
        if not data:
            return
        cap.add(data)
        dst.write(data)
        await dst.drain()


async def _chunk_line(src: asyncio.StreamReader) -> bytes:
    try:
        return await src.readuntil(_CRLF)
    except asyncio.LimitOverrunError:
        raise HeadError(400, "chunk line too long", smuggling=True) from None


async def _read_chunked_prefix(src: asyncio.StreamReader, cap: _Capture, limit: int) -> tuple[bytes, bytes | None]:
    """Read and check a chunked body while it fits in ``limit`` bytes:
    (raw bytes, ``None``) when it is complete, else (raw bytes of the
    chunks read, the size line of the chunk that did not fit)."""
    raw = bytearray()
    while True:
        line = await _chunk_line(src)
        size = parse_chunk_line(line)
        if size == 0:
            raw += line
            while True:
                t = await _chunk_line(src)
                last = check_trailer_line(t)
                raw += t
                if last:
                    return bytes(raw), None
        if len(raw) + len(line) + size + 2 > limit:
            return bytes(raw), line
        data = await src.readexactly(size + 2)
        check_chunk_end(data[size:])
        cap.add(memoryview(data)[:size])
        raw += line
        raw += data


async def _relay_chunked(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, cap: _Capture, first: bytes | None = None
) -> None:
    """Forward a chunked body verbatim (sizes, extensions, trailers),
    capturing the decoded data; ``first`` is a size line already read.
    Every size line, chunk end and trailer is checked
    (:mod:`apiward.ingest.http1`) before it is forwarded, so nothing after
    a framing error reaches the other side."""
    while True:
        line = first if first is not None else await _chunk_line(src)
        first = None
        size = parse_chunk_line(line)
        if size == 0:
            out = bytearray(line)
            while True:  # trailers, then the empty line
                t = await _chunk_line(src)
                last = check_trailer_line(t)
                out += t
                if last:
                    break
            dst.write(bytes(out))
            await dst.drain()
            return
        if size + 2 <= _PIECE:
            data = await src.readexactly(size + 2)
            check_chunk_end(data[size:])
            cap.add(memoryview(data)[:size])
            dst.write(line + data)
        else:
            dst.write(line)
            left = size
            while left > 0:
                data = await src.read(min(left, _PIECE))
                if not data:
                    raise asyncio.IncompleteReadError(b"", left)
                left -= len(data)
                cap.add(data)
                dst.write(data)
                await dst.drain()
            end = await src.readexactly(2)
            check_chunk_end(end)
            dst.write(end)
        await dst.drain()


async def _tunnel(
    cr: asyncio.StreamReader, cw: asyncio.StreamWriter, ur: asyncio.StreamReader, uw: asyncio.StreamWriter
) -> None:
    """Pipe bytes both ways after a protocol upgrade until one side closes."""

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                data = await r.read(_PIECE)
                if not data:
                    break
                w.write(data)
                await w.drain()
        with contextlib.suppress(OSError, RuntimeError):
            if w.can_write_eof():
                w.write_eof()

    await asyncio.gather(pipe(cr, uw), pipe(ur, cw))


class BackgroundProxy:
    """Run a :class:`CaptureProxy` on its own event loop in a daemon thread
    (tests, ``apiward demo``, benchmarks)."""

    def __init__(self, proxy: CaptureProxy, host: str = "127.0.0.1", port: int = 0) -> None:
        self.proxy = proxy
        self.host = host
        self.port = port
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="apiward-proxy", daemon=True)
        self.address: tuple[str, int] = ("", 0)

    def start(self) -> tuple[str, int]:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self.proxy.start(self.host, self.port), self.loop)
        self.address = fut.result(10)
        return self.address

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    def stop(self, grace: float = 2.0) -> None:
        if not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self.proxy.shutdown(grace), self.loop)
        with contextlib.suppress(Exception):
            fut.result(grace + 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        with contextlib.suppress(RuntimeError):
            self.loop.close()

    def __enter__(self) -> "BackgroundProxy":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    503: "Service Unavailable",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}
