"""Options and helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)
out = Console()

StateOpt = Annotated[
    Path,
    typer.Option(
        "--state",
        envvar="APIWARD_STATE",
        help="State directory (inventory, baselines, detector state, lake). Also APIWARD_STATE.",
        show_default=True,
    ),
]
DEFAULT_STATE = Path(".apiward")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", envvar="APIWARD_CONFIG", help="TOML config file (default: <state>/apiward.toml if present)."),
]
MemoryBudgetOpt = Annotated[
    str | None,
    typer.Option("--memory-budget", help="Memory per-key state may take, e.g. 512M or 2G (default 512M, or memory_budget in the config); "
                 "every table's cap derives from it and cold ownership and baselines spill to the state store."),
]

FormatOpt = Annotated[str, typer.Option("--format", "-f", help="Output format: table, json or csv.")]


def fail(message: str, code: int = 2) -> None:
    """Print an error a person can act on and exit."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)
