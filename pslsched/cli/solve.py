"""`sched solve`: run one solver and print/write the result."""

from __future__ import annotations

import argparse
import sys

from pslsched.app.requests import SolveRequest
from pslsched.cli.common import (
    add_positive,
    add_source_args,
    add_strategy_arg,
    add_verbose_arg,
    add_workers_arg,
    atomic_dir,
    request_from,
)
from pslsched.core.report import summary_text


def add_parser(sub) -> None:
    p = sub.add_parser(
        "solve",
        help="solve an instance or testbed and report makespan, bound and gap",
        description="Assign clients to helpers and order helper tasks to minimise the round time (the makespan "
        "plus the round-end weight exchange of the strategy planned for).",
    )
    add_source_args(p)
    p.add_argument(
        "--solver", default=None, help="registered solver name (default: auto if registered, else greedy)"
    )
    add_strategy_arg(p)
    add_positive(p, "--time-limit", default=None, metavar="S", help="time limit in seconds")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_workers_arg(p)
    p.add_argument(
        "--out",
        metavar="DIR",
        help="write instance.json (a copy of the --instance file, if one was given), schedule.json, schedule.csv, "
        "gantt.png and report.html to DIR",
    )
    p.add_argument(
        "--progress", action="store_true", help="print improving makespans and bounds as they come"
    )
    p.add_argument(
        "--baselines",
        default=None,
        metavar="LIST",
        help="solvers the answer is measured against (default random,greedy,equid; none: no comparison)",
    )
    add_verbose_arg(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pslsched.app.solving import OUTPUT_FILES, solve, write_outputs

    outcome = solve(request_from(args, SolveRequest), _print_progress if args.progress else None)
    instance, result = outcome.instance, outcome.result
    print(summary_text(instance, result))
    if outcome.cut_choice is not None and result.objective is not None:
        print(outcome.cut_choice.what_if(result.objective))
    if result.schedule is None:
        return 3 if result.status == "infeasible" else 4
    if outcome.violations:  # a solver bug: never write an invalid schedule as if it were an answer
        print("sched: error: the solver returned an invalid schedule:", file=sys.stderr)
        for v in outcome.violations[:20]:
            print(f"  {v}", file=sys.stderr)
        return 1
    if outcome.baselines is not None:
        print(baselines_line(outcome))
    if args.out:
        with atomic_dir(args.out) as tmp:
            write_outputs(outcome, tmp, source=args.instance)
        print(f"\nwrote {args.out}/{', '.join(OUTPUT_FILES)}")
    return 0


def baselines_line(outcome) -> str:
    """One line: what the answer saves against each baseline."""
    parts = []
    for name, ms, saved in outcome.savings():
        if ms is None:
            parts.append(f"{name} found none")
        else:
            told = f"{saved:.1f}% saved" if saved >= -0.05 else f"{-saved:.1f}% shorter than this answer"
            parts.append(f"{name} {ms:,.1f} ms ({told})")
    return "vs baselines " + ", ".join(parts)


def _print_progress(elapsed_s: float, makespan: float | None, bound: float) -> None:
    ms = "-" if makespan is None else f"{makespan:.1f}"
    print(f"  [{elapsed_s:7.2f} s] makespan {ms} ms, bound {bound:.1f} ms", flush=True)
