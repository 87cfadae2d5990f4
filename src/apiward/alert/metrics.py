"""Prometheus metrics for a running capture (``apiward proxy --metrics``):
traffic (captured, dropped, processed, queue depth), findings (by
severity and detector), pipeline health (events, stage errors, time since
the last checkpoint) and sink delivery (delivered, failed, pending, dead).

A custom collector reads the live objects when Prometheus scrapes, so the
hot path pays nothing for metrics.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = ["ApiwardCollector", "pipeline_figures", "registry_for", "serve_metrics"]


class ApiwardCollector:
    def __init__(self, pipeline: Any = None, capture: Callable[[], dict[str, Any]] | None = None,
                 queue_depth: Callable[[], int] | None = None, dispatcher: Any = None, proxy: Any = None,
                 figures: Callable[[], dict[str, Any]] | None = None, worker: Callable[[], dict[str, Any]] | None = None) -> None:
        """``pipeline`` and ``dispatcher`` are read live (in this process);
        ``figures`` returns what :func:`pipeline_figures` makes (from a
        pipeline worker process) instead; ``worker`` the worker's counters
        (``worker_alive``, ``worker_restarts``, ``worker_unsaved``)."""
        self.pipeline = pipeline
        self.capture = capture
        self.queue_depth = queue_depth
        self.dispatcher = dispatcher
        self.proxy = proxy
        self.figures = figures
        self.worker = worker
        self.started = time.time()

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("apiward_up", "1 while apiward runs")
        up.add_metric([], 1)
        yield up
        if self.capture is not None:
            st = self.capture()
            c = CounterMetricFamily("apiward_capture_exchanges", "Exchanges seen by the capture point", labels=["outcome"])
            for k in ("captured", "dropped", "processed", "errors", "lost"):
                c.add_metric([k], float(st.get(k, 0)))
            yield c
        if self.queue_depth is not None:
            g = GaugeMetricFamily("apiward_capture_queue_depth", "Exchanges waiting for the pipeline")
            g.add_metric([], float(self.queue_depth()))
            yield g
        if self.proxy is not None:
            c = CounterMetricFamily("apiward_proxy_requests", "Requests relayed by the proxy", labels=["outcome"])
            c.add_metric(["relayed"], float(getattr(self.proxy, "requests", 0)))
            c.add_metric(["upstream_error"], float(getattr(self.proxy, "upstream_errors", 0)))
            c.add_metric(["internal_error"], float(getattr(self.proxy, "internal_errors", 0)))
            stats = self.proxy.stats() if hasattr(self.proxy, "stats") else {}
            for outcome in ("rejected", "smuggling", "upstream_malformed", "header_timeouts", "body_timeouts",
                            "idle_closed", "overload_concurrent", "overload_upstream"):
                c.add_metric([outcome], float(stats.get(outcome, 0)))
            yield c
            if stats:
                g = GaugeMetricFamily("apiward_proxy_open", "Requests in flight and open upstream connections", labels=["what"])
                g.add_metric(["in_flight"], float(stats["in_flight"]))
                g.add_metric(["upstream_connections"], float(stats["upstream_open"]))
                yield g
        fig = self.figures() if self.figures is not None else pipeline_figures(self.pipeline, self.dispatcher)
        if fig.get("events") is not None:
            c = CounterMetricFamily("apiward_pipeline_events", "Events through the pipeline")
            c.add_metric([], float(fig["events"]))
            yield c
            g = GaugeMetricFamily("apiward_findings", "Findings held, by severity, detector and kind", labels=["severity", "detector", "kind"])
            for sev, det, kind, n in fig.get("findings", ()):
                g.add_metric([sev, det, kind], float(n))
            yield g
            c = CounterMetricFamily("apiward_stage_errors", "Calls a stage or detector failed on", labels=["component"])
            for comp, n in sorted(fig.get("stage_errors", {}).items()):
                c.add_metric([comp], float(n))
            yield c
            g = GaugeMetricFamily("apiward_checkpoint_age_seconds", "Seconds since the last checkpoint")
            g.add_metric([], max(0.0, time.time() - fig.get("checkpoint_at", time.time())))
            yield g
        sinks = fig.get("sinks")
        if sinks is not None:
            c = CounterMetricFamily("apiward_sink_alerts", "Alerts per sink by outcome", labels=["sink", "outcome"])
            g = GaugeMetricFamily("apiward_sink_pending", "Alerts waiting in the outbox", labels=["sink"])
            for name, s in sinks.items():
                c.add_metric([name, "delivered"], float(s.get("delivered", 0)))
                c.add_metric([name, "failed_attempts"], float(s.get("failed_attempts", 0)))
                c.add_metric([name, "dead"], float(s.get("dead", 0)))
                g.add_metric([name], float(s.get("pending", 0)))
            yield c
            yield g
        if self.worker is not None:
            w = self.worker()
            g = GaugeMetricFamily("apiward_pipeline_worker_up", "1 while the pipeline worker process runs")
            g.add_metric([], 1.0 if w.get("worker_alive") else 0.0)
            yield g
            c = CounterMetricFamily("apiward_pipeline_worker_restarts", "Times the pipeline worker process died and was started again")
            c.add_metric([], float(w.get("worker_restarts", 0)))
            yield c
            g = GaugeMetricFamily("apiward_pipeline_worker_unsaved", "Events handed to the worker and not yet checkpointed (kept to send again)")
            g.add_metric([], float(w.get("worker_unsaved", 0)))
            yield g


def pipeline_figures(pipeline: Any = None, dispatcher: Any = None) -> dict[str, Any]:
    """The pipeline's and the alert outbox's counters as plain data (what
    a pipeline worker process sends to the proxy for its metrics)."""
    out: dict[str, Any] = {}
    p = pipeline
    if p is not None:
        for _ in range(3):
            try:
                fs = list(p.findings.values())
                break
            except RuntimeError:  # resized while we read it
                fs = []
        counts = Counter((f.severity, f.detector, f.kind) for f in fs)
        out["events"] = int(p.totals.get("events", 0))
        out["findings"] = [[sev, det, kind, n] for (sev, det, kind), n in sorted(counts.items())]
        out["stage_errors"] = dict(p.errors.counts)
        out["checkpoint_at"] = time.time() - (time.monotonic() - p._last_checkpoint)
    if dispatcher is not None:
        stats = dispatcher.outbox.stats()
        out["sinks"] = {name: dict(stats.get(name, {})) for name in dispatcher.sinks}
    return out


def registry_for(collector: ApiwardCollector) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    return reg


def serve_metrics(collector: ApiwardCollector, host: str = "127.0.0.1", port: int = 9464) -> Any:
    """Serve ``/metrics`` in a background thread; returns the server."""
    res = start_http_server(port, addr=host, registry=registry_for(collector))
    return res[0] if isinstance(res, tuple) else res
