"""The pipeline: ingest -> discover -> learn/detect -> lake, in micro-batches.

:class:`Pipeline` owns the live objects of one state directory (actor
resolver, inventory, classifier, detectors, findings) and runs each batch
through the stages in order. For every call every detector scores before it
learns, so an attack is judged by what came before it. Same input, same
output: nothing here depends on wall-clock time or hash randomisation.

Crash safety: lake files are renamed into place; the state store commits
what changed, with per-file progress, after the lake files it covers.
Batches of file input have deterministic keys, so after a crash the batches
past the last snapshot are re-run and replace their own lake files.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import logging
import os
import time
import traceback
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import orjson

from apiward.config import Settings, load_settings
from apiward.detect.base import Detector
from apiward.detect.facts import facts
from apiward.detect.objects import use_secret
from apiward.detect.registry import build_detectors
from apiward.discover.changes import changes_table
from apiward.discover.inventory import Inventory
from apiward.ingest.base import Bad, ReadOptions
from apiward.ingest.registry import UnknownFormat, get_reader, read_file
from apiward.ingest.resume import content_fingerprint, find_mark, head_of, put_mark, stat_key
from apiward.lake.calls import calls_table
from apiward.lake.findings import finding_events_table, findings_by_day, incidents_by_day
from apiward.lake.redact import Redactor
from apiward.lake.store import Lake
from apiward.learn.trust import Trust
from apiward.model.call import ApiCall
from apiward.model.context import Context, EndpointRef
from apiward.model.finding import SEVERITIES, Finding, severity_rank
from apiward.learn.sketches import LRU
from apiward.state import StateDir
from apiward.state.budget import MemoryBudget, parse_size
from apiward.state.parts import restore, state_of

__all__ = ["Pipeline", "RunSummary", "FileCounts", "MODES", "StageErrors", "group_incidents"]

MODES = ("both", "learn", "detect")
#: at most this share of a long run goes to periodic checkpoints (see Pipeline.maybe_checkpoint)
CHECKPOINT_SHARE = 0.1
#: batches between two re-derivations of the tables' caps from the memory budget
BUDGET_EVERY = 4

log = logging.getLogger("apiward.pipeline")


class StageErrors:
    """Exceptions a stage or detector raised on single calls, caught so that
    the run goes on: counted per component (``detector:<id>``,
    ``discover:<part>``, ``lake``) and reported once per distinct error,
    with the event id of its first occurrence."""

    def __init__(self, on_error: Callable[[str], None] | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self.first: dict[str, str] = {}  # distinct error -> message (with event id)
        self.on_error = on_error

    def add(self, component: str, exc: BaseException, event_id: str) -> None:
        self.counts[component] += 1
        tb = traceback.extract_tb(exc.__traceback__)
        where = f"{os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else ""
        sig = f"{component}|{type(exc).__name__}|{where}"
        if sig in self.first or len(self.first) >= 1000:
            return
        msg = f"{component} failed on event {event_id}: {type(exc).__name__}: {exc} ({where}); the run goes on"
        self.first[sig] = msg
        log.warning("%s", msg, exc_info=exc)
        if self.on_error is not None:
            self.on_error(msg)

# Kill-chain order of the tactics findings carry, for incident summaries.
TACTIC_ORDER = (
    "reconnaissance", "discovery", "initial-access", "credential-access", "privilege-escalation",
    "defense-evasion", "persistence", "collection", "exfiltration", "impact",
)


class FileCounts(msgspec.Struct, kw_only=True):
    """One file's records this run: ``read = stored + quarantined +
    duplicates`` always holds (``skipped`` were stored by an earlier run
    and are not read again)."""

    format: str = ""
    read: int = 0
    stored: int = 0
    quarantined: int = 0
    duplicates: int = 0  # already stored from another file (a re-export)
    skipped: int = 0
    pending: int = 0  # an incomplete last record (a file being written): read again next run, not counted in read


class RunSummary(msgspec.Struct, kw_only=True):
    """What one run did, for the CLI's summary table and for scripts."""

    events: int = 0
    per_file: dict[str, FileCounts] = {}
    per_format: dict[str, int] = {}
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = {}
    skipped_already_ingested: int = 0
    files: int = 0
    failed_files: list[str] = []
    endpoints: int = 0
    findings: int = 0
    new_findings: int = 0
    stage_errors: dict[str, int] = {}  # component -> calls it failed on (detector:<id>, discover:<part>, lake)
    error_messages: list[str] = []  # one per distinct stage error
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _make_resolver(settings: Settings, secret: bytes) -> Any:
    from apiward.ingest.actor import DEFAULT_TRUSTED, ActorResolver

    return ActorResolver(
        jwt_claim=settings.jwt_claim,
        session_cookies=tuple(settings.session_cookies),
        api_key_headers=tuple(settings.api_key_headers),
        trusted_proxies=[*DEFAULT_TRUSTED, *settings.trusted_proxies],  # loopback is always trusted
        secret=secret,
    )


