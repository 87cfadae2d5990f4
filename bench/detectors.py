"""Detector cost: microseconds per event and events per CPU-second, per
detector, over a synthetic multi-user stream (~50k calls by default).

The stream mixes what a shop-like API sees: listings and detail reads by
many users, creations, profile updates, logins (some failing), sign-ups,
paginated listings, error responses, plus a little attack traffic (a BOLA
walker, a credential stuffer, a scraper). Contexts (templates, path
parameters, sensitive hits from the real classifier) are built before
timing, and JSON bodies are decoded once up front, because the pipeline
shares that work across detectors; the decode cost is printed separately.

    python bench/detectors.py [--events 50000] [--only bola.cross_owner_access,...]
    python bench/detectors.py --sim [--events 40000] [--users 200] [--hours 12]

``--sim`` replays the DemoBank simulator traffic of ``bench/pipeline.py``
(same cache in bench/out/) through the pipeline's discover stage once, then
runs the chosen detectors together the way the pipeline does (score all,
then learn all, per call; shared per-call caches on the context), timing
each one; repeat runs reuse the contexts (their caches are cleared).
"""

from __future__ import annotations

import argparse
import gc
import random
import time

from apiward.detect.registry import build_detectors, detector_ids
from apiward.model.call import ApiCall
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

MINE = (
    "bola.cross_owner_access",
    "bola.enumeration",
    "bfla.admin_function",
    "mass_assignment.readonly_write",
    "data_exposure.sensitive_response",
    "credentials.stuffing",
    "credentials.account_takeover",
    "scraping.enumeration",
    "fake_accounts.signup_burst",
    "recon.scanning", "auth.broken_authentication", "abuse.resource", "anomaly.behaviour",
)


def _ctx(call: ApiCall, template: str, classifier) -> Context:
    segs = call.request.path.strip("/").split("/")
    tsegs = template.strip("/").split("/")
    params = tuple((t[1:-1], s) for t, s in zip(tsegs, segs) if t.startswith("{"))
    ep = EndpointRef(host=call.request.host, method=call.request.method, template=template, path_params=params)
    hits = classifier.classify_call(call) if classifier is not None else []
    return Context(endpoint=ep, sensitive=hits)


_SYL = ("ka", "lo", "mi", "ren", "sa", "to", "vel", "dor", "an", "is", "mar", "ben", "tin", "el")


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYL) for _ in range(rng.randint(2, 4))) + "." + "".join(rng.choice(_SYL) for _ in range(3))


