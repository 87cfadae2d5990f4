"""scraping.enumeration: object walks and deep pagination against peers' norms."""

from __future__ import annotations

import pickle
import random

from apiward.detect.scraping import ScrapingEnumeration
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call


def ctx_for(call, template):
    segs = call.request.path.strip("/").split("/")
    tsegs = template.strip("/").split("/")
    params = tuple((t[1:-1], s) for t, s in zip(tsegs, segs) if t.startswith("{"))
    return Context(endpoint=EndpointRef(host=call.request.host, method=call.request.method, template=template, path_params=params))


class Stream:
    def __init__(self, det):
        self.det = det
        self.findings = []
        self.t = 1_764_000_000.0

    def __call__(self, path, template, **kw):
        self.t += 1.0
        c = make_call("GET", path, ts=self.t, **kw)
        ctx = ctx_for(c, template)
        self.findings.extend(self.det.score_one(c, ctx))
        self.det.learn_one(c, ctx)
        return c


def benign(s, rng):
    for i in range(12):
        u = f"u{i}"
        for p in rng.sample(range(1, 500), rng.randint(3, 12)):
            s(f"/api/products/{p}", "/api/products/{productId}", user=u, json={"id": p})
        for page in range(1, rng.randint(2, 5)):
            s(f"/api/products?page={page}&limit=20", "/api/products", user=u, json=[])
        s("/api/products?offset=40&limit=20", "/api/products", user=u, json=[])


def test_normal_browsing_and_pagination_are_quiet():
    s = Stream(ScrapingEnumeration())
    benign(s, random.Random(1))
    assert s.findings == []


def test_object_walk_beyond_peers():
    det = ScrapingEnumeration()
    s = Stream(det)
    benign(s, random.Random(2))
    calls = [s(f"/api/products/{p}", "/api/products/{productId}", user="bot", json={"id": p}) for p in range(1, 121)]
    f = s.findings[-1]
    assert f.detector == "scraping.enumeration" and f.actor == "user:bot"
    assert f.evidence["distinct_objects"] >= 40 and f.evidence["peer_p90_objects"] <= 12
    assert set(f.event_ids) <= {c.id for c in calls} and calls[-1].id in f.event_ids
    assert len({x.key for x in s.findings}) == 1 and f.owasp == "API6:2023"
    pickle.loads(pickle.dumps(det))


def test_deep_pagination_and_oversized_pages():
    s = Stream(ScrapingEnumeration())
    benign(s, random.Random(3))
    for page in range(1, 80):
        s(f"/api/products?page={page}&limit=20", "/api/products", ip="192.0.2.44", json=[])
    deep = s.findings[-1]
    assert deep.actor == "ip:192.0.2.44" and deep.evidence["page_depth"] >= 20
    s("/api/products?offset=0&limit=10000", "/api/products", user="greedy", json=[])
    assert s.findings[-1].actor == "user:greedy" and s.findings[-1].evidence["page_size"] == 10000


def test_early_walk_is_caught_when_self_evident():
    s = Stream(ScrapingEnumeration())
    for p in range(1, 320):
        s(f"/api/items/{p}", "/api/items/{itemId}", ip="192.0.2.8", json={"id": p})
    assert s.findings and s.findings[-1].evidence["distinct_objects"] >= 300
