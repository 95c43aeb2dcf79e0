"""LocFedMix-SL (Oh et al., algorithms.md B3): synchronous steps, one body per helper, a head + tail per client.

(Mix) at each step's end the helper adds mixup samples built from the smashed data of pairs of different clients
(``lambda ~ Beta(alpha, alpha)``, labels mixed alike) that train only the body; (Loc) each client has a small
decoder reconstructing its input from its smashed data and adds ``beta`` x that loss to the gradient it received;
(Fed) client parts and decoders are FedAvg'd every ``fed`` rounds (0: never). Each part can be switched off
(``mix=0``, ``loc=0``, ``fed=0``): the ablation the paper runs.

``path=batched`` (the default) computes each synchronous step at its barrier as one batch (``batched_step``):
the clients' heads, tails and decoders stacked per step (clients grouped by their sample count) and run with
``torch.func.vmap`` over ``functional_call``, each helper's body over its clients' concatenated smashed data, and
the mixup pairs of a helper as one batch; each client's optimizer then steps as on the per-client path
(``path=per-client``, the reference).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from pslsched.base.errors import InputError
from pslsched.base.registry import as_flag, as_number
from pslsched.training.strategies.base import (
    STRATEGIES,
    Contributions,
    Strategy,
    StrategySettings,
    load_state,
    parameters_of,
    step_optimizer,
)

CLIENT_PARTS = ("head", "tail", "decoder")
PATHS = ("batched", "per-client")


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
    per step on the gradient of the mean loss over its clients' samples (each client's mean weighted by its samples)
    plus the mix term. The per-client parts are model
    parts of their own (``c<j>.head``...), so a checkpoint keeps them between federations."""

    name = "locfedmix"
    sync = True

    def __init__(
        self,
        settings: StrategySettings | None = None,
        /,
        mix: str = "on",
        alpha: str = "2",
        loc: str = "on",
        beta: str = "0.1",
        fed: str = "1",
        path: str = "batched",
        **options: str,
    ):
        super().__init__(settings, **options)
        if path not in PATHS:
            raise InputError("--strategy.path", f"must be one of {', '.join(PATHS)}, got {path!r}")
        self.path = path
        self.batched_steps = path == "batched"  # the step executor may compute a step as one batch
        self.mix = as_flag("--strategy.mix", mix)
        self.loc = as_flag("--strategy.loc", loc)
        self.alpha = float(as_number("--strategy.alpha", alpha, low=0.0, low_open=True))
        self.beta = float(as_number("--strategy.beta", beta, low=0.0))
        self.fed = int(as_number("--strategy.fed", fed, integer=True, low=0))

    def setup(self, global_model, num_clients, num_helpers, **kw):
        super().setup(global_model, num_clients, num_helpers, **kw)
        if "decoder" not in global_model:
            with torch.no_grad():
                shape = global_model["head"](self.example).shape[1:]
            global_model["decoder"] = decoder(shape, tuple(self.example.shape[1:])).to(self.example.device)
        for j in range(num_clients):
            for p in CLIENT_PARTS:
                global_model.setdefault(f"c{j}.{p}", self.copy_part(p))
        self.bodies = [self.copy_part("body") for _ in range(num_helpers)]

    def client(self, j: int, part: str) -> nn.Module:
        return self.global_model[f"c{j}.{part}"]

    def load_copies(self, state):
        federated = self.fed > 0 and self.round % self.fed == 0  # the previous round ended with a FedAvg
        self.client_opt = {}
        for j in np.flatnonzero(self.assign >= 0):
            j = int(j)
            if federated or self.round == 0:
                for p in CLIENT_PARTS:
                    load_state(self.client(j, p), self.global_model[p].state_dict())
            self.client_opt[j] = self.optimizer.make(
                parameters_of(*(self.client(j, p) for p in CLIENT_PARTS))
            )
        self.body_opt = []
        for body in self.bodies:
            load_state(body, state["body"])
            self.body_opt.append(self.optimizer.make(parameters_of(body)))
        self.frozen_tail = {n: p.detach().clone() for n, p in self.global_model["tail"].named_parameters()}
        self.stash: dict[int, list] = {}
        self.step_samples = np.zeros(self.num_helpers)
        self.grad_sum: dict[int, dict[str, torch.Tensor]] = {}

    def evaluation_note(self) -> str | None:
        if self.fed == 1:
            return None
        every = "never federated" if self.fed == 0 else f"federated every {self.fed} rounds"
        return (
            f"the client parts are {every}: the test accuracy is that of their sample-weighted average, "
            "a model no client holds between federations"
        )

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
        # the body's gradient so far plus client j's mean-loss gradient: weigh the latter by its n samples, so that
        # at the step's end (divided by the step's samples) it is the gradient of the mean loss over its samples
        body = self.bodies[i]
        before = self.grad_sum.get(i, {})
        for name, p in body.named_parameters():
            if p.grad is not None:
                base = before.get(name)
                latest = p.grad - base if base is not None else p.grad.clone()
                p.grad.add_(latest, alpha=float(n) - 1.0)
        self.grad_sum[i] = {
            name: p.grad.detach().clone() for name, p in body.named_parameters() if p.grad is not None
        }
        self.step_samples[i] += n

    def head_backward(self, j, t, x, head_out, grad):
        if not self.loc:
            head_out.backward(grad)
            return
        recon = F.mse_loss(self.client(j, "decoder")(head_out), x)
        ((head_out * grad).sum() + self.beta * recon).backward()

    def after_head_bwd(self, j, t, n):
        super().after_head_bwd(j, t, n)
        step_optimizer(self.client_opt[j])

    def on_sync(self, t):
        for i, body in enumerate(self.bodies):
            if self.step_samples[i] == 0:
                continue
            for (
                p
            ) in body.parameters():  # the gradient of the mean loss over the step's samples on this helper
                if p.grad is not None:
                    p.grad.div_(self.step_samples[i])
            if self.mix and len(self.stash.get(i, [])) >= 2:
                self._mixup(i, t, body)
            step_optimizer(self.body_opt[i])
        self.stash.clear()
        self.grad_sum.clear()
        self.step_samples[:] = 0

    def _mixup(self, i: int, t: int, body: nn.Module) -> None:
        """Pairs of different clients' smashed data, mixed; the loss trains this body only."""
        if self.batched_steps:  # the same pairs and draws as one batch
            mixup_batched(self, i, t, body)
            return
        group = sorted(self.stash[i], key=lambda e: e[0])
        rng = np.random.default_rng([self.seed, self.round, t, i])
        order = rng.permutation(len(group))
        loss = 0.0
        for a, b in zip(order, np.roll(order, 1)):
            (_, sa, ya), (_, sb, yb) = group[a], group[b]
            m = min(len(ya), len(yb))
            lam = float(rng.beta(self.alpha, self.alpha))
            mixed = lam * sa[:m] + (1 - lam) * sb[:m]
            logits = torch.func.functional_call(self.global_model["tail"], self.frozen_tail, (body(mixed),))
            loss = loss + lam * F.cross_entropy(logits, ya[:m]) + (1 - lam) * F.cross_entropy(logits, yb[:m])
        (loss / len(group)).backward()

    def batched_step(self, t, clients, counts, x, y, plan_samples, send, broadcast, check) -> float:
        """Step t as one batch (``sync_batched.run_step``'s contract; LocFedMix has no broadcast)."""
        return batched_step(self, t, clients, counts, x, y, plan_samples, send, check)

    def split_contributions(self, members) -> Contributions:
        out: Contributions = {}
        for p in CLIENT_PARTS:
            out[p] = [
                (self.client(j, p).state_dict(), self.samples[j])
                for j in np.flatnonzero(self.assign >= 0)
                if int(j) in members
            ]
        out["body"] = [(b.state_dict(), self.body_samples[i]) for i, b in enumerate(self.bodies)]
        return out


