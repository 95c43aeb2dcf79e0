"""The independent validator of problem.md §3: recomputes everything from the instance, trusts no solver."""

from __future__ import annotations

import math
from collections import defaultdict

from pslsched.core.exchange import round_time
from pslsched.core.instance import Instance
from pslsched.core.schedule import STATUSES, Schedule
from pslsched.core.timing import completion_times, step_times

ABS_TOL = 1e-6  # ms
REL_TOL = 1e-9


def _tol(x: float) -> float:
    return ABS_TOL + REL_TOL * abs(x)


def validate(instance: Instance, schedule: Schedule) -> list[str]:
    """Every violation of problem.md §3 found in ``schedule`` (an empty list means valid)."""
    errors: list[str] = []
    if schedule.status not in STATUSES:
        return [f"status {schedule.status!r} is not one of {STATUSES}"]
    if schedule.status in ("infeasible", "unknown"):
        return [f"status is {schedule.status!r}: there is no schedule to validate"]
    errors += _check_assignment(instance, schedule)
    if errors:
        return errors
    errors += _check_tasks(instance, schedule)
    if instance.sequential and not errors:
        errors += _check_sequential(schedule)
    errors += _check_memory(instance, schedule)
    if errors:
        return errors
    completion = completion_times(instance, schedule.assignment, schedule.tasks)
    makespan = float(completion.max())
    if schedule.makespan is None or not math.isclose(
        schedule.makespan, makespan, rel_tol=REL_TOL, abs_tol=ABS_TOL
    ):
        errors.append(f"makespan is {schedule.makespan}, but the tasks give {makespan}")
    objective, what = makespan, "makespan"
    if instance.exchange is not None:  # problem.md §1 "The round": the planned quantity is the round time
        assign = [_helper_index(instance, schedule.assignment[c]) for c in instance.clients]
        objective, what = round_time(instance, assign, completion, schedule.tasks), "round time"
        if schedule.round_time is not None and not math.isclose(
            schedule.round_time, objective, rel_tol=REL_TOL, abs_tol=ABS_TOL
        ):
            errors.append(
                f"round_time is {schedule.round_time}, but the tasks and the exchange give {objective}"
            )
    elif schedule.round_time is not None and not math.isclose(
        schedule.round_time, makespan, rel_tol=REL_TOL, abs_tol=ABS_TOL
    ):
        errors.append(
            f"round_time is {schedule.round_time}, but the instance has no exchange: it is the makespan"
        )
    if schedule.lower_bound is not None and schedule.lower_bound > objective + _tol(objective):
        errors.append(f"lower_bound {schedule.lower_bound} exceeds the {what} {objective}")
    return errors


def _helper_index(instance: Instance, helper: str | None) -> int:
    return -1 if helper is None else instance.helper_index[helper]


def _check_assignment(instance: Instance, schedule: Schedule) -> list[str]:
    errors = []
    for name in schedule.assignment:
        if name not in instance.client_index:
            errors.append(f"assignment names unknown client {name!r}")
    for j, name in enumerate(instance.clients):
        if name not in schedule.assignment:
            errors.append(f"client {name!r} is not assigned")
            continue
        helper = schedule.assignment[name]
        if helper is None:
            if not instance.can_local[j]:
                errors.append(f"client {name!r} trains locally but has no local option")
            continue
        i = instance.helper_index.get(helper)
        if i is None:
            errors.append(f"client {name!r} is assigned to unknown helper {helper!r}")
        elif not instance.reachable[j, i]:
            errors.append(f"client {name!r} is assigned to helper {helper!r}, which cannot reach it")
    return errors


