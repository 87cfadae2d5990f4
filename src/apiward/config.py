"""Settings: one typed struct, filled from defaults, a TOML file and
``APIWARD_*`` environment variables (in that order), validated at load so a
bad key or value fails at start with the file and key named."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["Settings", "ProxySettings", "load_settings", "ConfigError"]


class ConfigError(ValueError):
    """A bad config file, key or value."""


class ProxySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``[proxy]`` table: the capture proxy's timeouts (seconds) and caps.
    Field names are :class:`~apiward.ingest.proxy.CaptureProxy` arguments."""

    header_timeout: float = 10.0  # a client's whole request head, else 408
    body_timeout: float = 30.0  # a client's whole request body, else 408 (upstream connection closed)
    idle_timeout: float = 60.0  # a keep-alive connection waiting for its next request
    connect_timeout: float = 10.0  # connecting to the upstream, else 504
    read_timeout: float = 120.0  # the upstream's response head, else 504
    max_concurrent: int = 1024  # requests in flight; beyond, 503 + Retry-After
    max_upstream: int = 512  # open upstream connections; beyond, 503 + Retry-After
    retry_after: int = 1  # seconds, in the Retry-After of those 503s

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "idle_timeout", "connect_timeout", "read_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"proxy.{name} must be > 0")
        for name in ("max_concurrent", "max_upstream"):
            if getattr(self, name) < 1:
                raise ConfigError(f"proxy.{name} must be >= 1")
        if self.retry_after < 0:
            raise ConfigError("proxy.retry_after must be >= 0")

    def as_kwargs(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every knob apiward has outside the detectors' own constructor
    arguments (which live under ``[detectors.<id>]``)."""

    batch_size: int = 2000  # events per micro-batch
    body_cap: int = 1 << 20  # bytes of each body kept in memory; longer bodies are cut and flagged
    lake_body_cap: int = 16384  # bytes of each (redacted) body written to the lake
    # Input limits (0: none): a record over one is skipped unread and quarantined with the reason,
    # so memory stays bounded by them whatever a file holds (a gzip bomb, one endless line).
    max_record_bytes: int = 32 << 20  # decompressed bytes of one record (a HAR entry, a JSON array element)
    max_line_bytes: int = 32 << 20  # bytes of one line of a line format (JSONL, access logs, raw HTTP)
    max_depth: int = 256  # JSON nesting of one record
    max_file_bytes: int = 0  # decompressed bytes read from one file; the rest is reported, not read
    max_gzip_ratio: int = 200  # past 64 MiB, a .gz expanding more than this many times is a bomb: the rest is not read
    redact: bool = True  # redact/tokenise secrets and PII before anything is stored
    keep_raw_bodies: bool = False  # store bodies without redaction (explicit opt-in)
    retention_days: int = 0  # drop lake partitions older than this (0 keeps all)
    checkpoint_seconds: float = 5.0  # how often state is persisted during long runs
    memory_budget: str = "512M"  # what per-key state may take; every table's cap derives from it (apiward.state.budget)
    trusted_proxies: list[str] = []  # CIDRs whose X-Forwarded-For/Forwarded is trusted (loopback always)
    jwt_claim: str = "sub"  # JWT claim naming the principal
    api_key_headers: list[str] = msgspec.field(default_factory=lambda: ["x-api-key", "api-key", "x-auth-token", "apikey"])
    session_cookies: list[str] = msgspec.field(
        default_factory=lambda: ["session", "sessionid", "session_id", "jsessionid", "phpsessid", "connect.sid", "sid"]
    )
    detectors: list[str] = []  # ids to enable; empty enables every registered detector
    disable_detectors: list[str] = []
    detector_options: dict[str, dict[str, Any]] = {}  # [detectors.<id>] tables
    spec: list[str] = []  # OpenAPI specs whose routes win in templating and feed spec diff
    owners_file: str = ""  # TOML/YAML mapping host/path globs to teams
    templating_overrides: dict[str, str] = {}  # path glob -> fixed template
    never_merge: list[str] = []  # literal path segments that must never become parameters
    sinks: dict[str, dict[str, Any]] = {}  # [sinks.<name>] tables: type = webhook | ocsf | ecs | cef | splunk, and its options
    alerts: dict[str, Any] = {}  # [alerts]: min_severity, unit, update_interval, rate_per_minute, retries (apiward.alert.registry)
    proxy: ProxySettings = msgspec.field(default_factory=ProxySettings)  # [proxy]: timeouts and caps of `apiward proxy`

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("batch_size must be >= 1")
        if self.body_cap < 0 or self.lake_body_cap < 0:
            raise ConfigError("body caps must be >= 0")
        for name in ("max_record_bytes", "max_line_bytes", "max_depth", "max_file_bytes", "max_gzip_ratio"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0: no limit)")
        from apiward.state.budget import parse_size

        try:
            parse_size(self.memory_budget)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.retention_days < 0:
            raise ConfigError("retention_days must be >= 0")
        if self.sinks or self.alerts:
            from apiward.alert.registry import validate_alerts, validate_sink

            try:
                validate_alerts(self.alerts)
                for name, table in self.sinks.items():
                    validate_sink(name, table)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None


_ENV_PREFIX = "APIWARD_"


def _from_env() -> dict[str, Any]:
    out: dict[str, Any] = {}
    fields = {f.name: f for f in msgspec.structs.fields(Settings)}
    for name, field in fields.items():
        raw = os.environ.get(_ENV_PREFIX + name.upper())
        if raw is None:
            continue
        typ = field.type
        try:
            if typ is bool:
                out[name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif typ is int:
                out[name] = int(raw)
            elif typ is float:
                out[name] = float(raw)
            elif typ == list[str]:
                out[name] = [p.strip() for p in raw.split(",") if p.strip()]
            elif typ is str:
                out[name] = raw
        except ValueError as exc:
            raise ConfigError(f"environment variable {_ENV_PREFIX + name.upper()}={raw!r}: {exc}") from None
    return out


def load_settings(path: Path | None = None, state_dir: Path | None = None, **overrides: Any) -> Settings:
    """Defaults < TOML file (``path`` or ``<state_dir>/apiward.toml``) <
    environment < explicit ``overrides`` (command-line flags)."""
    data: dict[str, Any] = {}
    if path is None and state_dir is not None and (state_dir / "apiward.toml").exists():
        path = state_dir / "apiward.toml"
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        section = raw.pop("apiward", {})
        detectors = raw.pop("detectors", None)
        data.update(raw)
        data.update(section)
        if isinstance(detectors, dict):
            data["detector_options"] = detectors
    data.update(_from_env())
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}{exc}") from None
    except ConfigError as exc:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}{exc}") from None
