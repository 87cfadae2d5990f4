"""``apiward hunt``: saved hunts, ad-hoc SQL, Sigma rules and retro-hunting
over the lake (read-only, time-limited, cut to --since/--until)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from apiward.cli.common import DEFAULT_STATE, StateOpt, console, fail, out

SinceOpt = Annotated[str | None, typer.Option("--since", help="Start of the range: 7d, 12h, 30m, 2w, an ISO date or time, or 'all' (default).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="End of the range (exclusive), same forms as --since; default: no end.")]
FmtOpt = Annotated[str, typer.Option("--format", "-f", help="table, json, jsonl or csv.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Stop a query after this many seconds.")]
HuntsOpt = Annotated[list[Path] | None, typer.Option("--hunts", help="Folder of your own hunt files (*.yaml); <state>/hunts is read too. Repeatable.")]


def time_range(since: str | None, until: str | None) -> Any:
    from apiward.hunt.timerange import BadTime, TimeRange

    try:
        return TimeRange.parse(since, until)
    except BadTime as exc:
        fail(str(exc))


def emit(columns: list[str], rows: list[tuple], fmt: str) -> None:
    """Rows as a table, CSV, JSON (a list of objects, one per row) or JSONL."""
    from apiward.cli.query import render

    if fmt == "json":
        print(orjson.dumps([dict(zip(columns, r)) for r in rows], default=str, option=orjson.OPT_INDENT_2).decode())
    else:
        render(columns, rows, fmt)


def check_fmt(fmt: str, allowed: tuple[str, ...] = ("table", "json", "jsonl", "csv")) -> None:
    if fmt not in allowed:
        fail(f"--format must be one of {', '.join(allowed)}")


def check_state(state: Path) -> None:
    if not (state / "lake").exists():
        fail(f"no lake in {state}; run `apiward analyze` first or pass --state")


def session(state: Path, since: str | None, until: str | None, timeout: float = 60.0) -> Any:
    from apiward.hunt.session import HuntSession

    check_state(state)
    return HuntSession(state, time_range(since, until), timeout=timeout)


def register(app: typer.Typer) -> None:
    hunt_app = typer.Typer(help="Hunt in the lake: saved hunts, SQL, Sigma rules, retro-hunting.", no_args_is_help=True)
    app.add_typer(hunt_app, name="hunt")

    @hunt_app.command("list")
    def list_(state: StateOpt = DEFAULT_STATE, fmt: FmtOpt = "table", hunts: HuntsOpt = None) -> None:
        """Saved hunts shipped with apiward and your own (<state>/hunts, --hunts DIR)."""
        from apiward.hunt.saved import BadHunt, load_hunts

        check_fmt(fmt)
        try:
            hs = load_hunts(state / "hunts", *(hunts or []))
        except BadHunt as exc:
            fail(str(exc))
        rows = [h.to_dict() for h in hs.values()]
        if fmt == "table":
            t = Table("name", "stage", "OWASP", "title", "params", title=f"{len(rows)} hunt(s)", title_justify="left")
            for r in rows:
                t.add_row(r["name"], r["tactic"], r["owasp"], r["title"] + ("" if r["source"] == "apiward" else f" [dim]({r['source']})[/]"),
                          ", ".join(f"{k}={v}" for k, v in r["params"].items()))
            out.print(t)
            return
        cols = ["name", "title", "description", "tactic", "attack", "owasp", "params", "source"]
        emit(cols, [tuple(r[c] for c in cols) for r in rows], fmt)

    @hunt_app.command("run")
    def run(
        name: Annotated[str, typer.Argument(help="The hunt's name (apiward hunt list).")],
        state: StateOpt = DEFAULT_STATE,
        since: SinceOpt = None,
        until: UntilOpt = None,
        fmt: FmtOpt = "table",
        param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Override a parameter: name=value (repeatable).")] = None,
        hunts: HuntsOpt = None,
        timeout: TimeoutOpt = 60.0,
    ) -> None:
        """Run a saved hunt over a time range; prints its result rows."""
        from apiward.hunt.saved import BadHunt, load_hunts
        from apiward.hunt.session import HuntError

        check_fmt(fmt)
        try:
            hs = load_hunts(state / "hunts", *(hunts or []))
        except BadHunt as exc:
            fail(str(exc))
        if name not in hs:
            fail(f"no hunt {name!r}; known: {', '.join(hs)}")
        overrides = {}
        for p in param or []:
            k, sep, v = p.partition("=")
            if not sep:
                fail(f"--param {p!r}: use name=value")
            overrides[k.strip()] = v
        with session(state, since, until, timeout) as s:
            try:
                res = hs[name].run(s, overrides)
            except HuntError as exc:
                fail(str(exc))
        emit(res.columns, res.rows, fmt)
        if fmt == "table":
            console.print(f"[dim]{name}: {len(res.rows)} row(s) in {res.seconds:.2f}s[/]")

    @hunt_app.command("sql")
    def sql(
        query: Annotated[str, typer.Argument(help="One SELECT over the views calls, findings, incidents, actors, identities, endpoints, changes, finding_events.")],
        state: StateOpt = DEFAULT_STATE,
        since: SinceOpt = None,
        until: UntilOpt = None,
        fmt: FmtOpt = "table",
        timeout: TimeoutOpt = 30.0,
    ) -> None:
        """Ad-hoc SQL: read-only (one SELECT; no files outside the lake), time-limited.

        Example: apiward hunt sql "select actor, count(*) from calls where status = 401 group by 1 order by 2 desc" --since 7d
        """
        from apiward.hunt.session import HuntError

        check_fmt(fmt)
        with session(state, since, until, timeout) as s:
            try:
                res = s.query(query)
            except HuntError as exc:
                fail(str(exc))
        emit(res.columns, res.rows, fmt)

    @hunt_app.command("sigma")
    def sigma(
        rules: Annotated[list[Path], typer.Argument(help="Sigma rule files or folders (webserver/proxy rules).")],
        state: StateOpt = DEFAULT_STATE,
        since: SinceOpt = None,
        until: UntilOpt = None,
        fmt: FmtOpt = "table",
        show_sql: Annotated[bool, typer.Option("--show-sql", help="Print each rule's DuckDB SQL instead of running it.")] = False,
        limit: Annotated[int | None, typer.Option("--limit", help="At most this many rows.")] = None,
        timeout: TimeoutOpt = 60.0,
    ) -> None:
        """Run Sigma rules over API events (pySigma -> DuckDB); one row per rule and matching call."""
        from apiward.hunt.session import HuntError

        try:
            from apiward.hunt.sigma import convert, load_rules, run_rules
        except ImportError as exc:
            fail(f"Sigma rules need pySigma ({exc.name}): pip install 'apiward[sigma]'")
        check_fmt(fmt)
        if show_sql:
            try:
                qs = [convert(r, src) for r, src in load_rules(rules)]
            except HuntError as exc:
                fail(str(exc))
            if fmt == "json":
                print(orjson.dumps([q.to_dict() for q in qs], option=orjson.OPT_INDENT_2).decode())
            else:
                for q in qs:
                    print(f"-- {q.title} ({q.rule_id}, {q.source})\n{q.sql};\n")
            return
        with session(state, since, until, timeout) as s:
            try:
                res, _ = run_rules(s, rules, limit=limit)
            except HuntError as exc:
                fail(str(exc))
        emit(res.columns, res.rows, fmt)

    @hunt_app.command("retro")
    def retro(
        state: StateOpt = DEFAULT_STATE,
        since: SinceOpt = None,
        until: UntilOpt = None,
        detector: Annotated[list[str] | None, typer.Option("--detector", "-d", help="Run only this detector (repeatable); default: the ones the config enables.")] = None,
        fmt: FmtOpt = "table",
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Re-run today's detectors over stored calls; new findings are marked retro, live ones are not repeated."""
        from apiward.config import ConfigError
        from apiward.hunt.retro import retro_hunt

        check_fmt(fmt)
        check_state(state)
        tr = time_range(since, until)
        done = [0]

        def progress(n: int) -> None:
            done[0] += n
            if not quiet and fmt == "table":
                console.print(f"[dim]replayed {done[0]} calls[/]", end="\r")

        try:
            res = retro_hunt(state, tr, detectors=detector or None, progress=progress)
        except (ValueError, ConfigError) as exc:
            fail(str(exc))
        if fmt == "table":
            console.print(
                f"retro-hunt {res.run}: {res.calls} calls through {len(res.detectors)} detector(s) in {res.seconds:.1f}s; "
                f"{res.found} finding(s), {res.kept} new, {res.known_live} already found live, {res.updated_retro} updated"
            )
        cols = ["id", "detector", "actor", "endpoint", "severity", "events", "first_seen", "last_seen", "summary"]
        from datetime import datetime, timezone

        rows = [tuple(datetime.fromtimestamp(f[c], tz=timezone.utc) if c in ("first_seen", "last_seen") else f[c] for c in cols) for f in res.findings]
        if fmt == "json":
            d = res.to_dict()
            print(orjson.dumps(d["findings"], default=str, option=orjson.OPT_INDENT_2).decode())
            return
        emit(cols, rows, fmt)

    @hunt_app.command("views")
    def views(fmt: FmtOpt = "table") -> None:
        """The views hunts and SQL can use, and their columns."""
        from apiward.hunt.session import VIEW_DOCS

        emit(["view", "columns"], list(VIEW_DOCS.items()), fmt)
