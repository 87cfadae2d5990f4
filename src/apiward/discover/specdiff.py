"""Observed inventory against a user-provided spec (OWASP API9:2023).

Categories:

- ``shadow``: observed, not documented (no operation matches method and path);
- ``zombie``: still called although documented ``deprecated``, or an old
  version (``/v1/...``) while a newer version of the same resource
  (``/v2/...``) is documented or served;
- ``orphan``: documented, never seen;
- ``undocumented_parameter``, ``undocumented_request_field``,
  ``undocumented_response_field``, ``undocumented_status``: seen on a
  documented operation but not in its spec;
- ``type_mismatch``: a documented parameter or field observed with another type.

Matching is structural: parameter names do not matter (``/users/{userId}``
matches ``/users/{id}``), a spec parameter also matches a literal segment the
templater kept (``/users/me`` matches ``/users/{id}`` if nothing more specific
exists), the most literal match wins, and server/basePath prefixes are
honoured (with a fallback to the bare spec paths for traffic captured behind
a gateway that strips the prefix).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from apiward.discover.inventory import API_KEY_HEADERS, SESSION_COOKIES, EndpointRecord, Inventory
from apiward.discover.schema import Node
from apiward.discover.specs import Spec, SpecOperation, load_spec, normalize_template
from apiward.model.finding import Finding

__all__ = ["DiffItem", "DiffResult", "diff", "apply", "DETECTOR_ID", "KINDS"]

DETECTOR_ID = "inventory.spec_diff"
OWASP = "API9:2023 Improper Inventory Management"
_VERSION = re.compile(r"v(\d+)", re.IGNORECASE)
MAX_ITEMS_PER_ENDPOINT = 50

# kind -> (title, severity, attack, tactic, cwe)
KINDS: dict[str, tuple[str, str, str, str, str]] = {
    "shadow": ("Shadow API endpoint (undocumented)", "medium", "T1190", "initial-access", "CWE-1059"),
    "zombie": ("Zombie API endpoint (deprecated or old version still called)", "medium", "T1190", "initial-access", "CWE-477"),
    "orphan": ("Orphaned API endpoint (documented, never seen)", "info", "", "", "CWE-1059"),
    "undocumented_parameter": ("Undocumented parameter", "low", "", "", "CWE-1059"),
    "undocumented_request_field": ("Undocumented request body field", "low", "", "", "CWE-1059"),
    "undocumented_response_field": ("Undocumented response field", "low", "", "", "CWE-1059"),
    "undocumented_status": ("Undocumented response status", "info", "", "", "CWE-1059"),
    "type_mismatch": ("Observed type differs from the spec", "low", "", "", "CWE-1059"),
}


class DiffItem:
    """One difference between traffic and spec."""

    __slots__ = ("kind", "service", "host", "method", "template", "spec_path", "location", "field", "detail", "rec", "sensitive")

    def __init__(self, kind: str, *, service: str = "", host: str = "", method: str = "", template: str = "",
                 spec_path: str = "", location: str = "", field: str = "", detail: str = "",
                 rec: EndpointRecord | None = None, sensitive: list[str] | None = None) -> None:
        self.kind = kind
        self.service = service
        self.host = host
        self.method = method
        self.template = template
        self.spec_path = spec_path
        self.location = location
        self.field = field
        self.detail = detail
        self.rec = rec
        self.sensitive = sensitive or []

    def to_dict(self) -> dict[str, Any]:
        d = {
            "kind": self.kind, "service": self.service, "host": self.host, "method": self.method,
            "template": self.template, "spec_path": self.spec_path, "location": self.location,
            "field": self.field, "detail": self.detail, "calls": self.rec.calls if self.rec else 0,
        }
        if self.sensitive:
            d["sensitive"] = self.sensitive
        return d


class DiffResult:
    """Every difference, the status of each observed endpoint and the orphans."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[DiffItem] = []
        self.status: dict[tuple[str, str, str], str] = {}
        self.matched: dict[tuple[str, str, str], SpecOperation] = {}
        self.orphans: list[dict[str, Any]] = []

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for it in self.items:
            out[it.kind] = out.get(it.kind, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.source, "counts": self.counts(), "items": [i.to_dict() for i in self.items]}

    def findings(self) -> list[Finding]:
        """One finding per shadow/zombie endpoint and orphan operation, and
        one per (kind, endpoint) for field-level differences."""
        grouped: dict[tuple[str, str, str, str], list[DiffItem]] = {}
        for it in self.items:
            grouped.setdefault((it.kind, it.host, it.method, it.template), []).append(it)
        out = []
        for (kind, host, method, template), items in grouped.items():
            title, sev, attack, tactic, cwe = KINDS[kind]
            rec = items[0].rec
            sens = sorted({c for i in items for c in i.sensitive} | (set(rec.classes()) if rec and kind in ("shadow", "zombie") else set()))
            if sens and kind in ("shadow", "zombie", "undocumented_response_field"):
                sev = "high" if kind != "undocumented_response_field" else "medium"
            if rec is not None and kind in ("shadow", "zombie") and rec.unauth_2xx:
                sev = "high"
            endpoint = f"{method} {template}"
            fields = [f"{i.location}:{i.field}" if i.location else i.field for i in items if i.field]
            if kind in ("shadow", "zombie", "orphan"):
                summary = f"{endpoint}: {items[0].detail}"
            else:
                summary = f"{endpoint}: {len(items)} {title.lower()}(s): " + ", ".join(fields[:8]) + (" ..." if len(fields) > 8 else "")
            out.append(
                Finding(
                    key=f"{DETECTOR_ID}|{kind}|{host}|{endpoint}",
                    detector=DETECTOR_ID,
                    title=title,
                    severity=sev,
                    confidence=0.9 if kind != "orphan" else 0.6,
                    owasp=OWASP,
                    attack=attack,
                    tactic=tactic,
                    cwe=cwe,
                    service=items[0].service,
                    host=host,
                    endpoint=endpoint,
                    event_ids=list(rec.sample_ids) if rec else [],
                    first_seen=rec.first_seen if rec else 0.0,
                    last_seen=rec.last_seen if rec else 0.0,
                    count=1,
                    summary=summary,
                    evidence={
                        "kind": kind,
                        "spec": self.source,
                        "spec_path": items[0].spec_path,
                        "calls": rec.calls if rec else 0,
                        "sensitive": sens,
                        "differences": [i.to_dict() for i in items[:MAX_ITEMS_PER_ENDPOINT]],
                    },
                )
            )
        return out


