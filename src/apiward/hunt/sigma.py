"""Sigma rules over API events: pySigma converts, DuckDB runs.

A Sigma rule for web servers or proxies (``logsource`` category
``webserver`` or ``proxy``, or product ``apiward``) is converted by
pySigma through :func:`apiward_pipeline` -- a field mapping from Sigma's
web/proxy field names (``cs-method``, ``cs-uri-query``, ``c-useragent``,
``sc-status``, ...) to the columns of the ``sigma_events`` view -- and
:class:`DuckDBBackend`, which writes DuckDB SQL:

- strings match case-insensitively, as Sigma defines (``ILIKE``, with
  Sigma's ``*``/``?`` wildcards and escapes); ``|cased`` matches exactly
  (``LIKE``); ``|re`` is a case-sensitive RE2 match unless ``|i``;
- ``|contains``/``|startswith``/``|endswith``/``|all``, ``|cidr``,
  ``|gt``/``|gte``/``|lt``/``|lte``, ``|exists``, ``|fieldref``, ``|base64``,
  ``|base64offset`` and null values are supported; keywords (values
  without a field) search ``fulltext`` (path, query, request body, agent);
- modifiers that describe Windows events (``|wide``, ``|utf16*``,
  ``|windash``), ``|expand`` placeholders, correlation rules and fields
  with no apiward column are refused with a message saying which rule,
  which field or modifier, and what is supported.

``sigma_events`` holds, per call: ``id, ts, method, host, path, uri_query``
(``k=v&...``), ``uri`` (path and query), ``uri_extension``, ``status``,
``user_agent``, ``client_ip``, ``actor``, ``actor_user``, ``referer``,
``cookie`` (redacted), ``req_bytes``, ``resp_bytes``, ``duration_ms``,
``req_body``, ``resp_body``, ``fulltext`` and every other ``calls`` column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from sigma.collection import SigmaCollection
from sigma.conditions import ConditionFieldEqualsValueExpression
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.modifiers import (
    SigmaExpandModifier,
    SigmaUTF16BEModifier,
    SigmaUTF16Modifier,
    SigmaWideModifier,
    SigmaWindowsDashModifier,
)
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaCompareExpression, SpecialChars, SigmaRegularExpression, SigmaString, TimestampPart

from apiward.hunt.session import HuntError, HuntResult, HuntSession

__all__ = ["DuckDBBackend", "apiward_pipeline", "FIELD_MAP", "SigmaQuery", "load_rules", "run_rules", "SIGMA_VIEW", "SigmaUnsupported"]


class SigmaUnsupported(HuntError):
    """A rule apiward cannot run, with the reason."""


#: Sigma web server / proxy field -> ``sigma_events`` column.
FIELD_MAP: dict[str, str] = {
    # client
    "c-ip": "client_ip", "src_ip": "client_ip", "clientip": "client_ip", "client_ip": "client_ip", "c-ip-address": "client_ip",
    "cs-username": "actor_user", "user": "actor_user", "username": "actor_user",
    "c-useragent": "user_agent", "cs(user-agent)": "user_agent", "cs-user-agent": "user_agent", "user-agent": "user_agent",
    "useragent": "user_agent", "http_user_agent": "user_agent",
    # request
    "cs-method": "method", "method": "method", "http_method": "method",
    "cs-uri-stem": "path", "c-uri-stem": "path", "uri_path": "path",
    "cs-uri-query": "uri_query", "c-uri-query": "uri_query", "uri_query": "uri_query",
    "cs-uri": "uri", "c-uri": "uri", "uri": "uri", "url": "uri", "request": "uri",
    "c-uri-extension": "uri_extension", "cs-uri-extension": "uri_extension",
    "cs-host": "host", "r-dns": "host", "s-sitename": "host", "host": "host",
    "cs-referrer": "referer", "cs-referer": "referer", "cs(referer)": "referer", "referer": "referer", "referrer": "referer",
    "cs-cookie": "cookie", "cs(cookie)": "cookie",
    "cs-bytes": "req_bytes", "request_body": "req_body", "cs-content": "req_body", "cs-body": "req_body",
    "cs-content-type": "req_content_type",
    # response
    "sc-status": "status", "status": "status", "http_status": "status", "status_code": "status",
    "sc-bytes": "resp_bytes", "response_body": "resp_body", "sc-content-type": "resp_content_type",
    "time-taken": "duration_ms",
    # server
    "s-ip": "dst_ip", "dst_ip": "dst_ip", "s-port": "dst_port", "dst_port": "dst_port",
}

#: The columns rules may name directly (the view's own).
VIEW_COLUMNS = frozenset({
    "id", "ts", "date", "method", "scheme", "host", "path", "template", "endpoint", "service", "uri", "uri_query", "uri_extension",
    "status", "duration_ms", "req_content_type", "resp_content_type", "req_bytes", "resp_bytes", "req_headers", "resp_headers",
    "req_body", "resp_body", "actor", "actor_kind", "actor_user", "client_ip", "user_agent", "auth_scheme", "jwt_alg", "token_id",
    "src_ip", "dst_ip", "dst_port", "namespace", "pod", "request_id", "referer", "cookie", "fulltext",
})

SIGMA_VIEW = r"""CREATE OR REPLACE VIEW sigma_events AS
SELECT * EXCLUDE (query, sensitive, resp_sensitive),
       coalesce(list_aggregate(list_transform(CAST(json(query) AS VARCHAR[][]), lambda p: p[1] || '=' || p[2]), 'string_agg', '&'), '') AS uri_query,
       path || CASE WHEN query IS NULL THEN '' ELSE '?' || coalesce(list_aggregate(list_transform(CAST(json(query) AS VARCHAR[][]), lambda p: p[1] || '=' || p[2]), 'string_agg', '&'), '') END AS uri,
       regexp_extract(path, '\.([A-Za-z0-9]{1,8})$', 1) AS uri_extension,
       regexp_extract(req_headers, '\["referer","((?:[^"\\]|\\.)*)"\]', 1) AS referer,
       regexp_extract(req_headers, '\["cookie","((?:[^"\\]|\\.)*)"\]', 1) AS cookie,
       array_to_string(list_value(sensitive), ',') AS sensitive_classes,
       concat_ws(' ', path, query, req_body, user_agent) AS fulltext
