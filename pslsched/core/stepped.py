"""Steps that wait for each other (problem.md §1, synchronous PSL, SGLR, LocFedMix-SL), planned exactly.

Behind a ``step_barrier`` nobody starts step b + 1 before every client is done with step b, so each step is the
same one-step problem from empty helpers: the best round repeats the best one-step plan ``B`` times, and ``B``
times a bound on one step bounds the round's makespan. A ``gated`` step (SGLR: helper i's clients get the
averaged cut-a gradient once all of them are through the step's backward) ends later than the published model's
for the same tasks and the same constraints on them: a solver plans the published step, the plan is re-timed
with the gate, and the published bound still holds.
"""

from __future__ import annotations

import dataclasses

from pslsched.core.exchange import round_bound
from pslsched.core.instance import Instance
from pslsched.core.reduction import assignment_and_orders, retimed
from pslsched.core.result import SolveResult


def one_step(instance: Instance) -> Instance:
    """The instance of one step (its own exchange where the round is one step; without one else)."""
    single = instance.batches == 1
    return dataclasses.replace(
        instance, batches=1, step_barrier=False, exchange=instance.exchange if single else None
    )


def ungated(instance: Instance) -> Instance:
    """The published step: the same tasks, each client's gradient back after its own backward."""
    return dataclasses.replace(instance, gated=False)


def result_for(instance: Instance, step: Instance, answer: SolveResult) -> SolveResult:
    """A solver's answer on ``step`` (``one_step(instance)`` or ``ungated(instance)``) as the answer on
    ``instance``: its assignment and per-helper order in every step, re-timed, with the round and its bound."""
    repeat = instance.batches if step.batches < instance.batches else 1
    # a bound on one step's makespan, B times (plus the exchange's least); else already one on the round
    bound = round_bound(instance, repeat * answer.lower_bound) if repeat > 1 else answer.lower_bound
    if repeat > 1:
        steps = {f"{repeat} x one step's": repeat * answer.lower_bound}
        answer = dataclasses.replace(
            answer, bounds={**steps, **{f"step {k}": v for k, v in answer.bounds.items() if k != "best"}}
        )
    if answer.schedule is None:
        return dataclasses.replace(answer, lower_bound=bound)
    assign, orders = assignment_and_orders(step, answer.schedule)
    if repeat > 1:  # step by step, each in the plan's order
        orders = [[(j, phase, b) for b in range(repeat) for j, phase, _ in order] for order in orders]

    def status(met: bool) -> str:
        return "optimal" if met else ("feasible" if answer.status == "optimal" else answer.status)

    return retimed(instance, answer, assign, orders, bound, status)
