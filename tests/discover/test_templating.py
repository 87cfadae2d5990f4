"""Endpoint templating: each known failure mode of threshold-based tools."""

from __future__ import annotations

from apiward.state import codec
import random
import string
import sys

from apiward.discover.templating import Templater, segment_shape, singular


def learn(paths: list[str], method: str = "GET", t: Templater | None = None, **kw) -> Templater:
    t = t or Templater(**kw)
    for p in paths:
        t.observe(method, "api.test", p)
    return t


def tmpl(t: Templater, path: str, method: str = "GET") -> str:
    return t.resolve(method, "api.test", path)[0]


def test_ids_get_names_from_parent():
    t = learn(["/users/8812/orders/5", "/users/17/orders/9", "/categories/4"])
    assert t.resolve("GET", "api.test", "/users/8812/orders/5") == (
        "/users/{userId}/orders/{orderId}", (("userId", "8812"), ("orderId", "5")))
    assert tmpl(t, "/categories/77") == "/categories/{categoryId}"
    assert tmpl(t, "/users/3/orders/4/items/9") == "/users/{userId}/orders/{orderId}/items/{itemId}"


def test_resource_names_stay_literal_beside_ids():
    ids = [f"/users/{random.Random(i).randint(1, 10**6)}" for i in range(50)]
    t = learn(ids + ["/users/me", "/users/search", "/users/export", "/orders/export", "/orders/12"] * 3)
    assert tmpl(t, "/users/me") == "/users/me"
    assert tmpl(t, "/users/search") == "/users/search"
    assert tmpl(t, "/orders/export") == "/orders/export"
    assert tmpl(t, "/users/991") == "/users/{userId}"
    got = {x[2] for x in t.templates()}
    assert {"/users/me", "/users/search", "/users/export", "/users/{userId}"} <= got


def test_api_versions_are_literal():
    t = learn(["/api/v1/items/3", "/api/v2/items/4", "/api/v2beta1/items/5", "/2023-01-01/items/6", "/v3/items"])
    assert tmpl(t, "/api/v1/items/3") == "/api/v1/items/{itemId}"
    assert tmpl(t, "/api/v2/items/9") == "/api/v2/items/{itemId}"
    assert tmpl(t, "/api/v2beta1/items/5") == "/api/v2beta1/items/{itemId}"
    assert tmpl(t, "/2023-01-01/items/6") == "/2023-01-01/items/{itemId}"
    assert tmpl(t, "/v3/items") == "/v3/items"


def test_strong_shapes_merge_on_sight():
    cases = {
        "/commits/3f786850e387550fdab836ed7e6dc881de23001b": "/commits/{commitId}",
        "/orders/ord_8f3k2": "/orders/{orderId}",
        "/tickets/A-12345": "/tickets/{ticketId}",
        "/members/jane.doe@example.com": "/members/{memberEmail}",
        "/reports/daily/2024-03-05": "/reports/daily/{param1}",
        "/things/3fa85f64-5717-4562-b3fc-2c963f66afa6": "/things/{thingId}",
        "/posts/how-to-train-your-dragon": "/posts/{post}",
    }
    t = learn(list(cases))
    for path, want in cases.items():
        got = tmpl(t, path)
        assert got.split("{")[0] == want.split("{")[0] and "{" in got, (path, got)
    assert tmpl(t, "/orders/ord_8f3k2") == "/orders/{orderId}"
    assert tmpl(t, "/posts/why-cats-sleep-all-day") == "/posts/{post}"


def test_dates_and_emails_are_params_with_sensible_names():
    t = learn(["/reports/2024-03-05", "/reports/2024-03-06", "/members/a@x.io/roles"])
    assert tmpl(t, "/reports/2024-04-01") == "/reports/{reportDate}"
    assert tmpl(t, "/members/b@y.org/roles") == "/members/{memberEmail}/roles"


def test_slugs_and_usernames_merge_on_sibling_structure():
    names = ["alice", "bob", "carol", "dave"]
    repos = ["linux", "react", "django", "flask"]
    t = learn([f"/repos/{o}/{r}/issues" for o, r in zip(names, repos)] + [f"/repos/{o}/{r}/pulls" for o, r in zip(names, repos)])
    assert tmpl(t, "/repos/erin/things/issues") == "/repos/{repo}/{param2}/issues"
    t2 = learn([f"/blog/posts/{s}" for s in ("spring-sale-ends", "new-office", "hello-world")])
    assert tmpl(t2, "/blog/posts/another-post") == "/blog/posts/{post}"


def test_resource_collections_do_not_merge_at_root_or_after_version():
    paths = []
    for coll in ("payments", "refunds", "invoices", "customers", "products"):
        for i in range(3):
            paths += [f"/v1/{coll}", f"/v1/{coll}/{i * 7 + 1}", f"/v1/{coll}/{i * 7 + 1}/history"]
            paths += [f"/{coll}", f"/{coll}/{i}/history"]
    t = learn(paths)
    got = {x[2] for x in t.templates()}
    assert "/v1/payments/{paymentId}/history" in got
    assert "/v1/refunds/{refundId}" in got
    assert not any(g.startswith("/v1/{") or g.startswith("/{") for g in got), got


def test_literal_resource_names_under_api_stay_literal():
    words = ["articles", "blog", "glossary", "questions", "states", "topics", "health", "status"]
    t = learn([f"/api/{w}.json" for w in words] * 5)
    assert {x[2] for x in t.templates()} == {f"/api/{w}.json" for w in words}


