"""Generator checks not covered in test_generators.py: level structure, MNIST devices, generate -> solve."""

from __future__ import annotations

from pslsched.cli import main
from pslsched.core.generators import generate_workload
from pslsched.core.instance import read_instance
from pslsched.core.validate import validate
from pslsched.solvers import solve


def test_ganian1_one_device_ganian3_random_cuts():
    _, w1 = generate_workload("ganian1", 50, 3, seed=0)
    assert len(set(w1.client_devices)) == 1
    _, w3 = generate_workload("ganian3", 200, 3, seed=0)
    assert len(set(w3.cut_a_bytes.tolist())) > 1


def test_mnist_models_skip_unprofiled_devices():
    _, w = generate_workload("tirana1", 200, 3, seed=0, model="resnet101_mnist")
    assert not {"jetson-cpu", "jetson-gpu"} & set(w.client_devices)


def test_cli_generate_then_solve_then_validate(tmp_path):
    inst_path, out = tmp_path / "inst.json", tmp_path / "out"
    args = [
        "generate",
        "--family",
        "tirana2",
        "--clients",
        "15",
        "--helpers",
        "3",
        "--seed",
        "2",
        "-o",
        str(inst_path),
    ]
    assert main(args) == 0
    inst = read_instance(inst_path)
    assert main(["solve", "--instance", str(inst_path), "--solver", "greedy", "--out", str(out)]) == 0
    assert main(["validate", "--instance", str(inst_path), str(out / "schedule.json")]) == 0
    res = solve(inst, "equid", time_limit=2)
    assert validate(inst, res.schedule) == [] and res.lower_bound <= res.makespan
