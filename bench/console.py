#!/usr/bin/env python3
"""Benchmark: console page load times on the demo's data.

Runs ``apiward demo --no-serve`` into ``--state`` (unless it already holds
a demo), serves it with ``apiward.serve`` on a loopback port (uvicorn in a
thread), signs in, and times a full GET of every console page over HTTP:
the first load (cold caches: inventory snapshot, actor clusters) and the
median of ``--runs`` later loads. The target is < 300 ms per page.

Usage: python bench/console.py [--state DIR] [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state", type=Path, default=Path("bench/out/console-demo"))
    ap.add_argument("--quick", action="store_true", help="demo --quick (40 users, 8 h) instead of the full demo")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()

    if not (args.state / "state.db").exists():
        cmd = [sys.executable, "-m", "apiward", "demo", "--no-serve", "--state", str(args.state)] + (["--quick"] if args.quick else [])
        print("building the demo state:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONPATH=str(SRC)), stdout=subprocess.DEVNULL)

    from apiward.serve.app import create_app
    from apiward.serve.auth import AuthStore
    from apiward.sim.server import ServerThread

    store = AuthStore(args.state)
    token = store.create("analyst", "bench")[1]
    store.close()
    app = create_app(args.state, warm=False, ingest=False)
    srv = ServerThread(app).start()
    try:
        with httpx.Client(base_url=srv.base_url, timeout=120) as c:
            pre = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
            assert c.post("/login", data={"csrf": pre, "token": token}).status_code == 303
            h = {"authorization": f"Bearer {token}"}
            finding = c.get("/api/findings", headers=h, params={"kind": "attack", "limit": 1}).json()[0]["id"]
            endpoint = c.get("/api/inventory", headers=h).json()[0]["id"]
            actor = c.get("/api/actors", headers=h, params={"limit": 1}).json()[0]["actor"]
            incident = c.get("/api/incidents", headers=h).json()[0]["id"]
            calls = c.post("/api/hunts/sql", headers=h, json={"sql": "SELECT count(*) FROM calls"}).json()["rows"][0][0]
            pages = [
                ("overview", "GET", "/", None),
                ("inventory", "GET", "/inventory", None),
                ("inventory search", "GET", "/inventory?q=user", None),
                ("endpoint detail", "GET", f"/endpoints/{endpoint}", None),
                ("findings", "GET", "/findings", None),
                ("findings filtered", "GET", "/findings?kind=attack&severity=high", None),
                ("finding detail", "GET", f"/findings/{finding}", None),
                ("actors", "GET", "/actors", None),
                ("actor timeline", "GET", f"/actors/{actor}", None),
                ("hunts", "GET", "/hunts", None),
                ("incidents", "GET", "/incidents", None),
                ("incident report", "GET", f"/incidents/{incident}", None),
                ("selftest", "GET", "/selftest", None),
            ]
            csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/hunts").text).group(1)
            pages.append(("hunt run (SQL)", "POST", "/hunts", {"csrf": csrf, "sql": "SELECT actor, count(*) FROM calls GROUP BY 1 ORDER BY 2 DESC LIMIT 50"}))
            pages.append(("hunt run (saved)", "POST", "/hunts", {"csrf": csrf, "name": "stuffing-then-success"}))
            print(f"state {args.state}: {calls} calls; {args.runs} runs per page after the first load")
            print(f"{'page':22} {'first ms':>9} {'median ms':>10} {'max ms':>8}  {'< 300 ms':>8}")
            # the first load of any page builds the shared caches: time it separately
            t0 = time.perf_counter()
            c.get("/")
            print(f"{'(cold start: overview)':22} {1000 * (time.perf_counter() - t0):9.0f}")
            for name, method, url, data in pages:
                times = []
                for _ in range(args.runs + 1):
                    t = time.perf_counter()
                    r = c.request(method, url, data=data)
                    times.append(1000 * (time.perf_counter() - t))
                    assert r.status_code == 200, (url, r.status_code, r.text[:300])
                med = statistics.median(times[1:])
                print(f"{name:22} {times[0]:9.0f} {med:10.0f} {max(times[1:]):8.0f}  {'yes' if med < 300 else 'NO':>8}")
    finally:
        srv.stop()
        app.state.ctx.close()


if __name__ == "__main__":
    main()
