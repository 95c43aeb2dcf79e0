"""Random instances for the solver tests (helper A): small, seeded, optionally with batches and local training."""

from __future__ import annotations

import numpy as np

from pslsched.core.instance import Instance


def random_instance(
    k: int,
    h: int,
    seed: int,
    *,
    batches: int = 1,
    local: bool = False,
    tight_memory: bool = False,
    unreachable: float = 0.0,
) -> Instance:
    """K clients, H helpers with pair-dependent T1..T5 (ms), random demands; every client fits somewhere."""
    rng = np.random.default_rng(seed)
    speed = rng.uniform(0.5, 2.0, size=h)
    link = rng.uniform(0.5, 3.0, size=(k, h))
    release = np.round(rng.uniform(1, 20, size=(k, 1)) + link * rng.uniform(1, 5, size=(k, 1)), 3)
    fwd = np.round(rng.uniform(4, 15, size=(k, 1)) / speed[None, :], 3)
    delay = np.round(rng.uniform(1, 25, size=(k, 1)) + link * rng.uniform(1, 3, size=(k, 1)), 3)
    bwd = np.round(2 * fwd * rng.uniform(0.8, 1.2, size=(k, h)), 3)
    tail = np.round(rng.uniform(1, 15, size=(k, 1)) + link, 3)
    demand = np.round(rng.uniform(50, 150, size=k), 1)
    per = demand.sum() / h
    capacity = np.round(
        rng.uniform(1.3, 2.0, size=h) * per if tight_memory else np.full(h, demand.sum() + 1.0), 1
    )
    capacity = np.maximum(capacity, demand.max())
    mats = {"release": release, "fwd": fwd, "delay": delay, "bwd": bwd, "tail": tail}
    if unreachable > 0:
        mask = rng.random((k, h)) < unreachable
        mask[np.arange(k), rng.integers(h, size=k)] = False
        for name in mats:
            mats[name] = np.where(mask, np.nan, mats[name])
    loc = None
    if local:
        loc = np.round(rng.uniform(40, 120, size=k), 3)
        loc[rng.random(k) < 0.5] = np.nan
    return numbered_instance(f"rand-{k}x{h}-{seed}", mats, demand, capacity, batches=batches, local=loc)


def case_instance(case: dict) -> Instance:
    """``random_instance`` from a test case ``dict(k=..., h=..., seed=..., **options)``."""
    kw = dict(case)
    return random_instance(kw.pop("k"), kw.pop("h"), kw.pop("seed"), **kw)


def numbered_instance(
    name: str,
    matrices: dict[str, np.ndarray],
    demand: np.ndarray,
    capacity: np.ndarray,
    *,
    batches: int = 1,
    local: np.ndarray | None = None,
) -> Instance:
    """An instance with clients ``c0, c1, ...`` and helpers ``h0, h1, ...`` from its K x H ``matrices``."""
    k, h = next(iter(matrices.values())).shape
    return Instance(
        name=name,
        clients=tuple(f"c{j}" for j in range(k)),
        helpers=tuple(f"h{i}" for i in range(h)),
        demand=demand,
        capacity=capacity,
        batches=batches,
        local=local,
        **matrices,
    )


def infeasible_instance() -> Instance:
    """Three clients of 100 MB, two helpers of 150 MB: each fits alone, but no assignment fits all three."""
    k, h = 3, 2
    ones = np.ones((k, h))
    return Instance(
        name="no-room",
        clients=("a", "b", "c"),
        helpers=("h0", "h1"),
        release=ones,
        fwd=2 * ones,
        delay=3 * ones,
        bwd=4 * ones,
        tail=ones,
        demand=np.array([100.0, 100.0, 100.0]),
        capacity=np.array([150.0, 150.0]),
    )


def brute_force_orders(inst: Instance) -> float:
    """The best makespan over every assignment and every per-helper order of all tasks (tiny instances only;
    orders the model cannot run, a backward before its forward or a step past a barrier, are skipped)."""
    import itertools
    import math

    from pslsched.core.timing import earliest_schedule

    best = math.inf
    k, h, nb = inst.num_clients, inst.num_helpers, inst.batches
    for assign in itertools.product(range(h), repeat=k):
        if any(
            inst.demand[[j for j in range(k) if assign[j] == i]].sum() > inst.capacity[i] for i in range(h)
        ):
            continue
        per = [
            [(j, p, b) for j in range(k) if assign[j] == i for b in range(nb) for p in ("fwd", "bwd")]
            for i in range(h)
        ]
        for perms in itertools.product(*(itertools.permutations(p) for p in per)):
            try:
                _, completion = earliest_schedule(inst, list(assign), [list(p) for p in perms])
            except ValueError:
                continue
            best = min(best, float(completion.max()))
    return best
