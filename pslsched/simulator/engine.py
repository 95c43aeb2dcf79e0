"""The SimPy engine: executes a schedule round after round under stragglers, shared links and dropouts.

One process per client (its batches one after the other, each following problem.md §1's chain) and one dispatcher
per helper that runs one task at a time, chosen by the policy: ``static`` (the schedule's order, a task waits for its
turn), ``fcfs``, ``priority`` (EquiD's rule) or ``replan`` (static, re-solved at every round boundary from the
durations observed so far). With a Workload the chain is split into compute and transfers (so links can be shared
and stragglers can hit clients, helpers and links separately); an instance alone is run with T1..T5 as opaque
durations. Each round starts when the previous round's aggregation ends.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from pslsched.base.errors import InputError
from pslsched.core.instance import Instance
from pslsched.simulator.hooks import NoHooks, ProfileDurations, TaskEvent
from pslsched.simulator.links import DedicatedLinks, SharedLinks
from pslsched.simulator.orders import Order, orders_for_plan, orders_from_schedule
from pslsched.simulator.replan import replan
from pslsched.simulator.stragglers import Stragglers


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

    def __post_init__(self):
        s = np.asarray(self.samples)
        if s.ndim != 2 or (s < 0).any():
            raise ValueError("RoundPlan.samples must be a steps x clients array of counts >= 0")
        if not self.unit > 0:
            raise ValueError("RoundPlan.unit must be > 0")

    @property
    def steps(self) -> int:
        return int(self.samples.shape[0])


PlanFn = Callable[[int, list], "RoundPlan | None"]


@dataclass
class RoundResult:
    """What one round produced."""

    start: float
    makespan_ms: float
    round_time_ms: float
    completion: np.ndarray  # absolute completion time per client (NaN = dropped / not finished)
    busy_ms: np.ndarray  # per helper
    bytes_sent: float
    dropped: list[int] = field(default_factory=list)  # clients that dropped out
    tasks: list[tuple] = field(default_factory=list)  # (round, batch, j, i, phase, ready, start, end)
    timed_out: list[int] = field(default_factory=list)  # clients still running when the round timed out
    samples: int = 0  # samples processed by the clients that finished (0 without a round plan)
    steps: int = 0  # steps (batches) of the round
    plan: RoundPlan | None = None
    client_ms: np.ndarray | None = None  # per client: time in its own compute and transfers (no queue waits)
    assign: np.ndarray | None = None  # the assignment this round ran (replan may change it between rounds)
    orders: list | None = None  # the helpers' template orders this round ran (static policies)


class _HelperQueue:
    """One helper: a dispatcher process running one task at a time in the policy's order."""

    def __init__(self, sim: _Round, i: int, order: Order | None):
        self.sim, self.i = sim, i
        self.env = sim.env
        self.order, self.pos = order, 0
        self.waiting: dict[tuple[int, str, int], tuple] = {}
        self.heap: list = []
        self.seq = 0
        self.wake = self.env.event()
        self.env.process(self._loop())

    def submit(self, j: int, phase: str, b: int) -> simpy.Event:
        done = self.env.event()
        entry = (j, phase, b, self.env.now, done)
        if self.order is not None:
            self.waiting[(j, phase, b)] = entry
        else:
            heapq.heappush(
                self.heap, (self.sim.rule(phase, j, self.i, self.env.now, self.seq), self.seq, entry)
            )
            self.seq += 1
        self.poke()
        return done

    def poke(self) -> None:
        """Wake the dispatcher (a task arrived, or a client dropped out)."""
        if not self.wake.triggered:
            self.wake.succeed()

    def _pick(self):
        if self.order is not None:
            gone = self.sim.gone
            while self.pos < len(self.order):
                key = self.order[self.pos]
                if key in self.waiting:
                    self.pos += 1
                    return self.waiting.pop(key)
                if key[0] not in gone:
                    return None
                self.pos += 1  # a dropped-out client's turn: it will never come, skip it
            return None
        return heapq.heappop(self.heap)[2] if self.heap else None

    def _loop(self):
        sim = self.sim
        while True:
            entry = self._pick()
            if entry is None:
                self.wake = self.env.event()
                yield self.wake
                continue
            j, phase, b, ready, done = entry
            start = self.env.now
            base = sim.instance.fwd[j, self.i] if phase == "fwd" else sim.instance.bwd[j, self.i]
            step = TaskEvent(
                "body_" + phase, sim.r, b, j, self.i, float(base) * sim.scale(b, j), start, sim.count(b, j)
            )
            d = sim.step_ms(step, "helper", self.i)
            yield self.env.timeout(d)
            sim.busy[self.i] += d
            sim.tasks.append((sim.r, b, j, self.i, phase, ready, start, self.env.now))
            done.succeed()


