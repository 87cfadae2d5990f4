"""nginx JSON access logs (``log_format ... escape=json``), one object per
line. Metadata only: no bodies (``body_size`` comes from
``body_bytes_sent``/``request_length``), headers only as far as the format
logs them.

Keys understood (common names; any subset): ``time_iso8601``/``msec``/
``time_local``, ``remote_addr``/``remote_port`` (the peer),
``server_addr``/``server_port``, ``request`` (``GET /p?q HTTP/1.1``) or
``request_method`` + ``request_uri`` (+ ``server_protocol``), ``scheme``,
``host``/``http_host``/``server_name``, ``status``, ``body_bytes_sent``,
``request_length``, ``request_time`` (seconds), ``request_id`` (kept as the call's ``request_id``; the event id is apiward's own),
``upstream_addr``, ``upstream_response_time``. Every ``http_<name>`` key
becomes request header ``<name>`` (underscores to dashes), every
``sent_http_<name>`` a response header. ``"-"`` means empty.
Blank lines are skipped and consume no index.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from apiward.ingest.base import Bad, ReadOptions, Record, make_request, make_response
from apiward.ingest.har import parse_iso_ts
from apiward.ingest.jsonl import first_json_line, lines
from apiward.ingest.raw_http import host_port, target_parts
from apiward.ingest.validate import json_too_deep
from apiward.model.call import ApiCall, Peer

__all__ = ["NginxJsonReader", "json_lines"]

BAD_RAW_CAP = 4096


def json_lines(stream: BinaryIO, opts: ReadOptions | None = None) -> Iterator[tuple[int, dict[str, Any] | Bad]]:
    """``(index, object-or-Bad)`` per non-blank line of a JSON-lines stream,
    within the line-length and nesting limits of ``opts``."""
    opts = opts or ReadOptions()
    index = 0
    depth = opts.max_depth
    for line in lines(stream, opts.max_line_bytes):
        if type(line) is Bad:
            yield index, line
            index += 1
            continue
        if depth and json_too_deep(line, depth):
            yield index, Bad(f"JSON nested deeper than max_depth ({depth}): not read", bytes(line[:BAD_RAW_CAP]))
            index += 1
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            msg = str(exc)
            reason = f"invalid UTF-8 in record (wrong encoding? e.g. Latin-1): {msg}" if "utf-8" in msg.lower() else f"invalid JSON: {msg}"
            yield index, Bad(reason, bytes(line[:BAD_RAW_CAP]))
        else:
            if isinstance(obj, dict):
                yield index, obj
            else:
                yield index, Bad(f"invalid record: expected a JSON object, got {type(obj).__name__}", bytes(line[:BAD_RAW_CAP]))
        index += 1


def _s(v: Any) -> str:
    """An access-log field as text; ``-`` (the log's "no value") is empty."""
    if v is None:
        return ""
    s = v if isinstance(v, str) else str(v)
    return "" if s == "-" else s


def _int(v: Any) -> int:
    s = _s(v)
    try:
        return int(float(s)) if s else 0
    except ValueError:
        return 0


def _time_local(v: str) -> float:
    try:
        return datetime.strptime(v, "%d/%b/%Y:%H:%M:%S %z").timestamp()
    except (ValueError, OverflowError):
        raise ValueError(f"time_local {v[:60]!r} is not a timestamp like 10/Oct/2025:13:55:36 +0000") from None


class NginxJsonReader:
    """nginx JSON access logs (metadata only)."""

    name = "nginx"
    description = "nginx JSON access logs (log_format escape=json; metadata only)"

    def sniff(self, head: bytes, filename: str) -> float:
        line = first_json_line(head)
        if not line.startswith(b"{"):
            return 0.0
        has = lambda k: (b'"' + k + b'"') in line  # noqa: E731
        if has(b"remote_addr") and (has(b"request") or has(b"request_uri")) and has(b"status"):
            return 0.85
        if (has(b"time_local") or has(b"request_time")) and has(b"status"):
            return 0.5
        return 0.0

    def read(self, stream: BinaryIO, opts: ReadOptions) -> Iterator[Record]:
        src = opts.source_name or self.name
        for index, obj in json_lines(stream, opts):
            if type(obj) is Bad:
                yield index, obj
                continue
            try:
                yield index, self._call(obj, src, index)  # type: ignore[arg-type]
            except ValueError as exc:
                yield index, Bad(f"invalid record: {exc}", orjson.dumps(obj)[:BAD_RAW_CAP])
            except Exception as exc:  # a value no rule foresaw (an infinite number, ...) must not stop the file
                yield index, Bad(f"invalid record: {type(exc).__name__}: {exc}", orjson.dumps(obj)[:BAD_RAW_CAP])

    def _call(self, o: dict[str, Any], src: str, index: int) -> ApiCall:
        method = _s(o.get("request_method"))
        target = _s(o.get("request_uri"))
        version = _s(o.get("server_protocol"))
        req_line = _s(o.get("request"))
        if req_line and (not method or not target):
            parts = req_line.split(" ")
            if len(parts) >= 2:
                method = method or parts[0]
                target = target or parts[1]
                if len(parts) >= 3:
                    version = version or parts[2]
        if not method:
            raise ValueError("no method (neither request_method nor request)")
        headers: list[tuple[str, str]] = []
        rheaders: list[tuple[str, str]] = []
        for k, v in o.items():
            if k.startswith("http_"):
                val = _s(v)
                if val:
                    headers.append((k[5:].replace("_", "-"), val))
            elif k.startswith("sent_http_"):
                val = _s(v)
                if val:
                    rheaders.append((k[10:].replace("_", "-"), val))
        scheme, host, path, query, raw_path = target_parts(target or "/", _s(o.get("scheme")) or "http")
        host = host or _s(o.get("host")) or _s(o.get("server_name"))
        request = make_request(
            method=method, path=path, query=query, headers=headers, scheme=scheme, host=host,
            http_version=version or "HTTP/1.1",
        )  # request_length counts line + headers + body: not a body size
        status = _int(o.get("status"))
        response = None
        if status:
            sent = _int(o.get("body_bytes_sent"))
            response = make_response(status=status, headers=rheaders, body_size=sent or None)
            response.truncated = False  # metadata-only source: no body was ever captured
        ts = 0.0
        if o.get("msec"):
            ts = float(_s(o["msec"]) or 0)
        elif o.get("time_iso8601"):
            try:
                ts = parse_iso_ts(_s(o["time_iso8601"]))
            except ValueError as exc:
                raise ValueError(f"time_iso8601: {exc}") from None
        elif o.get("time_local"):
            ts = _time_local(_s(o["time_local"]))
        rt = _s(o.get("request_time"))
        extra = {"metadata_only": "1"}
        for k in ("upstream_addr", "upstream_status", "upstream_response_time", "server_name"):
            val = _s(o.get(k))
            if val:
                extra[k] = val
        if raw_path != path:
            extra["raw_path"] = raw_path
        _, dport = host_port(host, scheme)
        return ApiCall(
            id=f"{src}#{index}",
            request_id=_s(o.get("request_id")),
            ts=ts,
            duration_ms=float(rt) * 1000.0 if rt.replace(".", "", 1).isdigit() else None,
            request=request,
            response=response,
            src=Peer(ip=_s(o.get("remote_addr")), port=_int(o.get("remote_port"))),
            dst=Peer(ip=_s(o.get("server_addr")), port=_int(o.get("server_port")) or dport),
            source=self.name,
            extra=extra,
        )
