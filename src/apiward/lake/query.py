"""DuckDB over the lake: one view per table (``calls``, ``findings``,
``changes``, ``incidents``, ``finding_events``), so ``apiward query`` and
hunts speak SQL.

A view over no files still exists with the right columns, so queries on a
fresh state directory return nothing rather than failing. Columns a newer
apiward added are NULL in files an older one wrote.

With a time range (``since``/``until``, Unix seconds) only the day
partitions the range touches are listed (partition pruning before DuckDB
opens a file) and rows are cut to the range by their time column; within a
file, row-group statistics on ``ts`` skip the rest.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from apiward.discover.changes import CHANGE_SCHEMA
from apiward.lake.calls import CALLS_SCHEMA
from apiward.lake.findings import FINDING_EVENTS_SCHEMA, FINDINGS_SCHEMA, INCIDENTS_SCHEMA

__all__ = ["connect", "VIEWS", "TIME_COLUMNS", "lake_files", "create_views"]

CHANGES_SCHEMA = CHANGE_SCHEMA

#: Retro-hunt findings carry these columns on top of FINDINGS_SCHEMA.
FINDINGS_EXTRA = pa.schema([("origin", pa.string()), ("retro_run", pa.string())])

VIEWS: dict[str, pa.Schema] = {
    "calls": CALLS_SCHEMA,
    "findings": pa.schema(list(FINDINGS_SCHEMA) + list(FINDINGS_EXTRA)),
    "changes": CHANGES_SCHEMA,
    "incidents": INCIDENTS_SCHEMA,
    "finding_events": FINDING_EVENTS_SCHEMA,
}

#: How a row falls in a time range: (column it starts at, column it ends at).
TIME_COLUMNS: dict[str, tuple[str, str]] = {
    "calls": ("ts", "ts"),
    "findings": ("first_seen", "last_seen"),
    "changes": ("ts", "ts"),
    "incidents": ("first_seen", "last_seen"),
    "finding_events": ("ts", "ts"),
}

# Small tables whose rows span days: a row is filed under the day it began,
# so pruning must not drop earlier days.
_SPANNING = frozenset({"findings", "incidents"})


def _day(ts: float) -> str:
    return datetime.fromtimestamp(int(ts // 86400) * 86400, tz=timezone.utc).strftime("%Y-%m-%d")


def lake_files(lake_root: Path, name: str, since: float | None = None, until: float | None = None) -> list[str]:
    """The Parquet files of table ``name`` whose day partition can hold rows
    of ``[since, until)``."""
    root = Path(lake_root) / name
    lo = _day(since) if since is not None and since > 0 and name not in _SPANNING else None
    hi = _day(until - 1e-6) if until is not None and until < 32503680000.0 else None
    out = []
    for d in sorted(root.glob("date=*")):
        day = d.name[5:]
        if (lo is not None and day < lo) or (hi is not None and day > hi):
            continue
        out.extend(str(p) for p in sorted(d.glob("*.parquet")))
    return out


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _present(files: list[str]) -> set[str]:
    """Columns the newest file has (older files may lack new columns;
    union_by_name fills those from the newer ones)."""
    try:
        return set(pq.read_schema(files[-1]).names)
    except Exception:
        return set()


def create_views(
    con: duckdb.DuckDBPyConnection,
    lake_root: Path,
    *,
    since: float | None = None,
    until: float | None = None,
    prefix: str = "",
) -> None:
    """One view per lake table on ``con`` (named ``prefix + table``), cut to
    ``[since, until)`` when given."""
    for name, schema in VIEWS.items():
        view = prefix + name
        files = lake_files(lake_root, name, since, until)
        if not files:
            con.register(f"_empty_{view}", schema.empty_table())
            con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT *, NULL::VARCHAR AS date FROM _empty_{view}")
            continue
        have = _present(files)
        cols = []
        for field in schema:
            if field.name in have:
                cols.append(f'"{field.name}"')
            else:
                cols.append(f'NULL::{_duck_type(field.type)} AS "{field.name}"')
        cols.append("date")
        listing = ", ".join(_quote(f) for f in files)
        where = []
        start, end = TIME_COLUMNS[name]
        if since is not None and since > 0:
            where.append(f"{end} >= to_timestamp({float(since)!r})")
        if until is not None and until < 32503680000.0:
            where.append(f"{start} < to_timestamp({float(until)!r})")
        sql = (
            f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(cols)} FROM read_parquet([{listing}], "
            f"hive_partitioning=true, union_by_name=true)"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        con.execute(sql)


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_list(t):
        return _duck_type(t.value_type) + "[]"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    return "VARCHAR"


def connect(lake_root: Path, *, read_only_files: bool = True, since: float | None = None, until: float | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per lake table."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    create_views(con, lake_root, since=since, until=until)
    return con
