"""LocFedMix's clients as stacked rows (``locfedmix:path=batched``): every client's head, tail and decoder in one tensor.

On the batched path no client has module copies or a ``torch.optim`` optimizer (at K = 10,000 that was 30,000
modules and 10,000 optimizers a round). ``ClientRows`` holds, per parameter of the head, the tail and the decoder,
one tensor with a leading client dimension (a model part of the run, ``parts["clients"]``, so a checkpoint keeps
the clients between federations); ``RowOptimizer`` is the clients' optimizer over those rows: its state (Adam's
moments, SGD's momentum) is stacked the same way, with the number of steps each client has taken, fresh every
round as the per-client path's optimizers are. A step (``batched_step``):

* gathers its participants' rows (one ``index_select`` per parameter and group of equal sample counts), runs the
  heads, tails and decoders over their stacked rows (``stacked.stacked_call``: vmap's arithmetic with cheaper
  convolutions), each helper's body over its clients' concatenated smashed data, the per-client path's losses and
  weights; the bodies' backward is one pass when every count is a power of two (``_body_backward``);
* steps the gathered rows with ``RowOptimizer.step``, ``torch.optim.Adam``'s / ``SGD``'s elementwise rule with
  each row's own step count (the bias corrections a column), and scatters rows and state back
  (``index_copy_``);
* computes the helpers' mixup pairs (``mixup_rows``) as one batch per helper, the pairs and draws of
  ``LocFedMix._mixup``'s loop (the Beta draws taken as one vector: numpy draws them in the loop's order).

A step that is replayed client after client (a dropout mid-step, a round timeout; ``executor``) materialises the
client's modules from its row for that step (``LocFedMix.client``), and its update is the same ``RowOptimizer``
step on its row.

Equality with the per-client path (modules and ``torch.optim``): the forward and backward arithmetic as
``batched_step`` on modules (reductions over clients in the batched kernels' order), the optimizer's elementwise
operations in torch's order with the scalars as columns of the same values; tested in float64 to 1e-12.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from pslsched.training.strategies.base import OptimizerSpec
from pslsched.training.strategies.stacked import stacked_call

if TYPE_CHECKING:
    from pslsched.training.strategies.locfedmix import LocFedMix

ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults (what OptimizerSpec.make uses)
ADAM_EPS = 1e-8


def _key(name: str) -> str:
    return name.replace(".", "__")


class ClientRows(nn.Module):
    """Every client's copy of the parts ``templates`` (head, tail, decoder) as stacked parameters (no gradient):
    ``row(part, name)`` is the ``(clients, *shape)`` tensor of the part's parameter ``name``."""

    def __init__(self, templates: dict[str, nn.Module], clients: int):
        super().__init__()
        self.names = {part: [n for n, _ in m.named_parameters()] for part, m in templates.items()}
        for part, m in templates.items():
            holder = nn.Module()
            for n, p in m.named_parameters():
                rows = p.detach().unsqueeze(0).expand(clients, *p.shape).clone()
                holder.register_parameter(_key(n), nn.Parameter(rows, requires_grad=False))
            self.add_module(part, holder)

    def row(self, part: str, name: str) -> torch.Tensor:
        """The stacked rows of ``part``'s parameter ``name``."""
        return getattr(getattr(self, part), _key(name))

    def keys(self) -> list[tuple[str, str]]:
        """Every (part, parameter name)."""
        return [(part, n) for part, names in self.names.items() for n in names]

    def load(self, clients: np.ndarray, state: dict[str, dict[str, torch.Tensor]]) -> None:
        """Rows ``clients`` := the parts' ``state`` (each part's parameters by name)."""
        idx = torch.as_tensor(clients, dtype=torch.long)
        with torch.no_grad():
            for part, n in self.keys():
                rows = self.row(part, n)
                rows.index_copy_(
                    0, idx, state[part][n].to(rows.dtype).unsqueeze(0).expand(len(idx), *rows.shape[1:])
                )

    def gather(self, idx: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        """Rows ``idx`` as fresh leaves that take gradients, by part and name."""
        out: dict[str, dict[str, torch.Tensor]] = {p: {} for p in self.names}
        for part, n in self.keys():
            out[part][n] = self.row(part, n).index_select(0, idx).requires_grad_(True)
        return out

    def average(self, weights: np.ndarray) -> dict[str, dict[str, torch.Tensor]]:
        """The rows' average weighted by ``weights`` (one per client, summing to > 0), in float64."""
        keep = np.flatnonzero(weights > 0)
        w = torch.from_numpy(weights[keep] / float(weights[keep].sum()))
        idx = torch.from_numpy(keep)
        out: dict[str, dict[str, torch.Tensor]] = {p: {} for p in self.names}
        with torch.no_grad():
            for part, n in self.keys():
                rows = self.row(part, n)
                flat = rows.index_select(0, idx).reshape(len(keep), -1).to(torch.float64)
                out[part][n] = (w @ flat).view(rows.shape[1:])
        return out


class RowOptimizer:
    """``spec``'s optimizer (Adam or SGD with momentum and weight decay) over stacked rows, its state stacked too."""

    def __init__(self, spec: OptimizerSpec, rows: ClientRows, clients: int):
        if spec.name not in ("adam", "sgd"):
            raise ValueError(f"stacked rows support adam and sgd, not {spec.name!r}")
        self.spec, self.rows = spec, rows
        keys = rows.keys()
        if spec.name == "adam":
            slots = ("exp_avg", "exp_avg_sq")
        else:
            slots = ("momentum",) if spec.momentum != 0 else ()
        self.state = {s: {k: torch.zeros_like(rows.row(*k)) for k in keys} for s in slots}
        # steps each client's parameter has taken this round (torch.optim counts per parameter)
        self.taken = {k: np.zeros(clients, dtype=np.int64) for k in keys}

    def reset(self) -> None:
        """A fresh optimizer for every client (a round's start)."""
        for slot in self.state.values():
            for t in slot.values():
                t.zero_()
        for taken in self.taken.values():
            taken[:] = 0

    def step(self, clients: np.ndarray, params: dict[str, dict[str, torch.Tensor]]) -> None:
        """One optimizer step of rows ``clients`` whose gathered parameters (with their ``.grad``) are ``params``;
        written back into the rows. A parameter without a gradient is not stepped (as ``torch.optim``)."""
        idx = torch.as_tensor(clients, dtype=torch.long)
        spec = self.spec
        with torch.no_grad():
            for part, n in self.rows.keys():
                p = params[part][n]
                g = p.grad
                if g is None:
                    continue
                p = p.detach()
                taken = self.taken[(part, n)]
                taken[clients] += 1
                steps = taken[clients].astype(np.float64)
                col = (len(clients),) + (1,) * (p.dim() - 1)

                def column(values: np.ndarray) -> torch.Tensor:
                    return torch.from_numpy(values).to(p.dtype).reshape(col)  # noqa: B023

                if spec.weight_decay != 0:
                    g = g.add(p, alpha=spec.weight_decay)
                if spec.name == "adam":
                    beta1, beta2 = ADAM_BETAS
                    m = self.state["exp_avg"][(part, n)].index_select(0, idx)
                    v = self.state["exp_avg_sq"][(part, n)].index_select(0, idx)
                    m.lerp_(g, 1 - beta1)
                    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    step_size = column(-(spec.lr / (1 - beta1**steps)))
                    denom = (v.sqrt() / column((1 - beta2**steps) ** 0.5)).add_(ADAM_EPS)
                    p = p + step_size * m / denom  # addcdiv's arithmetic: self + value * t1 / t2
                    self.state["exp_avg"][(part, n)].index_copy_(0, idx, m)
                    self.state["exp_avg_sq"][(part, n)].index_copy_(0, idx, v)
                else:
                    if spec.momentum != 0:
                        buf = self.state["momentum"][(part, n)].index_select(0, idx)
                        first = column((steps == 1).astype(np.float64)).bool()
                        buf = torch.where(first, g, buf.mul_(spec.momentum).add_(g))
                        self.state["momentum"][(part, n)].index_copy_(0, idx, buf)
                        g = buf
                    p = p.add(g, alpha=-spec.lr)
                self.rows.row(part, n).index_copy_(0, idx, p)


def batched_step(s: LocFedMix, t, clients, counts, x, y, plan_samples, send, check) -> float:
    """LocFedMix's step t of ``clients`` (sorted by helper, then index) as one batch over the stacked rows.

    The per-client arithmetic: client j's loss is its summed loss over ``loss_divisor`` (its samples); each body's
    gradient is the sum over its clients of ``n_j`` x the gradient of their mean loss (the per-client path's
    weighting: the cut-b gradient scaled by ``n_j`` for the bodies' parameters, unscaled for the cut-a gradient);
    with ``loc`` the head's backward adds ``beta`` x each client's reconstruction loss; then every participant's
    optimizer step on its rows. Returns the summed loss."""
    js = [int(j) for j in clients]
    ns = [int(n) for n in counts]
    helpers = s.assign[clients]
    bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
    cuts = np.flatnonzero(np.diff(helpers)) + 1
    by_helper = [(int(helpers[a]), a, b) for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(js)])]
    by_count: dict[int, list[int]] = {}  # the batch's clients of one count share a stacked call
    for q, n in enumerate(ns):
        by_count.setdefault(n, []).append(q)
    if len(by_count) == 1:
        order = inv = None  # one group: the batch's own layout
    else:
        order = torch.as_tensor(
            [k for qs in by_count.values() for q in qs for k in range(bounds[q], bounds[q + 1])],
            dtype=torch.long,
        )
        inv = torch.argsort(order)  # the batch (helper order) from the groups' layout
    glob = s.global_model
    stacks = []
    for n, qs in by_count.items():
        rows = np.asarray(clients)[qs]
        stacks.append((n, qs, rows, s.rows.gather(torch.as_tensor(rows, dtype=torch.long))))

    def per_group(fn: Callable, inp: torch.Tensor) -> list[torch.Tensor]:
        out, lo = [], 0
        for n, qs, _, st in stacks:
            out.append(fn(st, inp[lo : lo + n * len(qs)].reshape(len(qs), n, *inp.shape[1:])))
            lo += n * len(qs)
        return out

    def flat(parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([p.reshape(-1, *p.shape[2:]) for p in parts])

    def layout(v: torch.Tensor) -> torch.Tensor:
        return v if order is None else v[order]

    def back(v: torch.Tensor) -> torch.Tensor:
        return v if inv is None else v[inv]

    x_groups = layout(x)
    head_groups = per_group(lambda st, inp: stacked_call(glob["head"], st["head"], inp), x_groups)
    head_out = back(flat(head_groups))
    sent_a = send(head_out, "a").requires_grad_(True)
    outs = []
    for i, a, b in by_helper:
        outs.append(s.body(js[a], i)(sent_a[bounds[a] : bounds[b]]))
        if s.mix:
            for q in range(a, b):
                lo, hi = bounds[q], bounds[q + 1]
                s.after_body_fwd(js[q], i, t, sent_a[lo:hi], y[lo:hi])
    body_out = outs[0] if len(outs) == 1 else torch.cat(outs)
    recv_b = send(body_out, "b").requires_grad_(True)
    logits = back(
        flat(per_group(lambda st, inp: stacked_call(glob["tail"], st["tail"], inp), layout(recv_b)))
    )
    per_sample = F.cross_entropy(logits, y, reduction="none")
    seg = torch.repeat_interleave(torch.arange(len(js)), torch.as_tensor(counts, dtype=torch.long))
    losses = torch.zeros(len(js), dtype=per_sample.dtype).index_add_(0, seg, per_sample.detach())
    values = losses.numpy().astype(float)
    check(values)
    divisors = torch.as_tensor([s.loss_divisor(j, t, n, plan_samples) for j, n in zip(js, ns)])
    (per_sample / divisors.to(per_sample.dtype)[seg]).sum().backward()

    grad_b = send(recv_b.grad, "grad")
    bodies = [s.body(js[0], i) for i, _, _ in by_helper]
    grad_a = send(_body_backward(bodies, body_out, sent_a, grad_b, ns, seg), "grad")
    head_loss = (head_out * grad_a).sum()
    if s.loc:
        recon = per_group(lambda st, h: stacked_call(glob["decoder"], st["decoder"], h), flat(head_groups))
        lo = 0
        for (n, qs, _, _), out in zip(stacks, recon):
            target = x_groups[lo : lo + n * len(qs)].reshape(out.shape)
            mse = ((out - target) ** 2).reshape(len(qs), -1).mean(dim=1)  # F.mse_loss of each client
            head_loss = head_loss + s.beta * mse.sum()
            lo += n * len(qs)
    head_loss.backward()

    counts_np = np.asarray(counts)
    np.add.at(s.body_samples, helpers, counts_np)  # Strategy.after_body_bwd and the step's samples per helper
    np.add.at(s.step_samples, helpers, counts_np)
    np.add.at(s.samples, np.asarray(clients), counts_np)  # Strategy.after_head_bwd
    for _, _, rows, st in stacks:
        s.row_opt.step(rows, st)  # every participant's optimizer step
    return float(values.sum())


def _body_backward(bodies, body_out, sent_a, grad_b, ns, seg) -> torch.Tensor:
    """The bodies' parameter gradients from the ``n_j``-weighted cut-b gradient (accumulated into ``.grad``) and
    the cut-a gradient of each client's own loss (returned).

    With every ``n_j`` a power of two and bodies that treat samples independently (no batch norm), one backward
    gives both: the cut-a gradient of the weighted one is ``n_j`` x the unweighted one per sample, exactly (scaling
    by a power of two is exact in floating point), so dividing by ``n_j`` recovers it bit for bit. Otherwise two
    backward passes, the unweighted one for the cut-a gradient."""
    weight = torch.as_tensor(ns, dtype=grad_b.dtype)[seg]
    params = [p for b in bodies for p in b.parameters() if p.requires_grad]
    ones = all(n == 1 for n in ns)
    weighted = grad_b if ones else grad_b * weight.reshape(-1, *([1] * (grad_b.dim() - 1)))
    single = all(n & (n - 1) == 0 for n in ns) and not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for b in bodies for m in b.modules()
    )
    if not single:
        grad_a = torch.autograd.grad(body_out, sent_a, grad_b, retain_graph=True)[0]
        body_out.backward(weighted, inputs=params)
        return grad_a
    grads = torch.autograd.grad(body_out, [sent_a, *params], weighted, allow_unused=True)
    for p, g in zip(params, grads[1:]):
        if g is not None:
            p.grad = g if p.grad is None else p.grad.add_(g)
    if ones:
        return grads[0]
    return grads[0] / weight.to(grads[0].dtype).reshape(-1, *([1] * (grads[0].dim() - 1)))


