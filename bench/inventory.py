"""Benchmark the inventory: ``Inventory.observe`` (counters + sampled schema
learning) alone and with templating (``resolve``), in events per CPU-second.

Bodies are parsed before timing, as the sensitive-data classifier parses
them first in the pipeline (``Message.json()`` is cached).

    python bench/inventory.py [N]
"""

from __future__ import annotations

import random
import sys
import time

from apiward.discover.inventory import Inventory
from apiward.model.context import SensitiveHit
from apiward.testing import make_call


def calls(n: int) -> list:
    rnd = random.Random(7)
    out = []
    for i in range(n):
        uid = rnd.randrange(1, 5000)
        k = i % 5
        if k == 0:
            c = make_call("GET", f"/api/v1/users/{uid}?expand=orders", user=f"u{uid % 300}", ts=1e9 + i * 0.01,
                          json={"id": uid, "email": f"u{uid}@example.com", "name": "Ann", "created": "2024-01-01T00:00:00Z",
                                "address": {"city": "Paris", "zip": "75001"}, "roles": ["user"]})
        elif k == 1:
            c = make_call("POST", "/api/v1/orders", user=f"u{uid % 300}", ts=1e9 + i * 0.01, status=201,
                          req_json={"sku": f"SKU-{uid % 40}", "qty": uid % 5, "note": "x" * (uid % 30)}, json={"id": i, "status": "new"})
        elif k == 2:
            c = make_call("GET", f"/api/v1/products/{uid % 400}", ts=1e9 + i * 0.01, json={"id": uid % 400, "price": 9.99, "tags": ["a", "b"]})
        elif k == 3:
            c = make_call("GET", f"/api/v1/users/{uid}/orders/{rnd.randrange(10**6)}", user=f"u{uid % 300}", ts=1e9 + i * 0.01,
                          json={"items": [{"sku": "A", "qty": 1}], "total": 12.5})
        else:
            c = make_call("GET", "/health", ts=1e9 + i * 0.01, json={"ok": True})
        if c.response is not None:
            c.response.json()
        c.request.json()
        out.append(c)
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    cs = calls(n)
    hits = [SensitiveHit(location="response_body", field="email", cls="email")]
    inv = Inventory()
    t0 = time.process_time()
    refs = [inv.resolve(c) for c in cs]
    t_resolve = time.process_time() - t0
    t0 = time.process_time()
    for c, r in zip(cs, refs):
        inv.observe(c, r, hits if r.template.endswith("{userId}") else [])
    t_observe = time.process_time() - t0
    t0 = time.process_time()
    inv.drain_changes(flush=True)
    t_drain = time.process_time() - t0
    print(f"{n} calls, {len(inv.endpoints)} endpoints")
    print(f"resolve (templating):   {n / t_resolve:12,.0f} events/s per core")
    print(f"observe (inventory):    {n / t_observe:12,.0f} events/s per core")
    print(f"resolve + observe:      {n / (t_resolve + t_observe):12,.0f} events/s per core")
    print(f"drain_changes(flush):   {t_drain * 1000:.1f} ms")


if __name__ == "__main__":
    main()
