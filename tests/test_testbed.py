"""testbed.yaml -> Instance: the bundled testbeds, T1..T5 from the profile, topology routes and every bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from pslsched.base.errors import InputError
from pslsched.base.registry import catalogue
from pslsched.cli import main
from pslsched.core.testbed import (
    RATE_DISTRIBUTIONS,
    RateDistribution,
    build,
    default_testbed_path,
    load_testbed,
    parse_rate,
    parse_testbed,
)
from pslsched.core.validate import validate
from pslsched.core.workload import transfer_ms
from pslsched.profiles import load_profile
from pslsched.solvers import solve

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "pslsched" / "profiles" / "examples").glob("*.yaml"))

BASE = {
    "name": "t",
    "seed": 3,
    "model": {"profile": "resnet101_cifar10"},
    "cuts": {"a": 2, "b": 35},
    "helpers": [{"name": "vm", "device": "VM", "memory_mb": 4096}],
    "clients": [
        {"name": "c", "count": 2, "device": "d1", "uplink_mbps": 10, "downlink_mbps": 20, "latency_ms": 1}
    ],
}


def tb(**changes):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data.update(changes)
    return data


def test_default_testbed_is_tirana_scenario_1_where_memory_constrains_without_forcing():
    """Tirana et al.'s scenario 1: the four measured client devices in equal numbers, half VM and half laptop
    helpers, their rate classes (1-20 Mbit/s, one rate per client both ways), memory 1.3x the bodies' demand."""
    built = build(load_testbed(default_testbed_path()))
    inst, w = built.instance, built.workload
    assert inst.num_clients == 24 and inst.num_helpers == 4
    assert sorted(w.client_devices) == sorted(["d1", "d2", "jetson-cpu", "jetson-gpu"] * 6)
    assert sorted(w.helper_devices) == ["VM", "VM", "laptop", "laptop"]
    assert (w.uplink_mbps >= 1).all() and (w.uplink_mbps <= 20).all()
    assert np.array_equal(w.uplink_mbps, w.downlink_mbps)
    # memory constrains (no helper could hold every client) without forcing (room for 1.3x the demand)
    assert (inst.capacity < inst.demand.sum()).all()
    assert 1.25 < inst.capacity.sum() / inst.demand.sum() < 1.35
    res = solve(inst, "greedy")
    assert validate(inst, res.schedule) == []
    assert res.lower_bound <= res.makespan


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_build_and_solve(path):
    inst = build(load_testbed(path)).instance
    res = solve(inst, "greedy")
    assert res.schedule is not None
    assert validate(inst, res.schedule) == []
    assert res.lower_bound <= res.makespan


def test_times_follow_problem_md_exactly():
    built = build(parse_testbed(tb()))
    inst, prof = built.instance, load_profile("resnet101_cifar10")
    d1, vm = prof.devices["d1"], prof.devices["VM"]
    a, b, n = 2, 35, prof.num_layers
    act_a = prof.activation_kb[a - 1] * 1024
    act_b = prof.activation_kb[b - 1] * 1024
    up = lambda x: x * 8 / (10 * 1e6) * 1e3 + 1  # noqa: E731
    down = lambda x: x * 8 / (20 * 1e6) * 1e3 + 1  # noqa: E731
    assert math.isclose(inst.release[0, 0], d1.fwd_ms[:a].sum() + up(act_a))
    assert math.isclose(inst.fwd[0, 0], vm.fwd_ms[a:b].sum())
    tail = d1.fwd_ms[b:n].sum() + d1.bwd_ms[b:n].sum() + d1.update_ms[b:n].sum()
    assert math.isclose(inst.delay[0, 0], down(act_b) + tail + up(act_b))
    assert math.isclose(inst.bwd[0, 0], vm.bwd_ms[a:b].sum() + vm.update_ms[a:b].sum())
    assert math.isclose(inst.tail[0, 0], down(act_a) + d1.bwd_ms[:a].sum() + d1.update_ms[:a].sum())
    mem = (prof.activation_kb[a:b].sum() + prof.weights_kb[a:b].sum()) / 1024
    assert math.isclose(inst.demand[0], mem)
    assert inst.clients == ("c-0", "c-1")


def test_rates_are_seeded_per_group():
    spec = {"classes": [{"share": 0.5, "low": 2, "high": 4}, {"share": 0.5, "low": 15, "high": 45}]}
    data = tb(clients=[{"name": "c", "count": 50, "device": "d1", "uplink_mbps": spec}])
    w1 = build(parse_testbed(data)).workload
    w2 = build(parse_testbed(data)).workload
    assert np.array_equal(w1.uplink_mbps, w2.uplink_mbps)
    rates = w1.uplink_mbps[:, 0]
    assert ((rates >= 2) & (rates <= 4) | (rates >= 15) & (rates <= 45)).all()
    assert 10 < ((rates <= 4).sum()) < 40
    data["seed"] = 4
    assert not np.array_equal(build(parse_testbed(data)).workload.uplink_mbps, w1.uplink_mbps)
    # adding a group leaves the draws of the first group unchanged
    data["seed"] = 3
    data["clients"].append({"name": "x", "device": "d1", "uplink_mbps": 5})
    assert np.array_equal(build(parse_testbed(data)).workload.uplink_mbps[:50], w1.uplink_mbps)


