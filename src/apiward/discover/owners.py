"""Who owns an endpoint: an owners file first, then workload metadata.

Owners file (TOML or YAML), rules tried in order, first match wins::

    # owners.yaml
    owners:
      - match: "api.example.com/payments/*"   # host + path glob
        team: payments
      - path: "/admin/**"                     # path glob, any host
        team: platform
      - host: "*.internal.example.com"
        team: infra

    # or the short form: glob -> team
    "api.example.com/users/*": identity

TOML takes the same shape (``[[owners]]`` tables, or a ``[owners]`` table of
glob = team). Globs are :mod:`fnmatch` patterns (``*`` also crosses ``/``)
matched against ``host + template``, ``host + path`` for rules with a host,
and the template alone for rules that start with ``/``.

Without a file rule, workload metadata decides: a ``team``/``owner`` label
(also ``app.kubernetes.io/team``, ``*/team``, ``*/owner``), then
``app.kubernetes.io/part-of``, then the Kubernetes namespace.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

__all__ = ["OwnerRule", "OwnersFile", "OwnersError", "owner_from_labels", "resolve_owner"]

TEAM_LABELS = ("team", "owner", "app.kubernetes.io/team", "app.kubernetes.io/owner", "owner.team", "squad")


class OwnersError(ValueError):
    """A malformed owners file (named in the message)."""


class OwnerRule:
    __slots__ = ("host", "path", "match", "team", "_rx_host", "_rx_path", "_rx_match")

    def __init__(self, team: str, *, host: str = "", path: str = "", match: str = "") -> None:
        if not team:
            raise OwnersError("owner rule without a team")
        if not (host or path or match):
            raise OwnersError(f"owner rule for team {team!r} needs match, host or path")
        self.team = team
        self.host = host
        self.path = path
        self.match = match
        self._rx_host = re.compile(fnmatch.translate(host.lower())) if host else None
        self._rx_path = re.compile(fnmatch.translate(path)) if path else None
        self._rx_match = re.compile(fnmatch.translate(match)) if match else None

    def matches(self, host: str, template: str) -> bool:
        host = host.lower()
        if self._rx_host is not None and not self._rx_host.match(host) and not self._rx_host.match(host.split(":")[0]):
            return False
        if self._rx_path is not None and not self._rx_path.match(template):
            return False
        if self._rx_match is not None:
            if self.match.startswith("/"):
                return bool(self._rx_match.match(template))
            return bool(self._rx_match.match(host + template) or self._rx_match.match(host.split(":")[0] + template))
        return True


class OwnersFile:
    """Ordered owner rules loaded from TOML or YAML."""

    def __init__(self, rules: list[OwnerRule], source: str = "") -> None:
        self.rules = rules
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> "OwnersFile":
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise OwnersError(f"{p}: {exc.strerror or exc}") from None
        try:
            if p.suffix.lower() == ".toml":
                data: Any = tomllib.loads(text)
            else:
                data = yaml.safe_load(text)
        except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise OwnersError(f"{p}: {exc}") from None
        try:
            return cls(cls._rules(data), str(p))
        except OwnersError as exc:
            raise OwnersError(f"{p}: {exc}") from None

    @staticmethod
    def _rules(data: Any) -> list[OwnerRule]:
        if data is None:
            return []
        if isinstance(data, dict) and "owners" in data:
            data = data["owners"]
        rules: list[OwnerRule] = []
        if isinstance(data, dict):
            for glob, team in data.items():
                if not isinstance(team, str):
                    raise OwnersError(f"team for {glob!r} must be a string")
                rules.append(OwnerRule(team, match=str(glob)))
        elif isinstance(data, list):
            for i, r in enumerate(data):
                if not isinstance(r, dict):
                    raise OwnersError(f"rule {i + 1} must be a table/mapping")
                unknown = set(r) - {"match", "host", "path", "team", "owner"}
                if unknown:
                    raise OwnersError(f"rule {i + 1}: unknown key(s) {', '.join(sorted(unknown))}")
                team = r.get("team") or r.get("owner") or ""
                rules.append(OwnerRule(str(team), host=str(r.get("host", "")), path=str(r.get("path", "")), match=str(r.get("match", ""))))
        else:
            raise OwnersError("expected a list of rules or a mapping of glob to team")
        return rules

    def owner(self, host: str, template: str) -> str:
        for r in self.rules:
            if r.matches(host, template):
                return r.team
        return ""


def owner_from_labels(labels: dict[str, str], namespace: str = "") -> tuple[str, str]:
    """``(owner, source)`` from workload labels; ``("", "")`` when none."""
    for k in TEAM_LABELS:
        v = labels.get(k)
        if v:
            return v, f"label {k}"
    for k, v in labels.items():
        if v and (k.endswith("/team") or k.endswith("/owner")):
            return v, f"label {k}"
    v = labels.get("app.kubernetes.io/part-of")
    if v:
        return v, "label app.kubernetes.io/part-of"
    if namespace:
        return namespace, "namespace"
    return "", ""


def resolve_owner(host: str, template: str, labels: dict[str, str], namespace: str, owners: OwnersFile | None) -> tuple[str, str]:
    """The owner of an endpoint and where that came from (file rule first)."""
    if owners is not None:
        team = owners.owner(host, template)
        if team:
            return team, "owners file"
    return owner_from_labels(labels, namespace)
