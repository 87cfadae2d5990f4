"""Retro-hunting: today's detectors over the calls stored in the lake.

A detection shipped (or enabled) today should find last month's attack.
:func:`retro_hunt` replays the lake's calls of a time range, in time order,
through a scratch :class:`~apiward.pipeline.Pipeline` holding only the
chosen detectors (fresh state: they learn the range as they go, score
before learn, as live). Calls are rebuilt from their lake rows: redacted
headers and bodies (tokens stand for secrets, so equal values still
compare), the actor as resolved when the call was stored, and the
template as the live inventory named it (so endpoint names, finding keys
and ids match live findings).

Findings come back **marked as retro** (``origin = 'retro'`` and the run id
in the lake) and **deduplicated against live ones**: a retro finding whose
id a live finding already has, or whose events are mostly (``overlap``) in
a live finding of the same detector, is dropped as already known. A
second retro run over the same range updates its own findings in place.

Files: ``lake/findings/date=D/retro.parquet`` (rewritten per day; the live
pipeline never touches it) and ``lake/finding_events/date=D/part-retro-<run>.parquet``.

Cost: the pipeline's own speed (thousands of calls per second per core)
plus reading the range from the lake; the scratch state lives in a
temporary folder and is deleted afterwards.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from apiward.hunt.session import HuntSession
from apiward.hunt.timerange import TimeRange
from apiward.ingest.base import make_request, make_response
from apiward.lake.calls import day_of
from apiward.lake.findings import FINDINGS_SCHEMA, finding_events_table, findings_table
from apiward.lake.query import FINDINGS_EXTRA
from apiward.model.call import Actor, ApiCall, Peer, Workload
from apiward.model.finding import Finding

__all__ = ["retro_hunt", "RetroResult", "call_from_row", "RETRO_SCHEMA"]

RETRO_SCHEMA = pa.schema(list(FINDINGS_SCHEMA) + list(FINDINGS_EXTRA))

_COLS = ("id, epoch(ts) AS ts, source, method, scheme, host, path, template, service, query, status, duration_ms, "
         "req_bytes, resp_bytes, req_headers, resp_headers, req_body, resp_body, actor, actor_kind, actor_user, client_ip, "
         "user_agent, auth_scheme, jwt_alg, token_id, src_ip, dst_ip, dst_port, namespace, pod, request_id")


@dataclass
class RetroResult:
    run: str
    detectors: list[str]
    calls: int = 0
    found: int = 0
    kept: int = 0
    known_live: int = 0
    updated_retro: int = 0
    seconds: float = 0.0
    findings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("run", "detectors", "calls", "found", "kept", "known_live", "updated_retro", "seconds", "findings")}


def _pairs(text: str | None) -> list[tuple[str, str]]:
    if not text:
        return []
    try:
        return [(str(k), str(v)) for k, v in orjson.loads(text)]
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return []


def call_from_row(r: dict[str, Any]) -> ApiCall:
    """An :class:`ApiCall` from a lake row (as :data:`_COLS` selects it)."""
    req_body = (r["req_body"] or "").encode()
    request = make_request(
        method=r["method"] or "GET", path=r["path"] or "/", query=_pairs(r["query"]), headers=_pairs(r["req_headers"]),
        body=req_body, scheme=r["scheme"] or "http", host=r["host"] or "", body_size=r["req_bytes"] or len(req_body),
    )
    response = None
    if r["status"] is not None:
        body = (r["resp_body"] or "").encode()
        response = make_response(status=int(r["status"]), headers=_pairs(r["resp_headers"]), body=body,
                                 body_size=r["resp_bytes"] or len(body))
    actor = Actor(
        key=r["actor"] or "", kind=r["actor_kind"] or "", user=r["actor_user"] or "", ip=r["client_ip"] or "",
        user_agent=r["user_agent"] or "", auth_scheme=r["auth_scheme"] or "", jwt_alg=r["jwt_alg"] or "", token_id=r["token_id"] or "",
    )
    return ApiCall(
        id=r["id"], ts=float(r["ts"]), duration_ms=r["duration_ms"], request=request, response=response,
        src=Peer(ip=r["src_ip"] or ""), dst=Peer(ip=r["dst_ip"] or "", port=int(r["dst_port"] or 0)),
        workload=Workload(namespace=r["namespace"] or "", service=r["service"] or "", pod=r["pod"] or "", route=r["template"] or ""),
        actor=actor, source=r["source"] or "", request_id=r["request_id"] or "",
    )


def retro_hunt(
    state_dir: Path | str,
    time_range: TimeRange | None = None,
    *,
    detectors: list[str] | None = None,
    settings: Any = None,
    batch_size: int = 2000,
    overlap: float = 0.5,
    progress: Callable[[int], None] | None = None,
) -> RetroResult:
    """Replay ``time_range`` through ``detectors`` (default: the ones the
    configuration enables) and write the new findings to the lake."""
    from apiward.config import load_settings
    from apiward.detect.registry import build_detectors, detector_ids
    from apiward.pipeline import Pipeline

    t0 = time.perf_counter()
    state = Path(state_dir)
    settings = settings or load_settings(state_dir=state)
    if detectors:
        unknown = set(detectors) - set(detector_ids())
        if unknown:
            raise ValueError(f"unknown detector(s) {', '.join(sorted(unknown))}; known: {', '.join(detector_ids())}")
        ids = list(detectors)
        dets = build_detectors(ids, None, {k: v for k, v in settings.detector_options.items() if k in ids})
    else:
        dets = build_detectors(settings.detectors or None, settings.disable_detectors, settings.detector_options)
        ids = [d.id for d in dets]
    tr = time_range or TimeRange()
    run = hashlib.blake2b(f"{time.time_ns()}|{','.join(ids)}|{tr!r}".encode(), digest_size=4).hexdigest()
    result = RetroResult(run=run, detectors=ids)
    scratch = Path(tempfile.mkdtemp(prefix="apiward-retro-"))
    try:
        pipe = Pipeline(scratch, mode="both", settings=settings, detectors=dets)
        with HuntSession(state, tr, timeout=0) as hs:
            reader = hs.con.sql(f"SELECT {_COLS} FROM _lake_calls ORDER BY ts, id").to_arrow_reader(batch_size)
            n = 0
            for rb in reader:
                rows = rb.to_pylist()
                calls = [call_from_row(r) for r in rows]
                pipe.process(calls, batch_key=f"retro-{n:09d}", autocheckpoint=False)
                n += len(calls)
                if progress is not None:
                    progress(len(calls))
            result.calls = n
        pipe.flush_pending()
        pipe._write_finding_events(f"flush-{run}")
        found = list(pipe.findings.values())
        result.found = len(found)
        events = _scratch_events(scratch / "lake")
        kept = _dedupe_and_write(state / "lake", found, events, run, overlap, result)
        result.findings = [{"id": f.id, "detector": f.detector, "actor": f.actor, "endpoint": f.endpoint, "severity": f.severity,
                            "events": f.events, "first_seen": f.first_seen, "last_seen": f.last_seen, "summary": f.summary} for f in kept]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def _scratch_events(lake: Path) -> dict[str, list[tuple[str, str, float, str, str, str]]]:
    out: dict[str, list[tuple[str, str, float, str, str, str]]] = defaultdict(list)
    for f in sorted((lake / "finding_events").glob("date=*/*.parquet")):
        t = pq.read_table(f, columns=["finding_id", "event_id", "ts", "detector", "kind", "actor"])
        d = t.to_pydict()
        for fid, eid, ts, det, kind, actor in zip(d["finding_id"], d["event_id"], d["ts"], d["detector"], d["kind"], d["actor"]):
            out[fid].append((fid, eid, ts.timestamp(), det, kind, actor))
    return out


def _dedupe_and_write(lake: Path, found: list[Finding], events: dict[str, list[tuple]], run: str, overlap: float,
                      result: RetroResult) -> list[Finding]:
    import duckdb

    from apiward.lake.query import lake_files

    con = duckdb.connect(":memory:")
    live_files = [f for f in lake_files(lake, "findings") if not f.endswith("retro.parquet")]
    retro_files = [f for f in lake_files(lake, "findings") if f.endswith("retro.parquet")]
    live_ids: set[str] = set()
    live_events: dict[str, set[str]] = defaultdict(set)  # detector -> events in its live findings
    if live_files:
        listing = ", ".join("'" + f.replace("'", "''") + "'" for f in live_files)
        for fid, det in con.execute(f"SELECT id, detector FROM read_parquet([{listing}], union_by_name=true)").fetchall():
            live_ids.add(fid)
        ev_files = [f for f in lake_files(lake, "finding_events") if "part-retro-" not in f]
        if ev_files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in ev_files)
            for det, eid in con.execute(f"SELECT DISTINCT detector, event_id FROM read_parquet([{listing}], union_by_name=true)").fetchall():
                live_events[det].add(eid)
    old_retro: dict[str, dict[str, Any]] = {}
    for f in retro_files:
        for row in pq.read_table(f).to_pylist():
            old_retro[row["id"]] = row
    kept: list[Finding] = []
    new_event_rows: list[tuple] = []
    for f in sorted(found, key=lambda f: (f.first_seen, f.id)):
        evs = [e[1] for e in events.get(f.id, [])] or list(f.event_ids)
        if f.id in live_ids:
            result.known_live += 1
            continue
        le = live_events.get(f.detector)
        if le and evs and sum(1 for e in evs if e in le) >= overlap * len(evs):
            result.known_live += 1
            continue
        if f.id in old_retro:
            result.updated_retro += 1
        else:
            new_event_rows.extend(events.get(f.id, []))
        kept.append(f)
    result.kept = len(kept) - result.updated_retro
    if not kept:
        return kept
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    kept_ids = {f.id for f in kept}
    for fid, row in old_retro.items():
        if fid not in kept_ids:
            by_day[day_of(row["first_seen"].timestamp())].append(row)
    table = findings_table(kept)
    for row in table.to_pylist():
        row["origin"] = "retro"
        row["retro_run"] = run
        by_day[day_of(row["first_seen"].timestamp())].append(row)
    from apiward.lake.store import Lake

    store = Lake(lake)
    for day, rows in by_day.items():
        store._atomic_write(pa.Table.from_pylist(rows, schema=RETRO_SCHEMA), lake / "findings" / f"date={day}" / "retro.parquet")
    if new_event_rows:
        store.write_partitioned("finding_events", finding_events_table(new_event_rows), f"retro-{run}")
    return kept
