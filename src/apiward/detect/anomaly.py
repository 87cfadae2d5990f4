"""``anomaly.behaviour``: an actor's window of traffic is rare for all
traffic, rare for the actor's peers and new for the actor itself (online
Half-Space Trees (learn/hst.py), plus peer and per-actor references).

Looks at: per actor, windows of up to ``window_events`` calls (a window also
closes when the actor pauses ``window_s``): rate, endpoint and object
breadth, the 4xx/401/403/404/5xx answers *beyond what the endpoints called
usually answer* (a login form's wrong passwords are its norm), write share,
request and response sizes, latency, parameters per call, special
characters in query values, parameters the endpoint never had
(``ctx.baselines``, when there), endpoints almost nobody else uses, calls
without credentials (see :mod:`apiward.learn.anomaly_model`).

A closed window is flagged only when all of these hold:

1. *rare globally*: its Half-Space Trees score is in the top
   ``1 - threshold`` share of recent benign windows (calibrated percentile);
2. a *risk feature* (:data:`~apiward.learn.anomaly_model.RISK_FEATURES`:
   errors, breadth, rate, sizes, odd parameters, rare endpoints; never a
   full window, latency or a feature *falling*) is ``min_z`` standard
   deviations above its mean over all windows, and, for shares of calls,
   at least ``min_count`` calls stand behind it;
3. the same feature is ``min_z`` above the mean of the actor's *peers*:
   callers without credentials, or authenticated callers grouped by the
   role-like claims of their token (``role``, ``roles``, ``groups``,
   ``scope``...; a token the API mostly refused proves no role, so its
   window joins all authenticated callers), once the group has ``min_peer``
   windows;
4. it is *new for the actor*: above the highest value any of its own
   ``min_history`` or more learned windows showed, by ``margin``.

An actor whose verified role few windows show yet and that has no history
of its own is not judged: there is nothing fair to compare it with. Peer
groups and actor histories learn only windows judged and not flagged
(none from the warm-up, which nobody judged), so an attacker's repeated
windows stay new for him; each actor has a bounded say in its group's norm
(its first ``peer_votes`` windows, then one in ten), so one busy actor
cannot make its behaviour its peers' normal. Per endpoint, answer rates
take one vote per actor window, so a stuffer's hundred refusals do not make
refusals the login endpoint's norm. Benign windows calibrate the
percentile; of flagged ones only each actor's first does (unless flags run
above ``max_flag_rate``, default 20x the promised rate, a sign the raw
scores drifted: then every window calibrates). Every window is learned by
the trees (one in ``learn_every``): a behaviour that keeps coming back, from
many actors, is the application changing. No findings until ``warmup``
windows are learned.

Cost per event: about 3 µs to fold the call into its actor's window (with
the endpoint's answer-rate look-up, inlined; the endpoint's hash cached per
template); the model (about 20 µs: one walk down each tree scores *and*
learns the window, then the peer and actor references) runs once per
closed window, so about 3 µs amortised on simulator traffic, where windows
average four to seven calls. Idle windows are swept every
``sweep_every`` events. State is bounded: ``max_actors`` open windows,
``max_profiles`` actor histories (about 200 bytes each), ``max_peers``
groups, ``max_endpoints`` answer rates.

False-positive assumptions: an administrator is compared with
administrators (when tokens carry roles) or with its own past; people
behind one shared address log in and sometimes mistype, which is the login
endpoint's norm; a lone behaviour that is rare for everyone, for the peers
and for the actor is worth a look but is a lead, low severity unless
extreme. Windows of fewer than ``min_events`` calls are not judged.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.objects import LRU
from apiward.learn.anomaly_model import (
    COUNT_FEATURES,
    FEATURES,
    RISK_FEATURES,
    ActorProfile,
    ActorWindow,
    AnomalyModel,
    AnswerRates,
    FeatureStats,
    peer_key,
    special_ratio,
)
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
        min_peer: int = 30,
        min_history: int = 4,
        margin: float = 0.15,
        max_peers: int = 256,
        max_profiles: int = 20_000,
        min_count: int = 3,
        peer_votes: int = 20,
        max_endpoints: int = 20_000,
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
        self.min_peer = min_peer
        self.min_history = min_history
        self.margin = margin
        self.min_count = min_count
        self.peer_votes = peer_votes
        self._answers = AnswerRates(cap=max_endpoints)
        self._ephash: dict[str, dict[str, int]] = {}  # template -> method -> crc32 of the endpoint name
        self._peers: LRU[str, FeatureStats] = LRU(max_peers)
        self._profiles: LRU[str, ActorProfile] = LRU(max_profiles)
        self.scored = 0
        self.flagged = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_ephash", {})  # absent from older states

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
        # Hot path (every event): locals, no per-call strings for the common
        # call (the endpoint's hash is cached per template and method), the
        # answer-rate look-up inlined.
        log2 = math.log2
        w.n += 1
        w.last = call.ts
        req = call.request
        resp = call.response
        method = req.method
        write = method not in _READS
        if resp is not None:
            st = resp.status
            if st >= 400:
                if st >= 500:
                    w.e5 += 1
                else:
                    w.e4 += 1
                    if st == 401 or st == 403:
                        w.denied += 1
                    elif st == 404 or st == 405:
                        w.nf += 1
            x = log2(resp.body_size + 1)
            w.sresp += x
            if x > w.mresp:
                w.mresp = x
        else:
            st = 0
        if write:
            w.writes += 1
        bsize = req.body_size
        if bsize:
            w.sreq += log2(bsize + 1)
        if call.duration_ms:
            w.slat += log2(call.duration_ms + 1.0)
        ep = ctx.endpoint
        hm = self._ephash.get(ep.template)
        if hm is None:
            if len(self._ephash) >= 8192:
                self._ephash.clear()
            hm = self._ephash[ep.template] = {}
        em = ep.method
        h = hm.get(em)
        if h is None:
            h = hm[em] = zlib.crc32(ep.name.encode())
        # expected answers of this endpoint (AnswerRates.expect, inlined)
        ans = self._answers
        g = ans.total
        r = ans.rates.get(h)
        if r is None:
            g0 = g[0]
            w.x4 += g[1] / g0
            w.xden += g[2] / g0
            w.xnf += g[3] / g0
            w.x5 += g[4] / g0
        else:
            k = ans.prior / g[0]
            c = r[0] + ans.prior
            w.x4 += (r[1] + k * g[1]) / c
            w.xden += (r[2] + k * g[2]) / c
            w.xnf += (r[3] + k * g[3]) / c
            w.x5 += (r[4] + k * g[4]) / c
        eps = w.eps
        if h not in eps:
            # one vote per actor window and endpoint: a stuffer's hundred
            # refusals teach the login endpoint no more than one visitor's
            ans.add(h, st)
            if len(eps) < 64:
                eps.add(h)
        pp = ep.path_params
        if pp and len(w.objs) < 64:
            w.objs.add(pp[-1][1])
        q = req.query
        if q or bsize:
            np = len(q)
            unseen = False
            bs = ctx.baselines
            est = bs.endpoint_stats(ep.key) if bs is not None else None
            if est is not None and est.calls < 20:
                est = None
            if q:
                text = "".join([v for _, v in q])
                if text:
                    w.special += special_ratio(text)
                if est is not None:
                    for k, _ in q:
                        if not est.known_param("query", k):
                            unseen = True
                            break
            if bsize and write:
                body = req.params()
                if body:
                    np += len(body)
                    if not unseen and est is not None:
                        for k, v in body.items():
                            if not isinstance(v, (dict, list)) and not est.known_param("body", k):
                                unseen = True
                                break
            w.params += np
            if unseen:
                w.unseen += 1
        if ctx.new_endpoint:
            w.rare += 1
        else:
            inv = ctx.inventory
            if inv is not None:
                rec = inv.endpoints.get((ep.host, em, ep.template))
                if rec is not None and rec.actors <= 2:
                    w.rare += 1
        kind = actor.kind
        if kind == "ip" or kind == "anonymous" or kind == "":
            w.anon += 1
        ids = w.ids
        if len(ids) < self.window_events:
            ids.append(call.id)
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

    def _peer(self, w: ActorWindow) -> str:
        """The window's peer group. Role claims of a token the API refused
        are the caller's say-so, not a verified role: a window mostly
        answered 401/403 is compared with all authenticated callers."""
        key = peer_key(w.who)
        if key != "anon" and key != "auth" and w.denied * 2 >= w.n:
            return "auth"
        return key

    def _reasons(self, x: dict[str, float], n: int, peer: str, peers: FeatureStats | None, prof: ActorProfile | None) -> list[dict[str, Any]]:
        """Risk features whose value is rare globally *and* for the
        actor's peers (once the group has ``min_peer`` windows) *and* new
        for the actor (above anything its ``min_history`` or more learned
        windows showed). An actor of a verified role that too few windows
        show yet, with no history of its own, is not judged: there is
        nothing fair to compare it with (an administrator is not a
        customer)."""
        m = self.model
        use_peer = peers is not None and peers.n >= self.min_peer
        use_own = prof is not None and prof.n >= self.min_history
        if not use_peer and not use_own and peer != "anon" and peer != "auth":
            return []
        min_z = self.min_z
        out = []
        for f in RISK_FEATURES:
            v = x[f]
            zg = m.z(f, v)
            if zg < min_z:
                continue
            if f in COUNT_FEATURES and v * n < self.min_count - 1e-6:
                continue
            r: dict[str, Any] = {"feature": f, "value": round(v, 4), "mean": round(m.mean(f), 4), "z": round(zg, 2)}
            if use_peer:
                assert peers is not None
                zp = peers.z(f, v, 0.1)
                if zp < min_z:
                    continue
                r["peer_mean"] = round(peers.mean(f), 4)
                r["peer_z"] = round(zp, 2)
            if use_own:
                assert prof is not None
                hi = prof.highest(f)
                if v <= hi + self.margin:
                    continue
                r["own_max"] = round(hi, 4)
            out.append(r)
        out.sort(key=lambda r: -min(r["z"], r.get("peer_z", r["z"])))
        return out

    def _close(self, key: str, w: ActorWindow, score: bool, out: list[Finding]) -> None:
        if w.n < self.min_events:
            return
        m = self.model
        x = w.features(self.window_events)
        flagged = False
        peer = self._peer(w)
        peers = self._peers.get(peer)
        prof = self._profiles.get(key)
        warm = m.warm
        learn = (self._closed + 1) % self.learn_every == 0
        if score:
            raw, pct = m.score_learn(x) if learn else m.score(x)
            self.scored += 1
            if pct >= self.threshold:
                why = self._reasons(x, w.n, peer, peers, prof)
                if why:
                    flagged = True
                    self.flagged += 1
                    out.append(self._finding(key, w, raw, pct, x, why, peer, peers, prof))
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
        if learn:
            m.learn(x, trees=not score)
        if not flagged and (warm or not score):
            # Peers and the actor's own history learn windows judged normal
            # (or all of them in learn-only mode): not the warm-up's, which
            # nobody judged, nor flagged ones, so an attacker's repeated
            # windows stay new for him. Each actor has a bounded say in its
            # group's norm: its first ``peer_votes`` windows, then one in ten.
            if prof is None or prof.n < self.peer_votes or prof.n % 10 == 0:
                if peers is None:
                    peers = FeatureStats()
                    self._peers.put(peer, peers)
                else:
                    self._peers.move_to_end(peer)
                peers.learn(x, m.alpha)
            if prof is None:
                prof = ActorProfile()
                self._profiles.put(key, prof)
            else:
                self._profiles.move_to_end(key)
            prof.learn(x)

    def _finding(self, key: str, w: ActorWindow, raw: float, pct: float, x: dict[str, float], why: list[dict[str, Any]], peer: str,
                 peers: FeatureStats | None, prof: ActorProfile | None) -> Finding:
        ep: EndpointRef = w.ref or EndpointRef()
        who = w.who
        parts = []
        for r in why[:3]:
            t = f"{r['feature']} {r['value']:g} (usual {r['mean']:g}"
            if "peer_mean" in r:
                t += f", peers {r['peer_mean']:g}"
            if "own_max" in r:
                t += f", this actor at most {r['own_max']:g}"
            parts.append(t + f"; z {r['z']:+.1f})")
        top_z = min(why[0]["z"], why[0].get("peer_z", why[0]["z"]))
        extreme = pct >= 1.0 - (1.0 - self.threshold) / 2 and (top_z >= 2 * self.min_z or len(why) >= 3)
        history = prof.n if prof is not None else 0
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
            summary=f"{w.n} calls unlike learned behaviour (top {100 * (1 - pct):.2f}% of windows), rare for all traffic, "
                    f"for peers ({peer}) and new for this actor: " + ", ".join(parts),
            evidence={
                "signal": "behaviour_window",
                "raw_score": round(raw, 4),
                "percentile": round(pct, 5),
                "events": w.n,
                "window_s": round(w.last - w.start, 1),
                "peer_group": peer,
                "peer_windows": peers.n if peers is not None else 0,
                "actor_windows": history,
                "explanation": why,
                "features": {f: round(x[f], 4) for f in FEATURES},
            },
        )
