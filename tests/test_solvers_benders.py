"""benders: its optimum agrees with cpsat and milp, its cuts never cut off an optimum, it refuses what it cannot do."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from solver_instances import case_instance, infeasible_instance, random_instance
from strategies import check_result, instances, solved_to_one_optimum

from pslsched.solvers import solve

CASES = [
    dict(k=6, h=2, seed=0),
    dict(k=6, h=2, seed=1, tight_memory=True),
    dict(k=4, h=2, seed=2, batches=2),
    dict(k=5, h=2, seed=3, local=True),
    dict(k=5, h=3, seed=4, unreachable=0.3),
]


@pytest.mark.parametrize("case", CASES)
def test_benders_proves_the_same_optimum_as_milp(case):
    inst = case_instance(case)
    bd, mi = solved_to_one_optimum(inst, {"benders": {"sub_workers": 1}, "milp": {}}, time_limit=30)
    assert bd.bounds["benders_dual"] <= mi.makespan * (1 + 1e-6)
    for name in ("greedy", "equid"):
        assert bd.makespan <= solve(inst, name, time_limit=2).makespan * (1 + 1e-9)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_clients=5, max_helpers=2))
def test_benders_bound_never_exceeds_the_cpsat_optimum(inst):
    bd = solve(inst, "benders", time_limit=20, seed=0, sub_workers=1)
    check_result(inst, bd)
    cp = solve(inst, "cpsat", time_limit=20, seed=0, workers=1)
    check_result(inst, cp)
    if cp.status == "optimal":
        assert bd.lower_bound <= cp.makespan * (1 + 1e-6)
    if bd.status == "optimal" and cp.status == "optimal":
        assert bd.makespan == pytest.approx(cp.makespan, rel=1e-6)


def test_benders_is_deterministic_and_reports_progress():
    inst = case_instance(CASES[0])
    seen = []
    first = solve(inst, "benders", time_limit=30, seed=2, sub_workers=1, progress=lambda *a: seen.append(a))
    again = solve(inst, "benders", time_limit=30, seed=2, sub_workers=1)
    assert first.makespan == again.makespan and first.lower_bound == again.lower_bound
    assert seen and all(len(p) == 3 for p in seen)
    assert {"rounds", "cuts", "subproblems"} <= set(first.extra)


def test_benders_infeasible_and_too_large():
    assert solve(infeasible_instance(), "benders", time_limit=5).status == "infeasible"
    big = random_instance(700, 3, 0)
    res = solve(big, "benders", time_limit=5)
    assert res.status == "unknown" and res.schedule is None and "too large" in res.message
