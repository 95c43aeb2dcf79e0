"""Hypothesis strategies for random small instances (shared by the tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from splitsched.instance import Instance


@st.composite
def instances(
    draw,
    max_clients: int = 6,
    max_helpers: int = 3,
    batches: bool = True,
    local: bool = True,
    unreachable: bool = True,
    tight_memory: bool = True,
) -> Instance:
    """A random feasible-or-not small instance with integer-ish times (exercises ties)."""
    k = draw(st.integers(1, max_clients))
    h = draw(st.integers(1, max_helpers))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    mats = {m: rng.integers(0, 20, (k, h)).astype(float) for m in ("release", "delay", "tail")}
    mats.update({m: rng.integers(1, 20, (k, h)).astype(float) for m in ("fwd", "bwd")})
    if unreachable and draw(st.booleans()):
        mask = rng.random((k, h)) < 0.25
        mask[np.arange(k), rng.integers(0, h, k)] = False  # every client reaches some helper
        for m in mats.values():
            m[mask] = np.nan
    demand = rng.integers(1, 10, k).astype(float)
    if tight_memory and draw(st.booleans()):
        capacity = rng.integers(5, 25, h).astype(float)
    else:
        capacity = np.full(h, 1000.0)
    nb = draw(st.integers(1, 3)) if batches else 1
    loc = None
    if local and draw(st.booleans()):
        loc = np.where(rng.random(k) < 0.5, rng.integers(5, 80, k).astype(float), np.nan)
    return Instance(
        name=f"hyp-{seed}",
        clients=tuple(f"c{j}" for j in range(k)),
        helpers=tuple(f"h{i}" for i in range(h)),
        demand=demand,
        capacity=capacity,
        batches=nb,
        local=loc,
        **mats,
    )