# -- matching -------------------------------------------------------------------
def _seg_rx(seg: str) -> re.Pattern[str] | None:
    if "{}" not in seg or seg == "{}":
        return None
    return re.compile("".join("[^/]+" if p == "{}" else re.escape(p) for p in re.split(r"(\{\})", seg) if p) + r"\Z")


class _Matcher:
    def __init__(self, spec: Spec, *, bare: bool) -> None:
        self.index: dict[int, list[tuple[SpecOperation, list[str], list[re.Pattern[str] | None]]]] = {}
        for op in spec.operations:
            norm = normalize_template(op.path) if bare else op.norm
            segs = [s for s in norm.split("/") if s]
            self.index.setdefault(len(segs), []).append((op, segs, [_seg_rx(s) for s in segs]))

    def match(self, method: str, template: str) -> tuple[SpecOperation | None, SpecOperation | None]:
        """(operation with this method, any operation on the same path)."""
        segs = [s for s in normalize_template(template).split("/") if s]
        best: tuple[int, SpecOperation] | None = None
        any_path: tuple[int, SpecOperation] | None = None
        for op, osegs, rxs in self.index.get(len(segs), ()):
            score = 0
            for s, o, rx in zip(segs, osegs, rxs):
                if s == o:
                    score += 2 if o != "{}" else 1
                elif o == "{}" and "{" not in s:
                    continue  # a spec parameter takes a literal the templater kept
                elif rx is not None and rx.match(s):
                    score += 1
                else:
                    break
            else:
                if op.method == method and (best is None or score > best[0]):
                    best = (score, op)
                if any_path is None or score > any_path[0]:
                    any_path = (score, op)
        return (best[1] if best else None), (any_path[1] if any_path else None)


def _version_key(norm: str) -> tuple[int, int, str] | None:
    """(segment index, version, the path with the version blanked) when a
    segment is a plain version like ``v1``."""
    segs = norm.split("/")
    for i, s in enumerate(segs):
        m = _VERSION.fullmatch(s)
        if m:
            return i, int(m.group(1)), "/".join(segs[:i] + ["{version}"] + segs[i + 1:])
    return None


# -- schema comparison ------------------------------------------------------------
def _spec_types(schema: dict[str, Any] | None) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    t = schema.get("type")
    out: set[str] = set()
    if isinstance(t, str):
        out.add(t)
    elif isinstance(t, list):
        out.update(x for x in t if isinstance(x, str))
    elif "properties" in schema:
        out.add("object")
    elif "items" in schema:
        out.add("array")
    for key in ("oneOf", "anyOf"):
        for alt in schema.get(key) or []:
            alt_t = _spec_types(alt)
            if not alt_t:
                return set()  # an untyped alternative accepts anything
            out |= alt_t
    if schema.get("nullable"):
        out.add("null")
    return out


