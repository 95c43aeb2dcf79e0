"""EquiD and ED-FCFS: valid schedules, bounds, determinism, the min-max-load assignment, infeasibility."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from solver_instances import infeasible_instance, random_instance

from pslsched.core.validate import validate
from pslsched.solvers import solve
from pslsched.solvers.assignment import (
    chain_aware_assignment,
    greedy_load_assignment,
    min_max_load_assignment,
)

CASES = [
    dict(k=6, h=2, seed=0),
    dict(k=10, h=3, seed=1, tight_memory=True),
    dict(k=8, h=3, seed=2, batches=3),
    dict(k=9, h=2, seed=3, local=True, unreachable=0.3),
]


def _check(inst, res):
    assert res.schedule is not None, res.message
    assert validate(inst, res.schedule) == []
    assert res.lower_bound <= res.makespan


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", ["equid", "ed-fcfs"])
def test_valid_with_bound(case, name):
    kw = dict(case)
    inst = random_instance(kw.pop("k"), kw.pop("h"), kw.pop("seed"), **kw)
    res = solve(inst, name, time_limit=2, seed=0)
    _check(inst, res)
    again = solve(inst, name, time_limit=2, seed=0)
    assert again.makespan == res.makespan


def _max_load(inst, assignment):
    loads = [0.0] * inst.num_helpers
    worst = 0.0
    for j, i in enumerate(assignment):
        if i < 0:
            worst = max(worst, inst.batches * inst.local[j])
        else:
            loads[i] += inst.batches * inst.load[j, i]
    return max([worst, *loads])


def test_min_max_load_is_optimal_on_tiny_instances():
    for seed in range(3):
        inst = random_instance(5, 2, seed, tight_memory=True, local=seed == 2)
        assignment, how = min_max_load_assignment(inst, time_limit=5)
        assert how == "ip-optimal"
        best = np.inf
        options = [list(np.flatnonzero(inst.fits[j])) + ([-1] if inst.can_local[j] else []) for j in range(5)]
        for combo in itertools.product(*options):
            used = np.zeros(2)
            for j, i in enumerate(combo):
                if i >= 0:
                    used[i] += inst.demand[j]
            if (used <= inst.capacity + 1e-9).all():
                best = min(best, _max_load(inst, combo))
        assert _max_load(inst, assignment) == pytest.approx(best, rel=1e-6)


def test_fallback_assignments_respect_memory():
    inst = random_instance(40, 4, 7, tight_memory=True, unreachable=0.2)
    for assignment in (greedy_load_assignment(inst), chain_aware_assignment(inst)):
        assert assignment is not None
        assert all(inst.fits[j, i] for j, i in enumerate(assignment) if i >= 0)
        for i in range(inst.num_helpers):
            assert inst.demand[assignment == i].sum() <= inst.capacity[i] + 1e-9


def test_equid_uses_the_rule_and_edfcfs_the_same_assignment():
    inst = random_instance(12, 3, 4)
    a = solve(inst, "equid", time_limit=2)
    b = solve(inst, "ed-fcfs", time_limit=2)
    assert a.schedule.assignment == b.schedule.assignment


@pytest.mark.parametrize("name", ["equid", "ed-fcfs"])
def test_infeasible_memory(name):
    res = solve(infeasible_instance(), name, time_limit=2)
    assert res.status == "infeasible"
    assert res.schedule is None
