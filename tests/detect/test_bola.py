"""bola.cross_owner_access and bola.enumeration on realistic multi-user streams."""

from __future__ import annotations


import msgspec

from apiward.detect.bola import CrossOwnerAccess, Enumeration
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call
from apiward.state import codec
from apiward.state.parts import restore, state_of

def roundtrip(det):
    """A detector through what a checkpoint stores (the state codec, no pickle)."""
    return restore(type(det)(), codec.loads(codec.dumps(state_of(det))))


T0 = 1_764_000_000.0


def ctx_for(call, template):
    segs = call.request.path.strip("/").split("/")
    tsegs = template.strip("/").split("/")
    params = tuple((t[1:-1], s) for t, s in zip(tsegs, segs) if t.startswith("{"))
    return Context(endpoint=EndpointRef(host=call.request.host, method=call.request.method, template=template, path_params=params))


class Stream:
    """Feeds calls through detectors score-then-learn and keeps findings."""

    def __init__(self, *dets):
        self.dets = dets
        self.findings = []
        self.t = T0
        self.shared = {}  # what the pipeline shares between its detectors

    def __call__(self, method, path, template, *, claims=None, **kw):
        self.t += 1.0
        c = make_call(method, path, ts=self.t, **kw)
        if claims is not None:
            c.actor = msgspec.structs.replace(c.actor, jwt_claims=claims)
        ctx = ctx_for(c, template)
        ctx.shared = self.shared
        for d in self.dets:
            self.findings.extend(d.score_one(c, ctx))
        for d in self.dets:
            d.learn_one(c, ctx)
        return c


USERS = [f"user{i}" for i in range(12)]


def benign_shop(s: Stream, orders: dict[str, list[int]]) -> None:
    """Each user creates and lists their own orders, reads them, and reads
    shared products that everybody reads."""
    next_id = 500
    for u in USERS:
        s("GET", "/api/v1/products", "/api/v1/products", user=u, json=[{"id": p, "name": f"p{p}"} for p in range(1, 11)])
        mine = []
        for _ in range(2):
            next_id += 1
            s("POST", "/api/v1/orders", "/api/v1/orders", user=u, status=201, req_json={"productId": 3, "qty": 1},
              json={"id": next_id, "user_id": u, "total": 10})
            mine.append(next_id)
        orders[u] = mine
    for u in USERS:
        s("GET", "/api/v1/orders", "/api/v1/orders", user=u, json=[{"id": o, "user_id": u} for o in orders[u]])
        for o in orders[u]:
            s("GET", f"/api/v1/orders/{o}", "/api/v1/orders/{orderId}", user=u, json={"id": o, "user_id": u})
        for p in (1, 2, 5, 7):
            s("GET", f"/api/v1/products/{p}", "/api/v1/products/{productId}", user=u, json={"id": p})


def test_benign_shop_raises_nothing():
    det = CrossOwnerAccess()
    s = Stream(det, Enumeration())
    benign_shop(s, {})
    assert s.findings == []


def test_attacker_reading_other_users_orders_is_flagged_with_event_ids():
    det = CrossOwnerAccess()
    s = Stream(det)
    orders: dict[str, list[int]] = {}
    benign_shop(s, orders)
    s("GET", "/api/v1/orders", "/api/v1/orders", user="mallory", json=[])
    c1 = s("GET", f"/api/v1/orders/{orders['user1'][0]}", "/api/v1/orders/{orderId}", user="mallory", json={"id": 1})
    assert s.findings == []  # one object is not yet a pattern (min_objects=2)
    c2 = s("GET", f"/api/v1/orders/{orders['user2'][1]}", "/api/v1/orders/{orderId}", user="mallory", json={"id": 2})
    c3 = s("PATCH", f"/api/v1/orders/{orders['user3'][0]}", "/api/v1/orders/{orderId}", user="mallory", req_json={"qty": 9}, json={"ok": True})
    assert s.findings, "cross-owner access not flagged"
    f = s.findings[-1]
    assert f.detector == "bola.cross_owner_access" and f.actor == "user:mallory"
    assert f.owasp == "API1:2023" and f.cwe == "CWE-639" and f.attack and f.tactic
    assert {c1.id, c2.id, c3.id} <= set(f.event_ids)
    assert set(f.evidence["owners"]) == {"user:user1", "user:user2", "user:user3"}
    assert f.evidence["object_kind"] == "order"
    # all findings of the behaviour share one key (no alert storm)
    assert len({x.key for x in s.findings}) == 1
    # state survives a checkpoint and keeps working
    det2 = roundtrip(det)
    s2 = Stream(det2)
    s2("GET", f"/api/v1/orders/{orders['user4'][0]}", "/api/v1/orders/{orderId}", user="mallory", json={"id": 3})
    assert s2.findings and s2.findings[0].evidence["distinct_objects"] == 4


