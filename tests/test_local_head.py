"""A local head (LocSplitFed, problem.md §1): no cut-a gradient comes back, the client's next batch follows its own
head update; planned through the published model, re-timed, bounded by its own relaxation, repeated by the clock."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from solver_instances import brute_force_orders, random_instance

from pslsched.base.errors import InputError
from pslsched.core.exchange import Exchange
from pslsched.core.instance import Instance
from pslsched.core.local_head import makespan_bound, published
from pslsched.core.reduction import assignment_and_orders
from pslsched.core.timing import earliest_schedule
from pslsched.core.validate import validate
from pslsched.simulator import SimConfig, simulate
from pslsched.solvers import available_solvers, solve


def local_head(k: int, h: int, seed: int, batches: int = 1, **kw) -> Instance:
    return dataclasses.replace(random_instance(k, h, seed, batches=batches, **kw), local_head=True)


def test_the_flag_reads_and_writes_with_the_instance():
    inst = local_head(3, 2, 0)
    back = Instance.from_dict(inst.to_dict())
    assert back.local_head and "local_head" not in random_instance(3, 2, 0).to_dict()
    with pytest.raises(InputError) as info:
        Instance.from_dict({**inst.to_dict(), "local_head": 1})
    assert info.value.field == "instance.local_head"
    with pytest.raises(InputError, match="local_head"):
        dataclasses.replace(inst, sequential=True)


def test_the_next_batch_follows_the_head_update_not_the_backward():
    inst = Instance.from_dict(
        {
            "clients": ["c"],
            "helpers": ["h"],
            "release": [[1.0]],
            "fwd": [[2.0]],
            "delay": [[3.0]],
            "bwd": [[10.0]],
            "tail": [[1.0]],
            "demand": [1.0],
            "capacity": [1.0],
            "batches": 2,
            "local_head": True,
        }
    )
    order = [[(0, "fwd", 0), (0, "fwd", 1), (0, "bwd", 0), (0, "bwd", 1)]]
    _, completion = earliest_schedule(inst, [0], order)
    # batch 1's forward is ready at 1 + 2 + 3 + 1 + 1 = 8, ends 10; backward 0 runs 10..20, backward 1 20..30
    assert completion[0] == 30.0
    tasks, done = earliest_schedule(inst, [0], [[(0, "fwd", 0), (0, "bwd", 0), (0, "fwd", 1), (0, "bwd", 1)]])
    assert done[0] == 1 + 2 + 3 + 10 + 2 + 3 + 10  # the helper's queue, not the client, sets the pace
    # the published instance the solvers plan waits for the backward and the head update's part that outlasts it
    _, waited = earliest_schedule(
        published(inst), [0], [[(0, "fwd", 0), (0, "bwd", 0), (0, "fwd", 1), (0, "bwd", 1)]]
    )
    assert waited[0] == 2 * (1 + 2 + 3 + 10 + 0)
    # a head update longer than the backward: the planned instance keeps what outlasts it, so it is never shorter
    slow_head = dataclasses.replace(inst, bwd=np.array([[1.0]]), tail=np.array([[5.0]]), batches=1)
    order1 = [[(0, "fwd", 0), (0, "bwd", 0)]]
    _, mine = earliest_schedule(slow_head, [0], order1)
    _, planned = earliest_schedule(published(slow_head), [0], order1)
    assert mine[0] == 1 + 2 + 3 + 5 and planned[0] == mine[0]


def test_the_validator_checks_the_head_update_and_the_completion():
    inst = local_head(2, 1, 3, batches=2)
    res = solve(inst, "greedy")
    assert validate(inst, res.schedule) == []
    # a forward before its client's head update is done is refused
    tasks = sorted(res.schedule.tasks, key=lambda t: t.start)
    f1 = next(t for t in tasks if t.phase == "fwd" and t.batch == 1)
    f0 = next(t for t in tasks if t.phase == "fwd" and t.batch == 0 and t.client == f1.client)
    j = inst.client_index[f1.client]
    ready = f0.end + inst.delay[j, 0] + inst.tail[j, 0] + inst.release[j, 0]
    early = dataclasses.replace(f1, start=ready - 1.0, end=ready - 1.0 + inst.fwd[j, 0])
    bad = dataclasses.replace(res.schedule, tasks=[early if t is f1 else t for t in res.schedule.tasks])
    assert any("before its release" in e for e in validate(inst, bad))
    # the published model's completion (last backward + tail) is not this instance's makespan
    assert validate(dataclasses.replace(inst, local_head=False), res.schedule) != []


@pytest.mark.parametrize("seed", range(4))
def test_the_bound_holds_below_the_brute_force_optimum_and_the_solvers_meet_it(seed):
    inst = local_head(3 - seed % 2, 2, seed, batches=1 + seed % 2)  # at most 8 tasks a helper to permute
    best = brute_force_orders(inst)
    bound = makespan_bound(inst)
    assert bound <= best + 1e-6
    for name in ("greedy", "cpsat"):
        res = solve(inst, name, time_limit=5, workers=1)
        assert validate(inst, res.schedule) == [], name
        assert best - 1e-6 <= res.makespan, name
        assert res.lower_bound <= best + 1e-6, name
        if res.status == "optimal":
            assert math.isclose(res.makespan, best, rel_tol=1e-9), name


@pytest.mark.parametrize("batches", [1, 3])
def test_every_solver_answers_a_valid_local_head_schedule_the_clock_repeats(batches):
    inst = local_head(6, 2, 4, batches=batches, local=batches == 1)
    k, h = inst.num_clients, inst.num_helpers
    rng = np.random.default_rng(1)
    ex = Exchange(up=rng.uniform(1, 9, (k, h)), down=rng.uniform(1, 9, (k, h)), aggregate_ms=2.0)
    with_exchange = dataclasses.replace(inst, exchange=ex)
    for name in sorted(available_solvers()):
        for case in (inst, with_exchange):
            res = solve(case, name, time_limit=0.5, seed=0, workers=1)
            if res.schedule is None:
                continue
            assert validate(case, res.schedule) == [], name
            objective = res.round_time if case.exchange is not None else res.makespan
            assert res.lower_bound <= objective + 1e-6, name
            # never longer than the same plan under the published model
            assign, orders = assignment_and_orders(case, res.schedule)
            _, waited = earliest_schedule(published(case), assign, orders)
            assert res.makespan <= float(np.nanmax(waited)) + 1e-6, name
            rec = simulate(case, res.schedule, SimConfig())
            assert math.isclose(rec.makespans[0], res.makespan, rel_tol=1e-9), name


@pytest.mark.parametrize("batches", [1, 2])
def test_the_bound_over_cut_options_holds_for_every_mix(batches):
    from pslsched.core.cut_options import compose, options_bound

    k, h = 4, 2
    rng = np.random.default_rng(batches)
    options = []
    for seed in (5, 6):
        inst = local_head(k, h, seed, batches=batches)
        ex = Exchange(up=rng.uniform(1, 9, (k, h)), down=rng.uniform(1, 9, (k, h)), aggregate_ms=2.0)
        options.append(dataclasses.replace(inst, name="opt", exchange=ex))
    bound = options_bound(options)
    for choice in itertools.product(range(2), repeat=k):
        mix = compose(options, np.array(choice))
        res = solve(mix, "greedy")
        assert validate(mix, res.schedule) == []
        assert bound <= res.round_time + 1e-6, choice


def test_replanning_a_local_head_round_reads_the_clients_own_time():
    # the client's head update overlaps its helper's backward: the time around the helper's tasks is not the
    # client's own (it went negative, and the replanned instance was refused at round 2)
    pytest.importorskip("torch")
    from pslsched.app.requests import TrainRequest
    from pslsched.app.training import train

    request = TrainRequest(
        dataset="digits",
        rounds=3,
        threads=1,
        cost_only=True,
        strategy="locsplitfed",
        clients=6,
        policy="replan",
    )
    rounds = train(request).result.rounds
    assert len(rounds) == 3 and (rounds["round_time_ms"] > 0).all()