def test_file_extension_and_custom_method_suffix():
    t = learn([f"/mostviewed/arts/{d}.json" for d in (1, 7, 30)] + ["/keys/k1:decrypt"])
    assert tmpl(t, "/mostviewed/arts/7.json") == "/mostviewed/arts/{artId}.json"
    t2 = learn([f"/v1/keys/{x}:decrypt" for x in ("8f3k2a9", "77aa01b2c3")])
    assert tmpl(t2, "/v1/keys/ffee0011aa:decrypt") == "/v1/keys/{keyId}:decrypt"


def test_routes_win_over_learning():
    t = Templater()
    t.add_routes(["/users/{username}", "/users/:id/orders/<int:order>"])
    learn(["/users/8812", "/users/alice"], t=t)
    assert t.resolve("GET", "any", "/users/8812") == ("/users/{username}", (("username", "8812"),))
    assert t.resolve("GET", "any", "/users/8/orders/5")[1] == (("id", "8"), ("order", "5"))
    # a call's own route wins too
    assert t.resolve("GET", "h", "/x/5", route="/x/{n}") == ("/x/{n}", (("n", "5"),))


def test_overrides_and_never_merge():
    t = learn(["/files/a/b/c.txt", "/items/123", "/items/456", "/codes/2fa", "/codes/777"],
              overrides={"/files/*": "/files/{path}"}, never_merge=["777"])
    assert tmpl(t, "/files/x.txt") == "/files/{path}"
    assert tmpl(t, "/codes/777") == "/codes/777"
    assert tmpl(t, "/items/9") == "/items/{itemId}"


def test_explain_lists_every_merge_with_evidence():
    t = learn([f"/users/{n}/repos" for n in ("alice", "bob", "carol", "dave")] + ["/users/42", "/users/43/repos"])
    ex = t.explain()
    by_rule = {e["rule"].split("+")[0] for e in ex}
    assert "sibling-structure" in by_rule or "shape" in by_rule
    e = next(e for e in ex if e["template"].startswith("/users/{user"))
    assert e["position"] == 1
    assert e["cardinality"] >= 3
    assert set(e["shapes"]) >= {"word", "int"}
    assert e["evidence"]["parent"] == "users" and e["evidence"]["shape"] == "int"
    for e in ex:
        assert {"template", "position", "shapes", "cardinality", "rule", "evidence", "sample"} <= set(e)


def test_state_codec_round_trip_keeps_behaviour():
    t = learn(["/users/8812/orders/5", "/repos/alice/x/issues", "/repos/bob/y/issues", "/repos/carol/z/issues"])
    t.resolve("GET", "api.test", "/users/1/orders/2")
    t2 = codec.loads(codec.dumps(t))
    for p in ("/users/1/orders/2", "/repos/dave/w/issues", "/users/me"):
        assert t2.resolve("GET", "api.test", p) == t.resolve("GET", "api.test", p)
    assert t2.templates() == t.templates()


def test_memory_bounded_under_100k_distinct_values():
    rng = random.Random(1)
    t = Templater()
    for i in range(100_000):
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(7))
        t.observe("GET", "h", f"/profiles/{word}/avatar")
        t.observe("GET", "h", f"/objects/{i}")
        if i % 97 == 0:
            t.resolve("GET", "h", f"/profiles/{word}/avatar")
    size = len(codec.dumps(t))
    assert size < 200_000, size
    assert {x[2] for x in t.templates()} == {"/profiles/{profile}/avatar", "/objects/{objectId}"}
    assert len(t._cache) <= t.cache_size


def test_shapes_and_singular():
    assert segment_shape("8812") == "int"
    assert segment_shape("v2") == "version"
    assert segment_shape("oauth2") == "wordnum"
    assert segment_shape("me") == "word"
    assert segment_shape("EGvFCnCccRKHqtl") == "token"
    assert segment_shape("IncomingPhoneNumbers") == "word"
    assert singular("categories") == "category"
    assert singular("addresses") == "address"
    assert singular("people") == "person"
    assert singular("status") == "status"


def test_specgen_produces_shuffled_traffic_for_every_operation():
    from apiward.sim.specgen import generate

    spec = {"swagger": "2.0", "paths": {
        "/users/{userId}": {"get": {"parameters": [{"in": "path", "name": "userId", "type": "integer"}]}},
        "/users/me": {"get": {}},
        "/files/{kind}": {"get": {"parameters": [{"in": "path", "name": "kind", "type": "string", "enum": ["a", "b"]}]}},
    }}
    tr = generate(spec, seed=3, min_calls=4)
    assert {e.path for e in tr.endpoints} == {"/users/{userId}", "/users/me", "/files/{kind}"}
    assert all(sum(1 for c in tr.calls if c[2] == i) >= 4 for i in range(3))
    ids = {c[1] for c in tr.calls if c[1].startswith("/users/") and c[1] != "/users/me"}
    assert all(p.split("/")[2].isdigit() for p in ids) and len(ids) >= 2
    assert {c[1] for c in tr.calls if c[1].startswith("/files/")} <= {"/files/a", "/files/b"}
    assert next(e for e in tr.endpoints if e.path == "/files/{kind}").few_valued


# ---------------------------------------------------------------- response shapes


