"""mitmproxy flow files (``mitmdump -w flows``), behind the optional extra
``apiward[mitmproxy]`` (imported lazily: the rest of apiward never needs it).

Each HTTP flow becomes one event with the flow's own id. Bodies are decoded
from their ``Content-Encoding`` (gzip, br, ...) when possible, else kept raw.
Non-HTTP flows (TCP, UDP, DNS) are reported as bad records naming their type,
so nothing disappears silently. A corrupt file yields one bad record for the
unreadable rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from apiward.ingest.base import Bad, ReadOptions, Record, make_request, make_response
from apiward.ingest.raw_http import target_parts
from apiward.model.call import ApiCall, Peer

__all__ = ["MitmproxyReader", "MitmproxyMissing"]

INSTALL_HINT = "reading mitmproxy flows needs mitmproxy: pip install 'apiward[mitmproxy]'"


class MitmproxyMissing(ImportError):
    """mitmproxy is not installed."""


def _mitm_io() -> Any:
    try:
        from mitmproxy import io as mitm_io
    except ImportError as exc:
        raise MitmproxyMissing(INSTALL_HINT) from exc
    return mitm_io


def _peer(addr: Any) -> Peer:
    if not addr:
        return Peer()
    try:
        return Peer(ip=str(addr[0]), port=int(addr[1]))
    except (TypeError, ValueError, IndexError):
        return Peer()


def _content(msg: Any) -> bytes:
    try:
        data = msg.get_content(strict=True)
    except ValueError:
        data = msg.raw_content
    return data or b""


def _headers(msg: Any) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in msg.headers.fields]


class MitmproxyReader:
    """mitmproxy flow dumps (needs the ``mitmproxy`` extra)."""

    name = "mitmproxy"
    description = "mitmproxy flow files (mitmdump -w); needs pip install 'apiward[mitmproxy]'"

    def sniff(self, head: bytes, filename: str) -> float:
        # tnetstring: "<length>:<payload><type char>"; flows are dicts ("}")
        colon = head.find(b":", 0, 12)
        if colon <= 0 or not head[:colon].isdigit():
            return 0.0
        score = 0.5
        if b"type;" in head[:4096] and (b"4:http;" in head[:4096] or b"version;" in head[:4096]):
            score = 0.9
        if filename.endswith((".mitm", ".flow", ".flows")):
            score = min(1.0, score + 0.1)
        return score

    def read(self, stream: BinaryIO, opts: ReadOptions) -> Iterator[Record]:
        mitm_io = _mitm_io()
        from mitmproxy import exceptions, http

        src = opts.source_name or self.name
        cap = opts.body_cap
        index = 0
        reader = mitm_io.FlowReader(stream)
        flows = reader.stream()
        while True:
            try:
                flow = next(flows)
            except StopIteration:
                return
            except (exceptions.FlowReadException, ValueError) as exc:
                yield index, Bad(f"unreadable mitmproxy flow data: {exc}", b"")
                return
            if not isinstance(flow, http.HTTPFlow):
                yield index, Bad(f"not an HTTP flow: {getattr(flow, 'type', type(flow).__name__)} flow {getattr(flow, 'id', '')}", b"")
                index += 1
                continue
            try:
                yield index, self._call(flow, src, index, cap)
            except Exception as exc:  # a damaged flow must not stop the file
                yield index, Bad(f"invalid HTTP flow: {type(exc).__name__}: {exc}", b"")
            index += 1

    def _call(self, flow: Any, src: str, index: int, cap: int) -> ApiCall:
        rq = flow.request
        _, _, path, query, raw_path = target_parts(rq.path or "/", rq.scheme)
        request = make_request(
            method=rq.method,
            path=path,
            query=query,
            headers=_headers(rq),
            body=_content(rq),
            scheme=rq.scheme,
            host=rq.host_header or rq.pretty_host,
            http_version=rq.http_version,
            cap=cap,
        )
        response = None
        duration = None
        rs = flow.response
        if rs is not None:
            response = make_response(status=rs.status_code, reason=rs.reason or "", headers=_headers(rs), body=_content(rs), cap=cap)
            if rs.timestamp_end and rq.timestamp_start:
                duration = (rs.timestamp_end - rq.timestamp_start) * 1000.0
        client = getattr(flow, "client_conn", None)
        server = getattr(flow, "server_conn", None)
        dst = _peer(getattr(server, "peername", None) or getattr(server, "address", None))
        if not dst.port:
            dst = Peer(ip=dst.ip, port=rq.port)
        extra = {"raw_path": raw_path} if raw_path != path else {}
        if flow.error is not None:
            extra["error"] = str(flow.error.msg)[:200]
        return ApiCall(
            id=flow.id or f"{src}#{index}",
            ts=rq.timestamp_start or 0.0,
            duration_ms=duration,
            request=request,
            response=response,
            src=_peer(getattr(client, "peername", None)),
            dst=dst,
            source=self.name,
            extra=extra,
        )
