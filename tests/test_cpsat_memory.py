"""The CP-SAT memory rows are exact: the integer row admits the same client sets as the float constraint."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solver_instances import random_instance

from pslsched.core.generators import generate
from pslsched.core.validate import validate
from pslsched.solvers import solve
from pslsched.solvers.cpsat_client import memory_row

sizes = st.floats(min_value=0.0, max_value=5e4, allow_nan=False, allow_infinity=False)


def _subsets(n: int):
    for r in range(n + 1):
        yield from combinations(range(n), r)


@settings(max_examples=200, deadline=None)
@given(st.lists(sizes, min_size=1, max_size=7), sizes, st.booleans())
def test_memory_row_admits_exactly_the_sets_that_fit(demands, capacity, tight):
    if tight:  # a capacity equal to one subset's sum: the knife edge a rounding would get wrong
        capacity = float(sum(Fraction(d) for d in demands[: len(demands) // 2 + 1]))
    row = memory_row(demands, capacity)
    exact = [
        sum((Fraction(demands[k]) for k in s), Fraction(0)) <= Fraction(capacity)
        for s in _subsets(len(demands))
    ]
    if row is None:
        assert all(exact)
        return
    coefs, cap, is_exact = row
    admitted = [sum(coefs[k] for k in s) <= cap for s in _subsets(len(demands))]
    if is_exact:
        assert admitted == exact
    else:  # no common grid in 64 bits: a relaxation (every set that fits is admitted)
        assert all(a for a, e in zip(admitted, exact) if e)


def test_memory_row_is_exact_for_the_generated_families():
    for family in ("tirana1", "tirana2", "ganian1", "ganian2", "ganian3", "ganian4"):
        inst = generate(family, clients=20, helpers=3, seed=0)
        for i in range(inst.num_helpers):
            row = memory_row(list(inst.demand[inst.fits[:, i]]), float(inst.capacity[i]))
            assert row is None or row[2], family


def test_memory_row_vacuous_and_equal_demands():
    assert memory_row([0.1, 0.2], 0.30000000000000004) is None  # 0.1 + 0.2 as floats, exactly
    coefs, cap, exact = memory_row([185.67448423] * 10, 905.16311063)
    assert exact and coefs == [1] * 10 and cap == 4  # equal demands: a cardinality constraint


def test_memory_row_relaxes_when_the_integers_overflow():
    coefs, cap, exact = memory_row([1.1, 2.0**-60 * 3.3, 2.65], 3.75)
    assert not exact and len(coefs) == 3 and sum(coefs) < 2**62
    assert coefs[0] + coefs[1] <= cap and coefs[1] + coefs[2] <= cap  # these sets fit


def test_cpsat_proves_optimality_with_binding_non_decimal_memory():
    # Tirana scenario 2: capacities are log-uniform draws, memory binds. Before the memory rows were exact,
    # CP-SAT ran on a rounded restriction and its bound could not be trusted (status "feasible").
    inst = generate("tirana2", clients=10, helpers=3, seed=0)
    res = solve(inst, "cpsat", time_limit=20, seed=0, workers=1)
    assert res.schedule is not None and validate(inst, res.schedule) == []
    assert res.status == "optimal"
    assert res.bounds["cpsat_dual"] > res.bounds["load_ip"]  # the proof is CP-SAT's own
    assert res.bounds["cpsat_dual"] <= res.makespan <= res.bounds["cpsat_dual"] + res.extra["resolution_ms"]
    for name in ("greedy", "equid"):
        heur = solve(inst, name, time_limit=5, seed=0)
        assert res.makespan <= heur.makespan * (1 + 1e-9)


def test_cpsat_with_a_relaxed_memory_row_agrees_with_milp():
    # Demands of very different magnitudes leave no common 64-bit grid: CP-SAT gets a relaxed row and must skip
    # the solutions that break the real constraint; its optimum still matches the MILP's.
    base = random_instance(5, 2, 1, tight_memory=True)
    demand = base.demand * (1.0 + 1e-13 * np.arange(1, 6)) * np.array([1.0, 1e-9, 1.0, 1.0, 1.0])
    cap = np.full(
        2, float(np.sort(demand)[-3:].sum()) * 0.999
    )  # the three biggest bodies never share a helper
    inst = dataclasses.replace(base, demand=demand, capacity=cap)
    assert any(not memory_row(list(demand), c)[2] for c in cap)
    cp = solve(inst, "cpsat", time_limit=10, seed=0, workers=1)
    mi = solve(inst, "milp", time_limit=10, seed=0)
    for res in (cp, mi):
        assert res.schedule is not None and validate(inst, res.schedule) == []
        assert res.status == "optimal"
    assert cp.makespan == pytest.approx(mi.makespan, rel=1e-6)
