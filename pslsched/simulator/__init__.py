"""Executing schedules in simulated time (SimPy): stragglers, shared links, dropouts, several rounds.

from pslsched.simulator import simulate, SimConfig
record = simulate(instance, schedule, SimConfig(rounds=5, policy="fcfs"), workload=built.workload)
record.summary(); record.timeline; record.rounds
"""

from __future__ import annotations

from collections.abc import Callable

from pslsched.base.errors import InputError
from pslsched.core.instance import Instance
from pslsched.core.schedule import Schedule
from pslsched.core.workload import Workload
from pslsched.simulator.config import SimConfig, StragglerSpec, config_from, parse_stragglers
from pslsched.simulator.distributions import STRAGGLER_DISTRIBUTIONS, Draw
from pslsched.simulator.engine import Simulation, aggregator_index
from pslsched.simulator.hooks import (
    DurationSource,
    Hooks,
    MeasuredDurations,
    NoHooks,
    ProfileDurations,
    RecordingHooks,
    TaskEvent,
)
from pslsched.simulator.orders import orders_from_schedule
from pslsched.simulator.plan_instance import plan_instance, round_instance
from pslsched.simulator.policies import POLICIES, DispatchPolicy
from pslsched.simulator.record import RunRecord, build_record
from pslsched.simulator.round_plan import PlanFn, RoundPlan
from pslsched.simulator.round_result import RoundResult
from pslsched.simulator.stragglers import Stragglers


def simulate(
    instance: Instance,
    schedule: Schedule,
    config: SimConfig | None = None,
    *,
    workload: Workload | None = None,
    hooks: Hooks | None = None,
    durations: DurationSource | None = None,
    plan: PlanFn | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunRecord:
    """Run ``config.rounds`` rounds of ``schedule`` and return the run record.

    Without a ``workload`` the steps T1..T5 are opaque durations (shared links then have nothing to share).
    ``plan(r, results_so_far)`` may return a ``RoundPlan`` (per-step, per-client sample counts) for round r.
    """
    config = config or SimConfig()
    if schedule.assignment is None or schedule.status in ("infeasible", "unknown"):
        raise InputError("schedule", f"status {schedule.status!r}: there is no schedule to simulate")
    missing = [c for c in instance.clients if c not in schedule.assignment]
    if missing:
        raise InputError("schedule.assignment", f"client {missing[0]!r} is not assigned")
    sim = Simulation(
        instance, schedule, config, workload=workload, hooks=hooks, durations=durations, plan=plan
    )
    return build_record(instance, schedule, config, sim.run(progress))


__all__ = [
    "POLICIES",
    "STRAGGLER_DISTRIBUTIONS",
    "DispatchPolicy",
    "Draw",
    "DurationSource",
    "Hooks",
    "InputError",
    "MeasuredDurations",
    "NoHooks",
    "PlanFn",
    "ProfileDurations",
    "RecordingHooks",
    "RoundPlan",
    "RoundResult",
    "RunRecord",
    "SimConfig",
    "StragglerSpec",
    "Stragglers",
    "TaskEvent",
    "aggregator_index",
    "build_record",
    "config_from",
    "orders_from_schedule",
    "parse_stragglers",
    "plan_instance",
    "round_instance",
    "simulate",
]
