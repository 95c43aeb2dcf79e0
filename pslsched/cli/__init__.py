"""The `sched` command line: the one place that wires profiles, sched, solvers and the simulator together.

Each sub-command lives in its own module with ``add_parser(subparsers)``; the parser's ``handler`` returns the
exit code. Exit codes: 0 success, 1 `validate` found violations, 2 bad input, 3 proved infeasible, 4 no schedule
found (none ruled out).
"""

from __future__ import annotations

import argparse
import os
import sys

from pslsched.base.errors import InputError
from pslsched.cli import generate, profile, solve, validate
from pslsched.profiles import ProfileError

EXIT_OK, EXIT_INVALID, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_UNKNOWN = 0, 1, 2, 3, 4

COMMANDS = [solve, validate, generate, profile]


def _optional_commands() -> list:
    mods = []
    for name in ("compare", "simulate", "train", "codecs", "sweep"):
        try:
            mods.append(__import__(f"pslsched.cli.{name}", fromlist=["add_parser"]))
        except ModuleNotFoundError as exc:
            if exc.name != f"pslsched.cli.{name}":
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sched",
        description="Plan and simulate parallel split learning: assign clients to helpers, order their tasks, "
        "report the makespan with a proved lower bound.",
        epilog="exit codes: 0 ok, 1 invalid schedule (validate), 2 bad input, 3 infeasible, 4 no schedule found",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in COMMANDS + _optional_commands():
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `sched` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (InputError, ProfileError) as exc:
        print(f"sched: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("sched: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sched solve | head`: the reader left; exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