def _check_tasks(instance: Instance, schedule: Schedule) -> list[str]:
    errors: list[str] = []
    nb = instance.batches
    seen: dict[tuple[str, str, int], list] = defaultdict(list)
    for t in schedule.tasks:
        if t.client not in instance.client_index:
            errors.append(f"task names unknown client {t.client!r}")
            continue
        seen[(t.client, t.phase, t.batch)].append(t)
    by_helper = defaultdict(list)
    stepped = None
    if instance.gated or instance.step_barrier:
        stepped = step_times(instance, schedule.assignment, schedule.tasks)[1]
    for j, name in enumerate(instance.clients):
        helper = schedule.assignment[name]
        if helper is None:
            extra = [key for key in seen if key[0] == name]
            if extra:
                errors.append(f"client {name!r} trains locally but has {len(extra)} helper task(s)")
            continue
        i = instance.helper_index[helper]
        prev_done = 0.0
        for b in range(nb):
            ft, bt = seen.get((name, "fwd", b), []), seen.get((name, "bwd", b), [])
            if len(ft) != 1 or len(bt) != 1:
                errors.append(
                    f"client {name!r} batch {b}: expected one fwd and one bwd task, got {len(ft)} and {len(bt)}"
                )
                prev_done = math.nan
                continue
            f, bw = ft[0], bt[0]
            for t, length in ((f, instance.fwd[j, i]), (bw, instance.bwd[j, i])):
                if t.helper != helper:
                    errors.append(
                        f"{_label(t)} runs on {t.helper!r}, but the client is assigned to {helper!r}"
                    )
                if not math.isclose(t.end - t.start, length, rel_tol=REL_TOL, abs_tol=ABS_TOL):
                    errors.append(f"{_label(t)} lasts {t.end - t.start}, its length is {length}")
                by_helper[t.helper].append(t)
            if stepped is not None:  # gated or behind a step barrier: the step's start follows other clients
                prev_done = stepped[j, b]
            earliest = prev_done + instance.release[j, i] if b > 0 else instance.release[j, i]
            if not math.isnan(earliest) and f.start < earliest - _tol(earliest):
                errors.append(f"{_label(f)} starts at {f.start}, before its release {earliest}")
            ready_b = f.end + instance.delay[j, i]
            if bw.start < ready_b - _tol(ready_b):
                errors.append(f"{_label(bw)} starts at {bw.start}, before forward end + delay = {ready_b}")
            # the next batch follows the head update: after the backward, or (local head) after the delay
            prev_done = (f.end + instance.delay[j, i] if instance.local_head else bw.end) + instance.tail[
                j, i
            ]
    valid_keys = {(c, p, b) for c in instance.clients for p in ("fwd", "bwd") for b in range(nb)}
    for key in seen:
        if key not in valid_keys:
            errors.append(f"task {key[0]!r} {key[1]} batch {key[2]} does not exist (batches = {nb})")
    for helper, tasks in by_helper.items():
        tasks.sort(key=lambda t: (t.start, t.end))
        for a, b in zip(tasks, tasks[1:]):
            if b.start < a.end - _tol(a.end):
                errors.append(
                    f"on helper {helper!r}, {_label(b)} starts at {b.start} before {_label(a)} ends at {a.end}"
                )
    return errors


def _check_sequential(schedule: Schedule) -> list[str]:
    """problem.md §1, sequential helpers: on its helper every forward is followed by that step's backward."""
    by_helper = defaultdict(list)
    for t in schedule.tasks:
        by_helper[t.helper].append(t)
    errors = []
    for helper, tasks in by_helper.items():
        tasks.sort(key=lambda t: (t.start, t.end, t.phase == "bwd"))
        for pos in range(0, len(tasks), 2):
            f = tasks[pos]
            after = tasks[pos + 1] if pos + 1 < len(tasks) else None
            if (
                f.phase == "fwd"
                and after is not None
                and (after.client, after.phase, after.batch)
                == (
                    f.client,
                    "bwd",
                    f.batch,
                )
            ):
                continue
            errors.append(
                f"on helper {helper!r}, {_label(f)} is followed by {'nothing' if after is None else _label(after)}:"
                " a sequential helper runs each forward's own backward next"
            )
            break
    return errors


def _check_memory(instance: Instance, schedule: Schedule) -> list[str]:
    """problem.md §1 "Memory": a body per client (demand = body + activations), or one shared body per serving
    helper plus each client's activations."""
    used = defaultdict(float)
    for name, helper in schedule.assignment.items():
        if helper is not None:
            used[helper] += float(instance.demand[instance.client_index[name]])
    errors = []
    for helper, mb in used.items():
        i = instance.helper_index[helper]
        cap = float(instance.capacity[i])
        what = "bodies"
        if instance.body_memory is not None:
            mb += float(instance.body_memory[i])
            what = "its shared body and the clients' activations"
        if mb > cap + _tol(cap):
            errors.append(f"helper {helper!r} holds {mb:.3f} MB of {what}, its capacity is {cap:.3f} MB")
    return errors


def _label(t) -> str:
    return f"{t.phase} of {t.client!r} (batch {t.batch})"
