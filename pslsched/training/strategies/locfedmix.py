"""LocFedMix-SL (Oh et al., algorithms.md B3): synchronous steps, one body per helper, a head + tail per client.

(Mix) at each step's end the helper adds mixup samples built from the smashed data of pairs of different clients
(``lambda ~ Beta(alpha, alpha)``, labels mixed alike) that train only the body; (Loc) each client has a small
decoder reconstructing its input from its smashed data and adds ``beta`` x that loss to the gradient it received;
(Fed) client parts and decoders are FedAvg'd every ``fed`` rounds (0: never). Each part can be switched off
(``mix=0``, ``loc=0``, ``fed=0``): the ablation the paper runs.

``path=batched`` (the default) holds the clients' heads, tails and decoders as stacked rows with a stacked
optimizer state and computes each synchronous step at its barrier as one batch (``locfedmix_rows``); the
per-client path (``path=per-client``, the reference) holds a module copy of each part and a ``torch.optim``
optimizer per client.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
from pslsched.training.strategies.locfedmix_rows import ClientRows, RowOptimizer, batched_step, mixup_rows

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
    plus the mix term. The per-client parts are model parts of their own (per-client path: ``c<j>.head``...;
    batched: the stacked rows ``clients``), so a checkpoint keeps them between federations."""

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
        if self.batched_steps:  # every client's parts as stacked rows, no module copies (locfedmix_rows)
            if "clients" not in global_model:
                templates = {p: global_model[p] for p in CLIENT_PARTS}
                global_model["clients"] = ClientRows(templates, num_clients)
            self.rows: ClientRows = global_model["clients"]
            self.row_opt = RowOptimizer(self.optimizer, self.rows, num_clients)
            self.live: dict[int, dict[str, nn.Module]] = {}  # clients replayed step by step: their modules
        else:
            for j in range(num_clients):
                for p in CLIENT_PARTS:
                    global_model.setdefault(f"c{j}.{p}", self.copy_part(p))
        self.bodies = [self.copy_part("body") for _ in range(num_helpers)]

    def client(self, j: int, part: str) -> nn.Module:
        """Client j's ``part`` (batched path: modules made from its rows for a step replayed client by client)."""
        if not self.batched_steps:
            return self.global_model[f"c{j}.{part}"]
        if j not in self.live:
            modules = {p: copy.deepcopy(self.global_model[p]) for p in CLIENT_PARTS}
            with torch.no_grad():
                for p, m in modules.items():
                    for n, q in m.named_parameters():
                        q.copy_(self.rows.row(p, n)[j])
                        q.grad = None
            self.live[j] = modules
        return self.live[j][part]

    def load_copies(self, state):
        federated = self.fed > 0 and self.round % self.fed == 0  # the previous round ended with a FedAvg
        self.client_opt = {}
        split = np.flatnonzero(self.assign >= 0)
        if self.batched_steps:
            if (federated or self.round == 0) and len(split):
                named = {p: dict(self.global_model[p].named_parameters()) for p in CLIENT_PARTS}
                self.rows.load(split, named)
            self.row_opt.reset()  # fresh optimizers, as the per-client path makes them
            self.live.clear()
            split = split[:0]
        for j in split:
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
        if not self.batched_steps:
            step_optimizer(self.client_opt[j])
            return
        # a step replayed client by client on the batched path: the row optimizer's step from its modules
        modules = self.live.pop(j)
        params = {p: dict(m.named_parameters()) for p, m in modules.items()}
        gathered = {p: {n: q.detach().unsqueeze(0) for n, q in named.items()} for p, named in params.items()}
        for p, named in params.items():
            for n, q in named.items():
                gathered[p][n].grad = None if q.grad is None else q.grad.unsqueeze(0)
        self.row_opt.step(np.array([j]), gathered)

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
            mixup_rows(self, i, t, body)
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
        if self.batched_steps:
            return self._row_contributions(members)
        out: Contributions = {}
        for p in CLIENT_PARTS:
            out[p] = [
                (self.client(j, p).state_dict(), self.samples[j])
                for j in np.flatnonzero(self.assign >= 0)
                if int(j) in members
            ]
        out["body"] = [(b.state_dict(), self.body_samples[i]) for i, b in enumerate(self.bodies)]
        return out

    def _row_contributions(self, members) -> Contributions:
        """The members' rows averaged by samples as one contribution per part (FedAvg of an average: the same
        weighted mean, in float64), with their total samples."""
        weights = np.zeros(self.num_clients)
        split = [int(j) for j in np.flatnonzero(self.assign >= 0) if int(j) in members]
        weights[split] = self.samples[split]
        out: Contributions = {p: [] for p in CLIENT_PARTS}
        if weights.sum() > 0:
            avg = self.rows.average(weights)
            for p in CLIENT_PARTS:
                out[p].append((avg[p], float(weights.sum())))
        out["body"] = [(b.state_dict(), self.body_samples[i]) for i, b in enumerate(self.bodies)]
        return out


def decoder(smashed: torch.Size, image: tuple[int, ...]) -> nn.Module:
    """A small decoder from the smashed data back to the input (Loc's reconstruction loss)."""
    c, h, w = image
    if len(smashed) == 3:
        return nn.Sequential(nn.Upsample(size=(h, w)), nn.Conv2d(smashed[0], c, 3, padding=1))
    return nn.Sequential(
        nn.Flatten(), nn.Linear(int(torch.Size(smashed).numel()), c * h * w), nn.Unflatten(1, image)
    )


def client_parameters(parts: dict[str, nn.Module], j: int) -> dict[str, torch.Tensor]:
    """Client j's head, tail and decoder parameters (``"head.<name>"``...) from a run's model parts, whichever
    layout holds them (``c<j>.<part>`` modules on the per-client path, the stacked rows ``clients`` on the batched)."""
    if "clients" in parts:
        rows = parts["clients"]
        return {f"{p}.{n}": rows.row(p, n)[j] for p, n in rows.keys()}
    return {f"{p}.{n}": q for p in CLIENT_PARTS for n, q in parts[f"c{j}.{p}"].named_parameters()}
