"""Split training on the simulator's clock: equivalences, event order, determinism, resume, learning."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pslsched.cli import main
from pslsched.core.schedule import Schedule
from pslsched.core.testbed import build, default_testbed_path, load_testbed, parse_testbed
from pslsched.core.timing import earliest_schedule
from pslsched.core.validate import validate
from pslsched.simulator import SimConfig, parse_stragglers, plan_instance
from pslsched.solvers import solve
from pslsched.training import TrainConfig, make_plan, prepare_training, profile_batch, run_training, seeds

torch.set_num_threads(1)

SYN = "synthetic:n=96,test=64"


def tiny(clients: int = 3, helpers: int = 1, memory_mb: float = 8192):
    """A small testbed: ResNet-101 profile costs, one client group on d1, one helper group on the VM."""
    return build(
        parse_testbed(
            {
                "name": "tiny",
                "seed": 1,
                "model": {"profile": "resnet101_cifar10"},
                "cuts": {"a": 2, "b": 35},
                "helpers": [{"name": "h", "count": helpers, "device": "VM", "memory_mb": memory_mb}],
                "clients": [
                    {
                        "name": "c",
                        "count": clients,
                        "device": "d1",
                        "uplink_mbps": {"dist": "uniform", "low": 5, "high": 40},
                        "latency_ms": 2,
                    }
                ],
            }
        )
    )


def greedy(built):
    res = solve(built.instance, "greedy", time_limit=5)
    assert validate(built.instance, res.schedule) == []
    return res.schedule


def params(parts: dict[str, nn.Module]) -> list[torch.Tensor]:
    return [p.detach().clone() for k in ("head", "body", "tail") for p in parts[k].parameters()]


def max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def client_order(client_data, seed: int, r: int, j: int, need: int) -> np.ndarray:
    """The order client j reads its samples in round r (as documented in TrainingHooks)."""
    idx = client_data[j]
    rng = np.random.default_rng([seeds(seed)["order"], r, j, 11])
    reps = max(1, -(-need // len(idx)))
    return np.concatenate([idx[rng.permutation(len(idx))] for _ in range(reps)])


@pytest.mark.parametrize("strategy", ["splitfed1", "splitfed2", "psl"])
def test_one_client_equals_unsplit_training(strategy):
    built = tiny(clients=1)
    cfg = TrainConfig(dataset=SYN, model="cnn", strategy=strategy, optimizer="sgd", lr=0.1, batch_size=16)
    sim = SimConfig(rounds=2, seed=3)
    result = run_training(built.instance, built.workload, greedy(built), sim, cfg)
    # the same initial model, data and batches, trained as one network without any simulator
    ref = prepare_training(built.instance, cfg, seed=3)
    model = nn.Sequential(ref.parts["head"], ref.parts["body"], ref.parts["tail"])
    x, y = ref.dataset.x_train, ref.dataset.y_train
    n = len(ref.client_data[0])
    for r in range(2):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        order = client_order(ref.client_data, 3, r, 0, n)
        for s in range(0, n, 16):
            sel = torch.from_numpy(order[s : s + 16])
            opt.zero_grad()
            F.cross_entropy(model(x[sel]), y[sel]).backward()
            opt.step()
    assert result.rounds["samples"].tolist() == [n, n]
    assert max_diff(params(result.parts), params(ref.parts)) < 1e-5


def test_splitfed1_one_step_is_fedsgd():
    """One SGD step per client, no momentum, FedAvg by samples == one step on the weighted mean gradient."""
    built = tiny(clients=4, helpers=2)
    cfg = TrainConfig(
        dataset="synthetic:n=90,test=32",
        model="mlp",
        partition="quantity:1",
        optimizer="sgd",
        lr=0.5,
        batch_size=128,
    )
    result = run_training(built.instance, built.workload, greedy(built), SimConfig(rounds=1, seed=5), cfg)
    ref = prepare_training(built.instance, cfg, seed=5)
    sizes = [len(c) for c in ref.client_data]
    assert len(set(sizes)) > 1  # unequal weights: the identity is not trivial
    model = nn.Sequential(ref.parts["head"], ref.parts["body"], ref.parts["tail"])
    x, y = ref.dataset.x_train, ref.dataset.y_train
    total = [torch.zeros_like(p) for p in model.parameters()]
    for j, n in enumerate(sizes):
        sel = torch.from_numpy(client_order(ref.client_data, 5, 0, j, n)[:n])
        model.zero_grad()
        F.cross_entropy(model(x[sel]), y[sel]).backward()
        for acc, p in zip(total, model.parameters()):
            acc += p.grad * (n / sum(sizes))
    with torch.no_grad():
        for p, g in zip(model.parameters(), total):
            p -= 0.5 * g
    assert max_diff(params(result.parts), params(ref.parts)) < 1e-5
    # and it moved: a model that did not train would fail the comparison above only by chance
    fresh = prepare_training(built.instance, cfg, seed=5)
    assert max_diff(params(result.parts), params(fresh.parts)) > 1e-3


def _hand_schedule(built, order):
    inst = built.instance
    tasks, completion = earliest_schedule(inst, [0] * inst.num_clients, [order])
    assignment = {c: inst.helpers[0] for c in inst.clients}
    sched = Schedule(
        inst.name, "hand", "feasible", float(np.nanmax(completion)), None, 0.0, assignment, tasks
    )
    assert validate(inst, sched) == []
    return sched


SEQ_0 = [(0, "fwd", 0), (0, "bwd", 0), (1, "fwd", 0), (1, "bwd", 0)]
SEQ_1 = [(1, "fwd", 0), (1, "bwd", 0), (0, "fwd", 0), (0, "bwd", 0)]
INTERLEAVED = [(0, "fwd", 0), (1, "fwd", 0), (0, "bwd", 0), (1, "bwd", 0)]


@pytest.mark.parametrize(
    ("spec", "planned", "executed", "stale"),
    [
        ("splitfed2", SEQ_0, SEQ_0, None),
        ("splitfed2", SEQ_1, SEQ_1, None),
        # sequential (the default, as published): an interleaved plan's forwards, each followed by its backward
        ("splitfed2", INTERLEAVED, SEQ_0, None),
        # interleaved: client 1's backward comes after the body stepped on client 0's: one step stale
        ("splitfed2:order=interleaved", INTERLEAVED, INTERLEAVED, (0.5, 1.0)),
    ],
)
def test_splitfed2_follows_the_helpers_order(spec, planned, executed, stale):
    built = tiny(clients=2)
    cfg = TrainConfig(
        dataset=SYN,
        model="mlp",
        strategy=spec,
        optimizer="sgd",
        lr=0.3,
        batch_size=8,
        batches_per_round=1,
    )
    res = run_training(built.instance, built.workload, _hand_schedule(built, planned), SimConfig(seed=2), cfg)
    done = res.record.timeline.sort_values("start")
    assert [(int(built.instance.client_index[c]), p) for c, p in zip(done.client, done.phase)] == [
        (j, p) for j, p, _ in executed
    ]
    if stale is None:
        assert "stale_mean" not in res.metrics
    else:
        assert (res.metrics["stale_mean"].iloc[0], res.metrics["stale_max"].iloc[0]) == stale
        assert (res.summary()["stale_mean"], res.summary()["stale_max"]) == stale
    # replay the order by hand: the body steps after each client's backward, in the helper's order, and a
    # backward's gradient is taken at the weights its forward used
    ref = prepare_training(built.instance, cfg, seed=2)
    x, y = ref.dataset.x_train, ref.dataset.y_train
    head, body, tail = ref.parts["head"], ref.parts["body"], ref.parts["tail"]
    heads = [[p.detach().clone() for p in head.parameters()] for _ in range(2)]
    tails = [[p.detach().clone() for p in tail.parameters()] for _ in range(2)]
    body_w = [p.detach().clone() for p in body.parameters()]
    saved = {}
    for j, phase, _ in executed:
        sel = torch.from_numpy(client_order(ref.client_data, 2, 0, j, 8)[:8])
        if phase == "fwd":
            saved[j] = [w.clone().requires_grad_(True) for w in body_w]
            continue
        hw = [w.clone().requires_grad_(True) for w in heads[j]]
        tw = [w.clone().requires_grad_(True) for w in tails[j]]
        out = torch.func.functional_call(
            head, dict(zip([n for n, _ in head.named_parameters()], hw)), (x[sel],)
        )
        out = torch.func.functional_call(
            body, dict(zip([n for n, _ in body.named_parameters()], saved[j])), (out,)
        )
        out = torch.func.functional_call(tail, dict(zip([n for n, _ in tail.named_parameters()], tw)), (out,))
        F.cross_entropy(out, y[sel]).backward()
        body_w = [w - 0.3 * s.grad for w, s in zip(body_w, saved[j])]
        heads[j] = [w.detach() - 0.3 * w.grad for w in hw]
        tails[j] = [w.detach() - 0.3 * w.grad for w in tw]
    expect = (
        [(heads[0][k] + heads[1][k]) / 2 for k in range(len(heads[0]))]
        + body_w
        + [(tails[0][k] + tails[1][k]) / 2 for k in range(len(tails[0]))]
    )
    assert max_diff(params(res.parts), [e.detach() for e in expect]) < 1e-5


def test_splitfed2_orders_differ_in_what_they_train():
    built = tiny(clients=2)
    trained = {}
    for name, order in (("0 first", SEQ_0), ("1 first", SEQ_1)):
        cfg = TrainConfig(
            dataset=SYN, model="mlp", strategy="splitfed2", lr=0.3, batch_size=8, batches_per_round=1
        )
        res = run_training(
            built.instance, built.workload, _hand_schedule(built, order), SimConfig(seed=2), cfg
        )
        trained[name] = params(res.parts)
    assert max_diff(trained["0 first"], trained["1 first"]) > 1e-4


def test_cost_only_has_the_same_clock_and_the_round_validates():
    built = tiny(clients=4, helpers=2)
    schedule = greedy(built)
    cfg = TrainConfig(dataset=SYN, model="mlp", batch_size=8, batches_per_round=2)
    sim = SimConfig(rounds=2, seed=1)
    trained = run_training(built.instance, built.workload, schedule, sim, cfg)
    cost = run_training(built.instance, built.workload, schedule, sim, cfg, cost_only=True)
    pd.testing.assert_frame_equal(trained.record.timeline, cost.record.timeline)
    assert trained.record.makespans == cost.record.makespans
    assert cost.metrics["test_accuracy"].isna().all() and trained.metrics["test_accuracy"].notna().all()
    plan = trained.rounds  # every round ran 2 batches of 8 samples per client
    assert (plan["samples"] == 4 * 2 * 8).all()
    inst = plan_instance(built.instance, run_plan(trained), built.workload)
    for r in range(2):
        sched = trained.record.round_schedule(r)
        assert validate(inst, sched) == []
    # half the samples, a shorter round: the clock follows the samples
    half = run_training(
        built.instance,
        built.workload,
        schedule,
        sim,
        cfg.model_copy(update={"batch_size": 4}),
        cost_only=True,
    )
    assert half.record.makespans[0] < cost.record.makespans[0]


def run_plan(result):
    cfg = result.config
    k = result.record.instance.num_clients
    unit = profile_batch(cfg, result.record.instance)
    return make_plan(np.ones(k, dtype=int), cfg.batch_size, unit, False, cfg.batches_per_round)


def test_psl_steps_are_synchronous():
    built = tiny(clients=3, helpers=2)
    cfg = TrainConfig(dataset=SYN, model="mlp", strategy="psl", batch_size=8, batches_per_round=3)
    res = run_training(built.instance, built.workload, greedy(built), SimConfig(seed=0), cfg)
    tl = res.record.timeline
    for t in range(2):
        assert tl[tl.batch == t + 1].start.min() >= tl[tl.batch == t].end.max()
    assert res.metrics["test_accuracy"].notna().all()


def _stopped_and_resumed(built, schedule, sim, cfg, out):
    """The run stopped after its first round, then resumed to ``sim.rounds``."""
    one = sim.model_copy(update={"rounds": 1})
    run_training(built.instance, built.workload, schedule, one, cfg, out=out)
    return run_training(built.instance, built.workload, schedule, sim, cfg, out=out, resume=True)


def test_same_seed_same_bits_other_seed_differs_and_resume(tmp_path):
    built = tiny(clients=3)
    schedule = greedy(built)
    cfg = TrainConfig(dataset=SYN, model="cnn", partition="dirichlet:0.5", batch_size=8)
    sim = SimConfig(rounds=3, seed=4, stragglers=parse_stragglers("mild"))
    a = run_training(built.instance, built.workload, schedule, sim, cfg, out=tmp_path / "a")
    b = run_training(built.instance, built.workload, schedule, sim, cfg)
    c = run_training(built.instance, built.workload, schedule, sim.model_copy(update={"seed": 5}), cfg)
    assert a.metrics["test_loss"].tolist() == b.metrics["test_loss"].tolist()
    assert a.record.makespans == b.record.makespans
    assert a.metrics["test_loss"].tolist() != c.metrics["test_loss"].tolist()
    # stop after one round, resume to three: the same run
    resumed = _stopped_and_resumed(built, schedule, sim, cfg, tmp_path / "r")
    assert resumed.metrics["test_loss"].tolist() == a.metrics["test_loss"].tolist()
    assert resumed.record.makespans == a.record.makespans
    assert max_diff(params(resumed.parts), params(a.parts)) == 0.0
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "r" / "rounds.csv").drop(columns="wall_s"),
        pd.read_csv(tmp_path / "a" / "rounds.csv").drop(columns="wall_s"),
    )


@pytest.mark.parametrize("strategy", ["psl", "sglr:p=0.5,off=0.5"])
def test_resume_continues_the_optimizer_state_that_lives_across_rounds(tmp_path, strategy):
    """PSL's and SGLR's Adam moments live on across rounds: the checkpoint carries them, so a resumed run is the
    same run bit for bit (a fresh state at the resume would differ)."""
    built = tiny(clients=3, helpers=2)
    schedule = greedy(built)
    cfg = TrainConfig(dataset=SYN, model="mlp", strategy=strategy, optimizer="adam", batch_size=8)
    sim = SimConfig(rounds=3, seed=4)
    whole = run_training(built.instance, built.workload, schedule, sim, cfg, out=tmp_path / "a")
    resumed = _stopped_and_resumed(built, schedule, sim, cfg, tmp_path / "r")
    assert max_diff(params(resumed.parts), params(whole.parts)) == 0.0
    assert resumed.metrics["test_loss"].tolist() == whole.metrics["test_loss"].tolist()


def test_digits_default_testbed_splitfed1_reaches_90_percent():
    built = build(load_testbed(default_testbed_path()))
    assert built.instance.num_clients == 24
    cfg = TrainConfig(dataset="digits", strategy="splitfed1")
    res = run_training(built.instance, built.workload, greedy(built), SimConfig(rounds=20, seed=0), cfg)
    acc = res.metrics["test_accuracy"]
    assert acc.max() >= 0.9, acc.tolist()
    assert acc.iloc[-1] > acc.iloc[0] + 0.3
    s = res.summary()
    assert s["time_to_accuracy_ms"] is not None and s["time_to_accuracy_ms"] <= s["virtual_time_ms"]


# --- the command line -----------------------------------------------------------------------------------------


def test_cli_cost_only_rounds_show_no_loss(capsys):
    """A cost-only round computes no loss: its progress line has none (no ``loss nan`` that reads as divergence)."""
    assert main(["train", "--cost-only", "--rounds", "2", "--dataset", "digits", "--threads", "1"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("round ")]
    assert len(lines) == 2 and all("virtual" in line and "loss" not in line for line in lines), lines


def test_cli_train_writes_its_files(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--dataset", SYN, "--model", "mlp", "--rounds", "2", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "virtual time" in text
    for name in (
        "rounds.csv",
        "timeline.csv",
        "summary.json",
        "curves.png",
        "settings.json",
        "schedule.json",
    ):
        assert (out / name).is_file(), name
    rounds = pd.read_csv(out / "rounds.csv")
    for col in (
        "makespan_ms",
        "round_time_ms",
        "samples",
        "train_loss",
        "test_loss",
        "test_accuracy",
        "wall_s",
    ):
        assert col in rounds.columns
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "final_accuracy",
        "best_accuracy",
        "time_to_accuracy_ms",
        "virtual_time_ms",
        "wall_s",
        "settings",
    ):
        assert key in summary
    # resume with more rounds continues from round 2, trained as the run was
    assert main(["train", "--resume", str(out), "--rounds", "3"]) == 0
    rounds = pd.read_csv(out / "rounds.csv")
    assert len(rounds) == 3 and rounds["train_loss"].notna().all()


def test_cli_list(capsys):
    assert main(["train", "--list"]) == 0
    text = capsys.readouterr().out
    for word in (
        "datasets:",
        "digits",
        "models:",
        "cnn",
        "strategies:",
        "splitfed2",
        "partitions:",
        "dirichlet",
    ):
        assert word in text


def test_cli_compare_solvers(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = [
        "train",
        "--dataset",
        SYN,
        "--model",
        "mlp",
        "--rounds",
        "2",
        "--compare-solvers",
        "random,greedy",
    ]
    assert main([*args, "--out", str(out)]) == 0
    table = pd.read_csv(out / "compare.csv")
    assert table["solver"].tolist() == ["random", "greedy"]
    assert (out / "compare.png").is_file() and (out / "greedy" / "rounds.csv").is_file()


@pytest.mark.parametrize(
    "args, field",
    [
        (["--dataset", "imagenet"], "--dataset"),
        (["--model", "vgg"], "--model"),
        (["--strategy", "fedprox"], "--strategy"),
        (["--partition", "zipf"], "--partition"),
        (["--partition", "dirichlet:-1"], "--partition"),
        (["--cuts", "0,2"], "--cuts"),
        (["--cuts", "2,9"], "--cuts"),
        (["--cuts", "x"], "--cuts"),
        (["--dataset", "mnist"], "--data-dir"),
        (["--clients", "200", "--dataset", "synthetic:n=100"], "--clients"),
        (["--strategy", "splitfed1:foo=1"], "--strategy"),
    ],
)
def test_cli_bad_input_one_line_exit_2(tmp_path, capsys, args, field):
    out = tmp_path / "out"
    code = main(["train", "--rounds", "1", *args, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and field in err[0] and "Traceback" not in err[0]
    assert not out.exists()


def test_cli_missing_data_files_name_the_file(tmp_path, capsys):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 12)
    code = main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--rounds", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "idx" in err.lower()


def test_cli_partition_leaving_a_client_empty(capsys):
    code = main(
        [
            "train",
            "--dataset",
            "synthetic:n=40",
            "--partition",
            "classes:1",
            "--clients",
            "20",
            "--rounds",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code in (0, 2)  # classes:1 may or may not cover every client; when it cannot, one line
    if code == 2:
        assert "--partition" in err


def test_cli_diverged_exit_3_keeps_files(tmp_path, capsys):
    out = tmp_path / "nan"
    code = main(
        [
            "train",
            "--dataset",
            SYN,
            "--model",
            "mlp",
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--rounds",
            "3",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert "diverged" in err and "round" in err
    assert (out / "settings.json").is_file() and (out / "summary.json").is_file()


def test_cli_train_on_the_clock_of_the_measured_model(tmp_path, monkeypatch, capsys):
    """model: {measure: NAME}: the testbed's clock is that model measured here, and sched train trains it."""
    monkeypatch.setenv("PSL_SCHED_CACHE", str(tmp_path / "cache"))
    testbed = tmp_path / "t.yaml"
    testbed.write_text(
        "name: measured\nmodel: {measure: mlp, batch: 16, input_shape: [1, 8, 8]}\ncuts: {a: 1, b: 3}\n"
        "helpers: [{name: vm, device: here, memory_mb: 2048}]\n"
        "clients: [{name: c, count: 3, device: here, uplink_mbps: 20, latency_ms: 2}]\n"
        "training: {dataset: 'synthetic:n=48,test=16'}\n"
    )
    assert main(["train", "--profile", str(testbed), "--rounds", "1", "--threads", "1"]) == 0
    assert "model mlp cut at 1,3" in capsys.readouterr().out


