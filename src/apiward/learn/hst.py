"""Half-Space Trees (Tan, Ting and Liu, IJCAI 2011): streaming anomaly
scores from an ensemble of random complete binary trees over a bounded
feature space.

Each tree splits a randomly perturbed work space in half on a random
feature at every level. Nodes count how many windowed observations fell
through them: ``r`` (the previous, reference window) and ``l`` (the window
being filled). A point scores high when it falls into regions the
reference window rarely visited. Every ``window_size`` learned points the
reference masses are replaced by the latest ones.

The trees are flat arrays (a complete binary tree in heap order: the
children of node ``i`` are ``2i+1`` and ``2i+2``), so the model's state is
plain lists of numbers that apiward's state store keeps without pickle.
Scores follow river's convention: ``1 - mass score / max score``, higher
is more anomalous.

Cost per point: ``n_trees * height`` array steps to score, the same to
learn; :meth:`HalfSpaceTrees.score_learn` does both in one walk.
"""

from __future__ import annotations

import random

__all__ = ["HalfSpaceTrees"]


class HalfSpaceTrees:
    """An HST ensemble over named features with known ``limits``.

    >>> hst = HalfSpaceTrees(features=("x",), n_trees=5, height=3, window_size=3, seed=42)
    >>> for v in (0.5, 0.45, 0.43, 0.44, 0.445, 0.45):
    ...     hst.learn_one({"x": v})
    >>> hst.score_one({"x": 0.0}) > hst.score_one({"x": 0.45})
    True
    """

    def __init__(self, features: tuple[str, ...], *, n_trees: int = 10, height: int = 6, window_size: int = 250,
                 limits: dict[str, tuple[float, float]] | None = None, seed: int = 42) -> None:
        if n_trees < 1 or height < 1 or window_size < 1 or not features:
            raise ValueError("HalfSpaceTrees needs features, n_trees >= 1, height >= 1 and window_size >= 1")
        self.features = tuple(features)
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.counter = 0
        self.first_window = True
        n_nodes = (1 << (height + 1)) - 1
        n_inner = (1 << height) - 1
        rng = random.Random(seed)
        limits = limits or {}
        self.feature: list[list[int]] = []  # per tree, per inner node: index into features
        self.threshold: list[list[float]] = []
        self.l_mass: list[list[int]] = [[0] * n_nodes for _ in range(n_trees)]
        self.r_mass: list[list[int]] = [[0] * n_nodes for _ in range(n_trees)]
        for _ in range(n_trees):
            # a work space per tree: each dimension's range around a random point
            lo_hi = []
            for f in self.features:
                a, b = limits.get(f, (0.0, 1.0))
                s = rng.uniform(a, b)
                r = 2.0 * max(s - a, b - s)
                lo_hi.append((s - r, s + r))
            feats = [0] * n_inner
            ths = [0.0] * n_inner
            self._build(0, 0, lo_hi, feats, ths, rng)
            self.feature.append(feats)
            self.threshold.append(ths)
        self.max_score = float(n_trees * window_size * ((1 << (height + 1)) - 1))

    def _build(self, i: int, depth: int, space: list[tuple[float, float]], feats: list[int], ths: list[float],
               rng: random.Random) -> None:
        if depth >= self.height:
            return
        q = rng.randrange(len(self.features))
        lo, hi = space[q]
        mid = (lo + hi) / 2.0
        feats[i] = q
        ths[i] = mid
        left = list(space)
        left[q] = (lo, mid)
        self._build(2 * i + 1, depth + 1, left, feats, ths, rng)
        right = list(space)
        right[q] = (mid, hi)
        self._build(2 * i + 2, depth + 1, right, feats, ths, rng)

    def _vector(self, x: dict[str, float]) -> list[float]:
        return [float(x.get(f, 0.0)) for f in self.features]

    def score_one(self, x: dict[str, float]) -> float:
        """Anomaly score of ``x`` (0..1, higher is more anomalous); 0 during
        the first window (nothing to compare with yet)."""
        if self.first_window:
            return 0.0
        return 1.0 - self._walk(self._vector(x), learn=False) / self.max_score

    def learn_one(self, x: dict[str, float]) -> None:
        """Count ``x`` in the window being filled."""
        self._walk(self._vector(x), learn=True, score=False)
        self._tick()

    def score_learn(self, x: dict[str, float]) -> float:
        """:meth:`score_one` then :meth:`learn_one` in one walk."""
        first = self.first_window
        s = self._walk(self._vector(x), learn=True, score=not first)
        self._tick()
        return 0.0 if first else 1.0 - s / self.max_score

    def _walk(self, v: list[float], *, learn: bool, score: bool = True) -> float:
        height = self.height
        size_limit = 0.1 * self.window_size
        total = 0.0
        for t in range(self.n_trees):
            feats, ths = self.feature[t], self.threshold[t]
            lm, rm = self.l_mass[t], self.r_mass[t]
            i = 0
            weight = 1
            scoring = score
            for _ in range(height):
                if learn:
                    lm[i] += 1
                if scoring:
                    r = rm[i]
                    total += r * weight
                    if r < size_limit:
                        scoring = False
                        if not learn:
                            break
                    weight <<= 1
                i = 2 * i + 1 if v[feats[i]] < ths[i] else 2 * i + 2
            else:
                if learn:
                    lm[i] += 1
                if scoring:
                    total += rm[i] * weight
        return total

    def _tick(self) -> None:
        self.counter += 1
        if self.counter >= self.window_size:
            for t in range(self.n_trees):
                self.r_mass[t] = self.l_mass[t]
                self.l_mass[t] = [0] * len(self.l_mass[t])
            self.first_window = False
            self.counter = 0
