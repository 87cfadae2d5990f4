"""bfla.admin_function: learned role-to-function and principal-to-function matrices."""

from __future__ import annotations

from apiward.state import codec

import msgspec

from apiward.detect.bfla import AdminFunction
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

    def __call__(self, method, path, template, *, claims=None, **kw):
        self.t += 1.0
        c = make_call(method, path, ts=self.t, **kw)
        if claims is not None:
            c.actor = msgspec.structs.replace(c.actor, jwt_claims=claims)
        ctx = ctx_for(c, template)
        self.findings.extend(self.det.score_one(c, ctx))
        self.det.learn_one(c, ctx)
        return c


USERS = [f"u{i}" for i in range(15)]


def regular_traffic(s, claims=True):
    for i, u in enumerate(USERS):
        cl = {"role": "customer"} if claims else None
        s("GET", "/shop/orders", "/shop/orders", user=u, claims=cl, json=[])
        s("GET", f"/shop/orders/{100 + i}", "/shop/orders/{orderId}", user=u, claims=cl, json={"id": 100 + i})
        s("PUT", f"/shop/orders/{100 + i}", "/shop/orders/{orderId}", user=u, claims=cl, req_json={"qty": 2}, json={"id": 100 + i})
        if i % 4 == 0:  # object-level denials: trying someone else's order
            s("PUT", f"/shop/orders/{101 + i}", "/shop/orders/{orderId}", user=u, claims=cl, req_json={"qty": 2}, status=403, json={})
        if i < 3:  # a rarely used, open feature
            s("DELETE", "/shop/account", "/shop/account", user=u, claims=cl, status=204)


def test_role_matrix_flags_customer_on_admin_only_function():
    det = AdminFunction()
    s = Stream(det)
    regular_traffic(s)
    for _ in range(3):
        s("GET", "/shop/users/export", "/shop/users/export", user="boss", claims={"role": "admin"}, json=[])
    s("GET", "/shop/users/export", "/shop/users/export", user="boss2", claims={"roles": ["staff", "admin"]}, json=[])
    assert s.findings == []  # admins, rare features and object-level 403s are fine
    c = s("GET", "/shop/users/export", "/shop/users/export", user="u7", claims={"role": "customer"}, json=[])
    assert len(s.findings) == 1
    f = s.findings[0]
    assert f.detector == "bfla.admin_function" and f.actor == "user:u7" and c.id in f.event_ids
    assert f.owasp == "API5:2023" and f.tactic == "privilege-escalation" and f.cwe == "CWE-285"
    assert "only admin-role principals" in f.evidence["reasons"][0]
    assert f.evidence["caller_roles"] == ["customer"]
    codec.loads(codec.dumps(det))


def test_denied_then_success_without_role_claims():
    det = AdminFunction()
    s = Stream(det)
    regular_traffic(s, claims=False)
    for _ in range(4):
        s("POST", "/shop/refunds/approve", "/shop/refunds/approve", user="ops", req_json={"id": 1}, json={"ok": True})
    for u in ("u1", "u2"):
        s("POST", "/shop/refunds/approve", "/shop/refunds/approve", user=u, req_json={"id": 1}, status=403, json={})
    assert s.findings == []
    d = s("POST", "/shop/refunds/approve", "/shop/refunds/approve", user="u9", req_json={"id": 2}, status=403, json={})
    ok = s("POST", "/shop/refunds/approve", "/shop/refunds/approve", user="u9", req_json={"id": 2}, headers={"x-role": "admin"}, json={"ok": True})
    assert len(s.findings) == 1
    f = s.findings[0]
    assert f.event_ids == [d.id, ok.id]
    assert any("denied on this function before" in r for r in f.evidence["reasons"])


def test_feature_opened_to_users_adapts():
    det = AdminFunction(adapt_actors=3)
    s = Stream(det)
    regular_traffic(s)
    for _ in range(3):
        s("GET", "/shop/reports", "/shop/reports", user="boss", claims={"role": "admin"}, json=[])
    for u in USERS:
        s("GET", "/shop/reports", "/shop/reports", user=u, claims={"role": "customer"}, json=[])
    assert 1 <= len({f.actor for f in s.findings}) <= 3


