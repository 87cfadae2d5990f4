"""The state codec: round trips apiward's state without pickle, refuses
anything that is not apiward state, never runs code named by the data."""

from __future__ import annotations

import random
from collections import Counter, OrderedDict, defaultdict, deque

import msgspec
import pytest

from apiward.detect.objects import Ring
from apiward.learn.sketches import LRU, Distinct
from apiward.model.finding import Finding
from apiward.state import codec


def test_round_trip_of_containers_scalars_and_apiward_objects() -> None:
    lru: LRU[str, int] = LRU(3)
    for k in "abcd":
        lru.put(k, ord(k))
    d = Distinct()
    for i in range(200):
        d.add(i * 7919)
    rng = random.Random(5)
    rng.random()
    value = {
        ("a", 1): {1, 2, 3}, "t": (1, (2, "x")), "big": 1 << 90, "neg": -(1 << 70), "f": frozenset({"x"}),
        "od": OrderedDict(b=2, a=1), "c": Counter("hello"), "dd": defaultdict(list, {"k": [1]}),
        "q": deque([1, 2], maxlen=5), "ring": Ring(4), "lru": lru, "distinct": d, "rng": rng,
        "finding": Finding(detector="x.y", title="t", event_ids=["e1"]), "bytes": b"\x00\xff", "none": None,
    }
    value["ring"].extend([1, 2, 3, 4, 5])
    back = codec.loads(codec.dumps(value))
    assert back[("a", 1)] == {1, 2, 3} and back["t"] == (1, (2, "x")) and back["big"] == 1 << 90 and back["neg"] == -(1 << 70)
    assert list(back["od"]) == ["b", "a"] and back["c"]["l"] == 2 and back["dd"]["new"] == [] and back["q"].maxlen == 5
    assert type(back["ring"]) is Ring and list(back["ring"]) == [2, 3, 4, 5] and back["ring"].maxlen == 4
    assert type(back["lru"]) is LRU and list(back["lru"]) == ["b", "c", "d"] and back["lru"].cap == 3 and back["lru"].evicted == 1
    assert len(back["distinct"]) == len(d) and back["rng"].random() == rng.random()
    assert back["finding"] == value["finding"] and back["bytes"] == b"\x00\xff" and back["none"] is None


@pytest.mark.parametrize(
    "data",
    [
        [["os:system"], {"x": [0, 1, [{"t": ["echo pwned"]}]]}],  # a class outside apiward
        [["builtins:eval"], {"x": [0, 2, "1"]}],
        [["apiward.state.codec:CodecError"], {"x": [0, 0, {}]}],  # an exception class
        [["apiward.state.codec:encode"], {"x": [0, 2, None]}],  # a function, not a class
        [["collections:ChainMap"], {"o": [0, [], {"D": {}}]}],
        [[], {"x": [3, 0, {}]}],  # a class index out of range
        [[], {"dd": ["os.system", []]}],
        [[], {"zz": 1}],
        [[], {"a": 1, "b": 2}],
        [[], {"i": "9" * 5000}],
        [["apiward.learn.sketches:Distinct"], {"x": [0, 1, [None, "bad", 1]]}],
        [[1, 2], 3],
        {"not": "a record"},
    ],
)
def test_anything_else_is_refused_without_running_it(data) -> None:
    with pytest.raises(codec.CodecError):
        codec.loads(msgspec.msgpack.encode(data))


def test_unsupported_objects_are_not_stored() -> None:
    with pytest.raises(codec.CodecError):
        codec.dumps({"f": lambda: 1})
    with pytest.raises(codec.CodecError):
        codec.dumps(defaultdict(lambda: 0))


def test_value_profiles_round_trip_and_read_the_older_feature_form() -> None:
    """Profiles write their features as flat scalar lists (cheap to encode
    at every checkpoint and spill) and still read states saved with a
    ``_Feature`` object per feature."""
    from apiward.learn.profiles import ValueProfile, _Categorical, _Feature

    p = ValueProfile()
    for i in range(300):
        p.learn(str(1000 + i % 50), actor=i % 7)
    p.learn("abc x", actor=3)
    back = codec.loads(codec.dumps(p))
    assert codec.dumps(back) == codec.dumps(p)
    for probe in ("1234", "1' OR 1=1", "abc x"):
        assert back.score(probe) == p.score(probe)
    assert back.chars.full == p.chars.full and list(back.values.items) == list(p.values.items)
    # the older form: (items: {key: _Feature}, cap, overflow, support_cap)
    old = _Categorical.__new__(_Categorical)
    old.__setstate__(({k: f for k, f in p.chars.items.items()}, p.chars.cap, p.chars.overflow, p.chars.support_cap))
    assert all(type(f) is _Feature for f in old.items.values()) and old.full == p.chars.full
    with pytest.raises(codec.CodecError):
        bad = codec.encode(p.chars)
        bad[1]["x"][2][0] = ["k", 1, 3, -5]  # a negative actor count never loops
        codec.decode(bad)


def test_slotted_objects_are_written_positionally_and_read_by_slot_name() -> None:
    from apiward.discover.schema import BodySchema, Node

    schema = BodySchema()
    for i in range(5):
        schema.learn({"id": i, "tags": [{"name": f"t{i}", "kind": "x"}], "owner": {"email": f"u{i}@x.io"}}, float(i))
    raw = codec.dumps(schema)
    back = codec.loads(raw)
    assert back.to_dict() == schema.to_dict()
    record = msgspec.msgpack.decode(raw)
    assert len(record) == 3  # the slot table: each class's slot names once per record
    node_index = str(record[0].index("apiward.discover.schema:Node"))
    assert record[2][node_index] == list(Node.__slots__)
    assert raw.count(b"first_seen") == 1  # not once per node

    # a slot never set is written by name (the general path) and stays unset
    bare = Node.__new__(Node)
    bare.n = 3
    again = codec.loads(codec.dumps(bare))
    assert again.n == 3 and not hasattr(again, "types")


def test_a_slot_table_naming_slots_this_apiward_lacks_is_read_without_them() -> None:
    from apiward.discover.schema import Node

    node = Node(ts=7.0)
    node.n = 4
    names, body, slots = msgspec.msgpack.decode(codec.dumps(node))
    (index,) = slots
    slots[index] = ["gone_in_this_version"] + slots[index]  # a record from an apiward with one slot more
    body["x"][2] = [123] + body["x"][2]
    back = codec.loads(msgspec.msgpack.encode([names, body, slots]))
    assert back.n == 4 and back.first_seen == 7.0 and not hasattr(back, "gone_in_this_version")


@pytest.mark.parametrize("slots", [{"0": ["__class__"]}, {"0": [1]}, ["n"], {"0": ["n", "types"]}])
def test_a_malformed_slot_table_is_refused(slots) -> None:
    names, body, _ = msgspec.msgpack.decode(codec.dumps(__import__("apiward.discover.schema", fromlist=["Node"]).Node()))
    body["x"][2] = [1]
    with pytest.raises(codec.CodecError):
        codec.loads(msgspec.msgpack.encode([names, body, slots]))
