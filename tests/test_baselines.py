"""The random and greedy baselines: valid, bounded, deterministic, honest about infeasibility, local, batches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import assignment_index, check_result, instances, uniform_instance

from pslsched.base.errors import InputError
from pslsched.core.bounds import lower_bounds
from pslsched.core.instance import Instance
from pslsched.core.validate import validate
from pslsched.solvers import SOLVERS, available_solvers, get_solver, solve
from pslsched.solvers.base import register_run
from pslsched.solvers.baselines import balanced_assignment, random_assignment

BASELINES = ("random", "greedy")


def comparable(result) -> dict:
    """Everything a result says except wall-clock times."""
    data = dataclasses.asdict(result)
    data.pop("runtime_s")
    data.pop("trajectory")
    if data["schedule"] is not None:
        data["schedule"].pop("runtime_s")
    return data


# ---- properties on random instances ----------------------------------------------------------------------


@settings(max_examples=50)
@given(inst=instances(), solver=st.sampled_from(BASELINES), seed=st.integers(0, 1000))
def test_baselines_are_valid_bounded_and_deterministic(inst, solver, seed):
    res = solve(inst, solver, seed=seed, time_limit=1.0)
    check_result(inst, res)
    assert res.solver == solver and res.options["seed"] == seed
    again = solve(inst, solver, seed=seed, time_limit=1.0)
    assert comparable(again) == comparable(res)
    if res.schedule is None:
        if res.status == "infeasible":
            assert lower_bounds(inst, time_limit=1.0).infeasible
        return
    sched = res.schedule
    assert set(sched.assignment) == set(inst.clients)
    for c, h in sched.assignment.items():
        j = inst.client_index[c]
        if h is None:
            assert inst.can_local[j]
        else:
            assert inst.fits[j, inst.helper_index[h]]
    per_client = {c: 0 for c, h in sched.assignment.items() if h is not None}
    for t in sched.tasks:
        per_client[t.client] += 1
    assert set(per_client.values()) <= {2 * inst.batches}
    assert res.trajectory and res.trajectory[-1][1] == res.makespan
    if res.gap is not None:
        assert res.gap == pytest.approx((res.makespan - res.lower_bound) / res.lower_bound)


@settings(max_examples=40)
@given(inst=instances())
def test_a_schedule_exists_only_when_memory_allows(inst):
    """Whenever memory rules every assignment out, both baselines say infeasible, with no helper -1 anywhere."""
    report = lower_bounds(inst, time_limit=1.0)
    for solver in BASELINES:
        res = solve(inst, solver, time_limit=1.0)
        if report.infeasible:
            assert res.status == "infeasible" and res.schedule is None
            assert res.message == report.infeasible
        elif solver == "greedy" and res.schedule is None:
            assert res.status == "unknown"  # greedy may miss a packing; it must not claim infeasibility


@settings(max_examples=40)
@given(inst=instances(), seed=st.integers(0, 2**16))
def test_assignment_functions_respect_memory_and_reach(inst, seed):
    for assignment in (random_assignment(inst, np.random.default_rng(seed)), balanced_assignment(inst)):
        if assignment is None:
            continue
        assert assignment.shape == (inst.num_clients,) and assignment.min() >= -1
        for j, i in enumerate(assignment):
            if i < 0:
                assert inst.can_local[j]
            else:
                assert inst.fits[j, i]
        for i in range(inst.num_helpers):
            assert inst.demand[assignment == i].sum() <= inst.capacity[i]


# ---- determinism and variety -----------------------------------------------------------------------------


def test_random_depends_on_the_seed_only():
    inst = uniform_instance(6, 3)
    by_seed = {seed: solve(inst, "random", seed=seed) for seed in range(8)}
    for seed, res in by_seed.items():
        check_result(inst, res)
        assert comparable(solve(inst, "random", seed=seed)) == comparable(res)
    assignments = {tuple(res.schedule.assignment.values()) for res in by_seed.values()}
    assert len(assignments) > 1


def test_greedy_ignores_the_seed_and_balances_counts():
    inst = uniform_instance(7, 3)
    results = [solve(inst, "greedy", seed=seed) for seed in (0, 5)]
    assert results[0].schedule.tasks == results[1].schedule.tasks
    counts = np.bincount(assignment_index(inst, results[0].schedule.assignment), minlength=3)
    assert sorted(counts) == [2, 2, 3]
    check_result(inst, results[0])


def test_greedy_on_two_helpers(two_helper_instance):
    res = solve(two_helper_instance, "greedy")
    check_result(two_helper_instance, res)
    assert res.schedule.assignment == {"c0": "h0", "c1": "h1", "c2": "h0"}  # c2 reaches only h0


# ---- infeasible and unknown ------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", BASELINES)
def test_client_that_fits_nowhere_is_infeasible(example_dict, solver):
    example_dict["demand"] = [100.0, 600.0]
    inst = Instance.from_dict(example_dict)
    assert random_assignment(inst, np.random.default_rng(0)) is None
    assert balanced_assignment(inst) is None
    res = solve(inst, solver, seed=4)
    check_result(inst, res)
    assert res.status == "infeasible" and res.schedule is None and res.makespan is None
    assert "'c1' needs 600.0 MB" in res.message
    assert res.lower_bound == lower_bounds(inst).best


def test_random_may_miss_a_packing_and_then_says_unknown():
    # c0 needs all of h0; if c1 lands on h0 first, c0 finds no room: that is "unknown", never "infeasible"
    inst = dataclasses.replace(
        uniform_instance(2, 2), demand=np.array([100.0, 50.0]), capacity=np.array([100.0, 50.0])
    )
    statuses = set()
    for seed in range(12):
        res = solve(inst, "random", seed=seed)
        check_result(inst, res)
        statuses.add(res.status)
    assert "unknown" in statuses and statuses & {"optimal", "feasible"}
    greedy = solve(inst, "greedy")
    check_result(inst, greedy)
    assert greedy.schedule.assignment == {"c0": "h0", "c1": "h1"}


# ---- local training --------------------------------------------------------------------------------------


@pytest.mark.parametrize("batches", [1, 3])
def test_greedy_trains_locally_only_when_no_helper_has_room(batches):
    inst = uniform_instance(3, 1, demand=60.0, capacity=100.0, local=[np.nan, 7.0, 40.0], batches=batches)
    res = solve(inst, "greedy")
    check_result(inst, res)
    assert res.schedule.assignment == {"c0": "h0", "c1": None, "c2": None}
    assert {t.client for t in res.schedule.tasks} == {"c0"}
    assert res.makespan == max(batches * 40.0, batches * 9.0)  # c2 trains B batches of 40 ms locally
    roomy = dataclasses.replace(inst, capacity=np.array([500.0]))
    assert all(h == "h0" for h in solve(roomy, "greedy").schedule.assignment.values())


def test_random_uses_the_local_option_sometimes():
    inst = uniform_instance(4, 2, local=[5.0, 5.0, np.nan, 5.0], batches=2)
    used_local = set()
    for seed in range(10):
        res = solve(inst, "random", seed=seed)
        check_result(inst, res)
        local = {c for c, h in res.schedule.assignment.items() if h is None}
        assert "c2" not in local
        assert not any(t.client in local for t in res.schedule.tasks)
        used_local |= local
    assert used_local


def test_local_only_instance_without_helpers():
    inst = Instance(
        name="alone",
        clients=("a", "b"),
        helpers=(),
        **{m: np.zeros((2, 0)) for m in ("release", "fwd", "delay", "bwd", "tail")},
        demand=np.ones(2),
        capacity=np.zeros(0),
        local=np.array([3.0, 4.0]),
        batches=2,
    )
    for solver in BASELINES:
        res = solve(inst, solver)
        check_result(inst, res)
        assert res.makespan == 8.0 and res.status == "optimal" and res.schedule.tasks == []


# ---- several batches -------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", BASELINES)
def test_batches_run_one_after_the_other(two_helper_instance, solver):
    inst = dataclasses.replace(two_helper_instance, batches=3)
    res = solve(inst, solver, seed=2)
    check_result(inst, res)
    assert len(res.schedule.tasks) == 3 * 2 * 3
    for c in inst.clients:
        fwds = sorted(
            (t for t in res.schedule.tasks if t.client == c and t.phase == "fwd"), key=lambda t: t.start
        )
        assert [t.batch for t in fwds] == [0, 1, 2]
    one = solve(two_helper_instance, solver, seed=2)
    assert res.makespan >= one.makespan
    assert validate(two_helper_instance, one.schedule) == []


# ---- the registry ----------------------------------------------------------------------------------------


def test_registry_knows_the_baselines(two_helper_instance):
    known = available_solvers()
    assert {"random", "greedy"} <= set(known)
    assert known["greedy"].summary
    assert get_solver("random") is known["random"].fn
    with pytest.raises(InputError, match=r"^--solver: unknown solver 'nope' \(known: ") as err:
        get_solver("nope")
    assert "greedy" in str(err.value)
    with pytest.raises(InputError, match="unknown solver 'nope'"):
        solve(two_helper_instance, "nope")


def test_register_run_gives_a_body_the_public_signature(monkeypatch, two_helper_instance):
    monkeypatch.setattr(SOLVERS, "_entries", dict(SOLVERS._entries))  # the probe is gone after the test
    seen = []

    @register_run("probe", "records what its body is given", default_limit=7.0)
    def probe(run, options):
        seen.append((run.solver, run.time_limit, run.seed, options))
        run.options = {"seed": run.seed}
        return run.no_schedule("the probe never schedules")

    assert available_solvers()["probe"].summary == "records what its body is given"
    res = solve(two_helper_instance, "probe", seed=3, colour="blue")
    assert res.status == "unknown" and res.schedule is None and res.message == "the probe never schedules"
    assert res.solver == "probe" and res.options == {"seed": 3}
    solve(two_helper_instance, "probe", time_limit=2)
    assert seen == [("probe", 7.0, 3, {"colour": "blue"}), ("probe", 2.0, 0, {})]
    with pytest.raises(ValueError, match="registered twice"):
        register_run("probe", "again")(probe)