def _type_ok(observed: str, documented: set[str]) -> bool:
    if not documented or not observed or observed == "null":
        return True
    if observed in documented:
        return True
    if observed == "integer" and "number" in documented:
        return True
    return False


def _param_type_ok(observed: str, documented: set[str]) -> bool:
    """Parameters travel as strings: digits fit a string parameter."""
    if not documented or "string" in documented or not observed:
        return True
    return _type_ok(observed, documented)


def _compare(node: Node, schema: dict[str, Any] | None, path: str, loc: str, kind_field: str,
             base: dict[str, Any], out: list[DiffItem], sens: dict[str, list[str]], depth: int = 0) -> None:
    if not isinstance(schema, dict) or depth > 10 or len(out) >= MAX_ITEMS_PER_ENDPOINT:
        return
    doc_types = _spec_types(schema)
    obs = node.type
    if path and not _type_ok(obs, doc_types):
        out.append(DiffItem("type_mismatch", location=loc, field=path,
                            detail=f"observed {obs}, documented {'/'.join(sorted(doc_types))}", **base))
        return
    if node.props:
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        if isinstance(props, dict) or (addl is False):
            props = props if isinstance(props, dict) else {}
            for k, child in node.props.items():
                cpath = f"{path}.{k}" if path else k
                sub = props.get(k)
                if sub is None:
                    if isinstance(addl, dict) and addl:
                        _compare(child, addl, cpath, loc, kind_field, base, out, sens, depth + 1)
                        continue
                    out.append(DiffItem(kind_field, location=loc, field=cpath,
                                        detail=f"{child.type or 'value'} field in {child.n} learned sample(s), not in the spec",
                                        sensitive=sens.get(cpath), **base))
                else:
                    _compare(child, sub, cpath, loc, kind_field, base, out, sens, depth + 1)
    if node.items is not None and isinstance(schema.get("items"), dict):
        _compare(node.items, schema["items"], path + "[]", loc, kind_field, base, out, sens, depth + 1)


def _endpoint_items(rec: EndpointRecord, op: SpecOperation) -> list[DiffItem]:
    base = {"service": rec.service, "host": rec.host, "method": rec.method, "template": rec.template, "spec_path": op.full_path, "rec": rec}
    sens: dict[str, dict[str, list[str]]] = {}
    for k, cs in rec.sensitive.items():
        loc, _, fld = k.partition("|")
        sens.setdefault("response_body" if loc == "error_body" else loc, {})[fld] = cs
    out: list[DiffItem] = []
    documented_params = {loc for loc, _ in op.params}
    for loc in ("query", "header", "cookie"):
        ps = rec.params.get(loc)
        if ps is None:
            continue
        for name, node in ps.params.items():
            key = (loc, name.lower() if loc == "header" else name)
            spec_p = op.params.get(key)
            if spec_p is None:
                if loc == "header" and name in API_KEY_HEADERS:
                    continue  # credentials, described by security schemes
                if loc == "cookie" and (name.lower() in SESSION_COOKIES or "cookie" not in documented_params):
                    continue  # session cookies; cookies at all when the spec never documents any
                out.append(DiffItem("undocumented_parameter", location=loc, field=name,
                                    detail=f"{loc} parameter in {node.n} learned sample(s), not in the spec",
                                    sensitive=sens.get(loc, {}).get(name), **base))
            elif not _param_type_ok(node.type, _spec_types(spec_p)):
                out.append(DiffItem("type_mismatch", location=loc, field=name,
                                    detail=f"observed {node.type}, documented {'/'.join(sorted(_spec_types(spec_p)))}", **base))
    pp = rec.params.get("path")
    if pp is not None:
        spec_path_params = [(n, s) for (loc, n), s in op.params.items() if loc == "path"]
        names = re.findall(r"\{([^{}/]*)\}", rec.template)
        spec_names = re.findall(r"\{([^{}/]*)\}", op.full_path)
        for obs_name, spec_name in zip(names, spec_names):
            node = pp.params.get(obs_name)
            spec_p = dict(spec_path_params).get(spec_name)
            if node is not None and spec_p is not None and not _param_type_ok(node.type, _spec_types(spec_p)):
                out.append(DiffItem("type_mismatch", location="path", field=spec_name,
                                    detail=f"observed {node.type}, documented {'/'.join(sorted(_spec_types(spec_p)))}", **base))
    if rec.request is not None and rec.request.root.n:
        if op.request_schema is None:
            out.append(DiffItem("undocumented_request_field", location="request_body", field="(body)",
                                detail="request body sent, the spec documents none", **base))
        else:
            _compare(rec.request.root, op.request_schema, "", "request_body", "undocumented_request_field", base, out, sens.get("request_body", {}))
    for st, bs in sorted(rec.responses.items()):
        if st < 100:
            continue
        documented, schema = op.response_schema(st)
        if not documented:
            out.append(DiffItem("undocumented_status", location="response", field=str(st),
                                detail=f"status {st} returned {rec.statuses.get(st, 0)} time(s), not in the spec", **base))
            continue
        if bs.root.n and schema is not None:
            _compare(bs.root, schema, "", f"response_body {st}", "undocumented_response_field", base, out, sens.get("response_body", {}))
    return out[:MAX_ITEMS_PER_ENDPOINT]


