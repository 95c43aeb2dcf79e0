"""`sched train`: real split training on the simulator's clock: accuracy against virtual time from one run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pslsched.app.requests import TrainRequest
from pslsched.base.errors import InputError
from pslsched.cli.common import (
    add_codec_args,
    add_plan_args,
    add_positive,
    add_simulation_args,
    add_testbed_arg,
    add_verbose_arg,
    add_workers_arg,
    request_from,
)
from pslsched.core.result import SolveResult

EXIT_DIVERGED = 3
EXIT_COLLAPSED = 5  # the run finished, but its model learned nothing (summary.json: collapsed)
STRATEGIES_HELP = "splitfed1 (default), splitfed2[:order=sequential|interleaved], psl, sglr[:p=P,off=F], locfedmix[:mix=,alpha=,loc=,beta=,fed=], locsplitfed"
SAMPLER_HELP = (
    "per-step global sampling: fls, fpls, ugs, lds[:tilt=T,c=C] (default: local epochs of --batch-size)"
)
# (flag, whole number?, metavar, help) of the training options that take a positive number
POSITIVE_OPTIONS = [
    ("--clients", True, "K", "scale the client groups to K"),
    ("--batch-size", True, "N", "default 16"),
    ("--batches-per-round", True, "N", "fixed batches per client per round (default: one local epoch)"),
    ("--global-batch", True, "B", "the sampler's global batch"),
    ("--steps-per-round", True, "S", "with a sampler: steps per round (default: one epoch)"),
    ("--lr", False, "X", "learning rate (default 0.01)"),
    ("--eval-every", True, "N", "evaluate every N rounds"),
    ("--profile-batch", False, "N", "the batch size the profile's costs were measured with (default 128)"),
    ("--speed", False, "X", "measured clock: simulated ms per wall ms"),
    ("--threads", True, "N", "torch threads (default 1: fastest for the small steps of split training)"),
]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a real split model while simulating the schedule (accuracy vs virtual time)",
        description="Run split training (PyTorch, CPU by default) inside the simulator: every step's arithmetic "
        "happens in event order while the clock advances by the profiled durations. Settings come from "
        "testbed.yaml's training: and simulation: sections, overridden by these options.",
    )
    p.add_argument("--list", action="store_true", help="list datasets, models, strategies and partitions")
    add_testbed_arg(p)
    plan = add_plan_args(p, "train on")
    plan.add_argument(
        "--compare-solvers",
        metavar="S1,S2,...",
        help="train once per solver's schedule (same data, seed, partition): compare.csv and compare.png",
    )
    add_workers_arg(p)
    t = p.add_argument_group("training")
    t.add_argument("--dataset", help="digits (default), mnist5k, mnist, cifar10, synthetic[:key=value,...]")
    t.add_argument("--data-dir", metavar="DIR", help="folder with the mnist / cifar10 files")
    t.add_argument("--model", help="registered split model (default: cnn for grey images, resnet for colour)")
    t.add_argument("--cuts", metavar="A,B", help="cut points of the trained model (default: the model's)")
    t.add_argument("--strategy", help=STRATEGIES_HELP)
    t.add_argument("--partition", help="iid (default), dirichlet:ALPHA, classes:C, quantity:ALPHA")
    t.add_argument("--sampler", metavar="SPEC", help=SAMPLER_HELP)
    for flag, integer, metavar, text in POSITIVE_OPTIONS:
        add_positive(t, flag, integer=integer, metavar=metavar, help=text)
    t.add_argument("--optimizer", choices=["sgd", "adam"], help="default adam (fresh state every round)")
    t.add_argument("--momentum", type=float, metavar="M", help="SGD momentum (default 0)")
    t.add_argument("--target-accuracy", type=float, metavar="A", help="for time-to-accuracy (default 0.9)")
    t.add_argument(
        "--clock", choices=["profile", "measured"], help="durations: profile (default) or wall time"
    )
    t.add_argument("--device", help="torch device (default cpu)")
    t.add_argument("--cost-only", action="store_true", help="run the identical plan without computing")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last finished round")
    t.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a long round's progress lines on stderr (default: only when stderr is a terminal)",
    )
    add_simulation_args(p.add_argument_group("simulation"))
    p.add_argument(
        "--out",
        metavar="DIR",
        help="rounds.csv, timeline.csv, summary.json, curves.png, report.html, checkpoint/",
    )
    add_codec_args(p)
    add_verbose_arg(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # the training room (torch) is imported only when a training command runs: `sched --help` stays quick
    from pslsched.app.training import check_train, resume, train

    if args.list:
        return _list()
    request = request_from(args, TrainRequest)
    if args.resume:
        for flag, given in (("--out", args.out), ("--compare-solvers", args.compare_solvers)):
            if given:
                raise InputError(flag, "cannot be given with --resume: the run continues in its own folder")
        return _report(args, lambda on_round: resume(args.resume, request, on_round), Path(args.resume))
    if args.compare_solvers:
        return _compare(args, request)
    out = Path(args.out) if args.out else None
    experiment = check_train(request)
    return _report(
        args,
        lambda on_round: train(request, out, on_round, experiment=experiment),
        out,
        experiment.sim.rounds,
    )


def _readable(table):
    """Times in s with one decimal, accuracies with three, ``-`` where there is none (never reached)."""
    out = table.copy()
    for column in table.columns:
        if column.endswith("_ms"):
            out[column.removesuffix("_ms") + "_s"] = [
                "-" if v is None or v != v else f"{v / 1e3:,.1f}" for v in table[column]
            ]
            out = out.drop(columns=column)
        elif column.endswith("accuracy"):
            out[column] = ["-" if v is None or v != v else f"{v:.3f}" for v in table[column]]
    return out


def _list() -> int:
    from pslsched.app.training import training_catalogue

    for kind, entries in training_catalogue().items():
        print(f"{kind}:")
        for name, summary in entries:
            print(f"  {name:<12} {summary}")
    return 0


def _report(args: argparse.Namespace, run_it, out: Path | None, rounds: int | None = None) -> int:
    """Run with a progress bar, print the summary; exit 3 when diverged, 4/3 without a schedule, 130 on Ctrl-C."""
    bar = _Progress(rounds)
    try:
        outcome = run_it(bar.update)
    except KeyboardInterrupt:
        bar.close()
        where = f"; continue with: sched train --resume {out}" if out is not None else ""
        print(f"sched: interrupted after round {bar.done}{where}", file=sys.stderr)
        return 130
    bar.close()
    if isinstance(outcome, SolveResult):
        print(f"no schedule to train with: {outcome.status} ({outcome.message})")
        return 3 if outcome.status == "infeasible" else 4
    _print_summary(outcome, args.cost_only or outcome.cost_only, out)
    if outcome.result.diverged:
        print(f"sched: error: training diverged: {outcome.result.diverged}", file=sys.stderr)
        return EXIT_DIVERGED
    if outcome.result.collapsed:
        print(f"sched: error: training collapsed: {outcome.result.collapsed}", file=sys.stderr)
        return EXIT_COLLAPSED
    return 0


def _compare(args: argparse.Namespace, request: TrainRequest) -> int:
    from pslsched.app.training import compare_solvers

    names = [s.strip() for s in args.compare_solvers.split(",") if s.strip()]
    bars: list[_Progress] = []

    def on_run(name: str, schedule):
        for bar in bars:
            bar.close()
        print(
            f"training with the {name} schedule (planned makespan {schedule.makespan:.1f} ms)",
            file=sys.stderr,
        )
        bars.append(_Progress())
        return bars[-1].update

    table, _ = compare_solvers(request, names, args.out, on_run)
    for bar in bars:
        bar.close()
    print(f"target accuracy {_target(request):.0%}; times are virtual (s); - = not reached")
    print(_readable(table).to_string(index=False))
    if args.out:
        print(f"\nwrote {args.out}/compare.csv, compare.png and one folder per solver")
    return 0


def _target(request: TrainRequest) -> float:
    return request.target_accuracy if request.target_accuracy is not None else 0.9


def _clock_cuts(testbed) -> str:
    """Which cuts the clock's costs come from, beside the trained model's own (the two models differ)."""
    cuts = (
        sorted({(g.cut or testbed.cuts).a for g in testbed.clients}),
        sorted({(g.cut or testbed.cuts).b for g in testbed.clients}),
    )
    a = ",".join(str(v) for v in cuts[0])
    b = ",".join(str(v) for v in cuts[1])
    return (
        f"costs of {testbed.model.profile or testbed.model.measure} cut at a={a}, b={b} (the cost profile's layers; "
        "the trained model's cut above is in its own blocks)"
    )


def _batching(cfg, clients: int) -> str:
    """How a step's samples are set: the local batch, or (with a sampler) the global batch it splits."""
    if not cfg.sampler:
        return f"batch {cfg.batch_size}"
    return f"global batch {cfg.global_batch or cfg.batch_size * clients}"


