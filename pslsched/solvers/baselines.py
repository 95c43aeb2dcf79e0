"""The two published baselines of Tirana et al. (INFOCOM 2024): random + FCFS and balanced-greedy + FCFS."""

from __future__ import annotations

import time

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.solvers.base import finish, no_schedule
from pslsched.solvers.list_scheduling import fcfs, list_schedule
from pslsched.solvers.registry import register


def random_assignment(instance: Instance, rng: np.random.Generator) -> np.ndarray | None:
    """Clients in random order, each to a uniformly random helper with room left (local counts as one more
    option for clients that have it). None when some client finds no room."""
    free = instance.capacity.astype(float).copy()
    assignment = np.full(instance.num_clients, -1, dtype=int)
    for j in rng.permutation(instance.num_clients):
        options = list(np.flatnonzero(instance.fits[j] & (instance.demand[j] <= free)))
        if instance.can_local[j]:
            options.append(-1)
        if not options:
            return None
        i = int(options[rng.integers(len(options))])
        assignment[j] = i
        if i >= 0:
            free[i] -= instance.demand[j]
    return assignment


def balanced_assignment(instance: Instance) -> np.ndarray | None:
    """Clients in index order, each to the helper with room that keeps client counts most even (smallest
    max - min after placing; ties to the lowest index). Speeds and links are ignored, as in the paper.
    A client with a local option trains locally only when no helper has room. None if some client finds none."""
    free = instance.capacity.astype(float).copy()
    counts = np.zeros(instance.num_helpers, dtype=int)
    assignment = np.full(instance.num_clients, -1, dtype=int)
    for j in range(instance.num_clients):
        options = np.flatnonzero(instance.fits[j] & (instance.demand[j] <= free))
        if len(options) == 0:
            if instance.can_local[j]:
                continue
            return None
        best = int(options[np.argmin(_spread_after(counts, options))])  # argmin: ties to the lowest index
        assignment[j] = best
        counts[best] += 1
        free[best] -= instance.demand[j]
    return assignment


def _spread_after(counts: np.ndarray, options: np.ndarray) -> np.ndarray:
    """max - min of the client counts after adding one client to each option (vectorised)."""
    low = counts.min()
    above = counts[counts > low]
    second = above.min() if len(above) else np.inf
    unique_min = (counts == low).sum() == 1
    c = counts[options]
    new_min = np.where((c == low) & unique_min, np.minimum(low + 1, second), low)
    return np.maximum(counts.max(), c + 1) - new_min


@register("random", "random feasible assignment + FCFS (baseline of Tirana et al. 2024)")
def solve_random(
    instance: Instance, *, time_limit: float | None = None, seed: int = 0, **options
) -> SolveResult:
    t0 = time.perf_counter()
    opts = {"seed": seed, **options}
    assignment = random_assignment(instance, np.random.default_rng(seed))
    if assignment is None:
        return no_schedule(
            instance,
            "random",
            t0,
            time_limit=time_limit,
            options=opts,
            reason="the random assignment left a client without room",
        )
    tasks, completion = list_schedule(instance, assignment, fcfs)
    return finish(instance, "random", assignment, tasks, completion, t0, time_limit=time_limit, options=opts)


@register("greedy", "balanced-greedy assignment (even client counts) + FCFS (Tirana et al. 2024)")
def solve_greedy(
    instance: Instance, *, time_limit: float | None = None, seed: int = 0, **options
) -> SolveResult:
    t0 = time.perf_counter()
    opts = {"seed": seed, **options}
    assignment = balanced_assignment(instance)
    if assignment is None:
        return no_schedule(
            instance,
            "greedy",
            t0,
            time_limit=time_limit,
            options=opts,
            reason="balanced-greedy left a client without room",
        )
    tasks, completion = list_schedule(instance, assignment, fcfs)
    return finish(instance, "greedy", assignment, tasks, completion, t0, time_limit=time_limit, options=opts)
