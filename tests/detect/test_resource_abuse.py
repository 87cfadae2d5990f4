"""abuse.resource: rates, payload and response sizes against the actor's own
history and the endpoint's norm; oversized pages."""

from __future__ import annotations

import random

from apiward.detect.resource_abuse import ResourceAbuse
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call
from apiward.state import codec
from apiward.state.parts import restore, state_of

def roundtrip(det):
    """A detector through what a checkpoint stores (the state codec, no pickle)."""
    return restore(type(det)(), codec.loads(codec.dumps(state_of(det))))


T0 = 1_764_000_000.0


class Stream:
    def __init__(self, det: ResourceAbuse) -> None:
        self.det = det
        self.findings: list = []

    def __call__(self, method: str, path: str, ts: float, **kw):
        c = make_call(method, path, ts=ts, **kw)
        ctx = Context(endpoint=EndpointRef(host=c.request.host, method=method, template=path.split("?")[0]))
        new = self.det.score_one(c, ctx)
        self.findings.extend(new)
        self.det.learn_one(c, ctx)
        return c, new


def steady_users(s: Stream, minutes: int = 30, users: int = 20, per_min: int = 6) -> float:
    t = T0
    rng = random.Random(1)
    for m in range(minutes):
        for u in range(users):
            for k in range(per_min):
                s("GET", "/api/v2/products", T0 + m * 60 + rng.uniform(0, 59), user=f"u{u}", json=[{"id": 1}] * 5)
        t = T0 + (m + 1) * 60
    return t


def test_normal_and_busy_users_are_quiet() -> None:
    s = Stream(ResourceAbuse())
    t = steady_users(s)
    # a busy integration: steady 100 calls a minute for half an hour
    for m in range(30):
        for k in range(100):
            s("GET", "/api/v2/orders", t + m * 60 + k * 0.5, user="sync-bot", json=[])
    assert s.findings == []


def test_burst_far_above_own_history_and_peers() -> None:
    s = Stream(ResourceAbuse(min_rate=120))
    t = steady_users(s)
    calls = []
    for k in range(300):
        c, _ = s("GET", f"/api/v2/users/{k}", t + k * 0.15, user="u3", json={"id": k})
        calls.append(c)
    rate = [f for f in s.findings if f.evidence.get("signal") == "rate"]
    assert rate, "burst not flagged"
    f = rate[0]
    assert f.actor == "user:u3" and f.evidence["calls_in_bucket"] >= f.evidence["bar"] >= 120
    assert set(f.event_ids) <= {c.id for c in calls} and len(f.event_ids) <= 16
    assert len({x.key for x in rate}) == 1 and f.owasp == "API4:2023" and f.attack == "T1499"
    covered = {e for x in rate for e in x.event_ids}
    assert len(covered) > 100  # the burst's later events are folded in


def test_big_upload_on_an_upload_endpoint_is_normal_but_not_on_a_json_endpoint() -> None:
    s = Stream(ResourceAbuse())
    rng = random.Random(2)
    t = T0
    for i in range(80):
        t += 30
        s("POST", "/api/v2/files", t, user=f"u{i % 10}", req_body=b"x" * rng.randint(2_000_000, 6_000_000), status=201, json={"id": i})
        s("POST", "/api/v2/orders", t + 1, user=f"u{i % 10}", req_json={"product": i, "qty": 1}, status=201, json={"id": i})
    _, found = s("POST", "/api/v2/files", t + 40, user="u1", req_body=b"x" * 7_000_000, status=201, json={"id": 999})
    assert found == []
    _, found = s("POST", "/api/v2/orders", t + 41, user="u1", req_body=b"{" + b" " * 3_000_000 + b"}", status=201, json={"id": 999})
    assert len(found) == 1 and found[0].evidence["signal"] == "request_size"
    assert found[0].evidence["times_typical"] > 1000


def test_response_size_far_above_the_endpoint_norm() -> None:
    s = Stream(ResourceAbuse())
    t = T0
    for i in range(60):
        t += 10
        s("GET", "/api/v2/users", t, user=f"u{i % 10}", json=[{"id": k, "name": "n"} for k in range(10)])
    big = [{"id": k, "name": "n" * 20, "email": f"{k}@example.com"} for k in range(20_000)]
    _, found = s("GET", "/api/v2/users?limit=100000", t + 5, user="u2", json=big)
    sig = sorted(f.evidence["signal"] for f in found)
    assert sig == ["page_size", "response_size"]


def test_reasonable_page_sizes_are_quiet_and_state_survives_a_checkpoint() -> None:
    det = ResourceAbuse()
    s = Stream(det)
    for i, lim in enumerate(("20", "50", "100", "1000", "abc")):
        _, found = s("GET", f"/api/v2/products?limit={lim}", T0 + i, user="u1", json=[])
        assert found == []
    _, found = s("GET", "/api/v2/products?per_page=50000", T0 + 9, user="u1", status=400, json={"error": "too big"})
    assert found and found[0].severity == "low"
    clone = roundtrip(det)
    assert clone._rates.keys() == det._rates.keys() and clone._hist == det._hist
