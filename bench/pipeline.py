"""Full-pipeline benchmark on simulator traffic, every detector on
(issue 5 target: >= 20,000 events/s per core, stretch 50,000; memory flat
over a 1-million-event run).

    python bench/pipeline.py [--events 1000000] [--users 300] [--hours 24]

1. Runs the DemoBank simulator (benign personas + every attack playbook) once
   against the demo API on loopback and records its events (cached in
   bench/out/ per settings).
2. Replays them through one Pipeline until --events is reached: each replay
   is the next "day" (ids suffixed, timestamps shifted), so per-actor and
   per-object state keeps growing as it would in production.
3. Prints events/s per core (CPU seconds of this process), RSS every 10% of
   the run, and the cost of each detector and stage in microseconds per event.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import msgspec
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from apiward.config import load_settings  # noqa: E402
from apiward.ingest.registry import read_file  # noqa: E402
from apiward.model.call import ApiCall  # noqa: E402
from apiward.pipeline import Pipeline  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def base_events(users: int, hours: float, seed: int) -> Path:
    out = ROOT / "bench" / "out" / f"sim-u{users}-h{hours:g}-s{seed}"
    events = out / "events.jsonl"
    if events.exists():
        return events
    from apiward.sim.demoapp import create_app
    from apiward.sim.server import ServerThread
    from apiward.sim.simulator import simulate

    out.mkdir(parents=True, exist_ok=True)
    population = max(500, users + 100)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(str(Path(tmp) / "demo.sqlite"), seed_users=population)
        with ServerThread(app) as srv:
            res = simulate(srv.base_url, users=users, duration=hours * 3600, attacks="all", out_dir=out, population=population, seed=seed)
        app.state.store.close()
    print(f"simulated {res.requests:,} requests ({res.attack_requests:,} attack) in {res.elapsed_s:.1f}s")
    return events


_JWT = re.compile(rb"eyJ[A-Za-z0-9_-]+\.(eyJ[A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")


def _b64d(seg: bytes) -> bytes:
    return base64.urlsafe_b64decode(seg + b"=" * (-len(seg) % 4))


def _b64e(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


class Replayer:
    """Copies of the base events for replay ``rep``, shifted ``shift``
    seconds: ids suffixed, and every JWT re-issued for that day (iat/exp
    shifted, a new signature per day, the same mapping in headers and
    bodies), so replayed traffic is not a flood of expired tokens."""

    def __init__(self) -> None:
        self.tokens: dict[bytes, bytes] = {}
        self.rep = 0
        self.shift = 0.0

    def day(self, rep: int, shift: float) -> None:
        self.rep, self.shift, self.tokens = rep, shift, {}

    def _token(self, m: re.Match[bytes]) -> bytes:
        tok = m.group(0)
        new = self.tokens.get(tok)
        if new is None:
            head, payload, sig = tok.split(b".")
            try:
                claims = orjson.loads(_b64d(payload))
                for k in ("iat", "exp", "nbf"):
                    if isinstance(claims.get(k), (int, float)):
                        claims[k] = int(claims[k] + self.shift)
                payload = _b64e(orjson.dumps(claims))
            except (ValueError, orjson.JSONDecodeError):
                pass
            if self.rep:
                sig = _b64e(hashlib.sha256(sig + str(self.rep).encode()).digest())
            new = self.tokens[tok] = b".".join((head, payload, sig))
        return new

    def _bytes(self, b: bytes) -> bytes:
        return _JWT.sub(self._token, b) if b and b"eyJ" in b else b

    def _msg(self, m):
        if m is None:
            return None
        headers = [(k, self._bytes(v.encode()).decode()) if "eyJ" in v else (k, v) for k, v in m.headers]
        return msgspec.structs.replace(m, headers=headers, body=self._bytes(m.body))

    def copy(self, c: ApiCall) -> ApiCall:
        if self.rep == 0:
            return msgspec.structs.replace(c, actor=type(c.actor)(), request=self._msg(c.request), response=self._msg(c.response))
        return msgspec.structs.replace(
            c, id=f"{c.id}~{self.rep}", ts=c.ts + self.shift, actor=type(c.actor)(),
            request=self._msg(c.request), response=self._msg(c.response),
        )


class Timed:
    """Wraps a detector to account its score/learn time."""

    def __init__(self, det, acc: dict[str, float]) -> None:
        self.det, self.acc = det, acc
        self.id = type(det).id

    def score_one(self, call, ctx):
        t = time.perf_counter()
        r = self.det.score_one(call, ctx)
        self.acc[self.id] += time.perf_counter() - t
        return r

    def learn_one(self, call, ctx):
        t = time.perf_counter()
        self.det.learn_one(call, ctx)
        self.acc[self.id] += time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--profile-detectors", action="store_true", help="time each detector (adds overhead)")
    args = ap.parse_args()
    path = base_events(args.users, args.hours, args.seed)
    base: list[ApiCall] = [c for _, c in read_file(str(path), "jsonl")[1] if isinstance(c, ApiCall)]
    span = max(c.ts for c in base) - min(c.ts for c in base) + 1
    print(f"base: {len(base):,} simulator events over {span / 3600:.1f} h; replaying to {args.events:,}")
    with tempfile.TemporaryDirectory() as tmp:
        pipe = Pipeline(Path(tmp) / "state", settings=load_settings(batch_size=args.batch, checkpoint_seconds=60))
        acc: dict[str, float] = defaultdict(float)
        if args.profile_detectors:
            pipe.detectors = [Timed(d, acc) for d in pipe.detectors]
        print(f"detectors: {', '.join(type(getattr(d, 'det', d)).id for d in pipe.detectors)}")
        stage = defaultdict(float)
        gc.freeze()
        from apiward.pipeline import GC_THRESHOLDS
        gc.set_threshold(*GC_THRESHOLDS)  # as Pipeline.run_files sets them
        done, rep = 0, 0
        step = max(args.events // 10, 1)
        next_report = step
        cpu_used = 0.0  # CPU seconds inside the pipeline (not the replay copying)
        t0 = time.perf_counter()
        replay = Replayer()
        while done < args.events:
            shift = rep * span
            replay.day(rep, shift)
            batch: list[ApiCall] = []
            for c in base:
                if done + len(batch) >= args.events:
                    break
                # A fresh copy: the pipeline resolves actors in place.
                batch.append(replay.copy(c))
                if len(batch) == args.batch:
                    cpu_in = time.process_time()
                    t = time.perf_counter()
                    ctxs = pipe.discover(batch)
                    t1 = time.perf_counter()
                    found = pipe.detect(batch, ctxs)
                    t2 = time.perf_counter()
                    pipe.record(found)
                    from apiward.lake.calls import calls_table

                    pipe.lake.write_partitioned("calls", calls_table(batch, ctxs, pipe.redactor, pipe.settings.lake_body_cap, classified=pipe.classifier is not None), f"b{done}")
                    t3 = time.perf_counter()
                    stage["discover"] += t1 - t
                    stage["detect+learn"] += t2 - t1
                    stage["lake"] += t3 - t2
                    done += len(batch)
                    batch = []
                    pipe.maybe_checkpoint()
                    cpu_used += time.process_time() - cpu_in
                    if done >= next_report:
                        cpu = cpu_used
                        print(f"  {done:>9,} events  {done / cpu:>8,.0f} ev/s per core  rss {rss_mb():7.0f} MB  findings {len(pipe.findings):,}")
                        next_report += step
            if batch:
                cpu_in = time.process_time()
                pipe.process(batch, batch_key=f"b{done}")
                cpu_used += time.process_time() - cpu_in
                done += len(batch)
            rep += 1
        cpu, wall = cpu_used, time.perf_counter() - t0
        pipe.close()
        print(f"total: {done:,} events, cpu {cpu:.1f}s, wall {wall:.1f}s -> {done / cpu:,.0f} events/s per core; rss {rss_mb():.0f} MB")
        print("stages (µs/event): " + ", ".join(f"{k} {v / done * 1e6:.1f}" for k, v in stage.items()))
        if args.profile_detectors:
            for k, v in sorted(acc.items(), key=lambda kv: -kv[1]):
                print(f"  {k:40s} {v / done * 1e6:7.2f} µs/event")


if __name__ == "__main__":
    main()
