"""SGLR and LocSplitFed: reductions, the broadcast, no return gradient, their clocks, bad knobs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from pslsched.cli import main
from pslsched.core.testbed import build, parse_testbed
from pslsched.core.validate import validate
from pslsched.models.zoo import MODELS, block, register_model
from pslsched.simulator import RecordingHooks, RoundPlan, SimConfig, simulate
from pslsched.solvers import solve
from pslsched.training import TrainConfig, prepare_training, run_training

torch.set_num_threads(1)

SYN = "synthetic:n=96,test=64"


def make_testbed(clients: int, helpers: int = 1):
    return build(
        parse_testbed(
            {
                "name": "scaling",
                "seed": 2,
                "model": {"profile": "resnet101_cifar10"},
                "cuts": {"a": 2, "b": 35},
                "helpers": [
                    {"name": "h", "count": helpers, "device": "VM", "memory_mb": 100000, "nic_mbps": 100}
                ],
                "clients": [
                    {
                        "name": "c",
                        "count": clients,
                        "device": "jetson-gpu",
                        "uplink_mbps": 20,
                        "latency_ms": 1,
                    }
                ],
            }
        )
    )


def schedule_of(built):
    schedule = solve(built.instance, "greedy", time_limit=5).schedule
    assert validate(built.instance, schedule) == []
    return schedule


def params(parts, names=("head", "body", "tail")):
    return [p.detach().clone() for k in names for p in parts[k].parameters()]


def test_sglr_with_one_client_and_p0_is_psl():
    built = make_testbed(1)
    sched = schedule_of(built)
    runs = {}
    for spec in ("psl", "sglr:p=0,off=1"):
        cfg = TrainConfig(dataset=SYN, model="cnn", strategy=spec, optimizer="sgd", lr=0.1, batch_size=16)
        runs[spec] = params(
            run_training(built.instance, built.workload, sched, SimConfig(rounds=2), cfg).parts
        )
    diff = max(float((a - b).abs().max()) for a, b in zip(runs["psl"], runs["sglr:p=0,off=1"]))
    assert diff < 1e-6


def test_sglr_broadcasts_one_gradient_until_the_switch_off():
    from pslsched.training import runner

    built = make_testbed(4, helpers=2)
    sched = schedule_of(built)
    cfg = TrainConfig(dataset=SYN, model="mlp", strategy="sglr:off=0.5", batch_size=8, batches_per_round=2)
    seen = {}
    original = runner.prepare_training

    def recording_prepare(*args, **kwargs):
        prep = original(*args, **kwargs)
        prep.strategy.record = True
        seen["strategy"] = prep.strategy
        return prep

    runner.prepare_training = recording_prepare
    try:
        res = run_training(built.instance, built.workload, sched, SimConfig(rounds=4, links="shared"), cfg)
    finally:
        runner.prepare_training = original
    strategy = seen["strategy"]
    assert strategy.broadcasts and {r for r, _, _ in strategy.broadcasts} == {0, 1}  # rounds 2, 3: own slices
    for _, _, got in strategy.broadcasts:
        tensors = list(got.values())
        assert len(tensors) >= 1 and all(torch.equal(tensors[0], g) for g in tensors)
    # all client models stay identical: the clients share one head and tail (PSL), updated by the same gradient
    assert strategy.head(0) is strategy.head(3) and strategy.tail(1) is strategy.tail(2)
    # the broadcast is sent once per helper: fewer bytes than the unicast rounds after the switch-off
    assert res.rounds["bytes_sent"].iloc[0] < res.rounds["bytes_sent"].iloc[3]
    assert res.metrics["test_accuracy"].notna().all()


def _register_split_pair():
    """Two models with the same head and tail weights and different bodies (for a given torch seed)."""

    def make(body_seed):
        def build_blocks(input_shape, num_classes):
            c, h, w = input_shape
            head = block("fc1", nn.Flatten(), nn.Linear(c * h * w, 32), nn.ReLU())
            tail = block("out", nn.Linear(32, num_classes))
            with torch.random.fork_rng():
                torch.manual_seed(body_seed)
                body = block("fc2", nn.Linear(32, 32), nn.ReLU())
            return [head, body, tail]

        return build_blocks

    for name, seed in (("loc_a", 1), ("loc_b", 2)):
        if name not in MODELS:
            register_model(name, "test pair", default_cuts=(1, 2))(make(seed))


def test_locsplitfed_heads_never_see_the_helper():
    _register_split_pair()
    built = make_testbed(3)
    sched = schedule_of(built)
    out = {}
    for model in ("loc_a", "loc_b"):
        cfg = TrainConfig(
            dataset=SYN, model=model, strategy="locsplitfed", optimizer="sgd", lr=0.2, batch_size=8
        )
        out[model] = run_training(built.instance, built.workload, sched, SimConfig(rounds=2), cfg).parts
    for a, b in zip(params(out["loc_a"], ("head", "aux")), params(out["loc_b"], ("head", "aux"))):
        assert torch.equal(a, b)  # the body changed, no client part did
    assert any(
        not torch.equal(a, b)
        for a, b in zip(params(out["loc_a"], ("tail",)), params(out["loc_b"], ("tail",)))
    )


def test_locsplitfed_has_no_return_transfer_and_is_never_slower_than_splitfed1():
    built = make_testbed(5, helpers=2)
    sched = schedule_of(built)
    samples = np.full((3, 5), 16)
    record = RecordingHooks()
    simulate(
        built.instance,
        sched,
        SimConfig(),
        workload=built.workload,
        hooks=record,
        plan=lambda r, res: RoundPlan(samples, 128.0, return_grad=False),
    )
    kinds = {s.kind for s in record.steps}
    assert "download_a" not in kinds and {"upload_a", "body_bwd", "head_bwd"} <= kinds
    for policy in ("static", "fcfs"):
        times = {}
        for spec in ("splitfed1", "locsplitfed"):
            cfg = TrainConfig(dataset=SYN, model="mlp", strategy=spec, batch_size=8)
            sim = SimConfig(rounds=2, policy=policy)
            res = run_training(built.instance, built.workload, sched, sim, cfg, cost_only=True)
            times[spec] = res.rounds["round_time_ms"].to_numpy()
        assert (times["locsplitfed"] <= times["splitfed1"] + 1e-9).all()
        assert (times["locsplitfed"] < times["splitfed1"]).any()


def test_locfedmix_with_everything_off_and_one_client_is_psl():
    built = make_testbed(1)
    sched = schedule_of(built)
    runs = {}
    for spec in ("psl", "locfedmix:mix=0,loc=0,fed=1"):
        cfg = TrainConfig(dataset=SYN, model="cnn", strategy=spec, optimizer="sgd", lr=0.1, batch_size=16)
        runs[spec] = params(
            run_training(built.instance, built.workload, sched, SimConfig(rounds=2), cfg).parts
        )
    assert max(float((a - b).abs().max()) for a, b in zip(*runs.values())) < 1e-6


def test_locfedmix_mixup_trains_the_body_only():
    built = make_testbed(3)
    sched = schedule_of(built)
    out = {}
    for mix in ("1", "0"):
        cfg = TrainConfig(
            dataset=SYN,
            model="mlp",
            strategy=f"locfedmix:mix={mix},loc=0",
            optimizer="sgd",
            lr=0.3,
            batch_size=8,
            batches_per_round=1,
        )
        out[mix] = run_training(built.instance, built.workload, sched, SimConfig(rounds=1), cfg).parts
    # one step: every client's backward is done before the step's mix, so no client part may differ
    for part in ("head", "tail", "clients"):  # clients: every client's stacked head, tail and decoder
        assert all(
            torch.equal(a, b) for a, b in zip(out["1"][part].parameters(), out["0"][part].parameters())
        )
    assert any(
        not torch.equal(a, b) for a, b in zip(out["1"]["body"].parameters(), out["0"]["body"].parameters())
    )


def test_locfedmix_resume_keeps_the_clients_between_federations(tmp_path):
    built = make_testbed(3)
    sched = schedule_of(built)
    cfg = TrainConfig(dataset=SYN, model="mlp", strategy="locfedmix:fed=2", batch_size=8)
    full = run_training(built.instance, built.workload, sched, SimConfig(rounds=3), cfg)
    run_training(built.instance, built.workload, sched, SimConfig(rounds=2), cfg, out=tmp_path)
    resumed = run_training(
        built.instance, built.workload, sched, SimConfig(rounds=3), cfg, out=tmp_path, resume=True
    )
    assert resumed.metrics["test_loss"].tolist() == full.metrics["test_loss"].tolist()
    for key in full.parts:
        assert all(
            torch.equal(a, b) for a, b in zip(full.parts[key].parameters(), resumed.parts[key].parameters())
        )


@pytest.mark.parametrize(
    "spec, field",
    [
        ("sglr:p=-1", "--strategy.p"),
        ("sglr:off=2", "--strategy.off"),
        ("sglr:q=1", "--strategy.q"),
        ("locsplitfed:x=1", "--strategy.x"),
    ],
)
def test_bad_knobs_one_line_exit_2(capsys, spec, field):
    assert main(["train", "--dataset", SYN, "--rounds", "1", "--strategy", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0]


def test_the_registry_is_complete_and_every_strategy_is_concrete():
    """``import pslsched.training.strategies`` registers every family; no abstract hook is left unimplemented."""
    import inspect

    from pslsched.training.strategies import STRATEGIES, Strategy

    assert set(STRATEGIES.names()) == {"splitfed1", "splitfed2", "psl", "sglr", "locsplitfed", "locfedmix"}
    for entry in STRATEGIES.entries():
        assert issubclass(entry.fn, Strategy) and not inspect.isabstract(entry.fn), entry.name
        assert entry.fn.name == entry.name


def test_settings_are_given_at_construction_not_as_spec_options():
    from pslsched.base.errors import InputError
    from pslsched.training import OptimizerSpec, StrategySettings, make_strategy

    sglr = make_strategy("sglr:off=0.5", StrategySettings(OptimizerSpec("adam", 0.01), rounds=4, seed=9))
    assert (sglr.optimizer.name, sglr.rounds, sglr.seed) == ("adam", 4, 9)
    assert [sglr.averaging(r) for r in range(4)] == [True, True, False, False]
    for spec in ("sglr:rounds=4", "psl:seed=1", "splitfed1:settings=x"):
        with pytest.raises(InputError) as info:
            make_strategy(spec)
        assert info.value.field == f"--strategy.{spec.split(':')[1].split('=')[0]}"


def _centralised_sgd(built, cfg, rounds, seed=0):
    """The reference: one model, and at every step one SGD step on the mean loss over the union of the samples the
    step's clients process (the same initial weights and the same data order as the simulated run)."""
    import torch.nn.functional as F

    from pslsched.simulator import orders_from_schedule

    prep = prepare_training(built.instance, cfg, seed)
    model = nn.Sequential(prep.parts["head"], prep.parts["body"], prep.parts["tail"])
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    assign, _ = orders_from_schedule(built.instance, schedule_of(built))
    order = prep.executor(built.instance.clients, seed)
    steps = 0
    for r in range(rounds):
        plan = prep.planner(r, [])
        order.begin_round(r, plan, np.asarray(assign))
        for t in range(plan.steps):
            batches = [order.batch(j, t) for j in range(built.instance.num_clients) if plan.samples[t, j] > 0]
            x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            steps += 1
    return params({"head": model[0], "body": model[1], "tail": model[2]}), steps


