"""Synchronous parallel split learning (PSL): one shared client model, one body per helper, a barrier per step."""

from __future__ import annotations

import numpy as np
import torch

from pslsched.base.errors import InputError
from pslsched.training.strategies.base import (
    STRATEGIES,
    Contributions,
    Strategy,
    StrategySettings,
    load_state,
    parameters_of,
    step_optimizer,
)

PATHS = ("batched", "per-client")  # how a synchronous step is computed (strategies.sync_batched)


@STRATEGIES.register(
    "psl",
    "synchronous PSL: each step's loss is the mean over all participants; one shared client model; "
    "bodies step once per step",
)
class PSL(Strategy):
    """Parallel split learning with a barrier per step (as in the global-sampling paper's code).

    Client j's loss is its summed per-sample loss divided by the step's total samples, so the summed gradients on
    the one shared head + tail are the gradient of the global mean loss; each helper's body gets its clients'
    part and is rescaled to the mean over its own clients' samples before it steps (one helper: the global mean).

    Option ``path`` (``batched``): compute each step at its barrier as one batch over its clients
    (``pslsched.training.strategies.sync_batched``) where that applies, else client after client; ``per-client``
    always computes client after client, in event order (the reference).
    """

    name = "psl"
    sync = True

    def __init__(self, settings: StrategySettings | None = None, /, path: str = "batched", **options: str):
        super().__init__(settings, **options)
        if path not in PATHS:
            raise InputError("--strategy.path", f"must be one of {', '.join(PATHS)}, got {path!r}")
        self.path = path
        self.batched_steps = path == "batched"  # the step executor may compute a step as one batch

    def plan_flags(self, r: int) -> dict:
        # the clients already share one head + tail: nothing of theirs to exchange at the round's end
        return {**super().plan_flags(r), "exchange_weights": False}

    def setup(self, global_model, num_clients, num_helpers, **kw):
        super().setup(global_model, num_clients, num_helpers, **kw)
        self.client = {p: self.copy_part(p) for p in ("head", "tail")}
        self.bodies = [self.copy_part("body") for _ in range(num_helpers)]
        self.restored: dict | None = None
        self.client_opt: torch.optim.Optimizer | None = None  # made at the first round, then kept
        self.body_opt: list[torch.optim.Optimizer] = []

    def optimizer_state(self) -> dict | None:
        if self.client_opt is None:
            return None
        return {"client": self.client_opt.state_dict(), "bodies": [o.state_dict() for o in self.body_opt]}

    def restore_optimizers(self, state: dict) -> None:
        if len(state.get("bodies", [])) != self.num_helpers or "client" not in state:
            raise ValueError("the checkpoint's optimizer state does not match this run's helpers")
        self.restored = state

    def load_copies(self, state):
        # the optimizers are made once and live on (momentum, Adam's moments), as in a centralised loop: the
        # shared client model is the global one; each body resumes from the helpers' average with its own state
        for p in ("head", "tail"):
            load_state(self.client[p], state[p])
        for body in self.bodies:
            load_state(body, state["body"])
        if self.client_opt is None:
            self.client_opt = self.optimizer.make(parameters_of(*self.client.values()))
            self.body_opt = [self.optimizer.make(parameters_of(b), lr=self.server_lr()) for b in self.bodies]
            if self.restored is not None:
                self.client_opt.load_state_dict(self.restored["client"])
                for opt, saved in zip(self.body_opt, self.restored["bodies"]):
                    opt.load_state_dict(saved)
                self.restored = None
        lr = self.server_lr()
        for opt in self.body_opt:  # the server rate may follow the round's split clients (SGLR)
            for group in opt.param_groups:
                group["lr"] = self.optimizer.lr if lr is None else lr
        self.step_total = 0.0
        self._divisor_key: tuple[int, int] | None = None
        self.step_body = np.zeros(self.num_helpers)
        self.client_split_samples = 0.0

    def server_lr(self) -> float | None:
        """The bodies' learning rate (None: the clients')."""
        return None

    def head(self, j):
        return self.client["head"]

    def tail(self, j):
        return self.client["tail"]

    def body(self, j, i):
        return self.bodies[i]

    def loss_divisor(self, j, t, n, plan_samples):
        # the step's split samples, once per step (not once per client: O(K) each)
        key = (t, id(plan_samples))
        if self._divisor_key != key:
            self._divisor_key = key
            self.step_total = float(plan_samples[t][self.assign >= 0].sum())
        return self.step_total

    def after_batched_step(self, helpers: np.ndarray, clients: np.ndarray, counts: np.ndarray) -> None:
        """``after_body_bwd`` and ``after_head_bwd`` of a batched step's clients at once (same sums)."""
        np.add.at(self.body_samples, helpers, counts)
        np.add.at(self.step_body, helpers, counts)
        np.add.at(self.samples, clients, counts)
        self.client_split_samples += float(counts.sum())

    def after_body_bwd(self, j, i, t, n):
        super().after_body_bwd(j, i, t, n)
        self.step_body[i] += n

    def after_head_bwd(self, j, t, n):
        super().after_head_bwd(j, t, n)
        self.client_split_samples += n

    def on_sync(self, t):
        for i, body in enumerate(self.bodies):
            if self.step_body[i] > 0:
                factor = self.step_total / self.step_body[i]
                for p in body.parameters():
                    if p.grad is not None:
                        p.grad.mul_(factor)
                step_optimizer(self.body_opt[i])
        if any(p.grad is not None for p in parameters_of(*self.client.values())):
            step_optimizer(self.client_opt)
        self.step_body[:] = 0

    def split_contributions(self, members) -> Contributions:
        out: Contributions = {"head": [], "body": [], "tail": []}
        split_members = [j for j in members if self.assign[j] >= 0]
        if split_members:
            for p in ("head", "tail"):
                out[p].append((self.client[p].state_dict(), float(self.samples[split_members].sum())))
        for i, body in enumerate(self.bodies):
            out["body"].append((body.state_dict(), self.body_samples[i]))
        return out
