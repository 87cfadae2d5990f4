"""``apiward analyze``: read traffic files through the whole pipeline."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from apiward.cli.common import (
    DEFAULT_STATE,
    ConfigOpt,
    MemoryBudgetOpt,
    StateOpt,
    console,
    fail,
    out,
)
from apiward.config import ConfigError, load_settings
from apiward.ingest.registry import reader_names


def expand(paths: list[str]) -> list[str]:
    """Files from arguments: globs expanded, directories walked (sorted)."""
    files: list[str] = []
    for p in paths:
        matches = sorted(glob.glob(p)) if any(c in p for c in "*?[") else [p]
        if not matches:
            fail(f"{p}: no file matches")
        for m in matches:
            if os.path.isdir(m):
                for root, _dirs, names in sorted(os.walk(m)):
                    files.extend(os.path.join(root, n) for n in sorted(names) if not n.startswith("."))
            else:
                files.append(m)
    return files


def register(app: typer.Typer) -> None:
    @app.command()
    def analyze(
        paths: Annotated[list[str], typer.Argument(help="Traffic files, globs or directories (HAR, JSONL, APIClarity, Akto, raw HTTP, ATRDF, nginx/Envoy JSON logs, mitmproxy flows; .gz ok).")],
        state: StateOpt = DEFAULT_STATE,
        config: ConfigOpt = None,
        fmt: Annotated[str | None, typer.Option("--format", help=f"Force the input format instead of sniffing: {', '.join(reader_names())}.")] = None,
        mode: Annotated[str, typer.Option("--mode", help="both: score then learn (default); learn: update baselines only; detect: score with frozen baselines.")] = "both",
        trusted_proxies: Annotated[list[str] | None, typer.Option("--trusted-proxies", help="CIDR of a proxy whose X-Forwarded-For/Forwarded is trusted (repeatable; loopback always trusted).")] = None,
        keep_raw_bodies: Annotated[bool, typer.Option("--keep-raw-bodies", help="Store bodies, headers and parameters WITHOUT redaction (off by default).")] = False,
        spec: Annotated[list[str] | None, typer.Option("--spec", help="OpenAPI spec whose routes win in templating (repeatable).")] = None,
        batch_size: Annotated[int | None, typer.Option("--batch-size", help="Events per micro-batch.")] = None,
        json_summary: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON on stdout.")] = False,
        flush_pending: Annotated[bool, typer.Option("--flush-pending", help="This is the end of the stream: judge deferred deviations now instead of waiting for more traffic.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or per-record errors.")] = False,
        memory_budget: MemoryBudgetOpt = None,
        workers: Annotated[int, typer.Option("--workers", help="Worker processes, each owning the API hosts that hash to it (state under <state>/partitions/); a state directory keeps the count it was made with. 1: one pipeline.")] = 1,
    ) -> None:
        """Analyse traffic files: discover endpoints, score and learn, write the lake.

        Example: apiward analyze capture.har more/*.jsonl --state ./.apiward
        """
        from apiward.pipeline import MODES

        if mode not in MODES:
            fail(f"--mode must be one of {', '.join(MODES)}")
        if fmt is not None and fmt not in reader_names():
            fail(f"--format must be one of {', '.join(reader_names())}")
        if workers < 1 or workers > 256:
            fail("--workers must be between 1 and 256")
        files = expand(paths)
        try:
            settings = load_settings(
                config,
                state,
                trusted_proxies=trusted_proxies or None,
                keep_raw_bodies=keep_raw_bodies or None,
                spec=spec or None,
                batch_size=batch_size,
                memory_budget=memory_budget,
            )
        except ConfigError as exc:
            fail(str(exc))
        errors: list[str] = []

        def on_error(msg: str) -> None:
            errors.append(msg)
            if not quiet and len(errors) <= 20:
                console.print(f"[yellow]skipped[/] {msg}")

        per_worker: list[dict] | None = None
        if workers > 1:
            summary, per_worker = _run_workers(state, files, workers, mode, settings, fmt, flush_pending, quiet, on_error)
        else:
            summary = _run_one(state, files, mode, settings, fmt, flush_pending, quiet, on_error)
        if len(errors) > 20 and not quiet:
            console.print(f"[yellow]... and {len(errors) - 20} more; see {state / 'quarantine'}[/]")
        if json_summary:
            import msgspec

            d = msgspec.to_builtins(summary)
            d["events_per_second"] = summary.events_per_second
            if per_worker is not None:
                d["workers"] = per_worker
            out.print_json(orjson.dumps(d).decode())
        else:
            _print_summary(summary, state, quiet, per_worker)
        if summary.failed_files and summary.events == 0:
            raise typer.Exit(1)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]analysing[/] {task.description}"),
        BarColumn(bar_width=None),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _run_one(state: Path, files: list[str], mode: str, settings: Any, fmt: str | None, flush_pending: bool, quiet: bool,
             on_error: Callable[[str], None]) -> Any:
    """One pipeline (``--workers 1``, the default)."""
    from apiward.pipeline import Pipeline
    from apiward.state.store import StateError

    try:
        pipe = Pipeline(state, mode=mode, settings=settings)
    except StateError as exc:
        fail(str(exc))
    if quiet:
        summary = pipe.run_files(files, fmt=fmt, on_error=on_error)
    else:
        with _progress() as progress:
            task = progress.add_task(f"{len(files)} file(s)", total=None)
            summary = pipe.run_files(files, fmt=fmt, on_error=on_error, on_progress=lambda n: progress.advance(task, n))
    if flush_pending:
        before = len(pipe.findings)
        pipe.flush_pending()
        summary.new_findings += len(pipe.findings) - before
        summary.findings = len(pipe.findings)
    pipe.close()
    return summary


def _run_workers(state: Path, files: list[str], workers: int, mode: str, settings: Any, fmt: str | None, flush_pending: bool,
                 quiet: bool, on_error: Callable[[str], None]) -> tuple[Any, list[dict]]:
    """``--workers N``: partitions by host, then the actor stage (apiward.parallel)."""
    from apiward.parallel import WorkerFailed, run_partitioned
    from apiward.state.store import StateError

    @contextmanager
    def progress() -> Iterator[Callable[[int], None]]:
        with _progress() as bar:
            task = bar.add_task(f"{len(files)} file(s), {workers} workers", total=None)
            yield lambda n: bar.advance(task, n)

    try:
        return run_partitioned(state, files, workers=workers, mode=mode, settings=settings, fmt=fmt, flush_pending=flush_pending,
                               on_error=on_error, progress=None if quiet else progress)
    except (StateError, WorkerFailed) as exc:
        fail(str(exc))


def _print_summary(summary: Any, state: Path, quiet: bool, per_worker: list[dict] | None) -> None:
    t = Table(title="apiward analyze", show_header=False, title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value", justify="right")
    t.add_row("events read", f"{summary.events:,}")
    for f, n in sorted(summary.per_format.items()):
        t.add_row(f"  {f}", f"{n:,}")
    t.add_row("quarantined", f"{summary.quarantined:,}" + (f"  (see {state / 'quarantine'})" if summary.quarantined else ""))
    if len(summary.per_file) > 1 or summary.quarantined:
        for name, fc in summary.per_file.items():
            extra = f" + {fc.duplicates:,} duplicate" if fc.duplicates else ""
            t.add_row(f"  {os.path.basename(name)}", f"read {fc.read:,} = stored {fc.stored:,} + quarantined {fc.quarantined:,}{extra}")
    if summary.skipped_already_ingested:
        t.add_row("already ingested (skipped)", f"{summary.skipped_already_ingested:,}")
    if summary.failed_files:
        t.add_row("unreadable files", str(len(summary.failed_files)))
    for comp, n in sorted(summary.stage_errors.items()):
        t.add_row(f"[red]errors in {comp}[/]", f"{n:,} call(s)")
    t.add_row("endpoints", f"{summary.endpoints:,}")
    t.add_row("findings (new)", f"{summary.findings:,} ({summary.new_findings:,})")
    t.add_row("events/s", f"{summary.events_per_second:,.0f}")
    for w in per_worker or []:
        t.add_row(f"  worker {w['partition']}", f"{w['events']:,} events, {w['process_cpu_seconds']:,.1f} CPU-s")
    t.add_row("state", str(state))
    out.print(t)
    for msg in summary.failed_files:
        console.print(f"[red]unreadable:[/] {msg}")
    if summary.error_messages and quiet:
        for msg in summary.error_messages[:20]:
            console.print(f"[red]error:[/] {msg}")
