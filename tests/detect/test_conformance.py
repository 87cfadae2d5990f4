"""The conformance suite: every registered detector, the same promises.

Deterministic; state survives a round trip through the state store's codec (no pickle); tolerates missing fields
and odd input; never mutates the event; scoring before any learning is safe;
class metadata complete; findings well-formed.
"""

from __future__ import annotations

import copy
from apiward.state import codec
from apiward.state.parts import restore, state_of
import re
from pathlib import Path

import msgspec
import pytest

from apiward.detect.registry import detector_class, detector_ids
from apiward.model.call import ApiCall, dumps
from apiward.model.finding import SEVERITIES
from apiward.pipeline import Pipeline
from apiward.testing import make_call

IDS = detector_ids()


def stream() -> list[ApiCall]:
    """A small mixed stream: benign sessions, attacks, and odd input."""
    calls: list[ApiCall] = []
    t = 1_764_000_000.0

    def add(*a, **k):
        nonlocal t
        t += 1.5
        calls.append(make_call(*a, ts=t, id=f"c#{len(calls)}", **k))

    for i in range(30):
        u = f"user{i % 6}"
        add("POST", "/api/v2/login", req_json={"username": u, "password": "pw"}, json={"token": "t"}, user="", ip=f"198.51.100.{i % 6}")
        add("GET", f"/api/v2/orders/{100 + i % 6}", json={"id": 100 + i % 6, "owner": u, "email": f"{u}@example.com"}, user=u)
        add("GET", "/api/v2/products?page=1&limit=20", json={"items": [{"id": 1, "name": "pen"}]}, user=u)
        add("PATCH", "/api/v2/users/me", req_json={"nickname": f"n{i}"}, json={"id": i % 6, "nickname": f"n{i}", "role": "user"}, user=u)
    # attacks
    for i in range(25):
        add("GET", f"/api/v2/orders/{200 + i}", json={"id": 200 + i, "owner": "someone"}, user="mallory", ip="203.0.113.66")
        add("POST", "/api/v2/login", req_json={"username": f"victim{i}", "password": "123456"}, status=401, json={"error": "bad"}, ip="203.0.113.99")
        add("GET", f"/.env{i}", status=404, ip="203.0.113.77", user_agent="sqlmap/1.7")
    add("PATCH", "/api/v2/users/me", req_json={"role": "admin", "is_admin": True}, json={"role": "admin", "is_admin": True}, user="mallory")
    add("GET", "/api/v2/search?q=1' OR '1'='1", json=[], user="mallory")
    # odd input
    add("GET", "", status=None)  # no response at all
    add("POST", "/upload", req_body=b"\x00\x01\xff" * 100, headers={"content-type": "application/octet-stream"}, status=500)
    add("PUT", "/api/v2/x", req_body=b"[1, 2, {\"a\": null}]", headers={"content-type": "application/json"}, json=[None, 1.5, "s"])
    add("POST", "/api/v2/x", req_body=b"{not json", headers={"content-type": "application/json"}, body=b"\xff\xfe", status=200)
    add("GET", "/api/v2/" + "a" * 5000, json={"deep": [[[[{"x": 1}]]]]})
    add("DELETE", "/api/v2/orders/1?x=%00%ZZ&&=", status=204)
    return calls


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory):
    calls = stream()
    pipe = Pipeline(tmp_path_factory.mktemp("conf"), detectors=[])
    ctxs = pipe.discover(calls)
    return calls, ctxs


def run(det, calls, ctxs, *, learn: bool = True):
    """Score then learn over the stream, as one pipeline run would: fresh
    per-call facts and one store of shared learners for this run."""
    out = []
    shared: dict = {}
    for c, x in zip(calls, ctxs):
        x = msgspec.structs.replace(x, facts=None, shared=shared)
        for f in det.score_one(c, x):
            out.append((f.id, tuple(f.event_ids), f.severity, f.summary))
        if learn:
            det.learn_one(c, x)
    return out


