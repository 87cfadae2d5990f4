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


def _body_text(raw: bytes, cap: int) -> bytes:
    """The stored prefix of a body. Kept as bytes: Arrow takes UTF-8 bytes
    for a string column 15x faster than Python strings (see _column)."""
    return raw[:cap] if len(raw) > cap else raw


def _column(values: tuple, typ: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, type=typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # A body cut mid-character, or not UTF-8 at all: decode leniently.
        return pa.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values], type=typ)


def calls_table(
    calls: list[ApiCall], ctxs: list[Context], redactor: Redactor, body_cap: int, classified: bool = False
) -> pa.Table:
    """An Arrow table of ``calls`` (redacted) in :data:`CALLS_SCHEMA`.

    One tuple per call, transposed once: about twice as fast as appending to
    35 column lists."""
    dumps = orjson.dumps
    rows = []
    add = rows.append
    for call, ctx in zip(calls, ctxs):
        req = call.request
        resp = call.response
        actor = call.actor
        hits = ctx.sensitive
        ep = ctx.endpoint
        if req.query:
            qhits = frozenset(h.field for h in hits if h.location == "query") if hits else frozenset()
            query = dumps(redactor.params(req.query, qhits))
        else:
            query = None
        if req.body:
            rh = [h for h in hits if h.location == "request_body"] if hits else None
            kind = req.kind
            req_body = _body_text(
                redactor.body(req.body, kind, rh, req.json() if (rh or classified) and kind == "json" else None, classified), body_cap
            )
        else:
            req_body = None
        if resp is not None:
            if resp.body:
                bh = [h for h in hits if h.location in ("response_body", "error_body")] if hits else None
                kind = resp.kind
                resp_body = _body_text(
                    redactor.body(resp.body, kind, bh, resp.json() if (bh or classified) and kind == "json" else None, classified),
                    body_cap,
                )
            else:
                resp_body = None
            r = (resp.status, resp.content_type or None, resp.body_size or len(resp.body), resp.truncated, dumps(redactor.headers(resp.headers)), resp_body)
        else:
            r = (None, None, None, None, None, None)
        add(
            (
                call.id, int(call.ts * 1_000_000), call.source, req.method, req.scheme, req.host, req.path,
                ep.template, ep.service, query, r[0], call.duration_ms, req.content_type or None, r[1],
                req.body_size or len(req.body), r[2], req.truncated, r[3], dumps(redactor.headers(req.headers)),
                r[4], req_body, r[5], actor.key, actor.kind, actor.user or None, actor.ip or call.src.ip or None,
                actor.user_agent or req.header("user-agent"), actor.auth_scheme or None, actor.jwt_alg or None,
                call.src.ip or None, call.dst.ip or None, call.dst.port or None, call.workload.namespace or None,
                call.workload.pod or None, sorted({h.cls for h in hits}) if hits else [],
            )
        )
    if not rows:
        return CALLS_SCHEMA.empty_table()
    columns = list(zip(*rows))
    return pa.Table.from_arrays(
        [_column(col, field.type) for col, field in zip(columns, CALLS_SCHEMA)], schema=CALLS_SCHEMA
    )
