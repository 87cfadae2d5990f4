"""The partitioned state layout (apiward.state.partitions): which partition
a call goes to, the refusal of another worker count, and the read side's
merge of findings and inventories."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiward.discover.inventory import Inventory
from apiward.model.context import EndpointRef
from apiward.model.finding import Finding
from apiward.state import StateDir
from apiward.state.partitions import (
    Partitioner,
    balance,
    check_layout,
    layout_of,
    merge_findings,
    merge_inventory,
    partition_of,
    write_layout,
)
from apiward.state.store import StateError
from apiward.testing import make_call


def test_partition_of_is_stable_in_range_and_case_blind() -> None:
    hosts = [f"api{i}.example.com" for i in range(200)]
    parts = [partition_of(h, 4) for h in hosts]
    assert set(parts) == {0, 1, 2, 3}
    assert parts == [partition_of(h, 4) for h in hosts]  # no hash randomisation
    assert partition_of("API3.Example.com", 4) == partition_of("api3.example.com", 4)
    assert partition_of("anything", 1) == 0


def _store(tmp_path: Path):
    return StateDir(tmp_path / "s").open_store()


def test_a_state_keeps_the_worker_count_it_was_made_with(tmp_path: Path) -> None:
    store = _store(tmp_path)
    check_layout(store, 2, tmp_path)  # a new directory takes any count
    write_layout(store, 2)
    assert layout_of(store) == 2
    check_layout(store, 2, tmp_path)
    with pytest.raises(StateError, match="--workers 2"):
        check_layout(store, 3, tmp_path)
    store.close()
    # one pipeline refuses it, naming the option
    with pytest.raises(StateError, match="--workers 2"):
        StateDir(tmp_path / "s").open_store()


def test_a_one_pipeline_state_refuses_workers(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.save({"run": {"totals": {"events": 1}}})
    with pytest.raises(StateError, match="--workers 1"):
        check_layout(store, 2, tmp_path)
    store.close()


def _finding(events: list[str], first: float, last: float, severity: str = "medium") -> Finding:
    f = Finding(detector="bola.enumeration", title="t", severity=severity, actor="user:a", key="k", event_ids=list(events),
                first_seen=first, last_seen=last)
    f.events = len(events)
    return f


def test_findings_with_the_same_key_merge_across_partitions() -> None:
    a = _finding(["e1", "e2"], 10.0, 20.0)
    b = _finding(["e3"], 5.0, 30.0, severity="high")
    other = Finding(detector="recon.scanning", title="t", actor="user:b", key="other", event_ids=["e9"], first_seen=1.0, last_seen=1.0)
    merged = merge_findings([[a], [b, other]])
    assert set(merged) == {a.id, other.id}
    m = merged[a.id]
    assert m.events == 3 and m.event_ids == ["e1", "e2", "e3"]
    assert (m.first_seen, m.last_seen, m.severity) == (5.0, 30.0, "high")
    assert a.events == 2 and a.event_ids == ["e1", "e2"]  # inputs untouched


def _inventory(host: str) -> Inventory:
    inv = Inventory()
    for i in range(5):
        call = make_call("GET", f"/v1/users/{100 + i}", json={"id": i}, host=host, ts=1_764_000_000 + i)
        ref = inv.resolve(call)
        inv.observe(call, ref, [])
    inv.observe(make_call("GET", "/health", host=host), EndpointRef(host=host, method="GET", template="/health"), [])
    return inv


def test_inventories_of_partitions_merge_by_host() -> None:
    a, b = _inventory("a.example.com"), _inventory("b.example.com")
    merged = merge_inventory(_inventory("a.example.com"), b)
    keys = set(merged.endpoints)
    assert keys == set(a.endpoints) | set(b.endpoints) and len(keys) == len(a.endpoints) + len(b.endpoints)
    assert merged.total == a.total + b.total
    assert {r["host"] for r in merged.templater.explain()} == {"a.example.com", "b.example.com"}


def test_hosts_are_balanced_by_their_calls_and_others_go_by_hash() -> None:
    calls = {"big.example": 500, "mid.example": 300, "a.example": 120, "b.example": 100, "c.example": 90, "d.example": 10}
    placed = balance(calls, 2)
    load = [sum(c for h, c in calls.items() if placed[h] == p) for p in (0, 1)]
    assert abs(load[0] - load[1]) <= 60  # busiest first, each on the least loaded: 590 / 530 of 1,120
    assert balance(calls, 2) == placed  # deterministic
    part = Partitioner(2, placed)
    assert part("BIG.example") == placed["big.example"]
    assert part("new.example") == partition_of("new.example", 2)
    assert Partitioner(2, {"x": 5})("x") == partition_of("x", 2)  # a map entry out of range is ignored
