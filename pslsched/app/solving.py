"""Planning use-cases: solve one instance, compare solvers on it, and pick the plan an experiment runs.

Every schedule a use-case hands back has been through the independent validator: an invalid one (a solver bug)
is reported as such, never returned as an answer.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pslsched.app.capacity import capacity_hint
from pslsched.app.cut_planning import CutChoice
from pslsched.app.experiment import (
    Experiment,
    check_solver,
    fix_cuts,
    given_cut,
    source_instance,
    source_testbed,
    strategy_instance,
)
from pslsched.app.requests import CompareRequest, SolveRequest
from pslsched.base.errors import InputError
from pslsched.core.backend_log import verbosity
from pslsched.core.instance import Instance, write_instance
from pslsched.core.report import plot_gantt, write_schedule_csv
from pslsched.core.result import SolveResult
from pslsched.core.schedule import Schedule, read_schedule, write_schedule
from pslsched.core.testbed import build
from pslsched.core.validate import validate
from pslsched.solvers import SOLVERS
from pslsched.solvers import solve as run_solver
from pslsched.solvers.compare import compare as compare_table

Progress = Callable[[float, float | None, float], None]


def default_solver() -> str:
    """``auto`` where registered, else ``greedy``."""
    return "auto" if "auto" in SOLVERS else "greedy"


@dataclass
class SolveOutcome:
    """A solve: the instance, the solver's result and the validator's verdict on its schedule."""

    instance: Instance
    solver: str
    result: SolveResult
    violations: list[str] = field(default_factory=list)
    baselines: pd.DataFrame | None = None  # the baselines' compare table (None: none asked)
    cut_choice: CutChoice | None = None  # where the cut was chosen with the plan: the candidates and what-ifs

    def comparison(self) -> pd.DataFrame | None:
        """The baselines' table with this answer's row first, on the instance's one lower bound."""
        if self.baselines is None or not self.valid:
            return None
        r = self.result
        row = {"solver": self.solver, "status": r.status, "valid": True, "makespan_ms": r.makespan}
        if "round_ms" in self.baselines:
            row["round_ms"] = r.round_time
        table = pd.concat(
            [pd.DataFrame([{**row, "own_bound_ms": r.lower_bound}]), self.baselines], ignore_index=True
        )
        best = float(table["own_bound_ms"].max())
        table["lower_bound_ms"] = best
        obj = "round_ms" if "round_ms" in table else "makespan_ms"
        table["gap_%"] = (100 * (table[obj] - best) / best).clip(lower=0) if best > 0 else float("nan")
        return table

    def savings(self) -> list[tuple[str, float | None, float | None]]:
        """(baseline, its makespan, % the answer saves against it) per baseline (None where it found none)."""
        if self.baselines is None or self.result.makespan is None:
            return []
        out = []
        key = "round_ms" if "round_ms" in self.baselines else "makespan_ms"
        for row in self.baselines.to_dict("records"):
            ms = None if row[key] != row[key] else float(row[key])
            out.append((row["solver"], ms, None if ms is None else 100 * (1 - self.result.objective / ms)))
        return out

    @property
    def valid(self) -> bool:
        return self.result.schedule is not None and not self.violations

    def metrics(self) -> dict:
        """The solve as numbers (a sweep's row); ``*_s`` keys are wall-clock."""
        if self.violations:
            raise RuntimeError(f"the solver returned an invalid schedule: {self.violations[0]}")
        r = self.result
        return {
            "clients": self.instance.num_clients,
            "helpers": self.instance.num_helpers,
            "status": r.status,
            "makespan_ms": r.makespan,
            "round_ms": r.objective,
            "lower_bound_ms": r.lower_bound,
            "gap": r.gap,
            "solver_runtime_s": r.runtime_s,
        }


def solver_options(workers: int | None, progress: Progress | None = None) -> dict:
    options: dict = {}
    if workers is not None:
        options["workers"] = workers
    if progress is not None:
        options["progress"] = progress
    return options


def check_solve(request: SolveRequest) -> tuple[Instance, str]:
    """The instance and the solver name, checked; nothing is solved."""
    instance = source_instance(request)
    return instance, check_solver(request.solver or default_solver())


def solve(request: SolveRequest, progress: Progress | None = None) -> SolveOutcome:
    """Run the requested solver on the requested instance and validate its schedule."""
    name = check_solver(request.solver or default_solver())
    names = [b for b in request.baselines if b != name]
    for b in names:
        check_solver(b, "--baselines")
    choice = None
    if request.instance:
        instance = source_instance(request)
    else:
        testbed, choice, result = fix_cuts(
            source_testbed(request),
            request.strategy,
            solver=name,
            time_limit=request.time_limit,
            seed=request.seed,
            given=given_cut(request),
            options=solver_options(request.workers),
        )
        built = build(testbed)
        instance = strategy_instance(built.instance, built.workload, request.strategy, testbed.simulation)
    if choice is None:
        with verbosity(request.verbose):
            result = run_solver(
                instance,
                name,
                time_limit=request.time_limit,
                seed=request.seed,
                **solver_options(request.workers, progress),
            )
    violations = validate(instance, result.schedule) if result.schedule is not None else []
    if result.status == "infeasible" and not request.instance:
        hint = capacity_hint(source_testbed(request), instance)
        if hint:
            result.message = f"{result.message}; {hint}"
    outcome = SolveOutcome(instance, name, result, violations, cut_choice=choice)
    if names and outcome.valid:
        with verbosity(request.verbose):
            outcome.baselines = compare_table(
                instance, names, time_limit=request.time_limit, seed=request.seed, **solver_options(1)
            )
    return outcome


