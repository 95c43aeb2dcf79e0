"""Generators of the published families: valid, seeded, intent reproduced (memory binds, rate classes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from solvers import solve
from splitsched.cli import main
from splitsched.errors import InputError
from splitsched.generators import FAMILIES, RATE_CLASSES, generate, generate_workload
from splitsched.instance import read_instance
from splitsched.validate import validate


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("k", "h"), [(1, 1), (12, 3), (60, 5)])
def test_family_builds_valid_instances(family, k, h):
    inst = generate(family, clients=k, helpers=h, seed=7)
    assert inst.num_clients == k and inst.num_helpers == h
    assert np.isfinite(inst.chain).all()
    res = solve(inst, "greedy")
    assert res.schedule is not None, res.message
    assert validate(inst, res.schedule) == []
    assert res.lower_bound <= res.makespan


@pytest.mark.parametrize("family", FAMILIES)
def test_deterministic_per_seed(family):
    a = json.dumps(generate(family, 30, 4, seed=3).to_dict())
    assert a == json.dumps(generate(family, 30, 4, seed=3).to_dict())
    assert a != json.dumps(generate(family, 30, 4, seed=4).to_dict())


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "ganian4"])
def test_memory_binds_but_fits(family):
    inst = generate(family, 40, 4, seed=1)
    assert inst.demand.sum() <= inst.capacity.sum()
    assert (inst.capacity < inst.demand.sum()).all()  # no single helper could take every client


def test_rate_classes_proportions():
    _, w = generate_workload("ganian2", 4000, 2, seed=0)
    rates = w.uplink_mbps[:, 0]
    for share, low, high in RATE_CLASSES:
        frac = ((rates >= low) & (rates < high)).mean()
        assert abs(frac - share) < 0.03


def test_ganian1_one_device_ganian3_random_cuts():
    _, w1 = generate_workload("ganian1", 50, 3, seed=0)
    assert len(set(w1.client_devices)) == 1
    _, w3 = generate_workload("ganian3", 200, 3, seed=0)
    assert len(set(w3.cut_a_bytes.tolist())) > 1


def test_ganian4_memory_draw_and_synthetic_times():
    inst = generate("ganian4", 100, 8, seed=2)
    assert inst.demand.sum() <= inst.capacity.sum()
    assert inst.meta["synthetic_times"] and inst.meta["model"] == "resnet101_cifar10"


def test_mnist_models_skip_unprofiled_devices():
    _, w = generate_workload("tirana1", 200, 3, seed=0, model="resnet101_mnist")
    assert not {"jetson-cpu", "jetson-gpu"} & set(w.client_devices)


def test_large_instance_is_fast_to_build():
    inst = generate("tirana2", 10_000, 100, seed=0)
    assert inst.fwd.shape == (10_000, 100)


def test_bad_arguments():
    with pytest.raises(InputError, match="unknown family"):
        generate("nope", 5, 2)
    with pytest.raises(InputError, match="--clients"):
        generate("tirana1", 0, 2)
    with pytest.raises(InputError, match="--model"):
        generate("ganian4", 5, 2, model="alexnet")


def test_cli_generate_then_solve(tmp_path, capsys):
    out = tmp_path / "inst.json"
    assert (
        main(
            [
                "generate",
                "--family",
                "tirana1",
                "--clients",
                "15",
                "--helpers",
                "3",
                "--seed",
                "2",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    inst = read_instance(out)
    assert inst.name == "tirana1-K15-H3-s2"
    assert main(["solve", "--instance", str(out), "--solver", "greedy"]) == 0
    assert (
        main(
            [
                "generate",
                "--family",
                "bogus",
                "--clients",
                "5",
                "--helpers",
                "2",
                "-o",
                str(tmp_path / "x.json"),
            ]
        )
        == 2
    )
    assert "unknown family" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
