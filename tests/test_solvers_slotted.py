"""The slotted model (solvers/slotted.py) and its two solvers, ``admm`` and ``milp-slotted``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from solver_instances import random_instance
from strategies import instances

from pslsched.base.errors import InputError
from pslsched.core.generators import generate
from pslsched.core.validate import validate
from pslsched.solvers import solve
from pslsched.solvers.slotted import (
    default_slot_ms,
    jackson,
    plan_all,
    shortest_chain,
    slotted_makespan,
    start_assignments,
    to_continuous,
    to_slots,
)

SLOTTED = ("admm", "milp-slotted")


def _check(inst, res):
    """A valid continuous schedule, the bound below it, the slotted makespan reported apart."""
    assert res.schedule is not None, res.message
    assert validate(inst, res.schedule) == []
    assert res.lower_bound <= res.makespan + 1e-9
    assert res.status in ("optimal", "feasible")
    assert res.extra["slot_ms"] > 0
    assert res.extra["slotted_makespan_ms"] > 0
    assert res.extra["slotted_makespan_ms"] / res.extra["slot_ms"] == pytest.approx(
        round(res.extra["slotted_makespan_ms"] / res.extra["slot_ms"])
    )


def _solved(inst, name, **options):
    """``name`` on ``inst`` with ``options``, its answer checked by ``_check``."""
    res = solve(inst, name, **options)
    _check(inst, res)
    return res


def test_to_slots_rounds_up_and_slot_ms_changes_the_counts():
    inst = generate("ganian2", 5, 2, seed=3)
    coarse, fine = to_slots(inst, 200.0), to_slots(inst, 50.0)
    assert (coarse.fwd >= 1).all() and (coarse.bwd >= 1).all()
    assert np.array_equal(coarse.release, np.ceil(inst.release / 200.0 - 1e-9).astype(int))
    assert coarse.chain.sum() < fine.chain.sum()
    assert (fine.fwd * 50.0 >= inst.fwd - 1e-9).all() and (fine.fwd * 50.0 < inst.fwd + 50.0).all()
    with pytest.raises(InputError):
        to_slots(inst, 0.0)


def test_jackson_is_preemptive_largest_tail_first():
    # job 0 released at 0 with a small tail is preempted at slot 2 by job 1 (larger tail)
    used = jackson(np.array([0, 2]), np.array([4, 2]), np.array([1, 10]))
    assert used == [[0, 1, 4, 5], [2, 3]]
    busy = np.array([True, False, True])
    assert jackson(np.array([0]), np.array([2]), np.array([0]), busy) == [[1, 3]]


def test_slotted_plans_are_feasible_and_convert_to_valid_schedules():
    inst = random_instance(6, 2, seed=4, tight_memory=True)
    sl = to_slots(inst, default_slot_ms(inst))
    for assignment in start_assignments(inst):
        plans = plan_all(sl, assignment, inst.num_helpers)
        for i, plan in enumerate(plans):
            slots = [
                t for segs in [*plan.fwd.values(), *plan.bwd.values()] for s, e in segs for t in range(s, e)
            ]
            assert len(slots) == len(set(slots))  # one task per slot
            for j in plan.fwd:
                assert plan.fwd[j][0][0] >= sl.release[j, i]
                assert plan.bwd[j][0][0] >= plan.fwd[j][-1][1] + sl.delay[j, i]
        assert slotted_makespan(sl, assignment, plans) == max(p.value for p in plans)
        tasks, completion = to_continuous(inst, assignment, plans)
        assert len(tasks) == 2 * inst.num_clients and np.isfinite(completion).all()


def test_default_slot_ms_keeps_the_horizon_near_200_slots():
    inst = generate("tirana1", 8, 2, seed=0)
    res = _solved(inst, "milp-slotted", time_limit=3)
    assert 100 <= res.extra["horizon_slots"] <= 260
    assert res.options["slot_ms"] == default_slot_ms(inst)


@pytest.mark.parametrize("name", SLOTTED)
@pytest.mark.parametrize("family,seed", [("tirana1", 0), ("ganian2", 1), ("ganian4", 2)])
def test_valid_on_generated_instances(name, family, seed):
    inst = generate(family, 6, 2, seed=seed)
    _solved(inst, name, time_limit=3, seed=0)


@pytest.mark.parametrize("name", SLOTTED)
def test_tight_memory_local_and_unreachable(name):
    inst = random_instance(6, 3, seed=7, tight_memory=True, local=True, unreachable=0.3)
    _solved(inst, name, time_limit=3)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_clients=4, max_helpers=2, batches=False))
def test_random_small_instances(inst):
    for name in SLOTTED:
        res = solve(inst, name, time_limit=1.0)
        if res.schedule is None:
            assert res.status in ("infeasible", "unknown") and res.message
            continue
        _check(inst, res)


def test_slot_ms_option_changes_the_slot_count():
    inst = generate("ganian2", 5, 2, seed=5)
    a = _solved(inst, "milp-slotted", time_limit=2, slot_ms=400.0)
    b = _solved(inst, "milp-slotted", time_limit=2, slot_ms=200.0)
    assert a.extra["slot_ms"] == 400.0 and b.extra["slot_ms"] == 200.0
    assert a.extra["horizon_slots"] < b.extra["horizon_slots"]


def test_ilp_optimum_is_no_worse_in_slots_than_admm():
    inst = generate("ganian2", 5, 2, seed=1)
    ilp = _solved(inst, "milp-slotted", time_limit=5, slot_ms=300.0)
    admm = _solved(inst, "admm", time_limit=5, slot_ms=300.0)
    if ilp.extra["ilp_status"] == "optimal":
        assert ilp.extra["slotted_makespan_ms"] <= admm.extra["slotted_makespan_ms"] + 1e-9
        assert ilp.extra["slotted_bound_ms"] <= ilp.extra["slotted_makespan_ms"] + 1e-9


def test_admm_starts_from_shortest_chain_and_reports_iterations():
    inst = generate("tirana2", 6, 3, seed=2)
    res = _solved(inst, "admm", time_limit=3, max_iter=4)
    assert 1 <= res.extra["iterations"] <= 4
    assert res.extra["stop"] in ("converged", "max_iter", "time limit")
    assert len(res.extra["history"]) == res.extra["iterations"]
    assert shortest_chain(inst).shape == (inst.num_clients,)


@pytest.mark.parametrize("name", SLOTTED)
def test_deterministic(name):
    inst = generate("ganian3", 6, 2, seed=4)
    a, b = (solve(inst, name, time_limit=3, seed=1) for _ in range(2))
    assert a.makespan == b.makespan and a.schedule.assignment == b.schedule.assignment


def test_cbc_backend():
    inst = generate("ganian2", 4, 2, seed=0)
    for name in SLOTTED:
        _solved(inst, name, time_limit=3, backend="cbc")
    with pytest.raises(InputError):
        solve(inst, "admm", backend="gurobi")


def test_refusals_are_clear():
    inst = generate("ganian2", 6, 2, seed=0)
    big = solve(inst, "milp-slotted", time_limit=2, max_hkt=100)
    assert big.schedule is None and big.status == "unknown" and "too large" in big.message
    multi = dataclasses.replace(inst, batches=2)
    for name in SLOTTED:
        res = solve(multi, name, time_limit=2)
        assert res.schedule is None and "one batch" in res.message
