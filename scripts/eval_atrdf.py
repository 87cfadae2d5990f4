#!/usr/bin/env python3
"""ATRDF 2023 dataset 1 through the product: learn on benign traffic, detect
on unseen benign traffic and attacks (prints figures).

Protocol: the dataset's records are split in file order into a learning
file (4 of every 5 benign records) and a test file (the other benign
records and every attack, in their original order), both written in the
dataset's own JSON-list format. ``apiward analyze --mode learn`` reads the
first, ``apiward analyze --mode detect`` the second, and ``apiward findings
--kind attack --all-events`` says which test events were flagged (see
``scripts/cli_eval.py``). Labels (``Attack_Tag``) stay in this script: they
are removed from the files apiward reads.

Usage: python scripts/eval_atrdf.py [--data DIR] [--test-mode detect|both] [--work DIR] [--show-misses N] [--show-fps N]
Skips with a message when the data folder (../shared/data) is absent.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_eval import DEFAULT_DATA, Cli, f1, print_table, technique_counts, tenths  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("APIWARD_DATA", str(DEFAULT_DATA)))
    ap.add_argument("--test-mode", choices=("detect", "both"), default="detect",
                    help="Mode of the second run: detect (frozen, the protocol) or both (learning on, as live traffic runs).")
    ap.add_argument("--workers", type=int, default=1, help="apiward analyze --workers (partitions by API host).")
    ap.add_argument("--work", default=None, help="Keep files and state here (default: a temporary folder).")
    ap.add_argument("--show-misses", type=int, default=0)
    ap.add_argument("--show-fps", type=int, default=0)
    args = ap.parse_args()
    path = Path(args.data) / "atrdf" / "dataset_1-dev.json.gz"
    if not path.exists():
        print(f"skip: ATRDF data not found at {path}")
        return 0
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="eval-atrdf-"))
    work.mkdir(parents=True, exist_ok=True)

    records = orjson.loads(gzip.open(path).read())
    learn, test, labels = [], [], []
    benign = 0
    for r in records:
        req = r.get("request") or {}
        tag = req.pop("Attack_Tag", None)
        if tag is None and benign % 5 != 4:
            learn.append(r)
        else:
            test.append(r)
            labels.append(tag)
        if tag is None:
            benign += 1
    (work / "learn.json").write_bytes(orjson.dumps(learn))
    (work / "test.json").write_bytes(orjson.dumps(test))

    cli = Cli(work / "state", workers=args.workers)
    fl = cli.learn_then_detect([work / "learn.json"], [work / "test.json"], test_mode=args.test_mode)
    pred = [fl.flagged(f"test.json#{i}") for i in range(len(test))]
    n_att = sum(1 for t in labels if t is not None)
    n_ben = len(labels) - n_att
    tp = sum(1 for p, t in zip(pred, labels) if p and t is not None)
    fp = sum(1 for p, t in zip(pred, labels) if p and t is None)
    p, r, f = f1(tp, fp, n_att - tp)
    acc = (tp + n_ben - fp) / len(labels)

    print(f"ATRDF dataset 1 (dev half) through the CLI: learn {len(learn)} benign; detect {n_ben} benign + {n_att} attacks")
    print(f"  apiward analyze: learn {fl.seconds['learn']:.1f}s, detect {fl.seconds['detect']:.1f}s; "
          f"{len(fl.findings)} attack findings, {len(fl.exposures)} exposure findings")
    print()
    print_table([("apiward findings --kind attack", f"{p:.4f}", f"{r:.4f}", f"{f:.4f}", f"{acc:.4f}", f"{fp / max(n_ben, 1):.4f}")],
                ("method", "precision", "recall", "F1", "accuracy", "FP rate"))
    print()
    per = Counter(t for t in labels if t is not None)
    hit = Counter(t for p_, t in zip(pred, labels) if p_ and t is not None)
    print("detection per attack type:")
    for t in sorted(per):
        evs = [f"test.json#{i}" for i, lab in enumerate(labels) if lab == t]
        print(f"  {t:<22} {hit[t]:>4}/{per[t]:<4} = {hit[t] / per[t]:.4f}   by: {dict(technique_counts(fl, evs).most_common(4))}")
    att_flags = [p_ for p_, t in zip(pred, labels) if t is not None]
    tt = tenths(att_flags)
    print()
    print("attack stream, detection per tenth:", " ".join(f"{x:.3f}" for x in tt))
    print("false positives by finding:", dict(technique_counts(fl, (f"test.json#{i}" for i, t in enumerate(labels) if t is None)).most_common()))
    if args.show_misses:
        print("\nmissed attacks:")
        for i in [i for i, (p_, t) in enumerate(zip(pred, labels)) if t is not None and not p_][: args.show_misses]:
            q = test[i]["request"]
            print("  ", labels[i], q.get("method"), q.get("url", "")[:160], str(q.get("body"))[:100])
    if args.show_fps:
        print("\nfalse positives:")
        for i in [i for i, (p_, t) in enumerate(zip(pred, labels)) if t is None and p_][: args.show_fps]:
            q = test[i]["request"]
            print("  ", q.get("method"), q.get("url", "")[:140], [x["summary"][:120] for x in fl.by_event[f"test.json#{i}"]][:2])
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