@pytest.mark.parametrize(
    ("helpers", "batch", "optimizer"),
    [
        (1, 8, "sgd"),  # one helper: several steps per round, each one centralised step
        (
            2,
            96,
            "sgd",
        ),  # two helpers: one step per round (the bodies are averaged by samples at the round's end)
        # the optimizer's state lives on across rounds, as in a centralised loop
        (1, 8, "momentum"),
        (1, 8, "adam"),
    ],
)
def test_psl_is_centralised_sgd_on_the_union_of_each_steps_samples(helpers, batch, optimizer):
    """The premise of global sampling: a PSL step is one SGD step on the mean loss of all its samples (clients of
    unequal sizes, so a mean of per-client means would differ)."""
    built = make_testbed(5, helpers)
    cfg = TrainConfig(
        dataset=SYN,
        model="mlp",
        strategy="psl",
        optimizer="adam" if optimizer == "adam" else "sgd",
        momentum=0.9 if optimizer == "momentum" else 0.0,
        lr=0.01 if optimizer == "adam" else 0.5 if optimizer == "sgd" else 0.1,
        batch_size=batch,
        partition="quantity:1",
    )
    run = run_training(built.instance, built.workload, schedule_of(built), SimConfig(rounds=3), cfg)
    reference, steps = _centralised_sgd(built, cfg, rounds=3)
    assert steps >= (6 if helpers == 1 else 3)
    sizes = {len(c) for c in prepare_training(built.instance, cfg, 0).client_data}
    assert len(sizes) > 1  # unequal clients
    diff = max(float((a - b).abs().max()) for a, b in zip(params(run.parts), reference))
    assert diff < 1e-5


