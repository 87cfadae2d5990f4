"""Benchmark: ``apiward analyze --workers N`` against one worker, on the same input.

Data: the first ``--events`` calls of the large-estate traffic
(:mod:`bench.estate`'s generator: specs from ``shared/data`` served on many
hosts, Zipf callers; cached in ``bench/out/estate/``). Partitions are by API
host, so traffic to many hosts spreads over the workers; one host's traffic
would stay in one worker.

Each run is ``python -m apiward analyze FILE --state DIR --json --quiet
[--workers N]`` in a subprocess, as a user runs it, into a fresh state.
Printed per run: wall time, events per wall second, CPU seconds of the
whole process tree (parent and workers, from ``RUSAGE_CHILDREN``) and, with
workers, each worker's events and CPU seconds; then the speed-up (wall time
of one worker over wall time of N).

Agreement: findings by detector from the lake of each run. Endpoint state is
whole in one partition, but actor state is per (host partition, actor) with
workers, so actor-level detectors (volume, norms, trust) may differ a
little, and so may the inventory where actor verdicts decide (refused paths
of actors attack findings named are probes, not endpoints): the run fails
(exit 1) when a detector's count differs by more than ``--tolerance``
(default 10%) of the larger count plus 2, or the endpoints by more than 1%.

Speed-up: wall time of one worker over wall time of N, as measured on the
machine as it is loaded; and by CPU, one worker's CPU seconds over the
busiest worker's (what the wall speed-up is on N idle cores: the workers
share nothing but the disk).

Design check: the cost of each worker parsing the whole input itself (what
``--workers`` does) against parsing once and shipping calls to workers as
msgspec batches (encode + decode of every call), both in this process.

The machine's other load depresses the speed-up: the load average before
each run is printed beside it.

    python bench/workers.py [--events 30000] [--workers 2] [--tolerance 0.10]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))
OUT = ROOT / "bench" / "out" / "workers"


def traffic(events: int, replicas: int, users: int, seed: int) -> Path:
    """The first ``events`` lines of the estate's traffic (cached)."""
    import estate

    full, _info = estate.write_traffic(replicas, users, seed)
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"traffic-{events}-r{replicas}-u{users}-s{seed}.jsonl"
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        with open(full, "rb") as src, open(tmp, "wb") as dst:
            for n, line in enumerate(src):
                if n >= events:
                    break
                dst.write(line)
        os.replace(tmp, out)
    return out


def analyze(path: Path, state: Path, workers: int) -> dict[str, Any]:
    import estate

    args = [str(path), "--state", str(state)] + (["--workers", str(workers)] if workers > 1 else [])
    load = os.getloadavg()[0]
    summary, wall, cpu, _peak = estate.timed_analyze(args)
    return {"workers": workers, "wall_s": wall, "events": summary["events"], "ev_per_s": summary["events"] / wall,
            "tree_cpu_s": cpu, "endpoints": summary["endpoints"], "findings": summary["findings"],
            "stage_errors": summary["stage_errors"], "per_worker": summary.get("workers", []), "load_before": load}


def by_detector(state: Path) -> dict[str, int]:
    import duckdb

    files = str(state / "lake" / "findings" / "*" / "*.parquet")
    con = duckdb.connect()
    try:
        return dict(con.execute(f"SELECT detector, count(*) FROM read_parquet('{files}') GROUP BY 1 ORDER BY 1").fetchall())
    except duckdb.IOException:
        return {}


def design_check(path: Path) -> dict[str, float]:
    """Seconds to parse the input, and to msgspec-encode and decode its calls."""
    import msgspec

    from apiward.ingest.base import ReadOptions
    from apiward.ingest.registry import read_file
    from apiward.model.call import ApiCall

    t = time.process_time()
    _fmt, records = read_file(str(path), None, ReadOptions(source_name=path.name))
    calls = [c for _i, c in records if isinstance(c, ApiCall)]
    parse = time.process_time() - t
    enc, dec = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(list[ApiCall])
    t = time.process_time()
    for i in range(0, len(calls), 2000):
        dec.decode(enc.encode(calls[i:i + 2000]))
    ship = time.process_time() - t
    return {"calls": len(calls), "parse_cpu_s": parse, "ship_cpu_s": ship}


