"""Shared harness for evaluations that measure apiward as a user runs it.

Every figure comes from the CLI in a subprocess with default settings:
``apiward analyze --mode learn`` on the learning files, ``apiward analyze
--mode detect`` on the test files, then ``apiward findings --kind attack
--format json --all-events``. An event counts as flagged when an attack
finding rests on it; file input has ids ``<file name>#<record index>``, so
labels are joined by file name and index and never reach the product.

Used by ``scripts/eval_csic.py``, ``scripts/eval_atrdf.py`` and
``scripts/eval_httpparams.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

__all__ = ["DEFAULT_DATA", "Cli", "Flags", "f1", "tenths", "print_table"]


def f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@dataclass
class Flags:
    """What the product said about each event of the test files."""

    by_event: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # event id -> attack findings
    findings: list[dict[str, Any]] = field(default_factory=list)
    exposures: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def flagged(self, event_id: str) -> bool:
        return event_id in self.by_event

    def techniques(self, event_id: str) -> list[str]:
        out = []
        for f in self.by_event.get(event_id, []):
            ev = f.get("evidence") or {}
            out.append(f"{f['detector']}:{ev.get('technique', '')}" if ev.get("technique") else f["detector"])
        return out


class Cli:
    """Runs ``apiward`` in a subprocess against one fresh state directory."""

    def __init__(self, state: Path, *, keep: bool = False, workers: int = 1) -> None:
        self.state = Path(state)
        self.workers = workers  # analyze --workers (1: one pipeline)
        if self.state.exists() and not keep:
            shutil.rmtree(self.state)
        self.env = dict(os.environ)

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        cmd = [sys.executable, "-m", "apiward", *args]
        p = subprocess.run(cmd, capture_output=True, env=self.env)
        if p.returncode != 0:
            raise SystemExit(f"apiward {' '.join(args)} failed ({p.returncode}):\n{p.stderr.decode(errors='replace')[-3000:]}")
        return p

    def analyze(self, files: Iterable[Path], mode: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        extra = ("--workers", str(self.workers)) if self.workers > 1 else ()
        p = self.run("analyze", *map(str, files), "--state", str(self.state), "--mode", mode, "--json", "-q", *extra)
        summary = orjson.loads(p.stdout)
        summary["wall_seconds"] = time.perf_counter() - t0
        if summary.get("stage_errors"):
            print(f"  warning: stage errors in {mode} run: {summary['stage_errors']}", file=sys.stderr)
        return summary

    def flags(self) -> Flags:
        out = Flags()
        attacks = orjson.loads(self.run("findings", "--state", str(self.state), "--kind", "attack", "--format", "json", "--all-events").stdout)
        exposures = orjson.loads(self.run("findings", "--state", str(self.state), "--kind", "exposure", "--format", "json").stdout)
        out.findings, out.exposures = attacks, exposures
        by: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for f in attacks:
            for e in f.get("event_ids") or []:
                by[e].append(f)
        out.by_event = dict(by)
        return out

    def learn_then_detect(self, learn: list[Path], test: list[Path], test_mode: str = "detect") -> Flags:
        """``--mode learn`` on ``learn``, then ``test_mode`` (``detect``:
        frozen; ``both``: score then learn, as live traffic runs) on ``test``."""
        s1 = self.analyze(learn, "learn")
        s2 = self.analyze(test, test_mode)
        fl = self.flags()
        fl.summaries = {"learn": s1, "detect": s2}
        fl.seconds = {"learn": s1["wall_seconds"], "detect": s2["wall_seconds"]}
        return fl


def tenths(flags: list[bool]) -> list[float]:
    """Detection rate in each tenth of a stream (in stream order)."""
    n = len(flags)
    out = []
    for t in range(10):
        lo, hi = t * n // 10, (t + 1) * n // 10
        out.append(sum(flags[lo:hi]) / max(hi - lo, 1))
    return out


def print_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths))))


def technique_counts(flags: Flags, events: Iterable[str]) -> Counter[str]:
    c: Counter[str] = Counter()
    for e in events:
        for t in set(flags.techniques(e)):
            c[t] += 1
    return c
