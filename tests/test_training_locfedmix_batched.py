"""Batched LocFedMix steps (``locfedmix:path=batched``, the default) against the per-client reference.

The tolerance is the one of ``test_training_sync_batched`` (``TOL``, 1e-5): the same arithmetic with the sums over
clients formed by the batched (vmapped) kernels, and the body's per-client weighting by ``n_j`` applied to the
cut-b gradient instead of to the accumulated parameter gradient, so the parameters differ by float rounding only;
the clock not at all (timelines compared exactly). Every client's own head, tail and decoder is compared too.

Seed 2: with seed 1, ``loc=0`` and ``quant:bits=4`` on every crossing, the batched mixup's body (another reduction
order, ~1e-8) makes one cut-b value cross a 4-bit quantisation level in round 2, a discrete jump (1.6e-5 after 2
rounds, 2e-3 after 3) that training then carries; the same case agrees to 1e-7 with seeds 2, 3 and 4, and
without the codec (or with ``mix=0``) to 6e-8 with seed 1 too. Adam is left out of the equality: its first steps
amplify rounding in near-zero gradients to ~lr (1.9e-5 after one step at lr 1e-3), and the client optimizers are
``torch.optim`` on both paths, so Adam adds no batched code to check.
"""

from __future__ import annotations

import pytest
import torch
from test_training import greedy, max_diff, tiny
from test_training_sync_batched import QUANT, TOL, assert_same_run, both

from pslsched.simulator import SimConfig, parse_stragglers
from pslsched.training.strategies.locfedmix import client_parameters

torch.set_num_threads(1)

VARIANTS = [
    "locfedmix",  # every part on
    "locfedmix:mix=0",
    "locfedmix:loc=0",
    "locfedmix:fed=0",
    "locfedmix:mix=0,loc=0,fed=0",
]


def all_parts(parts) -> list[torch.Tensor]:
    """Every parameter of the run's model parts: the global ones and each client's head, tail and decoder (module
    copies on the per-client path, stacked rows on the batched one: read alike)."""
    shared = [p.detach().clone() for k in ("head", "body", "tail", "decoder") for p in parts[k].parameters()]
    clients = next(parts["clients"].parameters()).shape[0] if "clients" in parts else None
    if clients is None:
        clients = sum(1 for k in parts if k.endswith(".head"))
    own = [q.detach().clone() for j in range(clients) for _, q in sorted(client_parameters(parts, j).items())]
    return shared + own


@pytest.mark.parametrize("strategy", VARIANTS)
@pytest.mark.parametrize("helpers", [1, 3])
@pytest.mark.parametrize("compression", [None, QUANT], ids=["plain", "quant4"])
def test_batched_locfedmix_equals_per_client(monkeypatch, strategy, helpers, compression):
    built = tiny(clients=6, helpers=helpers)
    sim = SimConfig(rounds=2, seed=2, stragglers=parse_stragglers("mild"))
    a, b, batched = both(monkeypatch, built, greedy(built), strategy, sim=sim, compression=compression)
    assert batched == 2  # every step of both rounds ran as one batch
    assert_same_run(a, b)
    diff = max_diff(all_parts(a.parts), all_parts(b.parts))
    assert diff <= TOL, diff


def test_batched_locfedmix_with_unequal_counts(monkeypatch):
    """A global sampler gives the clients of a step different counts (several vmap groups per step, each client's
    body gradient weighted by its own count), over several steps per round."""
    built = tiny(clients=7, helpers=2)
    a, b, share = both(
        monkeypatch,
        built,
        greedy(built),
        "locfedmix:fed=2",
        sim=SimConfig(rounds=2, seed=3),
        sampler="ugs",
        global_batch=16,
    )
    assert share == 2  # every step of both rounds ran as one batch
    samples = a.seen["hooks"].plan.samples  # the last round's counts: unequal within a step
    assert any(len(set(row[row > 0].tolist())) > 1 for row in samples)
    assert_same_run(a, b)
    assert max_diff(all_parts(a.parts), all_parts(b.parts)) <= TOL