def test_response_shape_signature_is_about_keys_not_values():
    from apiward.discover.templating import response_shape, shapes_alike

    a = response_shape({"id": 1, "name": "x", "owner": {"id": 2}})
    assert a == response_shape({"owner": None, "name": "y", "id": 9})
    assert response_shape([{"id": 1, "name": "x", "owner": 1}]) not in (None, a)  # a list of them differs
    assert response_shape({"data": {"id": 1, "name": "x", "owner": 1}}) not in (None, a)  # envelope marked
    for trivial in (None, 3, "x", {}, [], {"ok": True}, [1, 2]):
        assert response_shape(trivial) is None
    wide = {f"field{i}": i for i in range(12)}
    fewer = dict(wide)
    fewer.pop("field3")
    assert shapes_alike(response_shape(wide), response_shape(fewer))  # an omitted optional key
    assert not shapes_alike(response_shape(wide), response_shape({"x": 1, "y": 2, "z": 3}))


def _learn_shapes(rows: list[tuple[str, dict]], reps: int = 2) -> Templater:
    from apiward.discover.templating import response_shape

    t = Templater()
    for _ in range(reps):
        for path, body in rows:
            t.observe("GET", "api.test", path, response_shape=response_shape(body))
    return t


def test_words_answering_alike_become_one_parameter():
    team = {"name": "x", "members": [], "created": 1, "slug": "x"}
    words = ["falcon", "maple", "harbor", "quartz"]
    rows = [(f"/org/{w}/summary", team) for w in words] + [(f"/org/{w}", {"id": 1, "title": 2, "size": 3}) for w in words]
    with_shapes = _learn_shapes(rows)
    assert tmpl(with_shapes, "/org/nebula/summary") == "/org/{org}/summary"
    ex = next(e for e in with_shapes.explain() if e["template"] == "/org/{org}")
    assert ex["evidence"]["response_shapes"]["pairs_alike"] >= 3
    assert ex["evidence"]["response_shapes"]["pairs_unlike"] == 0


def test_resources_answering_differently_stay_literal():
    # /admin/<thing>/config: shared structure, but each answers with its own schema
    things = ["cluster", "billing", "network", "storage", "mailer"]
    rows = [(f"/admin/{w}/config", {f"{w}_{k}": 1 for k in ("a", "b", "c", "d")}) for w in things]
    t = _learn_shapes(rows)
    got = {x[2] for x in t.templates()}
    assert got == {f"/admin/{w}/config" for w in things}
    # the same paths without response evidence merge on structure alone
    t2 = learn([p for p, _ in rows] * 2)
    assert {x[2] for x in t2.templates()} == {"/admin/{admin}/config"}


def test_envelope_shared_everywhere_is_no_evidence():
    env = {"data": [1], "success": True, "pagination": {}}
    rows = [(f"/{r}", env) for r in ("cities", "companies", "contacts", "forms", "users")]
    rows += [(f"/{r}/{i}", env) for r in ("cities", "companies", "contacts", "forms", "users") for i in (11, 12)]
    rows += [(f"/{r}/{i}/notes/{j}", env) for r in ("companies", "users") for i in (11,) for j in (5, 6)]
    t = _learn_shapes(rows)
    assert tmpl(t, "/users/99") == "/users/{userId}"
    assert tmpl(t, "/cities") == "/cities"
    assert "/companies/{companyId}/notes/{noteId}" in {x[2] for x in t.templates()}


def test_format_extension_is_a_parameter():
    t = learn([f"/Accounts/AC{i:032x}/Calls{ext}" for i in (1, 2) for ext in (".json", ".csv", ".html")]
              + [f"/Accounts/AC{1:032x}/Calls/CA{i:032x}{ext}" for i in range(3, 9) for ext in (".json", ".csv")])
    assert t.resolve("GET", "api.test", f"/Accounts/AC{5:032x}/Calls.xml") == (
        "/Accounts/{accountId}/Calls.{format}", (("accountId", f"AC{5:032x}"), ("format", "xml")))
    assert tmpl(t, f"/Accounts/AC{5:032x}/Calls/CA{77:032x}.json") == "/Accounts/{accountId}/Calls/{callId}.{format}"
    assert {x[2] for x in t.templates()} == {"/Accounts/{accountId}/Calls.{format}",
                                             "/Accounts/{accountId}/Calls/{callId}.{format}"}
    # file names, each in its own format, keep the extension in the value
    names = ["annual-report", "logo", "budget-plan", "team-photo", "minutes", "roadmap", "invoice-march", "memo"]
    exts = [".pdf", ".png", ".xlsx", ".jpg", ".docx", ".pdf", ".pdf", ".txt"]
    t2 = learn([f"/files/{n}{e}" for n, e in zip(names, exts)] * 2)
    assert tmpl(t2, "/files/notes.pdf") == "/files/{file}"


def test_words_with_digits_are_not_ids():
    assert segment_shape("i18nRegions") == "wordnum"
    assert segment_shape("ec2Instances") == "wordnum"
    assert segment_shape("oJbnuQbf0rW") == "mixed"
    assert segment_shape("W6VaqFRN4U") == "mixed"
    t = learn(["/i18nRegions", "/i18nLanguages", "/videos"])
    assert {x[2] for x in t.templates()} == {"/i18nRegions", "/i18nLanguages", "/videos"}


def test_multiword_resource_names_at_the_top_are_not_titles():
    t = learn(["/time_entry_value_types", "/time_entry_types/5", "/posts/how-to-train-your-dragon"])
    assert tmpl(t, "/time_entry_value_types") == "/time_entry_value_types"
    assert tmpl(t, "/posts/what-is-a-good-api") == "/posts/{post}"


