"""`sched compare`: every (or the listed) registered solver side by side on one instance."""

from __future__ import annotations

import argparse

from pslsched.app.requests import CompareRequest
from pslsched.cli import common


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="run several solvers on one instance: makespan, bound, gap, runtime")
    common.add_source_args(p)
    common.add_strategy_arg(p)
    p.add_argument("--solvers", default=None, help="comma-separated solver names (default: all registered)")
    common.add_positive(
        p, "--time-limit", default=10.0, metavar="S", help="time limit per solver (default 10 s)"
    )
    p.add_argument("--seed", type=int, default=0)
    common.add_workers_arg(p)
    p.add_argument("--out", metavar="DIR", help="write compare.csv, compare.png and report.html")
    common.add_verbose_arg(p)
    p.set_defaults(handler=run)


ROUNDING = {
    "makespan_ms": 1,
    "round_ms": 1,
    "lower_bound_ms": 1,
    "own_bound_ms": 1,
    "gap_%": 2,
    "runtime_s": 2,
    "reduction_vs_random_%": 2,
}


def readable(table):
    """The table as text cells: ms with thousands separators, fixed decimals, ``-`` where there is no value."""
    out = table.copy()
    for column, digits in ROUNDING.items():
        if column in out:
            out[column] = [
                "-" if v != v or v is None else f"{v:,.{digits}f}" for v in table[column].astype(float)
            ]
    return out


def run(args: argparse.Namespace) -> int:
    from pslsched.app.report import compare_report, write_report
    from pslsched.app.solving import compare
    from pslsched.solvers.compare import plot_compare

    outcome = compare(common.request_from(args, CompareRequest))
    instance, table = outcome.instance, outcome.table
    print(
        f"instance {instance.name} ({instance.num_clients} clients, {instance.num_helpers} helpers), "
        f"time limit {args.time_limit:g} s per solver\n"
    )
    print(readable(table).to_string(index=False))
    if args.out:
        with common.atomic_dir(args.out) as tmp:
            table.to_csv(tmp / "compare.csv", index=False)
            plot_compare(
                table,
                tmp / "compare.png",
                f"{instance.name}: {'round time' if 'round_ms' in table else 'makespan'} per solver",
            )
            write_report(tmp / "report.html", compare_report(instance, table, outcome.schedules))
        print(f"\nwrote {args.out}/compare.csv, compare.png, report.html")
    return 0
