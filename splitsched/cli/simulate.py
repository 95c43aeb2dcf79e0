"""`sched simulate`: execute a schedule in simulated time under stragglers, shared links and many rounds."""

from __future__ import annotations

import argparse
import dataclasses
import sys

import pandas as pd

from splitsched.cli.common import (
    add_codec_args,
    add_simulation_args,
    atomic_dir,
    positive_float,
    with_compression,
)
from splitsched.errors import InputError
from splitsched.instance import read_instance
from splitsched.schedule import read_schedule


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


def run(args: argparse.Namespace) -> int:
    from simulator import config_from, parse_stragglers, simulate
    from simulator.engine import aggregator_index
    from solvers import available_solvers, solve
    from splitsched.validate import validate

    workload, section = None, None
    if args.instance:
        if args.codec or args.codec_cut_b or args.compress_grads:
            raise InputError(
                "--codec", "needs a testbed (--profile): an instance JSON has no activation sizes"
            )
        instance = read_instance(args.instance)
    else:
        from splitsched.testbed import build, default_testbed_path, load_testbed

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
    if args.schedule:
        schedule = read_schedule(args.schedule)
        problems = validate(instance, schedule)
        if problems:
            raise InputError(args.schedule, f"not a valid schedule for this instance: {problems[0]}")
    else:
        name = args.solver or "greedy"
        if name not in available_solvers():
            raise InputError(
                "--solver", f"unknown solver {name!r} (known: {', '.join(sorted(available_solvers()))})"
            )
        result = solve(instance, name, time_limit=args.time_limit, seed=config.seed)
        if result.schedule is None:
            print(f"no schedule to simulate: {result.status} ({result.message})")
            return 3 if result.status == "infeasible" else 4
        schedule = result.schedule
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
