"""``apiward incident report``: a post-mortem of an incident or an actor
as self-contained HTML, Markdown or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from apiward.cli.common import DEFAULT_STATE, StateOpt, console, fail
from apiward.cli.hunt import SinceOpt, UntilOpt, session


def register(app: typer.Typer) -> None:
    inc_app = typer.Typer(help="Incident forensics.", no_args_is_help=True)
    app.add_typer(inc_app, name="incident")

    @inc_app.command("report")
    def report(
        target: Annotated[str, typer.Argument(help="An incident id (I-...) or an actor (key or identity from `apiward actors`).")],
        state: StateOpt = DEFAULT_STATE,
        since: SinceOpt = None,
        until: UntilOpt = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="html, md or json.")] = "html",
        out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Write here (default: stdout).")] = None,
    ) -> None:
        """Summary, stages, timeline, endpoints and objects touched, data exposed, redacted evidence,
        linked identities, related actors and recommended fixes."""
        from apiward.hunt.report import ReportNotFound, build_report, render_html, render_markdown
        from apiward.hunt.session import HuntError

        if fmt not in ("html", "md", "markdown", "json"):
            fail("--format must be html, md or json")
        with session(state, since, until, 300.0) as s:
            try:
                rep = build_report(state, target, session=s)
            except ReportNotFound as exc:
                fail(str(exc))
            except HuntError as exc:
                fail(str(exc))
        if fmt == "json":
            text = orjson.dumps(rep, default=str, option=orjson.OPT_INDENT_2).decode()
        elif fmt == "html":
            text = render_html(rep)
        else:
            text = render_markdown(rep)
        if out_file is None:
            print(text)
        else:
            out_file.write_text(text, encoding="utf-8")
            console.print(f"wrote {out_file} ({len(text)} bytes): {rep['display']}, risk {rep['summary']['risk']}, stage {rep['summary']['stage']}")
