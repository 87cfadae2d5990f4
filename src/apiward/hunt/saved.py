"""Saved hunts: named, documented SQL over the hunting views, as files.

apiward ships its hunts in ``apiward/hunt/hunts/*.yaml``; users add their
own as files of the same shape in ``<state>/hunts/`` or any folder they
pass (a user hunt with a shipped hunt's name replaces it)::

    name: stuffing-then-success
    title: Many failed logins, then a success on the same account
    description: |
      What it finds and why it matters.
    tactic: credential-access          # kill-chain stage (apiward.model.taxonomy)
    attack: T1110.001                  # ATT&CK technique
    owasp: API2:2023
    params:                            # defaults; `--param min_failures=3` overrides
      min_failures: 5
    sql: |
      SELECT ... FROM calls WHERE ... $min_failures ...

Parameters are bound by DuckDB (``$name``), never pasted into the SQL.
Every hunt runs inside a :class:`~apiward.hunt.session.HuntSession`, so the
time range, the read-only sandbox and the time limit apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from apiward.hunt.session import HuntError, HuntResult, HuntSession

__all__ = ["SavedHunt", "load_hunts", "shipped_hunts", "parse_param", "BadHunt"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_FIELDS = {"name", "title", "description", "tactic", "attack", "owasp", "params", "sql", "columns"}


class BadHunt(ValueError):
    """A hunt file that cannot be used; says which file and why."""


@dataclass
class SavedHunt:
    name: str
    title: str
    description: str
    sql: str
    tactic: str = ""
    attack: str = ""
    owasp: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    source: str = "apiward"  # apiward | the user file's path

    def bind(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Parameter values for the names the SQL uses (defaults, then overrides)."""
        used = set(_PARAM.findall(self.sql))
        unknown = set(overrides or {}) - set(self.params)
        if unknown:
            raise HuntError(f"hunt {self.name} has no parameter {', '.join(sorted(unknown))}; it takes: {', '.join(self.params) or 'none'}")
        values = {**self.params, **(overrides or {})}
        missing = used - set(values)
        if missing:
            raise HuntError(f"hunt {self.name}: no value for ${', $'.join(sorted(missing))}")
        out = {}
        for k in used:
            default, v = self.params.get(k), values[k]
            if isinstance(v, str) and not isinstance(default, str) and default is not None:
                v = parse_param(v, type(default), k)
            out[k] = v
        return out

    def run(self, session: HuntSession, overrides: dict[str, Any] | None = None) -> HuntResult:
        res = session.query(self.sql, self.bind(overrides), name=self.name)
        res.meta = {"hunt": self.name, "title": self.title, "tactic": self.tactic, "attack": self.attack, "owasp": self.owasp}
        return res

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "description": self.description.strip(), "tactic": self.tactic,
                "attack": self.attack, "owasp": self.owasp, "params": self.params, "source": self.source}


def parse_param(value: str, typ: type, name: str = "") -> Any:
    try:
        if typ is bool:
            return value.strip().lower() in ("1", "true", "yes", "on")
        return typ(value)
    except ValueError:
        raise HuntError(f"parameter {name}: {value!r} is not a {typ.__name__}") from None


def _parse(text: str, source: str) -> SavedHunt:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadHunt(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise BadHunt(f"{source}: a hunt file is a mapping with name, title, description and sql")
    extra = set(doc) - _FIELDS
    if extra:
        raise BadHunt(f"{source}: unknown key(s) {', '.join(sorted(extra))}; a hunt has {', '.join(sorted(_FIELDS))}")
    for k in ("name", "sql"):
        if not isinstance(doc.get(k), str) or not doc[k].strip():
            raise BadHunt(f"{source}: '{k}' is required")
    if not _NAME.match(doc["name"]):
        raise BadHunt(f"{source}: name {doc['name']!r} must be lower-case letters, digits, '-' or '_'")
    params = doc.get("params") or {}
    if not isinstance(params, dict):
        raise BadHunt(f"{source}: params must be a mapping of name to default value")
    return SavedHunt(
        name=doc["name"], title=str(doc.get("title") or doc["name"]), description=str(doc.get("description") or ""),
        sql=doc["sql"], tactic=str(doc.get("tactic") or ""), attack=str(doc.get("attack") or ""), owasp=str(doc.get("owasp") or ""),
        params=dict(params), source=source,
    )


def shipped_hunts() -> dict[str, SavedHunt]:
    out: dict[str, SavedHunt] = {}
    folder = resources.files("apiward.hunt").joinpath("hunts")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            h = _parse(entry.read_text(encoding="utf-8"), "apiward")
            out[h.name] = h
    return out


def load_hunts(*folders: Path | str | None) -> dict[str, SavedHunt]:
    """Shipped hunts, then each folder's ``*.yaml`` (later ones win)."""
    hunts = shipped_hunts()
    for folder in folders:
        if folder is None:
            continue
        p = Path(folder)
        if not p.is_dir():
            continue
        for f in sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml"))):
            h = _parse(f.read_text(encoding="utf-8"), str(f))
            hunts[h.name] = h
    return dict(sorted(hunts.items()))
