"""ATRDF 2023 (API Traffic Research Dataset Framework) JSON lists.

Each element is ``{request:{headers,method,url,body,Attack_Tag?},
response:{status,headers,status_code,body}}``. ``Attack_Tag`` is a label:
it is never copied into the event (detectors must not see labels);
evaluation scripts get it from :func:`atrdf_labels`, aligned with record
indexes. The request's ``Date`` header, when present, gives ``ts``.
"""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO

import msgspec

from apiward.ingest.base import Bad, ReadOptions, Record, make_request, make_response
from apiward.ingest.jsonl import Broken, JsonSplitter, decoded_records
from apiward.ingest.raw_http import host_port, target_parts
from apiward.model.call import ApiCall, Peer

__all__ = ["AtrdfReader", "atrdf_labels", "http_date_ts"]

Scalar = str | int | float | bool | None


class _Req(msgspec.Struct, gc=False):
    method: str
    url: str
    headers: dict[str, Scalar] = {}
    body: Any = ""


class _Resp(msgspec.Struct, gc=False):
    status_code: int | None = None
    status: str | None = ""
    headers: dict[str, Scalar] = {}
    body: Any = ""


class _Entry(msgspec.Struct, gc=False):
    request: _Req
    response: _Resp | None = None


class _LabelReq(msgspec.Struct):
    Attack_Tag: str | None = None


class _LabelEntry(msgspec.Struct):
    request: _LabelReq | None = None


_decoder = msgspec.json.Decoder(_Entry)
_label_decoder = msgspec.json.Decoder(_LabelEntry)
_dates: dict[str, float] = {}


def http_date_ts(value: str) -> float:
    """Unix seconds from an HTTP date (``Mon, 21 Nov 2022 18:12:16 GMT``);
    0.0 when invalid. Cached: logs repeat the same second many times."""
    ts = _dates.get(value)
    if ts is None:
        try:
            ts = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError):
            ts = 0.0
        if len(_dates) > 10_000:
            _dates.clear()
        _dates[value] = ts
    return ts


def _bytes(body: Any) -> bytes:
    if body is None or body == "":
        return b""
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    return msgspec.json.encode(body)


def _headers(h: dict[str, Scalar]) -> list[tuple[str, str]]:
    return [(k, v if isinstance(v, str) else ("" if v is None else str(v))) for k, v in h.items()]


class AtrdfReader:
    """ATRDF dataset JSON lists (labels are kept out of the events)."""

    name = "atrdf"
    description = "ATRDF 2023 API traffic dataset (JSON list of request/response pairs)"

    def sniff(self, head: bytes, filename: str) -> float:
        h = head.lstrip()
        if not h.startswith(b"["):
            return 0.0
        if b'"request"' in h and b'"status_code"' in h and b'"url"' in h:
            return 0.9
        return 0.0

    def read(self, stream: BinaryIO, opts: ReadOptions) -> Iterator[Record]:
        src = opts.source_name or self.name
        cap = opts.body_cap
        for index, e, raw in decoded_records(stream, _decoder, opts):
            if type(e) is Bad:
                yield index, e
                continue
            try:
                yield index, self._call(e, f"{src}#{index}", cap, raw)
            except Exception as exc:  # a value no rule foresaw must not stop the file
                yield index, Bad(f"invalid record: {type(exc).__name__}: {exc}", raw[:4096])

    def _call(self, e: _Entry, id: str, cap: int, raw: bytes) -> ApiCall | Bad:
        rq = e.request
        if not rq.method:
            return Bad("invalid record: empty request.method", raw[:4096])
        scheme, host, path, query, raw_path = target_parts(rq.url)
        headers = _headers(rq.headers)
        request = make_request(
            method=rq.method, path=path, query=query, headers=headers, body=_bytes(rq.body), scheme=scheme, host=host, cap=cap
        )
        response = None
        rs = e.response
        if rs is not None:
            status = rs.status_code
            reason = ""
            if rs.status:
                code, _, reason = rs.status.partition(" ")
                if status is None and code.isdigit():
                    status = int(code)
            if status:
                response = make_response(status=status, reason=reason, headers=_headers(rs.headers), body=_bytes(rs.body), cap=cap)
        date = request.header("date")
        _, port = host_port(request.host, scheme)
        return ApiCall(
            id=id,
            ts=http_date_ts(date) if date else 0.0,
            request=request,
            response=response,
            dst=Peer(port=port),
            source=self.name,
            extra={"raw_path": raw_path} if raw_path != path else {},
        )


def atrdf_labels(path: str) -> list[str | None]:
    """The ``Attack_Tag`` of each record of an ATRDF file, by record index
    (``None`` for benign or unreadable records). For evaluation only."""
    from apiward.ingest.registry import open_file

    labels: list[str | None] = []
    with open_file(path) as f:
        for raw in JsonSplitter(f):
            tag = None
            if type(raw) is not Broken:
                try:
                    e = _label_decoder.decode(raw)
                    tag = e.request.Attack_Tag if e.request is not None else None
                except (msgspec.DecodeError, msgspec.ValidationError):
                    tag = None
            labels.append(tag)
    return labels
