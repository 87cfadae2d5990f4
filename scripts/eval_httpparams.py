#!/usr/bin/env python3
"""HttpParams through the product: parameter values embedded in requests,
learn on normal values, detect on unseen normal values and attacks (prints
figures).

Each row of ``httpparams/payload_train.csv.gz`` is one parameter value with
a class (``norm``, ``sqli``, ``xss``, ``path-traversal``, ``cmdi``). The
values become requests written as apiward JSONL (``--embed``: a query
parameter of ``GET /search``, a path segment of ``GET /items/...``, a form field or a JSON field of
``POST /search``), from a pool of 200 client addresses, one second apart,
each answered 200. 4 of every 5 normal values (in file order) go to the
learning file; the test file holds the other normal values and every
attack value, in file order. ``apiward analyze --mode learn`` then
``--mode detect``, then ``apiward findings --kind attack --all-events``
(``scripts/cli_eval.py``). Reports binary attack-vs-normal precision,
recall, F1 and accuracy, and detection per class.

Usage: python scripts/eval_httpparams.py [--data DIR] [--embed query|form|json|path] [--test-mode detect|both] [--work DIR] [--show-misses N] [--show-fps N]
Skips with a message when the data folder (../shared/data) is absent.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import random
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import orjson

from apiward.ingest.base import make_request, make_response
from apiward.model.call import ApiCall, Peer, dumps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_eval import DEFAULT_DATA, Cli, f1, print_table, technique_counts, tenths  # noqa: E402

T0 = 1_764_000_000.0


def call_for(name: str, i: int, value: str, embed: str, rng: random.Random) -> ApiCall:
    """One request carrying ``value``; ids as apiward gives file records."""
    ip = f"198.51.100.{rng.randrange(1, 201)}"
    headers = [("host", "shop.example"), ("user-agent", "Mozilla/5.0"), ("accept", "application/json")]
    if embed == "path":
        from urllib.parse import quote

        req = make_request(method="GET", path="/items/" + quote(value, safe=""), headers=headers, host="shop.example")
    elif embed == "query":
        req = make_request(method="GET", path="/search", query=[("q", value)], headers=headers, host="shop.example")
    elif embed == "form":
        body = urlencode({"q": value}).encode()
        req = make_request(method="POST", path="/search", headers=[*headers, ("content-type", "application/x-www-form-urlencoded")],
                           body=body, host="shop.example")
    else:
        body = orjson.dumps({"q": value})
        req = make_request(method="POST", path="/search", headers=[*headers, ("content-type", "application/json")],
                           body=body, host="shop.example")
    resp = make_response(status=200, headers=[("content-type", "application/json")], body=b'{"results":[]}')
    return ApiCall(id=f"{name}#{i}", ts=T0 + i, duration_ms=5.0, request=req, response=resp, src=Peer(ip=ip, port=50000), source="jsonl")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("APIWARD_DATA", str(DEFAULT_DATA)))
    ap.add_argument("--embed", choices=("query", "form", "json", "path"), default="query")
    ap.add_argument("--test-mode", choices=("detect", "both"), default="detect",
                    help="Mode of the second run: detect (frozen, the protocol) or both (learning on, as live traffic runs).")
    ap.add_argument("--work", default=None, help="Keep files and state here (default: a temporary folder).")
    ap.add_argument("--show-misses", type=int, default=0)
    ap.add_argument("--show-fps", type=int, default=0)
    args = ap.parse_args()
    path = Path(args.data) / "httpparams" / "payload_train.csv.gz"
    if not path.exists():
        print(f"skip: HttpParams data not found at {path}")
        return 0
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="eval-httpparams-"))
    work.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "rb") as f:
        rows = list(csv.DictReader(io.TextIOWrapper(f, encoding="utf-8", errors="replace")))

    rng = random.Random(7)
    learn, test, labels = [], [], []
    n_norm = 0
    for r in rows:
        cls = r["attack_type"]
        if cls == "norm" and n_norm % 5 != 4:
            learn.append(r["payload"])
        else:
            test.append(r["payload"])
            labels.append(cls)
        n_norm += cls == "norm"
    with open(work / "learn.jsonl", "wb") as out:
        for i, v in enumerate(learn):
            out.write(dumps(call_for("learn.jsonl", i, v, args.embed, rng)) + b"\n")
    with open(work / "test.jsonl", "wb") as out:
        for i, v in enumerate(test):
            out.write(dumps(call_for("test.jsonl", i, v, args.embed, rng)) + b"\n")

    cli = Cli(work / "state")
    fl = cli.learn_then_detect([work / "learn.jsonl"], [work / "test.jsonl"], test_mode=args.test_mode)
    pred = [fl.flagged(f"test.jsonl#{i}") for i in range(len(test))]
    n_att = sum(1 for t in labels if t != "norm")
    n_ben = len(labels) - n_att
    tp = sum(1 for p, t in zip(pred, labels) if p and t != "norm")
    fp = sum(1 for p, t in zip(pred, labels) if p and t == "norm")
    p, r, f = f1(tp, fp, n_att - tp)
    print(f"HttpParams (train split) through the CLI, values as {args.embed}: learn {len(learn)} normal; detect {n_ben} normal + {n_att} attacks")
    print(f"  apiward analyze: learn {fl.seconds['learn']:.1f}s, detect {fl.seconds['detect']:.1f}s; {len(fl.findings)} attack findings")
    print()
    print_table([("apiward findings --kind attack", f"{p:.4f}", f"{r:.4f}", f"{f:.4f}", f"{(tp + n_ben - fp) / len(labels):.4f}", f"{fp / max(n_ben, 1):.4f}")],
                ("method", "precision", "recall", "F1", "accuracy", "FP rate"))
    print()
    per = Counter(labels)
    hit = Counter(t for p_, t in zip(pred, labels) if p_)
    print("flagged per class:")
    for t in sorted(per):
        evs = [f"test.jsonl#{i}" for i, lab in enumerate(labels) if lab == t]
        print(f"  {t:<16} {hit[t]:>5}/{per[t]:<5} = {hit[t] / per[t]:.4f}   by: {dict(technique_counts(fl, evs).most_common(4))}")
    tt = tenths([p_ for p_, t in zip(pred, labels) if t != "norm"])
    print()
    print("attack stream, detection per tenth:", " ".join(f"{x:.3f}" for x in tt))
    if args.show_misses:
        print("\nmissed attacks:")
        for i in [i for i, (p_, t) in enumerate(zip(pred, labels)) if t != "norm" and not p_][: args.show_misses]:
            print("  ", labels[i], repr(test[i][:160]))
    if args.show_fps:
        print("\nfalse positives:")
        for i in [i for i, (p_, t) in enumerate(zip(pred, labels)) if t == "norm" and p_][: args.show_fps]:
            print("  ", repr(test[i][:100]), [x["summary"][:120] for x in fl.by_event[f"test.jsonl#{i}"]][:2])
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
