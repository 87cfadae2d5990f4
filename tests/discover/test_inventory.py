from __future__ import annotations

from apiward.state import codec

from apiward.discover.inventory import Inventory
from apiward.discover.risk import risk_score
from apiward.model.call import Workload
from apiward.model.context import SensitiveHit
from apiward.model.finding import Finding
from apiward.testing import make_call

CONTRACT_KEYS = {"service", "host", "method", "template", "calls", "first_seen", "last_seen", "auth", "owner", "risk", "status", "sensitive"}


def feed(inv: Inventory, call, hits=()) -> bool:
    return inv.observe(call, inv.resolve(call), list(hits))


def test_counts_first_last_seen_and_new_flag() -> None:
    inv = Inventory()
    assert feed(inv, make_call("GET", "/users/1", route="/users/{id}", ts=100.0, user="a"))
    assert not feed(inv, make_call("GET", "/users/2", route="/users/{id}", ts=50.0, user="b"))
    assert not feed(inv, make_call("GET", "/users/3", route="/users/{id}", ts=300.0, user="a"))
    (rec,) = inv.endpoints.values()
    assert rec.template == "/users/{id}" and rec.calls == 3
    assert (rec.first_seen, rec.last_seen) == (50.0, 300.0)
    assert rec.actors == 2
    assert rec.params["path"].params["id"].type == "integer"


def test_auth_posture() -> None:
    inv = Inventory()
    email_hit = SensitiveHit(location="response_body", field="email", cls="email")
    for i in range(5):
        feed(inv, make_call("GET", "/me", route="/me", user="alice", json={"email": "a@example.com"}), [email_hit])
    feed(inv, make_call("GET", "/me", route="/me", json={"email": "b@example.com"}), [email_hit])  # no credentials, 200
    feed(inv, make_call("GET", "/me", route="/me", status=401, json={"error": "no"}))
    feed(inv, make_call("GET", "/health", route="/health", json={"ok": True}))
    me = inv.endpoints[("api.example.com", "GET", "/me")]
    health = inv.endpoints[("api.example.com", "GET", "/health")]
    assert me.auth_schemes == {"bearer": 5}
    assert me.unauth_2xx == 1 and me.unauth_sensitive == 1
    assert health.unauth_2xx == 1 and health.unauth_sensitive == 0
    row = {r["template"]: r for r in inv.rows()}["/me"]
    assert row["auth"]["schemes"] == ["bearer"]
    assert row["auth"]["unauthenticated_2xx"] is True and row["auth"]["unauthenticated_sensitive"] is True


def test_parameters_headers_cookies_and_bodies() -> None:
    inv = Inventory()
    for i in range(10):
        c = make_call(
            "POST", f"/orders?dry_run={'true' if i % 2 else 'false'}", route="/orders", status=201,
            req_json={"sku": "A-1", "qty": i}, json={"id": i},
            headers={"x-tenant": "acme", "accept": "application/json", "cookie": "sessionid=abc; theme=dark"},
        )
        feed(inv, c)
    feed(inv, make_call("POST", "/orders", route="/orders", status=400, req_json={"sku": ""}, json={"error": "bad"}))
    rec = inv.endpoints[("api.example.com", "POST", "/orders")]
    assert set(rec.params["header"].params) == {"x-tenant"}  # plumbing headers are not parameters
    assert set(rec.params["cookie"].params) == {"sessionid", "theme"}
    assert all(str(n.example).startswith("«") for n in rec.params["cookie"].params.values())  # cookie values never kept
    assert rec.params["query"].params["dry_run"].type == "boolean"
    assert set(rec.responses) == {201, 400}
    req = dict(rec.request.fields())
    assert req["qty"].type == "integer" and not req["qty"].required_in(rec.request.root.objs)
    assert req["sku"].required_in(rec.request.root.objs)


