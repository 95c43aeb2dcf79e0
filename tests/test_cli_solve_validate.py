"""`sched solve --instance` and `sched validate`: outputs, exit codes, and one-line errors on bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from strategies import uniform_instance

from pslsched.cli import main
from pslsched.core.instance import read_instance, write_instance
from pslsched.core.schedule import read_schedule, write_schedule
from pslsched.core.validate import validate

OUT_FILES = {"instance.json", "schedule.json", "schedule.csv", "gantt.png", "report.html"}


@pytest.fixture
def instance_file(tmp_path, example_dict):
    path = tmp_path / "example.json"
    path.write_text(json.dumps(example_dict))
    return path


def solve_to(instance_path, out, solver: str = "greedy", *extra: str) -> int:
    """Run `sched solve --instance PATH --solver SOLVER --out OUT [extra]` and return its exit code."""
    return main(["solve", "--instance", str(instance_path), "--solver", solver, "--out", str(out), *extra])


def one_line_error(capsys) -> str:
    """The captured stderr must be one 'sched: error:' line and no traceback; returns it."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sched: error: ")
    return lines[0]


# ---- the happy path --------------------------------------------------------------------------------------


def test_solve_writes_the_four_files_and_they_validate(tmp_path, capsys, instance_file):
    out = tmp_path / "run"
    assert solve_to(instance_file, out) == 0
    stdout = capsys.readouterr().out
    assert "status     optimal" in stdout and "makespan   22.000 ms" in stdout
    assert {p.name for p in out.iterdir()} == OUT_FILES

    inst = read_instance(out / "instance.json")
    assert inst.to_dict() == read_instance(instance_file).to_dict()
    sched = read_schedule(out / "schedule.json")
    assert sched.solver == "greedy" and sched.makespan == 22.0 and sched.lower_bound <= sched.makespan
    assert validate(inst, sched) == []
    frame = pd.read_csv(out / "schedule.csv")
    assert list(frame.columns) == ["helper", "client", "batch", "phase", "start_ms", "end_ms", "duration_ms"]
    assert len(frame) == len(sched.tasks) == 4
    assert (out / "gantt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.")]  # no scratch folder left

    assert main(["validate", "--instance", str(out / "instance.json"), str(out / "schedule.json")]) == 0
    assert capsys.readouterr().out.startswith("valid: makespan 22.000 ms, 4 tasks, 2 clients")


@pytest.mark.parametrize("solver", ["random", "greedy"])
def test_solve_with_batches_local_and_two_helpers(tmp_path, capsys, solver):
    inst = uniform_instance(4, 2, demand=60.0, capacity=130.0, local=[np.nan, 30.0, np.nan, 25.0], batches=2)
    path = tmp_path / "inst.json"
    write_instance(inst, path)
    out = tmp_path / "out"
    assert solve_to(path, out, solver, "--seed", "3", "--time-limit", "2") == 0
    sched = read_schedule(out / "schedule.json")
    assert validate(inst, sched) == [] and sched.lower_bound <= sched.makespan
    assert all(t.batch in (0, 1) for t in sched.tasks)
    assert main(["validate", "--instance", str(out / "instance.json"), str(out / "schedule.json")]) == 0
    again = tmp_path / "again"
    assert solve_to(path, again, solver, "--seed", "3", "--time-limit", "2") == 0
    assert read_schedule(again / "schedule.json").tasks == sched.tasks  # same seed, same schedule


def test_solve_without_out_writes_nothing(tmp_path, capsys, instance_file):
    assert main(["solve", "--instance", str(instance_file), "--solver", "greedy"]) == 0
    assert "wrote" not in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == [instance_file]


def test_out_folder_may_exist_already(tmp_path, capsys, instance_file):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert solve_to(instance_file, out) == 0
    assert {p.name for p in out.iterdir()} == OUT_FILES | {"notes.txt"}


# ---- validate on corrupted schedules ---------------------------------------------------------------------


@pytest.fixture
def solved(tmp_path, capsys, instance_file):
    out = tmp_path / "run"
    assert solve_to(instance_file, out) == 0
    capsys.readouterr()
    return out


