"""``anomaly.behaviour``: an actor's window of traffic looks unlike the
windows the model has learned (online Half-Space Trees, river).

Looks at: per actor, windows of up to ``window_events`` calls (a window also
closes when the actor pauses ``window_s``): rate, endpoint and object
breadth, the mix of 4xx/401/403/404/5xx answers, write share, request and
response sizes, latency, parameters per call, special characters in query
values, parameters the endpoint never had (``ctx.baselines``, when there),
endpoints almost nobody else uses, calls without credentials (see
:mod:`apiward.learn.anomaly_model`). A closed window is scored, calibrated
against a reservoir of recent benign window scores and flagged when it is in
the top ``1 - threshold`` share *and* at least one feature is ``min_z``
standard deviations from its running mean (the explanation). Benign windows
calibrate; of flagged ones only each actor's first does, so a burst of
attack windows does not mask its own later windows while a new pattern many
actors share soon does (unless flags run above ``max_flag_rate``, default 20x
the promised rate, a sign the raw scores drifted: then every window
calibrates). Every window is learned (one in ``learn_every``): a behaviour
that keeps coming back, from many actors, is the application changing and
stops scoring high as the trees' reference mass turns over; a lone actor's
burst moves the mass little. No findings until ``warmup`` windows are learned.

Cost per event: about 2 µs to fold the call into its actor's window; the
model (about 30 µs for score + learn) runs once per closed window, so a few
µs amortised at the default window of 20 events (windows closed early by
pauses are shorter). Idle windows are swept every ``sweep_every`` events.

False-positive assumptions: the percentile threshold fixes the alert
*rate* among windows (0.5% of benign windows at the default 0.995; 0.999
means the top 0.1%) rather than promising
every flagged window is an attack: this detector is for leads the rule
detectors do not cover, low severity unless extreme. Windows of fewer
than ``min_events`` calls carry too little to judge and are skipped.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.objects import LRU
from apiward.learn.anomaly_model import FEATURES, ActorWindow, AnomalyModel, special_ratio
from apiward.model.call import ApiCall
from apiward.model.context import Context, EndpointRef
from apiward.model.finding import Finding

__all__ = ["BehaviourAnomaly"]

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class BehaviourAnomaly(DetectorBase):
    """Per-actor behaviour windows scored by an online anomaly model."""

    id = "anomaly.behaviour"
    title = "Anomalous actor behaviour"
    severity = "low"
    owasp = "API6:2023"
    attack = "T1078"
    tactic = "initial-access"
    cwe = "CWE-284"

    def __init__(
        self,
        *,
        window_events: int = 20,
        window_s: float = 300.0,
        min_events: int = 3,
        threshold: float = 0.995,
        min_z: float = 3.0,
        warmup: int = 300,
        n_trees: int = 10,
        height: int = 6,
        tree_window: int = 250,
        reservoir: int = 2000,
        learn_every: int = 1,
        sweep_every: int = 512,
        max_actors: int = 50_000,
        max_flag_rate: float | None = None,
        seed: int = 42,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError("threshold must be in (0, 1)")
        self.window_events = window_events
        self.window_s = window_s
        self.min_events = min_events
        self.threshold = threshold
        self.min_z = min_z
        self.learn_every = max(1, learn_every)
        self.sweep_every = sweep_every
        self.model = AnomalyModel(n_trees=n_trees, height=height, window_size=tree_window, warmup=warmup, reservoir=reservoir, seed=seed)
        self._win: LRU[str, ActorWindow] = LRU(max_actors)
        self._closed = 0
        self._events = 0
        self._clock = 0.0
        self._last = ""
        self.max_flag_rate = max_flag_rate if max_flag_rate is not None else 20.0 * (1.0 - threshold)
        self._flag_rate = 0.0
        self._calibrated: LRU[str, bool] = LRU(10_000)
        self.scored = 0
        self.flagged = 0

    # -- protocol --------------------------------------------------------------

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        self._last = call.id
        return self._observe(call, ctx, True)

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        if self._last != call.id:  # learn-only mode
            self._observe(call, ctx, False)

    # -- windows ---------------------------------------------------------------

    def _observe(self, call: ApiCall, ctx: Context, score: bool) -> list[Finding]:
        actor = call.actor
        key = actor.key or actor.ip or call.src.ip or "anonymous"
        ts = call.ts
        out: list[Finding] = []
        self._events += 1
        if ts > self._clock:
            self._clock = ts
        wins = self._win
        w = wins.get(key)
        if w is not None:
            wins.move_to_end(key)
            if ts - w.last > self.window_s:
                self._close(key, w, score, out)
                w = None
        if w is None:
            w = ActorWindow(ts)
            wins[key] = w
            if len(wins) > wins.cap:
                k0, w0 = wins.popitem(last=False)
                self._close(k0, w0, score, out)
        self._add(w, call, ctx, actor)
        if w.n >= self.window_events:
            del wins[key]
            self._close(key, w, score, out)
        if self._events % self.sweep_every == 0:
            self._sweep(score, out)
        return out

    def _add(self, w: ActorWindow, call: ApiCall, ctx: Context, actor: Any) -> None:
        log2 = math.log2
        w.n += 1
        w.last = call.ts
        req = call.request
        resp = call.response
        st = resp.status if resp is not None else 0
        if st >= 400:
            if st >= 500:
                w.e5 += 1
            else:
                w.e4 += 1
                if st == 401 or st == 403:
                    w.denied += 1
                elif st == 404 or st == 405:
                    w.nf += 1
        if req.method not in _READS:
            w.writes += 1
        if req.body_size:
            w.sreq += log2(req.body_size + 1)
        if resp is not None:
            x = log2(resp.body_size + 1)
            w.sresp += x
            if x > w.mresp:
                w.mresp = x
        if call.duration_ms:
            w.slat += log2(call.duration_ms + 1.0)
        ep = ctx.endpoint
        name = ep.name
        if len(w.eps) < 64:
            w.eps.add(zlib.crc32(name.encode()))
        if ep.path_params and len(w.objs) < 64:
            w.objs.add(ep.path_params[-1][1])
        q = req.query
        np = len(q)
        unseen = False
        bs = ctx.baselines
        est = bs.endpoint_stats(ep.key) if bs is not None and (q or req.body_size) else None
        if q:
            text = "".join([v for _, v in q])
            if text:
                w.special += special_ratio(text)
            if est is not None and est.calls >= 20:
                for k, _ in q:
                    if not est.known_param("query", k):
                        unseen = True
                        break
        if req.body_size and req.method not in _READS:
            body = req.params()
            if body:
                np += len(body)
                if not unseen and est is not None and est.calls >= 20:
                    for k, v in body.items():
                        if not isinstance(v, (dict, list)) and not est.known_param("body", k):
                            unseen = True
                            break
        w.params += np
        if unseen:
            w.unseen += 1
        inv = ctx.inventory
        if ctx.new_endpoint:
            w.rare += 1
        elif inv is not None:
            rec = inv.endpoints.get((ep.host, ep.method, ep.template))
            if rec is not None and rec.actors <= 2:
                w.rare += 1
        if actor.kind in ("ip", "anonymous", ""):
            w.anon += 1
        if len(w.ids) < self.window_events:
            w.ids.append(call.id)
        w.ref = ep
        w.who = actor

    def _sweep(self, score: bool, out: list[Finding]) -> None:
        """Close windows whose actor has been idle ``window_s`` (the LRU's
        front holds the least recently active actors)."""
        wins = self._win
        horizon = self._clock - self.window_s
        while wins:
            k0 = next(iter(wins))
            w0 = wins[k0]
            if w0.last >= horizon:
                break
            del wins[k0]
            self._close(k0, w0, score, out)

    def _close(self, key: str, w: ActorWindow, score: bool, out: list[Finding]) -> None:
        if w.n < self.min_events:
            return
        m = self.model
        x = w.features(self.window_events)
        flagged = False
        if score:
            raw, pct = m.score(x)
            self.scored += 1
            if pct >= self.threshold:
                why = m.explain(x)
                if why and abs(why[0][3]) >= self.min_z:
                    flagged = True
                    self.flagged += 1
                    out.append(self._finding(key, w, raw, pct, x, why))
            # Calibrate on benign windows so a burst of attack windows does
            # not mask itself; but when far more windows are flagged than
            # the threshold promises, the raw scores drifted: take them all.
            self._flag_rate += ((1.0 if flagged else 0.0) - self._flag_rate) * 0.002
            if not flagged or self._flag_rate > self.max_flag_rate:
                m.calibrate(raw)
            elif key not in self._calibrated:
                # an actor's first flagged window calibrates: a pattern many
                # actors share rises into the reservoir, one actor's burst not
                self._calibrated.put(key, True)
                m.calibrate(raw)
        self._closed += 1
        if self._closed % self.learn_every == 0:
            m.learn(x)

    def _finding(self, key: str, w: ActorWindow, raw: float, pct: float, x: dict[str, float], why: list[Any]) -> Finding:
        ep: EndpointRef = w.ref or EndpointRef()
        who = w.who
        top = ", ".join(f"{f} {v:g} (usual {mu:g}, z {z:+.1f})" for f, v, mu, z in why[:3])
        extreme = pct >= 1.0 - (1.0 - self.threshold) / 2 and abs(why[0][3]) >= 2 * self.min_z
        return Finding(
            key=f"{self.id}|{key}",
            detector=self.id,
            title=self.title,
            severity="medium" if extreme else "low",
            confidence=0.5 if extreme else 0.35,
            owasp=self.owasp,
            attack=self.attack,
            tactic=self.tactic,
            cwe=self.cwe,
            actor=key,
            actor_display=who.display if who is not None else key,
            service=ep.service,
            host=ep.host,
            endpoint=ep.name,
            event_ids=list(w.ids),
            first_seen=w.start,
            last_seen=w.last,
            summary=f"{w.n} calls unlike learned behaviour (top {100 * (1 - pct):.2f}% of windows): {top}",
            evidence={
                "signal": "behaviour_window",
                "raw_score": round(raw, 4),
                "percentile": round(pct, 5),
                "events": w.n,
                "window_s": round(w.last - w.start, 1),
                "explanation": [{"feature": f, "value": v, "mean": mu, "z": z} for f, v, mu, z in why],
                "features": {f: round(x[f], 4) for f in FEATURES},
            },
        )
