from __future__ import annotations

from apiward.state import codec

from apiward.learn.profiles import ValueProfile, value_features, value_kind, word_shape


def test_value_kinds() -> None:
    assert value_kind("42") == "int"
    assert value_kind("-3.5") == "float"
    assert value_kind("true") == "bool"
    assert value_kind("3f2504e0-4f89-11d3-9a0c-0305e82c3301") == "uuid"
    assert value_kind("bob@example.com") == "email"
    assert value_kind("https://example.com/a") == "url"
    assert value_kind("2024-05-01T10:00:00Z") == "date"
    assert value_kind("Jamón") == "alpha"
    assert value_kind("hello world") == "text"
    assert value_kind("") == "empty"


def test_features_shape_and_specials() -> None:
    kind, length, specials, shape, _, _ = value_features("C/ Copernic 161")
    assert (kind, length) == ("text", 15)
    assert specials == frozenset("/")
    assert shape == "A/ Aa 9"
    assert word_shape("9a9a9") == "x" and word_shape("Aa Aa") == "A A"


def _trained(values: list[str], actors: int = 50) -> ValueProfile:
    p = ValueProfile()
    for i, v in enumerate(values):
        p.learn(v, actor=i % actors)
    return p


def test_in_profile_values_score_zero() -> None:
    p = _trained([str(1000 + i * 7) for i in range(300)])
    assert p.score("1500") == (0.0, [])


def test_injection_characters_flagged_with_reason() -> None:
    p = _trained([str(1000 + i * 7) for i in range(300)])
    s, why = p.score("1' OR '1'='1")
    assert s >= 0.85
    assert any(r.startswith("unseen characters") for r in why)


def test_enum_value_outside_the_set() -> None:
    p = _trained(["asc", "desc"] * 150)
    assert p.score("desc")[0] == 0.0
    s, why = p.score("random")
    assert s >= 0.7 and any("known values" in r for r in why)


def test_overlong_and_fixed_length() -> None:
    p = _trained([f"{i:09d}A" for i in range(300)])
    s, why = p.score("0000000001AB")
    assert s >= 0.6 and any("length" in r for r in why)
    p2 = _trained(["word " * (i % 5 + 1) for i in range(300)])
    s2, _ = p2.score("A" * 400)
    assert s2 >= 0.9


def test_immature_profile_does_not_judge() -> None:
    p = _trained(["1", "2", "3"])
    assert p.score("<script>") == (0.0, [])


def test_shape_used_by_many_actors_becomes_normal_but_one_actor_stays_anomalous() -> None:
    p = _trained([f"item-{i}" for i in range(300)])
    # One actor sends a new format, many times.
    for _ in range(50):
        p.learn("item_77", actor=999)
    s_one, why = p.score("item_88")
    assert s_one > 0 and any("_" in r for r in why)
    # Then many distinct actors adopt it: the profile adapts.
    for a in range(20):
        p.learn(f"item_{a}", actor=2000 + a)
    assert p.score("item_88")[0] < s_one


def test_free_text_with_varied_shapes_does_not_alarm() -> None:
    words = ["the", "quick", "Brown", "fox", "jumps", "over", "lazy", "dog", "42", "again"]
    vals = [" ".join(words[(i + j) % 10] for j in range(i % 7 + 2)) for i in range(400)]
    p = _trained(vals)
    s, _ = p.score("lazy Brown dog jumps over the quick fox again and again")
    assert s < 0.6


def test_profile_survives_the_state_codec_and_keeps_no_raw_values() -> None:
    p = _trained(["s3cret-token-value"] * 40)
    blob = codec.dumps(p)
    assert b"s3cret" not in blob
    back = codec.loads(blob)
    assert back.n == 40 and back.score("s3cret-token-value") == (0.0, [])
    assert back.to_dict()["n"] == 40


# -- former false positives: benign look-alikes stay quiet, attacks still score


def _passwords() -> ValueProfile:
    import random

    rng = random.Random(5)
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    specials = "!$%@-_."
    p = ValueProfile()
    for i in range(400):
        n = rng.randint(8, 16)
        v = "".join(rng.choice(alphabet) for _ in range(n))
        if i % 3 == 0:
            v += rng.choice(specials)
        p.learn(v, actor=i % 120)
    return p


def test_free_form_secret_ignores_character_class_and_kind_novelty() -> None:
    p = _passwords()
    assert p.free_form()
    for pw in ("S%zqv*PCaay5q", "EQW6FR86Eof%BL#", "123123", "aa123456", "Winter2024!", "Z&i#URWBScx", ""):
        assert p.score(pw, secret=True) == (0.0, []), pw
        # The same values in a field not named as a secret are still judged.
    assert p.score("S%zqv*PCaay5q")[0] > 0.6
    # A secret still cannot be over-long or carry line breaks.
    s, why = p.score("x" * 400, secret=True)
    assert s > 0.6 and why[0].startswith("length")
    s, why = p.score("abc\r\nSet-Cookie: a=1", secret=True)
    assert s >= 0.8 and "unseen characters" in why[0]


def test_fixed_format_secret_is_still_judged() -> None:
    p = _trained([f"{i * 7919:032x}" for i in range(300)])  # an API key: always 32 hex digits
    assert not p.free_form()
    s, why = p.score("not-a-key!", secret=True)
    assert s >= 0.6, why


def test_integer_ids_growing_a_digit_are_judged_by_range_only() -> None:
    p = _trained([str(10 + i % 100) for i in range(300)])  # ids 10..109, always 2-3 digits
    s, why = p.score("999")
    assert s < 0.6 and not any(r.startswith("length") for r in why), why
    s, why = p.score("8639")  # far outside the learned range: reported, below the alert bar
    assert 0 < s < 0.6 and why == ["number 8639 outside [10, 109]"]
    codes = _trained(["%03d" % (i % 50) for i in range(300)])  # zero-padded codes: length matters
    assert codes.score("0042")[0] >= 0.6
    cards = _trained([str(4000_0000_0000_0000 + i * 7_919_113) for i in range(300)])  # long fixed-length numbers are codes
    assert cards.score("40000000000000001")[0] >= 0.6 and cards.score("400000000000000")[0] >= 0.6


def test_new_enum_member_that_looks_like_the_others_is_below_the_bar() -> None:
    p = _trained(["created_at"] * 200 + ["total"] * 60 + ["status"] * 40)
    s, why = p.score("date")
    assert 0 < s < 0.6 and why == ["value not among 3 known values"]
    # A new member with new characters or shape is not.
    assert p.score("date;desc")[0] >= 0.6
    assert p.score("created_at DESC")[0] >= 0.6
