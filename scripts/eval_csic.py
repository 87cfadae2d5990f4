#!/usr/bin/env python3
"""CSIC 2010 through the product: learn on normal traffic, detect on unseen
normal traffic and attacks (prints figures).

Protocol: ``normal-train`` is split into a learning part and a held-out
part, written as raw-HTTP files exactly as the dataset stores them;
``apiward analyze --mode learn`` reads the learning part, ``apiward analyze
--mode detect`` reads the held-out normal file and ``anomalous-dev``; then
``apiward findings --kind attack --all-events`` says which events were
flagged (see ``scripts/cli_eval.py``). Detection rate = flagged attack
requests / attack requests; FP rate = flagged held-out normal / held-out
normal; the attack stream's detection per tenth shows whether detection
decays as an attack goes on.

Splits (``--split``): ``mod5`` (every fifth request held out, the default),
``tail`` (the last 20% held out: later sessions than any learned).

Usage: python scripts/eval_csic.py [--data DIR] [--split mod5|tail] [--test-mode detect|both] [--work DIR] [--show-misses N] [--show-fps N]
Skips with a message when the data folder (../shared/data) is absent.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_eval import DEFAULT_DATA, Cli, f1, print_table, technique_counts, tenths  # noqa: E402

_START = re.compile(rb"(?m)^(?:GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH|TRACE) http")


def requests_of(path: Path) -> list[bytes]:
    """The dataset's requests, byte for byte (split at request lines)."""
    data = gzip.open(path, "rb").read()
    starts = [m.start() for m in _START.finditer(data)] + [len(data)]
    return [data[a:b] for a, b in zip(starts, starts[1:])]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("APIWARD_DATA", str(DEFAULT_DATA)))
    ap.add_argument("--split", choices=("mod5", "tail"), default="mod5")
    ap.add_argument("--test-mode", choices=("detect", "both"), default="detect",
                    help="Mode of the second run: detect (frozen, the protocol) or both (learning on, as live traffic runs).")
    ap.add_argument("--workers", type=int, default=1, help="apiward analyze --workers (partitions by API host).")
    ap.add_argument("--work", default=None, help="Keep files and state here (default: a temporary folder).")
    ap.add_argument("--show-misses", type=int, default=0)
    ap.add_argument("--show-fps", type=int, default=0)
    args = ap.parse_args()
    root = Path(args.data) / "csic2010"
    normal_p, anom_p = root / "normal-train.txt.gz", root / "anomalous-dev.txt.gz"
    if not (normal_p.exists() and anom_p.exists()):
        print(f"skip: CSIC 2010 data not found under {root}")
        return 0
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="eval-csic-"))
    work.mkdir(parents=True, exist_ok=True)

    normal, attacks = requests_of(normal_p), requests_of(anom_p)
    if args.split == "mod5":
        learn = [r for i, r in enumerate(normal) if i % 5 != 4]
        held = [r for i, r in enumerate(normal) if i % 5 == 4]
    else:
        cut = len(normal) * 4 // 5
        learn, held = normal[:cut], normal[cut:]
    files = {"learn.txt": learn, "normal-test.txt": held, "attack-test.txt": attacks}
    for name, reqs in files.items():
        (work / name).write_bytes(b"".join(reqs))

    cli = Cli(work / "state", workers=args.workers)
    fl = cli.learn_then_detect([work / "learn.txt"], [work / "normal-test.txt", work / "attack-test.txt"], test_mode=args.test_mode)
    att = [fl.flagged(f"attack-test.txt#{i}") for i in range(len(attacks))]
    nor = [fl.flagged(f"normal-test.txt#{i}") for i in range(len(held))]
    det, fpr = sum(att) / len(att), sum(nor) / len(nor)
    tp, fp = sum(att), sum(nor)
    p, r, f = f1(tp, fp, len(att) - tp)

    print(f"CSIC 2010 through the CLI (split {args.split}): learn {len(learn)} normal; detect {len(held)} held-out normal + {len(attacks)} attacks")
    print(f"  apiward analyze: learn {fl.seconds['learn']:.1f}s, detect {fl.seconds['detect']:.1f}s; "
          f"{len(fl.findings)} attack findings, {len(fl.exposures)} exposure findings")
    print()
    print_table([("apiward findings --kind attack", f"{det:.4f}", f"{fpr:.4f}", f"{p:.4f}", f"{f:.4f}")],
                ("method", "detection", "FP rate", "precision", "F1"))
    print()
    t = tenths(att)
    print("attack stream, detection per tenth:", " ".join(f"{x:.3f}" for x in t))
    print(f"  first tenth {t[0]:.4f}, last tenth {t[-1]:.4f} (change {t[-1] - t[0]:+.4f})")
    print()
    print("attack events by finding:", dict(technique_counts(fl, (f"attack-test.txt#{i}" for i in range(len(attacks)))).most_common()))
    print("false positives by finding:", dict(technique_counts(fl, (f"normal-test.txt#{i}" for i in range(len(held)))).most_common()))
    if args.show_misses:
        print("\nmissed attacks:")
        for i in [i for i, a in enumerate(att) if not a][: args.show_misses]:
            print("  ", attacks[i].split(b"\n", 1)[0][:200].decode("latin-1"), "|", attacks[i].rsplit(b"\n\n", 1)[-1][:200].decode("latin-1").strip())
    if args.show_fps:
        print("\nfalse positives:")
        for i in [i for i, a in enumerate(nor) if a][: args.show_fps]:
            fs = fl.by_event[f"normal-test.txt#{i}"]
            print("  ", held[i].split(b"\n", 1)[0][:160].decode("latin-1"), "|", [x["summary"][:140] for x in fs][:2])
    if not args.work:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
