from pathlib import Path

import pyarrow as pa

from apiward.lake.store import Lake


def _table(ts_us: list[int]) -> pa.Table:
    return pa.table({"id": [str(i) for i in range(len(ts_us))], "ts": pa.array(ts_us, pa.timestamp("us", tz="UTC"))})


def test_partitions_by_day_and_rewrites_same_key(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    day = 86_400 * 1_000_000
    lake.write_partitioned("calls", _table([0, day + 5, day + 6]), "k1")
    lake.write_partitioned("calls", _table([0, day + 5, day + 6]), "k1")  # a replayed batch
    files = lake.files("calls")
    assert [f.parent.name for f in files] == ["date=1970-01-01", "date=1970-01-02"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_retention_prunes_old_days(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    day = 86_400
    lake.write_partitioned("calls", _table([0, 10 * day * 1_000_000]), "k")
    gone = lake.prune(retention_days=5, now=12 * day)
    assert gone == ["calls/date=1970-01-01"]
    assert [f.parent.name for f in lake.files("calls")] == ["date=1970-01-11"]
    assert lake.prune(0) == []
