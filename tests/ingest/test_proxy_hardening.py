"""The proxy as a hardened intermediary, against real loopback servers.

A smuggling corpus goes over raw sockets to the proxy in front of two raw
upstreams that parse differently (one honours only Content-Length, one
honours any Transfer-Encoding naming ``chunked``); both record every
request they parse. Every attempt must get a 400, reach neither upstream,
and show in the lake and the findings. Then: slow clients, caps, and
malformed upstream responses.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from apiward.ingest.proxy import BackgroundProxy, CaptureProxy
from apiward.lake.query import connect
from apiward.live.runner import LiveRunner, pipeline_runner
from apiward.pipeline import Pipeline

pytestmark = pytest.mark.timeout(120)

SMUG = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def _post(headers: bytes, body: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return b"POST /attack " + version + b"\r\nHost: x\r\n" + headers + b"\r\n" + body


def _chunked(size_line: bytes, rest: bytes = b"") -> bytes:
    return _post(b"Transfer-Encoding: chunked\r\n", size_line + rest)


_CLTE_BODY = b"0\r\n\r\n" + SMUG
_TECL_BODY = b"%x\r\n" % len(SMUG) + SMUG + b"\r\n0\r\n\r\n"

# (name, bytes sent). Each would make at least one lax parser run /smuggled.
CORPUS: list[tuple[str, bytes]] = [
    ("CL.TE", _post(b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(_CLTE_BODY), _CLTE_BODY)),
    ("TE.CL", _post(b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", _TECL_BODY)),
    ("TE.TE xchunked", _post(b"Transfer-Encoding: xchunked\r\n", _TECL_BODY)),
    ("TE.TE xchunked+CL", _post(b"Content-Length: 4\r\nTransfer-Encoding: xchunked\r\n", _TECL_BODY)),
    ("TE.TE chunked, chunked", _post(b"Transfer-Encoding: chunked, chunked\r\n", _TECL_BODY)),
    ("TE.TE identity", _post(b"Transfer-Encoding: identity\r\n", _TECL_BODY)),
    ("TE.TE chunked, identity", _post(b"Transfer-Encoding: chunked, identity\r\n", _TECL_BODY)),
    ("TE.TE two lines", _post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", _TECL_BODY)),
    ("TE.TE space before colon", _post(b"Transfer-Encoding : chunked\r\n", _TECL_BODY)),
    ("TE.TE vertical tab", _post(b"Transfer-Encoding: \x0bchunked\r\n", _TECL_BODY)),
    ("TE.TE obs-fold", _post(b"Transfer-Encoding:\r\n chunked\r\n", _TECL_BODY)),
    ("TE.TE bare LF", _post(b"X-A: 1\nTransfer-Encoding: chunked\r\n", _TECL_BODY)),
    ("TE in HTTP/1.0", _post(b"Transfer-Encoding: chunked\r\n", _TECL_BODY, b"HTTP/1.0")),
    ("obs-fold other header", _post(b"X-A: 1\r\n folded\r\nContent-Length: %d\r\n" % len(SMUG), SMUG)),
    ("duplicate CL differing", _post(b"Content-Length: 0\r\nContent-Length: %d\r\n" % len(SMUG), SMUG)),
    ("duplicate CL same", _post(b"Content-Length: %d\r\nContent-Length: %d\r\n" % (len(SMUG), len(SMUG)), SMUG)),
    ("CL list", _post(b"Content-Length: 0, %d\r\n" % len(SMUG), SMUG)),
    ("CL plus sign", _post(b"Content-Length: +0\r\n", SMUG)),
    ("CL negative", _post(b"Content-Length: -1\r\n", SMUG)),
    ("CL hex", _post(b"Content-Length: 0x0\r\n", SMUG)),
    ("CL inner space", _post(b"Content-Length: 0 %d\r\n" % len(SMUG), SMUG)),
    ("CL space before colon", _post(b"Content-Length : 0\r\n", SMUG)),
    ("CL 64-bit overflow", _post(b"Content-Length: %d\r\n" % (2**64), SMUG)),
    ("second Host", _post(b"Host: y\r\nContent-Length: 0\r\n", SMUG)),
    ("chunk size 0x prefix", _chunked(b"0x0\r\n\r\n", SMUG)),
    ("chunk size plus sign", _chunked(b"+0\r\n\r\n", SMUG)),
    ("chunk size hex overflow", _chunked(b"10000000000000000\r\n\r\n", SMUG)),
    ("chunk size all ones", _chunked(b"ffffffffffffffff\r\n", SMUG)),
    ("chunk size trailing space", _chunked(b"0 \r\n\r\n", SMUG)),
    ("chunk size bare LF", _chunked(b"0\n\r\n", SMUG)),
    ("chunk ext bare LF", _chunked(b"0;a\nb\r\n\r\n", SMUG)),
    ("chunk ext abuse (long)", _chunked(b"0;" + b"a" * 5000 + b"\r\n\r\n", SMUG)),
    ("chunk ext unterminated quote", _chunked(b'0;a="b\r\n\r\n', SMUG)),
    ("chunk data without CRLF", _chunked(b"3\r\nabc", b"0\r\n\r\n" + SMUG)),
    ("trailer obs-fold", _chunked(b"0\r\nX-T: 1\r\n folded\r\n\r\n", SMUG)),
]


class _RecordingUpstream(socketserver.ThreadingTCPServer):
    """A deliberately lax HTTP/1.1 server that records each request it parses
    (method, target, body); ``te_aware`` picks its body framing style."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, te_aware: bool) -> None:
        self.te_aware = te_aware
        self.parsed: list[tuple[str, str, bytes]] = []
        self.connections = 0
        self.open_now = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _LaxHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _LaxHandler(socketserver.BaseRequestHandler):
    server: _RecordingUpstream

    def _fill(self, buf: bytearray) -> bool:
        data = self.request.recv(65536)
        buf += data
        return bool(data)

    def _line(self, buf: bytearray) -> bytes | None:
        while b"\n" not in buf:
            if not self._fill(buf):
                return None
        i = buf.index(b"\n")
        line = bytes(buf[: i + 1])
        del buf[: i + 1]
        return line

    def _take(self, buf: bytearray, n: int) -> bytes | None:
        while len(buf) < n:
            if not self._fill(buf):
                return None
        out = bytes(buf[:n])
        del buf[:n]
        return out

    def handle(self) -> None:
        srv = self.server
        with srv.lock:
            srv.connections += 1
            srv.open_now += 1
        try:
            self._serve()
        except (ConnectionError, OSError):
            pass
        finally:
            with srv.lock:
                srv.open_now -= 1

    def _serve(self) -> None:
        srv = self.server
        buf = bytearray()
        while True:
            start = self._line(buf)
            if start is None:
                return
            if not start.strip():
                continue
            headers: dict[str, str] = {}
            while True:
                line = self._line(buf)
                if line is None:
                    return
                if not line.strip():
                    break
                k, _, v = line.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()  # lax: last one wins, folding ignored
            parts = start.decode("latin-1").split()
            method, target = (parts + ["", ""])[:2]
            if srv.te_aware and "chunked" in headers.get("transfer-encoding", "").lower():
                body = bytearray()
                while True:
                    size_line = self._line(buf)
                    if size_line is None:
                        return
                    try:
                        size = int(size_line.split(b";")[0].strip() or b"0", 16) % (1 << 64)
                    except ValueError:
                        size = 0
                    if size == 0:
                        while (t := self._line(buf)) is not None and t.strip():
                            pass
                        break
                    data = self._take(buf, size + 2)
                    if data is None:
                        return
                    body += data[:size]
                body = bytes(body)
            else:
                try:
                    n = int(headers.get("content-length", "0").split(",")[0]) % (1 << 64)
                except ValueError:
                    n = 0
                body = self._take(buf, n) if n else b""
                if body is None:
                    return
            with srv.lock:
                srv.parsed.append((method, target, body))
            resp = orjson.dumps({"target": target, "size": len(body)})
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(resp) + resp)


