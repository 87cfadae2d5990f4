"""``apiward proxy``: a capturing reverse proxy that analyses traffic live.

One process: the asyncio proxy relays traffic; a consumer thread runs the
whole pipeline on micro-batches and checkpoints the state and lake every
``--checkpoint`` seconds, so ``apiward query``/``inventory``/``findings``
with the same ``--state`` work while it runs. SIGINT/SIGTERM stop
accepting, let in-flight exchanges finish, drain the queue and checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from apiward.cli.common import DEFAULT_STATE, ConfigOpt, MemoryBudgetOpt, StateOpt, console, fail
from apiward.config import ConfigError, load_settings
from apiward.ingest.base import DEFAULT_BODY_CAP
from apiward.ingest.capture import CaptureQueue
from apiward.ingest.proxy import CaptureProxy, parse_hostport

__all__ = ["register", "run_proxy"]


def run_proxy(
    listen: str,
    upstream: str,
    state: Path,
    *,
    body_cap: int = DEFAULT_BODY_CAP,
    max_queue: int = 50_000,
    batch_ms: float = 200.0,
    checkpoint_every: float = 2.0,
    trust_sim_clock: bool = False,
    mode: str = "both",
    quiet: bool = False,
    metrics: str | None = None,
    config: Path | None = None,
    forward: Any = None,
    memory_budget: str | None = None,
) -> dict[str, Any]:
    """Serve until SIGINT/SIGTERM; returns the final counters (the capture
    queue's and the proxy's, see :meth:`CaptureProxy.stats`). With
    ``forward`` (a sink such as :class:`apiward.ingest.forward.ServerSink`)
    batches go there instead of to a local pipeline."""
    from apiward.pipeline import Pipeline  # the pipeline is a later stage; import lazily

    host, port = parse_hostport(listen)
    settings = load_settings(config, state, memory_budget=memory_budget)
    pipeline: Any = None
    if forward is None:
        pipeline = Pipeline(state, mode=mode, settings=settings)
    checkpoint = getattr(pipeline, "checkpoint", None)
    queue = CaptureQueue(
        forward if forward is not None else lambda calls: pipeline.process(calls, autocheckpoint=False),
        max_queue=max_queue,
        batch_ms=batch_ms,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        body_cap=body_cap,
        trust_sim_clock=trust_sim_clock,
    )
    proxy = CaptureProxy(upstream, queue.submit, body_cap=body_cap, **settings.proxy.as_kwargs())
    metrics_server = None
    if metrics:
        from apiward.alert.metrics import ApiwardCollector, serve_metrics

        mhost, mport = parse_hostport(metrics, default_port=9464)
        collector = ApiwardCollector(pipeline=pipeline, capture=queue.stats.as_dict, queue_depth=lambda: len(queue),
                                     dispatcher=getattr(pipeline, "alerts", None), proxy=proxy)
        metrics_server = serve_metrics(collector, mhost, mport)
        if not quiet:
            console.print(f"Prometheus metrics on http://{mhost}:{mport}/metrics")
    # The analysis thread holds the GIL in long stretches; a short switch
    # interval keeps the relay's added latency low while it works.
    sys.setswitchinterval(0.001)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        bound = await proxy.start(host, port)
        if not quiet:
            console.print(
                f"apiward proxy listening on http://{bound[0]}:{bound[1]} -> {upstream} "
                f"(state {state}); Ctrl-C to stop"
            )
        await stop.wait()
        await proxy.shutdown(grace=5.0)

    try:
        asyncio.run(main())
    finally:
        queue.close(timeout=120)
        if pipeline is not None:
            pipeline.close()
        if forward is not None and hasattr(forward, "close"):
            forward.close()
        if metrics_server is not None:
            metrics_server.shutdown()
    stats = queue.stats.as_dict()
    stats.update(proxy.stats())
    return stats


def register(app: typer.Typer) -> None:
    @app.command()
    def proxy(
        upstream: Annotated[str, typer.Option("--upstream", help="Where to forward: http://host:port.")],
        listen: Annotated[str, typer.Option("--listen", help="Address to listen on, host:port.")] = "127.0.0.1:8080",
        state: StateOpt = DEFAULT_STATE,
        body_cap: Annotated[int, typer.Option("--body-cap", help="Bytes of each body kept for analysis.")] = DEFAULT_BODY_CAP,
        max_queue: Annotated[int, typer.Option("--max-queue", help="Events buffered before new ones are dropped (and counted).")] = 50_000,
        checkpoint: Annotated[float, typer.Option("--checkpoint", help="Seconds between state/lake checkpoints.")] = 2.0,
        mode: Annotated[str, typer.Option("--mode", help="learn, detect or both.")] = "both",
        trust_sim_clock: Annotated[
            bool, typer.Option("--trust-sim-clock", hidden=True, help="Take event time from x-apiward-sim-ts (demo only).")
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
        metrics: Annotated[str | None, typer.Option("--metrics", help="Serve Prometheus metrics on host:port (/metrics).")] = None,
        config: ConfigOpt = None,
        forward: Annotated[str | None, typer.Option("--forward", help="Send events to an apiward server (http://host:port) instead of analysing here.")] = None,
        forward_token: Annotated[str | None, typer.Option("--forward-token", envvar="APIWARD_INGEST_TOKEN", help="Ingest token for --forward (or APIWARD_INGEST_TOKEN).")] = None,
        memory_budget: MemoryBudgetOpt = None,
    ) -> None:
        """Run a capturing reverse proxy in front of an API and analyse its traffic live.

        Traffic passes unchanged (X-Forwarded-For gets the client address). Other commands
        (query, inventory, findings) can read the same --state while it runs.
        """
        try:
            parse_hostport(listen)
            CaptureProxy(upstream, lambda ex: None, **load_settings(config, state).proxy.as_kwargs())
        except (ValueError, ConfigError) as exc:
            fail(str(exc))
        sink = None
        if forward:
            from apiward.ingest.forward import ServerSink

            if not forward_token:
                fail("--forward needs an ingest token: --forward-token or APIWARD_INGEST_TOKEN (apiward tokens create --role ingest)")
            try:
                sink = ServerSink(forward, forward_token)
            except ValueError as exc:
                fail(str(exc))
        try:
            stats = run_proxy(
                listen, upstream, state, body_cap=body_cap, max_queue=max_queue, checkpoint_every=checkpoint,
                trust_sim_clock=trust_sim_clock, mode=mode, quiet=quiet, metrics=metrics, config=config, forward=sink,
                memory_budget=memory_budget,
            )
        except ConfigError as exc:
            fail(str(exc))
            return
        except OSError as exc:
            fail(f"cannot listen on {listen}: {exc.strerror or exc}")
            return
        console.print(
            f"apiward proxy stopped: captured {stats['captured']}, processed {stats['processed']}, "
            f"dropped {stats['dropped']}, errors {stats['errors']}"
            + (f" (last: {stats['last_error']})" if stats["last_error"] else "")
            + f"; proxy: {stats['requests']} requests, {stats['rejected']} refused ({stats['smuggling']} smuggling),"
            f" {stats['upstream_errors']} upstream errors ({stats['upstream_malformed']} malformed),"
            f" timeouts {stats['header_timeouts']} head / {stats['body_timeouts']} body,"
            f" 503s {stats['overload_concurrent']} concurrency / {stats['overload_upstream']} upstream cap"
        )
