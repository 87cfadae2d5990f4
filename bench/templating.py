"""Benchmark: endpoint templating recovered from synthetic traffic of real specs.

Data: ../shared/data/openapi-specs/specs-dev.tar.gz (147 APIs.guru specs,
development split; skipped cleanly when absent). For each spec,
``apiward.sim.specgen`` synthesises shuffled traffic from the spec's paths and
parameter metadata; discovery runs WITHOUT the spec (observe then resolve per
call, as the pipeline does), and the recovered templates are scored against
the spec's paths.

Scoring (strict): an endpoint is (METHOD, structure) where the structure keeps
literal segments and parameter positions and drops parameter names
(``/users/{}/orders/{}``; ``{}.json`` and ``{}:cancel`` keep their literal
part, and ``.{}`` counts as ``{}``: a format parameter written with or
without its dot is one endpoint). Ground truth = the spec's operations that received traffic, with query
strings and fragments stripped from spec paths (``/#CreateBucket`` is ``/`` on
the wire). Precision = recovered endpoints that are spec endpoints / recovered;
recall = spec endpoints recovered / spec endpoints; F1; micro (pooled counts)
and macro (mean per spec). The second figure ("excl. <=3") drops spec
endpoints with a path parameter that has at most 3 possible values (enum of
<= 3, boolean) from the ground truth, and drops recovered endpoints whose calls
all came from such endpoints.

Compared with: ``baseline`` (numeric and uuid segments -> param, the common
heuristic) and mitmproxy2swagger's default (numeric segments -> {id}; run on a
HAR we write, first pass, suggestions accepted as its docs instruct, second
pass), if installed.

Usage: python bench/templating.py [--limit N] [--spec SUBSTR] [--no-m2s] [--show-errors]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile
import time
import zlib
from pathlib import Path

from apiward.discover.templating import Templater, response_shape
from apiward.sim.specgen import generate, iter_specs

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "openapi-specs" / "specs-dev.tar.gz"

_RE_PARAM = re.compile(r"\{[^}]*\}")
_RE_INT = re.compile(r"\d+")
_RE_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def structure(path: str) -> str:
    # ".{}" == "{}": whether a format parameter's dot is inside the value
    # (``Calls{mediaTypeExtension}``) or not (``{id}.{format}``) is notation
    return "/" + "/".join(_RE_PARAM.sub("{}", s).replace(".{}", "{}") for s in path.split("/") if s)


def baseline(path: str) -> str:
    return "/" + "/".join("{}" if _RE_INT.fullmatch(s) or _RE_UUID.fullmatch(s) else s for s in path.split("/") if s)


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


def score(recovered: dict[tuple[str, str], set[int]], truth: dict[tuple[str, str], int], excluded: set[int]):
    """recovered: endpoint -> indices of true endpoints whose calls it got;
    truth: endpoint -> index. Returns (strict counts, excluding-few counts)."""
    rec = set(recovered)
    gt = set(truth)
    tp = len(rec & gt)
    strict = (tp, len(rec - gt), len(gt - rec))
    gt2 = {e for e, i in truth.items() if i not in excluded}
    rec2 = {e for e, src in recovered.items() if not src or not src <= excluded}
    tp2 = len(rec2 & gt2)
    return strict, (tp2, len(rec2 - gt2), len(gt2 - rec2))


def run_m2s(calls: list[tuple[str, str, int]], tmp: str) -> list[tuple[str, str]] | str:
    try:
        from mitmproxy2swagger import mitmproxy2swagger as m2s
        import ruamel.yaml
    except Exception as e:  # pragma: no cover - optional
        return f"not installed ({type(e).__name__})"
    har = {"log": {"version": "1.2", "creator": {"name": "apiward-bench", "version": "1"}, "entries": []}}
    seen: set[tuple[str, str]] = set()
    for method, path, _ in calls:
        if (method, path) in seen:
            continue
        seen.add((method, path))
        har["log"]["entries"].append({
            "startedDateTime": "2026-01-01T00:00:00.000Z", "time": 1,
            "request": {"method": method, "url": "https://api.example.com" + path, "httpVersion": "HTTP/1.1",
                        "headers": [], "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [],
                         "cookies": [], "content": {"size": 2, "mimeType": "application/json", "text": "{}"},
                         "redirectURL": "", "headersSize": -1, "bodySize": 2},
            "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0},
        })
    hp = os.path.join(tmp, "flows.har")
    out = os.path.join(tmp, "spec.yml")
    if os.path.exists(out):
        os.remove(out)
    with open(hp, "w") as f:
        json.dump(har, f)
    args = ["-i", hp, "-o", out, "-p", "https://api.example.com", "-f", "har"]
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            m2s.main(args)
            yaml = ruamel.yaml.YAML()
            with open(out) as f:
                doc = yaml.load(f)
            # the documented workflow: remove the "ignore:" prefix to accept endpoints
            doc["x-path-templates"] = [str(p).removeprefix("ignore:") for p in doc.get("x-path-templates") or []]
            with open(out, "w") as f:
                yaml.dump(doc, f)
            m2s.main(args)
            with open(out) as f:
                doc = yaml.load(f)
    except SystemExit as e:
        return f"exited {e.code}: {sink.getvalue()[-200:]}"
    except Exception as e:
        return f"failed: {type(e).__name__}: {e}"
    res = []
    for p, item in (doc.get("paths") or {}).items():
        for m in item or {}:
            res.append((str(m).upper(), str(p)))
    return res


def attribute(templates: list[tuple[str, str]], calls: list[tuple[str, str, int]]) -> dict[tuple[str, str], set[int]]:
    """Which true endpoints' calls land on each recovered template (most literal match wins)."""
    rx = [(m, t, template_regex(t), len(_RE_PARAM.sub("", t))) for m, t in templates]
    out: dict[tuple[str, str], set[int]] = {(m, structure(t)): set() for m, t in templates}
    for method, path, idx in calls:
        best = None
        for m, t, r, lits in rx:
            if m == method and r.fullmatch(path) and (best is None or lits > best[1]):
                best = (t, lits)
        if best is not None:
            out[(method, structure(best[0]))].add(idx)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--spec", default="")
    ap.add_argument("--no-m2s", action="store_true")
    ap.add_argument("--show-errors", action="store_true")
    ap.add_argument("--tar", default=str(DATA))
    ap.add_argument("--no-shapes", action="store_true", help="do not pass response shapes to the templater")
    args = ap.parse_args()
    if not os.path.exists(args.tar):
        print(f"skip: {args.tar} not found (development data lives beside the checkout)")
        return 0
    methods = ["templater", "baseline"] + ([] if args.no_m2s else ["m2s"])
    totals = {m: [[0, 0, 0], [0, 0, 0]] for m in methods}
    f1s: dict[str, list[list[float]]] = {m: [[], []] for m in methods}
    events = 0
    secs = 0.0
    m2s_note = ""
    print(f"{'spec':44} {'eps':>4} {'calls':>6} | {'tmpl P':>6} {'R':>5} {'F1':>5} {'F1x':>5} | {'base F1':>7} {'F1x':>5} | {'m2s F1':>6} {'F1x':>5}")
    tmp = tempfile.mkdtemp(prefix="apiward-bench-")
    n = 0
    for name, spec in iter_specs(args.tar):
        if args.spec and args.spec not in name:
            continue
        if args.limit and n >= args.limit:
            break
        n += 1
        traffic = generate(spec, seed=zlib.crc32(name.encode()))
        if not traffic.calls:
            continue
        eps = traffic.endpoints
        truth: dict[tuple[str, str], int] = {}
        for i, e in enumerate(eps):
            truth.setdefault((e.method, structure(e.path)), i)
        excluded = {i for i, e in enumerate(eps) if e.few_valued}
        # a spec key is excluded only if every endpoint mapping to it is
        by_key: dict[tuple[str, str], list[int]] = {}
        for i, e in enumerate(eps):
            by_key.setdefault((e.method, structure(e.path)), []).append(i)
        excl_keys = {k for k, idxs in by_key.items() if all(i in excluded for i in idxs)}
        # --- templater, online: observe then resolve each call
        t = Templater()
        shapes = [None if args.no_shapes else response_shape(b) for b in traffic.bodies]
        t0 = time.process_time()  # CPU time: per core, whatever else runs on the machine
        for (method, path, _), shape in zip(traffic.calls, shapes):
            t.observe(method, "api", path, response_shape=shape)
            t.resolve(method, "api", path)
        tpl = t.templates()
        secs += time.process_time() - t0
        events += len(traffic.calls)
        rec_t: dict[tuple[str, str], set[int]] = {(m, structure(x)): set() for _, m, x in tpl}
        for method, path, idx in traffic.calls:
            rec_t.setdefault((method, structure(t.resolve(method, "api", path)[0])), set()).add(idx)
        # --- baseline
        rec_b: dict[tuple[str, str], set[int]] = {}
        for method, path, idx in traffic.calls:
            rec_b.setdefault((method, baseline(path)), set()).add(idx)
        recs = {"templater": rec_t, "baseline": rec_b}
        if "m2s" in methods:
            got = run_m2s(traffic.calls, tmp)
            if isinstance(got, str):
                m2s_note = got
                methods.remove("m2s")
                del totals["m2s"]
            else:
                recs["m2s"] = attribute(got, traffic.calls)
        truth_x = {k: (-1 if k in excl_keys else i) for k, i in truth.items()}
        row = []
        for m in methods:
            strict, loose = score(recs[m], truth_x, {-1} | excluded)
            for j, c in enumerate((strict, loose)):
                for q in range(3):
                    totals[m][j][q] += c[q]
            ps, rs, fs = prf(*strict)
            fx = prf(*loose)[2]
            f1s[m][0].append(fs)
            f1s[m][1].append(fx)
            row.append((ps, rs, fs, fx))
        line = f"{name[:44]:44} {len(truth):4d} {len(traffic.calls):6d} | {row[0][0]:6.3f} {row[0][1]:5.3f} {row[0][2]:5.3f} {row[0][3]:5.3f} | {row[1][2]:7.3f} {row[1][3]:5.3f}"
        if len(row) > 2:
            line += f" | {row[2][2]:6.3f} {row[2][3]:5.3f}"
        print(line)
        if args.show_errors:
            rec = set(rec_t)
            gt = set(truth)
            for e in sorted(rec - gt)[:12]:
                print("     FP", *e)
            for e in sorted(gt - rec)[:12]:
                print("     FN", *e)
    print()
    print(f"specs: {n}; templater learn+resolve: {events / secs if secs else 0:,.0f} events/s per core ({events} events)")
    print(f"{'method':12} {'micro P':>8} {'micro R':>8} {'micro F1':>8} {'macro F1':>8} | {'excl<=3 micro F1':>16} {'macro F1':>8}")
    for m in methods:
        s, l = totals[m]
        p, r, f = prf(*s)
        fx = prf(*l)[2]
        mac = sum(f1s[m][0]) / max(1, len(f1s[m][0]))
        macx = sum(f1s[m][1]) / max(1, len(f1s[m][1]))
        print(f"{m:12} {p:8.3f} {r:8.3f} {f:8.3f} {mac:8.3f} | {fx:16.3f} {macx:8.3f}")
    if m2s_note:
        print(f"mitmproxy2swagger: {m2s_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
