"""Benchmark: the whole pipeline on traffic shaped like a large estate.

Data: ``shared/data/openapi-specs/specs-dev.tar.gz`` beside the checkout
(147 APIs.guru specs, development split; the script exits cleanly saying so
when it is absent).

Traffic (cached in ``bench/out/estate/``): :mod:`apiward.sim.specgen` calls
for every spec, each spec served on ``--replicas`` hosts (prod, eu, staging:
3 x 3,623 operations = about 10,900 endpoints), a Zipf long tail of calls
per endpoint (a few endpoints hot, most called once or twice), ``--users``
callers with JWTs or API keys (Zipf: a few heavy clients, many rare ones) and
some anonymous ones, JSON request bodies on writes. One JSONL file in
apiward's own event format.

Measured, each in a fresh child process (so peak RSS is the run's own):

- **full**: ``apiward analyze`` exactly as the CLI runs it (a subprocess of
  ``python -m apiward analyze FILE --state DIR --json --quiet`` with default
  settings, every default detector on). Events per CPU-second from the
  run's own CPU time (its ``--json`` summary: reading to last checkpoint),
  and of the whole process (start-up included); peak RSS.
- **ingest+lake**: the reader, actor resolution, redaction and the Parquet
  lake alone (no discover or detect): the floor under the pipeline.
- **breakdown** (``--breakdown N``): the first N events in process with
  every stage part and detector wrapped in an exclusive timer: the share of
  each, in microseconds per event scaled to the run's CPU time.
- ``--cprofile N``: cProfile of the first N events through the CLI code
  path, top functions written to ``bench/out/estate/profile.txt``.

- ``--budget-run EVENTS``: instead of the above, the estate replayed
  (ids and times shifted) to EVENTS events, each call given one of
  ``--actors`` callers (every one of them, then Zipf), through one Pipeline under
  ``--memory-budget``; RSS after every batch in
  ``bench/out/estate/rss-<budget>.csv`` and a text plot; exits 1 when the
  peak RSS is over the budget.

Regression check: figures are compared with ``bench/estate-figures.json``
(the last recorded ones); the script exits 1 when a throughput figure is
more than 20% below it. ``--record`` stores this run's figures there.

    python bench/estate.py [--replicas 3] [--users 5000] [--breakdown 20000] [--cprofile N] [--record]
    python bench/estate.py --budget-run 1000000 --actors 100000 --memory-budget 512M
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
_CANDIDATES = [ROOT / ".." / "shared" / "data" / "openapi-specs" / "specs-dev.tar.gz",
               ROOT / ".." / ".." / "shared" / "data" / "openapi-specs" / "specs-dev.tar.gz"]
DATA = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0])
OUT = ROOT / "bench" / "out" / "estate"
FIGURES = ROOT / "bench" / "estate-figures.json"
T0 = 1767225600.0  # 2026-01-01T00:00:00Z
TOLERANCE = 0.20  # a throughput figure this much below the recorded one fails the bench
REPLICA_PREFIX = ("", "eu.", "staging.", "us.", "ap.", "dev.")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _jwt(sub: str, tenant: str) -> str:
    import base64

    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()

    sig = base64.urlsafe_b64encode(zlib.crc32(sub.encode()).to_bytes(4, "big") * 8).rstrip(b"=").decode()
    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'sub': sub, 'tenant': tenant, 'iat': int(T0), 'exp': int(T0) + 86400 * 30})}.{sig}"


def host_of(name: str, replica: int) -> str:
    """``specs/xkcd.com/1.0.0.json``, replica 1 -> ``eu.xkcd.com-1.0.0.spec``."""
    import re

    base = name.removeprefix("specs/").removesuffix(".json")
    return REPLICA_PREFIX[replica % len(REPLICA_PREFIX)] + re.sub(r"[^A-Za-z0-9.-]+", "-", base).strip("-").lower() + ".spec"


def write_traffic(replicas: int, users: int, seed: int) -> tuple[Path, dict[str, int]]:
    """The estate's traffic as one JSONL file (cached per settings)."""
    from apiward.ingest.base import make_request, make_response
    from apiward.model.call import ApiCall, dumps
    from apiward.sim.specgen import generate, iter_specs

    out = OUT / f"traffic-r{replicas}-u{users}-s{seed}.jsonl"
    meta = out.with_suffix(".meta.json")
    if out.exists() and meta.exists():
        return out, orjson.loads(meta.read_bytes())
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    # callers: Zipf weights, each with a home address and a credential
    weights = [1.0 / (i + 1) ** 1.05 for i in range(users)]
    tokens = [_jwt(f"user{i}", f"t{i % 97}") for i in range(users)]
    keys = [f"ak_{zlib.crc32(f'k{i}'.encode()):08x}{i:06d}" for i in range(users)]
    pending: list[tuple[str, str, str, Any]] = []  # (host, method, path, body)
    endpoints = 0
    for name, spec in iter_specs(str(DATA)):
        for r in range(replicas):
            tr = generate(spec, seed=zlib.crc32(f"{name}#{r}".encode()), min_calls=1, calls_per_endpoint=8.0, zipf_s=1.2)
            endpoints += len(tr.endpoints)
            host = host_of(name, r)
            pending.extend((host, m, p, b) for (m, p, _), b in zip(tr.calls, tr.bodies))
    rng.shuffle(pending)
    callers = rng.choices(range(users), weights, k=len(pending))
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for n, ((host, method, path, body), u) in enumerate(zip(pending, callers)):
            draw = rng.random()
            headers = [("User-Agent", f"client/{u % 13}.{u % 7}"), ("Accept", "application/json")]
            if draw < 0.80:
                headers.append(("Authorization", f"Bearer {tokens[u]}"))
            elif draw < 0.93:
                headers.append(("X-API-Key", keys[u]))
            req_body = b""
            if method in ("POST", "PUT", "PATCH"):
                headers.append(("Content-Type", "application/json"))
                req_body = orjson.dumps({"name": f"item-{rng.randrange(10_000)}", "quantity": rng.randrange(1, 9),
                                         "note": rng.choice(("urgent", "gift", "", "see attached"))})
            if body is not None:
                resp = make_response(status=201 if method == "POST" else 200,
                                     headers=[("Content-Type", "application/json")], body=orjson.dumps(body))
            elif rng.random() < 0.5:
                resp = make_response(status=404, headers=[("Content-Type", "application/json")], body=b'{"error":"not found"}')
            else:
                resp = make_response(status=204)
            call = ApiCall(id=f"es{n}", ts=T0 + n * 0.05, request=make_request(method=method, host=host, path=path,
                           headers=headers, body=req_body), response=resp, duration_ms=float(5 + n % 40))
            call.src.ip = f"10.{(u >> 8) & 255}.{u & 255}.{1 + (u % 3 if draw < 0.93 else n % 200)}"
            f.write(dumps(call) + b"\n")
    os.replace(tmp, out)
    info = {"events": len(pending), "endpoints": endpoints, "hosts": len({h for h, *_ in pending}), "users": users}
    meta.write_bytes(orjson.dumps(info))
    return out, info


