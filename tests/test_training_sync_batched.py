"""Batched synchronous steps (``psl``/``sglr`` ``path=batched``, the default) against the per-client reference.

Tolerance: the batched path does the per-client arithmetic with the sums over clients formed inside the batched
kernels (another float reduction order), so after a few SGD steps the parameters differ by float rounding only
(measured here: max abs difference 1e-8..1e-7; ``TOL = 1e-5`` leaves room for a codec's rounding boundary, which a
rounding difference may cross). The clock must not depend on the path at all: timelines are compared exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from test_training import SYN, greedy, max_diff, params, tiny

import pslsched.training.executor as executor
import pslsched.training.runner as runner
from pslsched.base.errors import InputError
from pslsched.core.codecs import CODECS, Compression
from pslsched.simulator import SimConfig, parse_stragglers
from pslsched.training import TrainConfig, make_strategy, run_training

torch.set_num_threads(1)

TOL = 1e-5
SGD = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}
QUANT = Compression(CODECS.get("quant")(4), cut_b=True, grads=True)  # every crossing, rounding boundaries
STRATEGIES = ["psl", "sglr:p=0.5,off=1", "sglr:p=0,off=0"]  # sglr: averaging in every round / never


def with_path(strategy: str, path: str) -> str:
    return f"{strategy}{',' if ':' in strategy else ':'}path={path}"


def run(monkeypatch, built, schedule, strategy, sim=None, compression=None, out=None, resume=False, **cfg):
    """run_training with ``strategy``; the result, its step executor and how many steps ran as one batch."""
    seen = {"batched": 0, "replayed": 0, "cut": 0}
    make = runner.TrainingHooks
    step = executor.run_step

    class Spy(make):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen["hooks"] = self

        def _flush(self, t, batched=True):
            if self.pending.get(t):  # a step cut off by the round's end / replayed for a dropout
                seen["cut" if not batched else "replayed"] += (
                    not batched or self._full_chains(t, self.pending[t]) is None
                )
            super()._flush(t, batched)

    def counted(*args, **kwargs):
        seen["batched"] += 1
        return step(*args, **kwargs)

    monkeypatch.setattr(runner, "TrainingHooks", Spy)
    monkeypatch.setattr(executor, "run_step", counted)
    settings = {"dataset": SYN, "model": "cnn", "batch_size": 8, **SGD, **cfg}
    result = run_training(
        built.instance,
        built.workload,
        schedule,
        sim or SimConfig(rounds=2, seed=1),
        TrainConfig(strategy=strategy, **settings),
        compression=compression,
        out=out,
        resume=resume,
    )
    monkeypatch.setattr(runner, "TrainingHooks", make)
    monkeypatch.setattr(executor, "run_step", step)
    result.seen = seen
    return result, seen["hooks"], seen["batched"]


def both(monkeypatch, built, schedule, strategy, **kw):
    """The batched and the per-client run of the same set-up; asserts the batched one really batched."""
    a, ha, na = run(monkeypatch, built, schedule, with_path(strategy, "batched"), **kw)
    b, hb, nb = run(monkeypatch, built, schedule, with_path(strategy, "per-client"), **kw)
    assert (ha.path, hb.path) == ("batched", "per-client")
    assert na > 0 and nb == 0
    return a, b, na / steps_per_round(ha)


def steps_per_round(hooks) -> int:
    """The steps of the run's (last) round plan that have participants."""
    return int((hooks.plan.samples > 0).any(axis=1).sum())


def assert_same_run(a, b) -> float:
    diff = max_diff(params(a.parts), params(b.parts))
    assert diff <= TOL, diff
    assert a.record.timeline.equals(b.record.timeline)  # the clock does not depend on the path
    assert a.record.makespans == b.record.makespans
    np.testing.assert_allclose(a.metrics["train_loss"], b.metrics["train_loss"], rtol=1e-6)
    return diff


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("helpers", [1, 3])
@pytest.mark.parametrize("compression", [None, QUANT], ids=["plain", "quant4"])
def test_batched_steps_equal_per_client_steps(monkeypatch, strategy, helpers, compression):
    built = tiny(clients=5, helpers=helpers)
    schedule = greedy(built)
    sim = SimConfig(rounds=2, seed=1, stragglers=parse_stragglers("mild"))
    a, b, batched = both(monkeypatch, built, schedule, strategy, sim=sim, compression=compression)
    assert batched == 2  # every step of both rounds ran as one batch
    assert_same_run(a, b)


def test_every_step_is_batched_and_sglr_broadcasts_the_same_average(monkeypatch):
    """The steps of a round all run as one batch; SGLR's per-helper broadcast from the batch gives every client
    of a helper the identical gradient, as the per-client path does."""
    built = tiny(clients=6, helpers=2)
    schedule = greedy(built)
    strategies = {}
    original = make_strategy

    def keep(spec, settings=None):
        s = strategies[spec.split(",path=")[-1]] = original(spec, settings)
        s.record = True
        return s

    monkeypatch.setattr(runner, "make_strategy", keep)
    a, b, batched = both(monkeypatch, built, schedule, "sglr:p=0,off=1", sampler="ugs", global_batch=12)
    assert batched == 2  # every step of both epochs
    assert_same_run(a, b)
    got = {(r, t, j): g for r, t, out in strategies["batched"].broadcasts for j, g in out.items()}
    ref = {(r, t, j): g for r, t, out in strategies["per-client"].broadcasts for j, g in out.items()}
    assert got.keys() == ref.keys() and len(got) > 0
    for key in ref:
        assert float((got[key] - ref[key]).abs().max()) <= 1e-6
    for _, _, out in strategies["batched"].broadcasts:
        longest = max(out.values(), key=len)
        for g in out.values():  # one average per helper and step, cut to each client's samples
            assert torch.equal(g, longest[: g.shape[0]])


