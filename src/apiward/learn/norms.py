"""What actors normally reach on the counters detectors keep, so that an
actor-level finding names an actor only when it stands out.

Volume detectors (scanning, enumeration, scraping, harvesting, rate abuse,
sign-up bursts) count per actor over windows: distinct not-found paths in a
day, distinct object ids in an hour, calls in a minute. A fixed threshold
accuses the heavy but ordinary client: the crawler the operator runs every
night, the mobile app that prefetches, everyone behind one NAT address, a
client replaying last week's workload. :class:`Norms` remembers, per
statistic and scope (an endpoint, a host, an object kind):

- **own**: each actor's highest value in windows that ended without an
  attack finding against it (every window in ``learn`` mode), so a client
  doing what it did while learning is not news;
- **peers**: the distribution of those highs across actors, so a value the
  ordinary population reaches is not news either.

:meth:`Norms.stands_out` says whether a value is beyond both (and above the
detector's own floor), with the figures as evidence. A window still open
never counts as the actor's own norm (else an attack in progress would
teach itself), and in ``detect`` mode nothing is learned.

State per (statistic, scope): an LRU of actors' highs (``max_actors``) and
a cached sorted sample for the quantiles. Cost: a dict look-up per
observation; quantiles are recomputed when the population grew by 10%.
"""

from __future__ import annotations

from typing import Any

from apiward.learn.sketches import LRU

__all__ = ["Norms"]


