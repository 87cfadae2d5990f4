"""HAR 1.2 (browsers, Burp, Postman, Charles, mitmproxy exports).

Streams ``log.entries`` one element at a time (:class:`JsonSplitter`) and
decodes each into typed msgspec Structs, which is several times faster than
dicts. Quirks handled: base64 bodies (``encoding: "base64"``), form bodies
given only as ``postData.params``, ``startedDateTime`` with any UTC offset,
``time`` in ms, ``serverIPAddress`` (IPv6 possibly bracketed), a missing or
``status: 0`` response (blocked or failed request: ``response`` is None),
content ``size`` larger than the captured text (flagged truncated), and
``_``-prefixed custom fields (ignored). The query comes from the URL, not
from ``queryString`` (tools disagree on whether those values are decoded).
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO
from urllib.parse import quote_plus

import msgspec

from apiward.ingest.base import Bad, ReadOptions, Record, build_request, build_response, lower_name
from apiward.ingest.base import _LOWER as _LOWER_NAMES
from apiward.ingest.jsonl import Broken, decode_error_reason, splitter
from apiward.ingest.raw_http import host_port, split_target, target_parts
from apiward.model.call import ApiCall, Peer

__all__ = ["HarReader", "parse_iso_ts"]


class HarNV(msgspec.Struct, gc=False):
    name: str = ""
    value: str | None = ""


class HarParam(msgspec.Struct, gc=False):
    name: str = ""
    value: str | None = ""
    fileName: str | None = None


class HarPostData(msgspec.Struct, gc=False):
    mimeType: str | None = ""
    text: str | None = None
    params: list[HarParam] | None = None
    encoding: str | None = None


class HarRequest(msgspec.Struct, gc=False):
    method: str
    url: str
    httpVersion: str | None = ""
    headers: list[HarNV] = []
    postData: HarPostData | None = None
    bodySize: int | None = -1


class HarContent(msgspec.Struct, gc=False):
    size: int | None = 0
    mimeType: str | None = ""
    text: str | None = None
    encoding: str | None = None


class HarResponse(msgspec.Struct, gc=False):
    status: int = 0
    statusText: str | None = ""
    httpVersion: str | None = ""
    headers: list[HarNV] = []
    content: HarContent | None = None
    bodySize: int | None = -1


class HarEntry(msgspec.Struct, gc=False):
    request: HarRequest
    startedDateTime: str | None = ""
    time: float | None = None
    response: HarResponse | None = None
    serverIPAddress: str | None = ""
    connection: str | None = ""


_entry_decoder = msgspec.json.Decoder(HarEntry)
_list_decoder = msgspec.json.Decoder(list[HarEntry])


class _Raw:
    """Re-encodes a batch-decoded entry only if a bad-record report needs it."""

    __slots__ = ("entry",)

    def __init__(self, entry: HarEntry) -> None:
        self.entry = entry

    def __getitem__(self, key: slice) -> bytes:
        return msgspec.json.encode(self.entry)[key]


def parse_iso_ts(value: str | None) -> float:
    """Unix seconds from an ISO 8601 timestamp; 0.0 ("unknown") when absent.
    Raises ``ValueError`` naming the value when it is there but unparseable
    (a year 0, a garbled date): it must not silently become 1970."""
    if not value:
        return 0.0
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        dt = _lenient_iso(value)
        if dt is None:
            raise ValueError(f"unparseable timestamp {value[:60]!r} (ISO 8601 expected)") from None
    try:
        if dt.tzinfo is None:  # no offset given: read as UTC
            return (dt - _EPOCH_NAIVE).total_seconds()
        return dt.timestamp()
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"timestamp {value[:60]!r} out of range") from None


def _lenient_iso(value: str) -> datetime | None:
    """Retry with the fraction cut to microseconds (some tools write ns)."""
    dot = value.find(".")
    if dot < 0:
        return None
    end = dot + 1
    while end < len(value) and value[end].isdigit():
        end += 1
    try:
        return datetime.fromisoformat(value[: min(end, dot + 7)] + value[end:])
    except ValueError:
        return None


_EPOCH_NAIVE = datetime(1970, 1, 1)


def _body(text: str | None, encoding: str | None) -> tuple[bytes, str]:
    """Body bytes from HAR text; an error string when base64 is broken."""
    if not text:
        return b"", ""
    if encoding == "base64":
        try:
            return binascii.a2b_base64(text), ""
        except (binascii.Error, ValueError):
            return b"", "invalid base64 body"
    return text.encode("utf-8", "surrogatepass"), ""


def _params_body(params: list[HarParam]) -> bytes:
    return "&".join(f"{quote_plus(p.name or '')}={quote_plus(p.value or '')}" for p in params).encode()


_ORIGINS: dict[str, tuple[str, str, int]] = {}  # "https://host:port" -> (scheme, host, port)


def _url_parts(url: str) -> tuple[str, str, int, str, list[tuple[str, str]], str]:
    """``(scheme, host, port, decoded path, query pairs, raw path)`` of a
    HAR URL. The common absolute URL with nothing to decode takes a fast
    path with its origin memoised; anything else goes through
    :func:`target_parts`, which the fast path agrees with."""
    sep = url.find("://")
    if 0 < sep < 16 and "#" not in url and "%" not in url and "+" not in url:
        cut = url.find("/", sep + 3)
        q = url.find("?", sep + 3)
        if cut < 0 or (0 <= q < cut):
            cut = q
        if cut < 0:
            cut = len(url)
        origin = url[:cut]
        o = _ORIGINS.get(origin)
        if o is None:
            scheme, host, _, _ = split_target(origin)
            scheme = scheme or "http"
            o = (scheme, host, host_port(host, scheme)[1])
            if len(_ORIGINS) >= 4096:
                _ORIGINS.clear()
            _ORIGINS[origin] = o
        path, _, qs = url[cut:].partition("?")
        path = path or "/"
        query = []
        if qs:
            for part in qs.split("&"):
                if part:
                    name, _, value = part.partition("=")
                    query.append((name, value))
        return o[0], o[1], o[2], path, query, path
    scheme, host, path, query, raw_path = target_parts(url)
    return scheme, host, host_port(host, scheme)[1], path, query, raw_path


def _first_content_type(headers: list[tuple[str, str]]) -> str:
    for k, v in headers:
        if k == "content-type":
            return v
    return ""


def _headers(nvs: list[HarNV]) -> list[tuple[str, str]]:
    get = _LOWER_NAMES.get
    return [(get(h.name) or lower_name(h.name), h.value or "") for h in nvs]


class HarReader:
    """HAR 1.2 files."""

    name = "har"
    description = "HAR 1.2 HTTP archives (browser devtools, Burp, Postman, Charles, mitmproxy)"
    dedup_by_content = True  # entries have no ids and a longer export repeats them: stored once by content

    def sniff(self, head: bytes, filename: str) -> float:
        h = head.lstrip()
        if not h.startswith(b"{"):
            return 0.0
        score = 0.0
        if b'"log"' in h[:4096]:
            score = 0.5
            if b'"entries"' in h or b'"creator"' in h or b'"version"' in h[:4096]:
                score = 0.9
        if filename.lower().endswith((".har", ".har.gz")):
            score = max(score, 0.6) + 0.05 if score else 0.4
        return min(score, 1.0)

    def read(self, stream: BinaryIO, opts: ReadOptions) -> Iterator[Record]:
        src = opts.source_name or self.name
        index = 0
        decode = _entry_decoder.decode
        cap = opts.body_cap
        for raw in splitter(stream, opts, ("log", "entries"), _list_decoder):
            t = type(raw)
            if t is Broken:
                yield index, Bad(raw.reason, raw.raw)  # type: ignore[union-attr]
                index += 1
                continue
            if t is HarEntry:
                entry, raw = raw, b""  # type: ignore[assignment]
            else:
                try:
                    entry = decode(raw)
                except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
                    yield index, Bad(decode_error_reason(exc, raw), raw[:4096])  # type: ignore[index]
                    index += 1
                    continue
            try:
                yield index, self._call(entry, f"{src}#{index}", cap, raw)  # type: ignore[arg-type]
            except Exception as exc:  # a value no rule foresaw must not stop the file
                yield index, Bad(f"invalid record: {type(exc).__name__}: {exc}", (raw or msgspec.json.encode(entry))[:4096])
            index += 1

    def _call(self, e: HarEntry, id: str, cap: int, raw: bytes) -> ApiCall | Bad:
        """The event for one entry (``raw`` is only for bad-record reports;
        empty when the entry came from a batch, then it is re-encoded)."""
        if not raw:
            raw = _Raw(e)  # type: ignore[assignment]
        rq = e.request
        if not rq.method:
            return Bad("invalid record: empty request.method", raw[:4096])
        scheme, host, port, path, query, raw_path = _url_parts(rq.url)
        body = b""
        body_size = None
        pd = rq.postData
        if pd is not None:
            if pd.text:
                body, err = _body(pd.text, pd.encoding)
                if err:
                    return Bad(f"invalid record: request.postData: {err}", raw[:4096])
                if rq.bodySize is not None and rq.bodySize > len(body):
                    body_size = rq.bodySize
            elif pd.params:
                body = _params_body(pd.params)  # rebuilt: bodySize no longer applies
        headers = _headers(rq.headers) if rq.headers else []
        version = rq.httpVersion or "HTTP/1.1"
        if body and pd is not None and pd.mimeType and not any(v for k, v in headers if k == "content-type"):
            # Rare: the type only in postData.mimeType; add it so the body is classified by it.
            headers.append(("content-type", pd.mimeType))
        request = build_request(headers, rq.method, path, query, body, scheme, host, version, cap, body_size)
        response = None
        rs = e.response
        if rs is not None and rs.status:
            rbody = b""
            rsize = None
            rheaders = _headers(rs.headers) if rs.headers else []
            c = rs.content
            if c is not None:
                rbody, err = _body(c.text, c.encoding)
                if err:
                    return Bad(f"invalid record: response.content: {err}", raw[:4096])
                if c.size is not None and c.size > len(rbody):
                    rsize = c.size
                if c.mimeType and (rbody or rsize) and not _first_content_type(rheaders):
                    rheaders.append(("content-type", c.mimeType))
            response = build_response(rheaders, rs.status, rs.statusText or "", rbody, cap, rsize)
        ip = e.serverIPAddress or ""
        if ip.startswith("["):
            ip = ip[1:].partition("]")[0]
        try:
            ts = parse_iso_ts(e.startedDateTime)
        except ValueError as exc:
            return Bad(f"invalid record: startedDateTime: {exc}", raw[:4096])
        return ApiCall(
            id=id,
            ts=ts,
            duration_ms=e.time if e.time is not None and e.time >= 0 else None,
            request=request,
            response=response,
            dst=Peer(ip=ip, port=port),
            source=self.name,
            extra={"raw_path": raw_path} if raw_path != path else {},
        )
