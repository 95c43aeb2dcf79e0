"""Lower bounds: never above any schedule's makespan, exact on hand-computed instances, and infeasibility."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import assignment_index, instances, uniform_instance

from pslsched.core.bounds import BoundReport, chain_bound, jackson_bound, lower_bounds, memory_infeasibility
from pslsched.core.generators import generate
from pslsched.core.instance import Instance
from pslsched.core.schedule import Schedule
from pslsched.core.timing import earliest_schedule
from pslsched.core.validate import validate
from pslsched.solvers import solve
from pslsched.solvers.baselines import random_assignment
from pslsched.solvers.list_scheduling import equid_rule, fcfs, list_schedule

TOL = 1e-6
BOUND_TIME_S = 1.0


# ---- soundness on random instances -----------------------------------------------------------------------


@settings(max_examples=40)
@given(inst=instances())
def test_bounds_never_exceed_a_baseline_makespan(inst):
    report = lower_bounds(inst, time_limit=BOUND_TIME_S)
    assert report.chain == chain_bound(inst)
    for solver, seed in (("greedy", 0), ("random", 0), ("random", 1)):
        res = solve(inst, solver, seed=seed, time_limit=BOUND_TIME_S)
        if res.schedule is None:
            continue
        assert report.infeasible is None, report.infeasible  # a schedule exists, so no proof of the contrary
        assert validate(inst, res.schedule) == []
        makespan = res.makespan
        assert report.chain <= makespan + TOL
        assert report.load_lp is None or report.load_lp <= makespan + TOL
        assert report.load_ip is None or report.load_ip <= makespan + TOL
        assert report.best <= makespan + TOL
        assert res.lower_bound <= makespan


@settings(max_examples=40)
@given(inst=instances())
def test_load_models_are_at_least_the_chain_bound(inst):
    report = lower_bounds(inst, time_limit=BOUND_TIME_S)
    if report.infeasible:
        assert report.load_ip is None
        return
    assert report.load_lp is not None and report.load_lp >= report.chain - TOL
    if report.ip_optimal:
        assert report.load_ip >= report.load_lp - TOL
    values = (report.chain, report.load_lp, report.load_ip, *report.extra.values())
    assert report.best == max(v for v in values if v is not None)


def random_orders(inst: Instance, assignment: np.ndarray, rng: np.random.Generator) -> list[list]:
    """Random per-helper interleavings that keep each client's own steps in order (fwd0, bwd0, fwd1, ...)."""
    orders = []
    for i in range(inst.num_helpers):
        steps = {
            int(j): [(int(j), p, b) for b in range(inst.batches) for p in ("fwd", "bwd")]
            for j in np.flatnonzero(assignment == i)
        }
        order = []
        while steps:
            j = list(steps)[rng.integers(len(steps))]
            order.append(steps[j].pop(0))
            if not steps[j]:
                del steps[j]
        orders.append(order)
    return orders


@settings(max_examples=40)
@given(inst=instances(fits_somewhere=True), seed=st.integers(0, 2**16))
def test_jackson_bound_for_a_fixed_assignment(inst, seed):
    """With the assignment fixed, Jackson's bound is below list schedules and any order's earliest schedule."""
    rng = np.random.default_rng(seed)
    assignment = random_assignment(inst, rng)
    if assignment is None:
        return
    bound = jackson_bound(inst, assignment)
    makespans = []
    for rule in (fcfs, equid_rule):
        _, completion = list_schedule(inst, assignment, rule)
        makespans.append(float(completion.max()))
    tasks, completion = earliest_schedule(inst, assignment, random_orders(inst, assignment, rng))
    sched = Schedule(
        inst.name,
        "orders",
        "feasible",
        float(completion.max()),
        None,
        0.0,
        {c: (inst.helpers[i] if i >= 0 else None) for c, i in zip(inst.clients, assignment)},
        tasks,
    )
    assert validate(inst, sched) == []
    makespans.append(sched.makespan)
    for makespan in makespans:
        assert bound <= makespan + TOL
        assert chain_bound(inst) <= makespan + TOL
    assert np.array_equal(assignment_index(inst, sched.assignment), assignment)


# ---- exact values on hand-computed instances -------------------------------------------------------------


