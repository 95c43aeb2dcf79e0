"""stdout of `sched` carries only the tool's report: no solver library output (HiGHS's banner and log, CBC, CP-SAT)
unless `--verbose`, which sends the back ends' logs to stderr.

HiGHS writes from C straight to file descriptor 1, which capsys does not see: the commands run in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pslsched.cli import main

ROOT = Path(__file__).resolve().parent.parent
LIBRARY_TEXT = ("HiGHS", "Copyright", "CP-SAT solver", "Cbc", "CBC")


@pytest.fixture(scope="module")
def tiny_instance(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("quiet") / "tiny.json"
    family = ["--family", "tirana1", "--clients", "4", "--helpers", "2", "--seed", "1"]
    assert main(["generate", *family, "-o", str(path)]) == 0
    return path


def sched(*args: str) -> subprocess.CompletedProcess:
    """Run `python -m pslsched.cli ARGS` (a fresh process: HiGHS prints its banner once per process)."""
    return subprocess.run(
        [sys.executable, "-m", "pslsched.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def assert_report_only(out: str) -> None:
    assert "makespan" in out
    for text in LIBRARY_TEXT:
        assert text not in out, f"{text!r} on stdout:\n{out}"


@pytest.mark.parametrize("solver", ["equid", "milp", "auto"])
def test_solve_prints_no_solver_library_output(tiny_instance, solver):
    run = sched("solve", "--instance", str(tiny_instance), "--solver", solver, "--time-limit", "2")
    assert run.returncode == 0, run.stderr
    assert_report_only(run.stdout)
    assert "HiGHS" not in run.stderr  # silent, not moved: the logs are off by default


def test_compare_prints_no_solver_library_output(tiny_instance):
    run = sched("compare", "--instance", str(tiny_instance), "--solvers", "equid,milp", "--time-limit", "2")
    assert run.returncode == 0, run.stderr
    assert "makespan_ms" in run.stdout
    for text in LIBRARY_TEXT:
        assert text not in run.stdout, f"{text!r} on stdout:\n{run.stdout}"


def test_verbose_sends_the_highs_log_to_stderr(tiny_instance):
    args = ["--instance", str(tiny_instance), "--solver", "milp", "--time-limit", "2"]
    run = sched("solve", *args, "--verbose")
    assert run.returncode == 0, run.stderr
    assert_report_only(run.stdout)
    assert "Running HiGHS" in run.stderr and "Copyright" in run.stderr
    assert "Model status" in run.stderr  # the solve log, not only the banner


def test_verbose_sends_the_cpsat_log_to_stderr(tiny_instance):
    run = sched("solve", "--instance", str(tiny_instance), "--solver", "cpsat", "--time-limit", "2", "-v")
    assert run.returncode == 0, run.stderr
    assert_report_only(run.stdout)
    assert "CP-SAT solver" in run.stderr  # CP-SAT's log header, from the worker process
