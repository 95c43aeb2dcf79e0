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
    """The round ends with the clients' weight exchange (a strategy that federates, and either a workload with an
    aggregator or an instance that states its exchange)."""
    parts = runner.parts
    exchange = runner.plan is None or runner.plan.exchange_weights
    known = parts.workload is not None and parts.aggregator is not None
    return exchange and (known or (parts.workload is None and parts.instance.exchange is not None))


def averaging_ms(runner: StepRunner) -> float:
    """The aggregator's averaging time: the settings', else (no workload) the instance's own exchange's."""
    parts = runner.parts
    ex = parts.instance.exchange
    if parts.config.aggregate_ms > 0 or parts.workload is not None or ex is None:
        return parts.config.aggregate_ms
    return ex.aggregate_ms


def _transfer(runner: StepRunner, j: int, helper: int, phase: str):
    w = runner.parts.workload
    if w is None:  # an instance's exchange as opaque durations (problem.md §1, "the round")
        ex = runner.parts.instance.exchange
        if helper >= 0:
            ms = (ex.up if phase == "up" else ex.down)[j, helper]
        else:
            local = ex.local_up if phase == "up" else ex.local_down
            ms = 0.0 if local is None else local[j]
        yield runner.env.timeout(0.0 if ms != ms else float(ms))
        return
    i = w.exchange_hop(j, helper, runner.parts.aggregator)
    if i is not None:
        yield runner.move(f"aggregate_{phase}", 0, j, i, w.client_weights_bytes[j], up=phase == "up")


def upload(runner: StepRunner, j: int, helper: int):
    """Client j's upload of its weights (a SimPy process body, run in the round's environment)."""
    yield from _transfer(runner, j, helper, "up")


def aggregate(
    runner: StepRunner,
    assign: np.ndarray,
    t0: float,
    members: list[int],
    resend: list[int] = (),
    body_down_ms: float = 0.0,
) -> float:
    """Run round ``runner.r``'s averaging from ``t0`` (every upload in, but those of ``resend``, sent first) and
    the downloads to ``members`` (and the averaged body back to the helpers, ``body_down_ms``); the time the round
    ends."""
    parts = runner.parts
    a, hooks = parts.aggregator, parts.hooks
    env = simpy.Environment(initial_time=t0)
    runner.use(env)
    move = weights_move(runner) and bool(members)

    def proc():
        if resend:
            yield env.all_of([env.process(_transfer(runner, j, int(assign[j]), "up")) for j in resend])
        averaging = averaging_ms(runner)
        hooks.run(TaskEvent("aggregate", runner.r, 0, -1, -1 if a is None else a, averaging, env.now))
        end_round = getattr(hooks, "end_round", None)
        if end_round is not None:
            end_round(runner.r, members)
        yield env.timeout(averaging)
        back = [env.process(_transfer(runner, j, int(assign[j]), "down")) for j in members] if move else []
        if body_down_ms > 0:
            back.append(env.timeout(body_down_ms))
        if back:
            yield env.all_of(back)

    done = env.process(proc())
    env.run(until=done)
    return float(env.now)
