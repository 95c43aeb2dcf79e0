"""Waiting for the other clients within a round: synchronous steps' barriers and SGLR's broadcast gates.

A barrier (``RoundPlan.sync``) after every step: nobody starts step t+1 before every participant of step t is done.
A gate (``RoundPlan.broadcast``) per helper and step: its clients wait until all of them have their body backward
done, then the averaged cut-a gradient is broadcast. A client that drops out is no longer waited for.
"""

from __future__ import annotations

import numpy as np
import simpy

from pslsched.simulator.hooks import Hooks, TaskEvent
from pslsched.simulator.round_plan import RoundPlan


class StepBarriers:
    """One barrier per step of round ``r``: open once its participants are done and the previous one is open."""

    def __init__(self, env: simpy.Environment, plan: RoundPlan, hooks: Hooks, r: int) -> None:
        self.env, self.hooks, self.r = env, hooks, r
        self.steps = plan.steps
        self.events = [env.event() for _ in range(self.steps)]
        self.waiting = [set(np.flatnonzero(plan.samples[t] > 0).tolist()) for t in range(self.steps)]
        self.check(0)

    def after(self, t: int) -> simpy.Event:
        """The event that step t's barrier opened."""
        return self.events[t]

    def done(self, j: int, t: int) -> None:
        """Client j finished step t."""
        self.waiting[t].discard(j)
        self.check(t)

    def leave(self, j: int, t: int) -> None:
        """Client j dropped out in step t: no barrier from t on waits for it."""
        for u in range(t, self.steps):
            self.waiting[u].discard(j)
        self.check(t)

    def check(self, t: int) -> None:
        """Open step t's barrier once its participants are done and step t-1's barrier is open (chained)."""
        while t < self.steps:
            ev = self.events[t]
            if ev.triggered or self.waiting[t] or (t > 0 and not self.events[t - 1].triggered):
                return
            self.hooks.run(TaskEvent("sync", self.r, t, -1, -1, 0.0, self.env.now))
            ev.succeed()
            t += 1


class BroadcastGates:
    """One gate per (step, helper) of round ``r``: open once the helper's participants of the step are through."""

    def __init__(
        self, env: simpy.Environment, plan: RoundPlan, assign: np.ndarray, hooks: Hooks, r: int
    ) -> None:
        self.env, self.hooks, self.r = env, hooks, r
        self.steps = plan.steps
        self.waiting: dict[tuple[int, int], set[int]] = {}
        for t in range(self.steps):
            for j in np.flatnonzero(plan.samples[t] > 0):
                i = int(assign[j])
                if i >= 0:
                    self.waiting.setdefault((t, i), set()).add(int(j))
        self.events = {key: env.event() for key in self.waiting}

    def gate(self, t: int, i: int) -> simpy.Event:
        """The event that helper i's gradient of step t is broadcast."""
        return self.events[(t, i)]

    def passed(self, t: int, i: int, j: int) -> None:
        """Client j's body backward of step t on helper i is done (or j is gone): open the gate when all are."""
        waiting = self.waiting[(t, i)]
        waiting.discard(j)
        gate = self.events[(t, i)]
        if not waiting and not gate.triggered:
            self.hooks.run(TaskEvent("broadcast", self.r, t, -1, i, 0.0, self.env.now))
            gate.succeed()

    def leave(self, j: int, i: int, t: int) -> None:
        """Client j of helper i dropped out in step t: no gate from t on waits for it."""
        for u in range(t, self.steps):
            if j in self.waiting.get((u, i), ()):
                self.passed(u, i, j)
