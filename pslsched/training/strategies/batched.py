"""Batched SplitFed V1: a whole round of every client at once with ``torch.func`` (``splitfed1:batched=true``).

Within a SplitFed V1 round the clients are independent (each has its own head, body and tail and its own
optimizers), so the round needs no event order: ``BatchedRound`` is the strategy's ``precompute`` hook
(``pslsched.training.executor.TrainingHooks.begin_round`` calls it; the steps then only advance the clock). No client
has module copies or ``torch.optim`` optimizers on this path (``SplitFedV1.begin_round`` makes none). The round

* holds every training client's parameters as **stacked rows**: one tensor per parameter of the chain head + body +
  tail with a leading client dimension (``rows``, ``clients``: the row's client), every row starting from the
  global model; the chain runs as one module, since with the cuts detached the three backward passes give exactly
  the gradient of the chain's loss. Rows are ordered by the clients' counts step by step, so that the clients of a
  count group are mostly consecutive rows (stepped in place as views; others are gathered and written back);
* trains the rows in chunks of at most ``MAX_ROW_ELEMENTS`` parameters (rows x parameters a client), each chunk
  through all the round's steps with its own optimizer state, so that the state and gradients do not grow with K:
  at K = 10,000 only the rows themselves (K x parameters, float32) are held through the round;
* in step t groups a chunk's clients that take part by their sample count (and, for Adam, by the number of steps
  they have taken), and each group's forward + backward is one ``vmap(grad_and_value(...))`` over
  ``functional_call``; clients that sit a step out keep their parameters and optimizer state;
* applies functional SGD (momentum, weight decay, as ``torch.optim.SGD`` with dampening 0, no Nesterov) or Adam
  (as ``torch.optim.Adam`` with the default betas and eps), on the stacked rows; the per-client path's body step
  and client step are one step of the same elementwise rule, so they are taken together;
* counts the clients' samples (``samples``, ``body_samples``); at the round's end ``average`` is FedAvg: per
  parameter one float64 weighted reduction (``weights @ rows``, blocks of ``AVERAGE_ROWS`` rows) over the rows of
  the clients that finished, weighted by their samples, written into the global model; the rows are then freed.
  ``base.weighted_average`` sums the same float64 products client by client: another summation order, ~1e-16
  relative before the cast to float32 (at most one float32 ulp apart, where the float64 sum lies on a rounding
  boundary).

Local clients (``assign[j] < 0``, the full model on the client) train the same chain with the same loss and one
optimizer over all parts: they are rows like the split clients' (FedAvg weighs every part by the client's samples
in both cases).

Equality: the optimizer updates are torch's own arithmetic (bit-equal given the same gradients) and linear layers
run the same kernels batched (the ``mlp`` trained bit-identically in the tests). Convolutions run as grouped
convolutions whose bias (and single-input-channel weight) gradients are reduced in another order, ~1e-8 apart per
step. Usually the final models then agree to ~1e-7..1e-6; but training can amplify rounding (Adam's first steps on
near-zero gradients, ReLU / max-pool ties), and then the per-client path itself moves as far between 1 and 2 torch
threads (e.g. cnn, digits, Adam lr 0.01: ~1e-2 after 3 rounds, either way).

Speed: the gain is the per-client overhead (Python, module calls, one optimizer step per client and step); the
arithmetic is the same. Small inputs (8x8 digits) gain ~2-3x; compute-bound convolutions (28x28 MNIST) gain
little or nothing on CPU, where a grouped convolution is no faster than the clients' convolutions one by one. Many
distinct batch sizes in one step (global samplers) mean many small groups. Memory: K rows of the chain's
parameters (``cnn``: 47,530 floats a client, 1.9 GB at K = 10,000) plus one chunk's gradients and optimizer state
and the activations of one vmap call (``benchmarks/RESULTS.md``).

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
# parameters of the clients trained together through the round (rows x parameters per client): their optimizer
# state is allocated per chunk of rows, so that it does not grow with K (the rows themselves are kept for FedAvg)
MAX_ROW_ELEMENTS = 2**24
AVERAGE_ROWS = 1024  # rows converted to float64 at a time by FedAvg


class _Chain(nn.Module):
    """head -> body -> tail as one module (the parts are shared, not copied)."""

    def __init__(self, head: nn.Module, body: nn.Module, tail: nn.Module):
        super().__init__()
        self.head, self.body, self.tail = head, body, tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))


class BatchedRound:
    """``precompute(plan, batch, r, client_names) -> (loss_sum, loss_samples)`` for a ``SplitFedV1`` strategy, and
    ``average(members)``, the round's FedAvg into the global model."""

    def __init__(self, strategy: SplitFedV1):
        self.strategy = strategy
        self._grad_fn: Callable | None = None
        self._names: list[str] = []
        self._globals: list[torch.Tensor] = []  # the global model's parameters, in ``_names`` order
        # the round's clients (row order) and their parameters: name -> (rows, *shape)
        self.clients = np.zeros(0, dtype=np.int64)
        self.rows: dict[str, torch.Tensor] = {}

    # --- the functional model -----------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """The chain ``functional_call`` runs (the global model's modules: their own tensors are swapped out)."""
        if self._grad_fn is not None:
            return
        glob = self.strategy.global_model
        template = _Chain(glob["head"], glob["body"], glob["tail"])
        named = [(n, p) for n, p in template.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self._globals = [p for _, p in named]

        def loss(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
            total = F.cross_entropy(functional_call(template, params, (x,), strict=False), y, reduction="sum")
            return total / float(x.shape[0]), total

        self._grad_fn = vmap(grad_and_value(loss, has_aux=True))

    # --- the round ----------------------------------------------------------------------------------------------
    def __call__(self, plan, batch, r: int, client_names: list[str]) -> tuple[float, int]:
        s = self.strategy
        if s.optimizer.name not in ("sgd", "adam"):
            raise ValueError(f"batched splitfed1 supports sgd and adam, not {s.optimizer.name!r}")
        self._prepare()
        samples = np.asarray(plan.samples, dtype=np.int64)
        clients = np.flatnonzero(samples.any(axis=0))
        # rows ordered by the clients' sample counts, step by step (ties: by index), so that the clients of a
        # count group are mostly consecutive rows: views of the stacked parameters instead of gathered copies
        clients = clients[np.lexsort(samples[::-1][:, clients])] if len(clients) else clients
        self.clients = clients
        with torch.no_grad():  # every row starts from the global model
            self.rows = {
                n: g.detach().unsqueeze(0).expand(len(clients), *g.shape).clone()
                for n, g in zip(self._names, self._globals)
            }
        loss_sum, loss_samples = 0.0, 0
        worst: tuple[int, int, float] | None = (
            None  # the earliest step's lowest client with a non-finite loss
        )
        chunk = max(1, MAX_ROW_ELEMENTS // max(1, sum(g.numel() for g in self._globals)))
        for c0 in range(0, len(clients), chunk):
            rows = np.arange(c0, min(c0 + chunk, len(clients)))
            last = samples.shape[0] - 1 if worst is None else worst[0]
            ls, n, bad = self._run_rows(rows, samples[: last + 1], batch)
            loss_sum += ls
            loss_samples += n
            if bad is not None and (worst is None or bad[:2] < worst[:2]):
                worst = bad
        if worst is not None:
            t, j, v = worst
            raise Diverged.at(r, t, client_names[j], v)
        return loss_sum, loss_samples

    def _run_rows(self, rows: np.ndarray, samples: np.ndarray, batch) -> tuple[float, int, tuple | None]:
        """Train the clients of ``rows`` (consecutive) through the round's steps; stop after the first step in
        which one of them has a non-finite loss, and return it (step, lowest client, loss)."""
        s = self.strategy
        opt = s.optimizer
        adam = opt.name == "adam"
        assign = np.asarray(s.assign)
        base = int(rows[0])
        clients = self.clients[rows]
        params = {k: v[base : base + len(rows)] for k, v in self.rows.items()}  # views: stepped in place
        state: dict[str, dict[str, torch.Tensor]] = {}
        if adam:
            state = {
                key: {k: torch.zeros_like(v) for k, v in params.items()} for key in ("exp_avg", "exp_avg_sq")
            }
        elif opt.momentum != 0:
            state = {"momentum": {k: torch.zeros_like(v) for k, v in params.items()}}
        taken = np.zeros(len(rows), dtype=np.int64)  # optimizer steps each row has taken
        loss_sum, loss_samples = 0.0, 0
        for t in range(samples.shape[0]):
            counts = samples[t, clients]
            groups: dict[tuple[int, int], list[int]] = {}
            for q in np.flatnonzero(counts > 0):
                groups.setdefault((int(counts[q]), int(taken[q]) if adam else 0), []).append(int(q))
            bad = []
            for (n, _), members in groups.items():
                xs, ys = zip(*(batch(int(clients[q]), t) for q in members))
                x, y = torch.stack(xs), torch.stack(ys)
                call = max(1, MAX_CALL_ELEMENTS // max(1, x[0].numel()))
                for c in range(0, len(members), call):
                    sub = members[c : c + call]
                    p, st, put_back = _select(params, state, sub)
                    grads, (_, totals) = self._grad_fn(p, x[c : c + call], y[c : c + call])
                    values = totals.detach().tolist()
                    bad += [(int(clients[q]), v) for q, v in zip(sub, values) if not np.isfinite(v)]
                    with torch.no_grad():
                        if adam:
                            _adam(p, grads, st, int(taken[sub[0]]) + 1, opt.lr, opt.weight_decay)
                        else:
                            _sgd(p, grads, st, opt.lr, opt.momentum, opt.weight_decay)
                        put_back()
                    loss_sum += sum(values)
                    loss_samples += n * len(sub)
                    taken[sub] += 1
                    js = clients[sub]
                    np.add.at(s.samples, js, n)
                    helpers = assign[js]
                    np.add.at(s.body_samples, helpers[helpers >= 0], n)
            if bad:
                j, v = min(bad)
                return loss_sum, loss_samples, (t, j, v)
        return loss_sum, loss_samples, None

    # --- the round's end ----------------------------------------------------------------------------------------
    def average(self, members) -> None:
        """FedAvg of the rows of the clients in ``members`` (weighted by their samples) into the global model, as
        one float64 reduction per parameter (``base.weighted_average``'s arithmetic, summed in another order)."""
        s = self.strategy
        done = np.isin(self.clients, np.fromiter(members, dtype=np.int64))
        weights = s.samples[self.clients] * done
        keep = np.flatnonzero(weights > 0)
        if len(keep):
            w = torch.from_numpy(weights[keep] / float(weights[keep].sum()))
            every = len(keep) == len(self.clients)
            with torch.no_grad():
                for name, g in zip(self._names, self._globals):
                    acc = torch.zeros(g.numel(), dtype=torch.float64)
                    flat = self.rows[name].reshape(len(self.clients), -1)
                    for c in range(0, len(keep), AVERAGE_ROWS):
                        part = keep[c : c + AVERAGE_ROWS]
                        block = flat[part[0] : part[-1] + 1] if every else flat[torch.from_numpy(part)]
                        acc += w[c : c + AVERAGE_ROWS] @ block.to(torch.float64)
                    g.copy_(acc.view(g.shape).to(g.dtype))
                    g.grad = None
        self.rows, self.clients = {}, np.zeros(0, dtype=np.int64)


def _select(params, state, sub: list[int]):
    """The rows ``sub`` (ascending) of the chunk's parameters and optimizer state: views when they are consecutive
    (stepped in place), gathered copies otherwise; and what writes the copies back."""
    if sub[-1] - sub[0] + 1 == len(sub):
        lo, hi = sub[0], sub[-1] + 1
        p = {k: v[lo:hi] for k, v in params.items()}
        st = {key: {k: v[lo:hi] for k, v in d.items()} for key, d in state.items()}
        return p, st, lambda: None
    idx = torch.as_tensor(sub, dtype=torch.long)
    p = {k: v.index_select(0, idx) for k, v in params.items()}
    st = {key: {k: v.index_select(0, idx) for k, v in d.items()} for key, d in state.items()}

    def put_back() -> None:
        for k in params:
            params[k].index_copy_(0, idx, p[k])
        for key, d in st.items():
            for k in d:
                state[key][k].index_copy_(0, idx, d[k])

    return p, st, put_back


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
