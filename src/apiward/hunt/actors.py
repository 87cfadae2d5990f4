"""Attacker tracking: entity resolution, kill-chain stages, risk, timeline.

An attacker rarely stays one identity: it brute-forces from one address,
logs in from another, uses the stolen session with a new device, signs up
accounts of its own. :func:`resolve` starts from the actors that have
attack findings (the *seeds*) and links identities into **actor clusters**,
each link with its evidence and a confidence:

=====================  ==========  =================================================
link                   confidence  evidence
=====================  ==========  =================================================
``token_issued``       0.95        a login by actor A returned a token (redacted
                                   ``«jwt:<d>»``) that actor B then used
                                   (``token_id`` ``<d>``): A and B are one party
``shared_token``       0.9         one credential used by two actor keys
``account_takeover``   0.6         A brute-forced an account and got in; within
                                   ``ato_window`` B logged into the same account
                                   from another address with a device the account
                                   had not used
``device``             0.75/0.6    same device fingerprint (header names and
                                   order, agent, languages) from the same address
                                   within ``device_window`` (0.6 when the agent is
                                   common: ``common_agent`` actors or more use it)
=====================  ==========  =================================================

Never merged on a shared address or a common user agent alone: a
``device`` link needs the same device fingerprint *and* an address that is
not shared (fewer than ``nat_agents`` distinct agents and ``nat_users``
principals on it in the range: a carrier or office NAT) *and* closeness in
time; on a shared address it links only two actors that each have attack
findings. A login from a shared address stands for that one login
(``ip:<addr>#<event>``), so neighbours behind one NAT never merge through
it. Refused links are kept with the reason, for the analyst. Token and
account links do not rest on addresses at all.

A user actor that is only *reached* through a link (a victim's account the
attacker logged into) joins as a session: only the calls made with the
linked token are the attacker's, never the victim's own.

Each finding is placed on a kill-chain stage (:mod:`apiward.model.taxonomy`);
the lake adds stages no single detector sees: ``resource-development``
(the cluster created an account), ``initial-access`` (a login it obtained
was used), ``exfiltration`` (sensitive data left to it in volume after a
collection finding). Risk rises with severity, confidence and stage, and
halves every ``half_life_days`` since the cluster was last seen.

Cost: a handful of queries, each a scan of the range's calls filtered by
actor, token or address; Python work is proportional to the seeds'
footprint (their calls), not to the lake.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from apiward.hunt.timerange import now as _now
from apiward.model.finding import SEVERITIES, severity_rank
from apiward.model.taxonomy import KILL_CHAIN, stage_index, stage_of

if TYPE_CHECKING:
    from apiward.hunt.session import HuntSession

__all__ = ["resolve", "Clusters", "Cluster", "Link", "Identity", "device_fingerprint", "LINK_CONFIDENCE"]

LINK_CONFIDENCE = {"token_issued": 0.95, "shared_token": 0.9, "device": 0.75, "device_common_agent": 0.6, "account_takeover": 0.6}
SEVERITY_WEIGHT = {"info": 1.0, "low": 3.0, "medium": 6.0, "high": 10.0, "critical": 15.0}

# Headers whose presence or value changes per request or per hop: not part
# of what a client's software looks like.
_VOLATILE = frozenset({
    "x-request-id", "x-forwarded-for", "forwarded", "x-real-ip", "content-length", "content-type", "cookie",
    "authorization", "host", "x-apiward-sim-ts", "traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid",
    "x-amzn-trace-id", "if-none-match", "if-modified-since", "referer", "origin", "x-csrf-token", "x-api-key",
})
_DEVICE_VALUES = ("user-agent", "accept", "accept-language", "accept-encoding", "sec-ch-ua", "sec-ch-ua-platform")
_ACCOUNT = re.compile(r'"(?:username|email|login|user|user_name|account)"\s*:\s*"((?:[^"\\]|\\.)*)"', re.I)
_ISSUED = r"«(?:jwt|secret):([0-9a-f]+)»"


def device_fingerprint(headers_json: str | None) -> str:
    """``dev:<hex>`` from a call's (redacted) header list: names in order
    without per-request ones, plus the values that describe the client."""
    if not headers_json:
        return ""
    try:
        headers = orjson.loads(headers_json)
    except orjson.JSONDecodeError:
        return ""
    names = []
    vals = {}
    for pair in headers:
        if not isinstance(pair, list) or len(pair) != 2:
            continue
        k = str(pair[0]).lower()
        if k in _VOLATILE or k.startswith("x-apiward"):
            continue
        names.append(k)
        if k in _DEVICE_VALUES:
            vals[k] = str(pair[1])
    if not names:
        return ""
    raw = "|".join(names) + "\x1f" + "\x1f".join(f"{k}={vals.get(k, '')}" for k in _DEVICE_VALUES)
    return "dev:" + hashlib.blake2b(raw.encode(), digest_size=5).hexdigest()


@dataclass
class Link:
    a: str
    b: str
    kind: str
    confidence: float
    ts: float
    evidence: dict[str, Any] = field(default_factory=dict)
    refused: str = ""  # why it was not made ("" = made)

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.a, "to": self.b, "kind": self.kind, "confidence": self.confidence, "ts": _iso(self.ts),
                "evidence": self.evidence, **({"refused": self.refused} if self.refused else {})}


@dataclass
class Identity:
    kind: str  # actor | user | ip | token | agent | device | account
    value: str
    confidence: float
    evidence: str
    first_seen: float
    last_seen: float
    calls: int = 0

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.value}" if self.kind != "actor" else self.value

    def to_dict(self) -> dict[str, Any]:
        return {"identity": self.key, "kind": self.kind, "value": self.value, "confidence": self.confidence,
                "evidence": self.evidence, "first_seen": _iso(self.first_seen), "last_seen": _iso(self.last_seen), "calls": self.calls}


@dataclass
class Cluster:
    key: str
    members: list[str]
    display: str
    findings: list[dict[str, Any]]
    stages: list[str]
    stage: str
    risk: float
    severity: str
    identities: list[Identity]
    links: list[Link]
    refused: list[Link]
    first_seen: float
    last_seen: float
    timeline: list[dict[str, Any]]
    peak_risk: float = 0.0
    sessions: dict[str, list[str]] = field(default_factory=dict)  # member -> tokens (members reached through a token)
    stage_evidence: dict[str, str] = field(default_factory=dict)
    incidents: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)  # the cluster's own calls (footprint), time order

    def summary(self) -> dict[str, Any]:
        return {
            "actor": self.key,
            "display": self.display,
            "risk": self.risk,
            "peak_risk": self.peak_risk,
            "stage": self.stage,
            "stages": self.stages,
            "identities": list(dict.fromkeys(i.key for i in self.identities)),
            "members": self.members,
            "findings": len(self.findings),
            "severity": self.severity,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "incidents": self.incidents,
        }

    def to_dict(self) -> dict[str, Any]:
        d = self.summary()
        d.update(
            identities=[i.to_dict() for i in self.identities],
            links=[lk.to_dict() for lk in self.links],
            refused_links=[lk.to_dict() for lk in self.refused],
            findings=[_finding_out(f) for f in self.findings],
            stage_evidence=self.stage_evidence,
            timeline=self.timeline,
        )
        return d

    def matches(self, needle: str) -> bool:
        n = needle.strip()
        if n == self.key or n in self.members or n in self.incidents:
            return True
        for i in self.identities:
            if n in (i.key, i.value):
                return True
        return False


def _iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _ts(v: Any) -> float:
    if isinstance(v, datetime):
        return v.timestamp()
    return float(v or 0.0)


def _finding_out(f: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in f.items() if k not in ("event_ids",)}
    out["first_seen"], out["last_seen"] = _iso(f["first_seen"]), _iso(f["last_seen"])
    return out


class Clusters:
    """The result of :func:`resolve`: clusters, most risky first."""

    def __init__(self, clusters: list[Cluster], now: float) -> None:
        self.clusters = clusters
        self.now = now

    def find(self, needle: str) -> Cluster | None:
        for c in self.clusters:
            if c.matches(needle):
                return c
        return None

    def actors_table(self) -> pa.Table:
        rows = [c.summary() for c in self.clusters]
        schema = pa.schema([
            ("actor", pa.string()), ("display", pa.string()), ("risk", pa.float64()), ("peak_risk", pa.float64()), ("stage", pa.string()),
            ("stages", pa.list_(pa.string())), ("identities", pa.list_(pa.string())), ("members", pa.list_(pa.string())),
            ("findings", pa.int64()), ("severity", pa.string()), ("first_seen", pa.timestamp("us", tz="UTC")),
            ("last_seen", pa.timestamp("us", tz="UTC")),
        ])
        cols: dict[str, list] = {n: [] for n in schema.names}
        for c, r in zip(self.clusters, rows):
            for n in schema.names:
                cols[n].append(int(c.first_seen * 1e6) if n == "first_seen" else int(c.last_seen * 1e6) if n == "last_seen" else r[n])
        return pa.Table.from_pydict(cols, schema=schema)

    def identities_table(self) -> pa.Table:
        schema = pa.schema([
            ("actor", pa.string()), ("identity", pa.string()), ("kind", pa.string()), ("value", pa.string()),
            ("confidence", pa.float64()), ("evidence", pa.string()), ("calls", pa.int64()),
            ("first_seen", pa.timestamp("us", tz="UTC")), ("last_seen", pa.timestamp("us", tz="UTC")),
        ])
        cols: dict[str, list] = {n: [] for n in schema.names}
        for c in self.clusters:
            for i in c.identities:
                for n, v in (("actor", c.key), ("identity", i.key), ("kind", i.kind), ("value", i.value), ("confidence", i.confidence),
                             ("evidence", i.evidence), ("calls", i.calls), ("first_seen", int(i.first_seen * 1e6)),
                             ("last_seen", int(i.last_seen * 1e6))):
                    cols[n].append(v)
        return pa.Table.from_pydict(cols, schema=schema)


class _UF:
    def __init__(self) -> None:
        self.p: dict[str, str] = {}

    def find(self, x: str) -> str:
        p = self.p.setdefault(x, x)
        if p != x:
            p = self.p[x] = self.find(p)
        return p

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[max(ra, rb)] = min(ra, rb)


_CALL_COLS = ("id, epoch(ts) AS ts, method, coalesce(template, path) AS template, path, status, actor, actor_kind, actor_user, "
              "client_ip, user_agent, token_id, req_headers, req_body, resp_sensitive, resp_bytes")


def resolve(
    session: "HuntSession",
    *,
    min_confidence: float = 0.5,
    nat_users: int = 3,
    nat_agents: int = 3,
    common_agent: int = 5,
    device_window: float = 1800.0,
    ato_window: float = 7200.0,
    half_life_days: float = 7.0,
    exfil_min: int = 20,
    now: float | None = None,
) -> Clusters:
    """Actor clusters over the session's time range, most risky first."""
    now = _now() if now is None else now
    if session.range.bounded:
        now = min(now, session.range.until)  # risk as of the end of the range looked at
    q = lambda sql, params=None: session.query(sql, params, trusted=True, timeout=max(session.timeout, 120.0))  # noqa: E731

    # -- seeds: actors with attack findings --------------------------------------
    fres = q("""SELECT id, detector, title, kind, severity, confidence, owasp, attack, tactic, stage, cwe, actor, actor_display,
                       endpoint, events, epoch(first_seen) AS first_seen, epoch(last_seen) AS last_seen, summary, event_ids, incident, origin
                FROM findings WHERE kind = 'attack' AND coalesce(actor, '') <> '' ORDER BY first_seen, id""")
    findings = fres.dicts()
    if not findings:
        return Clusters([], now)
    by_actor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in findings:
        f["stage"] = stage_of(f["detector"], f["tactic"] or "", f["attack"] or "")
        by_actor[f["actor"]].append(f)
    seeds = sorted(by_actor)
    fids = [f["id"] for f in findings]
    ev_rows = q("SELECT DISTINCT finding_id, event_id FROM finding_events WHERE finding_id IN (SELECT unnest($f))", {"f": fids}).rows
    evidence_ids: dict[str, set[str]] = defaultdict(set)
    fid_actor = {f["id"]: f["actor"] for f in findings}
    for fid, eid in ev_rows:
        evidence_ids[fid_actor[fid]].add(eid)
    for f in findings:
        evidence_ids[f["actor"]].update(f["event_ids"] or [])

    # -- address crowding: which addresses are shared (NAT, proxies) -------------
    seed_ips = q("SELECT DISTINCT client_ip FROM _lake_calls WHERE actor IN (SELECT unnest($a)) AND client_ip IS NOT NULL", {"a": seeds}).rows
    crowd = _crowding(q, [r[0] for r in seed_ips])

    def shared(ip: str | None) -> bool:
        u, a = crowd.get(ip or "", (0, 0))
        return a >= nat_agents or u >= nat_users

    # -- footprints -------------------------------------------------------------------
    calls: dict[str, dict[str, Any]] = {}
    footprint: dict[str, set[str]] = defaultdict(set)  # node -> call ids
    sessions: dict[str, set[str]] = defaultdict(set)  # user node reached via tokens -> tokens
    user_seeds = [a for a in seeds if a.startswith("user:")]
    other_seeds = [a for a in seeds if not a.startswith("user:")]
    all_ev = sorted(set().union(*evidence_ids.values())) if evidence_ids else []
    rows = q(f"SELECT {_CALL_COLS} FROM _lake_calls WHERE id IN (SELECT unnest($e))", {"e": all_ev}).dicts()
    for r in rows:
        calls[r["id"]] = r
    seed_tokens: dict[str, set[str]] = defaultdict(set)
    for a in user_seeds:
        for eid in evidence_ids[a]:
            r = calls.get(eid)
            if r is not None and r["actor"] == a and r["token_id"]:
                seed_tokens[a].add(r["token_id"])
    # ip / key / session seeds: all their calls, unless their address is shared
    whole = [a for a in other_seeds if not (a.startswith("ip:") and shared(a[3:]))]
    toks = sorted({t for ts in seed_tokens.values() for t in ts})
    rows = q(
        f"""SELECT {_CALL_COLS} FROM _lake_calls WHERE actor IN (SELECT unnest($w))
            OR (token_id IN (SELECT unnest($t)) AND actor IN (SELECT unnest($u)))""",
        {"w": whole or [""], "t": toks or [""], "u": user_seeds or [""]},
    ).dicts()
    for r in rows:
        calls[r["id"]] = r
    for a in seeds:
        ids = {e for e in evidence_ids[a] if e in calls and calls[e]["actor"] == a}
        footprint[a] |= ids
    for r in rows:
        a = r["actor"]
        if a in whole or (a in seed_tokens and r["token_id"] in seed_tokens[a]):
            footprint[a].add(r["id"])
    for a, ts in seed_tokens.items():
        sessions[a] |= ts

    links: list[Link] = []
    refused: list[Link] = []
    nodes = set(seeds)
    frontier = set(seeds)
    for rnd in range(3):
        # token issuance: a login's token used by another actor key
        found = _issued_links(q, frontier, calls, footprint, sessions)
        if rnd == 0:
            # account takeover: brute force then a login to that account from elsewhere
            found += _ato_links(q, nodes, calls, footprint, ato_window)
        dl, dr = _device_links(q, frontier, calls, footprint, shared, crowd, device_window, common_agent, set(seeds))
        found += dl
        # An address actor on a shared address is many people: a link through
        # it is about one login only, so it gets a node of its own.
        for lk in found:
            lk.a, lk.b = _split_shared(lk.a, lk, calls, shared, evidence_ids), _split_shared(lk.b, lk, calls, shared, evidence_ids)
            for n in (lk.a, lk.b):
                if "#" in n:
                    footprint[n].add(n.split("#", 1)[1])
        keyset = {(min(lk.a, lk.b), max(lk.a, lk.b), lk.kind) for lk in links}
        for lk in found:
            k = (min(lk.a, lk.b), max(lk.a, lk.b), lk.kind)
            if k not in keyset:
                links.append(lk)
                keyset.add(k)
        refused += [lk for lk in dr if not any((lk.a, lk.b) == (x.a, x.b) for x in refused)]
        new_nodes = sorted(({lk.b for lk in found} | {lk.a for lk in found}) - nodes)
        if not new_nodes:
            break
        _pull(q, new_nodes, calls, footprint, sessions, links, shared)
        new_ips = sorted({calls[i]["client_ip"] for n in new_nodes for i in footprint[n] if calls[i]["client_ip"]} - set(crowd))
        crowd.update(_crowding(q, new_ips))
        nodes |= set(new_nodes)
        frontier = set(new_nodes)

    # -- clusters -----------------------------------------------------------------------
    uf = _UF()
    for n in nodes:
        uf.find(n)
    made = []
    for lk in links:
        if lk.confidence >= min_confidence:
            uf.union(lk.a, lk.b)
            made.append(lk)
        else:
            lk.refused = f"confidence {lk.confidence} below {min_confidence}"
            refused.append(lk)
    groups: dict[str, list[str]] = defaultdict(list)
    for n in nodes:
        groups[uf.find(n)].append(n)
    signups = _signups(calls)
    out = []
    for members in groups.values():
        members.sort()
        if not any(m in by_actor for m in members):
            continue
        out.append(_build(members, by_actor, footprint, calls, sessions, [lk for lk in made if uf.find(lk.a) == uf.find(members[0])],
                          [lk for lk in refused if lk.a in members or lk.b in members], signups, now, half_life_days, exfil_min))
    out.sort(key=lambda c: (-c.risk, -c.peak_risk, c.key))
    return Clusters(out, now)


