"""``data_exposure.sensitive_response``: responses that give away more than
the endpoint normally does (excessive data exposure).

Looks at: the sensitive hits the discover stage found in each response
(:attr:`Context.sensitive`, locations ``response_body`` and ``error_body``)
against per-endpoint norms learned across actors:

- secrets in responses: password hashes and passwords always (an endpoint
  design flaw, one finding per endpoint and class); API keys, tokens and
  session ids only where the endpoint rarely returns them (a login endpoint
  returns tokens by design);
- a personal-data class the endpoint (``warmup`` responses) never returned
  (``rare`` share, 0 by default: a class seen now and then is the norm);
- other principals' personal data: values whose keyed digest
  (``value_hash``) belongs to another principal (learned from what each
  principal submits in its own requests and reads about itself);
- bulk personal data: many distinct personal values in one response, far
  above the endpoint's norm;
- stack traces, SQL errors and internal paths in responses;
- credentials taken: a caller receiving ``secret_values`` passwords or
  password hashes in one response from an endpoint that ordinary callers
  do not get them from (an attack finding about the caller, beside the
  endpoint's exposure);
- harvesting: over ``harvest_window_s``, ``harvest_values`` distinct
  owned-class values (e-mail, phone, SSN...) that are neither the caller's
  nor in its own requests, from ``harvest_responses`` responses of one
  endpoint, authenticated or not; later responses adding values join.

Secrets stored in responses and error leaks are endpoint design flaws: one
finding per endpoint and class, with no actor (the callers are not
suspects) and the first ``sample_events`` events as examples.

Adapt: once ``adapt_actors`` distinct actors received a class, foreign
values or bulk data from an endpoint, that is the endpoint's normal.
Principals with admin-ish role claims are not judged for foreign or bulk
personal data.

Cost per event: a counter increment per response; otherwise one pass over
the sensitive hits shared by score and learn, and per-class learning only
until a class's receivers are known.

False-positive assumptions: the classifier's hits are right; a value one
principal submitted is that principal's (shared mailboxes are rare).
"""

from __future__ import annotations

from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.vocabulary import IDENTIFIED as _IDENTIFIED
from apiward.learn.norms import Norms
from apiward.detect.facts import facts
from apiward.detect.objects import LRU, PII, Ring
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["SensitiveResponse"]

ALWAYS_SECRET = frozenset({"password", "password_hash"})
SECRETS = frozenset({"api_key", "jwt", "bearer_token", "basic_auth", "session_token"})
LEAKS = {"stack_trace": "CWE-209", "sql_error": "CWE-209", "internal_path": "CWE-209", "internal_hostname": "CWE-200"}
_JUDGED = SECRETS | PII
_LEAK_CLASSES = frozenset(LEAKS)
_SPECIAL = _LEAK_CLASSES | ALWAYS_SECRET


class _Ep:
    __slots__ = ("n", "cls", "cls_actors", "foreign_actors", "bulk_avg", "bulk_actors", "sat")

    def __init__(self) -> None:
        self.n = 0
        self.cls: dict[str, int] = {}
        self.cls_actors: dict[str, set[str]] = {}
        self.foreign_actors: set[str] = set()
        self.bulk_avg = 0.0
        self.bulk_actors: set[str] = set()
        self.sat: set[str] = set()  # classes with 8 receivers known: no more to learn about who gets them

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)
        if len(s) < len(self.__slots__):
            self.sat = {c for c, a in self.cls_actors.items() if len(a) >= 8}


class _Harvest:
    """One actor on one endpoint over ``harvest_window_s``: distinct
    personal values received that are not its own."""

    __slots__ = ("start", "values", "responses", "ring", "flagged")

    def __init__(self, ts: float) -> None:
        self.start = ts
        self.values: set[str] = set()
        self.responses = 0
        self.ring: Ring = Ring(64)
        self.flagged = False

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


