"""What the REST API and the console read, over the same state and lake as
the CLI: the state store opened read-only (SQLite WAL: a reader never
blocks the pipeline writing beside it) and the lake through read-only,
time-limited hunt sessions (:class:`apiward.hunt.session.HuntSession`).

Expensive, slowly changing things (the inventory snapshot, actor
clusters) are cached until the files under them change, so pages stay
fast while a proxy or the server's own ingestion keeps writing.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from apiward.hunt.session import HuntError, HuntSession
from apiward.hunt.timerange import TimeRange
from apiward.model.finding import KINDS, SEVERITIES
from apiward.serve.triage import STATUSES, TriageStore
from apiward.state.partitions import partition_stores

__all__ = ["BadQuery", "NotFound", "StateReader", "endpoint_id"]


class NotFound(LookupError):
    """No such finding, endpoint, actor or incident."""


class BadQuery(ValueError):
    """A filter value the query cannot use; the message names the field."""


def endpoint_id(host: str, method: str, template: str) -> str:
    """A stable, URL-safe id for one endpoint."""
    return "E-" + hashlib.blake2b(f"{host}\x1f{method}\x1f{template}".encode(), digest_size=6).hexdigest()


def _iso(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return v


def _query_text(q: Any) -> str:
    """The lake's query column (JSON pairs) as ``a=1&b=2`` for people."""
    if not q:
        return ""
    try:
        pairs = orjson.loads(q) if isinstance(q, str) else q
        return "&".join(f"{k}={v}" for k, v in pairs)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return str(q)


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


