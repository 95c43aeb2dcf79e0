"""One helper's dispatcher: a SimPy process running one body task at a time, in the dispatch policy's order."""

from __future__ import annotations

import heapq

import numpy as np
import simpy

from pslsched.simulator.hooks import TaskEvent
from pslsched.simulator.orders import Order
from pslsched.simulator.steps import StepRunner


class HelperQueue:
    """Helper i's waiting tasks: run in the template ``order`` (a task waits for its turn) or, without one, the
    task with the smallest policy key first. Finished tasks add to ``busy`` and ``tasks`` (the round's log).

    ``sequential``: after a client's forward the helper runs nothing but that step's backward (a template order
    must then be sequential already; without one, the helper holds for the client)."""

    def __init__(
        self,
        runner: StepRunner,
        i: int,
        order: Order | None,
        gone: set[int],
        busy: np.ndarray,
        tasks: list[tuple],
        sequential: bool = False,
    ) -> None:
        self.runner, self.i = runner, i
        self.env = runner.env
        self.key = runner.parts.policy.key
        self.order, self.pos = order, 0
        self.gone, self.busy, self.tasks = gone, busy, tasks
        self.waiting: dict[tuple[int, str, int], tuple] = {}
        self.heap: list = []
        self.seq = 0
        self.sequential = sequential
        self.held: tuple[int, str, int] | None = None  # the backward a sequential helper waits for
        self.wake = self.env.event()
        self.env.process(self._loop())

    def submit(self, j: int, phase: str, b: int) -> simpy.Event:
        """Client j's ``phase`` task of step b is ready: an event that fires when the helper has run it."""
        done = self.env.event()
        entry = (j, phase, b, self.env.now, done)
        if self.order is not None or (self.sequential and phase == "bwd"):
            self.waiting[(j, phase, b)] = entry
        else:
            heapq.heappush(self.heap, (self.key(phase, j, self.i, self.env.now, self.seq), self.seq, entry))
            self.seq += 1
        self.poke()
        return done

    def poke(self) -> None:
        """Wake the dispatcher (a task arrived, or a client dropped out)."""
        if not self.wake.triggered:
            self.wake.succeed()

    def _pick(self):
        if self.order is not None:
            while self.pos < len(self.order):
                key = self.order[self.pos]
                if key in self.waiting:
                    self.pos += 1
                    return self.waiting.pop(key)
                if key[0] not in self.gone:
                    return None
                self.pos += 1  # a dropped-out client's turn: it will never come, skip it
            return None
        if self.held is not None:
            if self.held in self.waiting:
                key, self.held = self.held, None
                return self.waiting.pop(key)
            if self.held[0] not in self.gone:
                return None  # held for this client's backward
            self.held = None  # the client dropped out: its backward will never come
        return heapq.heappop(self.heap)[2] if self.heap else None

    def _loop(self):
        runner, instance = self.runner, self.runner.parts.instance
        while True:
            entry = self._pick()
            if entry is None:
                self.wake = self.env.event()
                yield self.wake
                continue
            j, phase, b, ready, done = entry
            if self.sequential and self.order is None and phase == "fwd":
                self.held = (j, "bwd", b)
            start = self.env.now
            base = instance.fwd[j, self.i] if phase == "fwd" else instance.bwd[j, self.i]
            step = TaskEvent(
                "body_" + phase,
                runner.r,
                b,
                j,
                self.i,
                float(base) * runner.scale(b, j),
                start,
                runner.count(b, j),
            )
            d = runner.timed(step, "helper", self.i)
            yield self.env.timeout(d)
            self.busy[self.i] += d
            self.tasks.append((runner.r, b, j, self.i, phase, ready, start, self.env.now))
            done.succeed()
