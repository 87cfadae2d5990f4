"""The capturing reverse proxy against real servers on loopback."""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from apiward.ingest.proxy import BackgroundProxy, CaptureProxy, parse_hostport
from apiward.live.runner import LiveRunner
from apiward.model.call import ApiCall
from apiward.testing import ServedASGI

pytestmark = pytest.mark.timeout(60)


# -- a real upstream ------------------------------------------------------------------


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": [[k, v] for k, v in request.headers.items()],
            "size": len(body),
            "sha": hashlib.sha256(body).hexdigest(),
        },
        status_code=int(request.query_params.get("status", "200")),
        headers={"x-upstream": "yes", "set-cookie": "a=1"},
    )


async def stream(request: Request) -> Response:
    n = int(request.query_params.get("n", "5"))

    async def gen():
        for i in range(n):
            yield f'{{"i": {i}}}\n'.encode()

    return StreamingResponse(gen(), media_type="application/x-ndjson")


async def big(request: Request) -> Response:
    n = int(request.query_params["n"])
    return Response(b"x" * n, media_type="text/plain")


async def gz(request: Request) -> Response:
    return Response(gzip.compress(b'{"secret": "value"}'), media_type="application/json", headers={"content-encoding": "gzip"})


async def nobody(request: Request) -> Response:
    return Response(status_code=204)


