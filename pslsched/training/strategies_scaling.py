"""Strategies from the papers on scaling split learning with the number of clients (algorithms.md B2, B3).

- ``sglr`` (Pal et al.): PSL's one mean loss over all clients' smashed data, with (1) the helpers' learning rate
  the clients' times ``N^p`` and (2) split-layer gradient averaging: each helper averages its clients' cut-a
  gradient slices position by position and **broadcasts the same average** to all of them, until a switch-off
  fraction ``off`` of the rounds, after which every client gets its own slice again.
- ``locfedmix`` (Oh et al.): synchronous steps with one body per helper and a head + tail per client; (Mix) at
  each step's end the helper adds mixup samples built from the smashed data of pairs of different clients
  (``lambda ~ Beta(alpha, alpha)``, labels mixed alike) that train only the body; (Loc) each client has a small
  decoder reconstructing its input from its smashed data and adds ``beta`` x that loss to the gradient it
  received; (Fed) client parts and decoders are FedAvg'd every ``fed`` rounds (0: never). Each part can be
  switched off (``mix=0``, ``loc=0``, ``fed=0``): the ablation the paper runs.
- ``locsplitfed`` (the LocFedMix-SL paper's baseline): SplitFed V1 where each client trains its head on a local
  auxiliary loss only (a small classifier on its smashed data); no gradient goes back down, so the client does not
  wait for the helper's backward pass. The tail still learns from the real loss through the body.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pslsched.base.errors import InputError
from pslsched.base.registry import as_number
from pslsched.training.strategies import PARTS, PSL, STRATEGIES, SplitFedV1, Strategy, _load, _params, _step


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


def _flag(field: str, value: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no"):
        return False
    raise InputError(field, f"expected on/off (1/0), got {value!r}")


CLIENT_PARTS = ("head", "tail", "decoder")


@STRATEGIES.register(
    "locfedmix",
    "LocFedMix-SL: server mixup across clients, client input-reconstruction losses, FedAvg every fed rounds",
)
class LocFedMix(Strategy):
    """Options: ``mix`` (on), ``alpha`` (Beta(alpha, alpha) mixing weight, 2), ``loc`` (on), ``beta`` (weight of
    the reconstruction loss, 0.1), ``fed`` (federate the client parts every this many rounds, 1; 0 never).

    In this tool's U-shaped split the tail and the labels live on the clients, so the mixup loss needs the labels of
    the mixed samples at the helper (as in the paper, whose server holds the classifier) and a copy of the tail:
    the helper uses the round's starting global tail, frozen; the mix trains the body only. Each body steps once
    per step on the average of its clients' mean-loss gradients plus the mix term. The per-client parts are model
    parts of their own (``c<j>.head``...), so a checkpoint keeps them between federations."""

    name = "locfedmix"
    sync = True

    def __init__(self, mix="on", alpha="2", loc="on", beta="0.1", fed="1", **options):
        super().__init__(**options)
        self.mix = _flag("--strategy.mix", mix)
        self.loc = _flag("--strategy.loc", loc)
        self.alpha = float(as_number("--strategy.alpha", alpha, low=0.0, low_open=True))
        self.beta = float(as_number("--strategy.beta", beta, low=0.0))
        self.fed = int(as_number("--strategy.fed", fed, integer=True, low=0))

    def setup(self, global_model, num_clients, num_helpers, optimizer, **kw):
        super().setup(global_model, num_clients, num_helpers, optimizer, **kw)
        if "decoder" not in global_model:
            with torch.no_grad():
                shape = global_model["head"](self.example).shape[1:]
            global_model["decoder"] = _decoder(shape, tuple(self.example.shape[1:])).to(self.example.device)
        for j in range(num_clients):
            for p in CLIENT_PARTS:
                global_model.setdefault(f"c{j}.{p}", self._copy(p))
        self.bodies = [self._copy("body") for _ in range(num_helpers)]

    def client(self, j: int, part: str) -> nn.Module:
        return self.glob[f"c{j}.{part}"]

    def _begin(self, state):
        federated = self.fed > 0 and self.round % self.fed == 0  # the previous round ended with a FedAvg
        self.client_opt = {}
        for j in np.flatnonzero(self.assign >= 0):
            j = int(j)
            if federated or self.round == 0:
                for p in CLIENT_PARTS:
                    _load(self.client(j, p), self.glob[p].state_dict())
            self.client_opt[j] = self.opt.make(_params(*(self.client(j, p) for p in CLIENT_PARTS)))
        self.body_opt = []
        for body in self.bodies:
            _load(body, state["body"])
            self.body_opt.append(self.opt.make(_params(body)))
        self.frozen_tail = {n: p.detach().clone() for n, p in self.glob["tail"].named_parameters()}
        self.stash: dict[int, list] = {}
        self.step_clients = np.zeros(self.h)

    def begin_round(self, r, assign):
        self.round = r
        super().begin_round(r, assign)

    def plan_flags(self, r: int) -> dict:
        # the client parts travel to the aggregator only when they are federated (every ``fed`` rounds)
        federate = self.fed > 0 and (r + 1) % self.fed == 0
        return {**super().plan_flags(r), "exchange_weights": federate}

    def head(self, j):
        return self.client(j, "head")

    def tail(self, j):
        return self.client(j, "tail")

    def body(self, j, i):
        return self.bodies[i]

    def after_body_fwd(self, j, i, t, smashed, y):
        if self.mix:
            self.stash.setdefault(i, []).append((j, smashed.detach(), y))

    def after_body_bwd(self, j, i, t, n):
        super().after_body_bwd(j, i, t, n)
        self.step_clients[i] += 1

    def head_backward(self, j, t, x, head_out, grad):
        if not self.loc:
            head_out.backward(grad)
            return
        recon = F.mse_loss(self.client(j, "decoder")(head_out), x)
        ((head_out * grad).sum() + self.beta * recon).backward()

    def after_head_bwd(self, j, t, n):
        super().after_head_bwd(j, t, n)
        _step(self.client_opt[j])

    def on_sync(self, t):
        for i, body in enumerate(self.bodies):
            if self.step_clients[i] == 0:
                continue
            for p in body.parameters():  # the average of the clients' mean-loss gradients
                if p.grad is not None:
                    p.grad.div_(self.step_clients[i])
            if self.mix and len(self.stash.get(i, [])) >= 2:
                self._mixup(i, t, body)
            _step(self.body_opt[i])
        self.stash.clear()
        self.step_clients[:] = 0

    def _mixup(self, i: int, t: int, body: nn.Module) -> None:
        """Pairs of different clients' smashed data, mixed; the loss trains this body only."""
        group = sorted(self.stash[i], key=lambda e: e[0])
        rng = np.random.default_rng([self.seed, self.round, t, i])
        order = rng.permutation(len(group))
        loss = 0.0
        for a, b in zip(order, np.roll(order, 1)):
            (_, sa, ya), (_, sb, yb) = group[a], group[b]
            m = min(len(ya), len(yb))
            lam = float(rng.beta(self.alpha, self.alpha))
            mixed = lam * sa[:m] + (1 - lam) * sb[:m]
            logits = torch.func.functional_call(self.glob["tail"], self.frozen_tail, (body(mixed),))
            loss = loss + lam * F.cross_entropy(logits, ya[:m]) + (1 - lam) * F.cross_entropy(logits, yb[:m])
        (loss / len(group)).backward()

    def _contributions(self, members):
        out = super()._contributions(members)
        for p in CLIENT_PARTS:
            out.setdefault(p, []).extend(
                (self.client(j, p).state_dict(), self.samples[j])
                for j in np.flatnonzero(self.assign >= 0)
                if int(j) in members
            )
        out["body"] = out.get("body", []) + [
            (b.state_dict(), self.body_samples[i]) for i, b in enumerate(self.bodies)
        ]
        return out


def _decoder(smashed: torch.Size, image: tuple[int, ...]) -> nn.Module:
    """A small decoder from the smashed data back to the input (Loc's reconstruction loss)."""
    c, h, w = image
    if len(smashed) == 3:
        return nn.Sequential(nn.Upsample(size=(h, w)), nn.Conv2d(smashed[0], c, 3, padding=1))
    return nn.Sequential(
        nn.Flatten(), nn.Linear(int(torch.Size(smashed).numel()), c * h * w), nn.Unflatten(1, image)
    )


def _aux_classifier(shape: torch.Size, num_classes: int) -> nn.Module:
    if len(shape) == 3:
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(shape[0], num_classes))
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.Size(shape).numel()), num_classes))


__all__ = ["PARTS", "SGLR", "LocFedMix", "LocSplitFed"]
