"""Batched SplitFed V1: a whole round of every client at once with ``torch.func`` (``splitfed1:batched=true``).

Within a SplitFed V1 round the clients are independent (each has its own head, body and tail copy and its own
optimizers), so the round needs no event order: ``BatchedRound`` is the strategy's ``precompute`` hook
(``pslsched.training.executor.TrainingHooks.begin_round`` calls it; the steps then only advance the clock). It

* stacks the copies of the clients that train this round (one row per client, what
  ``torch.func.stack_module_state`` builds, from parameter lists cached across rounds); head + body + tail run as
  one chain, since with the cuts detached the three backward passes give exactly the gradient of the chain's loss;
* runs the plan step by step; in step t the clients that take part are grouped by their sample count (and, for
  Adam, by the number of steps they have taken), and each group's forward + backward is one
  ``vmap(grad_and_value(...))`` over ``functional_call``; clients that sit a step out keep their parameters and
  optimizer state;
* applies functional SGD (momentum, weight decay, as ``torch.optim.SGD`` with dampening 0, no Nesterov) or Adam
  (as ``torch.optim.Adam`` with the default betas and eps), on the stacked rows; the per-client path's body step
  and client step are one step of the same elementwise rule, so they are taken together;
* writes each client's final parameters back into its copies and counts its samples (``samples``,
  ``body_samples``), so ``end_round``'s FedAvg is the unchanged per-client one.

Local clients (``assign[j] < 0``, the full model on the client) train the same chain with the same loss and one
optimizer over all parts: they are batched with the split clients and written back into ``local_models``.

Equality: the optimizer updates are torch's own arithmetic (bit-equal given the same gradients) and linear layers
run the same kernels batched (the ``mlp`` trained bit-identically in the tests). Convolutions run as grouped
convolutions whose bias (and single-input-channel weight) gradients are reduced in another order, ~1e-8 apart per
step. Usually the final models then agree to ~1e-7..1e-6; but training can amplify rounding (Adam's first steps on
near-zero gradients, ReLU / max-pool ties), and then the per-client path itself moves as far between 1 and 2 torch
threads (e.g. cnn, digits, Adam lr 0.01: ~1e-2 after 3 rounds, either way).

Speed: the gain is the per-client overhead (Python, module calls, one optimizer step per client and step); the
arithmetic is the same. Small inputs (8x8 digits) gain ~2-3x; compute-bound convolutions (28x28 MNIST) gain
little or nothing on CPU, where a grouped convolution is no faster than the clients' convolutions one by one. Many
distinct batch sizes in one step (global samplers) mean many small groups. Memory: the stacked rows, their
gradients and optimizer state come on top of the per-client copies (which are kept for FedAvg).

Semantics left to the hooks' precompute contract: a non-finite loss raises ``Diverged`` for the earliest step and,
within it, the lowest client index (the per-step path names the client whose tail ran first); the round's
training loss counts every planned step, also those of clients the engine later drops or times out (their models
are still left out of FedAvg); with ``clock: measured`` the steps measure nothing (the hooks skip them), so the
profile's durations are used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from pslsched.training.errors import Diverged

if TYPE_CHECKING:
    from pslsched.training.strategies.splitfed import SplitFedV1

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
# elements of the input of one vmap call (clients x samples x C x H x W): larger groups run in chunks of clients,
# which keeps the activations in cache (cnn on 28x28 MNIST, batch 16: chunks of 20 clients were fastest, one call
# of 100 clients ~2x slower; on 8x8 digits, 256 clients per call)
MAX_CALL_ELEMENTS = 2**18


class _Chain(nn.Module):
    """head -> body -> tail as one module (the parts are shared, not copied)."""

    def __init__(self, head: nn.Module, body: nn.Module, tail: nn.Module):
        super().__init__()
        self.head, self.body, self.tail = head, body, tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))


class BatchedRound:
    """``precompute(plan, batch, r, client_names) -> (loss_sum, loss_samples)`` for a ``SplitFedV1`` strategy."""

    def __init__(self, strategy: SplitFedV1):
        self.strategy = strategy
        self._grad_fn: Callable | None = None
        self._names: list[str] = []
        # (client, local) -> (its head/body/tail modules, their trainable tensors in ``_names`` order)
        self._tensors: dict[tuple[int, bool], tuple[tuple[nn.Module, ...], list[torch.Tensor]]] = {}

    # --- the functional model -----------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """The chain ``functional_call`` runs (the global model's modules: their own tensors are swapped out)."""
        if self._grad_fn is not None:
            return
        glob = self.strategy.global_model
        template = _Chain(glob["head"], glob["body"], glob["tail"])
        self._names = [n for n, p in template.named_parameters() if p.requires_grad]

        def loss(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
            total = F.cross_entropy(functional_call(template, params, (x,), strict=False), y, reduction="sum")
            return total / float(x.shape[0]), total

        self._grad_fn = vmap(grad_and_value(loss, has_aux=True))

    def _client_tensors(self, j: int, local: bool) -> list[torch.Tensor]:
        """Client j's trainable parameters (its copies persist across rounds, so the lists are cached)."""
        s = self.strategy
        parts = s.local_models[j] if local else s.parts[j]
        modules = (parts["head"], parts["body"], parts["tail"])
        hit = self._tensors.get((j, local))
        if hit is None or any(a is not b for a, b in zip(hit[0], modules)):
            named = dict(_Chain(*modules).named_parameters())
            hit = (modules, [named[n] for n in self._names])
            self._tensors[(j, local)] = hit
        return hit[1]

    # --- the round ----------------------------------------------------------------------------------------------
    def __call__(self, plan, batch, r: int, client_names: list[str]) -> tuple[float, int]:
        s = self.strategy
        opt = s.optimizer
        if opt.name not in ("sgd", "adam"):
            raise ValueError(f"batched splitfed1 supports sgd and adam, not {opt.name!r}")
        self._prepare()
        samples = np.asarray(plan.samples, dtype=np.int64)
        assign = np.asarray(s.assign)
        clients = np.flatnonzero(samples.any(axis=0))
        if not len(clients):
            return 0.0, 0
        tensors = [self._client_tensors(int(j), bool(assign[j] < 0)) for j in clients]
        with torch.no_grad():  # one row per client (what torch.func.stack_module_state builds)
            params = {n: torch.stack([ts[i] for ts in tensors]) for i, n in enumerate(self._names)}
        adam = opt.name == "adam"
        state: dict[str, dict[str, torch.Tensor]] = {}
        if adam:
            state = {
                "exp_avg": {n: torch.zeros_like(p) for n, p in params.items()},
                "exp_avg_sq": {n: torch.zeros_like(p) for n, p in params.items()},
            }
        elif opt.momentum != 0:
            state = {"momentum": {n: torch.zeros_like(p) for n, p in params.items()}}
        rows = len(clients)
        taken = np.zeros(rows, dtype=np.int64)  # optimizer steps each row has taken
        loss_sum, loss_samples = 0.0, 0
        for t in range(samples.shape[0]):
            counts = samples[t, clients]
            groups: dict[tuple[int, int], list[int]] = {}
            for q in np.flatnonzero(counts > 0):
                key = (int(counts[q]), int(taken[q]) if adam else 0)
                groups.setdefault(key, []).append(int(q))
            work = []
            for (n, _), members in groups.items():
                xs, ys = zip(*(batch(int(clients[q]), t) for q in members))
                x, y = torch.stack(xs), torch.stack(ys)
                chunk = max(1, MAX_CALL_ELEMENTS // max(1, x[0].numel()))
                for c in range(0, len(members), chunk):
                    sub = members[c : c + chunk]
                    idx = None if len(sub) == rows else torch.as_tensor(sub, dtype=torch.long)
                    p = params if idx is None else {k: v.index_select(0, idx) for k, v in params.items()}
                    grads, (_, totals) = self._grad_fn(p, x[c : c + chunk], y[c : c + chunk])
                    work.append((n, sub, idx, p, grads, totals.detach().tolist()))
            # a non-finite loss stops the run before anything steps: the earliest step, the lowest client
            bad = [(q, v) for _, sub, _, _, _, vs in work for q, v in zip(sub, vs) if not np.isfinite(v)]
            if bad:
                q, v = min(bad)
                raise Diverged.at(r, t, client_names[int(clients[q])], v)
            for n, sub, idx, p, grads, values in work:
                loss_sum += sum(values)
                loss_samples += n * len(sub)
                st = {
                    k: d if idx is None else {m: d[m].index_select(0, idx) for m in d}
                    for k, d in state.items()
                }
                with torch.no_grad():
                    if adam:
                        _adam(p, grads, st, int(taken[sub[0]]) + 1, opt.lr, opt.weight_decay)
                    else:
                        _sgd(p, grads, st, opt.lr, opt.momentum, opt.weight_decay)
                    if idx is not None:
                        for k in params:
                            params[k].index_copy_(0, idx, p[k])
                        for key, d in st.items():
                            for k in d:
                                state[key][k].index_copy_(0, idx, d[k])
                taken[sub] += 1
                js = clients[sub]
                np.add.at(s.samples, js, n)
                helpers = assign[js]
                np.add.at(s.body_samples, helpers[helpers >= 0], n)
        with torch.no_grad():  # the final rows back into the clients' copies, for end_round's FedAvg
            for i, n in enumerate(self._names):
                torch._foreach_copy_([ts[i] for ts in tensors], list(params[n].unbind(0)))
        return loss_sum, loss_samples


def _sgd(params, grads, state, lr: float, momentum: float, weight_decay: float) -> None:
    """``torch.optim.SGD.step`` (dampening 0, no Nesterov) on stacked rows, in place.

    A zero momentum buffer gives ``0 * momentum + grad = grad``, exactly SGD's first step (buffer = grad).
    """
    for name, p in params.items():
        g = grads[name]
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        if momentum != 0:
            buf = state["momentum"][name]
            buf.mul_(momentum).add_(g)
            g = buf
        p.add_(g, alpha=-lr)


def _adam(params, grads, state, step: int, lr: float, weight_decay: float) -> None:
    """``torch.optim.Adam.step`` (default betas and eps, no amsgrad) on stacked rows that all take step ``step``."""
    beta1, beta2 = ADAM_BETAS
    step_f = float(step)
    bias_correction1 = 1 - beta1**step_f
    bias_correction2 = 1 - beta2**step_f
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    for name, p in params.items():
        g = grads[name]
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        exp_avg, exp_avg_sq = state["exp_avg"][name], state["exp_avg_sq"][name]
        exp_avg.lerp_(g, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(ADAM_EPS)
        p.addcdiv_(exp_avg, denom, value=-step_size)
