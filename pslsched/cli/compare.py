"""`sched compare`: every (or the listed) registered solver side by side on one instance."""

from __future__ import annotations

import argparse

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


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="run several solvers on one instance: makespan, bound, gap, runtime")
    add_source_args(p)
    p.add_argument("--solvers", default=None, help="comma-separated solver names (default: all registered)")
    p.add_argument(
        "--time-limit",
        type=positive_float("--time-limit"),
        default=10.0,
        metavar="S",
        help="time limit per solver (default 10 s)",
    )
    p.add_argument("--seed", type=int, default=0)
    add_workers_arg(p)
    p.add_argument("--out", metavar="DIR", help="write compare.csv and compare.png")
    add_verbose_arg(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    with verbosity(args.verbose):  # the back ends' logs: to stderr with --verbose, else dropped
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from pslsched.solvers import available_solvers
    from pslsched.solvers.compare import compare, plot_compare

    names = None
    if args.solvers:
        names = [n.strip() for n in args.solvers.split(",") if n.strip()]
        unknown = [n for n in names if n not in available_solvers()]
        if unknown or not names:
            raise InputError(
                "--solvers",
                f"unknown solver {unknown[0] if unknown else args.solvers!r} "
                f"(known: {', '.join(sorted(available_solvers()))})",
            )
    instance = load_source(args)
    options = {} if args.workers is None else {"workers": args.workers}
    table = compare(instance, names, time_limit=args.time_limit, seed=args.seed, **options)
    print(
        f"instance {instance.name} ({instance.num_clients} clients, {instance.num_helpers} helpers), "
        f"time limit {args.time_limit:g} s per solver\n"
    )
    print(
        table.round(
            {
                "makespan_ms": 1,
                "lower_bound_ms": 1,
                "best_lower_bound_ms": 1,
                "gap_%": 2,
                "runtime_s": 2,
                "reduction_vs_random_%": 2,
            }
        ).to_string(index=False)
    )
    if args.out:
        with atomic_dir(args.out) as tmp:
            table.to_csv(tmp / "compare.csv", index=False)
            plot_compare(table, tmp / "compare.png", f"{instance.name}: makespan per solver")
        print(f"\nwrote {args.out}/compare.csv, compare.png")
    return 0
