"""The SimPy engine: executes a schedule round after round under stragglers, shared links and dropouts.

Each round (``pslsched.simulator.round``) runs in an environment of its own; it starts when the previous round's
aggregation ends. The dispatch policy (``pslsched.simulator.policies``) decides each helper's order and, at every
round boundary, the assignment and orders of the next round.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pslsched.base.errors import InputError
from pslsched.core.instance import Instance
from pslsched.core.schedule import Schedule
from pslsched.core.workload import Workload
from pslsched.simulator.config import SimConfig
from pslsched.simulator.hooks import DurationSource, Hooks, NoHooks, ProfileDurations
from pslsched.simulator.orders import orders_from_schedule
from pslsched.simulator.policies import POLICIES
from pslsched.simulator.round import Round
from pslsched.simulator.round_plan import PlanFn, instance_plan
from pslsched.simulator.round_result import RoundResult
from pslsched.simulator.steps import RunParts
from pslsched.simulator.stragglers import Stragglers


class Simulation:
    """Runs rounds of a schedule; see ``simulate``. ``results`` and ``rng`` hold the state after the last round."""

    def __init__(
        self,
        instance: Instance,
        schedule: Schedule,
        config: SimConfig,
        workload: Workload | None = None,
        hooks: Hooks | None = None,
        durations: DurationSource | None = None,
        plan: PlanFn | None = None,
    ) -> None:
        if config.batches is not None and config.batches != instance.batches:
            raise InputError(
                "simulation.batches",
                f"is {config.batches}, but the instance (and its schedule) has {instance.batches} batch(es) per "
                "round: give the instance those batches and plan it again (sched simulate --batches does)",
            )
        self.instance, self.schedule, self.config = instance, schedule, config
        self.plan_fn = plan
        sizes = {"client": instance.num_clients, "helper": instance.num_helpers, "link": instance.num_clients}
        timeout_ms = config.round_timeout_ms
        if timeout_ms is None and config.dropout > 0 and schedule.makespan:
            timeout_ms = 3.0 * schedule.makespan
        policy = POLICIES.get(config.policy)(instance, workload, config.policy_settings())
        self.parts = RunParts(
            instance=instance,
            workload=workload,
            config=config,
            hooks=hooks or NoHooks(),
            durations=durations or ProfileDurations(),
            stragglers=Stragglers(config.stragglers, config.seed, sizes),
            policy=policy,
            aggregator=aggregator_index(instance, config.aggregator),
            timeout_ms=timeout_ms,
        )

    def run(
        self,
        progress: Callable[[int], None] | None = None,
        *,
        start_round: int = 0,
        results: list[RoundResult] | None = None,
        rng: np.random.Generator | None = None,
    ) -> list[RoundResult]:
        """Run rounds ``start_round .. rounds-1`` (``results``/``rng``: the state after the earlier rounds,
        for resuming a run)."""
        parts = self.parts
        assign, orders = orders_from_schedule(self.instance, self.schedule)
        self.rng = rng if rng is not None else np.random.default_rng([self.config.seed, 7])
        rng = self.rng
        results = self.results = list(results or [])
        clock = results[-1].start + results[-1].round_time_ms if results else 0.0
        if results and results[-1].assign is not None:
            assign, orders = results[-1].assign, results[-1].orders
        begin_round = getattr(parts.hooks, "begin_round", None)
        for r in range(start_round, self.config.rounds):
            plan = self.plan_fn(r, results) if self.plan_fn is not None else instance_plan(self.instance)
            if r > 0:
                assign, orders = parts.policy.next_round(assign, orders, results, plan)
            parts.stragglers.start_round(r)
            if begin_round is not None:
                begin_round(r, plan, assign)
            res = Round(parts, r, assign, orders if parts.policy.follows_orders else None, plan).run(rng)
            res.assign, res.orders = assign, orders
            res.shift(clock)
            clock += res.round_time_ms
            results.append(res)
            if progress:
                progress(r)
        return results


def aggregator_index(instance: Instance, name: str | None) -> int | None:
    """The aggregator helper's index: ``name``, else the first helper (None when there are no helpers)."""
    if name is None:
        return 0 if instance.num_helpers else None
    if name not in instance.helper_index:
        raise InputError(
            "simulation.aggregator", f"unknown helper {name!r} (helpers: {', '.join(instance.helpers)})"
        )
    return instance.helper_index[name]
