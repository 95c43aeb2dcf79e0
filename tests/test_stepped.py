"""Steps that wait for each other (problem.md §1): a barrier after every step (synchronous PSL, SGLR, LocFedMix-SL)
and SGLR's gate per helper; one step planned and repeated, re-timed, bounded, and repeated by the clock."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from solver_instances import brute_force_orders, random_instance

from pslsched.base.errors import InputError
from pslsched.core.exchange import Exchange
from pslsched.core.instance import Instance
from pslsched.core.timing import earliest_schedule
from pslsched.core.validate import validate
from pslsched.simulator import SimConfig, simulate
from pslsched.solvers import available_solvers, solve


def stepped(k: int, h: int, seed: int, batches: int = 2, gated: bool = False, **kw) -> Instance:
    inst = random_instance(k, h, seed, batches=batches, **kw)
    return dataclasses.replace(inst, step_barrier=True, gated=gated)


def test_the_flags_read_and_write_with_the_instance():
    inst = stepped(3, 2, 0, gated=True)
    back = Instance.from_dict(inst.to_dict())
    assert back.step_barrier and back.gated
    assert "step_barrier" not in random_instance(3, 2, 0).to_dict()
    with pytest.raises(InputError) as info:
        Instance.from_dict({**inst.to_dict(), "gated": "yes"})
    assert info.value.field == "instance.gated"
    with pytest.raises(InputError, match="step_barrier"):
        dataclasses.replace(inst, step_barrier=False)  # gated over two steps without a barrier
    with pytest.raises(InputError, match="local_head"):
        dataclasses.replace(inst, local_head=True)


def test_a_gate_holds_the_gradient_until_the_helpers_last_backward():
    inst = Instance.from_dict(
        {
            "clients": ["a", "b"],
            "helpers": ["h"],
            "release": [[1.0], [1.0]],
            "fwd": [[1.0], [1.0]],
            "delay": [[1.0], [1.0]],
            "bwd": [[1.0], [5.0]],
            "tail": [[1.0], [1.0]],
            "demand": [1.0, 1.0],
            "capacity": [2.0],
            "gated": True,
        }
    )
    order = [[(0, "fwd", 0), (1, "fwd", 0), (0, "bwd", 0), (1, "bwd", 0)]]
    _, completion = earliest_schedule(inst, [0, 0], order)
    # a's backward ends at 4, b's at 9: both get the gradient at 9
    assert list(completion) == [10.0, 10.0]
    _, free = earliest_schedule(dataclasses.replace(inst, gated=False), [0, 0], order)
    assert list(free) == [5.0, 10.0]


def test_a_barrier_starts_every_step_after_the_slowest_client():
    inst = stepped(3, 2, 1, batches=3, local=True)
    res = solve(inst, "greedy")
    assert validate(inst, res.schedule) == []
    one = dataclasses.replace(inst, batches=1, step_barrier=False)
    step = solve(one, "greedy").makespan
    assert math.isclose(res.makespan, 3 * step, rel_tol=1e-12)
    # a forward of step 1 before step 0's last client is done is refused
    last0 = max(t.end for t in res.schedule.tasks if t.batch == 0)
    f1 = min((t for t in res.schedule.tasks if t.batch == 1 and t.phase == "fwd"), key=lambda t: t.start)
    j = inst.client_index[f1.client]
    i = inst.helper_index[f1.helper]
    ready = f1.start - 0.5
    assert ready < last0 + inst.tail[j, i] + inst.release[j, i]
    early = dataclasses.replace(f1, start=ready, end=ready + inst.fwd[j, i])
    bad = dataclasses.replace(res.schedule, tasks=[early if t is f1 else t for t in res.schedule.tasks])
    assert any("before its release" in e for e in validate(inst, bad))


@pytest.mark.parametrize("seed", range(4))
def test_one_step_repeated_is_the_brute_force_optimum(seed):
    inst = stepped(2, 2, seed, batches=2, gated=seed % 2 == 1)
    best = brute_force_orders(inst)
    for name in ("greedy", "cpsat"):
        res = solve(inst, name, time_limit=5, workers=1)
        assert validate(inst, res.schedule) == [], name
        assert res.lower_bound <= best + 1e-6, name
        assert best - 1e-6 <= res.makespan, name
        if name == "cpsat" and not inst.gated:  # exact: the best step, repeated
            assert res.status == "optimal"
            assert math.isclose(res.makespan, best, rel_tol=1e-9)


@pytest.mark.parametrize("gated", [False, True])
def test_every_solver_answers_a_valid_stepped_schedule_the_clock_repeats(gated):
    inst = stepped(6, 2, 4, batches=3, gated=gated, local=not gated)
    k, h = inst.num_clients, inst.num_helpers
    rng = np.random.default_rng(2)
    ex = Exchange(up=rng.uniform(1, 9, (k, h)), down=rng.uniform(1, 9, (k, h)), aggregate_ms=2.0)
    for case in (inst, dataclasses.replace(inst, exchange=ex)):
        for name in sorted(available_solvers()):
            res = solve(case, name, time_limit=0.5, seed=0, workers=1)
            if res.schedule is None:
                continue
            assert validate(case, res.schedule) == [], name
            objective = res.round_time if case.exchange is not None else res.makespan
            assert res.lower_bound <= objective + 1e-6, name
            rec = simulate(case, res.schedule, SimConfig())
            assert math.isclose(rec.makespans[0], res.makespan, rel_tol=1e-9), name
            assert validate(case, rec.round_schedule(0)) == [], name