FROM calls"""

_REFUSED_MODIFIERS = {
    SigmaWideModifier: "wide",
    SigmaUTF16Modifier: "utf16",
    SigmaUTF16BEModifier: "utf16be",
    SigmaWindowsDashModifier: "windash",
    SigmaExpandModifier: "expand",
}
try:  # not in every pySigma release
    from sigma.modifiers import SigmaUTF16LEModifier  # type: ignore[attr-defined]

    _REFUSED_MODIFIERS[SigmaUTF16LEModifier] = "utf16le"
except ImportError:  # pragma: no cover
    pass
_SUPPORTED = ("contains, startswith, endswith, all, cased, re (i, m, s), cidr, gt, gte, lt, lte, neq, exists, fieldref, "
              "base64, base64offset, minute, hour, day, week, month, year")


def apiward_pipeline() -> ProcessingPipeline:
    """Sigma web/proxy field names (and their upper-case spellings) to
    ``sigma_events`` columns."""
    mapping: dict[str | None, str | list[str]] = {}
    for k, v in FIELD_MAP.items():
        mapping[k] = v
        mapping[k.upper()] = v
        mapping["-".join(p.capitalize() for p in k.split("-"))] = v
    mapping.update({"cs(User-Agent)": "user_agent", "cs(Referer)": "referer", "cs(Cookie)": "cookie"})
    return ProcessingPipeline(
        name="apiward web/proxy field mapping",
        priority=20,
        items=[ProcessingItem(identifier="apiward_fields", transformation=FieldMappingTransformation(mapping))],
    )


class DuckDBBackend(TextQueryBackend):
    """pySigma backend emitting DuckDB SQL over ``sigma_events``."""

    name: ClassVar[str] = "apiward DuckDB"
    identifier: ClassVar[str] = "apiward_duckdb"
    formats: ClassVar[dict[str, str]] = {"default": "DuckDB SELECT over sigma_events"}
    requires_pipeline: ClassVar[bool] = False

    group_expression: ClassVar[str] = "({expr})"
    parenthesize: bool = True
    token_separator: str = " "
    or_token: ClassVar[str] = "OR"
    and_token: ClassVar[str] = "AND"
    not_token: ClassVar[str] = "NOT"
    eq_token: ClassVar[str] = " = "
    str_quote: ClassVar[str] = "'"
    escape_char: ClassVar[str] = "\\"
    wildcard_multi: ClassVar[str] = "%"
    wildcard_single: ClassVar[str] = "_"
    add_escaped: ClassVar[str] = "\\"
    filter_chars: ClassVar[str] = ""
    bool_values: ClassVar[dict[bool, str | None]] = {True: "true", False: "false"}
    re_expression: ClassVar[str] = "regexp_matches(CAST({field} AS VARCHAR), '{regex}')"
    re_escape_char: ClassVar[str] = ""
    re_escape: ClassVar[tuple[str, ...]] = ()
    re_escape_escape_char: bool = False
    re_flag_prefix: bool = True
    compare_op_expression: ClassVar[str] = "{field} {operator} {value}"
    compare_operators: ClassVar[dict[SigmaCompareExpression.CompareOperators, str]] = {
        SigmaCompareExpression.CompareOperators.LT: "<",
        SigmaCompareExpression.CompareOperators.LTE: "<=",
        SigmaCompareExpression.CompareOperators.GT: ">",
        SigmaCompareExpression.CompareOperators.GTE: ">=",
    }
    field_equals_field_expression: ClassVar[str] = "lower(CAST({field1} AS VARCHAR)) = lower(CAST({field2} AS VARCHAR))"
    field_timestamp_part_expression: ClassVar[str] = "date_part('{timestamp_part}', {field})"
    timestamp_part_mapping: ClassVar[dict[TimestampPart, str]] = {
        TimestampPart.MINUTE: "minute", TimestampPart.HOUR: "hour", TimestampPart.DAY: "day",
        TimestampPart.WEEK: "week", TimestampPart.MONTH: "month", TimestampPart.YEAR: "year",
    }
    field_null_expression: ClassVar[str] = "{field} IS NULL"
    field_exists_expression: ClassVar[str] = "{field} IS NOT NULL"
    field_not_exists_expression: ClassVar[str] = "{field} IS NULL"
    field_in_list_expression: ClassVar[str | None] = None  # IN is case-sensitive: ORs of ILIKE instead
    unbound_value_str_expression: ClassVar[str] = "fulltext ILIKE {value} ESCAPE '\\'"
    unbound_value_num_expression: ClassVar[str] = "fulltext ILIKE '%{value}%'"
    unbound_value_re_expression: ClassVar[str] = "regexp_matches(fulltext, '{value}')"
    deferred_start: ClassVar[str] = ""
    deferred_separator: ClassVar[str] = ""
    deferred_only_query: ClassVar[str] = ""

    def escape_and_quote_field(self, field_name: str) -> str:
        f = field_name
        if f not in VIEW_COLUMNS:
            mapped = FIELD_MAP.get(f.lower())
            if mapped is None:
                raise SigmaError(
                    f"field '{field_name}' has no apiward column; use a Sigma web/proxy field "
                    f"({', '.join(sorted(k for k in FIELD_MAP if '-' in k or '(' in k))}) or a column of sigma_events"
                )
            f = mapped
        return f'"{f}"'

    def _like(self, s: SigmaString) -> str:
        converted = s.convert(self.escape_char, self.wildcard_multi, self.wildcard_single, self.add_escaped, self.filter_chars)
        return "'" + converted.replace("'", "''") + "'"

    def convert_condition_field_eq_val_str(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        return f"CAST({self.escape_and_quote_field(cond.field)} AS VARCHAR) ILIKE {self._like(cond.value)} ESCAPE '\\'"

    def convert_condition_field_eq_val_str_case_sensitive(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        return f"CAST({self.escape_and_quote_field(cond.field)} AS VARCHAR) LIKE {self._like(cond.value)} ESCAPE '\\'"

    def convert_condition_val_str(self, cond: Any, state: ConversionState) -> str:
        v = cond.value
        if not v.startswith(SpecialChars.WILDCARD_MULTI):
            v = SpecialChars.WILDCARD_MULTI + v
        if not v.endswith(SpecialChars.WILDCARD_MULTI):
            v = v + SpecialChars.WILDCARD_MULTI
        return f"fulltext ILIKE {self._like(v)} ESCAPE '\\'"

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> str:
        return super().convert_value_re(r, state).replace("'", "''")

    def convert_condition_field_eq_val_num(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        f = self.escape_and_quote_field(cond.field)
        return f"TRY_CAST({f} AS DOUBLE) = {cond.value}"

    def finalize_query_default(self, rule: SigmaRule, query: str, index: int, state: ConversionState) -> str:
        return f"SELECT * FROM sigma_events WHERE {query}"


@dataclass
class SigmaQuery:
    rule_id: str
    title: str
    level: str
    sql: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return {"rule_id": self.rule_id, "title": self.title, "level": self.level, "sql": self.sql, "source": self.source}


def _items(det: SigmaDetection | SigmaDetectionItem) -> list[SigmaDetectionItem]:
    if isinstance(det, SigmaDetectionItem):
        return [det]
    out: list[SigmaDetectionItem] = []
    for d in det.detection_items:
        out.extend(_items(d))
    return out


def _check(rule: SigmaRule, where: str) -> None:
    ls = rule.logsource
    cat, prod = (ls.category or "").lower(), (ls.product or "").lower()
    if cat not in ("webserver", "proxy", "web", "application", "api", "") or (cat in ("", "application") and prod not in ("apiward", "")):
        raise SigmaUnsupported(f"{where}: logsource category {ls.category!r} product {ls.product!r}: apiward runs rules for API "
                               "events (category webserver or proxy, or product apiward)")
    for name, det in rule.detection.detections.items():
        for item in _items(det):
            for m in item.modifiers:
                if m in _REFUSED_MODIFIERS:
                    raise SigmaUnsupported(
                        f"{where}: detection '{name}' field '{item.field}' uses modifier |{_REFUSED_MODIFIERS[m]}, which "
                        f"apiward's Sigma backend does not support for API events (supported: {_SUPPORTED})"
                    )


def load_rules(paths: list[Path | str]) -> list[tuple[SigmaRule, str]]:
    """Rules from files or folders (``*.yml``/``*.yaml``, recursively)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(list(p.rglob("*.yml")) + list(p.rglob("*.yaml")))
        elif p.exists():
            files.append(p)
        else:
            raise HuntError(f"{p}: no such file or folder")
    out = []
    for f in files:
        try:
            coll = SigmaCollection.from_yaml(f.read_text(encoding="utf-8"))
        except SigmaError as exc:
            raise SigmaUnsupported(f"{f}: not a valid Sigma rule: {exc}") from None
        for r in coll.rules:
            if isinstance(r, SigmaCorrelationRule):
                raise SigmaUnsupported(f"{f}: correlation rule {r.title!r}: correlations are not supported yet; "
                                       "write the aggregation as a saved hunt (SQL) instead")
            if isinstance(r, SigmaRule):
                out.append((r, str(f)))
    if not out:
        raise HuntError(f"no Sigma rules in {', '.join(map(str, paths))}")
    return out