OUTPUT_FILES = ("instance.json", "schedule.json", "schedule.csv", "gantt.png", "report.html")


def write_outputs(
    outcome: SolveOutcome, directory: str | Path, source: str | None = None
) -> dict[str, float]:
    """Write a valid solve's :data:`OUTPUT_FILES` to ``directory``; the seconds each took, by file name.

    ``source`` is the instance JSON file the instance was read from (``SolveRequest.instance``): it is copied
    byte for byte instead of re-written (the same instance; 0.1 s instead of 2-3 s at 10,000 x 100)."""
    from pslsched.app.report import schedule_report, write_report

    directory = Path(directory)
    instance, schedule = outcome.instance, outcome.result.schedule
    if schedule is None or outcome.violations:
        raise RuntimeError("only a valid schedule is written")
    title = f"{schedule.solver} on {instance.name}"
    writers: dict[str, Callable[[Path], None]] = {
        "instance.json": (
            (lambda p: _copy(source, p)) if source else (lambda p: write_instance(instance, p))
        ),
        "schedule.json": lambda p: write_schedule(schedule, p),
        "schedule.csv": lambda p: write_schedule_csv(schedule, p),
        "gantt.png": lambda p: plot_gantt(instance, schedule, p),
        "report.html": lambda p: write_report(
            p, schedule_report(instance, schedule, title, outcome.comparison())
        ),
    }
    seconds = {}
    for name in OUTPUT_FILES:
        t0 = time.perf_counter()
        writers[name](directory / name)
        seconds[name] = time.perf_counter() - t0
    return seconds


def _copy(source: str | Path, path: Path) -> None:
    """``source`` copied to ``path`` via a temporary file (nothing half-written is left on failure)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class CompareOutcome:
    instance: Instance
    table: pd.DataFrame
    schedules: dict[str, Schedule] = field(default_factory=dict)  # each valid schedule by solver


def compare(request: CompareRequest) -> CompareOutcome:
    """Every listed (default: registered) solver on one instance: makespan (round time where the strategy
    exchanges weights), bound, gap, runtime per solver; from a testbed, the cut each plan runs (a column)."""
    if request.solvers is not None:
        if not request.solvers:
            raise InputError("--solvers", "expected a comma-separated list of solvers")
        for name in request.solvers:
            check_solver(name, "--solvers")
    cut = None
    if request.instance:
        instance = source_instance(request)
    else:
        testbed, _, _ = fix_cuts(
            source_testbed(request), request.strategy, solver="greedy", time_limit=None, seed=request.seed
        )
        built = build(testbed)
        instance = strategy_instance(built.instance, built.workload, request.strategy, testbed.simulation)
        cut = testbed_cut(testbed)
    schedules: dict[str, Schedule] = {}
    with verbosity(request.verbose):
        table = compare_table(
            instance,
            request.solvers,
            time_limit=request.time_limit,
            seed=request.seed,
            schedules=schedules,
            **solver_options(request.workers),
        )
    if cut is not None:
        table.insert(1, "cut", cut)
    return CompareOutcome(instance, table, schedules)


def testbed_cut(testbed) -> str:
    """The cut points a testbed's clients run, as ``a,b`` (``a,b;a,b`` where client groups differ)."""
    pairs = dict.fromkeys(f"{(g.cut or testbed.cuts).a},{(g.cut or testbed.cuts).b}" for g in testbed.clients)
    return ";".join(pairs)


def read_plan(path: str, *instances: Instance) -> Schedule:
    """A schedule file, valid for one of ``instances`` (the first's violation is named otherwise)."""
    schedule = read_schedule(path)
    first = None
    for instance in instances:
        problems = validate(instance, schedule)
        if not problems:
            return schedule
        first = first or problems
    raise InputError(path, f"not a valid schedule for this instance: {first[0]}")


def plan(
    exp: Experiment,
    *,
    schedule: str | None = None,
    solver: str | None = None,
    time_limit: float | None = None,
    workers: int | None = None,
    verbose: bool = False,
) -> Schedule | SolveResult:
    """The schedule the experiment runs: read and validated from ``schedule``, or solved for the round the
    clock runs (``exp.planned_instance``); the SolveResult when the solver found none."""
    if schedule is not None:
        ours = [exp.instance, *([exp.round_instance] if exp.round_instance else [])]
        if exp.instance.sequential:  # an interleaved plan's forward order runs sequentially on the clock
            ours += [dataclasses.replace(x, sequential=False) for x in ours]
        return read_plan(schedule, *ours)
    name = check_solver(solver or "greedy")
    seed = exp.sim.seed if exp.sim is not None else 0
    with verbosity(verbose):
        result = run_solver(
            exp.planned_instance, name, time_limit=time_limit, seed=seed, **solver_options(workers)
        )
    if result.schedule is None:
        hint = capacity_hint(exp.testbed, exp.instance) if result.status == "infeasible" else None
        if hint:
            result.message = f"{result.message}; {hint}"
        return result
    problems = validate(exp.planned_instance, result.schedule)
    if problems:
        raise RuntimeError(f"the solver returned an invalid schedule: {problems[0]}")
    return result.schedule
