"""LocSplitFed (the LocFedMix-SL paper's baseline, algorithms.md B3): SplitFed V1 whose heads learn locally.

Each client trains its head on a local auxiliary loss only (a small classifier on its smashed data); no gradient
goes back down, so the client does not wait for the helper's backward pass. The tail still learns from the real
loss through the body.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pslsched.training.strategies.base import STRATEGIES, Contributions, load_state, parameters_of
from pslsched.training.strategies.splitfed import SplitFedV1


@STRATEGIES.register(
    "locsplitfed",
    "LocSplitFed: SplitFed V1, each head learns from a local auxiliary classifier; no gradient comes back",
)
class LocSplitFed(SplitFedV1):
    """The auxiliary classifier (global average pool + linear on image-shaped smashed data, linear otherwise) is
    a fourth model part, ``aux``, FedAvg'd with the others."""

    name = "locsplitfed"
    return_grad = False

    def setup(self, global_model, num_clients, num_helpers, **kw):
        super().setup(global_model, num_clients, num_helpers, **kw)
        self.aux: dict[int, nn.Module] = {}
        if "aux" not in global_model:
            if self.example is None or self.num_classes is None:
                raise ValueError("locsplitfed needs an example input and the number of classes")
            with torch.no_grad():
                shape = global_model["head"](self.example).shape[1:]
            global_model["aux"] = aux_classifier(shape, self.num_classes).to(self.example.device)

    def load_copies(self, state):
        super().load_copies(state)
        aux_state = self.global_model["aux"].state_dict()
        for j, parts in self.parts.items():
            if j not in self.aux:
                self.aux[j] = self.copy_part("aux")
            load_state(self.aux[j], aux_state)
            # one optimizer over the client's head, tail and auxiliary classifier
            self.client_opt[j] = self.optimizer.make(parameters_of(parts["head"], parts["tail"], self.aux[j]))

    def local_head_step(self, j, t, x, y, head_out):
        loss = F.cross_entropy(self.aux[j](head_out), y)
        loss.backward()
        self.after_head_bwd(j, t, len(y))

    def split_contributions(self, members) -> Contributions:
        out = super().split_contributions(members)
        out["aux"] = [(self.aux[j].state_dict(), self.samples[j]) for j in self.parts if j in members]
        return out


def aux_classifier(shape: torch.Size, num_classes: int) -> nn.Module:
    """The local classifier on smashed data of ``shape``: pool + linear on images, linear otherwise."""
    if len(shape) == 3:
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(shape[0], num_classes))
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.Size(shape).numel()), num_classes))
