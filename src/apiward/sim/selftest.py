"""Self-test: how well does apiward detect the attacks it is shown?

Runs labelled traffic (the simulator's benign users and attacker playbooks
against the demo API, recorded in virtual time; or those playbook events
injected into a user's own recorded baseline traffic) through a fresh
:class:`~apiward.pipeline.Pipeline`, then scores the findings against the
ground truth (:mod:`apiward.sim.labels`), per attack class:

- **detected**: some finding's ``event_ids`` contain an event of the class;
- **recall**: share of the class's attack events some finding contains;
- **time / events to first detection**: virtual seconds from the start of
  an attack instance to the event that triggered the first finding covering
  it, and how many of the instance's events had been sent by then (median
  over detected instances);

and overall the false-positive rates: benign actors with any finding (or any
of their events in one) over all benign actors, and benign events in
findings over all benign events. Actors are what the pipeline resolved, so
a stolen benign token used by an attacker makes that actor "mixed", counted
on neither side.

Detection times come from the findings each micro-batch returns (the raw,
unmerged ones); the triggering event is the latest event a raw finding
names, so the figures are exact to the event, not to the batch.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from apiward.model.call import ApiCall
from apiward.model.finding import Finding

__all__ = ["ClassResult", "SelftestReport", "Scorer", "evaluate", "run_pipeline", "inject", "run_selftest"]


class ClassResult(msgspec.Struct, kw_only=True):
    """One attack class's figures."""

    attack: str
    instances: int
    detected_instances: int
    detected: bool
    attack_events: int
    detected_events: int
    recall: float
    ttd_seconds: float | None = None  # median over detected instances
    events_to_detect: float | None = None  # median over detected instances
    detectors: list[str] = []
    low_and_slow: int = 0  # instances run low-and-slow


class SelftestReport(msgspec.Struct, kw_only=True):
    source: str  # "demo" or the baseline file
    events: int
    attack_events: int
    benign_events: int
    benign_actors: int
    fp_actors: int
    fp_actor_rate: float
    fp_events: int
    fp_event_rate: float
    findings: int
    classes: list[ClassResult]
    detected_classes: int
    overall_recall: float
    seconds: float = 0.0
    virtual_seconds: float = 0.0
    seed: int = 0
    fp_detectors: dict[str, int] = {}  # detector -> findings touching benign events
    fp_examples: list[dict[str, Any]] = []  # the findings that touched benign events (up to 30): actor, detector, summary
    posture_findings: int = 0  # findings about the API itself (no actor): reported, not scored

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


@dataclass
class _Attack:
    id: str
    attack: str
    low_and_slow: bool
    start: float
    event_ids: list[str]


class Scorer:
    """Collects what the evaluation needs while events stream through the
    pipeline: each event's ts and resolved actor, and every raw finding."""

    def __init__(self) -> None:
        self.ts: dict[str, float] = {}
        self.actor: dict[str, str] = {}
        self.raw: list[Finding] = []

    def observe(self, calls: list[ApiCall], found: Iterable[Finding]) -> None:
        ts, actor = self.ts, self.actor
        for c in calls:
            ts[c.id] = c.ts
            actor[c.id] = c.actor.key
        self.raw.extend(found)