def test_ids_in_query_and_own_user_id_attribution():
    det = CrossOwnerAccess()
    s = Stream(det)
    # each user reads their own profile by their own name: ids equal to the principal own it
    for u in USERS:
        s("GET", f"/api/v1/users/{u}1/settings", "/api/v1/users/{userId}/settings", user=f"{u}1", json={"theme": "dark"})
        s("GET", f"/api/v1/invoices?accountId=7{u[4:]}00", "/api/v1/invoices", user=f"{u}1", json=[])
        s("GET", f"/api/v1/invoices?accountId=7{u[4:]}00", "/api/v1/invoices", user=f"{u}1", json=[])
    assert s.findings == []
    s("GET", "/api/v1/users/user31/settings", "/api/v1/users/{userId}/settings", user="eve1", json={"theme": "x"})
    s("GET", "/api/v1/users/user51/settings", "/api/v1/users/{userId}/settings", user="eve1", json={"theme": "x"})
    s("GET", "/api/v1/invoices?accountId=7500", "/api/v1/invoices", user="eve1", json=[])
    s("GET", "/api/v1/invoices?accountId=7600", "/api/v1/invoices", user="eve1", json=[])
    by_kind = {f.evidence["object_kind"]: f for f in s.findings}
    assert set(by_kind) == {"user", "account"}
    assert by_kind["user"].evidence["reference_locations"] == ["path"]
    assert by_kind["account"].evidence["reference_locations"] == ["query"]
    assert by_kind["account"].evidence["owners"] == ["user:user51", "user:user61"]


def test_shared_objects_and_admins_do_not_alert():
    det = CrossOwnerAccess()
    s = Stream(det)
    orders: dict[str, list[int]] = {}
    benign_shop(s, orders)
    # products listed to every user are shared: a newcomer reading them is fine
    for p in (1, 2, 3, 4, 5, 6):
        s("GET", f"/api/v1/products/{p}", "/api/v1/products/{productId}", user="newbie", json={"id": p})
    # an admin (role claim) reads everybody's orders
    for u in USERS:
        s("GET", f"/api/v1/orders/{orders[u][0]}", "/api/v1/orders/{orderId}", user="ops", claims={"role": "admin"}, json={"id": 1})
    assert s.findings == []


def test_learned_admin_without_role_claims():
    det = CrossOwnerAccess()
    s = Stream(det)
    orders: dict[str, list[int]] = {}
    benign_shop(s, orders)
    # regular users are denied on an admin function; one principal is allowed there
    for u in USERS[:4]:
        s("GET", "/api/v1/admin/stats", "/api/v1/admin/stats", user=u, status=403, json={"error": "forbidden"})
    s("GET", "/api/v1/admin/stats", "/api/v1/admin/stats", user="support1", json={"orders": 24})
    for u in USERS:
        s("GET", f"/api/v1/orders/{orders[u][0]}", "/api/v1/orders/{orderId}", user="support1", json={"id": 1})
    assert s.findings == []


def test_app_change_many_actors_reading_across_owners_adapts():
    det = CrossOwnerAccess(max_cross_actors=3)
    s = Stream(det)
    orders: dict[str, list[int]] = {}
    benign_shop(s, orders)
    flagged = set()
    # orders become public (e.g. a gift-registry feature): many users read others' orders
    for i, u in enumerate(USERS):
        for v in USERS[i + 1 : i + 3]:
            s("GET", f"/api/v1/orders/{orders[v][0]}", "/api/v1/orders/{orderId}", user=u, json={"id": 1})
        flagged |= {f.actor for f in s.findings}
    assert len(flagged) <= 3  # a handful of early deviations, then it is the app's normal


def test_enumeration_of_ids_mostly_not_found():
    det = Enumeration()
    s = Stream(det)
    orders: dict[str, list[int]] = {}
    benign_shop(s, orders)
    assert s.findings == []
    calls = []
    for i in range(1000, 1030):
        calls.append(s("GET", f"/api/v1/orders/{i}", "/api/v1/orders/{orderId}", user="mallory", status=404, json={"error": "not found"}))
    assert s.findings
    f = s.findings[-1]
    assert f.detector == "bola.enumeration" and f.evidence["miss_ratio"] >= 0.9
    assert set(f.event_ids) <= {c.id for c in calls} and len(f.event_ids) >= 15
    assert f.evidence["sequential_ratio"] > 0.9


