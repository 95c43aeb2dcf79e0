"""The steps of a round in simulated time: each runs through the hook and is timed by the duration source and the
stragglers; a transfer crosses the round's links (dedicated or shared). ``RunParts`` is what all rounds share."""

from __future__ import annotations

from dataclasses import dataclass

import simpy

from pslsched.core.instance import Instance
from pslsched.core.workload import Workload
from pslsched.simulator.config import SimConfig
from pslsched.simulator.hooks import DurationSource, Hooks, TaskEvent
from pslsched.simulator.links import DedicatedLinks, SharedLinks
from pslsched.simulator.policies import DispatchPolicy
from pslsched.simulator.round_plan import RoundPlan
from pslsched.simulator.stragglers import Stragglers


@dataclass(frozen=True)
class RunParts:
    """What every round of one simulation shares."""

    instance: Instance
    workload: Workload | None  # None: T1..T5 run as opaque durations
    config: SimConfig
    hooks: Hooks
    durations: DurationSource
    stragglers: Stragglers
    policy: DispatchPolicy
    aggregator: int | None  # the helper that averages the weights at the round's end
    timeout_ms: float | None  # a round closes this long after its start (None: when everyone is done)


class StepRunner:
    """Round ``r``'s steps on ``env``: sample counts and scale from the round plan, durations, transfers, bytes."""

    def __init__(self, parts: RunParts, r: int, plan: RoundPlan | None, env: simpy.Environment) -> None:
        self.parts, self.r, self.plan = parts, r, plan
        self.bytes = 0.0
        self.broadcast_sent: set[tuple[int, int]] = set()  # (step, helper) whose broadcast gradient was sent
        self.use(env)

    def use(self, env: simpy.Environment) -> None:
        """Run on ``env`` from now on, with links of their own (the round's end runs in a fresh environment)."""
        self.env = env
        w = self.parts.workload
        if self.parts.config.links == "shared" and w is not None:
            self.links: SharedLinks | DedicatedLinks = SharedLinks(env, w.resources)
        else:
            self.links = DedicatedLinks(env)

    def count(self, t: int, j: int) -> int | None:
        """Samples of client j in step t (None without a plan: the profile's batch)."""
        return None if self.plan is None else int(self.plan.samples[t, j])

    def scale(self, t: int, j: int) -> float:
        """Factor on the profile's times and bytes for client j's step t."""
        return 1.0 if self.plan is None else float(self.plan.samples[t, j]) / self.plan.unit

    def takes_part(self, t: int, j: int) -> bool:
        return self.plan is None or self.plan.samples[t, j] > 0

    def timed(self, step: TaskEvent, target: str, index: int) -> float:
        """Run ``step`` through the hook: its duration on entity ``index`` of kind ``target`` (client, helper)."""
        parts = self.parts
        measured = parts.hooks.run(step)
        return parts.durations.duration(step, measured) * parts.stragglers.factor(target, index)

    def compute(self, kind: str, b: int, j: int, i: int, base: float) -> simpy.Event:
        """Client j's compute ``kind`` of step b (profile time ``base`` for the profile's batch)."""
        step = TaskEvent(
            kind, self.r, b, j, i, float(base) * self.scale(b, j), self.env.now, self.count(b, j)
        )
        return self.env.timeout(self.timed(step, "client", j))

    def move(
        self, kind: str, b: int, j: int, i: int, size: float, up: bool, broadcast: bool = False
    ) -> simpy.Event:
        """Transfer ``size`` bytes between client j and helper i (dedicated or shared link, link stragglers).

        ``broadcast``: one transmission of helper i serves all its clients of step b: its bytes count once, and on
        shared links each client's copy crosses only the client's own access link."""
        parts, w = self.parts, self.parts.workload
        mbps, latency = float((w.uplink_mbps if up else w.downlink_mbps)[j, i]), float(w.latency_ms[j, i])
        weights = kind.startswith("aggregate")  # the round-end exchange: whole weights, not a step's samples
        size = float(size) if weights else float(size) * self.scale(b, j)
        base = size * 8.0 / (mbps * 1e6) * 1e3 + latency  # problem.md §1, as Workload.up_ms / down_ms
        step = TaskEvent(kind, self.r, b, j, i, base, self.env.now, None if weights else self.count(b, j))
        measured = parts.hooks.run(step)
        nominal = parts.durations.duration(step, measured)
        f = parts.stragglers.factor("link", j)
        if not broadcast or (b, i) not in self.broadcast_sent:
            self.bytes += size
        if broadcast:
            self.broadcast_sent.add((b, i))
        if nominal != base:  # a measured duration replaces the profile: keep it as an opaque delay
            return self.env.timeout(nominal * f)
        routes = w.up_routes if up else w.down_routes
        resources = routes[j][i] if routes else ()
        if broadcast:
            resources = tuple(r for r in resources if r.startswith("access-"))
        return self.links.transfer(size, mbps / f, latency * f, resources)
