"""A realistic synthetic traffic corpus for benchmarks (HAR 1.2).

Mixed methods, JSON bodies of 0.5-5 KB, a few hundred endpoints with ids,
a population of users with bearer tokens, some form posts and errors.
Deterministic for a seed.
"""

from __future__ import annotations

import base64
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

RESOURCES = ["users", "orders", "accounts", "payments", "products", "tickets", "invoices", "shipments", "reviews", "carts"]
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()


def _jwt(user: str) -> str:
    enc = lambda d: base64.urlsafe_b64encode(orjson.dumps(d)).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc({'sub': user, 'role': 'user'})}.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def _body(rng: random.Random, size: int) -> bytes:
    items = []
    total = 0
    while total < size:
        item = {
            "id": rng.randrange(1, 10**6),
            "name": " ".join(rng.choices(WORDS, k=3)),
            "price": round(rng.uniform(1, 500), 2),
            "tags": rng.choices(WORDS, k=2),
            "created_at": "2026-11-2%dT1%d:00:00Z" % (rng.randrange(10), rng.randrange(10)),
        }
        items.append(item)
        total += 120
    return orjson.dumps({"items": items, "page": rng.randrange(1, 20), "total": len(items)})


def make_har(path: Path, n: int = 100_000, seed: int = 7) -> Path:
    rng = random.Random(seed)
    users = [f"user{i}@example.com" for i in range(500)]
    tokens = {u: _jwt(u) for u in users}
    t0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
    with open(path, "wb") as f:
        f.write(b'{"log":{"version":"1.2","creator":{"name":"apiward-bench","version":"1"},"entries":[\n')
        for i in range(n):
            res = RESOURCES[rng.randrange(len(RESOURCES))]
            method = rng.choices(["GET", "POST", "PUT", "PATCH", "DELETE"], weights=[60, 20, 8, 8, 4])[0]
            oid = rng.randrange(1, 50_000)
            url = f"https://api.example.com/api/v2/{res}/{oid}" if method != "POST" else f"https://api.example.com/api/v2/{res}"
            if method == "GET" and rng.random() < 0.3:
                url = f"https://api.example.com/api/v2/{res}?page={rng.randrange(1, 30)}&limit=50"
            user = users[rng.randrange(len(users))]
            req_headers = [
                {"name": "Host", "value": "api.example.com"},
                {"name": "Authorization", "value": "Bearer " + tokens[user]},
                {"name": "User-Agent", "value": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"},
                {"name": "Accept", "value": "application/json"},
            ]
            entry = {
                "startedDateTime": (t0 + timedelta(milliseconds=i * 37)).isoformat(),
                "time": round(rng.uniform(2, 80), 3),
                "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1", "headers": req_headers, "cookies": [], "queryString": [], "headersSize": -1, "bodySize": 0},
                "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [{"name": "Content-Type", "value": "application/json"}], "cookies": [], "content": {}, "redirectURL": "", "headersSize": -1, "bodySize": 0},
                "cache": {},
                "timings": {"send": 0, "wait": 10, "receive": 1},
                "serverIPAddress": "10.0.0.5",
            }
            if method in ("POST", "PUT", "PATCH"):
                body = _body(rng, rng.randrange(500, 2000)).decode()
                entry["request"]["postData"] = {"mimeType": "application/json", "text": body}
                entry["request"]["bodySize"] = len(body)
            status = rng.choices([200, 201, 204, 400, 403, 404, 500], weights=[80, 6, 3, 3, 2, 5, 1])[0]
            entry["response"]["status"] = status
            if status != 204:
                text = _body(rng, rng.randrange(500, 5000)).decode()
                entry["response"]["content"] = {"size": len(text), "mimeType": "application/json", "text": text}
            f.write(orjson.dumps(entry))
            f.write(b",\n" if i < n - 1 else b"\n")
        f.write(b"]}}\n")
    return path
