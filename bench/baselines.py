#!/usr/bin/env python3
"""Benchmark: Baselines.learn_one and InjectionPayload.score_one per event.

Builds ~50k synthetic API calls (8 endpoint templates, path ids, query
strings, JSON bodies, cookies, 2,000 users, 1% attack payloads) outside the
timed region, then times, on one core:

1. learn only (Baselines.learn_one),
2. score only against the learned baselines (InjectionPayload.score_one),
3. score-then-learn per call, as the pipeline runs them.

Parameter extraction is cached per call, so each phase starts from fresh
copies of the calls. Prints µs/event and events/s per core.

With ``--sim`` (the default when the simulator cache exists) it also times
both parts on realistic traffic: the DemoBank simulator's events cached by
``python bench/pipeline.py --events 2000 --users 200 --hours 12`` in
``bench/out/sim-u200-h12-s7/events.jsonl``, resolved once by the pipeline's
discover stage (actors, templates), then replayed ``--replays``
times as later "days" (ids suffixed, timestamps shifted) with fresh struct
copies (``msgspec.structs.replace``), so per-call caches (JSON parse,
extracted parameters) never carry over; module-level memo caches start
empty and the garbage collector runs with the pipeline's settings. Each call gets a fresh
:class:`Context`, as the pipeline builds one per call, and runs
``InjectionPayload.score_one`` then ``Baselines.learn_one``. Two passes:
with the JSON body parsed before timing (the pipeline parses a body once
and shares it across stages) and with the parse included.

Usage: python bench/baselines.py [--events N] [--sim PATH] [--replays R] [--no-synthetic]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from apiward.detect.injection import InjectionPayload
from apiward.learn.baselines import Baselines
from apiward.model.call import ApiCall
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

ROOT = Path(__file__).resolve().parents[1]
SIM_EVENTS = ROOT / "bench" / "out" / "sim-u200-h12-s7" / "events.jsonl"

WORDS = "red blue green shoes boots coat hat summer winter sale new classic slim wide leather wool".split()
ATTACKS = ["1' OR '1'='1", "<script>alert(1)</script>", "../../etc/passwd", "; cat /etc/passwd", "${jndi:ldap://x/a}", "{{7*7}}"]


def build(n: int, seed: int = 7) -> list[tuple[ApiCall, Context]]:
    rnd = random.Random(seed)
    out = []
    host = "shop.example.com"
    for i in range(n):
        user = f"user{rnd.randrange(2000)}"
        k = rnd.randrange(8)
        ts = 1_764_000_000 + i * 0.05
        attack = rnd.random() < 0.01
        bad = rnd.choice(ATTACKS)
        if k == 0:
            q = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 3)))
            q = bad if attack else q
            path, tmpl, pp = f"/api/v1/products?q={q}&page={rnd.randint(1, 20)}&sort=price", "/api/v1/products", ()
            c = make_call("GET", path.replace(" ", "+"), user=user, ts=ts, json={"items": []})
        elif k == 1:
            pid = str(rnd.randrange(100000))
            path, tmpl, pp = f"/api/v1/products/{pid}", "/api/v1/products/{productId}", (("productId", pid),)
            c = make_call("GET", path, user=user, ts=ts, json={"id": pid})
        elif k == 2:
            oid = str(rnd.randrange(10**6))
            path, tmpl, pp = f"/api/v1/orders/{oid}", "/api/v1/orders/{orderId}", (("orderId", oid),)
            c = make_call("GET", path, user=user, ts=ts, json={"id": oid}, status=rnd.choice([200, 200, 200, 404]))
        elif k == 3:
            body = {
                "items": [{"sku": f"SKU-{rnd.randrange(9999):04d}", "qty": rnd.randint(1, 5)} for _ in range(rnd.randint(1, 3))],
                "address": {"street": f"{rnd.randint(1, 999)} {rnd.choice(WORDS).title()} Street", "zip": f"{rnd.randrange(99999):05d}", "country": "FR"},
                "note": bad if attack else " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 8))),
            }
            c = make_call("POST", "/api/v1/orders", user=user, ts=ts, req_json=body, status=201, json={"id": "1"})
            tmpl, pp = "/api/v1/orders", ()
        elif k == 4:
            c = make_call("POST", "/api/v1/login", ts=ts, req_json={"username": user, "password": "x" * rnd.randint(8, 16)}, status=rnd.choice([200, 401]))
            tmpl, pp = "/api/v1/login", ()
        elif k == 5:
            c = make_call("GET", f"/api/v1/users/{user}/profile", user=user, ts=ts, headers={"cookie": f"session={rnd.getrandbits(64):016x}; theme=dark"})
            tmpl, pp = "/api/v1/users/{userId}/profile", (("userId", user),)
        elif k == 6:
            url = bad if attack else f"https://hooks.example.org/{rnd.getrandbits(32):08x}"
            c = make_call("PUT", "/api/v1/webhooks", user=user, ts=ts, req_json={"url": url, "events": ["order.created"], "active": True})
            tmpl, pp = "/api/v1/webhooks", ()
        else:
            c = make_call("GET", f"/api/v1/search?term={rnd.choice(WORDS)}&limit=50&offset={rnd.randrange(0, 500, 50)}", user=user, ts=ts, headers={"referer": "https://shop.example.com/"})
            tmpl, pp = "/api/v1/search", ()
        ref = EndpointRef(host=host, method=c.request.method, template=tmpl, path_params=pp)
        out.append((c, Context(endpoint=ref)))
    return out


def fresh(calls: list[tuple[ApiCall, Context]], bl: Baselines) -> list[tuple[ApiCall, Context]]:
    """Copies without the per-call parameter cache."""
    out = []
    for c, ctx in calls:
        c2 = msgspec.structs.replace(c, request=msgspec.structs.replace(c.request))
        out.append((c2, Context(endpoint=ctx.endpoint, baselines=bl)))
    return out


def sim_base(path: Path) -> tuple[list[tuple[ApiCall, Context]], Any]:
    """Simulator events with the endpoint contexts the pipeline's discover
    stage gives them (actors resolved, templates learned; the sensitive-data
    classifier is left out, neither part reads it)."""
    from apiward.config import load_settings
    from apiward.ingest.registry import read_file
    from apiward.pipeline import Pipeline

    calls = [c for _, c in read_file(str(path), "jsonl")[1] if isinstance(c, ApiCall)]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        pipe = Pipeline(Path(tmp) / "state", settings=load_settings(batch_size=2000))
        inv = pipe.inventory
        for call in calls:
            if pipe.resolver is not None and not call.actor.key:
                call.actor = pipe.resolver.resolve(call)
            ref = inv.resolve(call)
            new = inv.observe(call, ref, [])
            out.append((call, Context(endpoint=ref, new_endpoint=new)))
        pipe.close()
    return out, pipe.resolver


def sim_replay(base: list[tuple[ApiCall, Context]], replays: int, bl: Baselines, parse: bool) -> list[tuple[ApiCall, Context]]:
    """``replays`` shifted copies of the base events, fresh structs and contexts."""
    span = max(c.ts for c, _ in base) - min(c.ts for c, _ in base) + 1
    out = []
    for rep in range(replays):
        shift = rep * span
        for c, ctx in base:
            c2 = msgspec.structs.replace(c, id=f"{c.id}~{rep}", ts=c.ts + shift, request=msgspec.structs.replace(c.request))
            if parse:
                c2.request.json()
            out.append((c2, Context(endpoint=ctx.endpoint, sensitive=ctx.sensitive, mode=ctx.mode, baselines=bl, new_endpoint=ctx.new_endpoint)))
    return out


def clear_caches() -> None:
    """Empty the module-level memo caches so each pass starts cold."""
    from apiward.detect import injection
    from apiward.learn import profiles

    for mod in (injection, profiles):
        for name in dir(mod):
            obj = getattr(mod, name)
            if name.startswith("_") and name.endswith("cache") and hasattr(obj, "clear"):
                obj.clear()


def _sim_pass(base: list[tuple[ApiCall, Context]], resolver: Any, replays: int, parsed: bool, batch_size: int, split: bool) -> tuple[int, int, float, float, float]:
    """One replay from empty baselines and cold memo caches: ``(calls,
    calls with findings, cpu seconds, score wall seconds, learn wall
    seconds)``; the per-call wall clocks only when ``split``."""
    bl = Baselines()
    det = InjectionPayload()
    calls = sim_replay(base, replays, bl, parsed)
    n = len(calls)
    clear_caches()
    gc.collect()
    gc.freeze()
    gc_before = gc.get_threshold()
    from apiward.pipeline import GC_THRESHOLDS
    gc.set_threshold(*GC_THRESHOLDS)  # as Pipeline.run_files sets them
    clock = time.perf_counter
    score_s = learn_s = cpu = 0.0
    found = 0
    for i in range(0, n, batch_size):
        batch = calls[i : i + batch_size]
        if resolver is not None:
            for c, _ in batch:
                resolver.resolve(c)
        c0 = time.process_time()
        if split:
            for c, ctx in batch:
                t0 = clock()
                f = det.score_one(c, ctx)
                t1 = clock()
                bl.learn_one(c, ctx)
                learn_s += clock() - t1
                score_s += t1 - t0
                if f:
                    found += 1
        else:
            for c, ctx in batch:
                if det.score_one(c, ctx):
                    found += 1
                bl.learn_one(c, ctx)
        cpu += time.process_time() - c0
    gc.set_threshold(*gc_before)
    gc.unfreeze()
    return n, found, cpu, score_s, learn_s


def run_sim(path: Path, replays: int, batch_size: int = 2000) -> None:
    base, resolver = sim_base(path)
    print(f"\nsimulator: {len(base):,} DemoBank events x {replays} replays ({path.parent.name}), score_one then learn_one per call")
    print(f"  in batches of {batch_size:,}, each resolved (actors) untimed first as the pipeline's discover stage does;")
    print("  'together' is the CPU time of a plain pass, split between the parts by the wall-clock shares of a timed pass")
    for label, parsed in (("JSON parse excluded", True), ("JSON parse included", False)):
        n, found, cpu, _, _ = _sim_pass(base, resolver, replays, parsed, batch_size, split=False)
        _, _, _, score_s, learn_s = _sim_pass(base, resolver, replays, parsed, batch_size, split=True)
        share = score_s / (score_s + learn_s)
        print(f"  {label}: {n:,} calls, {found:,} with findings")
        for name, s in (("InjectionPayload.score_one", cpu * share), ("Baselines.learn_one", cpu * (1 - share)), ("together", cpu)):
            print(f"    {name:<34} {1e6 * s / n:7.2f} µs/event  {n / s:>9,.0f} events/s per core")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--sim", type=Path, default=SIM_EVENTS, help="simulator events.jsonl (skipped when absent)")
    ap.add_argument("--replays", type=int, default=10)
    ap.add_argument("--no-synthetic", action="store_true", help="only the simulator replay")
    args = ap.parse_args()
    if not args.no_synthetic:
        run_synthetic(args.events)
    if args.sim.exists():
        run_sim(args.sim, args.replays)
    else:
        print(f"\nno simulator events at {args.sim}: run python bench/pipeline.py --events 2000 --users 200 --hours 12", file=sys.stderr)


def run_synthetic(events: int) -> None:
    calls = build(events)
    n = len(calls)

    bl = Baselines()
    det = InjectionPayload()
    batch = fresh(calls, bl)
    t = time.process_time()
    for c, ctx in batch:
        bl.learn_one(c, ctx)
    learn_s = time.process_time() - t

    batch = fresh(calls, bl)
    t = time.process_time()
    found = 0
    for c, ctx in batch:
        found += bool(det.score_one(c, ctx))
    score_s = time.process_time() - t

    bl2 = Baselines()
    batch = fresh(calls, bl2)
    t = time.process_time()
    for c, ctx in batch:
        det.score_one(c, ctx)
        bl2.learn_one(c, ctx)
    both_s = time.process_time() - t

    print(f"{n} synthetic calls, {found} scored with findings after learning")
    for name, s in (("Baselines.learn_one", learn_s), ("InjectionPayload.score_one", score_s), ("score then learn (pipeline order)", both_s)):
        print(f"  {name:<36} {1e6 * s / n:7.1f} µs/event  {n / s:>9,.0f} events/s per core")



if __name__ == "__main__":
    main()
