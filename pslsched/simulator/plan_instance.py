"""The instance a round plan amounts to: what a solver schedules for a round, and what replanning re-solves.

Engine level: the training room's plans and the ``replan`` dispatch policy both use it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pslsched.base.errors import InputError
from pslsched.core.instance import Instance
from pslsched.core.workload import Workload, instance_times
from pslsched.simulator.round_plan import RoundPlan


def plan_instance(instance: Instance, plan: RoundPlan, workload: Workload | None = None) -> Instance:
    """The instance a uniform plan amounts to (every client the same count in every step), ``batches`` = the
    plan's steps: with a workload, compute and transfer bytes scaled by count/unit (latencies kept), as the engine
    runs them; without one, T1..T5 scaled. Used to validate a training round's timeline."""
    s = plan.samples
    counts = np.unique(s)
    if len(counts) != 1 or counts[0] == 0:
        raise InputError("plan", "only a plan with one sample count for every client and step is an instance")
    return scaled_instance(instance, float(counts[0]) / plan.unit, plan.steps, workload)


def scaled_instance(instance: Instance, f: float, batches: int, workload: Workload | None = None) -> Instance:
    """``batches`` batches of ``f`` times the profile's batch: compute and bytes scaled (latencies kept)."""
    local = None if instance.local is None else instance.local * f
    if workload is None:
        times = {m: getattr(instance, m) * f for m in ("release", "fwd", "delay", "bwd", "tail")}
    else:
        scaled = dataclasses.replace(
            workload,
            **{
                name: getattr(workload, name) * f
                for name in (
                    "head_fwd_ms",
                    "head_bwd_ms",
                    "tail_fwd_ms",
                    "tail_bwd_ms",
                    "body_fwd_ms",
                    "body_bwd_ms",
                    "cut_a_bytes",
                    "cut_b_bytes",
                    "grad_a_bytes",
                    "grad_b_bytes",
                )
                if getattr(workload, name) is not None
            },
        )
        times = instance_times(scaled)
        if instance.local_head:  # T5 is the head update alone (no gradient download)
            times["tail"] = np.where(instance.reachable, scaled.head_bwd_ms[:, None], np.nan)
    return dataclasses.replace(
        instance, batches=batches, local=local, demand=_scaled_demand(instance, f, workload), **times
    )


def _scaled_demand(instance: Instance, f: float, workload: Workload | None) -> np.ndarray:
    """The helpers' memory demand at ``f`` times the profile's batch: activations scale, weights do not (with a
    shared body the demand is the activations alone; a body per client needs the workload's split to scale)."""
    if instance.body_memory is not None:
        return instance.demand * f
    if workload is not None and workload.body_weights_mb is not None:
        acts = np.minimum(workload.body_activations_mb, instance.demand)
        return instance.demand - acts + acts * f
    return instance.demand


def round_instance(instance: Instance, plan: RoundPlan, workload: Workload | None = None) -> Instance:
    """What the solver is asked to schedule for a training round: the plan's steps as batches, every client at the
    plan's mean count per participating client and step (a uniform stand-in for epochs whose last batch is smaller
    or a sampler's varying counts). The solver then optimises the round the clock will run, not one profile batch."""
    part = plan.samples[plan.samples > 0]
    count = max(1, int(round(float(part.mean())))) if part.size else 1
    return scaled_instance(instance, count / plan.unit, max(1, plan.steps), workload)
