"""Self-test over many seeds, through the CLI as a user runs it.

Each seed is a different simulated world: benign population habits, and
attackers whose volume, tempo, id-walk order and tools vary with the seed
(see :class:`apiward.sim.traffic.Ctx`). For every seed this runs::

    apiward selftest --seed N --format json -o <work>/seed-N.json

and then reports, per seed, the classes detected, overall recall and benign
actors accused; per attack class, the mean and the worst recall over the
seeds; and which detectors accused benign actors.

Usage: python scripts/selftest_sweep.py [--seeds 1-10 | --seeds 1,7,23] [--work DIR] [--full]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path


def parse_seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def run_seed(seed: int, work: Path, full: bool) -> dict:
    out = work / f"seed-{seed}.json"
    cmd = [sys.executable, "-m", "apiward", "selftest", "--seed", str(seed), "--format", "json", "-o", str(out)]
    if full:
        cmd.append("--full")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"seed {seed}: apiward selftest failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1-10")
    ap.add_argument("--work", type=Path, default=None, help="Keep the per-seed JSON reports here.")
    ap.add_argument("--full", action="store_true", help="apiward selftest --full (longer, with low-and-slow variants).")
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)
    work = args.work or Path(tempfile.mkdtemp(prefix="apiward-sweep-"))
    work.mkdir(parents=True, exist_ok=True)

    reports: dict[int, dict] = {}
    print(f"{'seed':>5} {'classes':>8} {'recall':>7} {'attack ev':>9} {'benign':>7} {'accused':>8} {'seconds':>8}")
    for seed in seeds:
        t0 = time.monotonic()
        rep = reports[seed] = run_seed(seed, work, args.full)
        n_cls = len(rep["classes"])
        print(f"{seed:>5} {rep['detected_classes']:>3}/{n_cls:<4} {rep['overall_recall']:>7.3f} {rep['attack_events']:>9} "
              f"{rep['benign_actors']:>7} {rep['fp_actors']:>8} {time.monotonic() - t0:>8.1f}", flush=True)

    per_class: dict[str, list[float]] = defaultdict(list)
    missed: dict[str, list[int]] = defaultdict(list)
    volume: dict[str, list[int]] = defaultdict(list)
    for seed, rep in reports.items():
        for c in rep["classes"]:
            per_class[c["attack"]].append(c["recall"])
            volume[c["attack"]].append(c["attack_events"])
            if not c["detected"]:
                missed[c["attack"]].append(seed)
    print()
    print(f"{'attack class':<22} {'mean recall':>11} {'worst':>6} {'events min-max':>15}  missed at seeds")
    for name in sorted(per_class):
        r = per_class[name]
        v = volume[name]
        print(f"{name:<22} {statistics.mean(r):>11.3f} {min(r):>6.3f} {min(v):>7}-{max(v):<7}  {missed.get(name, []) or '-'}")
    recalls = [rep["overall_recall"] for rep in reports.values()]
    accused = [rep["fp_actors"] for rep in reports.values()]
    benign = [rep["benign_actors"] for rep in reports.values()]
    worst_cls = min(per_class, key=lambda k: min(per_class[k])) if per_class else "-"
    fp_det: Counter[str] = Counter()
    for rep in reports.values():
        for det, n in (rep.get("fp_detectors") or {}).items():
            fp_det[det] += n
    print()
    print(f"seeds {len(reports)}: overall recall mean {statistics.mean(recalls):.3f}, worst {min(recalls):.3f}; "
          f"worst class {worst_cls} ({min(per_class[worst_cls]) if per_class else 0:.3f}); "
          f"benign accused {sum(accused)} of {sum(benign)} actor-runs (worst seed {max(accused)} of {benign[accused.index(max(accused))]})")
    if fp_det:
        print("benign accusations by detector: " + ", ".join(f"{k} {v}" for k, v in fp_det.most_common()))
    (work / "summary.json").write_text(json.dumps({
        "seeds": seeds,
        "per_seed": {s: {"recall": r["overall_recall"], "classes": r["detected_classes"], "accused": r["fp_actors"], "benign": r["benign_actors"]}
                     for s, r in reports.items()},
        "per_class": {k: {"mean": statistics.mean(v), "worst": min(v), "missed_seeds": missed.get(k, [])} for k, v in per_class.items()},
        "fp_detectors": dict(fp_det),
    }, indent=2))
    print(f"reports: {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
