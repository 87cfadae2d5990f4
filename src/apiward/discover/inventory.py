"""The API inventory: every endpoint seen, with its template, counts,
parameters and body schemas, auth posture, sensitive data, owner metadata,
first/last seen and a change log.

The pipeline calls, per call, :meth:`Inventory.resolve` (templating) and
:meth:`Inventory.observe` (fold the call into its endpoint record), then
:meth:`Inventory.drain_changes` once per batch for the lake's ``changes``
table.

Cost per call: counters, a few dict updates and a cached IP look-up (about
1 µs; ``resolve`` adds the templater's 2-7 µs, see
:mod:`apiward.discover.templating`, and ``bench/inventory.py``). Schema
learning (a walk of the parsed bodies, see :mod:`apiward.discover.schema`) is
sampled: every call until an endpoint has ``learn_first`` calls, then one in
``learn_every``, plus any call that brings a new status code or a new
top-level body field, and every call while a change on the endpoint is open
(to count the distinct actors exercising it).

Probes: a call answered 404 or 405, or never answered (status 0 with a
response object: a live capture whose upstream failed), says nothing about
what the server serves. It is resolved against the templates learned so far
but never teaches the templater, and when it does not land on a served
endpoint it is kept apart, in :attr:`Inventory.probes` (per host, method
and path: counts, statuses, first/last seen, the actors that sent it), not
as an endpoint. A served call on the same path later promotes it. When an
attack finding names an actor, the endpoints only its own calls created and
that never answered 2xx move to the probes (:meth:`Inventory.demote`: a
scan answered with redirects before it was recognised). Calls
without any response (request-only sources such as raw HTTP dumps) count
as served.

Template moves: when the templater merges paths into a template, or splits
a merge that later evidence contradicts, endpoint records are re-keyed
(merged records absorb one another; a split record is partitioned by the
concrete paths it saw, its learned state going to the side that got most of
its calls). Every move is queued as ``(host, method, old_template,
new_template)`` (a split queues one per side); :meth:`Inventory.drain_moves`
hands them over so that other per-endpoint state (baselines, detectors) can
be re-keyed the same way.

Bounded memory: per endpoint, capped parameter sets, capped schema trees
(``max_nodes``), capped sensitive-field map, a capped actor sample and at
most ``PATHS_KEPT`` concrete paths; at most ``max_probes`` probe paths.
"""

from __future__ import annotations


import ipaddress
import secrets
from datetime import datetime, timezone
from typing import Any

from apiward.discover.changes import Change, ChangeLog
from apiward.discover.schema import BodySchema, ParamSet, Tokenizer
from apiward.discover.templating import Templater, response_shape
from apiward.model.call import ApiCall
from apiward.model.context import EndpointRef, SensitiveHit
from apiward.model.keyed import LRU, NO_CAP

try:  # written by the sensitive-data helper
    from apiward.discover.compliance import COMPLIANCE
except ImportError:  # pragma: no cover
    COMPLIANCE = {}

__all__ = ["Inventory", "EndpointRecord", "ProbeRecord", "service_of", "is_probe", "STATUSES", "PARAM_LOCATIONS",
           "PROBE_STATUSES"]

STATUSES = ("documented", "shadow", "zombie", "orphan", "unknown")
PARAM_LOCATIONS = ("path", "query", "header", "cookie")

# Request headers that are transport, browser or tracing plumbing, not API
# parameters. Credentials (authorization, cookie) are auth, not parameters.
COMMON_HEADERS = frozenset(
    """
    accept accept-charset accept-encoding accept-language access-control-request-headers
    access-control-request-method authorization cache-control connection content-encoding content-length
    content-type cookie dnt expect forwarded host if-match if-modified-since if-none-match if-range
    if-unmodified-since keep-alive max-forwards origin pragma priority proxy-authorization proxy-connection
    range referer te trailer transfer-encoding upgrade upgrade-insecure-requests user-agent via
    x-forwarded-for x-forwarded-host x-forwarded-port x-forwarded-proto x-forwarded-scheme x-real-ip
    x-request-id x-correlation-id x-amzn-trace-id traceparent tracestate baggage b3 x-b3-traceid
    x-b3-spanid x-b3-parentspanid x-b3-sampled x-b3-flags x-envoy-attempt-count x-envoy-external-address
    x-envoy-decorator-operation x-envoy-expected-rq-timeout-ms x-envoy-original-path x-envoy-internal
    x-client-ip x-cloud-trace-context x-datadog-trace-id x-datadog-parent-id x-datadog-sampling-priority
    x-requested-with sec-ch-ua sec-ch-ua-mobile sec-ch-ua-platform sec-fetch-dest sec-fetch-mode
    sec-fetch-site sec-fetch-user sec-gpc purpose x-purpose x-moz http2-settings alt-used
    """.split()
)
API_KEY_HEADERS = ("x-api-key", "api-key", "apikey", "x-apikey", "x-auth-token", "x-access-token", "x-token")
SESSION_COOKIES = ("session", "sessionid", "session_id", "sid", "jsessionid", "phpsessid", "connect.sid")
OWNER_LABEL_PREFIXES = ("app.kubernetes.io/", "team", "owner", "squad", "app", "tier", "component")
MAX_SENSITIVE = 500
MAX_STATUSES = 24
ACTOR_SAMPLE = 256
PATHS_KEPT = 16  # concrete paths counted per endpoint (to partition it if its template splits)
PROBE_ACTORS = 16
#: statuses that say the path is not served: not found, method not allowed,
#: and 0 (a response object without an answer: the upstream failed)
PROBE_STATUSES = frozenset({0, 404, 405})
CREATED_BY_ACTORS = 20_000  # actors whose created endpoints are remembered (the least recent forgotten)
CREATED_BY_KEYS = 64  # endpoints remembered per actor


