"""`sched sweep`: grids, derived seeds, both backends, resuming after a kill, bad grids, failing points."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pslsched.app.sweeps import load_grid, parse_grid, run_sweep
from pslsched.app.sweeps.overrides import apply_overrides, parse_path
from pslsched.app.sweeps.runner import point_argv
from pslsched.base.errors import InputError
from pslsched.cli import main
from pslsched.core.schedule import read_schedule
from pslsched.core.testbed import default_testbed_path

SMALLEST = {
    "command": "solve",
    "base": {"profile": str(default_testbed_path()), "time_limit": 2},
    "axes": {"solver": ["greedy", "equid"], "seed": [0, 1, 2]},
}


def _grid_file(tmp_path: Path, data: dict, name: str = "grid.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _sweep(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(["sweep", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- the grid -------------------------------------------------------------------------------------------------


def test_points_are_every_combination_first_axis_slowest():
    grid = parse_grid(SMALLEST)
    points = grid.points()
    assert [(p.params["solver"], p.params["seed"]) for p in points] == [
        ("greedy", 0),
        ("greedy", 1),
        ("greedy", 2),
        ("equid", 0),
        ("equid", 1),
        ("equid", 2),
    ]
    assert len({p.id for p in points}) == 6
    assert all("seed" not in p.options for p in points)  # the run's seed is derived, not the replicate index


def test_seeds_come_from_the_grid_seed_and_parameters_not_the_order():
    points = parse_grid(SMALLEST).points()
    reordered = dict(SMALLEST, axes={"seed": [2, 0, 1], "solver": ["equid", "greedy"]})
    again = {(p.params["solver"], p.params["seed"]): p.run_seed for p in parse_grid(reordered).points()}
    assert {(p.params["solver"], p.params["seed"]): p.run_seed for p in points} == again
    # by default the solver shares the replicate's random numbers (paired comparisons); seeds differ by replicate
    by_seed = {p.params["seed"]: p.run_seed for p in points}
    assert len(set(by_seed.values())) == 3
    assert all(p.run_seed == by_seed[p.params["seed"]] for p in points)
    assert parse_grid(dict(SMALLEST, seed=1)).points()[0].run_seed != points[0].run_seed
    every = parse_grid(dict(SMALLEST, seed_by="all")).points()
    assert len({p.run_seed for p in every}) == 6


def test_testbed_paths():
    data = yaml.safe_load(default_testbed_path().read_text())
    assert parse_path("helpers[1].memory_mb") == ["helpers", 1, "memory_mb"]
    assert parse_path("clients.*.latency_ms") == ["clients", "*", "latency_ms"]
    edited = apply_overrides(
        data,
        {
            "helpers.laptop.memory_mb": 4096,
            "clients.*.latency_ms": 1.5,
            "helpers.0.count": 3,
            "training.lr": 0.1,
        },
    )
    assert [h["memory_mb"] for h in edited["helpers"]] == [data["helpers"][0]["memory_mb"], 4096]
    assert {c["latency_ms"] for c in edited["clients"]} == {1.5}
    assert edited["helpers"][0]["count"] == 3 and edited["training"] == {"lr": 0.1}
    assert data["helpers"][1]["memory_mb"] == 1160  # the original is untouched
    with pytest.raises(InputError, match="no entry named 'tablet'"):
        apply_overrides(data, {"helpers.tablet.memory_mb": 1})
    with pytest.raises(InputError, match="out of range"):
        apply_overrides(data, {"helpers.7.memory_mb": 1})


# --- running ------------------------------------------------------------------------------------------------


def test_smallest_grid_on_the_local_backend_and_a_local_ray_cluster(tmp_path, capsys):
    grid = _grid_file(tmp_path, SMALLEST)
    code, out, err = _sweep([str(grid), "--out", str(tmp_path / "local"), "--workers", "2"], capsys)
    assert code == 0, err
    assert "6 point(s): 0 already finished, 6 run now, 0 failed" in out
    local = (tmp_path / "local" / "results.csv").read_text()
    frame = pd.read_csv(tmp_path / "local" / "results.csv")
    assert list(frame["solver"]) == ["greedy"] * 3 + ["equid"] * 3
    assert (frame["run_status"] == "ok").all()
    # the bound is on the planned quantity: the round (the makespan plus SplitFed V1's weight exchange)
    assert (frame["round_ms"] >= frame["lower_bound_ms"] - 1e-6).all()
    assert (frame["round_ms"] >= frame["makespan_ms"]).all()
    assert (tmp_path / "local" / "summary.png").stat().st_size > 0
    assert len(list((tmp_path / "local" / "runs").glob("*.json"))) == 6

    # a real local Ray cluster, not a mock: `make test` installs the cluster extra
    from pslsched.app.sweeps.backends import ray_available

    assert ray_available(), "Ray is missing: pip install -e '.[test,cluster]' (as `make test` does)"
    code, out, err = _sweep(
        [str(grid), "--out", str(tmp_path / "ray"), "--backend", "ray", "--workers", "2"], capsys
    )
    assert code == 0, err
    assert (tmp_path / "ray" / "results.csv").read_text() == local
    runs = [json.loads(p.read_text()) for p in (tmp_path / "ray" / "runs").glob("*.json")]
    assert {r["backend"] for r in runs} == {"ray"}


def test_every_point_runs_what_the_command_runs(tmp_path):
    """A sweep point's makespan is the one its own command line (`point_argv`) gives with `sched solve`."""
    grid = parse_grid(SMALLEST)
    report = run_sweep(grid, tmp_path / "s", workers=1)
    point = grid.points()[4]  # equid, replicate 1
    argv = point_argv(grid.command, point.options, point.run_seed, tmp_path / "w")
    assert argv[:1] == ["solve"] and ["--seed", str(point.run_seed)] == argv[-2:]
    assert main([*argv, "--out", str(tmp_path / "one")]) == 0
    schedule = read_schedule(tmp_path / "one" / "schedule.json")
    row = report.results.iloc[4]
    assert row["solver"] == "equid" and row["run_seed"] == point.run_seed
    assert schedule.makespan == pytest.approx(row["makespan_ms"], rel=1e-12)


