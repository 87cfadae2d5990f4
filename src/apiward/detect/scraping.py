"""``scraping.enumeration``: one actor walks an endpoint's object space or
paginates far beyond what other actors do.

Looks at: GET calls, per endpoint and actor within ``window_s``: the
distinct object ids of the endpoint's last path parameter (detail walks),
the pagination depth (``page``-like values; ``offset``-like values divided
by the page size; the number of distinct cursors) and the requested page
size (``limit``-like). Each is compared with the same measure of the other
actors of the endpoint (90th percentile, at least ``min_actors`` of them):
``factor`` times beyond it, and above an absolute floor, is flagged. With
too few other actors to compare, only self-evident walks
(``self_contained_ids`` ids or ``self_contained_depth`` pages) are flagged.
Detail walks are also judged per parent object (the values of the path
parameters before the id: one shared collection among everyone's own): far
beyond the other readers there. Per endpoint and per parent, an actor that
read nearly every object anyone read there (``whole_space``, from
``min_space_ids`` objects) while each peer read a small part
(``peer_part``) walked the whole space, however small the catalogue.

Over days (``slow_window_s``) per actor and endpoint: ``walk_ids`` numeric
ids read mostly in id order (``walk_sequential`` of adjacent pairs), or
``oversized_pages`` requests for pages ``oversized_factor`` times the
endpoint's most requested size. Once an actor is flagged on an endpoint,
its further calls there join the finding.

Adapt: norms are the other actors' behaviour, so a release that makes every
client page deeper moves the norm with it; and each actor's own highs in
windows nothing flagged (:class:`~apiward.learn.norms.Norms`), so a sync
client replaying what apiward learned from is not accused.

Cost per event: an early exit for non-GET and parameterless calls; a set
insert and a few comparisons otherwise; the percentile over other actors is
computed only when an actor's measure grows by a quarter (geometric
checkpoints), so rarely.

False-positive assumptions: a shared address reading at random does not
walk ids in order; privileged principals (admin role claims) and
sync clients that legitimately read everything are few; they are skipped or
visible as a single actor far beyond the norm (which is what the finding
says).
"""

from __future__ import annotations

from typing import Any

from apiward.detect.base import DetectorBase
from apiward.detect.facts import facts
from apiward.learn.norms import Norms
from apiward.detect.objects import LRU, PAGE_PARAMS, Ring, privileged
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["ScrapingEnumeration"]

_SIZE_PARAMS = frozenset({"limit", "per_page", "perpage", "page_size", "pagesize", "pageSize", "size", "count", "max", "top", "$top", "first", "rows", "page[size]", "max_results", "maxResults"})
_OFFSET_PARAMS = frozenset({"offset", "skip", "start", "from", "page[offset]", "$skip"})
_CURSOR_PARAMS = frozenset({"cursor", "after", "before", "page[cursor]", "starting_after", "next", "pageToken", "page_token", "continuation", "since_id", "max_id"})


class _Slow:
    """One actor on one endpoint over ``slow_window_s``: numeric ids read,
    oversized page requests, recent event ids, and whether it is flagged."""

    __slots__ = ("start", "nums", "big", "ring", "flagged", "since")

    def __init__(self, ts: float) -> None:
        self.start = ts
        self.nums: set[int] = set()
        self.big = 0
        self.ring: Ring = Ring(64)
        self.flagged = ""  # what was found, once found
        self.since = 0  # next walk checkpoint (distinct ids)

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


def _sequential(nums: set[int]) -> float:
    """Share of adjacent pairs, once sorted, that differ by one."""
    xs = sorted(nums)
    if len(xs) < 2:
        return 0.0
    return sum(1 for a, b in zip(xs, xs[1:]) if b - a == 1) / (len(xs) - 1)


class _Scan:
    __slots__ = ("start", "ids", "depth", "cursors", "size", "ring", "chk_ids", "chk_depth", "chk_size")

    def __init__(self, ts: float) -> None:
        self.start = ts
        self.ids: set[str] = set()
        self.depth = 0
        self.cursors = 0
        self.size = 0
        self.ring: Ring = Ring(50)
        self.chk_ids = 0
        self.chk_depth = 0
        self.chk_size = 0

    def reset(self, ts: float) -> None:
        self.start = ts
        self.ids.clear()
        self.depth = self.cursors = self.size = 0
        self.ring.clear()
        self.chk_ids = self.chk_depth = self.chk_size = 0

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, s: Any) -> None:
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)


