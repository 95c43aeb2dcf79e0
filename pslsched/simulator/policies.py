"""Dispatch policies: how each helper picks its next task, and what may change between rounds.

Every policy is an entry of ``POLICIES`` (one ``Registry``), a ``DispatchPolicy`` subclass built once per
simulation. A helper either follows the schedule's task order (``follows_orders``; a task waits for its turn) or
runs the waiting task with the smallest ``key`` first. Before every round but the first the engine asks
``next_round`` for the assignment and orders to run: ``replan`` re-solves there with a registered solver.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pslsched.base.registry import Registry
from pslsched.core.instance import Instance
from pslsched.core.timing import earliest_schedule
from pslsched.core.workload import Workload
from pslsched.simulator.orders import Order, orders_from_schedule
from pslsched.simulator.plan_instance import round_instance
from pslsched.simulator.round_plan import RoundPlan
from pslsched.simulator.round_result import RoundResult
from pslsched.solvers import solve


@dataclass(frozen=True)
class PolicySettings:
    """What a policy may use beyond the instance: the solver a re-planning policy runs, its time limit, the seed."""

    solver: str = "auto"
    time_limit: float = 2.0
    seed: int = 0


class DispatchPolicy:
    """The interface: ``key`` orders a helper's waiting tasks, ``next_round`` may change the plan between rounds."""

    follows_orders = False  # True: each helper runs its tasks in the schedule's order

    def __init__(self, instance: Instance, workload: Workload | None, settings: PolicySettings) -> None:
        self.instance, self.workload, self.settings = instance, workload, settings

    def key(self, phase: str, j: int, i: int, ready: float, seq: int) -> tuple:
        """Priority of client j's ``phase`` task on helper i, ready at ``ready``, the ``seq``-th to arrive
        (smallest first; used when the policy follows no order)."""
        return (seq,)

    def next_round(
        self, assign: np.ndarray, orders: list[Order], results: list[RoundResult], plan: RoundPlan | None
    ) -> tuple[np.ndarray, list[Order]]:
        """The assignment (helper index per client, -1 = local) and helper orders of the next round."""
        return assign, orders


POLICIES: Registry[type[DispatchPolicy]] = Registry("policy", "simulation.policy", plural="dispatch policies")


@POLICIES.register("static", "the schedule's order per helper; a task waits for its turn")
class Static(DispatchPolicy):
    follows_orders = True


@POLICIES.register("fcfs", "first come, first served: the earliest ready task first")
class FirstComeFirstServed(DispatchPolicy):
    def key(self, phase: str, j: int, i: int, ready: float, seq: int) -> tuple:
        return (ready, seq)


@POLICIES.register(
    "priority", "EquiD's rule: forwards by largest delay first, else backwards by largest tail"
)
class Priority(DispatchPolicy):
    def key(self, phase: str, j: int, i: int, ready: float, seq: int) -> tuple:
        inst = self.instance
        return (0, -inst.delay[j, i], ready, seq) if phase == "fwd" else (1, -inst.tail[j, i], ready, seq)


@POLICIES.register("replan", "static, re-solved at every round boundary from the durations observed so far")
class Replan(Static):
    def next_round(
        self, assign: np.ndarray, orders: list[Order], results: list[RoundResult], plan: RoundPlan | None
    ) -> tuple[np.ndarray, list[Order]]:
        """New assignment and helper orders from the solver run on the observed instance; the current ones when
        the solver finds no schedule or none shorter than the current plan's on the observed durations.

        With a round plan (training) the solver gets the round the clock will run (``round_instance``: the plan's
        steps as batches), as the first schedule did. CP-SAT runs with one worker here: a round boundary is no
        place for a thread pool, and one worker repeats."""
        instance, s = self.instance, self.settings
        base = None if plan is None else round_instance(instance, plan, self.workload)
        observed = observed_instance(instance, assign, results, base)
        res = solve(observed, s.solver, time_limit=s.time_limit, seed=s.seed, workers=1)
        if res.schedule is None:
            return assign, orders
        try:
            _, completion = earliest_schedule(observed, assign, orders)
            current = float(np.nanmax(completion))
        except ValueError:  # the current orders do not fit the observed instance's batches: take the new plan
            current = float("inf")
        if not res.makespan < current:
            return assign, orders
        return orders_from_schedule(observed, res.schedule)


def observed_instance(
    instance: Instance, assign: np.ndarray, results: list[RoundResult], base: Instance | None = None
) -> Instance:
    """``base`` (default: the instance) with each client's side (T1, T3, T5) and each helper's tasks (T2, T4)
    scaled by the mean slow-down observed in the rounds so far (unobserved clients/helpers keep factor 1).

    The planned durations a round's observations are compared with are the profile's scaled by the samples each
    step really processed (the round's plan), as the engine ran them."""
    base = instance if base is None else base
    k, h = instance.num_clients, instance.num_helpers
    client_f, helper_f = np.ones(k), np.ones(h)
    c_obs, c_plan = np.zeros(k), np.zeros(k)
    h_obs, h_plan = np.zeros(h), np.zeros(h)
    for res in results:
        plan = res.plan
        inside = np.zeros(k)
        for _, b, j, i, phase, ready, start, end in res.tasks:
            scale = 1.0 if plan is None else float(plan.samples[b, j]) / plan.unit
            inside[j] += end - ready
            h_obs[i] += end - start
            h_plan[i] += scale * (instance.fwd[j, i] if phase == "fwd" else instance.bwd[j, i])
        ran = res.assign if res.assign is not None else assign
        for j in range(k):
            i = ran[j]
            if i < 0 or np.isnan(res.completion[j]):
                continue
            steps = instance.batches if plan is None else float(plan.samples[:, j].sum()) / plan.unit
            if res.client_ms is not None:  # its own compute and transfers (with a local head they overlap the
                c_obs[j] += res.client_ms[
                    j
                ]  # helper's backward, so the time around the helper would be negative)
            else:
                c_obs[j] += res.completion[j] - res.start - inside[j]
            c_plan[j] += steps * (instance.release[j, i] + instance.delay[j, i] + instance.tail[j, i])
    ok = c_plan > 0
    client_f[ok] = c_obs[ok] / c_plan[ok]
    ok = h_plan > 0
    helper_f[ok] = h_obs[ok] / h_plan[ok]
    scale_c, scale_h = client_f[:, None], helper_f[None, :]
    return dataclasses.replace(
        base,
        release=base.release * scale_c,
        delay=base.delay * scale_c,
        tail=base.tail * scale_c,
        fwd=base.fwd * scale_h,
        bwd=base.bwd * scale_h,
    )
