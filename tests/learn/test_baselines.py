from __future__ import annotations

from apiward.state import codec

import pytest

from apiward.learn.baselines import Baselines
from apiward.learn.parameters import call_params
from apiward.learn.sketches import key_hash
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

EP = EndpointRef(host="api.example.com", method="GET", template="/items/{itemId}")


def _ref(item: str) -> EndpointRef:
    return EndpointRef(host=EP.host, method="GET", template=EP.template, path_params=(("itemId", item),))


def _learn(b: Baselines, n: int = 200) -> None:
    for i in range(n):
        c = make_call("GET", f"/items/{i}?sort={'asc' if i % 2 else 'desc'}&q=shoes{i % 5}", user=f"u{i % 20}", ts=1_764_000_000 + i * 10, status=200 if i % 10 else 404)
        b.learn_one(c, Context(endpoint=_ref(str(i))))


def test_constructor_without_args_and_bad_limits() -> None:
    Baselines()
    with pytest.raises(ValueError):
        Baselines(max_actors=0)


def test_endpoint_param_and_actor_stats() -> None:
    b = Baselines()
    _learn(b)
    ep = b.endpoint_stats(EP.key)
    assert ep is not None and ep.calls == 200 and len(ep.actors) == 20
    assert ep.status.get(404) == 20 and abs(ep.error_ratio() - 0.1) < 1e-9
    assert ep.known_param("query", "sort") and ep.known_param("path", "itemId")
    prof = b.param_profile(EP.key, "query", "sort")
    # Exact for its first sample_after values, an unbiased estimate after
    # (normal values are sampled and weighted).
    assert prof is not None and 190 <= prof.n <= 210
    a = b.actor_stats("user:u3")
    assert a is not None and a.calls == 10 and a.errors_4xx == 0 + sum(1 for i in range(200) if i % 20 == 3 and i % 10 == 0)
    assert len(a.objects) == 10  # item ids touched
    assert a.to_dict()["calls"] == 10
    assert b.host_stats(EP.host).endpoints == 1  # type: ignore[union-attr]
    assert b.endpoint_stats("nope") is None and b.actor_stats("nope") is None


def test_score_params_flags_deviations_and_unseen_parameters() -> None:
    b = Baselines()
    _learn(b)
    ok = make_call("GET", "/items/7?sort=asc&q=shoes3", user="u1")
    assert b.score_params(ok, Context(endpoint=_ref("7"))) == []
    bad = make_call("GET", "/items/7?sort=asc'--&q=shoes3&debug=1", user="u1")
    scored = {(loc, name): (s, why) for loc, name, _, s, why in b.score_params(bad, Context(endpoint=_ref("7")))}
    assert scored[("query", "sort")][0] >= 0.8
    assert scored[("query", "debug")][1] == ["unseen parameter"]


def test_unknown_or_young_endpoint_is_not_judged() -> None:
    b = Baselines()
    c = make_call("GET", "/items/1?sort=<script>")
    assert b.score_params(c, Context(endpoint=_ref("1"))) == []


def test_bounded_actors_and_endpoints() -> None:
    b = Baselines(max_actors=50, max_endpoints=10)
    for i in range(500):
        ref = EndpointRef(host="h", method="GET", template=f"/p{i % 30}")
        b.learn_one(make_call("GET", f"/p{i % 30}", user=f"user{i}"), Context(endpoint=ref))
    assert len(b.actors) == 50 and len(b.endpoints) == 10
    assert b.actors.evicted == 450


