"""A hunt session: a read-only, time-limited DuckDB connection over the
lake, cut to a time range, with the documented hunting views.

Views (stable columns, documented in ``docs/hunting.md``):

- ``calls``: one row per API call (the lake's calls table) plus ``endpoint``
  (``"GET /users/{id}"``);
- ``findings``: the lake's findings plus ``origin`` (``live`` | ``retro``)
  and ``stage`` (kill-chain stage, :mod:`apiward.model.taxonomy`);
- ``incidents``, ``changes``, ``finding_events``: the lake's tables;
- ``endpoints``: per endpoint in the range: calls, actors, errors, first
  and last seen, sensitive classes served;
- ``actors`` and ``identities``: attacker clusters from entity resolution
  (:mod:`apiward.hunt.actors`), built on first use in a query.

Safety: a statement must be one ``SELECT`` (or ``WITH ... SELECT``); the
connection may read the lake's folder and nothing else
(``enable_external_access`` off, ``allowed_directories`` the lake, settings
locked), and a query that runs past ``timeout`` seconds is interrupted.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from apiward.hunt.timerange import TimeRange
from apiward.lake.query import create_views
from apiward.model.taxonomy import KILL_CHAIN, _ALIASES, _load

__all__ = ["HuntSession", "HuntResult", "HuntError", "HuntTimeout", "VIEW_DOCS"]


class HuntError(ValueError):
    """A hunt that cannot run: bad SQL, a statement that is not a query."""


class HuntTimeout(HuntError):
    """A hunt that ran past its time limit."""


#: What each view holds, for ``apiward hunt views`` and the docs.
VIEW_DOCS: dict[str, str] = {
    "calls": "one row per API call: id, ts, method, host, path, template, endpoint, query, status, duration_ms, "
    "req/resp headers and bodies (redacted), actor, actor_kind, actor_user, client_ip, user_agent, auth_scheme, "
    "jwt_alg, token_id, sensitive, resp_sensitive, service, request_id, date",
    "findings": "detector findings: id, detector, title, kind, severity, confidence, owasp, attack, tactic, stage, cwe, "
    "actor, actor_display, endpoint, event_ids, events, first_seen, last_seen, summary, evidence, incident, origin",
    "incidents": "one per actor with findings: id, actor, actor_display, severity, finding_ids, tactics, first_seen, last_seen, summary",
    "actors": "attacker clusters: actor, display, risk, stage, stages, identities, members, findings, severity, first_seen, last_seen",
    "identities": "identities linked into each cluster: actor, identity, kind, value, confidence, evidence, first_seen, last_seen",
    "endpoints": "per endpoint: host, service, method, template, endpoint, calls, actors, errors, first_seen, last_seen, sensitive",
    "changes": "API change log: ts, kind, host, endpoint, field, detail",
    "finding_events": "every event each finding rests on: finding_id, event_id, ts, detector, kind, actor",
}

_LAZY = ("actors", "identities")
_ALLOWED = {duckdb.StatementType.SELECT}


def _stage_case() -> str:
    stage = _load("detectors.json")["stage"]
    parts = [f"WHEN '{d}' THEN '{s}'" for d, s in sorted(stage.items())]
    tac = [f"WHEN '{t}' THEN '{t}'" for t in KILL_CHAIN] + [f"WHEN '{a}' THEN '{s}'" for a, s in _ALIASES.items()]
    return f"CASE detector {' '.join(parts)} ELSE CASE tactic {' '.join(tac)} ELSE 'initial-access' END END"


@dataclass
class HuntResult:
    columns: list[str]
    rows: list[tuple]
    seconds: float = 0.0
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


class HuntSession:
    """Open once, run many hunts. ``timeout`` seconds per statement;
    ``threads``/``memory_limit`` bound what one hunt may take."""

    def __init__(
        self,
        state_dir: Path | str,
        time_range: TimeRange | None = None,
        *,
        timeout: float = 60.0,
        threads: int | None = None,
        memory_limit: str | None = "4GB",
        actors_options: dict[str, Any] | None = None,
    ) -> None:
        self.state = Path(state_dir)
        self.lake = self.state / "lake"
        self.range = time_range or TimeRange()
        self.timeout = timeout
        self.actors_options = actors_options or {}
        self._materialized: set[str] = set()
        self.con = duckdb.connect(":memory:")
        con = self.con
        con.execute("SET TimeZone='UTC'")
        if threads:
            con.execute(f"SET threads={int(threads)}")
        if memory_limit:
            con.execute(f"SET memory_limit='{memory_limit}'")
        r = self.range
        create_views(con, self.lake, since=r.since if r.bounded else None, until=r.until if r.bounded else None, prefix="_lake_")
        con.execute("CREATE VIEW calls AS SELECT *, method || ' ' || coalesce(template, path) AS endpoint FROM _lake_calls")
        con.execute(
            f"CREATE VIEW findings AS SELECT * EXCLUDE (origin, retro_run), coalesce(origin, 'live') AS origin, retro_run, "
            f"{_stage_case()} AS stage FROM _lake_findings"
        )
        for t in ("incidents", "changes", "finding_events"):
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM _lake_{t}")
        con.execute(
            """CREATE VIEW endpoints AS
            SELECT host, any_value(service) AS service, method, coalesce(template, path) AS template,
                   method || ' ' || coalesce(template, path) AS endpoint, count(*) AS calls,
                   count(DISTINCT actor) AS actors, count(*) FILTER (WHERE status >= 400) AS errors,
                   min(ts) AS first_seen, max(ts) AS last_seen,
                   list_sort(list_distinct(flatten(list(resp_sensitive)))) AS sensitive
            FROM _lake_calls GROUP BY host, method, coalesce(template, path)"""
        )
        lake_dir = str(self.lake.resolve()) + "/"
        con.execute("SET allowed_directories=[" + "'" + lake_dir.replace("'", "''") + "']")
        con.execute("SET enable_external_access=false")
        con.execute("SET lock_configuration=true")

    # -- lazily built views ---------------------------------------------------
    def _ensure(self, sql: str) -> None:
        need = [v for v in _LAZY if v not in self._materialized and re.search(rf"\b(from|join)\s+{v}\b", sql, re.I)]
        if not need:
            return
        from apiward.hunt.actors import resolve

        clusters = resolve(self, **self.actors_options)
        self.con.register("_actors_tbl", clusters.actors_table())
        self.con.register("_identities_tbl", clusters.identities_table())
        self.con.execute("CREATE OR REPLACE VIEW actors AS SELECT * FROM _actors_tbl")
        self.con.execute("CREATE OR REPLACE VIEW identities AS SELECT * FROM _identities_tbl")
        self._materialized.update(_LAZY)
        self.clusters = clusters

    # -- running SQL -------------------------------------------------------------
    def check(self, sql: str) -> None:
        """Refuse anything but one read-only query."""
        try:
            stmts = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise HuntError(f"cannot parse SQL: {exc}") from None
        if len(stmts) != 1:
            raise HuntError(f"one statement at a time, got {len(stmts)}")
        if stmts[0].type not in _ALLOWED:
            raise HuntError(f"hunts are read-only: only SELECT queries run here, not {stmts[0].type.name}")

    def query(self, sql: str, params: dict[str, Any] | None = None, *, name: str = "", trusted: bool = False,
              timeout: float | None = None) -> HuntResult:
        """Run one query. ``trusted`` (internal callers) skips the statement
        check but never the sandbox."""
        if not trusted:
            self.check(sql)
        self._ensure(sql)
        limit = self.timeout if timeout is None else timeout
        timer = threading.Timer(limit, self.con.interrupt) if limit and limit > 0 else None
        t0 = time.perf_counter()
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            cur = self.con.execute(sql, params or {}) if params else self.con.execute(sql)
            columns = [d[0] for d in cur.description or []]
            rows = cur.fetchall()
        except duckdb.InterruptException:
            raise HuntTimeout(f"{name or 'query'} ran past its time limit of {limit:g}s and was stopped") from None
        except duckdb.Error as exc:
            msg = str(exc)
            if "interrupt" in msg.lower() and timer is not None and not timer.is_alive():
                raise HuntTimeout(f"{name or 'query'} ran past its time limit of {limit:g}s and was stopped") from None
            raise HuntError(f"{name + ': ' if name else ''}{msg}") from None
        finally:
            if timer is not None:
                timer.cancel()
        return HuntResult(columns, rows, time.perf_counter() - t0, name)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "HuntSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
