"""Added latency and throughput of the capturing proxy, on loopback.

Starts a tiny keep-alive HTTP upstream (asyncio, its own process) and the
proxy, then measures from this process with raw sockets:

1. latency: sequential requests on one keep-alive connection, direct and
   through the proxy; p50/p99 of each and their difference (the overhead);
2. throughput: ``--conns`` concurrent connections for ``--seconds``.

``--pipeline`` chooses what is behind the proxy: ``none`` (CaptureProxy +
LiveRunner with a null sink, in one process: the cost of capture alone),
``worker`` (the ``apiward proxy`` command as users run it: the full
analysis pipeline in its worker process, on a temporary state dir) or
``inprocess`` (``apiward proxy --pipeline inprocess``: the pipeline in a
thread of the proxy). ``--compare`` runs all three and prints a summary.

``--realtime`` (root, Linux) runs the client, the upstream and the proxy
process at real-time round-robin priority, the pipeline worker at normal
priority (``SCHED_RESET_ON_FORK``): on a machine shared with CPU-bound
jobs the figures then show the proxy's own cost rather than its
neighbours'. The in-process pipeline, a thread of the proxy, runs at the
proxy's priority.

    python bench/proxy.py [--requests 5000] [--body 512] [--pipeline worker] [--compare]

Loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, SRC)


def _upstream(port_q: mp.Queue, body_size: int) -> None:
    body = b'{"id": 42, "name": "alice", "pad": "' + b"x" * max(0, body_size - 40) + b'"}'
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                i = head.lower().find(b"content-length:")
                if i >= 0:
                    n = int(head[i + 15 : head.find(b"\r\n", i)])
                    await r.readexactly(n)
                w.write(resp)
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    async def main() -> None:
        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_q.put(srv.sockets[0].getsockname()[1])
        await srv.serve_forever()

    asyncio.run(main())


def _proxy(port_q: mp.Queue, upstream: str, stats_q: mp.Queue, stop: mp.Event, switch: float) -> None:
    """The capture proxy with a null sink: what capture alone costs."""
    from apiward.ingest.proxy import CaptureProxy
    from apiward.live.runner import LiveRunner

    sys.setswitchinterval(switch)
    q = LiveRunner(lambda calls: None, max_queue=200_000)
    proxy = CaptureProxy(upstream, q.submit)

    async def main() -> None:
        host, port = await proxy.start("127.0.0.1", 0)
        port_q.put(port)
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await proxy.shutdown(1.0)

    asyncio.run(main())
    t = time.perf_counter()
    q.close(timeout=300)
    stats = q.stats.as_dict()
    stats["drain_s"] = time.perf_counter() - t
    stats_q.put(stats)


def _realtime_no_fork() -> None:
    """Real-time priority for this process, normal for what it starts."""
    os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(10))


class _Cli:
    """``apiward proxy --pipeline MODE`` on a temporary state directory."""

    def __init__(self, upstream: str, mode: str, realtime: bool = False) -> None:
        self.tmp = tempfile.mkdtemp(prefix="apiward-bench-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "apiward", "proxy", "--listen", f"127.0.0.1:{self.port}", "--upstream", upstream,
             "--state", os.path.join(self.tmp, "state"), "--pipeline", mode, "--max-queue", "200000", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, preexec_fn=_realtime_no_fork if realtime else None,
        )
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read().decode(errors="replace"))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("apiward proxy did not start") from None
                time.sleep(0.1)

    def stop(self) -> dict[str, float]:
        t = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=600)
        line = " ".join(err.decode(errors="replace").split())
        stats: dict[str, float] = {k: int(v) for k, v in re.findall(r"(captured|processed|dropped|errors) (\d+)", line)[:4]}
        stats["drain_s"] = time.perf_counter() - t
        shutil.rmtree(self.tmp, ignore_errors=True)
        return stats


def _request(path: str, body: bytes) -> bytes:
    if body:
        return (
            b"POST %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench/1\r\nAuthorization: Bearer abc.def.ghi\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (path.encode(), len(body))
        ) + body
    return b"GET %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench/1\r\nAuthorization: Bearer abc.def.ghi\r\n\r\n" % path.encode()


def _read_response(s: socket.socket, buf: bytearray) -> None:
    while True:
        i = buf.find(b"\r\n\r\n")
        if i >= 0:
            j = buf.lower().find(b"content-length:", 0, i)
            n = int(buf[j + 15 : buf.find(b"\r\n", j)]) if j >= 0 else 0
            if len(buf) >= i + 4 + n:
                del buf[: i + 4 + n]
                return
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed")
        buf += d


def latency(port: int, n: int, body: bytes, max_s: float) -> list[float]:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    out: list[float] = []
    deadline = time.monotonic() + max_s
    for i in range(n):
        req = _request(f"/users/{i % 500}?page={i % 7}", body)
        t = time.perf_counter()
        s.sendall(req)
        _read_response(s, buf)
        out.append((time.perf_counter() - t) * 1e6)
        if time.monotonic() > deadline:
            break
    s.close()
    return out


async def _throughput(port: int, conns: int, seconds: float, body: bytes) -> int:
    done = 0
    stop_at = time.monotonic() + seconds

    async def one() -> None:
        nonlocal done
        r, w = await asyncio.open_connection("127.0.0.1", port)
        i = 0
        while time.monotonic() < stop_at:
            w.write(_request(f"/items/{i}", body))
            head = await r.readuntil(b"\r\n\r\n")
            j = head.lower().find(b"content-length:")
            await r.readexactly(int(head[j + 15 : head.find(b"\r\n", j)]))
            done += 1
            i += 1
        w.close()

    await asyncio.gather(*(one() for _ in range(conns)))
    return done


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def run(mode: str, args: argparse.Namespace, up_port: int, ctx: mp.context.BaseContext) -> dict[str, object]:
    body = (b'{"name": "bob", "email": "bob@example.com", "pad": "' + b"y" * args.body + b'"}') if args.post else b""
    px = None
    if mode == "none":
        pq: mp.Queue = ctx.Queue()
        sq: mp.Queue = ctx.Queue()
        stop = ctx.Event()
        proc = ctx.Process(target=_proxy, args=(pq, f"http://127.0.0.1:{up_port}", sq, stop, args.switch_interval), daemon=True)
        proc.start()
        px_port = pq.get(timeout=60)
    else:
        px = _Cli(f"http://127.0.0.1:{up_port}", mode, args.realtime)
        px_port = px.port
    try:
        latency(up_port, 500, body, 10)  # warm-up
        latency(px_port, 500, body, 10)
        d = latency(up_port, args.requests, body, 60)
        p = latency(px_port, args.requests, body, 60)
        tp_d = asyncio.run(_throughput(up_port, args.conns, args.seconds, body))
        tp_p = asyncio.run(_throughput(px_port, args.conns, args.seconds, body))
    finally:
        if px is None:
            stop.set()
    if px is None:
        stats = sq.get(timeout=600)
        proc.join(10)
    else:
        stats = px.stop()
    return {"mode": mode, "direct": d, "proxy": p, "tp_direct": tp_d / args.seconds, "tp_proxy": tp_p / args.seconds, "stats": stats}


_LABELS = {"none": "null sink (capture only)", "worker": "full pipeline in its worker process (apiward proxy)",
           "inprocess": "full pipeline in the proxy process (--pipeline inprocess)"}


def report(r: dict, args: argparse.Namespace) -> None:
    d, p, stats = r["direct"], r["proxy"], r["stats"]
    print(f"proxy benchmark ({_LABELS[r['mode']]}, {'POST' if args.post else 'GET'}, {args.body} B bodies, {os.cpu_count()} cores"
          f"{', real-time priority' if args.realtime else ''}, load average {os.getloadavg()[0]:.1f})")
    print(f"  sequential, one keep-alive connection, {len(d)} / {len(p)} requests (microseconds):")
    print(f"    direct        p50 {pct(d, .5):7.0f}   p99 {pct(d, .99):7.0f}   mean {statistics.fmean(d):7.0f}")
    print(f"    via proxy     p50 {pct(p, .5):7.0f}   p99 {pct(p, .99):7.0f}   mean {statistics.fmean(p):7.0f}")
    print(f"    added         p50 {pct(p, .5) - pct(d, .5):7.0f}   p99 {pct(p, .99) - pct(d, .99):7.0f}")
    print(f"  throughput, {args.conns} connections, {args.seconds:.0f} s:")
    print(f"    direct    {r['tp_direct']:9.0f} req/s")
    print(f"    via proxy {r['tp_proxy']:9.0f} req/s")
    print(
        f"  capture: captured {stats.get('captured')}, processed {stats.get('processed')}, dropped {stats.get('dropped')}, "
        f"errors {stats.get('errors')}, drain after load {stats['drain_s']:.1f} s", flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--body", type=int, default=512, help="response body size; request bodies of this size with --post")
    ap.add_argument("--post", action="store_true", help="POST JSON bodies instead of GETs")
    ap.add_argument("--pipeline", choices=("none", "worker", "inprocess"), default="none", help="what runs behind the proxy")
    ap.add_argument("--compare", action="store_true", help="run none, worker and inprocess, then a summary")
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--switch-interval", type=float, default=0.001,
                    help="sys.setswitchinterval in the null-sink proxy (apiward proxy uses 0.001)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--realtime", action="store_true", help="client, upstream and proxy at real-time priority (see above)")
    args = ap.parse_args()
    if args.realtime:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))  # inherited by the upstream and null-sink proxy

    ctx = mp.get_context("spawn")
    pq: mp.Queue = ctx.Queue()
    up = ctx.Process(target=_upstream, args=(pq, args.body), daemon=True)
    up.start()
    up_port = pq.get(timeout=20)
    results = []
    try:
        for mode in ("none", "worker", "inprocess") if args.compare else (args.pipeline,):
            results.append(run(mode, args, up_port, ctx))
            report(results[-1], args)
    finally:
        up.terminate()
    if len(results) > 1:
        print("\nadded latency (via proxy minus direct), milliseconds:")
        for r in results:
            d, p = r["direct"], r["proxy"]
            print(f"  {_LABELS[r['mode']]:<58} p50 {(pct(p, .5) - pct(d, .5)) / 1000:5.2f}   "
                  f"p99 {(pct(p, .99) - pct(d, .99)) / 1000:5.2f}   dropped {r['stats'].get('dropped')}")


if __name__ == "__main__":
    main()