def test_sampling_keeps_new_parameters() -> None:
    b = Baselines(sample_after=10, sample_every=5)
    ref = EndpointRef(host="h", method="GET", template="/s")

    def call(query: str, user: str, scored: bool = True) -> None:
        c, ctx = make_call("GET", f"/s?{query}", user=user), Context(endpoint=ref)
        if scored:  # the pipeline's order: detectors score, then baselines learn
            b.score_params(c, ctx, min_calls=5)
        b.learn_one(c, ctx)

    for i in range(100):
        call(f"a={i % 3}", f"u{i % 4}")
    prof = b.param_profile(ref.key, "query", "a")
    assert prof is not None
    # Normal values are learned from one call in 5, counted 5 times: the
    # counts stay estimates of every call's.
    assert 95 <= prof.n <= 105 and prof.length.n == prof.n
    counts = {v: prof.values.items[key_hash(v)] for v in "012"}
    before = {v: f.n for v, f in counts.items()}
    for i in range(100, 110):  # calls 101..110: sampled are 105 (a=2) and 110 (a=1)
        call(f"a={i % 3}", f"u{i % 4}")
    assert {v: f.n - before[v] for v, f in counts.items()} == {"0": 0, "1": 5, "2": 5}
    # Unscored calls (learn-only mode, or no detector asked) learn exactly
    # what scored ones do: learning never depends on which detectors ran.
    before = {v: f.n for v, f in counts.items()}
    for i in range(110, 120):  # calls 111..120: sampled are 115 (a=0) and 120 (a=2)
        call(f"a={i % 3}", f"u{i % 4}", scored=False)
    assert {v: f.n - before[v] for v, f in counts.items()} == {"0": 5, "1": 0, "2": 5}
    # A value that is not normal is learned at once, sampled call or not,
    # scored or not (calls 121, 122).
    n = prof.n
    call("a=x-y", "u1")
    assert "-" in prof.chars.items and prof.n == n + 1
    call("a=x;y", "u1", scored=False)
    assert ";" in prof.chars.items and prof.n == n + 2
    call("a=1&brand_new=x", "u2", scored=False)
    assert b.param_profile(ref.key, "query", "brand_new") is not None


def test_learning_does_not_depend_on_scoring() -> None:
    """The same stream learned with and without scoring leaves the same profiles."""
    import random

    rng = random.Random(3)
    stream = [(f"a={rng.choice(['1', '2', '3', 'x-y', 'O Neil', str(rng.randint(1, 999))])}&b={rng.randint(1, 50)}", f"u{rng.randint(0, 9)}")
              for _ in range(400)]
    ref = EndpointRef(host="h", method="GET", template="/s")
    learned = []
    for scored in (True, False):
        b = Baselines(sample_after=50, sample_every=4)
        for q, u in stream:
            c, ctx = make_call("GET", f"/s?{q}", user=u), Context(endpoint=ref)
            if scored:
                b.score_params(c, ctx, min_calls=30)
            b.learn_one(c, ctx)
        learned.append({k: p.to_dict() for k, p in b.endpoint_stats(ref.key).params.items()})
    assert learned[0] == learned[1]


def test_json_bodies_flatten_recursively() -> None:
    c = make_call("POST", "/o", req_json={"user": {"name": "a", "tags": ["x", "y"]}, "n": 3, "ok": True}, headers={"referer": "https://x.example/"})
    names = {(loc, name) for loc, name, _ in call_params(c)}
    assert {("body", "user.name"), ("body", "user.tags[]"), ("body", "n"), ("body", "ok"), ("header", "referer")} <= names


def test_state_codec_round_trip_answers_the_same() -> None:
    b = Baselines()
    _learn(b)
    back = codec.loads(codec.dumps(b))
    bad = make_call("GET", "/items/7?sort=<x>&q=shoes3", user="u1")
    assert back.score_params(bad, Context(endpoint=_ref("7"))) == b.score_params(bad, Context(endpoint=_ref("7")))
    assert back.actor_stats("user:u3").calls == 10  # type: ignore[union-attr]


def test_learning_does_not_mutate_the_call() -> None:
    b = Baselines()
    c = make_call("GET", "/items/1?sort=asc", user="u1")
    before = (c.request.query, c.request.path, c.actor.key, c.status)
    b.learn_one(c, Context(endpoint=_ref("1")))
    assert (c.request.query, c.request.path, c.actor.key, c.status) == before
