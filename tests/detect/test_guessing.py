"""credentials.code_guessing: a client guessing a reset or verification code."""

from __future__ import annotations

import random

from apiward.detect.guessing import CodeGuessing
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

T0 = 1_764_000_000.0
RESET = "/api/auth/reset/confirm"


class Stream:
    def __init__(self, det, mode="both"):
        self.det, self.mode, self.findings, self.t = det, mode, [], T0

    def __call__(self, path, *, status, req_json=None, method="POST", dt=2.0, **kw):
        self.t += dt
        c = make_call(method, path, ts=self.t, status=status, req_json=req_json, json={}, **kw)
        ctx = Context(endpoint=EndpointRef(host=c.request.host, method=method, template=path.split("?")[0]), mode=self.mode)
        if self.mode != "learn":
            self.findings.extend(self.det.score_one(c, ctx))
        self.det.learn_one(c, ctx)
        return c


def benign(s: Stream, rng: random.Random) -> None:
    """Users confirming their reset code: most right at once, some after a typo or two."""
    for u in range(40):
        ip = f"198.51.100.{u + 1}"
        code = f"{rng.randint(0, 9999):04d}"
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            s(RESET, status=400, req_json={"email": f"u{u}@example.com", "code": f"{rng.randint(0, 9999):04d}"}, ip=ip)
        s(RESET, status=200, req_json={"email": f"u{u}@example.com", "code": code}, ip=ip)
        s("/api/search?page=%d&q=shoes" % rng.randint(1, 40), method="GET", status=200, ip=ip)


def test_sixty_guesses_of_a_four_digit_reset_code_all_refused() -> None:
    det = CodeGuessing()
    s = Stream(det)
    rng = random.Random(1)
    benign(s, rng)
    assert s.findings == []
    calls = [s(RESET, status=400, req_json={"email": "victim@example.com", "code": f"{c:04d}"}, ip="203.0.113.50", dt=1.0)
             for c in rng.sample(range(10_000), 60)]
    fs = [f for f in s.findings if f.detector == "credentials.code_guessing"]
    assert fs and fs[0].owasp == "API2:2023" and fs[0].actor == "ip:203.0.113.50"
    flagged = {e for f in fs for e in f.event_ids}
    assert len(flagged & {c.id for c in calls}) >= 45
    assert fs[0].evidence["parameter"] == "code" and fs[0].severity == "high"


def test_a_guess_that_succeeds_is_critical() -> None:
    det = CodeGuessing(min_guesses=10)
    s = Stream(det)
    for c in range(12):
        s(RESET, status=400, req_json={"email": "v@example.com", "code": f"{1000 + c}"}, ip="203.0.113.9")
    s(RESET, status=200, req_json={"email": "v@example.com", "code": "1012"}, ip="203.0.113.9")
    assert any(f.severity == "critical" and f.evidence.get("succeeded") for f in s.findings)


def test_a_client_that_always_fails_codes_while_learning_is_not_news() -> None:
    """Own norm: an integration test client that cycles through wrong codes
    every day (seen in learn mode) does the same in detect mode."""
    det = CodeGuessing()
    learn = Stream(det, mode="learn")
    for c in range(30):
        learn(RESET, status=400, req_json={"code": f"{5000 + c}"}, ip="10.0.0.7")
    detect = Stream(det, mode="detect")
    detect.t = learn.t + 7200
    for c in range(30):
        detect(RESET, status=400, req_json={"code": f"{6000 + c}"}, ip="10.0.0.7")
    assert detect.findings == []
    for c in range(30):
        detect(RESET, status=400, req_json={"code": f"{7000 + c}"}, ip="203.0.113.77")
    assert detect.findings and detect.findings[0].actor == "ip:203.0.113.77"


def test_page_numbers_and_object_ids_are_not_codes() -> None:
    det = CodeGuessing()
    s = Stream(det)
    for p in range(100):
        s(f"/api/items?page={p}", method="GET", status=404, ip="198.51.100.3")
        s("/api/orders", status=404, req_json={"order_id": str(5000 + p)}, ip="198.51.100.3")
    assert s.findings == []
