from __future__ import annotations

from apiward.state import codec

from apiward.learn.sketches import LRU, CappedCounter, Distinct, LogHistogram, SmallSet, Welford, key_hash


def test_key_hash_is_stable_across_processes() -> None:
    # CRC-32, not Python's randomised hash(): a fixed value.
    assert key_hash("user:alice") == key_hash("user:alice")
    assert key_hash("abc") == 891568578


def test_welford_matches_direct_computation() -> None:
    w = Welford()
    xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
    for x in xs:
        w.add(x)
    assert w.n == 8 and w.mean == 5.0 and w.lo == 2.0 and w.hi == 9.0
    assert abs(w.std - 2.138) < 0.01


def test_log_histogram_tail() -> None:
    h = LogHistogram()
    for x in [1, 2, 3, 100, 1000]:
        h.add(x)
    assert h.frac_at_least(64) == 0.4
    assert h.frac_at_least(0) == 1.0


def test_distinct_exact_then_approximate_and_bounded() -> None:
    d = Distinct(exact=16)
    for i in range(10):
        d.add(key_hash(str(i)))
    assert len(d) == 10
    for i in range(2000):
        d.add(key_hash(f"k{i}"))
    assert d.items is None  # switched to the bitmap: memory is fixed
    assert 1600 < len(d) < 2500


def test_small_set_saturates() -> None:
    s = SmallSet(3)
    for h in [1, 2, 2, 3, 4, 5]:
        s.add(h)
    assert len(s) == 3 and 1 in s and 5 not in s


def test_capped_counter_overflow() -> None:
    c: CappedCounter[str] = CappedCounter(2)
    assert c.add("a") and c.add("b") and c.add("a")
    assert not c.add("c")
    assert c.get("a") == 2 and c.overflow == 1 and c.total == 4 and len(c) == 2


def test_lru_evicts_least_recent_and_survives_the_state_codec() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.touch("a") == 1
    lru.put("c", 3)
    assert "b" not in lru and "a" in lru and lru.evicted == 1
    back = codec.loads(codec.dumps(lru))
    assert list(back.items()) == [("a", 1), ("c", 3)] and back.cap == 2 and back.evicted == 1


def test_everything_survives_the_state_codec() -> None:
    objs = [Welford(), LogHistogram(), Distinct(), SmallSet(), CappedCounter(4)]
    for o in objs:
        assert type(codec.loads(codec.dumps(o))) is type(o)
