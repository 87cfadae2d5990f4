"""The ``apiward`` command line (typer + rich).

One module per command (or command group) under ``apiward/cli/``; each
exposes ``register(app)``. Adding a command means adding a module and one
line in ``COMMANDS``.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="apiward",
    help=(
        "apiward watches API traffic and discovers your APIs, learns normal behaviour, "
        "detects attacks and keeps a data lake to hunt in.\n\n"
        "Start with `apiward demo`, or `apiward analyze capture.har` then `apiward inventory`, "
        "`apiward findings` and `apiward query`. Every command takes --state DIR (or APIWARD_STATE)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)



@app.callback()
def _root() -> None:
    """apiward: API discovery, behaviour learning, attack detection and hunting."""


COMMANDS = [
    "analyze",
    "query",
    "version",
    "inventory",
    "spec",
    "findings",
    "proxy",
    "demo",
    "selftest",
    "hunt",
    "actors",
    "incident",
    "alerts",
    "serve",
    "tokens",
]

for _name in COMMANDS:
    try:
        _mod = importlib.import_module(f"apiward.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command still being written
        if exc.name != f"apiward.cli.{_name}":
            raise
        continue
    _mod.register(app)


def main() -> None:
    app()
