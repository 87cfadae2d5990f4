"""DuckDB over the lake: one view per table (``calls``, ``findings``,
``changes``, ``incidents``), so ``apiward query`` and hunts speak SQL.

A view over no files still exists with the right columns, so queries on a
fresh state directory return nothing rather than failing.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from apiward.discover.changes import CHANGE_SCHEMA
from apiward.lake.calls import CALLS_SCHEMA
from apiward.lake.findings import FINDING_EVENTS_SCHEMA, FINDINGS_SCHEMA, INCIDENTS_SCHEMA

__all__ = ["connect", "VIEWS"]

CHANGES_SCHEMA = CHANGE_SCHEMA

VIEWS: dict[str, pa.Schema] = {
    "calls": CALLS_SCHEMA,
    "findings": FINDINGS_SCHEMA,
    "changes": CHANGES_SCHEMA,
    "incidents": INCIDENTS_SCHEMA,
    "finding_events": FINDING_EVENTS_SCHEMA,
}


def connect(lake_root: Path, *, read_only_files: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per lake table."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    for name, schema in VIEWS.items():
        files = sorted(str(p) for p in (Path(lake_root) / name).glob("date=*/*.parquet"))
        if files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listing}], hive_partitioning=true, union_by_name=true)"
            )
        else:
            con.register(f"_empty_{name}", schema.empty_table())
            con.execute(f"CREATE VIEW {name} AS SELECT *, NULL::VARCHAR AS date FROM _empty_{name}")
    return con