def is_probe(call: ApiCall) -> bool:
    """Was ``call`` answered 404/405 or never answered? (No response at all,
    as from request-only sources, is not a probe.)"""
    resp = call.response
    return resp is not None and resp.status in PROBE_STATUSES


def service_of(call: ApiCall) -> str:
    """The service a call belongs to: the workload's service when known, else
    the host without its port."""
    if call.workload.service:
        return call.workload.service
    return _host_service(call.request.host)


_host_services: dict[str, str] = {}


def _host_service(host: str) -> str:
    """The host without its port (memoised: few hosts, many calls)."""
    got = _host_services.get(host)
    if got is None:
        if host.startswith("["):
            got = host.split("]")[0] + "]"
        else:
            got = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        if len(_host_services) >= 4096:
            _host_services.clear()
        _host_services[host] = got
    return got


_media_types: dict[str, str] = {}


def _media_type(content_type: str) -> str:
    """``application/json; charset=utf-8`` -> ``application/json`` (memoised)."""
    got = _media_types.get(content_type)
    if got is None:
        got = content_type.split(";")[0].strip().lower()
        if len(_media_types) >= 1024:
            _media_types.clear()
        _media_types[content_type] = got
    return got


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z") if ts else ""


class EndpointRecord:
    """What the inventory knows about one endpoint (host, method, template)."""

    __slots__ = (
        "service", "host", "method", "template", "calls", "learned", "first_seen", "last_seen", "statuses",
        "auth_schemes", "unauth_2xx", "unauth_sensitive", "sensitive", "actors", "_actor_sample", "public_calls",
        "params", "request", "responses", "schemes", "namespace", "workload_service", "labels", "status",
        "spec_path", "deprecated", "sample_ids", "path_sample", "quiet", "change", "watch", "paths",
    )

    def __init__(self, service: str, host: str, method: str, template: str) -> None:
        self.service = service
        self.host = host
        self.method = method
        self.template = template
        self.calls = 0
        self.learned = 0
        self.first_seen = 0.0
        self.last_seen = 0.0
        self.statuses: dict[int, int] = {}
        self.auth_schemes: dict[str, int] = {}
        self.unauth_2xx = 0  # 2xx answers to calls without credentials
        self.unauth_sensitive = 0  # ... of which returned sensitive data
        self.sensitive: dict[str, list[str]] = {}  # "location|field" -> [classes]
        self.actors = 0  # distinct actors (capped count)
        self._actor_sample: set[str] = set()
        self.public_calls = 0  # calls from globally routable client IPs
        self.params: dict[str, ParamSet] = {}
        self.request: BodySchema | None = None
        self.responses: dict[int, BodySchema] = {}
        self.schemes: set[str] = set()
        self.namespace = ""
        self.workload_service = ""
        self.labels: dict[str, str] = {}
        self.status = "unknown"
        self.spec_path = ""
        self.deprecated = False
        self.sample_ids: list[str] = []
        self.path_sample = ""
        self.quiet = False
        self.change: Change | None = None  # the open new_endpoint change
        self.watch: list[Change] = []  # open changes on this endpoint
        #: concrete path -> calls, for the first ``PATHS_KEPT`` paths (a split partitions by them)
        self.paths: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k in self.__slots__:
            setattr(self, k, state.get(k))
        if self.paths is None:  # written before paths were counted
            self.paths = {self.path_sample: self.calls} if self.path_sample else {}

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.host, self.method, self.template)

    def classes(self) -> list[str]:
        return sorted({c for cs in self.sensitive.values() for c in cs})

    def sensitive_list(self) -> list[dict[str, Any]]:
        out = []
        for k, classes in sorted(self.sensitive.items()):
            loc, _, fld = k.partition("|")
            for c in classes:
                out.append({"location": loc, "field": fld, "class": c, "compliance": list(COMPLIANCE.get(c, []))})
        return out

    def auth_dict(self) -> dict[str, Any]:
        return {
            "schemes": sorted(self.auth_schemes),
            "scheme_calls": dict(sorted(self.auth_schemes.items())),
            "unauthenticated_2xx": self.unauth_2xx > 0,
            "unauthenticated_2xx_calls": self.unauth_2xx,
            "unauthenticated_sensitive": self.unauth_sensitive > 0,
        }

    def absorb(self, other: "EndpointRecord") -> None:
        """Fold an endpoint that turned out to be the same one (the templater
        merged its literal path into this template)."""
        self.calls += other.calls
        self.learned += other.learned
        if other.first_seen and (not self.first_seen or other.first_seen < self.first_seen):
            self.first_seen = other.first_seen
        self.last_seen = max(self.last_seen, other.last_seen)
        for st, n in other.statuses.items():
            self.statuses[st] = self.statuses.get(st, 0) + n
        for s, n in other.auth_schemes.items():
            self.auth_schemes[s] = self.auth_schemes.get(s, 0) + n
        self.unauth_2xx += other.unauth_2xx
        self.unauth_sensitive += other.unauth_sensitive
        for k, cs in other.sensitive.items():
            mine = self.sensitive.setdefault(k, []) if len(self.sensitive) < MAX_SENSITIVE or k in self.sensitive else None
            if mine is not None:
                mine.extend(c for c in cs if c not in mine)
        for a in other._actor_sample:
            if len(self._actor_sample) >= ACTOR_SAMPLE:
                break
            self._actor_sample.add(a)
        self.actors = len(self._actor_sample)
        self.public_calls += other.public_calls
        for loc, ps in other.params.items():
            mine_ps = self.params.get(loc)
            if mine_ps is None:
                self.params[loc] = ps
            else:
                for name, node in ps.params.items():
                    if name not in mine_ps.params and len(mine_ps.params) < mine_ps.max_params:
                        mine_ps.params[name] = node
        if other.request is not None and (self.request is None or other.request.samples > self.request.samples):
            self.request = other.request
        for st, bs in other.responses.items():
            cur = self.responses.get(st)
            if cur is None or bs.samples > cur.samples:
                self.responses[st] = bs
        self.schemes |= other.schemes
        if not self.labels:
            self.labels = other.labels
            self.namespace = self.namespace or other.namespace
            self.workload_service = self.workload_service or other.workload_service
        for i in other.sample_ids:
            if len(self.sample_ids) < 3 and i not in self.sample_ids:
                self.sample_ids.append(i)
        for p, n in other.paths.items():
            if p in self.paths or len(self.paths) < PATHS_KEPT:
                self.paths[p] = self.paths.get(p, 0) + n

    def split_off(self, template: str, calls: int, paths: dict[str, int]) -> "EndpointRecord":
        """A new record for the part of this one that turned out to be another
        endpoint (``calls`` of its calls, on ``paths``): counters move in
        proportion; learned parameters and schemas stay here (they were
        learned mostly from the larger part)."""
        part = EndpointRecord(self.service, self.host, self.method, template)
        share = calls / self.calls if self.calls else 0.0
        part.calls = calls
        part.first_seen, part.last_seen = self.first_seen, self.last_seen
        for st, n in self.statuses.items():
            moved = round(n * share)
            if moved:
                part.statuses[st] = moved
                self.statuses[st] = n - moved
        for sc, n in self.auth_schemes.items():
            moved = round(n * share)
            if moved:
                part.auth_schemes[sc] = moved
                self.auth_schemes[sc] = n - moved
        part.unauth_2xx = round(self.unauth_2xx * share)
        self.unauth_2xx -= part.unauth_2xx
        part.public_calls = round(self.public_calls * share)
        self.public_calls -= part.public_calls
        part._actor_sample = set(self._actor_sample)
        part.actors = self.actors
        part.schemes = set(self.schemes)
        part.namespace, part.workload_service, part.labels = self.namespace, self.workload_service, dict(self.labels)
        part.status, part.quiet = self.status, self.quiet
        part.path_sample = max(paths, key=paths.__getitem__) if paths else self.path_sample
        part.paths = dict(paths)
        for p in paths:
            self.paths.pop(p, None)
        self.calls -= calls
        if self.path_sample in paths and self.paths:
            self.path_sample = max(self.paths, key=self.paths.__getitem__)
        return part


