"""`sched train`: real split training on the simulator's clock: accuracy against virtual time from one run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from pslsched.base.errors import InputError
from pslsched.cli.common import (
    add_codec_args,
    add_simulation_args,
    add_verbose_arg,
    add_workers_arg,
    positive_float,
    positive_int,
    with_compression,
)
from pslsched.core.backend_log import verbosity

EXIT_DIVERGED = 3
SETTINGS = "settings.json"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a real split model while simulating the schedule (accuracy vs virtual time)",
        description="Run split training (PyTorch, CPU by default) inside the simulator: every step's arithmetic "
        "happens in event order while the clock advances by the profiled durations. Settings come from "
        "testbed.yaml's training: and simulation: sections, overridden by these options.",
    )
    p.add_argument("--list", action="store_true", help="list datasets, models, strategies and partitions")
    p.add_argument("--profile", metavar="TESTBED.yaml", help="testbed (default: the bundled one)")
    plan = p.add_mutually_exclusive_group()
    plan.add_argument("--schedule", metavar="SCHEDULE.json", help="a schedule to execute")
    plan.add_argument(
        "--solver", default=None, help="solve first with this registered solver (default greedy)"
    )
    plan.add_argument(
        "--compare-solvers",
        metavar="S1,S2,...",
        help="train once per solver's schedule (same data, seed, partition): compare.csv and compare.png",
    )
    p.add_argument("--time-limit", type=positive_float("--time-limit"), default=10.0, metavar="S")
    add_workers_arg(p)
    t = p.add_argument_group("training")
    t.add_argument("--dataset", help="digits (default), mnist5k, mnist, cifar10, synthetic[:key=value,...]")
    t.add_argument("--data-dir", metavar="DIR", help="folder with the mnist / cifar10 files")
    t.add_argument("--model", help="registered split model (default: cnn for grey images, resnet for colour)")
    t.add_argument("--cuts", metavar="A,B", help="cut points of the trained model (default: the model's)")
    t.add_argument(
        "--strategy",
        help="splitfed1 (default), splitfed2, psl, sglr[:p=P,off=F], locfedmix[:mix=,alpha=,loc=,beta=,fed=], locsplitfed",
    )
    t.add_argument("--partition", help="iid (default), dirichlet:ALPHA, classes:C, quantity:ALPHA")
    t.add_argument(
        "--clients", type=positive_int("--clients"), metavar="K", help="scale the client groups to K"
    )
    t.add_argument("--batch-size", type=positive_int("--batch-size"), metavar="N", help="default 16")
    t.add_argument(
        "--batches-per-round",
        type=positive_int("--batches-per-round"),
        metavar="N",
        help="fixed batches per client per round (default: one local epoch)",
    )
    t.add_argument(
        "--sampler",
        metavar="SPEC",
        help="per-step global sampling: fls, fpls, ugs, lds[:tilt=T,c=C] (default: local epochs of --batch-size)",
    )
    t.add_argument(
        "--global-batch", type=positive_int("--global-batch"), metavar="B", help="the sampler's global batch"
    )
    t.add_argument(
        "--steps-per-round",
        type=positive_int("--steps-per-round"),
        metavar="S",
        help="with a sampler: steps per round (default: one epoch)",
    )
    t.add_argument("--lr", type=positive_float("--lr"), metavar="X", help="learning rate (default 0.01)")
    t.add_argument("--optimizer", choices=["sgd", "adam"], help="default adam (fresh state every round)")
    t.add_argument("--momentum", type=float, metavar="M", help="SGD momentum (default 0)")
    t.add_argument("--eval-every", type=positive_int("--eval-every"), metavar="N")
    t.add_argument("--target-accuracy", type=float, metavar="A", help="for time-to-accuracy (default 0.9)")
    t.add_argument(
        "--profile-batch",
        type=positive_float("--profile-batch"),
        metavar="N",
        help="the batch size the profile's costs were measured with (default 128)",
    )
    t.add_argument(
        "--clock", choices=["profile", "measured"], help="durations: profile (default) or wall time"
    )
    t.add_argument("--speed", type=positive_float("--speed"), help="measured clock: simulated ms per wall ms")
    t.add_argument("--device", help="torch device (default cpu)")
    t.add_argument("--threads", type=positive_int("--threads"), help="torch threads")
    t.add_argument("--cost-only", action="store_true", help="run the identical plan without computing")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last finished round")
    add_simulation_args(p.add_argument_group("simulation"))
    p.add_argument(
        "--out", metavar="DIR", help="rounds.csv, timeline.csv, summary.json, curves.png, checkpoint/"
    )
    add_codec_args(p)
    add_verbose_arg(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    with verbosity(args.verbose):
        if args.resume:
            return _resume(args)
        setup = _setup(args)
        _check_training(setup)
        if args.compare_solvers:
            return _compare(args, setup)
        schedule = _schedule(args, setup)
        if isinstance(schedule, int):
            return schedule
        return _train(args, setup, schedule, Path(args.out) if args.out else None)


def prepare(args: argparse.Namespace) -> _Setup:
    """Testbed, settings, data, model and strategy checked (data loaded once); nothing solved or trained."""
    if args.list or args.resume or args.compare_solvers:
        raise InputError("--list/--resume/--compare-solvers", "not available here")
    setup = _setup(args)
    _check_training(setup)
    if not args.schedule:
        from pslsched.solvers import available_solvers

        if (args.solver or "greedy") not in available_solvers():
            raise InputError(
                "--solver",
                f"unknown solver {args.solver!r} (known: {', '.join(sorted(available_solvers()))})",
            )
    return setup


def measure(args: argparse.Namespace, workdir: Path | None = None) -> dict:
    """One training run as numbers (``sched sweep``); with ``workdir`` it checkpoints there every round and an
    interrupted run continues from its last finished round."""
    setup = prepare(args)
    with verbosity(args.verbose):
        schedule = _schedule(args, setup)
    if isinstance(schedule, int):
        raise RuntimeError("no schedule to train with")
    _timeout_for(setup, schedule)
    out = Path(workdir) / "train" if workdir is not None else None
    resume = out is not None and (out / "checkpoint").is_dir()
    if out is not None and not resume:
        _write_setup(out, setup, schedule)
    result = _run_training(args, setup, schedule, out, resume)
    if result.diverged:
        raise RuntimeError(f"training diverged: {result.diverged}")
    s = result.summary()
    rounds = result.rounds
    return {
        "planned_makespan_ms": schedule.makespan,
        "rounds": s["rounds"],
        "mean_round_time_ms": s["mean_round_time_ms"],
        "virtual_time_ms": s["virtual_time_ms"],
        "final_accuracy": s["final_accuracy"],
        "best_accuracy": s["best_accuracy"],
        "time_to_accuracy_ms": s["time_to_accuracy_ms"],
        "wall_s": s["wall_s"],
        "series": {
            "virtual_ms": [float(v) for v in (rounds["start_ms"] + rounds["round_time_ms"])],
            "test_accuracy": [None if v != v else float(v) for v in rounds["test_accuracy"]],
        },
    }


def _list() -> int:
    from pslsched.training import catalogue

    for kind, entries in catalogue().items():
        print(f"{kind}:")
        for name, summary in entries:
            print(f"  {name:<12} {summary}")
    return 0


class _Setup:
    """The testbed built, the simulation and training settings, validated."""

    def __init__(self, testbed, built, sim_config, train_config):
        self.testbed, self.built, self.sim, self.cfg = testbed, built, sim_config, train_config
        self.dataset = None
        self.round_instance = None  # the instance one training round amounts to (what the solver schedules)
        self.compression = testbed.compression.compression() if testbed.compression else None


def _setup(args: argparse.Namespace, testbed=None, stored: dict | None = None) -> _Setup:
    from pslsched.core.testbed import build, default_testbed_path, load_testbed, scale_clients
    from pslsched.simulator import config_from, parse_stragglers
    from pslsched.simulator.engine import aggregator_index
    from pslsched.training.config import train_config_from

    if args.dropout is not None and not 0 <= args.dropout <= 1:
        raise InputError("--dropout", f"must be in [0, 1], got {args.dropout}")
    if testbed is None:
        testbed = with_compression(args, load_testbed(args.profile or default_testbed_path()))
    if stored is not None:
        cfg = train_config_from(stored["training"])
        sim_section = stored["simulation"]
    else:
        cfg = train_config_from(
            testbed.training,
            dataset=args.dataset,
            data_dir=args.data_dir,
            model=args.model,
            cuts=args.cuts,
            strategy=args.strategy,
            partition=args.partition,
            clients=args.clients,
            batch_size=args.batch_size,
            batches_per_round=args.batches_per_round,
            sampler=args.sampler,
            global_batch=args.global_batch,
            steps_per_round=args.steps_per_round,
            lr=args.lr,
            optimizer=args.optimizer,
            momentum=args.momentum,
            eval_every=args.eval_every,
            target_accuracy=args.target_accuracy,
            profile_batch=args.profile_batch,
            clock=args.clock,
            speed=args.speed,
            device=args.device,
            threads=args.threads,
        )
        if cfg.model is None and testbed.model.measure is not None:
            # the clock is the measured model's: train that model, at the testbed's cuts
            from pslsched.training.config import CutPoints

            update = {"model": testbed.model.measure}
            if testbed.cuts is not None and cfg.cuts is None:
                update["cuts"] = CutPoints(a=testbed.cuts.a, b=testbed.cuts.b)
            cfg = cfg.model_copy(update=update)
        sim_section = testbed.simulation
        if cfg.clients is not None:
            testbed = scale_clients(testbed, cfg.clients)
    sim = config_from(
        sim_section,
        rounds=args.rounds,
        policy=None if stored else args.policy,
        links=None if stored else args.links,
        dropout=None if stored else args.dropout,
        round_timeout_ms=None if stored else args.round_timeout,
        aggregator=None if stored else args.aggregator,
        seed=None if stored else args.seed,
        stragglers=parse_stragglers(args.stragglers) if args.stragglers is not None and not stored else None,
    )
    if stored is None and args.rounds is None and not (sim_section or {}).get("rounds"):
        sim = sim.model_copy(update={"rounds": 10})  # training's default: 10 rounds (simulate's is 1)
    built = build(testbed)
    aggregator_index(built.instance, sim.aggregator)
    return _Setup(testbed, built, sim, cfg)


def _check_training(setup: _Setup) -> None:
    """Data, partition, model, cuts and strategy are checked (and the data loaded once) before any solving."""
    from pslsched.training.plans import round_instance
    from pslsched.training.runner import prepare

    prep = prepare(setup.built.instance, setup.cfg, setup.sim.seed)
    setup.dataset = prep.dataset
    setup.round_instance = round_instance(setup.built.instance, prep.planner(0, []), setup.built.workload)


def _schedule(args: argparse.Namespace, setup: _Setup, solver: str | None = None):
    from pslsched.core.schedule import read_schedule
    from pslsched.core.validate import validate
    from pslsched.solvers import available_solvers, solve

    instance = setup.round_instance or setup.built.instance  # the round the clock will run
    if args.schedule and solver is None:
        schedule = read_schedule(args.schedule)
        problems = validate(setup.built.instance, schedule)
        if problems and setup.round_instance is not None:
            problems = validate(setup.round_instance, schedule) and problems
        if problems:
            raise InputError(args.schedule, f"not a valid schedule for this instance: {problems[0]}")
        return schedule
    name = solver or args.solver or "greedy"
    if name not in available_solvers():
        raise InputError(
            "--solver", f"unknown solver {name!r} (known: {', '.join(sorted(available_solvers()))})"
        )
    options = {"workers": args.workers} if args.workers else {}
    result = solve(instance, name, time_limit=args.time_limit, seed=setup.sim.seed, **options)
    if result.schedule is None:
        print(f"no schedule to train with: {result.status} ({result.message})")
        return 3 if result.status == "infeasible" else 4
    return result.schedule


def _timeout_for(setup: _Setup, schedule) -> None:
    """With dropouts and no timeout set: 3x the planned makespan of the round the schedule was made for."""
    if setup.sim.dropout > 0 and setup.sim.round_timeout_ms is None and schedule.makespan:
        setup.sim = setup.sim.model_copy(update={"round_timeout_ms": 3.0 * schedule.makespan})


def _run_training(args, setup: _Setup, schedule, out: Path | None, resume: bool = False, **hooks):
    """run_training on the set-up's instance, settings and data (``hooks``: on_round, on_start)."""
    from pslsched.training.runner import run_training

    return run_training(
        setup.built.instance,
        setup.built.workload,
        schedule,
        setup.sim,
        setup.cfg,
        out=out,
        resume=resume,
        cost_only=args.cost_only,
        dataset=setup.dataset,
        compression=setup.compression,
        **hooks,
    )


