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
hands an :class:`~apiward.ingest.capture.Exchange` to a
:class:`~apiward.ingest.capture.CaptureQueue` -- a non-blocking append; all
parsing and analysis happen in the queue's consumer thread.

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

__all__ = ["BackgroundProxy", "CaptureProxy", "ProxyError", "parse_hostport"]

_CRLF = b"\r\n"
_HEAD_END = b"\r\n\r\n"
_PIECE = 1 << 16  # relay unit for large bodies
_SMALL_BODY = 1 << 16  # bodies up to this size are read whole and written with the head
_HOP = frozenset({"connection", "keep-alive", "proxy-connection"})
_STATUS_NO_BODY = frozenset({204, 304})
_ERR_HDR = b"Content-Type: text/plain; charset=utf-8\r\nX-Apiward-Proxy-Error: 1\r\n"


class ProxyError(Exception):
    """A malformed request the proxy refuses (answered with ``status``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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


def _parse_head(head: bytes) -> tuple[list[bytes], list[tuple[str, str]]]:
    """Split a head into its raw lines (start line first) and the parsed
    ``(lower-name, value)`` header list."""
    lines = head.split(_CRLF)
    headers: list[tuple[str, str]] = []
    append = headers.append
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProxyError(400, "malformed header line")
        append((name.strip().lower().decode("latin-1"), value.strip().decode("latin-1")))
    return lines, headers


class _Framing:
    """How a message body is delimited."""

    __slots__ = ("chunked", "length", "until_close")

    def __init__(self, chunked: bool = False, length: int = 0, until_close: bool = False) -> None:
        self.chunked = chunked
        self.length = length
        self.until_close = until_close


def _framing(headers: list[tuple[str, str]], *, request: bool) -> _Framing:
    te = None
    cl: str | None = None
    for k, v in headers:
        if k == "transfer-encoding":
            te = v if te is None else f"{te}, {v}"
        elif k == "content-length":
            if cl is not None and cl != v.strip():
                raise ProxyError(400, "conflicting Content-Length headers")
            cl = v.strip()
    if te is not None:
        if te.lower().rstrip().endswith("chunked"):
            return _Framing(chunked=True)
        if request:
            raise ProxyError(400, "unsupported Transfer-Encoding")
        return _Framing(until_close=True)
    if cl is not None:
        if not cl.isdigit():
            raise ProxyError(400, "bad Content-Length")
        return _Framing(length=int(cl))
    return _Framing(until_close=not request)


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
    :meth:`CaptureQueue.submit`, which never blocks).

    ``body_cap`` bounds the captured copy of each body (traffic itself is
    never cut). ``connect_timeout`` and ``read_timeout`` bound the wait for
    the upstream (connection, then response head) before a ``504``;
    ``idle_timeout`` closes idle client keep-alive connections.
    """

    def __init__(
        self,
        upstream: str,
        submit: Callable[[Exchange], Any],
        *,
        body_cap: int = DEFAULT_BODY_CAP,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        idle_timeout: float = 75.0,
        max_head: int = 64 * 1024,
    ) -> None:
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
        self.max_head = max_head
        self.requests = 0
        self.upstream_errors = 0
        self.internal_errors = 0
        self.last_error = ""
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[_Conn] = set()
        self._listen_port = 0

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
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(_HEAD_END), self.idle_timeout)
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                    break
                except asyncio.LimitOverrunError:
                    await self._reply_error(writer, 431, "request head too large")
                    break
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
                up[1].close()
            writer.close()

    async def _reply_error(self, writer: asyncio.StreamWriter, status: int, message: str, close: bool = True) -> None:
        body = message.encode() + b"\n"
        reason = _REASONS.get(status, "Error")
        head = (
            f"HTTP/1.1 {status} {reason}\r\n".encode()
            + _ERR_HDR
            + f"Content-Length: {len(body)}\r\n".encode()
            + (b"Connection: close\r\n" if close else b"")
            + _CRLF
        )
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.write(head + body)
            await writer.drain()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
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
        sock = w.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
        """Relay one request/response. Returns (keep client connection,
        upstream connection to reuse or ``None``)."""
        ts = time.time()
        t0 = time.perf_counter()
        self.requests += 1
        head = head.lstrip(_CRLF)
        try:
            lines, headers = _parse_head(head[:-4])
            parts = lines[0].split(b" ", 2)
            if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
                raise ProxyError(400, "malformed request line")
            method = parts[0].decode("latin-1")
            target = parts[1].decode("latin-1")
            version = parts[2].decode("latin-1")
            req_framing = _framing(headers, request=True)
        except ProxyError as exc:
            await self._reply_error(writer, exc.status, str(exc))
            return False, up

        ex = Exchange(
            ts=ts, method=method, target=target, req_headers=headers, source="proxy",
            http_version=version, src_ip=peer[0], src_port=peer[1], dst_ip=local[0], dst_port=local[1],
        )
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
        # Small fixed-length bodies are read whole: one write, and replayable.
        replay: bytes | None = None
        if not req_framing.chunked and req_framing.length <= _SMALL_BODY:
            try:
                body = await reader.readexactly(req_framing.length) if req_framing.length else b""
            except asyncio.IncompleteReadError as exc:
                req_cap.add(exc.partial)
                ex.req_body, ex.req_size = bytes(req_cap.buf), req_cap.size
                ex.note("proxy_error", "client closed before sending the whole request body")
                self.submit(ex)
                return False, up
            req_cap.add(body)
            replay = up_head + body

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
                        uw.write(up_head)
                        if req_framing.chunked:
                            await _relay_chunked(reader, uw, req_cap)
                        else:
                            await _relay_length(reader, uw, req_framing.length, req_cap)
                    await uw.drain()
                    status, resp_lines, resp_headers, resp_version = await self._read_response_head(
                        ur, writer, reused and replay is not None
                    )
                    break
                except _UpstreamFailed as exc:
                    if up is not None:
                        up[1].close()
                        up = None
                    if attempt == 0 and exc.replayable_failure:
                        reused = False
                        continue
                    raise
                except (ConnectionError, OSError) as exc:
                    # Writing to the upstream failed (reset mid-request).
                    if up is not None:
                        up[1].close()
                        up = None
                    if attempt == 0 and reused and replay is not None:
                        reused = False
                        continue
                    raise _UpstreamFailed(502, f"upstream write failed: {exc.__class__.__name__}") from None
        except asyncio.IncompleteReadError:
            # The client went away in the middle of its request body.
            if up is not None:
                up[1].close()
            ex.req_body, ex.req_size = bytes(req_cap.buf), req_cap.size
            ex.note("proxy_error", "client closed before sending the whole request body")
            ex.duration_ms = (time.perf_counter() - t0) * 1000.0
            self.submit(ex)
            return False, None
        except _UpstreamFailed as exc:
            self.upstream_errors += 1
            if up is not None:
                up[1].close()
            ex.req_body, ex.req_size = bytes(req_cap.buf), req_cap.size
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
            uw.close()
            return False, None

        if method == "HEAD" or status in _STATUS_NO_BODY or 100 <= status < 200:
            resp_framing = _Framing()
        else:
            try:
                resp_framing = _framing(resp_headers, request=False)
            except ProxyError:
                resp_framing = _Framing(until_close=True)
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
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.TimeoutError) as exc:
            # Either side failed mid-response: the client sees a cut
            # response (closed connection); the event records it.
            ex.resp_body, ex.resp_size = bytes(resp_cap.buf), resp_cap.size
            ex.note("proxy_error", f"response relay failed: {exc.__class__.__name__}")
            ex.duration_ms = (time.perf_counter() - t0) * 1000.0
            self.submit(ex)
            uw.close()
            return False, None
        ex.resp_body, ex.resp_size = bytes(resp_cap.buf), resp_cap.size
        ex.duration_ms = (time.perf_counter() - t0) * 1000.0
        self.submit(ex)
        if not reuse:
            uw.close()
            return keep, None
        return keep, up

    async def _read_response_head(
        self, ur: asyncio.StreamReader, writer: asyncio.StreamWriter, may_retry: bool
    ) -> tuple[int, list[bytes], list[tuple[str, str]], str]:
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
                lines, headers = _parse_head(head[:-4])
                first = lines[0].split(b" ", 2)
                version = first[0].decode("latin-1")
                status = int(first[1])
            except (ProxyError, ValueError, IndexError):
                raise _UpstreamFailed(502, "malformed upstream response head") from None
            if 100 <= status < 200 and status != 101:
                writer.write(head)  # interim (100 Continue, 103 Early Hints)
                continue
            return status, lines, headers, version


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


async def _relay_chunked(src: asyncio.StreamReader, dst: asyncio.StreamWriter, cap: _Capture) -> None:
    """Forward a chunked body verbatim (sizes, extensions, trailers),
    capturing the decoded data."""
    while True:
        line = await src.readuntil(_CRLF)
        size_s = line.split(b";", 1)[0].strip()
        try:
            size = int(size_s, 16)
        except ValueError:
            raise ConnectionError("malformed chunk size") from None
        if size == 0:
            out = bytearray(line)
            while True:  # trailers, then the empty line
                t = await src.readuntil(_CRLF)
                out += t
                if t == _CRLF:
                    break
            dst.write(bytes(out))
            await dst.drain()
            return
        if size + 2 <= _PIECE:
            data = await src.readexactly(size + 2)
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
            dst.write(await src.readexactly(2))
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
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}
