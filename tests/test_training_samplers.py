"""Samplers: UGS/FLS/FPLS counts, LDS's variance and tilt, the clock following the samples, validation, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pslsched.cli import main
from pslsched.core.schedule import Schedule, Task
from pslsched.core.testbed import build, parse_testbed
from pslsched.core.validate import validate
from pslsched.simulator import SimConfig, parse_stragglers
from pslsched.solvers import solve
from pslsched.training import TrainConfig, make_sampler, prepare_training, run_training, step_instance
from pslsched.training.samplers import lds_alpha

torch.set_num_threads(1)

SIZES = np.array([300, 150, 100, 250, 200])  # N = 1000


def epochs(spec: str, batch: int, n: int, delays=None, seed: int = 0):
    sampler = make_sampler(spec)
    rng = np.random.default_rng(seed)
    d = np.zeros(len(SIZES)) if delays is None else np.asarray(delays, dtype=float)
    return [sampler.epoch(SIZES, batch, rng, d) for _ in range(n)]


def test_ugs_counts_sum_to_b_use_every_sample_once_and_have_the_right_mean():
    batch = 64
    draws = epochs("ugs", batch, 200)
    for counts in draws:
        assert counts.shape == (16, 5)  # ceil(1000 / 64)
        assert (counts[:-1].sum(axis=1) == batch).all() and counts[-1].sum() == 1000 % batch
        assert (counts.sum(axis=0) == SIZES).all()  # every sample exactly once per epoch
    full = np.vstack([c[:-1] for c in draws]).astype(float)  # 3,000 full steps
    p = SIZES / SIZES.sum()
    mean = batch * p
    # a full step's count is hypergeometric: var = B p (1 - p) (N - B) / (N - 1); the mean over M steps has a
    # standard error sqrt(var / M) (an upper bound: counts within an epoch are negatively correlated); 5 sigma
    var = batch * p * (1 - p) * (1000 - batch) / 999
    assert np.all(np.abs(full.mean(axis=0) - mean) < 5 * np.sqrt(var / len(full)))
    assert np.allclose(full.var(axis=0), var, rtol=0.15)


def test_fls_and_fpls_counts_and_exhausted_clients_sit_out():
    fls = epochs("fls", 50, 1)[0]
    assert (fls[0] == 10).all()  # round(50 / 5)
    assert fls.shape[0] == 30  # the largest client (300 samples) needs 30 steps of 10
    assert (fls.sum(axis=0) == SIZES).all()
    for k, n in enumerate(SIZES):
        assert (fls[n // 10 :, k] == 0).all()  # out of data: sits out the rest of the epoch
    fpls = epochs("fpls", 50, 1)[0]
    assert fpls[0].tolist() == [15, 8, 5, 12, 10]  # round(50 N_k / N), numpy rounds half to even
    assert (fpls.sum(axis=0) == SIZES).all()
    assert (
        make_sampler("fls").epoch(np.array([3, 500]), 1000, np.random.default_rng(0), np.zeros(2))[0, 0] == 3
    )


def test_lds_without_tilt_matches_ugs_in_distribution():
    batch = 64
    lds = np.vstack(epochs("lds:tilt=0", batch, 200)).astype(float)  # 3,200 steps of 64
    assert (lds.sum(axis=1) == batch).all()
    p = SIZES / SIZES.sum()
    var = batch * p * (1 - p) * (1000 - batch) / 999
    assert np.all(np.abs(lds.mean(axis=0) - batch * p) < 5 * np.sqrt(var / len(lds)))
    # rounding B x shares adds at most 1/4 (about 1/12 on average) to the variance of the shares
    assert np.allclose(lds.var(axis=0), var, rtol=0.15)


def test_lds_tilt_asks_a_slower_client_for_fewer_samples():
    delays = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    slow = delays.copy()
    slow[0] = 5.0
    base = lds_alpha(SIZES, 64, delays, 1.0, 1.0)
    tilted = lds_alpha(SIZES, 64, slow, 1.0, 1.0)
    assert tilted[0] / tilted.sum() < base[0] / base.sum()
    even = np.vstack(epochs("lds:tilt=1", 64, 50, delays)).mean(axis=0)
    skew = np.vstack(epochs("lds:tilt=1", 64, 50, slow)).mean(axis=0)
    assert skew[0] < 0.5 * even[0]
    assert make_sampler("lds:tilt=1,c=2").options == {"tilt": 1.0, "c": 2.0}


def greedy_schedule(instance):
    schedule = solve(instance, "greedy", time_limit=5).schedule
    assert validate(instance, schedule) == []
    return schedule


def client_heavy_testbed(clients: int = 8):
    """Clients on Raspberry Pi 4s carrying six blocks of ResNet-101: client compute matters, as in the paper."""
    return build(
        parse_testbed(
            {
                "name": "client-heavy",
                "seed": 1,
                "model": {"profile": "resnet101_cifar10"},
                "cuts": {"a": 6, "b": 35},
                "helpers": [{"name": "server", "device": "VM", "memory_mb": 100000}],
                "clients": [
                    {"name": "c", "count": clients, "device": "d1", "uplink_mbps": 50, "latency_ms": 1}
                ],
            }
        )
    )


def test_lds_shortens_steps_under_persistent_stragglers_cost_only():
    built = client_heavy_testbed()
    schedule = greedy_schedule(built.instance)
    sim = SimConfig(rounds=4, seed=0, stragglers=parse_stragglers("client:slow:p=0.25,factor=5,per=run"))
    times = {}
    for spec in ("ugs", "lds:tilt=2"):
        cfg = TrainConfig(
            dataset="synthetic:n=512", model="mlp", strategy="psl", sampler=spec, global_batch=32
        )
        res = run_training(built.instance, built.workload, schedule, sim, cfg, cost_only=True)
        times[spec] = res.rounds["round_time_ms"].to_numpy()
        assert (res.rounds["samples"] == 512).all()  # an epoch of N samples either way
    # round 0 has no observations (all clients alike in the profile); afterwards LDS avoids the slow clients
    assert times["lds:tilt=2"][1:].mean() < 0.9 * times["ugs"][1:].mean()


def test_clients_without_samples_have_no_tasks_and_every_step_validates():
    built = client_heavy_testbed(clients=6)
    inst = built.instance
    schedule = greedy_schedule(inst)
    cfg = TrainConfig(
        dataset="synthetic:n=96,test=32", model="mlp", strategy="psl", sampler="ugs", global_batch=8
    )
    res = run_training(inst, built.workload, schedule, SimConfig(seed=3), cfg)
    tl = res.record.timeline
    round_plan = _round_plan(res)
    assert (round_plan.samples == 0).any()  # some clients sit some steps out
    start = 0.0
    for t in range(round_plan.steps):
        counts = round_plan.samples[t]
        rows = tl[tl.batch == t]
        takers = {inst.clients[j] for j in np.flatnonzero(counts > 0)}
        assert set(rows.client) == takers  # no tasks for a client with 0 samples
        sub = step_instance(inst, round_plan, t, built.workload)
        tasks = [
            Task(r.client, r.helper, r.phase, r.start - start, r.end - start, 0) for r in rows.itertuples()
        ]
        assignment = {c: schedule.assignment[c] for c in sub.clients}
        done = {c: float(rows[(rows.client == c) & (rows.phase == "bwd")].end.iloc[0]) for c in sub.clients}
        ends = {
            c: done[c] - start + sub.tail[sub.client_index[c], sub.helper_index[assignment[c]]] for c in done
        }
        sched = Schedule(sub.name, "step", "feasible", max(ends.values()), None, 0.0, assignment, tasks)
        assert validate(sub, sched) == []
        start += max(ends.values())  # the barrier: the next step starts when this one's last client is done


def _round_plan(result):
    prep = prepare_training(result.record.instance, result.config, result.record.config.seed)
    return prep.planner(0, [])


def test_rounds_csv_has_the_spread_and_steps_per_round_cut_epochs(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["train", "--dataset", "synthetic:n=100,test=32", "--model", "mlp", "--strategy", "psl"]
    assert (
        main(
            [
                *args,
                "--sampler",
                "ugs",
                "--global-batch",
                "20",
                "--steps-per-round",
                "2",
                "--rounds",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rounds = pd.read_csv(out / "rounds.csv")
    assert rounds["steps"].tolist() == [2, 2, 2, 2]
    assert (rounds["samples_per_step_max"] == 20).all()
    assert (rounds["clients_per_step_min"] >= 1).all() and (rounds["clients_per_step_max"] <= 20).all()
    printed = capsys.readouterr().out
    training = next(line for line in printed.splitlines() if line.startswith("training"))
    assert (
        "global batch 20" in training and "batch 16" not in training
    )  # the sampler's batch, not the unused one
    assert "sampling" in printed


@pytest.mark.parametrize(
    "args, field",
    [
        (["--sampler", "gps"], "--sampler"),
        (["--sampler", "lds:tilt=-1"], "--sampler.tilt"),
        (["--sampler", "lds:speed=2"], "--sampler.speed"),
        (["--sampler", "ugs", "--global-batch", "5000"], "--global-batch"),
        (["--global-batch", "32"], "--global-batch"),
        (["--steps-per-round", "3"], "--steps-per-round"),
        (["--sampler", "ugs", "--batches-per-round", "3"], "--batches-per-round"),
    ],
)
def test_bad_sampler_input_is_one_line_exit_2(tmp_path, capsys, args, field):
    out = tmp_path / "o"
    base = ["train", "--dataset", "synthetic:n=200", "--strategy", "psl", "--rounds", "1"]
    code = main([*base, *args, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and field in err[0]
    assert not out.exists()


@pytest.mark.parametrize("strategy", ["splitfed1", "splitfed2", "locsplitfed", "splitfed1:batched=true"])
def test_a_sampler_with_a_strategy_of_per_client_copies_is_refused(tmp_path, capsys, strategy):
    """No global batch forms one update where every client steps its own copy: one line naming the way out."""
    out = tmp_path / "o"
    argv = [
        "train",
        "--dataset",
        "synthetic:n=200",
        "--strategy",
        strategy,
        "--sampler",
        "ugs",
        "--rounds",
        "1",
    ]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sched: error: --sampler: global sampling needs")
    assert "locfedmix, psl, sglr" in err[0] and not out.exists()


@pytest.mark.parametrize("strategy", ["psl", "sglr", "locfedmix"])
def test_the_synchronous_strategies_take_a_sampler(strategy):
    cfg = TrainConfig(
        dataset="synthetic:n=64,test=16", model="mlp", strategy=strategy, sampler="ugs", global_batch=16
    )
    built = client_heavy_testbed(clients=4)
    prep = prepare_training(built.instance, cfg, 0)
    assert prep.planner(0, []).samples.sum() == len(prep.dataset.y_train)  # the epoch: every sample once


def test_psl_rounds_exchange_no_client_weights_so_steps_per_round_only_sets_the_reporting():
    """PSL's clients share one model: a round end costs nothing, so cutting an epoch into rounds keeps its time."""
    built = client_heavy_testbed(clients=4)
    schedule = greedy_schedule(built.instance)
    total = {}
    for per_round, rounds in ((4, 1), (2, 2), (1, 4)):
        cfg = TrainConfig(
            dataset="synthetic:n=64,test=16",
            model="mlp",
            strategy="psl",
            sampler="ugs",
            global_batch=16,
            steps_per_round=per_round,
        )
        res = run_training(
            built.instance, built.workload, schedule, SimConfig(rounds=rounds), cfg, cost_only=True
        )
        total[per_round] = res.summary()["virtual_time_ms"]
        assert (res.rounds["bytes_sent"] > 0).all()
    assert total[4] == pytest.approx(total[2], rel=1e-9) and total[2] == pytest.approx(total[1], rel=1e-9)
