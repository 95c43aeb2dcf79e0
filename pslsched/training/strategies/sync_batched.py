"""Batched synchronous steps (``psl:path=batched``, the default of ``psl`` and ``sglr``): a step as one batch.

A synchronous step of a strategy with **one shared client model** (PSL, SGLR) is arithmetically one forward and
backward over the union of the step's client samples: the clients' heads and tails are one module, the loss of
client j is its summed per-sample loss over the step's divisor, and the gradients the per-client path accumulates
client after client are sums over samples. ``run_step`` computes it at the step's barrier as a few large tensor
operations, in the per-client path's dataflow:

* the step's samples (clients ordered by helper, then index) through the shared head at once;
* the cut-a activations as the helpers receive them (detached; under a codec, encoded and decoded);
* each helper's body over its clients' concatenated activations; the cut-b activations as received;
* the shared tail over all of them, the per-sample losses weighted by each client's ``loss_divisor`` (PSL: the
  step's total samples, so the sum is the global mean loss), one backward; the cut-b gradient as received;
* the bodies' backward, the cut-a gradients (``cut_gradient`` per client where a strategy overrides it), as
  received, and where the helper broadcasts (SGLR's averaging, a ``broadcast`` event of the step) the strategy's
  ``broadcast`` on its clients' slices; then the head's backward;
* the per-client bookkeeping (``after_body_fwd``, ``after_body_bwd``, ``after_head_bwd``) with each client's
  samples, so the strategy's ``on_sync`` steps exactly as after the per-client steps.

Codecs compress each sample on its own (``Codec.encode``: the rows of a batch one by one), so encoding the
concatenated batch is encoding each client's slice; a codec that draws random numbers is the exception (its draws
follow the event order of the per-client path) and runs per client (``TrainingHooks`` decides, with the reason).

Equality with the per-client path: the same arithmetic, with the sums over clients formed by the batched kernels
(another reduction order), so the parameters agree to float rounding (tested: max abs difference ~1e-7 after a few
steps); the clock is untouched (it comes from the schedule and the per-client sample counts).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from pslsched.training.strategies.base import Strategy

Send = Callable[[torch.Tensor, str], torch.Tensor]  # (tensor, "a" | "b" | "grad") -> what the receiver gets


def run_step(
    strategy: Strategy,
    t: int,
    clients: np.ndarray,
    counts: np.ndarray,
    x: torch.Tensor,
    y: torch.Tensor,
    plan_samples: np.ndarray,
    send: Send,
    broadcast: set[int],
    check: Callable[[np.ndarray], None],
) -> float:
    """Step t of ``clients`` (sorted by helper, then index; ``counts`` samples each, ``x``/``y`` their samples in
    that order) as one batch; ``broadcast``: the helpers whose cut-a gradients the strategy replaces (SGLR);
    ``check(losses)`` sees every client's summed loss before anything is backpropagated (a non-finite one raises).
    Returns the step's summed loss. A strategy with clients' parts of their own computes the step itself
    (``strategy.batched_step``, same arguments; LocFedMix)."""
    own = getattr(strategy, "batched_step", None)
    if own is not None:
        return own(t, clients, counts, x, y, plan_samples, send, broadcast, check)
    assign = strategy.assign
    helpers = assign[clients]
    js = [int(j) for j in clients]
    ns = [int(n) for n in counts]
    bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
    head, tail = strategy.head(js[0]), strategy.tail(js[0])
    # helper i's clients are the contiguous rows lo..hi of the batch
    cuts = np.flatnonzero(np.diff(helpers)) + 1
    groups = [(int(helpers[a]), a, b) for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(js)])]

    keeps_smashed = type(strategy).after_body_fwd is not Strategy.after_body_fwd
    head_out = head(x)
    sent_a = send(head_out, "a").requires_grad_(True)
    outs = []
    for i, a, b in groups:
        lo, hi = bounds[a], bounds[b]
        outs.append(strategy.body(js[a], i)(sent_a[lo:hi]))
        if keeps_smashed:
            for q in range(a, b):
                strategy.after_body_fwd(
                    js[q], i, t, sent_a[bounds[q] : bounds[q + 1]], y[bounds[q] : bounds[q + 1]]
                )
    body_out = outs[0] if len(outs) == 1 else torch.cat(outs)
    recv_b = send(body_out, "b").requires_grad_(True)

    per_sample = F.cross_entropy(tail(recv_b), y, reduction="none")
    seg = torch.repeat_interleave(torch.arange(len(js)), torch.as_tensor(counts, dtype=torch.long))
    losses = torch.zeros(len(js), dtype=per_sample.dtype).index_add_(0, seg, per_sample.detach())
    values = losses.numpy().astype(float)
    check(values)
    divisors = [strategy.loss_divisor(j, t, n, plan_samples) for j, n in zip(js, ns)]
    if divisors.count(divisors[0]) == len(divisors):
        loss = per_sample.sum() / divisors[0]
    else:
        weights = torch.as_tensor([1.0 / d for d in divisors], dtype=per_sample.dtype)[seg]
        loss = (per_sample * weights).sum()
    loss.backward()

    body_out.backward(send(recv_b.grad, "grad"))
    grad_a = sent_a.grad
    if type(strategy).cut_gradient is not Strategy.cut_gradient:
        grad_a = torch.cat(
            [strategy.cut_gradient(j, t, grad_a[bounds[q] : bounds[q + 1]]) for q, j in enumerate(js)]
        )
    grad_a = send(grad_a, "grad")
    if broadcast:
        pieces = list(grad_a.split(ns))
        for i, a, b in groups:
            if i in broadcast:
                got = strategy.broadcast(t, i, {js[q]: pieces[q] for q in range(a, b)})
                for q in range(a, b):
                    pieces[q] = got[js[q]]
        grad_a = torch.cat(pieces)
    head_out.backward(grad_a)

    together = _batched_bookkeeping(strategy)
    if together is not None:  # the per-client bookkeeping as a few array sums (PSL, SGLR)
        together(helpers, clients, np.asarray(counts))
        return float(values.sum())
    for i, a, b in groups:
        for q in range(a, b):
            strategy.after_body_bwd(js[q], i, t, ns[q])
    for j, n in zip(js, ns):
        strategy.after_head_bwd(j, t, n)
    return float(values.sum())


def _owner(cls: type, name: str) -> type | None:
    """The class of ``cls``'s MRO that defines ``name``."""
    return next((c for c in cls.__mro__ if name in c.__dict__), None)


def _batched_bookkeeping(strategy: Strategy) -> Callable | None:
    """The strategy's ``after_batched_step`` if the class defining it also defines the per-client bookkeeping it
    replaces (``after_body_bwd``, ``after_head_bwd``): a subclass that overrides those gets them called."""
    cls = type(strategy)
    owner = _owner(cls, "after_batched_step")
    if owner is None or not (owner is _owner(cls, "after_body_bwd") is _owner(cls, "after_head_bwd")):
        return None
    return strategy.after_batched_step
