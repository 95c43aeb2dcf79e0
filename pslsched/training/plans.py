"""Round plans for training: how many samples each client processes in each step of a round.

By default a round is one local epoch (as in SplitFed): client j passes over its own ``n_j`` samples once in
mini-batches of ``batch_size`` (the last one smaller), so a client with more data runs more steps. With
``batches_per_round = N`` every client runs exactly N full batches instead (reading its data cyclically). Step t of
the plan is every client's t-th batch; a client with fewer batches sits the later steps out. The samplers of the
sampling issue produce the same kind of plan (a steps x clients matrix of counts).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pslsched.base.limits import check_client_batches
from pslsched.core.instance import Instance
from pslsched.core.workload import Workload, instance_times
from pslsched.simulator import RoundPlan


def epoch_samples(sizes: np.ndarray, batch_size: int) -> np.ndarray:
    """steps x clients counts of one local epoch per client in batches of ``batch_size``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    steps = int(-(-sizes.max() // batch_size)) if len(sizes) else 0
    t = np.arange(steps)[:, None]
    return np.clip(sizes[None, :] - t * batch_size, 0, batch_size).astype(np.int64)


def fixed_samples(num_clients: int, batch_size: int, batches: int) -> np.ndarray:
    """``batches`` full batches for every client."""
    return np.full((batches, num_clients), batch_size, dtype=np.int64)


def make_plan(
    sizes: np.ndarray,
    batch_size: int,
    unit: float,
    sync: bool,
    batches_per_round: int | None = None,
) -> RoundPlan:
    """The plan of one round (the same every round: the data order changes, the counts do not)."""
    if batches_per_round is None:
        steps = max((-(-int(n) // batch_size) for n in sizes), default=0)  # the largest client's batches
        check_client_batches("--batch-size", len(sizes), steps, per_client=False)
        samples = epoch_samples(sizes, batch_size)
    else:
        check_client_batches("--batches-per-round", len(sizes), batches_per_round)
        samples = fixed_samples(len(sizes), batch_size, batches_per_round)
    return RoundPlan(samples=samples, unit=float(unit), sync=sync)


def step_instance(instance: Instance, plan: RoundPlan, t: int, workload: Workload | None = None) -> Instance:
    """Step t of a synchronous plan as an instance of its own: the step's participants only, one batch, each
    client's times scaled by its own count (as ``plan_instance`` does for a uniform plan). A synchronous step starts
    when the previous one's barrier opens, so its tasks, shifted to that time, must validate against it."""
    counts = plan.samples[t]
    rows = np.flatnonzero(counts > 0)
    f = counts[rows].astype(float) / plan.unit
    local = None if instance.local is None else instance.local[rows] * f
    if workload is None:
        times = {
            m: getattr(instance, m)[rows] * f[:, None] for m in ("release", "fwd", "delay", "bwd", "tail")
        }
    else:
        per_client = (
            "head_fwd_ms",
            "head_bwd_ms",
            "tail_fwd_ms",
            "tail_bwd_ms",
            "cut_a_bytes",
            "cut_b_bytes",
            "grad_a_bytes",
            "grad_b_bytes",
        )
        per_pair = ("body_fwd_ms", "body_bwd_ms", "uplink_mbps", "downlink_mbps", "latency_ms")
        changes = {n: getattr(workload, n)[rows] * f for n in per_client if getattr(workload, n) is not None}
        changes.update({n: getattr(workload, n)[rows] for n in per_pair})
        changes["body_fwd_ms"] = changes["body_fwd_ms"] * f[:, None]
        changes["body_bwd_ms"] = changes["body_bwd_ms"] * f[:, None]
        times = instance_times(dataclasses.replace(workload, **changes))
    return dataclasses.replace(
        instance,
        clients=tuple(instance.clients[j] for j in rows),
        demand=instance.demand[rows],
        batches=1,
        local=local,
        **times,
    )