def test_corrupted_schedule_exits_1_listing_violations(solved, capsys):
    sched = read_schedule(solved / "schedule.json")
    tasks = [dataclasses.replace(t, start=t.start - 1.0) if t.phase == "fwd" else t for t in sched.tasks]
    write_schedule(dataclasses.replace(sched, tasks=tasks, lower_bound=99.0), solved / "bad.json")
    code = main(["validate", "--instance", str(solved / "instance.json"), str(solved / "bad.json")])
    assert code == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("INVALID: ") and "violation(s)" in out[0]
    listed = [line for line in out[1:] if line.startswith("  - ")]
    assert len(listed) == int(out[0].split()[1])
    text = "\n".join(listed)
    assert "lasts 3.0, its length is 2.0" in text
    assert "lower_bound 99.0 exceeds the makespan" not in text  # structural errors come first


def test_wrong_makespan_and_bound_exit_1(solved, capsys):
    data = json.loads((solved / "schedule.json").read_text())
    data["makespan"], data["lower_bound"] = 30.0, 40.0
    (solved / "bad.json").write_text(json.dumps(data))
    assert main(["validate", "--instance", str(solved / "instance.json"), str(solved / "bad.json")]) == 1
    out = capsys.readouterr().out
    assert "INVALID: 2 violation(s)" in out
    assert "makespan is 30.0, but the tasks give 22.0" in out
    assert "lower_bound 40.0 exceeds the makespan 22.0" in out


def test_schedule_against_another_instance_exits_1(solved, capsys, tmp_path, example_dict):
    example_dict["fwd"] = [[3.0], [2.0]]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(example_dict))
    assert main(["validate", "--instance", str(other), str(solved / "schedule.json")]) == 1
    assert "its length is 3.0" in capsys.readouterr().out


# ---- bad input: exit 2, one line, no traceback, no output folder -----------------------------------------


def _bad_files():
    def edit(**changes):
        def text(example):
            return json.dumps({**example, **changes})

        return text

    return {
        "malformed": (lambda ex: json.dumps(ex)[:-5], "malformed JSON"),
        "not an object": (lambda ex: "[1, 2, 3]", "must be a JSON object"),
        "unknown key": (edit(colour="red"), ".colour: unknown key"),
        "wrong shape": (edit(fwd=[[2.0, 1.0], [2.0, 1.0]]), ".fwd[0]: must have 1 entries"),
        "negative": (edit(tail=[[-1.0], [6.0]]), ".tail[0][0]: must be a finite number >= 0"),
        "string": (edit(delay=[["ten"], [3.0]]), ".delay[0][0]: must be a number or null"),
        "batches": (edit(batches=0), ".batches: must be an integer in [1, 10000]"),
        "empty": (lambda ex: "", "malformed JSON"),
    }


@pytest.mark.parametrize("case", list(_bad_files()))
def test_bad_instance_file_exits_2(tmp_path, capsys, example_dict, case):
    make, needle = _bad_files()[case]
    path = tmp_path / "bad.json"
    path.write_text(make(example_dict))
    out = tmp_path / "out"
    assert solve_to(path, out) == 2
    line = one_line_error(capsys)
    assert needle in line
    assert list(tmp_path.iterdir()) == [path]  # neither the --out folder nor a scratch folder


def test_missing_instance_file_exits_2(tmp_path, capsys):
    assert solve_to(tmp_path / "absent.json", tmp_path / "out") == 2
    assert "absent.json: no such file" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_validate_bad_inputs_exit_2(solved, capsys, tmp_path):
    inst = str(solved / "instance.json")
    assert main(["validate", "--instance", inst, str(tmp_path / "none.json")]) == 2
    assert "none.json: no such file" in one_line_error(capsys)
    (tmp_path / "phase.json").write_text(
        (solved / "schedule.json").read_text().replace('"phase": "bwd"', '"phase": "back"', 1)
    )
    assert main(["validate", "--instance", inst, str(tmp_path / "phase.json")]) == 2
    assert ".phase: must be 'fwd' or 'bwd'" in one_line_error(capsys)
    assert main(["validate", "--instance", str(tmp_path / "no.json"), str(solved / "schedule.json")]) == 2
    one_line_error(capsys)


def test_unknown_solver_exits_2(tmp_path, capsys, instance_file):
    assert solve_to(instance_file, tmp_path / "out", "simplex") == 2
    line = one_line_error(capsys)
    assert "--solver: unknown solver 'simplex'" in line and "greedy" in line
    assert not (tmp_path / "out").exists()