def test_inventory_passes_response_shapes_to_the_templater():
    import orjson

    from apiward.discover.inventory import Inventory
    from apiward.ingest.base import make_request, make_response
    from apiward.model.call import ApiCall

    inv = Inventory()
    n = 0
    for w in ("falcon", "maple", "harbor", "quartz", "nebula"):
        for tail, body in (("/summary", {"name": w, "members": [], "created": 1}), ("", {"id": 1, "title": w, "size": 3})):
            n += 1
            call = ApiCall(id=f"c{n}", request=make_request(method="GET", host="h", path=f"/org/{w}{tail}"),
                           response=make_response(status=200, headers=[("Content-Type", "application/json")],
                                                  body=orjson.dumps(body)))
            inv.resolve(call)
    assert inv.templater.resolve("GET", "h", "/org/zinc/summary")[0] == "/org/{org}/summary"
    ex = [e for e in inv.templater.explain() if e["template"] == "/org/{org}"]
    assert ex and "response_shapes" in ex[0]["evidence"]


def test_value_words_ending_in_s_join_their_siblings():
    words = ["atlas", "cosmos", "falcon", "maple", "harbor", "quartz"]
    t = learn([f"/maps/{w}/tiles" for w in words] * 2)
    assert {x[2] for x in t.templates()} == {"/maps/{map}/tiles"}
    # collection names stay literal
    t2 = learn([f"/v1/{c}/{i}" for c in ("payments", "refunds", "customers") for i in (5, 6)] + ["/v1/balance/history"])
    assert {x[2] for x in t2.templates()} == {"/v1/payments/{paymentId}", "/v1/refunds/{refundId}",
                                              "/v1/customers/{customerId}", "/v1/balance/history"}


def test_word_and_number_in_one_segment():
    t = learn(["/search/apple/page-3.atom", "/search/apple/page-17.atom", "/search/olive/page-4.atom",
               "/brands/page-2.atom", "/invoices/INV-0042", "/invoices/INV-0043"])
    assert tmpl(t, "/search/apple/page-99.atom") == "/search/apple/page-{pageNumber}.atom"
    assert t.resolve("GET", "api.test", "/brands/page-7.atom")[1] == ()  # one number seen: still literal
    assert all("INV-{" not in x[2] for x in t.templates())
    rules = {e["rule"] for e in t.explain()}
    assert "numbered-segment" in rules
    # an unseen page number of a learned prefix is a value, not a new endpoint
    t.observe("GET", "api.test", "/search/apple/page-123.atom")
    assert all("page-123" not in x[2] for x in t.templates())


def test_ids_that_read_as_words_join_their_parameter():
    rng = random.Random(3)

    def rid() -> str:
        return "tm_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(10))

    ids = [rid() for _ in range(30)]
    paths = [f"/v1/memos/{i}" for i in ids] + [f"/v1/memos/{i}/items" for i in ids[:10]]
    paths += ["/v1/memos/tm_lrqibzdfIe", "/v1/memos/tm_lrqibzdfIe/items", "/v1/memos/export", "/v1/memos/export/items"]
    t = learn(paths)
    assert segment_shape("tm_lrqibzdfIe") not in ("mixed", "token")  # reads as words on its own
    assert tmpl(t, "/v1/memos/tm_lrqibzdfIe") == "/v1/memos/{memoId}"
    assert tmpl(t, "/v1/memos/tm_QzWvbnXkpl/items") == "/v1/memos/{memoId}/items"
    assert tmpl(t, "/v1/memos/export") == "/v1/memos/export"  # a word is no id


def test_siblings_missing_common_endpoints_stay_literal():
    rng = random.Random(5)

    def run(full: list[str], thin: list[str]) -> Templater:
        t = Templater()
        for w in full:
            for _ in range(15):
                t.observe(rng.choice(["GET", "PUT", "DELETE"]), "h", f"/object/{w}/{rng.randint(1, 10**6)}")
        for w in thin:
            for _ in range(30):
                t.observe("GET", "h", f"/object/{w}/{rng.randint(1, 10**6)}")
        for w in full + thin:  # now they share structure
            t.observe("GET", "h", f"/object/{w}/describe")
        return t

    # two well-called siblings never get PUT or DELETE, which the others get
    # a third of the time each: distinct resources, not values of one parameter
    t = run(["account", "contact", "invoice"], ["usage", "feature"])
    got = {x[2] for x in t.templates()}
    assert "/object/usage/describe" in got and "/object/account/describe" in got, got
    # control: the same structure with every sibling reaching every endpoint merges
    t2 = run(["account", "contact", "invoice", "usage", "feature"], [])
    assert "/object/{object}/describe" in {x[2] for x in t2.templates()}
    ev = next(e for e in t2.explain() if e["template"] == "/object/{object}")
    assert ev["evidence"]["coverage"]["missing_common_endpoints"] == 0


def test_words_after_a_value_open_ended_vs_actions():
    rng = random.Random(7)
    t = Templater()
    for i in range(60):
        t.observe("GET", "h", f"/files/{rng.randint(1, 10**6)}/labels/{rng.choice(string.ascii_lowercase)}x")
    for _ in range(40):
        t.observe("POST", "h", f"/memos/{rng.randint(1, 10**6)}/{rng.choice(['apply', 'unapply', 'post', 'refund'])}")
    got = {x[2] for x in t.templates()}
    assert "/memos/{memoId}/apply" in got and "/memos/{memoId}/refund" in got
    t2 = Templater()
    words = [f"{a}{b}" for a in ("amber", "cedar", "delta", "ember", "falcon") for b in ("fox", "oak", "sky", "sea")]
    for w in words:
        t2.observe("GET", "h", f"/buckets/{rng.randint(1, 10**6)}/{w}")
    assert {x[2] for x in t2.templates()} == {"/buckets/{bucketId}/{param2}"}


