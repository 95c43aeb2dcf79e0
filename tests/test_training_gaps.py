"""Behaviours the mutation run of the training room found untested (benchmarks/RESULTS.md, "Mutation testing")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pslsched.base.errors import InputError
from pslsched.core.testbed import build, default_testbed_path, load_testbed
from pslsched.simulator import SimConfig
from pslsched.solvers import solve
from pslsched.training import TrainConfig, make_partition, run_training
from pslsched.training.datasets import load_dataset
from pslsched.training.strategies import StrategySettings, make_strategy

torch.set_num_threads(1)


def test_time_to_accuracy_is_the_end_of_the_first_round_that_reaches_the_target():
    """Rounds whose accuracy stays below the target do not count; a target never reached gives None."""
    built = build(load_testbed(default_testbed_path()))
    schedule = solve(built.instance, "greedy").schedule
    cfg = TrainConfig(dataset="digits", target_accuracy=0.7)
    run = run_training(built.instance, built.workload, schedule, SimConfig(rounds=4, seed=1), cfg)
    rounds = run.rounds
    ends = (rounds["start_ms"] + rounds["round_time_ms"]).to_numpy()
    acc = rounds["test_accuracy"].to_numpy()
    first = int(np.argmax(acc >= 0.7))
    assert acc[first] >= 0.7 and first > 0 and (acc[:first] < 0.7).all()  # the run starts below the target
    assert run.summary()["time_to_accuracy_ms"] == pytest.approx(ends[first])
    run.config = cfg.model_copy(update={"target_accuracy": 1.0})
    assert acc.max() < 1.0 and run.summary()["time_to_accuracy_ms"] is None


def test_locfedmix_mixup_loss_is_the_lambda_weighted_cross_entropy_of_both_labels():
    """Mix: for a pair (a, b) mixed as lam * a + (1 - lam) * b the body's loss is lam * CE(y_a) + (1 - lam) * CE(y_b)
    through the frozen tail, averaged over the helper's clients (Oh et al.; algorithms.md B3)."""
    strategy = make_strategy("locfedmix:loc=off,alpha=2", StrategySettings(seed=5))
    torch.manual_seed(0)
    body, tail = nn.Linear(4, 4), nn.Linear(4, 3)
    strategy.global_model = {"tail": tail}
    strategy.frozen_tail = {n: p.detach().clone() for n, p in tail.named_parameters()}
    strategy.round = 2
    sa, sb = torch.randn(6, 4), torch.randn(5, 4)
    ya, yb = torch.randint(0, 3, (6,)), torch.randint(0, 3, (5,))
    strategy.stash = {0: [(0, sa, ya), (1, sb, yb)]}
    strategy._mixup(0, 7, body)
    got = [p.grad.clone() for p in body.parameters()]
    assert all(p.grad is None for p in tail.parameters())  # the tail stays frozen
    # the reference, from the same draws (the strategy's stream of round, step and helper)
    rng = np.random.default_rng([5, 2, 7, 0])
    order = rng.permutation(2)
    group = [(sa, ya), (sb, yb)]
    ref = nn.Linear(4, 4)
    ref.load_state_dict(body.state_dict())
    loss = 0.0
    for a, b in zip(order, np.roll(order, 1)):
        (xa, la), (xb, lb) = group[a], group[b]
        m = min(len(la), len(lb))
        lam = float(rng.beta(2.0, 2.0))
        logits = tail(ref(lam * xa[:m] + (1 - lam) * xb[:m]))
        loss = loss + lam * F.cross_entropy(logits, la[:m]) + (1 - lam) * F.cross_entropy(logits, lb[:m])
    (loss / 2).backward()
    for g, p in zip(got, ref.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-6)


@pytest.mark.parametrize(("spec", "field"), [("quantity:0", "--partition"), ("quantity:-1", "--partition")])
def test_a_degenerate_quantity_skew_is_refused(spec, field):
    with pytest.raises(InputError) as info:
        make_partition(spec, np.arange(100) % 10, 5, np.random.default_rng(0))
    assert info.value.field == field


def test_a_fractional_synthetic_size_is_refused():
    with pytest.raises(InputError) as info:
        load_dataset("synthetic:size=8.5")
    assert "size" in str(info.value)


def test_a_testbed_sampling_mapping_sets_the_sampler_its_knobs_and_the_global_batch():
    from pslsched.training import train_config_from

    cfg = train_config_from(
        {"sampling": {"sampler": "lds", "tilt": 2, "global_batch": 64, "steps_per_round": 7}}
    )
    assert (cfg.sampler, cfg.global_batch, cfg.steps_per_round) == ("lds:tilt=2", 64, 7)
    assert train_config_from({"sampling": "ugs"}).sampler == "ugs"
    with pytest.raises(InputError) as info:
        train_config_from({"sampling": {"tilt": 2}})
    assert info.value.field == "training.sampling.tilt"


def test_a_training_run_leaves_the_processs_floats_as_it_found_them():
    # subnormals are flushed while a run trains (speed), not after: planning and numpy share the thread's mode
    from pslsched.app.requests import TrainRequest
    from pslsched.app.training import train

    train(TrainRequest(dataset="digits", rounds=1, threads=1, clients=4))
    assert np.float32(1e-39) * np.float32(1.0) != 0
