"""A round's end: the clients that finished upload their head + tail weights to the aggregator, it averages, they
download the average.

It runs in a fresh SimPy environment starting at the round's close, so clients cut off by the round timeout stop
there (they neither finish later nor load the links). Without a workload only the averaging time counts.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from pslsched.simulator.hooks import TaskEvent
from pslsched.simulator.steps import StepRunner


def aggregate(runner: StepRunner, assign: np.ndarray, t0: float, members: list[int]) -> float:
    """Run round ``runner.r``'s aggregation from ``t0`` among ``members``; the time it ends."""
    parts = runner.parts
    w, cfg, a, hooks = parts.workload, parts.config, parts.aggregator, parts.hooks
    env = simpy.Environment(initial_time=t0)
    runner.use(env)

    def hop(j: int) -> int | None:
        """The helper whose link client j's weights cross: the aggregator's, else its own helper's."""
        if not math.isnan(w.uplink_mbps[j, a]):
            return a
        if assign[j] >= 0:
            return int(assign[j])
        reachable = np.flatnonzero(~np.isnan(w.uplink_mbps[j]))
        return int(reachable[0]) if len(reachable) else None  # None: a local client with no link at all

    def one(j: int, phase: str):
        i = hop(j)
        if i is not None:
            yield runner.move(f"aggregate_{phase}", 0, j, i, w.client_weights_bytes[j], up=phase == "up")

    exchange = runner.plan is None or runner.plan.exchange_weights
    weights_move = w is not None and a is not None and bool(members) and exchange

    def proc():
        if weights_move:
            yield env.all_of([env.process(one(j, "up")) for j in members])
        hooks.run(TaskEvent("aggregate", runner.r, 0, -1, -1 if a is None else a, cfg.aggregate_ms, env.now))
        end_round = getattr(hooks, "end_round", None)
        if end_round is not None:
            end_round(runner.r, members)
        yield env.timeout(cfg.aggregate_ms)
        if weights_move:
            yield env.all_of([env.process(one(j, "down")) for j in members])

    done = env.process(proc())
    env.run(until=done)
    return float(env.now)
