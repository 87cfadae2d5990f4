"""The SQLite state store: keyed records, incremental checkpoints, spilling,
integrity, schema versions, permissions."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from apiward.learn.baselines import Baselines
from apiward.learn.sketches import LRU
from apiward.model.context import Context, EndpointRef
from apiward.state.store import SCHEMA, StateError, StateStore
from apiward.testing import make_call

SECRET = b"k" * 32


def learned(n_endpoints: int = 30, calls: int = 600) -> Baselines:
    b = Baselines()
    for i in range(calls):
        ep = EndpointRef(host="h", method="GET", template=f"/e{i % n_endpoints}")
        b.learn_one(make_call("GET", f"/e{i % n_endpoints}?q={i % 7}", user=f"u{i % 40}", ts=1_764_000_000 + i), Context(endpoint=ep))
    return b


def test_round_trip_and_only_changed_records_are_written(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db", SECRET)
    b = learned()
    first = store.save({"baselines": vars(b)})
    assert first["entries_written"] >= 30 + 40 and first["roots_written"] == 1
    # one more call touches one endpoint, one actor, one host: a handful of records
    ep = EndpointRef(host="h", method="GET", template="/e3")
    b.learn_one(make_call("GET", "/e3?q=1", user="u5", ts=1_764_100_000), Context(endpoint=ep))
    second = store.save({"baselines": vars(b)})
    assert 1 <= second["entries_written"] <= 4
    assert store.save({"baselines": vars(b)})["entries_written"] == 0
    store.close()
    again = StateStore(tmp_path / "state.db", SECRET)
    attrs = again.load("baselines")
    back = Baselines()
    back.__dict__.update(attrs)
    assert back.endpoint_stats("h|GET /e3").calls == b.endpoint_stats("h|GET /e3").calls
    assert back.param_profile("h|GET /e3", "query", "q").n == b.param_profile("h|GET /e3", "query", "q").n
    assert back.actors.size() == 40 and back.calls == b.calls
    assert len(back.actors) == 0 or len(back.actors) <= 40  # spilling tables load their values when used
    assert back.actor_stats("user:u7").calls == b.actor_stats("user:u7").calls


def test_spilled_entries_come_back_when_used(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db", SECRET)
    owners: LRU[str, dict] = LRU(10, spill=True)
    comp = {"bola": {"owners": owners}}
    store.save(comp)  # the table is known: evictions from now on spill
    for i in range(100):
        owners.put(f"obj{i}", {"alice": i})
    assert len(dict.keys(owners)) == 10 and "obj3" in owners
    assert owners.get("obj3") == {"alice": 3} and owners.evicted == 0  # read back, not forgotten
    store.save(comp)
    store.close()
    again = StateStore(tmp_path / "state.db", SECRET)
    attrs = again.load("bola")
    lru = attrs["owners"]
    assert lru.cap == 10 and lru.get("obj77") == {"alice": 77} and lru.get("obj5") == {"alice": 5}


def test_a_tampered_record_is_refused(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db", SECRET)
    store.save({"baselines": vars(learned(5, 50))})
    store.close()
    db = sqlite3.connect(tmp_path / "state.db")
    key, = db.execute("SELECT key FROM entries LIMIT 1").fetchone()
    db.execute("UPDATE entries SET value = x'81a178' WHERE key = ?", (key,))
    db.commit()
    db.close()
    # spilling tables are read when used: the tampered record is refused
    # the moment any part of apiward asks for it
    with pytest.raises(StateError, match="integrity"):
        attrs = StateStore(tmp_path / "state.db", SECRET).load("baselines")
        back = Baselines()
        back.__dict__.update(attrs or {})
        for table in (back.endpoints, back.actors):
            for k in list(table.keys()) + list(getattr(table.backing, "keys", ())):
                table.get(k)
    # the same bytes under another install's secret are refused too
    store2 = StateStore(tmp_path / "other.db", SECRET)
    store2.save({"x": {"a": 1}})
    store2.close()
    with pytest.raises(StateError, match="integrity"):
        StateStore(tmp_path / "other.db", b"z" * 32).load("x")


def test_schema_from_a_newer_apiward_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db", SECRET, version="9.9")
    store.set_meta("schema", str(SCHEMA + 1))
    store.close()
    with pytest.raises(StateError, match="newer apiward"):
        StateStore(tmp_path / "state.db", SECRET)


def test_state_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db", SECRET)
    store.save({"x": {"a": 1}})
    for p in tmp_path.iterdir():
        assert stat.S_IMODE(os.stat(p).st_mode) & 0o077 == 0, p


def test_older_schema_without_a_migration_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db", SECRET)
    store.set_meta("schema", "1")  # schema 1 was the pickle snapshot: nothing to migrate from
    store.close()
    with pytest.raises(StateError, match="no migration from state schema 1"):
        StateStore(tmp_path / "state.db", SECRET)


def test_a_pickle_snapshot_is_refused_without_being_loaded(tmp_path: Path) -> None:
    """A planted ``state.pkl`` whose unpickling would create a file: apiward
    refuses it with a clear message and the file is never created."""
    import pickle

    from apiward.pipeline import Pipeline

    marker = tmp_path / "pwned"

    class Plant:
        def __reduce__(self):  # what an attacker writes into a shared volume
            return (open, (str(marker), "w"))

    state = tmp_path / "s"
    state.mkdir()
    (state / "state.pkl").write_bytes(pickle.dumps(Plant()))
    with pytest.raises(StateError, match="no longer loads pickles"):
        Pipeline(state)
    assert not marker.exists()


def test_identifiers_in_state_are_keyed_with_the_install_secret(tmp_path: Path) -> None:
    """Usernames reach the state only as digests keyed with ``<state>/secret``:
    the plain digest of a guessed username is nowhere in the files."""
    from apiward.detect.objects import digest, use_secret
    from apiward.pipeline import Pipeline

    name = "alice.victim@example.com"
    pipe = Pipeline(tmp_path / "s")
    batch = [make_call("POST", "/api/login", status=401, req_json={"username": name, "password": f"pw{i}"},
                       ip=f"198.51.100.{i}", ts=1_764_000_000 + i, id=f"l#{i}") for i in range(40)]
    pipe.process(batch)
    pipe.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "s").glob("state.db*"))
    forms = [(v, salt) for v in (name, name.lower()) for salt in (b"", b"apiward-login")]
    keyed = {digest(v, salt) for v, salt in forms}
    assert any(k.encode() in raw for k in keyed), "the login was not kept at all: the test checks nothing"
    use_secret(b"")  # what anyone could compute from a guessed username
    try:
        plain = {digest(v, salt) for v, salt in forms}
    finally:
        use_secret(bytes.fromhex((tmp_path / "s" / "secret").read_text().strip()))
    assert not any(p.encode() in raw for p in plain)


def test_inventory_endpoints_are_records_of_their_own(tmp_path: Path) -> None:
    """A checkpoint after one more call rewrites that call's endpoint record,
    not the whole inventory (it was one root record growing with the estate)."""
    from apiward.pipeline import Pipeline

    pipe = Pipeline(tmp_path / "s")
    batch = [make_call("GET", "/api/orders", host=f"h{i % 60}.example.com", json={"ok": i}, user=f"u{i % 7}",
                       ts=1_764_000_000 + i, id=f"c#{i}") for i in range(300)]
    pipe.process(batch)
    pipe.checkpoint()
    assert len(pipe.inventory.endpoints) >= 50
    pipe.process([make_call("GET", "/api/orders", host="h3.example.com", json={"ok": 1}, user="u1", ts=1_764_001_000, id="c#x")])
    pipe.checkpoint()
    db = sqlite3.connect(tmp_path / "s" / "state.db")
    (root,) = db.execute("SELECT length(value) FROM roots WHERE component = 'inventory'").fetchone()
    (n,) = db.execute("SELECT count(*) FROM entries WHERE component = 'inventory' AND tbl = 'endpoints'").fetchone()
    assert n == len(pipe.inventory.endpoints)
    assert not pipe.inventory.endpoints.dirty  # written and cleared
    # the root holds no endpoint record: far smaller than the records themselves
    (records,) = db.execute("SELECT sum(length(value)) FROM entries WHERE component = 'inventory' AND tbl = 'endpoints'").fetchone()
    assert root < records / 4
    pipe.close()
    again = Pipeline(tmp_path / "s")
    # the records wait in the store (read on use): every key is known, every record reads back
    assert set(again.inventory.endpoints.all_keys()) == set(pipe.inventory.endpoints.all_keys())
    assert {k: r.calls for k, r in again.inventory.endpoints.each()} == {k: r.calls for k, r in pipe.inventory.endpoints.each()}
    assert set(again.inventory.templater._trees) == set(pipe.inventory.templater._trees) and len(pipe.inventory.templater._trees) == 60
    assert again.inventory.templater._trees["h3.example.com"].n == pipe.inventory.templater._trees["h3.example.com"].n


def test_spills_between_checkpoints_leave_memory_and_commit_with_the_next_one(tmp_path: Path, monkeypatch) -> None:
    """Spilled values go to the store's spill table once they pass a size
    (memory stays bounded however long a checkpoint waits); the checkpoint
    moves them into the entries; a run that crashes before it leaves the
    committed entries as they were."""
    import apiward.state.store as store_mod

    monkeypatch.setattr(store_mod, "SPILL_FLUSH_BYTES", 2000)
    store = StateStore(tmp_path / "state.db", SECRET)
    owners: LRU[str, dict] = LRU(10, spill=True)
    comp = {"bola": {"owners": owners}}
    owners.put("obj0", {"alice": 0})
    store.save(comp)
    for i in range(1, 300):
        owners.put(f"obj{i}", {"alice": i})
    pending = sum(len(v) for b in store._backings.values() for v in b.pending.values())
    assert pending < 2000 and store._spilled
    assert owners.get("obj7") == {"alice": 7}  # read back from the spill table
    owners.get("obj0")["bob"] = 1  # committed before, changed now, then spilled again
    for i in range(300, 320):
        owners.put(f"obj{i}", {"alice": i})
    store.close()  # a crash: no checkpoint since the first
    crashed = StateStore(tmp_path / "state.db", SECRET)
    attrs = crashed.load("bola")
    assert attrs["owners"].get("obj0") == {"alice": 0} and attrs["owners"].get("obj150") is None
    assert crashed.db.execute("SELECT count(*) FROM spill").fetchone() == (0,)
    # the same again, checkpointed this time
    lru = attrs["owners"]
    comp = {"bola": {"owners": lru}}
    crashed.save(comp)
    for i in range(1, 300):
        lru.put(f"obj{i}", {"alice": i})
    crashed.save(comp)
    crashed.close()
    again = StateStore(tmp_path / "state.db", SECRET).load("bola")["owners"]
    assert again.get("obj150") == {"alice": 150} and again.get("obj299") == {"alice": 299} and again.size() == 300


def test_state_of_schema_2_is_migrated_and_older_readers_are_refused(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db", SECRET)
    store.save({"x": {"a": 1}})
    store.set_meta("schema", "2")
    store.close()
    store = StateStore(tmp_path / "state.db", SECRET)
    assert store.meta("schema") == str(SCHEMA) and store.load("x") == {"a": 1}


def test_a_snapshot_reads_one_commit_while_a_writer_checkpoints(tmp_path: Path) -> None:
    writer = StateStore(tmp_path / "state.db", SECRET)
    writer.save({"run": {"calls": 1}})
    reader = StateStore(tmp_path / "state.db", SECRET, readonly=True)
    with reader.snapshot():
        assert reader.load("run")["calls"] == 1
        writer.save({"run": {"calls": 2}})  # a checkpoint beside the reader
        assert reader.load("run")["calls"] == 1  # still the commit the snapshot began with
    assert reader.load("run")["calls"] == 2
    reader.close()
    writer.close()


def test_endpoints_over_the_inventory_cap_wait_in_the_store_and_every_view_sees_them(tmp_path: Path) -> None:
    """The inventory never forgets an endpoint, but over its cap (its share
    of the memory budget) the least recently called ones are spilled: views,
    template merges and a restart see them as if they were in memory."""
    from apiward.pipeline import Pipeline
    from apiward.state import StateDir

    pipe = Pipeline(tmp_path / "s")
    pipe.inventory.endpoints.set_cap(64)
    pipe.budget.designed[id(pipe.inventory.endpoints)] = 64  # as if the budget allowed no more (its floor)
    hosts = [f"h{i}.example.com" for i in range(100)]
    calls = [make_call("GET", "/api/health", host=h, json={"ok": True}, user="u1", ts=1_764_000_000 + i, id=f"h#{i}")
             for i, h in enumerate(hosts)]
    # one host's users by name, spilled as literal paths before the templater merges them
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar"]
    calls += [make_call("GET", f"/repos/{n}/issues", host="git.example.com", json={"n": 1}, user=f"u{j % 5}",
                        ts=1_764_000_100 + 3 * j + k, id=f"r#{j}-{k}") for j, n in enumerate(names) for k in range(3)]
    pipe.process(calls)
    pipe.checkpoint()
    eps = pipe.inventory.endpoints
    assert len(eps) <= 64 < eps.size()
    keys = set(eps.all_keys())
    assert {(h, "GET", "/api/health") for h in hosts} <= keys
    repos = {k: r for k, r in eps.each() if k[0] == "git.example.com"}
    assert sum(r.calls for r in repos.values()) == 36
    assert all("alice" not in k[2] for k in repos)  # the spilled literal records were merged too
    assert len(pipe.inventory.records()) == len(keys) == eps.size()
    pipe.close()

    # a restart reads them on use; the read model (apiward inventory) holds them all
    again = Pipeline(tmp_path / "s")
    assert set(again.inventory.endpoints.all_keys()) == keys
    assert again.inventory.endpoints.get(("h0.example.com", "GET", "/api/health")).calls == 1
    snap = StateDir(tmp_path / "s").load()
    assert {(r.host, r.method, r.template) for r in snap["inventory"].records()} == keys
    again.close()


def _tree_shape(node) -> tuple:
    """A template tree as nested tuples (counts, ends, children), for equality."""
    return (node.n, tuple(sorted(node.ends.items())),
            tuple((k, _tree_shape(c)) for k, c in sorted(node.lit.items())),
            tuple((k, _tree_shape(c)) for k, c in sorted(node.par.items())))


def test_a_large_hosts_template_tree_is_stored_in_chunks_and_a_call_rewrites_only_its_path(tmp_path: Path) -> None:
    """One host with thousands of endpoints: its tree was one record,
    rewritten whole at every checkpoint the host was called in. It is
    stored in chunks of bounded size; a call rewrites the chunks on its
    path; a restart puts the same tree together again."""
    import sqlite3

    from apiward.discover.templating import _CHUNK
    from apiward.pipeline import Pipeline

    pipe = Pipeline(tmp_path / "s")
    batch = [make_call("GET", f"/svc{e % 40}/items{e}/{1000 + i % 7}", json={"id": i}, user=f"u{i % 9}",
                       ts=1_764_000_000 + i, id=f"c#{i}") for i, e in enumerate(list(range(3000)) * 2)]
    pipe.process(batch)
    pipe.checkpoint()
    db = sqlite3.connect(tmp_path / "s" / "state.db")
    sizes = [n for (n,) in db.execute("SELECT length(value) FROM entries WHERE component = 'inventory' AND tbl = 'templater._roots'")]
    t = pipe.inventory.templater
    assert len(sizes) > 10 and max(sizes) < sum(sizes) / 5  # many chunks, none holding most of the tree
    assert all(size <= 2 * _CHUNK for _, size in (v for v in t._rechunk("api.example.com", t._trees["api.example.com"]).values()))

    def tree_rows_written(calls) -> int:
        before = {k: v for k, v in db.execute("SELECT key, value FROM entries WHERE component = 'inventory' AND tbl = 'templater._roots'")}
        pipe.process(calls)
        pipe.checkpoint()
        after = {k: v for k, v in db.execute("SELECT key, value FROM entries WHERE component = 'inventory' AND tbl = 'templater._roots'")}
        assert after.keys() == before.keys()
        return [len(after[k]) for k in after if after[k] != before[k]]

    changed = tree_rows_written([make_call("GET", "/svc3/items43/1002", json={"id": 1}, user="u1", ts=1_764_010_000, id="c#one")])
    # the host's top chunk and the chunk(s) on the path, not the tree
    assert 1 <= len(changed) <= 3 and sum(changed) < sum(sizes) / 4
    pipe.close()
    again = Pipeline(tmp_path / "s")
    assert _tree_shape(again.inventory.templater._trees["api.example.com"]) == _tree_shape(t._trees["api.example.com"])
    # the memory budget counts each chunk's own nodes, known again after the restart
    assert all(ch.nodes > 0 for ch in again.inventory.templater._roots.values())
    assert again.inventory.templater.resolve("GET", "api.example.com", "/svc3/items43/1009") == t.resolve("GET", "api.example.com", "/svc3/items43/1009")
    again.close()


def test_a_whole_tree_stored_by_an_older_apiward_loads_and_is_chunked_at_the_next_checkpoint() -> None:
    """State from before chunks keeps a host's whole tree under the host's
    name: it loads as it is, the next sync replaces it with chunks, and a
    tree put together from those chunks is the same tree."""
    from collections import OrderedDict

    from apiward.discover.templating import Templater, _Chunk
    from apiward.state import codec

    t = Templater()
    for e in range(1500):
        t.observe("GET", "old.example.com", f"/a{e % 30}/b{e}/{e % 5}")
    shape = _tree_shape(t._trees["old.example.com"])
    old = Templater()
    legacy = codec.loads(codec.dumps(t._trees["old.example.com"]))  # what the table held: the whole tree
    for k in list(OrderedDict.keys(old._roots)):
        OrderedDict.__delitem__(old._roots, k)
    OrderedDict.__setitem__(old._roots, "old.example.com", legacy)
    old._stitch()
    assert _tree_shape(old._trees["old.example.com"]) == shape and old._touched == {"old.example.com": None}
    state = old.__getstate__()  # a checkpoint: the legacy entry goes, chunks come
    keys = list(OrderedDict.keys(state["_roots"]))
    assert "old.example.com" in state["_roots"].gone and len(keys) > 3 and all(isinstance(k, tuple) for k in keys)
    assert all(isinstance(v, _Chunk) for v in OrderedDict.values(state["_roots"]))
    back = codec.loads(codec.dumps(old))
    assert _tree_shape(back._trees["old.example.com"]) == shape
