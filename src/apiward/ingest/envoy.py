"""Envoy (and Istio) JSON access logs, one object per line. Metadata only.

Keys understood, with ``-`` and ``_`` interchangeable and case ignored (so
both Istio's ``x_forwarded_for`` and a custom ``X-Forwarded-For`` work):
``start_time`` (ISO 8601), ``method``, ``path`` (Envoy's default logs
``X-ENVOY-ORIGINAL-PATH?:PATH``), ``protocol``, ``response_code``
(0 = no response), ``response_flags``, ``bytes_received``, ``bytes_sent``,
``duration`` (ms), ``upstream_service_time``, ``x_forwarded_for``,
``user_agent``, ``request_id``/``x_request_id`` (kept as the call's ``request_id``; the event id is apiward's own),
``authority``, ``upstream_host``, ``upstream_cluster`` (Istio
``outbound|port|subset|svc.ns.svc.cluster.local`` gives the workload),
``downstream_remote_address`` (the peer), ``downstream_local_address``,
``route_name``. Blank lines are skipped and consume no index.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from apiward.ingest.apiclarity import peer_of
from apiward.ingest.base import Bad, ReadOptions, Record, make_request, make_response
from apiward.ingest.har import parse_iso_ts
from apiward.ingest.jsonl import first_json_line
from apiward.ingest.nginx import _int, _s, json_lines  # shared JSON access-log field rules
from apiward.ingest.raw_http import target_parts
from apiward.model.call import ApiCall, Workload

__all__ = ["EnvoyJsonReader"]

_HEADER_KEYS = {
    "x_forwarded_for": "x-forwarded-for",
    "user_agent": "user-agent",
    "authority": "host",
    "x_forwarded_proto": "x-forwarded-proto",
    "referer": "referer",
    "content_type": "content-type",
}


def _workload(cluster: str) -> Workload:
    parts = cluster.split("|")
    if len(parts) == 4 and parts[0] in ("outbound", "inbound"):
        labels = parts[3].split(".")
        if len(labels) >= 2 and parts[3]:
            return Workload(service=labels[0], namespace=labels[1])
    return Workload()


class EnvoyJsonReader:
    """Envoy / Istio JSON access logs (metadata only)."""

    name = "envoy"
    description = "Envoy/Istio JSON access logs (metadata only)"

    def sniff(self, head: bytes, filename: str) -> float:
        line = first_json_line(head).lower().replace(b"-", b"_")
        if not line.startswith(b"{"):
            return 0.0
        if b'"response_code"' in line and (b'"upstream_host"' in line or b'"response_flags"' in line or b'"authority"' in line):
            return 0.9
        if b'"response_code"' in line and b'"start_time"' in line:
            return 0.6
        return 0.0

    def read(self, stream: BinaryIO, opts: ReadOptions) -> Iterator[Record]:
        src = opts.source_name or self.name
        for index, obj in json_lines(stream, opts):
            if type(obj) is Bad:
                yield index, obj
                continue
            o = {k.lower().replace("-", "_"): v for k, v in obj.items()}  # type: ignore[union-attr]
            try:
                yield index, self._call(o, src, index)
            except ValueError as exc:
                yield index, Bad(f"invalid record: {exc}", orjson.dumps(obj)[:4096])
            except Exception as exc:  # a value no rule foresaw must not stop the file
                yield index, Bad(f"invalid record: {type(exc).__name__}: {exc}", orjson.dumps(obj)[:4096])

    def _call(self, o: dict[str, Any], src: str, index: int) -> ApiCall:
        method = _s(o.get("method"))
        if not method:
            raise ValueError("no method")
        headers = []
        for k, name in _HEADER_KEYS.items():
            v = _s(o.get(k))
            if v:
                headers.append((name, v))
        rid = _s(o.get("request_id")) or _s(o.get("x_request_id"))
        if rid:
            headers.append(("x-request-id", rid))
        proto = _s(o.get("x_forwarded_proto")) or "http"
        scheme, host, path, query, raw_path = target_parts(_s(o.get("path")) or "/", proto)
        request = make_request(
            method=method, path=path, query=query, headers=headers, scheme=scheme,
            host=host or _s(o.get("authority")), http_version=_s(o.get("protocol")) or "HTTP/1.1",
            body_size=_int(o.get("bytes_received")) or None,
        )
        request.truncated = False  # metadata-only source
        code = _int(o.get("response_code"))
        response = None
        if code:
            response = make_response(status=code, body_size=_int(o.get("bytes_sent")) or None)
            response.truncated = False
        extra = {"metadata_only": "1"}
        for k in ("response_flags", "upstream_host", "upstream_cluster", "route_name", "upstream_service_time", "response_code_details"):
            v = _s(o.get(k))
            if v:
                extra[k] = v
        if raw_path != path:
            extra["raw_path"] = raw_path
        dur = o.get("duration")
        try:
            ts = parse_iso_ts(_s(o.get("start_time")))
        except ValueError as exc:
            raise ValueError(f"start_time: {exc}") from None
        return ApiCall(
            id=f"{src}#{index}",
            request_id=rid,
            ts=ts,
            duration_ms=float(dur) if isinstance(dur, (int, float)) or (isinstance(dur, str) and dur.isdigit()) else None,
            request=request,
            response=response,
            src=peer_of(_s(o.get("downstream_remote_address"))),
            dst=peer_of(_s(o.get("downstream_local_address"))),
            workload=_workload(_s(o.get("upstream_cluster"))),
            source=self.name,
            extra=extra,
        )