class ProbeRecord:
    """A path that was only ever answered 404/405 or not answered (see the
    module docstring): kept apart from the served endpoints."""

    __slots__ = ("host", "method", "path", "template", "calls", "statuses", "first_seen", "last_seen", "actors")

    def __init__(self, host: str, method: str, path: str, template: str) -> None:
        self.host = host
        self.method = method
        self.path = path
        self.template = template  # what it resolved to when first seen
        self.calls = 0
        self.statuses: dict[int, int] = {}
        self.first_seen = 0.0
        self.last_seen = 0.0
        self.actors: list[str] = []  # the first ``PROBE_ACTORS`` actors

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k in self.__slots__:
            setattr(self, k, state.get(k))

    def add(self, ts: float, status: int, actor: str) -> None:
        self.calls += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if not self.first_seen or (ts and ts < self.first_seen):
            self.first_seen = ts
        if ts > self.last_seen:
            self.last_seen = ts
        if actor and len(self.actors) < PROBE_ACTORS and actor not in self.actors:
            self.actors.append(actor)

    def row(self) -> dict[str, Any]:
        return {
            "host": self.host, "method": self.method, "path": self.path, "template": self.template,
            "calls": self.calls, "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "first_seen": _iso(self.first_seen), "last_seen": _iso(self.last_seen),
            "actors": list(self.actors),
        }


