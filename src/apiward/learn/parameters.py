"""The named values of a request, flattened once per call.

Baselines learn from them and detectors (injection, ...) judge them, so they
are extracted once and cached on the request (as ``Message.json`` caches its
parse). A parameter is ``(location, name, value)``:

- ``path``: the endpoint's path parameters (``userId`` -> ``42``) when the
  template has any;
- ``query``: query-string pairs (already percent-decoded by readers);
- ``body``: form fields, or JSON leaves named by dotted paths with ``[]`` for
  array items (``items[].sku``); non-string leaves become their JSON text;
- ``cookie``: cookies by name;
- ``header``: a few headers that carry user-controlled text
  (:data:`VALUE_HEADERS`).

Bounded: at most :data:`MAX_PARAMS` parameters and :data:`MAX_DEPTH` JSON
levels per call.
"""

from __future__ import annotations

from typing import Any

from apiward.model.call import ApiCall

__all__ = ["Param", "call_params", "VALUE_HEADERS", "MAX_PARAMS", "MAX_DEPTH"]

Param = tuple[str, str, str]

MAX_PARAMS = 256
MAX_DEPTH = 12

#: Headers whose values are user-controlled text worth judging.
VALUE_HEADERS = frozenset(
    {
        "user-agent",
        "referer",
        "origin",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-real-ip",
        "x-client-ip",
        "x-original-url",
        "x-rewrite-url",
        "x-api-version",
        "true-client-ip",
        "forwarded",
        "via",
        "accept-language",
    }
)


def _flatten(value: Any, prefix: str, out: list[Param], depth: int) -> None:
    if len(out) >= MAX_PARAMS:
        return
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out, depth + 1)
    elif isinstance(value, list):
        if depth >= MAX_DEPTH:
            return
        name = prefix + "[]"
        for v in value[:64]:
            _flatten(v, name, out, depth + 1)
    elif isinstance(value, str):
        out.append(("body", prefix, value))
    elif value is None:
        out.append(("body", prefix, "null"))
    elif value is True:
        out.append(("body", prefix, "true"))
    elif value is False:
        out.append(("body", prefix, "false"))
    else:
        out.append(("body", prefix, repr(value)))


def call_params(call: ApiCall, path_params: tuple[tuple[str, str], ...] = ()) -> list[Param]:
    """The call's parameters (cached on the request after the first call)."""
    req = call.request
    cached = req.__dict__.get("_aw_params")
    if cached is not None:
        return cached
    out: list[Param] = []
    for k, v in path_params:
        out.append(("path", k, v))
    for k, v in req.query:
        out.append(("query", k, v))
    if req.body:
        kind = req.kind
        if kind == "json":
            j = req.json()
            if j is not None:
                _flatten(j, "", out, 0)
        elif kind == "form":
            for k, v in req.form():
                out.append(("body", k, v))
    for k, v in req.cookies.items():
        out.append(("cookie", k, v))
    for k, v in req.headers:
        if k in VALUE_HEADERS:
            out.append(("header", k, v))
    if len(out) > MAX_PARAMS:
        out = out[:MAX_PARAMS]
    req.__dict__["_aw_params"] = out
    return out
