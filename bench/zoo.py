"""The zoo, full run: every real application in :mod:`apiward.sim.zoo`
behind the real ``apiward proxy`` CLI, with benign users and attacks
written against each app's own authorization model; scored from
``apiward findings --kind attack --format json`` and
``apiward inventory --format json``.

Per app: attacks planted / caught (each with its expected OWASP category,
what was found on the attacker, and the detectors), benign actors accused,
endpoint templates precision / recall / F1 against the app's own route
table, events sent, wall time. Targets (issue 8): every attack caught with
the right category, 0 benign accused, templates F1 >= 0.95.

    python bench/zoo.py [--apps kinto,pypiserver] [--quick] [--seed 1] [--out bench/out/zoo.txt] [--work DIR]

Apps whose package is not installed are listed as skipped (install the
``zoo`` extra: ``pip install -e '.[zoo]'``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from apiward.sim.zoo import APPS, available  # noqa: E402
from apiward.sim.zoo.harness import run_app  # noqa: E402
from apiward.sim.zoo.score import Score, score_run  # noqa: E402


def report(s: Score, seconds: float) -> list[str]:
    lines = [f"== {s.app}: {s.events} events, {seconds:.0f} s"]
    lines.append(f"   attacks caught {s.caught}/{len(s.attacks)}; benign accused {len({b['actor'] for b in s.benign_accused})}/{s.benign_actors}; "
                 f"templates P {s.precision:.3f} R {s.recall:.3f} F1 {s.f1:.3f} ({len(s.found_templates)} found, {len(s.expected_templates)} expected)")
    for a in s.attacks:
        mark = "caught" if a["caught"] else "MISSED"
        lines.append(f"   {mark:6} {a['id']:28} {a['owasp']:5} found {','.join(a['found']) or '-':12} "
                     f"{a['requests']:3} req  {', '.join(a['detectors']) or '-'}")
    for b in s.benign_accused:
        lines.append(f"   ACCUSED {b['actor']} ({b['key']}) by {b['detector']} {b['owasp']}: {b['summary'][:120]}")
    if s.missing_templates:
        lines.append(f"   missing templates: {', '.join(s.missing_templates)}")
    if s.extra_templates:
        lines.append(f"   extra templates:   {', '.join(s.extra_templates)}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", default=",".join(APPS), help="comma-separated app names")
    ap.add_argument("--quick", action="store_true", help="the test suite's smaller scenarios")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out", "zoo.txt"))
    ap.add_argument("--work", default="", help="keep each app's state and logs here (default: a temporary directory)")
    args = ap.parse_args()
    names = [n.strip() for n in args.apps.split(",") if n.strip()]
    unknown = [n for n in names if n not in APPS]
    if unknown:
        ap.error(f"unknown app(s) {unknown}; known: {', '.join(APPS)}")
    lines = [f"zoo: seed {args.seed}, {'quick' if args.quick else 'full'} scenarios, through `apiward proxy` + `apiward findings/inventory`"]
    totals = [0, 0, 0]
    with tempfile.TemporaryDirectory(prefix="apiward-zoo-") as tmp:
        work = Path(args.work or tmp)
        for name in names:
            if not available(name):
                lines.append(f"== {name}: skipped ({APPS[name].package} is not installed)")
                print(lines[-1], flush=True)
                continue
            run = run_app(APPS[name], work / name, quick=args.quick, seed=args.seed)
            s = score_run(run)
            totals[0] += len(s.attacks)
            totals[1] += s.caught
            totals[2] += len({b["actor"] for b in s.benign_accused})
            block = report(s, run.seconds)
            print("\n".join(block), flush=True)
            lines += block
    lines.append(f"total: attacks caught {totals[1]}/{totals[0]}, benign actors accused {totals[2]}")
    print(lines[-1])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