def test_release_numbers_and_version_words():
    t = learn(["/packages/left-pad/1.2.3", "/1.14.6/status", "/builds/alpha/logs", "/builds/beta/logs",
               "/builds/gamma/logs", "/builds/delta/logs"])
    assert tmpl(t, "/packages/left-pad/4.0.12").endswith("/{param2}") or "{" in tmpl(t, "/packages/left-pad/4.0.12").split("/")[-1]
    assert tmpl(t, "/1.14.6/status") == "/1.14.6/status"
    assert tmpl(t, "/builds/alpha/logs") == "/builds/{build}/logs"


def test_old_state_without_value_forms_loads():
    rng = random.Random(2)
    t = learn([f"/v1/memos/tm_{rng.getrandbits(40):x}Q{i}" for i in range(12)])
    for _, node, _ in t._walk(t._trees["api.test"]):
        if node.param is not None:
            del node.param.forms
    t2 = codec.loads(codec.dumps(t))
    for i in range(5):
        t2.observe("GET", "api.test", f"/v1/memos/tm_{rng.getrandbits(40):x}Q{i}")
    assert tmpl(t2, "/v1/memos/tm_77a8b9c0d1Q3") == "/v1/memos/{memoId}"
    assert all(n.param is None or isinstance(n.param.forms, dict) for _, n, _ in t2._walk(t2._trees["api.test"]))


def test_specgen_honours_documented_formats_and_examples():
    from apiward.sim.specgen import generate

    spec = {"swagger": "2.0", "paths": {
        "/pageviews/{start}/{end}": {"get": {"parameters": [
            {"in": "path", "name": "start", "type": "string", "description": "The first day, in YYYYMMDD format."},
            {"in": "path", "name": "end", "type": "string", "description": "The last day, in YYYYMMDD format."}]}},
        "/articles/{article}": {"get": {"parameters": [
            {"in": "path", "name": "article", "type": "string", "x-example": "Are_You_the_One%3F"}]}},
        "/Calls{ext}": {"get": {"parameters": [{"in": "path", "name": "ext", "type": "string", "enum": [".json", ".csv"]}]}},
        "/Queues{ext}": {"get": {"parameters": [{"in": "path", "name": "ext", "type": "string"}]}},
    }}
    tr = generate(spec, seed=1)
    import re as _re
    for _, path, idx in tr.calls:
        ep = tr.endpoints[idx].path
        if ep.startswith("/pageviews"):
            assert _re.fullmatch(r"/pageviews/20\d{6}/20\d{6}", path), path
        elif ep.startswith("/articles"):
            assert _re.fullmatch(r"/articles/[A-Z][a-z]+_[A-Z][a-z]+_[a-z]+_[A-Z][a-z]+%3F", path), path
        elif ep.startswith("/Queues"):
            assert path in ("/Queues.json", "/Queues.csv"), path  # the bare one inherits the documented enum


def _state(t: Templater, node=None, path="") -> list:
    """Every node's counters, methods, response shapes and parameter stats."""
    out: list = []
    for root_host, root in (t._trees.items() if node is None else [("", node)]):
        stack = [(root_host + path, root)]
        while stack:
            p, n = stack.pop()
            par = n.param
            out.append((p, n.n, sorted(n.ends.items()), sorted((n.resp or {}).items()),
                        None if par is None else (par.count, sorted(par.shapes.items()), list(par.kmv), par.weak_ok, par.rule)))
            stack.extend((f"{p}/{s}", c) for s, c in sorted(n.lit.items()))
            stack.extend((f"{p}/{{}}{s}", c) for s, c in sorted(n.par.items()))
    return out


def test_replayed_walks_learn_exactly_what_fresh_walks_learn():
    """``observe`` replays the walk of a path seen before (counters only)
    while the tree keeps its structure; the learned state, the merges and the
    templates must be those of walking every call afresh."""
    rnd = random.Random(3)
    words = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    paths = []
    for _ in range(3000):
        k = rnd.randrange(6)
        if k == 0:
            paths.append(f"/api/v1/users/{rnd.randrange(40)}/orders/{rnd.randrange(5)}")
        elif k == 1:
            paths.append(f"/repos/{rnd.choice(words)}/issues")
        elif k == 2:
            paths.append(f"/feeds/page-{rnd.randrange(30)}.atom")
        elif k == 3:
            paths.append(f"/files/{rnd.randrange(20)}.{rnd.choice(['json', 'csv'])}")
        elif k == 4:
            paths.append(f"/tags/{rnd.choice(words)}{rnd.randrange(3)}")
        else:
            paths.append(rnd.choice(["/health", "/api/v1/me", "/api/v1/search"]))
    replayed, fresh = Templater(), Templater()
    for i, p in enumerate(paths):
        shape = (1 << (i % 7)) | 3 if i % 3 else None
        for t in (replayed, fresh):
            t.observe("GET" if i % 4 else "POST", "api.test", p, response_shape=shape)
        fresh._walks.clear()  # never replays
        assert replayed.resolve("GET", "api.test", p) == fresh.resolve("GET", "api.test", p)
    assert replayed._walks  # the fast path was taken
    assert _state(replayed) == _state(fresh)
    assert replayed.explain() == fresh.explain()
    assert replayed.templates() == fresh.templates()
    for p in paths[:300]:
        assert replayed.resolve("GET", "api.test", p) == fresh.resolve("GET", "api.test", p)


