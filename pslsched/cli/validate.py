"""`sched validate`: check a schedule against an instance with the independent validator."""

from __future__ import annotations

import argparse

from pslsched.core.instance import read_instance
from pslsched.core.schedule import read_schedule
from pslsched.core.validate import validate


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="check a schedule.json against an instance (exit 0 valid, 1 invalid)")
    p.add_argument("--instance", required=True, metavar="INSTANCE.json")
    p.add_argument("schedule", metavar="SCHEDULE.json")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    instance = read_instance(args.instance)
    schedule = read_schedule(args.schedule)
    violations = validate(instance, schedule)
    if violations:
        print(f"INVALID: {len(violations)} violation(s)")
        for v in violations:
            print(f"  - {v}")
        return 1
    print(
        f"valid: makespan {schedule.makespan:.3f} ms, {len(schedule.tasks)} tasks, "
        f"{len(schedule.assignment)} clients"
    )
    return 0
