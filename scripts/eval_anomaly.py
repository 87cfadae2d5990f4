"""Does the behaviour anomaly detector earn its place?

    python scripts/eval_anomaly.py                       # simulate (demo API in-process), then evaluate
    python scripts/eval_anomaly.py --events run/events.jsonl --labels run/labels.json
    python scripts/eval_anomaly.py --users 300 --duration 86400 --attacks all_slow

Runs the same labelled traffic (the simulator's benign users and attacker
playbooks, :mod:`apiward.sim.simulator`) through a fresh pipeline three
times: every registered detector except ``anomaly.behaviour``; every
detector; ``anomaly.behaviour`` alone. For each it prints, per attack
class, the instances detected and the share of attack events inside some
finding (recall), and overall the false-positive rates (benign actors with
a finding, benign events inside findings), using
:func:`apiward.sim.selftest.evaluate`. The last table says what the anomaly
detector adds: attack events and instances that only it covers, and the
benign actors and events only it flags.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from apiward.config import load_settings
from apiward.detect.registry import build_detectors, detector_ids
from apiward.model.call import ApiCall, loads
from apiward.pipeline import Pipeline
from apiward.sim.labels import load_labels
from apiward.sim.selftest import Scorer, evaluate

ANOMALY = "anomaly.behaviour"


def read_events(path: Path) -> list[ApiCall]:
    calls = []
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                calls.append(loads(line))
    calls.sort(key=lambda c: c.ts)
    return calls


def simulate(out: Path, users: int, duration: float, attacks: str, seed: int) -> tuple[Path, Path]:
    from apiward.sim.demoapp import create_app, set_version
    from apiward.sim.server import ServerThread
    from apiward.sim.simulator import simulate as run_sim

    out.mkdir(parents=True, exist_ok=True)
    app = create_app(str(out / "demo.sqlite"), vulnerable=True, seed_users=500)
    with ServerThread(app) as srv:
        res = run_sim(srv.base_url, seed=seed, users=users, duration=duration, attacks=attacks, out_dir=out,
                      on_deploy=lambda: set_version(app, 3))
    print(f"simulated {res.requests} requests ({res.attack_requests} attack) in {res.elapsed_s:.0f} s", file=sys.stderr)
    assert res.events_path is not None and res.labels_path is not None
    return res.events_path, res.labels_path


def run(calls: list[ApiCall], ids: list[str], state: Path, batch: int = 512) -> tuple[Scorer, dict[str, Any], float]:
    settings = load_settings(state_dir=state, checkpoint_seconds=1e9)
    pipe = Pipeline(state, settings=settings, detectors=build_detectors(ids))
    scorer = Scorer()
    t0 = time.process_time()
    for i in range(0, len(calls), batch):
        part = calls[i : i + batch]
        scorer.observe(part, pipe.process(part, batch_key=f"b{i:09d}", autocheckpoint=False))
    cpu = time.process_time() - t0
    merged = dict(pipe.findings)
    pipe.close()
    return scorer, merged, cpu


def flagged_events(scorer: Scorer, merged: dict[str, Any], detector: str | None = None) -> set[str]:
    out: set[str] = set()
    for f in list(scorer.raw) + list(merged.values()):
        if detector is None or f.detector == detector:
            out.update(e for e in f.event_ids if e in scorer.ts)
    return out


def table(title: str, rep: Any) -> None:
    print(f"\n== {title}: {rep.detected_classes}/{len(rep.classes)} classes, overall recall {rep.overall_recall:.3f}, "
          f"benign actors flagged {rep.fp_actors}/{rep.benign_actors} ({rep.fp_actor_rate:.3%}), "
          f"benign events in findings {rep.fp_events}/{rep.benign_events} ({rep.fp_event_rate:.3%})")
    print(f"   {'class':22s} {'inst':>4s} {'det':>4s} {'events':>6s} {'recall':>7s}  detectors")
    for c in rep.classes:
        print(f"   {c.attack:22s} {c.instances:4d} {c.detected_instances:4d} {c.attack_events:6d} {c.recall:7.3f}  {', '.join(c.detectors)}")
    if rep.fp_detectors:
        print(f"   findings touching benign events: {rep.fp_detectors}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=Path)
    ap.add_argument("--labels", type=Path)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--duration", type=float, default=43200.0)
    ap.add_argument("--attacks", default="all")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="apiward-eval-") as d:
        tmp = Path(d)
        if args.events is None:
            events, labels_path = simulate(tmp / "sim", args.users, args.duration, args.attacks, args.seed)
        else:
            events = args.events
            labels_path = args.labels or events.with_name("labels.json")
        labels = load_labels(labels_path)
        calls = read_events(events)
        print(f"traffic: {len(calls)} events, {sum(len(a.event_ids) for a in labels.attacks)} attack events, "
              f"{len(labels.attacks)} attack instances")
        all_ids = detector_ids()
        without = [i for i in all_ids if i != ANOMALY]
        results = {}
        for name, ids in (("without anomaly", without), ("with anomaly", all_ids), ("anomaly alone", [ANOMALY])):
            sc, merged, cpu = run(calls, ids, tmp / name.replace(" ", "_"))
            rep = evaluate(labels.attacks, sc, merged, source=str(events))
            results[name] = (sc, merged, rep)
            table(f"{name} ({len(calls) / cpu:,.0f} events/s per core end to end)", rep)
        sc_w, m_w, _ = results["without anomaly"]
        sc_a, m_a, rep_a = results["with anomaly"]
        attack_of = labels.attack_of()
        base = flagged_events(sc_w, m_w)
        withm = flagged_events(sc_a, m_a)
        only = withm - base
        only_atk = {e for e in only if e in attack_of}
        only_benign = only - only_atk
        inst_base = {attack_of[e].id for e in base if e in attack_of}
        inst_with = {attack_of[e].id for e in withm if e in attack_of}
        anom_events = flagged_events(sc_a, m_a, ANOMALY)
        anom_atk = {e for e in anom_events if e in attack_of}
        print("\n== what anomaly.behaviour adds")
        print(f"   anomaly findings' events: {len(anom_events)} ({len(anom_atk)} attack, {len(anom_events) - len(anom_atk)} benign;"
              f" precision {len(anom_atk) / len(anom_events) if anom_events else 0:.3f})")
        print(f"   attack events only it covers: {len(only_atk)}; attack instances only it detects: {len(inst_with - inst_base)}"
              f" ({', '.join(sorted({attack_of[e].attack for e in only_atk})) or '-'})")
        print(f"   benign events only it flags: {len(only_benign)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
