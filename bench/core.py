"""Benchmark: read + normalise + lake write (issue 2 target: >= 50,000 events/s per core).

    python bench/core.py [--events 100000]

Makes a 100k-event HAR (mixed methods, JSON bodies 0.5-5 KB), then runs it
through apiward with no detectors, in two configurations:
  core:      read, actor resolution, templating, redaction, lake write
  +discover: the same plus sensitive-data classification and the inventory
Prints events per CPU-second (per core) for each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from corpus import make_har  # noqa: E402

from apiward.config import load_settings  # noqa: E402
from apiward.pipeline import Pipeline  # noqa: E402


def run(har: Path, state: Path, classify: bool) -> tuple[int, float, float]:
    pipe = Pipeline(state, settings=load_settings(batch_size=5000, checkpoint_seconds=1e9), detectors=[])
    pipe.baselines = None  # learn-stage cost is measured by bench/pipeline.py
    if not classify:
        pipe.classifier = None
    t0, c0 = time.perf_counter(), time.process_time()
    s = pipe.run_files([str(har)])
    pipe.close()
    return s.events, time.process_time() - c0, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        har = make_har(Path(d) / "corpus.har", args.events)
        size = har.stat().st_size / 1e6
        print(f"corpus: {args.events:,} events, {size:.0f} MB HAR")
        for name, classify in (("core", False), ("+discover", True)):
            n, cpu, wall = run(har, Path(d) / f"state-{name}", classify)
            print(f"{name:10s} {n:,} events  cpu {cpu:.2f}s  wall {wall:.2f}s  -> {n / cpu:,.0f} events/s per core")


if __name__ == "__main__":
    main()
