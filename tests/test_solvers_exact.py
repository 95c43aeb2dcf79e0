"""cpsat and milp: agreement on tiny optima, optimum <= heuristics, bounds, batches, local, infeasibility."""

from __future__ import annotations

import pytest
from solver_instances import case_instance, infeasible_instance, random_instance
from strategies import solved_to_one_optimum

from pslsched.core.validate import validate
from pslsched.solvers import solve

HEURISTICS = ["greedy", "random", "equid", "ed-fcfs"]
TINY = [
    dict(k=4, h=2, seed=0),
    dict(k=4, h=2, seed=1, tight_memory=True),
    dict(k=3, h=2, seed=2, batches=2),
    dict(k=4, h=2, seed=3, local=True),
    dict(k=4, h=1, seed=4),
]


def _check(inst, res):
    assert res.schedule is not None, res.message
    assert validate(inst, res.schedule) == []
    assert res.lower_bound <= res.makespan


@pytest.mark.parametrize("case", TINY)
def test_cpsat_and_milp_agree_on_tiny_optima(case):
    inst = case_instance(case)
    cp, mi = solved_to_one_optimum(inst, {"cpsat": {"workers": 1}, "milp": {}}, time_limit=10)
    assert cp.lower_bound <= mi.makespan and mi.lower_bound <= cp.makespan * (1 + 1e-9)
    for name in HEURISTICS:
        heur = solve(inst, name, time_limit=2, seed=0)
        _check(inst, heur)
        assert cp.makespan <= heur.makespan * (1 + 1e-9)


def test_milp_cbc_backend_and_cold_start():
    inst = case_instance(TINY[0])
    ref = solve(inst, "milp", time_limit=10)
    for opts in ({"backend": "cbc"}, {"warm_start": False}):
        res = solve(inst, "milp", time_limit=10, **opts)
        _check(inst, res)
        assert res.makespan == pytest.approx(ref.makespan, rel=1e-6)


def test_milp_refuses_large_instances():
    inst = random_instance(40, 4, 0)
    res = solve(inst, "milp", time_limit=5)
    assert res.status == "unknown" and res.schedule is None
    assert "too large" in res.message


def test_cpsat_medium_batches_local_progress_and_determinism():
    inst = random_instance(10, 3, 5, batches=2, local=True, tight_memory=True)
    seen = []
    res = solve(inst, "cpsat", time_limit=5, seed=3, workers=1, progress=lambda *a: seen.append(a))
    _check(inst, res)
    assert seen and all(len(p) == 3 for p in seen)
    assert res.trajectory and res.trajectory[-1][1] >= res.makespan - 1e-9
    again = solve(inst, "cpsat", time_limit=5, seed=3, workers=1)
    if res.status == "optimal" and again.status == "optimal":
        assert again.makespan == pytest.approx(res.makespan, rel=1e-6)
    for name in HEURISTICS:
        assert res.makespan <= solve(inst, name, time_limit=2).makespan * (1 + 1e-9)


@pytest.mark.parametrize("name", ["cpsat", "milp"])
def test_infeasible_memory(name):
    res = solve(infeasible_instance(), name, time_limit=5, workers=1)
    assert res.status == "infeasible"
    assert res.schedule is None


def test_unknown_options_are_ignored():
    inst = case_instance(TINY[4])
    res = solve(inst, "cpsat", time_limit=5, workers=1, colour="blue")
    _check(inst, res)