class Inventory:
    """Endpoints keyed by (host, method, template), plus the change log and
    the result of the last spec diff.

    Knobs (constructor only): ``learn_first``/``learn_every`` sample schema
    learning; ``warmup_calls``/``warmup_seconds``: no new-endpoint/new-field
    changes are logged until the inventory has seen that many calls or that
    much event time (the first traffic is all "new"); ``field_warmup``:
    learned samples of a body or parameter location before a field there
    counts as new; ``change_window``: seconds of event time a change stays
    open counting actors; ``api_change_actors``: distinct actors that make a
    change an API change rather than a deviation; ``quiet_after``: seconds
    without calls before an endpoint is logged as gone quiet;
    ``max_probes``: probe paths kept (see the module docstring; more are
    counted in ``probes_dropped``).
    """

    def __init__(
        self,
        *,
        templater: Templater | None = None,
        learn_first: int = 50,
        learn_every: int = 20,
        max_nodes: int = 256,
        max_depth: int = 8,
        max_params: int = 64,
        warmup_calls: int = 1000,
        warmup_seconds: float = 3600.0,
        field_warmup: int = 20,
        change_window: float = 3600.0,
        api_change_actors: int = 5,
        quiet_after: float = 7 * 86400.0,
        max_probes: int = 10_000,
        max_endpoints: int = 50_000,
    ) -> None:
        self.templater = templater if templater is not None else Templater()
        #: one state record per endpoint (a checkpoint writes the ones that
        #: changed); never forgotten: over its cap (the memory budget's share)
        #: the least recently called endpoints wait in the state store
        self.endpoints: LRU[tuple[str, str, str], EndpointRecord] = LRU(max_endpoints, spill=True)
        self.learn_first = learn_first
        self.learn_every = max(1, learn_every)
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.max_params = max_params
        self.warmup_calls = warmup_calls
        self.warmup_seconds = warmup_seconds
        self.field_warmup = field_warmup
        self.quiet_after = quiet_after
        self.changes = ChangeLog(window=change_window, api_change_at=api_change_actors)
        self.tokenize = Tokenizer(secrets.token_bytes(16))
        self.total = 0
        self.start = 0.0
        self.clock = 0.0  # latest event time seen
        self.warm = warmup_calls <= 0
        self._last_quiet_check = 0.0
        # last spec diff (see apiward.discover.specdiff.apply)
        self.spec_source = ""
        self.spec_diffed_at = 0.0
        self.orphans: list[dict[str, Any]] = []
        #: (host, method, path) -> paths only answered 404/405 or not at all
        self.probes: LRU[tuple[str, str, str], ProbeRecord] = LRU(NO_CAP)  # bounded by max_probes
        self.max_probes = max_probes
        self.probes_dropped = 0
        #: actor -> endpoints its calls created (the first few), for :meth:`demote`
        self._created_by: LRU[str, list[tuple[str, str, str]]] = LRU(CREATED_BY_ACTORS)  # keyed records: a checkpoint writes who created
        #: template moves and splits not yet drained: (host, method, old, new)
        self._moves: list[tuple[str, str, str, str]] = []
        #: the templater's per-host structure version when records were last re-keyed
        self._versions: dict[str, int] = {}
        self._ipcache: dict[str, bool] = {}
        #: (service, host, method, template) -> the ref of calls without path parameters
        self._refs: dict[tuple[str, str, str, str], EndpointRef] = {}
        # per-learn scratch (avoids a closure per learned call)
        self._cur: tuple[EndpointRecord, str, str, float] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_ipcache"] = {}
        state["_refs"] = {}
        state["_cur"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_refs", {})
        self.__dict__.setdefault("probes", {})
        self.__dict__.setdefault("max_probes", 10_000)
        self.__dict__.setdefault("probes_dropped", 0)
        self.__dict__.setdefault("_created_by", LRU(CREATED_BY_ACTORS))
        self.__dict__.setdefault("_moves", [])
        self.__dict__.setdefault("_versions", {})

    # -- per call ---------------------------------------------------------------
    def resolve(self, call: ApiCall, *, learn: bool = True) -> EndpointRef:
        """Template ``call`` (learning from it first unless ``learn`` is
        False: frozen templates, as ``--mode detect`` wants). Cost: a
        templater observe and resolve (dict look-ups for a path seen
        before), the response shape of a 2xx JSON answer (memoised per key
        set) and, for endpoints without path parameters, a cached ref."""
        req = call.request
        wl = call.workload
        route = wl.route
        resp = call.response
        shape = None
        if learn and resp is not None and resp.status in PROBE_STATUSES:
            learn = False  # says nothing about what is served
        if learn and resp is not None and resp.body and not route and 200 <= resp.status < 300:
            # a cheap signature of the JSON answer (parsed once, cached on the
            # message): siblings answering alike are values of one parameter
            d = resp.__dict__
            shape = d.get("_tshape", 0)
            if shape == 0:
                shape = response_shape(resp.json())  # json() is None unless a JSON body
                d["_tshape"] = shape
        method, host, path = req.method, req.host, req.path
        templater = self.templater
        if learn:
            user = call.actor.user if call.actor is not None else ""
            templater.observe(method, host, path, route=route, response_shape=shape,
                              caller=user if len(user) >= 3 else "")
        template, params = templater.resolve(method, host, path, route=route)
        service = wl.service or _host_service(host)
        if params:
            return EndpointRef(service=service, host=host, method=method, template=template, path_params=params)
        key = (service, host, method, template)
        ref = self._refs.get(key)
        if ref is None:
            if len(self._refs) >= 65536:
                self._refs.clear()
            ref = self._refs[key] = EndpointRef(service=service, host=host, method=method, template=template)
        return ref

    def _public(self, ip: str) -> bool:
        got = self._ipcache.get(ip)
        if got is None:
            try:
                got = ipaddress.ip_address(ip.split("%")[0]).is_global
            except ValueError:
                got = False
            if len(self._ipcache) >= 65536:
                self._ipcache.clear()
            self._ipcache[ip] = got
        return got

    def known(self, ref: EndpointRef) -> bool:
        """Whether ``ref`` is a served endpoint of the inventory."""
        return (ref.host, ref.method, ref.template) in self.endpoints

    def note_probe(self, call: ApiCall, ref: EndpointRef) -> None:
        """Keep a call that learns nothing (an attack finding rests on it)
        among the probes when it asked for something never served and was
        answered with an error (or not at all): the probe list is what
        attackers tried, apart from the inventory. A method served 2xx on a
        learned template is an endpoint all the same: listed, nothing learned."""
        resp = call.response
        key = (ref.host, ref.method, ref.template)
        if resp is not None and (resp.status in PROBE_STATUSES or resp.status >= 400) and key not in self.endpoints:
            self._probe(call, ref, call.actor.key or call.actor.ip or call.src.ip)
        elif resp is not None and 200 <= resp.status < 300 and ref.path_params and key not in self.endpoints:
            # served to an attacker on a path template learned from others (PATCH
            # /accounts/{id}): the endpoint exists; it is listed, counters only --
            # nothing of the call (fields, values, actor) is learned as normal
            rec = EndpointRecord(ref.service, ref.host, ref.method, ref.template)
            self.endpoints.put(key, rec)  # over the cap, the least recently called record waits in the store
            rec.first_seen = rec.last_seen = call.ts
            rec.path_sample = call.request.path
            rec.calls = 1
            rec.statuses[resp.status] = 1

    def observe(self, call: ApiCall, ref: EndpointRef, hits: list[SensitiveHit], *, learn: bool = True) -> bool:
        """Fold ``call`` into its endpoint; True when the endpoint is new.
        With ``learn`` False (frozen) nothing changes: the answer only says
        whether the endpoint is unknown."""
        key = (ref.host, ref.method, ref.template)
        if not learn:
            return key not in self.endpoints
        rec = self.endpoints.touch(key)  # recently called: the last to wait in the store
        ts = call.ts
        actor = call.actor.key or call.actor.ip or call.src.ip
        resp = call.response
        if rec is None and resp is not None and resp.status in PROBE_STATUSES:
            self._probe(call, ref, actor)
            return False
        self.total += 1
        if ts > self.clock:
            self.clock = ts
        if not self.start or (ts and ts < self.start):
            self.start = ts
        if not self.warm and (self.total >= self.warmup_calls or self.clock - self.start >= self.warmup_seconds):
            self.warm = True
        new = rec is None
        path = call.request.path
        if rec is None:
            rec = EndpointRecord(ref.service, ref.host, ref.method, ref.template)
            self.endpoints.put(key, rec)  # over the cap, the least recently called record waits in the store
            rec.first_seen = ts
            rec.path_sample = path
            if self.warm:
                rec.change = self.changes.add(ts, "new_endpoint", ref.host, rec.name, actor=actor)
                rec.watch.append(rec.change)
            if self.probes:
                pr = self.probes.pop((ref.host, ref.method, path), None)
                if pr is not None:  # served after all
                    self._fold_probe(rec, pr)
            made = self._created_by.get(actor)
            if made is None:
                made = []
                self._created_by.put(actor, made)
            if len(made) < CREATED_BY_KEYS:
                made.append(key)  # (get() marked the record changed)
        paths = rec.paths
        c = paths.get(path)
        if c is not None:
            paths[path] = c + 1
        elif len(paths) < PATHS_KEPT:
            paths[path] = 1
        # counters -------------------------------------------------------------
        rec.calls += 1
        if ts < rec.first_seen:
            rec.first_seen = ts
        if ts > rec.last_seen:
            rec.last_seen = ts
        rec.quiet = False
        st = resp.status if resp is not None else 0
        statuses = rec.statuses
        c = statuses.get(st)
        if c is not None:
            statuses[st] = c + 1
        elif len(statuses) < MAX_STATUSES:
            statuses[st] = 1
        scheme = call.actor.auth_scheme
        if scheme:
            rec.auth_schemes[scheme] = rec.auth_schemes.get(scheme, 0) + 1
        elif 200 <= st < 300:
            rec.unauth_2xx += 1
            if hits:
                for h in hits:
                    if h.location == "response_body":
                        rec.unauth_sensitive += 1
                        break
        sample = rec._actor_sample
        if len(sample) < ACTOR_SAMPLE and actor not in sample:
            sample.add(actor)
            rec.actors = len(sample)
        ip = call.actor.ip or call.src.ip
        if ip and (self._ipcache.get(ip) or (ip not in self._ipcache and self._public(ip))):
            rec.public_calls += 1
        if hits:
            sens = rec.sensitive
            for h in hits:
                k = h.location + "|" + h.field
                classes = sens.get(k)
                if classes is None:
                    if len(sens) < MAX_SENSITIVE:
                        sens[k] = [h.cls]
                elif h.cls not in classes:
                    classes.append(h.cls)
        # sampled schema learning ---------------------------------------------
        n = rec.calls
        learn = n <= self.learn_first or n % self.learn_every == 0
        watch = rec.watch
        if watch:
            for w in watch:
                if w.closed:  # rebuilt only when a change closed
                    watch = rec.watch = [w for w in watch if not w.closed]
                    break
            if watch:
                learn = True
                if rec.change is not None and not rec.change.closed:
                    rec.change.add_actor(actor)
        if not learn:
            if resp is not None and st not in rec.responses and len(rec.responses) < MAX_STATUSES:
                learn = True
            else:
                # (``json()`` is cached and None for other kinds, which bring no keys)
                req = call.request
                if req.body:
                    rq = rec.request
                    learn = req.kind == "json" if rq is None else rq.has_new_top_keys(req.json())
            if not learn and resp is not None and resp.body:
                bs = rec.responses.get(st)
                learn = bs is not None and bs.has_new_top_keys(resp.json())
        if learn:
            self._learn(rec, call, ref, hits, actor)
        return new

    # -- probes ------------------------------------------------------------------
    def demote(self, actor: str) -> int:
        """``actor`` was named by an attack finding: the endpoints its own
        calls created that nobody else ever reached and that never answered
        2xx (a scanner's paths answered with redirects, 401s or 400s, which
        taught the inventory before the scan was recognised) move to the
        probes. What an attacker merely tried is not what the API serves; a
        path it was served (2xx) stays an endpoint. Returns how many moved."""
        made = self._created_by.pop(actor, None)
        if not made:
            return 0
        moved = 0
        for key in made:
            rec = self.endpoints.get(key)
            if rec is None or rec._actor_sample != {actor} or any(200 <= st < 300 for st in rec.statuses):
                continue
            del self.endpoints[key]
            moved += 1
            host, method, template = key
            share = max(1, rec.calls // max(1, len(rec.paths))) if rec.paths else rec.calls
            for path, n in (rec.paths or {rec.path_sample: rec.calls}).items():
                pkey = (host, method, path)
                pr = self.probes.get(pkey)
                if pr is None:
                    if len(self.probes) >= self.max_probes:
                        self.probes_dropped += 1
                        continue
                    pr = self.probes[pkey] = ProbeRecord(host, method, path, template)
                    pr.first_seen = rec.first_seen
                for st, c in rec.statuses.items():
                    pr.statuses[st] = pr.statuses.get(st, 0) + min(c, n or share)
                pr.calls += n or share
                pr.last_seen = max(pr.last_seen, rec.last_seen)
                if actor not in pr.actors and len(pr.actors) < PROBE_ACTORS:
                    pr.actors.append(actor)
        return moved

    def _probe(self, call: ApiCall, ref: EndpointRef, actor: str) -> None:
        req = call.request
        key = (ref.host, ref.method, req.path)
        pr = self.probes.get(key)
        if pr is None:
            if len(self.probes) >= self.max_probes:
                self.probes_dropped += 1
                return
            pr = self.probes[key] = ProbeRecord(ref.host, ref.method, req.path, ref.template)
        resp = call.response
        pr.add(call.ts, resp.status if resp is not None else 0, actor)

    @staticmethod
    def _fold_probe(rec: EndpointRecord, pr: ProbeRecord) -> None:
        """A probe path that turned out to be served: its calls join the endpoint."""
        rec.calls += pr.calls
        for st, n in pr.statuses.items():
            rec.statuses[st] = rec.statuses.get(st, 0) + n
        if pr.first_seen and (not rec.first_seen or pr.first_seen < rec.first_seen):
            rec.first_seen = pr.first_seen
        rec.last_seen = max(rec.last_seen, pr.last_seen)
        if pr.path in rec.paths or len(rec.paths) < PATHS_KEPT:
            rec.paths[pr.path] = rec.paths.get(pr.path, 0) + pr.calls

    def probe_rows(self, service: str | None = None) -> list[dict[str, Any]]:
        """Probe paths (never served), most called first."""
        rows = [pr.row() for pr in self.probes.values() if service is None or _host_service(pr.host) == service]
        rows.sort(key=lambda r: (-r["calls"], r["host"], r["path"], r["method"]))
        return rows

    def drain_moves(self) -> list[tuple[str, str, str, str]]:
        """Template moves and splits since the last drain, as ``(host, method,
        old_template, new_template)``, oldest first: re-key per-endpoint state
        kept elsewhere the same way (a split yields one entry per side, the
        side that kept the record's learned state first). The queue is
        bounded (the oldest 10,000 are kept)."""
        out, self._moves = self._moves, []
        return out

    def _moved(self, host: str, method: str, old: str, new: str) -> None:
        if len(self._moves) < 10_000:
            self._moves.append((host, method, old, new))

    # -- schema learning (sampled) -------------------------------------------------
    def _on_new(self, path: str, node: Any) -> None:
        cur = self._cur
        if cur is None:
            return
        rec, loc, actor, ts = cur
        ch = self.changes.add(ts, "new_field", rec.host, rec.name, f"{loc}:{path}", actor=actor)
        node.change = ch
        rec.watch.append(ch)

    def _on_type(self, path: str, node: Any, new_type: str) -> None:
        cur = self._cur
        if cur is None:
            return
        rec, loc, actor, ts = cur
        ch = self.changes.add(ts, "type_change", rec.host, rec.name, f"{loc}:{path}", f"{node.type} -> {new_type}", actor=actor)
        if node.change is None or node.change.closed:
            node.change = ch
        rec.watch.append(ch)

    def _learn(self, rec: EndpointRecord, call: ApiCall, ref: EndpointRef, hits: list[SensitiveHit], actor: str) -> None:
        rec.learned += 1
        ts = call.ts
        req = call.request
        tok = self.tokenize
        if len(rec.sample_ids) < 3:
            rec.sample_ids.append(call.id)
        rec.schemes.add(req.scheme)
        wl = call.workload
        if wl.labels or wl.namespace:
            if wl.namespace:
                rec.namespace = wl.namespace
            if wl.service:
                rec.workload_service = wl.service
            if wl.labels and not rec.labels:
                rec.labels = {k: v for k, v in wl.labels.items() if k.startswith(OWNER_LABEL_PREFIXES)}
        sens_by_loc: dict[str, dict[str, str]] = {}
        for h in hits:
            loc = "response_body" if h.location == "error_body" else h.location
            sens_by_loc.setdefault(loc, {})[h.field] = h.cls
        on_new = self._on_new if self.warm else None
        # parameters
        params = rec.params
        for loc, items in (
            ("path", ref.path_params),
            ("query", req.query),
            ("header", [(k, v) for k, v in req.headers if k not in COMMON_HEADERS]),
            ("cookie", list(req.cookies.items())),
        ):
            ps = params.get(loc)
            if not items:
                if ps is not None:
                    ps.samples += 1
                continue
            if ps is None:
                ps = params[loc] = ParamSet(self.max_params)
                if rec.learned > 1:
                    ps.samples = rec.learned - 1  # absent on earlier learned calls
            self._cur = (rec, loc, actor, ts)
            ps.learn(
                items, ts, sensitive=sens_by_loc.get(loc), tokenize=tok,
                on_new=on_new if ps.samples >= self.field_warmup else None,
                redact_all=loc == "cookie", actor=actor,
            )
        # request body
        if req.body:
            kind = req.kind
            value: Any = None
            if kind == "json":
                value = req.json()
            elif kind == "form":
                value = dict(req.form())
            elif kind == "multipart":
                value = {n: "" for n in req.multipart_fields()}
            if value is not None:
                bs = rec.request
                if bs is None:
                    bs = rec.request = BodySchema(self.max_nodes, self.max_depth)
                ct = _media_type(req.content_type) or "application/json"
                if len(bs.content_types) < 4 or ct in bs.content_types:
                    bs.content_types[ct] = bs.content_types.get(ct, 0) + 1
                self._cur = (rec, "request_body", actor, ts)
                bs.learn(
                    value, ts, sensitive=sens_by_loc.get("request_body"), tokenize=tok,
                    on_new=on_new if bs.samples >= self.field_warmup else None,
                    on_type=self._on_type if self.warm else None, actor=actor,
                )
        # response body, per status
        resp = call.response
        if resp is not None:
            st = resp.status
            bs = rec.responses.get(st)
            if bs is None:
                if len(rec.responses) >= MAX_STATUSES:
                    self._cur = None
                    return
                bs = rec.responses[st] = BodySchema(self.max_nodes, self.max_depth)
            ct = _media_type(resp.content_type)
            if ct and (len(bs.content_types) < 4 or ct in bs.content_types):
                bs.content_types[ct] = bs.content_types.get(ct, 0) + 1
            value = resp.json() if resp.body and resp.kind == "json" else None
            if value is not None:
                self._cur = (rec, "response_body", actor, ts)
                bs.learn(
                    value, ts, sensitive=sens_by_loc.get("response_body"), tokenize=tok,
                    on_new=on_new if bs.samples >= self.field_warmup else None,
                    on_type=self._on_type if self.warm else None, actor=actor,
                )
            else:
                bs.samples += 1
        self._cur = None

    # -- batches -------------------------------------------------------------------
    def templates_changed(self, host: str) -> bool:
        """Whether ``host``'s templates changed since records were last
        re-keyed (then :meth:`consolidate` has moves to make). One dict look-up."""
        return self.templater.version(host) != self._versions.get(host)

    def consolidate(self) -> int:
        """Re-key records whose paths the templater now templates otherwise:
        literal paths merged into a template (``/repos/alice/issues`` into
        ``/repos/{repo}/issues``) join its record; a record whose paths now
        resolve to several templates (a merge split by later evidence) is
        partitioned by the paths it counted (:meth:`EndpointRecord.split_off`).
        Probe paths that now resolve to a served endpoint join it. Only hosts
        whose templates changed since the last call are visited. Returns how
        many records moved."""
        templater = self.templater
        templater.settle()
        versions = self._versions
        endpoints = self.endpoints
        keys = endpoints.all_keys()  # spilled records too: a template change concerns them as much
        changed = {h: templater.version(h) for h in {k[0] for k in keys} | {k[0] for k in self.probes}
                   if templater.version(h) != versions.get(h)}
        if not changed:
            return 0
        moved = 0
        for key in keys:
            if key[0] not in changed:
                continue
            # a read that neither marks the record changed nor brings a
            # spilled one back: most records stay as they are
            rec = endpoints.peek(key)
            if rec is None:
                continue
            host, method, template = key
            paths = rec.paths or ({rec.path_sample: rec.calls} if rec.path_sample else {})
            groups: dict[str, dict[str, int]] = {}
            try:
                for p, n in paths.items():
                    groups.setdefault(templater.resolve(method, host, p)[0], {})[p] = n
            except Exception:  # a templater bug must not lose the inventory
                continue
            if not groups or (len(groups) == 1 and template in groups):
                continue
            # the side with most of the counted calls keeps the record
            order = sorted(groups, key=lambda t: -sum(groups[t].values()))
            rec = endpoints.get(key)  # split below (or re-keyed: then deleted): the record itself, in memory
            parts = [(t, rec.split_off(t, sum(groups[t].values()), groups[t])) for t in order[1:]]
            if order[0] != template:
                del self.endpoints[key]
                rec.template = order[0]
                parts.insert(0, (order[0], rec))
            for t, part in parts:
                self._moved(host, method, template, t)
                moved += 1
                target = self.endpoints.get((host, method, t))
                if target is None:
                    self.endpoints.put((host, method, t), part)
                else:
                    target.absorb(part)
                    if part.change is not None and not part.change.drained:
                        part.change.close()
                        part.change.drained = True  # the endpoint was not new after all
        for pkey in list(self.probes):
            host, method, path = pkey
            if host not in changed:
                continue
            try:
                now = templater.resolve(method, host, path)[0]
            except Exception:
                continue
            rec = self.endpoints.get((host, method, now))
            if rec is not None:
                self._fold_probe(rec, self.probes.pop(pkey))
        versions.update(changed)  # as of before the walk: a change during it is seen next time
        return moved

    def drain_changes(self, *, flush: bool = False) -> list[dict[str, Any]]:
        """Changes closed since the last drain, as lake rows (``ts, kind,
        host, endpoint, field, detail``; write them with
        :func:`apiward.discover.changes.changes_table`). ``flush`` closes
        every open change (call it when a run ends)."""
        self.consolidate()
        now = self.clock
        if flush or now - self._last_quiet_check >= 3600.0:
            self._last_quiet_check = now
            for key, rec in self.endpoints.each():
                if not rec.quiet and rec.calls >= 5 and now - rec.last_seen >= self.quiet_after:
                    rec = self.endpoints.get(key)  # the record itself (a spilled one is a copy), marked changed
                    rec.quiet = True
                    days = (now - rec.last_seen) / 86400.0
                    self.changes.add(now, "endpoint_quiet", rec.host, rec.name,
                                     detail=f"no calls for {days:.1f} days (last {_iso(rec.last_seen)}, {rec.calls} calls before)")
        return self.changes.drain(now, flush=flush)

    # -- views ---------------------------------------------------------------------
    def records(self, service: str | None = None) -> list[EndpointRecord]:
        recs = [r for _, r in self.endpoints.each() if service is None or r.service == service]
        return sorted(recs, key=lambda r: (r.service, r.template, r.method, r.host))

    def rows(self, *, owners: Any = None, findings: Any = None, service: str | None = None,
             details: bool = False) -> list[dict[str, Any]]:
        """The machine-readable inventory (``docs/inventory-schema.md``):
        one dict per endpoint, orphans from the last spec diff included.
        ``findings`` is an iterable of :class:`~apiward.model.finding.Finding`."""
        from apiward.discover.owners import resolve_owner
        from apiward.discover.risk import risk_score, score_record

        by_ep: dict[tuple[str, str], list[str]] = {}
        for f in findings or ():
            by_ep.setdefault((f.host, f.endpoint), []).append(f.severity)
        out = []
        for r in self.records(service):
            sev = by_ep.get((r.host, r.name), [])
            risk, factors = score_record(r, sev)
            owner, owner_src = resolve_owner(r.host, r.template, r.labels, r.namespace, owners)
            row: dict[str, Any] = {
                "service": r.service,
                "host": r.host,
                "method": r.method,
                "template": r.template,
                "calls": r.calls,
                "first_seen": _iso(r.first_seen),
                "last_seen": _iso(r.last_seen),
                "auth": r.auth_dict(),
                "sensitive": r.sensitive_list(),
                "owner": owner,
                "owner_source": owner_src,
                "risk": risk,
                "risk_factors": factors,
                "status": r.status,
                "statuses": {str(k): v for k, v in sorted(r.statuses.items())},
                "actors": r.actors,
                "public_calls": r.public_calls,
                "findings": len(sev),
                "namespace": r.namespace,
                "labels": dict(r.labels),
                "spec_path": r.spec_path,
                "deprecated": r.deprecated,
                "quiet": r.quiet,
            }
            if details:
                row["parameters"] = {loc: ps.to_dict() for loc, ps in r.params.items()}
                row["request_body"] = r.request.to_dict() if r.request is not None else None
                row["responses"] = {str(st): bs.to_dict() for st, bs in sorted(r.responses.items())}
            out.append(row)
        for o in self.orphans:
            if service is not None and o.get("service") != service:
                continue
            owner, owner_src = resolve_owner(o.get("host", ""), o["template"], {}, "", owners)
            risk, factors = risk_score(classes=[], sensitive_fields=0, calls=0, unauth_2xx=0, unauth_sensitive=0,
                                       auth_seen=False, public_calls=0, status="orphan")
            row = {
                "service": o.get("service", ""), "host": o.get("host", ""), "method": o["method"],
                "template": o["template"], "calls": 0, "first_seen": "", "last_seen": "",
                "auth": {"schemes": [], "scheme_calls": {}, "unauthenticated_2xx": False,
                         "unauthenticated_2xx_calls": 0, "unauthenticated_sensitive": False},
                "sensitive": [], "owner": owner, "owner_source": owner_src, "risk": risk, "risk_factors": factors,
                "status": "orphan", "statuses": {}, "actors": 0, "public_calls": 0, "findings": 0,
                "namespace": "", "labels": {}, "spec_path": o.get("spec_path", o["template"]),
                "deprecated": bool(o.get("deprecated")), "quiet": False,
            }
            out.append(row)
        return out

    def to_list(self) -> list[dict[str, Any]]:
        return self.rows()