def _issued_links(q: Any, frontier: set[str], calls: dict[str, Any], footprint: dict[str, set[str]],
                  sessions: dict[str, set[str]]) -> list[Link]:
    """Logins whose issued token (``«jwt:<d>»`` in the response) another
    actor key used, in either direction from the frontier."""
    fp_tokens = {calls[i]["token_id"] for n in frontier for i in footprint[n] if i in calls and calls[i]["token_id"]}
    iss = q(
        f"""SELECT {_CALL_COLS}, regexp_extract(resp_body, '{_ISSUED}', 1) AS issued
            FROM _lake_calls WHERE method = 'POST' AND status BETWEEN 200 AND 299 AND resp_body LIKE '%«%'
              AND (actor IN (SELECT unnest($a)) OR regexp_extract(resp_body, '{_ISSUED}', 1) IN (SELECT unnest($t)))""",
        {"a": sorted(frontier), "t": sorted(fp_tokens) or [""]},
    ).dicts()
    issued_by = {r["issued"]: r for r in iss if r["issued"]}
    if not issued_by:
        return []
    used = q(
        """SELECT token_id, actor, min(epoch(ts)) AS first, count(*) AS n, list(id ORDER BY ts)[1:5] AS ids
           FROM _lake_calls WHERE token_id IN (SELECT unnest($t)) GROUP BY 1, 2 ORDER BY first""",
        {"t": sorted(issued_by)},
    ).dicts()
    out = []
    for u in used:
        login = issued_by[u["token_id"]]
        if u["actor"] == login["actor"] or (login["actor"] not in frontier and u["actor"] not in frontier):
            continue
        calls.setdefault(login["id"], {k: v for k, v in login.items() if k != "issued"})
        if u["actor"].startswith("user:"):
            sessions[u["actor"]].add(u["token_id"])
        out.append(Link(login["actor"], u["actor"], "token_issued", LINK_CONFIDENCE["token_issued"], login["ts"],
                        {"login_event": login["id"], "token": u["token_id"], "used_events": u["ids"], "uses": u["n"],
                         "address": login["client_ip"]}))
    return out