def test_named_steps_are_shared_but_values_are_per_call():
    t = learn(["/users/8812/orders/5", "/users/17/orders/9", "/files/3.json", "/files/4.csv"])
    assert t.resolve("GET", "api.test", "/users/1/orders/2") == (
        "/users/{userId}/orders/{orderId}", (("userId", "1"), ("orderId", "2")))
    assert t.resolve("GET", "api.test", "/users/7/orders/8") == (
        "/users/{userId}/orders/{orderId}", (("userId", "7"), ("orderId", "8")))
    template, params = t.resolve("GET", "api.test", "/files/9.json")
    assert dict(params)["fileId"] == "9" and template.startswith("/files/{fileId}")


def test_response_shape_memo_matches_a_fresh_computation():
    from apiward.discover import templating

    bodies = [
        {"id": 1, "name": "a"}, {"name": "a", "id": 1}, [{"id": 1, "sku": "x"}], {"data": [{"a": 1, "b": 2}]},
        {"data": {"x": 1, "y": 2, "z": 3}}, {"ok": True}, {}, [], 3, {"a": 1, "b": 2, "c": [1]},
    ]
    first = [templating.response_shape(b) for b in bodies]
    again = [templating.response_shape(b) for b in bodies]  # from the memo
    templating._key_bits.clear()
    cold = [templating.response_shape(b) for b in bodies]
    assert first == again == cold
    assert first[0] == first[1] and first[0] is not None and first[5] is None and first[6] is None
    assert first[2] != first[0]  # an array answer differs from an object one


def test_resolve_right_after_observe_names_the_walk_as_a_fresh_resolve_would():
    """``resolve`` right after ``observe`` of the same path names the walk
    ``observe`` recorded; it must equal resolving from the tree."""
    rnd = random.Random(5)
    words = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
    t = Templater(never_merge=["42"])
    used = 0
    for i in range(4000):
        k = rnd.randrange(8)
        p = [f"/api/v2/users/{rnd.randrange(10**6)}", f"/repos/{rnd.choice(words)}/issues/{rnd.randrange(99)}",
             f"/v1/items/{rnd.randrange(10**5):x}{rnd.choice(words)}", f"/files/{rnd.randrange(50)}.json",
             f"/tags/{rnd.choice(words)}", "/api/v2/users/42", f"/x/{rnd.randrange(10)}/{rnd.choice(words)}/y",
             f"/users/{rnd.randrange(10**4)}/orders/{rnd.randrange(10**4)}"][k]
        t.observe("GET", "api.test", p, response_shape=(i % 5) | 6)
        recorded = t._last is not None
        got = t.resolve("GET", "api.test", p)
        assert got == t._resolve("api.test", p), p
        used += recorded
    assert used > 300


# ---------------------------------------------------------------- real traffic: slugs, names, pages, splits


def _slug(rng: random.Random) -> str:
    words = ["amber", "cedar", "delta", "ember", "falcon", "maple", "harbor", "quartz", "nebula", "willow", "tiger",
             "orbit", "lotus", "raven", "summit", "canyon"]
    style = rng.randrange(3)
    if style == 0:
        return "-".join(rng.choice(words) for _ in range(rng.randint(1, 2))) + f"-{rng.randint(1, 99)}"
    if style == 1:
        return rng.choice(words) + str(rng.randint(1, 99))
    return rng.choice(words) + rng.choice(words).capitalize()


def test_slug_and_name_ids_with_few_calls_merge_after_a_version():
    """``/notes/v2/alice7-todo-0``, ``/accounts/v2/bob12``: objects addressed
    by names; each called once or twice, new ones keep coming."""
    rng = random.Random(11)
    t = Templater()
    for i in range(120):
        name = _slug(rng)
        t.observe("GET", "h", f"/accounts/v2/{name}")
        if i % 3 == 0:
            t.observe("GET", "h", f"/notes/v2/{name}-todo-{i % 5}")
    got = {x[2] for x in t.templates()}
    assert got == {"/accounts/v2/{accountId}", "/notes/v2/{noteId}"} or got == {"/accounts/v2/{account}", "/notes/v2/{note}"}, got
    # the version segment never names the parameter, the collection before it does
    assert not any("{v2" in g for g in got)


def test_version_segments_never_name_parameters():
    t = learn(["/v2/8812", "/v2/17", "/api/v1/3", "/accounts/v2/55", "/accounts/v2/56", "/v1beta1/things/ab12cd34ef"])
    for path in ("/v2/99", "/api/v1/7", "/accounts/v2/57"):
        tmpl_ = tmpl(t, path)
        assert "{" in tmpl_, tmpl_
        name = tmpl_.rsplit("{", 1)[1].rstrip("}")
        assert not name.lower().startswith(("v1", "v2", "api")), tmpl_
    assert tmpl(t, "/accounts/v2/57") == "/accounts/v2/{accountId}"


def test_random_token_ids_merge_on_sight():
    rng = random.Random(4)
    toks = ["".join(rng.choice(string.ascii_letters + string.digits) for _ in range(rng.randint(16, 24))) for _ in range(6)]
    t = learn([f"/v1/sessions/{x}/events" for x in toks])
    assert {x[2] for x in t.templates()} == {"/v1/sessions/{sessionId}/events"}


def test_slug_values_below_a_parameter_with_a_parameter_below_them():
    """``/builds/{id}/<slug>/{n}``: each slug's subtree holds only a
    parameter, so no literal structure is shared; the open-ended count of
    values (all singletons) is the evidence."""
    rng = random.Random(8)
    t = Templater()
    for _ in range(30):
        t.observe("DELETE", "h", f"/builds/{rng.randint(1, 10**6)}/{_slug(rng)}/{rng.randint(1, 10**6)}")
    for _ in range(40):
        t.observe("GET", "h", f"/builds/{rng.randint(1, 10**6)}/log")
    got = {(x[1], x[2]) for x in t.templates()}
    assert ("DELETE", "/builds/{buildId}/{param2}/{param3}") in got, got
    assert ("GET", "/builds/{buildId}/log") in got


