"""Numbers within documented ranges and one-line errors (issue 24, items 4 and 5): straggler specs, speeds, seeds,
devices, dropout and the profile batch are refused with one line naming the field and the range (exit 2); argparse's
rejections are one line with a pointer to ``--help``; summary.json is strict JSON; warnings raised on the way to an
input error are not printed before it.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from cli_checks import refused

from pslsched.base.errors import InputError
from pslsched.base.strict_json import dumps
from pslsched.cli import main

pytestmark = [  # no warning on the way to an error (PuLP's deprecation inside a solve is not ours)
    pytest.mark.filterwarnings("error"),
    pytest.mark.filterwarnings("ignore:Constructing LpVariable:DeprecationWarning"),
]


# ---------------------------------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    "spec, field, needle",
    [
        ("client:slow:p=0.5,factor=inf", "--stragglers.factor", "finite"),
        ("client:slow:p=0.5,factor=1e300", "--stragglers.factor", "less than or equal to 1000000"),
        ("client:slow:p=0.5,factor=1e-300", "--stragglers.factor", "greater than or equal to 0.000001"),
        ("client:lognormal:sigma=1e300", "--stragglers.sigma", "less than or equal to 10"),
        ("client:pareto:alpha=1e-300", "--stragglers.alpha", "greater than or equal to 0.1"),
        ("helper:fixed:value=1e300", "--stragglers.value", "less than or equal to 1000000"),
        ("link:gaussian:mean=1,sigma=1e300", "--stragglers.sigma", "less than or equal to 10"),
    ],
)
def test_straggler_specs_outside_their_ranges_are_refused(capsys, spec: str, field: str, needle: str) -> None:
    refused(capsys, ["simulate", "--rounds", "1", "--stragglers", spec], field, needle)


@pytest.mark.parametrize("value", [".inf", "1e300", ".nan"])
def test_a_testbed_straggler_factor_outside_its_range_is_refused(tmp_path: Path, capsys, value: str) -> None:
    from pslsched.core.testbed import default_testbed_path

    testbed = tmp_path / "testbed.yaml"
    text = default_testbed_path().read_text()
    stragglers = f"\nsimulation:\n  stragglers:\n    - {{target: client, p: 0.5, factor: {value}}}\n"
    testbed.write_text(text + stragglers)  # the bundled testbed has no simulation: section of its own
    refused(
        capsys, ["simulate", "--profile", str(testbed), "--rounds", "1"], "simulation.stragglers.0.factor"
    )


def test_drawn_factors_are_clipped_to_the_documented_range() -> None:
    from pslsched.simulator.distributions import make_distribution

    rng = np.random.default_rng(0)
    draws = make_distribution("lognormal", sigma=10.0).draw(rng, 10_000)
    assert np.isfinite(draws).all() and draws.max() == 1e6 and draws.min() == 1e-6
    assert make_distribution("pareto", alpha=0.1).draw(rng, 10_000).max() <= 1e6


def test_a_trace_of_factors_outside_the_range_is_refused(tmp_path: Path, capsys) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_text("1.0\n1e300\n")
    refused(capsys, ["simulate", "--stragglers", f"client:trace:path={trace}"], "stragglers.trace", "1e+06")


@pytest.mark.parametrize(
    "argv, field, needle",
    [
        (["--clock", "measured", "--speed", "1e300"], "--speed", "less than or equal to 1000000"),
        (["--profile-batch", "1e-300"], "--profile-batch", "greater than or equal to 1"),
        (["--device", "meta"], "--device", "'meta'"),
        (["--device", "nosuch"], "--device", "available here: cpu"),
        (["--dropout", "1.0"], "--dropout", "less than 1"),
        (["--seed", "-1"], "--seed", "greater than or equal to 0"),
        (["--seed", str(2**63)], "--seed", "less than or equal to 9223372036854775807"),
    ],
)
def test_train_options_outside_their_ranges_are_refused(
    capsys, argv: list[str], field: str, needle: str
) -> None:
    refused(capsys, ["train", "--rounds", "1", "--threads", "1", *argv], field, needle)


@pytest.mark.parametrize("command", ["solve", "simulate", "compare"])
@pytest.mark.parametrize("seed", ["-1", str(2**63)])
def test_seeds_outside_0_to_2_63_are_refused(capsys, command: str, seed: str) -> None:
    refused(capsys, [command, "--time-limit", "1", "--seed", seed], "--seed", "to")


def test_simulate_refuses_a_dropout_of_one(capsys) -> None:
    refused(capsys, ["simulate", "--rounds", "1", "--dropout", "1"], "--dropout", "less than 1")


def test_a_sweep_grid_seed_past_2_63_is_refused(tmp_path: Path, capsys) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"command: solve\nseed: {2**63}\nbase: {{time_limit: 1}}\naxes: {{solver: [greedy]}}\n")
    refused(capsys, ["sweep", str(grid), "--out", str(tmp_path / "out"), "--dry-run"], "seed", "2^63")


# ---------------------------------------------------------------------------------------------------- strict JSON


def _strict(text: str):
    def refuse(name: str):
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_strict_json_writes_non_finite_floats_as_null() -> None:
    text = dumps(
        {"a": math.inf, "b": [np.float64("nan"), 1.5, np.int64(3)], "c": (np.float32(2.5), -math.inf)}
    )
    assert _strict(text) == {"a": None, "b": [None, 1.5, 3], "c": [2.5, None]}


def test_a_simulation_summary_json_is_strict_json(tmp_path: Path, monkeypatch) -> None:
    from pslsched.simulator.record import RunRecord

    original = RunRecord.summary
    monkeypatch.setattr(RunRecord, "summary", lambda self: {**original(self), "mean_makespan_ms": math.inf})
    monkeypatch.setattr("pslsched.simulator.record.plot_planned_vs_actual", lambda record, path: None)
    assert main(["simulate", "--rounds", "1", "--out", str(tmp_path / "sim")]) == 0
    summary = _strict((tmp_path / "sim" / "summary.json").read_text())
    assert summary["mean_makespan_ms"] is None and summary["rounds"] == 1


def test_a_training_summary_json_is_strict_json(tmp_path: Path, monkeypatch) -> None:
    from pslsched.training.results import TrainResult

    original = TrainResult.summary
    monkeypatch.setattr(TrainResult, "summary", lambda self: {**original(self), "best_accuracy": math.nan})
    argv = ["train", "--dataset", "synthetic:n=32,test=16", "--rounds", "1", "--threads", "1"]
    assert main([*argv, "--out", str(tmp_path / "run")]) in (0, 5)
    summary = _strict((tmp_path / "run" / "summary.json").read_text())
    assert summary["best_accuracy"] is None and summary["rounds"] == 1


# ---------------------------------------------------------------------------------------------------- one line


@pytest.mark.parametrize(
    "argv, prog",
    [
        (["train", "--lr", "nan"], "sched train"),
        (["train", "--threads", "0"], "sched train"),
        (["solve", "--time-limit", "x"], "sched solve"),
        (["codecs", "--budget", "x"], "sched codecs"),
        (["generate", "--family", "tirana1"], "sched generate"),
        (["profile", "show"], "sched profile show"),
        (["simulate", "--links", "nosuch"], "sched simulate"),
        (["nosuch"], "sched"),
        ([], "sched"),
    ],
)
def test_argparse_rejections_are_one_line_with_a_pointer_to_help(capsys, argv: list[str], prog: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and not out
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"{prog}: error: ") and err.rstrip().endswith(f"(see {prog} --help)"), err


def test_a_file_that_is_not_a_profile_is_one_line(tmp_path: Path, capsys) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n" * 3 + "a,b,c,d\n")
    refused(capsys, ["profile", "show", str(passwd)], f"profile {str(passwd)!r}", "not a readable CSV")


def test_a_yaml_with_a_nul_byte_is_one_line(tmp_path: Path, capsys) -> None:
    testbed = tmp_path / "nul.yaml"
    testbed.write_bytes(b"name: x\x00\nseed: 1\n")
    refused(capsys, ["solve", "--profile", str(testbed)], str(testbed), "malformed YAML", "#x0000")


def test_warnings_raised_before_an_input_error_are_not_printed(monkeypatch, capsys) -> None:
    import pslsched.cli.validate as validate

    def warn_then_refuse(args) -> int:
        np.array([]).mean()  # numpy: "Mean of empty slice"
        raise InputError("--instance", "bad input")

    monkeypatch.setattr(validate, "run", warn_then_refuse)
    # what the command shows, it shows through showwarning: recorded here
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        refused(capsys, ["validate", "--instance", "x.json", "y.json"], "--instance", "bad input")
    assert not shown, [str(w.message) for w in shown]


def test_warnings_of_a_run_that_did_not_fail_on_its_input_are_still_shown(monkeypatch) -> None:
    import pslsched.cli.validate as validate

    def warn_then_succeed(args) -> int:
        warnings.warn("something to know", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(validate, "run", warn_then_succeed)
    with pytest.warns(UserWarning, match="something to know"):
        assert main(["validate", "--instance", "x.json", "y.json"]) == 0