def _pull(q: Any, new_nodes: list[str], calls: dict[str, Any], footprint: dict[str, set[str]], sessions: dict[str, set[str]],
          links: list[Link], shared: Any) -> None:
    """Footprints of nodes reached through links: a user account only with
    the linked tokens (the attacker's sessions, not the owner's), an
    address actor whole unless the address is shared (then only the
    linking events)."""
    user_new = [n for n in new_nodes if n.startswith("user:")]
    other_new = [n for n in new_nodes if not n.startswith("user:") and "#" not in n and not (n.startswith("ip:") and shared(n[3:]))]
    stoks = sorted({t for n in user_new for t in sessions.get(n, ())})
    rows = q(
        f"""SELECT {_CALL_COLS} FROM _lake_calls WHERE actor IN (SELECT unnest($o))
            OR (token_id IN (SELECT unnest($t)) AND actor IN (SELECT unnest($u)))""",
        {"o": other_new or [""], "t": stoks or [""], "u": user_new or [""]},
    ).dicts()
    for r in rows:
        calls[r["id"]] = r
        a = r["actor"]
        if a in other_new or (a in user_new and r["token_id"] in sessions.get(a, ())):
            footprint[a].add(r["id"])
    for lk in links:
        ev = lk.evidence.get("login_event")
        for n in (lk.a, lk.b):
            if n in new_nodes and ev and ev in calls and calls[ev]["actor"] == n:
                footprint[n].add(ev)


