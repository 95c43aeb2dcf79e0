"""The `sched` command line: parse the options, call the application layer (``pslsched.app``), print.

Each sub-command lives in its own module with ``add_parser(subparsers)``; the parser's ``handler`` returns the
exit code. Nothing imports this package. Exit codes: 0 success, 1 `validate` found violations, 2 bad input, 3 proved
infeasible (``train``: diverged), 4 no schedule found (none ruled out), 5 training collapsed to chance, 130
interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from pslsched.base.errors import InputError, ProfileError
from pslsched.cli import (
    catalogue,
    codecs,
    compare,
    generate,
    profile,
    simulate,
    solve,
    sweep,
    train,
    validate,
)

EXIT_OK, EXIT_INVALID, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_UNKNOWN, EXIT_COLLAPSED = 0, 1, 2, 3, 4, 5

COMMANDS = [solve, validate, generate, profile, compare, simulate, train, codecs, sweep, catalogue]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose rejections are one line, ``sched CMD: error: MESSAGE (see sched CMD --help)``,
    and exit code 2 (bad input), instead of the usage block; its sub-parsers are of the same kind."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The `sched` parser: every sub-command's options (``handler`` set to its ``run``)."""
    parser = OneLineParser(
        prog="sched",
        description="Plan and simulate parallel split learning: assign clients to helpers, order their tasks, "
        "report the makespan with a proved lower bound.",
        epilog="exit codes: 0 ok, 1 invalid schedule (validate), 2 bad input, 3 infeasible (train: diverged), "
        "4 no schedule found, 5 training collapsed to chance, 130 interrupted",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in COMMANDS:
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `sched` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:  # the filters stay as they are
            return int(args.handler(args))
    except (InputError, ProfileError) as exc:
        caught.clear()  # what numpy or torch warned about the bad input, the one error line says
        print(f"sched: error: {one_line(str(exc))}", file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_INPUT))
    except KeyboardInterrupt:
        print("sched: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sched solve | head`: the reader left; exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:  # a run that did not fail on its input: its warnings, as they were raised
        for w in caught:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)


def one_line(text: str) -> str:
    """``text`` on one line: a library's multi-line message (a YAML mark, a CSV parser's) joined by spaces."""
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