def test_problem_md_example_bounds(example_instance):
    # chains: c0 5+2+10+4+1 = 22, c1 7+2+3+4+6 = 22; load: release 5 + load 2*6 + tail 1 = 18 < 22
    assert chain_bound(example_instance) == 22.0
    report = lower_bounds(example_instance, time_limit=BOUND_TIME_S)
    assert report.infeasible is None and report.ip_optimal
    assert report.load_lp == pytest.approx(22.0) and report.load_ip == pytest.approx(22.0)
    assert report.best == pytest.approx(22.0)
    # Jackson on the one helper: c0 runs 5..7, c1 (tail 6) preempts 7..13 -> 19; c0 resumes 13..17 -> 18
    assert jackson_bound(example_instance, np.array([0, 0])) == pytest.approx(19.0)


def test_load_bound_dominates_on_one_busy_helper():
    # three chains of 1+3+1+3+1 = 9 ms; the helper works 6 x 3 ms after release 1, then tail 1: 20
    inst = uniform_instance(3, 1)
    report = lower_bounds(inst, time_limit=BOUND_TIME_S)
    assert report.chain == 9.0
    assert report.load_lp == pytest.approx(20.0) and report.load_ip == pytest.approx(20.0)
    res = solve(inst, "greedy")
    assert res.makespan == 20.0 and res.status == "optimal" and validate(inst, res.schedule) == []


@pytest.mark.parametrize("k, ip", [(4, 14.0), (5, 20.0)])
def test_integer_load_bound_on_two_helpers(k, ip):
    # K identical clients on two helpers: the busier one holds ceil(K/2) loads of 6 ms, plus release 1 and tail 1
    inst = uniform_instance(k, 2)
    report = lower_bounds(inst, time_limit=BOUND_TIME_S)
    assert report.chain == 9.0
    assert report.load_ip == pytest.approx(ip) and report.ip_optimal
    assert report.chain <= report.load_lp <= ip + TOL  # the LP splits clients: weaker, never stronger
    assert report.load_lp < ip  # here it is strictly weaker (fractional halves)
    res = solve(inst, "greedy")
    assert res.makespan == pytest.approx(ip) and res.status == "optimal"


def test_chain_bound_uses_batches_local_and_fits(two_helper_instance):
    # c0: h0 2+4+6+8+1 = 21, h1 3+2+7+4+2 = 18; c1: h0 15, h1 13; c2 only h0: 5+5+4+9+2 = 25
    assert chain_bound(two_helper_instance) == 25.0
    assert chain_bound(dataclasses.replace(two_helper_instance, batches=3)) == 75.0
    assert (
        chain_bound(dataclasses.replace(two_helper_instance, local=np.array([np.nan, np.nan, 11.0]))) == 18.0
    )
    # c0 no longer fits h1 (60 MB > 40 MB), c2 no longer fits h0: c0's best is 21 and c2 can only train locally
    small = dataclasses.replace(
        two_helper_instance,
        capacity=np.array([60.0, 40.0]),
        demand=np.array([50.0, 30.0, 70.0]),
        local=np.array([np.nan, np.nan, 30.0]),
    )
    assert chain_bound(small) == 30.0
    assert chain_bound(dataclasses.replace(small, local=np.array([np.nan, np.nan, 3.0]))) == 21.0


def test_batches_in_chain_and_jackson():
    inst = uniform_instance(1, 1, batches=2)
    assert chain_bound(inst) == 18.0  # two chains of 9 one after the other
    # Jackson jobs (release, length, delivery): (1, 6, 1 + 9) and (10, 6, 1): 1+6+10 = 17 and 10+6+1 = 17
    assert jackson_bound(inst, np.array([0])) == pytest.approx(17.0)
    res = solve(inst, "greedy")
    assert res.makespan == 18.0 and res.status == "optimal"


def test_jackson_counts_local_clients():
    inst = uniform_instance(2, 1, local=[np.nan, 50.0], batches=2)
    assert jackson_bound(inst, np.array([0, -1])) == 100.0


# ---- memory infeasibility --------------------------------------------------------------------------------


def test_client_that_fits_nowhere(two_helper_instance):
    inst = dataclasses.replace(two_helper_instance, demand=np.array([50.0, 60.0, 250.0]))
    reason = memory_infeasibility(inst)
    assert reason == "client 'c2' needs 250.0 MB but the largest helper it can reach has 200.0 MB"
    report = lower_bounds(inst, time_limit=BOUND_TIME_S)
    assert report.infeasible == reason and report.load_lp is None and report.load_ip is None
    assert report.best == report.chain  # bounds on the clients that do fit are still reported
    with_local = dataclasses.replace(inst, local=np.array([np.nan, np.nan, 80.0]))
    assert memory_infeasibility(with_local) is None
    assert lower_bounds(with_local, time_limit=BOUND_TIME_S).infeasible is None