def test_registry_is_not_empty() -> None:
    assert len(IDS) >= 1


@pytest.mark.parametrize("det_id", IDS)
def test_metadata(det_id: str) -> None:
    cls = detector_class(det_id)
    assert cls.id == det_id
    assert re.fullmatch(r"[a-z_]+\.[a-z_]+", det_id), "ids are area.thing"
    assert cls.title and cls.severity in SEVERITIES
    assert re.fullmatch(r"API([1-9]|10):2023", cls.owasp), cls.owasp
    assert re.fullmatch(r"T\d{4}(\.\d{3})?", cls.attack), cls.attack
    assert cls.tactic and re.fullmatch(r"CWE-\d+", cls.cwe), cls.cwe
    assert (cls.__doc__ or "").strip() or (cls.__module__ and __import__(cls.__module__, fromlist=["x"]).__doc__)


@pytest.mark.parametrize("det_id", IDS)
def test_deterministic(det_id: str, contexts) -> None:
    calls, ctxs = contexts
    a = run(detector_class(det_id)(), calls, ctxs)
    b = run(detector_class(det_id)(), calls, ctxs)
    assert a == b


@pytest.mark.parametrize("det_id", IDS)
def test_state_survives_the_store_codec(det_id: str, contexts) -> None:
    calls, ctxs = contexts
    half = len(calls) // 2
    straight = detector_class(det_id)()
    expected = run(straight, calls, ctxs)
    det = detector_class(det_id)()
    first = run(det, calls[:half], ctxs[:half])
    saved = codec.dumps(state_of(det))  # what a checkpoint stores: msgpack of apiward classes, no pickle
    det = restore(detector_class(det_id)(), codec.loads(saved))
    assert first + run(det, calls[half:], ctxs[half:]) == expected


@pytest.mark.parametrize("det_id", IDS)
def test_never_mutates_events(det_id: str, contexts) -> None:
    calls, ctxs = contexts
    before = [dumps(c) for c in calls]
    before_ctx = [copy.deepcopy((x.endpoint, x.sensitive)) for x in ctxs]
    run(detector_class(det_id)(), calls, ctxs)
    assert [dumps(c) for c in calls] == before
    assert [(x.endpoint, x.sensitive) for x in ctxs] == before_ctx


@pytest.mark.parametrize("det_id", IDS)
def test_scoring_before_learning_is_safe(det_id: str, contexts) -> None:
    calls, ctxs = contexts
    run(detector_class(det_id)(), calls, ctxs, learn=False)


@pytest.mark.parametrize("det_id", IDS)
def test_findings_are_well_formed(det_id: str, contexts) -> None:
    calls, ctxs = contexts
    det = detector_class(det_id)()
    ids = {c.id for c in calls}
    for c, x in zip(calls, ctxs):
        for f in det.score_one(c, x):
            assert f.detector == det_id and f.id.startswith("F-")
            assert f.event_ids and set(f.event_ids) <= ids
            assert c.id in f.event_ids, "a finding includes the event that raised it"
            assert f.summary and f.severity in SEVERITIES and 0 <= f.confidence <= 1
            assert f.first_seen <= f.last_seen
        det.learn_one(c, x)


@pytest.mark.parametrize("det_id", IDS)
def test_runs_inside_the_pipeline_and_persists(det_id: str, tmp_path: Path) -> None:
    """Saved in the state store and restored by id, a detector judges what
    comes next exactly as the one that never stopped."""
    calls = stream()
    half = len(calls) // 2
    pipe = Pipeline(tmp_path / "s", detectors=[detector_class(det_id)()])
    pipe.process(calls[:half])
    pipe.checkpoint()
    again = Pipeline(tmp_path / "s", detectors=[detector_class(det_id)()])
    assert type(again.detectors[0]).id == det_id
    a = [(f.id, tuple(f.event_ids)) for f in pipe.process(calls[half:], batch_key="b2")]
    b = [(f.id, tuple(f.event_ids)) for f in again.process(calls[half:], batch_key="b2")]
    assert a == b
