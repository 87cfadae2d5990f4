"""Post-mortem forensics: an incident report for an incident or an actor.

:func:`build_report` gathers, from the lake over a time range, what an
analyst writing a post-mortem needs: the summary, the kill-chain stages
reached (with what proved each), the timeline, the endpoints and objects
touched, the data exposed (sensitive classes and counts per endpoint, and
whose records: the owners named in the responses), requests and responses
as redacted evidence, the linked identities and related actors, and the
recommended fixes per OWASP API category. :func:`render_html` makes one
self-contained HTML file (inline CSS, the timeline drawn as inline SVG:
readable offline, nothing fetched); :func:`render_markdown` and the dict
itself (JSON) carry the same content.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from apiward import __version__
from apiward.hunt.actors import Cluster, Clusters, resolve
from apiward.hunt.session import HuntError, HuntSession
from apiward.hunt.timerange import TimeRange
from apiward.hunt.timerange import now as _now
from apiward.model.finding import severity_rank
from apiward.model.taxonomy import cwe_name, owasp_fixes, owasp_name, stage_index, tactic_name, technique

__all__ = ["build_report", "render_html", "render_markdown", "timeline_svg", "ReportNotFound"]

_OWNER = re.compile(r'"(user_id|owner_id|customer_id|username)"\s*:\s*"?([^",}\]]+)')
_OWN_CREDENTIALS = frozenset({"jwt", "session_token", "bearer_token", "api_key"})  # a caller's own new token: not exposure
SEV_COLOR = {"critical": "#7f1d1d", "high": "#dc2626", "medium": "#f59e0b", "low": "#0ea5e9", "info": "#94a3b8"}


class ReportNotFound(HuntError):
    """No incident or actor by that name in the range."""


def _iso(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _objects(template: str, path: str) -> list[tuple[str, str]]:
    t, p = template.strip("/").split("/"), path.strip("/").split("/")
    if len(t) != len(p):
        return []
    return [(ts[1:-1], ps) for ts, ps in zip(t, p) if ts.startswith("{") and ts.endswith("}")]


def _find(session: HuntSession, clusters: Clusters, needle: str) -> Cluster:
    c = clusters.find(needle)
    if c is not None:
        return c
    if needle.startswith("I-"):
        row = session.query("SELECT actor FROM incidents WHERE id = $i", {"i": needle}, trusted=True).rows
        if row:
            c = clusters.find(row[0][0])
            if c is not None:
                return c
    raise ReportNotFound(f"no incident or actor {needle!r} in the range; `apiward actors` lists them")


def build_report(state_dir: Path | str, needle: str, time_range: TimeRange | None = None, *, evidence_per_finding: int = 2,
                 body_chars: int = 1500, session: HuntSession | None = None) -> dict[str, Any]:
    """The report of the incident or actor ``needle`` as a JSON-able dict."""
    own = session is None
    hs = session or HuntSession(state_dir, time_range or TimeRange())
    try:
        clusters = getattr(hs, "clusters", None) or resolve(hs)
        hs.clusters = clusters
        c = _find(hs, clusters, needle)
        return _assemble(hs, clusters, c, evidence_per_finding, body_chars)
    finally:
        if own:
            hs.close()


def _assemble(hs: HuntSession, clusters: Clusters, c: Cluster, per_finding: int, body_chars: int) -> dict[str, Any]:
    q = lambda sql, p=None: hs.query(sql, p, trusted=True, timeout=max(hs.timeout, 120.0))  # noqa: E731
    ids = c.event_ids
    rows = q("""SELECT id, epoch(ts) AS ts, method, host, path, coalesce(template, path) AS template, status, actor, client_ip,
                       user_agent, resp_sensitive, resp_bytes, resp_body
                FROM _lake_calls WHERE id IN (SELECT unnest($e))""", {"e": ids or [""]}).dicts()
    own_users = {m.split(":", 1)[1] for m in c.members if m.startswith("user:") and m in {f["actor"] for f in c.findings}}
    endpoints: dict[str, dict[str, Any]] = {}
    objects: dict[str, set[str]] = defaultdict(set)
    exposed: dict[str, dict[str, Any]] = {}
    for r in rows:
        ep = f"{r['method']} {r['template']}"
        e = endpoints.setdefault(ep, {"endpoint": ep, "calls": 0, "statuses": Counter(), "first_seen": r["ts"], "last_seen": r["ts"]})
        e["calls"] += 1
        e["statuses"][str(r["status"])] += 1
        e["first_seen"], e["last_seen"] = min(e["first_seen"], r["ts"]), max(e["last_seen"], r["ts"])
        for name, val in _objects(r["template"], r["path"]):
            objects[f"{ep} {{{name}}}"].add(val)
        if r["resp_sensitive"] and r["status"] and 200 <= r["status"] < 300 and set(r["resp_sensitive"]) - _OWN_CREDENTIALS:
            x = exposed.setdefault(ep, {"endpoint": ep, "responses": 0, "bytes": 0, "classes": Counter(), "owners": set()})
            x["responses"] += 1
            x["bytes"] += r["resp_bytes"] or 0
            for cls in r["resp_sensitive"]:
                x["classes"][cls] += 1
            for field, val in _OWNER.findall(r["resp_body"] or ""):
                if val not in own_users:
                    x["owners"].add(f"{field}={val}")
    endpoints_out = sorted(
        ({**e, "statuses": dict(e["statuses"]), "first_seen": _iso(e["first_seen"]), "last_seen": _iso(e["last_seen"])} for e in endpoints.values()),
        key=lambda e: -e["calls"],
    )
    exposed_out = sorted(
        ({"endpoint": x["endpoint"], "responses": x["responses"], "bytes": x["bytes"], "classes": dict(x["classes"].most_common()),
          "other_principals": len(x["owners"]), "records_of": sorted(x["owners"])[:50]} for x in exposed.values()),
        key=lambda x: -x["responses"],
    )
    # evidence: the first events of each finding, redacted as stored
    ev_ids: list[str] = []
    for f in c.findings:
        ev_ids += list(f["event_ids"] or [])[:per_finding]
    ev_ids = list(dict.fromkeys(ev_ids))[:60]
    ev = q("""SELECT id, epoch(ts) AS ts, method, scheme, host, path, query, status, actor, client_ip, user_agent, req_headers,
                     req_body, resp_body, resp_sensitive FROM _lake_calls WHERE id IN (SELECT unnest($e)) ORDER BY ts""",
           {"e": ev_ids or [""]}).dicts()
    by_event = {e["id"]: e for e in ev}
    evidence = []
    for f in c.findings:
        for eid in list(f["event_ids"] or [])[:per_finding]:
            e = by_event.get(eid)
            if e is None:
                continue
            evidence.append({
                "finding": f["id"], "detector": f["detector"], "event": eid, "time": _iso(e["ts"]), "actor": e["actor"],
                "client_ip": e["client_ip"], "request": f"{e['method']} {e['path']}" + (f" {e['query']}" if e["query"] else ""),
                "request_headers": (e["req_headers"] or "")[:body_chars], "request_body": (e["req_body"] or "")[:body_chars],
                "status": e["status"], "response_body": (e["resp_body"] or "")[:body_chars], "response_sensitive": e["resp_sensitive"] or [],
            })
    # related actors: other clusters sharing an address, device or agent; refused links
    mine = {(i.kind, i.value) for i in c.identities if i.kind in ("ip", "device", "token")}
    related = []
    for other in clusters.clusters:
        if other.key == c.key:
            continue
        shared = sorted({f"{i.kind}:{i.value}" for i in other.identities if (i.kind, i.value) in mine})
        if shared:
            related.append({"actor": other.key, "display": other.display, "risk": other.risk, "shared": shared[:10]})
    for lk in c.refused:
        other = lk.b if lk.a in c.members else lk.a
        related.append({"actor": other, "display": other, "risk": None, "shared": [], "why_not_linked": lk.refused,
                        "evidence": lk.evidence})
    # fixes per OWASP category
    cats: dict[str, dict[str, Any]] = {}
    for f in c.findings:
        cat = f["owasp"] or ""
        if not cat:
            continue
        d = cats.setdefault(cat, {"category": cat, "name": owasp_name(cat), "findings": 0, "detectors": set(), "cwe": set(), "fixes": owasp_fixes(cat)})
        d["findings"] += 1
        d["detectors"].add(f["detector"])
        if f["cwe"]:
            d["cwe"].add(f"{f['cwe']} {cwe_name(f['cwe'])}")
    fixes = [{**d, "detectors": sorted(d["detectors"]), "cwe": sorted(d["cwe"])} for d in sorted(cats.values(), key=lambda d: d["category"])]
    techniques = sorted({(f["attack"], (technique(f["attack"]) or {}).get("name", "")) for f in c.findings if f["attack"]})
    stages = [{"stage": s, "name": tactic_name(s), "evidence": c.stage_evidence.get(s, ""),
               "first_time": next((e["time"] for e in c.timeline if e["kind"] == "stage" and e["stage"] == s), "")} for s in c.stages]
    sev_counts = Counter(f["severity"] for f in c.findings)
    return {
        "report": "apiward incident report",
        "generated": _iso(_now()),
        "apiward_version": __version__,
        "range": dict(zip(("since", "until"), hs.range.iso())) if hs.range.bounded else {"since": "all", "until": "all"},
        "actor": c.key,
        "display": c.display,
        "incidents": c.incidents,
        "summary": {
            "risk": c.risk, "severity": c.severity, "stage": c.stage, "stage_name": tactic_name(c.stage) if c.stage else "",
            "stages": c.stages, "first_seen": _iso(c.first_seen), "last_seen": _iso(c.last_seen),
            "findings": len(c.findings), "findings_by_severity": dict(sorted(sev_counts.items(), key=lambda kv: -severity_rank(kv[0]))),
            "calls": len(ids), "identities": len(c.identities), "members": c.members,
            "endpoints": len(endpoints_out), "objects": sum(len(v) for v in objects.values()),
            "sensitive_responses": sum(x["responses"] for x in exposed_out),
            "other_principals_exposed": len({o for x in exposed.values() for o in x["owners"]}),
            "techniques": [f"{t} {n}".strip() for t, n in techniques],
            "text": _summary_text(c, len(ids), exposed_out),
        },
        "stages": stages,
        "timeline": c.timeline,
        "findings": [
            {k: f.get(k) for k in ("id", "detector", "title", "severity", "confidence", "stage", "owasp", "attack", "cwe", "actor",
                                   "endpoint", "events", "summary", "origin")} | {"first_seen": _iso(f["first_seen"]), "last_seen": _iso(f["last_seen"])}
            for f in c.findings
        ],
        "endpoints": endpoints_out,
        "objects": [{"parameter": k, "count": len(v), "values": sorted(v, key=lambda s: (len(s), s))[:100]} for k, v in sorted(objects.items())],
        "data_exposed": exposed_out,
        "evidence": evidence,
        "identities": [i.to_dict() for i in c.identities],
        "links": [lk.to_dict() for lk in c.links],
        "related_actors": related,
        "fixes": fixes,
    }


def _summary_text(c: Cluster, calls: int, exposed: list[dict[str, Any]]) -> str:
    who = c.display
    span = f"{_iso(c.first_seen)} to {_iso(c.last_seen)}"
    parts = [f"{who} made {calls} calls from {span} and reached {tactic_name(c.stage).lower() if c.stage else 'no stage'}"
             f" ({len(c.stages)} stage(s): {', '.join(c.stages)})."]
    if len(c.members) > 1:
        parts.append(f"It used {len(c.members)} identities ({', '.join(c.members)}).")
    if exposed:
        n = sum(x["responses"] for x in exposed)
        owners = sum(x["other_principals"] for x in exposed)
        parts.append(f"{n} responses carrying sensitive data reached it" + (f", with records of {owners} other principal(s)." if owners else "."))
    parts.append(f"Risk {c.risk}/100, highest severity {c.severity}.")
    return " ".join(parts)


# -- rendering -------------------------------------------------------------------------

def timeline_svg(report: dict[str, Any], width: int = 960) -> str:
    """The timeline as inline SVG: one lane per kill-chain stage reached,
    a bar per finding (its first to last event, coloured by severity),
    diamonds for identity links. No script, no external resource."""
    from html import escape

    tl = report["timeline"]
    lanes = sorted({e["stage"] for e in tl if e.get("stage")}, key=stage_index)
    has_links = any(e["kind"] == "link" for e in tl)
    rows = lanes + (["links"] if has_links else [])
    if not tl or not rows:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    t0 = min(e["ts"] for e in tl)
    t1 = max(max(e["ts"], e.get("end", e["ts"])) for e in tl)
    if t1 - t0 < 60:
        t1 = t0 + 60
    left, right, top, lane_h = 170, 20, 24, 30
    h = top + lane_h * len(rows) + 40
    span = width - left - right
    x = lambda t: left + (t - t0) / (t1 - t0) * span  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" viewBox="0 0 {width} {h}" role="img" '
           f'aria-label="timeline" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">']
    out.append(f'<rect x="0" y="0" width="{width}" height="{h}" fill="#ffffff"/>')
    for i, lane in enumerate(rows):
        y = top + i * lane_h
        out.append(f'<rect x="{left}" y="{y}" width="{span}" height="{lane_h - 4}" fill="{"#f8fafc" if i % 2 else "#f1f5f9"}"/>')
        label = "identity links" if lane == "links" else tactic_name(lane)
        out.append(f'<text x="{left - 8}" y="{y + lane_h / 2 + 2}" text-anchor="end" fill="#0f172a">{escape(label)}</text>')
    # axis ticks
    for k in range(6):
        t = t0 + (t1 - t0) * k / 5
        xx = x(t)
        yb = top + lane_h * len(rows)
        out.append(f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{yb}" stroke="#cbd5e1" stroke-dasharray="2,3"/>')
        lab = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%m-%d %H:%M")
        out.append(f'<text x="{xx:.1f}" y="{yb + 16}" text-anchor="middle" fill="#475569">{lab}</text>')
    out.append(f'<text x="{left + span}" y="{top + lane_h * len(rows) + 32}" text-anchor="end" fill="#64748b">UTC</text>')
    for e in tl:
        if e["kind"] == "finding":
            i = rows.index(e["stage"])
            y = top + i * lane_h + 5
            x0, x1 = x(e["ts"]), x(e.get("end", e["ts"]))
            w = max(4.0, x1 - x0)
            col = SEV_COLOR.get(e.get("severity", ""), "#64748b")
            out.append(f'<rect x="{x0:.1f}" y="{y}" width="{w:.1f}" height="{lane_h - 14}" rx="2" fill="{col}" fill-opacity="0.85">'
                       f'<title>{escape(e["time"])} {escape(e["title"])}: {escape(str(e.get("detail", ""))[:200])}</title></rect>')
        elif e["kind"] == "stage":
            i = rows.index(e["stage"])
            y = top + i * lane_h + (lane_h - 4) / 2
            xx = x(e["ts"])
            out.append(f'<circle cx="{xx:.1f}" cy="{y:.1f}" r="3" fill="#0f172a"><title>{escape(e["title"])}</title></circle>')
        elif e["kind"] == "link" and has_links:
            i = rows.index("links")
            y = top + i * lane_h + (lane_h - 4) / 2
            xx = x(e["ts"])
            out.append(f'<path d="M{xx:.1f},{y - 7:.1f} L{xx + 7:.1f},{y:.1f} L{xx:.1f},{y + 7:.1f} L{xx - 7:.1f},{y:.1f} Z" fill="#7c3aed">'
                       f'<title>{escape(e["title"])}</title></path>')
    out.append("</svg>")
    return "".join(out)


def render_html(report: dict[str, Any]) -> str:
    import jinja2

    text = resources.files("apiward.hunt").joinpath("templates", "report.html").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["sevcolor"] = lambda s: SEV_COLOR.get(s, "#64748b")
    return env.from_string(text).render(r=report, svg=timeline_svg(report), css=_CSS)


def render_markdown(report: dict[str, Any]) -> str:
    r, s = report, report["summary"]
    out = [f"# Incident report: {r['display']}", "",
           f"Actor `{r['actor']}`" + (f", incidents {', '.join(r['incidents'])}" if r["incidents"] else "") +
           f". Range {r['range']['since']} .. {r['range']['until']}. Generated {r['generated']} by apiward {r['apiward_version']}.", "",
           "## Summary", "", s["text"], "",
           f"| risk | severity | furthest stage | findings | calls | endpoints | objects | sensitive responses | other principals |",
           "|---|---|---|---|---|---|---|---|---|",
           f"| {s['risk']} | {s['severity']} | {s['stage_name']} | {s['findings']} | {s['calls']} | {s['endpoints']} | {s['objects']} | "
           f"{s['sensitive_responses']} | {s['other_principals_exposed']} |", "",
           "## Stages reached", ""]
    for st in r["stages"]:
        out.append(f"- **{st['name']}** ({st['first_time']}): {st['evidence']}")
    out += ["", "## Timeline", ""]
    for e in r["timeline"]:
        if e["kind"] in ("stage", "identity", "signup"):
            continue
        out.append(f"- `{e['time']}` {e['kind']}: {e['title']}" + (f" -- {e.get('detail', '')[:160]}" if e.get("detail") else ""))
    out += ["", "## Findings", "", "| id | detector | severity | stage | OWASP | ATT&CK | endpoint | events |", "|---|---|---|---|---|---|---|---|"]
    for f in r["findings"]:
        out.append(f"| {f['id']} | {f['detector']} | {f['severity']} | {f['stage']} | {f['owasp']} | {f['attack']} | {f['endpoint']} | {f['events']} |")
    out += ["", "## Endpoints touched", "", "| endpoint | calls | statuses | first | last |", "|---|---|---|---|---|"]
    for e in r["endpoints"]:
        out.append(f"| {e['endpoint']} | {e['calls']} | {', '.join(f'{k}: {v}' for k, v in e['statuses'].items())} | {e['first_seen']} | {e['last_seen']} |")
    out += ["", "## Objects touched", ""]
    for o in r["objects"]:
        out.append(f"- {o['parameter']}: {o['count']} ({', '.join(o['values'][:20])}{' ...' if o['count'] > 20 else ''})")
    out += ["", "## Data exposed", "", "| endpoint | responses | classes | other principals | records of |", "|---|---|---|---|---|"]
    for x in r["data_exposed"]:
        out.append(f"| {x['endpoint']} | {x['responses']} | {', '.join(f'{k} {v}' for k, v in x['classes'].items())} | "
                   f"{x['other_principals']} | {', '.join(x['records_of'][:10])}{' ...' if len(x['records_of']) > 10 else ''} |")
    out += ["", "## Linked identities", "", "| identity | confidence | evidence | first | last | calls |", "|---|---|---|---|---|---|"]
    for i in r["identities"]:
        out.append(f"| `{i['identity']}` | {i['confidence']} | {i['evidence']} | {i['first_seen']} | {i['last_seen']} | {i['calls']} |")
    if r["links"]:
        out += ["", "Links:", ""]
        for lk in r["links"]:
            out.append(f"- {lk['kind']} `{lk['from']}` -> `{lk['to']}` (confidence {lk['confidence']}, {lk['ts']})")
    if r["related_actors"]:
        out += ["", "## Related actors", ""]
        for a in r["related_actors"]:
            out.append(f"- `{a['actor']}`" + (f" shares {', '.join(a['shared'])}" if a["shared"] else "") +
                       (f" (not linked: {a['why_not_linked']})" if a.get("why_not_linked") else ""))
    out += ["", "## Evidence (redacted as stored)", ""]
    for e in r["evidence"]:
        out += [f"### {e['event']} ({e['detector']}, {e['time']})", "", "```http", f"{e['request']}", e["request_body"] or "", "```",
                "", f"Response {e['status']}:", "", "```json", e["response_body"] or "", "```", ""]
    out += ["## Recommended fixes", ""]
    for fx in r["fixes"]:
        out.append(f"### {fx['category']} {fx['name']}")
        out.append("")
        out.append(f"Findings: {fx['findings']} ({', '.join(fx['detectors'])}); weaknesses: {', '.join(fx['cwe']) or '-'}.")
        out.append("")
        out += [f"- {t}" for t in fx["fixes"]]
        out.append("")
    return "\n".join(out) + "\n"


_CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:0;color:#0f172a;background:#f8fafc;font-size:14px;line-height:1.45}
header{background:#0f172a;color:#f8fafc;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}header .sub{color:#cbd5e1;font-size:12px}
main{padding:18px 28px;max-width:1100px}section{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:14px 18px;margin:0 0 16px}
h2{font-size:17px;margin:0 0 10px}table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{border-bottom:1px solid #e2e8f0;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f1f5f9}.kpis{display:flex;flex-wrap:wrap;gap:10px;margin-top:10px}.kpi{border:1px solid #e2e8f0;border-radius:6px;padding:8px 12px;min-width:110px;background:#fff}
.kpi b{display:block;font-size:20px}.kpi span{color:#475569;font-size:11px}.sev{color:#fff;border-radius:3px;padding:1px 6px;font-size:11px}
.stages{display:flex;flex-wrap:wrap;gap:6px}.stage{background:#1e293b;color:#fff;border-radius:14px;padding:3px 10px;font-size:12px}
pre{background:#0f172a;color:#e2e8f0;padding:8px 10px;border-radius:4px;white-space:pre-wrap;word-break:break-all;font-size:11.5px;margin:4px 0}
code{font-size:12px}.muted{color:#64748b}details{margin:6px 0}
"""