class _Round:
    """The processes of one round in a fresh SimPy environment (time 0 = the round's start)."""

    def __init__(
        self, sim: Simulation, r: int, assign: np.ndarray, orders: list[Order] | None, plan: RoundPlan | None
    ):
        self.sim, self.r = sim, r
        self.plan = plan
        if plan is not None and plan.samples.shape[1] != sim.instance.num_clients:
            raise ValueError("RoundPlan.samples must have one column per client")
        self.steps = plan.steps if plan is not None else sim.instance.batches
        if plan is not None and orders is not None:
            orders = orders_for_plan(orders, sim.instance.batches, plan.samples, plan.sync)
        self.instance, self.workload, self.cfg = sim.instance, sim.workload, sim.config
        self.env = simpy.Environment()
        self.assign = assign
        self.busy = np.zeros(self.instance.num_helpers)
        self.tasks: list[tuple] = []
        self.bytes = 0.0
        if self.cfg.links == "shared" and self.workload is not None:
            self.links = SharedLinks(self.env, self.workload.resources)
        else:
            self.links = DedicatedLinks(self.env)
        self.queues = [
            _HelperQueue(self, i, None if orders is None else orders[i])
            for i in range(self.instance.num_helpers)
        ]
        self.completion = np.full(self.instance.num_clients, np.nan)
        self.own = np.zeros(self.instance.num_clients)
        self.dropped: list[int] = []
        self.gone: set[int] = set()
        self.rule = sim.rule

    def count(self, t: int, j: int) -> int | None:
        """Samples of client j in step t (None without a plan: the profile's batch)."""
        return None if self.plan is None else int(self.plan.samples[t, j])

    def scale(self, t: int, j: int) -> float:
        """Factor on the profile's times and bytes for client j's step t."""
        return 1.0 if self.plan is None else float(self.plan.samples[t, j]) / self.plan.unit

    def takes_part(self, t: int, j: int) -> bool:
        return self.plan is None or self.plan.samples[t, j] > 0

    def step_ms(self, step: TaskEvent, target: str, index: int) -> float:
        measured = self.sim.hooks.run(step)
        return self.sim.durations.duration(step, measured) * self.sim.stragglers.factor(target, index)

    def compute(self, kind: str, b: int, j: int, i: int, base: float):
        step = TaskEvent(
            kind, self.r, b, j, i, float(base) * self.scale(b, j), self.env.now, self.count(b, j)
        )
        return self.env.timeout(self.step_ms(step, "client", j))

    def move(self, kind: str, b: int, j: int, i: int, size: float, up: bool, broadcast: bool = False):
        """Transfer ``size`` bytes between client j and helper i (dedicated or shared link, link stragglers).

        ``broadcast``: one transmission of helper i serves all its clients of step b: its bytes count once, and on
        shared links each client's copy crosses only the client's own access link."""
        w = self.workload
        mbps, latency = float((w.uplink_mbps if up else w.downlink_mbps)[j, i]), float(w.latency_ms[j, i])
        size = float(size) if kind.startswith("aggregate") else float(size) * self.scale(b, j)
        base = size * 8.0 / (mbps * 1e6) * 1e3 + latency  # problem.md §1, as Workload.up_ms / down_ms
        count = None if kind.startswith("aggregate") else self.count(b, j)
        step = TaskEvent(kind, self.r, b, j, i, base, self.env.now, count)
        measured = self.sim.hooks.run(step)
        nominal = self.sim.durations.duration(step, measured)
        f = self.sim.stragglers.factor("link", j)
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

    def _drop(self, j: int, i: int, t: int) -> None:
        """Client j drops out in step t: its helper stops waiting for it (its connection closes); the round
        does not, and a synchronous step does not wait for it."""
        self.dropped.append(j)
        self.gone.add(j)
        self.queues[i].poke()
        if self.barriers is not None:
            for u in range(t, self.steps):
                self.waiting_on[u].discard(j)
            self._check_barrier(t)
        if self.gates is not None:
            for u in range(t, self.steps):
                if j in self.gate_waiting.get((u, i), ()):
                    self._gate_pass(u, i, j)

    def _gate_pass(self, t: int, i: int, j: int) -> None:
        """Client j's body backward of step t on helper i is done (or j is gone): open the gate when all are."""
        waiting = self.gate_waiting[(t, i)]
        waiting.discard(j)
        gate = self.gates[(t, i)]
        if not waiting and not gate.triggered:
            self.sim.hooks.run(TaskEvent("broadcast", self.r, t, -1, i, 0.0, self.env.now))
            gate.succeed()

    def _step_done(self, j: int, t: int) -> None:
        if self.barriers is not None:
            self.waiting_on[t].discard(j)
            self._check_barrier(t)

    def _check_barrier(self, t: int) -> None:
        """Open step t's barrier once its participants are done and step t-1's barrier is open (chained)."""
        while t < self.steps:
            ev = self.barriers[t]
            if ev.triggered or self.waiting_on[t] or (t > 0 and not self.barriers[t - 1].triggered):
                return
            self.sim.hooks.run(TaskEvent("sync", self.r, t, -1, -1, 0.0, self.env.now))
            ev.succeed()
            t += 1

    def client(self, j: int, drop_at: int | None):
        """Client j's steps; with ``drop_at`` = n it drops out at its n-th hand-over to the helper (0-based)."""
        inst, w, i = self.instance, self.workload, int(self.assign[j])
        n = 0  # steps taken part in so far
        own = self.own
        unfinished: list = []  # body backward passes not waited for (no return gradient)
        for b in range(self.steps):
            if self.barriers is not None and b > 0:
                yield self.barriers[b - 1]
            if not self.takes_part(b, j):
                continue
            if i < 0:
                t0 = self.env.now
                yield self.compute("local", b, j, -1, inst.local[j])
                own[j] += self.env.now - t0
                self._step_done(j, b)
                n += 1
                continue
            # T1: head forward + upload of the cut-a activations
            t0 = self.env.now
            if w is None:
                yield self.compute("release", b, j, i, inst.release[j, i])
            else:
                yield self.compute("head_fwd", b, j, i, w.head_fwd_ms[j])
                yield self.move("upload_a", b, j, i, w.cut_a_bytes[j], up=True)
            own[j] += self.env.now - t0
            if drop_at == 2 * n:
                self._drop(j, i, b)
                return
            yield self.queues[i].submit(j, "fwd", b)
            # T3: download cut-b activations, tail forward/loss/backward, upload the cut-b gradient
            t0 = self.env.now
            if w is None:
                yield self.compute("delay", b, j, i, inst.delay[j, i])
            else:
                yield self.move("download_b", b, j, i, w.cut_b_bytes[j], up=False)
                yield self.compute("tail", b, j, i, w.tail_fwd_ms[j] + w.tail_bwd_ms[j])
                yield self.move("upload_b", b, j, i, w.grad_b[j], up=True)
            own[j] += self.env.now - t0
            if drop_at == 2 * n + 1:
                self._drop(j, i, b)
                return
            bwd = self.queues[i].submit(j, "bwd", b)
            if self.plan is not None and not self.plan.return_grad:
                # no gradient comes back: the head learns locally, without waiting for the helper
                unfinished.append(bwd)
                t0 = self.env.now
                if w is None:
                    yield self.compute("tail_opaque", b, j, i, inst.tail[j, i])
                else:
                    yield self.compute("head_bwd", b, j, i, w.head_bwd_ms[j])
                own[j] += self.env.now - t0
                self._step_done(j, b)
                n += 1
                continue
            yield bwd
            if self.gates is not None:
                self._gate_pass(b, i, j)
                yield self.gates[(b, i)]
            # T5: download the cut-a gradient, head backward + update
            t0 = self.env.now
            if w is None:
                yield self.compute("tail_opaque", b, j, i, inst.tail[j, i])
            else:
                yield self.move(
                    "download_a", b, j, i, w.grad_a[j], up=False, broadcast=self.gates is not None
                )
                yield self.compute("head_bwd", b, j, i, w.head_bwd_ms[j])
            own[j] += self.env.now - t0
            self._step_done(j, b)
            n += 1
        if unfinished:
            yield self.env.all_of(unfinished)  # the helper's last backward passes belong to the round
        self.completion[j] = self.env.now
        self.pending -= 1
        if self.pending == 0 and not self.all_done.triggered:
            self.all_done.succeed()

    def run(self, rng: np.random.Generator) -> RoundResult:
        k = self.instance.num_clients
        self.pending = k
        self.all_done = self.env.event()
        self.barriers = None
        self.gates = None
        if self.plan is not None and self.plan.broadcast:
            self.gates, self.gate_waiting, self.broadcast_sent = {}, {}, set()
            for t in range(self.steps):
                for j in np.flatnonzero(self.plan.samples[t] > 0):
                    i = int(self.assign[j])
                    if i >= 0:
                        self.gate_waiting.setdefault((t, i), set()).add(int(j))
            for key in self.gate_waiting:
                self.gates[key] = self.env.event()
        if self.plan is not None and self.plan.sync:
            self.barriers = [self.env.event() for _ in range(self.steps)]
            self.waiting_on = [
                set(np.flatnonzero(self.plan.samples[t] > 0).tolist()) for t in range(self.steps)
            ]
            self._check_barrier(0)
        for j in range(k):
            drop_at = None
            if self.cfg.dropout > 0 and self.assign[j] >= 0 and rng.random() < self.cfg.dropout:
                taken = (
                    self.instance.batches if self.plan is None else int((self.plan.samples[:, j] > 0).sum())
                )
                drop_at = int(rng.integers(0, 2 * taken)) if taken else None
            self.env.process(self.client(j, drop_at))
        stop = self.all_done
        self.timeout_ms = self.sim.timeout_ms
        if self.timeout_ms is not None and self.sim.config.round_timeout_ms is None and self.plan is not None:
            # the default timeout (3x the planned makespan) follows the round's work: the plan's busiest client
            # relative to the schedule's batches of ``unit`` samples
            work = float(self.plan.samples.sum(axis=0).max()) / (self.plan.unit * self.instance.batches)
            self.timeout_ms = self.timeout_ms * work
        if self.timeout_ms is not None:
            stop = self.env.any_of([self.all_done, self.env.timeout(self.timeout_ms)])
        try:
            self.env.run(until=stop)
        except RuntimeError as exc:  # no timeout, nothing left to happen (the rest dropped out): close now
            if not str(exc).startswith("No scheduled events left"):
                raise  # an error of a hook, not the end of the events
        dropped = sorted(self.dropped)
        late = [j for j in range(k) if np.isnan(self.completion[j]) and j not in self.gone]
        finished = self.completion[~np.isnan(self.completion)]
        makespan = float(finished.max()) if len(finished) else float(self.env.now)
        if (dropped or late) and self.timeout_ms is not None:
            makespan = max(makespan, float(self.timeout_ms))  # the round closed at its timeout
        completion, busy, tasks = self.completion.copy(), self.busy.copy(), list(self.tasks)
        members = [j for j in range(k) if not np.isnan(completion[j])]
        agg_end = self._aggregate(makespan, members)
        samples = 0 if self.plan is None else int(self.plan.samples[:, members].sum())
        return RoundResult(
            start=0.0,
            makespan_ms=makespan,
            round_time_ms=agg_end,
            completion=completion,
            busy_ms=busy,
            bytes_sent=self.bytes,
            dropped=dropped,
            tasks=tasks,
            timed_out=late,
            samples=samples,
            steps=self.steps,
            plan=self.plan,
            client_ms=self.own.copy(),
        )

    def _aggregate(self, t0: float, members: list[int]) -> float:
        """Round end at ``t0``: members upload head+tail weights to the aggregator, it averages, they download them.

        Runs in a fresh environment starting at ``t0``, so clients cut off by the round timeout stop there (they
        neither finish later nor load the links). Without a workload only the averaging time ``aggregate_ms`` counts.
        """
        w, cfg = self.workload, self.cfg
        a = self.sim.aggregator
        env = self.env = simpy.Environment(initial_time=t0)
        if cfg.links == "shared" and w is not None:
            self.links = SharedLinks(env, w.resources)
        else:
            self.links = DedicatedLinks(env)

        def hop(j: int) -> int | None:
            """The helper whose link client j's weights cross: the aggregator's, else its own helper's."""
            if not math.isnan(w.uplink_mbps[j, a]):
                return a
            if self.assign[j] >= 0:
                return int(self.assign[j])
            reachable = np.flatnonzero(~np.isnan(w.uplink_mbps[j]))
            return int(reachable[0]) if len(reachable) else None  # None: a local client with no link at all

        def one(j: int, phase: str):
            i = hop(j)
            if i is not None:
                yield self.move(f"aggregate_{phase}", 0, j, i, w.client_weights_bytes[j], up=phase == "up")

        exchange = self.plan is None or self.plan.exchange_weights

        def proc():
            if w is not None and a is not None and members and exchange:
                yield env.all_of([env.process(one(j, "up")) for j in members])
            self.sim.hooks.run(
                TaskEvent("aggregate", self.r, 0, -1, -1 if a is None else a, cfg.aggregate_ms, env.now)
            )
            end_round = getattr(self.sim.hooks, "end_round", None)
            if end_round is not None:
                end_round(self.r, members)
            yield env.timeout(cfg.aggregate_ms)
            if w is not None and a is not None and members and exchange:
                yield env.all_of([env.process(one(j, "down")) for j in members])

        done = env.process(proc())
        env.run(until=done)
        return float(env.now)


