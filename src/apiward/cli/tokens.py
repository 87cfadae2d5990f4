"""``apiward tokens``: API tokens for the server (viewer, analyst, admin,
ingest). A token is shown once, on the last line of ``create``; the state
keeps only its keyed hash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from apiward.cli.common import DEFAULT_STATE, StateOpt, fail, out


def _when(ts: object) -> str:
    return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    tokens_app = typer.Typer(help="API tokens for `apiward serve`.", no_args_is_help=True)
    app.add_typer(tokens_app, name="tokens")

    @tokens_app.command("create")
    def create(
        role: Annotated[str, typer.Option("--role", help="viewer, analyst, admin or ingest.")],
        name: Annotated[str, typer.Option("--name", help="Who or what uses it (shown in triage history).")],
        state: StateOpt = DEFAULT_STATE,
    ) -> None:
        """Create a token; it is printed once, alone on the last line."""
        from apiward.serve.auth import AuthError, AuthStore

        state.mkdir(parents=True, exist_ok=True)
        store = AuthStore(state)
        try:
            tid, token = store.create(role, name)
        except AuthError as exc:
            fail(str(exc))
            return
        finally:
            store.close()
        out.print(f"created {role} token {tid} for {name.strip()!r}; it is shown only now:")
        print(token, flush=True)

    @tokens_app.command("list")
    def list_(state: StateOpt = DEFAULT_STATE) -> None:
        """Tokens (ids, names, roles, last use; never the secrets)."""
        from apiward.serve.auth import AuthStore

        store = AuthStore(state)
        try:
            rows = store.tokens()
        finally:
            store.close()
        t = Table("id", "name", "role", "created", "last used", "revoked", title=f"{len(rows)} token(s)", title_justify="left")
        for r in rows:
            t.add_row(str(r["id"]), str(r["name"]), str(r["role"]), _when(r["created"]), _when(r["last_used"]), _when(r["revoked"]))
        out.print(t)

    @tokens_app.command("revoke")
    def revoke(token_id: Annotated[str, typer.Argument(help="The token id (T-...).")], state: StateOpt = DEFAULT_STATE) -> None:
        """Revoke a token and end its console sessions."""
        from apiward.serve.auth import AuthStore

        store = AuthStore(state)
        try:
            ok = store.revoke(token_id)
        finally:
            store.close()
        if not ok:
            fail(f"no active token {token_id}")
        out.print(f"revoked {token_id}")
