"""Benchmark: read + normalise + lake write (issue 2 target: >= 50,000 events/s per core).

    python bench/core.py [--events 100000]

Makes a 100k-event HAR (mixed methods, JSON bodies 0.5-5 KB), then runs it
through apiward with no detectors, in two configurations:
  core:      read, actor resolution, templating, redaction, lake write
  +discover: the same plus sensitive-data classification and the inventory
and once more without Pipeline, as the issue defines the path:
  ingest:    read + normalise (actor resolution) + lake write (redaction,
             Arrow table, Parquet): the reader, ``ActorResolver``,
             ``calls_table`` and ``Lake.write_partitioned`` driven directly
             (no templating: the template column gets the raw path)
Prints events per CPU-second (per core) for each.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from corpus import make_har  # noqa: E402

from apiward.config import load_settings  # noqa: E402
from apiward.ingest.actor import ActorResolver  # noqa: E402
from apiward.ingest.base import Bad, ReadOptions  # noqa: E402
from apiward.ingest.registry import read_file  # noqa: E402
from apiward.lake.calls import calls_table  # noqa: E402
from apiward.lake.redact import Redactor  # noqa: E402
from apiward.lake.store import Lake  # noqa: E402
from apiward.model.context import Context, EndpointRef  # noqa: E402
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


def run_ingest(har: Path, state: Path, batch_size: int = 5000) -> tuple[int, float, float]:
    """Read + normalise + lake write, the stages driven directly with the
    pipeline's batch size and GC settings and the default settings' caps."""
    settings = load_settings(batch_size=batch_size)
    secret = os.urandom(32)
    resolver = ActorResolver(secret=secret)
    redactor = Redactor(secret)
    lake = Lake(state / "lake")
    threshold = gc.get_threshold()
    gc.freeze()
    from apiward.pipeline import GC_THRESHOLDS
    gc.set_threshold(*GC_THRESHOLDS)  # as Pipeline.run_files sets them
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        _, records = read_file(str(har), None, ReadOptions(body_cap=settings.body_cap, source_name=har.name))
        for seq in itertools.count():
            batch = [item for _, item in itertools.islice(records, batch_size) if not isinstance(item, Bad)]
            if not batch:
                break
            calls = resolver.resolve_many(batch)
            ctxs = [
                Context(endpoint=EndpointRef(host=c.request.host, method=c.request.method, template=c.request.path))
                for c in calls
            ]
            table = calls_table(calls, ctxs, redactor, settings.lake_body_cap)
            lake.write_partitioned("calls", table, f"bench-{seq:06d}")
            n += len(calls)
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
    return n, time.process_time() - c0, time.perf_counter() - t0


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
        n, cpu, wall = run_ingest(har, Path(d) / "state-ingest")
        name = "ingest"
        print(f"{name:10s} {n:,} events  cpu {cpu:.2f}s  wall {wall:.2f}s  -> {n / cpu:,.0f} events/s per core"
              "  (read + normalise + lake write)")


if __name__ == "__main__":
    main()
