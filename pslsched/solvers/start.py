"""Starting solutions for the exact solvers and LNS: several assignments, each sequenced by the best rule per helper.

A start is (assignment, per-helper orders, makespan). :func:`best_start` tries the chain-aware constructive
assignment, the greedy load assignment, balanced-greedy and (when small enough and time allows) EquiD's
min-max-load IP, sequences each with :func:`pslsched.solvers.sequencing.sequence_all` and keeps the shortest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pslsched.core.instance import Instance
from pslsched.core.timing import HelperTask
from pslsched.solvers.assignment import (
    IP_PAIR_LIMIT,
    chain_aware_assignment,
    greedy_load_assignment,
    min_max_load_assignment,
)
from pslsched.solvers.baselines import balanced_assignment
from pslsched.solvers.sequencing import sequence_all

Hint = tuple[np.ndarray, list[list[HelperTask]]]  # (assignment, per-helper orders) a search starts from
Candidate = tuple[float, np.ndarray, list[list[HelperTask]]]  # (makespan, assignment, per-helper orders)
MIN_IP_S = 0.1  # with a smaller budget EquiD's IP finds nothing at the sizes it is tried on


@dataclass
class Start:
    """A feasible solution in index form: ``finish[i]`` is helper i's last completion (0 if unused)."""

    assignment: np.ndarray
    orders: list[list[HelperTask]]
    makespan: float
    name: str


def evaluate(instance: Instance, assignment: np.ndarray, name: str) -> Start:
    """Sequence ``assignment`` with the best rule per helper."""
    orders, finish = sequence_all(instance, assignment)
    local = assignment < 0
    local_max = (
        float(instance.batches * np.nan_to_num(instance.local[local]).max())
        if local.any() and instance.local is not None
        else 0.0
    )
    return Start(assignment, orders, float(max(finish.max(initial=0.0), local_max)), name)


def best_start(instance: Instance, ip_time: float = 2.0, deadline: float | None = None) -> Start | None:
    """The best of the constructive starts (None when none of them finds room for every client).

    ``ip_time``: the whole budget of EquiD's IP (built and solved), tried only when the model is small enough and
    the budget at least ``MIN_IP_S``. ``deadline`` (a ``time.perf_counter()`` instant): once it has passed, the
    remaining candidates are skipped (the first, chain-aware, is always built)."""
    builders: list[tuple[str, Callable[[], np.ndarray | None]]] = [
        ("chain-aware", lambda: chain_aware_assignment(instance)),
        ("greedy-load", lambda: greedy_load_assignment(instance)),
        ("balanced", lambda: balanced_assignment(instance)),
    ]
    if ip_time >= MIN_IP_S and int(instance.fits.sum()) <= IP_PAIR_LIMIT:
        builders.append(("min-max-load", lambda: min_max_load_assignment(instance, time_limit=ip_time)[0]))
    best: Start | None = None
    seen: set[bytes] = set()
    for name, build in builders:
        if best is not None and deadline is not None and time.perf_counter() >= deadline:
            break
        assignment = build()
        if assignment is None or assignment.tobytes() in seen:
            continue
        seen.add(assignment.tobytes())
        start = evaluate(instance, assignment, name)
        if best is None or start.makespan < best.makespan:
            best = start
    return best


def best_of(candidates: list[Candidate]) -> Candidate:
    """The candidate with the shortest makespan (ties: the first)."""
    return min(candidates, key=lambda c: c[0])