def test_killed_sweep_resumes_with_only_the_missing_points(tmp_path):
    data = {
        "command": "simulate",
        "base": {"rounds": 60, "solver": "greedy", "stragglers": "mild", "policy": "fcfs"},
        "axes": {"testbed.simulation.batches": [1, 2, 3], "seed": [0, 1]},
    }
    grid = _grid_file(tmp_path, data)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pslsched.cli", "sweep", str(grid), "--out", str(out), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    runs = out / "runs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(runs.glob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pool, mid-sweep
    proc.wait()
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in runs.glob("*.json")}
    assert 2 <= len(before) < 6, "the sweep finished before it could be killed: make its points slower"

    ran = []
    report = run_sweep(load_grid(grid), out, workers=2, progress=lambda point, *_: ran.append(point.id))
    assert report.total == 6 and report.reused == len(before) and report.ran == 6 - len(before)
    assert sorted(ran) == sorted(p.id for p in load_grid(grid).points() if f"{p.id}.json" not in before)
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in runs.glob("*.json")}
    assert all(after[name] == before[name] for name in before)  # finished points are never recomputed
    assert len(after) == 6 and (report.results["run_status"] == "ok").all()

    again = run_sweep(load_grid(grid), out, workers=2)
    assert again.ran == 0 and again.reused == 6
    damaged = sorted(runs.glob("*.json"))[0]
    damaged.write_text('{"status": "ok", "metr')  # e.g. a file system that lost the end of a write
    assert run_sweep(load_grid(grid), out, workers=1).ran == 1
    assert json.loads(damaged.read_text())["status"] == "ok"


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    data = {
        "command": "train",
        "base": {"dataset": "digits", "rounds": 1, "optimizer": "sgd", "solver": "greedy"},
        "axes": {"lr": [0.05, 1.0e9]},
    }
    grid = _grid_file(tmp_path, data)
    code, out, err = _sweep([str(grid), "--out", str(tmp_path / "t"), "--workers", "2"], capsys)
    assert code == 1
    frame = pd.read_csv(tmp_path / "t" / "results.csv")
    assert list(frame["run_status"]) == ["ok", "failed"]
    assert frame.loc[0, "final_accuracy"] > 0.3
    assert "diverged" in frame.loc[1, "error"]
    assert "failed: training diverged" in out
    runs = {
        json.loads(p.read_text())["params"]["lr"]: json.loads(p.read_text())
        for p in (tmp_path / "t" / "runs").glob("*.json")
    }
    assert len(runs[0.05]["series"]["test_accuracy"]) == 1
    # a failed point is finished too; --retry-failed runs it again
    code, out, _ = _sweep([str(grid), "--out", str(tmp_path / "t")], capsys)
    assert code == 1 and "2 already finished, 0 run now" in out
    code, out, _ = _sweep([str(grid), "--out", str(tmp_path / "t"), "--retry-failed"], capsys)
    assert code == 1 and "1 already finished, 1 run now" in out


def test_generated_instances_and_testbed_axes(tmp_path):
    grid = parse_grid(
        {
            "command": "solve",
            "base": {"generate.family": "ganian1", "generate.helpers": 2, "time_limit": 1},
            "axes": {"generate.clients": [4, 8], "solver": ["greedy", "cpsat"]},
        }
    )
    frame = run_sweep(grid, tmp_path / "g", workers=2).results
    assert list(frame["clients"]) == [4, 4, 8, 8] and set(frame["helpers"]) == {2}
    assert (frame["makespan_ms"] >= frame["lower_bound_ms"] - 1e-6).all()
    for clients in (4, 8):
        rows = frame[frame["generate.clients"] == clients].set_index("solver")
        assert rows.loc["cpsat", "makespan_ms"] <= rows.loc["greedy", "makespan_ms"] + 1e-6

    grid = parse_grid(
        {"command": "solve", "base": {"solver": "greedy"}, "axes": {"testbed.helpers.laptop.count": [1, 2]}}
    )
    frame = run_sweep(grid, tmp_path / "t", workers=1).results
    assert list(frame["helpers"]) == [3, 4]  # two VMs and 1 or 2 laptops