def _make_classifier(secret: bytes) -> Any:
    from apiward.discover.sensitive import Classifier

    return Classifier(secret=secret)


def group_incidents(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """Findings grouped per actor: one incident per actor with findings
    (sets each finding's ``incident``)."""
    by_actor: dict[str, list[Finding]] = {}
    for f in findings:
        if f.actor:
            by_actor.setdefault(f.actor, []).append(f)
    out = []
    for actor, fs in sorted(by_actor.items()):
        inc_id = "I-" + hashlib.blake2b(actor.encode(), digest_size=5).hexdigest()
        tactics = sorted({f.tactic for f in fs if f.tactic}, key=lambda t: TACTIC_ORDER.index(t) if t in TACTIC_ORDER else 99)
        sev = max((f.severity for f in fs), key=severity_rank)
        for f in fs:
            f.incident = inc_id
        out.append(
            {
                "id": inc_id,
                "actor": actor,
                "actor_display": fs[0].actor_display,
                "severity": sev,
                "finding_ids": sorted(f.id for f in fs),
                "tactics": tactics,
                "first_seen": min(f.first_seen for f in fs),
                "last_seen": max(f.last_seen for f in fs),
                "summary": f"{len(fs)} findings: " + ", ".join(sorted({f.detector for f in fs})),
            }
        )
    return out


#: cyclic GC thresholds while a pipeline runs (see :func:`lean_gc`)
GC_THRESHOLDS = (500_000, 20, 100)


@contextmanager
def lean_gc() -> Iterator[None]:
    """Collect cycles rarely while a pipeline runs. Events are short-lived
    but container-rich and freed by reference counting (a call's facts do
    not outlive its batch: :meth:`Pipeline.process`); with Python's default
    thresholds the collector spent as long as a detector re-walking young
    state (estate, 30,000 calls: 4.1 s of GC at 50,000 / 50 / 100, 1.2 s
    here, same RSS). What exists is frozen (never walked again). Not for a
    process that answers traffic itself: a pass over 500,000 young objects
    is a pause of tens of milliseconds (the proxy runs the pipeline in a
    worker process)."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


class Pipeline:
    """One state directory's pipeline. Not thread-safe: feed it from one
    thread (the capture proxy uses a single consumer thread)."""

    def __init__(
        self,
        state_dir: Path | str,
        *,
        mode: str = "both",
        settings: Settings | None = None,
        detectors: list[Detector] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self.mode = mode
        # or a StateDir: a partition's view of a state directory (apiward.state.partitions)
        self.state = state_dir if isinstance(state_dir, StateDir) else StateDir(state_dir)
        self.state.clean_temp()
        self.settings = settings or load_settings(state_dir=self.state.root)
        secret = self.state.secret()
        use_secret(secret)  # identifiers kept in state are keyed with the install's secret
        self.redactor = Redactor(secret, enabled=self.settings.redact and not self.settings.keep_raw_bodies)
        self.lake = Lake(self.state.lake)
        self.lake.clean_temp()
        self.resolver = _make_resolver(self.settings, secret)
        self.classifier = _make_classifier(secret)
        self.store = self.state.open_store()
        s = self.settings
        store = self.store
        self.inventory = restore(self._new_inventory(), store.load("inventory"))
        self.baselines = restore(self._new_baselines(), store.load("baselines"))
        self.trust = restore(Trust(), store.load("trust"))
        self.shared: dict[str, Any] = store.load("shared") or {}
        run = store.load("run") or {}
        self.findings: LRU[str, Finding] = run.get("findings") or LRU(10_000_000)
        self.progress: LRU[str, Any] = run.get("progress") or LRU(1_000_000)  # file marks (ingest/resume.py)
        # Content fingerprints of records from formats without ids (HAR): a re-export stores each entry once.
        self.seen: LRU[str, None] = run.get("seen") or LRU(1_000_000)
        self.totals: Counter[str] = run.get("totals") or Counter()
        self.detectors: list[Detector] = (
            detectors if detectors is not None else build_detectors(s.detectors or None, s.disable_detectors, s.detector_options)
        )
        for det in self.detectors:
            restore(det, store.load(f"detector:{getattr(det, 'id', type(det).__name__)}"))
        store.attach(self.components())  # spilling tables spill from the first call on
        # every keyed table's cap derives from the memory budget (apiward.state.budget)
        self.budget = MemoryBudget(parse_size(s.memory_budget))
        self.budget.start(self.components())
        self.budget.apply(self.components())
        self._batches = 0
        self._dirty_findings: set[str] = set()
        # Recent event ids per finding (in memory): a finding re-emitted
        # with a sliding window of events counts and links each event once.
        self._recent_events: OrderedDict[str, OrderedDict[str, None]] = OrderedDict()
        self._finding_rows: list[tuple[str, str, float, str, str, str]] = []
        self._event_ts: dict[str, float] = {}
        self.errors = StageErrors()
        self.lake_rejected = 0  # calls whose lake row could not be built (quarantined), for the run's counts
        self._last_checkpoint = time.monotonic()
        self._checkpoint_cost = 0.0  # seconds the last checkpoint took
        self._live_seq = 0
        self._run_id = hashlib.blake2b(f"{os.getpid()}-{time.time_ns()}".encode(), digest_size=4).hexdigest()
        # File runs of one partition of a state (apiward.parallel): ``owns(call)`` says whether
        # a call is this pipeline's, ``owns_bad`` whether it quarantines and counts bad
        # records (one partition does), ``batch_suffix`` keeps its lake files apart.
        self.owns: Callable[[ApiCall], bool] | None = None
        self.owns_bad = True
        self.batch_suffix = ""
        # Alert delivery (apiward.alert): fed after each checkpoint, delivers from its own thread.
        self.alerts = _alert_dispatcher(self.state.root, self.settings)

    # -- construction helpers ---------------------------------------------
    def _new_inventory(self) -> Inventory:
        from apiward.discover.templating import Templater

        kwargs: dict[str, Any] = {}
        if self.settings.templating_overrides:
            kwargs["overrides"] = dict(self.settings.templating_overrides)
        if self.settings.never_merge:
            kwargs["never_merge"] = list(self.settings.never_merge)
        templater = Templater(**kwargs)
        inv = Inventory(templater=templater)
        from apiward.discover.specs import spec_routes

        for spec in self.settings.spec:
            templater.add_routes(spec_routes(spec))
        return inv

    def _new_baselines(self) -> Any:
        try:
            from apiward.learn.baselines import Baselines
        except ImportError:
            return None
        return Baselines()

    # -- the stages ---------------------------------------------------------
    def discover(self, calls: list[ApiCall], *, learn: bool | None = None) -> list[Context]:
        """Resolve actors (unless the source already did), templates and
        sensitive data; fold each call into the inventory (frozen in
        ``detect`` mode, or when ``learn`` is False: templates and endpoints
        as learned). A part that fails on a call is counted and the call
        goes on with what is known (its literal path as the endpoint, no
        sensitive hits)."""
        if learn is None:
            learn = self.mode != "detect"
        return [self._discover_one(call, learn) for call in calls]

    def _discover_one(self, call: ApiCall, learn: bool) -> Context:
        errors = self.errors
        inv = self.inventory
        resolver = self.resolver
        if resolver is not None and not call.actor.key:
            try:
                call.actor = resolver.resolve(call)
            except Exception as exc:
                errors.add("discover:actor", exc, call.id)
        try:
            ref = inv.resolve(call, learn=learn)
        except Exception as exc:
            errors.add("discover:templating", exc, call.id)
            req = call.request
            ref = EndpointRef(host=req.host, method=req.method, template=req.path)
        hits: list[Any] = []
        if self.classifier is not None:
            try:
                hits = self.classifier.classify_call(call)
            except Exception as exc:
                errors.add("discover:sensitive", exc, call.id)
        try:
            new = inv.observe(call, ref, hits, learn=learn)
        except Exception as exc:
            errors.add("discover:inventory", exc, call.id)
            new = False
        return Context(endpoint=ref, sensitive=hits, mode=self.mode, inventory=inv, baselines=self.baselines, new_endpoint=new,
                       trust=self.trust, shared=self.shared)

    def _learn_inventory(self, call: ApiCall, ctx: Context) -> None:
        """``both`` mode, after scoring: an unflagged call teaches the
        templates and the inventory (a call an attack finding rests on
        teaches neither: attack paths never become endpoints or reshape
        templates). Learners then see the endpoint as learned."""
        inv = self.inventory
        try:
            ref = inv.resolve(call, learn=True)
        except Exception as exc:
            self.errors.add("discover:templating", exc, call.id)
            return
        try:
            inv.observe(call, ref, ctx.sensitive, learn=True)
        except Exception as exc:
            self.errors.add("discover:inventory", exc, call.id)
        if ref != ctx.endpoint:
            ctx.endpoint = ref

    def _move_endpoints(self) -> None:
        """Templates merged or split: detectors with per-endpoint state
        re-key it (``move_endpoint``), so that what a function's callers
        taught under its literal paths holds under its template."""
        try:
            self.inventory.consolidate()
        except Exception as exc:
            self.errors.add("discover:inventory", exc, "consolidate")
            return
        moves = self.inventory.drain_moves()
        hooks = [(getattr(d, "id", type(d).__name__), h) for d in self.detectors if (h := getattr(d, "move_endpoint", None)) is not None]
        for host, method, old, new in moves:
            if old == new:
                continue
            for det_id, hook in hooks:
                try:
                    hook(f"{host}|{method} {old}", f"{host}|{method} {new}")
                except Exception as exc:
                    self.errors.add(f"detector:{det_id}", exc, f"{method} {old}")

    def run(self, calls: list[ApiCall]) -> tuple[list[Context], list[Finding]]:
        """Discover and detect, call by call. In ``both`` mode each call is
        scored against what earlier calls taught and then, unless flagged,
        teaches the inventory and the learners; ``learn`` and ``detect``
        discover the batch first (the result is the same: nothing is scored,
        or nothing is learned)."""
        if self.mode != "both":
            ctxs = self.discover(calls)
            return ctxs, self.detect(calls, ctxs)
        ctxs = []
        found: list[Finding] = []
        for call in calls:
            ctx = self._discover_one(call, False)
            ctxs.append(ctx)
            found.extend(self.detect([call], [ctx], inventory_after=True))
        return ctxs, found

    def detect(self, calls: list[ApiCall], ctxs: list[Context], *, inventory_after: bool = False) -> list[Finding]:
        """Score then learn, call by call, detector by detector. A detector
        that raises on a call is counted and skipped for that call only.

        Between the two, the call's facts get the verdicts learners obey
        (:mod:`apiward.learn.trust`): ``flagged`` when an attack finding
        rests on the call (it then teaches nothing) and ``trusted`` when its
        actor is an established principal no detector flagged (only those
        make a change normal). Actors named by attack findings are flagged."""
        out: list[Finding] = []
        mode = self.mode
        score = mode != "learn"
        learn = mode != "detect"
        baselines = self.baselines
        detectors = self.detectors
        errors = self.errors
        trust = self.trust
        named: set[str] = set()  # actors attack findings named in this batch
        for call, ctx in zip(calls, ctxs):
            fx = facts(call, ctx)
            if score:
                here: list[Finding] = []
                for det in detectors:
                    try:
                        found = det.score_one(call, ctx)
                    except Exception as exc:
                        errors.add(f"detector:{getattr(det, 'id', type(det).__name__)}", exc, call.id)
                        continue
                    if found:
                        here.extend(found)
                if here:
                    cid = call.id
                    for f in here:
                        if f.kind == "attack":
                            if f.actor:
                                trust.flag(f.actor, call.ts)
                                named.add(f.actor)
                            if not fx.flagged and cid in f.event_ids:
                                fx.flagged = True
                    out.extend(here)
            if learn:
                if inventory_after:
                    akey = call.actor.key or call.actor.ip
                    if not fx.flagged and call.status >= 400 and trust.flagged(akey, call.ts) \
                            and not self.inventory.known(ctx.endpoint):
                        fx.flagged = True  # an actor attacks findings named, refused on a path never served: a probe
                    if not fx.flagged:
                        self._learn_inventory(call, ctx)
                        if self.inventory.templates_changed(ctx.endpoint.host):
                            self._move_endpoints()
                    else:
                        try:
                            self.inventory.note_probe(call, ctx.endpoint)
                        except Exception as exc:
                            self.errors.add("discover:inventory", exc, call.id)
                akey = call.actor.key or call.actor.ip
                fx.trusted = mode == "learn" or trust.trusted(akey, call.ts)
                for det in detectors:
                    try:
                        det.learn_one(call, ctx)
                    except Exception as exc:
                        errors.add(f"detector:{getattr(det, 'id', type(det).__name__)}", exc, call.id)
                if baselines is not None:
                    try:
                        baselines.learn_one(call, ctx)
                    except Exception as exc:
                        errors.add("learn:baselines", exc, call.id)
                trust.observe(akey, call.ts)
        if named and learn and inventory_after:
            # what the named actors' earlier calls taught before they were recognised
            for a in named:
                try:
                    self.inventory.demote(a)
                except Exception as exc:
                    self.errors.add("discover:inventory", exc, a)
        return out

    def record(self, found: list[Finding]) -> int:
        """Merge findings by key; returns how many are new. Each event a
        finding rests on is linked once (``finding_events`` in the lake)."""
        new = 0
        rows = self._finding_rows
        recent_all = self._recent_events
        event_ts = self._event_ts
        for f in found:
            recent = recent_all.get(f.id)
            if recent is None:
                # a finding from an earlier run (or before a crash): the events it keeps are linked already
                cur = self.findings.get(f.id)
                recent = recent_all[f.id] = OrderedDict.fromkeys(cur.event_ids) if cur is not None else OrderedDict()
                if len(recent_all) > 20_000:
                    recent_all.popitem(last=False)
            else:
                recent_all.move_to_end(f.id)
            fresh = [e for e in dict.fromkeys(f.event_ids) if e not in recent]
            for e in fresh:
                recent[e] = None
                rows.append((f.id, e, event_ts.get(e, f.last_seen), f.detector, f.kind, f.actor))
            while len(recent) > 512:
                recent.popitem(last=False)
            cur = self.findings.get(f.id)
            if cur is None:
                f.events = len(fresh)
                self.findings[f.id] = f
                new += 1
            else:
                cur.merge(f, new_events=len(fresh))
            self._dirty_findings.add(f.id)
        return new

    def process(self, calls: list[ApiCall], *, batch_key: str | None = None, autocheckpoint: bool = True) -> list[Finding]:
        """Run one micro-batch through every stage and write it to the lake.

        ``batch_key`` names the lake file; pass a deterministic one for
        replayable input (file runs do), else a unique one is made."""
        if not calls:
            return []
        ctxs, found = self.run(calls)
        self._event_ts = {c.id: c.ts for c in calls}
        self.record(found)
        if batch_key is None:
            self._live_seq += 1
            batch_key = f"live-{self._run_id}-{self._live_seq:06d}"
        self.lake.write_partitioned("calls", self._calls_table(calls, ctxs), batch_key)
        for x in ctxs:
            x.facts = None  # facts point back at their context: freed now, not by a rare full GC (memory high-water)
        self._write_finding_events(batch_key)
        self._write_changes(batch_key)
        self.totals["events"] += len(calls)
        self._batches += 1
        if self._batches % BUDGET_EVERY == 0:
            self.budget.apply(self.components())
        if autocheckpoint:
            self.maybe_checkpoint()
        return found

    def _calls_table(self, calls: list[ApiCall], ctxs: list[Context]) -> Any:
        """The batch's lake rows; a call whose row cannot be built is
        counted (``lake``) and quarantined, the others are written."""
        cap, classified = self.settings.lake_body_cap, self.classifier is not None
        try:
            return calls_table(calls, ctxs, self.redactor, cap, classified=classified)
        except Exception:
            keep_c, keep_x = [], []
            for c, x in zip(calls, ctxs):
                try:
                    calls_table([c], [x], self.redactor, cap, classified=classified)
                except Exception as exc:
                    self.errors.add("lake", exc, c.id)
                    self.lake_rejected += 1
                    self.quarantine("lake", c.source or "live", -1, Bad(f"lake row: {type(exc).__name__}: {exc}"), event_id=c.id)
                    continue
                keep_c.append(c)
                keep_x.append(x)
            return calls_table(keep_c, keep_x, self.redactor, cap, classified=classified)

    def _write_finding_events(self, key: str) -> None:
        rows, self._finding_rows = self._finding_rows, []
        if rows:
            self.lake.write_partitioned("finding_events", finding_events_table(rows), key)

    def maybe_checkpoint(self) -> None:
        """Checkpoint when ``checkpoint_seconds`` have passed since the last
        one, and no sooner than a checkpoint costing ``c`` seconds leaves
        ``c / CHECKPOINT_SHARE`` seconds of processing between two (a large
        state is then persisted less often instead of taking most of the
        run; what a crash costs is re-running those batches, never data).
        ``checkpoint_seconds = 0`` checkpoints after every batch."""
        every = self.settings.checkpoint_seconds
        if every > 0:
            every = max(every, self._checkpoint_cost * (1 - CHECKPOINT_SHARE) / CHECKPOINT_SHARE)
        if time.monotonic() - self._last_checkpoint >= every:
            self.checkpoint()

    def flush_pending(self) -> list[Finding]:
        """End of a stream: detectors that defer judgments (an optional
        ``flush(baselines)`` hook) judge what they still hold now. Call it
        when no more traffic of this stream will come; a live or resumable
        stream should not, since pending judgments survive restarts."""
        found: list[Finding] = []
        for det in self.detectors:
            flush = getattr(det, "flush", None)
            if flush is not None:
                try:
                    found.extend(flush(self.baselines))
                except Exception as exc:
                    self.errors.add(f"detector:{getattr(det, 'id', '?')}", exc, "flush")
        self.record(found)
        self._write_finding_events(f"flush-{self._run_id}")
        return found

    # -- persistence ----------------------------------------------------------
    def incidents(self) -> list[dict[str, Any]]:
        """Findings grouped per actor: one incident per actor with findings."""
        return group_incidents(self.findings.values())

    def components(self) -> dict[str, dict[str, Any]]:
        """Every stateful part by its component name in the state store."""
        shared = tuple(self.shared.values())
        comps: dict[str, dict[str, Any]] = {
            "inventory": state_of(self.inventory),
            "trust": state_of(self.trust),
            "shared": dict(self.shared),
            "run": {"findings": self.findings, "progress": self.progress, "totals": self.totals, "seen": self.seen},
        }
        if self.baselines is not None:
            comps["baselines"] = state_of(self.baselines)
        for det in self.detectors:
            comps[f"detector:{getattr(det, 'id', type(det).__name__)}"] = state_of(det, skip=shared)
        return comps

    def checkpoint(self) -> dict[str, int]:
        """Persist findings and incidents to the lake, then what changed in
        the state store (one transaction, after the lake files it covers).
        Returns the store's counts (records written and deleted)."""
        t0 = time.monotonic()
        if self._dirty_findings:
            self._publish_findings()
        comps = self.components()
        self.budget.apply(comps)  # caps first: what they evict or spill is written in this same transaction
        counts = self.store.save(comps)
        now = time.monotonic()
        self._checkpoint_cost = now - t0
        self._last_checkpoint = now
        return counts

    def _publish_findings(self) -> None:
        """Findings and incidents to the lake and the alert outbox (a
        partition leaves this to the actor stage, apiward.parallel)."""
        incidents = self.incidents()
        # Findings are few: rewrite the day files that hold them whole.
        self.lake.replace_days("findings", findings_by_day(list(self.findings.values())))
        self.lake.replace_days("incidents", incidents_by_day(incidents))
        if self.alerts is not None:
            _feed_alerts(self.alerts, self.findings, self._dirty_findings, incidents)
        self._dirty_findings.clear()

    def _write_changes(self, key: str, flush: bool = False) -> None:
        rows = self.inventory.drain_changes(flush=flush)
        if rows:
            self.lake.write_partitioned("changes", changes_table(rows), key)

    def close(self, *, prune: bool = True) -> None:
        """Close open API changes, checkpoint, apply retention (unless
        ``prune`` is False: the parent of partitions prunes once)."""
        self._write_changes(f"close-{self._run_id}", flush=True)
        self.checkpoint()
        if prune:
            self.lake.prune(self.settings.retention_days)
        if self.alerts is not None:
            self.alerts.close()

    # -- file runs --------------------------------------------------------------
    def quarantine(self, source: str, path: str, index: int, bad: Bad, *, event_id: str = "") -> None:
        # the same redaction as the lake: a record that could not be parsed
        # still carries its passwords and tokens (escaped, in headers, in URLs)
        raw = self.redactor.text(bad.raw[:4096]) if bad.raw else b""
        rec = {
            "file": path,
            "record": index,
            "event_id": event_id or None,
            "reason": self.redactor.text(bad.reason.encode()).decode("utf-8", "replace"),
            "raw": raw.decode("utf-8", "replace"),
            "raw_b64": base64.b64encode(raw).decode() if b"\x00" in raw else None,
        }
        with open(self.state.quarantine / f"{source}.bad.jsonl", "ab") as f:
            f.write(orjson.dumps(rec) + b"\n")

    def run_files(
        self,
        paths: Iterable[str],
        *,
        fmt: str | None = None,
        on_progress: Callable[[int], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> RunSummary:
        """Ingest files in order. A file that cannot be read at all is
        reported and skipped; a bad record is quarantined and counted."""
        t0, c0 = time.perf_counter(), time.process_time()
        with lean_gc():
            return self._run_files(paths, fmt, on_progress, on_error, t0, c0)

    def _run_files(
        self,
        paths: Iterable[str],
        fmt: str | None,
        on_progress: Callable[[int], None] | None,
        on_error: Callable[[str], None] | None,
        t0: float,
        c0: float,
    ) -> RunSummary:
        summary = RunSummary()
        if on_error is not None:
            self.errors.on_error = on_error
        per_format: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        batch_size = self.settings.batch_size
        findings_before = len(self.findings)
        for path in paths:
            summary.files += 1
            name = os.path.basename(path)
            counts = summary.per_file[path] = FileCounts()
            try:
                used_fmt, records = read_file(path, fmt, self._read_options(name))
                dedup = bool(getattr(get_reader(used_fmt), "dedup_by_content", False))
                if dedup:
                    # Such a file is never appended to, only exported again: read
                    # it whole when it changed; entries stored before are skipped
                    # by content. The id changes with the content (no lake file
                    # of an earlier export is replaced), not on a crash re-run.
                    head = b""
                    fp = stat_key(path)
                    start = self.progress.get(fp, 0)
                else:
                    head = head_of(path)
                    fp, start = find_mark(self.progress, name, head)
                    if start == 0:
                        start = self.progress.get(stat_key(path), 0)  # progress written before marks
            except (OSError, UnknownFormat) as exc:
                msg = f"{path}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
                summary.failed_files.append(msg)
                if on_error:
                    on_error(msg)
                continue
            counts.format = used_fmt

            def mark(next_index: int, fp: str = fp, head: bytes = head, dedup: bool = dedup) -> None:
                if dedup:
                    self.progress[fp] = next_index
                else:
                    put_mark(self.progress, name, head, fp, next_index)

            seen = self.seen
            owns, owns_bad = self.owns, self.owns_bad
            held: tuple[int, Bad] | None = None  # a truncated record, if it is the file's last: pending
            batch: list[ApiCall] = []
            batch_start = start
            next_index = start
            last_index = -1
            it = iter(records)
            while True:
                # Only the reader's own failure is a read error; the stages
                # below isolate their failures per call (StageErrors), so a
                # batch is processed once and only once.
                try:
                    index, item = next(it)
                except StopIteration:
                    break
                except Exception as exc:  # a reader failure past a point: report it, keep what was read
                    if not owns_bad:
                        break
                    bad = Bad(f"read error after record {last_index}: {type(exc).__name__}: {exc}")
                    self.quarantine(name, path, last_index + 1, bad)
                    summary.quarantined += 1
                    counts.read += 1
                    counts.quarantined += 1
                    reasons["read error"] += 1
                    if on_error:
                        on_error(f"{path}: {bad.reason}")
                    break
                last_index = index
                if index < start:
                    summary.skipped_already_ingested += 1
                    counts.skipped += 1
                    continue
                if held is not None:  # not the last record after all
                    h_index, h_bad = held
                    held = None
                    if owns_bad:
                        counts.read += 1
                        counts.quarantined += 1
                        summary.quarantined += 1
                        self.quarantine(name, path, h_index, h_bad)
                        reasons[h_bad.reason.split(":")[0][:60]] += 1
                    next_index = h_index + 1
                if isinstance(item, Bad) and item.reason.startswith("truncated"):
                    # a file being written ends inside a record: read it again next run
                    held = (index, item)
                    continue
                if not (owns_bad if isinstance(item, Bad) else owns is None or owns(item)):
                    pass  # another partition's record (apiward.parallel): it counts and stores it
                elif dedup and not isinstance(item, Bad) and (key := content_fingerprint(item)) in seen:
                    seen.touch(key)
                    counts.read += 1
                    counts.duplicates += 1
                elif isinstance(item, Bad):
                    counts.read += 1
                    self.quarantine(name, path, index, item)
                    summary.quarantined += 1
                    counts.quarantined += 1
                    reasons[item.reason.split(":")[0][:60]] += 1
                    if on_error:
                        on_error(f"{path} record {index}: {item.reason}")
                else:
                    if dedup:
                        seen[key] = None
                    counts.read += 1
                    batch.append(item)
                    per_format[used_fmt] += 1
                next_index = index + 1
                if next_index - batch_start >= batch_size:
                    self._flush_file_batch(batch, fp, batch_start, next_index, summary, counts, on_progress, mark)
                    batch = []
                    batch_start = next_index
            self._flush_file_batch(batch, fp, batch_start, next_index, summary, counts, on_progress, mark)
            if held is not None and owns_bad:
                counts.pending = 1
                if on_error:
                    on_error(f"{path} record {held[0]}: {held[1].reason} (the file's last record: read again on the next run)")
        self.checkpoint()
        summary.stage_errors = dict(self.errors.counts)
        summary.error_messages = list(self.errors.first.values())
        summary.per_format = dict(per_format)
        summary.quarantine_reasons = dict(reasons)
        summary.endpoints = self.inventory.endpoints.size()
        summary.findings = len(self.findings)
        summary.new_findings = len(self.findings) - findings_before
        summary.seconds = time.perf_counter() - t0
        summary.cpu_seconds = time.process_time() - c0
        return summary

    def _read_options(self, name: str) -> ReadOptions:
        s = self.settings
        return ReadOptions(
            body_cap=s.body_cap, source_name=name, max_record_bytes=s.max_record_bytes, max_line_bytes=s.max_line_bytes,
            max_depth=s.max_depth, max_file_bytes=s.max_file_bytes, max_gzip_ratio=s.max_gzip_ratio,
        )

    def _flush_file_batch(
        self,
        batch: list[ApiCall],
        fp: str,
        batch_start: int,
        next_index: int,
        summary: RunSummary,
        counts: FileCounts,
        on_progress: Callable[[int], None] | None,
        mark: Callable[[int], None],
    ) -> None:
        if next_index <= batch_start and not batch:
            return
        rejected = 0
        if batch:
            self.lake_rejected = 0
            self.process(batch, batch_key=f"{fp}-{batch_start:09d}{self.batch_suffix}", autocheckpoint=False)
            rejected = self.lake_rejected  # quarantined by the lake stage: not stored
        summary.events += len(batch) - rejected
        summary.quarantined += rejected
        counts.stored += len(batch) - rejected
        counts.quarantined += rejected
        mark(next_index)
        self.maybe_checkpoint()
        if on_progress:
            on_progress(len(batch))


# -- alert delivery hook (apiward.alert) -------------------------------------------------

def _alert_dispatcher(state_root: Path, settings: Settings) -> Any:
    """The alert dispatcher when sinks are configured, else ``None``."""
    if not settings.sinks:
        return None
    from apiward.alert.dispatcher import AlertDispatcher

    return AlertDispatcher(state_root, settings)


def _feed_alerts(dispatcher: Any, findings: dict[str, Finding], changed: set[str], incidents: list[dict[str, Any]]) -> None:
    """Queue alerts for what changed (SQLite inserts; delivery is the
    dispatcher's thread). A failure here is logged, never raised."""
    try:
        dispatcher.on_checkpoint(findings, set(changed), incidents)
    except Exception as exc:
        log.warning("alert outbox: %s", exc, exc_info=exc)


def severity_at_least(findings: Iterable[Finding], minimum: str) -> list[Finding]:
    floor = SEVERITIES.index(minimum)
    return [f for f in findings if severity_rank(f.severity) >= floor]