def _one_step(built, spec, partition="iid"):
    """The global model after one round of one step (every client's whole data as its batch), plain SGD."""
    cfg = TrainConfig(
        dataset=SYN, model="mlp", strategy=spec, optimizer="sgd", lr=0.2, batch_size=96, partition=partition
    )
    start = params(prepare_training(built.instance, cfg, 0).parts)
    run = run_training(built.instance, built.workload, schedule_of(built), SimConfig(rounds=1), cfg)
    return start, params(run.parts)


def test_sglr_scales_the_server_rate_by_the_clients_to_the_power_p():
    """Four split clients, p = 1: the body moves 4x as far as PSL's in the same first step; head and tail alike."""
    built = make_testbed(4)
    start, psl = _one_step(built, "psl")
    _, sglr = _one_step(built, "sglr:p=1,off=0")
    names = ("head", "body", "tail")
    cfg = TrainConfig(dataset=SYN, model="mlp", strategy="psl", batch_size=96)
    parts = prepare_training(built.instance, cfg, 0).parts
    kinds = [k for k in names for _ in parts[k].parameters()]
    for kind, s0, p, g in zip(kinds, start, psl, sglr):
        expected = s0 + (4.0 if kind == "body" else 1.0) * (p - s0)
        assert torch.allclose(g, expected, atol=1e-6), kind


