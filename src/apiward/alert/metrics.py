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

__all__ = ["ApiwardCollector", "serve_metrics", "registry_for"]


class ApiwardCollector:
    def __init__(self, pipeline: Any = None, capture: Callable[[], dict[str, Any]] | None = None,
                 queue_depth: Callable[[], int] | None = None, dispatcher: Any = None, proxy: Any = None) -> None:
        self.pipeline = pipeline
        self.capture = capture
        self.queue_depth = queue_depth
        self.dispatcher = dispatcher
        self.proxy = proxy
        self.started = time.time()

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("apiward_up", "1 while apiward runs")
        up.add_metric([], 1)
        yield up
        if self.capture is not None:
            st = self.capture()
            c = CounterMetricFamily("apiward_capture_exchanges", "Exchanges seen by the capture point", labels=["outcome"])
            for k in ("captured", "dropped", "processed", "errors"):
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
        p = self.pipeline
        if p is not None:
            c = CounterMetricFamily("apiward_pipeline_events", "Events through the pipeline")
            c.add_metric([], float(p.totals.get("events", 0)))
            yield c
            for _ in range(3):
                try:
                    fs = list(p.findings.values())
                    break
                except RuntimeError:  # resized while we read it
                    fs = []
            counts = Counter((f.severity, f.detector, f.kind) for f in fs)
            g = GaugeMetricFamily("apiward_findings", "Findings held, by severity, detector and kind", labels=["severity", "detector", "kind"])
            for (sev, det, kind), n in sorted(counts.items()):
                g.add_metric([sev, det, kind], float(n))
            yield g
            c = CounterMetricFamily("apiward_stage_errors", "Calls a stage or detector failed on", labels=["component"])
            for comp, n in sorted(dict(p.errors.counts).items()):
                c.add_metric([comp], float(n))
            yield c
            g = GaugeMetricFamily("apiward_checkpoint_age_seconds", "Seconds since the last checkpoint")
            g.add_metric([], max(0.0, time.monotonic() - p._last_checkpoint))
            yield g
        d = self.dispatcher
        if d is not None:
            stats = d.outbox.stats()
            c = CounterMetricFamily("apiward_sink_alerts", "Alerts per sink by outcome", labels=["sink", "outcome"])
            g = GaugeMetricFamily("apiward_sink_pending", "Alerts waiting in the outbox", labels=["sink"])
            for name in d.sinks:
                s = stats.get(name, {})
                c.add_metric([name, "delivered"], float(s.get("delivered", 0)))
                c.add_metric([name, "failed_attempts"], float(s.get("failed_attempts", 0)))
                c.add_metric([name, "dead"], float(s.get("dead", 0)))
                g.add_metric([name], float(s.get("pending", 0)))
            yield c
            yield g


def registry_for(collector: ApiwardCollector) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    return reg


def serve_metrics(collector: ApiwardCollector, host: str = "127.0.0.1", port: int = 9464) -> Any:
    """Serve ``/metrics`` in a background thread; returns the server."""
    res = start_http_server(port, addr=host, registry=registry_for(collector))
    return res[0] if isinstance(res, tuple) else res
