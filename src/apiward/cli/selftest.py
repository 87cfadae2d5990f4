"""``apiward selftest``: detection rate, false positives and time to detect,
per attack class, on labelled simulated attacks."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from apiward.cli.common import console, fail, out

__all__ = ["register", "render_report"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _num(x: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if x is None else fmt.format(x)


def render_report(rep) -> None:  # rep: SelftestReport
    """The per-class table and the false-positive summary."""
    t = Table(title=f"apiward selftest ({rep.source}, seed {rep.seed})", title_justify="left")
    for col, kw in (
        ("attack class", {"no_wrap": True}),
        ("detected", {"justify": "center"}),
        ("instances", {"justify": "right"}),
        ("recall (events)", {"justify": "right", "no_wrap": True}),
        ("time to detect (s)", {"justify": "right"}),
        ("events to detect", {"justify": "right"}),
        ("detectors", {}),
    ):
        t.add_column(col, **kw)
    for c in rep.classes:
        t.add_row(
            c.attack + (" (slow)" if c.low_and_slow and c.low_and_slow == c.instances else ""),
            "[green]yes[/]" if c.detected else "[red]no[/]",
            f"{c.detected_instances}/{c.instances}",
            f"{_pct(c.recall)} ({c.detected_events}/{c.attack_events})",
            _num(c.ttd_seconds),
            _num(c.events_to_detect),
            ", ".join(c.detectors) or "-",
        )
    out.print(t)
    out.print(
        f"classes detected: [bold]{rep.detected_classes}/{len(rep.classes)}[/]   "
        f"recall over attack events: [bold]{_pct(rep.overall_recall)}[/] ({rep.attack_events} attack events)"
    )
    out.print(
        f"false positives: benign actors {rep.fp_actors}/{rep.benign_actors} ([bold]{_pct(rep.fp_actor_rate)}[/]), "
        f"benign events {rep.fp_events}/{rep.benign_events} ([bold]{_pct(rep.fp_event_rate)}[/])"
        + (f"; by detector: {', '.join(f'{k} {v}' for k, v in rep.fp_detectors.items())}" if rep.fp_detectors else "")
    )
    out.print(
        f"{rep.events} events, {rep.findings} findings ({rep.posture_findings} about the API itself, not scored), "
        f"{rep.virtual_seconds / 3600:.1f} virtual hours, "
        f"{rep.seconds:.1f} s wall clock"
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def selftest(
        fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
        baseline: Annotated[
            Path | None,
            typer.Option("--baseline", help="Your recorded traffic (HAR, JSONL, ...): inject the attacks into it."),
        ] = None,
        state: Annotated[
            Path | None,
            typer.Option("--state", envvar="APIWARD_SELFTEST_STATE", help="Where to keep the run (default: a temporary directory)."),
        ] = None,
        users: Annotated[int | None, typer.Option("--users", help="Simulated benign users (default 100, 200 with --full).")] = None,
        seed: Annotated[int, typer.Option("--seed", help="Simulation seed.")] = 1,
        hours: Annotated[float | None, typer.Option("--hours", help="Virtual hours of traffic (default 24, 72 with --full).")] = None,
        attacks: Annotated[
            str | None, typer.Option("--attacks", help="Attack classes: all, all_slow or a comma list (default all; all,all_slow with --full).")
        ] = None,
        full: Annotated[bool, typer.Option("--full", help="A longer simulation (all playbooks, low-and-slow variants).")] = False,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the JSON report here.")] = None,
    ) -> None:
        """Measure detection: run labelled attack playbooks through a fresh pipeline and report,
        per attack class, detected or not, recall, false-positive rate and time to detect.

        The state is separate from your real one (it never touches --state of other commands
        unless you pass the same directory). With --state the report is also kept in
        <state>/selftest/report.json, which `apiward serve` shows on its self-test page.
        """
        from apiward.sim.selftest import run_selftest

        if fmt not in ("table", "json"):
            fail("--format must be table or json")
        if attacks is not None:
            from apiward.sim.simulator import expand_attacks

            try:
                expand_attacks(attacks)
            except ValueError as exc:
                fail(str(exc))
        if baseline is not None and not baseline.exists():
            fail(f"baseline file {baseline} does not exist")
        tmp = None
        if state is None:
            tmp = tempfile.mkdtemp(prefix="apiward-selftest-")
            state = Path(tmp)
        elif (state / "state.db").exists() or (state / "selftest-state").exists():
            # A fresh pipeline each time: stale learned state would skew the figures.
            shutil.rmtree(state / "selftest-state", ignore_errors=True)
            shutil.rmtree(state / "selftest", ignore_errors=True)
        try:
            with Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console, transient=True, disable=fmt == "json" and not console.is_terminal,
            ) as prog:
                tasks: dict[str, int] = {}

                def progress(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = prog.add_task(stage, total=total or None)
                    prog.update(tasks[stage], completed=done, total=total or None)

                rep = run_selftest(
                    state, users=users, duration=hours * 3600 if hours else None, attacks=attacks, seed=seed, quick=not full,
                    baseline=baseline, progress=progress,
                )
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        data = orjson.dumps(rep.to_dict(), option=orjson.OPT_INDENT_2)
        if tmp is None:  # kept with the state: `apiward serve` shows the last report
            (state / "selftest").mkdir(parents=True, exist_ok=True)
            (state / "selftest" / "report.json").write_bytes(data)
        if output is not None:
            output.write_bytes(data)
        if fmt == "json":
            typer.echo(data.decode())
        else:
            render_report(rep)
