"""Hypothesis strategies for random small instances, and the checks every solver test runs on a result.

Import from any test file: ``from strategies import instances, check_result`` (``tests/`` is on the path).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import strategies as st
from solver_instances import numbered_instance

from pslsched.core.instance import MATRICES, Instance
from pslsched.core.result import SolveResult
from pslsched.core.validate import validate
from pslsched.solvers import solve

# Relative slack for comparing a bound with a makespan (both floats computed along different paths).
BOUND_RTOL = 1e-9


@st.composite
def instances(
    draw: st.DrawFn,
    min_clients: int = 1,
    max_clients: int = 6,
    min_helpers: int = 1,
    max_helpers: int = 3,
    unreachable: bool = True,
    memory: bool = True,
    batches: bool = True,
    local: bool = True,
    fits_somewhere: bool = False,
    max_time: int = 20,
) -> Instance:
    """A random small instance.

    Times are small integers (0..max_time; fwd/bwd at least 1) so ties are common. With ``unreachable`` some
    (client, helper) pairs are NaN, possibly every pair of a client; with ``memory`` demands and capacities are
    tight enough that a client may fit nowhere or the bodies may not pack; ``batches`` draws B in 1..3; ``local``
    gives some clients a local-training option. ``fits_somewhere`` guarantees every client at least one
    reachable helper that can hold it alone (not that all of them pack together).
    """
    k = draw(st.integers(min_clients, max_clients), label="clients")
    h = draw(st.integers(min_helpers, max_helpers), label="helpers")

    def matrix(lo: int) -> np.ndarray:
        flat = draw(st.lists(st.integers(lo, max_time), min_size=k * h, max_size=k * h))
        return np.array(flat, dtype=float).reshape(k, h)

    mats = {m: matrix(1 if m in ("fwd", "bwd") else 0) for m in MATRICES}
    if unreachable and draw(st.booleans(), label="with unreachable pairs"):
        flat = draw(st.lists(st.booleans(), min_size=k * h, max_size=k * h), label="unreachable mask")
        mask = np.array(flat, dtype=bool).reshape(k, h)
        if fits_somewhere:
            mask[np.arange(k), draw(_row_choices(k, h), label="kept helper")] = False
        for m in mats.values():
            m[mask] = np.nan
    if memory and draw(st.booleans(), label="tight memory"):
        demand = np.array(draw(st.lists(st.integers(1, 10), min_size=k, max_size=k)), dtype=float)
        capacity = np.array(draw(st.lists(st.integers(1, 25), min_size=h, max_size=h)), dtype=float)
    else:
        demand = np.ones(k)
        capacity = np.full(h, float(k))
    if fits_somewhere:
        reach = ~np.isnan(mats["fwd"])
        for j in range(k):
            best = np.where(reach[j], capacity, -np.inf).max()
            demand[j] = min(demand[j], best)
    nb = draw(st.integers(1, 3), label="batches") if batches else 1
    loc = None
    if local and draw(st.booleans(), label="with local option"):
        values = draw(
            st.lists(st.one_of(st.none(), st.integers(1, 5 * max_time)), min_size=k, max_size=k),
            label="local",
        )
        loc = np.array([math.nan if v is None else float(v) for v in values])
    return numbered_instance("hyp", mats, demand, capacity, batches=nb, local=loc)


def uniform_instance(
    k: int,
    h: int,
    *,
    release: float = 1.0,
    fwd: float = 3.0,
    delay: float = 1.0,
    bwd: float = 3.0,
    tail: float = 1.0,
    demand: float = 1.0,
    capacity: float | None = None,
    batches: int = 1,
    local: list[float] | None = None,
    name: str = "uniform",
) -> Instance:
    """K identical clients on H identical helpers (every pair reachable); for hand-computed expectations."""
    values = {"release": release, "fwd": fwd, "delay": delay, "bwd": bwd, "tail": tail}
    return numbered_instance(
        name,
        {m: np.full((k, h), float(values[m])) for m in MATRICES},
        np.full(k, float(demand)),
        np.full(h, float(k * demand if capacity is None else capacity)),
        batches=batches,
        local=None if local is None else np.array(local, dtype=float),
    )


def _row_choices(k: int, h: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, h - 1), min_size=k, max_size=k)


def assignment_index(instance: Instance, assignment: dict[str, str | None]) -> np.ndarray:
    """A schedule's name assignment as the index array of the timing functions (-1 = local)."""
    return np.array(
        [-1 if assignment[c] is None else instance.helper_index[assignment[c]] for c in instance.clients],
        dtype=int,
    )


def check_result(instance: Instance, result: SolveResult) -> None:
    """The checks every solver test runs: a schedule is valid and bounded, or there is none and says why."""
    if result.schedule is None:
        assert result.status in ("infeasible", "unknown"), result.status
        assert result.makespan is None
        assert result.message
        return
    assert result.status in ("optimal", "feasible"), result.status
    assert validate(instance, result.schedule) == []
    assert result.makespan == result.schedule.makespan
    assert result.lower_bound == result.schedule.lower_bound
    assert result.lower_bound <= result.makespan * (1 + BOUND_RTOL)
    assert all(h is None or h in instance.helpers for h in result.schedule.assignment.values())


def solved_to_one_optimum(
    instance: Instance, runs: dict[str, dict], *, time_limit: float, rel: float = 1e-6
) -> list[SolveResult]:
    """Each solver of ``runs`` (name -> options, seed 0) on ``instance``: all valid, proved optimal and bounded by
    their makespans, with the same makespan up to ``rel``; returns the results in the order of ``runs``."""
    results = [solve(instance, name, time_limit=time_limit, seed=0, **opts) for name, opts in runs.items()]
    for res in results:
        assert res.schedule is not None, res.message
        assert validate(instance, res.schedule) == []
        assert res.status == "optimal", res.message
        assert res.lower_bound <= res.makespan
    for res in results[1:]:
        assert res.makespan == pytest.approx(results[0].makespan, rel=rel)
    return results