def test_enumeration_ignores_a_user_browsing_products():
    det = Enumeration()
    s = Stream(det)
    import random

    rng = random.Random(3)
    for p in rng.sample(range(1, 400), 30):
        s("GET", f"/api/v1/products/{p}", "/api/v1/products/{productId}", user="shopper", json={"id": p})
    assert s.findings == []


def uid_shop(s: Stream) -> dict[str, int]:
    """Users whose tokens carry their numeric user id (``uid``) read their own
    accounts; every account names its owner (``user_id``)."""
    uids = {u: 100 + i for i, u in enumerate(USERS)}
    for u, uid in uids.items():
        for a in (2 * uid, 2 * uid + 1, 2 * uid):
            s("GET", f"/api/v1/accounts/{a}", "/api/v1/accounts/{accountId}", user=u, claims={"sub": u, "uid": uid},
              json={"id": a, "user_id": uid, "balance": 5})
    return uids


def test_the_response_names_another_owner_when_nobody_listed_the_object():
    det = CrossOwnerAccess()
    s = Stream(det)
    uids = uid_shop(s)
    assert s.findings == []
    # a new user reads an account of theirs nobody ever listed: quiet
    s("GET", "/api/v1/accounts/900", "/api/v1/accounts/{accountId}", user="newbie", claims={"sub": "newbie", "uid": 450},
      json={"id": 900, "user_id": 450, "balance": 1})
    assert s.findings == []
    # mallory reads accounts nobody listed; each response says whose they are
    claims = {"sub": "mallory", "uid": 777}
    calls = [s("GET", f"/api/v1/accounts/{a}", "/api/v1/accounts/{accountId}", user="mallory", claims=claims,
               json={"id": a, "user_id": 300 + a, "balance": 50}) for a in (5000, 5001, 5002)]
    assert s.findings and s.findings[-1].actor == "user:mallory"
    assert {c.id for c in calls[1:]} <= {e for f in s.findings for e in f.event_ids}
    # and other users' records, by the user ids their tokens carry
    recs = [s("GET", f"/api/v1/users/{uids[u]}", "/api/v1/users/{userId}", user="mallory", claims=claims, json={"id": uids[u]})
            for u in ("user3", "user4")]
    assert {c.id for c in recs} <= {e for f in s.findings for e in f.event_ids}


def test_both_detectors_share_one_privilege_tracker_per_stream():
    cross, enum = CrossOwnerAccess(), Enumeration()
    s = Stream(cross, enum)
    benign_shop(s, {})
    assert cross.privilege is enum.privilege and cross.privilege.seen > 0
    # another stream over fresh detectors keeps its own
    cross2, enum2 = CrossOwnerAccess(), Enumeration()
    benign_shop(Stream(cross2, enum2), {})
    assert cross2.privilege is enum2.privilege and cross2.privilege is not cross.privilege
    # the tracker's counts survive a checkpoint (re-sharing it across detectors is the pipeline's `shared` component)
    assert roundtrip(cross).privilege.seen == roundtrip(enum).privilege.seen == cross.privilege.seen


def test_a_listing_read_again_unchanged_is_skipped_but_a_grown_one_is_learned():
    det = CrossOwnerAccess()
    s = Stream(det)
    orders: dict[str, list[int]] = {}
    benign_shop(s, orders)
    # user1 re-reads the same listing many times, then creates an order only its listing shows
    for _ in range(20):
        s("GET", "/api/v1/orders", "/api/v1/orders", user="user1", json=[{"id": o, "user_id": "user1"} for o in orders["user1"]])
    s("GET", "/api/v1/orders", "/api/v1/orders", user="user1", json=[{"id": o, "user_id": "user1"} for o in [*orders["user1"], 999]])
    assert s.findings == []
    s("GET", "/api/v1/orders/999", "/api/v1/orders/{orderId}", user="mallory", json={"id": 999})
    s("GET", f"/api/v1/orders/{orders['user1'][0]}", "/api/v1/orders/{orderId}", user="mallory", json={"id": 1})
    assert s.findings and s.findings[-1].evidence["owners"] == ["user:user1"]
    assert "999" in s.findings[-1].evidence["objects"]


