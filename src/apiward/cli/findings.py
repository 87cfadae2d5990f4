"""``apiward findings``: list, filter and explain findings (read from the lake,
so it works while a proxy is still capturing into the same state)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

import orjson
import typer
from rich.panel import Panel
from rich.table import Table

from apiward.cli.common import DEFAULT_STATE, StateOpt, fail, out
from apiward.model.finding import KINDS, SEVERITIES

SEV_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{name}: {value!r} is not an ISO date or time (e.g. 2026-11-29 or 2026-11-29T12:00:00Z)")
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def load_findings(
    state, *, severity: str | None = None, detector: str | None = None, actor: str | None = None,
    endpoint: str | None = None, since: datetime | None = None, until: datetime | None = None, limit: int | None = None,
    kind: str | None = None, all_events: bool = False,
) -> list[dict[str, Any]]:
    """Findings from the lake as dicts, most severe and newest first. With
    ``all_events`` each carries every event id it rests on (from
    ``finding_events``), not only the first ones the finding keeps."""
    from apiward.lake.query import connect

    con = connect(state / "lake")
    where, params = [], []
    if kind:
        if kind not in KINDS:
            fail(f"--kind must be one of {', '.join(KINDS)}")
        where.append("kind = ?")
        params.append(kind)
    if severity:
        if severity not in SEVERITIES:
            fail(f"--severity must be one of {', '.join(SEVERITIES)}")
        where.append("list_position(?, severity) >= ?")
        params += [list(SEVERITIES), SEVERITIES.index(severity) + 1]
    if detector:
        where.append("(detector = ? OR detector LIKE ?)")
        params += [detector, detector.rstrip("*") + "%" if detector.endswith("*") else detector]
    if actor:
        where.append("(actor ILIKE ? OR actor_display ILIKE ?)")
        params += [f"%{actor}%", f"%{actor}%"]
    if endpoint:
        where.append("endpoint ILIKE ?")
        params.append(f"%{endpoint}%")
    if since:
        where.append("last_seen >= ?")
        params.append(since)
    if until:
        where.append("first_seen <= ?")
        params.append(until)
    sql = "SELECT * FROM findings"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY list_position(?, severity) DESC, last_seen DESC, id"
    params.append(list(SEVERITIES))
    if limit:
        sql += f" LIMIT {int(limit)}"
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    rows = []
    for r in cur.fetchall():
        d = dict(zip(cols, r))
        d.pop("date", None)
        try:
            d["evidence"] = orjson.loads(d["evidence"]) if d.get("evidence") else {}
        except orjson.JSONDecodeError:
            pass
        for k in ("first_seen", "last_seen"):
            if isinstance(d.get(k), datetime):
                d[k] = d[k].astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        rows.append(d)
    if all_events and rows:
        linked: dict[str, list[str]] = {}
        ids = [d["id"] for d in rows]
        for fid, eid in con.execute(
            "SELECT DISTINCT finding_id, event_id FROM finding_events WHERE list_contains(?, finding_id) ORDER BY 1, 2", [ids]
        ).fetchall():
            linked.setdefault(fid, []).append(eid)
        for d in rows:
            extra = linked.get(d["id"])
            if extra:
                d["event_ids"] = sorted(set(d["event_ids"] or []) | set(extra))
    return rows


def register(app: typer.Typer) -> None:
    findings_app = typer.Typer(help="List, filter and explain findings.", no_args_is_help=False)
    app.add_typer(findings_app, name="findings")

    @findings_app.callback(invoke_without_command=True)
    def findings(
        ctx: typer.Context,
        state: StateOpt = DEFAULT_STATE,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or jsonl.")] = "table",
        severity: Annotated[str | None, typer.Option("--severity", help="Minimum severity: info, low, medium, high, critical.")] = None,
        detector: Annotated[str | None, typer.Option("--detector", help="Detector id, or a prefix ending in * (bola.*).")] = None,
        actor: Annotated[str | None, typer.Option("--actor", help="Part of the actor key or name (alice, 203.0.113.9).")] = None,
        endpoint: Annotated[str | None, typer.Option("--endpoint", help="Part of the endpoint ('GET /orders').")] = None,
        since: Annotated[str | None, typer.Option("--since", help="Only findings seen at or after this ISO time.")] = None,
        until: Annotated[str | None, typer.Option("--until", help="Only findings that began at or before this ISO time.")] = None,
        limit: Annotated[int | None, typer.Option("--limit", help="At most this many.")] = None,
        kind: Annotated[str | None, typer.Option("--kind", help="attack (an actor did something) or exposure (the API itself is weak).")] = None,
        max_event_ids: Annotated[int | None, typer.Option("--max-event-ids", help="JSON/JSONL: list at most this many event ids per finding (default: every event it rests on).")] = None,
        all_events: Annotated[bool, typer.Option("--all-events", hidden=True, help="Kept for scripts: every event id is listed by default.")] = True,
    ) -> None:
        """List findings, most severe first. `apiward findings show F-...` explains one."""
        if ctx.invoked_subcommand is not None:
            ctx.obj = {"state": state}
            return
        if fmt not in ("table", "json", "jsonl"):
            fail("--format must be table, json or jsonl")
        rows = load_findings(
            state, severity=severity, detector=detector, actor=actor, endpoint=endpoint,
            since=_parse_time(since, "--since"), until=_parse_time(until, "--until"), limit=limit,
            kind=kind, all_events=fmt != "table" and max_event_ids is None,
        )
        if max_event_ids is not None:
            for r in rows:
                r["event_ids"] = (r["event_ids"] or [])[: max(max_event_ids, 0)]
        if fmt == "json":
            print(orjson.dumps(rows, option=orjson.OPT_INDENT_2, default=str).decode())
            return
        if fmt == "jsonl":
            for r in rows:
                print(orjson.dumps(r, default=str).decode())
            return
        t = Table(title=f"{len(rows)} finding(s)", title_justify="left")
        for col in ("id", "kind", "severity", "detector", "actor", "endpoint", "owasp", "events", "last seen", "summary"):
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(
                r["id"], r.get("kind") or "attack", f"[{SEV_STYLE.get(r['severity'], '')}]{r['severity']}[/]", r["detector"],
                r["actor_display"] or r["actor"] or "-", r["endpoint"], r["owasp"], str(r.get("events") or len(r["event_ids"] or [])), (r["last_seen"] or "")[:19], r["summary"],
            )
        out.print(t)

    @findings_app.command("show")
    def show(
        ctx: typer.Context,
        finding_id: Annotated[str, typer.Argument(help="The finding id (F-...).")],
        state: Annotated[str | None, typer.Option("--state", envvar="APIWARD_STATE", help="State directory.")] = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
        events: Annotated[int, typer.Option("--events", help="How many of its events to list.")] = 10,
    ) -> None:
        """Explain one finding: what, who, where, why, and the events it rests on."""
        from pathlib import Path

        from apiward.lake.query import connect

        st = Path(state) if state else (ctx.obj or {}).get("state", DEFAULT_STATE)
        rows = [r for r in load_findings(st) if r["id"] == finding_id]
        if not rows:
            fail(f"no finding {finding_id} in {st}")
        f = rows[0]
        ids = (f["event_ids"] or [])[: max(events, 0)]
        con = connect(Path(st) / "lake")
        ev = con.execute(
            "SELECT id, ts, method, path, status, client_ip, user_agent FROM calls WHERE list_contains(?, id) ORDER BY ts", [ids]
        ).fetchall() if ids else []
        if fmt == "json":
            f["events"] = [dict(zip(("id", "ts", "method", "path", "status", "client_ip", "user_agent"), e)) for e in ev]
            print(orjson.dumps(f, option=orjson.OPT_INDENT_2, default=str).decode())
            return
        head = (
            f"[bold]{f['title']}[/]  [{SEV_STYLE.get(f['severity'], '')}]{f['severity']}[/] (confidence {f['confidence']:.2f})\n"
            f"{f['summary']}\n\n"
            f"[bold]actor[/]     {f['actor_display'] or f['actor']}  [dim]({f['actor']})[/]\n"
            f"[bold]endpoint[/]  {f['endpoint']}  [dim]{f['service']}[/]\n"
            f"[bold]kind[/]      {f.get('kind') or 'attack'}\n"
            f"[bold]seen[/]      {f['first_seen']} .. {f['last_seen']}  ({f['count']} observation(s), {f.get('events') or len(f['event_ids'] or [])} event(s))\n"
            f"[bold]tags[/]      OWASP {f['owasp'] or '-'} · ATT&CK {f['attack'] or '-'} ({f['tactic'] or '-'}) · {f['cwe'] or '-'}\n"
            f"[bold]detector[/]  {f['detector']}   [bold]incident[/] {f['incident'] or '-'}"
        )
        out.print(Panel(head, title=f["id"], title_align="left"))
        if f["evidence"]:
            out.print("[bold]evidence[/]")
            out.print_json(orjson.dumps(f["evidence"], default=str).decode())
        if ev:
            t = Table("event", "time", "method", "path", "status", "client", "user agent", title="events", title_justify="left")
            for e in ev:
                t.add_row(e[0], str(e[1])[:23], e[2], e[3], str(e[4] or ""), e[5] or "", (e[6] or "")[:40])
            out.print(t)