def test_fixed_page_names_never_merge():
    """CSIC-like web shop: a handful of ``.jsp`` pages under one folder, each
    called again and again: pages, not values."""
    rng = random.Random(2)
    pages = ["anadir.jsp", "autenticar.jsp", "caracteristicas.jsp", "carrito.jsp", "entrar.jsp", "pagar.jsp",
             "registro.jsp", "vaciar.jsp"]
    t = Templater()
    for _ in range(800):
        t.observe(rng.choice(["GET", "POST"]), "shop", f"/tienda1/publico/{rng.choice(pages)}")
    assert {x[2] for x in t.templates()} == {f"/tienda1/publico/{p}" for p in pages}


def test_action_words_after_a_value_stay_literal():
    rng = random.Random(6)
    t = Templater()
    for _ in range(200):
        t.observe("POST", "h", f"/api/jobs/{rng.randint(1, 10**6)}/action/{rng.choice(['start', 'stop', 'retry'])}")
        t.observe("GET", "h", f"/api/jobs/{rng.randint(1, 10**6)}")
    got = {x[2] for x in t.templates()}
    assert {"/api/jobs/{jobId}/action/start", "/api/jobs/{jobId}/action/stop", "/api/jobs/{jobId}/action/retry"} <= got, got
    assert not any("{param" in g for g in got), got


def test_bad_early_merge_is_split_when_counts_say_the_set_is_closed():
    """The first calls make a few leaf names look like values (each seen
    once); later each is called again and again and no new name comes: a
    fixed set. The merge is undone and each name resolves to itself."""
    names = ["zarauz.jpg", "ogono.jpg", "castro.jpg"]
    t = Templater()
    for n in names:
        t.observe("GET", "h", f"/shop/imagenes/{n}")
    early = {x[2] for x in t.templates()}
    assert any("{" in e for e in early), early  # merged on the first evidence
    for _ in range(100):
        for n in names:
            t.observe("GET", "h", f"/shop/imagenes/{n}")
            t.resolve("GET", "h", f"/shop/imagenes/{n}")
    assert {x[2] for x in t.templates()} == {f"/shop/imagenes/{n}" for n in names}
    assert t._splits >= 1
    # and it stays split
    for n in names:
        t.observe("GET", "h", f"/shop/imagenes/{n}")
    assert tmpl(t, "/shop/imagenes/castro.jpg") == "/shop/imagenes/castro.jpg"


def test_merge_split_when_a_value_misses_the_endpoints_the_others_reach():
    """Values of one parameter reach the same endpoints; a sibling merged
    with them early that is called often yet never gets the methods the
    others get is a resource of its own: it is split out, the rest stays."""
    rng = random.Random(9)
    t = Templater()
    words = ["bravo2", "charlie3", "delta4", "echo5", "foxtrot6", "golf7", "hotel8", "india9", "usage"]
    for w in words:  # early: one call each, they look like values of a slot
        t.observe("GET", "h", f"/object/{w}/describe")
    early = {x[2] for x in t.templates()}
    assert "/object/{object}/describe" in early, early
    for _ in range(30):
        for w in words[:-1]:
            t.observe(rng.choice(["GET", "PUT", "DELETE"]), "h", f"/object/{w}/describe")
        for _ in range(3):
            t.observe("GET", "h", "/object/usage/describe")
        t.resolve("GET", "h", "/object/usage/describe")
    got = {x[2] for x in t.templates()}
    assert got == {"/object/usage/describe", "/object/{object}/describe"}, got
    assert ("coverage", ["usage"]) in t._split_log


def test_replay_keeps_value_subtrees_in_step_with_fresh_walks():
    """Values of a weak merge count into their own subtrees whether the
    walk is replayed or fresh."""
    rnd = random.Random(12)
    names = ["alice", "bob", "carol", "dave", "erin"]
    replayed, fresh = Templater(), Templater()
    for i in range(2000):
        p = f"/repos/{rnd.choice(names)}/issues" if i % 2 else f"/repos/{rnd.choice(names)}/pulls/{rnd.randrange(3)}"
        for t in (replayed, fresh):
            t.observe("GET", "api.test", p)
        fresh._walks.clear()
        assert replayed.resolve("GET", "api.test", p) == fresh.resolve("GET", "api.test", p)
    assert _state(replayed) == _state(fresh)
    assert replayed.templates() == fresh.templates()


def test_frozen_resolve_does_not_learn():
    t = learn(["/users/1", "/users/2", "/users/3"])
    before = t.templates()
    for i in range(50):
        t.resolve("GET", "api.test", f"/things/{i}/sub")
    assert t.templates() == before
    assert tmpl(t, "/users/77") == "/users/{userId}"


def test_a_namespaced_value_is_one_value_not_a_custom_verb():
    t = Templater()
    for u in ("temp00-541", "temp01-324", "temp10-648", "temp11-9"):
        t.observe("DELETE", "h", f"/v1/__user_data__/account:{u}")
    for u in ("chen", "david", "sarah"):  # ``:chen`` read as a verb would make one endpoint per user
        t.observe("DELETE", "h", f"/v1/__user_data__/account:{u}")
    assert t.resolve("DELETE", "h", "/v1/__user_data__/account:zed")[0] == "/v1/__user_data__/{userData}"
    assert [x[2] for x in t.templates()] == ["/v1/__user_data__/{userData}"]


