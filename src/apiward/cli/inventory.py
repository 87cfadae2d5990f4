"""``apiward inventory``: the endpoints apiward discovered, with owners, auth
posture, sensitive data, risk and spec status; ``--changes`` for the change
log and ``--explain`` for the templater's evidence."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from apiward.cli.common import DEFAULT_STATE, ConfigOpt, StateOpt, fail, out
from apiward.cli.query import render


def load_snapshot(state: Path) -> dict[str, Any]:
    """The state snapshot, or a clear error when there is none."""
    from apiward.state import StateDir

    if not state.exists() or not ((state / "state.db").exists() or (state / "state.pkl").exists()):
        fail(f"no apiward state in {state}; run `apiward analyze FILE --state {state}` first or pass --state")
    try:
        snap = StateDir(state).load()
    except RuntimeError as exc:
        fail(str(exc))
    if snap is None:
        fail(f"no apiward state in {state}; run `apiward analyze FILE --state {state}` first or pass --state")
    return snap


def load_owners(owners: Path | None, settings_file: str, state: Path) -> Any:
    from apiward.discover.owners import OwnersError, OwnersFile

    path = owners or (Path(settings_file) if settings_file else None)
    if path is None:
        return None
    if not path.is_absolute() and not path.exists() and (state / path).exists():
        path = state / path
    try:
        return OwnersFile.load(path)
    except OwnersError as exc:
        fail(str(exc))


def _short(iso: str) -> str:
    return iso[:16].replace("T", " ") if iso else ""


def _dump_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def register(app: typer.Typer) -> None:
    @app.command()
    def inventory(
        state: StateOpt = DEFAULT_STATE,
        config: ConfigOpt = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
        explain: Annotated[bool, typer.Option("--explain", help="Print the templater's evidence for every path parameter.")] = False,
        changes: Annotated[bool, typer.Option("--changes", help="Print the change log (new endpoints and fields, type changes, quiet endpoints).")] = False,
        probes: Annotated[bool, typer.Option("--probes", help="List probe paths: only ever answered 404/405 or not answered; never endpoints.")] = False,
        details: Annotated[bool, typer.Option("--details", help="JSON only: include parameters and body schemas.")] = False,
        owners: Annotated[Path | None, typer.Option("--owners", help="Owners file (TOML/YAML) mapping host/path globs to teams.")] = None,
        service: Annotated[str | None, typer.Option("--service", help="Only this service.")] = None,
        sort: Annotated[str, typer.Option("--sort", help="template, risk or calls.")] = "template",
    ) -> None:
        """List the discovered API inventory.

        Example: apiward inventory --format json --state ./.apiward
        """
        from apiward.config import ConfigError, load_settings

        if fmt not in ("table", "json", "csv"):
            fail("--format must be table, json or csv")
        if sort not in ("template", "risk", "calls"):
            fail("--sort must be template, risk or calls")
        try:
            settings = load_settings(config, state if state.exists() else None)
        except ConfigError as exc:
            fail(str(exc))
        snap = load_snapshot(state)
        inv = snap["inventory"]
        if explain:
            rows = inv.templater.explain()
            if fmt == "json":
                _dump_json(rows)
            else:
                cols = ["host", "template", "param", "rule", "cardinality", "count", "sample"]
                render(cols, [tuple(r.get(c) for c in cols) for r in rows], fmt)
            return
        if probes:
            prow = inv.probe_rows(service) if hasattr(inv, "probe_rows") else []
            if fmt == "json":
                _dump_json(prow)
                return
            cols = ["host", "method", "path", "resolves to", "calls", "statuses", "first seen", "last seen", "actors"]
            render(cols, [
                (r["host"], r["method"], r["path"], r["template"], r["calls"],
                 ",".join(f"{k}x{v}" for k, v in r["statuses"].items()), _short(r["first_seen"]),
                 _short(r["last_seen"]), ", ".join(r["actors"][:3]) + (f" (+{len(r['actors']) - 3})" if len(r["actors"]) > 3 else ""))
                for r in prow], fmt)
            dropped = getattr(inv, "probes_dropped", 0)
            if fmt == "table" and dropped:
                out.print(f"[dim]{dropped} more probe calls not kept (max_probes reached)[/]")
            return
        if changes:
            entries = inv.changes.entries()
            if service is not None:
                services = {(r.host, r.name) for r in inv.records(service)}
                entries = [e for e in entries if (e["host"], e["endpoint"]) in services]
            if fmt == "json":
                from datetime import datetime, timezone

                for e in entries:
                    e["ts"] = datetime.fromtimestamp(e["ts"], tz=timezone.utc).isoformat().replace("+00:00", "Z")
                _dump_json(entries)
            else:
                from datetime import datetime, timezone

                cols = ["ts", "kind", "host", "endpoint", "field", "actors", "verdict", "detail"]
                rows_c = [
                    (datetime.fromtimestamp(e["ts"], tz=timezone.utc).strftime("%Y-%m-%d %H:%M"), e["kind"], e["host"],
                     e["endpoint"], e["field"], e["actors"], e["verdict"], e["detail"])
                    for e in entries
                ]
                render(cols, rows_c, fmt)
            return
        if not inv.spec_source and settings.spec:
            # a spec configured but never diffed: show status from it (not saved)
            from apiward.discover.specdiff import apply, diff
            from apiward.discover.specs import SpecError

            try:
                apply(inv, diff(inv, settings.spec[0]))
            except SpecError as exc:
                fail(str(exc))
        owner_rules = load_owners(owners, settings.owners_file, state)
        rows = inv.rows(owners=owner_rules, findings=snap.get("findings", {}).values(), service=service, details=details)
        if sort == "risk":
            rows.sort(key=lambda r: (-r["risk"], r["service"], r["template"]))
        elif sort == "calls":
            rows.sort(key=lambda r: (-r["calls"], r["service"], r["template"]))
        if fmt == "json":
            _dump_json(rows)
            return
        cols = ["service", "method", "template", "calls", "auth", "sensitive data", "owner", "first seen", "last seen", "risk", "status"]
        table_rows = []
        for r in rows:
            auth = ",".join(r["auth"]["schemes"]) or "none"
            if r["auth"]["unauthenticated_sensitive"]:
                auth += " (unauth sensitive!)"
            elif r["auth"]["unauthenticated_2xx"] and r["auth"]["schemes"]:
                auth += " (+unauth 2xx)"
            classes = sorted({s["class"] for s in r["sensitive"]})
            table_rows.append(
                (r["service"], r["method"], r["template"], r["calls"], auth, ", ".join(classes), r["owner"],
                 _short(r["first_seen"]), _short(r["last_seen"]), r["risk"], r["status"])
            )
        render(cols, table_rows, fmt)
        if fmt == "table" and inv.spec_source:
            out.print(f"[dim]status from spec diff against {inv.spec_source}[/]")