def stream(n: int, seed: int = 1) -> list[tuple[ApiCall, str]]:
    rng = random.Random(seed)
    users = [f"user{i}" for i in range(400)]
    orders: dict[str, list[int]] = {}
    next_order = 1000
    out: list[tuple[ApiCall, str]] = []
    t = 1_764_000_000.0
    for i in range(n):
        t += 0.05
        r = rng.random()
        u = rng.choice(users)
        ip = f"198.51.{users.index(u) // 250}.{users.index(u) % 250}"
        kw = {"ts": t, "user": u, "ip": ip}
        if i % 997 == 500:  # a stuffing burst
            for j in range(20):
                out.append((make_call("POST", "/auth/login", ts=t, ip="192.0.2.66", req_json={"email": f"v{j}@example.com", "password": "x"},
                                      status=401, json={"error": "invalid"}), "/auth/login"))
            continue
        if r < 0.25:
            p = rng.randint(1, 300)
            out.append((make_call("GET", f"/api/products/{p}", json={"id": p, "name": "Thing", "price": 9.5, "stock": 3}, **kw), "/api/products/{productId}"))
        elif r < 0.35:
            page = rng.randint(1, 4)
            out.append((make_call("GET", f"/api/products?page={page}&limit=20",
                                  json={"items": [{"id": page * 20 + k, "name": "Thing", "price": 1.0} for k in range(20)], "total": 300}, **kw), "/api/products"))
        elif r < 0.45:
            mine = orders.setdefault(u, [])
            out.append((make_call("GET", "/api/orders", json=[{"id": o, "user_id": u, "total": 10} for o in mine[-10:]], **kw), "/api/orders"))
        elif r < 0.6:
            mine = orders.get(u)
            if not mine:
                continue
            o = rng.choice(mine)
            out.append((make_call("GET", f"/api/orders/{o}", json={"id": o, "user_id": u, "total": 10, "email": f"{u}@example.com"}, **kw), "/api/orders/{orderId}"))
        elif r < 0.67:
            next_order += 1
            orders.setdefault(u, []).append(next_order)
            out.append((make_call("POST", "/api/orders", status=201, req_json={"productId": rng.randint(1, 300), "qty": 1},
                                  json={"id": next_order, "user_id": u, "status": "new"}, **kw), "/api/orders"))
        elif r < 0.73:
            out.append((make_call("PATCH", f"/api/users/{u}", req_json={"phone": "+1-212-555-0100"},
                                  json={"id": u, "email": f"{u}@example.com", "phone": "+1-212-555-0100", "role": "user"}, **kw), "/api/users/{userId}"))
        elif r < 0.78:
            ok = rng.random() < 0.9
            out.append((make_call("POST", "/auth/login", ts=t, ip=ip, req_json={"email": f"{u}@example.com", "password": f"pw-{u}" if ok else f"typo-{i}"},
                                  status=200 if ok else 401, json={"access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"} if ok else {"error": "invalid"}), "/auth/login"))
        elif r < 0.8:
            out.append((make_call("POST", "/api/register", ts=t, ip=f"203.0.{i % 200}.{i % 250}", status=201,
                                  req_json={"username": _name(rng), "email": f"{_name(rng)}@example.org", "password": "pw"},
                                  json={"id": 100000 + i}), "/api/register"))
        elif r < 0.82:
            out.append((make_call("GET", "/api/search?q=%27", status=500, body=b"Internal Server Error",
                                  resp_headers={"content-type": "text/plain"}, **kw), "/api/search"))
        elif r < 0.84 and i % 50 < 10:
            o = 1000 + i % 2000  # a BOLA walker
            out.append((make_call("GET", f"/api/orders/{o}", ts=t, user="mallory", json={"id": o, "user_id": "x"}), "/api/orders/{orderId}"))
        else:
            out.append((make_call("GET", f"/api/users/{u}", json={"id": u, "email": f"{u}@example.com", "name": "N"}, **kw), "/api/users/{userId}"))
        if len(out) >= n:
            break
    return out[:n]


def sim_pairs(events: int, users: int, hours: float, seed: int = 7) -> list[tuple[ApiCall, Context]]:
    """Simulator events through the discover stage, replayed (ids suffixed,
    times shifted) like bench/pipeline.py until ``events`` are reached."""
    import sys
    import tempfile
    from pathlib import Path

    import msgspec

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pipeline import base_events  # bench/pipeline.py

    from apiward.config import load_settings
    from apiward.ingest.registry import read_file
    from apiward.pipeline import Pipeline

    base = [c for _, c in read_file(str(base_events(users, hours, seed)), "jsonl")[1] if isinstance(c, ApiCall)]
    span = max(c.ts for c in base) - min(c.ts for c in base) + 1
    pairs: list[tuple[ApiCall, Context]] = []
    with tempfile.TemporaryDirectory() as tmp:
        pipe = Pipeline(Path(tmp) / "state", settings=load_settings(batch_size=2000, checkpoint_seconds=1e9))
        rep = 0
        while len(pairs) < events:
            day = [msgspec.structs.replace(c, id=f"{c.id}~{rep}", ts=c.ts + rep * span, actor=type(c.actor)()) for c in base]
            day = day[: events - len(pairs)]
            for i in range(0, len(day), 2000):
                batch = day[i : i + 2000]
                for c, x in zip(batch, pipe.discover(batch)):
                    x.inventory = x.baselines = None
                    for k in [k for k in x.__dict__ if k.startswith("_aw")]:
                        del x.__dict__[k]
                    pairs.append((c, x))
            rep += 1
    return pairs


