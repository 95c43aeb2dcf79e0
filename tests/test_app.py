"""The application layer: one request per command, the same checks from the CLI, a sweep and Python."""

from __future__ import annotations

import argparse

import pytest

from pslsched import app
from pslsched.app.requests import COMMANDS, SimulateRequest, SolveRequest, TrainRequest, flag_of
from pslsched.base.errors import InputError
from pslsched.cli import build_parser, main
from pslsched.core.schedule import read_schedule
from pslsched.core.validate import validate

# options of a command line that are not part of what is run: where output goes, how it is shown
CLI_ONLY = {"help", "out", "output", "progress", "list", "resume", "compare_solvers", "compare_policies"}


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_of_a_command_is_a_field_of_its_request(command):
    """The CLI and the request agree: a sweep or a notebook can set exactly what the command line can."""
    fields = set(COMMANDS[command].model_fields)
    dests = {a.dest for a in _subparser(command)._actions if a.option_strings} - (CLI_ONLY - fields)
    assert dests == set(COMMANDS[command].model_fields)
    for action in _subparser(command)._actions:
        if action.dest in COMMANDS[command].model_fields:
            assert flag_of(action.dest) in action.option_strings  # errors name the flag a user typed


@pytest.mark.parametrize(
    ("kind", "options", "field"),
    [
        (SolveRequest, {"time_limit": -1}, "--time-limit"),
        (SolveRequest, {"workers": 0}, "--workers"),
        (SimulateRequest, {"dropout": 1.5}, "--dropout"),
        (TrainRequest, {"rounds": "many"}, "--rounds"),
        (TrainRequest, {"solvr": "greedy"}, "solvr"),
    ],
)
def test_a_bad_option_is_one_input_error_naming_it(kind, options, field):
    with pytest.raises(InputError) as err:
        kind.from_options(options)
    assert err.value.field == field


def test_an_unknown_policy_is_named_by_the_registry_on_the_option_given():
    with pytest.raises(
        InputError, match="unknown policy 'lifo' \\(known: fcfs, priority, replan, static\\)$"
    ) as err:
        app.simulation_experiment(SimulateRequest(policy="lifo"))
    assert err.value.field == "--policy"


def test_grid_values_are_read_as_the_command_line_writes_them():
    req = TrainRequest.from_options({"cuts": [2, 5], "rounds": "3", "cost_only": "true", "stragglers": None})
    assert req.cuts == "2,5" and req.rounds == 3 and req.cost_only is True and req.stragglers is None
    assert req.options() == {"cuts": "2,5", "rounds": 3, "cost_only": True}


def test_solve_from_python_is_what_the_cli_writes(tmp_path):
    outcome = app.solve(SolveRequest(solver="greedy", seed=1))
    assert outcome.valid and validate(outcome.instance, outcome.result.schedule) == []
    assert outcome.result.lower_bound <= outcome.result.makespan + 1e-6
    assert main(["solve", "--solver", "greedy", "--seed", "1", "--out", str(tmp_path)]) == 0
    written = read_schedule(tmp_path / "schedule.json")
    assert written.makespan == pytest.approx(outcome.result.makespan, rel=1e-12)


def test_an_unknown_solver_is_refused_before_anything_runs():
    with pytest.raises(InputError, match="unknown solver 'nosuch'") as err:
        app.solve(SolveRequest(solver="nosuch"))
    assert err.value.field == "--solver"


