"""scraping.enumeration: object walks and deep pagination against peers' norms."""

from __future__ import annotations

from apiward.state import codec
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


def last(findings):
    """The latest finding that says something (continuations carry no evidence)."""
    return [f for f in findings if f.evidence][-1]


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
    f = last(s.findings)
    assert f.detector == "scraping.enumeration" and f.actor == "user:bot"
    assert f.evidence["distinct_objects"] >= 40 and f.evidence["peer_p90_objects"] <= 12
    assert set(f.event_ids) <= {c.id for c in calls}
    # calls after the last checkpoint join the same finding (continuations merge by key)
    assert calls[-1].id in {e for x in s.findings if x.key == f.key for e in x.event_ids}
    assert len({x.key for x in s.findings}) == 1 and f.owasp == "API6:2023"
    codec.loads(codec.dumps(det))


def test_deep_pagination_and_oversized_pages():
    s = Stream(ScrapingEnumeration())
    benign(s, random.Random(3))
    for page in range(1, 80):
        s(f"/api/products?page={page}&limit=20", "/api/products", ip="192.0.2.44", json=[])
    deep = last(s.findings)
    assert deep.actor == "ip:192.0.2.44" and deep.evidence["page_depth"] >= 20
    s("/api/products?offset=0&limit=10000", "/api/products", user="greedy", json=[])
    assert last(s.findings).actor == "user:greedy" and last(s.findings).evidence["page_size"] == 10000


def test_early_walk_is_caught_when_self_evident():
    s = Stream(ScrapingEnumeration())
    for p in range(1, 320):
        s(f"/api/items/{p}", "/api/items/{itemId}", ip="192.0.2.8", json={"id": p})
    assert s.findings and last(s.findings).evidence["distinct_objects"] >= 300


def test_slow_walk_in_id_order_over_a_day_and_random_reads_are_not():
    det = ScrapingEnumeration()
    s = Stream(det)
    rng = random.Random(4)
    benign(s, rng)
    # a busy shared address reads random products all day
    for _ in range(40):
        p = rng.randint(1, 120)
        s(f"/api/products/{p}", "/api/products/{productId}", ip="198.51.100.250", json={"id": p})
        s.t += 1800
    assert s.findings == []
    calls = []
    for p in range(1, 31):
        calls.append(s(f"/api/products/{p}", "/api/products/{productId}", ip="192.0.2.77", json={"id": p}))
        s.t += 1700
    mine = [f for f in s.findings if f.actor == "ip:192.0.2.77"]
    assert mine and last(mine).evidence["sequential_ratio"] >= 0.8
    flagged = {e for f in mine for e in f.event_ids}
    assert {c.id for c in calls[15:]} <= flagged  # once flagged, every further read joins


def test_oversized_pages_again_and_again():
    s = Stream(ScrapingEnumeration())
    benign(s, random.Random(6))
    calls = [s(f"/api/products?page={1 + i % 3}&limit=100", "/api/products", ip="192.0.2.55", json=[]) for i in range(12)]
    mine = [f for f in s.findings if f.actor == "ip:192.0.2.55"]
    assert mine and last(mine).evidence["oversized_pages"] >= 8
    assert calls[-1].id in {e for f in mine for e in f.event_ids}


def test_whole_small_catalogue_read_where_peers_read_a_part():
    """A catalogue of 30 files: everyone reads a few, one client reads them all."""
    s = Stream(ScrapingEnumeration())
    rng = random.Random(8)
    files = [f"pkg{i}-1.{i}.tar.gz" for i in range(30)]
    for i in range(10):
        for f in rng.sample(files, 6):
            s(f"/packages/{f}", "/packages/{filename}", ip=f"192.0.2.{i + 10}")
    assert not s.findings
    for f in files:
        s(f"/packages/{f}", "/packages/{filename}", ip="198.51.100.7")
    f = last(s.findings)
    assert f.actor == "ip:198.51.100.7" and 24 <= f.evidence["objects_known"] <= 30
    assert f.evidence["distinct_objects"] >= 0.8 * f.evidence["objects_known"]


def test_walk_of_one_shared_collection_among_everyones_own():
    """/collections/{c}/records/{id}: users read their own collections heavily;
    one reads the shared catalogue end to end."""
    s = Stream(ScrapingEnumeration())
    rng = random.Random(9)
    tpl = "/collections/{collection}/records/{recordId}"
    catalog = [f"c{i:04d}aa" for i in range(60)]
    for u in range(12):
        own = [f"u{u}r{i}x9" for i in range(45)]
        for r in own:  # each reads its own 45 records: as many as the walk below, all in one template
            s(f"/collections/mine{u}/records/{r}", tpl, user=f"u{u}")
        for r in rng.sample(catalog, 10):
            s(f"/collections/catalog/records/{r}", tpl, user=f"u{u}")
    assert not s.findings
    for r in catalog:
        s(f"/collections/catalog/records/{r}", tpl, user="walker")
    f = last(s.findings)
    assert f.actor == "user:walker" and f.evidence.get("parent_values") == "catalog"
