"""`sched solve`: run one solver and print/write the result."""

from __future__ import annotations

import argparse
import sys

from pslsched.base.errors import InputError
from pslsched.cli.common import (
    add_source_args,
    add_verbose_arg,
    add_workers_arg,
    atomic_dir,
    load_source,
    positive_float,
)
from pslsched.core.backend_log import verbosity
from pslsched.core.instance import write_instance
from pslsched.core.report import plot_gantt, summary_text, write_schedule_csv
from pslsched.core.schedule import write_schedule
from pslsched.core.validate import validate


def add_parser(sub) -> None:
    p = sub.add_parser(
        "solve",
        help="solve an instance or testbed and report makespan, bound and gap",
        description="Assign clients to helpers and order helper tasks to minimise the makespan.",
    )
    add_source_args(p)
    p.add_argument(
        "--solver", default=None, help="registered solver name (default: auto if registered, else greedy)"
    )
    p.add_argument(
        "--time-limit",
        type=positive_float("--time-limit"),
        default=None,
        metavar="S",
        help="time limit in seconds",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_workers_arg(p)
    p.add_argument(
        "--out", metavar="DIR", help="write instance.json, schedule.json, schedule.csv and gantt.png to DIR"
    )
    p.add_argument(
        "--progress", action="store_true", help="print improving makespans and bounds as they come"
    )
    add_verbose_arg(p)
    p.set_defaults(handler=run)


def default_solver() -> str:
    from pslsched.solvers import available_solvers

    return "auto" if "auto" in available_solvers() else "greedy"


def run(args: argparse.Namespace) -> int:
    with verbosity(args.verbose):  # the back ends' logs: to stderr with --verbose, else dropped
        return _run(args)


def prepare(args: argparse.Namespace):
    """The instance and the solver name, checked; nothing is solved (``sched sweep`` checks points with it)."""
    from pslsched.solvers import available_solvers

    instance = load_source(args)
    name = args.solver or default_solver()
    if name not in available_solvers():
        raise InputError(
            "--solver", f"unknown solver {name!r} (known: {', '.join(sorted(available_solvers()))})"
        )
    return instance, name


def _solve(args: argparse.Namespace, instance, name: str, progress=None):
    from pslsched.solvers import solve

    options = {}
    if args.workers is not None:
        options["workers"] = args.workers
    if progress is not None:
        options["progress"] = progress
    return solve(instance, name, time_limit=args.time_limit, seed=args.seed, **options)


def measure(args: argparse.Namespace, workdir=None) -> dict:
    """One solve as numbers (``sched sweep``): status, makespan, bound, gap; ``*_s`` keys are wall-clock."""
    instance, name = prepare(args)
    with verbosity(args.verbose):
        result = _solve(args, instance, name)
    if result.schedule is not None:
        violations = validate(instance, result.schedule)
        if violations:
            raise RuntimeError(f"the solver returned an invalid schedule: {violations[0]}")
    return {
        "clients": instance.num_clients,
        "helpers": instance.num_helpers,
        "status": result.status,
        "makespan_ms": result.makespan,
        "lower_bound_ms": result.lower_bound,
        "gap": result.gap,
        "solver_runtime_s": result.runtime_s,
    }


def _run(args: argparse.Namespace) -> int:
    instance, name = prepare(args)
    result = _solve(args, instance, name, _print_progress if args.progress else None)
    print(summary_text(instance, result))
    if result.schedule is None:
        return 3 if result.status == "infeasible" else 4
    violations = validate(instance, result.schedule)
    if violations:  # a solver bug: never write an invalid schedule as if it were an answer
        print("sched: error: the solver returned an invalid schedule:", file=sys.stderr)
        for v in violations[:20]:
            print(f"  {v}", file=sys.stderr)
        return 1
    if args.out:
        with atomic_dir(args.out) as tmp:
            write_instance(instance, tmp / "instance.json")
            write_schedule(result.schedule, tmp / "schedule.json")
            write_schedule_csv(result.schedule, tmp / "schedule.csv")
            plot_gantt(instance, result.schedule, tmp / "gantt.png")
        print(f"\nwrote {args.out}/instance.json, schedule.json, schedule.csv, gantt.png")
    return 0


def _print_progress(elapsed_s: float, makespan: float | None, bound: float) -> None:
    ms = "-" if makespan is None else f"{makespan:.1f}"
    print(f"  [{elapsed_s:7.2f} s] makespan {ms} ms, bound {bound:.1f} ms", flush=True)