def run_sim(args: argparse.Namespace, ids: list[str]) -> None:
    print(f"discovering {args.events} simulator events ...")
    pairs = sim_pairs(args.events, args.users, args.hours)
    gc.collect()
    gc.freeze()
    from apiward.pipeline import GC_THRESHOLDS
    gc.set_threshold(*GC_THRESHOLDS)  # as Pipeline.run_files sets them
    n = len(pairs)
    best: dict[str, float] = {}
    found: dict[str, int] = {}
    for _ in range(args.repeat):
        for _, x in pairs:
            for k in [k for k in x.__dict__ if k.startswith("_aw")]:
                del x.__dict__[k]
        dets = build_detectors(ids)
        acc = dict.fromkeys(ids, 0.0)
        found = dict.fromkeys(ids, 0)
        pc = time.perf_counter
        for c, x in pairs:
            for d in dets:
                t = pc()
                f = d.score_one(c, x)
                acc[d.id] += pc() - t
                if f:
                    found[d.id] += len(f)
            for d in dets:
                t = pc()
                d.learn_one(c, x)
                acc[d.id] += pc() - t
        best = {k: min(v, best.get(k, v)) for k, v in acc.items()}
    print(f"{'detector':36s} {'us/event':>9s} {'findings':>9s}   (best of {args.repeat}, wall clock per call like --profile-detectors)")
    for k in ids:
        print(f"{k:36s} {best[k] / n * 1e6:9.2f} {found[k]:9d}")
    print(f"{'all of the above':36s} {sum(best.values()) / n * 1e6:9.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--only", default=",".join(MINE), help="comma-separated detector ids (default: the identity-aware ones)")
    ap.add_argument("--no-classifier", action="store_true", help="no sensitive hits in contexts")
    ap.add_argument("--sim", action="store_true", help="simulator traffic through the discover stage, detectors run together")
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--hours", type=float, default=12.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.sim:
        known = set(detector_ids())
        run_sim(args, [i for i in args.only.split(",") if i in known])
        return
    try:
        from apiward.discover.sensitive import Classifier

        classifier = None if args.no_classifier else Classifier()
    except ImportError:
        classifier = None
    print(f"building {args.events} calls ...")
    raw = stream(args.events)
    pairs = [(c, _ctx(c, tpl, classifier)) for c, tpl in raw]
    # The pipeline holds one micro-batch, not 50k calls: keep the prebuilt
    # stream out of the garbage collector's scans so it does not bill detectors.
    gc.collect()
    gc.freeze()
    t0 = time.process_time()
    for c, _ in pairs:
        c.request.json()
        if c.response is not None:
            c.response.json()
    dec = time.process_time() - t0
    n = len(pairs)
    print(f"{n} events; shared JSON decode: {dec / n * 1e6:.2f} us/event (paid once per call by whichever detector asks first)")
    ids = [i for i in args.only.split(",") if i]
    known = set(detector_ids())
    total = 0.0
    print(f"{'detector':36s} {'us/event':>9s} {'events/s/core':>14s} {'findings':>9s}")
    for det_id in ids:
        if det_id not in known:
            print(f"{det_id:36s} (not registered)")
            continue
        (det,) = build_detectors([det_id])
        found = 0
        t0 = time.process_time()
        for c, ctx in pairs:
            f = det.score_one(c, ctx)
            if f:
                found += len(f)
            det.learn_one(c, ctx)
        dt = time.process_time() - t0
        total += dt
        print(f"{det_id:36s} {dt / n * 1e6:9.2f} {n / dt if dt else float('inf'):14,.0f} {found:9d}")
    if total:
        print(f"{'all of the above':36s} {total / n * 1e6:9.2f} {n / total:14,.0f}")


if __name__ == "__main__":
    main()
