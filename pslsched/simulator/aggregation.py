"""A round's end: each client that finished uploads its head + tail weights to the aggregator as soon as its chain is
done (``upload``, in the round's own environment, so the uploads share the links with the training), the aggregator
averages once every upload is in, and the clients download the average (``aggregate``).

The averaging and the downloads run in a fresh SimPy environment starting when the last upload is in (or at the
round's close, if later), so clients cut off by the round timeout stop there. Without a workload only the averaging
time counts. problem.md §1 ("The round") states the same round time for planning.
"""

from __future__ import annotations

import numpy as np
import simpy

from pslsched.simulator.hooks import TaskEvent
from pslsched.simulator.steps import StepRunner


def weights_move(runner: StepRunner) -> bool:
    """The round ends with the clients' weight exchange (a workload, an aggregator, a strategy that federates)."""
    parts = runner.parts
    exchange = runner.plan is None or runner.plan.exchange_weights
    return parts.workload is not None and parts.aggregator is not None and exchange


def _transfer(runner: StepRunner, j: int, helper: int, phase: str):
    w = runner.parts.workload
    i = w.exchange_hop(j, helper, runner.parts.aggregator)
    if i is not None:
        yield runner.move(f"aggregate_{phase}", 0, j, i, w.client_weights_bytes[j], up=phase == "up")


def upload(runner: StepRunner, j: int, helper: int):
    """Client j's upload of its weights (a SimPy process body, run in the round's environment)."""
    yield from _transfer(runner, j, helper, "up")


def aggregate(
    runner: StepRunner, assign: np.ndarray, t0: float, members: list[int], resend: list[int] = ()
) -> float:
    """Run round ``runner.r``'s averaging from ``t0`` (every upload in, but those of ``resend``, sent first) and
    the downloads to ``members``; the time the round ends."""
    parts = runner.parts
    cfg, a, hooks = parts.config, parts.aggregator, parts.hooks
    env = simpy.Environment(initial_time=t0)
    runner.use(env)
    move = weights_move(runner) and bool(members)

    def proc():
        if resend:
            yield env.all_of([env.process(_transfer(runner, j, int(assign[j]), "up")) for j in resend])
        hooks.run(TaskEvent("aggregate", runner.r, 0, -1, -1 if a is None else a, cfg.aggregate_ms, env.now))
        end_round = getattr(hooks, "end_round", None)
        if end_round is not None:
            end_round(runner.r, members)
        yield env.timeout(cfg.aggregate_ms)
        if move:
            yield env.all_of([env.process(_transfer(runner, j, int(assign[j]), "down")) for j in members])

    done = env.process(proc())
    env.run(until=done)
    return float(env.now)