def _split_shared(node: str, lk: Link, calls: dict[str, Any], shared: Any, evidence: dict[str, set[str]]) -> str:
    """The node a link attaches to: an address actor on a shared address
    stands for the one login the link rests on, unless that login is part
    of the address actor's own findings."""
    ev = lk.evidence.get("login_event")
    if (node.startswith("ip:") and "#" not in node and ev and shared(node[3:]) and ev in calls and calls[ev]["actor"] == node
            and ev not in evidence.get(node, ())):
        return f"{node}#{ev}"
    return node


def _crowding(q: Any, ips: list[str]) -> dict[str, tuple[int, int]]:
    if not ips:
        return {}
    rows = q("""SELECT client_ip, count(DISTINCT actor_user) AS users, count(DISTINCT user_agent) AS agents
                FROM _lake_calls WHERE client_ip IN (SELECT unnest($i)) GROUP BY 1""", {"i": ips}).rows
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def _is_login(r: dict[str, Any]) -> bool:
    return r["method"] == "POST" and bool(r["req_body"]) and '"password"' in r["req_body"] and "signup" not in (r["template"] or "") \
        and "register" not in (r["template"] or "")


def _account(body: str | None) -> str:
    if not body:
        return ""
    m = _ACCOUNT.search(body)
    return m.group(1) if m else ""


