"""``recon.scanning``: an actor maps the API: scanner tooling, probes for
well-known secret and spec files, storms of 404/405 on paths nobody else
uses, and method fuzzing.

Looks at, per actor over a tumbling ``horizon_s`` of virtual time:

- the user agent against the signatures of public scanners (sqlmap, Nikto,
  Nuclei, ffuf, gobuster, DirBuster, masscan, ZGrab, wfuzz, Burp, ZAP...);
- the path against a generic list of well-known sensitive locations
  (``/.env``, ``/.git/config``, ``/actuator/env``, backup and dump files:
  *secret* probes; ``/swagger.json``, ``/openapi.json``, ``/wp-admin``,
  admin consoles: *spec/admin* probes, weighted half). This is the public
  knowledge every scanner ships, nothing specific to one API. A secret
  probe answered 2xx is flagged at once (the file is exposed);
- not-found answers (404, 405, 501): distinct paths, and the actor's
  not-found ratio against ``factor`` times the norm (the running not-found
  ratio of all traffic);
- templates only this actor ever called (the inventory's distinct-actor
  count is 1, or a probe path, never served, that only it sent), i.e.
  probing of undocumented or unknown paths;
- method fuzzing: distinct methods other than GET and POST on one path
  (``min_methods``), and methods outside the usual REST set (TRACE,
  PROPFIND, DEBUG, TRACK...), counting only calls the API did not serve
  (an answer below 400 means the method is part of its interface);
- *slow probing*, over days rather than one horizon: per source, decayed
  counts (half-life ``slow_half_life_s``) of distinct endpoints answered
  not found (404/405/501) or refused (401/403), against the source's
  decayed count of calls. A sweep of one probe an hour never makes a storm
  within a horizon, but piles up here: ``min_slow`` distinct endpoints with
  at least ``min_not_found_ratio`` of the source's calls behind them.

A source flagged in one horizon stays known for the next: its further
not-found, refused or probing calls join the finding at once. Suspicious
calls of a flagged source are folded into the finding every
``flush_every`` calls, or as soon as ``flush_s`` of virtual time passed
since the last report (a slow sweep is reported call by call).

One finding per actor (key: detector + actor); it is raised when the first
signal crosses its threshold and grows (event ids, severity, evidence) as
more signals fire or more suspicious events arrive.

Cost per event (about 1.5 µs): a cached user-agent look-up, a cached
path look-up (the precompiled probe regexes run only for a path not seen
among the last few thousand), a few set inserts into capped sets; no
allocation for a known actor on a 2xx call of a shared endpoint.

False-positive assumptions: browsers and SDKs do not send scanner agents;
a person mistypes a URL or follows a stale link a handful of times, not
tens of distinct paths; an expired token earns 401s on the few endpoints a
client polls, and a client that calls much more than it is refused stays
under the slow-probing ratio; a developer opening API docs touches one or two
spec paths (weighted half), not secret files; CORS preflight adds OPTIONS,
so OPTIONS, PUT and DELETE on one path is normal; a fourth is not.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any

from apiward.detect.vocabulary import RELEASE_ARCHIVE
from apiward.detect.base import DetectorBase
from apiward.detect.facts import facts
from apiward.learn.norms import Norms
from apiward.detect.objects import LRU, Ring
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["Scanning", "SCANNER_UA", "SECRET_PROBE", "SPEC_PROBE"]

SCANNER_UA = re.compile(
    r"sqlmap|nikto|nuclei|\bffuf\b|fuzz faster u fool|gobuster|dirbuster|dirb/|feroxbuster|masscan|zgrab|wfuzz|"
    r"burp|owasp[ _-]?zap|\bzap/|acunetix|nessus|openvas|netsparker|invicti|w3af|arachni|nmap|httpx - open-source|"
    r"commix|xsstrike|skipfish|whatweb|wpscan|joomscan|jaeles|katana|dalfox|hydra|medusa|kiterunner|arjun|"
    r"paramspider|qualys|appscan|webinspect|vega/|grabber|jorgee|\bwpscan\b",
    re.IGNORECASE,
)

# Files and endpoints whose mere request is a hunt for secrets or internals.
SECRET_PROBE = re.compile(
    r"(?:^|/)(?:\.env(?:\.[a-z]+)?|\.git(?:/|$)|\.svn/|\.hg/|\.aws/|\.ssh/|\.npmrc|\.htpasswd|\.htaccess|\.DS_Store|"
    r"\.bash_history|id_rsa|web\.config|wp-config\.php|config\.php|phpinfo\.php|server-status|server-info|"
    r"actuator/(?:env|heapdump|threaddump|configprops|mappings|beans|trace|logfile)|heapdump|jolokia|"
    r"etc/passwd|etc/shadow|win\.ini|boot\.ini|debug/pprof|elmah\.axd|trace\.axd|"
    r"[^/]*\.(?:bak|old|orig|swp|sql|sqlite|db|dump|tar|tgz|tar\.gz|zip|rar|7z|pem|key|p12|pfx|jks|kdbx)|[^/]*~)$",
    re.IGNORECASE,
)

# API descriptions, consoles and admin panels: what a scanner maps first.
SPEC_PROBE = re.compile(
    r"(?:^|/)(?:swagger(?:-ui)?(?:\.html|\.json|\.ya?ml|/|$)|openapi(?:\.json|\.ya?ml)$|api-docs(?:/|$)|"
    r"v[23]/api-docs|redoc$|graphiql|altair|playground$|wp-admin|wp-login\.php|xmlrpc\.php|phpmyadmin|"
    r"administrator/|manager/html|jmx-console|console$|actuator(?:/[a-z]+)?$|cgi-bin/|solr/|"
    r"admin(?:\.php|/login)?$|config\.(?:json|ya?ml|xml)$|settings\.(?:json|py)$|metrics$|_profiler|telescope|"
    r"\.well-known/openid-configuration$)",
    re.IGNORECASE,
)

_ANY_PROBE = re.compile(f"(?:{SECRET_PROBE.pattern})|(?:{SPEC_PROBE.pattern})", re.IGNORECASE)
_NOT_FOUND = frozenset({404, 405, 501})
_REFUSED = frozenset({401, 403})
_COMMON_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_SIGNALS = ("scanner_agent", "exposed_secret", "probes", "not_found_storm", "unknown_paths", "method_fuzzing", "slow_probing",
            "earlier_scanning")


class _Recon:
    """One actor's reconnaissance counters over the current horizon."""

    __slots__ = ("start", "calls", "nf", "nf_paths", "probes", "probe_score", "solo", "methods", "unusual", "signals",
                 "ring", "pending", "sample", "agent", "slow", "earlier", "emitted", "norms", "last")

    def __init__(self, ts: float) -> None:
        self.start = ts
        self.calls = 0
        self.nf = 0
        self.nf_paths: set[int] = set()
        self.probes: dict[str, str] = {}  # path -> secret|spec
        self.probe_score = 0.0
        self.solo: set[int] = set()
        self.methods: dict[int, set[str]] = {}
        self.unusual = 0
        self.signals: dict[str, Any] = {}
        self.ring: Ring = Ring(24)
        self.pending: list[str] = []
        self.sample: list[str] = []  # a few probed paths, for the evidence
        self.agent = ""
        self.slow: _Slow | None = None  # long-horizon counters, kept across horizons
        self.earlier: dict[str, Any] = {}  # signals of the previous horizon, if it was flagged
        self.emitted = ts  # when a finding last carried this actor's events
        self.norms: dict[str, Any] = {}  # the norm comparisons behind its volume signals
        self.last = ""  # id of the last call counted (each call counts once)

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        self.slow, self.earlier, self.emitted, self.norms, self.last = None, {}, 0.0, {}, ""  # absent from older states
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