def _print_summary(outcome, cost_only: bool, out: Path | None) -> None:
    result, schedule = outcome.result, outcome.schedule
    s = result.summary()
    inst = result.record.instance
    cfg = result.config
    print(f"instance   {inst.name}  ({inst.num_clients} clients, {inst.num_helpers} helpers)")
    source = f" (from {outcome.schedule_source})" if outcome.schedule_source else ""
    if outcome.planned_for_round:
        rt = "" if schedule.round_time is None else f", round {schedule.round_time:.1f} ms"
        print(
            f"schedule   {schedule.solver}{source}: planned makespan {schedule.makespan:.1f} ms{rt} "
            "for one round as planned"
        )
    else:
        planned, clock = outcome.experiment.instance, outcome.experiment.round_instance
        print(
            f"schedule   {schedule.solver}{source}: planned makespan {schedule.makespan:.1f} ms for the "
            f"testbed's instance\n           ({planned.batches} batch(es) per client at the profile's batch size); "
            f"this run's round is {clock.batches} step(s) per client\n           of its own batch size, so the "
            "clock runs the same assignment and helper order on that round's durations"
        )
    if outcome.made_sequential:
        print(
            "           its helper order is interleaved; this strategy's helpers are sequential, so each helper "
            "runs its\n           forwards in that order, each followed by its own backward"
        )
    print(
        f"training   {cfg.strategy} on {cfg.dataset} ({cfg.partition}), model {result.model} cut at "
        f"{result.cuts[0]},{result.cuts[1]}, {_batching(cfg, inst.num_clients)}, {cfg.optimizer} lr {cfg.lr}"
        + ("  [cost only]" if cost_only else "")
    )
    print(f"clock      {_clock_cuts(outcome.experiment.testbed)}")
    if outcome.resumed:
        print(f"resumed    {outcome.resumed}")
    if result.note:
        print(f"note       {cfg.strategy}: {result.note}")
    if cfg.sampler and s["rounds"]:  # a run that diverged in its first round has no rounds to describe
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
        print(f"wrote {out}/rounds.csv, timeline.csv, summary.json, curves.png, report.html, checkpoint/")


class _Progress:
    """A tqdm bar on a terminal; one line per round otherwise (logs stay readable)."""

    def __init__(self, rounds: int | None = None):
        self.bar = None
        self.done = 0
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=rounds, unit="round", file=sys.stderr)

    def update(self, row: dict) -> None:
        self.done = row["round"] + 1
        acc = row.get("test_accuracy")
        loss = row.get("train_loss")
        text = f"virtual {row['virtual_ms'] / 1e3:.2f} s"
        if loss is not None and loss == loss:  # a cost-only round computes no loss: none is shown
            text += f", loss {loss:.4f}"
        if acc is not None and acc == acc:
            text += f", accuracy {acc:.4f}"
        if "stale_mean" in row:
            text += f", body weights {row['stale_mean']:.2f} steps stale (max {row['stale_max']:.0f})"
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.update(1)
        else:
            print(f"round {row['round'] + 1}: {text}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
