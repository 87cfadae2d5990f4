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

Usage: python bench/baselines.py [--events N]
"""

from __future__ import annotations

import argparse
import random
import time

import msgspec

from apiward.detect.injection import InjectionPayload
from apiward.learn.baselines import Baselines
from apiward.model.call import ApiCall
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=50_000)
    args = ap.parse_args()
    calls = build(args.events)
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
