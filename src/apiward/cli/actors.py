"""``apiward actors``: attacker clusters ranked by risk, and one actor's
linked identities and kill-chain timeline."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import orjson
import typer
from rich.panel import Panel
from rich.table import Table

from apiward.cli.common import DEFAULT_STATE, StateOpt, fail, out
from apiward.cli.hunt import FmtOpt, SinceOpt, UntilOpt, check_fmt, emit, session

SEV = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def register(app: typer.Typer) -> None:
    actors_app = typer.Typer(help="Attackers across identities: risk, stage reached, timeline.", no_args_is_help=False)
    app.add_typer(actors_app, name="actors")

    @actors_app.callback(invoke_without_command=True)
    def actors(
        ctx: typer.Context,
        state: StateOpt = DEFAULT_STATE,
        since: SinceOpt = None,
        until: UntilOpt = None,
        fmt: FmtOpt = "table",
        limit: Annotated[int | None, typer.Option("--limit", help="At most this many.")] = None,
    ) -> None:
        """Actors ranked by risk: stage reached, findings, identities, last seen."""
        if ctx.invoked_subcommand is not None:
            ctx.obj = {"state": state, "since": since, "until": until}
            return
        from apiward.hunt.actors import resolve

        check_fmt(fmt)
        with session(state, since, until, 300.0) as s:
            clusters = resolve(s)
        rows = [c.summary() for c in clusters.clusters[: limit or None]]
        if fmt == "table":
            t = Table("actor", "display", "risk", "peak", "stage", "findings", "identities", "last seen", title=f"{len(rows)} actor(s)", title_justify="left")
            for r in rows:
                t.add_row(r["actor"], r["display"], f"{r['risk']:.1f}", f"{r['peak_risk']:.1f}", r["stage"], f"[{SEV.get(r['severity'], '')}]{r['findings']}[/]",
                          str(len(r["identities"])), r["last_seen"][:19])
            out.print(t)
            return
        cols = ["actor", "display", "risk", "peak_risk", "stage", "stages", "identities", "members", "findings", "severity", "first_seen", "last_seen", "incidents"]
        emit(cols, [tuple(r[c] for c in cols) for r in rows], fmt)

    @actors_app.command("show")
    def show(
        ctx: typer.Context,
        actor: Annotated[str, typer.Argument(help="An actor key from `apiward actors`, any of its identities (ip:..., user:...), or an incident id.")],
        state: Annotated[str | None, typer.Option("--state", envvar="APIWARD_STATE", help="State directory.")] = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    ) -> None:
        """One actor: linked identities with evidence and confidence, and its kill-chain timeline."""
        from pathlib import Path

        from apiward.hunt.actors import resolve

        obj = ctx.obj or {}
        st = Path(state) if state else obj.get("state", DEFAULT_STATE)
        since = since or obj.get("since")
        until = until or obj.get("until")
        if fmt not in ("text", "json"):
            fail("--format must be text or json")
        with session(st, since, until, 300.0) as s:
            clusters = resolve(s)
            c = clusters.find(actor)
            if c is None and actor.startswith("I-"):
                rows = s.query("SELECT actor FROM incidents WHERE id = $i", {"i": actor}, trusted=True).rows
                c = clusters.find(rows[0][0]) if rows else None
        if c is None:
            fail(f"no actor {actor!r} in the range; `apiward actors` lists them")
        d = c.to_dict()
        if fmt == "json":
            print(orjson.dumps(d, default=str, option=orjson.OPT_INDENT_2).decode())
            return
        head = (f"[bold]{c.display}[/]  risk [bold]{c.risk:.1f}[/]  severity [{SEV.get(c.severity, '')}]{c.severity}[/]\n"
                f"stage reached: [bold]{c.stage}[/]   path: {' -> '.join(c.stages)}\n"
                f"members: {', '.join(c.members)}\nseen {d['first_seen']} .. {d['last_seen']}   incidents: {', '.join(c.incidents) or '-'}")
        out.print(Panel(head, title=c.key, title_align="left"))
        t = Table("identity", "confidence", "evidence", "first", "last", "calls", title="linked identities", title_justify="left")
        for i in d["identities"]:
            t.add_row(i["identity"], f"{i['confidence']:.2f}", i["evidence"], i["first_seen"][:19], i["last_seen"][:19], str(i["calls"]))
        out.print(t)
        if c.links or c.refused:
            t = Table("link", "from", "to", "confidence", "evidence", title="links", title_justify="left")
            for lk in c.links:
                t.add_row(lk.kind, lk.a, lk.b, f"{lk.confidence:.2f}", orjson.dumps(lk.evidence).decode()[:120])
            for lk in c.refused:
                t.add_row(f"[dim]{lk.kind} (refused)[/]", lk.a, lk.b, "-", lk.refused)
            out.print(t)
        t = Table("time", "stage", "what", "detail", title="timeline", title_justify="left")
        for e in c.timeline:
            t.add_row(e["time"][:19], e.get("stage", ""), e["title"], str(e.get("detail", ""))[:100])
        out.print(t)