def test_dropouts_and_timeouts_replay_the_incomplete_steps(monkeypatch):
    """A client that drops out mid-step leaves its step to be replayed client after client; a step whose barrier
    the round's timeout cuts off is replayed at the round's end: the same models and the same clock."""
    built = tiny(clients=5, helpers=2)
    schedule = greedy(built)
    sim = SimConfig(rounds=3, seed=2, dropout=0.3)
    a, b, batched = both(monkeypatch, built, schedule, "psl", sim=sim)
    assert 0 < batched < 3 and a.seen["replayed"] > 0  # some steps batched, some replayed
    assert_same_run(a, b)
    # a timeout inside the round's last step: that step's barrier never opens
    full = run(monkeypatch, built, schedule, "psl", sim=SimConfig(rounds=1, seed=2))[0]
    tl = full.record.timeline
    cut = float(tl[tl.batch == tl.batch.max()].start.min()) + 1.0
    sim = SimConfig(rounds=2, seed=2, round_timeout_ms=cut)
    a, b, _ = both(monkeypatch, built, schedule, "psl", sim=sim)
    assert a.seen["cut"] == 2  # the last step of both rounds
    assert_same_run(a, b)


# sglr's switch-off is a share of the run's rounds: off=0.25 switches after round 0 in the 2-round first part and
# in the 4-round run alike (off=0.5 would not, whatever the path)
@pytest.mark.parametrize("strategy", ["psl", "sglr:p=0.5,off=0.25"])
def test_resume_mid_run_on_the_batched_path_is_bit_identical(monkeypatch, tmp_path, strategy):
    """Stopped after round 2 of 4, in the middle of an epoch (5 steps of 16, 2 steps per round), and resumed."""
    built = tiny(clients=4, helpers=2)
    schedule = greedy(built)
    cfg = {"optimizer": "adam", "lr": 0.01, "sampler": "ugs", "global_batch": 16, "steps_per_round": 2}
    sim = SimConfig(rounds=4, seed=3)
    whole, hooks, batched = run(monkeypatch, built, schedule, strategy, sim=sim, out=tmp_path / "a", **cfg)
    assert hooks.path == "batched" and batched == 4 * 2
    run(monkeypatch, built, schedule, strategy, sim=SimConfig(rounds=2, seed=3), out=tmp_path / "r", **cfg)
    resumed, _, _ = run(
        monkeypatch, built, schedule, strategy, sim=sim, out=tmp_path / "r", resume=True, **cfg
    )
    assert max_diff(params(resumed.parts), params(whole.parts)) == 0.0
    assert resumed.metrics["train_loss"].tolist() == whole.metrics["train_loss"].tolist()
    assert resumed.record.timeline.equals(whole.record.timeline)


def test_randomised_codec_and_measured_clock_stay_per_client(monkeypatch):
    """A codec that draws random numbers follows the per-client event order, a measured clock needs each step's
    wall time: both keep the per-client path, with the reason."""
    built = tiny(clients=3, helpers=1)
    schedule = greedy(built)
    rand = Compression(CODECS.get("randtopk")(0.25, 0.1))
    a, ha, na = run(monkeypatch, built, schedule, "psl", compression=rand)
    b, hb, nb = run(monkeypatch, built, schedule, "psl:path=per-client", compression=rand)
    assert (ha.path, na) == ("per-client", 0) and "random" in ha.path_reason
    assert max_diff(params(a.parts), params(b.parts)) == 0.0
    _, hm, nm = run(monkeypatch, built, schedule, "psl", clock="measured")
    assert (hm.path, nm) == ("per-client", 0) and "measured" in hm.path_reason


def test_divergence_names_the_step_and_client_the_per_client_path_names(monkeypatch):
    built = tiny(clients=4, helpers=2)
    schedule = greedy(built)
    a, b, _ = both(monkeypatch, built, schedule, "psl", lr=1e6)
    assert a.diverged is not None and a.diverged == b.diverged


def test_path_option_is_checked():
    with pytest.raises(InputError, match="path"):
        make_strategy("psl:path=fast")
    assert make_strategy("sglr:path=per-client").batched_steps is False
    assert make_strategy("sglr").batched_steps is True


def test_sglr_with_dropouts_runs_and_both_paths_agree(tmp_path, capsys):
    """A client that drops out before its cut-a gradient exists is left out of its helper's broadcast (it used to
    end in an AttributeError on both paths)."""
    from pslsched.cli import main

    finals = []
    for spec in ("sglr", "sglr:path=per-client"):
        out = tmp_path / spec.replace(":", "_").replace("=", "_")
        args = ["train", "--strategy", spec, "--dropout", "0.2", "--dataset", "digits", "--rounds", "2"]
        assert main([*args, "--threads", "1", "--solver", "greedy", "--out", str(out)]) == 0
        rounds = pd.read_csv(out / "rounds.csv")
        finals.append(rounds[["round_time_ms", "dropped", "test_accuracy"]].to_numpy(dtype=float))
    capsys.readouterr()
    assert (finals[0][:, 1] > 0).any()  # someone dropped out
    assert np.allclose(finals[0], finals[1], atol=1e-6)