# --- bad grids: one line naming the axis, exit 2, nothing run ----------------------------------------------------


@pytest.mark.parametrize(
    ("axes", "named"),
    [
        ({"solvr": ["greedy"]}, "axes.solvr"),
        ({"solver": []}, "axes.solver"),
        ({"solver": ["greedy", "nosuch"]}, "axes.solver"),
        ({"time_limit": [1, -1]}, "axes.time_limit"),
        ({"testbed.helpers.laptop.memory_mb": [1024, -5]}, "axes.testbed.helpers.laptop.memory_mb"),
        ({"testbed.helpers.tablet.memory_mb": [1024]}, "axes.testbed.helpers.tablet.memory_mb"),
        ({"codec": ["none", "zip"]}, "axes.codec"),
        ({"out": ["x"]}, "axes.out"),
        ({"generate.clients": [4]}, "generate"),
        (
            {"generate.clients": [4], "generate.family": ["ganian1"], "generate.helpers": [0]},
            "axes.generate.helpers",
        ),
    ],
)
def test_bad_grid_one_line_naming_the_axis_nothing_run(tmp_path, capsys, axes, named):
    grid = _grid_file(tmp_path, {"command": "solve", "base": {"time_limit": 1}, "axes": axes})
    code, out, err = _sweep([str(grid), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"sched: error: {named}"), err
    assert "Traceback" not in err and len([ln for ln in lines if ln.startswith("sched: error")]) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"command": "plot", "axes": {"solver": ["greedy"]}}, "command"),
        ({"command": "solve", "axes": {}}, "axes"),
        ({"command": "solve", "axes": {"solver": ["greedy", "greedy"]}}, "axes.solver"),
        ({"command": "solve", "axis": {"solver": ["greedy"]}}, "axis"),
        ({"command": "simulate", "axes": {"stragglers": ["none", "client:bogus"]}}, "axes.stragglers"),
        ({"command": "train", "axes": {"dataset": ["digits", "imagenet"]}}, "axes.dataset"),
        ({"command": "solve", "seed_by": ["solvr"], "axes": {"solver": ["greedy"]}}, "seed_by"),
    ],
)
def test_bad_grid_structure(tmp_path, capsys, data, named):
    grid = _grid_file(tmp_path, data)
    code, _, err = _sweep([str(grid), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"sched: error: {named}"), err
    assert not (tmp_path / "out").exists()


def test_ray_backend_without_ray_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    grid = _grid_file(tmp_path, SMALLEST)
    code, _, err = _sweep([str(grid), "--out", str(tmp_path / "out"), "--backend", "ray"], capsys)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("sched: error: --backend") and "pip install" in line and "cluster" in line
    assert not (tmp_path / "out").exists()


def test_dry_run_lists_points_and_runs_nothing(tmp_path, capsys):
    grid = _grid_file(tmp_path, SMALLEST)
    code, out, _ = _sweep([str(grid), "--out", str(tmp_path / "out"), "--dry-run"], capsys)
    assert code == 0
    assert "6 point(s), 0 finished" in out and out.count("to run") == 6
    assert not (tmp_path / "out").exists()


SHIPPED = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_grids_are_valid(path, tmp_path, capsys):
    code, out, err = _sweep([str(path), "--out", str(tmp_path / "out"), "--dry-run"], capsys)
    assert code == 0, err
    assert "the grid is valid" in out


def test_relative_paths_resolve_against_the_grid_folder(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "tb.yaml").write_text(default_testbed_path().read_text())
    grid = _grid_file(
        folder, {"command": "solve", "base": {"profile": "tb.yaml"}, "axes": {"solver": ["greedy"]}}
    )
    monkeypatch.chdir(tmp_path)
    code, out, err = _sweep([str(grid), "--out", "out", "--workers", "1"], capsys)
    assert code == 0, err
    code, _, err = _sweep([str(grid).replace("grid.yaml", "nope.yaml"), "--out", "out"], capsys)
    assert code == 2 and "nope.yaml: no such file" in err
    bad = _grid_file(
        folder, {"command": "solve", "base": {"profile": "missing.yaml"}, "axes": {"seed": [0]}}, "b.yaml"
    )
    code, _, err = _sweep([str(bad), "--out", "out2"], capsys)
    assert code == 2 and err.strip().splitlines()[-1].startswith("sched: error: base.profile")