def test_sglr_averaging_changes_what_the_shared_head_learns_and_switching_it_off_is_psl():
    """With the cut gradient averaged and broadcast, the head's update differs from PSL's (clients with different
    data); with averaging off and p = 0, SGLR is PSL exactly."""
    built = make_testbed(4)
    _, psl = _one_step(built, "psl")
    _, plain = _one_step(built, "sglr:p=0,off=0")
    _, averaged = _one_step(built, "sglr:p=0,off=1")
    assert max(float((a - b).abs().max()) for a, b in zip(psl, plain)) < 1e-7
    psl_cfg = TrainConfig(dataset=SYN, model="mlp", strategy="psl", batch_size=96)
    head = len(list(prepare_training(built.instance, psl_cfg, 0).parts["head"].parameters()))
    assert max(float((a - b).abs().max()) for a, b in zip(psl[:head], averaged[:head])) > 1e-4


def test_locfedmix_steps_its_body_on_the_mean_loss_of_the_steps_samples():
    """Clients of unequal sizes on one helper: LocFedMix's body (mix and loc off) takes PSL's body step, the
    gradient of the mean over all the step's samples (not an unweighted mean of per-client means)."""
    built = make_testbed(4)
    cfg = TrainConfig(dataset=SYN, model="mlp", strategy="psl", batch_size=96, partition="quantity:1")
    prep = prepare_training(built.instance, cfg, 0)
    assert len({len(c) for c in prep.client_data}) > 1
    body = len(list(prep.parts["head"].parameters())), len(list(prep.parts["body"].parameters()))
    window = slice(body[0], body[0] + body[1])
    _, psl = _one_step(built, "psl", "quantity:1")
    _, mixfree = _one_step(built, "locfedmix:mix=off,loc=off", "quantity:1")
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(psl[window], mixfree[window]))


@pytest.mark.parametrize(
    ("spec", "noted"), [("locfedmix:fed=2", True), ("locfedmix:fed=0", True), ("locfedmix", False)]
)
def test_locfedmix_says_when_its_accuracy_is_an_average_no_client_holds(tmp_path, capsys, spec, noted):
    out = tmp_path / "n"
    argv = ["train", "--dataset", SYN, "--model", "mlp", "--strategy", spec, "--rounds", "1", "--cost-only"]
    assert main([*argv, "--out", str(out)]) == 0
    printed = "a model no client holds" in capsys.readouterr().out
    stored = json.loads((out / "summary.json").read_text())["note"]
    assert printed == noted and (stored is not None) == noted


def test_locfedmix_mixup_leaves_every_client_part_untouched_over_several_steps(monkeypatch):
    """Over a round of several steps, each mixup (at a step's end) changes no client part and puts no gradient on
    one (it goes through the round's starting global tail, frozen), and that tail is the one the round began with."""
    from pslsched.training.strategies.locfedmix import LocFedMix

    built = make_testbed(3)
    cfg = TrainConfig(
        dataset=SYN, model="mlp", strategy="locfedmix:loc=0", optimizer="sgd", lr=0.3, batch_size=8
    )
    calls = []
    original = LocFedMix._mixup

    def watched(self, i, t, body):
        clients = [m for name, m in self.global_model.items() if name.startswith("c")]
        before = [
            (p.detach().clone(), None if p.grad is None else p.grad.clone())
            for m in clients
            for p in m.parameters()
        ]
        original(self, i, t, body)
        after = [(p, p.grad) for m in clients for p in m.parameters()]
        for (p0, g0), (p1, g1) in zip(before, after):
            assert torch.equal(p0, p1.detach()) and (g0 is None) == (g1 is None)
            assert g0 is None or torch.equal(g0, g1)
        start_tail = dict(self.global_model["tail"].named_parameters())
        assert all(torch.equal(self.frozen_tail[n], start_tail[n].detach()) for n in self.frozen_tail)
        calls.append(t)

    monkeypatch.setattr(LocFedMix, "_mixup", watched)
    run_training(built.instance, built.workload, schedule_of(built), SimConfig(rounds=2), cfg)
    assert len(calls) >= 4 and len(set(calls)) >= 2  # several steps in each of the two rounds