def mixup_rows(s: LocFedMix, i: int, t: int, body: nn.Module) -> None:
    """``LocFedMix._mixup`` as one batch: the same pairs and draws, every pair's mixed samples through the body and
    the frozen tail at once, each pair's two mean losses as per-sample weights."""
    group = sorted(s.stash[i], key=lambda e: e[0])
    rng = np.random.default_rng([s.seed, s.round, t, i])
    order = rng.permutation(len(group))
    lam = rng.beta(s.alpha, s.alpha, size=len(group))  # the loop's draws, in its order
    ns = np.array([len(e[2]) for e in group], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(ns)[:-1]])
    ia, ib = order, np.roll(order, 1)
    m = np.minimum(ns[ia], ns[ib])
    within = np.arange(int(m.sum())) - np.repeat(np.cumsum(m) - m, m)  # 0..m-1 for every pair
    rows_a = torch.from_numpy(np.repeat(starts[ia], m) + within)
    rows_b = torch.from_numpy(np.repeat(starts[ib], m) + within)
    smashed = torch.cat([e[1] for e in group])
    labels = torch.cat([e[2] for e in group])
    dtype = smashed.dtype
    shape = (-1,) + (1,) * (smashed.dim() - 1)
    lam_col = torch.from_numpy(np.repeat(lam, m)).to(dtype).reshape(shape)
    rest_col = torch.from_numpy(np.repeat(1 - lam, m)).to(dtype).reshape(shape)
    mixed = lam_col * smashed[rows_a] + rest_col * smashed[rows_b]
    wdtype = torch.get_default_dtype()  # torch.full's dtype in the loop
    wa = torch.from_numpy(np.repeat(lam / m, m)).to(wdtype)
    wb = torch.from_numpy(np.repeat((1 - lam) / m, m)).to(wdtype)
    logits = functional_call(s.global_model["tail"], s.frozen_tail, (body(mixed),))
    loss = (F.cross_entropy(logits, labels[rows_a], reduction="none") * wa).sum()
    loss = loss + (F.cross_entropy(logits, labels[rows_b], reduction="none") * wb).sum()
    (loss / len(group)).backward()