def test_per_client_cut_and_local_and_helper_restriction():
    data = tb(
        helpers=[
            {"name": "vm", "device": "VM", "memory_mb": 4096},
            {"name": "lap", "device": "laptop", "memory_mb": 4096},
        ],
        clients=[
            {"name": "a", "device": "d1", "uplink_mbps": 10, "cut": {"a": 4, "b": 33}, "helpers": ["lap"]},
            {"name": "g", "device": "jetson-gpu", "uplink_mbps": 10, "local": True},
        ],
    )
    inst = build(parse_testbed(data)).instance
    prof = load_profile("resnet101_cifar10")
    assert math.isclose(inst.fwd[0, 1], prof.devices["laptop"].fwd_ms[4:33].sum())
    assert np.isnan(inst.fwd[0, 0]) and not inst.reachable[0, 0]
    g = prof.devices["jetson-gpu"]
    assert math.isclose(inst.local[1], g.fwd_ms.sum() + g.bwd_ms.sum() + g.update_ms.sum())
    assert np.isnan(inst.local[0])


def test_topology_best_route_and_unreachable():
    data = tb(
        helpers=[
            {"name": "near", "device": "VM", "memory_mb": 4096, "node": "r1"},
            {"name": "far", "device": "VM", "memory_mb": 4096, "node": "cloud"},
            {"name": "island", "device": "VM", "memory_mb": 4096, "node": "isle"},
        ],
        clients=[{"name": "c", "device": "d1", "uplink_mbps": 100, "latency_ms": 1, "attach": "ap"}],
        topology={
            "links": [
                {"a": "ap", "b": "r1", "mbps": 50, "latency_ms": 2},
                {"a": "r1", "b": "cloud", "mbps": 10, "latency_ms": 30},
                {"a": "ap", "b": "r2", "mbps": 1000, "latency_ms": 1},
                {"a": "r2", "b": "cloud", "mbps": 1000, "latency_ms": 5},
                {"a": "isle", "b": "isle2", "mbps": 1000, "latency_ms": 5},
            ]
        },
    )
    w = build(parse_testbed(data)).workload
    assert w.uplink_mbps[0, 0] == 50 and w.latency_ms[0, 0] == 3
    # the fast detour through r2 beats the slow direct r1 - cloud link
    assert w.uplink_mbps[0, 1] == 100 and w.latency_ms[0, 1] == 7
    assert "link:cloud~r2" in w.up_routes[0][1]
    assert np.isnan(w.uplink_mbps[0, 2])
    assert math.isclose(
        build(parse_testbed(data)).instance.release[0, 1] - w.head_fwd_ms[0],
        float(transfer_ms(w.cut_a_bytes[0], 100, 7)),
    )


def _error(data) -> str:
    with pytest.raises(InputError) as exc:
        build(parse_testbed(data))
    return str(exc.value)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (tb(colour="red"), "colour: unknown key"),
        (tb(helpers=[{"name": "vm", "device": "VM", "memory_mb": 1, "gpu": 1}]), "helpers[0].gpu"),
        (tb(helpers=[{"name": "vm", "device": "tpu", "memory_mb": 100}]), "'tpu' is not in profile"),
        (
            tb(
                model={"profile": "resnet101_mnist"},
                cuts={"a": 3, "b": 34},
                clients=[{"name": "j", "device": "jetson-gpu", "uplink_mbps": 5}],
            ),
            "not profiled",
        ),
        (tb(cuts={"a": 0, "b": 35}), "cuts.a"),
        (tb(cuts={"a": 5, "b": 5}), "a (5) must be < b (5)"),
        (tb(cuts={"a": 2, "b": 99}), "0 < a < b < 37"),
        (
            tb(clients=[{"name": "c", "device": "d2", "uplink_mbps": 5, "cut": {"a": 3, "b": 35}}]),
            "aggregated block of device 'd2'",
        ),
        (tb(clients=[{"name": "c", "device": "d1", "uplink_mbps": -5}]), "clients[0].uplink_mbps"),
        (tb(clients=[{"name": "c", "device": "d1", "uplink_mbps": 0}]), "rate must be > 0"),
        (tb(clients=[{"name": "c", "device": "d1", "uplink_mbps": float("nan")}]), "uplink_mbps"),
        (
            tb(clients=[{"name": "c", "device": "d1", "uplink_mbps": {"dist": "zipf"}}]),
            "unknown distribution",
        ),
        (
            tb(
                clients=[
                    {"name": "c", "device": "d1", "uplink_mbps": {"dist": "uniform", "low": 9, "high": 1}}
                ]
            ),
            "low (9.0) must be <= high",
        ),
        (
            tb(
                clients=[
                    {
                        "name": "c",
                        "device": "d1",
                        "uplink_mbps": {"classes": [{"share": 0.3, "low": 1, "high": 2}]},
                    }
                ]
            ),
            "sum to 1",
        ),
        (tb(helpers=[{"name": "vm", "device": "VM", "memory_mb": -1}]), "helpers[0].memory_mb"),
        (tb(helpers=[{"name": "vm", "device": "VM", "memory_mb": float("nan")}]), "memory_mb"),
        (tb(clients=[{"name": "c", "count": 0, "device": "d1", "uplink_mbps": 5}]), "clients[0].count"),
        (
            tb(clients=[{"name": "c", "device": "d1", "uplink_mbps": 5, "helpers": ["nope"]}]),
            "unknown helper",
        ),
        (tb(clients=[{"name": "vm", "device": "d1", "uplink_mbps": 5}]), "used by a helper"),
        (tb(model={"profile": "nosuch"}), "model.profile"),
        (
            tb(
                clients=[{"name": "c", "device": "d1", "uplink_mbps": 5, "attach": "ap"}],
                topology={"links": [{"a": "x", "b": "vm", "mbps": 10}]},
            ),
            "node 'ap' is not in the topology",
        ),
    ],
)
def test_bad_testbeds_name_the_field(data, needle):
    assert needle in _error(data)