def test_out_path_that_is_a_file_exits_2(tmp_path, capsys, instance_file):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    assert solve_to(instance_file, blocker) == 2
    assert "exists and is not a folder" in one_line_error(capsys)
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("value", ["-1", "0", "soon", "nan"])
def test_bad_time_limit_is_an_argparse_error(tmp_path, capsys, instance_file, value):
    with pytest.raises(SystemExit) as exc:
        main(["solve", "--instance", str(instance_file), "--time-limit", value])
    assert exc.value.code == 2
    assert "--time-limit" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_workers_is_an_argparse_error(capsys, instance_file, value):
    with pytest.raises(SystemExit) as exc:
        main(["solve", "--instance", str(instance_file), "--workers", value])
    assert exc.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_workers_reach_the_solver(tmp_path, capsys, instance_file, monkeypatch):
    from pslsched.app import solving

    seen = []
    real = solving.run_solver

    def spy(instance, name, **kwargs):
        seen.append(kwargs.get("workers"))
        return real(instance, name, **kwargs)

    monkeypatch.setattr(solving, "run_solver", spy)
    args = ["solve", "--instance", str(instance_file), "--solver", "cpsat", "--time-limit", "5"]
    assert main([*args, "--workers", "1"]) == 0
    assert main(args) == 0
    assert seen == [1, None]  # None: the solver's own default


# ---- infeasible and not found ----------------------------------------------------------------------------


def test_infeasible_instance_exits_3(tmp_path, capsys, example_dict):
    example_dict["demand"] = [100.0, 600.0]
    path = tmp_path / "inf.json"
    path.write_text(json.dumps(example_dict))
    out = tmp_path / "out"
    assert solve_to(path, out) == 3
    stdout = capsys.readouterr().out
    assert "status     infeasible" in stdout and "'c1' needs 600.0 MB" in stdout
    assert not out.exists()


def test_bin_packing_infeasible_exits_3(tmp_path, capsys):
    path = tmp_path / "pack.json"
    write_instance(uniform_instance(3, 2, demand=100.0, capacity=150.0), path)
    assert solve_to(path, tmp_path / "out", "random", "--time-limit", "2") == 3
    assert "bin packing" in capsys.readouterr().out


def test_no_schedule_found_exits_4(tmp_path, capsys):
    # feasible (c0 on h0, c1 on h1), but the random assignment can put c1 on h0 first and strand c0
    inst = dataclasses.replace(
        uniform_instance(2, 2), demand=np.array([100.0, 50.0]), capacity=np.array([100.0, 50.0])
    )
    path = tmp_path / "tight.json"
    write_instance(inst, path)
    codes = {
        seed: solve_to(path, tmp_path / f"out{seed}", "random", "--seed", str(seed)) for seed in range(8)
    }
    assert set(codes.values()) == {0, 4}
    for seed, code in codes.items():
        assert (tmp_path / f"out{seed}").exists() == (code == 0)


def test_solve_measures_its_answer_against_the_baselines(capsys):
    """One line: each baseline's round time (SplitFed V1's round: makespan + exchange) and what the answer saves
    against it (its own validated run)."""
    import re

    from pslsched.app.experiment import strategy_instance
    from pslsched.core.testbed import build, default_testbed_path, load_testbed
    from pslsched.solvers import solve as run

    assert main(["solve", "--solver", "equid", "--baselines", "random,greedy"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("vs baselines"))
    built = build(load_testbed(default_testbed_path()))
    inst = strategy_instance(built.instance, built.workload, None)
    assert inst.exchange is not None
    ours = run(inst, "equid").round_time
    for name in ("random", "greedy"):
        ms = float(re.search(rf"{name} ([\d,.]+) ms", line).group(1).replace(",", ""))
        assert abs(ms - run(inst, name).round_time) < 0.05
        saved = 100 * (1 - ours / ms)
        assert (f"{saved:.1f}% saved" if saved >= -0.05 else f"{-saved:.1f}% shorter") in line
    assert main(["solve", "--solver", "greedy", "--baselines", "none"]) == 0
    assert "vs baselines" not in capsys.readouterr().out
