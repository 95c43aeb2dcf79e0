"""One round in a fresh SimPy environment (time 0 = the round's start): a process per client, a dispatcher per
helper, dropouts and the round timeout, then the aggregation.

A client runs its steps one after the other, each following problem.md §1's chain. With a Workload the chain is
split into compute and transfers (so links can be shared and stragglers hit clients, helpers and links
separately); an instance alone runs T1..T5 as opaque durations.
"""

from __future__ import annotations

import numpy as np
import simpy

from pslsched.core.exchange import bodies_move
from pslsched.core.sequential import sequential_orders
from pslsched.simulator.aggregation import aggregate, upload, weights_move
from pslsched.simulator.helper_queue import HelperQueue
from pslsched.simulator.orders import Order, orders_for_plan
from pslsched.simulator.round_plan import RoundPlan
from pslsched.simulator.round_result import RoundResult
from pslsched.simulator.step_sync import BroadcastGates, StepBarriers
from pslsched.simulator.steps import RunParts, StepRunner


class Round:
    """Round ``r`` of a simulation with the clients' helper indices ``assign`` (-1 = local), the helpers' template
    ``orders`` (None: the policy's keys decide) and the round ``plan`` (None: ``batches`` profile batches)."""

    def __init__(
        self, parts: RunParts, r: int, assign: np.ndarray, orders: list[Order] | None, plan: RoundPlan | None
    ) -> None:
        instance = parts.instance
        if plan is not None and plan.samples.shape[1] != instance.num_clients:
            raise ValueError("RoundPlan.samples must have one column per client")
        self.parts, self.r, self.plan = parts, r, plan
        self.steps = plan.steps if plan is not None else instance.batches
        if plan is not None and orders is not None:
            orders = orders_for_plan(orders, instance.batches, plan.samples, plan.sync)
        sequential = instance.sequential or (plan is not None and plan.sequential)
        if sequential and orders is not None:
            orders = sequential_orders(orders)  # each forward's backward next: the plan's forward order
        self.instance, self.workload = instance, parts.workload
        self.env = simpy.Environment()
        self.assign = assign
        self.busy = np.zeros(instance.num_helpers)
        self.tasks: list[tuple] = []
        self.runner = StepRunner(parts, r, plan, self.env)
        self.completion = np.full(instance.num_clients, np.nan)
        self.own = np.zeros(instance.num_clients)
        self.dropped: list[int] = []
        self.gone: set[int] = set()
        self.queues = [
            HelperQueue(
                self.runner,
                i,
                None if orders is None else orders[i],
                self.gone,
                self.busy,
                self.tasks,
                sequential,
            )
            for i in range(instance.num_helpers)
        ]
        self.barriers: StepBarriers | None = None
        self.gates: BroadcastGates | None = None
        self.uploads = weights_move(self.runner)
        self.uploaded = np.full(instance.num_clients, np.nan)

    def _drop(self, j: int, i: int, t: int) -> None:
        """Client j drops out in step t: its helper stops waiting for it (its connection closes); the round
        does not, and a synchronous step does not wait for it."""
        self.dropped.append(j)
        self.gone.add(j)
        self.queues[i].poke()
        if self.barriers is not None:
            self.barriers.leave(j, t)
        if self.gates is not None:
            self.gates.leave(j, i, t)

    def _step_done(self, j: int, t: int) -> None:
        if self.barriers is not None:
            self.barriers.done(j, t)

    def client(self, j: int, drop_at: int | None):
        """Client j's steps; with ``drop_at`` = n it drops out at its n-th hand-over to the helper (0-based)."""
        inst, w, i = self.instance, self.workload, int(self.assign[j])
        runner, queue = self.runner, self.queues[i] if i >= 0 else None
        n = 0  # steps taken part in so far
        own = self.own
        unfinished: list = []  # body backward passes not waited for (no return gradient)
        # only the steps it takes part in (no wake-up for the others: the next barrier it waits for implies the
        # earlier ones), read off its column rather than asked step by step
        steps = (
            range(self.steps) if self.plan is None else np.flatnonzero(self.plan.samples[:, j] > 0).tolist()
        )
        for b in steps:
            if self.barriers is not None and b > 0:
                yield self.barriers.after(b - 1)
            if i < 0:
                t0 = self.env.now
                yield runner.compute("local", b, j, -1, inst.local[j])
                own[j] += self.env.now - t0
                self._step_done(j, b)
                n += 1
                continue
            # T1: head forward + upload of the cut-a activations
            t0 = self.env.now
            if w is None:
                yield runner.compute("release", b, j, i, inst.release[j, i])
            else:
                yield runner.compute("head_fwd", b, j, i, w.head_fwd_ms[j])
                yield runner.move("upload_a", b, j, i, w.cut_a_bytes[j], up=True)
            own[j] += self.env.now - t0
            if drop_at == 2 * n:
                self._drop(j, i, b)
                return
            yield queue.submit(j, "fwd", b)
            # T3: download cut-b activations, tail forward/loss/backward, upload the cut-b gradient
            t0 = self.env.now
            if w is None:
                yield runner.compute("delay", b, j, i, inst.delay[j, i])
            else:
                yield runner.move("download_b", b, j, i, w.cut_b_bytes[j], up=False)
                yield runner.compute("tail", b, j, i, w.tail_fwd_ms[j] + w.tail_bwd_ms[j])
                yield runner.move("upload_b", b, j, i, w.grad_b[j], up=True)
            own[j] += self.env.now - t0
            if drop_at == 2 * n + 1:
                self._drop(j, i, b)
                return
            bwd = queue.submit(j, "bwd", b)
            if self.instance.local_head or (self.plan is not None and not self.plan.return_grad):
                # no gradient comes back: the head learns locally, without waiting for the helper
                unfinished.append(bwd)
                t0 = self.env.now
                if w is None:
                    yield runner.compute("tail_opaque", b, j, i, inst.tail[j, i])
                else:
                    yield runner.compute("head_bwd", b, j, i, w.head_bwd_ms[j])
                own[j] += self.env.now - t0
                self._step_done(j, b)
                n += 1
                continue
            yield bwd
            if self.gates is not None:
                self.gates.passed(b, i, j)
                yield self.gates.gate(b, i)
            # T5: download the cut-a gradient, head backward + update
            t0 = self.env.now
            if w is None:
                yield runner.compute("tail_opaque", b, j, i, inst.tail[j, i])
            else:
                yield runner.move(
                    "download_a", b, j, i, w.grad_a[j], up=False, broadcast=self.gates is not None
                )
                yield runner.compute("head_bwd", b, j, i, w.head_bwd_ms[j])
            own[j] += self.env.now - t0
            self._step_done(j, b)
            n += 1
        if unfinished:
            yield self.env.all_of(unfinished)  # the helper's last backward passes belong to the round
        self.completion[j] = self.env.now
        if self.uploads:  # the weights leave as soon as the chain is done (problem.md §1, "The round")
            yield self.env.process(upload(self.runner, j, i))
            self.uploaded[j] = self.env.now
        self.pending -= 1
        if self.pending == 0 and not self.all_done.triggered:
            self.all_done.succeed()

    def _timeout_ms(self) -> float | None:
        """When the round closes without the missing clients: the run's timeout; the default one (3x the planned
        makespan) follows the round's work: the plan's busiest client relative to the schedule's batches of
        ``unit`` samples."""
        timeout, plan = self.parts.timeout_ms, self.plan
        if timeout is not None and self.parts.config.round_timeout_ms is None and plan is not None:
            work = float(plan.samples.sum(axis=0).max()) / (plan.unit * self.instance.batches)
            timeout = timeout * work
        return timeout

    def run(self, rng: np.random.Generator) -> RoundResult:
        """Run the round (``rng`` draws the dropouts) and its aggregation; times from the round's start."""
        k, cfg, plan = self.instance.num_clients, self.parts.config, self.plan
        self.pending = k
        self.all_done = self.env.event()
        hooks = self.parts.hooks
        if plan is not None and plan.broadcast:
            self.gates = BroadcastGates(self.env, plan, self.assign, hooks, self.r)
        if plan is not None and plan.sync:
            self.barriers = StepBarriers(self.env, plan, hooks, self.r)
        for j in range(k):
            drop_at = None
            if cfg.dropout > 0 and self.assign[j] >= 0 and rng.random() < cfg.dropout:
                taken = self.instance.batches if plan is None else int((plan.samples[:, j] > 0).sum())
                drop_at = int(rng.integers(0, 2 * taken)) if taken else None
            self.env.process(self.client(j, drop_at))
        timeout_ms = self._timeout_ms()
        stop = self.all_done
        if timeout_ms is not None:
            stop = self.env.any_of([self.all_done, self.env.timeout(timeout_ms)])
        try:
            self.env.run(until=stop)
        except RuntimeError as exc:  # no timeout, nothing left to happen (the rest dropped out): close now
            if not str(exc).startswith("No scheduled events left"):
                raise  # an error of a hook, not the end of the events
        dropped = sorted(self.dropped)
        late = [j for j in range(k) if np.isnan(self.completion[j]) and j not in self.gone]
        finished = self.completion[~np.isnan(self.completion)]
        makespan = float(finished.max()) if len(finished) else float(self.env.now)
        if (dropped or late) and timeout_ms is not None:
            makespan = max(makespan, float(timeout_ms))  # the round closed at its timeout
        completion, busy, tasks = self.completion.copy(), self.busy.copy(), list(self.tasks)
        members = [j for j in range(k) if not np.isnan(completion[j])]
        # closed at its timeout with uploads under way: they are sent again after the close (no step of a late
        # client may run after it)
        resend = [j for j in members if self.uploads and np.isnan(self.uploaded[j])]
        close = max([makespan, *(float(self.uploaded[j]) for j in members if not np.isnan(self.uploaded[j]))])
        ex = self.instance.exchange
        bodies = bodies_move(ex, self.assign) if ex is not None else []
        body_down = 0.0
        if len(
            bodies
        ):  # each helper's body leaves after its last task; the average comes back after the averaging
            ends = np.full(self.instance.num_helpers, np.nan)
            for *_, i, _phase, _ready, _start, end in tasks:
                ends[i] = np.fmax(ends[i], end)
            close = max(close, float(np.nanmax(ends[bodies] + ex.helper_up[bodies])))
            body_down = float(ex.helper_down[bodies].max())
        round_end = aggregate(self.runner, self.assign, close, members, resend, body_down)
        return RoundResult(
            start=0.0,
            makespan_ms=makespan,
            round_time_ms=round_end,
            completion=completion,
            busy_ms=busy,
            bytes_sent=self.runner.bytes,
            dropped=dropped,
            tasks=tasks,
            timed_out=late,
            samples=0 if plan is None else int(plan.samples[:, members].sum()),
            steps=self.steps,
            plan=plan,
            client_ms=self.own.copy(),
        )