def _ato_links(q: Any, nodes: set[str], calls: dict[str, Any], footprint: dict[str, set[str]], window: float) -> list[Link]:
    """A node that failed logins on an account and then got in; later, within
    ``window``, another actor's successful login on it with a new agent."""
    cracked: dict[str, tuple[str, float, str, int]] = {}  # account -> (node, ts, event, failures)
    for n in sorted(nodes):
        fails: dict[str, int] = defaultdict(int)
        for i in sorted(footprint[n], key=lambda i: calls[i]["ts"]):
            r = calls[i]
            if not _is_login(r):
                continue
            acct = _account(r["req_body"])
            if not acct:
                continue
            if r["status"] in (401, 403):
                fails[acct] += 1
            elif r["status"] and 200 <= r["status"] < 300 and fails[acct] >= 3 and acct not in cracked:
                cracked[acct] = (n, r["ts"], r["id"], fails[acct])
    if not cracked:
        return []
    lo = min(v[1] for v in cracked.values())
    hi = max(v[1] for v in cracked.values()) + window
    rows = q(f"""SELECT {_CALL_COLS} FROM _lake_calls WHERE method = 'POST' AND status BETWEEN 200 AND 299
                 AND req_body LIKE '%"password"%' AND ts >= to_timestamp($lo) AND ts <= to_timestamp($hi) ORDER BY ts""",
             {"lo": lo - 30 * 86400.0, "hi": hi}).dicts()
    agents_before: dict[str, set[str]] = defaultdict(set)
    out = []
    for r in rows:
        acct = _account(r["req_body"])
        if acct not in cracked:
            continue
        node, t0, ev, nfail = cracked[acct]
        if r["ts"] < t0 or r["id"] == ev:
            if r["actor"] != node:
                agents_before[acct].add(r["user_agent"] or "")
            continue
        if r["ts"] > t0 + window or r["actor"] == node:
            continue
        if (r["user_agent"] or "") in agents_before[acct]:
            continue  # the account's owner, on a device the account already used
        calls.setdefault(r["id"], r)
        out.append(Link(node, r["actor"], "account_takeover", LINK_CONFIDENCE["account_takeover"], r["ts"],
                        {"account": acct, "cracked_event": ev, "failures_before": nfail, "login_event": r["id"],
                         "address": r["client_ip"], "user_agent": r["user_agent"], "seconds_after": round(r["ts"] - t0, 1)}))
        agents_before[acct].add(r["user_agent"] or "")
    return out


