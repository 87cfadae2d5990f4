#!/usr/bin/env python3
"""Evaluate the injection value classifier on HttpParams (prints figures).

Each row of ``httpparams/payload_train.csv.gz`` is one parameter value with
a class (``norm``, ``sqli``, ``xss``, ``path-traversal``, ``cmdi``).
:func:`apiward.detect.injection.classify_value` labels every value; its
techniques map to the dataset's classes (``sqli``/``nosqli`` -> sqli,
``xss`` -> xss, ``traversal`` -> path-traversal, ``cmdi`` -> cmdi, no match
-> norm); other techniques (template, overflow...) count as "attack, other
class". Reports accuracy per class, the confusion matrix and the binary
attack-vs-norm figures. No learning: the classifier is signatures only.

Usage: python scripts/eval_httpparams.py [--data DIR] [--show-misses N]
Skips with a message when the data folder (../shared/data) is absent.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from apiward.detect.injection import classify_value

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TECH_TO_CLASS = {"sqli": "sqli", "nosqli": "sqli", "xss": "xss", "traversal": "path-traversal", "cmdi": "cmdi", None: "norm"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("APIWARD_DATA", str(DEFAULT_DATA)))
    ap.add_argument("--show-misses", type=int, default=0)
    args = ap.parse_args()
    path = Path(args.data) / "httpparams" / "payload_train.csv.gz"
    if not path.exists():
        print(f"skip: HttpParams data not found at {path}")
        return 0
    with gzip.open(path, "rb") as f:
        rows = list(csv.DictReader(io.TextIOWrapper(f, encoding="utf-8", errors="replace")))
    t0 = time.perf_counter()
    preds = []
    for r in rows:
        tech, _ = classify_value(r["payload"])
        preds.append(TECH_TO_CLASS.get(tech, "other-attack"))
    dt = time.perf_counter() - t0
    truth = [r["attack_type"] for r in rows]
    classes = sorted(set(truth))
    print(f"HttpParams (train split): {len(rows)} values, classify {1e6 * dt / len(rows):.1f} µs/value")
    print()
    total = Counter(truth)
    right = Counter(t for t, p in zip(truth, preds) if t == p)
    flagged = Counter(t for t, p in zip(truth, preds) if p != "norm")
    print(f"{'class':<16} {'n':>6} {'accuracy':>9} {'flagged as attack':>18}")
    for c in classes:
        print(f"{c:<16} {total[c]:>6} {right[c] / total[c]:>9.4f} {flagged[c] / total[c]:>18.4f}")
    acc = sum(right.values()) / len(rows)
    print(f"{'all (5-class)':<16} {len(rows):>6} {acc:>9.4f}")
    tp = sum(1 for t, p in zip(truth, preds) if t != "norm" and p != "norm")
    fp = sum(1 for t, p in zip(truth, preds) if t == "norm" and p != "norm")
    fn = sum(1 for t, p in zip(truth, preds) if t != "norm" and p == "norm")
    tn = len(rows) - tp - fp - fn
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    print(f"binary attack vs norm: accuracy {(tp + tn) / len(rows):.4f}, precision {prec:.4f}, recall {rec:.4f}, F1 {f1:.4f}, FP rate {fp / total['norm']:.4f}")
    print()
    conf: dict[str, Counter[str]] = defaultdict(Counter)
    for t, p in zip(truth, preds):
        conf[t][p] += 1
    cols = classes + ["other-attack"]
    print("confusion (rows truth, columns predicted):")
    print(" " * 16 + "".join(f"{c[:12]:>13}" for c in cols))
    for t in classes:
        print(f"{t:<16}" + "".join(f"{conf[t][c]:>13}" for c in cols))
    if args.show_misses:
        print("\nmisclassified:")
        k = 0
        for r, p in zip(rows, preds):
            if r["attack_type"] != p:
                print(f"  {r['attack_type']:>14} -> {p:<14} {r['payload'][:120]!r}")
                k += 1
                if k >= args.show_misses:
                    break
    return 0


if __name__ == "__main__":
    sys.exit(main())