def test_sampling_still_learns_new_fields_and_statuses() -> None:
    inv = Inventory(learn_first=5, learn_every=1000)
    for i in range(100):
        feed(inv, make_call("GET", f"/items/{i}", route="/items/{id}", json={"id": i}))
    rec = inv.endpoints[("api.example.com", "GET", "/items/{id}")]
    assert rec.learned < 10
    feed(inv, make_call("GET", "/items/5", route="/items/{id}", json={"id": 5, "secret_flag": True}))
    feed(inv, make_call("GET", "/items/6", route="/items/{id}", status=404, json={"error": "not found"}))
    assert "secret_flag" in dict(rec.responses[200].fields())
    assert 404 in rec.responses


def test_sensitive_list_has_compliance_and_survives_the_state_codec() -> None:
    inv = Inventory()
    hits = [SensitiveHit(location="response_body", field="card.number", cls="credit_card"),
            SensitiveHit(location="response_body", field="email", cls="email")]
    feed(inv, make_call("GET", "/cards/1", route="/cards/{id}", user="a", json={"card": {"number": "4111111111111111"}, "email": "a@b.co"}), hits)
    rows = inv.rows()
    assert CONTRACT_KEYS <= set(rows[0])
    sens = {(s["field"], s["class"]): s["compliance"] for s in rows[0]["sensitive"]}
    assert sens[("card.number", "credit_card")] == ["PCI DSS"]
    assert sens[("email", "email")] == ["GDPR"]
    inv2 = codec.loads(codec.dumps(inv))
    assert inv2.rows() == rows
    # keeps learning after a round trip
    feed(inv2, make_call("GET", "/cards/2", route="/cards/{id}", user="b", json={"card": {"number": "x"}}))
    assert inv2.endpoints[("api.example.com", "GET", "/cards/{id}")].calls == 2


def test_workload_metadata_is_kept() -> None:
    inv = Inventory()
    c = make_call("GET", "/pay/1", route="/pay/{id}")
    c.workload = Workload(namespace="payments", service="pay-svc", route="/pay/{id}",
                          labels={"app.kubernetes.io/name": "pay", "team": "fintech", "pod-template-hash": "abc"})
    feed(inv, c)
    (row,) = inv.rows()
    assert row["service"] == "pay-svc" and row["namespace"] == "payments"
    assert row["owner"] == "fintech" and row["owner_source"] == "label team"
    assert "pod-template-hash" not in row["labels"]


def test_risk_ordering() -> None:
    inv = Inventory()
    card = [SensitiveHit(location="response_body", field="pan", cls="credit_card")]
    email = [SensitiveHit(location="response_body", field="email", cls="email")]
    for i in range(10):
        # card data to anyone, from internet addresses
        feed(inv, make_call("GET", f"/cards/{i}", route="/cards/{id}", ip="8.8.8.8", json={"pan": "4111111111111111"}), card)
        # email, authenticated, internal clients
        feed(inv, make_call("GET", f"/users/{i}", route="/users/{id}", user="u", ip="10.1.1.1", json={"email": "a@b.co"}), email)
        # nothing sensitive, authenticated
        feed(inv, make_call("GET", f"/ping/{i}", route="/ping/{id}", user="u", ip="10.1.1.1", json={"ok": True}))
    risk = {r["template"]: r["risk"] for r in inv.rows()}
    assert risk["/cards/{id}"] > risk["/users/{id}"] > risk["/ping/{id}"]
    assert 0 <= risk["/ping/{id}"] and risk["/cards/{id}"] <= 100
    # findings raise the score
    f = Finding(detector="x.y", title="t", severity="high", host="api.example.com", endpoint="GET /ping/{id}")
    risk2 = {r["template"]: r["risk"] for r in inv.rows(findings=[f])}
    assert risk2["/ping/{id}"] > risk["/ping/{id}"]
    # the score is capped
    s, factors = risk_score(classes=["credit_card"] * 9, sensitive_fields=9, calls=10, unauth_2xx=10, unauth_sensitive=10,
                            auth_seen=False, public_calls=10, findings=["critical"] * 50, status="zombie")
    assert s == 100 and len(factors) >= 4


