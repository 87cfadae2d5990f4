"""User-provided API specs (OpenAPI 3.x and Swagger/OpenAPI 2, JSON or YAML).

:func:`load_spec` reads a spec into a :class:`Spec`: one :class:`SpecOperation`
per (method, path) with the path prefixed by the spec's server path
(OpenAPI 3 ``servers[].url`` path, OpenAPI 2 ``basePath``), its parameters,
deprecation and request/response schemas with local ``$ref`` resolved.
:func:`spec_routes` gives the full route templates, which win in templating.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import yaml

__all__ = ["Spec", "SpecOperation", "SpecError", "load_spec", "spec_routes", "normalize_template", "METHODS"]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAM = re.compile(r"\{[^{}/]*\}")
_VAR = re.compile(r"\{([^{}]+)\}")
MAX_REF_DEPTH = 12


class SpecError(ValueError):
    """A spec that cannot be read (file named in the message)."""


def normalize_template(path: str) -> str:
    """Structural form of a template: every ``{name}`` becomes ``{}`` and a
    trailing slash goes, so ``/users/{userId}`` equals ``/users/{id}``."""
    p = _PARAM.sub("{}", path)
    if len(p) > 1 and p.endswith("/"):
        p = p[:-1]
    if not p.startswith("/"):
        p = "/" + p
    return p


def _join(prefix: str, path: str) -> str:
    prefix = prefix.rstrip("/")
    if not path.startswith("/"):
        path = "/" + path
    return (prefix + path) if prefix else path


class SpecOperation:
    """One documented operation."""

    __slots__ = ("method", "path", "full_path", "norm", "deprecated", "params", "request_schema", "responses", "operation_id", "security")

    def __init__(self, method: str, path: str, full_path: str) -> None:
        self.method = method.upper()
        self.path = path  # as written in the spec
        self.full_path = full_path  # with the server/basePath prefix
        self.norm = normalize_template(full_path)
        self.deprecated = False
        self.params: dict[tuple[str, str], dict[str, Any]] = {}  # (in, name) -> schema (+ "required")
        self.request_schema: dict[str, Any] | None = None
        self.responses: dict[str, dict[str, Any] | None] = {}  # "200" / "2XX" / "default" -> schema
        self.operation_id = ""
        self.security: list[str] = []

    @property
    def name(self) -> str:
        return f"{self.method} {self.full_path}"

    def response_schema(self, status: int) -> tuple[bool, dict[str, Any] | None]:
        """``(documented, schema)`` for a status code (exact, then ``2XX``,
        then ``default``)."""
        for k in (str(status), f"{str(status)[:1]}XX", f"{str(status)[:1]}xx", "default"):
            if k in self.responses:
                return True, self.responses[k]
        return False, None


class Spec:
    """A loaded spec: operations and the path prefixes of its servers."""

    def __init__(self, source: str, version: str, prefixes: list[str], operations: list[SpecOperation], title: str = "") -> None:
        self.source = source
        self.version = version
        self.prefixes = prefixes
        self.operations = operations
        self.title = title

    def routes(self) -> list[str]:
        seen: dict[str, None] = {}
        for op in self.operations:
            seen.setdefault(op.full_path, None)
        return list(seen)


def _read(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SpecError(f"{p}: {exc.strerror or exc}") from None
    data: Any
    try:
        if raw.lstrip()[:1] in (b"{", b"["):
            data = orjson.loads(raw)
        else:
            data = yaml.safe_load(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"{p}: not valid JSON or YAML: {exc}") from None
    if not isinstance(data, dict) or not ("openapi" in data or "swagger" in data):
        raise SpecError(f"{p}: not an OpenAPI/Swagger document (no 'openapi' or 'swagger' key)")
    if not isinstance(data.get("paths", {}), dict):
        raise SpecError(f"{p}: 'paths' must be a mapping")
    return data


class _Resolver:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def ref(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            return {}  # external refs are not followed
        node: Any = self.doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return {}
            node = node[part]
        return node

    def deref(self, node: Any, depth: int = 0) -> Any:
        """``node`` with ``$ref`` (and allOf) resolved, to a bounded depth."""
        if depth > MAX_REF_DEPTH:
            return {}
        if isinstance(node, list):
            return [self.deref(x, depth + 1) for x in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node and isinstance(node["$ref"], str):
            return self.deref(self.ref(node["$ref"]), depth + 1)
        out = {k: self.deref(v, depth + 1) for k, v in node.items()}
        if "allOf" in out and isinstance(out["allOf"], list):
            merged: dict[str, Any] = {k: v for k, v in out.items() if k != "allOf"}
            props: dict[str, Any] = dict(merged.get("properties") or {})
            req = list(merged.get("required") or [])
            for part in out["allOf"]:
                if isinstance(part, dict):
                    props.update(part.get("properties") or {})
                    req.extend(part.get("required") or [])
                    if "type" in part and "type" not in merged:
                        merged["type"] = part["type"]
            if props:
                merged["properties"] = props
                merged.setdefault("type", "object")
            if req:
                merged["required"] = req
            out = merged
        return out


def _server_prefixes(doc: dict[str, Any]) -> list[str]:
    if "swagger" in doc:
        bp = doc.get("basePath") or ""
        return [bp.rstrip("/")] if bp and bp != "/" else [""]
    out: list[str] = []
    for s in doc.get("servers") or []:
        if not isinstance(s, dict):
            continue
        url = str(s.get("url") or "")
        variables = s.get("variables") or {}

        def sub(m: re.Match[str]) -> str:
            v = variables.get(m.group(1)) or {}
            return str(v.get("default", "")) if isinstance(v, dict) else ""

        url = _VAR.sub(sub, url)
        path = urlsplit(url).path if "://" in url else url
        path = path.rstrip("/")
        if path not in out:
            out.append(path)
    return out or [""]


def _schema_of_content(content: Any) -> dict[str, Any] | None:
    if not isinstance(content, dict) or not content:
        return None
    for ct in ("application/json", *content.keys()):
        c = content.get(ct)
        if isinstance(c, dict) and isinstance(c.get("schema"), dict):
            return c["schema"]
    return None


def load_spec(path: str | Path) -> Spec:
    """Read an OpenAPI 2/3 spec (JSON or YAML); raises :class:`SpecError`."""
    doc = _read(path)
    res = _Resolver(doc)
    v2 = "swagger" in doc
    version = str(doc.get("swagger") or doc.get("openapi"))
    prefixes = _server_prefixes(doc)
    global_sec = [k for req in (doc.get("security") or []) if isinstance(req, dict) for k in req]
    ops: list[SpecOperation] = []
    for p, item in (doc.get("paths") or {}).items():
        if not isinstance(item, dict) or not isinstance(p, str):
            continue
        item = res.deref(item)
        shared = item.get("parameters") or []
        for m in METHODS:
            op = item.get(m)
            if not isinstance(op, dict):
                continue
            for prefix in prefixes:
                so = SpecOperation(m, p, _join(prefix, p))
                so.deprecated = bool(op.get("deprecated"))
                so.operation_id = str(op.get("operationId") or "")
                sec = op.get("security")
                so.security = [k for req in sec if isinstance(req, dict) for k in req] if isinstance(sec, list) else global_sec
                for prm in [*shared, *(op.get("parameters") or [])]:
                    if not isinstance(prm, dict) or "name" not in prm:
                        continue
                    loc = str(prm.get("in", ""))
                    if v2 and loc == "body":
                        so.request_schema = prm.get("schema") if isinstance(prm.get("schema"), dict) else None
                        continue
                    if v2 and loc == "formData":
                        rs = so.request_schema if so.request_schema is not None else {"type": "object", "properties": {}}
                        rs.setdefault("properties", {})[prm["name"]] = {k: prm[k] for k in ("type", "format", "enum") if k in prm}
                        so.request_schema = rs
                        continue
                    schema = prm.get("schema") if isinstance(prm.get("schema"), dict) else {k: prm[k] for k in ("type", "format", "enum", "items") if k in prm}
                    so.params[(loc, str(prm["name"]).lower() if loc == "header" else str(prm["name"]))] = dict(schema, required=bool(prm.get("required")))
                if not v2:
                    rb = op.get("requestBody")
                    if isinstance(rb, dict):
                        so.request_schema = _schema_of_content(rb.get("content"))
                        if so.request_schema is None:
                            so.request_schema = {}
                for code, r in (op.get("responses") or {}).items():
                    if not isinstance(r, dict):
                        so.responses[str(code)] = None
                        continue
                    so.responses[str(code)] = r.get("schema") if v2 else _schema_of_content(r.get("content"))
                ops.append(so)
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    return Spec(str(path), version, prefixes, ops, title=str(info.get("title", "")))


def spec_routes(path: str | Path) -> list[str]:
    """Route templates of a spec with server/basePath prefixes applied
    (``/api/v1/users/{id}``), for the templater's ``add_routes``."""
    return load_spec(path).routes()
