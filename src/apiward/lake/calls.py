"""The calls table: one row per API call, hive-partitioned by day.

Rows are built column-wise (one Python list per column, then one Arrow
table per batch) because per-row dicts cost twice as much. Every value passes
through the :class:`Redactor` first.
"""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pyarrow as pa

from apiward.lake.redact import Redactor
from apiward.model.call import ApiCall
from apiward.model.context import Context

__all__ = ["CALLS_SCHEMA", "calls_table", "day_of"]

CALLS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("source", pa.string()),
        ("method", pa.string()),
        ("scheme", pa.string()),
        ("host", pa.string()),
        ("path", pa.string()),
        ("template", pa.string()),
        ("service", pa.string()),
        ("query", pa.string()),
        ("status", pa.int32()),
        ("duration_ms", pa.float64()),
        ("req_content_type", pa.string()),
        ("resp_content_type", pa.string()),
        ("req_bytes", pa.int64()),
        ("resp_bytes", pa.int64()),
        ("req_truncated", pa.bool_()),
        ("resp_truncated", pa.bool_()),
        ("req_headers", pa.string()),
        ("resp_headers", pa.string()),
        ("req_body", pa.string()),
        ("resp_body", pa.string()),
        ("actor", pa.string()),
        ("actor_kind", pa.string()),
        ("actor_user", pa.string()),
        ("client_ip", pa.string()),
        ("user_agent", pa.string()),
        ("auth_scheme", pa.string()),
        ("jwt_alg", pa.string()),
        ("src_ip", pa.string()),
        ("dst_ip", pa.string()),
        ("dst_port", pa.int32()),
        ("namespace", pa.string()),
        ("pod", pa.string()),
        ("sensitive", pa.list_(pa.string())),
    ]
)

_DAY_CACHE: dict[int, str] = {}


def day_of(ts: float) -> str:
    """``YYYY-MM-DD`` (UTC) of a Unix timestamp, cached per day."""
    d = int(ts // 86400)
    s = _DAY_CACHE.get(d)
    if s is None:
        s = datetime.fromtimestamp(d * 86400, tz=timezone.utc).strftime("%Y-%m-%d")
        _DAY_CACHE[d] = s
    return s


def _body_text(raw: bytes, cap: int) -> str:
    if len(raw) > cap:
        raw = raw[:cap]
    return raw.decode("utf-8", "replace")


def calls_table(calls: list[ApiCall], ctxs: list[Context], redactor: Redactor, body_cap: int) -> pa.Table:
    """An Arrow table of ``calls`` (redacted) in :data:`CALLS_SCHEMA`."""
    cols: dict[str, list] = {name: [] for name in CALLS_SCHEMA.names}
    a = {name: cols[name].append for name in CALLS_SCHEMA.names}
    dumps = orjson.dumps
    for call, ctx in zip(calls, ctxs):
        req = call.request
        resp = call.response
        actor = call.actor
        hits = ctx.sensitive
        a["id"](call.id)
        a["ts"](int(call.ts * 1_000_000))
        a["source"](call.source)
        a["method"](req.method)
        a["scheme"](req.scheme)
        a["host"](req.host)
        a["path"](req.path)
        a["template"](ctx.endpoint.template)
        a["service"](ctx.endpoint.service)
        if req.query:
            qhits = frozenset(h.field for h in hits if h.location == "query") if hits else frozenset()
            a["query"](dumps(redactor.params(req.query, qhits)).decode())
        else:
            a["query"](None)
        a["duration_ms"](call.duration_ms)
        a["req_content_type"](req.content_type or None)
        a["req_bytes"](req.body_size or len(req.body))
        a["req_truncated"](req.truncated)
        a["req_headers"](dumps(redactor.headers(req.headers)).decode())
        if req.body:
            rh = [h for h in hits if h.location == "request_body"] if hits else None
            a["req_body"](_body_text(redactor.body(req.body, req.kind, rh, req.json() if rh else None), body_cap))
        else:
            a["req_body"](None)
        if resp is not None:
            a["status"](resp.status)
            a["resp_content_type"](resp.content_type or None)
            a["resp_bytes"](resp.body_size or len(resp.body))
            a["resp_truncated"](resp.truncated)
            a["resp_headers"](dumps(redactor.headers(resp.headers)).decode())
            if resp.body:
                bh = [h for h in hits if h.location in ("response_body", "error_body")] if hits else None
                a["resp_body"](_body_text(redactor.body(resp.body, resp.kind, bh, resp.json() if bh else None), body_cap))
            else:
                a["resp_body"](None)
        else:
            a["status"](None)
            a["resp_content_type"](None)
            a["resp_bytes"](None)
            a["resp_truncated"](None)
            a["resp_headers"](None)
            a["resp_body"](None)
        a["actor"](actor.key)
        a["actor_kind"](actor.kind)
        a["actor_user"](actor.user or None)
        a["client_ip"](actor.ip or call.src.ip or None)
        a["user_agent"](actor.user_agent or req.header("user-agent"))
        a["auth_scheme"](actor.auth_scheme or None)
        a["jwt_alg"](actor.jwt_alg or None)
        a["src_ip"](call.src.ip or None)
        a["dst_ip"](call.dst.ip or None)
        a["dst_port"](call.dst.port or None)
        a["namespace"](call.workload.namespace or None)
        a["pod"](call.workload.pod or None)
        a["sensitive"](sorted({h.cls for h in hits}) if hits else [])
    return pa.Table.from_pydict(cols, schema=CALLS_SCHEMA)
