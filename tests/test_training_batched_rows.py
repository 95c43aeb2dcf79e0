"""Batched SplitFed V1's stacked rows: no per-client module copies, FedAvg as one reduction over the rows of the
clients that finished, and rows trained in chunks (what lets K = 10,000 fit) equal to all rows at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pslsched.models.zoo import build_blocks, split
from pslsched.simulator import RoundPlan, TaskEvent
from pslsched.training import (
    Diverged,
    OptimizerSpec,
    StrategySettings,
    TrainingHooks,
    load_dataset,
    make_strategy,
)
from pslsched.training.strategies import batched

torch.set_num_threads(1)

TOL = 1e-5  # the cnn's grouped convolutions reduce bias gradients in another order: ~1e-8 a step (test_training_batched)
SGD = OptimizerSpec("sgd", 0.05, momentum=0.9, weight_decay=1e-3)
ADAM = OptimizerSpec("adam", 1e-3, weight_decay=1e-3)
# steps x clients: unequal counts, holes (clients 1 and 4 sit steps out), client 2 local; rows are ordered by the
# counts step by step (c4, c1, c0, c2, c3), so step 2's group of 4 (c0, c3) is not consecutive rows: gathered
SAMPLES = np.array([[4, 3, 5, 6, 0], [4, 0, 5, 4, 3], [3, 3, 2, 0, 3], [0, 1, 0, 2, 3]])
ASSIGN = np.array([0, 1, -1, 0, 1])


def _setup(spec: str, optimizer: OptimizerSpec, model: str = "cnn"):
    data = load_dataset("synthetic:n=120,test=8,classes=4,size=6", seed=0)
    torch.manual_seed(3)
    sp = split(build_blocks(model, data.input_shape, data.num_classes), 2 if model == "cnn" else 1, 3)
    parts = {"head": sp.head, "body": sp.body, "tail": sp.tail}
    strategy = make_strategy(spec, StrategySettings(optimizer))
    strategy.setup(parts, 5, 2)
    client_data = [
        np.arange(0, 20),
        np.arange(20, 40),
        np.arange(40, 70),
        np.arange(70, 96),
        np.arange(96, 120),
    ]
    return data, parts, strategy, client_data


def _run(spec: str, optimizer: OptimizerSpec, members_of=lambda r: [0, 1, 2, 3, 4], rounds: int = 2):
    """Rounds driven by hand (every client's chain in client order); the global parts and each round's loss."""
    data, parts, strategy, client_data = _setup(spec, optimizer)
    hooks = TrainingHooks(
        strategy, data.x_train, data.y_train, client_data, [f"c{j}" for j in range(5)], seed=5
    )
    plan = RoundPlan(samples=SAMPLES, unit=4.0)
    losses = []
    for r in range(rounds):
        hooks.begin_round(r, plan, ASSIGN)
        for t in range(SAMPLES.shape[0]):
            for j in range(5):
                n = int(SAMPLES[t, j])
                if n == 0:
                    continue
                if ASSIGN[j] < 0:
                    hooks.run(TaskEvent("local", r, t, j, -1, 1.0, samples=n))
                    continue
                for kind in ("head_fwd", "body_fwd", "tail", "body_bwd", "head_bwd"):
                    hooks.run(TaskEvent(kind, r, t, j, int(ASSIGN[j]), 1.0, samples=n))
        if strategy.batched:
            rows = strategy.precompute.rows
            assert all(v.shape[0] == 5 for v in rows.values())  # one row per client that trains
            assert not strategy.parts and not strategy.local_models  # no module copies
        hooks.end_round(r, members_of(r))
        losses.append(hooks.round_loss())
    return parts, losses


def max_diff(a, b) -> float:
    return max(
        float((a[p].state_dict()[n] - b[p].state_dict()[n]).abs().max()) for p in a for n in a[p].state_dict()
    )


@pytest.mark.parametrize("optimizer", [SGD, ADAM], ids=["sgd", "adam"])
@pytest.mark.parametrize(
    "row_elements", [None, 1, 100_000], ids=["one-chunk", "one-row-chunks", "two-row-chunks"]
)
def test_rows_in_chunks_equal_per_client(monkeypatch, optimizer, row_elements):
    """Dropouts (client 1 leaves FedAvg in round 2, client 3 in round 1) and chunks of rows of any size."""
    if row_elements is not None:  # cnn: ~5e4 parameters a client, so 1e5 elements = chunks of 2 rows
        monkeypatch.setattr(batched, "MAX_ROW_ELEMENTS", row_elements)

    def members(r):
        return [0, 1, 2, 4] if r == 0 else [0, 2, 3, 4]

    pa, la = _run("splitfed1", optimizer, members)
    pb, lb = _run("splitfed1:batched=true", optimizer, members)
    diff = max_diff(pa, pb)
    assert diff <= TOL, diff
    np.testing.assert_allclose(la, lb, rtol=1e-6)


def test_fedavg_is_the_samples_weighted_mean_of_the_finished_rows():
    """``average`` by hand: rows with known values, a client that did not finish, one that trained nothing."""
    _, parts, strategy, _ = _setup("splitfed1:batched=true", SGD, model="mlp")
    rnd = strategy.precompute
    rnd._prepare()
    strategy.begin_round(0, np.array([0, 0, 1, 1, 0]))
    strategy.samples[:] = [3, 1, 0, 4, 2]  # client 2 trained nothing (no row)
    rnd.clients = np.array([3, 0, 1, 4])
    rnd.rows = {n: torch.randn(4, *g.shape) for n, g in zip(rnd._names, rnd._globals)}
    expected = {}
    for (n, rows), g in zip(rnd.rows.items(), rnd._globals):
        w = torch.tensor([4.0, 3.0, 0.0, 2.0], dtype=torch.float64)  # client 1 did not finish
        expected[n] = (rows.double() * (w / w.sum()).view(-1, *[1] * g.dim())).sum(0).float()
    strategy.end_round([0, 2, 3, 4])
    for n, g in zip(expected, rnd._globals):
        torch.testing.assert_close(g.detach(), expected[n], rtol=0, atol=1e-7)
    assert rnd.rows == {}  # the rows are freed with the round


def test_nobody_finished_keeps_the_global_model():
    before, _ = _run("splitfed1", SGD, lambda r: [], rounds=1)
    after, _ = _run("splitfed1:batched=true", SGD, lambda r: [], rounds=1)
    assert max_diff(before, after) == 0.0


@pytest.mark.parametrize("row_elements", [None, 1], ids=["one-chunk", "one-row-chunks"])
def test_divergence_in_a_later_chunk_at_an_earlier_step(monkeypatch, row_elements):
    """The earliest step's lowest client is named even when another chunk diverged first, at a later step."""
    if row_elements is not None:
        monkeypatch.setattr(batched, "MAX_ROW_ELEMENTS", row_elements)
    strategy = make_strategy("splitfed1:batched=true", StrategySettings(OptimizerSpec("sgd", 0.1)))
    torch.manual_seed(0)
    sp = split(build_blocks("mlp", (1, 2, 2), 3), 1, 3)
    strategy.setup({"head": sp.head, "body": sp.body, "tail": sp.tail}, 4, 1)
    x = torch.randn(16, 1, 2, 2)
    x[0:4] = float("nan")  # client a: all its samples, but it only trains in step 2
    x[8:16] = float("nan")  # clients c and d: in step 1 (c in the count group before d's)
    data = [np.arange(0, 4), np.arange(4, 8), np.arange(8, 12), np.arange(12, 16)]
    hooks = TrainingHooks(strategy, x, torch.zeros(16, dtype=torch.long), data, ["a", "b", "c", "d"], seed=0)
    plan = RoundPlan(samples=np.array([[0, 2, 2, 4], [4, 2, 2, 0]]), unit=4.0)
    with pytest.raises(Diverged) as info:
        hooks.begin_round(0, plan, np.array([0, 0, 0, 0]))
    assert "round 1, step 1, client c" in str(info.value)
