"""`sched simulate`: execute a schedule in simulated time under stragglers, shared links and many rounds."""

from __future__ import annotations

import argparse
import dataclasses
import sys

import pandas as pd

from pslsched.base.errors import InputError
from pslsched.cli.common import (
    add_codec_args,
    add_simulation_args,
    atomic_dir,
    positive_float,
    with_compression,
)
from pslsched.core.instance import read_instance
from pslsched.core.result import SolveResult
from pslsched.core.schedule import read_schedule


def add_parser(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate rounds of a schedule (stragglers, shared links, policies)",
        description="Execute a schedule in SimPy: planned vs simulated round times.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--profile", metavar="TESTBED.yaml", help="testbed (default: the bundled one)")
    src.add_argument("--instance", metavar="INSTANCE.json", help="instance JSON (T1..T5 as opaque durations)")
    plan = p.add_mutually_exclusive_group()
    plan.add_argument("--schedule", metavar="SCHEDULE.json", help="a schedule to execute")
    plan.add_argument(
        "--solver", default=None, help="solve first with this registered solver (default greedy)"
    )
    p.add_argument(
        "--time-limit",
        type=positive_float("--time-limit"),
        default=10.0,
        metavar="S",
        help="time limit of that solver (default 10 s)",
    )
    add_simulation_args(p)
    p.add_argument("--batches", type=int, default=None, metavar="B", help="batches per round (re-solves)")
    add_codec_args(p)
    p.add_argument("--compare-policies", action="store_true", help="run every policy on the same schedule")
    p.add_argument("--out", metavar="DIR", help="write timeline.csv, rounds.csv, summary.json, gantt.png")
    p.set_defaults(handler=run)


def prepare(args: argparse.Namespace):
    """Instance, workload and simulation settings, checked; nothing solved or simulated (``sched sweep``)."""
    from pslsched.simulator import config_from, parse_stragglers
    from pslsched.simulator.engine import aggregator_index
    from pslsched.solvers import available_solvers

    workload, section = None, None
    if args.instance:
        if args.codec or args.codec_cut_b or args.compress_grads:
            raise InputError(
                "--codec", "needs a testbed (--profile): an instance JSON has no activation sizes"
            )
        instance = read_instance(args.instance)
    else:
        from pslsched.core.testbed import build, default_testbed_path, load_testbed

        built = build(with_compression(args, load_testbed(args.profile or default_testbed_path())))
        instance, workload, section = built.instance, built.workload, built.testbed.simulation
    for name, value in (("--rounds", args.rounds), ("--batches", args.batches)):
        if value is not None and value < 1:
            raise InputError(name, f"must be >= 1, got {value}")
    if args.dropout is not None and not 0 <= args.dropout <= 1:
        raise InputError("--dropout", f"must be in [0, 1], got {args.dropout}")
    config = config_from(
        section,
        rounds=args.rounds,
        policy=args.policy,
        links=args.links,
        dropout=args.dropout,
        round_timeout_ms=args.round_timeout,
        aggregator=args.aggregator,
        seed=args.seed,
        stragglers=parse_stragglers(args.stragglers) if args.stragglers is not None else None,
    )
    aggregator_index(instance, config.aggregator)  # a bad name fails before any solving
    batches = args.batches or config.batches
    if batches and batches != instance.batches:
        instance = dataclasses.replace(instance, batches=batches)
    if not args.schedule and (args.solver or "greedy") not in available_solvers():
        raise InputError(
            "--solver", f"unknown solver {args.solver!r} (known: {', '.join(sorted(available_solvers()))})"
        )
    return instance, workload, config


def _schedule(args: argparse.Namespace, instance, config):
    """The schedule to execute (read and validated, or solved); a SolveResult when no schedule was found."""
    from pslsched.core.validate import validate
    from pslsched.solvers import solve

    if args.schedule:
        schedule = read_schedule(args.schedule)
        problems = validate(instance, schedule)
        if problems:
            raise InputError(args.schedule, f"not a valid schedule for this instance: {problems[0]}")
        return schedule
    result = solve(instance, args.solver or "greedy", time_limit=args.time_limit, seed=config.seed)
    return result.schedule if result.schedule is not None else result


def measure(args: argparse.Namespace, workdir=None) -> dict:
    """One simulation as numbers (``sched sweep``): planned vs simulated mean/p95 makespan, round time."""
    from pslsched.core.validate import validate
    from pslsched.simulator import simulate

    instance, workload, config = prepare(args)
    schedule = _schedule(args, instance, config)
    if isinstance(schedule, SolveResult):
        raise RuntimeError(f"no schedule to simulate: {schedule.status} ({schedule.message})")
    violations = validate(instance, schedule)
    if violations:
        raise RuntimeError(f"invalid schedule: {violations[0]}")
    s = simulate(instance, schedule, config, workload=workload).summary()
    return {
        "planned_makespan_ms": schedule.makespan,
        "rounds": s["rounds"],
        "mean_makespan_ms": s["mean_makespan_ms"],
        "p95_makespan_ms": s["p95_makespan_ms"],
        "mean_round_time_ms": s["mean_round_time_ms"],
        "dropped_clients": s["dropped_clients"],
        "timed_out_clients": s["timed_out_clients"],
        "series": {"makespan_ms": s["makespan_ms"]},
    }


def run(args: argparse.Namespace) -> int:
    from pslsched.simulator import simulate

    instance, workload, config = prepare(args)
    schedule = _schedule(args, instance, config)
    if isinstance(schedule, SolveResult):
        print(f"no schedule to simulate: {schedule.status} ({schedule.message})")
        return 3 if schedule.status == "infeasible" else 4
    progress = _progress(config.rounds)
    record = simulate(
        instance, schedule, config, workload=workload, progress=progress.update if progress else None
    )
    if progress:
        progress.close()
    s = record.summary()
    print(
        f"instance   {instance.name}  ({instance.num_clients} clients, {instance.num_helpers} helpers, "
        f"{instance.batches} batch(es)/round)"
    )
    print(f"schedule   {schedule.solver}: planned makespan {schedule.makespan:.1f} ms")
    print(
        f"simulated  policy {config.policy}, {config.links} links, {config.rounds} round(s), seed {config.seed}"
    )
    print(
        f"makespan   mean {s['mean_makespan_ms']:.1f} ms, p95 {s['p95_makespan_ms']:.1f} ms "
        f"({100 * (s['mean_makespan_ms'] / schedule.makespan - 1):+.1f}% vs planned)"
    )
    print(
        f"round time mean {s['mean_round_time_ms']:.1f} ms (with aggregation); "
        f"dropped clients {s['dropped_clients']}, timed out {s['timed_out_clients']}"
    )
    if args.compare_policies:
        rows = []
        for policy in ("static", "fcfs", "priority", "replan"):
            rec = simulate(
                instance, schedule, config.model_copy(update={"policy": policy}), workload=workload
            )
            ps = rec.summary()
            rows.append(
                {
                    "policy": policy,
                    "planned_ms": schedule.makespan,
                    "mean_ms": ps["mean_makespan_ms"],
                    "p95_ms": ps["p95_makespan_ms"],
                    "dropped": ps["dropped_clients"],
                    "timed_out": ps["timed_out_clients"],
                }
            )
        print()
        print(pd.DataFrame(rows).round(1).to_string(index=False))
    if args.out:
        with atomic_dir(args.out) as tmp:
            record.write(tmp)
        print(f"\nwrote {args.out}/timeline.csv, rounds.csv, summary.json, gantt.png")
    return 0


def _progress(rounds: int):
    if rounds < 5 or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=rounds, unit="round", file=sys.stderr)
