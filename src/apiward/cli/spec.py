"""``apiward spec export|diff``: the observed API as OpenAPI 3.1, and the
observed API against your own spec (shadow, zombie, orphan endpoints,
undocumented parameters and fields, type mismatches)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import orjson
import typer

from apiward.cli.common import DEFAULT_STATE, ConfigOpt, StateOpt, console, fail, out
from apiward.cli.query import render


def register(app: typer.Typer) -> None:
    spec_app = typer.Typer(help="OpenAPI export of the observed API, and diff against your spec.", no_args_is_help=True)
    app.add_typer(spec_app, name="spec")

    @spec_app.command("export")
    def export_cmd(
        state: StateOpt = DEFAULT_STATE,
        fmt: Annotated[str, typer.Option("--format", "-f", help="json or yaml.")] = "yaml",
        service: Annotated[str | None, typer.Option("--service", help="Only this service (default: every service in one document).")] = None,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
    ) -> None:
        """Export the observed API as an OpenAPI 3.1 document.

        Example: apiward spec export --format yaml --service shop -o shop.yaml
        """
        from apiward.cli.inventory import load_snapshot
        from apiward.discover.openapi import export

        if fmt not in ("json", "yaml"):
            fail("--format must be json or yaml")
        inv = load_snapshot(state)["inventory"]
        if service is not None and not inv.records(service):
            known = sorted({r.service for _, r in inv.endpoints.each()})
            fail(f"no endpoints for service {service!r}; known services: {', '.join(known) or 'none'}")
        doc = export(inv, service)
        if fmt == "json":
            text = orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
        else:
            import yaml

            text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)
        if output is not None:
            output.write_text(text, encoding="utf-8")
            console.print(f"wrote {len(doc['paths'])} path(s) to {output}")
        else:
            sys.stdout.write(text)

    @spec_app.command("diff")
    def diff_cmd(
        spec: Annotated[Path | None, typer.Option("--spec", help="Your OpenAPI 2/3 spec (JSON or YAML). Default: the first `spec` in the config.")] = None,
        state: StateOpt = DEFAULT_STATE,
        config: ConfigOpt = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
        service: Annotated[str | None, typer.Option("--service", help="Only this service's endpoints.")] = None,
        record: Annotated[bool, typer.Option("--record/--no-record", help="Record the differences as findings (OWASP API9:2023) in the state.")] = True,
    ) -> None:
        """Compare observed traffic with your spec: shadow, zombie and orphaned
        endpoints, undocumented parameters and fields, type mismatches. The
        endpoint statuses are remembered for `apiward inventory`.

        Example: apiward spec diff --spec openapi.yaml --state ./.apiward
        """
        from apiward.cli.inventory import load_snapshot
        from apiward.config import ConfigError, load_settings
        from apiward.discover.specdiff import apply, diff
        from apiward.discover.specs import SpecError, load_spec
        from apiward.pipeline import Pipeline

        if fmt not in ("table", "json"):
            fail("--format must be table or json")
        load_snapshot(state)  # a clear error when there is no state
        try:
            settings = load_settings(config, state)
        except ConfigError as exc:
            fail(str(exc))
        if spec is None:
            if not settings.spec:
                fail("pass --spec FILE (or set `spec` in the config)")
            spec = Path(settings.spec[0])
        try:
            loaded = load_spec(spec)
        except SpecError as exc:
            fail(str(exc))
        from apiward.state.store import StateError

        try:
            pipe = Pipeline(state, settings=settings)
        except StateError as exc:  # e.g. a state partitioned by analyze --workers N
            fail(str(exc))
        result = diff(pipe.inventory, loaded, service=service)
        apply(pipe.inventory, result, when=time.time())
        findings = result.findings()
        new = pipe.record(findings) if record else 0
        pipe.checkpoint()
        if fmt == "json":
            d = result.to_dict()
            d["findings"] = [f.id for f in findings]
            d["recorded"] = record
            sys.stdout.write(orjson.dumps(d, option=orjson.OPT_INDENT_2).decode() + "\n")
            return
        rows = [(i.kind, f"{i.method} {i.template}", i.spec_path, (i.location + ":" if i.location else "") + i.field, i.detail) for i in result.items]
        render(["kind", "endpoint", "spec path", "field", "detail"], rows, "table")
        counts = result.counts()
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no differences"
        out.print(f"[bold]{summary}[/]")
        if record:
            out.print(f"[dim]{len(findings)} finding(s) recorded ({new} new); see `apiward findings`[/]")