def test_train_on_the_schedule_solve_wrote(tmp_path, capsys):
    """`make demo`'s pipeline: the training runs the solved schedule's assignment and says for which round it
    was planned."""
    assert main(["solve", "--solver", "greedy", "--out", str(tmp_path / "plan")]) == 0
    capsys.readouterr()
    path = str(tmp_path / "plan" / "schedule.json")
    request = TrainRequest(schedule=path, dataset="digits", rounds=1, threads=1, cost_only=True)
    outcome = app.train(request)
    assert outcome.schedule.assignment == read_schedule(path).assignment
    assert outcome.schedule_source == path and not outcome.planned_for_round
    assert (
        main(
            [
                "train",
                "--schedule",
                path,
                "--dataset",
                "digits",
                "--rounds",
                "1",
                "--threads",
                "1",
                "--cost-only",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"(from {path})" in out and "for the testbed's instance" in out and "same assignment" in out


def test_train_solves_the_round_the_clock_runs():
    request = TrainRequest(dataset="digits", rounds=1, threads=1, cost_only=True, solver="greedy")
    outcome = app.train(request)
    exp = outcome.experiment
    assert outcome.planned_for_round and outcome.schedule_source is None
    assert validate(exp.round_instance, outcome.schedule) == []
    assert outcome.metrics()["planned_makespan_ms"] == outcome.schedule.makespan


def test_the_catalogue_lists_every_kind():
    from pslsched.app.catalogue import registered

    kinds = registered()
    for kind in (
        "solvers",
        "strategies",
        "samplers",
        "partitions",
        "datasets",
        "models",
        "codecs",
        "generator families",
    ):
        assert kinds.get(kind), kind
    assert ("greedy",) == tuple(n for n, _ in registered("solvers")["solvers"] if n == "greedy")
    assert registered("dispatch-policies") == {"dispatch policies": kinds["dispatch policies"]}
    with pytest.raises(InputError, match="unknown kind"):
        registered("nosuch")


def test_planning_and_simulating_never_import_the_training_room():
    """`sched solve` and `sched simulate` start without torch: the CLI imports the training room only to train."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pslsched.cli import main\n"
        "assert main(['solve', '--solver', 'greedy']) == 0\n"
        "assert main(['simulate', '--solver', 'greedy']) == 0\n"
        "assert 'torch' not in sys.modules and 'pslsched.training' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_a_sampler_run_diverging_in_its_first_round_is_one_line_and_exit_3(tmp_path, capsys):
    argv = [
        "train",
        "--dataset",
        "digits",
        "--strategy",
        "psl",
        "--sampler",
        "ugs",
        "--optimizer",
        "sgd",
        "--lr",
        "1e4",
    ]
    assert main([*argv, "--rounds", "2", "--threads", "1", "--out", str(tmp_path / "run")]) == 3
    captured = capsys.readouterr()
    assert "rounds     none finished" in captured.out
    assert captured.err.strip().splitlines()[-1].startswith("sched: error: training diverged")


def test_a_testbed_scaled_past_its_memory_says_how_many_clients_it_holds(capsys):
    """`sched train --clients 100` on the default testbed: exit 3, and the line names the most clients first fit
    packs (that many pack, one more does not) and what to raise."""
    import re

    from pslsched.app.capacity import packs
    from pslsched.cli import main
    from pslsched.core.testbed import build, default_testbed_path, load_testbed, scale_clients

    assert main(["train", "--cost-only", "--clients", "100", "--rounds", "1"]) == 3
    out = capsys.readouterr().out
    most = int(re.search(r"hold (\d+) of these clients", out).group(1))
    assert "fewer --clients" in out and "memory_mb" in out
    testbed = load_testbed(default_testbed_path())
    assert packs(build(scale_clients(testbed, most)).instance)
    assert not packs(build(scale_clients(testbed, most + 1)).instance)


def test_testbed_is_an_alias_of_profile_and_clients_scales_solve_and_simulate(capsys):
    from pslsched.cli import main
    from pslsched.core.testbed import default_testbed_path

    path = str(default_testbed_path())
    assert (
        main(["solve", "--testbed", path, "--solver", "greedy", "--clients", "8", "--baselines", "none"]) == 0
    )
    assert "(8 clients, 4 helpers)" in capsys.readouterr().out
    assert main(["simulate", "--clients", "6"]) == 0
    assert "6 clients" in capsys.readouterr().out
    assert main(["compare", "--clients", "5", "--solvers", "greedy", "--time-limit", "1"]) == 0
    assert "(5 clients" in capsys.readouterr().out
    assert main(["solve", "--clients", "0"]) == 2
    assert main(["solve", "--instance", "x.json", "--clients", "3"]) == 2
    assert "--clients" in capsys.readouterr().err