def _train(args, setup: _Setup, schedule, out: Path | None, resume: bool = False, quiet: bool = False) -> int:
    if not resume and setup.round_instance is not None:
        _timeout_for(setup, schedule)

    if out is not None and out.exists() and not out.is_dir():
        raise InputError("--out", f"{str(out)!r} exists and is not a folder")

    def on_start() -> None:
        if out is not None and not resume:
            _write_setup(out, setup, schedule)

    bar = _Progress(setup.sim.rounds, quiet)
    try:
        result = _run_training(args, setup, schedule, out, resume, on_round=bar.update, on_start=on_start)
    except KeyboardInterrupt:
        bar.close()
        where = f"; continue with: sched train --resume {out}" if out is not None else ""
        print(f"sched: interrupted after round {bar.done}{where}", file=sys.stderr)
        return 130
    bar.close()
    if not quiet:
        _print_summary(result, schedule, args.cost_only, out)
    if result.diverged:
        print(f"sched: error: training diverged: {result.diverged}", file=sys.stderr)
        return EXIT_DIVERGED
    return 0


def _write_setup(out: Path, setup: _Setup, schedule) -> None:
    """What --resume needs: the settings, the (scaled) testbed and the schedule."""
    from pslsched.core.schedule import write_schedule

    out.mkdir(parents=True, exist_ok=True)
    testbed = setup.testbed.model_dump(mode="json", exclude_none=True)
    profile = Path(testbed["model"]["profile"])
    if profile.is_file():
        testbed["model"]["profile"] = str(profile.resolve())
    settings = {
        "training": setup.cfg.model_dump(mode="json", exclude_none=True),
        "simulation": setup.sim.model_dump(mode="json"),
        "testbed": testbed,
    }
    (out / SETTINGS).write_text(json.dumps(settings, indent=1) + "\n")
    write_schedule(schedule, out / "schedule.json")