def test_cli_diverged_in_the_first_round_exit_3_with_an_empty_summary(tmp_path, capsys):
    out = tmp_path / "nan0"
    argv = ["train", "--dataset", "digits", "--optimizer", "sgd", "--lr", "1e9", "--rounds", "2"]
    code = main([*argv, "--threads", "1", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 3, captured.err
    assert "diverged" in captured.err and "round 1" in captured.err
    assert "Traceback" not in captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rounds"] == 0 and summary["mean_round_time_ms"] is None


def _cost_only_round_ms(tmp_path, name: str, *extra: str) -> float:
    out = tmp_path / name
    argv = [
        "train",
        "--profile",  # the former default: helpers dominate, so a straggling client is worth re-planning around
        str(default_testbed_path().parent / "examples" / "forced_memory.yaml"),
        "--dataset",
        "digits",
        "--clients",
        "6",
        "--cost-only",
        "--rounds",
        "4",
        "--threads",
        "1",
    ]
    assert main([*argv, *extra, "--out", str(out)]) == 0
    return json.loads((out / "summary.json").read_text())["mean_round_time_ms"]


def test_replan_in_training_plans_the_round_the_clock_runs(tmp_path):
    """replan re-solves the round instance (the plan's steps), not one profile batch: with nothing to react to it
    keeps the schedule (it made rounds 40% longer when it re-solved the profile batch), and persistent stragglers
    make it pay off."""
    solver = ["--solver", "auto", "--time-limit", "3", "--workers", "1"]
    static = _cost_only_round_ms(tmp_path, "s", *solver)
    assert _cost_only_round_ms(tmp_path, "r", *solver, "--policy", "replan") == pytest.approx(static)
    slow = ["--solver", "greedy", "--stragglers", "client:slow:p=0.3,factor=5,per=run"]
    slow_static = _cost_only_round_ms(tmp_path, "ss", *slow)
    assert _cost_only_round_ms(tmp_path, "sr", *slow, "--policy", "replan") < 0.9 * slow_static


def _result_with(accuracy, loss, chance=None):
    from pslsched.training.results import Chance, TrainResult

    metrics = pd.DataFrame(
        {"round": range(len(accuracy)), "test_accuracy": accuracy, "train_loss": loss, "wall_s": 0.0}
    )
    return TrainResult(None, metrics, None, "cnn", (1, 5), chance=chance or Chance(0.1, 360, 10))


@pytest.mark.parametrize(
    ("accuracy", "loss", "collapsed"),
    [
        ([0.5, 0.1, 0.11, 0.1], [2.0, 2.3, 2.2, 2.25], "test accuracy"),  # chance in the last 3 rounds
        ([0.1, 0.1, 0.16, 0.1], [2.0, 2.0, 2.0, 2.0], None),  # 0.16 > 0.1 + 3 x 0.0158: it learned something
        ([0.3, 0.4, 0.4, 0.4], [2.0, 2.4, 2.5, 3.6], "training loss"),  # above a uniform guess's ln(10)
        ([0.3, 0.4, 0.4, 0.4], [2.0, 2.4, 2.5, 2.2], None),
        ([0.1, 0.1], [2.4, 2.4], None),  # too few rounds to say
        ([np.nan] * 4, [np.nan] * 4, None),  # cost only: nothing measured
    ],
)
def test_collapse_is_chance_accuracy_or_a_uniform_guess_loss(accuracy, loss, collapsed):
    reason = _result_with(accuracy, loss).collapsed
    assert (reason is None) if collapsed is None else reason.startswith(collapsed)


def test_a_collapsed_run_says_so_in_one_line_and_exits_5(tmp_path, capsys):
    """Adam at lr 1 silences the ReLU units of the cnn: no NaN, accuracy at chance (as SGLR's N^p server rate did
    before its optimizer state persisted): a line, ``collapsed`` in the summary, exit 5."""
    out = tmp_path / "c"
    argv = ["train", "--dataset", "digits", "--threads", "1", "--strategy", "psl", "--optimizer", "adam"]
    assert main([*argv, "--lr", "1", "--rounds", "4", "--out", str(out)]) == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sched: error: training collapsed:")
    assert json.loads((out / "summary.json").read_text())["collapsed"]


def test_resume_refuses_options_it_would_ignore(tmp_path, capsys):
    """A resume continues exactly its run: another option is refused naming it (exit 2, nothing run), so is a
    --rounds that is not more than the rounds done; more rounds continue it."""
    out = tmp_path / "run"
    base = ["train", "--dataset", "digits", "--rounds", "2", "--threads", "1", "--cost-only"]
    assert main([*base, "--out", str(out)]) == 0
    capsys.readouterr()
    for extra, flag in (
        (["--dataset", "mnist5k"], "--dataset"),
        (["--strategy", "psl"], "--strategy"),
        (["--lr", "0.5"], "--lr"),
        (["--out", str(tmp_path / "elsewhere")], "--out"),
        (["--rounds", "1"], "--rounds"),
        (["--rounds", "2"], "--rounds"),
    ):
        assert main(["train", "--resume", str(out), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and flag in err, err
    assert not (tmp_path / "elsewhere").exists()
    assert main(["train", "--resume", str(out), "--rounds", "3"]) == 0
    rounds = pd.read_csv(out / "rounds.csv")
    assert len(rounds) == 3 and rounds["train_loss"].isna().all()  # a cost-only run resumes cost-only
