"""Checkpoint cost against state size (issue 9: incremental, keyed state).

    python bench/state.py [--sizes 5000,50000] [--batch 2000]

For each size S: a fresh pipeline (every detector on) learns traffic from S
distinct actors over S/10 endpoints, then checkpoints (a first, full
write). Then a small batch of ``--batch`` calls touching a handful of keys
is processed and checkpointed, five times. A checkpoint should cost what
the batch touched, not what the state holds: the table prints, per size,
the records in the store, the full checkpoint, and the median incremental
checkpoint (time and records written). Also the cold start (opening the
state directory again) per size.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from apiward.pipeline import GC_THRESHOLDS, Pipeline  # noqa: E402
from apiward.testing import make_call  # noqa: E402

T0 = 1_764_000_000.0


def calls_for(n: int, actors: int, endpoints: int, start: int = 0, t0: float = T0) -> list:
    out = []
    for i in range(start, start + n):
        a = i % actors
        e = (i * 7) % endpoints
        out.append(make_call("GET", f"/svc{e % 50}/items{e}/{1000 + i % 97}?page={i % 5}", user=f"user{a}",
                             ip=f"10.{a // 65536 % 256}.{a // 256 % 256}.{a % 256}", json={"id": 1000 + i % 97, "name": "x"},
                             ts=t0 + i * 0.05, id=f"b#{i}"))
    return out


def run(size: int, batch: int) -> dict:
    gc.set_threshold(*GC_THRESHOLDS)  # as Pipeline.run_files sets them (default thresholds: GC passes land in the timings)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "s"
        pipe = Pipeline(state)
        pipe.settings.checkpoint_seconds = 1e9
        n = max(size * 2, 20_000)
        for k in range(0, n, 5000):
            pipe.process(calls_for(min(5000, n - k), size, max(size // 10, 10), start=k), batch_key=f"learn{k}", autocheckpoint=False)
        t = time.perf_counter()
        full = pipe.checkpoint()
        t_full = time.perf_counter() - t
        records = sum(pipe.store.size().values())
        inc_t, inc_rows = [], []
        for r in range(5):
            pipe.process(calls_for(batch, 20, 5, start=10_000_000 + r * batch, t0=T0 + n), batch_key=f"inc{r}", autocheckpoint=False)
            t = time.perf_counter()
            c = pipe.checkpoint()
            inc_t.append(time.perf_counter() - t)
            inc_rows.append(c["entries_written"] + c["roots_written"])
        pipe.store.close()
        t = time.perf_counter()
        again = Pipeline(state)
        t_open = time.perf_counter() - t
        again.store.close()
        db_mb = (state / "state.db").stat().st_size / 1e6
        return {"size": size, "events": n, "records": records, "db_mb": db_mb, "full_s": t_full, "full_rows": full["entries_written"],
                "inc_s": statistics.median(inc_t), "inc_rows": statistics.median(inc_rows), "open_s": t_open}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="5000,50000")
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args()
    rows = [run(int(s), args.batch) for s in args.sizes.split(",")]
    print(f"{'actors':>8} {'events':>8} {'records':>9} {'db MB':>7} {'full ckpt s':>12} {'incr ckpt s':>12} {'incr records':>13} {'reopen s':>9}")
    for r in rows:
        print(f"{r['size']:>8} {r['events']:>8} {r['records']:>9} {r['db_mb']:>7.1f} {r['full_s']:>12.2f} {r['inc_s']:>12.3f} "
              f"{r['inc_rows']:>13.0f} {r['open_s']:>9.2f}")
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        print(f"state grew {b['records'] / max(a['records'], 1):.1f}x; incremental checkpoint time x{b['inc_s'] / max(a['inc_s'], 1e-9):.2f}, "
              f"full checkpoint x{b['full_s'] / max(a['full_s'], 1e-9):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