class SensitiveResponse(DetectorBase):
    """A response carries sensitive data beyond the endpoint's norm."""

    id = "data_exposure.sensitive_response"
    title = "Excessive data exposure in a response"
    severity = "medium"
    owasp = "API3:2023"
    attack = "T1530"
    tactic = "collection"
    cwe = "CWE-213"

    def __init__(
        self,
        *,
        warmup: int = 100,
        rare: float = 0.0,
        bulk_min: int = 20,
        bulk_factor: float = 4.0,
        adapt_actors: int = 3,
        sample_events: int = 3,
        max_endpoints: int = 20_000,
        max_values: int = 200_000,
        harvest_window_s: float = 172_800.0,
        harvest_values: int = 6,
        harvest_responses: int = 3,
        max_harvests: int = 50_000,
        secret_values: int = 3,
    ) -> None:
        self.secret_values = secret_values
        self.harvest_window_s = harvest_window_s
        self.harvest_values = harvest_values
        self.harvest_responses = harvest_responses
        self._harvest: LRU[str, _Harvest] = LRU(max_harvests)
        self.warmup = warmup
        self.rare = rare
        self.bulk_min = bulk_min
        self.bulk_factor = bulk_factor
        self.adapt_actors = adapt_actors
        self._ep: LRU[str, _Ep] = LRU(max_endpoints)
        self._owner: LRU[str, dict[str, int]] = LRU(max_values, spill=True)
        self.sample_events = sample_events
        self._samples: LRU[str, int] = LRU(max_endpoints)
        self.norms = Norms()
        self._foreign: LRU[str, list[Any]] = LRU(max_harvests)

    def _exposure(self, call: ApiCall, ctx: Context, *, what: str, summary: str, evidence: dict[str, Any], severity: str,
                  title: str, cwe: str = "", confidence: float = 0.85) -> Finding | None:
        """An exposure finding about the endpoint (no actor), reported with
        the first ``sample_events`` events only."""
        ep = ctx.endpoint
        fx = facts(call, ctx)
        if not self._sample(fx.ep_key, what):
            return None
        f = self.finding(call, ctx, summary=summary, evidence=evidence, confidence=confidence, severity=severity,
                         key=f"{self.id}|{ep.key}|{what}", title=title, kind="exposure")
        if cwe:
            f.cwe = cwe
        return f

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        resp = call.response
        if not ctx.sensitive or resp is None:
            return []
        fx = facts(call, ctx)
        resp_hits, classes, pii, owned, sent, _ = fx.sensitive
        if not resp_hits:
            return []
        ep = ctx.endpoint
        st = resp.status
        ek = fx.ep_key
        e = self._ep.get(ek)
        if e is not None:
            self._cur = (call.id, e, ek)  # learn_one reuses the look-up
        n = e.n if e is not None else 0
        actor = call.actor
        me = actor.key
        out: list[Finding] = []
        # Exposures: what the endpoint gives away whoever asks (infrastructure
        # leaks, stored secrets, a class it never returned before). About the
        # endpoint, with a few sample events; the callers are not suspects.
        special = classes & _SPECIAL if not classes.isdisjoint(_SPECIAL) else ()
        for cls in classes & _LEAK_CLASSES if special else ():
            f = self._exposure(
                call, ctx, what=cls, summary=f"{ep.name} answered {st} with a {cls.replace('_', ' ')}",
                evidence={"class": cls, "status": st, "fields": sorted({h.field for h in resp_hits if h.cls == cls})[:5]},
                severity="medium", cwe=LEAKS[cls], confidence=0.9,
                title="Stack trace or SQL error in a response" if cls in ("stack_trace", "sql_error") else "Internal details in a response",
            )
            if f is not None:
                out.append(f)
        if st < 200 or st >= 300:
            return out
        unauth = actor.kind not in _IDENTIFIED
        for cls in classes & ALWAYS_SECRET if special else ():
            f = self._exposure(
                call, ctx, what=cls, summary=f"{ep.name} returns {cls.replace('_', ' ')} values" + (" to unauthenticated callers" if unauth else ""),
                evidence={"class": cls, "fields": sorted({h.field for h in resp_hits if h.cls == cls})[:10], "unauthenticated": unauth},
                severity="critical" if unauth else "high", cwe="CWE-200", confidence=0.9, title="Secrets in a response",
            )
            if f is not None:
                out.append(f)
        if special and not classes.isdisjoint(ALWAYS_SECRET) and fx.caller_privileged is not True:
            took = self._took_credentials(call, ctx, e, resp_hits)
            if took is not None:
                out.append(took)
        if n >= self.warmup and not (self.rare == 0 and classes <= e.cls.keys()):  # type: ignore[union-attr]
            for cls in classes & _JUDGED:
                seen = e.cls.get(cls, 0)  # type: ignore[union-attr]
                if seen > self.rare * n:
                    continue
                got = e.cls_actors.get(cls)  # type: ignore[union-attr]
                if got is not None and len(got - {me}) >= self.adapt_actors:
                    continue
                f = self._exposure(
                    call, ctx, what=f"new:{cls}",
                    summary=f"{ep.name} started returning {cls.replace('_', ' ')} values, which it did in {seen}/{n} responses before",
                    evidence={"class": cls, "endpoint_rate": round(seen / n, 4), "responses_learned": n,
                              "fields": sorted({h.field for h in resp_hits if h.cls == cls})[:10]},
                    severity="high" if cls in SECRETS else "medium", confidence=0.75 if cls in SECRETS else 0.65,
                    title="Sensitive data an endpoint did not return before",
                )
                if f is not None:
                    out.append(f)
        if not owned and len(pii) < self.bulk_min:
            return out  # nothing anybody owns, not bulk
        if fx.caller_privileged is True:
            return out
        # one pass over owned values: others' values received (harvest) and values a known other principal owns
        vals: set[str] = set()
        foreign: dict[str, str] = {}
        owners = self._owner
        for h in owned:
            vh = h.value_hash
            if not vh:
                continue
            o = owners.get(vh)
            if o is not None:
                if me in o:
                    continue
                if len(o) <= 2:
                    for p, w in o.items():
                        if w >= 2:
                            foreign[vh] = p
                            break
            if vh not in sent:
                vals.add(vh)
        if vals:
            hv = self._score_harvest(call, ctx, vals)
            if hv is not None:
                out.append(hv)
        if actor.kind in _IDENTIFIED:
            if len(pii) >= self.bulk_min:
                norm = e.bulk_avg if e is not None else 0.0
                adapted = e is not None and len(e.bulk_actors - {me}) >= self.adapt_actors
                if len(pii) >= self.bulk_factor * max(norm, 1.0) and not adapted:
                    stands, nev = self.norms.stands_out("bulk_values", ek, me, len(pii), floor=self.bulk_min)
                    if stands:
                        out.append(
                            self.finding(
                                call, ctx,
                                summary=f"{actor.display} received {len(pii)} distinct personal values in one response from {ep.name} (norm {norm:.1f})",
                                evidence={"distinct_values": len(pii), "endpoint_norm": round(norm, 2), "norms": nev,
                                          "classes": sorted({h.cls for h in resp_hits if h.cls in PII})},
                                confidence=0.7, severity="high", key=f"{self.id}|{me}|{ep.key}|bulk",
                                title="Bulk personal data in one response",
                            )
                        )
            if foreign and len(foreign) < self.bulk_min:
                who = self._track_foreign(call, ek, foreign)
                stands, nev = self.norms.stands_out("foreign_owners", ek, me, len(who), floor=1, need_peers=True)
                if stands:
                    out.append(
                        self.finding(
                            call, ctx,
                            summary=f"{actor.display} received personal data of {len(who)} other principal(s) from {ep.name}, "
                                    f"where its peers get their own",
                            evidence={"owners": sorted(who)[:10], "values": len(foreign), "norms": nev,
                                      "classes": sorted({h.cls for h in resp_hits if h.value_hash in foreign})},
                            confidence=0.7, severity="high", key=f"{self.id}|{me}|{ep.key}|foreign",
                            title="Other principals' personal data in a response",
                        )
                    )
                if e is not None and len(e.foreign_actors) < 16:
                    e.foreign_actors.add(me)
                if e is not None and len(e.foreign_actors) >= 2:
                    # Several ordinary callers get others' personal data: the
                    # endpoint's design (an exposure), not each caller's deed.
                    f = self._exposure(
                        call, ctx, what="foreign",
                        summary=f"{ep.name} returns other principals' personal data to ordinary callers ({len(e.foreign_actors)} so far)",
                        evidence={"callers": len(e.foreign_actors), "classes": sorted({h.cls for h in resp_hits if h.value_hash in foreign})},
                        severity="high", cwe="CWE-213", title="Other principals' personal data returned to ordinary callers",
                    )
                    if f is not None:
                        out.append(f)
        return out

    def _took_credentials(self, call: ApiCall, ctx: Context, e: _Ep | None, resp_hits: list[Any]) -> Finding | None:
        """The caller took ``secret_values`` or more passwords or password
        hashes in one response from an endpoint that ordinary callers do not
        get them from (fewer than ``adapt_actors`` other receivers while it
        was learned): the exposure is the endpoint's, taking many accounts'
        credentials from it is the caller's act (a debug or export endpoint
        found by an attacker)."""
        got = [h for h in resp_hits if h.cls in ALWAYS_SECRET]
        if len(got) < self.secret_values:
            return None
        me = call.actor.key or call.actor.ip
        receivers: set[str] = set()
        if e is not None:
            for cls in ALWAYS_SECRET:
                receivers |= e.cls_actors.get(cls, set())
        if len(receivers - {me}) >= self.adapt_actors:
            return None
        ep = ctx.endpoint
        unauth = call.actor.kind not in _IDENTIFIED
        return self.finding(
            call, ctx,
            summary=f"{call.actor.display} took {len(got)} password or password-hash values in one response from {ep.name}"
                    + (" without authenticating" if unauth else ""),
            evidence={"values": len(got), "classes": sorted({h.cls for h in got}), "fields": sorted({h.field for h in got})[:10],
                      "other_receivers": len(receivers - {me}), "new_endpoint": ctx.new_endpoint, "unauthenticated": unauth},
            confidence=0.85, severity="critical", key=f"{self.id}|{me}|{ep.key}|credentials",
            title="Credentials taken from an API response",
        )

    def _score_harvest(self, call: ApiCall, ctx: Context, vals: set[str]) -> Finding | None:
        """Personal data of others collected response by response: over
        ``harvest_window_s``, ``harvest_values`` distinct owned-class values
        (e-mail, phone, SSN, card, IBAN, national id) that are neither the
        caller's own nor in its own requests, from ``harvest_responses``
        responses of one endpoint, authenticated or not; and more than the
        actor itself and its peers collect from that endpoint while it is
        normal (:class:`~apiward.learn.norms.Norms`: an endpoint that hands
        everybody's records to every caller is an exposure, and only the
        caller who takes far more than the others is harvesting). Once
        flagged, each response that adds values joins the finding."""
        me = call.actor.key
        ek = facts(call, ctx).ep_key
        hv = self._track_harvest(call, ek, vals)
        if hv is None:
            return None
        key = f"{self.id}|{me}|{ctx.endpoint.key}|harvest"
        if hv.flagged:
            return self.finding(call, ctx, summary=f"{call.actor.display} keeps collecting others' personal data from {ctx.endpoint.name} "
                                f"({len(hv.values)} values so far)", evidence={}, confidence=0.7, severity="high", key=key)
        if len(hv.values) < self.harvest_values or hv.responses < self.harvest_responses:
            return None
        if self.norms.peers("harvest_values", ek)[0] < self.norms.min_peers and hv.responses < 2 * self.harvest_responses:
            return None  # nobody to compare with yet: only a sustained, record-by-record collection counts
        floor = self.harvest_values
        stands, nev = self.norms.stands_out("harvest_values", ek, me, len(hv.values), floor=floor, calls=hv.responses)
        if not stands:
            return None
        hv.flagged = True
        hours = (call.ts - hv.start) / 3600.0
        who = call.actor.display + (" (unauthenticated)" if call.actor.kind not in _IDENTIFIED else "")
        return self.finding(
            call, ctx,
            summary=f"{who} collected {len(hv.values)} personal values of others from {hv.responses} responses of {ctx.endpoint.name} over {hours:.1f}h",
            evidence={"distinct_values": len(hv.values), "responses": hv.responses, "hours": round(hours, 1),
                      "authenticated": call.actor.kind in _IDENTIFIED, "norms": nev},
            confidence=0.75, severity="high", key=key, event_ids=list(hv.ring), first_seen=hv.start,
            title="Personal data harvested across responses",
        )

    def _track_harvest(self, call: ApiCall, ek: str, vals: set[str]) -> _Harvest | None:
        """Fold the others' values a response carried into the caller's
        harvest on this endpoint (once per call); None when nothing new."""
        k = call.actor.key + "|" + ek
        hv = self._harvest.get(k)
        if hv is None or call.ts - hv.start > self.harvest_window_s:
            hv = _Harvest(call.ts)
            self._harvest.put(k, hv)
        elif hv.ring and hv.ring[-1] == call.id:
            return hv
        new = vals - hv.values
        if not new:
            return None
        if len(hv.values) < 256:
            hv.values |= new
        hv.responses += 1
        hv.ring.push(call.id)
        return hv

    def _track_foreign(self, call: ApiCall, ek: str, foreign: dict[str, str]) -> set[str]:
        """The other principals whose data the caller received from this
        endpoint in the current day (window), this call's included."""
        k = call.actor.key + "|" + ek
        day = int(call.ts // 86_400)
        cur = self._foreign.get(k)
        if cur is None or cur[0] != day:
            cur = [day, set()]
            self._foreign.put(k, cur)
        owners: set[str] = cur[1]
        if len(owners) < 64:
            owners.update(foreign.values())
        return owners

    def _others_values(self, call: ApiCall, owned: list[Any], sent: set[str]) -> set[str]:
        """Digests of owned-class values in the response that are neither
        the caller's (by what it submitted or reads as its own) nor sent in
        this very request."""
        me = call.actor.key
        owners = self._owner
        vals: set[str] = set()
        for h in owned:
            vh = h.value_hash
            if not vh or vh in sent:
                continue
            o = owners.get(vh)
            if o is not None and me in o:
                continue
            vals.add(vh)
        return vals

    def _sample(self, ekey: str, cls: str) -> bool:
        """Whether to report this endpoint-level flaw again (the first
        ``sample_events`` times only)."""
        done = self.__dict__.get("_sampled")
        if done is None:
            done = self._sampled = set()
        if (ekey, cls) in done:
            return False
        k = f"{ekey}|{cls}"
        n = self._samples.get(k, 0)
        if n >= self.sample_events:
            if len(done) < 100_000:
                done.add((ekey, cls))
            return False
        self._samples.put(k, n + 1)
        return True

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        resp = call.response
        if resp is None or resp.status < 200 or resp.status >= 300:
            return
        cur = self.__dict__.get("_cur")
        if cur is not None and cur[0] == call.id:
            e = cur[1]
            self._ep.move_to_end(cur[2])
        else:
            ek = facts(call, ctx).ep_key
            e = self._ep.get(ek)
            if e is None:
                e = _Ep()
                self._ep.put(ek, e)
            else:
                self._ep.move_to_end(ek)
        e.n += 1
        hits = ctx.sensitive
        if not hits:
            if e.bulk_avg:
                e.bulk_avg *= 0.99
            return
        actor = call.actor
        me = actor.key
        ident = actor.kind in _IDENTIFIED
        _, seen_cls, resp_vals, owned, _, req_vals = facts(call, ctx).sensitive
        if seen_cls:
            ecls = e.cls
            if self.rare or not seen_cls <= ecls.keys():  # with rare == 0 only whether a class was seen matters
                for cls in seen_cls:
                    ecls[cls] = ecls.get(cls, 0) + 1
            sat = e.sat
            if not seen_cls <= sat and not facts(call, ctx).flagged:  # a flagged call is no receiver the endpoint is meant for  # classes whose receivers are not all known yet
                for cls in seen_cls - sat:
                    got = e.cls_actors.get(cls)
                    if got is None:
                        got = e.cls_actors[cls] = set()
                    got.add(me)
                    if len(got) >= 8:
                        sat.add(cls)
        nb = len(resp_vals)
        e.bulk_avg = 0.99 * e.bulk_avg + 0.01 * nb
        if nb >= self.bulk_min and len(e.bulk_actors) < 16:
            e.bulk_actors.add(me)
        # norms: what this caller and its peers normally take from the endpoint
        fx = facts(call, ctx)
        learn_mode = ctx.mode == "learn"
        trust = ctx.trust
        flagged = fx.flagged or (trust is not None and trust.flagged(me, call.ts))
        ek = fx.ep_key
        if nb:
            self.norms.observe("bulk_values", ek, me, nb, window=int(call.ts // 86_400), learn_mode=learn_mode, flagged=flagged)
        if owned and ident and fx.caller_privileged is not True:
            cur = self._foreign.get(me + "|" + ek)
            day = int(call.ts // 86_400)
            n_owners = len(cur[1]) if cur is not None and cur[0] == day else 0
            self.norms.observe("foreign_owners", ek, me, n_owners, window=day, learn_mode=learn_mode, flagged=flagged)
        if owned and fx.caller_privileged is not True:
            _, _, _, _, sent, _ = fx.sensitive
            hv = self._harvest.get(me + "|" + ek)
            if learn_mode:
                vals = self._others_values(call, owned, sent)
                hv = self._track_harvest(call, ek, vals) if vals else hv
            if hv is not None:
                self.norms.observe("harvest_values", ek, me, len(hv.values), window=hv.start, calls=hv.responses,
                                   learn_mode=learn_mode, flagged=flagged or hv.flagged)
        if not ident:
            return
        owners = self._owner
        for v in req_vals:
            o = owners.get_or(v, dict)
            if len(o) < 3 or me in o:
                o[me] = 2
        if 0 < nb <= 6 and not req_vals and owned:
            # one value per class read back (a profile): the reader's own if it keeps reading it
            if len({h.cls for h in owned}) == len(owned):
                for h in owned:
                    if h.value_hash:
                        o = owners.get(h.value_hash)
                        if o is None:
                            owners.put(h.value_hash, {me: 1})
                        elif len(o) == 1 and me in o:
                            o[me] = 2