def run_pipeline(
    calls: Iterable[ApiCall],
    state_dir: Path | str,
    *,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> tuple[Scorer, dict[str, Finding]]:
    """Feed ``calls`` (in time order) through a pipeline on ``state_dir``;
    returns the scorer and the merged findings."""
    from apiward.pipeline import Pipeline

    scorer = Scorer()
    pipe = Pipeline(state_dir)
    try:
        batch: list[ApiCall] = []
        done = 0
        for c in calls:
            batch.append(c)
            if len(batch) >= batch_size:
                scorer.observe(batch, pipe.process(batch))
                done += len(batch)
                batch = []
                if progress is not None:
                    progress(done)
        if batch:
            scorer.observe(batch, pipe.process(batch))
            done += len(batch)
            if progress is not None:
                progress(done)
        scorer.raw.extend(pipe.flush_pending())  # the labelled stream ends here
    finally:
        pipe.close()
    return scorer, dict(pipe.findings)


def _median(xs: list[float]) -> float | None:
    return float(statistics.median(xs)) if xs else None


def evaluate(
    attacks: list[Any],
    scorer: Scorer,
    merged: dict[str, Finding] | None = None,
    *,
    source: str = "demo",
    seed: int = 0,
    seconds: float = 0.0,
) -> SelftestReport:
    """Score findings against ground truth. ``attacks`` are label objects or
    dicts with ``id``, ``attack``, ``event_ids``, ``start`` (and optionally
    ``low_and_slow``); every event the scorer saw that no attack names is
    benign."""
    atks = [
        _Attack(
            id=_get(a, "id"),
            attack=_get(a, "attack"),
            low_and_slow=bool(_get(a, "low_and_slow", False)),
            start=float(_get(a, "start", 0.0)),
            event_ids=[e for e in _get(a, "event_ids") if e in scorer.ts],
        )
        for a in attacks
    ]
    attack_of = {e: a for a in atks for e in a.event_ids}

    # Flagged events and, per event, the earliest triggering time and detectors.
    flagged: set[str] = set()
    first_hit: dict[str, float] = {}  # attack id -> virtual ts of first detection
    dets_of: dict[str, set[str]] = {}
    fp_detectors: dict[str, int] = {}
    fp_examples: list[dict[str, Any]] = []
    fp_actor_keys: set[str] = set()
    ts = scorer.ts
    findings = list(scorer.raw)
    if merged is not None:
        findings += list(merged.values())
    posture: set[str] = set()
    for f in findings:
        if not f.actor or f.kind == "exposure":
            # A finding about the API itself (it leaks hashes, stack traces...)
            # accuses nobody: its example events are neither detections of an
            # attack nor false positives against the users who made them.
            posture.add(f.id)
            continue
        ids = [e for e in f.event_ids if e in ts]
        if not ids:
            continue
        flagged.update(ids)
        trigger = max(ts[e] for e in ids)
        hit_atks = {attack_of[e].id: attack_of[e] for e in ids if e in attack_of}
        for aid, a in hit_atks.items():
            dets_of.setdefault(a.attack, set()).add(f.detector)
            if aid not in first_hit or trigger < first_hit[aid]:
                first_hit[aid] = trigger
        if len(hit_atks) == 0 or any(e not in attack_of for e in ids):
            fp_detectors[f.detector] = fp_detectors.get(f.detector, 0) + 1
            if f.actor:
                fp_actor_keys.add(f.actor)
            if len(fp_examples) < 30:
                benign_ids = [e for e in ids if e not in attack_of]
                fp_examples.append({"actor": f.actor, "detector": f.detector, "summary": f.summary[:300],
                                    "benign_events": len(benign_ids), "attack_events": len(ids) - len(benign_ids),
                                    "benign_sample": benign_ids[:3]})

    # Actors: benign ones never sent an attack event.
    attack_actors = {scorer.actor[e] for e in attack_of if scorer.actor.get(e)}
    benign_events = [e for e in ts if e not in attack_of]
    benign_actors = {scorer.actor[e] for e in benign_events if scorer.actor.get(e)} - attack_actors
    fp_events = sum(1 for e in benign_events if e in flagged)
    fp_actors = {scorer.actor[e] for e in benign_events if e in flagged} | fp_actor_keys
    fp_actors &= benign_actors

    classes: list[ClassResult] = []
    by_class: dict[str, list[_Attack]] = {}
    for a in atks:
        by_class.setdefault(a.attack, []).append(a)
    total_atk = total_hit = 0
    for name in sorted(by_class):
        group = by_class[name]
        events = [e for a in group for e in a.event_ids]
        hit = [e for e in events if e in flagged]
        ttds: list[float] = []
        etds: list[float] = []
        for a in group:
            t = first_hit.get(a.id)
            if t is None:
                continue
            start = min([ts[e] for e in a.event_ids] + ([a.start] if a.start else []))
            ttds.append(max(0.0, t - start))
            etds.append(float(sum(1 for e in a.event_ids if ts[e] <= t)))
        total_atk += len(events)
        total_hit += len(hit)
        classes.append(
            ClassResult(
                attack=name,
                instances=len(group),
                detected_instances=len(ttds),
                detected=bool(hit),
                attack_events=len(events),
                detected_events=len(hit),
                recall=len(hit) / len(events) if events else 0.0,
                ttd_seconds=_median(ttds),
                events_to_detect=_median(etds),
                detectors=sorted(dets_of.get(name, ())),
                low_and_slow=sum(1 for a in group if a.low_and_slow),
            )
        )
    times = list(ts.values())
    return SelftestReport(
        source=source,
        events=len(ts),
        attack_events=len(attack_of),
        benign_events=len(benign_events),
        benign_actors=len(benign_actors),
        fp_actors=len(fp_actors),
        fp_actor_rate=len(fp_actors) / len(benign_actors) if benign_actors else 0.0,
        fp_events=fp_events,
        fp_event_rate=fp_events / len(benign_events) if benign_events else 0.0,
        findings=len(merged) if merged is not None else len({f.id for f in scorer.raw}),
        classes=classes,
        detected_classes=sum(1 for c in classes if c.detected),
        overall_recall=total_hit / total_atk if total_atk else 0.0,
        seconds=seconds,
        virtual_seconds=(max(times) - min(times)) if times else 0.0,
        seed=seed,
        fp_detectors=dict(sorted(fp_detectors.items())),
        fp_examples=fp_examples,
        posture_findings=len(posture),
    )


def _get(obj: Any, name: str, default: Any = ...) -> Any:
    if isinstance(obj, dict):
        return obj[name] if default is ... else obj.get(name, default)
    return getattr(obj, name) if default is ... else getattr(obj, name, default)


def inject(baseline: list[ApiCall], attack_calls: list[ApiCall], attacks: list[Any]) -> tuple[list[ApiCall], list[dict[str, Any]]]:
    """Shift the recorded attack events into the baseline's time window and
    merge the two streams in time order.

    Each attack instance keeps its own pacing; instances start spread over
    the middle of the baseline (after its first fifth, so there is normal
    traffic to learn from first). Event ids are prefixed ``inj-`` so they
    cannot collide with the baseline's. Returns the merged calls and the
    relabelled attacks (dicts for :func:`evaluate`)."""
    if not baseline:
        raise ValueError("the baseline has no events")
    b0 = min(c.ts for c in baseline)
    b1 = max(c.ts for c in baseline)
    span = max(b1 - b0, 1.0)
    by_id = {c.id: c for c in attack_calls}
    out_attacks: list[dict[str, Any]] = []
    injected: list[ApiCall] = []
    n = max(1, len(attacks))
    for i, a in enumerate(sorted(attacks, key=lambda a: float(_get(a, "start", 0.0)))):
        evs = [by_id[e] for e in _get(a, "event_ids") if e in by_id]
        if not evs:
            continue
        a0 = min(c.ts for c in evs)
        a1 = max(c.ts for c in evs)
        # Squeeze instances longer than the remaining window.
        room = b1 - (b0 + span * (0.2 + 0.6 * i / n))
        scale = min(1.0, room / (a1 - a0)) if a1 > a0 and room > 0 else 1.0
        start = b0 + span * (0.2 + 0.6 * i / n)
        ids = []
        for c in evs:
            new = msgspec.structs.replace(c, id=f"inj-{c.id}", ts=start + (c.ts - a0) * scale)
            injected.append(new)
            ids.append(new.id)
        out_attacks.append(
            {"id": _get(a, "id"), "attack": _get(a, "attack"), "low_and_slow": bool(_get(a, "low_and_slow", False)),
             "start": start, "event_ids": ids}
        )
    merged = sorted(baseline + injected, key=lambda c: c.ts)
    return merged, out_attacks


# Simulation sizes: (benign users, virtual seconds, attack list).
QUICK = (100, 86_400.0, "all")
FULL = (200, 3 * 86_400.0, "all,all_slow")


def simulate_demo(
    work: Path,
    *,
    users: int | None = None,
    duration: float | None = None,
    attacks: str | None = None,
    seed: int = 1,
    quick: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[list[ApiCall], Any]:
    """Run the simulator against the demo API in-process (a fresh database
    in ``work``, v3 deployed half way through) and return the recorded
    events and the labels."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's TestClient warns about httpx
        from fastapi.testclient import TestClient

    from apiward.model.call import loads
    from apiward.sim.demoapp import create_app, set_version
    from apiward.sim.simulator import DEFAULT_START, simulate

    d_users, d_duration, d_attacks = QUICK if quick else FULL
    users = users or d_users
    duration = duration or d_duration
    attacks = attacks or d_attacks
    population = max(500, users + 100)
    work.mkdir(parents=True, exist_ok=True)
    db = work / "demobank.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    app = create_app(str(db), vulnerable=True, seed_users=population)
    span = int(duration)
    # HTTPS, as a production API would be served: posture findings about
    # the transport are not what the self-test measures.
    with TestClient(app, base_url="https://demobank.test") as client:
        if progress is not None:
            def hook(request: Any) -> None:
                ts = request.headers.get("x-apiward-sim-ts")
                if ts:
                    progress("simulate (virtual seconds)", int(float(ts) - DEFAULT_START), span)

            client.event_hooks = {"request": [hook], "response": []}
        res = simulate(
            client, seed=seed, users=users, duration=duration, attacks=attacks, out_dir=work, population=population,
            deploy_at=duration / 2, on_deploy=lambda: set_version(app, 3),
        )
    app.state.store.close()
    calls: list[ApiCall] = []
    assert res.events_path is not None
    with open(res.events_path, "rb") as fh:
        for line in fh:
            if line.strip():
                calls.append(loads(line))
    return calls, res.labels


def run_selftest(
    state_dir: Path | str,
    *,
    users: int | None = None,
    duration: float | None = None,
    attacks: str | None = None,
    seed: int = 1,
    quick: bool = True,
    baseline: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> SelftestReport:
    """Simulate (and inject into ``baseline`` when given), run a fresh
    pipeline on ``state_dir/selftest-state``, evaluate.

    ``progress(stage, done, total)`` is called as work advances."""
    t0 = time.perf_counter()
    state_dir = Path(state_dir)
    work = state_dir / "selftest"
    work.mkdir(parents=True, exist_ok=True)
    calls, labels = simulate_demo(work, users=users, duration=duration, attacks=attacks, seed=seed, quick=quick, progress=progress)
    attacks_l: list[Any] = list(labels.attacks)
    source = "demo"
    if baseline is not None:
        from apiward.ingest.base import Bad
        from apiward.ingest.registry import read_file

        _, records = read_file(str(baseline))
        base = [item for _, item in records if not isinstance(item, Bad)]
        attack_ids = set(labels.attack_of())
        calls, attacks_l = inject(base, [c for c in calls if c.id in attack_ids], attacks_l)
        source = str(baseline)
    calls.sort(key=lambda c: c.ts)
    total = len(calls)
    scorer, merged = run_pipeline(
        calls, state_dir / "selftest-state",
        progress=(lambda d: progress("analyse (events)", d, total)) if progress else None,
    )
    return evaluate(attacks_l, scorer, merged, source=source, seed=seed, seconds=time.perf_counter() - t0)
