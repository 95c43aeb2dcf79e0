"""A round's helper orders are read off each step's participants (not the whole order per step): the same orders."""

from __future__ import annotations

import numpy as np
import pytest

from pslsched.simulator.orders import orders_for_plan


def reference(orders, batches, samples):
    """The plain definition: every step, the template's tasks of that step's batch whose client takes part."""
    out = []
    for order in orders:
        seq = []
        for t in range(samples.shape[0]):
            seq.extend((j, ph, t) for j, ph, b in order if b == t % batches and samples[t, j] > 0)
        out.append(seq)
    return out


@pytest.mark.parametrize("seed", range(20))
def test_synchronous_orders_match_their_definition(seed):
    rng = np.random.default_rng(seed)
    k, h, batches, steps = int(rng.integers(1, 12)), int(rng.integers(1, 4)), int(rng.integers(1, 4)), 7
    assign = rng.integers(0, h, k)
    orders = []
    for i in range(h):
        tasks = [
            (int(j), ph, b)
            for j in np.flatnonzero(assign == i)
            for b in range(batches)
            for ph in ("fwd", "bwd")
        ]
        orders.append([tasks[p] for p in rng.permutation(len(tasks))])
    samples = rng.integers(0, 3, (steps, k)) * (rng.random((steps, k)) < 0.6)
    assert orders_for_plan(orders, batches, samples, sync=True) == reference(orders, batches, samples)
