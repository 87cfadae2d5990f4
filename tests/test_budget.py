"""The memory budget: table caps derived from one figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiward.config import ConfigError, load_settings
from apiward.learn.sketches import LRU
from apiward.model.keyed import NO_CAP
from apiward.state.budget import MemoryBudget, parse_size, rss_bytes
from apiward.state.store import StateStore


def test_sizes_parse_and_bad_ones_fail_at_load() -> None:
    assert parse_size("512") == 512 << 20 and parse_size("2G") == 2 << 30 and parse_size("300MB") == 300 << 20
    with pytest.raises(ValueError, match="512X"):
        parse_size("512X")
    with pytest.raises(ConfigError, match="memory budget"):
        load_settings(memory_budget="-1G")


def test_caps_shrink_in_proportion_and_spilled_entries_stay_known(tmp_path: Path) -> None:
    """Two tables whose designed caps cannot both fit: both are cut by the
    same factor; the spilling one keeps its cold entries in the store, the
    inventory-like table (no cap) is never cut."""
    big: LRU[str, str] = LRU(100_000, spill=True)
    small: LRU[str, str] = LRU(10_000)
    keep: LRU[str, str] = LRU(NO_CAP)
    comps = {"part": {"big": big, "small": small, "keep": keep}}
    store = StateStore(tmp_path / "state.db", b"k" * 32)
    store.save(comps)  # the store knows the tables: evictions of ``big`` now spill
    for i in range(20_000):
        big.put(f"actor-{i:06d}", "x" * 200)
        small.put(f"ep-{i:06d}", "y" * 200)
        keep[f"keep-{i:06d}"] = "z" * 10
    budget = MemoryBudget(rss_bytes() + (8 << 20), margin=0.0)  # room for a few MB of tables
    budget.start(comps)
    budget.reserve = rss_bytes()
    decided = budget.apply(comps)
    assert big.cap < 100_000 and small.cap < 10_000
    assert abs(big.cap / 100_000 - small.cap / 10_000) < 0.01  # the same factor
    assert keep.cap == NO_CAP and len(keep) == 20_000
    assert len(big) <= big.cap and big.size() == 20_000  # spilled, not forgotten
    assert big.get("actor-000003") == "x" * 200  # read back from the store
    assert len(small) <= small.cap and "ep-000003" not in small  # forgotten: a cache
    assert 0 < decided["scale"] < 1
    store.save(comps)
    store.close()


def test_the_pipeline_derives_caps_from_its_setting(tmp_path: Path) -> None:
    from apiward.pipeline import Pipeline

    roomy = Pipeline(tmp_path / "a", settings=load_settings(memory_budget="64G"))
    tight = Pipeline(tmp_path / "b", settings=load_settings(memory_budget="256M"))
    cap_roomy = next(d for d in roomy.detectors if d.id == "bola.cross_owner_access")._obj.cap
    cap_tight = next(d for d in tight.detectors if d.id == "bola.cross_owner_access")._obj.cap
    assert cap_roomy == 200_000  # the detector's own bound: nothing to cut
    assert cap_tight < cap_roomy
    roomy.close()
    tight.close()


def test_feedback_stops_cutting_when_cuts_do_not_bring_rss_down(monkeypatch):
    """RSS over the budget for reasons other than the tables (fragmented free
    pages): one cut, then no more churn through the store."""
    from apiward.state import budget as B
    from apiward.model.keyed import LRU

    t = LRU(5000)
    for i in range(200):
        t[i] = "x" * 100
    comps = {"part": {"table": t}}
    mb = B.MemoryBudget(512 << 20)
    monkeypatch.setattr(B, "rss_bytes", lambda: 100 << 20)
    mb.start(comps)
    monkeypatch.setattr(B, "rss_bytes", lambda: 900 << 20)  # over, and stays there
    mb.apply(comps)
    first = mb.feedback
    assert first < 1.0
    for _ in range(5):
        mb.apply(comps)
    assert mb.feedback == first  # the cut did not help: no further cuts
    rss = iter([700 << 20, 600 << 20])  # cuts that do bring RSS down keep going
    monkeypatch.setattr(B, "rss_bytes", lambda: next(rss))
    mb.apply(comps)
    mb.apply(comps)
    assert mb.feedback < first


def test_entry_sizes_are_measured_again_only_when_a_table_grows_or_ages(monkeypatch) -> None:
    """Measuring a table walks its sampled entries' whole graphs; for one
    large entry (a big host's template tree) that cost as much as the
    checkpoint it ran beside. The measure is reused while the table keeps
    its length, and taken again when it moves by a quarter or ages."""
    import apiward.state.budget as budget_mod

    measured: list[int] = []
    real = budget_mod._entry_size

    def counting(lru):
        measured.append(len(lru))
        return real(lru)

    monkeypatch.setattr(budget_mod, "_entry_size", counting)
    table: LRU[str, str] = LRU(10_000)
    for i in range(100):
        table[f"k{i}"] = "v" * 100
    comps = {"part": {"t": table}}
    budget = MemoryBudget(1 << 30)
    budget.start(comps)
    budget.apply(comps)
    budget.apply(comps)
    table["k100"] = "v"  # within a quarter: the measure stands
    budget.apply(comps)
    assert measured == [100]
    for i in range(101, 130):
        table[f"k{i}"] = "v" * 100
    budget.apply(comps)
    assert measured == [100, 130]
    for _ in range(budget_mod._REMEASURE_EVERY + 1):
        budget.apply(comps)
    assert measured == [100, 130, 130]
