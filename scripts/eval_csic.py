#!/usr/bin/env python3
"""Evaluate ``injection.payload`` + baselines on CSIC 2010 (prints figures).

Protocol (normal traffic only for learning): read ``normal-train`` with
apiward's raw-HTTP reader, learn baselines from 4 of every 5 requests
(deterministic: record index % 5 != 4), then score the held-aside fifth
(false positives) and ``anomalous-dev`` (detection), score before any
learning from them. Endpoints are ``METHOD path`` (CSIC paths hold no ids).
Compares with libinjection alone (any parameter flagged as SQLi or XSS) in
the same run and prints a threshold sweep over the detector's score.

Usage: python scripts/eval_csic.py [--data DIR] [--show-misses N] [--show-fps N]
Skips with a message when the data folder (../shared/data) is absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

import libinjection

from apiward.detect.injection import InjectionPayload
from apiward.ingest.registry import read_file
from apiward.learn.baselines import Baselines
from apiward.learn.parameters import call_params
from apiward.model.call import ApiCall
from apiward.model.context import Context, EndpointRef

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load(path: Path) -> list[ApiCall]:
    _, records = read_file(str(path), "raw-http")
    return [c for _, c in records if isinstance(c, ApiCall)]


def resolver():  # the pipeline's actor resolution, when available
    try:
        from apiward.ingest.actor import ActorResolver
    except ImportError:
        return None
    return ActorResolver(secret=b"eval")


def context(call: ApiCall, bl: Baselines, mode: str) -> Context:
    ref = EndpointRef(host=call.request.host, method=call.request.method, template=call.request.path)
    return Context(endpoint=ref, mode=mode, baselines=bl)


def libinjection_flags(call: ApiCall, ctx: Context) -> bool:
    for _, _, v in call_params(call, ctx.endpoint.path_params):
        if v and (libinjection.is_sql_injection(v)["is_sqli"] or libinjection.is_xss(v)["is_xss"]):
            return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("APIWARD_DATA", str(DEFAULT_DATA)))
    ap.add_argument("--show-misses", type=int, default=0)
    ap.add_argument("--show-fps", type=int, default=0)
    args = ap.parse_args()
    root = Path(args.data) / "csic2010"
    normal_p, anom_p = root / "normal-train.txt.gz", root / "anomalous-dev.txt.gz"
    if not (normal_p.exists() and anom_p.exists()):
        print(f"skip: CSIC 2010 data not found under {root}")
        return 0

    t0 = time.perf_counter()
    normal, anomalous = load(normal_p), load(anom_p)
    res = resolver()
    if res is not None:
        for c in normal + anomalous:
            c.actor = res.resolve(c)
    learn = [c for i, c in enumerate(normal) if i % 5 != 4]
    held = [c for i, c in enumerate(normal) if i % 5 == 4]
    t_load = time.perf_counter() - t0

    bl = Baselines()
    det = InjectionPayload()
    t1 = time.perf_counter()
    for c in learn:
        ctx = context(c, bl, "learn")
        det.learn_one(c, ctx)
        bl.learn_one(c, ctx)
    t_learn = time.perf_counter() - t1

    def score(calls: list[ApiCall]) -> tuple[list[float], list[bool], list[bool], list[list]]:
        scores, alerted, lib, hits_all = [], [], [], []
        for c in calls:
            ctx = context(c, bl, "detect")
            hits = det.scan(c, ctx)
            scores.append(max((h[5] for h in hits), default=0.0))
            alerted.append(bool(det.score_one(c, ctx)))
            lib.append(libinjection_flags(c, ctx))
            hits_all.append(hits)
        return scores, alerted, lib, hits_all

    t2 = time.perf_counter()
    s_norm, a_norm, l_norm, h_norm = score(held)
    s_anom, a_anom, l_anom, h_anom = score(anomalous)
    t_score = time.perf_counter() - t2

    n_n, n_a = len(held), len(anomalous)
    print(f"CSIC 2010: learn {len(learn)} normal, score {n_n} held-out normal + {n_a} anomalous")
    print(f"  load {t_load:.1f}s, learn {1e6 * t_learn / len(learn):.1f} µs/call, score {1e6 * t_score / (n_n + n_a):.1f} µs/call")
    print()
    print(f"{'method':<38} {'detection':>9} {'FP rate':>8}")
    print(f"{'libinjection alone (SQLi or XSS)':<38} {sum(l_anom) / n_a:>9.4f} {sum(l_norm) / n_n:>8.4f}")
    sig_a = sum(any(h[0] != 'profile' for h in hs) for hs in h_anom) / n_a
    sig_n = sum(any(h[0] != 'profile' for h in hs) for hs in h_norm) / n_n
    print(f"{'injection.payload signatures only':<38} {sig_a:>9.4f} {sig_n:>8.4f}")
    print(f"{'injection.payload (default findings)':<38} {sum(a_anom) / n_a:>9.4f} {sum(a_norm) / n_n:>8.4f}")
    print()
    print("threshold sweep (request flagged when its highest score >= threshold):")
    print(f"  {'threshold':>9} {'detection':>9} {'FP rate':>8}")
    for th in (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9):
        d = sum(s >= th for s in s_anom) / n_a
        f = sum(s >= th for s in s_norm) / n_n
        print(f"  {th:>9.2f} {d:>9.4f} {f:>8.4f}")
    # Best detection with FP <= 1% (reported, not used to pick defaults).
    ths = sorted(set(s_norm + s_anom))
    best = max(
        ((sum(s >= th for s in s_anom) / n_a, th) for th in ths if th > 0 and sum(s >= th for s in s_norm) / n_n <= 0.01),
        default=(0.0, 1.0),
    )
    print(f"  best detection at FP <= 0.01: {best[0]:.4f} (threshold {best[1]:.3f})")
    print()
    tech = Counter(min(hs, key=lambda h: (h[0] == "profile", -h[5]))[0] for hs in h_anom if hs)
    print("anomalous requests by strongest technique:", dict(tech.most_common()))
    tech_n = Counter(min(hs, key=lambda h: (h[0] == "profile", -h[5]))[0] for hs, a in zip(h_norm, a_norm) if hs and a)
    print("false positives by technique:", dict(tech_n.most_common()))
    if args.show_misses:
        print("\nmissed anomalous requests:")
        k = 0
        for c, a in zip(anomalous, a_anom):
            if not a:
                print(" ", c.request.method, c.request.path, c.request.query, c.request.body[:200])
                k += 1
                if k >= args.show_misses:
                    break
    if args.show_fps:
        print("\nfalse positives:")
        k = 0
        for c, a, hs in zip(held, a_norm, h_norm):
            if a:
                print(" ", c.request.method, c.request.path, [(h[0], h[1], h[2], h[3][:60], h[4].get("reasons") or h[4].get("matched"), h[5]) for h in hs][:3])
                k += 1
                if k >= args.show_fps:
                    break
    return 0


if __name__ == "__main__":
    sys.exit(main())
