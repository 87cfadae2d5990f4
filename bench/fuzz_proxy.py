#!/usr/bin/env python3
"""Fuzz the capture proxy's request parser (``apiward.ingest.http1``) longer
than CI does.

With atheris (libFuzzer, coverage-guided, byte mutations) when it imports,
else hypothesis with a large budget. Seeds: the smuggling corpus of
``tests/ingest/test_proxy_hardening.py`` and a few valid requests. The
target checks the same two properties as ``tests/ingest/test_http1.py``:

1. ``parse_request`` raises nothing but ``HeadError``/``Incomplete``;
2. a request it accepts ends at the same byte for a Transfer-Encoding-first
   and a Content-Length-first lax parser (``apiward.testing.lax_request_end``),
   so no accepted request can hide a second one.

A violation is a finding: atheris stops and writes ``crash-*`` (the input)
under ``--out``; hypothesis prints the shrunk example. The summary gives
executions, accepted/refused counts and findings.

Usage: python bench/fuzz_proxy.py [--runs N] [--seconds S] [--engine atheris|hypothesis] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

VALID = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=v\r\nhello\r\n0\r\nT: 1\r\n\r\n",
]


def seeds() -> list[bytes]:
    spec = importlib.util.spec_from_file_location("corpus", ROOT / "tests/ingest/test_proxy_hardening.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return VALID + [data for _, data in mod.CORPUS]


def check(data: bytes, counts: dict[str, int]) -> None:
    """One execution: the two properties (raises AssertionError on a finding)."""
    from apiward.ingest.http1 import HeadError, Incomplete, parse_request
    from apiward.testing import lax_request_end

    counts["runs"] += 1
    try:
        _, _, consumed = parse_request(data)
    except HeadError as exc:
        counts["refused_smuggling" if exc.smuggling else "refused_other"] += 1
        return
    except Incomplete:
        counts["incomplete"] += 1
        return
    counts["accepted"] += 1
    te, cl = lax_request_end(data, True), lax_request_end(data, False)
    assert te == cl == consumed, f"ambiguous framing accepted: proxy {consumed}, TE-first {te}, CL-first {cl}: {data!r}"


def child(args: argparse.Namespace) -> None:
    """Run under atheris (this process is libFuzzer's)."""
    import atheris

    with atheris.instrument_imports():
        import apiward.ingest.http1  # noqa: F401
        import apiward.testing  # noqa: F401
    counts = dict.fromkeys(("runs", "accepted", "refused_smuggling", "refused_other", "incomplete"), 0)
    report = Path(args.out) / "counts.txt"
    last = [time.monotonic()]

    def target(data: bytes) -> None:
        check(data, counts)
        if time.monotonic() - last[0] > 1.0 or counts["runs"] % 10000 == 0:
            report.write_text(repr(counts))
            last[0] = time.monotonic()

    corpus = Path(args.out) / "corpus"
    atheris.Setup(
        [sys.argv[0], str(corpus), f"-runs={args.runs}", f"-max_total_time={args.seconds}",
         f"-artifact_prefix={args.out}/", "-max_len=4096", "-print_final_stats=1"],
        target,
    )
    try:
        atheris.Fuzz()
    finally:
        report.write_text(repr(counts))


def run_atheris(args: argparse.Namespace) -> int:
    out = Path(args.out or tempfile.mkdtemp(prefix="fuzz-proxy-"))
    (out / "corpus").mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(seeds()):
        (out / "corpus" / f"seed-{i:03d}").write_bytes(data)
    t0 = time.monotonic()
    r0 = os.times()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", "--runs", str(args.runs), "--seconds", str(args.seconds), "--out", str(out)],
        capture_output=True, text=True,
    )
    r1 = os.times()
    log = proc.stdout + proc.stderr
    (out / "libfuzzer.log").write_text(log)
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", log) or re.search(r"Done (\d+) runs", log)
    execs = int(m[1]) if m else 0
    crashes = sorted(p.name for p in out.glob("crash-*"))
    cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
    counts = (out / "counts.txt").read_text() if (out / "counts.txt").exists() else "{}"
    cpu = (r1.children_user + r1.children_system) - (r0.children_user + r0.children_system)
    print(f"engine: atheris (libFuzzer), output in {out}")
    print(f"executions: {execs} in {time.monotonic() - t0:.1f} s wall, {cpu:.1f} CPU-s ({execs / max(cpu, 1e-9):,.0f} exec per CPU-s)")
    if cov:
        print(f"coverage: {cov[-1][0]} edges, {cov[-1][1]} features; corpus {len(list((out / 'corpus').iterdir()))} inputs")
    print(f"outcomes: {counts}")
    print(f"findings: {len(crashes)}" + (f" -> {', '.join(crashes)}" if crashes else ""))
    if crashes:
        tail = [line for line in log.splitlines() if "Error" in line or "assert" in line.lower()]
        print("\n".join(tail[-5:]))
    return 1 if crashes else 0


def run_hypothesis(args: argparse.Namespace) -> int:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    sys.path.insert(0, str(ROOT / "tests" / "ingest"))
    import test_http1 as props  # the CI strategies, with a bigger budget

    counts = dict.fromkeys(("runs", "accepted", "refused_smuggling", "refused_other", "incomplete"), 0)
    budget = settings(max_examples=args.runs, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    seeds_ = seeds()
    findings = 0
    for name, strategy in (
        ("grammar", props.requests()),
        ("mutated seeds", st.tuples(st.sampled_from(seeds_), st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), min_size=1, max_size=4)).map(lambda t: props._mutate(*t))),
        ("random bytes", st.binary(max_size=512)),
    ):
        @budget
        @given(strategy)
        def prop(data: bytes) -> None:
            check(data, counts)

        try:
            prop()
        except AssertionError as exc:
            findings += 1
            print(f"finding ({name}): {exc}")
    print(f"engine: hypothesis; executions: {counts['runs']}; outcomes: {counts}; findings: {findings}")
    return 1 if findings else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2_000_000)
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--engine", choices=("atheris", "hypothesis"), default=None)
    ap.add_argument("--out", default="")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    engine = args.engine or ("atheris" if importlib.util.find_spec("atheris") else "hypothesis")
    return run_atheris(args) if engine == "atheris" else run_hypothesis(args)


if __name__ == "__main__":
    sys.exit(main())
