"""Strategies from the papers on scaling split learning with the number of clients (algorithms.md B2, B3).

- ``sglr`` (Pal et al.): PSL's one mean loss over all clients' smashed data, with (1) the helpers' learning rate
  the clients' times ``N^p`` and (2) split-layer gradient averaging: each helper averages its clients' cut-a
  gradient slices position by position and **broadcasts the same average** to all of them, until a switch-off
  fraction ``off`` of the rounds, after which every client gets its own slice again.
- ``locsplitfed`` (the LocFedMix-SL paper's baseline): SplitFed V1 where each client trains its head on a local
  auxiliary loss only (a small classifier on its smashed data); no gradient goes back down, so the client does not
  wait for the helper's backward pass. The tail still learns from the real loss through the body.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from simulator.training.registry import as_number
from simulator.training.strategies import PARTS, PSL, STRATEGIES, SplitFedV1, _load, _params


@STRATEGIES.register(
    "sglr",
    "SGLR: PSL with server rate lr*N^p and the cut gradient averaged and broadcast until a switch-off (p, off)",
)
class SGLR(PSL):
    """Options: ``p`` (server learning-rate power, default 0.5), ``off`` (fraction of the rounds with gradient
    averaging, default 0.6). With several helpers each averages over its own clients (one helper: the paper)."""

    name = "sglr"

    def __init__(self, p: str = "0.5", off: str = "0.6", **options: str):
        super().__init__(**options)
        self.p = float(as_number("--strategy.p", p, low=0.0, high=4.0))
        self.off = float(as_number("--strategy.off", off, low=0.0, high=1.0))
        self.broadcasts: list[tuple[int, int, dict[int, torch.Tensor]]] = []  # (round, step, what each got)
        self.record = False

    def server_lr(self) -> float:
        n_split = int((self.assign >= 0).sum())
        return self.opt.lr * max(1, n_split) ** self.p

    def averaging(self, r: int) -> bool:
        """Gradient averaging is on in round r (the first ``off`` of the rounds)."""
        return r < math.ceil(self.off * self.total_rounds - 1e-9)

    def plan_flags(self, r: int) -> dict:
        self.round = r
        return {"broadcast": True} if self.averaging(r) else {}

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


@STRATEGIES.register(
    "locsplitfed",
    "LocSplitFed: SplitFed V1, each head learns from a local auxiliary classifier; no gradient comes back",
)
class LocSplitFed(SplitFedV1):
    """The auxiliary classifier (global average pool + linear on image-shaped smashed data, linear otherwise) is
    a fourth model part, ``aux``, FedAvg'd with the others."""

    name = "locsplitfed"
    return_grad = False

    def setup(self, global_model, num_clients, num_helpers, optimizer, **kw):
        super().setup(global_model, num_clients, num_helpers, optimizer, **kw)
        if "aux" not in global_model:
            if self.example is None or self.num_classes is None:
                raise ValueError("locsplitfed needs an example input and the number of classes")
            with torch.no_grad():
                shape = global_model["head"](self.example).shape[1:]
            global_model["aux"] = _aux_classifier(shape, self.num_classes).to(self.example.device)

    def _begin(self, state):
        super()._begin(state)
        aux_state = self.glob["aux"].state_dict()
        self.aux: dict[int, nn.Module] = getattr(self, "aux", {})
        for j, parts in self.parts.items():
            if j not in self.aux:
                self.aux[j] = self._copy("aux")
            _load(self.aux[j], aux_state)
            # one optimizer over the client's head, tail and auxiliary classifier
            self.client_opt[j] = self.opt.make(_params(parts["head"], parts["tail"], self.aux[j]))

    def local_head_step(self, j, t, x, y, head_out):
        loss = F.cross_entropy(self.aux[j](head_out), y)
        loss.backward()
        self.after_head_bwd(j, t, len(y))

    def _contributions(self, members):
        out = super()._contributions(members)
        out["aux"] = [(self.aux[j].state_dict(), self.samples[j]) for j in self.parts if j in members]
        return out


def _aux_classifier(shape: torch.Size, num_classes: int) -> nn.Module:
    if len(shape) == 3:
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(shape[0], num_classes))
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.Size(shape).numel()), num_classes))


__all__ = ["PARTS", "SGLR", "LocSplitFed"]
