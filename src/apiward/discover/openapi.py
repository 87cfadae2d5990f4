"""OpenAPI 3.1 export of the observed inventory.

One document per service (or one for everything): servers from the hosts
seen, one operation per endpoint with its path/query/header/cookie
parameters, request body and per-status response schemas (JSON Schema
2020-12 as OpenAPI 3.1 uses it), the security schemes seen (bearer, basic,
API key header, cookie), and ``x-sensitive: [classes]`` on every property
and parameter that carried sensitive data. Examples are the redacted ones
the inventory kept (``«email:ab12cd»``), never raw sensitive values.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from apiward.discover.inventory import API_KEY_HEADERS, SESSION_COOKIES, EndpointRecord, Inventory
from apiward.discover.schema import Node, ParamSet

__all__ = ["export", "schema_of", "SECURITY_SCHEMES"]

OPENAPI_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})
_PARAM = re.compile(r"\{([^{}/]*)\}")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "basic": {"type": "http", "scheme": "basic"},
    "apikey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "cookie": {"type": "apiKey", "in": "cookie", "name": "session"},
}
SCHEME_NAMES = {"bearer": "bearerAuth", "basic": "basicAuth", "apikey": "apiKeyHeader", "cookie": "cookieAuth"}


def _num(v: float | None) -> int | float | None:
    if v is None:
        return None
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else v


def schema_of(node: Node, sens: dict[str, list[str]] | None = None, path: str = "", depth: int = 0) -> dict[str, Any]:
    """JSON Schema (2020-12) of a learned node; ``sens`` maps dotted field
    paths to sensitive classes (``x-sensitive``)."""
    sens = sens or {}
    types = {t for t in node.types if t != "null"}
    if "integer" in types and "number" in types:
        types.discard("integer")
    s: dict[str, Any] = {}
    if not types:
        if node.types:
            s["type"] = "null"
        return s
    tl = sorted(types)
    if node.nullable:
        tl.append("null")
    s["type"] = tl[0] if len(tl) == 1 else tl
    classes = sens.get(path)
    if "object" in types and node.props is not None:
        props = {}
        required = []
        for k, child in node.props.items():
            cpath = f"{path}.{k}" if path else k
            props[k] = schema_of(child, sens, cpath, depth + 1)
            if child.required_in(node.objs):
                required.append(k)
        if props:
            s["properties"] = props
        if required:
            s["required"] = required
    if "array" in types:
        if node.items is not None:
            s["items"] = schema_of(node.items, sens, path + "[]", depth + 1)
        if node.max_len is not None and "string" not in types:
            s["minItems"], s["maxItems"] = node.min_len, node.max_len
    if "string" in types:
        if node.format:
            s["format"] = node.format
        ev = node.enum_values()
        if ev and not classes:
            s["enum"] = ev + ([None] if node.nullable else [])
        if node.max_len is not None and "array" not in types:
            s["minLength"], s["maxLength"] = node.min_len, node.max_len
    if types & {"integer", "number"} and node.min is not None:
        s["minimum"], s["maximum"] = _num(node.min), _num(node.max)
    if node.example is not None and not isinstance(node.example, (dict, list)):
        s["examples"] = [node.example]
    if classes:
        s["x-sensitive"] = sorted(classes)
    return s


def _param_schema(node: Node, sensitive: bool = False) -> dict[str, Any]:
    t = node.type or "string"
    s: dict[str, Any] = {"type": t}
    if t == "string":
        if node.format:
            s["format"] = node.format
        ev = node.enum_values()
        if ev and not sensitive:
            s["enum"] = ev
        if node.max_len is not None:
            s["minLength"], s["maxLength"] = node.min_len, node.max_len
    elif t == "integer" and node.min is not None:
        s["minimum"], s["maximum"] = _num(node.min), _num(node.max)
    if node.example is not None:
        s["examples"] = [node.example]
    return s


def _sens_maps(rec: EndpointRecord) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for k, classes in rec.sensitive.items():
        loc, _, fld = k.partition("|")
        if loc == "error_body":
            loc = "response_body"
        cur = out.setdefault(loc, {}).setdefault(fld, [])
        cur.extend(c for c in classes if c not in cur)
    return out


def _path_and_params(template: str) -> tuple[str, list[str]]:
    """An OpenAPI path key with valid, unique parameter names."""
    names: list[str] = []

    def sub(m: re.Match[str]) -> str:
        raw = m.group(1).split(":")[0]
        name = _SAFE.sub("_", raw) or "param"
        base, i = name, 2
        while name in names:
            name = f"{base}{i}"
            i += 1
        names.append(name)
        return "{" + name + "}"

    path = _PARAM.sub(sub, template)
    if not path.startswith("/"):
        path = "/" + path
    return path, names


def _operation(rec: EndpointRecord, path_names: list[str], op_id: str) -> dict[str, Any]:
    sens = _sens_maps(rec)
    op: dict[str, Any] = {"operationId": op_id, "summary": f"{rec.method} {rec.template}"}
    params: list[dict[str, Any]] = []
    pp = rec.params.get("path")
    raw_names = [m.group(1) for m in _PARAM.finditer(rec.template)]
    for i, name in enumerate(path_names):
        raw = raw_names[i] if i < len(raw_names) else name
        node = pp.params.get(raw) if pp is not None else None
        classes = sens.get("path", {}).get(raw)
        prm: dict[str, Any] = {"name": name, "in": "path", "required": True,
                               "schema": _param_schema(node, bool(classes)) if node is not None else {"type": "string"}}
        if classes:
            prm["x-sensitive"] = sorted(classes)
        params.append(prm)
    for loc in ("query", "header", "cookie"):
        ps: ParamSet | None = rec.params.get(loc)
        if ps is None:
            continue
        for name, node in ps.params.items():
            classes = sens.get(loc, {}).get(name)
            prm = {"name": name, "in": loc, "required": ps.required(name), "schema": _param_schema(node, bool(classes))}
            if classes:
                prm["x-sensitive"] = sorted(classes)
            params.append(prm)
    if params:
        op["parameters"] = params
    if rec.request is not None and rec.request.samples:
        bs = rec.request
        schema = schema_of(bs.root, sens.get("request_body"))
        cts = list(bs.content_types) or ["application/json"]
        op["requestBody"] = {"content": {ct: {"schema": schema} for ct in cts}}
    responses: dict[str, Any] = {}
    for st, bs in sorted(rec.responses.items()):
        if st < 100 or st > 599:
            continue
        r: dict[str, Any] = {"description": f"observed {rec.statuses.get(st, bs.samples)} time(s)"}
        if bs.root.n:
            schema = schema_of(bs.root, sens.get("response_body"))
            cts = list(bs.content_types) or ["application/json"]
            r["content"] = {ct: {"schema": schema} for ct in cts}
        responses[str(st)] = r
    if not responses:
        responses["default"] = {"description": "no response observed"}
    op["responses"] = responses
    sec = [{SCHEME_NAMES[s]: []} for s in sorted(rec.auth_schemes) if s in SCHEME_NAMES]
    if sec:
        if rec.unauth_2xx:
            sec.append({})  # also answered without credentials
        op["security"] = sec
    else:
        op["security"] = [{}]
    if rec.status != "unknown":
        op["x-apiward-status"] = rec.status
    if rec.status == "zombie" or rec.deprecated:
        op["deprecated"] = True
    op["x-apiward-calls"] = rec.calls
    return op


def _security_schemes(recs: list[EndpointRecord]) -> dict[str, Any]:
    used = {s for r in recs for s in r.auth_schemes if s in SCHEME_NAMES}
    out: dict[str, Any] = {}
    for s in sorted(used):
        scheme = dict(SECURITY_SCHEMES[s])
        if s == "apikey":
            for r in recs:
                hp = r.params.get("header")
                name = next((n for n in (hp.params if hp else {}) if n in API_KEY_HEADERS), None)
                if name:
                    scheme["name"] = name
                    break
        elif s == "cookie":
            for r in recs:
                cp = r.params.get("cookie")
                name = next((n for n in (cp.params if cp else {}) if n.lower() in SESSION_COOKIES), None)
                if name:
                    scheme["name"] = name
                    break
        out[SCHEME_NAMES[s]] = scheme
    return out


def export(inventory: Inventory, service: str | None = None, *, title: str = "") -> dict[str, Any]:
    """An OpenAPI 3.1 document of the observed endpoints (of one service
    when ``service`` is given)."""
    recs = [r for r in inventory.records(service) if r.method.upper() in OPENAPI_METHODS]
    servers = sorted({(sorted(r.schemes)[0] if r.schemes else "https", r.host) for r in recs if r.host})
    paths: dict[str, dict[str, Any]] = {}
    op_ids: set[str] = set()
    for r in recs:
        path, names = _path_and_params(r.template)
        item = paths.setdefault(path, {})
        m = r.method.lower()
        if m in item:
            item[m]["x-apiward-calls"] += r.calls  # the same endpoint on another host
            continue
        base = (m + "_" + re.sub(r"[^A-Za-z0-9]+", "_", r.template).strip("_")) or m
        op_id, i = base, 2
        while op_id in op_ids:
            op_id = f"{base}_{i}"
            i += 1
        op_ids.add(op_id)
        item[m] = _operation(r, names, op_id)
    now = datetime.fromtimestamp(inventory.clock or 0, tz=timezone.utc).strftime("%Y-%m-%d")
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title or (f"{service} (observed by apiward)" if service else "APIs observed by apiward"),
            "version": f"observed-{now}",
            "description": "Reconstructed from observed traffic. Examples of sensitive values are redacted tokens.",
        },
    }
    if servers:
        doc["servers"] = [{"url": f"{scheme}://{host}"} for scheme, host in servers]
    doc["paths"] = dict(sorted(paths.items()))
    schemes = _security_schemes(recs)
    if schemes:
        doc["components"] = {"securitySchemes": schemes}
    return doc