class StateReader:
    """Read-side queries of one state directory, shared by API and console."""

    def __init__(self, state_dir: Path | str, triage: TriageStore, *, hunt_timeout: float = 30.0) -> None:
        self.state = Path(state_dir)
        self.triage = triage
        self.hunt_timeout = hunt_timeout
        self._lock = threading.Lock()
        self._snap: tuple[tuple[float, ...], dict[str, Any] | None] | None = None
        self._clusters: tuple[tuple[float, ...], Any] | None = None
        self._rows: tuple[tuple[float, ...], list[dict[str, Any]]] | None = None
        self._shared: tuple[tuple[float, ...], HuntSession] | None = None
        self._qlock = threading.Lock()
        self._hunting: tuple[tuple[float, ...], HuntSession] | None = None
        self._hlock = threading.Lock()
        self._lake_cache: dict[str, tuple[tuple[float, ...], Any]] = {}
        self._dv: sqlite3.Connection | None = None  # watches the store's commits (PRAGMA data_version)
        self._dv_lock = threading.Lock()

    # -- signatures: when a cached value is stale ----------------------------------
    def _state_sig(self) -> tuple[float, ...]:
        """Changes at every commit of the writer. File mtimes tick at the
        kernel's clock (milliseconds), so two checkpoints in one tick looked
        alike; SQLite's ``data_version`` on one read-only connection kept
        open changes whenever another connection commits."""
        db = self.state / "state.db"
        base = (_mtime(db), _mtime(db.with_name("state.db-wal")))
        # a partitioned state (analyze --workers N): its partitions commit, not state.db
        base += tuple(_mtime(p) for part in partition_stores(self.state) for p in (part, part.with_name("state.db-wal")))
        if not db.exists():
            return base
        with self._dv_lock:
            try:
                if self._dv is None:
                    self._dv = sqlite3.connect(f"file:{db}?mode=ro", uri=True, check_same_thread=False)
                (version,) = self._dv.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                if self._dv is not None:
                    self._dv.close()
                self._dv = None
                return base
        return (*base, float(version))

    def lake_sig(self) -> tuple[float, ...]:
        lake = self.state / "lake"
        if not lake.is_dir():
            return (0,)
        # Directory mtimes can tick coarser than writes; the number of
        # files per day catches a file added within the same tick.
        sig: list[float] = []
        for table in sorted(lake.iterdir()):
            if table.is_dir():
                sig.append(_mtime(table))
                for d in table.glob("date=*"):
                    try:
                        sig += [_mtime(d), sum(1 for _ in os.scandir(d))]
                    except FileNotFoundError:
                        continue
        return tuple(sig)

    # -- state snapshot (inventory) ------------------------------------------------
    def snapshot(self) -> dict[str, Any] | None:
        return self._signed_snapshot()[1]

    def _signed_snapshot(self) -> tuple[tuple[float, ...], dict[str, Any] | None]:
        """The snapshot with the signature taken before it was read: what
        is derived from it is cached under that signature, never under one
        taken later (a commit in between would pin the older snapshot to
        the newer signature, and readers would see it stale until the next
        commit)."""
        sig = self._state_sig()
        with self._lock:
            if self._snap is not None and self._snap[0] == sig:
                return self._snap
        from apiward.state import StateDir

        snap = StateDir(self.state).load() if (self.state / "state.db").exists() else None
        with self._lock:
            self._snap = (sig, snap)
        return sig, snap

    def session(self, since: str | None = None, until: str | None = None, timeout: float | None = None) -> HuntSession:
        """A read-only, time-limited hunt session over the lake."""
        from apiward.hunt.timerange import BadTime

        try:
            tr = TimeRange.parse(since, until)
        except BadTime as exc:
            raise BadQuery(str(exc)) from None
        return HuntSession(self.state, tr, timeout=timeout or self.hunt_timeout, threads=2, memory_limit="1GB")

    def run(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """One internal query on a shared session over the whole lake,
        reopened when the lake's files change (opening one costs ~0.1 s),
        and run again once on a fresh session when it fails (a file replaced
        while it ran)."""
        for again in (False, True):
            sig = self.lake_sig()
            with self._qlock:
                if self._shared is None or self._shared[0] != sig:
                    if self._shared is not None:
                        self._shared[1].close()
                    self._shared = (sig, self.session())
                try:
                    return self._shared[1].query(sql, params, trusted=True)
                except HuntError:
                    if again:
                        raise
                    # a pipeline's checkpoint may have replaced a file under the
                    # query (within one mtime tick the signature cannot tell):
                    # once more, on a session over the lake as it is now
                    self._shared[1].close()
                    self._shared = None
        raise AssertionError("unreachable")

    def hunt(self, run: Any, since: str | None = None, until: str | None = None, timeout: float | None = None) -> Any:
        """``run(session)`` for an analyst's hunt: the session is read-only,
        sandboxed and time-limited. Over the whole lake it is a session of
        its own kept open between hunts (one hunt at a time; pages never
        wait for it); a time range gets a fresh session cut to it."""
        if since or until:
            with self.session(since, until, timeout) as s:
                return run(s)
        sig = self.lake_sig()
        with self._hlock:
            if self._hunting is None or self._hunting[0] != sig:
                if self._hunting is not None:
                    self._hunting[1].close()
                self._hunting = (sig, self.session())
            s = self._hunting[1]
            s.timeout = timeout or self.hunt_timeout
            return run(s)

    def cached(self, key: str, build: Any) -> Any:
        """``build()`` once per state of the lake (a few derived results)."""
        sig = self.lake_sig()
        with self._lock:
            hit = self._lake_cache.get(key)
            if hit is not None and hit[0] == sig:
                return hit[1]
        value = build()
        with self._lock:
            if len(self._lake_cache) > 64:
                self._lake_cache.clear()
            self._lake_cache[key] = (sig, value)
        return value

    def close(self) -> None:
        with self._dv_lock:
            if self._dv is not None:
                self._dv.close()
                self._dv = None
        with self._qlock:
            if self._shared is not None:
                self._shared[1].close()
                self._shared = None
        with self._hlock:
            if self._hunting is not None:
                self._hunting[1].close()
                self._hunting = None

    # -- inventory -----------------------------------------------------------------
    def inventory(self, *, service: str | None = None, q: str | None = None, status: str | None = None,
                  flag: str | None = None, details: bool = False) -> list[dict[str, Any]]:
        """Endpoint rows; ``flag`` keeps only ``unauthenticated`` (2xx
        without credentials) or ``sensitive`` (serving sensitive data) ones."""
        sig, snap = self._signed_snapshot()
        if snap is None:
            return []
        if details or service:
            rows = self._inventory_rows(snap, service, details)
        else:
            with self._lock:
                cached = self._rows if self._rows is not None and self._rows[0] == sig else None
            if cached is None:
                rows = self._inventory_rows(snap, None, False)
                with self._lock:
                    self._rows = (sig, rows)
            else:
                rows = cached[1]
        if q:
            needle = q.lower()
            rows = [r for r in rows if needle in f"{r['method']} {r['template']} {r['host']} {r['service']} {r['owner']}".lower()
                    or any(needle in s["class"].lower() for s in r["sensitive"])]
        if status:
            rows = [r for r in rows if r["status"] == status]
        if flag == "unauthenticated":
            rows = [r for r in rows if r["auth"]["unauthenticated_2xx"]]
        elif flag == "sensitive":
            rows = [r for r in rows if r["sensitive"]]
        elif flag:
            raise BadQuery("flag must be unauthenticated or sensitive")
        return rows

    def _inventory_rows(self, snap: dict[str, Any], service: str | None, details: bool) -> list[dict[str, Any]]:
        from apiward.config import ConfigError, load_settings

        inv = snap["inventory"]
        owners = None
        try:
            settings = load_settings(None, self.state)
            if settings.owners_file:
                from apiward.discover.owners import OwnersFile

                p = Path(settings.owners_file)
                owners = OwnersFile.load(p if p.is_absolute() or p.exists() else self.state / p)
        except (ConfigError, OSError, ValueError):
            owners = None
            settings = None
        if settings is not None and settings.spec and not inv.spec_source:
            # a spec configured but never diffed: status from it, as `apiward inventory` shows it (not saved)
            from apiward.discover.specdiff import apply, diff
            from apiward.discover.specs import SpecError

            try:
                apply(inv, diff(inv, settings.spec[0]))
            except (SpecError, OSError):
                pass  # the inventory still shows; `apiward spec diff` reports the spec's problem
        rows = inv.rows(owners=owners, findings=snap.get("findings", {}).values(), service=service, details=details)
        for r in rows:
            r["id"] = endpoint_id(r["host"], r["method"], r["template"])
        rows.sort(key=lambda r: (r["service"], r["template"], r["method"]))
        return rows

    def endpoint(self, ep_id: str) -> dict[str, Any]:
        row = next((r for r in self.inventory(details=True) if r["id"] == ep_id), None)
        if row is None:
            raise NotFound(f"no endpoint {ep_id}")
        name = f"{row['method']} {row['template']}"
        row["findings_list"] = [f for f in self.findings(endpoint_exact=name) if not f.get("host") or f.get("host") in ("", row["host"])]
        row["changes"] = [c for c in self.changes() if c["endpoint"] == name and c["host"] == row["host"]]
        return row

    def spec(self, service: str | None = None) -> dict[str, Any]:
        from apiward.discover.openapi import export

        snap = self.snapshot()
        if snap is None:
            raise NotFound("no apiward state yet")
        inv = snap["inventory"]
        if service is not None and not inv.records(service):
            raise NotFound(f"no endpoints for service {service!r}")
        return export(inv, service)

    def spec_diff(self, spec_text: bytes, service: str | None = None) -> dict[str, Any]:
        """The observed API against a spec (JSON or YAML); nothing is saved."""
        import tempfile

        from apiward.discover.specdiff import diff
        from apiward.discover.specs import SpecError, load_spec

        snap = self.snapshot()
        if snap is None:
            raise NotFound("no apiward state yet")
        suffix = ".json" if spec_text.lstrip()[:1] in (b"{", b"[") else ".yaml"
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
            tmp.write(spec_text)
            tmp.flush()
            try:
                loaded = load_spec(tmp.name)
                result = diff(snap["inventory"], loaded, service=service)
            except SpecError as exc:
                raise BadQuery(str(exc).replace(tmp.name, "the uploaded spec")) from None
        d = result.to_dict()
        d["counts"] = result.counts()
        return d

    # -- findings --------------------------------------------------------------------
    def findings(self, *, kind: str | None = None, status: str | None = None, severity: str | None = None,
                 detector: str | None = None, actor: str | None = None, endpoint: str | None = None,
                 endpoint_exact: str | None = None, q: str | None = None, limit: int | None = None,
                 ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Findings, most severe and newest first, each with its triage."""
        where, params = [], {}
        if kind:
            if kind not in KINDS:
                raise BadQuery(f"kind must be one of {', '.join(KINDS)}")
            where.append("kind = $kind")
            params["kind"] = kind
        if status and status not in STATUSES:
            raise BadQuery(f"status must be one of {', '.join(STATUSES)}")
        if severity:
            if severity not in SEVERITIES:
                raise BadQuery(f"severity must be one of {', '.join(SEVERITIES)}")
            where.append("list_position($sevs, severity) >= $sev")
            params["sev"] = SEVERITIES.index(severity) + 1
        if detector:
            where.append("(detector = $det OR detector LIKE $detp)")
            params["det"] = detector
            params["detp"] = detector.rstrip("*") + "%" if detector.endswith("*") else detector
        if actor:
            where.append("(actor ILIKE $actor OR actor_display ILIKE $actor)")
            params["actor"] = f"%{actor}%"
        if endpoint:
            where.append("endpoint ILIKE $ep")
            params["ep"] = f"%{endpoint}%"
        if endpoint_exact:
            where.append("endpoint = $epx")
            params["epx"] = endpoint_exact
        if q:
            where.append("(title ILIKE $q OR summary ILIKE $q OR detector ILIKE $q OR actor_display ILIKE $q OR endpoint ILIKE $q OR id = $qid)")
            params["q"] = f"%{q}%"
            params["qid"] = q
        if ids is not None:
            where.append("list_contains($ids, id)")
            params["ids"] = ids
        sql = "SELECT * EXCLUDE (date) FROM findings"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY list_position($sevs, severity) DESC, last_seen DESC, id"
        params["sevs"] = list(SEVERITIES)
        res = self.run(sql, params)
        tri = self.triage.all()
        out = []
        for row in res.dicts():
            d = {k: _iso(v) for k, v in row.items()}
            try:
                d["evidence"] = orjson.loads(d["evidence"]) if d.get("evidence") else {}
            except orjson.JSONDecodeError:
                pass
            d["triage"] = tri.get(d["id"], {"status": "open", "by": None, "at": None, "note": ""})
            if status and d["triage"]["status"] != status:
                continue
            out.append(d)
            if limit and len(out) >= limit:
                break
        return out

    def finding(self, fid: str, events: int = 50) -> dict[str, Any]:
        rows = self.findings(ids=[fid])
        if not rows:
            raise NotFound(f"no finding {fid}")
        f = rows[0]
        linked = self.run("SELECT DISTINCT event_id FROM finding_events WHERE finding_id = $f", {"f": fid}).rows
        ids = sorted(set(f.get("event_ids") or []) | {r[0] for r in linked})
        f["event_ids"] = ids
        ev = self.run(
            "SELECT id, ts, method, host, path, endpoint, status, client_ip, actor, user_agent, query, req_body, resp_body "
            "FROM calls WHERE list_contains($ids, id) ORDER BY ts LIMIT $n",
            {"ids": ids, "n": max(0, events)},
        ).dicts() if ids else []
        f["events_list"] = [{k: _iso(v) for k, v in e.items()} | {"query": _query_text(e.get("query"))} for e in ev]
        f["triage_history"] = self.triage.history(fid)
        return f

    # -- incidents, actors, changes ----------------------------------------------------
    def incidents(self) -> list[dict[str, Any]]:
        res = self.run("SELECT * EXCLUDE (date) FROM incidents ORDER BY last_seen DESC, id")
        return [{k: _iso(v) for k, v in r.items()} for r in res.dicts()]

    def clusters(self) -> Any:
        """Actor clusters over the whole lake, cached until the lake changes."""
        from apiward.hunt.actors import resolve

        sig = self.lake_sig()
        with self._lock:
            if self._clusters is not None and self._clusters[0] == sig:
                return self._clusters[1]
        for again in (False, True):
            try:
                with self.session(timeout=300.0) as s:
                    cl = resolve(s)
                break
            except HuntError:
                if again:
                    raise
                # a checkpoint replaced a findings or incidents day file
                # between the query's bind (footer read) and its scan: once
                # more over the lake as it is now, as run() does
                sig = self.lake_sig()
        with self._lock:
            self._clusters = (sig, cl)
        return cl

    def actors(self, limit: int | None = None) -> list[dict[str, Any]]:
        return [c.summary() for c in self.clusters().clusters[: limit or None]]

    def actor(self, needle: str) -> dict[str, Any]:
        c = self.clusters().find(needle)
        if c is None:
            raise NotFound(f"no actor {needle!r}")
        return c.to_dict()

    def report(self, needle: str) -> dict[str, Any]:
        from apiward.hunt.report import ReportNotFound, build_report

        def build() -> dict[str, Any]:
            with self.session(timeout=300.0) as s:
                s.clusters = self.clusters()
                try:
                    return build_report(self.state, needle, session=s)
                except ReportNotFound as exc:
                    raise NotFound(str(exc)) from None

        return self.cached(f"report:{needle}", build)

    def changes(self, limit: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * EXCLUDE (date) FROM changes ORDER BY ts DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        res = self.run(sql)
        return [{k: _iso(v) for k, v in r.items()} for r in res.dicts()]

    # -- overview ------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        """Traffic and findings per hour, riskiest endpoints and actors, posture counts."""
        def lake_part() -> tuple[Any, ...]:
            traffic = self.run(
                "SELECT epoch(time_bucket(INTERVAL 1 HOUR, ts))::BIGINT AS t, count(*) AS calls, "
                "count(*) FILTER (WHERE status >= 400) AS errors FROM calls GROUP BY 1 ORDER BY 1").rows
            found = self.run("SELECT epoch(time_bucket(INTERVAL 1 HOUR, first_seen))::BIGINT AS t, count(*) FROM findings GROUP BY 1 ORDER BY 1").rows
            sev = dict(self.run("SELECT severity, count(*) FROM findings GROUP BY 1").rows)
            kinds = dict(self.run("SELECT coalesce(kind, 'attack'), count(*) FROM findings GROUP BY 1").rows)
            return traffic, found, sev, kinds

        traffic, found, sev, kinds = self.cached("overview", lake_part)
        rows = self.inventory()
        posture = {
            "endpoints": sum(1 for r in rows if r["status"] != "orphan"),
            "shadow": sum(1 for r in rows if r["status"] == "shadow"),
            "zombie": sum(1 for r in rows if r["status"] == "zombie" or (r["deprecated"] and r["calls"])),
            "unauthenticated": sum(1 for r in rows if r["auth"]["unauthenticated_2xx"]),
            "sensitive": sum(1 for r in rows if r["sensitive"]),
            "unauthenticated_sensitive": sum(1 for r in rows if r["auth"]["unauthenticated_sensitive"]),
        }
        tri = self.triage.all()
        by_status = {s_: 0 for s_ in STATUSES}
        total = sum(sev.values())
        for t in tri.values():
            by_status[t["status"]] += 1
        by_status["open"] = total - sum(v for k, v in by_status.items() if k != "open")
        hours = sorted({t for t, *_ in traffic} | {t for t, _ in found})
        fmap = dict(found)
        tmap = {t: (c, e) for t, c, e in traffic}
        return {
            "series": {
                "t": hours,
                "calls": [tmap.get(h, (0, 0))[0] for h in hours],
                "errors": [tmap.get(h, (0, 0))[1] for h in hours],
                "findings": [fmap.get(h, 0) for h in hours],
            },
            "severity": {k: sev.get(k, 0) for k in reversed(SEVERITIES)},
            "kinds": kinds,
            "triage": by_status,
            "posture": posture,
            "riskiest_endpoints": sorted((r for r in rows if r["status"] != "orphan"), key=lambda r: -r["risk"])[:8],
            "riskiest_actors": self.actors(8),
            "findings": total,
        }

    # -- selftest ------------------------------------------------------------------------
    def selftest(self) -> dict[str, Any] | None:
        """The last self-test report saved in the state (``apiward selftest --state``)."""
        p = self.state / "selftest" / "report.json"
        if not p.exists():
            return None
        try:
            rep = orjson.loads(p.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise BadQuery(f"{p}: not valid JSON: {exc}") from None
        rep["saved_at"] = datetime.fromtimestamp(os.path.getmtime(p), tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return rep
