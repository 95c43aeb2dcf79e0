"""SplitFed V1 and V2 (Thapa et al.): every client its own head and tail; the bodies per client (V1) or per helper (V2).

- ``splitfed1``: a body copy per client on its helper; all parts FedAvg'd per round. The clients are independent
  within a round, so ``batched=true`` computes a whole round for all clients at once
  (``pslsched.training.strategies.batched``).
- ``splitfed2``: one body per helper, stepped after each client's backward. ``order=sequential`` (the default, as
  published): the helper runs each client's forward and backward back to back (problem.md §1, sequential
  helpers), so every body gradient is computed on the weights it updates. ``order=interleaved``: the helper runs
  the schedule's interleaved order, so the body may step between a client's forward and its backward
  (``stale_body``: the backward uses the forward's weights); each round reports how many body steps old those
  weights were (``stale_mean``, ``stale_max``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pslsched.base.errors import InputError
from pslsched.base.registry import as_flag
from pslsched.training.strategies.base import (
    PARTS,
    STRATEGIES,
    Contributions,
    Strategy,
    StrategySettings,
    load_state,
    parameters_of,
    step_optimizer,
)
from pslsched.training.strategies.batched import BatchedRound

ORDERS = ("sequential", "interleaved")  # splitfed2's helper work


@STRATEGIES.register(
    "splitfed1", "SplitFed V1: a body copy per client on its helper; all parts FedAvg'd per round"
)
class SplitFedV1(Strategy):
    """Option ``batched`` (false): compute each round for all clients at once."""

    name = "splitfed1"

    def __init__(self, settings: StrategySettings | None = None, /, batched: str = "false", **options: str):
        super().__init__(settings, **options)
        self.batched = as_flag("--strategy.batched", batched)
        if self.batched:
            self.precompute = BatchedRound(self)

    def setup(self, global_model, num_clients, num_helpers, **kw):
        super().setup(global_model, num_clients, num_helpers, **kw)
        self.parts: dict[int, dict[str, nn.Module]] = {}

    def begin_round(self, r: int, assign: np.ndarray) -> None:
        if not self.batched:
            super().begin_round(r, assign)
            return
        # batched: no module copies and no optimizers; the round's precompute holds every client's parameters as
        # stacked rows (``BatchedRound``) and ``end_round`` averages them
        self.round, self.assign = r, assign
        self.samples = np.zeros(self.num_clients)
        self.body_samples = np.zeros(self.num_helpers)

    def end_round(self, members: list[int]) -> None:
        if not self.batched:
            super().end_round(members)
            return
        self.precompute.average(members)

    def load_copies(self, state):
        self.client_opt: dict[int, torch.optim.Optimizer] = {}
        self.body_opt: dict[int, torch.optim.Optimizer] = {}
        for j in np.flatnonzero(self.assign >= 0):
            j = int(j)
            if j not in self.parts:
                self.parts[j] = {p: self.copy_part(p) for p in PARTS}
            for p in PARTS:
                load_state(self.parts[j][p], state[p])
            self.client_opt[j] = self.optimizer.make(
                parameters_of(self.parts[j]["head"], self.parts[j]["tail"])
            )
            self.body_opt[j] = self.optimizer.make(parameters_of(self.parts[j]["body"]))

    def head(self, j):
        return self.parts[j]["head"]

    def tail(self, j):
        return self.parts[j]["tail"]

    def body(self, j, i):
        return self.parts[j]["body"]

    def after_body_bwd(self, j, i, t, n):
        super().after_body_bwd(j, i, t, n)
        step_optimizer(self.body_opt[j])

    def after_head_bwd(self, j, t, n):
        super().after_head_bwd(j, t, n)
        step_optimizer(self.client_opt[j])

    def split_contributions(self, members) -> Contributions:
        out: Contributions = {p: [] for p in PARTS}
        for j, parts in self.parts.items():
            if j in members and self.assign[j] >= 0:
                for p in PARTS:
                    out[p].append((parts[p].state_dict(), self.samples[j]))
        return out


@STRATEGIES.register(
    "splitfed2",
    "SplitFed V2: one body per helper; each client's forward and backward back to back (order=sequential, as "
    "published) or the schedule's interleaved order (order=interleaved: stale body gradients, reported)",
)
class SplitFedV2(Strategy):
    """Option ``order`` (sequential): ``sequential`` or ``interleaved`` helper work (see the module)."""

    name = "splitfed2"

    def __init__(
        self, settings: StrategySettings | None = None, /, order: str = "sequential", **options: str
    ):
        super().__init__(settings, **options)
        if order not in ORDERS:
            raise InputError("--strategy.order", f"must be one of {', '.join(ORDERS)}, got {order!r}")
        self.order = order
        self.stale_body = order == "interleaved"

    def setup(self, global_model, num_clients, num_helpers, **kw):
        super().setup(global_model, num_clients, num_helpers, **kw)
        self.clients: dict[int, dict[str, nn.Module]] = {}
        self.bodies = [self.copy_part("body") for _ in range(num_helpers)]

    def plan_flags(self, r: int) -> dict:
        return {**super().plan_flags(r), "sequential": self.order == "sequential"}

    def begin_round(self, r: int, assign: np.ndarray) -> None:
        super().begin_round(r, assign)
        self.body_steps = np.zeros(self.num_helpers, dtype=np.int64)
        self.forward_at: dict[tuple[int, int], int] = {}  # (client, step) -> its helper's body steps then
        self.staleness: list[int] = []

    def after_body_fwd(self, j, i, t, smashed, y):
        self.forward_at[(j, t)] = int(self.body_steps[i])

    def round_metrics(self) -> dict[str, float]:
        if self.order != "interleaved":
            return {}
        ages = self.staleness or [0]
        return {"stale_mean": float(np.mean(ages)), "stale_max": float(max(ages))}

    def load_copies(self, state):
        self.client_opt = {}
        for j in np.flatnonzero(self.assign >= 0):
            j = int(j)
            if j not in self.clients:
                self.clients[j] = {p: self.copy_part(p) for p in ("head", "tail")}
            for p in ("head", "tail"):
                load_state(self.clients[j][p], state[p])
            self.client_opt[j] = self.optimizer.make(parameters_of(*self.clients[j].values()))
        self.body_opt = []
        for body in self.bodies:
            load_state(body, state["body"])
            self.body_opt.append(self.optimizer.make(parameters_of(body)))

    def head(self, j):
        return self.clients[j]["head"]

    def tail(self, j):
        return self.clients[j]["tail"]

    def body(self, j, i):
        return self.bodies[i]

    def after_body_bwd(self, j, i, t, n):
        super().after_body_bwd(j, i, t, n)
        self.staleness.append(int(self.body_steps[i]) - self.forward_at.pop((j, t)))
        step_optimizer(self.body_opt[i])
        self.body_steps[i] += 1

    def after_head_bwd(self, j, t, n):
        super().after_head_bwd(j, t, n)
        step_optimizer(self.client_opt[j])

    def split_contributions(self, members) -> Contributions:
        out: Contributions = {p: [] for p in PARTS}
        for j, parts in self.clients.items():
            if j in members and self.assign[j] >= 0:
                for p in ("head", "tail"):
                    out[p].append((parts[p].state_dict(), self.samples[j]))
        for i, body in enumerate(self.bodies):
            out["body"].append((body.state_dict(), self.body_samples[i]))
        return out
