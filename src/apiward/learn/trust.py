"""Which actors may teach the learners what normal is.

Adaptation (a change that many users make is the application evolving)
is what attackers abuse: they control many identities and can repeat a
payload for hours until it looks normal. So the learners count a change
as adopted only on evidence from **established** principals that **no
detector flagged**:

- established: the actor was first seen at least ``min_span_s`` seconds of
  event time before, and made at least ``min_calls`` calls;
- flagged: an attack finding named it; it stays untrusted for ``taint_s``
  seconds of event time after its latest flag.

In ``learn`` mode every actor is trusted (the operator says this traffic is
normal). The pipeline asks :meth:`Trust.trusted` before the learners learn
a call and records the answer in the call's facts; learners that count
actors (:class:`~apiward.learn.baselines.Baselines` profiles, injection's
deferred deviations) count only trusted ones. Calls an attack finding
rests on teach nothing at all, whoever made them.

State: one small record per actor in an LRU (``max_actors``); an evicted
actor starts over as new, which only delays its trust.

Cost per call: one dict look-up and a few comparisons.
"""

from __future__ import annotations

from apiward.learn.sketches import LRU

__all__ = ["Trust"]


class Trust:
    """Established, unflagged actors (see the module docstring).

    >>> t = Trust(min_calls=3, min_span_s=60)
    >>> for ts in (0, 30, 90):
    ...     t.observe("user:alice", ts)
    >>> t.trusted("user:alice", 100), t.trusted("user:bob", 100)
    (True, False)
    >>> t.flag("user:alice", 120)
    >>> t.trusted("user:alice", 130)
    False
    """

    def __init__(self, *, min_calls: int = 10, min_span_s: float = 3600.0, taint_s: float = 7 * 86400.0, max_actors: int = 200_000) -> None:
        if min_calls < 0 or min_span_s < 0 or taint_s < 0 or max_actors < 1:
            raise ValueError("Trust limits must be >= 0 (max_actors >= 1)")
        self.min_calls = min_calls
        self.min_span_s = min_span_s
        self.taint_s = taint_s
        # actor key -> [first seen, calls, latest flag time (or -inf)]
        self._actors: LRU[str, list[float]] = LRU(max_actors, spill=True)

    def observe(self, actor: str, ts: float) -> None:
        """Count one call of ``actor`` (after it was scored)."""
        if not actor:
            return
        rec = self._actors.get(actor)
        if rec is None:
            self._actors.put(actor, [ts, 1.0, float("-inf")])
        else:
            self._actors.move_to_end(actor)
            rec[1] += 1
            if ts < rec[0]:
                rec[0] = ts

    def flag(self, actor: str, ts: float) -> None:
        """An attack finding named ``actor`` at event time ``ts``."""
        if not actor:
            return
        rec = self._actors.get(actor)
        if rec is None:
            self._actors.put(actor, [ts, 0.0, ts])
        elif ts > rec[2]:
            rec[2] = ts

    def flagged(self, actor: str, ts: float) -> bool:
        """Whether ``actor`` was flagged within ``taint_s`` before ``ts``."""
        rec = self._actors.get(actor)
        return rec is not None and ts - rec[2] < self.taint_s

    def trusted(self, actor: str, ts: float) -> bool:
        """Established (old and active enough) and not flagged lately."""
        rec = self._actors.get(actor) if actor else None
        if rec is None:
            return False
        return rec[1] >= self.min_calls and ts - rec[0] >= self.min_span_s and ts - rec[2] >= self.taint_s

    def __len__(self) -> int:
        return self._actors.size()