def _p90(values: list[int]) -> float:
    if not values:
        return 0.0
    values.sort()
    return float(values[min(len(values) - 1, int(0.9 * len(values)))])


def _next(value: int, floor: int) -> int:
    """Next geometric checkpoint, never jumping over the self-contained floor."""
    nxt = value + max(1, value // 4)
    return min(nxt, floor) if value < floor else nxt


def _num(v: str) -> int | None:
    if v.isdigit() and len(v) <= 9:
        return int(v)
    return None


class ScrapingEnumeration(DetectorBase):
    """One actor walks the object space or paginates far beyond its peers."""

    id = "scraping.enumeration"
    title = "Scraping: object walk or deep pagination"
    severity = "medium"
    owasp = "API6:2023"
    attack = "T1119"
    tactic = "collection"
    cwe = "CWE-799"

    def __init__(
        self,
        *,
        window_s: float = 3600.0,
        min_actors: int = 5,
        factor: float = 5.0,
        min_ids: int = 40,
        min_depth: int = 20,
        min_size: int = 500,
        self_contained_ids: int = 300,
        self_contained_depth: int = 200,
        default_page_size: int = 20,
        max_endpoints: int = 5_000,
        actors_per_endpoint: int = 512,
        ids_cap: int = 2_048,
        slow_window_s: float = 172_800.0,
        walk_ids: int = 15,
        walk_sequential: float = 0.8,
        oversized_factor: float = 4.0,
        oversized_pages: int = 8,
        max_slow: int = 50_000,
        whole_space: float = 0.8,
        peer_part: float = 0.4,
        min_space_ids: int = 20,
    ) -> None:
        self.min_space_ids = min_space_ids
        self.whole_space = whole_space
        self.peer_part = peer_part
        self.slow_window_s = slow_window_s
        self.walk_ids = walk_ids
        self.walk_sequential = walk_sequential
        self.oversized_factor = oversized_factor
        self.oversized_pages = oversized_pages
        self._slow: LRU[str, _Slow] = LRU(max_slow)
        self._sizes: LRU[str, dict[int, int]] = LRU(max_endpoints)
        self.window_s = window_s
        self.min_actors = min_actors
        self.factor = factor
        self.min_ids = min_ids
        self.min_depth = min_depth
        self.min_size = min_size
        self.self_contained_ids = self_contained_ids
        self.self_contained_depth = self_contained_depth
        self.default_page_size = default_page_size
        self.actors_per_endpoint = actors_per_endpoint
        self.ids_cap = ids_cap
        self._ep: LRU[str, LRU[str, _Scan]] = LRU(max_endpoints)
        #: the same walks per parent object (``/collections/{c}/records/{id}``
        #: per ``c``): one shared collection walked end to end stands out
        #: there even where the template also holds every user's own objects
        self._parents: LRU[str, LRU[str, _Scan]] = LRU(max_endpoints)
        self._last = ""
        self.norms = Norms()

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        self._last = call.id
        upd = self._last_upd = self._update(call, ctx)
        if upd is None:
            return []
        scans, scan, num, big = upd
        ids = len(scan.ids)
        if (
            (ids >= min(self.min_ids, self.min_space_ids) and ids >= scan.chk_ids)
            or (scan.depth >= self.min_depth and scan.depth >= scan.chk_depth)
            or (scan.size >= self.min_size and scan.size >= scan.chk_size)
        ):  # a checkpoint is due: judge against the peers
            out = self._score(call, ctx, scans, scan)
        else:
            out = []
        if not out:
            pscan = self._parent_scan(call, ctx)
            if pscan is not None:
                out = self._score_parent(call, ctx, *pscan)
        if num < 0 and not big and call.actor.key + "|" + facts(call, ctx).ep_key not in self._slow:
            return out  # no numeric id, no oversized page, no slow state: nothing to keep over days
        slow = self._score_slow(call, ctx, num, big, bool(out))
        if slow is not None:
            out.append(slow)
        return out

    _last_upd: Any = None  # this call's scan (score then learn), never saved

    def __getstate__(self) -> dict[str, Any]:
        st = dict(self.__dict__)
        st.pop("_last_upd", None)
        return st

    def learn_one(self, call: ApiCall, ctx: Context) -> None:
        upd = self._last_upd if self._last == call.id else self._update(call, ctx)  # learn-only mode: keep the norms current
        if upd is None:
            return
        _, scan, num, big = upd
        actor = call.actor.key
        if not actor:
            return
        st = None
        if self._last != call.id:  # learn mode: the walks over days are kept here, scoring did not run
            if num >= 0 or big:
                st = self._slow_state(call, ctx, num, big)
        elif num >= 0:
            st = self._slow.get(actor + "|" + facts(call, ctx).ep_key)
        # the actor's own highs in windows nothing flagged: a client doing
        # what it did while apiward learned is not a scraper
        trust = ctx.trust
        flagged = facts(call, ctx).flagged or (trust is not None and trust.flagged(actor, call.ts))
        learn_mode = ctx.mode == "learn"
        ek = ctx.endpoint.key
        norms = self.norms
        for what, value in (("ids", len(scan.ids)), ("depth", scan.depth), ("size", scan.size)):
            if value:
                norms.observe(what, ek, actor, value, window=scan.start, learn_mode=learn_mode, flagged=flagged)
        if st is not None and st.nums:
            norms.observe("walk", ek, actor, len(st.nums), window=st.start, learn_mode=learn_mode, flagged=flagged or bool(st.flagged))

    def _own(self, what: str, ek: str, actor: str, value: int) -> float | None:
        """The actor's own normal high when ``value`` does not exceed it by
        the norms' factor, else ``None``."""
        own = self.norms.own(what, ek, actor)
        return own if own and value <= own * self.norms.own_factor else None

    def _typical_size(self, ek: str, size: int) -> int:
        """The endpoint's most requested page size (``default_page_size``
        when clients leave it out), learning ``size`` (0: none given)."""
        sizes = self._sizes.get(ek)
        if sizes is None:
            sizes = {-1: 0}  # -1 holds the cached mode, recomputed every 32 updates
            self._sizes.put(ek, sizes)
        n = sizes.get(size)
        if n is not None or len(sizes) < 33:
            sizes[size] = (n or 0) + 1
        total = sizes.get(-2, 0) + 1
        sizes[-2] = total
        if total <= 32 or total % 32 == 0:
            sizes[-1] = max((k for k in sizes if k >= 0), key=sizes.__getitem__)
        return sizes[-1] or self.default_page_size

    def _score_slow(self, call: ApiCall, ctx: Context, num: int, big: bool, flagged_now: bool) -> Finding | None:
        """Walks and oversized pages over days: ``walk_ids`` numeric ids read
        mostly in sequence, or ``oversized_pages`` requests for pages
        ``oversized_factor`` times the endpoint's usual size. Once flagged,
        each further call of the actor on the endpoint joins the finding."""
        actor = call.actor
        st = self._slow_state(call, ctx, num, big)
        if st is None:
            return None
        ep = ctx.endpoint
        if flagged_now:
            st.flagged = st.flagged or "scraped"
            return None  # the finding just made carries this call
        if st.flagged:
            # one more call of a flagged scrape joins the finding (empty evidence keeps the merged one)
            return self.finding(call, ctx, summary=f"{actor.display} goes on after being flagged ({st.flagged}) on {ep.name}",
                                evidence={}, confidence=0.7, key=f"{self.id}|{actor.key}|{ep.key}")
        n = len(st.nums)
        walk = n >= self.walk_ids and n >= st.since  # geometric checkpoints: the sort runs rarely
        if not walk and not (big and st.big >= self.oversized_pages):
            return None
        if walk:
            st.since = n + max(1, n // 4)
        what = ""
        evidence: dict[str, Any] = {}
        if walk:
            seq = _sequential(st.nums)
            if seq >= self.walk_sequential and self._own("walk", ep.key, actor.key, n) is None:
                lo, hi = min(st.nums), max(st.nums)
                what = f"read {len(st.nums)} objects in id order ({lo}..{hi})"
                evidence.update(distinct_objects=len(st.nums), sequential_ratio=round(seq, 3), id_range=[lo, hi])
        if not what and st.big >= self.oversized_pages:
            what = f"asked {st.big} times for pages far above the usual size"
            evidence.update(oversized_pages=st.big)
        if not what or privileged(actor.jwt_claims) is True:
            return None
        st.flagged = what
        hours = (call.ts - st.start) / 3600.0
        evidence["hours"] = round(hours, 1)
        return self.finding(
            call, ctx, summary=f"{actor.display} {what} on {ep.name} over {hours:.1f}h", evidence=evidence, confidence=0.7,
            key=f"{self.id}|{actor.key}|{ep.key}", event_ids=list(st.ring), first_seen=st.start,
        )

    def _slow_state(self, call: ApiCall, ctx: Context, num: int, big: bool) -> _Slow | None:
        """The actor's state on the endpoint over days, with this call in it."""
        k = call.actor.key + "|" + facts(call, ctx).ep_key
        st = self._slow.get(k)
        if st is None or call.ts - st.start > self.slow_window_s:
            if num < 0 and not big:
                return None
            st = _Slow(call.ts)
            self._slow.put(k, st)
        else:
            self._slow.move_to_end(k)
        if num >= 0 and len(st.nums) < self.ids_cap:
            st.nums.add(num)
        if big:
            st.big += 1
        st.ring.push(call.id)
        return st

    def _update(self, call: ApiCall, ctx: Context) -> tuple[LRU[str, _Scan], _Scan, int, bool] | None:
        req = call.request
        if req.method != "GET":
            return None
        ep = ctx.endpoint
        if not ep.path_params and not req.query:
            return None
        resp = call.response
        st = resp.status if resp is not None else 0
        if st >= 500 or st < 200 or st == 401 or st == 403:
            return None
        oid = ""
        if ep.path_params:
            refs = facts(call, ctx).path_refs
            # the object id, or the object's name where it has no id (a package file, a page)
            oid = refs[-1][1] if refs else ep.path_params[-1][1]
        depth = size = 0
        cursor = ""
        if req.query:
            off = -1
            for k, v in req.query:
                if k in PAGE_PARAMS:
                    if k in _CURSOR_PARAMS:
                        n = _num(v)
                        if n is None:
                            cursor = v
                        continue
                    n = _num(v)
                    if n is None:
                        continue
                    if k in _OFFSET_PARAMS:
                        off = n
                    else:
                        depth = max(depth, n)
                elif k in _SIZE_PARAMS:
                    n = _num(v)
                    if n is not None:
                        size = n
            if off >= 0:
                depth = max(depth, off // (size or self.default_page_size))
        if not oid and not depth and not cursor and not size:
            return None
        num = int(oid) if oid and len(oid) <= 9 and oid.isdigit() else None
        big = False
        ek = facts(call, ctx).ep_key
        if req.query and not oid:
            typical = self._typical_size(ek, size)
            big = size >= self.oversized_factor * typical
        scans, scan = self._scan_of(self._ep, ek, call.actor.key, call.ts)
        if oid and len(scan.ids) < self.ids_cap:
            scan.ids.add(oid)
        if cursor:
            scan.cursors += 1
            depth = max(depth, scan.cursors)
        if depth > scan.depth:
            scan.depth = depth
        if size > scan.size:
            scan.size = size
        scan.ring.push(call.id)
        return scans, scan, -1 if num is None else num, big

    def _score(self, call: ApiCall, ctx: Context, scans: LRU[str, _Scan], scan: _Scan) -> list[Finding]:
        actor = call.actor
        ep = ctx.endpoint
        out: list[Finding] = []
        nids = len(scan.ids)
        what: list[str] = []
        evidence: dict[str, Any] = {}
        conf = 0.0
        if nids >= min(self.min_ids, self.min_space_ids) and nids >= scan.chk_ids:
            scan.chk_ids = _next(nids, self.self_contained_ids)
            r = self._judge(scans, actor.key, "ids", nids, self.self_contained_ids) if nids >= self.min_ids else None
            known = self._whole_space(scans, actor.key, nids) if r is None else None
            if known is not None:
                r, known_n = known
                evidence["objects_known"] = known_n
            if r is not None and self._own("ids", ep.key, actor.key, nids) is None:
                what.append(f"read {nids} distinct objects (peers' p90 {r:.0f})")
                evidence.update(distinct_objects=nids, peer_p90_objects=r)
                conf = max(conf, 0.7)
        if scan.depth >= self.min_depth and scan.depth >= scan.chk_depth:
            scan.chk_depth = _next(scan.depth, self.self_contained_depth)
            r = self._judge(scans, actor.key, "depth", scan.depth, self.self_contained_depth)
            if r is not None and self._own("depth", ep.key, actor.key, scan.depth) is None:
                what.append(f"paginated to page {scan.depth} (peers' p90 {r:.0f})")
                evidence.update(page_depth=scan.depth, peer_p90_depth=r)
                conf = max(conf, 0.7)
        if scan.size >= self.min_size and scan.size >= scan.chk_size:
            scan.chk_size = scan.size + max(1, scan.size // 4)
            r = self._judge(scans, actor.key, "size", scan.size, 1 << 62)
            if r is not None and self._own("size", ep.key, actor.key, scan.size) is None:
                what.append(f"asked for pages of {scan.size} items (peers' p90 {r:.0f})")
                evidence.update(page_size=scan.size, peer_p90_size=r)
                conf = max(conf, 0.6)
        if not what or privileged(actor.jwt_claims) is True:
            return out
        evidence["window_s"] = self.window_s
        out.append(
            self.finding(
                call, ctx,
                summary=f"{actor.display} {' and '.join(what)} on {ep.name}",
                evidence=evidence,
                confidence=conf,
                key=f"{self.id}|{actor.key}|{ep.key}",
                event_ids=list(scan.ring),
                first_seen=scan.start,
            )
        )
        return out

    def _scan_of(self, table: LRU[str, LRU[str, _Scan]], key: str, me: str, ts: float) -> tuple[LRU[str, _Scan], _Scan]:
        """``me``'s scan in ``table[key]`` (made, or started again when its window is over)."""
        scans = table.get(key)
        if scans is None:
            scans = LRU(self.actors_per_endpoint)
            table.put(key, scans)
        else:
            table.move_to_end(key)
        scan = scans.get(me)
        if scan is None:
            scan = _Scan(ts)
            scans.put(me, scan)
        else:
            if ts - scan.start > self.window_s:
                scan.reset(ts)  # a new window: reuse the object
            scans.move_to_end(me)
        return scans, scan

    def _parent_scan(self, call: ApiCall, ctx: Context) -> tuple[LRU[str, _Scan], _Scan, str] | None:
        """The actor's walk below this call's parent object (the values of
        every path parameter but the last), with this call in it."""
        pp = ctx.endpoint.path_params
        if len(pp) < 2 or not call.actor.key:
            return None
        parent = "/".join(v for _k, v in pp[:-1])
        scans, scan = self._scan_of(self._parents, facts(call, ctx).ep_key + "|" + parent, call.actor.key, call.ts)
        if len(scan.ids) < self.ids_cap:
            scan.ids.add(pp[-1][1])
        scan.ring.push(call.id)
        return scans, scan, parent

    def _score_parent(self, call: ApiCall, ctx: Context, scans: LRU[str, _Scan], scan: _Scan, parent: str) -> list[Finding]:
        """Judge a walk below one parent object against the other actors
        reading below that same parent."""
        nids = len(scan.ids)
        if nids < min(self.min_ids, self.min_space_ids) or nids < scan.chk_ids:
            return []
        scan.chk_ids = _next(nids, self.self_contained_ids)
        actor = call.actor
        ep = ctx.endpoint
        r = self._judge(scans, actor.key, "ids", nids, self.self_contained_ids) if nids >= self.min_ids else None
        evidence: dict[str, Any] = {}
        known = self._whole_space(scans, actor.key, nids) if r is None else None
        if known is not None:
            r, evidence["objects_known_below_parent"] = known
        if r is None or self._own("ids", ep.key, actor.key, nids) is not None or privileged(actor.jwt_claims) is True:
            return []
        return [self.finding(
            call, ctx,
            summary=f"{actor.display} read {nids} distinct objects below one parent on {ep.name} (peers' p90 there {r:.0f})",
            evidence={"distinct_objects": nids, "peer_p90_objects": r, "parent_values": parent[:200], "window_s": self.window_s,
                      **evidence},
            confidence=0.7, key=f"{self.id}|{actor.key}|{ep.key}", event_ids=list(scan.ring), first_seen=scan.start,
        )]

    def _whole_space(self, scans: LRU[str, _Scan], me: str, nids: int) -> tuple[float, int] | None:
        """(peers' p90, objects known) when ``me`` read nearly every object
        anyone read here (``whole_space``) while each of at least
        ``min_actors`` peers read a small part (``peer_part``): a walk of the
        whole object space, however small the catalogue. None otherwise."""
        others = [len(sc.ids) for k, sc in scans.items() if k != me]
        if len(others) < self.min_actors:
            return None
        known: set[str] = set()
        for sc in scans.values():
            known |= sc.ids
        p = _p90(others)
        if nids >= self.whole_space * len(known) and p <= self.peer_part * len(known):
            return p, len(known)
        return None

    def _judge(self, scans: LRU[str, _Scan], me: str, what: str, value: int, self_contained: int) -> float | None:
        """The peers' p90 when ``value`` is far beyond it, else ``None``."""
        others = [getattr(s, what) if what != "ids" else len(s.ids) for k, s in scans.items() if k != me]
        if len(others) < self.min_actors:
            return 0.0 if value >= self_contained else None
        p = _p90(others)
        if value >= self.factor * max(p, 1.0):
            return p
        return None