def test_memory_that_cannot_fit_is_infeasible_exit_3(tmp_path, capsys):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(tb(helpers=[{"name": "vm", "device": "VM", "memory_mb": 10}])))
    out = tmp_path / "out"
    assert main(["solve", "--profile", str(path), "--solver", "greedy", "--out", str(out)]) == 3
    text = capsys.readouterr().out
    assert "infeasible" in text and "needs" in text and "'vm'" not in text.split("needs")[0][-5:]
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("model: [unclosed", "malformed YAML"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        (
            yaml.safe_dump(tb(helpers=[{"name": "vm", "device": "VM"}])),
            "helpers[0].memory_mb: Field required",
        ),
    ],
)
def test_cli_bad_yaml_exit_2_one_line(tmp_path, capsys, content, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    out = tmp_path / "out"
    assert main(["solve", "--profile", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_cli_missing_testbed_file(tmp_path, capsys):
    assert main(["solve", "--profile", str(tmp_path / "none.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_profile_out_then_validate(tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(
            [
                "solve",
                "--profile",
                str(ROOT / "pslsched" / "profiles" / "testbed.yaml"),
                "--solver",
                "greedy",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert {p.name for p in out.iterdir()} == {
        "instance.json",
        "schedule.json",
        "schedule.csv",
        "gantt.png",
        "report.html",
    }
    assert main(["validate", "--instance", str(out / "instance.json"), str(out / "schedule.json")]) == 0
    assert "valid" in capsys.readouterr().out


def test_rate_distributions_are_one_registry():
    assert RATE_DISTRIBUTIONS.names() == ["choice", "classes", "lognormal", "number", "uniform"]
    assert [n for n, _ in catalogue()["rate distributions"]] == RATE_DISTRIBUTIONS.names()
    specs = {
        "number": 7,
        "uniform": {"dist": "uniform", "low": 1, "high": 2},
        "lognormal": {"dist": "lognormal", "median": 5, "sigma": 0.5},
        "choice": {"dist": "choice", "values": [1, 3]},
        "classes": {"classes": [{"share": 0.5, "low": 1, "high": 2}, {"share": 0.5, "low": 5, "high": 6}]},
    }
    for name, value in specs.items():
        rate = parse_rate(value)
        assert isinstance(rate, RATE_DISTRIBUTIONS.get(name)) and isinstance(rate, RateDistribution)
        drawn = rate.draw(50, np.random.default_rng(0))
        assert drawn.shape == (50,) and (drawn > 0).all()
    assert (parse_rate(7).draw(3, np.random.default_rng(0)) == 7.0).all()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"dist": "zipf"},
            "dist: unknown distribution 'zipf' (known: choice, classes, lognormal, number, uniform)",
        ),
        ({"dist": "number", "value": 3}, "write a fixed value as a plain number"),
        ({"low": 1, "high": 2}, "needs dist: NAME (or classes: [...])"),
    ],
)
def test_rate_errors_name_the_field(value, message):
    with pytest.raises(InputError, match="clients\\[0\\].uplink_mbps") as err:
        parse_testbed(tb(clients=[{"name": "c", "device": "d1", "uplink_mbps": value}]))
    assert message in str(err.value)


def test_fixed_rates_dump_as_plain_numbers():
    data = tb()
    dumped = parse_testbed(data).model_dump(mode="json")["clients"][0]
    assert (dumped["uplink_mbps"], dumped["downlink_mbps"], dumped["latency_ms"]) == (10.0, 20.0, 1.0)
    assert parse_testbed({**data, "clients": [dumped]}) == parse_testbed(data)
