"""The round plan: how many samples each client processes in each step of a round (the training room makes them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class RoundPlan:
    """How many samples each client processes in each step of a round.

    ``samples[t, j]`` is client j's sample count in step t (0: it sits the step out, no tasks); every compute time
    and every activation/gradient transfer of that step is the profile's scaled by ``samples[t, j] / unit`` (``unit``
    = the batch the profile was measured with; latencies are not scaled). ``sync=True`` puts a barrier after every
    step: nobody starts step t+1 before every participant of step t is done (synchronous PSL).
    """

    samples: np.ndarray
    unit: float
    sync: bool = False
    # False (LocSplitFed): no cut-a gradient comes back; the client's head backward does not wait for the helper's
    # body backward (the helper still runs it; the client's round ends when both are done)
    return_grad: bool = True
    # True (SGLR): a helper's clients wait until all of its participants of the step have their body backward
    # done, then the averaged cut-a gradient is broadcast: sent once (bytes counted once per helper and step; on
    # shared links it crosses only each client's access link)
    broadcast: bool = False
    # False: the round ends without the clients' head + tail weight exchange (strategies whose client parts are
    # already one model, e.g. PSL, or that federate only every few rounds)
    exchange_weights: bool = True
    # True (SplitFed V2 as published): each helper serves one client step at a time, its forward and then its
    # backward, before another forward (problem.md §1, sequential helpers)
    sequential: bool = False

    def __post_init__(self):
        s = np.asarray(self.samples)
        if s.ndim != 2 or (s < 0).any():
            raise ValueError("RoundPlan.samples must be a steps x clients array of counts >= 0")
        if not self.unit > 0:
            raise ValueError("RoundPlan.unit must be > 0")

    @property
    def steps(self) -> int:
        return int(self.samples.shape[0])


def instance_plan(instance) -> RoundPlan | None:
    """The plan an instance's own waits amount to (``step_barrier``, ``gated``: every client one profile batch in
    each of its ``batches`` steps); None where it has none (a run without a plan follows the instance)."""
    if not (instance.step_barrier or instance.gated):
        return None
    samples = np.ones((instance.batches, instance.num_clients))
    ex = instance.exchange  # the clients' weights move only where the instance's exchange moves them
    weights = ex is not None and bool(np.nan_to_num(ex.up).any() or np.nan_to_num(ex.down).any())
    return RoundPlan(
        samples, 1.0, sync=instance.step_barrier, broadcast=instance.gated, exchange_weights=weights
    )


# plan(r, results so far) -> round r's plan (None: every client one profile batch per step, ``batches`` steps)
PlanFn = Callable[[int, list], "RoundPlan | None"]
