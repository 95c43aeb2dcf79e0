"""Sequential helpers (problem.md §1, SplitFed V2 as published): the model, the solvers, the validator, the clock."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from solver_instances import random_instance

from pslsched.base.errors import InputError
from pslsched.core.instance import Instance
from pslsched.core.schedule import Schedule
from pslsched.core.sequential import merged_instance, sequential_orders
from pslsched.core.testbed import build, default_testbed_path, load_testbed
from pslsched.core.timing import earliest_schedule
from pslsched.core.validate import validate
from pslsched.simulator import SimConfig, simulate
from pslsched.solvers import available_solvers, solve


def sequential(k: int, h: int, seed: int, batches: int = 1) -> Instance:
    return dataclasses.replace(random_instance(k, h, seed, batches=batches), sequential=True)


def brute_force(inst: Instance) -> float:
    """The best sequential makespan over every assignment and every forward order (tiny instances only)."""
    best = math.inf
    k, h = inst.num_clients, inst.num_helpers
    for assign in itertools.product(range(h), repeat=k):
        if any(
            inst.demand[[j for j in range(k) if assign[j] == i]].sum() > inst.capacity[i] for i in range(h)
        ):
            continue
        per = [[j for j in range(k) if assign[j] == i] for i in range(h)]
        for perms in itertools.product(*(itertools.permutations(p) for p in per)):
            orders = sequential_orders([[(j, "fwd", 0) for j in perm] for perm in perms])
            _, completion = earliest_schedule(inst, list(assign), orders)
            best = min(best, float(completion.max()))
    return best


def test_the_sequential_flag_reads_and_writes_with_the_instance():
    inst = sequential(3, 2, 0)
    back = Instance.from_dict(inst.to_dict())
    assert back.sequential and "sequential" not in random_instance(3, 2, 0).to_dict()
    bad = {**inst.to_dict(), "sequential": "yes"}
    with pytest.raises(InputError) as info:
        Instance.from_dict(bad)
    assert info.value.field == "instance.sequential"


@pytest.mark.parametrize("seed", range(3))
def test_the_exact_solvers_prove_the_brute_force_optimum(seed):
    inst = sequential(4, 2, seed)
    best = brute_force(inst)
    interleaved = solve(dataclasses.replace(inst, sequential=False), "cpsat", time_limit=10, workers=1)
    for name in ("cpsat", "benders"):
        res = solve(inst, name, time_limit=10, workers=1)
        assert validate(inst, res.schedule) == []
        assert res.status == "optimal"
        assert math.isclose(res.makespan, best, rel_tol=1e-6)
        assert res.lower_bound <= res.makespan + 1e-6
    # holding the helper costs time: the sequential optimum is never below the interleaved one
    assert best >= interleaved.makespan - 1e-6


@pytest.mark.parametrize("batches", [1, 3])
def test_every_solver_answers_a_valid_sequential_schedule_the_clock_repeats(batches):
    inst = sequential(6, 2, 4, batches=batches)
    for name in sorted(available_solvers()):
        res = solve(inst, name, time_limit=2, seed=0, workers=1)
        if res.schedule is None:
            continue
        assert validate(inst, res.schedule) == [], name
        assert res.lower_bound <= res.makespan + 1e-6, name
        rec = simulate(inst, res.schedule, SimConfig())
        assert math.isclose(rec.makespans[0], res.makespan, rel_tol=1e-9), name
        assert validate(inst, rec.round_schedule(0)) == [], name


def test_the_validator_refuses_an_interleaved_order_on_a_sequential_instance():
    inst = sequential(2, 1, 1)
    interleaved = [(0, "fwd", 0), (1, "fwd", 0), (0, "bwd", 0), (1, "bwd", 0)]
    tasks, completion = earliest_schedule(inst, [0, 0], [interleaved])
    schedule = Schedule(
        inst.name,
        "hand",
        "feasible",
        float(completion.max()),
        None,
        0.0,
        {c: inst.helpers[0] for c in inst.clients},
        tasks,
    )
    assert validate(dataclasses.replace(inst, sequential=False), schedule) == []
    problems = validate(inst, schedule)
    assert len(problems) == 1 and "followed by fwd of" in problems[0] and "sequential" in problems[0]
    tasks, completion = earliest_schedule(inst, [0, 0], sequential_orders([interleaved]))
    schedule = dataclasses.replace(schedule, tasks=tasks, makespan=float(completion.max()))
    assert validate(inst, schedule) == []


def test_the_merged_instance_holds_the_helper_for_the_whole_step():
    inst = sequential(3, 2, 2)
    merged = merged_instance(inst)
    assert not merged.sequential
    assert np.allclose(merged.fwd, inst.fwd + inst.delay + inst.bwd)
    assert (merged.bwd == 0).all() and (merged.delay == 0).all()
    assert np.allclose(merged.chain, inst.chain)


@pytest.mark.parametrize("policy", ["fcfs", "priority"])
def test_a_sequential_helper_without_a_template_holds_for_its_client(policy):
    """Dynamic dispatch on the bundled testbed (workload clock): every helper's log alternates a forward and that
    step's own backward, and the round validates as a sequential schedule."""
    built = build(load_testbed(default_testbed_path()))
    inst = dataclasses.replace(built.instance, sequential=True, batches=2)
    res = solve(inst, "greedy")
    rec = simulate(inst, res.schedule, SimConfig(policy=policy), workload=built.workload)
    assert validate(inst, rec.round_schedule(0)) == []
    plain = simulate(
        dataclasses.replace(inst, sequential=False),
        res.schedule,
        SimConfig(policy=policy),
        workload=built.workload,
    )
    assert validate(inst, plain.round_schedule(0)) != []  # the same policy interleaves when it may


def test_a_dropout_releases_the_helper_that_holds_for_it():
    """A client that drops out after its forward never sends its backward: the helper stops holding for it, so
    no other client is left waiting until the round's timeout."""
    built = build(load_testbed(default_testbed_path()))
    inst = dataclasses.replace(built.instance, sequential=True)
    schedule = solve(inst, "greedy").schedule
    rec = simulate(
        inst, schedule, SimConfig(policy="fcfs", dropout=0.5, rounds=3, seed=3), workload=built.workload
    )
    assert rec.rounds["dropped"].sum() > 0
    assert rec.rounds["timed_out"].sum() == 0