class Simulation:
    """Runs rounds of a schedule; see ``simulate``."""

    def __init__(self, instance, schedule, config, workload=None, hooks=None, durations=None, plan=None):
        self.instance, self.schedule, self.config = instance, schedule, config
        self.workload = workload
        self.plan_fn: PlanFn | None = plan
        self.hooks = hooks or NoHooks()
        self.durations = durations or ProfileDurations()
        sizes = {"client": instance.num_clients, "helper": instance.num_helpers, "link": instance.num_clients}
        self.stragglers = Stragglers(config.stragglers, config.seed, sizes)
        self.aggregator = aggregator_index(instance, config.aggregator)
        self.rule = _RULES[config.policy](instance)
        self.timeout_ms = config.round_timeout_ms
        if self.timeout_ms is None and config.dropout > 0 and schedule.makespan:
            self.timeout_ms = 3.0 * schedule.makespan

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
        assign, orders = orders_from_schedule(self.instance, self.schedule)
        self.rng = rng if rng is not None else np.random.default_rng([self.config.seed, 7])
        rng = self.rng
        results = self.results = list(results or [])
        clock = results[-1].start + results[-1].round_time_ms if results else 0.0
        if results and results[-1].assign is not None:
            assign, orders = results[-1].assign, results[-1].orders
        for r in range(start_round, self.config.rounds):
            plan = self.plan_fn(r, results) if self.plan_fn is not None else None
            if self.config.policy == "replan" and r > 0:
                assign, orders = replan(
                    self.instance, assign, orders, results, self.config, plan, self.workload
                )
            self.stragglers.start_round(r)
            static = self.config.policy in ("static", "replan")
            begin_round = getattr(self.hooks, "begin_round", None)
            if begin_round is not None:
                begin_round(r, plan, assign)
            res = _Round(self, r, assign, orders if static else None, plan).run(rng)
            res.assign, res.orders = assign, orders
            res.start = clock
            res.completion = res.completion + clock
            res.tasks = [
                (t[0], t[1], t[2], t[3], t[4], t[5] + clock, t[6] + clock, t[7] + clock) for t in res.tasks
            ]
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


def _static_rule(instance):
    return lambda phase, j, i, ready, seq: (seq,)


def _fcfs_rule(instance):
    return lambda phase, j, i, ready, seq: (ready, seq)


def _priority_rule(instance):
    delay, tail = instance.delay, instance.tail

    def rule(phase, j, i, ready, seq):
        return (0, -delay[j, i], ready, seq) if phase == "fwd" else (1, -tail[j, i], ready, seq)

    return rule


_RULES = {"static": _static_rule, "replan": _static_rule, "fcfs": _fcfs_rule, "priority": _priority_rule}
