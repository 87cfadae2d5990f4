"""``apiward version``."""

import typer

from apiward import __version__
from apiward.cli.common import out


def register(app: typer.Typer) -> None:
    @app.command()
    def version() -> None:
        """Print apiward's version."""
        out.print(f"apiward {__version__}")
