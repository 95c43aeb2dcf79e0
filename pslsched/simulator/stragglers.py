"""Seeded slow-down factors for clients, helpers and links, per round or per task."""

from __future__ import annotations

import numpy as np

from pslsched.simulator.config import StragglerSpec
from pslsched.simulator.distributions import make_distribution


class Stragglers:
    """Multiplicative factors (1.0 = as profiled) for the entities of one round.

    Per-round factors are drawn once at ``start_round``; per-task factors are drawn when a step runs, from a
    stream seeded by (seed, spec, round), so the same seed and config replay the same run.
    """

    def __init__(self, specs: list[StragglerSpec], seed: int, sizes: dict[str, int]):
        self.specs = list(specs)
        self.seed = int(seed)
        self.sizes = sizes
        self.dists = [
            None if s.dist is None else make_distribution(s.dist, **s.dist_params()) for s in self.specs
        ]
        self.round_factors: dict[str, np.ndarray] = {}
        self.task_streams: list[np.random.Generator] = []

    @property
    def active(self) -> bool:
        return bool(self.specs)

    def start_round(self, r: int) -> None:
        """Draw the per-round factors of round ``r`` and reset the per-task streams."""
        self.round_factors = {t: np.ones(n) for t, n in self.sizes.items()}
        self.task_streams = []
        for k, (spec, dist) in enumerate(zip(self.specs, self.dists)):
            # per run: the same draw every round (persistent stragglers)
            rng = np.random.default_rng([self.seed, k] if spec.per == "run" else [self.seed, k, r])
            n = self.sizes[spec.target]
            if spec.p is not None:
                slow = rng.random(n) < spec.p
                self.round_factors[spec.target] *= np.where(slow, spec.factor, 1.0)
            elif spec.per in ("round", "run"):
                self.round_factors[spec.target] *= dist.draw(rng, n)
            self.task_streams.append(np.random.default_rng([self.seed, k, r, 1]))

    def factor(self, target: str, index: int) -> float:
        """The factor of one step of entity ``index`` of kind ``target`` (draws per-task factors)."""
        if not self.specs:
            return 1.0
        f = float(self.round_factors[target][index])
        for spec, dist, rng in zip(self.specs, self.dists, self.task_streams):
            if spec.target == target and spec.p is None and spec.per == "task":
                f *= float(dist.draw(rng, 1)[0])
        return f
