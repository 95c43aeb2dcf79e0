"""Argument helpers shared by sub-commands: where the instance comes from, and atomic output folders."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from pslsched.app.requests import Request
from pslsched.base.errors import InputError


def add_source_args(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    add_testbed_arg(src)
    src.add_argument(
        "--instance", metavar="INSTANCE.json", help="an instance in the problem.md §2 JSON format"
    )
    add_clients_arg(parser)
    add_cuts_arg(parser)
    add_codec_args(parser)


def add_cuts_arg(parser) -> None:
    """``--cuts auto|A,B``: the cost profile's cuts for every client (auto: chosen with the plan)."""
    parser.add_argument(
        "--cuts",
        metavar="auto|A,B",
        help="the cost profile's cut points for every client: A,B, or auto (chosen with the plan among the "
        "profile's meaningful cuts; see docs/solvers.md)",
    )


def add_testbed_arg(parser) -> None:
    """``--profile TESTBED.yaml`` (the documented spelling; ``--testbed`` is an alias): a testbed, not a cost CSV."""
    parser.add_argument(
        "--profile",
        "--testbed",
        dest="profile",
        metavar="TESTBED.yaml",
        help="a testbed (devices, links, model, cuts; not a cost profile CSV; default: the bundled "
        "pslsched/profiles/testbed.yaml); --testbed is the same option",
    )


def add_clients_arg(parser) -> None:
    """``--clients K``: the testbed's client groups scaled to K clients in proportion."""
    parser.add_argument(
        "--clients",
        type=int,
        metavar="K",
        help="scale the testbed's client groups to K clients in proportion (link draws per group)",
    )


def add_codec_args(parser: argparse.ArgumentParser) -> None:
    """``--codec SPEC`` (+ ``--codec-cut-b``, ``--compress-grads``): compress what crosses the cuts."""
    parser.add_argument(
        "--codec",
        metavar="SPEC",
        help="compress the cut-a activations: none, fp16, quant:bits=B, topk:r=R, randtopk:r=R,alpha=A, "
        "ms:r=R,bits=B (T1..T5 rebuilt from the exact payload sizes; see sched codecs)",
    )
    parser.add_argument("--codec-cut-b", action="store_true", help="also compress the cut-b activations")
    parser.add_argument("--compress-grads", action="store_true", help="also compress the cut gradients")


def request_from(args: argparse.Namespace, kind: type[Request]) -> Request:
    """The application request of a parsed command line (its options that the request has)."""
    return kind.from_options({k: getattr(args, k) for k in kind.model_fields if hasattr(args, k)})


@contextmanager
def atomic_dir(out: str | Path):
    """Yield a scratch folder; on success its files are moved into ``out``, on failure nothing is left."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("--out", f"{str(out)!r} exists and is not a folder")
    parent = out.parent if str(out.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        yield scratch
        out.mkdir(exist_ok=True)
        for item in scratch.iterdir():
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _positive(name: str, cast: type, kind: str) -> Callable[[str], float | int]:
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {kind}, got {text!r}") from None
        if not (value >= 1 if cast is int else value > 0) or value == float("inf"):  # NaN fails too
            least = "at least 1" if cast is int else "a positive number"
            raise argparse.ArgumentTypeError(f"{name} must be {least}, got {text!r}")
        return value

    return parse


def positive_float(name: str) -> Callable[[str], float]:
    """An argparse type: a finite number > 0 (the message names ``name``)."""
    return _positive(name, float, "a number")


def positive_int(name: str) -> Callable[[str], int]:
    """An argparse type: a whole number >= 1 (the message names ``name``)."""
    return _positive(name, int, "a whole number")


def add_positive(
    parser, flag: str, *, integer: bool = False, default=None, metavar: str = "N", help: str = ""
):
    """``flag`` taking a positive number (a whole one with ``integer``)."""
    kind = positive_int if integer else positive_float
    parser.add_argument(flag, type=kind(flag), default=default, metavar=metavar, help=help)


def add_plan_args(parser, what: str):
    """``--schedule FILE`` or ``--solver NAME`` (+ ``--time-limit``): the plan a simulation or a training runs."""
    plan = parser.add_mutually_exclusive_group()
    plan.add_argument("--schedule", metavar="SCHEDULE.json", help=f"a schedule to {what}")
    plan.add_argument(
        "--solver", default=None, help="solve first with this registered solver (default greedy)"
    )
    add_positive(
        parser, "--time-limit", default=10.0, metavar="S", help="time limit of that solver (default 10 s)"
    )
    return plan


def add_workers_arg(parser: argparse.ArgumentParser) -> None:
    """``--workers N``: CP-SAT threads for the solvers that use CP-SAT (others ignore it)."""
    parser.add_argument(
        "--workers",
        type=positive_int("--workers"),
        default=None,
        metavar="N",
        help="CP-SAT threads for cpsat/auto (default 8, CP-SAT's full portfolio; 1 = reproducible step for step)",
    )


def add_verbose_arg(parser: argparse.ArgumentParser) -> None:
    """``--verbose``: let the solver back ends' logs (HiGHS, CBC, CP-SAT) through, to stderr."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the solver back ends' logs (HiGHS, CBC, CP-SAT) on stderr; stdout keeps only the report",
    )


def add_simulation_args(parser) -> None:
    """The options of a simulation run shared by ``simulate`` and ``train`` (None = the testbed's / default)."""
    parser.add_argument(
        "--policy",
        default=None,
        metavar="NAME",
        help="dispatch policy: static, fcfs, priority, replan (sched list)",
    )
    parser.add_argument("--links", choices=["dedicated", "shared"], default=None)
    parser.add_argument("--rounds", type=positive_int("--rounds"), default=None, metavar="R")
    parser.add_argument(
        "--stragglers",
        default=None,
        metavar="SPEC",
        help="none|mild|heavy or target:dist:key=value,...;... e.g. client:lognormal:sigma=0.2, "
        "client:slow:p=0.1,factor=5[,per=run] (targets: client, helper, link)",
    )
    parser.add_argument(
        "--dropout", type=float, default=None, metavar="P", help="probability a client drops out"
    )
    parser.add_argument(
        "--round-timeout",
        type=positive_float("--round-timeout"),
        default=None,
        metavar="MS",
        help="close a round this long after its start without the missing clients "
        "(default with dropouts: 3x the planned makespan)",
    )
    parser.add_argument(
        "--aggregator", default=None, metavar="HELPER", help="helper that averages the weights"
    )
    parser.add_argument("--seed", type=int, default=None)


def add_strategy_arg(parser: argparse.ArgumentParser) -> None:
    """``--strategy NAME``: whose round is planned (its round-end exchange and memory model, problem.md §1)."""
    parser.add_argument(
        "--strategy",
        metavar="NAME",
        help="plan this training strategy's round: splitfed1 (default), splitfed2, locsplitfed, locfedmix "
        "(weights exchanged at the round's end), psl, sglr (no exchange); splitfed2, locfedmix, psl and sglr keep "
        "one shared body per helper",
    )
