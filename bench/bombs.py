"""Decompression bombs through ``apiward analyze``: wall time and peak RSS.

Builds, in a temp dir (gzip members are compressed once and repeated, so
building takes seconds):

- ``bomb.har.gz``: ~1 MB expanding to ~1 GB: one HAR entry whose response
  text is 1 GB, between 2 good entries before and 6 after;
- ``blank.jsonl.gz``: ~4 MB of gzip expanding to ~4 GB of blank lines,
  then 3 good events;
- ``oneline.jsonl.gz``: a JSONL whose first line is 1 GB, then 3 good events.

Each runs ``apiward analyze --json`` in its own subprocess; the child's peak
RSS comes from ``os.wait4`` (ru_maxrss of that child alone).

    python bench/bombs.py [--size-mb 1024] [--only har] [--ratio 0] [--src /path/to/other/src]

``--src`` runs another apiward tree (e.g. a checkout from before the
limits) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

MB = 1 << 20


def _member(data: bytes) -> bytes:
    """One gzip member of ``data`` (members concatenate into one stream)."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def _entry(i: int, text: str = "{}") -> dict:
    return {
        "startedDateTime": "2025-01-01T00:00:00Z",
        "time": 1,
        "request": {"method": "GET", "url": f"https://x.test/items/{i}", "headers": []},
        "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "text/plain"}], "content": {"size": 2, "text": text}},
    }


def _repeat(f, byte: bytes, total: int, piece: int = 64 * MB) -> None:
    """``total`` bytes of ``byte`` as repeated gzip members."""
    member = _member(byte * piece)
    for _ in range(total // piece):
        f.write(member)
    if total % piece:
        f.write(_member(byte * (total % piece)))


def build_har(path: str, size: int) -> None:
    head = json.dumps({"log": {"version": "1.2", "entries": [_entry(0), _entry(1)]}})
    head = head[: head.rindex("]")] + ", "
    big = json.dumps(_entry(2, "")).replace('"text": ""', '"text": "', 1)
    cut = big.index('"text": "') + len('"text": "')
    after = ", ".join(json.dumps(_entry(i)) for i in range(3, 9))
    with open(path, "wb") as f:
        f.write(_member((head + big[:cut]).encode()))
        _repeat(f, b"A", size)
        f.write(_member(('"' + big[cut:] + ", " + after + "]}}").encode()))


def _events(n: int) -> bytes:
    from apiward.model.call import dumps
    from apiward.testing import make_call

    return b"".join(dumps(make_call("GET", f"/ok/{i}", id=f"ok-{i}", status=200)) + b"\n" for i in range(n))


def build_blank(path: str, size: int) -> None:
    with open(path, "wb") as f:
        _repeat(f, b"\n", size)
        f.write(_member(_events(3)))


def build_oneline(path: str, size: int) -> None:
    with open(path, "wb") as f:
        f.write(_member(b'{"id": "huge", "pad": "'))
        _repeat(f, b"B", size)
        f.write(_member(b'"}\n' + _events(3)))


def run(path: str, state: str, src: str, timeout: float) -> tuple[float, dict | str]:
    """Wall seconds and the summary (or the error) of one analyze."""
    env = dict(os.environ, PYTHONPATH=src)
    t0 = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, "-m", "apiward", "analyze", path, "--state", state, "--json", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return time.perf_counter() - t0, f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - t0
    try:
        return wall, json.loads(out)
    except ValueError:
        return wall, (err or out).decode(errors="replace")[-400:]


def run_measured(path: str, state: str, src: str, timeout: float, config: str = "") -> tuple[float, int, dict | str]:
    """:func:`run` in a forked helper, so ``RUSAGE_CHILDREN`` covers one
    analyze only."""
    if config:
        os.makedirs(state, exist_ok=True)
        with open(os.path.join(state, "apiward.toml"), "w") as f:
            f.write(config)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        import resource

        wall, summary = run(path, state, src, timeout)
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        os.write(w, json.dumps([wall, rss, summary]).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.waitpid(pid, 0)
    wall, rss, summary = json.loads(data)
    return wall, rss, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="expanded size of the HAR and one-line bombs")
    ap.add_argument("--blank-mb", type=int, default=4096, help="expanded size of the blank-line bomb")
    ap.add_argument("--only", choices=["har", "blank", "oneline"], action="append")
    ap.add_argument("--src", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--ratio", type=int, default=None, help="max_gzip_ratio to set (0 turns the bomb guard off: only the record/line limits act)")
    args = ap.parse_args()
    kinds = args.only or ["har", "blank", "oneline"]
    with tempfile.TemporaryDirectory(prefix="apiward-bombs-") as tmp:
        for kind in kinds:
            path = os.path.join(tmp, {"har": "bomb.har.gz", "blank": "blank.jsonl.gz", "oneline": "oneline.jsonl.gz"}[kind])
            size = (args.blank_mb if kind == "blank" else args.size_mb) * MB
            t0 = time.perf_counter()
            {"har": build_har, "blank": build_blank, "oneline": build_oneline}[kind](path, size)
            built = time.perf_counter() - t0
            config = f"max_gzip_ratio = {args.ratio}\n" if args.ratio is not None else ""
            wall, rss, summary = run_measured(path, os.path.join(tmp, f"state-{kind}"), args.src, args.timeout, config)
            print(f"{kind:8s} {os.path.getsize(path) / MB:6.2f} MB gzip -> {size / MB:,.0f} MB  (built in {built:.1f} s)")
            print(f"         analyze: {wall:7.1f} s wall, peak RSS {rss / MB:,.0f} MB")
            if isinstance(summary, dict):
                fc = summary.get("per_file", {}).get(path)
                print(f"         stored {summary['events']}, quarantined {summary['quarantined']} {summary.get('quarantine_reasons')}")
                if fc:
                    print(f"         per file: {fc}")
            else:
                print(f"         failed: {summary}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
