"""Simulation use-cases: execute an experiment's plan in simulated time, under one policy or all of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from pslsched.app.experiment import Experiment, simulation_experiment
from pslsched.app.requests import SimulateRequest
from pslsched.app.solving import plan
from pslsched.core.result import SolveResult
from pslsched.core.schedule import Schedule
from pslsched.simulator import POLICIES, RunRecord
from pslsched.simulator import simulate as run_simulation

NoPlan = SolveResult  # what a use-case returns in place of a plan when the solver found none


@dataclass
class SimulateOutcome:
    """A simulation: the experiment, the schedule it executed and the run record."""

    experiment: Experiment
    schedule: Schedule
    record: RunRecord

    def metrics(self) -> dict:
        """Planned vs simulated mean/p95 makespan and round time (a sweep's row)."""
        s = self.record.summary()
        return {
            "planned_makespan_ms": self.schedule.makespan,
            "rounds": s["rounds"],
            "mean_makespan_ms": s["mean_makespan_ms"],
            "p95_makespan_ms": s["p95_makespan_ms"],
            "mean_round_time_ms": s["mean_round_time_ms"],
            "dropped_clients": s["dropped_clients"],
            "timed_out_clients": s["timed_out_clients"],
            "series": {"makespan_ms": s["makespan_ms"]},
        }


def check_simulate(request: SimulateRequest) -> Experiment:
    """Everything ``simulate`` checks before it solves or runs (a bad value raises InputError)."""
    return simulation_experiment(request)


def simulate(
    request: SimulateRequest,
    progress: Callable[[int], None] | None = None,
    experiment: Experiment | None = None,
) -> SimulateOutcome | NoPlan:
    """Plan (read or solve) and execute the request's rounds; the SolveResult when no schedule was found.

    ``progress(r)`` is called after round r (0-based); ``experiment``: the request's, if already resolved.
    """
    exp = experiment or simulation_experiment(request)
    schedule = plan(exp, schedule=request.schedule, solver=request.solver, time_limit=request.time_limit)
    if isinstance(schedule, SolveResult):
        return schedule
    record = run_simulation(exp.instance, schedule, exp.sim, workload=exp.workload, progress=progress)
    return SimulateOutcome(exp, schedule, record)


def compare_policies(outcome: SimulateOutcome) -> pd.DataFrame:
    """The same schedule under every dispatch policy: planned, mean and p95 makespan, dropouts, timeouts."""
    exp, schedule = outcome.experiment, outcome.schedule
    rows = []
    for policy in POLICIES.names(sort=False):
        config = exp.sim.model_copy(update={"policy": policy})
        s = run_simulation(exp.instance, schedule, config, workload=exp.workload).summary()
        rows.append(
            {
                "policy": policy,
                "planned_ms": schedule.makespan,
                "mean_ms": s["mean_makespan_ms"],
                "p95_ms": s["p95_makespan_ms"],
                "dropped": s["dropped_clients"],
                "timed_out": s["timed_out_clients"],
            }
        )
    return pd.DataFrame(rows)
