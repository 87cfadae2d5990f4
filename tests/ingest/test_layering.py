"""Capture produces calls; it never imports or runs later stages (the
pipeline, the live runner): ``ingest/`` imports only ``ingest/``,
``model/``, ``config`` and ``state/`` helpers of apiward."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

INGEST = Path(__file__).resolve().parents[2] / "src" / "apiward" / "ingest"
LATER = ("apiward.discover", "apiward.learn", "apiward.detect", "apiward.lake", "apiward.alert", "apiward.pipeline",
         "apiward.live", "apiward.hunt", "apiward.serve", "apiward.cli", "apiward.sim")


def test_no_ingest_module_imports_a_later_stage():
    bad = []
    for path in sorted(INGEST.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad += [f"{path.name}: {n}" for n in names if n.startswith(LATER)]
    assert bad == []


def test_importing_capture_loads_no_pipeline():
    code = ("import sys, apiward.ingest.proxy, apiward.ingest.middleware, apiward.ingest.capture; "
            "print(sorted(m for m in sys.modules if m.startswith(('apiward.pipeline', 'apiward.live', 'apiward.detect'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