def _stacked(s: LocFedMix, js: list[int]) -> dict[str, dict[str, torch.Tensor]]:
    """Clients ``js``' head, tail and decoder parameters, one row per client, as fresh leaves."""
    out = {}
    for part in CLIENT_PARTS:
        named = [dict(s.client(j, part).named_parameters()) for j in js]
        out[part] = {n: torch.stack([m[n].detach() for m in named]).requires_grad_(True) for n in named[0]}
    return out


def _vmapped(module: nn.Module) -> Callable:
    """``(stacked params, stacked inputs) -> stacked outputs`` of ``module``'s architecture."""
    return vmap(lambda params, inp: functional_call(module, params, (inp,)))


def batched_step(s: LocFedMix, t, clients, counts, x, y, plan_samples, send, check) -> float:
    """LocFedMix's step t of ``clients`` (sorted by helper, then index) as one batch; see the module docstring.

    The per-client arithmetic: client j's loss is its summed loss over ``loss_divisor`` (its samples); each body's
    gradient is the sum over its clients of ``n_j`` x the gradient of their mean loss (the per-client path's
    weighting: the cut-b gradient scaled by ``n_j`` for the bodies' parameters, unscaled for the cut-a gradient);
    with ``loc`` the head's backward adds ``beta`` x each client's reconstruction loss. Returns the summed loss."""
    js = [int(j) for j in clients]
    ns = [int(n) for n in counts]
    helpers = s.assign[clients]
    bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
    cuts = np.flatnonzero(np.diff(helpers)) + 1
    by_helper = [(int(helpers[a]), a, b) for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(js)])]
    by_count: dict[int, list[int]] = {}  # clients (rows of the batch) with the same count share a vmap call
    for q, n in enumerate(ns):
        by_count.setdefault(n, []).append(q)
    order = torch.as_tensor(
        [k for qs in by_count.values() for q in qs for k in range(bounds[q], bounds[q + 1])], dtype=torch.long
    )
    inv = torch.argsort(order)  # the batch (helper order) from the groups' layout
    glob = s.global_model
    stacks = [(n, qs, _stacked(s, [js[q] for q in qs])) for n, qs in by_count.items()]

    def per_group(fn: Callable, inp: torch.Tensor) -> list[torch.Tensor]:
        out, lo = [], 0
        for n, qs, st in stacks:
            out.append(fn(st, inp[lo : lo + n * len(qs)].reshape(len(qs), n, *inp.shape[1:])))
            lo += n * len(qs)
        return out

    def flat(parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([p.reshape(-1, *p.shape[2:]) for p in parts])

    x_groups = x[order]
    head_groups = per_group(lambda st, inp: _vmapped(glob["head"])(st["head"], inp), x_groups)
    head_out = flat(head_groups)[inv]
    sent_a = send(head_out, "a").requires_grad_(True)
    outs = []
    for i, a, b in by_helper:
        outs.append(s.body(js[a], i)(sent_a[bounds[a] : bounds[b]]))
        for q in range(a, b):
            lo, hi = bounds[q], bounds[q + 1]
            s.after_body_fwd(js[q], i, t, sent_a[lo:hi], y[lo:hi])
    body_out = outs[0] if len(outs) == 1 else torch.cat(outs)
    recv_b = send(body_out, "b").requires_grad_(True)
    logits = flat(per_group(lambda st, inp: _vmapped(glob["tail"])(st["tail"], inp), recv_b[order]))[inv]
    per_sample = F.cross_entropy(logits, y, reduction="none")
    seg = torch.repeat_interleave(torch.arange(len(js)), torch.as_tensor(counts, dtype=torch.long))
    losses = torch.zeros(len(js), dtype=per_sample.dtype).index_add_(0, seg, per_sample.detach())
    values = losses.numpy().astype(float)
    check(values)
    divisors = torch.as_tensor([s.loss_divisor(j, t, n, plan_samples) for j, n in zip(js, ns)])
    (per_sample / divisors.to(per_sample.dtype)[seg]).sum().backward()

    grad_b = send(recv_b.grad, "grad")
    # the cut-a gradient of each client's own loss, then the bodies' parameters from the n_j-weighted one
    grad_a = send(torch.autograd.grad(body_out, sent_a, grad_b, retain_graph=True)[0], "grad")
    weight = torch.as_tensor(ns, dtype=grad_b.dtype)[seg].reshape(-1, *([1] * (grad_b.dim() - 1)))
    inputs = [p for i, _, _ in by_helper for p in s.body(js[0], i).parameters() if p.requires_grad]
    body_out.backward(grad_b * weight, inputs=inputs)
    head_loss = (head_out * grad_a).sum()
    if s.loc:
        recon = per_group(lambda st, h: _vmapped(glob["decoder"])(st["decoder"], h), flat(head_groups))
        for (n, qs, _), out, lo in zip(stacks, recon, _offsets(stacks)):
            target = x_groups[lo : lo + n * len(qs)].reshape(out.shape)
            mse = ((out - target) ** 2).reshape(len(qs), -1).mean(dim=1)  # F.mse_loss of each client
            head_loss = head_loss + s.beta * mse.sum()
    head_loss.backward()

    for i, a, b in by_helper:
        for q in range(a, b):
            Strategy.after_body_bwd(s, js[q], i, t, ns[q])
            s.step_samples[i] += ns[q]
    for _, qs, st in stacks:
        for row, q in enumerate(qs):
            j = js[q]
            for part in CLIENT_PARTS:
                for name, p in s.client(j, part).named_parameters():
                    g = st[part][name].grad
                    p.grad = None if g is None else g[row].clone()
            s.after_head_bwd(j, t, ns[q])  # the client's optimizer steps
    return float(values.sum())


def _offsets(stacks: list) -> list[int]:
    """Where each count group starts in the groups' layout."""
    out, lo = [], 0
    for n, qs, _ in stacks:
        out.append(lo)
        lo += n * len(qs)
    return out


def mixup_batched(s: LocFedMix, i: int, t: int, body: nn.Module) -> None:
    """``LocFedMix._mixup`` as one batch: the same pairs and draws, every pair's mixed samples through the body and
    the frozen tail at once, each pair's two mean losses as per-sample weights."""
    group = sorted(s.stash[i], key=lambda e: e[0])
    rng = np.random.default_rng([s.seed, s.round, t, i])
    order = rng.permutation(len(group))
    mixed, ya, yb, wa, wb = [], [], [], [], []
    for a, b in zip(order, np.roll(order, 1)):
        (_, sa, ya_), (_, sb, yb_) = group[a], group[b]
        m = min(len(ya_), len(yb_))
        lam = float(rng.beta(s.alpha, s.alpha))
        mixed.append(lam * sa[:m] + (1 - lam) * sb[:m])
        ya.append(ya_[:m])
        yb.append(yb_[:m])
        wa.append(torch.full((m,), lam / m))
        wb.append(torch.full((m,), (1 - lam) / m))
    logits = functional_call(s.global_model["tail"], s.frozen_tail, (body(torch.cat(mixed)),))
    loss = (F.cross_entropy(logits, torch.cat(ya), reduction="none") * torch.cat(wa)).sum()
    loss = loss + (F.cross_entropy(logits, torch.cat(yb), reduction="none") * torch.cat(wb)).sum()
    (loss / len(group)).backward()


def decoder(smashed: torch.Size, image: tuple[int, ...]) -> nn.Module:
    """A small decoder from the smashed data back to the input (Loc's reconstruction loss)."""
    c, h, w = image
    if len(smashed) == 3:
        return nn.Sequential(nn.Upsample(size=(h, w)), nn.Conv2d(smashed[0], c, 3, padding=1))
    return nn.Sequential(
        nn.Flatten(), nn.Linear(int(torch.Size(smashed).numel()), c * h * w), nn.Unflatten(1, image)
    )