def _device_links(q: Any, nodes: set[str], calls: dict[str, Any], footprint: dict[str, set[str]], shared: Any,
                  crowd: dict[str, tuple[int, int]], window: float, common_agent: int, seeds: set[str]) -> tuple[list[Link], list[Link]]:
    """Same device from the same address close in time. On a shared address
    only between two actors that each have attack findings of their own
    (one party's identities, not neighbours behind one NAT)."""
    per: dict[tuple[str, str], list[tuple[float, str, str]]] = defaultdict(list)  # (ip, agent) -> (ts, node, event)
    for n in nodes:
        for i in footprint[n]:
            r = calls[i]
            if r["client_ip"] and r["user_agent"]:
                per[(r["client_ip"], r["user_agent"])].append((r["ts"], n, i))
    if not per:
        return [], []
    ips = sorted({k[0] for k in per})
    agents = sorted({k[1] for k in per})
    ua_actors = dict(q("SELECT user_agent, count(DISTINCT actor) FROM _lake_calls WHERE user_agent IN (SELECT unnest($a)) GROUP BY 1",
                       {"a": agents}).rows)
    rows = q(f"""SELECT {_CALL_COLS} FROM _lake_calls WHERE client_ip IN (SELECT unnest($i)) AND user_agent IN (SELECT unnest($a))""",
             {"i": ips, "a": agents}).dicts()
    links, refused = [], []
    seen: set[tuple[str, str]] = set()
    fp_cache: dict[str, str] = {}

    def fp(r: dict[str, Any]) -> str:
        v = fp_cache.get(r["id"])
        if v is None:
            v = fp_cache[r["id"]] = device_fingerprint(r["req_headers"])
        return v

    for r in rows:
        key = (r["client_ip"], r["user_agent"])
        for ts, n, eid in per.get(key, ()):
            other = r["actor"]
            if other == n or abs(r["ts"] - ts) > window or (n, other) in seen or (other, n) in seen:
                continue
            if other in nodes and other.startswith("user:") and r["id"] not in footprint[other] and r["token_id"]:
                pass  # a seed user's other sessions are the owner's unless evidence says otherwise
            mine = calls.get(eid)
            if mine is None or fp(mine) != fp(r):
                continue
            seen.add((n, other))
            ev = {"address": r["client_ip"], "user_agent": r["user_agent"], "device": fp(r), "events": [eid, r["id"]],
                  "seconds_apart": round(abs(r["ts"] - ts), 1)}
            lk = Link(n, other, "device", LINK_CONFIDENCE["device"], min(ts, r["ts"]), ev)
            u, a = crowd.get(r["client_ip"], (0, 0))
            if shared(r["client_ip"]) and not (n in seeds and other in seeds):
                lk.refused = f"shared address: {u} principals and {a} agents use {r['client_ip']}"
                refused.append(lk)
            elif shared(r["client_ip"]):
                lk.confidence = LINK_CONFIDENCE["device_common_agent"]
                lk.evidence["shared_address"] = f"{u} principals, {a} agents; both actors have findings"
                links.append(lk)
                calls.setdefault(r["id"], r)
            else:
                if int(ua_actors.get(r["user_agent"], 0)) >= common_agent:
                    # a common agent never links alone; with one unshared address close in time it does, less surely
                    lk.confidence = LINK_CONFIDENCE["device_common_agent"]
                    lk.evidence["agent_actors"] = int(ua_actors[r["user_agent"]])
                links.append(lk)
                calls.setdefault(r["id"], r)
    return links, refused


def _peak(fs: list[dict[str, Any]], stages: list[str]) -> float:
    per_det: dict[str, float] = defaultdict(float)
    raw = 0.0
    for f in fs:
        w = SEVERITY_WEIGHT.get(f["severity"], 3.0) * max(float(f["confidence"] or 0.5), 0.3) * (1.0 + 0.15 * max(stage_index(f["stage"]), 0))
        per_det[f["detector"]] = max(per_det[f["detector"]], w)
        raw += 0.25 * w
    raw += sum(per_det.values()) + sum(4.0 * (1 + 0.25 * stage_index(s)) for s in stages)
    return round(100.0 * (1.0 - math.exp(-raw / 60.0)), 1)


