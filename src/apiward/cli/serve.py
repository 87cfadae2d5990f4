"""``apiward serve``: the REST API and the web console over a state
directory (read-only beside a running analyze or proxy; live ingestion
through ``POST /api/telemetry`` and ``/api/events``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from apiward.cli.common import DEFAULT_STATE, StateOpt, console, fail, out

__all__ = ["first_admin_token", "register", "run_server"]


def first_admin_token(state: Path) -> str | None:
    """A new admin token when the state has none yet (first start), else None."""
    from apiward.serve.auth import AuthStore

    store = AuthStore(state)
    try:
        if store.has_admin():
            return None
        return store.create("admin", "admin (first start)")[1]
    finally:
        store.close()


def run_server(state: Path, listen: str, *, ingest: bool = True, max_pending: int = 100_000, hunt_timeout: float = 30.0,
               tls_cert: Path | None = None, tls_key: Path | None = None, quiet: bool = False) -> None:
    """Serve until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    import uvicorn

    from apiward.ingest.proxy import parse_hostport
    from apiward.serve.app import create_app

    host, port = parse_hostport(listen, default_port=8000)
    state.mkdir(parents=True, exist_ok=True)
    token = first_admin_token(state)
    scheme = "https" if tls_cert else "http"
    if token is not None:
        out.print("[bold]First start: an admin token was created. It is shown only now; keep it safe.[/]")
        out.print(f"Sign in at {scheme}://{host}:{port}/login or send 'Authorization: Bearer <token>'.")
        print(f"admin token: {token}", flush=True)
    app = create_app(state, ingest=ingest, max_pending=max_pending, hunt_timeout=hunt_timeout)
    if not quiet:
        console.print(f"apiward server on {scheme}://{host}:{port}/ (API {scheme}://{host}:{port}/api/, state {state}); Ctrl-C to stop")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning" if quiet else "info", access_log=not quiet,
                    ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
                    proxy_headers=False, server_header=False)
    finally:
        app.state.ctx.close()


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        state: StateOpt = DEFAULT_STATE,
        listen: Annotated[str, typer.Option("--listen", help="Address to listen on, host:port.")] = "127.0.0.1:8000",
        ingest: Annotated[bool, typer.Option("--ingest/--no-ingest", help="Accept live events (POST /api/telemetry, /api/events) and analyse them here. Use --no-ingest beside a proxy writing the same state.")] = True,
        max_pending: Annotated[int, typer.Option("--max-pending", help="Events waiting for analysis before ingestion answers 429.")] = 100_000,
        hunt_timeout: Annotated[float, typer.Option("--hunt-timeout", help="Seconds a hunt query may run.")] = 30.0,
        tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="Serve HTTPS with this certificate (PEM).")] = None,
        tls_key: Annotated[Path | None, typer.Option("--tls-key", help="The certificate's private key (PEM).")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Serve the REST API (/api/, OpenAPI at /api/openapi.json) and the web console.

        On first start an admin token is printed once; `apiward tokens create` makes more.
        """
        from apiward.ingest.proxy import parse_hostport

        try:
            parse_hostport(listen, default_port=8000)
        except ValueError as exc:
            fail(str(exc))
        if (tls_cert is None) != (tls_key is None):
            fail("pass both --tls-cert and --tls-key, or neither")
        if max_pending < 1:
            fail("--max-pending must be at least 1")
        try:
            run_server(state, listen, ingest=ingest, max_pending=max_pending, hunt_timeout=hunt_timeout, tls_cert=tls_cert,
                       tls_key=tls_key, quiet=quiet)
        except OSError as exc:
            fail(f"cannot serve on {listen}: {exc.strerror or exc}")
