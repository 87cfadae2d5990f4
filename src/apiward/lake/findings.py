"""The findings and incidents tables (small; rewritten per day as they change)."""

from __future__ import annotations

from collections import defaultdict

import orjson
import pyarrow as pa

from apiward.lake.calls import day_of
from apiward.model.finding import Finding

__all__ = ["FINDINGS_SCHEMA", "findings_by_day", "INCIDENTS_SCHEMA", "FINDING_EVENTS_SCHEMA", "finding_events_table"]

FINDINGS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("detector", pa.string()),
        ("title", pa.string()),
        ("kind", pa.string()),
        ("severity", pa.string()),
        ("confidence", pa.float64()),
        ("owasp", pa.string()),
        ("attack", pa.string()),
        ("tactic", pa.string()),
        ("cwe", pa.string()),
        ("actor", pa.string()),
        ("actor_display", pa.string()),
        ("service", pa.string()),
        ("host", pa.string()),
        ("endpoint", pa.string()),
        ("event_ids", pa.list_(pa.string())),
        ("first_seen", pa.timestamp("us", tz="UTC")),
        ("last_seen", pa.timestamp("us", tz="UTC")),
        ("count", pa.int64()),
        ("events", pa.int64()),
        ("summary", pa.string()),
        ("evidence", pa.string()),
        ("incident", pa.string()),
    ]
)

#: Every event a finding rests on (findings themselves keep only the first
#: ``MAX_EVENT_IDS``): one row per (finding, event), appended per batch.
FINDING_EVENTS_SCHEMA = pa.schema(
    [
        ("finding_id", pa.string()),
        ("event_id", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("detector", pa.string()),
        ("kind", pa.string()),
        ("actor", pa.string()),
    ]
)

INCIDENTS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("actor", pa.string()),
        ("actor_display", pa.string()),
        ("severity", pa.string()),
        ("finding_ids", pa.list_(pa.string())),
        ("tactics", pa.list_(pa.string())),
        ("first_seen", pa.timestamp("us", tz="UTC")),
        ("last_seen", pa.timestamp("us", tz="UTC")),
        ("summary", pa.string()),
    ]
)


def findings_table(findings: list[Finding]) -> pa.Table:
    cols: dict[str, list] = {n: [] for n in FINDINGS_SCHEMA.names}
    for f in findings:
        for n in FINDINGS_SCHEMA.names:
            v = getattr(f, n)
            if n in ("first_seen", "last_seen"):
                v = int(v * 1_000_000)
            elif n == "evidence":
                v = orjson.dumps(v, default=str).decode()
            cols[n].append(v)
    return pa.Table.from_pydict(cols, schema=FINDINGS_SCHEMA)


def findings_by_day(findings: list[Finding]) -> dict[str, pa.Table]:
    """Findings grouped by UTC day of ``first_seen``, as tables."""
    groups: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        groups[day_of(f.first_seen)].append(f)
    return {d: findings_table(fs) for d, fs in groups.items()}


def incidents_by_day(incidents: list[dict]) -> dict[str, pa.Table]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for inc in incidents:
        groups[day_of(inc["first_seen"])].append(inc)
    out = {}
    for d, rows in groups.items():
        cols: dict[str, list] = {n: [] for n in INCIDENTS_SCHEMA.names}
        for r in rows:
            for n in INCIDENTS_SCHEMA.names:
                v = r[n]
                if n in ("first_seen", "last_seen"):
                    v = int(v * 1_000_000)
                cols[n].append(v)
        out[d] = pa.Table.from_pydict(cols, schema=INCIDENTS_SCHEMA)
    return out


def finding_events_table(rows: list[tuple[str, str, float, str, str, str]]) -> pa.Table:
    """``(finding id, event id, ts, detector, kind, actor)`` rows as a table."""
    cols = list(zip(*rows)) if rows else [()] * 6
    return pa.Table.from_arrays(
        [
            pa.array(cols[0], pa.string()),
            pa.array(cols[1], pa.string()),
            pa.array([int(t * 1_000_000) for t in cols[2]], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            pa.array(cols[3], pa.string()),
            pa.array(cols[4], pa.string()),
            pa.array(cols[5], pa.string()),
        ],
        schema=FINDING_EVENTS_SCHEMA,
    )
