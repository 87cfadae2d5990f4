"""The zoo's scoring (no application needed): route matching and the figures."""

from __future__ import annotations

from apiward.sim.zoo.harness import AppRun, Attack, Sent, ZooActor
from apiward.sim.zoo.score import RouteTable, normalise, score_run


def test_route_table_prefers_literals_and_drops_parameter_names():
    rt = RouteTable([("GET", "/{project}"), ("GET", "/health"), ("GET", "/simple/{project}/"), ("GET", "/{project}/json")])
    assert rt.match("GET", "/health") == "/health"
    assert rt.match("GET", "/numpy") == "/{}"
    assert rt.match("GET", "/simple/numpy/") == "/simple/{}"
    assert rt.match("GET", "/numpy/json") == "/{}/json"
    assert rt.match("POST", "/numpy") is None and rt.match("GET", "/a/b/c") is None
    assert normalise("/b/{bucket_id}/c/{id}.ics/") == "/b/{}/c/{}.ics"


def test_score_counts_caught_attacks_accused_benign_and_template_f1():
    alice = ZooActor("alice", "127.0.0.11", True, "alice")
    bob = ZooActor("bob", "127.0.0.12", True, "bob")
    eve = ZooActor("eve", "127.0.0.13", False, "eve")
    run = AppRun(
        app="t", routes=[("GET", "/items/{id}"), ("GET", "/items")],
        sent=[Sent("alice", "GET", "/items", 200), Sent("alice", "GET", "/items/1", 200), Sent("eve", "GET", "/nope", 404),
              Sent("eve", "GET", "/items/.env", 401)],  # refused: matches a route, serves nothing
        actors=[alice, bob, eve], attacks=[Attack("a1", "bola_read", "API1", eve), Attack("a2", "bfla", "API5", eve)],
        findings=[{"actor": "user:eve", "owasp": "API1:2023", "detector": "bola.cross_owner_access"},
                  {"actor": "user:bob", "owasp": "API4:2023", "detector": "abuse.resource", "summary": "x"}],
        inventory=[{"method": "GET", "template": "/items"}, {"method": "GET", "template": "/items/{itemId}"},
                   {"method": "GET", "template": "/items/special"}],
    )
    s = score_run(run)
    assert [a["caught"] for a in s.attacks] == [True, False] and s.attacks[1]["found"] == ["API1"]
    assert [b["actor"] for b in s.benign_accused] == ["bob"]
    assert s.expected_templates == ["GET /items", "GET /items/{}"] and s.extra_templates == ["GET /items/special"]
    assert round(s.precision, 3) == 0.667 and s.recall == 1.0 and round(s.f1, 3) == 0.8
