"""Training use-cases: real split training on the clock of a plan; resume a run; one run per solver's plan.

A run with an output folder writes ``settings.json`` (the settings, the scaled testbed) and ``schedule.json``
before its first round, so ``resume(folder)`` continues exactly that run from its last finished round (verified:
``pslsched.training.checkpoints``), or restarts it from its settings when it was stopped before its first
checkpoint. A run holds the folder's lock while it writes there: a second writer is refused.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pslsched.app.experiment import Experiment, check_solver, fix_cuts, sim_config, with_compression
from pslsched.app.requests import TrainRequest
from pslsched.app.resume_checks import SCHEDULE, SETTINGS, check_resume_options, read_settings
from pslsched.app.solving import plan
from pslsched.base.errors import InputError
from pslsched.base.files import folder_lock, write_text_atomically
from pslsched.base.registry import catalogue
from pslsched.core.result import SolveResult
from pslsched.core.round_model import ROUND_MODELS, for_strategy, round_model
from pslsched.core.schedule import Schedule, read_schedule, write_schedule
from pslsched.core.testbed import (
    Testbed,
    build,
    default_testbed_path,
    load_testbed,
    parse_testbed,
    scale_clients,
)
from pslsched.core.validate import validate
from pslsched.simulator import aggregator_index
from pslsched.training import (
    CutPoints,
    TrainConfig,
    plot_curves,
    prepare_training,
    round_instance,
    run_training,
    train_config_from,
)
from pslsched.training.checkpoints import CHECKPOINT, has_checkpoint, read_state

DEFAULT_TRAINING_ROUNDS = 10  # training's default (a simulation's is the testbed's, else 1)
OnRound = Callable[[dict], None]


@dataclass
class TrainOutcome:
    """A training run: the experiment, the schedule whose clock it ran, and the training result."""

    experiment: Experiment
    schedule: Schedule
    result: Any  # pslsched.training's TrainingResult
    schedule_source: str | None = None  # the schedule file, when the plan was read rather than solved
    cost_only: bool = False  # the run computed nothing (the clock alone)
    resumed: str | None = None  # a resume: what it did, in words ("continued after round 2, to 5 round(s)")

    @property
    def planned_for_round(self) -> bool:
        """Whether the schedule was made for the round the clock runs (else: for the testbed's own instance,
        whose assignment and helper order then run on this round's durations)."""
        exp = self.experiment
        if exp.round_instance is None:
            return True
        return not validate(dataclasses.replace(exp.round_instance, sequential=False), self.schedule)

    @property
    def made_sequential(self) -> bool:
        """Whether the run's helpers are sequential but the schedule's order interleaved (the clock then runs
        each helper's forwards in the schedule's order, each followed by its backward)."""
        exp = self.experiment
        ours = [exp.instance, *([exp.round_instance] if exp.round_instance else [])]
        return exp.instance.sequential and all(validate(x, self.schedule) for x in ours)

    def metrics(self) -> dict:
        """Accuracy and virtual time as numbers (a sweep's row); raises when the run diverged."""
        if self.result.diverged:
            raise RuntimeError(f"training diverged: {self.result.diverged}")
        s = self.result.summary()
        rounds = self.result.rounds
        return {
            "planned_makespan_ms": self.schedule.makespan,
            "rounds": s["rounds"],
            "mean_round_time_ms": s["mean_round_time_ms"],
            "virtual_time_ms": s["virtual_time_ms"],
            "final_accuracy": s["final_accuracy"],
            "best_accuracy": s["best_accuracy"],
            "time_to_accuracy_ms": s["time_to_accuracy_ms"],
            "wall_s": s["wall_s"],
            "collapsed": s["collapsed"],
            "series": {
                "virtual_ms": [float(v) for v in (rounds["start_ms"] + rounds["round_time_ms"])],
                "test_accuracy": [None if v != v else float(v) for v in rounds["test_accuracy"]],
            },
        }


def _train_config(request: TrainRequest, testbed: Testbed) -> TrainConfig:
    """The testbed's ``training:`` section overridden by the request's training options (the fields both have)."""
    shared = [f for f in TrainRequest.model_fields if f in TrainConfig.model_fields]
    cfg = train_config_from(testbed.training, **{f: getattr(request, f) for f in shared})
    if cfg.model is None and testbed.model.measure is not None:
        # the clock is the measured model's: train that model, at the testbed's cuts
        update: dict[str, Any] = {"model": testbed.model.measure}
        if testbed.cuts is not None and cfg.cuts is None:
            update["cuts"] = CutPoints(a=testbed.cuts.a, b=testbed.cuts.b)
        cfg = cfg.model_copy(update=update)
    return cfg


def training_experiment(
    request: TrainRequest, testbed: Testbed | None = None, stored: dict | None = None
) -> Experiment:
    """Testbed, simulation and training settings, data, model and strategy checked (data loaded once).

    ``stored`` (a finished run's settings, for a resume) replaces the request's settings; ``testbed`` replaces
    the request's testbed (the run's own, scaled one).
    """
    if testbed is None:
        testbed = with_compression(request, load_testbed(request.profile or default_testbed_path()))
    if stored is not None:
        cfg = train_config_from(stored["training"])
        section = stored["simulation"]
    else:
        cfg = _train_config(request, testbed)
        section = testbed.simulation
        if cfg.clients is not None:
            testbed = scale_clients(testbed, cfg.clients)
    sim = sim_config(section, request, stored=stored is not None)
    if stored is None and request.rounds is None and not (section or {}).get("rounds"):
        sim = sim.model_copy(update={"rounds": DEFAULT_TRAINING_ROUNDS})
    name = cfg.strategy.split(":", 1)[0].strip()
    if (
        testbed.chooses_cuts
    ):  # the clock's cut: the schedule's, else chosen with the plan of this strategy's round
        testbed, _, _ = fix_cuts(
            testbed,
            name if name in ROUND_MODELS else None,
            solver=request.solver or "greedy",
            time_limit=request.time_limit,
            seed=sim.seed,
            schedule=request.schedule,
        )
    built = build(testbed)
    aggregator = aggregator_index(built.instance, sim.aggregator)
    instance = for_strategy(
        built.instance,
        built.workload,
        # a strategy the planner has no entry for (a plug-in) is planned as SplitFed V1; an unknown one is named by
        # the training settings' own check below
        ROUND_MODELS.get(name, round_model(None)),
        aggregator=aggregator,
        aggregate_ms=sim.aggregate_ms,
    )
    exp = Experiment(
        instance=instance,
        testbed=built.testbed,
        workload=built.workload,
        sim=sim,
        training=cfg,
        compression=testbed.compression.compression() if testbed.compression else None,
    )
    prepared = prepare_training(exp.instance, cfg, sim.seed)
    exp.dataset = prepared.dataset
    first = prepared.planner(0, [])
    if first.sequential:  # the strategy's helpers serve one client step at a time: plan and validate that
        exp.instance = dataclasses.replace(exp.instance, sequential=True)
    # the round's own waits (its plan's, e.g. SGLR without averaging has no gate): planned as they run
    sync = bool(first.sync)
    exp.instance = dataclasses.replace(exp.instance, step_barrier=sync, gated=sync and bool(first.broadcast))
    exp.round_instance = round_instance(exp.instance, first, exp.workload)
    if not request.schedule and stored is None:
        check_solver(request.solver or "greedy")
    return exp


TRAINING_KINDS = ("datasets", "models", "strategies", "partitions", "samplers")


def training_catalogue() -> dict[str, list[tuple[str, str]]]:
    """The training room's registered parts and their summaries (``sched train --list``)."""
    everything = catalogue()
    return {kind: everything.get(kind, []) for kind in TRAINING_KINDS}


def check_train(request: TrainRequest) -> Experiment:
    """Testbed, settings, data, model, strategy and solver checked (data loaded once); nothing solved or trained."""
    return training_experiment(request)


def _with_timeout(exp: Experiment, schedule: Schedule) -> None:
    """With dropouts and no timeout set: 3x the planned makespan of the round the schedule was made for."""
    if exp.sim.dropout > 0 and exp.sim.round_timeout_ms is None and schedule.makespan:
        exp.sim = exp.sim.model_copy(update={"round_timeout_ms": 3.0 * schedule.makespan})


def write_settings(out: Path, exp: Experiment, schedule: Schedule, cost_only: bool = False) -> None:
    """What a resume needs: the settings, the (scaled) testbed, whether the run computes (``cost_only``) and the
    schedule."""
    out.mkdir(parents=True, exist_ok=True)
    testbed = exp.testbed.model_dump(mode="json", exclude_none=True)
    profile = Path(testbed["model"]["profile"])
    if profile.is_file():
        testbed["model"]["profile"] = str(profile.resolve())
    settings = {
        "training": exp.training.model_dump(mode="json", exclude_none=True),
        "simulation": exp.sim.model_dump(mode="json"),
        "testbed": testbed,
        "cost_only": bool(cost_only),
    }
    write_text_atomically(out / SETTINGS, json.dumps(settings, indent=1) + "\n")
    write_schedule(schedule, out / SCHEDULE)


def _run(
    exp: Experiment,
    schedule: Schedule,
    out: Path | None,
    *,
    cost_only: bool,
    resume: bool = False,
    on_round: OnRound | None = None,
    on_start: Callable[[], None] | None = None,
    progress: bool | None = None,
):
    result = run_training(
        exp.instance,
        exp.workload,
        schedule,
        exp.sim,
        exp.training,
        out=out,
        resume=resume,
        cost_only=cost_only,
        dataset=exp.dataset,
        compression=exp.compression,
        on_round=on_round,
        on_start=on_start,
        checked_files=(SETTINGS, SCHEDULE),
        progress=progress,
    )
    if out is not None:
        from pslsched.app.report import training_report, write_report

        page = training_report(
            result.rounds, result.record, exp.training.target_accuracy, f"training in {out}"
        )
        write_report(out / "report.html", page)
    return result


def _check_out(out: Path | None) -> None:
    if out is not None and out.exists() and not out.is_dir():
        raise InputError("--out", f"{str(out)!r} exists and is not a folder")


def train(
    request: TrainRequest,
    out: str | Path | None = None,
    on_round: OnRound | None = None,
    *,
    continue_existing: bool = False,
    experiment: Experiment | None = None,
) -> TrainOutcome | SolveResult:
    """Plan (read or solve the round the clock runs) and train; the SolveResult when no schedule was found.

    With ``out`` the run writes its files there (holding its lock: another writer is refused) and checkpoints
    every round. ``continue_existing``: if ``out`` already holds a run (an interrupted sweep point), that run is
    resumed (from its checkpoint, or restarted from its settings) instead of starting afresh; one that cannot be
    resumed (damaged, another run's) is replaced by a fresh one. ``experiment``: the request's, if already
    resolved (``check_train``).
    """
    out = Path(out) if out is not None else None
    _check_out(out)
    exp = experiment or training_experiment(request)
    schedule = plan(exp, **request.plan_options())
    if isinstance(schedule, SolveResult):
        return schedule
    _with_timeout(exp, schedule)
    if out is None:
        result = _run(
            exp, schedule, out, cost_only=request.cost_only, on_round=on_round, progress=request.progress
        )
        return TrainOutcome(exp, schedule, result, request.schedule, request.cost_only)
    with folder_lock(out):
        if continue_existing and (out / SETTINGS).is_file():
            try:
                return _resume_locked(out, TrainRequest(rounds=request.rounds), on_round)
            except InputError:  # not this run, or nothing to continue: start it afresh
                shutil.rmtree(out / CHECKPOINT, ignore_errors=True)

        def on_start() -> None:
            write_settings(out, exp, schedule, request.cost_only)

        kw = {"on_round": on_round, "on_start": on_start, "progress": request.progress}
        result = _run(exp, schedule, out, cost_only=request.cost_only, **kw)
    return TrainOutcome(exp, schedule, result, request.schedule, request.cost_only)


def resume(
    out: str | Path, request: TrainRequest | None = None, on_round: OnRound | None = None
) -> TrainOutcome:
    """Continue the run in ``out`` from its last finished round (``request.rounds`` may extend it).

    Everything is verified first: settings.json, the options given (only ``rounds`` and ``verbose`` may be), the
    checkpoint's manifest (this run's, unedited, undamaged); a run stopped before its first checkpoint restarts
    from round 0 with its settings. Any refusal is one ``InputError``; the folder's lock is held throughout.
    """
    out = Path(out)
    if not out.is_dir():
        raise InputError("--resume", f"{str(out)!r} is not a run's folder")
    with folder_lock(out, "--resume"):
        return _resume_locked(out, request or TrainRequest(), on_round)


def _resume_locked(out: Path, request: TrainRequest, on_round: OnRound | None) -> TrainOutcome:
    stored = read_settings(out)
    check_resume_options(request.model_copy(update={"rounds": None}), out, stored, 0)
    started = has_checkpoint(out)
    done = (
        int(read_state(out, settings=stored)["rounds_done"]) if started else 0
    )  # verified: checksums, structure, files
    said = check_resume_options(request, out, stored, done)
    try:
        testbed = parse_testbed(stored["testbed"], source=str(out / SETTINGS))
        exp = training_experiment(request, testbed=testbed, stored=stored)
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise InputError("--resume", f"unusable {out / SETTINGS}: {type(exc).__name__}: {first}") from None
    schedule = read_schedule(out / SCHEDULE)
    cost_only = bool(stored.get("cost_only", False))  # a resume computes exactly as its run did
    result = _run(
        exp, schedule, out, cost_only=cost_only, resume=started, on_round=on_round, progress=request.progress
    )
    return TrainOutcome(exp, schedule, result, str(out / SCHEDULE), cost_only, resumed=said)


def compare_solvers(
    request: TrainRequest,
    solvers: list[str],
    out: str | Path | None = None,
    on_run: Callable[[str, Schedule], OnRound | None] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One training run per solver's plan (same data, seed and partition): a table and the runs by solver.

    ``on_run(name, schedule)`` is called before each run and may return that run's per-round callback.
    """
    if not solvers:
        raise InputError("--compare-solvers", "expected a comma-separated list of solvers")
    out = Path(out) if out is not None else None
    exp = training_experiment(request.model_copy(update={"schedule": None}))
    base_sim = exp.sim
    runs, rows = {}, []
    for name in solvers:
        schedule = plan(exp, solver=name, time_limit=request.time_limit, workers=request.workers)
        if isinstance(schedule, SolveResult):
            rows.append({"solver": name, "status": "no schedule"})
            continue
        exp.sim = base_sim
        _with_timeout(exp, schedule)
        run_out = out / name if out is not None else None
        if run_out is not None:
            write_settings(run_out, exp, schedule, request.cost_only)
        callback = on_run(name, schedule) if on_run is not None else None
        result = _run(
            exp, schedule, run_out, cost_only=request.cost_only, on_round=callback, progress=request.progress
        )
        runs[name] = result
        s = result.summary()
        rows.append(
            {
                "solver": name,
                "status": schedule.status,
                "makespan_ms": schedule.makespan,
                "mean_round_time_ms": s["mean_round_time_ms"],
                "time_to_accuracy_ms": s["time_to_accuracy_ms"],
                "final_accuracy": s["final_accuracy"],
                "best_accuracy": s["best_accuracy"],
            }
        )
    table = pd.DataFrame(rows)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "compare.csv", index=False)
        if runs and not request.cost_only:
            plot_curves(runs, out / "compare.png")
    return table, runs
