"""The independent validator: a valid schedule passes, and each kind of violation is caught and named."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import instances

from pslsched.core.schedule import Schedule, Task
from pslsched.core.timing import makespan_of
from pslsched.core.validate import validate
from pslsched.solvers import solve


def replace_task(schedule: Schedule, pick, **changes) -> Schedule:
    """A copy of ``schedule`` with the one task matching ``pick(task)`` changed."""
    hits = [n for n, t in enumerate(schedule.tasks) if pick(t)]
    assert len(hits) == 1, hits
    tasks = list(schedule.tasks)
    tasks[hits[0]] = dataclasses.replace(tasks[hits[0]], **changes)
    return dataclasses.replace(schedule, tasks=tasks)


def task_of(client: str, phase: str, batch: int = 0):
    return lambda t: (t.client, t.phase, t.batch) == (client, phase, batch)


def only(errors: list[str], needle: str) -> None:
    """Exactly one violation, and it is the expected kind."""
    assert len(errors) == 1, errors
    assert needle in errors[0], errors


# ---- the hand-made example (problem.md §3) ---------------------------------------------------------------


def test_example_schedule_is_valid(example_instance, example_schedule):
    assert validate(example_instance, example_schedule) == []


def test_overlap_on_a_helper(example_instance, example_schedule):
    bad = replace_task(example_schedule, task_of("c1", "bwd"), start=14.0, end=18.0)  # c0 bwd runs 17..21
    bad.makespan = 24.0  # c1 now completes at 18 + 6
    only(validate(example_instance, bad), "on helper 'h0'")
    assert (
        "bwd of 'c0' (batch 0) starts at 17.0 before bwd of 'c1' (batch 0) ends at 18.0"
        in validate(example_instance, bad)[0]
    )


def test_forward_before_release(example_instance, example_schedule):
    bad = replace_task(example_schedule, task_of("c0", "fwd"), start=4.0, end=6.0)
    only(validate(example_instance, bad), "starts at 4.0, before its release 5.0")


def test_backward_before_forward_end_plus_delay(example_instance, example_schedule):
    bad = replace_task(example_schedule, task_of("c1", "bwd"), start=11.0, end=15.0)
    only(validate(example_instance, bad), "before forward end + delay = 12.0")


def test_wrong_length(example_instance, example_schedule):
    bad = replace_task(example_schedule, task_of("c1", "bwd"), end=15.0)
    only(validate(example_instance, bad), "lasts 3.0, its length is 4.0")
    bad = replace_task(example_schedule, task_of("c0", "fwd"), end=8.0)  # 3 ms instead of 2 (and overlaps)
    assert any("lasts 3.0, its length is 2.0" in e for e in validate(example_instance, bad))


def test_wrong_makespan(example_instance, example_schedule):
    only(validate(example_instance, dataclasses.replace(example_schedule, makespan=21.0)), "makespan is 21.0")
    only(validate(example_instance, dataclasses.replace(example_schedule, makespan=None)), "makespan is None")


def test_lower_bound_above_makespan(example_instance, example_schedule):
    bad = dataclasses.replace(example_schedule, lower_bound=23.0)
    only(validate(example_instance, bad), "lower_bound 23.0 exceeds the makespan 22.0")
    assert validate(example_instance, dataclasses.replace(example_schedule, lower_bound=None)) == []


def test_memory_exceeded(example_instance, example_schedule):
    small = dataclasses.replace(example_instance, capacity=np.array([150.0]))
    only(validate(small, example_schedule), "holds 200.000 MB of bodies, its capacity is 150.000 MB")


def test_missing_task(example_instance, example_schedule):
    bad = dataclasses.replace(example_schedule, tasks=[t for t in example_schedule.tasks if t.phase == "fwd"])
    errors = validate(example_instance, bad)
    assert len(errors) == 2
    assert all("expected one fwd and one bwd task, got 1 and 0" in e for e in errors)


def test_duplicate_task(example_instance, example_schedule):
    dup = dataclasses.replace(example_schedule.tasks[0], start=30.0, end=32.0)  # a second c0 fwd, no overlap
    bad = dataclasses.replace(example_schedule, tasks=[*example_schedule.tasks, dup])
    only(
        validate(example_instance, bad), "client 'c0' batch 0: expected one fwd and one bwd task, got 2 and 1"
    )


def test_unknown_names(example_instance, example_schedule):
    bad = dataclasses.replace(
        example_schedule, tasks=[*example_schedule.tasks, Task("zz", "h0", "fwd", 40, 42)]
    )
    assert "task names unknown client 'zz'" in validate(example_instance, bad)
    bad = dataclasses.replace(example_schedule, assignment={**example_schedule.assignment, "zz": "h0"})
    only(validate(example_instance, bad), "assignment names unknown client 'zz'")
    bad = dataclasses.replace(example_schedule, assignment={"c0": "h0"})
    only(validate(example_instance, bad), "client 'c1' is not assigned")
    bad = dataclasses.replace(example_schedule, assignment={"c0": "h0", "c1": "h7"})
    only(validate(example_instance, bad), "client 'c1' is assigned to unknown helper 'h7'")


def test_local_training_needs_a_local_option(example_instance, example_schedule):
    tasks = [t for t in example_schedule.tasks if t.client == "c0"]
    bad = dataclasses.replace(example_schedule, assignment={"c0": "h0", "c1": None}, tasks=tasks)
    only(validate(example_instance, bad), "client 'c1' trains locally but has no local option")
    # with a local option of 30 ms, that schedule is valid once the makespan says 30
    with_local = dataclasses.replace(example_instance, local=np.array([np.nan, 30.0]))
    assert validate(with_local, dataclasses.replace(bad, makespan=30.0)) == []
    # and a locally training client must not keep helper tasks
    keeps = dataclasses.replace(bad, makespan=30.0, tasks=list(example_schedule.tasks))
    only(validate(with_local, keeps), "client 'c1' trains locally but has 2 helper task(s)")


@pytest.mark.parametrize("status", ["infeasible", "unknown", "excellent"])
def test_a_status_without_schedule_is_not_valid(example_instance, example_schedule, status):
    errors = validate(example_instance, dataclasses.replace(example_schedule, status=status))
    assert len(errors) == 1 and status in errors[0]


# ---- two helpers: wrong and unreachable helpers ----------------------------------------------------------


@pytest.fixture
def two_helper_result(two_helper_instance):
    res = solve(two_helper_instance, "greedy")
    assert res.schedule.assignment == {"c0": "h0", "c1": "h1", "c2": "h0"}
    assert validate(two_helper_instance, res.schedule) == []
    return res


def test_task_on_the_wrong_helper(two_helper_instance, two_helper_result):
    bad = replace_task(two_helper_result.schedule, task_of("c1", "bwd"), helper="h0")
    errors = validate(two_helper_instance, bad)
    assert "bwd of 'c1' (batch 0) runs on 'h0', but the client is assigned to 'h1'" in errors


def test_assignment_to_an_unreachable_helper(two_helper_instance, two_helper_result):
    sched = two_helper_result.schedule
    bad = dataclasses.replace(sched, assignment={**sched.assignment, "c2": "h1"})
    only(validate(two_helper_instance, bad), "client 'c2' is assigned to helper 'h1', which cannot reach it")


def test_memory_on_the_second_helper(two_helper_instance, two_helper_result):
    small = dataclasses.replace(two_helper_instance, capacity=np.array([100.0, 120.0]))
    only(validate(small, two_helper_result.schedule), "helper 'h0' holds 120.000 MB")


# ---- several batches -------------------------------------------------------------------------------------


@pytest.fixture
def batched(example_instance):
    inst = dataclasses.replace(example_instance, batches=2)
    res = solve(inst, "greedy")
    assert validate(inst, res.schedule) == [] and len(res.schedule.tasks) == 8
    return inst, res.schedule


def test_batches_in_the_wrong_order(batched):
    inst, sched = batched
    swapped = [dataclasses.replace(t, batch=1 - t.batch) if t.client == "c0" else t for t in sched.tasks]
    errors = validate(inst, dataclasses.replace(sched, tasks=swapped))
    assert any("fwd of 'c0' (batch 1)" in e and "before its release" in e for e in errors), errors


def test_next_batch_before_previous_completion_plus_release(batched):
    inst, sched = batched
    b0 = next(t for t in sched.tasks if (t.client, t.phase, t.batch) == ("c1", "bwd", 0))
    done = b0.end + inst.tail[1, 0]  # batch 1 may start its head forward only now: ready at done + 7
    start = done + inst.release[1, 0] - 1.0
    f1 = next(t for t in sched.tasks if (t.client, t.phase, t.batch) == ("c1", "fwd", 1))
    moved = replace_task(sched, task_of("c1", "fwd", 1), start=start, end=start + 2.0)
    errors = validate(inst, moved)
    assert any(f"starts at {start}, before its release {done + 7.0}" in e for e in errors), (errors, f1)


def test_batch_that_does_not_exist(batched):
    inst, sched = batched
    extra = Task("c0", "h0", "fwd", 500.0, 502.0, batch=2)
    errors = validate(inst, dataclasses.replace(sched, tasks=[*sched.tasks, extra]))
    assert "task 'c0' fwd batch 2 does not exist (batches = 2)" in errors


def test_missing_batch(batched):
    inst, sched = batched
    bad = dataclasses.replace(
        sched, tasks=[t for t in sched.tasks if not (t.client == "c1" and t.batch == 1)]
    )
    only(validate(inst, bad), "client 'c1' batch 1: expected one fwd and one bwd task, got 0 and 0")


# ---- properties on random instances ----------------------------------------------------------------------


@settings(max_examples=30)
@given(inst=instances(fits_somewhere=True), solver=st.sampled_from(["greedy", "random"]), data=st.data())
def test_every_list_schedule_task_is_tight(inst, solver, data):
    """List schedules are non-delay: moving any one task earlier breaks a rule, and the validator sees it."""
    res = solve(inst, solver, seed=1, time_limit=1.0)
    if res.schedule is None or not res.schedule.tasks:
        return
    sched = res.schedule
    assert validate(inst, sched) == []
    n = data.draw(st.integers(0, len(sched.tasks) - 1), label="task")
    t = sched.tasks[n]
    tasks = list(sched.tasks)
    tasks[n] = dataclasses.replace(t, start=t.start - 0.5, end=t.end - 0.5)
    assert validate(inst, dataclasses.replace(sched, tasks=tasks)) != []


@settings(max_examples=30)
@given(inst=instances(fits_somewhere=True), shift=st.sampled_from([0.25, 3.0, 100.0]))
def test_delaying_every_task_keeps_a_schedule_valid(inst, shift):
    """Delaying all helper tasks by the same amount keeps every rule; only the makespan claim must follow."""
    res = solve(inst, "greedy", time_limit=1.0)
    if res.schedule is None:
        return
    sched = res.schedule
    tasks = [dataclasses.replace(t, start=t.start + shift, end=t.end + shift) for t in sched.tasks]
    later = dataclasses.replace(sched, tasks=tasks)
    makespan = makespan_of(inst, sched.assignment, tasks)
    if makespan != sched.makespan:  # unchanged only when a local client finishes last
        only(validate(inst, later), "makespan is")
    assert validate(inst, dataclasses.replace(later, makespan=makespan)) == []