class _Stat:
    """One statistic in one scope: actors' highs and the current windows."""

    __slots__ = ("own", "rate", "cur", "_q", "_qn", "_changes")

    def __init__(self, cap: int) -> None:
        self.own: LRU[str, float] = LRU(cap)  # actor -> highest value of a closed, unflagged window
        self.rate: LRU[str, float] = LRU(cap)  # actor -> highest value per call of such a window
        self.cur: LRU[str, list[Any]] = LRU(cap)  # actor -> [window id, highest value in it, flagged, its calls]
        self._q: tuple[int, float, float, float] = (0, 0.0, 0.0, 0.0)
        self._qn = -1
        self._changes = 0

    def quantiles(self) -> tuple[int, float, float, float]:
        """(actors, median, 90th percentile, max) of the actors' highs: for
        each actor its closed windows' high, or its open window's value when
        higher and unflagged (peers are what the others do now, too).
        Recomputed after enough changes (10% of the actors, at least 8)."""
        n = len(self.own) + len(self.cur)
        if self._qn < 0 or self._changes >= max(8, self._qn // 10):
            vals_by: dict[str, float] = dict(self.own)
            for a, c in self.cur.items():
                if not c[2] and c[1] > vals_by.get(a, -1.0):
                    vals_by[a] = c[1]
            vals = sorted(vals_by.values())
            m = len(vals)
            self._q = (m, vals[m // 2], vals[min(m - 1, (9 * m) // 10)], vals[-1]) if vals else (0, 0.0, 0.0, 0.0)
            self._qn = n
            self._changes = 0
        return self._q


class Norms:
    """Own and peer norms of per-actor window statistics (see module doc).

    >>> n = Norms()
    >>> for i in range(20):            # twenty ordinary actors, 3-5 ids an hour
    ...     n.observe("ids", "h", f"a{i}", 3 + i % 3, window=0, learn_mode=True)
    >>> n.observe("ids", "h", "crawler", 40, window=0, learn_mode=True)
    >>> n.stands_out("ids", "h", "crawler", 45, floor=10)[0]     # what it did while learning
    False
    >>> n.stands_out("ids", "h", "newcomer", 45, floor=10)[0]    # nobody ordinary does that
    True
    >>> n.stands_out("ids", "h", "newcomer", 9, floor=10)[0]     # below the detector's floor
    False
    """

    def __init__(self, *, own_factor: float = 1.5, peer_factor: float = 3.0, min_peers: int = 5, max_actors: int = 4096,
                 max_scopes: int = 20_000) -> None:
        self.own_factor = own_factor
        self.peer_factor = peer_factor
        self.min_peers = min_peers
        self.max_actors = max_actors
        self._stats: LRU[str, _Stat] = LRU(max_scopes)

    def _stat(self, stat: str, scope: str, create: bool) -> _Stat | None:
        k = stat + "\x1f" + scope
        s = self._stats.get(k)
        if s is None and create:
            s = _Stat(self.max_actors)
            self._stats.put(k, s)
        return s

    def observe(self, stat: str, scope: str, actor: str, value: float, *, window: Any, calls: int = 0,
                learn_mode: bool = False, flagged: bool = False) -> None:
        """Record ``actor``'s running ``value`` in ``window`` (any id that
        changes when a new window starts) after ``calls`` calls of the
        actor in that window (0: unknown). In ``learn_mode`` the value is
        normal at once; otherwise it becomes the actor's norm when the
        window ends and nothing flagged the actor in it (``flagged``)."""
        if not actor:
            return
        s = self._stat(stat, scope, True)
        assert s is not None
        s._changes += 1
        if learn_mode:
            self._keep(s, actor, float(value), calls)
            return
        cur = s.cur.get(actor)
        if cur is None or cur[0] != window:
            if cur is not None and not cur[2]:
                self._keep(s, actor, cur[1], cur[3])  # the previous window ended unflagged
            s.cur.put(actor, [window, float(value), flagged, calls])
        else:
            if value > cur[1]:
                cur[1] = float(value)
                cur[3] = calls
            if flagged:
                cur[2] = True

    @staticmethod
    def _keep(s: _Stat, actor: str, value: float, calls: int) -> None:
        if value > s.own.get(actor, -1.0):  # a zero counts: an actor that reaches nothing is a peer too
            s.own.put(actor, value)
        if calls > 0 and value / calls > s.rate.get(actor, 0.0):
            s.rate.put(actor, value / calls)

    def own(self, stat: str, scope: str, actor: str) -> float:
        """The actor's highest normal value (0 when unknown)."""
        s = self._stat(stat, scope, False)
        return s.own.get(actor, 0.0) if s is not None else 0.0

    def peers(self, stat: str, scope: str) -> tuple[int, float, float, float]:
        """(actors, median, 90th percentile, max) of actors' normal highs."""
        s = self._stat(stat, scope, False)
        return s.quantiles() if s is not None else (0, 0.0, 0.0, 0.0)

    def stands_out(self, stat: str, scope: str, actor: str, value: float, *, floor: float, calls: int = 0,
                   need_peers: bool = False) -> tuple[bool, dict[str, Any]]:
        """Whether ``value`` is at least ``floor``, above ``own_factor``
        times the actor's own norm, and (when at least ``min_peers``
        actors are known) above ``peer_factor`` times the peers' 90th
        percentile. With ``calls`` (the actor's calls in the window) the
        own norm scales with volume: an actor that had 40 not-found paths
        in 1,500 calls while learning may have 56 in 2,100. The evidence
        names the figures compared. ``need_peers``: without ``min_peers``
        known actors nothing stands out (the first callers of an endpoint
        cannot tell its design from an attack)."""
        s = self._stat(stat, scope, False)
        own = s.own.get(actor, 0.0) if s is not None else 0.0
        if calls and s is not None:
            own = max(own, s.rate.get(actor, 0.0) * calls)
        n, q50, q90, mx = self.peers(stat, scope)
        if s is not None and actor in s.cur and n > 0:
            n -= 1  # the actor is not its own peer (its open window may be in the figures: conservative)
        ev = {"value": value, "floor": floor, "own_norm": round(own, 2), "peers": n, "peer_median": q50, "peer_p90": q90}
        if value < floor:
            return False, ev
        if own and value <= own * self.own_factor:
            return False, ev
        if n >= self.min_peers and value <= q90 * self.peer_factor:
            return False, ev
        if need_peers and n < self.min_peers:
            return False, ev
        return True, ev
