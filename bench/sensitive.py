"""Cost of the sensitive-data classifier per API call on DemoBank simulator
traffic (the classifier runs once per call in the pipeline).

    python bench/pipeline.py --events 2000 --users 200 --hours 12   # once: records the events
    python bench/sensitive.py [--events PATH] [--replays 3] [--profile]

Each pass classifies fresh copies of every recorded call (new ``Request`` /
``Response`` structs, so the lazily parsed JSON bodies are not carried over).
Two figures per pass, both CPU time of this process (``time.process_time``):

* **including JSON parse**: ``classify_call`` on copies whose bodies have not
  been parsed yet, so the ``orjson`` parse is charged to the classifier;
* **parse excluded**: the copies' bodies are parsed before the clock starts,
  as in the pipeline, where the parse is shared with the other stages.

A throwaway classifier first runs over 300 calls so that one-time process
costs (lazy imports, phone metadata) are not charged per call. Then, per
mode, pass 1 uses a fresh :class:`Classifier` (cold memos); later passes replay the
same calls into the same classifier (warm memos, the steady state on traffic
that repeats values and bodies); the last line averages all passes. Pass 1 is
the conservative figure: its cost is mostly first-seen personal data (a few
bulk user exports by the attack playbooks carry ~800 new values each).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from apiward.discover.sensitive import Classifier  # noqa: E402
from apiward.ingest.registry import read_file  # noqa: E402
from apiward.model.call import ApiCall  # noqa: E402

DEFAULT = ROOT / "bench" / "out" / "sim-u200-h12-s7" / "events.jsonl"


def fresh(calls: list[ApiCall], tag: str) -> list[ApiCall]:
    """Copies with new message structs and new body bytes: no cached parse
    (nor cached ``hash()`` of a body) carries over, as with decoded events."""
    out = []
    for c in calls:
        req = msgspec.structs.replace(c.request, body=bytes(memoryview(c.request.body)))
        resp = c.response
        if resp is not None:
            resp = msgspec.structs.replace(resp, body=bytes(memoryview(resp.body)))
        out.append(msgspec.structs.replace(c, id=f"{c.id}~{tag}", request=req, response=resp))
    return out


def parse_all(calls: list[ApiCall]) -> None:
    for c in calls:
        c.request.json()
        if c.response is not None:
            c.response.json()


def timed(clf: Classifier, calls: list[ApiCall]) -> tuple[float, int]:
    gc.collect()
    t0 = time.process_time()
    n = 0
    for c in calls:
        n += len(clf.classify_call(c))
    return time.process_time() - t0, n


def line(label: str, dt: float, n: int, hits: int) -> None:
    print(f"  {label:34} {dt / n * 1e6:8.2f} µs/call {n / dt:12,.0f} calls/s per core   ({hits} hits)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=Path, default=DEFAULT)
    ap.add_argument("--replays", type=int, default=3, help="passes after the first (warm classifier)")
    ap.add_argument("--profile", action="store_true", help="cProfile one parse-excluded pass instead")
    ap.add_argument("--no-warmup", action="store_true", help="skip the throwaway classifier run before timing")
    args = ap.parse_args(argv)
    if not args.events.exists():
        print(f"{args.events} is missing: run `python bench/pipeline.py --events 2000 --users 200 --hours 12` first")
        return 1
    base = [c for _, c in read_file(str(args.events), "jsonl")[1]]
    print(f"{len(base)} calls from {args.events}")

    if args.profile:
        import cProfile
        import pstats

        calls = fresh(base, "p")
        parse_all(calls)
        clf = Classifier()
        pr = cProfile.Profile()
        pr.enable()
        for c in calls:
            clf.classify_call(c)
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(25)
        return 0

    if not args.no_warmup:
        # one-time process costs (lazy imports, phone metadata, regex caches) are not per call
        warm = Classifier()
        for c in fresh(base[:300], "warmup"):
            warm.classify_call(c)

    for mode in ("including JSON parse", "parse excluded"):
        print(f"\n{mode}")
        clf = Classifier()
        total = 0.0
        for i in range(1 + args.replays):
            calls = fresh(base, f"{mode[0]}{i}")
            if mode == "parse excluded":
                parse_all(calls)
            dt, hits = timed(clf, calls)
            total += dt
            line(f"pass {i + 1} ({'cold' if i == 0 else 'warm'} classifier)", dt, len(calls), hits)
        line(f"all {1 + args.replays} passes", total, len(base) * (1 + args.replays), hits)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