def test_consolidate_merges_literals_the_templater_later_templated() -> None:
    inv = Inventory()
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar"]
    for n in names:
        for _ in range(3):
            feed(inv, make_call("GET", f"/repos/{n}/issues", json={"n": 1}))
    before = sum(r.calls for r in inv.endpoints.values())
    inv.consolidate()
    templates = {k[2] for k in inv.endpoints}
    assert all("alice" not in t for t in templates)
    assert sum(r.calls for r in inv.endpoints.values()) == before == 36


def test_refs_without_parameters_are_shared_and_equal() -> None:
    inv = Inventory()
    a = inv.resolve(make_call("GET", "/health", json={"ok": True}))
    b = inv.resolve(make_call("GET", "/health", json={"ok": True}))
    assert a is b and a.template == "/health" and a.path_params == () and a.service == "api.example.com"
    r1 = inv.resolve(make_call("GET", "/users/17", route="/users/{id}"))
    r2 = inv.resolve(make_call("GET", "/users/18", route="/users/{id}"))
    assert r1.path_params == (("id", "17"),) and r2.path_params == (("id", "18"),)
    other = inv.resolve(make_call("GET", "/health", host="api.example.com:8443", json={"ok": True}))
    assert other.host == "api.example.com:8443" and other.service == "api.example.com" and other is not a
    inv2 = codec.loads(codec.dumps(inv))
    assert inv2.resolve(make_call("GET", "/health", json={"ok": True})) == a


def test_sampled_out_calls_still_learn_new_top_level_fields() -> None:
    """Past ``learn_first``, a call is learned when it brings a status or a
    top-level body field never seen; a non-JSON body brings none."""
    inv = Inventory(learn_first=2, learn_every=1000)
    for i in range(5):
        feed(inv, make_call("POST", "/orders", req_json={"sku": "a"}, json={"id": i, "state": "new"}, status=201, ts=float(i)))
    (rec,) = inv.endpoints.values()
    assert rec.learned == 2
    feed(inv, make_call("POST", "/orders", req_json={"sku": "a", "coupon": "X"}, json={"id": 9, "state": "new"}, status=201, ts=9.0))
    assert rec.learned == 3 and "coupon" in rec.request.root.props
    feed(inv, make_call("POST", "/orders", req_json={"sku": "a"}, json={"id": 9, "state": "new", "eta": 3}, status=201, ts=10.0))
    assert rec.learned == 4 and "eta" in rec.responses[201].root.props
    feed(inv, make_call("POST", "/orders", req_body=b"sku=a&extra=1", headers={"content-type": "application/x-www-form-urlencoded"},
                        json={"id": 9, "state": "new"}, status=201, ts=11.0))
    assert rec.learned == 4
    feed(inv, make_call("POST", "/orders", req_json={"sku": "a"}, json={"error": "x", "code": 1}, status=409, ts=12.0))
    assert rec.learned == 5 and 409 in rec.responses


# -- probes, splits and template moves ------------------------------------------------


