"""The two published baselines of Tirana et al. (INFOCOM 2024): random + FCFS and balanced-greedy + FCFS."""

from __future__ import annotations

from typing import Any

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.solvers.base import SolverRun, register_run
from pslsched.solvers.list_scheduling import Rule, fcfs, list_schedule


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


def rule_on_assignment(
    run: SolverRun,
    assignment: np.ndarray | None,
    rule: Rule,
    failure: str,
    extra: dict[str, Any] | None = None,
) -> SolveResult:
    """The answer of a list-scheduling heuristic: ``rule`` on every helper of ``assignment`` (None: ``failure``)."""
    if assignment is None:
        return run.no_schedule(failure)
    tasks, completion = list_schedule(run.instance, assignment, rule)
    return run.finish(assignment, tasks, completion, extra=extra)


@register_run("random", "random feasible assignment + FCFS (baseline of Tirana et al. 2024)")
def solve_random(run: SolverRun, options: dict) -> SolveResult:
    """A uniformly random assignment with room (seeded by the run's seed), FCFS on every helper."""
    run.options = {"seed": run.seed, **options}
    assignment = random_assignment(run.instance, np.random.default_rng(run.seed))
    return rule_on_assignment(run, assignment, fcfs, "the random assignment left a client without room")


@register_run("greedy", "balanced-greedy assignment (even client counts) + FCFS (Tirana et al. 2024)")
def solve_greedy(run: SolverRun, options: dict) -> SolveResult:
    """The balanced-greedy assignment, FCFS on every helper."""
    run.options = {"seed": run.seed, **options}
    assignment = balanced_assignment(run.instance)
    return rule_on_assignment(run, assignment, fcfs, "balanced-greedy left a client without room")
