"""Benchmark: endpoint templating recovered from traffic of real specs,
measured through the product as a user runs it.

Data: ``shared/data/openapi-specs/specs-dev.tar.gz`` beside the checkout
(147 APIs.guru specs, development split; skipped cleanly when absent).

For each generator, traffic for every spec is written to one JSONL file
(apiward's own event format, one host per spec) with a ground-truth JSON:

- ``specgen``: :mod:`apiward.sim.specgen` (paths from the spec's parameter
  metadata, response body skeletons from its 2xx schemas; the calls it marks
  as errors are written as 404s without a body);
- ``alt``: ``python -m apiward.sim.specgen_alt SPEC_TAR OUTDIR --combined
  --format jsonl``, an independent generator written by another engineer;
  this benchmark only runs it and reads its output and ground truth.

Then, exactly as a user would and with default settings::

    apiward analyze traffic.jsonl --state <fresh dir>
    apiward inventory --state <dir> --format json

and the recovered (host, method, template structure) set is scored against
the specs. ``--mode inprocess`` runs the same discover stage in this process
(reader -> ``Inventory.resolve``/``observe`` -> ``drain_changes(flush=True)``
-> ``rows()``), fast for debugging; ``--mode both`` runs the two and fails
loudly when their figures differ.

Scoring (strict): an endpoint is (host, METHOD, structure) where the
structure keeps literal segments and parameter positions and drops parameter
names (``/users/{}/orders/{}``; ``{}.json`` and ``{}:cancel`` keep their
literal part, and ``.{}`` counts as ``{}``). Ground truth = the spec's
operations that received traffic (query strings and fragments stripped from
spec paths). Precision = recovered endpoints that are spec endpoints /
recovered; recall = spec endpoints recovered / spec endpoints; F1; micro
(pooled counts) and macro (mean per spec). "excl. <=3" drops spec endpoints
with a path parameter of at most 3 possible values (enum of <= 3, boolean)
from the truth, and recovered endpoints whose calls all came from such
endpoints (calls are attributed to recovered templates by matching their
paths, most literal template first).

Cost: the templating cost per call is the CPU time of the templater's
``observe`` + ``resolve`` over the ``specgen`` calls (response shapes
computed beforehand), as in earlier versions of this benchmark.

Usage: python bench/templating.py [--generator specgen|alt|both] [--mode cli|inprocess|both]
       [--limit N] [--spec SUBSTR] [--show-errors] [--work DIR] [--tar PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [ROOT / ".." / "shared" / "data" / "openapi-specs" / "specs-dev.tar.gz",
               ROOT / ".." / ".." / "shared" / "data" / "openapi-specs" / "specs-dev.tar.gz"]
DATA = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0])

_RE_PARAM = re.compile(r"\{[^}]*\}")
T0 = 1767225600.0  # 2026-01-01T00:00:00Z: calls are 0.25 s apart from here


def structure(path: str) -> str:
    # ".{}" == "{}": whether a format parameter's dot is inside the value
    # (``Calls{mediaTypeExtension}``) or not (``{id}.{format}``) is notation
    return "/" + "/".join(_RE_PARAM.sub("{}", s).replace(".{}", "{}") for s in path.split("/") if s)


def template_regex(t: str) -> re.Pattern[str]:
    parts, pos = [], 0
    for m in _RE_PARAM.finditer(t):
        parts.append(re.escape(t[pos:m.start()]))
        parts.append("[^/]+")
        pos = m.end()
    parts.append(re.escape(t[pos:]))
    return re.compile("".join(parts) + "/?")


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def host_of(name: str) -> str:
    """A host name per spec file: ``specs/xkcd.com/1.0.0.json`` -> ``xkcd.com-1.0.0.spec``."""
    base = name.removeprefix("specs/").removesuffix(".json")
    return re.sub(r"[^A-Za-z0-9.-]+", "-", base).strip("-").lower() + ".spec"


# --------------------------------------------------------------------------- traffic


def write_specgen(tar: str, outdir: Path, only: set[str] | None) -> tuple[Path, Path]:
    """Traffic of :mod:`apiward.sim.specgen` for every spec as one JSONL file
    (one host per spec) and the ground truth."""
    from apiward.ingest.base import make_request, make_response
    from apiward.model.call import ApiCall, dumps
    from apiward.sim.specgen import generate, iter_specs

    outdir.mkdir(parents=True, exist_ok=True)
    traffic, truth_path = outdir / "traffic.jsonl", outdir / "truth.json"
    truth: dict[str, Any] = {}
    ts = T0
    n = 0
    with open(traffic, "wb") as f:
        for name, spec in iter_specs(tar):
            if only is not None and name not in only:
                continue
            tr = generate(spec, seed=zlib.crc32(name.encode()))
            if not tr.calls:
                continue
            host = host_of(name)
            truth[host] = {"spec": name, "endpoints": [
                {"method": e.method, "path": e.path, "few_valued": e.few_valued} for e in tr.endpoints]}
            for (method, path, idx), body in zip(tr.calls, tr.bodies):
                ep = tr.endpoints[idx]
                if body is not None:
                    resp = make_response(status=200, headers=[("Content-Type", "application/json")], body=orjson.dumps(body))
                elif ep.response is not None:
                    resp = make_response(status=404)  # an error draw
                else:
                    resp = make_response(status=200)
                ts += 0.25
                call = ApiCall(id=f"sg{n}", ts=ts, request=make_request(method=method, host=host, path=path),
                               response=resp)
                call.src.ip = f"10.1.{n % 7}.{n % 11 + 1}"
                f.write(dumps(call) + b"\n")
                n += 1
    truth_path.write_bytes(orjson.dumps(truth))
    return traffic, truth_path


def write_alt(tar: str, outdir: Path) -> tuple[Path, Path]:
    """Run the independent generator (its CLI only) and find its output."""
    outdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "apiward.sim.specgen_alt", tar, str(outdir), "--combined", "--format", "jsonl"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    if proc.returncode != 0:
        raise SystemExit(f"specgen_alt failed ({proc.returncode}): {proc.stderr[-2000:]}")
    truths = sorted(outdir.rglob("*.truth.json"))
    if not truths:
        raise SystemExit(f"specgen_alt wrote no ground truth under {outdir}: {sorted(outdir.rglob('*'))[:20]}")
    meta = orjson.loads(truths[0].read_bytes())
    traffic = truths[0].parent / meta.get("traffic_file", "traffic.jsonl")
    return traffic, truths[0]


def _few_valued_of(tar: str) -> dict[tuple[str, str, str], bool]:
    """(spec name, METHOD, spec path) -> has a path parameter of at most 3
    values, read from the specs themselves (apiward's own spec reader)."""
    from apiward.sim.specgen import iter_specs, load_endpoints

    out: dict[tuple[str, str, str], bool] = {}
    for name, spec in iter_specs(tar):
        key = name.removeprefix("specs/").removesuffix(".json")
        for e in load_endpoints(spec):
            out[(key, e.method.upper(), e.path)] = e.few_valued
    return out


def load_truth(truth_path: Path, tar: str) -> dict[str, dict[str, Any]]:
    """host -> {"spec", "endpoints": [{"method", "path", "few_valued"}]}, from
    either generator's ground-truth file. The independent generator's file
    lists ``endpoints`` with host, method and wire template (several specs
    may share a host: the host is the unit, as for the templater)."""
    raw = orjson.loads(truth_path.read_bytes())
    out: dict[str, dict[str, Any]] = {}
    if isinstance(raw, dict) and isinstance(raw.get("endpoints"), list):
        few = _few_valued_of(tar)
        for e in raw["endpoints"]:
            if not e.get("calls", 1):
                continue
            host = str(e["host"])
            specs = e.get("specs") or [host]
            spec_paths = e.get("spec_paths") or [e["path_template"]]
            fv = any(few.get((sp, str(e["method"]).upper(), pth), False) for sp in specs for pth in spec_paths)
            h = out.setdefault(host, {"spec": ",".join(sorted(set(specs)))[:60], "endpoints": []})
            h["endpoints"].append({"method": str(e["method"]).upper(),
                                   "path": str(e["path_template"]).split("?", 1)[0].split("#", 1)[0] or "/",
                                   "few_valued": fv})
        return out
    for host, v in raw.items():  # our own: host -> {"spec", "endpoints"}
        out[str(host)] = {"spec": v["spec"], "endpoints": [
            {"method": str(e["method"]).upper(), "path": str(e["path"]).split("?", 1)[0].split("#", 1)[0] or "/",
             "few_valued": bool(e.get("few_valued", False))} for e in v["endpoints"]]}
    return out


def open_calls(path: str) -> Any:
    """The calls of a traffic file, through apiward's own reader (bad records skipped)."""
    from apiward.ingest.base import Bad
    from apiward.ingest.registry import read_file

    for _, rec in read_file(path)[1]:
        if not isinstance(rec, Bad):
            yield rec


def read_calls(traffic: Path) -> dict[str, list[tuple[str, str]]]:
    """host -> [(method, path)] of the traffic file, via apiward's reader."""
    out: dict[str, list[tuple[str, str]]] = {}
    for call in open_calls(str(traffic)):
        out.setdefault(call.request.host, []).append((call.request.method, call.request.path))
    return out


# --------------------------------------------------------------------------- running


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_cli(traffic: Path, state: Path) -> tuple[list[dict[str, Any]], float]:
    """``apiward analyze`` then ``apiward inventory --format json``; the rows and the wall seconds."""
    if state.exists():
        shutil.rmtree(state)
    t0 = time.perf_counter()
    a = subprocess.run([sys.executable, "-m", "apiward", "analyze", str(traffic), "--state", str(state), "--quiet"],
                       capture_output=True, text=True, env=_env())
    if a.returncode != 0:
        raise SystemExit(f"apiward analyze failed ({a.returncode}): {a.stderr[-3000:]}")
    inv = subprocess.run([sys.executable, "-m", "apiward", "inventory", "--state", str(state), "--format", "json"],
                         capture_output=True, text=True, env=_env())
    if inv.returncode != 0:
        raise SystemExit(f"apiward inventory failed ({inv.returncode}): {inv.stderr[-3000:]}")
    return orjson.loads(inv.stdout), time.perf_counter() - t0


def run_inprocess(traffic: Path) -> tuple[list[dict[str, Any]], float]:
    """The discover stage's inventory, in this process, on the same file."""
    from apiward.discover.inventory import Inventory

    from apiward.config import Settings

    batch = Settings().batch_size  # the pipeline drains changes (and re-keys records) once per micro-batch
    inv = Inventory()
    t0 = time.perf_counter()
    for i, call in enumerate(open_calls(str(traffic)), 1):
        ref = inv.resolve(call)
        inv.observe(call, ref, [])
        if i % batch == 0:
            inv.drain_changes()
    inv.drain_changes()
    inv.drain_changes(flush=True)
    rows = [{"host": r.host, "method": r.method, "template": r.template, "calls": r.calls} for r in inv.records()]
    return rows, time.perf_counter() - t0


# --------------------------------------------------------------------------- scoring


def score(rows: list[dict[str, Any]], truth: dict[str, dict[str, Any]], calls: dict[str, list[tuple[str, str]]],
          show_errors: bool = False) -> dict[str, Any]:
    """Strict and "excl. <=3" counts, micro and macro, over the hosts of the truth."""
    by_host: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        by_host.setdefault(r["host"], []).append((r["method"], r["template"]))
    tot = [[0, 0, 0], [0, 0, 0]]
    f1s: list[list[float]] = [[], []]
    per_spec = []
    for host in sorted(truth):
        eps = truth[host]["endpoints"]
        hcalls = calls.get(host, [])
        if not eps or not hcalls:
            continue
        # which truth endpoint each call belongs to (most literal matching template)
        t_rx = [(e["method"], template_regex(e["path"]), len(_RE_PARAM.sub("", e["path"])), i) for i, e in enumerate(eps)]
        call_idx: list[int] = []
        for method, path in hcalls:
            best = None
            for m, rx, lits, i in t_rx:
                if m == method and rx.fullmatch(path) and (best is None or lits > best[0]):
                    best = (lits, i)
            call_idx.append(-1 if best is None else best[1])
        truth_keys: dict[tuple[str, str], list[int]] = {}
        for i, e in enumerate(eps):  # (every endpoint listed received traffic)
            truth_keys.setdefault((e["method"], structure(e["path"])), []).append(i)
        excl_keys = {k for k, idxs in truth_keys.items() if all(eps[i]["few_valued"] for i in idxs)}
        recovered = by_host.get(host, [])
        rec_keys = {(m, structure(t)) for m, t in recovered}
        # recovered -> truth endpoints of the calls it got
        r_rx = [(m, t, template_regex(t), len(_RE_PARAM.sub("", t))) for m, t in recovered]
        src: dict[tuple[str, str], set[int]] = {k: set() for k in rec_keys}
        for (method, path), i in zip(hcalls, call_idx):
            best = None
            for m, t, rx, lits in r_rx:
                if m == method and rx.fullmatch(path) and (best is None or lits > best[1]):
                    best = (t, lits)
            if best is not None:
                src[(method, structure(best[0]))].add(i)
        gt = set(truth_keys)
        strict = (len(rec_keys & gt), len(rec_keys - gt), len(gt - rec_keys))
        gt2 = gt - excl_keys
        few = {i for i, e in enumerate(eps) if e["few_valued"]}
        rec2 = {k for k in rec_keys if not src[k] or not src[k] <= few}
        loose = (len(rec2 & gt2), len(rec2 - gt2), len(gt2 - rec2))
        for j, c in enumerate((strict, loose)):
            for q in range(3):
                tot[j][q] += c[q]
            f1s[j].append(prf(*c)[2])
        per_spec.append((truth[host]["spec"], len(gt), len(hcalls), prf(*strict), prf(*loose)[2],
                         sorted(rec_keys - gt), sorted(gt - rec_keys)))
    p, r, f = prf(*tot[0])
    return {
        "micro": (p, r, f), "macro": sum(f1s[0]) / max(1, len(f1s[0])),
        "micro_x": prf(*tot[1])[2], "macro_x": sum(f1s[1]) / max(1, len(f1s[1])),
        "specs": len(per_spec), "per_spec": per_spec, "counts": tot,
    }


def templating_cost(tar: str, only: set[str] | None) -> tuple[float, int]:
    """CPU µs per call of the templater's observe + resolve on specgen traffic."""
    from apiward.discover.templating import Templater, response_shape
    from apiward.sim.specgen import generate, iter_specs

    secs, events = 0.0, 0
    for name, spec in iter_specs(tar):
        if only is not None and name not in only:
            continue
        tr = generate(spec, seed=zlib.crc32(name.encode()))
        shapes = [response_shape(b) for b in tr.bodies]
        t = Templater()
        t0 = time.process_time()
        for (method, path, _), shape in zip(tr.calls, shapes):
            t.observe(method, "api", path, response_shape=shape)
            t.resolve(method, "api", path)
        t.templates()
        secs += time.process_time() - t0
        events += len(tr.calls)
    return (secs / events * 1e6 if events else 0.0), events


def _selected(tar: str, args: argparse.Namespace) -> set[str] | None:
    if not args.spec and not args.limit:
        return None
    from apiward.sim.specgen import iter_specs

    names = [n for n, _ in iter_specs(tar) if not args.spec or args.spec in n]
    return set(names[: args.limit] if args.limit else names)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--generator", choices=["specgen", "alt", "both"], default="both")
    ap.add_argument("--mode", choices=["cli", "inprocess", "both"], default="cli")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--spec", default="")
    ap.add_argument("--show-errors", action="store_true")
    ap.add_argument("--tar", default=str(DATA))
    ap.add_argument("--work", default="", help="directory for traffic and state (default: a temporary one)")
    ap.add_argument("--no-cost", action="store_true", help="skip the templating cost measurement")
    ap.add_argument("--reuse", action="store_true", help="reuse the independent generator's output in --work")
    args = ap.parse_args()
    if not os.path.exists(args.tar):
        print(f"skip: {args.tar} not found (development data lives beside the checkout)")
        return 0
    sys.path.insert(0, str(ROOT / "src"))
    only = _selected(args.tar, args)
    work = Path(args.work or tempfile.mkdtemp(prefix="apiward-bench-"))
    gens = ["specgen", "alt"] if args.generator == "both" else [args.generator]
    results = []
    failed = False
    for gen in gens:
        gdir = work / gen
        if gen == "specgen":
            traffic, truth_path = write_specgen(args.tar, gdir / "data", only)
        elif (gdir / "data" / "traffic.truth.json").exists() and args.reuse:
            traffic, truth_path = gdir / "data" / "traffic.jsonl", gdir / "data" / "traffic.truth.json"
        else:
            try:
                import apiward.sim.specgen_alt  # noqa: F401  (only to know whether it is there)
            except ImportError:
                print("alt: apiward.sim.specgen_alt is not installed on this branch; skipped")
                continue
            traffic, truth_path = write_alt(args.tar, gdir / "data")
        truth = load_truth(truth_path, args.tar)
        if only is not None:
            keep = {host_of(n) for n in only}
            names = {n.removeprefix("specs/").removesuffix(".json") for n in only}
            truth = {h: v for h, v in truth.items() if h in keep or any(n in v["spec"] for n in names)}
        calls = read_calls(traffic)
        figs = {}
        modes = ["cli", "inprocess"] if args.mode == "both" else [args.mode]
        for mode in modes:
            rows, secs = run_cli(traffic, gdir / "state") if mode == "cli" else run_inprocess(traffic)
            figs[mode] = score(rows, truth, calls, args.show_errors)
            figs[mode]["secs"] = secs
            figs[mode]["endpoints"] = len(rows)
        if len(figs) == 2:
            a, b = figs["cli"], figs["inprocess"]
            if a["counts"] != b["counts"]:
                print(f"MISMATCH ({gen}): cli counts {a['counts']} != in-process counts {b['counts']}", file=sys.stderr)
                failed = True
        res = figs[modes[0]]
        if args.show_errors:
            for spec, neps, ncalls, (p, r, f), fx, fps, fns in res["per_spec"]:
                if fps or fns:
                    print(f"{gen} {spec[:56]:56} eps {neps:4d} calls {ncalls:6d} P {p:.3f} R {r:.3f} F1 {f:.3f}")
                    for e in fps[:int(os.environ.get("TPL_SHOW", "12"))]:
                        print("     FP", *e)
                    for e in fns[:int(os.environ.get("TPL_SHOW", "12"))]:
                        print("     FN", *e)
        for mode, fg in figs.items():
            results.append((gen, mode, fg))
    print()
    print(f"{'generator':10} {'path':10} {'specs':>5} {'micro P':>8} {'micro R':>8} {'micro F1':>8} {'macro F1':>8} | "
          f"{'excl<=3 micro F1':>16} {'macro F1':>8} | {'endpoints':>9} {'seconds':>8}")
    for gen, mode, fg in results:
        p, r, f = fg["micro"]
        print(f"{gen:10} {mode:10} {fg['specs']:5d} {p:8.3f} {r:8.3f} {f:8.3f} {fg['macro']:8.3f} | "
              f"{fg['micro_x']:16.3f} {fg['macro_x']:8.3f} | {fg['endpoints']:9d} {fg['secs']:8.1f}")
    if not args.no_cost:
        us, n = templating_cost(args.tar, only)
        print(f"templating cost: {us:.1f} µs per call (CPU; templater observe+resolve over {n} specgen calls)")
    if failed:
        print("FAIL: the CLI and in-process figures differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
