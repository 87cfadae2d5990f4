"""APIClarity telemetry: the body of APIClarity's ``POST /api/telemetry``
(the Go ``Telemetry`` model of its plugins API), so existing APIClarity
collectors (Envoy/Istio WASM, Kong, Tyk, F5, Apigee plugins) can feed
apiward. Accepts one object, a JSON array of them, or JSON lines.

Fields: ``requestID`` (the event id), ``scheme``, ``destinationAddress`` and
``sourceAddress`` (``ip:port``), ``destinationNamespace``, ``request{method,
path, host, common}``, ``response{statusCode (a string), common}``, where
``common`` is ``{version, headers[{key,value}], body (base64),
TruncatedBody, time (epoch ms)}``. ``ts`` is the request time,
``duration_ms`` the response time minus it; a missing or ``"0"`` status
means no response.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import msgspec

from apiward.ingest.base import Bad, ReadOptions, Record, make_request, make_response
from apiward.ingest.jsonl import decoded_records
from apiward.ingest.raw_http import host_port, target_parts
from apiward.model.call import ApiCall, Peer, Workload

__all__ = ["ApiClarityReader", "peer_of"]


class _Header(msgspec.Struct, gc=False):
    key: str = ""
    value: str = ""


class _Common(msgspec.Struct, gc=False):
    version: str | None = ""
    headers: list[_Header] | None = None
    body: bytes | None = None  # base64 in JSON; msgspec decodes it
    TruncatedBody: bool | None = None
    truncatedBody: bool | None = None  # some plugins write it camel-cased
    time: int | float | None = None


class _Request(msgspec.Struct, gc=False):
    method: str
    path: str = "/"
    host: str | None = ""
    common: _Common | None = None


class _Response(msgspec.Struct, gc=False):
    statusCode: str | int | None = None
    common: _Common | None = None


class _Telemetry(msgspec.Struct, gc=False):
    request: _Request
    requestID: str | None = ""
    scheme: str | None = ""
    destinationAddress: str | None = ""
    destinationNamespace: str | None = ""
    sourceAddress: str | None = ""
    response: _Response | None = None


_decoder = msgspec.json.Decoder(_Telemetry)


def peer_of(addr: str | None) -> Peer:
    """A :class:`Peer` from ``ip:port`` / ``[v6]:port`` / ``ip``."""
    if not addr:
        return Peer()
    ip, port = host_port(addr, "")
    return Peer(ip=ip, port=port)


def _body(c: _Common | None) -> tuple[list[tuple[str, str]], bytes, bool]:
    if c is None:
        return [], b"", False
    headers = [(h.key, h.value) for h in c.headers] if c.headers else []
    return headers, c.body or b"", bool(c.TruncatedBody or c.truncatedBody)


class ApiClarityReader:
    """APIClarity ``/api/telemetry`` payloads."""

    name = "apiclarity"
    description = "APIClarity telemetry objects (POST /api/telemetry bodies; object, array or JSON lines)"

    def sniff(self, head: bytes, filename: str) -> float:
        h = head.lstrip()
        if not h.startswith((b"{", b"[")):
            return 0.0
        if b'"requestID"' in h and (b'"destinationAddress"' in h or b'"common"' in h):
            return 0.9
        if b'"common"' in h and b'"statusCode"' in h:
            return 0.6
        return 0.0

    def read(self, stream: BinaryIO, opts: ReadOptions) -> Iterator[Record]:
        src = opts.source_name or self.name
        cap = opts.body_cap
        for index, t, raw in decoded_records(stream, _decoder, opts):
            if type(t) is Bad:
                yield index, t
                continue
            try:
                yield index, self._call(t, src, index, cap, raw)
            except Exception as exc:  # a value no rule foresaw must not stop the file
                yield index, Bad(f"invalid record: {type(exc).__name__}: {exc}", raw[:4096])

    def _call(self, t: _Telemetry, src: str, index: int, cap: int, raw: bytes) -> ApiCall | Bad:
        rq = t.request
        if not rq.method:
            return Bad("invalid record: empty request.method", raw[:4096])
        scheme = (t.scheme or "http").lower()
        _, host, path, query, raw_path = target_parts(rq.path or "/", scheme)
        headers, body, truncated = _body(rq.common)
        request = make_request(
            method=rq.method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            scheme=scheme,
            host=rq.host or host,
            http_version=(rq.common.version if rq.common and rq.common.version else "HTTP/1.1"),
            cap=cap,
        )
        if truncated:
            request.truncated = True
        t0 = rq.common.time if rq.common is not None else None
        response = None
        duration = None
        rs = t.response
        if rs is not None and rs.statusCode not in (None, "", "0", 0):
            try:
                status = int(rs.statusCode)  # type: ignore[arg-type]
            except ValueError:
                return Bad(f"invalid record: response.statusCode {rs.statusCode!r} is not a number", raw[:4096])
            rheaders, rbody, rtrunc = _body(rs.common)
            response = make_response(status=status, headers=rheaders, body=rbody, cap=cap)
            if rtrunc:
                response.truncated = True
            t1 = rs.common.time if rs.common is not None else None
            if t0 and t1 and t1 >= t0:
                duration = float(t1 - t0)
        namespace = t.destinationNamespace or ""
        service = ""
        name = host_port(request.host, scheme)[0]
        if namespace and name and not name[0].isdigit() and ":" not in name:
            service = name.split(".", 1)[0]
        return ApiCall(
            id=f"{src}#{index}",
            request_id=t.requestID or "",
            ts=t0 / 1000.0 if t0 else 0.0,
            duration_ms=duration,
            request=request,
            response=response,
            src=peer_of(t.sourceAddress),
            dst=peer_of(t.destinationAddress),
            workload=Workload(namespace=namespace, service=service),
            source=self.name,
            extra={"raw_path": raw_path} if raw_path != path else {},
        )