def convert(rule: SigmaRule, source: str = "") -> SigmaQuery:
    where = f"{source}: rule {rule.title!r}" if source else f"rule {rule.title!r}"
    _check(rule, where)
    backend = DuckDBBackend(processing_pipeline=apiward_pipeline())
    try:
        queries = backend.convert_rule(rule)
    except SigmaError as exc:
        raise SigmaUnsupported(f"{where}: {exc}") from None
    except NotImplementedError as exc:
        raise SigmaUnsupported(f"{where}: not supported: {exc}") from None
    if rule.errors:
        raise SigmaUnsupported(f"{where}: {rule.errors[0]}")
    sql = queries[0] if len(queries) == 1 else " UNION ".join(queries)
    level = str(rule.level.name).lower() if rule.level else ""
    return SigmaQuery(str(rule.id or rule.title), rule.title, level, sql, source)


def run_rules(session: HuntSession, paths: list[Path | str], *, limit: int | None = None) -> tuple[HuntResult, list[SigmaQuery]]:
    """Convert and run every rule; one row per (rule, matching call)."""
    session.con.execute(SIGMA_VIEW)
    queries = [convert(r, src) for r, src in load_rules(paths)]
    cols = ("id", "ts", "actor", "client_ip", "method", "host", "path", "uri_query", "status", "user_agent")
    parts = []
    for i, q in enumerate(queries):
        parts.append(
            f"SELECT '{q.title.replace(chr(39), chr(39) * 2)}' AS rule, '{q.rule_id}' AS rule_id, '{q.level}' AS level, "
            + ", ".join(cols) + f" FROM ({q.sql}) AS r{i}"
        )
    sql = " UNION ALL ".join(parts) + " ORDER BY ts, rule"
    if limit:
        sql += f" LIMIT {int(limit)}"
    res = session.query(sql, name="sigma")
    res.meta = {"rules": [q.to_dict() for q in queries]}
    return res, queries