def _exchange(address: tuple[str, int], data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the proxy closes."""
    out = b""
    with socket.create_connection(address, timeout=timeout) as s:
        try:
            s.sendall(data)
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:  # refused before the client finished sending
            pass
    return out


@pytest.fixture(params=[False, True], ids=["CL-only upstream", "TE-aware upstream"])
def lax_upstream(request) -> Iterator[_RecordingUpstream]:
    up = _RecordingUpstream(te_aware=request.param)
    yield up
    up.stop()


def test_the_corpus_is_dangerous_without_the_proxy() -> None:
    """Sanity of the corpus: sent straight to the lax upstreams, attacks make
    at least one of them parse the smuggled request (so the proxy test below
    is not trivially true)."""
    smuggled_by = {}
    for te_aware in (False, True):
        up = _RecordingUpstream(te_aware)
        try:
            for name, data in CORPUS:
                with socket.create_connection(up.server_address, timeout=5) as s:
                    s.sendall(data)
                    s.settimeout(0.3)
                    try:
                        while s.recv(65536):
                            pass
                    except (TimeoutError, socket.timeout, ConnectionError):
                        pass
            smuggled_by[te_aware] = sum(1 for _, t, _ in up.parsed if t == "/smuggled")
        finally:
            up.stop()
    assert smuggled_by[False] >= 15 and smuggled_by[True] >= 3, smuggled_by


def test_smuggling_corpus_is_refused_recorded_and_found(lax_upstream: _RecordingUpstream, tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path / "state")
    q = pipeline_runner(pipe, batch_ms=5)
    proxy = CaptureProxy(lax_upstream.url, q.submit)
    with BackgroundProxy(proxy) as bp:
        # A normal request first: the upstream is reachable and records.
        ok = _exchange(bp.address, b"GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200")
        answers = {name: _exchange(bp.address, data) for name, data in CORPUS}
    assert q.drain(30)
    q.close()
    pipe.checkpoint()
    for name, answer in answers.items():
        assert answer.startswith(b"HTTP/1.1 400 "), (name, answer[:120])
        assert b"x-apiward-rejected: request_smuggling" in answer.lower(), name
    # The upstream parsed the normal request and nothing else.
    assert [t for _, t, _ in lax_upstream.parsed] == ["/fine"]
    assert proxy.rejected == proxy.smuggling == len(CORPUS)
    # The lake has every attempt as a call, marked.
    con = connect(pipe.state.lake)
    rows = con.execute(
        "SELECT id, method, path, status, resp_headers FROM calls WHERE resp_headers LIKE '%x-apiward-rejected%'"
    ).fetchall()
    assert len(rows) == len(CORPUS)
    assert {r[3] for r in rows} == {400} and {r[1] for r in rows} == {"POST"}
    assert all("request_smuggling" in r[4] for r in rows)
    # ...and the findings name them: protocol.request_smuggling, CWE-444.
    ids = {r[0] for r in rows}
    found = [f for f in pipe.findings.values() if f.detector == "protocol.request_smuggling"]
    assert found and {f.cwe for f in found} == {"CWE-444"} and {f.kind for f in found} == {"attack"}
    assert set().union(*(set(f.event_ids) for f in found)) >= ids
    stored = con.execute("SELECT count(*) FROM findings WHERE detector = 'protocol.request_smuggling'").fetchone()[0]
    assert stored >= 1
    pipe.close()


def test_valid_framings_still_pass(lax_upstream: _RecordingUpstream) -> None:
    """Hardening must not refuse what RFC 9112 allows: chunk extensions,
    trailers, OWS around values, case-insensitive 'Chunked', leading CRLF."""
    got: list = []
    q = LiveRunner(got.extend, batch_ms=5)
    te = lax_upstream.te_aware
    cases = [
        b"POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length:\t5 \r\nConnection: close\r\n\r\nhello",
        b"\r\nGET /lead HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ]
    if te:
        cases += [
            b"POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n"
            b"5;name=\"q v\" ; n2=t\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
        ]
    with BackgroundProxy(CaptureProxy(lax_upstream.url, q.submit)) as bp:
        for data in cases:
            assert _exchange(bp.address, data).startswith(b"HTTP/1.1 200"), data
    q.close()
    assert sorted(t for _, t, _ in lax_upstream.parsed) == sorted(["/cl", "/lead"] + (["/te"] if te else []))
    assert all(b == b"hello" for _, t, b in lax_upstream.parsed if t in ("/cl", "/te"))


def test_slow_clients_are_cut_and_hold_no_upstream_connection() -> None:
    """30 clients drip a body: each gets 408 at the body timeout, the
    upstream never sees an open connection from them."""
    up = _RecordingUpstream(te_aware=True)
    got: list = []
    q = LiveRunner(got.extend, batch_ms=5)
    proxy = CaptureProxy(up.url, q.submit, body_timeout=1.0, header_timeout=5.0)
    peak = 0
    try:
        with BackgroundProxy(proxy) as bp:
            socks = []
            for i in range(30):
                s = socket.create_connection(bp.address, timeout=10)
                if i % 2:
                    s.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
                else:
                    s.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\nab")
                socks.append(s)
            t0 = time.monotonic()
            answers = [b""] * len(socks)
            while time.monotonic() - t0 < 6 and not all(answers):
                for i, s in enumerate(socks):
                    if answers[i]:
                        continue
                    with_timeout = s.gettimeout()
                    s.settimeout(0.01)
                    try:
                        s.sendall(b"x")  # one byte at a time
                        answers[i] = s.recv(65536)
                    except (TimeoutError, socket.timeout):
                        pass
                    except ConnectionError:
                        answers[i] = b"<reset>"
                    s.settimeout(with_timeout)
                peak = max(peak, up.open_now, proxy.stats()["upstream_open"])
                time.sleep(0.1)
            elapsed = time.monotonic() - t0
            for s in socks:
                s.close()
            stats = proxy.stats()
    finally:
        up.stop()
    q.close()
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), [a[:40] for a in answers]
    assert elapsed < 5  # cut at ~1 s, not held
    assert peak == 0 and up.connections == 0 and up.parsed == []
    assert stats["body_timeouts"] == 30
    assert sum(1 for c in got if "not received within" in c.extra.get("proxy_error", "")) == 30


def test_a_slow_large_body_releases_its_upstream_connection_at_the_timeout() -> None:
    """A body too large to buffer is streamed upstream; when the client
    stalls, the body timeout closes that upstream connection too."""
    up = _RecordingUpstream(te_aware=False)
    got: list = []
    q = LiveRunner(got.extend, batch_ms=5)
    proxy = CaptureProxy(up.url, q.submit, body_timeout=1.0)
    try:
        with BackgroundProxy(proxy) as bp:
            with socket.create_connection(bp.address, timeout=10) as s:
                s.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n" + b"a" * 100_000)
                deadline = time.monotonic() + 5
                while up.open_now < 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert up.open_now == 1  # streaming: the upstream connection is open
                answer = s.recv(65536)  # the client stalls; the proxy answers at the timeout
            deadline = time.monotonic() + 5
            while up.open_now and time.monotonic() < deadline:
                time.sleep(0.01)
            assert up.open_now == 0 and proxy.stats()["upstream_open"] == 0
    finally:
        up.stop()
    q.close()
    assert answer.startswith(b"HTTP/1.1 408") and proxy.body_timeouts == 1
    assert up.parsed == [] and got[0].request.body_size == 100_000


def test_slow_head_gets_408() -> None:
    up = _RecordingUpstream(te_aware=False)
    proxy = CaptureProxy(up.url, lambda ex: None, header_timeout=0.5)
    try:
        with BackgroundProxy(proxy) as bp:
            with socket.create_connection(bp.address, timeout=5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
                t0 = time.monotonic()
                data = s.recv(65536)
                waited = time.monotonic() - t0
    finally:
        up.stop()
    assert data.startswith(b"HTTP/1.1 408") and waited < 3
    assert proxy.header_timeouts == 1 and up.connections == 0


def test_idle_keepalive_is_closed_quietly_and_a_stalled_second_head_gets_408() -> None:
    up = _RecordingUpstream(te_aware=False)
    proxy = CaptureProxy(up.url, lambda ex: None, idle_timeout=0.5, header_timeout=0.5)
    req = b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        with BackgroundProxy(proxy) as bp:
            with socket.create_connection(bp.address, timeout=5) as s:
                s.sendall(req)
                first = s.recv(65536)
                t0 = time.monotonic()
                rest = s.recv(65536)  # idle: closed without an answer
                idle = time.monotonic() - t0
            with socket.create_connection(bp.address, timeout=5) as s:
                s.sendall(req)
                s.recv(65536)
                s.sendall(b"GET /k HTTP/1.1\r\n")  # a second head, never finished
                stalled = s.recv(65536)
    finally:
        up.stop()
    assert first.startswith(b"HTTP/1.1 200") and rest == b"" and 0.3 < idle < 3
    assert stalled.startswith(b"HTTP/1.1 408")
    assert proxy.idle_closed == 1 and proxy.header_timeouts == 1


def test_caps_give_503_with_retry_after() -> None:
    """With one upstream connection allowed and one request parked on it
    (its upstream is slow), the next request gets 503 + Retry-After."""
    release = threading.Event()

    class Slow(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            release.wait(10)
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Slow)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    got: list = []
    q = LiveRunner(got.extend, batch_ms=5)
    for cap in ("max_upstream", "max_concurrent"):
        release.clear()
        proxy = CaptureProxy(f"http://127.0.0.1:{srv.server_address[1]}", q.submit, **{cap: 1}, retry_after=7)
        with BackgroundProxy(proxy) as bp:
            first = socket.create_connection(bp.address, timeout=10)
            first.sendall(b"GET /parked HTTP/1.1\r\nHost: x\r\n\r\n")
            deadline = time.monotonic() + 5
            while proxy.in_flight < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            second = _exchange(bp.address, b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            release.set()
            parked = first.recv(65536)
            first.close()
        assert second.startswith(b"HTTP/1.1 503") and b"Retry-After: 7" in second, (cap, second)
        assert parked.startswith(b"HTTP/1.1 200")
        counter = "overload_upstream" if cap == "max_upstream" else "overload_concurrent"
        assert proxy.stats()[counter] == 1
    srv.shutdown()
    srv.server_close()
    q.close()
    assert sum(1 for c in got if c.status == 503) == 2


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 0\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 200\tOK\r\nContent-Length: 0\r\n\r\n",
    ],
    ids=["status-letters", "cl-and-te", "cl-conflict", "cl-negative", "obs-fold", "not-http", "tab-separator"],
)
def test_malformed_upstream_response_gives_502(response: bytes) -> None:
    class Bad(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            self.request.sendall(response)

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Bad)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    got: list = []
    q = LiveRunner(got.extend, batch_ms=5)
    proxy = CaptureProxy(f"http://127.0.0.1:{srv.server_address[1]}", q.submit)
    try:
        with BackgroundProxy(proxy) as bp:
            answer = _exchange(bp.address, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    finally:
        srv.shutdown()
        srv.server_close()
    q.close()
    assert answer.startswith(b"HTTP/1.1 502 ") and response not in answer
    assert proxy.upstream_malformed == 1
    assert [c.status for c in got] == [502] and "upstream" in got[0].extra["proxy_error"]
