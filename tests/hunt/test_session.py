"""Hunt sessions: documented views, read-only sandbox, time limit, time ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiward.hunt.session import VIEW_DOCS, HuntError, HuntSession, HuntTimeout
from apiward.hunt.timerange import BadTime, TimeRange, parse_when
from apiward.pipeline import Pipeline
from apiward.testing import make_call

DAY = 86400.0
T0 = 1_740_787_200.0  # 2025-03-01


@pytest.fixture()
def small_lake(tmp_path: Path) -> Path:
    pipe = Pipeline(tmp_path / "s", detectors=[])
    calls = [make_call("GET", f"/items/{i}", user=f"u{i % 3}", ts=T0 + d * DAY + i, id=f"d{d}-{i}") for d in range(3) for i in range(10)]
    pipe.process(calls)
    pipe.close()
    return tmp_path / "s"


def test_views_exist_even_on_an_empty_state(tmp_path: Path) -> None:
    with HuntSession(tmp_path / "empty") as s:
        for v in ("calls", "findings", "incidents", "changes", "finding_events", "endpoints", "actors", "identities"):
            assert s.query(f"select * from {v}").rows == []
        cols = s.query("select * from calls limit 0").columns
        for c in ("id", "ts", "endpoint", "actor", "client_ip", "token_id", "resp_sensitive", "status"):
            assert c in cols
        assert set(VIEW_DOCS) == {"calls", "findings", "incidents", "actors", "identities", "endpoints", "changes", "finding_events"}


def test_time_range_cuts_rows_and_prunes_days(small_lake: Path) -> None:
    with HuntSession(small_lake, TimeRange.parse("2025-03-02", "2025-03-03")) as s:
        assert s.query("select count(*) from calls").rows == [(10,)]
        assert s.query("select min(id) from calls").rows == [("d1-0",)]
        sql = s.con.execute("select sql from duckdb_views() where view_name = '_lake_calls'").fetchone()[0]
        assert "date=2025-03-02" in sql and "date=2025-03-01" not in sql and "date=2025-03-03" not in sql
    with HuntSession(small_lake, TimeRange.parse("1d", now=T0 + 3 * DAY)) as s:
        assert s.query("select count(*) from calls").rows == [(10,)]
    with HuntSession(small_lake) as s:
        assert s.query("select count(*) from calls").rows == [(30,)]
        eps = s.query("select endpoint, calls, actors from endpoints").dicts()
        assert sum(e["calls"] for e in eps) == 30


def test_read_only_and_sandboxed(small_lake: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.csv").write_text("a\n1\n")
    with HuntSession(small_lake) as s:
        for bad, msg in [
            ("delete from calls", "read-only"),
            ("create table x as select 1", "read-only"),
            ("select 1; select 2", "one statement"),
            ("attach 'x.db'", "read-only"),
            ("set enable_external_access = true", "read-only"),
            (f"select * from read_csv('{tmp_path / 'secret.csv'}')", "Permission"),
            (f"copy (select 1) to '{tmp_path / 'out.csv'}'", "read-only"),
        ]:
            with pytest.raises(HuntError, match=msg):
                s.query(bad)
        assert not (tmp_path / "out.csv").exists()


def test_time_limit_stops_a_runaway_query(small_lake: Path) -> None:
    with HuntSession(small_lake, timeout=0.5) as s:
        with pytest.raises(HuntTimeout, match="time limit"):
            s.query("select count(*) from range(100000000000) a, range(100) b")
        assert s.query("select count(*) from calls").rows == [(30,)]  # still usable


def test_time_parsing() -> None:
    assert parse_when("7d", now=10 * DAY) == 3 * DAY
    assert parse_when("2025-03-01") == T0
    assert parse_when("all") == 0.0
    with pytest.raises(BadTime):
        parse_when("yesterday")
    with pytest.raises(BadTime):
        TimeRange.parse("2025-03-02", "2025-03-01")
