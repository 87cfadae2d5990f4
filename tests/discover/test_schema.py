from __future__ import annotations

from apiward.state import codec

import pytest

from apiward.discover.schema import ENUM_MAX, BodySchema, ParamSet, Tokenizer, detect_format


@pytest.mark.parametrize(
    "value,fmt",
    [
        ("alice@example.com", "email"),
        ("3f2b8c1e-9a4d-4b7e-8c21-0f5e6d7c8b9a", "uuid"),
        ("2024-05-01T10:20:30Z", "date-time"),
        ("2024-05-01T10:20:30.123+02:00", "date-time"),
        ("2024-05-01", "date"),
        ("192.168.10.1", "ipv4"),
        ("2001:db8::1", "ipv6"),
        ("https://example.com/x?y=1", "uri"),
        ("hello world", ""),
        ("12345", ""),
        ("999.1.1.1", ""),
    ],
)
def test_detect_format(value: str, fmt: str) -> None:
    assert detect_format(value) == fmt


def _learn_many(values: list, **kw) -> BodySchema:
    bs = BodySchema(**kw)
    for i, v in enumerate(values):
        bs.learn(v, 1000.0 + i, tokenize=Tokenizer(b"k"))
    return bs


def test_types_formats_enums_lengths_and_required() -> None:
    bodies = []
    for i in range(60):
        b = {
            "id": i,
            "price": i + 0.5,
            "email": f"user{i}@example.com",
            "uid": f"3f2b8c1e-9a4d-4b7e-8c21-{i:012d}",
            "created": "2024-05-01T10:20:30Z",
            "status": ["active", "pending", "closed"][i % 3],
            "note": "x" * (255 if i == 7 else i % 50),
            "tags": ["a", "b"][: i % 3],
            "address": {"city": "Paris", "zip": "75001"},
        }
        if i % 2:
            b["nickname"] = f"nick{i}"
        bodies.append(b)
    bs = _learn_many(bodies)
    f = dict(bs.fields())
    assert f["id"].type == "integer" and (f["id"].min, f["id"].max) == (0, 59)
    assert f["price"].type == "number"
    assert f["email"].format == "email"
    assert f["uid"].format == "uuid"
    assert f["created"].format == "date-time"
    assert f["status"].enum_values() == ["active", "closed", "pending"]
    assert f["note"].max_len == 255  # "only ever held 255 characters"
    assert f["note"].enum_values() is None
    assert f["tags"].type == "array" and f["tags"].max_len == 2 and f["tags[]"].type == "string"
    assert f["address.city"].type == "string"
    root = bs.root
    assert f["id"].required_in(root.objs)
    assert not f["nickname"].required_in(root.objs)
    # high-cardinality strings are never enums
    assert f["email"].enum_values() is None and f["uid"].enum_values() is None


def test_integer_and_float_fold_to_number_and_nullable() -> None:
    bs = _learn_many([{"v": 1}, {"v": 2.5}, {"v": None}])
    node = dict(bs.fields())["v"]
    assert node.type == "number"
    assert node.nullable


def test_examples_are_redacted() -> None:
    bs = BodySchema()
    tok = Tokenizer(b"secret-key")
    bs.learn({"email": "alice@example.com", "password": "hunter2", "card": "4111111111111111", "name": "Alice",
              "ssn_field": "123-45-6789"}, 1.0, tokenize=tok, sensitive={"ssn_field": "ssn"})
    f = dict(bs.fields())
    assert f["email"].example.startswith("«email:") and "alice" not in f["email"].example
    assert f["password"].example.startswith("«secret:")
    assert f["card"].example.startswith("«secret:")
    assert f["ssn_field"].example.startswith("«ssn:")
    assert f["name"].example == "Alice"
    # same value, same token; different values, different tokens
    assert tok("a@b.co", "email") == tok("a@b.co", "email") != tok("c@d.co", "email")
    # secret-named fields never keep raw values as enum members
    for _ in range(10):
        bs.learn({"password": "hunter2"}, 2.0, tokenize=tok)
    assert dict(bs.fields())["password"].enum is None


