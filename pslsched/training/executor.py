"""The training hooks: the engine's steps, in event order, do the real arithmetic of split training.

Each step of client j's chain in step t touches only what that step owns: the head forward on the client's batch,
the body forward on the helper, the tail forward + loss + backward on the client, the body backward on the helper,
the head backward on the client; what crosses a link is a detached tensor (the cut-a activations, the cut-b
activations, their gradients), exactly what a real deployment would send. The strategy says which copies to use
and when they step. Opaque instance runs (T1/T3/T5 only) map release -> head forward, delay -> tail, tail -> head
backward.

A strategy with ``batched_steps`` (PSL, SGLR: one shared client model, a barrier per step) has its split clients'
steps **deferred**: each is recorded in event order and, at the step's barrier (``sync``), the whole step is
computed as one batch (``strategies.sync_batched.run_step``) when every participant ran its full chain; otherwise
(a client dropped out mid-step, an opaque run) and for a step whose barrier never opened (a round timeout) the
recorded steps are replayed client after client, in their order, before anything reads the result. Nothing steps
between a step's tasks and its barrier, so either way the arithmetic is the per-client path's. Per client it stays
(``path``, ``path_reason``) under ``clock: measured`` (every step's own wall time is measured) and under a codec
that draws random numbers (its draws follow the per-client event order).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from pslsched.core.codecs import Compression
from pslsched.simulator import RoundPlan, TaskEvent
from pslsched.training.errors import Diverged
from pslsched.training.results import StepProgress
from pslsched.training.strategies.base import Strategy
from pslsched.training.strategies.sync_batched import run_step
from pslsched.training.transfer import draws_random, received


@dataclass
class _InFlight:
    x: torch.Tensor
    y: torch.Tensor
    n: int
    head_out: torch.Tensor | None = None
    sent_a: torch.Tensor | None = None
    body_out: torch.Tensor | None = None
    recv_b: torch.Tensor | None = None
    grad_b: torch.Tensor | None = None
    grad_a: torch.Tensor | None = None
    snapshot: dict[str, torch.Tensor] = field(default_factory=dict)


CHAIN = ("head_fwd", "body_fwd", "tail", "body_bwd", "head_bwd")  # a split client's full step
# the steps of split clients that a batched synchronous step defers to its barrier
DEFERRED = {*CHAIN, "release", "delay", "tail_opaque", "broadcast"}

COMPUTE_KINDS = {
    "head_fwd",
    "release",
    "body_fwd",
    "tail",
    "delay",
    "body_bwd",
    "head_bwd",
    "tail_opaque",
    "local",
}
# the events that finish a unit of a round's work: a synchronous step (its barrier), else one client's step
DONE_SYNC = {"sync"}
DONE_CLIENT = {"head_bwd", "tail_opaque", "local"}


class TrainingHooks:
    """Runs split training inside the simulation; ``round_loss()`` is the mean training loss of the last round.

    ``client_data[j]`` holds client j's sample indices into ``x``/``y``. Client j reads its data as a stream of
    passes, pass p in the order of a permutation seeded by (seed, p, j): without replacement within a pass, and a
    round continues where the previous one stopped (``consumed[j]`` samples so far). With one local epoch per
    round, round r is pass r.
    """

    def __init__(
        self,
        strategy: Strategy,
        x: torch.Tensor,
        y: torch.Tensor,
        client_data: list[np.ndarray],
        client_names: list[str],
        seed: int,
        measure: bool = False,
        compression: Compression | None = None,
        progress: StepProgress | None = None,
    ):
        self.strategy = strategy
        self.progress = progress  # a long round's progress (steps done of the round's steps)
        self.x, self.y = x, y
        self.client_data = client_data
        self.names = client_names
        self.seed = seed
        self.measure = measure
        self.compression = compression if compression is not None and compression.active else None
        self.generator = torch.Generator()  # randomised codecs draw from it; re-seeded every round
        self.flight: dict[tuple[int, int], _InFlight] = {}  # (client, step) -> the step's tensors
        self.consumed = np.zeros(len(client_data), dtype=np.int64)
        self.loss_sum = 0.0
        self.loss_samples = 0
        self.compute_s = 0.0
        self.path, self.path_reason = self._step_path()
        self.pending: dict[
            int, list[TaskEvent]
        ] = {}  # step -> its deferred split-client steps, in event order

    def _step_path(self) -> tuple[str, str]:
        """How synchronous steps are computed: ``batched`` or ``per-client``, and why."""
        s = self.strategy
        if not s.sync:
            return "per-client", f"{s.name} has no barrier per step"
        if not s.batched_steps:
            return (
                "per-client",
                f"{s.name} computes its steps client after client (path=per-client or no shared model)",
            )
        if self.measure:
            return "per-client", "clock measured: every step's own wall time is measured"
        if self.compression is not None and draws_random(self.compression.codec):
            return "per-client", f"codec {self.compression.codec.spec} draws random numbers in event order"
        return "batched", "one batch per step at its barrier"

    # --- round boundaries (called by the engine) --------------------------------------------------------------
    def begin_round(self, r: int, plan: RoundPlan | None, assign: np.ndarray) -> None:
        if plan is None:
            raise ValueError("training needs a RoundPlan (samples per step and client)")
        self.r, self.plan = r, plan
        self.flight.clear()
        self.pending.clear()
        self.generator.manual_seed(int(np.random.SeedSequence([self.seed, r, 29]).generate_state(1)[0]))
        self.loss_sum, self.loss_samples = 0.0, 0
        need = plan.samples.sum(axis=0).astype(np.int64)
        self.offsets = np.vstack(
            [np.zeros(plan.samples.shape[1], dtype=np.int64), np.cumsum(plan.samples, 0)]
        )
        self.order = [
            self.stream(j, int(self.consumed[j]), int(need[j])) for j in range(len(self.client_data))
        ]
        self.consumed += need
        self.strategy.begin_round(r, np.asarray(assign))
        if self.progress is not None:
            sync = self.strategy.sync
            self.done_kinds = DONE_SYNC if sync else DONE_CLIENT
            total = plan.samples.shape[0] if sync else int((plan.samples > 0).sum())
            self.progress.begin(r, total, "steps" if sync else "client-steps")
        self.precomputed = False
        if self.strategy.precompute is not None:
            # a strategy whose clients are independent within a round may compute the whole round at once
            # (e.g. batched over clients); the steps then only advance the clock
            t0 = time.perf_counter()
            loss_sum, loss_samples = self.strategy.precompute(self.plan, self.batch, self.r, self.names)
            self.compute_s += time.perf_counter() - t0
            self.loss_sum += loss_sum
            self.loss_samples += loss_samples
            self.precomputed = True

    def stream(self, j: int, start: int, n: int) -> np.ndarray:
        """Client j's samples ``start .. start + n - 1`` of its stream of seeded passes."""
        idx = self.client_data[j]
        size = len(idx)
        if n == 0:
            return idx[:0]
        first, last = start // size, (start + n - 1) // size
        passes = [
            idx[np.random.default_rng([self.seed, p, j, 11]).permutation(size)]
            for p in range(first, last + 1)
        ]
        lo = start - first * size
        return np.concatenate(passes)[lo : lo + n]

    def _send(self, x: torch.Tensor, what: str) -> torch.Tensor:
        """What the receiver gets of ``x`` (detached), under the run's compression."""
        return received(self.compression, x, what, self.generator)

    def end_round(self, r: int, members: list[int]) -> None:
        for t in sorted(self.pending):  # a step whose barrier never opened (timeout): client after client
            self._flush(t, batched=False)
        self.strategy.end_round(members)

    def round_loss(self) -> float:
        return self.loss_sum / self.loss_samples if self.loss_samples else float("nan")

    def batch(self, j: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Client j's samples of step t."""
        idx = self.order[j][self.offsets[t, j] : self.offsets[t + 1, j]]
        sel = torch.from_numpy(idx)
        return self.x[sel], self.y[sel]

    # --- the steps --------------------------------------------------------------------------------------------
    def run(self, step: TaskEvent) -> float | None:
        if self.progress is not None and step.kind in self.done_kinds:
            self.progress.advance()
        handler = _HANDLERS.get(step.kind)
        if handler is None or (self.precomputed and step.kind != "sync"):
            return None
        if (
            self.path == "batched"
            and step.kind in DEFERRED
            and (step.kind == "broadcast" or self.strategy.assign[step.client] >= 0)
        ):
            self.pending.setdefault(step.batch, []).append(step)  # computed at the step's barrier
            return None
        t0 = time.perf_counter()
        handler(self, step)
        dt = time.perf_counter() - t0
        self.compute_s += dt
        return dt * 1e3 if self.measure and step.kind in COMPUTE_KINDS else None

    def _head_fwd(self, s: TaskEvent) -> None:
        j, t = s.client, s.batch
        x, y = self.batch(j, t)
        f = self.flight[(j, t)] = _InFlight(x, y, len(y))
        f.head_out = self.strategy.head(j)(x)
        f.sent_a = self._send(f.head_out, "a").requires_grad_(True)

    def _body_fwd(self, s: TaskEvent) -> None:
        f = self.flight[(s.client, s.batch)]
        body = self.strategy.body(s.client, s.helper)
        if self.strategy.stale_body:
            # the body may step before this client's backward: keep the weights this forward used
            f.snapshot = {n: p.detach().clone().requires_grad_(True) for n, p in body.named_parameters()}
            f.body_out = functional_call(body, f.snapshot, (f.sent_a,))
        else:
            f.body_out = body(f.sent_a)
        f.recv_b = self._send(f.body_out, "b").requires_grad_(True)
        self.strategy.after_body_fwd(s.client, s.helper, s.batch, f.sent_a, f.y)

    def _tail(self, s: TaskEvent) -> None:
        j, t = s.client, s.batch
        f = self.flight[(j, t)]
        logits = self.strategy.tail(j)(f.recv_b)
        total = F.cross_entropy(logits, f.y, reduction="sum")
        value = float(total.detach())
        if not np.isfinite(value):
            raise Diverged.at(self.r, t, self.names[j], value)
        self.loss_sum += value
        self.loss_samples += f.n
        (total / self.strategy.loss_divisor(j, t, f.n, self.plan.samples)).backward()
        f.grad_b = self._send(f.recv_b.grad, "grad")

    def _body_bwd(self, s: TaskEvent) -> None:
        j, i, t = s.client, s.helper, s.batch
        f = self.flight[(j, t)]
        f.body_out.backward(f.grad_b)
        if self.strategy.stale_body:
            body = self.strategy.body(j, i)
            for n, p in body.named_parameters():
                g = f.snapshot[n].grad
                if g is not None:
                    p.grad = g if p.grad is None else p.grad + g
            f.snapshot = {}
        f.body_out = None
        self.strategy.after_body_bwd(j, i, t, f.n)
        if not self.strategy.return_grad:
            del self.flight[(j, t)]  # the head already learnt locally: nothing goes back
            return
        f.grad_a = self._send(self.strategy.cut_gradient(j, t, f.sent_a.grad), "grad")

    def _head_bwd(self, s: TaskEvent) -> None:
        j, t = s.client, s.batch
        if not self.strategy.return_grad:
            f = self.flight[(j, t)]
            self.strategy.local_head_step(j, t, f.x, f.y, f.head_out)
            f.head_out = None
            return
        f = self.flight.pop((j, t))
        self.strategy.head_backward(j, t, f.x, f.head_out, f.grad_a)
        self.strategy.after_head_bwd(j, t, f.n)

    def _local(self, s: TaskEvent) -> None:
        j, t = s.client, s.batch
        x, y = self.batch(j, t)
        m = self.strategy.local_model(j)
        total = F.cross_entropy(m["tail"](m["body"](m["head"](x))), y, reduction="sum")
        value = float(total.detach())
        if not np.isfinite(value):
            raise Diverged.at(self.r, t, self.names[j], value)
        self.loss_sum += value
        self.loss_samples += len(y)
        (total / len(y)).backward()
        self.strategy.after_local(j, t, len(y))

    def _sync(self, s: TaskEvent) -> None:
        self._flush(s.batch)
        self.strategy.on_sync(s.batch)

    # --- batched synchronous steps ------------------------------------------------------------------------------
    def _flush(self, t: int, batched: bool = True) -> None:
        """Compute step t's deferred steps: as one batch if every participant ran its full chain, else replayed."""
        events = self.pending.pop(t, [])
        if not events:
            return
        clients = self._full_chains(t, events) if batched else None
        if clients is None:
            for ev in events:
                _HANDLERS[ev.kind](self, ev)
            return
        assign = self.strategy.assign
        clients = clients[np.lexsort((clients, assign[clients]))]  # by helper, then index
        counts = self.plan.samples[t, clients]
        idx = np.concatenate([self.order[j][self.offsets[t, j] : self.offsets[t + 1, j]] for j in clients])
        sel = torch.from_numpy(idx)

        def check(values: np.ndarray) -> None:
            if np.isfinite(values).all():
                return
            tails = {ev.client: q for q, ev in enumerate(events) if ev.kind == "tail"}
            bad = [(tails[int(j)], int(j), v) for j, v in zip(clients, values) if not np.isfinite(v)]
            if bad:  # the client whose tail ran first, as the per-client path would stop
                _, j, v = min(bad)
                raise Diverged.at(self.r, t, self.names[j], v)

        broadcast = {ev.helper for ev in events if ev.kind == "broadcast"}
        self.loss_sum += run_step(
            self.strategy,
            t,
            clients,
            counts,
            self.x[sel],
            self.y[sel],
            self.plan.samples,
            self._send,
            broadcast,
            check,
        )
        self.loss_samples += int(counts.sum())

    def _full_chains(self, t: int, events: list[TaskEvent]) -> np.ndarray | None:
        """Step t's split participants if each ran exactly its full chain (None: replay client after client)."""
        assign = self.strategy.assign
        clients = np.flatnonzero((self.plan.samples[t] > 0) & (assign >= 0))
        seen: dict[int, list[str]] = {}
        for ev in events:
            if ev.kind != "broadcast":
                seen.setdefault(ev.client, []).append(ev.kind)
        if len(seen) != len(clients) or not len(clients):
            return None
        for j in clients.tolist():
            if tuple(seen.get(j, ())) != CHAIN:
                return None
        return clients

    def _broadcast(self, s: TaskEvent) -> None:
        """Helper s.helper's participants of step s.batch all have their cut-a gradient: the strategy may replace
        them (SGLR: one average for all)."""
        t, i = s.batch, s.helper
        group = {
            j: f
            for (j, u), f in self.flight.items()
            if u == t
            and self.strategy.assign[j] == i
            and f.grad_a is not None  # (a client that dropped out: none)
        }
        grads = self.strategy.broadcast(t, i, {j: f.grad_a for j, f in sorted(group.items())})
        for j, g in grads.items():
            group[j].grad_a = g


_HANDLERS = {
    "head_fwd": TrainingHooks._head_fwd,
    "release": TrainingHooks._head_fwd,
    "body_fwd": TrainingHooks._body_fwd,
    "tail": TrainingHooks._tail,
    "delay": TrainingHooks._tail,
    "body_bwd": TrainingHooks._body_bwd,
    "head_bwd": TrainingHooks._head_bwd,
    "tail_opaque": TrainingHooks._head_bwd,
    "local": TrainingHooks._local,
    "sync": TrainingHooks._sync,
    "broadcast": TrainingHooks._broadcast,
}
