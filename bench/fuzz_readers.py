"""Longer fuzzing of every reader: executions and findings.

Two engines, both holding each read to ``tests/ingest/fuzz_support.py``'s
invariants (no exception out of the read loop, records numbered 0, 1, 2,
..., every event storable):

- ``mutate`` (default): structured mutations of the real samples (the
  property tests' operations, drawn from a seeded RNG), with normal and
  tight limits, plain and cut-gzip input;
- ``atheris``: coverage-guided libFuzzer byte mutation seeded with the same
  samples, one subprocess per reader (``pip install atheris``).

    python bench/fuzz_readers.py [--seconds 20] [--engine mutate|atheris|both] [--only har]

Findings are printed (first few per reader) and their inputs written to
``--out`` (default a temp dir).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # tests.ingest.fuzz_support

from tests.ingest.fuzz_support import KINDS, TIGHT, TOKENS, fuzz_formats, mutate, problems, seed  # noqa: E402


def run_mutate(fmt: str, seconds: float, out: str, rng_seed: int) -> tuple[int, list[str]]:
    """Executions and distinct findings of the structured mutator."""
    rng = random.Random(rng_seed)
    base = seed(fmt) or seed("jsonl")
    found: dict[str, str] = {}
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ops = [(rng.choice(KINDS), rng.random(), rng.random(), rng.randrange(len(TOKENS))) for _ in range(rng.randint(1, 8))]
        data = mutate(base, ops)
        if rng.random() < 0.1:
            data = rng.randbytes(rng.randint(0, 2000))
        tight, compressed = rng.random() < 0.3, rng.random() < 0.15
        for p in problems(fmt, data, TIGHT if tight else None, compressed):
            key = re.sub(r"\d+", "N", p)[:120]  # one finding per kind, not per input
            if key not in found:
                found[key] = p
                path = os.path.join(out, f"{fmt}-mutate-{len(found)}.bin")
                with open(path, "wb") as f:
                    f.write(data)
                found[key] = f"{p}  [input: {path}, tight={tight}, gz={compressed}]"
        n += 1
    return n, list(found.values())


def _atheris_child(fmt: str) -> None:
    """libFuzzer entry (runs in its own process: a finding ends it)."""
    import atheris

    with atheris.instrument_imports():
        from tests.ingest import fuzz_support  # noqa: F401
        import apiward.ingest.jsonl  # noqa: F401

    def one(data: bytes) -> None:
        found = problems(fmt, data) + problems(fmt, data, TIGHT)
        if found:
            raise AssertionError("; ".join(found))

    atheris.Setup([sys.argv[0], *sys.argv[3:]], one)
    atheris.Fuzz()


def run_atheris(fmt: str, seconds: float, out: str) -> tuple[int, list[str]]:
    corpus = os.path.join(out, f"corpus-{fmt}")
    os.makedirs(corpus, exist_ok=True)
    with open(os.path.join(corpus, "seed"), "wb") as f:
        f.write(seed(fmt) or seed("jsonl"))
    args = [
        sys.executable, os.path.abspath(__file__), "--atheris-child", fmt,
        f"-max_total_time={int(seconds)}", "-print_final_stats=1", "-max_len=8192", "-rss_limit_mb=2048",
        f"-artifact_prefix={out}/{fmt}-atheris-", corpus,
    ]
    r = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120, env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")})
    log = r.stdout + r.stderr
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    runs = int(m.group(1)) if m else 0
    findings = []
    if "Uncaught Python exception" in log or "==ERROR" in log or r.returncode not in (0,):
        tail = [ln for ln in log.splitlines() if "Error" in ln or "error" in ln or "artifact" in ln]
        findings.append(" | ".join(tail[-4:])[:600] or f"exit {r.returncode}")
    return runs, findings


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--atheris-child":
        _atheris_child(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20, help="per reader and engine")
    ap.add_argument("--engine", choices=["mutate", "atheris", "both"], default="both")
    ap.add_argument("--only", action="append")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="apiward-fuzz-")
    os.makedirs(out, exist_ok=True)
    engines = ["mutate", "atheris"] if args.engine == "both" else [args.engine]
    if "atheris" in engines:
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris is not installed: mutate engine only")
            engines = [e for e in engines if e != "atheris"]
    total_runs = total_found = 0
    for fmt in args.only or fuzz_formats():
        for engine in engines:
            t0 = time.perf_counter()
            runs, found = run_mutate(fmt, args.seconds, out, args.seed) if engine == "mutate" else run_atheris(fmt, args.seconds, out)
            total_runs += runs
            total_found += len(found)
            print(f"{fmt:11s} {engine:8s} {runs:8,d} executions in {time.perf_counter() - t0:5.1f} s, {len(found)} finding(s)")
            for f in found[:5]:
                print(f"    {f}")
            sys.stdout.flush()
    print(f"total: {total_runs:,} executions, {total_found} finding(s); inputs in {out}")


if __name__ == "__main__":
    main()