app = Starlette(
    routes=[
        Route("/echo", echo, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
        Route("/stream", stream),
        Route("/big", big),
        Route("/gz", gz),
        Route("/nobody", nobody, methods=["DELETE"]),
    ]
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServedASGI]:
    with ServedASGI(app) as u:
        yield u


class Collector:
    def __init__(self) -> None:
        self.calls: list[ApiCall] = []

    def __call__(self, batch: list[ApiCall]) -> None:
        self.calls.extend(batch)

    def wait(self, q: LiveRunner, ids: set[str] | None = None, n: int = 0, timeout: float = 10.0) -> dict[str, ApiCall]:
        """Wait for events: the proxy submits an exchange just after the
        client has its response, so the test may be a step ahead."""
        deadline = time.time() + timeout
        while True:
            assert q.drain(timeout)
            by = {c.request_id or c.id: c for c in self.calls}  # by the client's request id
            if (ids is None or ids <= set(by)) and len(by) >= n:
                return by
            assert time.time() < deadline, f"missing events: {ids - set(by) if ids else n}"
            time.sleep(0.01)


@pytest.fixture
def proxied(upstream):
    got = Collector()
    q = LiveRunner(got, batch_ms=5, body_cap=4096)
    bp = BackgroundProxy(CaptureProxy(upstream.url, q.submit, body_cap=4096))
    bp.start()
    yield bp, q, got
    bp.stop()
    q.close()


# -- tests ------------------------------------------------------------------------------


def test_parse_hostport():
    assert parse_hostport("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_hostport(":9000") == ("127.0.0.1", 9000)
    assert parse_hostport("[::1]:81") == ("::1", 81)


def test_traffic_passes_unchanged_and_is_captured(proxied, upstream):
    bp, q, got = proxied
    body = orjson.dumps({"name": "alice", "card": "4111111111111111"})
    hdrs = {"content-type": "application/json", "x-request-id": "req-1", "authorization": "Bearer abc", "X-Forwarded-For": "198.51.100.1"}
    with httpx.Client() as c:
        direct = c.post(f"{upstream.url}/echo?a=1&b=x%20y", content=body, headers=hdrs)
        via = c.post(f"{bp.url}/echo?a=1&b=x%20y", content=body, headers=hdrs)
    assert via.status_code == direct.status_code == 200
    assert via.headers["x-upstream"] == "yes" and via.headers["set-cookie"] == "a=1"
    d, v = direct.json(), via.json()
    assert v["sha"] == d["sha"] and v["size"] == len(body) and v["query"] == "a=1&b=x%20y"
    dh, vh = dict(d["headers"]), dict(v["headers"])
    # Everything the upstream saw is identical except X-Forwarded-For.
    assert vh["x-forwarded-for"] == "198.51.100.1, 127.0.0.1"
    for k in ("content-type", "x-request-id", "authorization", "content-length", "host"):
        if k == "host":
            continue  # httpx sends the proxy's host:port
        assert vh[k] == dh[k]
    call = got.wait(q, {"req-1"})["req-1"]
    assert call.source == "proxy"
    assert call.request.method == "POST" and call.request.path == "/echo"
    assert call.request.query == [("a", "1"), ("b", "x y")]
    assert call.request.json() == {"name": "alice", "card": "4111111111111111"}
    assert call.response is not None and call.response.status == 200
    assert call.response.json()["sha"] == v["sha"]
    assert call.src.ip == "127.0.0.1" and call.duration_ms is not None and call.duration_ms > 0
    assert q.stats.dropped == 0 and q.stats.processed >= 1


def test_keepalive_chunked_streaming_and_large_bodies(proxied):
    bp, q, got = proxied
    big_up = os.urandom(300_000)

    def gen():
        for i in range(0, len(big_up), 50_000):
            yield big_up[i : i + 50_000]

    with httpx.Client() as c:
        r1 = c.get(f"{bp.url}/stream?n=7", headers={"x-request-id": "s1"})
        r2 = c.put(f"{bp.url}/echo", content=gen(), headers={"x-request-id": "s2", "content-type": "application/octet-stream"})
        r3 = c.get(f"{bp.url}/big?n=2000000", headers={"x-request-id": "s3"})
        r4 = c.delete(f"{bp.url}/nobody", headers={"x-request-id": "s4"})
        r5 = c.head(f"{bp.url}/echo", headers={"x-request-id": "s5"})
        # one TCP connection carried all five (keep-alive through the proxy)
        assert len(c._transport._pool.connections) == 1  # type: ignore[attr-defined]
    assert r1.headers["transfer-encoding"] == "chunked"
    assert r1.text == "".join(f'{{"i": {i}}}\n' for i in range(7))
    assert r2.json()["size"] == len(big_up) and r2.json()["sha"] == hashlib.sha256(big_up).hexdigest()
    assert len(r3.content) == 2_000_000
    assert r4.status_code == 204 and r4.content == b""
    assert r5.status_code == 200 and r5.content == b""
    by = got.wait(q, {"s1", "s2", "s3", "s4", "s5"})
    assert by["s1"].response.body_size == len(r1.content) and by["s1"].response.text().count("\n") == 7
    assert by["s2"].request.body_size == len(big_up) and by["s2"].request.truncated
    assert by["s3"].response.body_size == 2_000_000 and by["s3"].response.truncated
    assert len(by["s3"].response.body) == 4096
    assert by["s4"].status == 204 and by["s5"].request.method == "HEAD"


def test_raw_chunked_request_with_pipelining(proxied):
    """Chunk framing, header case and pipelined requests reach the upstream intact."""
    bp, q, got = proxied
    host, port = bp.address
    req = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: raw1\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: text/plain\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        b"GET /echo?q=2 HTTP/1.1\r\nHost: x\r\nX-Request-Id: raw2\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, port)) as s:
        s.sendall(req)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert hashlib.sha256(b"hello world").hexdigest().encode() in data
    by = got.wait(q, {"raw1", "raw2"})
    assert by["raw1"].request.body == b"hello world" and by["raw1"].request.body_size == 11
    assert by["raw2"].request.query == [("q", "2")]


def _recv_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_expect_continue_and_http10(proxied):
    bp, q, got = proxied
    with socket.create_connection(bp.address) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: e1\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 4\r\nConnection: close\r\n\r\n")
        first = s.recv(100)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")  # the proxy invites the body
        s.sendall(b"ping")
        rest = _recv_all(s)
    assert b"HTTP/1.1 200 OK" in first + rest and b'"size":4' in (first + rest).replace(b" ", b"")
    with socket.create_connection(bp.address) as s:
        s.sendall(b"GET /echo HTTP/1.0\r\nHost: x\r\nX-Request-Id: e2\r\n\r\n")
        data = _recv_all(s)  # an HTTP/1.0 request without keep-alive: closed after the response
    assert data.startswith(b"HTTP/1.1 200") and b"connection: close" in data.lower()
    by = got.wait(q, {"e1", "e2"})
    assert by["e1"].request.body == b"ping" and by["e2"].request.http_version == "HTTP/1.0"


def test_gzip_response_is_decoded_for_analysis_only(proxied):
    bp, q, got = proxied
    with socket.create_connection(bp.address) as s:
        s.sendall(b"GET /gz HTTP/1.1\r\nHost: x\r\nX-Request-Id: gz1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.endswith(gzip.compress(b'{"secret": "value"}')[-8:])  # the client got the gzip bytes
    call = got.wait(q, {"gz1"})["gz1"]
    assert call.response.json() == {"secret": "value"} and call.extra.get("decoded") == "gzip"


def test_upstream_down_gives_502_and_an_event():
    got = Collector()
    q = LiveRunner(got, batch_ms=5)
    dead = f"http://127.0.0.1:{free_port()}"
    with BackgroundProxy(CaptureProxy(dead, q.submit)) as bp:
        with httpx.Client() as c:
            r = c.post(f"{bp.url}/x", content=b"hi", headers={"x-request-id": "down1"})
            r2 = c.get(f"{bp.url}/y")
    assert r.status_code == 502 and r2.status_code == 502
    got.wait(q, {"down1"}, n=2)
    q.close()
    ev = next(c for c in got.calls if c.request_id == "down1")
    assert ev.status == 502 and "connect failed" in ev.extra["proxy_error"]
    assert ev.request.body == b"hi"
    other = next(c for c in got.calls if c.request_id != "down1")
    assert len(other.id) > 20 and len(ev.id) > 20 and other.id != ev.id  # apiward's own time-ordered ids


class _RawUpstream(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def test_exact_head_and_stale_keepalive_retry():
    """The upstream sees header names and order unchanged; a keep-alive
    connection the upstream closed is retried transparently."""
    seen: list[bytes] = []

    class H(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = self.request.recv(65536)
                if not d:
                    return
                buf += d
            head = buf.split(b"\r\n\r\n")[0]
            seen.append(head)
            body = head
            # Says keep-alive, then closes: the next request must be retried.
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    srv = _RawUpstream(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    got = Collector()
    q = LiveRunner(got, batch_ms=5)
    try:
        with BackgroundProxy(CaptureProxy(f"http://127.0.0.1:{srv.server_address[1]}", q.submit)) as bp:
            with socket.create_connection(bp.address) as s:
                for i in range(2):
                    s.sendall(b"GET /a HTTP/1.1\r\nHost: h\r\nX-CaSe-Kept: 1\r\nAccept: */*\r\n\r\n")
                    resp = b""
                    while b"\r\n\r\n" not in resp:
                        resp += s.recv(65536)
                    hdr, _, rest = resp.partition(b"\r\n\r\n")
                    n = int(hdr.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                    while len(rest) < n:
                        rest += s.recv(65536)
                    assert hdr.startswith(b"HTTP/1.1 200")
    finally:
        srv.shutdown()
        srv.server_close()
    assert len(seen) == 2
    assert seen[0] == b"GET /a HTTP/1.1\r\nHost: h\r\nX-CaSe-Kept: 1\r\nAccept: */*\r\nX-Forwarded-For: 127.0.0.1"
    got.wait(q, n=2)
    q.close()
    assert [c.status for c in got.calls] == [200, 200]


# -- the CLI, as a subprocess ----------------------------------------------------------


def _pipeline_available() -> bool:
    try:
        from apiward.pipeline import Pipeline  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _pipeline_available(), reason="apiward.pipeline not written yet")
def test_cli_proxy_sigterm_drains_into_the_lake(upstream, tmp_path: Path):
    port = free_port()
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "apiward", "proxy", "--listen", f"127.0.0.1:{port}", "--upstream", upstream.url,
         "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        with httpx.Client() as c:
            for i in range(20):
                r = c.get(f"http://127.0.0.1:{port}/echo?i={i}", headers={"x-request-id": f"cli-{i}"})
                assert r.status_code == 200
        # While the proxy runs, another process can query the same state.
        deadline = time.time() + 20
        n = -1
        while time.time() < deadline and n != 20:
            live = subprocess.run(
                [sys.executable, "-m", "apiward", "query", "--state", str(state), "--format", "json",
                 "SELECT count(*) AS n FROM calls WHERE request_id LIKE 'cli-%'"],
                capture_output=True, env=env, timeout=60,
            )
            if live.returncode == 0:
                n = orjson.loads(live.stdout)[0]["n"]
            else:
                time.sleep(0.3)
        assert n == 20
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert b"captured 20" in err or b"captured 20" in out, err.decode()
    q = subprocess.run(
        [sys.executable, "-m", "apiward", "query", "--state", str(state), "--format", "json",
         "SELECT count(*) AS n FROM calls WHERE request_id LIKE 'cli-%'"],
        capture_output=True, env=env, timeout=60,
    )
    assert q.returncode == 0, q.stderr.decode()
    assert b"20" in q.stdout