# --------------------------------------------------------------------------- the runs


def timed_analyze(args: list[str]) -> tuple[dict[str, Any], float, float, float]:
    """``apiward analyze <args> --json --quiet`` in a subprocess, as a user
    runs it: (its summary, wall seconds, CPU seconds of the process tree,
    peak RSS in MB of the largest child so far)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "apiward", "analyze", *args, "--json", "--quiet"],
                          capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"apiward analyze {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return orjson.loads(proc.stdout), wall, cpu, after.ru_maxrss / 1024


def run_full(traffic: Path, work: Path) -> dict[str, Any]:
    """``apiward analyze`` in a subprocess, as a user runs it."""
    summary, wall, cpu, peak = timed_analyze([str(traffic), "--state", str(work / "state-full")])
    return {"events": summary["events"], "run_cpu_s": summary["cpu_seconds"], "process_cpu_s": cpu, "wall_s": wall,
            "ev_per_cpu_s": summary["events"] / summary["cpu_seconds"], "ev_per_process_cpu_s": summary["events"] / cpu,
            "peak_rss_mb": peak, "endpoints": summary["endpoints"], "findings": summary["findings"],
            "stage_errors": summary["stage_errors"]}


def _child(mode: str, *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, *args], capture_output=True, text=True, env=_env())
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return orjson.loads(proc.stdout.strip().splitlines()[-1])


def child_ingest_lake(traffic: str, state: str) -> dict[str, Any]:
    """Reader -> actor resolution -> redacted Arrow rows -> Parquet lake,
    with the pipeline's own objects and batch size: nothing discovered,
    nothing detected."""
    from apiward.config import load_settings
    from apiward.ingest.base import ReadOptions
    from apiward.ingest.registry import read_file
    from apiward.lake.calls import calls_table
    from apiward.lake.redact import Redactor
    from apiward.lake.store import Lake
    from apiward.model.call import ApiCall
    from apiward.model.context import Context, EndpointRef
    from apiward.pipeline import _make_resolver
    from apiward.state import StateDir

    sd = StateDir(Path(state))
    settings = load_settings(state_dir=sd.root)
    secret = sd.secret()
    resolver = _make_resolver(settings, secret)
    redactor = Redactor(secret, enabled=settings.redact)
    lake = Lake(sd.lake)
    c0 = time.process_time()
    _fmt, records = read_file(traffic, None, ReadOptions(body_cap=settings.body_cap, source_name=os.path.basename(traffic)))
    batch: list[ApiCall] = []
    n = 0

    def flush() -> None:
        ctxs = [Context(endpoint=EndpointRef(host=c.request.host, method=c.request.method, template=c.request.path)) for c in batch]
        lake.write_partitioned("calls", calls_table(batch, ctxs, redactor, settings.lake_body_cap), f"b{n:09d}")

    for _i, item in records:
        if not isinstance(item, ApiCall):
            continue
        item.actor = resolver.resolve(item)
        batch.append(item)
        n += 1
        if len(batch) >= settings.batch_size:
            flush()
            batch = []
    if batch:
        flush()
    cpu = time.process_time() - c0
    return {"events": n, "cpu_s": cpu, "ev_per_cpu_s": n / cpu, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


class _Timers:
    """Exclusive wall time per name (a nested timed call is not counted in
    its caller), from ``perf_counter``; scaled to CPU time by the caller."""

    def __init__(self) -> None:
        self.acc: dict[str, float] = defaultdict(float)
        self.stack: list[list[Any]] = []

    def wrap(self, name: str, fn: Any) -> Any:
        acc, stack, clock = self.acc, self.stack, time.perf_counter

        def timed(*a: Any, **kw: Any) -> Any:
            frame = [name, 0.0]
            stack.append(frame)
            t = clock()
            try:
                return fn(*a, **kw)
            finally:
                dt = clock() - t
                stack.pop()
                acc[name] += dt - frame[1]
                if stack:
                    stack[-1][1] += dt

        return timed


def _limited(traffic: str, limit: int, work: Path) -> str:
    part = work / f"first-{limit}.jsonl"
    with open(traffic, "rb") as src, open(part, "wb") as dst:
        for i, line in enumerate(src):
            if i >= limit:
                break
            dst.write(line)
    return str(part)


def child_breakdown(traffic: str, state: str, limit: str) -> dict[str, Any]:
    """The CLI's code path (``Pipeline.run_files`` + ``close``) over the
    first ``limit`` events, every part wrapped in a timer at class level."""
    from apiward.config import load_settings
    from apiward.discover.inventory import Inventory
    from apiward.discover.sensitive import Classifier
    from apiward.ingest.actor import ActorResolver
    from apiward.lake.store import Lake
    from apiward.learn.baselines import Baselines
    from apiward.learn.trust import Trust
    from apiward import pipeline as pl
    from apiward.pipeline import Pipeline

    path = _limited(traffic, int(limit), Path(state).parent)
    t = _Timers()
    for cls, meth, name in ((ActorResolver, "resolve", "discover:actor"), (Inventory, "resolve", "discover:templating"),
                            (Classifier, "classify_call", "discover:sensitive"), (Inventory, "observe", "discover:inventory"),
                            (Inventory, "note_probe", "discover:inventory"), (Baselines, "learn_one", "learn:baselines"),
                            (Trust, "observe", "learn:trust"), (Trust, "trusted", "learn:trust"), (Trust, "flag", "learn:trust"),
                            (Pipeline, "record", "record"), (Pipeline, "_calls_table", "lake:rows"),
                            (Lake, "write_partitioned", "lake:parquet"), (Pipeline, "checkpoint", "checkpoint"),
                            (Pipeline, "process", "other (batching, contexts)")):
        setattr(cls, meth, t.wrap(name, getattr(cls, meth)))
    pl.facts = t.wrap("facts", pl.facts)
    pipe = Pipeline(Path(state), settings=load_settings(state_dir=Path(state)))
    seen: set[type] = set()
    for det in pipe.detectors:
        cls = type(det)
        if cls in seen:
            continue
        seen.add(cls)
        for meth in ("score_one", "learn_one"):
            setattr(cls, meth, t.wrap(f"detector:{cls.id}", getattr(cls, meth)))
    Pipeline.run_files = t.wrap("read+decode", Pipeline.run_files)
    c0, w0 = time.process_time(), time.perf_counter()
    summary = pipe.run_files([path])
    pipe.close()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    n = summary.events
    scale = cpu / max(sum(t.acc.values()), 1e-9)  # wall -> CPU (a busy machine stretches wall time)
    return {"events": n, "cpu_s": cpu, "wall_s": wall, "us_per_event": {k: v * scale / n * 1e6 for k, v in t.acc.items()}}


def child_cprofile(traffic: str, state: str, limit: str) -> dict[str, Any]:
    import cProfile
    import pstats

    from apiward.config import load_settings
    from apiward.pipeline import Pipeline

    path = _limited(traffic, int(limit), Path(state).parent)
    pipe = Pipeline(Path(state), settings=load_settings(state_dir=Path(state)))
    prof = cProfile.Profile()
    prof.enable()
    pipe.run_files([path])
    pipe.close()
    prof.disable()
    OUT.mkdir(parents=True, exist_ok=True)
    prof.dump_stats(str(OUT / "profile.prof"))
    with open(OUT / "profile.txt", "w") as f:
        st = pstats.Stats(prof, stream=f)
        st.sort_stats("tottime").print_stats(60)
        st.sort_stats("cumulative").print_stats(60)
    return {"profile": str(OUT / "profile.txt")}


def child_budget(traffic: str, state: str, events: str, actors: str, budget: str) -> dict[str, Any]:
    """The estate's calls replayed (ids and times shifted) until ``events``,
    each call given one of ``actors`` callers (one call in ten to the next
    caller in turn, so all of them call within ``actors`` x 10 events; the
    rest Zipf: a long tail of rare ones), through one Pipeline with ``--memory-budget budget`` fed as
    ``run_files`` feeds it; RSS sampled after every batch, written as it
    goes to ``bench/out/estate/rss-<budget>.csv``."""
    import gc

    import msgspec

    from apiward.config import load_settings
    from apiward.ingest.registry import read_file
    from apiward.model.call import ApiCall
    from apiward.pipeline import Pipeline
    from apiward.state.budget import rss_bytes

    n_events, n_actors = int(events), int(actors)
    rng = random.Random(7)
    tokens = [_jwt(f"actor{i}", f"t{i % 211}") for i in range(n_actors)]
    # Zipf over the actors, drawn through a cumulative table (bisect: cheap per event)
    import bisect
    from itertools import accumulate

    cum = list(accumulate(1.0 / (i + 1) ** 0.9 for i in range(n_actors)))
    pipe = Pipeline(Path(state), settings=load_settings(state_dir=Path(state), memory_budget=budget))
    batch_size = pipe.settings.batch_size
    gc.freeze()
    from apiward.pipeline import GC_THRESHOLDS
    gc.set_threshold(*GC_THRESHOLDS)  # as Pipeline.run_files sets them
    series = OUT / f"rss-{budget}.csv"
    OUT.mkdir(parents=True, exist_ok=True)
    out = open(series, "w")
    out.write("events,rss_mb,cpu_s,endpoints,scale\n")
    done, rep, peak, drawn = 0, 0, 0, 0
    c0 = time.process_time()
    batch: list[ApiCall] = []
    while done < n_events:
        shift = rep * 86400.0
        for _i, call in read_file(traffic, "jsonl")[1]:
            if not isinstance(call, ApiCall):
                continue
            drawn += 1
            # one call in ten goes to the next caller in turn, so that every
            # one of ``actors`` calls within actors x 10 events; the rest by Zipf
            u = (drawn // 10) % n_actors if drawn % 10 == 0 else bisect.bisect_left(cum, rng.random() * cum[-1])
            req = call.request
            headers = [(k, f"Bearer {tokens[u]}" if k == "Authorization" else (f"ak_{u:08d}" if k == "X-API-Key" else v))
                       for k, v in req.headers]
            call = msgspec.structs.replace(call, id=f"{call.id}~{rep}", ts=call.ts + shift,
                                           request=msgspec.structs.replace(req, headers=headers))
            call.src.ip = f"10.{(u >> 16) & 255}.{(u >> 8) & 255}.{u & 255}"
            batch.append(call)
            if len(batch) >= batch_size:
                pipe.process(batch, batch_key=f"b{done:09d}", autocheckpoint=False)
                done += len(batch)
                batch = []
                pipe.maybe_checkpoint()
                rss = rss_bytes() >> 20
                peak = max(peak, rss)
                out.write(f"{done},{rss},{time.process_time() - c0:.1f},{pipe.inventory.endpoints.size()},"
                          f"{pipe.budget.last.get('scale', 1.0):.3f}\n")
                out.flush()
                if done >= n_events:
                    break
        rep += 1
    held = {"findings": len(pipe.findings),
            "spill_pending_mb": sum(len(v) for b in pipe.store._backings.values() for v in b.pending.values()) / 2**20,
            "spilled_keys": sum(len(b.keys) for b in pipe.store._backings.values()),
            "budget": {k: v for k, v in pipe.budget.last.items() if k != "caps"}}
    pipe.close()
    cpu = time.process_time() - c0
    out.close()
    return {"held_at_end": held, "events": done, "cpu_s": cpu, "peak_rss_mb": peak, "series": str(series),
            "endpoints": pipe.inventory.endpoints.size(), "actors_seen": pipe.baselines.actors.size() if pipe.baselines else 0}


def plot(series: Path, budget_mb: float, width: int = 60, height: int = 14) -> str:
    """A text plot of RSS over the run, the budget as a line of '='."""
    rows = [line.split(",") for line in series.read_text().splitlines()[1:]]
    if not rows:
        return "(no samples)"
    xs = [int(r[0]) for r in rows]
    ys = [float(r[1]) for r in rows]
    top = max(max(ys), budget_mb) * 1.05
    grid = [[" "] * width for _ in range(height)]
    level = height - 1 - int(budget_mb / top * (height - 1))
    for c in range(width):
        grid[level][c] = "="
    for x, y in zip(xs, ys):
        c = min(width - 1, int(x / xs[-1] * (width - 1)))
        r = height - 1 - int(y / top * (height - 1))
        grid[r][c] = "*"
    lines = [f"{top * (height - 1 - i) / (height - 1):7.0f} MB |" + "".join(row) for i, row in enumerate(grid)]
    lines.append(" " * 11 + "+" + "-" * width)
    lines.append(" " * 12 + f"0{'events':^{width - 12}}{xs[-1]:,}")
    return "\n".join(lines)


CHILDREN = {"ingest-lake": child_ingest_lake, "breakdown": child_breakdown, "cprofile": child_cprofile, "budget": child_budget}


# --------------------------------------------------------------------------- report


def check_regression(figs: dict[str, Any]) -> list[str]:
    """Throughput figures more than TOLERANCE below the recorded ones."""
    if not FIGURES.exists():
        return []
    old = json.loads(FIGURES.read_text())
    bad = []
    for key in ("full_ev_per_cpu_s", "ingest_lake_ev_per_cpu_s"):
        if key in old and key in figs and figs[key] < old[key] * (1 - TOLERANCE):
            bad.append(f"{key}: {figs[key]:,.0f} is more than {TOLERANCE:.0%} below the recorded {old[key]:,.0f}")
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicas", type=int, default=3, help="hosts serving each spec (3: about 10,900 endpoints)")
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--breakdown", type=int, default=20_000, help="events for the per-stage breakdown (0: skip)")
    ap.add_argument("--cprofile", type=int, default=0, help="cProfile the first N events to bench/out/estate/profile.txt")
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--record", action="store_true", help=f"store this run's figures in {FIGURES.name}")
    ap.add_argument("--budget-run", type=int, default=0, metavar="EVENTS",
                    help="instead: replay the estate to EVENTS events over --actors callers under --memory-budget, plotting RSS")
    ap.add_argument("--actors", type=int, default=100_000)
    ap.add_argument("--memory-budget", default="512M")
    ap.add_argument("--tar", type=Path, default=None, help="the specs tarball (default: shared/data beside the checkout)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    global DATA
    DATA = args.tar or DATA
    if args.child:
        mode, *rest = args.child
        print(orjson.dumps(CHILDREN[mode](*rest)).decode())
        return
    if not DATA.exists():
        print(f"skipped: {DATA} not found (development data lives beside the checkout)")
        return
    traffic, info = write_traffic(args.replicas, args.users, args.seed)
    print(f"estate: {info['events']:,} events, {info['endpoints']:,} spec operations on {info['hosts']:,} hosts, "
          f"{info['users']:,} callers  ({traffic})")
    if args.budget_run:
        from apiward.state.budget import parse_size

        with tempfile.TemporaryDirectory(prefix="estate-budget-") as tmp:
            res = _child("budget", str(traffic), str(Path(tmp) / "state"), str(args.budget_run), str(args.actors), args.memory_budget)
        budget_mb = parse_size(args.memory_budget) / (1 << 20)
        print(f"budget run: {res['events']:,} events, {res['endpoints']:,} endpoints, {res['actors_seen']:,} actors, "
              f"{res['cpu_s']:.0f} CPU-s ({res['events'] / res['cpu_s']:,.0f} ev/CPU-s); peak RSS {res['peak_rss_mb']} MB "
              f"under a {budget_mb:.0f} MB budget: {'OK' if res['peak_rss_mb'] <= budget_mb else 'OVER'}")
        print(f"held at the end: {res['held_at_end']}")
        print(plot(Path(res["series"]), budget_mb))
        print(f"series: {res['series']}")
        if res["peak_rss_mb"] > budget_mb:
            raise SystemExit(1)
        return
    figs: dict[str, Any] = {"events": info["events"], "endpoints": info["endpoints"]}
    with tempfile.TemporaryDirectory(prefix="estate-") as tmp:
        work = Path(tmp)
        if args.cprofile:
            _child("cprofile", str(traffic), str(work / "state-prof"), str(args.cprofile))
            print(f"cProfile of the first {args.cprofile:,} events: {OUT / 'profile.txt'}")
        il = _child("ingest-lake", str(traffic), str(work / "state-il"))
        figs["ingest_lake_ev_per_cpu_s"] = il["ev_per_cpu_s"]
        print(f"ingest+lake: {il['events']:,} events in {il['cpu_s']:.1f} CPU-s -> {il['ev_per_cpu_s']:,.0f} ev/CPU-s, "
              f"peak RSS {il['peak_rss_mb']:.0f} MB")
        if not args.skip_full:
            full = run_full(traffic, work)
            figs.update(full_ev_per_cpu_s=full["ev_per_cpu_s"], full_process_ev_per_cpu_s=full["ev_per_process_cpu_s"],
                        peak_rss_mb=full["peak_rss_mb"])
            print(f"full (apiward analyze): {full['events']:,} events, run {full['run_cpu_s']:.1f} CPU-s -> "
                  f"{full['ev_per_cpu_s']:,.0f} ev/CPU-s (whole process {full['ev_per_process_cpu_s']:,.0f}), "
                  f"wall {full['wall_s']:.1f} s, peak RSS {full['peak_rss_mb']:.0f} MB, "
                  f"{full['endpoints']:,} endpoints, {full['findings']:,} findings, stage errors {full['stage_errors'] or 'none'}")
        if args.breakdown:
            bd = _child("breakdown", str(traffic), str(work / "state-bd"), str(args.breakdown))
            total = sum(bd["us_per_event"].values())
            print(f"breakdown over the first {bd['events']:,} events ({bd['events'] / bd['cpu_s']:,.0f} ev/CPU-s timed; "
                  f"µs per event, CPU-scaled):")
            for k, v in sorted(bd["us_per_event"].items(), key=lambda kv: -kv[1]):
                print(f"  {k:40s} {v:8.1f}  {v / total:6.1%}")
    (OUT / "figures.json").write_text(json.dumps(figs, indent=1))
    bad = check_regression(figs)
    if FIGURES.exists():
        old = json.loads(FIGURES.read_text())
        print("recorded: " + ", ".join(f"{k} {old[k]:,.0f}" for k in ("full_ev_per_cpu_s", "ingest_lake_ev_per_cpu_s", "peak_rss_mb") if k in old)
              + f" ({old.get('recorded', '?')})")
    if args.record:
        FIGURES.write_text(json.dumps({**figs, "recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=1) + "\n")
        print(f"recorded in {FIGURES}")
    if bad:
        print("REGRESSION:\n  " + "\n  ".join(bad))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
