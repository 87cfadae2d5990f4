"""Simulator throughput: requests per wall second and per CPU second, the
demo API served in-process by uvicorn on loopback (client and server share
the process, so CPU seconds cover both sides).

    python bench/simulator.py [--users 200] [--hours 6] [--attacks all]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from apiward.sim.demoapp import create_app  # noqa: E402
from apiward.sim.server import ServerThread  # noqa: E402
from apiward.sim.simulator import simulate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--attacks", default="all")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(str(Path(tmp) / "demo.sqlite"), seed_users=max(500, args.users + 100))
        with ServerThread(app) as srv:
            c0, t0 = time.process_time(), time.perf_counter()
            res = simulate(srv.base_url, users=args.users, duration=args.hours * 3600, attacks=args.attacks,
                           out_dir=tmp, population=max(500, args.users + 100), record=not args.no_record)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        app.state.store.close()
        size = res.events_path.stat().st_size if res.events_path else 0
    print(f"requests: {res.requests} ({res.attack_requests} attack) events.jsonl: {size / 1e6:.1f} MB")
    print(f"wall: {wall:.2f}s -> {res.requests / wall:.0f} req/s; cpu: {cpu:.2f}s -> {res.requests / cpu:.0f} req per CPU-second")


if __name__ == "__main__":
    main()