def test_client_that_reaches_no_helper():
    nan = np.nan
    inst = Instance(
        name="cut-off",
        clients=("a", "b"),
        helpers=("h",),
        **{m: np.array([[1.0], [nan]]) for m in ("release", "fwd", "delay", "bwd", "tail")},
        demand=np.ones(2),
        capacity=np.full(1, 10.0),
    )
    assert memory_infeasibility(inst) == "client 'b' cannot reach any helper and cannot train locally"
    assert lower_bounds(inst).infeasible


def test_bin_packing_infeasible_only_the_integer_model_knows():
    # every client fits alone on either helper, and 300 MB of bodies fit 300 MB fractionally, but no two share one
    inst = uniform_instance(3, 2, demand=100.0, capacity=150.0)
    assert memory_infeasibility(inst) is None
    lp_only = lower_bounds(inst, time_limit=BOUND_TIME_S, integer=False)
    assert lp_only.infeasible is None and lp_only.load_lp is not None
    report = lower_bounds(inst, time_limit=BOUND_TIME_S)
    assert report.infeasible is not None and "bin packing" in report.infeasible
    assert report.load_ip is None
    for solver in ("greedy", "random"):
        res = solve(inst, solver, time_limit=BOUND_TIME_S)
        assert res.status == "infeasible" and res.schedule is None and "bin packing" in res.message


def test_total_memory_short_is_found_by_the_lp():
    inst = uniform_instance(3, 2, demand=100.0, capacity=140.0)
    report = lower_bounds(inst, time_limit=BOUND_TIME_S, integer=False)
    assert report.infeasible == "no fractional assignment fits the helpers' memory"


def test_packing_feasible_with_room_for_two_per_helper():
    inst = uniform_instance(4, 2, demand=100.0, capacity=200.0)
    report = lower_bounds(inst, time_limit=BOUND_TIME_S)
    assert report.infeasible is None and report.load_ip == pytest.approx(14.0)


# ---- the report itself -----------------------------------------------------------------------------------


def test_report_is_cached_per_instance_object(example_instance):
    first = lower_bounds(example_instance, time_limit=BOUND_TIME_S)
    assert lower_bounds(example_instance, time_limit=BOUND_TIME_S) is first
    twin = Instance.from_dict(example_instance.to_dict())
    assert lower_bounds(twin, time_limit=BOUND_TIME_S) is not first


def test_best_and_as_dict():
    report = BoundReport(chain=5.0, load_lp=7.0, load_ip=None, extra={"dual": 9.0})
    assert report.best == 9.0
    assert report.as_dict() == {"chain": 5.0, "load_lp": 7.0, "load_ip": None, "dual": 9.0, "best": 9.0}


# ---- the framed integer model (each helper framed by its own clients' least release and tail) -------------


@pytest.mark.parametrize("seed", range(12))
def test_framed_bound_is_at_most_the_brute_force_optimum(seed):
    from solver_instances import brute_force_orders, random_instance

    inst = random_instance(4, 2, seed, tight_memory=seed % 2 == 0)  # 8 tasks at most a helper: 8! orders
    report = lower_bounds(inst, time_limit=None)
    assert "load_frame" in report.solved and report.complete
    assert report.extra["load_frame"] <= brute_force_orders(inst) + TOL
    assert report.extra["load_frame"] >= report.load_ip - 1e-6  # it has every row of the plain model


def test_framed_bound_proves_what_the_plain_model_cannot():
    # ganian1, 20 clients on 2 helpers: the plain model frames both helpers by the least release and tail of
    # every client; the best schedule (auto, 27,226.2 ms) splits the early clients, so that bound stays 0.9% short
    inst = generate("ganian1", clients=20, helpers=2, seed=0)
    report = lower_bounds(inst, time_limit=None)
    plain = lower_bounds(dataclasses.replace(inst), time_limit=None)
    assert report.extra["load_frame"] > 1.008 * report.load_ip
    res = solve(inst, "cpsat", time_limit=5, workers=1)
    assert validate(inst, res.schedule) == []
    assert plain.best <= res.makespan + TOL
    assert res.makespan == pytest.approx(report.best, rel=1e-6)  # so the schedule is proved optimal
    assert res.status == "optimal"


def test_settled_bound_counts_only_models_solved_to_the_end():
    report = BoundReport(chain=1.0, load_lp=2.0, load_ip=5.0, extra={"load_frame": 6.0})
    assert report.best == 6.0 and report.settled == 2.0  # time-limited duals vary from run to run
    report.solved = {"load_ip"}
    assert report.settled == 5.0
    report.solved.add("load_frame")
    assert report.settled == 6.0