def agree(one: dict[str, int], many: dict[str, int], tolerance: float) -> list[str]:
    bad = []
    for det in sorted(set(one) | set(many)):
        a, b = one.get(det, 0), many.get(det, 0)
        if abs(a - b) > tolerance * max(a, b) + 2:
            bad.append(f"{det}: {a} vs {b}")
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tolerance", type=float, default=0.10, help="share of a detector's findings count the runs may differ by (plus 2)")
    args = ap.parse_args()
    import estate

    if not estate.DATA.exists():
        print(f"skipped: {estate.DATA} not found (development data lives beside the checkout)")
        return
    path = traffic(args.events, args.replicas, args.users, args.seed)
    print(f"input: {path} ({args.events:,} events of the estate), {os.cpu_count()} CPUs")
    dc = design_check(path)
    print(f"design check: parsing {dc['calls']:,} calls {dc['parse_cpu_s']:.2f} CPU-s (each worker pays it); "
          f"msgspec encode+decode of them {dc['ship_cpu_s']:.2f} CPU-s (what shipping calls from one reader would add)")
    runs = []
    with tempfile.TemporaryDirectory(prefix="workers-") as tmp:
        for w in (1, args.workers):
            r = analyze(path, Path(tmp) / f"state-{w}", w)
            r["by_detector"] = by_detector(Path(tmp) / f"state-{w}")
            runs.append(r)
            print(f"--workers {w}: {r['events']:,} events, wall {r['wall_s']:.1f} s -> {r['ev_per_s']:,.0f} ev/s; "
                  f"process tree {r['tree_cpu_s']:.1f} CPU-s; {r['endpoints']:,} endpoints, {r['findings']:,} findings; "
                  f"load average before {r['load_before']:.1f}")
            for pw in r["per_worker"]:
                print(f"    worker {pw['partition']}: {pw['events']:,} events, {pw['process_cpu_seconds']:.1f} CPU-s "
                      f"({pw['events'] / max(pw['process_cpu_seconds'], 1e-9):,.0f} ev/CPU-s), wall {pw['seconds']:.1f} s")
    one, many = runs
    speedup = one["wall_s"] / many["wall_s"]
    busiest = max(pw["process_cpu_seconds"] for pw in many["per_worker"])
    cpu_speedup = one["tree_cpu_s"] / busiest
    share = max(pw["events"] for pw in many["per_worker"]) / max(many["events"], 1)
    print(f"speed-up, {args.workers} workers over 1: {speedup:.2f}x wall on this machine as loaded; "
          f"{cpu_speedup:.2f}x by CPU (one worker's CPU-s over the busiest worker's: the wall speed-up on {args.workers} idle cores); "
          f"busiest worker's share of the events {share:.0%}")
    print(f"{'detector':40s} {'1 worker':>9s} {f'{args.workers} workers':>10s}")
    for det in sorted(set(one["by_detector"]) | set(many["by_detector"])):
        print(f"  {det:38s} {one['by_detector'].get(det, 0):9d} {many['by_detector'].get(det, 0):10d}")
    bad = agree(one["by_detector"], many["by_detector"], args.tolerance)
    # endpoint records are whole per host, but which refused paths count as probes follows actor verdicts (per partition)
    if abs(one["endpoints"] - many["endpoints"]) > 0.01 * one["endpoints"]:
        bad.append(f"endpoints: {one['endpoints']} vs {many['endpoints']} (over 1%)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "figures.json").write_text(json.dumps({"runs": runs, "speedup": speedup, "cpu_speedup": cpu_speedup, "busiest_share": share,
                                                  "design_check": dc, "disagreements": bad}, indent=1))
    if bad:
        print(f"DISAGREE beyond tolerance {args.tolerance:.0%} + 2: " + "; ".join(bad))
        raise SystemExit(1)
    print(f"findings agree within {args.tolerance:.0%} + 2 per detector; endpoints within 1% "
          f"({one['endpoints']:,} vs {many['endpoints']:,})")


if __name__ == "__main__":
    main()
