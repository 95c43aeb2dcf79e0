"""`sched simulate`: execute a schedule in simulated time under stragglers, shared links and many rounds."""

from __future__ import annotations

import argparse
import sys

from pslsched.app.requests import SimulateRequest
from pslsched.cli.common import (
    add_clients_arg,
    add_codec_args,
    add_cuts_arg,
    add_plan_args,
    add_simulation_args,
    add_strategy_arg,
    add_testbed_arg,
    atomic_dir,
    request_from,
)
from pslsched.core.result import SolveResult


def add_parser(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate rounds of a schedule (stragglers, shared links, policies)",
        description="Execute a schedule in SimPy: planned vs simulated round times.",
    )
    src = p.add_mutually_exclusive_group()
    add_testbed_arg(src)
    src.add_argument("--instance", metavar="INSTANCE.json", help="instance JSON (T1..T5 as opaque durations)")
    add_clients_arg(p)
    add_cuts_arg(p)
    add_plan_args(p, "execute")
    add_simulation_args(p)
    add_strategy_arg(p)
    p.add_argument("--batches", type=int, default=None, metavar="B", help="batches per round (re-solves)")
    add_codec_args(p)
    p.add_argument("--compare-policies", action="store_true", help="run every policy on the same schedule")
    p.add_argument(
        "--out", metavar="DIR", help="write timeline.csv, rounds.csv, summary.json, gantt.png, report.html"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pslsched.app.simulating import check_simulate, compare_policies, simulate

    request = request_from(args, SimulateRequest)
    experiment = check_simulate(request)
    progress = _progress(experiment.sim.rounds)
    outcome = simulate(request, progress=progress.done if progress else None, experiment=experiment)
    if progress:
        progress.bar.close()
    if isinstance(outcome, SolveResult):
        print(f"no schedule to simulate: {outcome.status} ({outcome.message})")
        return 3 if outcome.status == "infeasible" else 4
    instance, schedule, config = outcome.experiment.instance, outcome.schedule, outcome.experiment.sim
    s = outcome.record.summary()
    print(
        f"instance   {instance.name}  ({instance.num_clients} clients, {instance.num_helpers} helpers, "
        f"{instance.batches} batch(es)/round)"
    )
    rt = "" if schedule.round_time is None else f", round {schedule.round_time:.1f} ms"
    print(f"schedule   {schedule.solver}: planned makespan {schedule.makespan:.1f} ms{rt}")
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
        print()
        print(compare_policies(outcome).round(1).to_string(index=False))
    if args.out:
        from pslsched.app.report import simulation_report, write_report

        with atomic_dir(args.out) as tmp:
            outcome.record.write(tmp)
            write_report(tmp / "report.html", simulation_report(outcome.record))
        print(f"\nwrote {args.out}/timeline.csv, rounds.csv, summary.json, gantt.png, report.html")
    return 0


class _RoundBar:
    """A tqdm bar of rounds; ``done(r)`` is told the index of the round that just finished."""

    def __init__(self, rounds: int):
        from tqdm import tqdm

        self.bar = tqdm(total=rounds, unit="round", file=sys.stderr)

    def done(self, r: int) -> None:
        self.bar.update(r + 1 - self.bar.n)


def _progress(rounds: int) -> _RoundBar | None:
    if rounds < 5 or not sys.stderr.isatty():
        return None
    return _RoundBar(rounds)
