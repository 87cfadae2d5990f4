"""``apiward alerts``: test a sink, see the outbox, deliver what waits."""

from __future__ import annotations

import time
from typing import Annotated

import orjson
import typer
from rich.table import Table

from apiward.cli.common import DEFAULT_STATE, ConfigOpt, StateOpt, console, fail, out


def _settings(state, config):  # type: ignore[no-untyped-def]
    from apiward.config import ConfigError, load_settings

    try:
        return load_settings(config, state)
    except ConfigError as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    alerts_app = typer.Typer(help="Alert sinks: test, status, flush.", no_args_is_help=True)
    app.add_typer(alerts_app, name="alerts")

    @alerts_app.command("test")
    def test(
        sink: Annotated[str, typer.Option("--sink", help="The sink's name ([sinks.<name>] in the config).")],
        state: StateOpt = DEFAULT_STATE,
        config: ConfigOpt = None,
    ) -> None:
        """Send one test alert through a configured sink, now (no outbox), and say how it went."""
        from apiward.alert.base import DeliveryError, test_alert
        from apiward.alert.registry import build_sink

        st = _settings(state, config)
        if sink not in st.sinks:
            fail(f"no sink {sink!r} configured; configured: {', '.join(st.sinks) or 'none'} (add [sinks.{sink}] to {state}/apiward.toml)")
        try:
            s = build_sink(sink, st.sinks[sink])
        except ValueError as exc:
            fail(str(exc))
        t0 = time.perf_counter()
        try:
            s.send([test_alert(time.time())])
        except DeliveryError as exc:
            fail(f"delivery failed: {exc}", code=1)
        finally:
            s.close()
        console.print(f"[green]ok[/] test alert delivered to {sink} ({s.type}) in {(time.perf_counter() - t0) * 1000:.0f} ms")

    @alerts_app.command("status")
    def status(state: StateOpt = DEFAULT_STATE, fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table") -> None:
        """Delivered, pending and failed alerts per sink (the outbox)."""
        from apiward.alert.outbox import Outbox

        if not (state / "outbox.db").exists():
            rows: dict = {}
        else:
            ob = Outbox(state / "outbox.db")
            rows = ob.stats()
            ob.close()
        if fmt == "json":
            print(orjson.dumps([{"sink": k, **v} for k, v in rows.items()], option=orjson.OPT_INDENT_2).decode())
            return
        t = Table("sink", "delivered", "pending", "dead", "failed attempts", "last error", title="alert outbox", title_justify="left")
        for k, v in rows.items():
            t.add_row(k, str(v["delivered"]), str(v["pending"]), str(v["dead"]), str(v["failed_attempts"]), v["last_error"][:60])
        out.print(t)

    @alerts_app.command("flush")
    def flush(
        state: StateOpt = DEFAULT_STATE,
        config: ConfigOpt = None,
        timeout: Annotated[float, typer.Option("--timeout", help="Seconds to keep trying.")] = 30.0,
    ) -> None:
        """Deliver everything waiting in the outbox now (retries due or not)."""
        from apiward.alert.dispatcher import AlertDispatcher

        st = _settings(state, config)
        if not st.sinks:
            fail("no sinks configured")
        d = AlertDispatcher(state, st, start=False)
        d.outbox.retry_now()
        ok = d.drain(timeout)
        stats = d.outbox.stats()
        d.close()
        for k, v in stats.items():
            console.print(f"{k}: delivered {v['delivered']}, pending {v['pending']}" + (f", last error: {v['last_error']}" if v["last_error"] else ""))
        if not ok:
            raise typer.Exit(1)