def test_404_only_paths_are_probes_not_endpoints_and_do_not_reshape_templates() -> None:
    import random

    rng = random.Random(1)
    inv = Inventory()
    for _ in range(30):
        feed(inv, make_call("GET", f"/users/{rng.randint(1, 10**6)}", ts=100.0))
    before = inv.templater.templates()
    scanner = ["/admin", "/.env", "/wp-login.php", "/backup.zip", "/phpmyadmin", "/server-status", "/config.json",
               "/api/v1/debug", "/actuator/env", "/.git/config"]
    for i, p in enumerate(scanner * 3):
        feed(inv, make_call("GET", p, status=404, ts=200.0 + i, ip="198.51.100.9"))
    # words one after another under /users (that would merge as values if learned from)
    for w in ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]:
        feed(inv, make_call("GET", f"/users/{w}/secret", status=404, ts=300.0, ip="198.51.100.9"))
    feed(inv, make_call("DELETE", "/users/5", status=405, ts=301.0, ip="198.51.100.9"))
    # never answered: a response object with status 0 (upstream failed)
    feed(inv, make_call("GET", "/internal/metrics", status=0, ts=302.0, ip="198.51.100.9"))
    assert inv.templater.templates() == before  # nothing learned from probes
    assert {r["template"] for r in inv.rows()} == {"/users/{userId}"}
    rows = {(r["method"], r["path"]): r for r in inv.probe_rows()}
    assert rows[("GET", "/.env")]["calls"] == 3 and rows[("GET", "/.env")]["statuses"] == {"404": 3}
    assert len(rows[("GET", "/.env")]["actors"]) == 1 and "198.51.100.9" in rows[("GET", "/.env")]["actors"][0]
    assert rows[("GET", "/.env")]["first_seen"] and rows[("GET", "/.env")]["last_seen"]
    assert ("DELETE", "/users/5") in rows and ("GET", "/internal/metrics") in rows
    assert len(rows) == len(scanner) + 8 + 2
    # a 404 on a served endpoint's template counts on that endpoint, not as a probe
    feed(inv, make_call("GET", "/users/999999", status=404, ts=400.0))
    rec = inv.endpoints[("api.example.com", "GET", "/users/{userId}")]
    assert rec.statuses.get(404) == 1
    assert ("GET", "/users/999999") not in {(r["method"], r["path"]) for r in inv.probe_rows()}


def test_request_only_calls_are_served() -> None:
    inv = Inventory()
    feed(inv, make_call("GET", "/tienda1/index.jsp", status=None))
    assert [r["template"] for r in inv.rows()] == ["/tienda1/index.jsp"]
    assert inv.probe_rows() == []


def test_a_probe_path_served_later_becomes_an_endpoint_with_its_calls() -> None:
    inv = Inventory()
    for i in range(3):
        feed(inv, make_call("GET", "/reports/today", status=404, ts=10.0 + i))
    assert inv.rows() == [] and len(inv.probe_rows()) == 1
    feed(inv, make_call("GET", "/reports/today", status=200, ts=20.0))
    (row,) = inv.rows()
    assert row["template"] == "/reports/today" and row["calls"] == 4
    assert row["statuses"] == {"200": 1, "404": 3}
    assert inv.probe_rows() == []


def test_split_merge_carries_each_records_calls_to_its_side_and_queues_moves() -> None:
    inv = Inventory()
    names = ["zarauz.jpg", "ogono.jpg", "castro.jpg"]
    for n in names:  # one call each: looks like values
        feed(inv, make_call("GET", f"/shop/photos/{n}", ts=1.0))
    inv.templater.templates()  # decide now
    inv.drain_changes()
    merged = {r["template"] for r in inv.rows()}
    assert any("{" in t for t in merged), merged
    inv.drain_moves()
    for i in range(60):  # then each called again and again, no new name: a fixed set
        for j, n in enumerate(names):
            feed(inv, make_call("GET", f"/shop/photos/{n}", ts=10.0 + i))
            if j == 0:
                feed(inv, make_call("GET", f"/shop/photos/{n}", ts=10.0 + i))
    inv.drain_changes()
    rows = {r["template"]: r for r in inv.rows()}
    assert set(rows) == {f"/shop/photos/{n}" for n in names}, set(rows)
    assert rows["/shop/photos/zarauz.jpg"]["calls"] == 121  # its own calls, not the others'
    assert rows["/shop/photos/ogono.jpg"]["calls"] == 61
    assert sum(r["calls"] for r in rows.values()) == 3 + 60 * 4
    moves = inv.drain_moves()
    assert {m[3] for m in moves} >= {f"/shop/photos/{n}" for n in names} - {next(iter(merged))}
    assert all(m[0] == "api.example.com" and m[1] == "GET" and "{" in m[2] for m in moves)
    assert inv.drain_moves() == []


