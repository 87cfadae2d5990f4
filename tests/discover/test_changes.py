from __future__ import annotations

from pathlib import Path

from apiward.discover.changes import changes_table
from apiward.discover.inventory import Inventory
from apiward.testing import make_call

T0 = 1_764_000_000.0


def feed(inv: Inventory, call) -> None:
    inv.observe(call, inv.resolve(call), [])


def warm_inventory() -> Inventory:
    inv = Inventory(warmup_calls=50, field_warmup=5, change_window=600, api_change_actors=5, quiet_after=86400)
    for i in range(60):
        feed(inv, make_call("GET", f"/users/{i}", route="/users/{id}", user=f"u{i % 10}", ts=T0 + i, json={"id": i}))
    assert inv.drain_changes() == []  # the first traffic is not a change
    return inv


def test_new_field_many_actors_is_an_api_change() -> None:
    inv = warm_inventory()
    for i in range(20):
        feed(inv, make_call("GET", f"/users/{i}", route="/users/{id}", user=f"u{i}", ts=T0 + 100 + i, json={"id": i, "avatar": "x"}))
    assert inv.drain_changes() == []  # still open, counting actors
    feed(inv, make_call("GET", "/users/1", route="/users/{id}", user="u1", ts=T0 + 1000, json={"id": 1, "avatar": "x"}))
    rows = inv.drain_changes()
    assert len(rows) == 1
    r = rows[0]
    assert (r["kind"], r["endpoint"], r["field"]) == ("new_field", "GET /users/{id}", "response_body:avatar")
    assert "20 distinct actors" in r["detail"] and "api change" in r["detail"]
    assert inv.drain_changes() == []  # drained once


def test_new_field_one_actor_is_a_deviation_and_new_endpoint() -> None:
    inv = warm_inventory()
    for i in range(5):
        feed(inv, make_call("GET", f"/users/{i}", route="/users/{id}", user="mallory", ts=T0 + 100 + i, json={"id": i, "isAdmin": True}))
        feed(inv, make_call("GET", "/debug/vars", route="/debug/vars", user="mallory", ts=T0 + 100 + i, json={}))
    rows = inv.drain_changes(flush=True)
    kinds = {(r["kind"], r["field"]): r for r in rows}
    assert "1 distinct actor " in kinds[("new_field", "response_body:isAdmin")]["detail"]
    assert "deviation" in kinds[("new_field", "response_body:isAdmin")]["detail"]
    assert ("new_endpoint", "") in kinds and kinds[("new_endpoint", "")]["endpoint"] == "GET /debug/vars"
    entries = inv.changes.entries()
    assert {e["verdict"] for e in entries} == {"deviation"}
    assert all(e["actors"] == 1 for e in entries)


def test_type_change_and_quiet_endpoint(tmp_path: Path) -> None:
    inv = warm_inventory()
    for i in range(20):  # learning is sampled: a persistent type change is caught on a learned call
        feed(inv, make_call("GET", "/users/7", route="/users/{id}", user="u1", ts=T0 + 200 + i, json={"id": "seven"}))
    for i in range(10):
        feed(inv, make_call("GET", "/other", route="/other", user="u1", ts=T0 + 3 * 86400 + i, json={}))
    rows = inv.drain_changes(flush=True)
    by_kind = {r["kind"]: r for r in rows}
    assert by_kind["type_change"]["field"] == "response_body:id"
    assert "integer -> string" in by_kind["type_change"]["detail"]
    assert by_kind["endpoint_quiet"]["endpoint"] == "GET /users/{id}"
    assert inv.endpoints[("api.example.com", "GET", "/users/{id}")].quiet
    # rows fit the lake's changes table and are queryable
    from apiward.lake.query import connect
    from apiward.lake.store import Lake

    table = changes_table(rows)
    lake = Lake(tmp_path / "lake")
    assert lake.write_partitioned("changes", table, "b1") == len(rows)
    got = connect(tmp_path / "lake").execute("select kind, count(*) from changes group by 1 order by 1").fetchall()
    assert dict(got)["endpoint_quiet"] == 1 and dict(got)["type_change"] == 1
