"""The ``replan`` policy: re-solve at a round boundary from the durations observed so far."""

from __future__ import annotations

import dataclasses

import numpy as np

from simulator.config import SimConfig
from simulator.orders import orders_from_schedule


def observed_instance(instance, assign: np.ndarray, results) -> object:
    """The instance with each client's side (T1, T3, T5) and each helper's tasks (T2, T4) scaled by the mean
    slow-down observed in the rounds so far (unobserved clients/helpers keep factor 1)."""
    k, h = instance.num_clients, instance.num_helpers
    client_f, helper_f = np.ones(k), np.ones(h)
    c_obs, c_plan = np.zeros(k), np.zeros(k)
    h_obs, h_plan = np.zeros(h), np.zeros(h)
    for res in results:
        inside = np.zeros(k)
        for _, _, j, i, phase, ready, start, end in res.tasks:
            inside[j] += end - ready
            h_obs[i] += end - start
            h_plan[i] += instance.fwd[j, i] if phase == "fwd" else instance.bwd[j, i]
        for j in range(k):
            i = assign[j]
            if i < 0 or np.isnan(res.completion[j]):
                continue
            c_obs[j] += res.completion[j] - res.start - inside[j]
            c_plan[j] += instance.batches * (
                instance.release[j, i] + instance.delay[j, i] + instance.tail[j, i]
            )
    ok = c_plan > 0
    client_f[ok] = c_obs[ok] / c_plan[ok]
    ok = h_plan > 0
    helper_f[ok] = h_obs[ok] / h_plan[ok]
    scale_c, scale_h = client_f[:, None], helper_f[None, :]
    return dataclasses.replace(
        instance,
        release=instance.release * scale_c,
        delay=instance.delay * scale_c,
        tail=instance.tail * scale_c,
        fwd=instance.fwd * scale_h,
        bwd=instance.bwd * scale_h,
    )


def replan(instance, assign: np.ndarray, orders, results, config: SimConfig):
    """New assignment and helper orders from a registered solver run on the observed instance; the current ones
    when the solver finds no schedule or none shorter than the current plan's on the observed durations.

    CP-SAT runs with one worker here: a round boundary is no place for a thread pool, and one worker repeats."""
    from solvers import solve
    from splitsched.timing import earliest_schedule

    observed = observed_instance(instance, assign, results)
    res = solve(
        observed, config.replan_solver, time_limit=config.replan_time_limit, seed=config.seed, workers=1
    )
    if res.schedule is None:
        return assign, orders
    try:
        _, completion = earliest_schedule(observed, assign, orders)
        current = float(np.nanmax(completion))
    except ValueError:  # the current orders do not fit the observed instance's batches: take the new plan
        current = float("inf")
    if not res.makespan < current:
        return assign, orders
    return orders_from_schedule(instance, res.schedule)
