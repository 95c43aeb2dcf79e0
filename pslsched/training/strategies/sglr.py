"""SGLR (Pal et al., algorithms.md B2): PSL with a scaled server learning rate and split-layer gradient averaging.

PSL's one mean loss over all clients' smashed data, with (1) the helpers' learning rate the clients' times ``N^p``
and (2) split-layer gradient averaging: each helper averages its clients' cut-a gradient slices position by
position and **broadcasts the same average** to all of them, until a switch-off fraction ``off`` of the rounds,
after which every client gets its own slice again.
"""

from __future__ import annotations

import math

import torch

from pslsched.base.registry import as_number
from pslsched.training.strategies.base import STRATEGIES, StrategySettings
from pslsched.training.strategies.psl import PSL


@STRATEGIES.register(
    "sglr",
    "SGLR: PSL with server rate lr*N^p and the cut gradient averaged and broadcast until a switch-off (p, off)",
)
class SGLR(PSL):
    """Options: ``p`` (server learning-rate power, default 0.5), ``off`` (fraction of the rounds with gradient
    averaging, default 0.6). With several helpers each averages over its own clients (one helper: the paper).
    ``record = True`` keeps every broadcast (round, step, what each client got) in ``broadcasts``."""

    name = "sglr"

    def __init__(
        self, settings: StrategySettings | None = None, /, p: str = "0.5", off: str = "0.6", **options: str
    ):
        super().__init__(settings, **options)
        self.p = float(as_number("--strategy.p", p, low=0.0, high=4.0))
        self.off = float(as_number("--strategy.off", off, low=0.0, high=1.0))
        self.broadcasts: list[tuple[int, int, dict[int, torch.Tensor]]] = []  # (round, step, what each got)
        self.record = False

    def server_lr(self) -> float:
        n_split = int((self.assign >= 0).sum())
        return self.optimizer.lr * max(1, n_split) ** self.p

    def averaging(self, r: int) -> bool:
        """Gradient averaging is on in round r (the first ``off`` of the rounds)."""
        return r < math.ceil(self.off * self.rounds - 1e-9)

    def plan_flags(self, r: int) -> dict:
        flags = super().plan_flags(r)  # PSL's: no client weight exchange
        return {**flags, "broadcast": True} if self.averaging(r) else flags

    def broadcast(self, t, i, grads):
        if not grads:
            return grads
        longest = max(g.shape[0] for g in grads.values())
        first = next(iter(grads.values()))
        total = torch.zeros((longest, *first.shape[1:]), dtype=first.dtype, device=first.device)
        count = torch.zeros(longest, dtype=first.dtype, device=first.device)
        for g in grads.values():  # position by position; a shorter slice counts where it has samples
            total[: g.shape[0]] += g
            count[: g.shape[0]] += 1
        average = total / count.reshape(-1, *([1] * (first.dim() - 1)))
        out = {j: average[: g.shape[0]].clone() for j, g in grads.items()}
        if self.record:
            self.broadcasts.append((self.round, t, out))
        return out
