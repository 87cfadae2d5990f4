"""``apiward query``: SQL over the lake (DuckDB)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from apiward.cli.common import DEFAULT_STATE, StateOpt, fail, out


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, (list, dict)):
        return orjson.dumps(v, default=str).decode()
    return str(v)


def render(columns: list[str], rows: list[tuple], fmt: str) -> None:
    """Print rows as a table, JSON (a list of objects) or CSV."""
    if fmt == "json":
        out.print_json(orjson.dumps([dict(zip(columns, r)) for r in rows], default=str).decode()) if rows else print("[]")
    elif fmt == "jsonl":
        for r in rows:
            print(orjson.dumps(dict(zip(columns, r)), default=str).decode())
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(columns)
        for r in rows:
            w.writerow([_cell(v) for v in r])
        print(buf.getvalue(), end="")
    else:
        t = Table(*columns, show_lines=False)
        for r in rows:
            t.add_row(*(_cell(v) for v in r))
        out.print(t)
        out.print(f"[dim]{len(rows)} row(s)[/]")


def register(app: typer.Typer) -> None:
    @app.command()
    def query(
        sql: Annotated[str, typer.Argument(help="SQL over the views calls, findings, incidents, changes.")],
        state: StateOpt = DEFAULT_STATE,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table, json, jsonl or csv.")] = "table",
    ) -> None:
        """Query the lake with SQL (DuckDB).

        Example: apiward query "select method, count(*) from calls group by 1"
        """
        import duckdb

        from apiward.lake.query import connect

        if fmt not in ("table", "json", "jsonl", "csv"):
            fail("--format must be table, json, jsonl or csv")
        if not state.exists():
            fail(f"state directory {state} does not exist; run `apiward analyze` first or pass --state")
        con = connect(state / "lake")
        try:
            cur = con.execute(sql)
        except duckdb.Error as exc:
            fail(f"query failed: {exc}")
        columns = [d[0] for d in cur.description or []]
        rows = cur.fetchall()
        render(columns, rows, fmt)