class _Slow:
    """One source's long-horizon probing counters: decayed counts of calls
    and of distinct endpoints answered not found or refused, and the
    endpoints counted (a bounded set, oldest forgotten first)."""

    __slots__ = ("ts", "calls", "fresh", "refused", "seen")

    def __init__(self, ts: float) -> None:
        self.ts = ts
        self.calls = 0.0
        self.fresh = 0  # calls since the last decay, counted as recent (cheap, and errs towards normal)
        self.refused = 0.0
        self.seen: dict[int, None] = {}

    def decay(self, ts: float, rate: float) -> None:
        dt = ts - self.ts
        if dt > 0.0:
            f = math.exp(-dt * rate)
            self.calls *= f
            self.refused *= f
            self.ts = ts
        self.calls += self.fresh
        self.fresh = 0

    def __getstate__(self) -> Any:
        return (self.ts, self.calls, self.fresh, self.refused, self.seen)

    def __setstate__(self, s: Any) -> None:
        self.ts, self.calls, self.fresh, self.refused, self.seen = s


class Scanning(DetectorBase):
    """Reconnaissance: scanner agents, sensitive-file probes, 404 storms on
    unknown paths and method fuzzing, per actor."""

    id = "recon.scanning"
    title = "Reconnaissance: API scanning and probing"
    severity = "medium"
    owasp = "API9:2023"
    attack = "T1595"
    tactic = "reconnaissance"
    cwe = "CWE-200"
    config_attrs = ("_slow_rate",)  # derived from constructor arguments: rebuilt from the configuration

    def __init__(
        self,
        *,
        horizon_s: float = 86_400.0,
        min_probe_score: float = 2.0,
        min_not_found: int = 10,
        factor: float = 5.0,
        min_not_found_ratio: float = 0.3,
        min_unknown: int = 12,
        min_methods: int = 4,
        min_unusual: int = 2,
        flush_every: int = 8,
        flush_s: float = 60.0,
        min_slow: float = 10.0,
        slow_half_life_s: float = 172_800.0,
        slow_cap: int = 256,
        max_actors: int = 20_000,
        set_cap: int = 512,
    ) -> None:
        self.horizon_s = horizon_s
        self.min_probe_score = min_probe_score
        self.min_not_found = min_not_found
        self.factor = factor
        self.min_not_found_ratio = min_not_found_ratio
        self.min_unknown = min_unknown
        self.min_methods = min_methods
        self.min_unusual = min_unusual
        self.flush_every = flush_every
        self.flush_s = flush_s
        self.min_slow = min_slow
        self._slow_rate = math.log(2.0) / slow_half_life_s
        self.slow_cap = slow_cap
        self.set_cap = set_cap
        self._actors: LRU[str, _Recon] = LRU(max_actors)
        self._ua: dict[str, bool] = {}
        self._paths: dict[str, str] = {}  # path -> "" | secret | spec (a cache, not state)
        self._nf_rate = 0.02  # norm: EWMA of the not-found share of all calls
        self._seen = 0
        self.norms = Norms()

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_paths"] = {}
        return d

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_paths", {})  # absent from older states

    def _probe(self, path: str) -> str:
        """``secret``, ``spec`` or ``""`` for a path; cached per path (most
        calls repeat a path seen before, a miss costs two regex searches)."""
        kind = self._paths.get(path)
        if kind is None:
            kind = ""
            if _ANY_PROBE.search(path) and RELEASE_ARCHIVE.search(path.rpartition("/")[2]) is None:  # one search for the common miss
                kind = "secret" if SECRET_PROBE.search(path) else "spec"
            if len(self._paths) >= 8192:
                self._paths.clear()
            self._paths[path] = kind
        return kind

    def _scanner(self, ua: str) -> bool:
        hit = self._ua.get(ua)
        if hit is None:
            if len(self._ua) >= 4096:
                self._ua.clear()
            hit = self._ua[ua] = bool(ua) and SCANNER_UA.search(ua) is not None
        return hit

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        return self._step(call, ctx, judge=True)

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        """Learn what each actor and its peers normally reach (distinct
        not-found paths, probe score, paths only it calls, slow probing)
        per horizon. In ``learn`` mode scoring did not run, so the
        counters are kept here first."""
        if ctx.mode == "learn":
            self._step(call, ctx, judge=False)
        actor = call.actor
        key = actor.key or actor.ip or call.src.ip
        s = self._actors.get(key) if key else None
        if s is None:
            return
        fx = facts(call, ctx)
        trust = ctx.trust
        flagged = fx.flagged or bool(s.signals) or (trust is not None and trust.flagged(key, call.ts))
        learn_mode = ctx.mode == "learn"
        host = ctx.endpoint.host
        norms = self.norms
        for stat, value in (("not_found_paths", len(s.nf_paths)), ("probe_score", s.probe_score), ("solo_paths", len(s.solo)),
                            ("slow_probes", s.slow.refused if s.slow is not None else 0.0)):
            if value:
                norms.observe(stat, host, key, value, window=s.start, calls=s.calls, learn_mode=learn_mode, flagged=flagged)

    def _beyond(self, stat: str, host: str, key: str, value: float, floor: float, s: _Recon) -> bool:
        """Whether ``value`` stands out from the actor's own norm and its
        peers' (:class:`~apiward.learn.norms.Norms`); the figures go to the
        evidence."""
        out, ev = self.norms.stands_out(stat, host, key, value, floor=floor, calls=s.calls)
        if out:
            s.norms[stat] = ev
        return out

    def _step(self, call: ApiCall, ctx: Context, *, judge: bool) -> list[Finding]:
        """Keep the actor's counters for this call (once per call) and,
        when ``judge``, decide whether it is scanning."""
        actor = call.actor
        key = actor.key or actor.ip or call.src.ip
        if not key:
            return []
        req = call.request
        st = call.status
        ts = call.ts
        actors = self._actors
        s = actors.get(key)
        if s is None:
            s = _Recon(ts)
            actors.put(key, s)
        else:
            actors.move_to_end(key)
        if ts - s.start > self.horizon_s:
            old = s
            s = _Recon(ts)
            s.slow = old.slow
            s.earlier = old.signals
            s.pending = old.pending  # reported with the next finding
            s.ring = old.ring  # the recent suspicious calls ride along with a later trigger
            s.emitted = old.emitted
            self._actors.put(key, s)
        if s.last == call.id:
            return []  # counted already
        s.last = call.id
        s.calls += 1
        nf = st in _NOT_FOUND
        refused = st in _REFUSED
        # norm of the not-found share, over all actors (alpha 1/2000)
        self._nf_rate += ((1.0 if nf else 0.0) - self._nf_rate) * 0.0005
        suspicious = False
        new_signal = ""
        cap = self.set_cap
        ua = actor.user_agent or req.header("user-agent") or ""
        ep_host = ctx.endpoint.host
        if judge and ua and (self._ua.get(ua) or (ua not in self._ua and self._scanner(ua))):
            suspicious = True
            if "scanner_agent" not in s.signals:
                s.agent = ua[:120]
                s.signals["scanner_agent"] = ua[:120]
                new_signal = "scanner_agent"
        path = req.path
        if len(path) > 1:
            kind = self._paths.get(path)
            if kind is None:
                kind = self._probe(path)
            if kind:
                suspicious = True
                if path not in s.probes and len(s.probes) < cap:
                    s.probes[path] = kind
                    s.probe_score += 1.0 if kind == "secret" else 0.5
                    if len(s.sample) < 12:
                        s.sample.append(path)
                    if judge and s.probe_score >= self.min_probe_score and (
                            "probes" in s.signals or self._beyond("probe_score", ep_host, key, s.probe_score, self.min_probe_score, s)):
                        if "probes" not in s.signals:
                            new_signal = new_signal or "probes"
                        s.signals["probes"] = len(s.probes)
                if judge and kind == "secret" and 200 <= st < 300 and "exposed_secret" not in s.signals:
                    s.signals["exposed_secret"] = path[:200]
                    new_signal = "exposed_secret"
        if nf:
            suspicious = True
            s.nf += 1
            if len(s.nf_paths) < cap:
                s.nf_paths.add(zlib.crc32(path.encode("utf-8", "surrogatepass")))
            n = len(s.nf_paths)
            if judge and n >= self.min_not_found:
                ratio = s.nf / s.calls
                if ratio >= max(self.min_not_found_ratio, self.factor * self._nf_rate) and (
                        "not_found_storm" in s.signals or self._beyond("not_found_paths", ep_host, key, n, self.min_not_found, s)):
                    if "not_found_storm" not in s.signals:
                        new_signal = new_signal or "not_found_storm"
                    s.signals["not_found_storm"] = {"distinct_paths": n, "ratio": round(ratio, 3), "norm": round(self._nf_rate, 4)}
        ep = ctx.endpoint
        inv = ctx.inventory
        if inv is not None and (nf or st == 0 or st >= 400 or ctx.new_endpoint):
            rec = inv.endpoints.get((ep.host, ep.method, ep.template))
            if rec is not None:
                solo = rec.actors <= 1
            else:  # never served: the inventory keeps it as a probe path
                probes = getattr(inv, "probes", None)
                pr = probes.get((ep.host, ep.method, call.request.path)) if probes else None
                # not even a probe yet: nobody else has called it (in ``both``
                # mode the inventory learns a call after it is scored)
                who = call.actor.key or call.actor.ip or call.src.ip
                solo = pr is None or not pr.actors or pr.actors == [who]
            if solo and len(s.solo) < cap:
                s.solo.add(zlib.crc32(ep.name.encode("utf-8", "surrogatepass")))
                suspicious = True
                if judge and len(s.solo) >= self.min_unknown and s.nf * 2 >= s.calls and (
                        "unknown_paths" in s.signals or self._beyond("solo_paths", ep_host, key, len(s.solo), self.min_unknown, s)):
                    if "unknown_paths" not in s.signals:
                        new_signal = new_signal or "unknown_paths"
                    s.signals["unknown_paths"] = len(s.solo)
        sl = s.slow
        if sl is None:
            sl = s.slow = _Slow(ts)
        sl.fresh += 1
        if nf or refused:
            probed = self._slow_probing(sl, ts, ctx.endpoint.name)
            if probed == 2 and judge and ("slow_probing" in s.signals or self._beyond("slow_probes", ep_host, key, sl.refused, self.min_slow, s)):
                suspicious = True
                if "slow_probing" not in s.signals:
                    new_signal = new_signal or "slow_probing"
                s.signals["slow_probing"] = {"distinct_endpoints": round(sl.refused, 1), "calls": round(sl.calls, 1)}
            elif probed or s.earlier:
                suspicious = True  # a new endpoint refused or not found: part of a sweep, should one show
        method = req.method
        if method != "GET" and method != "POST" and not (100 <= call.status < 400):
            # a method the API answers with success is its interface (WebDAV's PROPFIND, REPORT...)
            pk = zlib.crc32(path.encode("utf-8", "surrogatepass"))
            ms = s.methods.get(pk)
            if ms is None:
                if len(s.methods) >= 64:
                    s.methods.pop(next(iter(s.methods)))
                ms = s.methods[pk] = set()
            ms.add(method)
            unusual = method not in _COMMON_METHODS
            if unusual:
                s.unusual += 1
            if judge and (len(ms) >= self.min_methods or (unusual and s.unusual >= self.min_unusual)):
                suspicious = True
                if "method_fuzzing" not in s.signals:
                    new_signal = new_signal or "method_fuzzing"
                s.signals["method_fuzzing"] = {"methods": sorted(ms), "unusual_calls": s.unusual}
        if not suspicious or not judge:
            return []
        s.ring.push(call.id)
        if not s.signals:
            if not s.earlier:
                return []
            # a source flagged in the previous horizon goes on probing
            s.signals["earlier_scanning"] = sorted(s.earlier)
            new_signal = "earlier_scanning"
        if new_signal:
            ids = list(dict.fromkeys(s.pending + list(s.ring)))
            s.pending = []
            s.emitted = ts
            return [self._finding(call, ctx, key, s, ids, new_signal)]
        s.pending.append(call.id)
        if len(s.pending) >= self.flush_every or ts - s.emitted >= self.flush_s:
            ids = s.pending
            s.pending = []
            s.emitted = ts
            return [self._finding(call, ctx, key, s, ids, "")]
        return []

    def _slow_probing(self, sl: _Slow, ts: float, endpoint: str) -> int:
        """Fold a not-found or refused call into the source's long-horizon
        counters: 0 for an endpoint counted before, 1 for a new one, 2 when
        the source has probed ``min_slow`` distinct endpoints (decayed) and
        they are ``min_not_found_ratio`` of its (decayed) calls."""
        sl.decay(ts, self._slow_rate)
        h = zlib.crc32(endpoint.encode("utf-8", "surrogatepass"))
        seen = sl.seen
        new = h not in seen
        if new:
            if len(seen) >= self.slow_cap:
                del seen[next(iter(seen))]
            seen[h] = None
            sl.refused += 1.0
        if sl.refused >= self.min_slow and sl.refused >= self.min_not_found_ratio * sl.calls:
            return 2
        return 1 if new else 0

    def _finding(self, call: ApiCall, ctx: Context, key: str, s: _Recon, ids: list[str], trigger: str) -> Finding:
        sig = s.signals
        n = len(sig)
        sev = "high" if "exposed_secret" in sig or n >= 3 else "medium" if n >= 2 or "scanner_agent" in sig else "low"
        conf = min(0.98, 0.55 + 0.12 * n)
        names = ", ".join(k for k in _SIGNALS if k in sig)
        evidence: dict[str, Any] = {
            "signals": dict(sig),
            "calls": s.calls,
            "not_found": s.nf,
            "distinct_not_found_paths": len(s.nf_paths),
            "probed_paths": s.sample,
            "only_actor_templates": len(s.solo),
        }
        if s.norms:
            evidence["norms"] = dict(s.norms)
        if trigger:
            evidence["trigger"] = trigger
        return self.finding(
            call,
            ctx,
            summary=f"{call.actor.display} is scanning the API ({names}) over {s.calls} calls, {s.nf} not found",
            evidence=evidence,
            confidence=conf,
            severity=sev,
            key=f"{self.id}|{key}",
            event_ids=ids,
            first_seen=s.start,
        )
