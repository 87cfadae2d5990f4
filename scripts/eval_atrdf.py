#!/usr/bin/env python3
"""Evaluate ``injection.payload`` + baselines on ATRDF 2023 dataset 1 (prints figures).

Protocol: read ``atrdf/dataset_1-dev.json.gz`` with apiward's ATRDF reader
(labels come from :func:`apiward.ingest.atrdf.atrdf_labels` and never reach
the detector); learn baselines from 4 of every 5 benign records
(deterministic: benign ordinal % 5 != 4), then score the other benign
records and every attack in file order. Endpoints are templated by apiward's
templater (``/orders/get/id/2283`` -> ``/orders/get/id/{id}``) when it is
available. Reports malicious-vs-benign precision, recall, F1, accuracy, the
detection rate per attack type, libinjection alone, and a threshold sweep.

Usage: python scripts/eval_atrdf.py [--data DIR] [--show-misses N] [--show-fps N]
Skips with a message when the data folder (../shared/data) is absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import libinjection

from apiward.detect.injection import InjectionPayload
from apiward.ingest.registry import read_file
from apiward.learn.baselines import Baselines
from apiward.learn.parameters import call_params
from apiward.model.call import ApiCall
from apiward.model.context import Context, EndpointRef

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def labels_of(path: Path, n: int) -> list[str | None]:
    try:
        from apiward.ingest.atrdf import atrdf_labels

        return atrdf_labels(str(path))
    except ImportError:  # fall back to reading the tags here
        import gzip

        import orjson

        data = orjson.loads(gzip.open(path).read())
        return [(r.get("request") or {}).get("Attack_Tag") for r in data]


def make_resolver() -> Any:
    try:
        from apiward.discover.inventory import Inventory
        from apiward.discover.templating import Templater

        inv = Inventory(templater=Templater())
        return inv.resolve
    except ImportError:
        return lambda c: EndpointRef(host=c.request.host, method=c.request.method, template=c.request.path)


def f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("APIWARD_DATA", str(DEFAULT_DATA)))
    ap.add_argument("--show-misses", type=int, default=0)
    ap.add_argument("--show-fps", type=int, default=0)
    args = ap.parse_args()
    path = Path(args.data) / "atrdf" / "dataset_1-dev.json.gz"
    if not path.exists():
        print(f"skip: ATRDF data not found at {path}")
        return 0

    _, records = read_file(str(path), "atrdf")
    calls: list[tuple[int, ApiCall]] = [(i, c) for i, c in records if isinstance(c, ApiCall)]
    labels = labels_of(path, len(calls))
    try:
        from apiward.ingest.actor import ActorResolver

        res = ActorResolver(secret=b"eval")
        for _, c in calls:
            c.actor = res.resolve(c)
    except ImportError:
        pass
    resolve = make_resolver()

    benign_ord = 0
    learn, score = [], []
    for i, c in calls:
        lab = labels[i] if i < len(labels) else None
        if lab is None:
            (learn if benign_ord % 5 != 4 else score).append((c, lab))
            benign_ord += 1
        else:
            score.append((c, lab))

    bl = Baselines()
    det = InjectionPayload()
    t0 = time.perf_counter()
    for c, _ in learn:
        ctx = Context(endpoint=resolve(c), mode="learn", baselines=bl)
        det.learn_one(c, ctx)
        bl.learn_one(c, ctx)
    rows = []
    for c, lab in score:
        ctx = Context(endpoint=resolve(c), mode="detect", baselines=bl)
        hits = det.scan(c, ctx)
        found = det.score_one(c, ctx)
        lib = any(
            v and (libinjection.is_sql_injection(v)["is_sqli"] or libinjection.is_xss(v)["is_xss"])
            for _, _, v in call_params(c, ctx.endpoint.path_params)
        )
        rows.append((c, lab, hits, bool(found), lib, max((h[5] for h in hits), default=0.0)))
    dt = time.perf_counter() - t0

    n_att = sum(1 for r in rows if r[1] is not None)
    n_ben = len(rows) - n_att
    print(f"ATRDF dataset 1 (dev half): learn {len(learn)} benign, score {n_ben} benign + {n_att} attacks ({dt:.1f}s)")
    print()

    def report(name: str, pred: list[bool]) -> None:
        tp = sum(1 for r, p in zip(rows, pred) if p and r[1] is not None)
        fp = sum(1 for r, p in zip(rows, pred) if p and r[1] is None)
        fn = n_att - tp
        tn = n_ben - fp
        p, r, f = f1(tp, fp, fn)
        acc = (tp + tn) / len(rows)
        print(f"{name:<38} P={p:.4f} R={r:.4f} F1={f:.4f} acc={acc:.4f} FP rate={fp / max(n_ben, 1):.4f}")

    report("libinjection alone (SQLi or XSS)", [r[4] for r in rows])
    report("injection.payload signatures only", [any(h[0] != "profile" for h in r[2]) for r in rows])
    report("injection.payload (default findings)", [r[3] for r in rows])
    print()
    print("detection per attack type (default findings):")
    per = Counter(r[1] for r in rows if r[1] is not None)
    hit = Counter(r[1] for r in rows if r[1] is not None and r[3])
    techs: dict[str, Counter[str]] = {}
    for r in rows:
        if r[1] is not None and r[2]:
            techs.setdefault(r[1], Counter())[min(r[2], key=lambda h: (h[0] == "profile", -h[5]))[0]] += 1
    for t in sorted(per):
        print(f"  {t:<22} {hit[t]:>4}/{per[t]:<4} = {hit[t] / per[t]:.4f}   techniques: {dict(techs.get(t, Counter()).most_common(4))}")
    print()
    print("threshold sweep over the highest score per request:")
    for th in (0.5, 0.6, 0.7, 0.8, 0.9):
        tp = sum(1 for r in rows if r[5] >= th and r[1] is not None)
        fp = sum(1 for r in rows if r[5] >= th and r[1] is None)
        p, rr, f = f1(tp, fp, n_att - tp)
        print(f"  >= {th:.1f}: P={p:.4f} R={rr:.4f} F1={f:.4f} FP={fp}")
    if args.show_misses:
        print("\nmissed attacks:")
        for r in [r for r in rows if r[1] is not None and not r[3]][: args.show_misses]:
            c = r[0]
            print(" ", r[1], c.request.method, c.request.path, c.request.query, c.request.body[:100], [h[:3] for h in r[2]])
    if args.show_fps:
        print("\nfalse positives:")
        for r in [r for r in rows if r[1] is None and r[3]][: args.show_fps]:
            c = r[0]
            print(" ", c.request.method, c.request.path, c.request.query, [(h[0], h[1], h[2], h[3][:60], h[4].get("reasons") or h[4].get("matched"), h[5]) for h in r[2]][:3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