def test_sibling_values_keep_their_merge_when_each_has_its_own_names_below():
    """Each bucket holds collections named by its owner (too few per bucket to
    merge); one heavily used bucket must not make the others look like
    distinct resources (coverage compares the varying names as one)."""
    rng = random.Random(3)
    t = Templater()
    colls = ("todo", "journal", "recipes", "links", "books")
    buckets = ["catalog"] + [f"{n}-{rng.choice(('notes', 'home', 'work'))}" for n in ("sarah", "chen", "david", "fatima", "steven", "jessica", "anthony", "timothy")]
    for b in buckets:
        t.observe("PUT", "h", f"/v1/buckets/{b}")
        mine = ["products"] if b == "catalog" else rng.sample(colls, 2)
        for c in mine:
            t.observe("PUT", "h", f"/v1/buckets/{b}/collections/{c}")
            for _ in range(24 if b == "catalog" else 2):
                t.observe("POST", "h", f"/v1/buckets/{b}/collections/{c}/records")
    for b in buckets:
        assert t.resolve("PUT", "h", f"/v1/buckets/{b}")[0] == "/v1/buckets/{bucket}", b


def test_a_segment_naming_its_caller_is_an_identifier():
    """Radicale-style trees: user names at the root, each called by its owner."""
    t = Templater()
    users = ["barbara", "charles", "daniel", "karen"]
    for u in users:
        for cal in ("home", "work"):
            t.observe("PROPFIND", "dav", f"/{u}/", caller=u)
            t.observe("REPORT", "dav", f"/{u}/{cal}-{u}/", caller=u)
    for u in users:
        assert t.resolve("PROPFIND", "dav", f"/{u}/")[0].count("{") == 1
    # another caller naming a known user lands on the same parameter (a BOLA read stays one endpoint)
    assert t.resolve("PROPFIND", "dav", "/barbara/")[0] == t.resolve("PROPFIND", "dav", "/karen/")[0]
    # a name nobody called as its own stays what the evidence says: a literal
    assert t.resolve("PROPFIND", "dav", "/stranger/")[0] == "/stranger"
    # without callers the same words stay literal (one word each, no structure yet)
    bare = Templater()
    bare.observe("PROPFIND", "dav", "/barbara/")
    assert bare.resolve("PROPFIND", "dav", "/barbara/")[0] == "/barbara"


def test_caller_named_like_an_api_word_joins_a_collection_that_takes_values():
    t = Templater()
    for u in ("sarah", "chen", "david", "steven"):
        t.observe("PUT", "api", f"/v1/accounts/{u}")
        t.observe("GET", "api", f"/v1/accounts/{u}/settings")
    t.observe("GET", "api", "/v1/accounts/admin")  # unauthenticated: a word of the API's vocabulary
    t.settle()
    assert t.resolve("GET", "api", "/v1/accounts/admin")[0] == "/v1/accounts/admin"
    t.observe("GET", "api", "/v1/accounts/admin", caller="admin")
    t.settle()
    assert t.resolve("GET", "api", "/v1/accounts/admin")[0] == t.resolve("GET", "api", "/v1/accounts/sarah")[0]
    # a caller's name never turns an API word into a parameter where no values go
    t.observe("GET", "api", "/v1/admin/stats", caller="admin")
    assert t.resolve("GET", "api", "/v1/admin/stats")[0] == "/v1/admin/stats"


def test_release_file_names_are_one_value():
    files = [f"/packages/{p}-{v}.tar.gz" for p in ("alpha", "beta_pkg", "gamma") for v in ("1.0", "1.2.3", "2.0")]
    files += [f"/packages/{p}-1.0-py3-none-any.whl" for p in ("alpha", "gamma")]
    t = learn(files * 2)
    got = {tmpl(t, f) for f in files}
    assert len(got) == 1 and got.pop().startswith("/packages/{"), got
    assert segment_shape("7") == "int" and tmpl(learn(["/calls/7.json", "/calls/8.json"]), "/calls/9.json").endswith(".json")


def test_a_word_value_with_the_slots_structure_joins_the_id_slot():
    """/scores/{id}/comments learned from ids; a slug-named score has the same endpoints below it."""
    rng = random.Random(5)
    paths = []
    for _ in range(12):
        sid = str(rng.randint(10**5, 10**6))
        paths += [f"/v2/scores/{sid}/comments", f"/v2/scores/{sid}/revisions", f"/v2/scores/{sid}"]
    paths += ["/v2/scores/weekly-lava/comments", "/v2/scores/weekly-lava/revisions"]
    t = learn(paths)
    assert tmpl(t, "/v2/scores/weekly-lava/comments") == tmpl(t, "/v2/scores/123456/comments")
    # a sub-collection with endpoints of its own stays literal
    t2 = learn(paths + ["/v2/scores/shared/export", "/v2/scores/shared/export/status"] * 3)
    assert tmpl(t2, "/v2/scores/shared/export") == "/v2/scores/shared/export"


def test_values_named_by_their_callers_survive_the_state_store():
    from apiward.state import codec
    from apiward.state.parts import restore, state_of

    t = Templater()
    for u in ("barbara", "charles", "daniel"):
        t.observe("PROPFIND", "dav", f"/{u}/", caller=u)
    t2 = restore(Templater(), codec.decode(codec.encode(state_of(t))))
    assert t2.resolve("PROPFIND", "dav", "/charles/") == t.resolve("PROPFIND", "dav", "/charles/") == ("/{id}", (("id", "charles"),))
