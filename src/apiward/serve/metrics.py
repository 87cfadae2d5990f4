"""``GET /api/metrics``: Prometheus text. The pipeline's own metrics
(:class:`apiward.alert.metrics.ApiwardCollector`, once ingestion opened
it) plus the server's: requests, refused authentications, the ingestion
spool and triage counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from apiward.alert.metrics import ApiwardCollector, registry_for

if TYPE_CHECKING:
    from apiward.serve.app import ServerContext

__all__ = ["ServerCollector", "render"]


class ServerCollector(ApiwardCollector):
    """The pipeline's metrics and the server's own, read at scrape time."""

    def __init__(self, ctx: ServerContext) -> None:
        consumer = ctx.consumer
        super().__init__(pipeline=consumer.pipeline if consumer is not None else None, queue_depth=lambda: len(ctx.spool))
        self.ctx = ctx

    def collect(self) -> Iterator[Any]:
        yield from super().collect()
        ctx = self.ctx
        c = CounterMetricFamily("apiward_server_requests", "HTTP requests by outcome", labels=["outcome"])
        for k, v in sorted(ctx.counters.items()):
            c.add_metric([k], float(v))
        yield c
        st = ctx.spool.stats()
        c = CounterMetricFamily("apiward_ingest_events", "Events offered to the ingestion endpoints", labels=["outcome"])
        c.add_metric(["accepted"], float(st["accepted"]))
        c.add_metric(["refused_full"], float(st["refused"]))
        if ctx.consumer is not None:
            c.add_metric(["processed"], float(ctx.consumer.processed))
        yield c
        g = GaugeMetricFamily("apiward_ingest_capacity", "Events the spool may hold before refusing with 429")
        g.add_metric([], float(st["max_pending"]))
        yield g
        g = GaugeMetricFamily("apiward_triage_findings", "Triaged findings by status", labels=["status"])
        counts: dict[str, int] = {}
        for t in ctx.triage.all().values():
            counts[t["status"]] = counts.get(t["status"], 0) + 1
        for k, v in sorted(counts.items()):
            g.add_metric([k], float(v))
        yield g


def render(ctx: ServerContext) -> bytes:
    return generate_latest(registry_for(ServerCollector(ctx)))