# -- the diff ---------------------------------------------------------------------
def diff(inventory: Inventory, spec: Spec | str | Path, *, service: str | None = None) -> DiffResult:
    """Compare the inventory (of one service, optionally) with a spec."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    inventory.consolidate()
    result = DiffResult(spec.source)
    full = _Matcher(spec, bare=False)
    bare = _Matcher(spec, bare=True) if any(spec.prefixes) else None
    recs = inventory.records(service)
    used: set[int] = set()
    services: dict[str, int] = {}
    # versions documented or observed, for old-version zombies
    latest: dict[tuple[str, str], int] = {}
    for norm, method in [(op.norm, op.method) for op in spec.operations] + [(normalize_template(r.template), r.method) for r in recs]:
        vk = _version_key(norm)
        if vk is not None:
            k = (method, vk[2])
            latest[k] = max(latest.get(k, 0), vk[1])
    for rec in recs:
        services[rec.service] = services.get(rec.service, 0) + rec.calls
        op, any_op = full.match(rec.method, rec.template)
        if op is None and bare is not None:
            op, any_op2 = bare.match(rec.method, rec.template)
            any_op = any_op or any_op2
        if op is None and rec.method in ("HEAD", "OPTIONS") and any_op is not None:
            op = any_op  # HEAD mirrors GET, OPTIONS is CORS preflight
        base = {"service": rec.service, "host": rec.host, "method": rec.method, "template": rec.template, "rec": rec}
        status = "documented"
        if op is None:
            status = "shadow"
            result.items.append(DiffItem("shadow", detail=(
                f"undocumented; {rec.calls} call(s) from {rec.actors} actor(s)"
                + (f"; the spec documents other methods on {any_op.full_path}" if any_op is not None else "")), **base))
        else:
            used.add(id(op))
            result.matched[rec.key] = op
            if op.deprecated:
                status = "zombie"
                result.items.append(DiffItem("zombie", spec_path=op.full_path,
                                             detail=f"documented deprecated, still called {rec.calls} time(s) by {rec.actors} actor(s)", **base))
        vk = _version_key(normalize_template(rec.template))
        if vk is not None and status != "zombie":
            newest = latest.get((rec.method, vk[2]), 0)
            if newest > vk[1]:
                status = "zombie"
                result.items.append(DiffItem("zombie", spec_path=op.full_path if op else "", detail=(
                    f"old version v{vk[1]} still called {rec.calls} time(s) by {rec.actors} actor(s) "
                    f"while v{newest} serves the same resource"), **base))
        result.status[rec.key] = status
        if op is not None:
            result.items.extend(_endpoint_items(rec, op))
    main_service = max(services.items(), key=lambda kv: kv[1])[0] if services else (spec.title or Path(spec.source).stem)
    seen_orphans: set[tuple[str, str]] = set()
    for op in spec.operations:
        if id(op) in used:
            continue
        if any(id(o) in used for o in spec.operations if o.method == op.method and o.path == op.path):
            continue  # matched under another server prefix
        k = (op.method, op.path)
        if k in seen_orphans:
            continue
        seen_orphans.add(k)
        result.orphans.append({"service": main_service, "host": "", "method": op.method, "template": op.full_path,
                               "spec_path": op.path, "deprecated": op.deprecated})
        result.items.append(DiffItem("orphan", service=main_service, method=op.method, template=op.full_path,
                                     spec_path=op.path, detail="documented" + (" (deprecated)" if op.deprecated else "") + ", never seen in traffic"))
    return result


def apply(inventory: Inventory, result: DiffResult, *, when: float = 0.0) -> None:
    """Remember ``result`` in the inventory: each endpoint's status and
    documented path, and the orphans (shown by ``apiward inventory``)."""
    for key in inventory.endpoints.all_keys():
        st = result.status.get(key)
        if st is None:
            continue
        rec = inventory.endpoints.get(key)  # marked changed (a spilled record comes back to memory)
        rec.status = st
        op = result.matched.get(key)
        rec.spec_path = op.full_path if op is not None else ""
        rec.deprecated = bool(op.deprecated) if op is not None else False
    inventory.orphans = list(result.orphans)
    inventory.spec_source = result.source
    inventory.spec_diffed_at = when
