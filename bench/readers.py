"""Reader throughput: HAR read (+ actor resolution) in events per CPU-second.

Generates a synthetic HAR of realistic API calls (JSON bodies 0.5-5 KB,
mixed methods, bearer JWTs, API keys, sessions) in a temp dir, then times
reading it with ``time.process_time`` (one core). Also times the CSIC 2010
raw-HTTP file when ../shared/data is present (skipped otherwise).

    python bench/readers.py [--entries 100000]
"""

from __future__ import annotations

import argparse
import base64
import gc
import itertools
import os
import random
import tempfile
import time

import orjson

from apiward.ingest.actor import ActorResolver
from apiward.ingest.base import ReadOptions
from apiward.ingest.har import HarReader
from apiward.ingest.registry import read_file

METHODS = ["GET"] * 6 + ["POST"] * 2 + ["PUT", "DELETE", "PATCH"]
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _jwt(sub: str) -> str:
    def enc(obj: dict) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()

    return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc({'sub': sub, 'iat': 1700000000, 'role': 'user'})}.c2lnbmF0dXJl"


def _json_body(rng: random.Random) -> bytes:
    size = rng.randint(500, 5000)
    items = []
    n = 0
    while n < size:
        item = {"id": rng.randint(1, 10**6), "name": rng.choice(WORDS), "tags": rng.sample(WORDS, 3), "price": round(rng.random() * 100, 2), "email": f"{rng.choice(WORDS)}@example.com"}
        items.append(item)
        n += 110
    return orjson.dumps({"items": items, "total": len(items)})


def make_har(path: str, entries: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    users = [f"user{i}" for i in range(500)]
    tokens = {u: _jwt(u) for u in users}
    with open(path, "wb") as f:
        f.write(b'{"log":{"version":"1.2","creator":{"name":"apiward-bench","version":"1"},"pages":[],"entries":[\n')
        for i in range(entries):
            m = rng.choice(METHODS)
            u = rng.choice(users)
            oid = rng.randint(1, 10**6)
            headers = [
                {"name": "Host", "value": "api.example.com"},
                {"name": "User-Agent", "value": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"},
                {"name": "Accept", "value": "application/json"},
                {"name": "X-Forwarded-For", "value": f"198.51.100.{rng.randint(1, 254)}"},
            ]
            r = rng.random()
            if r < 0.6:
                headers.append({"name": "Authorization", "value": f"Bearer {tokens[u]}"})
            elif r < 0.8:
                headers.append({"name": "X-API-Key", "value": f"key-{u}"})
            else:
                headers.append({"name": "Cookie", "value": f"session={u}-sess; theme=dark"})
            req: dict = {"method": m, "url": f"https://api.example.com/v1/orders/{oid}/items?page={rng.randint(1, 9)}&q=a%20b", "httpVersion": "HTTP/1.1", "headers": headers, "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0}
            if m in ("POST", "PUT", "PATCH"):
                body = _json_body(rng).decode()
                req["postData"] = {"mimeType": "application/json", "text": body}
                req["bodySize"] = len(body)
                headers.append({"name": "Content-Type", "value": "application/json"})
            rbody = _json_body(rng).decode()
            entry = {
                "startedDateTime": f"2025-01-01T10:{i // 3600 % 60:02d}:{i // 60 % 60:02d}.{i % 1000:03d}+01:00",
                "time": round(rng.random() * 80, 3),
                "request": req,
                "response": {"status": rng.choice([200, 200, 200, 201, 404]), "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [{"name": "Content-Type", "value": "application/json"}, {"name": "Content-Length", "value": str(len(rbody))}], "cookies": [], "content": {"size": len(rbody), "mimeType": "application/json", "text": rbody}, "redirectURL": "", "headersSize": -1, "bodySize": len(rbody)},
                "cache": {},
                "timings": {"send": 0.1, "wait": 10.0, "receive": 1.0},
                "serverIPAddress": "[2001:db8::10]",
                "_priority": "High",
            }
            f.write(orjson.dumps(entry))
            f.write(b",\n" if i < entries - 1 else b"\n")
        f.write(b"]}}")


def _stream(path: str) -> tuple[int, float]:
    """Events/s per core reading one event at a time (nothing kept)."""
    reader = HarReader()
    t0 = time.process_time()
    n = 0
    with open(path, "rb") as f:
        for _ in reader.read(f, ReadOptions(source_name="bench.har")):
            n += 1
    return n, n / (time.process_time() - t0)


def _batches(path: str, size: int = 1000) -> tuple[int, float, float, int]:
    """Read in micro-batches (as the pipeline does), timing the reader and
    the actor resolver separately: (events, read s, resolve s, actors)."""
    reader = HarReader()
    resolver = ActorResolver(trusted_proxies=["10.0.0.0/8", "127.0.0.0/8"])
    read_s = resolve_s = 0.0
    n = 0
    keys = set()
    with open(path, "rb") as f:
        records = reader.read(f, ReadOptions(source_name="bench.har"))
        while True:
            t0 = time.process_time()
            batch = [item for _, item in itertools.islice(records, size)]
            t1 = time.process_time()
            if not batch:
                break
            resolver.resolve_many(batch)  # type: ignore[arg-type]
            t2 = time.process_time()
            read_s += t1 - t0
            resolve_s += t2 - t1
            n += len(batch)
            keys.update(c.actor.key for c in batch)  # type: ignore[union-attr]
    return n, read_s, resolve_s, len(keys)


def bench_har(path: str) -> None:
    size = os.path.getsize(path)
    n, rate = _stream(path)
    print(f"HAR: {n} entries, {size / 1e6:.0f} MB ({size / n / 1e3:.1f} KB per entry)")
    print(f"  read, streaming one by one       : {rate:10,.0f} events/s per core ({size / n * rate / 1e6:.0f} MB/s)")
    for label in ("default GC", "gc.set_threshold(50000, 20, 100)"):
        if label != "default GC":
            gc.set_threshold(50_000, 20, 100)
        n, read_s, resolve_s, actors = _batches(path)
        print(f"  batches of 1000, {label}:")
        print(f"    read                           : {n / read_s:10,.0f} events/s per core")
        print(f"    actor resolve                  : {n / resolve_s:10,.0f} events/s per core ({actors} actors)")
        print(f"    read + actor                   : {n / (read_s + resolve_s):10,.0f} events/s per core")
    gc.set_threshold(*_GC_DEFAULT)


_GC_DEFAULT = gc.get_threshold()


def bench_csic() -> None:
    path = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "csic2010", "normal-train.txt.gz")
    if not os.path.exists(path):
        print("CSIC 2010: skipped (../shared/data not present)")
        return
    t0 = time.process_time()
    _, records = read_file(path)
    n = sum(1 for _ in records)
    t = time.process_time() - t0
    print(f"raw-http (CSIC 2010 normal-train, gzip): {n} requests, {n / t:,.0f} events/s per core")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.har")
        t = time.time()
        make_har(path, args.entries)
        print(f"generated {args.entries} entries in {time.time() - t:.1f} s")
        bench_har(path)
    bench_csic()


if __name__ == "__main__":
    main()