def test_bounded_memory_on_10k_distinct_fields() -> None:
    bs = BodySchema(max_nodes=256, max_depth=8)
    for i in range(100):
        bs.learn({f"field_{i}_{j}": j for j in range(100)}, float(i))
    assert bs.root.count_nodes() <= 256
    assert bs.nodes <= 256
    assert bs.overflow >= 10_000 - 256
    # deep nesting is capped too
    deep: dict = {}
    cur = deep
    for _ in range(50):
        cur["x"] = {}
        cur = cur["x"]
    bs2 = BodySchema(max_depth=8)
    bs2.learn(deep, 0.0)
    assert max(p.count(".") for p, _ in bs2.fields()) < 8
    # enums are capped
    bs3 = _learn_many([{"s": f"v{i}"} for i in range(100)])
    assert dict(bs3.fields())["s"].enum is None
    assert ENUM_MAX < 100


def test_new_field_and_type_change_callbacks() -> None:
    bs = BodySchema()
    new: list[str] = []
    changed: list[tuple[str, str]] = []
    for i in range(30):
        bs.learn({"a": i}, float(i), on_new=lambda p, n: new.append(p), on_type=lambda p, n, t: changed.append((p, t)))
    bs.learn({"a": "text", "b": {"c": 1}}, 99.0, on_new=lambda p, n: new.append(p), on_type=lambda p, n, t: changed.append((p, t)))
    assert new == ["a", "b", "b.c"]
    assert changed == [("a", "string")]


def test_params_infer_types_and_required() -> None:
    ps = ParamSet()
    for i in range(20):
        items = [("page", str(i)), ("sort", ["asc", "desc"][i % 2])]
        if i % 4 == 0:
            items.append(("q", "x"))
        ps.learn(items, float(i))
    d = ps.to_dict()
    assert d["page"]["type"] == "integer" and d["page"]["max"] == 19
    assert d["sort"]["type"] == "string" and d["sort"]["enum"] == ["asc", "desc"]
    assert d["page"]["required"] and not d["q"]["required"]


def test_params_capped_and_state_codec_round_trip() -> None:
    ps = ParamSet(max_params=10)
    ps.learn([(f"p{i}", "1") for i in range(100)], 0.0)
    assert len(ps.params) == 10 and ps.overflow == 90
    bs = _learn_many([{"a": 1, "b": [{"c": "x"}]}] * 3)
    bs2 = codec.loads(codec.dumps(bs))
    assert bs2.to_dict() == bs.to_dict()


def test_nested_scalars_and_array_items_learn_every_statistic() -> None:
    """Object members and array items that are scalars are learned inline
    (no recursive call): the same counts, ranges, formats, enums, examples,
    sensitive redaction and change callbacks as containers get."""
    bs = BodySchema()
    new: list[str] = []
    types: list[tuple[str, str]] = []
    for i in range(25):
        bs.learn({"user": {"email": f"u{i}@example.com", "age": 20 + i, "score": 0.5 * i, "ok": True, "note": None,
                           "kind": "a" if i % 2 else "b"},
                  "tags": ["x", "y", 3], "ids": [i, i + 1]},
                 float(i), sensitive={"user.email": "email"}, tokenize=Tokenizer(b"k"),
                 on_new=lambda p, n: new.append(p), on_type=lambda p, n, t: types.append((p, t)))
    bs.learn({"user": {"age": "old"}, "ids": ["z"]}, 99.0, on_type=lambda p, n, t: types.append((p, t)))
    f = dict(bs.fields())
    assert f["user.age"].n == 26 and f["user.age"].min == 20 and f["user.age"].max == 44
    assert f["user.age"].types == {"integer": 25, "string": 1} and f["user.age"].example == 20
    assert f["user.score"].types == {"number": 25} and f["user.score"].max == 12.0
    assert f["user.ok"].types == {"boolean": 25} and f["user.ok"].min is None
    assert f["user.note"].types == {"null": 25} and f["user.note"].example is None
    assert f["user.kind"].enum_values() == ["a", "b"]
    email = f["user.email"]
    assert email.fmt == "email" and email.enum is None and email.example.startswith("«email:")
    assert f["tags[]"].n == 75 and f["tags[]"].types == {"string": 50, "integer": 25} and f["tags[]"].min == 3
    assert f["tags[]"].min_len == 1 and f["tags[]"].enum == {"x", "y"}
    assert f["ids[]"].types == {"integer": 50, "string": 1} and f["ids[]"].max == 25
    assert ("user.age", "string") in types and ("ids[]", "string") in types
    assert new == ["user", "user.email", "user.age", "user.score", "user.ok", "user.note", "user.kind", "tags", "ids"]