def test_frozen_detect_mode_learns_nothing() -> None:
    inv = Inventory()
    for i in range(5):
        c = make_call("GET", f"/orders/{1000 + i}", ts=float(i))
        inv.observe(c, inv.resolve(c), [])
    before_templates = inv.templater.templates()
    before = {k: r.calls for k, r in inv.endpoints.items()}
    for w in ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"] * 3:
        c = make_call("GET", f"/orders/{w}/items", ts=50.0)
        ref = inv.resolve(c, learn=False)
        assert inv.observe(c, ref, [], learn=False) is True  # unknown endpoint, reported, not added
    c = make_call("GET", "/orders/77", status=404, ts=60.0)
    assert inv.resolve(c, learn=False).template == "/orders/{orderId}"
    assert not inv.observe(c, inv.resolve(c, learn=False), [], learn=False)
    assert inv.templater.templates() == before_templates
    assert {k: r.calls for k, r in inv.endpoints.items()} == before
    assert inv.probe_rows() == []


def test_probes_and_moves_survive_pickling() -> None:
    inv = Inventory()
    feed(inv, make_call("GET", "/.env", status=404))
    inv._moved("h", "GET", "/a/b", "/a/{a}")
    inv2 = codec.loads(codec.dumps(inv))
    assert inv2.probe_rows() == inv.probe_rows()
    assert inv2.drain_moves() == [("h", "GET", "/a/b", "/a/{a}")]


def test_demote_moves_what_only_a_named_attacker_reached_to_the_probes() -> None:
    inv = Inventory()
    for i in range(3):
        feed(inv, make_call("GET", "/v1/items", ts=100.0 + i, user=f"u{i}"))
    for p in ("/actuator", "/admin/login", "/.env"):  # a scan answered with redirects
        feed(inv, make_call("GET", p, status=307, ts=200.0, ip="203.0.113.9"))
    feed(inv, make_call("GET", "/debug/vars", status=200, ts=201.0, ip="203.0.113.9", json={"secret": 1}))  # served: stays
    assert inv.demote("ip:203.0.113.9") == 3
    templates = {k[2] for k in inv.endpoints}
    assert templates == {"/v1/items", "/debug/vars"}
    probes = {r["path"]: r for r in inv.probe_rows()}
    assert set(probes) == {"/actuator", "/admin/login", "/.env"} and probes["/.env"]["statuses"] == {"307": 1}
    assert inv.demote("user:u1") == 0  # others reached /v1/items


def test_a_method_served_to_a_flagged_caller_on_a_learned_template_is_listed_but_teaches_nothing() -> None:
    inv = Inventory()
    for i, u in enumerate(("10001", "10002", "10003", "10004")):
        feed(inv, make_call("GET", f"/v1/accounts/{u}", ts=100.0 + i, user=f"u{i}", json={"id": u, "name": "x"}))
    attack = make_call("PATCH", "/v1/accounts/10001", ts=200.0, user="eve", req_json={"data": {"role": "admin"}}, json={"id": "10001"})
    ref = inv.resolve(attack, learn=False)
    assert ref.template != "/v1/accounts/10001" and ref.path_params
    inv.note_probe(attack, ref)
    rec = inv.endpoints[(ref.host, "PATCH", ref.template)]
    assert rec.calls == 1 and rec.statuses == {200: 1}
    assert not rec.params and not rec.actors  # nothing of the attacker's call learned
    # a refused attempt is still a probe, and a literal path never served is not listed
    denied = make_call("DELETE", "/v1/accounts/10002", status=403, ts=201.0, user="eve")
    inv.note_probe(denied, inv.resolve(denied, learn=False))
    assert (ref.host, "DELETE", ref.template) not in inv.endpoints
    odd = make_call("GET", "/v1/secret-dump", ts=202.0, user="eve", json={"a": 1, "b": 2})
    inv.note_probe(odd, inv.resolve(odd, learn=False))
    assert all(k[2] != "/v1/secret-dump" for k in inv.endpoints)
