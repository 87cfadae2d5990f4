"""Akto traffic messages, as Akto's collectors (traffic mirroring, eBPF,
gateway plugins) put them on Kafka, so those collectors can feed apiward.
Accepts JSON lines, a JSON array, or one object.

Each message is a flat object of mostly string fields: ``path`` (path and
query, or a full URL), ``method``, ``requestHeaders``/``responseHeaders``
(JSON strings of a name -> value map), ``requestPayload``/``responsePayload``
(bodies as text), ``ip`` (client), ``destIp``, ``time`` (epoch seconds as a
string; values above 10^11 are read as milliseconds), ``statusCode``,
``status``, ``type`` (``HTTP/1.1``), ``akto_account_id``, ``akto_vxlan_id``
(Akto's collection id), ``is_pending``, ``source``. Messages carry no id, so
ids are ``<file>#<index>``. Akto keeps no timing: ``duration_ms`` is None.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import msgspec
import orjson

from apiward.ingest.base import Bad, ReadOptions, Record, make_request, make_response
from apiward.ingest.jsonl import decoded_records
from apiward.ingest.raw_http import host_port, target_parts
from apiward.model.call import ApiCall, Peer

__all__ = ["AktoReader"]

Num = str | int | float | None


class _Message(msgspec.Struct, gc=False):
    path: str
    method: str
    requestHeaders: str | dict[str, Any] | None = None
    responseHeaders: str | dict[str, Any] | None = None
    requestPayload: str | None = ""
    responsePayload: str | None = ""
    ip: str | None = ""
    destIp: str | None = ""
    time: Num = None
    statusCode: Num = None
    status: Num = None
    type: str | None = ""
    akto_account_id: Num = None
    akto_vxlan_id: Num = None
    is_pending: str | bool | None = None
    source: str | None = ""


_decoder = msgspec.json.Decoder(_Message)


def _headers(value: str | dict[str, Any] | None, field: str) -> list[tuple[str, str]]:
    """Header pairs from Akto's JSON-string map; raises ValueError naming
    the field when it is not a JSON object."""
    if not value:
        return []
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError(f"{field} is not a JSON object string") from None
        if not isinstance(value, dict):
            raise ValueError(f"{field} is not a JSON object string")
    out = []
    for k, v in value.items():
        if isinstance(v, list):  # some collectors send multi-valued headers
            out.extend((k, str(x)) for x in v)
        else:
            out.append((k, v if isinstance(v, str) else str(v)))
    return out


def _num(v: Num) -> float | None:
    if v is None or v == "":
        return None
    try:
        return float(v)
    except ValueError:
        return None


class AktoReader:
    """Akto traffic messages (Kafka ``akto.api.logs`` records)."""

    name = "akto"
    description = "Akto traffic messages (the JSON its collectors send to Kafka)"

    def sniff(self, head: bytes, filename: str) -> float:
        h = head.lstrip()
        if not h.startswith((b"{", b"[")):
            return 0.0
        if b'"requestHeaders"' in h and b'"responsePayload"' in h:
            return 0.95 if b'"akto_' in h else 0.8
        return 0.0

    def read(self, stream: BinaryIO, opts: ReadOptions) -> Iterator[Record]:
        src = opts.source_name or self.name
        cap = opts.body_cap
        for index, m, raw in decoded_records(stream, _decoder, opts):
            if type(m) is Bad:
                yield index, m
                continue
            try:
                yield index, self._call(m, f"{src}#{index}", cap)
            except ValueError as exc:
                yield index, Bad(f"invalid record: {exc}", raw[:4096])
            except Exception as exc:  # a value no rule foresaw (an infinite status, ...) must not stop the file
                yield index, Bad(f"invalid record: {type(exc).__name__}: {exc}", raw[:4096])

    def _call(self, m: _Message, id: str, cap: int) -> ApiCall:
        if not m.method:
            raise ValueError("empty method")
        scheme, host, path, query, raw_path = target_parts(m.path or "/")
        headers = _headers(m.requestHeaders, "requestHeaders")
        request = make_request(
            method=m.method,
            path=path,
            query=query,
            headers=headers,
            body=(m.requestPayload or "").encode("utf-8", "surrogatepass"),
            scheme=scheme,
            host=host,
            http_version=m.type or "HTTP/1.1",
            cap=cap,
        )
        if not host:
            # Akto collectors often give only the path; X-Forwarded-Proto tells the scheme.
            proto = request.header("x-forwarded-proto")
            if proto:
                request.scheme = proto.lower()
        status = _num(m.statusCode)
        response = None
        if status:
            response = make_response(
                status=int(status),
                reason=m.status if isinstance(m.status, str) and not m.status.isdigit() else "",
                headers=_headers(m.responseHeaders, "responseHeaders"),
                body=(m.responsePayload or "").encode("utf-8", "surrogatepass"),
                cap=cap,
            )
        ts = _num(m.time) or 0.0
        if ts > 1e11:
            ts /= 1000.0
        extra = {}
        if m.akto_vxlan_id not in (None, "", 0, "0"):
            extra["akto_collection"] = str(m.akto_vxlan_id)
        if m.akto_account_id not in (None, ""):
            extra["akto_account"] = str(m.akto_account_id)
        if m.source:
            extra["akto_source"] = m.source
        if raw_path != path:
            extra["raw_path"] = raw_path
        ip = m.ip if m.ip and m.ip != "null" else ""
        _, port = host_port(request.host, request.scheme)
        return ApiCall(
            id=id,
            ts=ts,
            request=request,
            response=response,
            src=Peer(ip=ip),
            dst=Peer(ip=m.destIp or "", port=port),
            source=self.name,
            extra=extra,
        )