def _resume(args: argparse.Namespace) -> int:
    from pslsched.core.schedule import read_schedule
    from pslsched.core.testbed import parse_testbed

    out = Path(args.resume)
    file = out / SETTINGS
    if not file.is_file():
        raise InputError("--resume", f"{str(out)!r} holds no run to resume (no {SETTINGS})")
    try:
        stored = json.loads(file.read_text())
        testbed = parse_testbed(stored["testbed"], source=str(file))
    except (ValueError, KeyError) as exc:
        raise InputError("--resume", f"unreadable {file}: {exc}") from None
    setup = _setup(args, testbed=testbed, stored=stored)
    schedule = read_schedule(out / "schedule.json")
    return _train(args, setup, schedule, out, resume=True)


def _compare(args: argparse.Namespace, setup: _Setup) -> int:
    from pslsched.training.runner import plot_curves

    names = [s.strip() for s in args.compare_solvers.split(",") if s.strip()]
    if not names:
        raise InputError("--compare-solvers", "expected a comma-separated list of solvers")
    out = Path(args.out) if args.out else None
    runs, rows = {}, []
    base_sim = setup.sim
    for name in names:
        schedule = _schedule(args, setup, solver=name)
        if isinstance(schedule, int):
            rows.append({"solver": name, "status": "no schedule"})
            continue
        print(
            f"training with the {name} schedule (planned makespan {schedule.makespan:.1f} ms)",
            file=sys.stderr,
        )
        setup.sim = base_sim
        _timeout_for(setup, schedule)
        run_out = out / name if out is not None else None
        if run_out is not None:
            run_out.mkdir(parents=True, exist_ok=True)
            _write_setup(run_out, setup, schedule)
        bar = _Progress(setup.sim.rounds, False)
        result = _run_training(args, setup, schedule, run_out, on_round=bar.update)
        bar.close()
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
    print(f"target accuracy {setup.cfg.target_accuracy:.0%}; times are virtual (ms)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if out is not None:
        table.to_csv(out / "compare.csv", index=False)
        if runs and not args.cost_only:
            plot_curves(runs, out / "compare.png")
        print(f"\nwrote {out}/compare.csv, compare.png and one folder per solver")
    return 0


def _print_summary(result, schedule, cost_only: bool, out: Path | None) -> None:
    s = result.summary()
    inst = result.record.instance
    cfg = result.config
    print(f"instance   {inst.name}  ({inst.num_clients} clients, {inst.num_helpers} helpers)")
    print(
        f"schedule   {schedule.solver}: planned makespan {schedule.makespan:.1f} ms for one round as planned"
    )
    print(
        f"training   {cfg.strategy} on {cfg.dataset} ({cfg.partition}), model {result.model} cut at "
        f"{result.cuts[0]},{result.cuts[1]}, batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr}"
        + ("  [cost only]" if cost_only else "")
    )
    if cfg.sampler:
        spread = result.rounds
        print(
            f"sampling   {cfg.sampler}, global batch {cfg.global_batch or cfg.batch_size * inst.num_clients}, "
            f"{int(spread['steps'].iloc[-1])} steps in the last round, "
            f"{int(spread['clients_per_step_min'].min())}-{int(spread['clients_per_step_max'].max())} clients per step"
        )
    if not s["rounds"]:
        print("rounds     none finished")
        return
    print(
        f"rounds     {s['rounds']}, round time mean {s['mean_round_time_ms']:.1f} ms, "
        f"virtual time {s['virtual_time_ms'] / 1e3:.2f} s, wall {s['wall_s']:.1f} s"
    )
    if not cost_only:
        tta = s["time_to_accuracy_ms"]
        print(
            f"accuracy   final {s['final_accuracy']:.4f}, best {s['best_accuracy']:.4f}; "
            + (
                f"{cfg.target_accuracy:.0%} reached at {tta / 1e3:.2f} s virtual"
                if tta is not None
                else f"{cfg.target_accuracy:.0%} not reached"
            )
        )
    if out is not None:
        print(f"wrote {out}/rounds.csv, timeline.csv, summary.json, curves.png, checkpoint/")


class _Progress:
    """A tqdm bar on a terminal; one line per round otherwise (logs stay readable)."""

    def __init__(self, rounds: int, quiet: bool):
        self.bar = None
        self.quiet = quiet
        self.done = 0
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=rounds, unit="round", file=sys.stderr)

    def update(self, row: dict) -> None:
        self.done = row["round"] + 1
        acc = row.get("test_accuracy")
        text = f"virtual {row['virtual_ms'] / 1e3:.2f} s, loss {row['train_loss']:.4f}" + (
            f", accuracy {acc:.4f}" if acc == acc and acc is not None else ""
        )
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.update(1)
        elif not self.quiet:
            print(f"round {row['round'] + 1}: {text}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
