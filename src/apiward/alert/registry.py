"""Sink registry: the ``type`` of a ``[sinks.<name>]`` table -> config and
sink classes. Adding a sink: a module here and one line below."""

from __future__ import annotations

import importlib
from typing import Any

import msgspec

__all__ = ["SINKS", "validate_sink", "build_sink", "AlertSettings", "validate_alerts"]

SINKS: dict[str, tuple[str, str, str]] = {
    "webhook": ("apiward.alert.webhook", "WebhookConfig", "WebhookSink"),
    "ocsf": ("apiward.alert.ocsf", "OcsfConfig", "OcsfSink"),
    "ecs": ("apiward.alert.ecs", "EcsConfig", "EcsSink"),
    "cef": ("apiward.alert.cef", "CefConfig", "CefSink"),
    "splunk": ("apiward.alert.splunk", "SplunkConfig", "SplunkSink"),
}


class AlertSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[alerts]``: what is sent and how often."""

    min_severity: str = "medium"  # alerts below this severity are not sent
    unit: str = "incident"  # incident: one alert per actor's incident and its updates; finding: one per finding
    update_interval: float = 300.0  # seconds between two versions of one alert
    rate_per_minute: int = 60  # per sink
    retry_base: float = 2.0
    retry_max: float = 300.0
    max_attempts: int = 0  # 0: retry forever (nothing is lost while a sink is down)
    include_exposures: bool = False  # also alert on exposures: findings about the API itself (kind exposure)

    def __post_init__(self) -> None:
        from apiward.model.finding import SEVERITIES

        if self.min_severity not in SEVERITIES:
            raise ValueError(f"min_severity must be one of {', '.join(SEVERITIES)}")
        if self.unit not in ("incident", "finding"):
            raise ValueError("unit must be incident or finding")
        if self.rate_per_minute < 0 or self.update_interval < 0:
            raise ValueError("rate_per_minute and update_interval must be >= 0")


def _classes(typ: str) -> tuple[type, type]:
    if typ not in SINKS:
        raise ValueError(f"unknown sink type {typ!r}; known: {', '.join(SINKS)}")
    mod, cfg, sink = SINKS[typ]
    m = importlib.import_module(mod)
    return getattr(m, cfg), getattr(m, sink)


def validate_sink(name: str, table: dict[str, Any]) -> Any:
    """The typed config of ``[sinks.<name>]``; raises ``ValueError`` naming
    the sink and the bad key or value."""
    if not isinstance(table, dict):
        raise ValueError(f"sinks.{name} must be a table")
    typ = table.get("type") or name
    try:
        cfg_cls, _ = _classes(typ)
        return msgspec.convert({**table, "type": typ}, cfg_cls)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ValueError(f"sinks.{name}: {exc}") from None


def validate_alerts(table: dict[str, Any]) -> AlertSettings:
    try:
        return msgspec.convert(table or {}, AlertSettings)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ValueError(f"alerts: {exc}") from None


def build_sink(name: str, table: dict[str, Any], **kwargs: Any) -> Any:
    cfg = validate_sink(name, table)
    _, sink_cls = _classes(cfg.type)
    import inspect

    params = inspect.signature(sink_cls).parameters
    return sink_cls(name, cfg, **{k: v for k, v in kwargs.items() if k in params})
