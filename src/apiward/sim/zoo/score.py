"""Score one zoo run: attacks caught, benign actors accused, templates F1.

- An attack is caught when an attack finding names its actor (user or
  address) with the attack's OWASP category; a finding on the actor with
  another category counts as "seen, wrong category".
- A benign actor is accused when any attack finding names it.
- Templates: the routes the traffic really exercised (each request matched
  to the app's own route table; a route counts when some request to it got
  an answer other than 404/405) against the inventory's endpoints, both as
  ``METHOD /path/{}`` with parameter names dropped. Precision is over the
  inventory's endpoints, recall over the exercised routes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from apiward.sim.zoo.harness import AppRun

__all__ = ["RouteTable", "Score", "score_run", "normalise"]

_PARAM = re.compile(r"\{[^{}/]*\}")


def normalise(template: str) -> str:
    """``/buckets/{bucket_id}/x`` -> ``/buckets/{}/x`` (names do not matter)."""
    t = _PARAM.sub("{}", template)
    return t.rstrip("/") or "/"


class RouteTable:
    """The app's routes as ``(METHOD, template)``; matches concrete paths,
    literal segments before parameters (``/buckets/x`` is not ``/{id}/x``)."""

    def __init__(self, routes: list[tuple[str, str]]) -> None:
        self.routes = sorted({(m.upper(), normalise(t)) for m, t in routes})
        self._compiled: list[tuple[str, str, re.Pattern[str], tuple[int, ...]]] = []
        for m, t in self.routes:
            segs = t.strip("/").split("/") if t != "/" else []
            pattern = "^/" + "/".join(self._seg(s) for s in segs) + "/?$" if segs else "^/?$"
            # more literal segments first, then longer literal text
            rank = (-sum(1 for s in segs if "{}" not in s), -len(t.replace("{}", "")))
            self._compiled.append((m, t, re.compile(pattern), rank))
        self._compiled.sort(key=lambda x: x[3])

    @staticmethod
    def _seg(seg: str) -> str:
        return "[^/]+".join(re.escape(p) for p in seg.split("{}"))

    def match(self, method: str, path: str) -> str | None:
        """The route template ``path`` resolves to for ``method``, or None."""
        for m, t, rx, _ in self._compiled:
            if m == method.upper() and rx.match(path):
                return t
        return None


@dataclass
class Score:
    app: str
    attacks: list[dict[str, Any]] = field(default_factory=list)  # id, kind, owasp, caught, found (categories), detectors
    benign_actors: int = 0
    benign_accused: list[dict[str, Any]] = field(default_factory=list)  # actor, detector, owasp, summary
    expected_templates: list[str] = field(default_factory=list)
    found_templates: list[str] = field(default_factory=list)
    missing_templates: list[str] = field(default_factory=list)
    extra_templates: list[str] = field(default_factory=list)
    precision: float = 0.0
    recall: float = 0.0
    f1: float = 0.0
    events: int = 0

    @property
    def caught(self) -> int:
        return sum(1 for a in self.attacks if a["caught"])


def _owasp(f: dict[str, Any]) -> str:
    return str(f.get("owasp") or "").split(":")[0].strip()


def score_run(run: AppRun, *, host_port: str | None = None) -> Score:
    """Score ``run``; ``host_port`` limits the inventory to one host (all when None)."""
    s = Score(run.app, events=len(run.sent))
    by_actor: dict[str, list[dict[str, Any]]] = {}
    for f in run.findings:
        by_actor.setdefault(str(f.get("actor") or ""), []).append(f)
    for at in run.attacks:
        fs = [f for k in sorted(at.actor.keys()) for f in by_actor.get(k, [])]
        cats = sorted({_owasp(f) for f in fs})
        s.attacks.append({
            "id": at.id, "kind": at.kind, "owasp": at.owasp, "actor": at.actor.name, "requests": at.requests,
            "caught": at.owasp in cats, "found": cats,
            "detectors": sorted({str(f.get("detector")) for f in fs if _owasp(f) == at.owasp}) or sorted({str(f.get("detector")) for f in fs}),
        })
    benign = [a for a in run.actors if a.benign]
    s.benign_actors = len(benign)
    for a in benign:
        for k in sorted(a.keys()):
            for f in by_actor.get(k, []):
                s.benign_accused.append({"actor": a.name, "key": k, "detector": f.get("detector"), "owasp": _owasp(f),
                                         "summary": str(f.get("summary") or "")[:200]})
    table = RouteTable(run.routes)
    served: set[str] = set()
    for r in run.sent:
        if r.status in (404, 405) or r.status in (401, 403):
            # not found, or refused: a scanner's wordlist path answered 401 matches a
            # catch-all route (Radicale's /{user}) without anything being served
            continue
        t = table.match(r.method, r.path)
        if t is not None:
            served.add(f"{r.method} {t}")
    found: set[str] = set()
    for e in run.inventory:
        if host_port is not None and e.get("host") not in (host_port, None, ""):
            continue
        found.add(f"{str(e.get('method', '')).upper()} {normalise(str(e.get('template') or e.get('path') or ''))}")
    s.expected_templates = sorted(served)
    s.found_templates = sorted(found)
    s.missing_templates = sorted(served - found)
    s.extra_templates = sorted(found - served)
    tp = len(served & found)
    s.precision = tp / len(found) if found else 0.0
    s.recall = tp / len(served) if served else 0.0
    s.f1 = 2 * s.precision * s.recall / (s.precision + s.recall) if tp else 0.0
    return s