def test_unknown_function_with_no_history_is_not_flagged():
    det = AdminFunction()
    s = Stream(det)
    regular_traffic(s)
    s("GET", "/shop/new-feature", "/shop/new-feature", user="u3", claims={"role": "customer"}, json={})
    assert s.findings == []


def test_a_customer_deleting_catalogue_items_only_staff_delete():
    """No roles in tokens, no denials before: many customers read the
    catalogue, two staff members edit and delete items; a customer deletes
    three items (answered 204 by a vulnerable app) or tries (403)."""
    det = AdminFunction()
    s = Stream(det)
    customers = [f"c{i}" for i in range(20)]
    for rnd in range(6):
        for c in customers:
            s("GET", f"/api/items/{rnd + 1}", "/api/items/{id}", user=c, json={"id": rnd + 1})
        for staff in ("staff1", "staff2"):
            s("DELETE", f"/api/items/{100 + rnd}", "/api/items/{id}", user=staff, status=204)
            s("PUT", f"/api/items/{200 + rnd}", "/api/items/{id}", user=staff, req_json={"price": 3}, json={"id": 200 + rnd})
    assert s.findings == []
    bad = [s("DELETE", f"/api/items/{i}", "/api/items/{id}", user="c7", status=204) for i in (1, 2, 3)]
    fs = [f for f in s.findings if f.actor == "user:c7"]
    assert fs and fs[0].owasp == "API5:2023" and bad[0].id in {e for f in fs for e in f.event_ids}
    tried = s("DELETE", "/api/items/9", "/api/items/{id}", user="c8", status=403)
    assert any(f.actor == "user:c8" and f.event_ids == [tried.id] for f in s.findings)
    # orders: each customer reads its own, a few update theirs; another customer updating its order is no privilege
    for i, c in enumerate(customers):
        s("GET", f"/api/orders/{500 + i}", "/api/orders/{id}", user=c, json={"id": 500 + i})
    for c in customers[:2]:
        for _ in range(3):
            s("PUT", f"/api/orders/{500 + customers.index(c)}", "/api/orders/{id}", user=c, req_json={"qty": 2}, json={"ok": True})
    s("PUT", "/api/orders/515", "/api/orders/{id}", user="c15", req_json={"qty": 1}, json={"ok": True})
    assert not [f for f in s.findings if "orders" in f.endpoint]
    # a customer writing its own kind of thing (its cart) is nobody's privilege
    for c in customers:
        s("PUT", "/api/cart", "/api/cart", user=c, req_json={"items": [1]}, json={"ok": True})
    assert not [f for f in s.findings if "cart" in f.endpoint]


def test_refusals_on_a_function_only_one_principal_uses_are_an_attempt():
    det = AdminFunction()
    s = Stream(det)
    regular_traffic(s, claims=False)
    for i in range(4):  # the admin purges leavers' data; no role claims (HTTP Basic)
        s("DELETE", f"/v1/__user_data__/account:leaver{i}", "/v1/__user_data__/{principal}", user="admin", status=200, json={})
    assert s.findings == []
    s("DELETE", "/v1/__user_data__/account:u1", "/v1/__user_data__/{principal}", user="u3", status=403, json={})
    assert s.findings == []  # one refusal is a stray click
    s("DELETE", "/v1/__user_data__/account:u2", "/v1/__user_data__/{principal}", user="u3", status=403, json={})
    assert [f.actor for f in s.findings] == ["user:u3"]
    assert s.findings[0].owasp.startswith("API5") and s.findings[0].severity == "medium"


def test_function_history_follows_a_template_merge():
    det = AdminFunction()
    s = Stream(det)
    regular_traffic(s, claims=False)
    for i in range(4):  # learnt while each path was still its own template
        s("DELETE", f"/v1/purge/leaver{i}", f"/v1/purge/leaver{i}", user="admin", status=200, json={})
    for i in range(4):
        det.move_endpoint(f"api.example.com|DELETE /v1/purge/leaver{i}", "api.example.com|DELETE /v1/purge/{id}")
    for v in ("u1", "u2"):
        s("DELETE", f"/v1/purge/{v}", "/v1/purge/{id}", user="u5", status=403, json={})
    assert [f.actor for f in s.findings] == ["user:u5"]
