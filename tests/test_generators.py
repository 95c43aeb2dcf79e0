"""Instance generators (docs/generators.md): valid and solvable, exact T1..T5, seeded, published intent kept."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pslsched.base.errors import InputError
from pslsched.cli import main
from pslsched.core.generators import (
    FAMILIES,
    RATE_CLASSES,
    TIRANA_RATE_CLASSES,
    class_rates,
    generate,
    generate_workload,
    packs,
)
from pslsched.core.instance import read_instance
from pslsched.core.validate import validate
from pslsched.core.workload import transfer_ms
from pslsched.profiles import load_profile
from pslsched.solvers import solve

MODELS = ("resnet101_cifar10", "resnet101_mnist", "vgg19_cifar10", "vgg19_mnist")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("model", "k", "h", "seed"), [(MODELS[1], 7, 2, 0), (MODELS[2], 9, 4, 5), (MODELS[3], 16, 3, 11)]
)
def test_every_family_and_model_gives_a_valid_greedy_schedule(family, model, k, h, seed):
    inst = generate(family, k, h, seed=seed, model=model)
    assert (inst.num_clients, inst.num_helpers) == (k, h)
    assert np.isfinite(inst.chain).all() and (inst.fwd > 0).all() and (inst.bwd > 0).all()
    res = solve(inst, "greedy", time_limit=1.0)
    assert res.schedule is not None, res.message
    assert validate(inst, res.schedule) == []
    assert res.lower_bound <= res.makespan


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_json_other_seed_other_json(family):
    text = json.dumps(generate(family, 25, 3, seed=9).to_dict())
    assert text == json.dumps(generate(family, 25, 3, seed=9).to_dict())
    assert text != json.dumps(generate(family, 25, 3, seed=10).to_dict())
    assert generate(family, 25, 3, seed=9).name == f"{family}-K25-H3-s9"
    assert generate(family, 4, 2, seed=1, model="vgg19_mnist").name == f"{family}-K4-H2-s1-vgg19_mnist"


def test_t1_to_t5_follow_problem_md_from_the_profile():
    inst, w = generate_workload("tirana1", 12, 3, seed=4, links="pair")
    prof = load_profile("resnet101_cifar10")
    n, (a, b) = prof.num_layers, (2, 35)
    for j in range(inst.num_clients):
        c = prof.device(w.client_devices[j])
        for i in range(inst.num_helpers):
            hdev = prof.device(w.helper_devices[i])
            rate = w.uplink_mbps[j, i]
            act_a = prof.activation_kb[a - 1] * 1024
            act_b = prof.activation_kb[b - 1] * 1024
            up_a = act_a * 8 / (rate * 1e6) * 1e3  # no 10x error: KB = 1024 B, Mbit = 1e6 bit
            assert up_a == pytest.approx(float(transfer_ms(act_a, rate, 0.0)))
            assert inst.release[j, i] == pytest.approx(c.forward(0, a) + up_a)
            assert inst.fwd[j, i] == pytest.approx(hdev.forward(a, b))
            assert inst.delay[j, i] == pytest.approx(
                2 * act_b * 8 / (rate * 1e6) * 1e3 + c.forward(b, n) + c.backward(b, n)
            )
            assert inst.bwd[j, i] == pytest.approx(hdev.backward(a, b))
            assert inst.tail[j, i] == pytest.approx(up_a + c.backward(0, a))
        assert inst.demand[j] == pytest.approx(prof.body_memory_mb(a, b))


def test_devices_and_cuts_are_meaningful_for_their_profiles():
    for model in MODELS:
        prof = load_profile(model)
        for family in ("tirana1", "ganian2", "ganian3"):
            inst, w = generate_workload(family, 300, 2, seed=3, model=model)
            cuts = inst.meta["cuts"]
            assert set(w.client_devices) <= {d for d, dev in prof.devices.items() if dev.profiled}
            for dev in set(w.client_devices):
                for a, b in {tuple(c) for c in cuts[np.array(w.client_devices) == dev]}:
                    prof.check_cut(dev, int(a), int(b))  # raises if a cut splits an aggregated block
            assert set(w.helper_devices) <= {"VM", "laptop"}
    _, w = generate_workload("ganian2", 300, 2, seed=0, model="resnet101_mnist")
    assert set(w.client_devices) == {"d1", "d2"}  # jetson-* are all zeros in the MNIST files
    _, w = generate_workload("tirana1", 300, 2, seed=0, model="vgg19_cifar10")
    assert set(w.client_devices) == {"d1", "d2", "jetson-cpu", "jetson-gpu"}
    _, w = generate_workload("tirana1", 300, 2, seed=0, cut=(3, 35))
    assert "d2" not in w.client_devices  # cut 3 falls inside one of d2's aggregated blocks
    _, w = generate_workload("ganian1", 50, 2, seed=0)
    assert set(w.client_devices) == {"d1"}
    inst, _ = generate_workload("ganian3", 400, 2, seed=0)
    assert len({tuple(c) for c in inst.meta["cuts"]}) > 10


@pytest.mark.parametrize(("family", "classes"), [("ganian2", RATE_CLASSES), ("tirana1", TIRANA_RATE_CLASSES)])
@pytest.mark.parametrize("links", ["client", "pair"])
def test_rate_class_proportions(family, classes, links):
    _, w = generate_workload(family, 5000, 2, seed=1, links=links)
    rates = w.uplink_mbps.ravel() if links == "pair" else w.uplink_mbps[:, 0]
    assert np.array_equal(w.uplink_mbps, w.downlink_mbps)
    for share, low, high in classes:
        frac = ((rates >= low) & (rates < high)).mean()
        assert abs(frac - share) < 0.01
    assert (w.uplink_mbps[:, 0] == w.uplink_mbps[:, 1]).all() == (links == "client")


def test_class_rates_counts_are_the_shares():
    rng = np.random.default_rng(0)
    rates = class_rates(rng, 100)
    counts = [int(((rates >= lo) & (rates < hi)).sum()) for _, lo, hi in RATE_CLASSES]
    assert counts == [11, 39, 20, 30]


def test_ganian4_memory_range_and_synthetic_times():
    inst, w = generate_workload("ganian4", 200, 60, seed=5)
    gb = inst.capacity / 1024
    assert ((gb >= 4) & (gb <= 15) & (gb == np.round(gb))).all()
    assert len(set(gb)) > 5
    prof = load_profile("resnet101_cifar10")
    cuts = inst.meta["cuts"]
    span = (cuts[:, 1] - cuts[:, 0]).astype(float)
    for i, dev in enumerate(w.helper_devices):
        per_layer = prof.device(dev).fwd_ms
        lo, hi = per_layer[per_layer > 0].min(), per_layer.max()
        assert (w.body_fwd_ms[:, i] >= span * lo - 1e-9).all() and (
            w.body_fwd_ms[:, i] <= span * hi + 1e-9
        ).all()
    measured = generate_workload("ganian3", 200, 60, seed=5)[1]
    assert not np.allclose(measured.body_fwd_ms, w.body_fwd_ms)


def test_scaled_memory_binds_and_packs():
    for family in ("tirana1", "tirana2", "ganian3"):
        inst = generate(family, 200, 7, seed=2)
        assert packs(inst.demand, inst.capacity) and inst.meta["memory_witness"]
        assert (
            inst.capacity.sum() <= 1.6 * inst.demand.sum()
        )  # tight: round-robin ignoring memory would not fit
        assert inst.capacity.max() < inst.demand.sum()
    loose = generate("ganian2", 200, 7, seed=2, memory_slack=3.0)
    assert loose.capacity.sum() >= 3.0 * loose.demand.sum() - 1e-6
    fixed = generate("ganian1", 10, 2, seed=0, memory=16384)
    assert (fixed.capacity == 16384).all()


def test_options_do_not_move_other_draws():
    base = generate("ganian2", 40, 4, seed=3)
    other = generate("ganian2", 40, 4, seed=3, memory="published")
    for m in ("release", "fwd", "delay", "bwd", "tail"):
        assert np.array_equal(getattr(base, m), getattr(other, m))
    assert not np.array_equal(base.capacity, other.capacity)


def test_tirana2_is_heterogeneous_and_keeps_head_backward():
    inst, w = generate_workload("tirana2", 300, 10, seed=0)
    assert (w.head_bwd_ms > 0).all()  # the published scenario 2 zeroes it
    rates = w.uplink_mbps
    assert rates.min() >= 1 and rates.max() <= 100 and rates.max() / rates.min() > 50
    assert not (rates[:, :1] == rates).all()  # one rate per client-helper pair
    ratio = w.body_fwd_ms / w.body_bwd_ms
    assert ratio.max() / ratio.min() > 3  # forward and backward scaled independently
    flat = generate("tirana1", 300, 10, seed=0)
    assert np.std(np.log(inst.release)) > np.std(np.log(flat.release))


def test_large_instances_are_quick():
    import time

    t0 = time.perf_counter()
    inst = generate("ganian4", 10_000, 100, seed=1)
    assert inst.fwd.shape == (10_000, 100)
    assert time.perf_counter() - t0 < 10


def test_bad_options():
    with pytest.raises(InputError, match="--family"):
        generate("tirana3", 5, 2)
    with pytest.raises(InputError, match="--helpers"):
        generate("tirana1", 5, 0)
    with pytest.raises(InputError, match="--seed"):
        generate("tirana1", 5, 2, seed=-1)
    with pytest.raises(InputError, match="--model"):
        generate("ganian2", 5, 2, model="profiles/nope.csv")
    with pytest.raises(InputError, match="--cut"):
        generate("ganian3", 5, 2, cut=(2, 30))
    with pytest.raises(InputError, match="--cut"):
        generate("tirana1", 5, 2, cut=(30, 2))
    with pytest.raises(InputError, match="--memory"):
        generate("tirana1", 5, 2, memory="lots")
    with pytest.raises(InputError, match="--links"):
        generate("tirana1", 5, 2, links="mesh")


def test_cli_writes_an_instance_that_reads_back(tmp_path, capsys):
    out = tmp_path / "sub" / "inst.json"
    args = ["generate", "--family", "ganian3", "--clients", "20", "--helpers", "3", "--seed", "4"]
    assert main([*args, "--model", "vgg19_cifar10", "-o", str(out)]) == 0
    inst = read_instance(out)
    assert inst.name == "ganian3-K20-H3-s4-vgg19_cifar10"
    assert json.dumps(inst.to_dict()) == json.dumps(
        generate("ganian3", 20, 3, seed=4, model="vgg19_cifar10").to_dict()
    )
    assert "wrote" in capsys.readouterr().out
    assert main(["solve", "--instance", str(out), "--solver", "greedy", "--time-limit", "1"]) == 0
    out2 = tmp_path / "t.json"
    flags = ["--cut", "2,34", "--memory", "8192", "--links", "pair"]
    assert (
        main(["generate", "--family", "tirana1", "--clients", "6", "--helpers", "2", *flags, "-o", str(out2)])
        == 0
    )
    assert (read_instance(out2).capacity == 8192).all()


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--family", "bogus", "--clients", "5", "--helpers", "2"], "--family"),
        (["--family", "tirana1", "--clients", "five", "--helpers", "2"], "--clients"),
        (["--family", "tirana1", "--clients", "5", "--helpers", "2", "--cut", "2"], "--cut"),
        (
            ["--family", "ganian4", "--clients", "5", "--helpers", "2", "--memory-slack", "0"],
            "--memory-slack",
        ),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv, field):
    out = tmp_path / "x.json"
    assert main(["generate", *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sched: error: {field}")
    assert not out.exists()