def _signups(calls: dict[str, Any]) -> set[str]:
    return {i for i, r in calls.items() if r and r["method"] == "POST" and r["status"] and 200 <= r["status"] < 300
            and any(w in (r["template"] or "") for w in ("signup", "register", "sign-up", "accounts/new"))}


def _build(members: list[str], by_actor: dict[str, list[dict[str, Any]]], footprint: dict[str, set[str]], calls: dict[str, Any],
           sessions: dict[str, set[str]], links: list[Link], refused: list[Link], signups: set[str], now: float,
           half_life_days: float, exfil_min: int) -> Cluster:
    fs = sorted((f for m in members for f in by_actor.get(m, ())), key=lambda f: (f["first_seen"], f["id"]))
    seeds = [m for m in members if m in by_actor]
    key = min(seeds, key=lambda m: (min(f["first_seen"] for f in by_actor[m]), m))
    fp_ids = sorted({i for m in members for i in footprint.get(m, ()) if i in calls}, key=lambda i: (calls[i]["ts"], i))
    fp_calls = [calls[i] for i in fp_ids]
    conf_of: dict[str, tuple[float, str]] = {m: (1.0, "has findings") for m in seeds}
    for lk in sorted(links, key=lambda lk: -lk.confidence):
        for a, b in ((lk.a, lk.b), (lk.b, lk.a)):
            if b not in conf_of and a in conf_of:
                conf_of[b] = (round(min(conf_of[a][0], lk.confidence), 2), f"{lk.kind} link from {a}")
    for _ in range(3):  # transitive
        for lk in links:
            for a, b in ((lk.a, lk.b), (lk.b, lk.a)):
                if b not in conf_of and a in conf_of:
                    conf_of[b] = (round(min(conf_of[a][0], lk.confidence), 2), f"{lk.kind} link from {a}")

    # identities
    ident: dict[tuple[str, str], Identity] = {}

    def add(kind: str, value: str | None, r: dict[str, Any], conf: float, why: str) -> None:
        if not value:
            return
        k = (kind, value)
        i = ident.get(k)
        if i is None:
            ident[k] = Identity(kind, value, conf, why, r["ts"], r["ts"], 1)
        else:
            i.first_seen, i.last_seen = min(i.first_seen, r["ts"]), max(i.last_seen, r["ts"])
            i.calls += 1
            if conf > i.confidence:
                i.confidence, i.evidence = conf, why

    for m in members:
        c, why = conf_of.get(m, (min_conf_default := 0.5, "linked"))
        rs = [calls[i] for i in footprint.get(m, ()) if i in calls]
        if rs:
            for r in rs:
                add("actor", m, r, c, why)
        else:
            ident[("actor", m)] = Identity("actor", m, c, why, 0.0, 0.0, 0)
    for r in fp_calls:
        c, why = conf_of.get(r["actor"], (0.5, "linked"))
        src = f"on calls of {r['actor']}"
        add("ip", r["client_ip"], r, c, src)
        add("agent", r["user_agent"], r, c, src)
        add("token", r["token_id"], r, c, src)
        if r["actor_user"]:
            add("user", r["actor_user"], r, c, src if r["actor"] in by_actor else f"session of {r['actor_user']} used by this actor ({why})")
        d = device_fingerprint(r["req_headers"])
        add("device", d[4:], r, c, src)
        if _is_login(r) and r["status"] and 200 <= r["status"] < 300:
            add("account", _account(r["req_body"]), r, c, f"logged into by {r['actor']}")
    identities = sorted(ident.values(), key=lambda i: (["actor", "user", "account", "ip", "token", "device", "agent"].index(i.kind), i.first_seen, i.value))
    for i in identities:
        if i.first_seen == 0.0 and fp_calls:
            i.first_seen = i.last_seen = fp_calls[0]["ts"]

    # stages
    stage_first: dict[str, float] = {}
    stage_ev: dict[str, str] = {}
    for f in fs:
        s = f["stage"]
        if s not in stage_first or f["first_seen"] < stage_first[s]:
            stage_first[s] = f["first_seen"]
            stage_ev[s] = f"{f['detector']} ({f['id']})"
    own_signups = [calls[i] for i in fp_ids if i in signups]
    if own_signups:
        t = own_signups[0]["ts"]
        if "resource-development" not in stage_first or t < stage_first["resource-development"]:
            stage_first["resource-development"] = t
            stage_ev["resource-development"] = f"created an account ({own_signups[0]['id']})"
    # initial access: an account the cluster cracked (account takeover), or a
    # token issued to a login by a member that was doing credential access
    cred_at = {f["actor"]: f["first_seen"] for f in fs if f["stage"] == "credential-access"}
    tok_links = [lk for lk in links if lk.kind == "account_takeover"
                 or (lk.kind == "token_issued" and lk.a in cred_at and lk.ts >= cred_at[lk.a])]
    if tok_links and "credential-access" in stage_first:
        t = min(lk.ts for lk in tok_links)
        if "initial-access" not in stage_first or t < stage_first["initial-access"]:
            stage_first["initial-access"] = t
            first = min(tok_links, key=lambda lk: lk.ts)
            stage_ev["initial-access"] = f"got into an account it attacked ({first.kind}: {first.a} -> {first.b})"
    if "collection" in stage_first:
        leaving = [r for r in fp_calls if r["resp_sensitive"] and r["status"] and 200 <= r["status"] < 300 and r["ts"] >= stage_first["collection"] - 3600]
        if len(leaving) >= exfil_min:
            classes = sorted({c for r in leaving for c in r["resp_sensitive"]})
            stage_first.setdefault("exfiltration", leaving[exfil_min - 1]["ts"])
            stage_ev.setdefault("exfiltration", f"{len(leaving)} responses with {', '.join(classes)} left to it")
    # in the order the cluster reached them; ``stage`` is the furthest along the kill chain
    stages = sorted(stage_first, key=lambda s: (stage_first[s], stage_index(s)))
    stage = max(stages, key=stage_index) if stages else ""

    # risk (decayed from ``now``) and peak risk (as it was when last seen)
    last = max([f["last_seen"] for f in fs] + [r["ts"] for r in fp_calls[-1:]])
    first = min([f["first_seen"] for f in fs] + [r["ts"] for r in fp_calls[:1]])
    raw = 0.0
    per_det: dict[str, float] = defaultdict(float)
    for f in fs:
        age = max(0.0, now - f["last_seen"]) / 86400.0
        w = SEVERITY_WEIGHT.get(f["severity"], 3.0) * max(float(f["confidence"] or 0.5), 0.3)
        w *= 1.0 + 0.15 * max(stage_index(f["stage"]), 0)
        per_det[f["detector"]] = max(per_det[f["detector"]], w * 0.5 ** (age / half_life_days))
        raw += 0.25 * w * 0.5 ** (age / half_life_days)
    raw += sum(per_det.values())
    age = max(0.0, now - last) / 86400.0
    raw += sum(4.0 * (1 + 0.25 * stage_index(s)) for s in stages) * 0.5 ** (age / half_life_days)
    risk = round(100.0 * (1.0 - math.exp(-raw / 60.0)), 1)
    peak = _peak(fs, stages)
    severity = max((f["severity"] for f in fs), key=severity_rank, default="info")

    # display
    disp_user = next((f["actor_display"] for f in fs if f["actor"] == key and f["actor_display"]), key)
    names = [m.split(":", 1)[1] for m in members if m != key]
    names = [n for n in names if n not in disp_user]
    display = disp_user if not names else f"{disp_user} + {', '.join(names[:2])}" + (f" +{len(names) - 2}" if len(names) > 2 else "")

    # timeline
    tl: list[dict[str, Any]] = []
    for s in stages:
        tl.append({"ts": stage_first[s], "kind": "stage", "stage": s, "title": f"reached {s}", "detail": stage_ev.get(s, "")})
    for f in fs:
        tl.append({"ts": f["first_seen"], "end": f["last_seen"], "kind": "finding", "stage": f["stage"], "severity": f["severity"],
                   "title": f["title"], "detail": f["summary"], "actor": f["actor"], "finding": f["id"], "detector": f["detector"],
                   "endpoint": f["endpoint"], "events": f["events"]})
    for lk in links:
        tl.append({"ts": lk.ts, "kind": "link", "title": f"{lk.kind}: {lk.a} -> {lk.b}", "detail": orjson.dumps(lk.evidence).decode(),
                   "confidence": lk.confidence})
    firsts: dict[str, dict[str, Any]] = {}
    for r in fp_calls:
        if r["actor"] not in firsts:
            firsts[r["actor"]] = r
    for a, r in firsts.items():
        tl.append({"ts": r["ts"], "kind": "identity", "title": f"first call as {a}", "detail": f"{r['method']} {r['path']} from {r['client_ip']}",
                   "event": r["id"]})
    for r in own_signups[:5]:
        tl.append({"ts": r["ts"], "kind": "signup", "title": "created an account", "detail": f"{r['method']} {r['path']}", "event": r["id"]})
    tl.sort(key=lambda e: (e["ts"], e["kind"] != "stage"))
    for e in tl:
        e["time"] = _iso(e["ts"])
        if "end" in e:
            e["end_time"] = _iso(e["end"])
    incidents = sorted({f["incident"] for f in fs if f.get("incident")})
    return Cluster(
        key=key, members=members, display=display, findings=fs, stages=stages, stage=stage, risk=risk, peak_risk=peak, severity=severity,
        identities=identities, links=links, refused=refused, first_seen=first, last_seen=last, timeline=tl,
        sessions={m: sorted(sessions[m]) for m in members if m in sessions}, stage_evidence=stage_ev, incidents=incidents,
        event_ids=fp_ids,
    )


__all__ += ["SEVERITIES", "KILL_CHAIN"]