def test_a_caller_profile_read_often_still_names_its_own_record():
    det = CrossOwnerAccess()
    s = Stream(det)
    for _ in range(40):  # the single-object endpoint gets sampled once the caller's record is known
        s("GET", "/api/v1/me", "/api/v1/me", user="alice", json={"id": 41, "username": "alice"})
        s("GET", "/api/v1/me", "/api/v1/me", user="bob", json={"id": 42, "username": "bob"})
    for u in ("alice", "bob"):
        s("GET", f"/api/v1/users/{41 if u == 'alice' else 42}", "/api/v1/users/{userId}", user=u, json={"id": 1})
    assert s.findings == []
    s("GET", "/api/v1/users/41", "/api/v1/users/{userId}", user="carol", json={"id": 41})
    s("GET", "/api/v1/users/42", "/api/v1/users/{userId}", user="carol", json={"id": 42})
    assert s.findings and set(s.findings[-1].evidence["owners"]) == {"user:alice", "user:bob"}


def test_writing_another_users_record_by_naming_them_in_a_body_field():
    """A "my record" endpoint where every user names themselves (owner or
    username in the body); one account writes naming another user."""
    det = CrossOwnerAccess()
    s = Stream(det)
    users = [f"user{i}" for i in range(8)]
    for rnd in range(3):
        for u in users:
            s("PUT", "/api/notes/v2/mine", "/api/notes/v2/mine", user=u, req_json={"owner": u, "text": f"note {rnd}"}, json={"ok": True})
    assert not [f for f in s.findings if "naming" in f.summary]
    c = s("PUT", "/api/notes/v2/mine", "/api/notes/v2/mine", user="user3", req_json={"owner": "user5", "text": "pwned"}, json={"ok": True})
    fs = [f for f in s.findings if "naming" in f.summary]
    assert len(fs) == 1 and fs[0].actor == "user:user3" and fs[0].event_ids == [c.id] and fs[0].owasp == "API1:2023"
    assert fs[0].evidence["victims"] == ["user:user5"] and fs[0].evidence["own_value"] == "user3"
    # naming oneself again stays quiet; a field everyone fills with shared values is no "my record" field
    s("PUT", "/api/notes/v2/mine", "/api/notes/v2/mine", user="user3", req_json={"owner": "user3", "text": "ok"}, json={"ok": True})
    for i, u in enumerate(users * 2):
        s("POST", "/api/tickets", "/api/tickets", user=u, req_json={"account": ["sales", "support"][i % 2]}, json={"id": i})
    assert len([f for f in s.findings if "naming" in f.summary]) == 1


def test_refused_attempts_on_other_users_objects_are_an_attempted_bola():
    det = CrossOwnerAccess()
    s = Stream(det, Enumeration())
    orders: dict[str, list[int]] = {}
    benign_shop(s, orders)
    s("GET", f"/api/v1/orders/{orders['user1'][0]}", "/api/v1/orders/{orderId}", user="user2", status=403, json={})
    assert s.findings == []  # one refused call is nothing
    victims = [o for u in USERS[3:8] for o in orders[u]][:6]
    for o in victims:
        s("GET", f"/api/v1/orders/{o}", "/api/v1/orders/{orderId}", user="mallory", status=403, json={"error": "forbidden"})
    found = [f for f in s.findings if f.detector == "bola.cross_owner_access"]
    assert found and {f.actor for f in found} == {"user:mallory"}
    assert found[-1].owasp.startswith("API1") and found[-1].severity == "medium" and found[-1].evidence["refused"]
    assert found[-1].evidence["distinct_objects"] >= det.min_denied_objects


def test_a_request_naming_several_objects_after_a_foreign_one_is_judged_whole():
    """Every reference of a request is looked up in the ownership table, also
    after the first one turned out to be someone else's (the table was once
    shadowed by the caller's set of taken objects and the call raised)."""
    det = CrossOwnerAccess()
    s = Stream(det)
    orders: dict[str, list[int]] = {}
    benign_shop(s, orders)
    tmpl = "/api/v1/orders/{orderId}/items/{itemId}"
    s("GET", f"/api/v1/orders/{orders['user1'][0]}/items/7", tmpl, user="mallory", json={"id": 7})
    s("GET", f"/api/v1/orders/{orders['user2'][0]}/items/8", tmpl, user="mallory", json={"id": 8})
    assert s.findings and s.findings[-1].evidence["object_kind"] == "order"
    assert set(s.findings[-1].evidence["owners"]) == {"user:user1", "user:user2"}
