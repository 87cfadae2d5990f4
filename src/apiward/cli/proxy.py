"""``apiward proxy``: a capturing reverse proxy that analyses traffic live.

Two processes by default (``--pipeline worker``): this one relays traffic
(asyncio) and captures it: a :class:`~apiward.live.runner.LiveRunner`
thread turns exchanges into calls and hands batches to a
:class:`~apiward.live.supervisor.PipelineWorker`, which sends them
(msgspec frames over a pipe) to the pipeline worker process
(:mod:`apiward.live.worker`). The worker owns the state directory and the
lake and checkpoints every ``--checkpoint`` seconds, so ``apiward
query``/``inventory``/``findings`` with the same ``--state`` work while it
runs; the analysis never holds the relay's GIL. A worker that dies is
reported, counted and started again, and is sent what it had not
checkpointed. ``--pipeline inprocess`` runs the pipeline in a thread of
this process instead (one process; the relay's p99 then suffers);
``--forward`` sends the calls to a server. SIGINT/SIGTERM stop accepting,
let in-flight exchanges finish, drain the queue and checkpoint.
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
from apiward.ingest.proxy import CaptureProxy, parse_hostport
from apiward.live.runner import LiveRunner, pipeline_runner
from apiward.live.supervisor import PipelineWorker, WorkerFailed

__all__ = ["PIPELINE_MODES", "register", "run_proxy"]

PIPELINE_MODES = ("worker", "inprocess")


def _log(line: str) -> None:
    console.print(f"apiward proxy: {line}", markup=False, highlight=False)


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
    pipeline: str = "worker",
) -> dict[str, Any]:
    """Serve until SIGINT/SIGTERM; returns the final counters (the live
    runner's, the worker's and the proxy's, see :meth:`CaptureProxy.stats`).
    ``pipeline``: ``worker`` (its own process) or ``inprocess``. With
    ``forward`` (a sink such as :class:`apiward.ingest.forward.ServerSink`)
    batches go there instead of to a local pipeline. Raises
    :class:`WorkerFailed` when the worker cannot open the state."""
    if pipeline not in PIPELINE_MODES:
        raise ValueError(f"pipeline must be one of {', '.join(PIPELINE_MODES)}, got {pipeline!r}")
    host, port = parse_hostport(listen)
    settings = load_settings(config, state, memory_budget=memory_budget)
    options: dict[str, Any] = {"max_queue": max_queue, "batch_ms": batch_ms, "checkpoint_every": checkpoint_every,
                               "body_cap": body_cap, "trust_sim_clock": trust_sim_clock}
    local: Any = None  # the pipeline, when it runs in this process
    worker: PipelineWorker | None = None
    if forward is not None:
        runner = LiveRunner(forward, **options)
    elif pipeline == "worker":
        worker = PipelineWorker(state, mode=mode, config=config, memory_budget=memory_budget, checkpoint_every=checkpoint_every,
                                max_unsaved=max_queue, log=_log, quiet=quiet).start()
        runner = LiveRunner(worker, **options)
    else:
        from apiward.pipeline import Pipeline

        local = Pipeline(state, mode=mode, settings=settings)
        runner = pipeline_runner(local, **options)

    def counters() -> dict[str, Any]:
        stats = runner.stats.as_dict()
        if worker is not None:  # processed and errors as the worker reports them
            ws = worker.stats()
            stats.update(ws, errors=stats["errors"] + ws["errors"], last_error=ws["last_error"] or stats["last_error"])
        return stats

    proxy = CaptureProxy(upstream, runner.submit, body_cap=body_cap, **settings.proxy.as_kwargs())
    metrics_server = None
    if metrics:
        from apiward.alert.metrics import ApiwardCollector, serve_metrics

        mhost, mport = parse_hostport(metrics, default_port=9464)
        collector = ApiwardCollector(pipeline=local, capture=counters, queue_depth=lambda: len(runner),
                                     dispatcher=getattr(local, "alerts", None), proxy=proxy,
                                     figures=(lambda: worker.figures) if worker is not None else None,
                                     worker=worker.stats if worker is not None else None)
        metrics_server = serve_metrics(collector, mhost, mport)
        if not quiet:
            console.print(f"Prometheus metrics on http://{mhost}:{mport}/metrics")
    # The runner's thread (and, in process, the analysis) takes the GIL in
    # stretches; a short switch interval keeps the relay's added latency low.
    sys.setswitchinterval(0.001)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        bound = await proxy.start(host, port)
        if not quiet:
            where = "pipeline in a worker process" if worker is not None else ("forwarding" if forward is not None else "pipeline in process")
            console.print(
                f"apiward proxy listening on http://{bound[0]}:{bound[1]} -> {upstream} "
                f"(state {state}, {where}); Ctrl-C to stop"
            )
        await stop.wait()
        await proxy.shutdown(grace=5.0)

    try:
        asyncio.run(main())
    finally:
        if worker is not None:
            worker.begin_close()
        runner.close(timeout=120)
        if local is not None:
            local.close()
        if worker is not None:
            worker.close(timeout=120)
        if forward is not None and hasattr(forward, "close"):
            forward.close()
        if metrics_server is not None:
            metrics_server.shutdown()
    stats = counters()
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
        pipeline: Annotated[str, typer.Option("--pipeline", help="Where the analysis runs: worker (its own process, the default: "
                                              "the relay keeps its latency) or inprocess (a thread of the proxy).")] = "worker",
    ) -> None:
        """Run a capturing reverse proxy in front of an API and analyse its traffic live.

        Traffic passes unchanged (X-Forwarded-For gets the client address). Other commands
        (query, inventory, findings) can read the same --state while it runs.
        """
        if pipeline not in PIPELINE_MODES:
            fail(f"--pipeline must be one of {', '.join(PIPELINE_MODES)}, got {pipeline!r}")
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
                memory_budget=memory_budget, pipeline=pipeline,
            )
        except (ConfigError, WorkerFailed) as exc:
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
            + (f"; pipeline worker: {stats['worker_restarts']} restarts, {stats['lost']} events lost"
               if "worker_restarts" in stats else "")
        )
