"""`sched generate`: a seeded instance of a published benchmark family, written as instance JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from pslsched.base.errors import InputError
from pslsched.core.generators import (
    DEFAULT_MODEL,
    FAMILIES,
    FAMILY_SUMMARIES,
    LINK_MODES,
    MEMORY_MODES,
    MEMORY_SLACK,
    generate,
)
from pslsched.core.instance import write_instance


def add_parser(sub) -> None:
    families = "; ".join(f"{f}: {FAMILY_SUMMARIES[f]}" for f in FAMILIES)
    p = sub.add_parser(
        "generate",
        help="generate a benchmark instance (Tirana et al. / Ganian et al. families)",
        description=f"Write a seeded instance of a published benchmark family (docs/generators.md). {families}.",
    )
    # Values are checked by the library, so a bad one is a single 'sched: error: FIELD: ...' line (exit 2).
    p.add_argument("--family", required=True, help=f"one of: {', '.join(FAMILIES)}")
    p.add_argument("--clients", required=True, metavar="K", help="number of clients (>= 1)")
    p.add_argument("--helpers", required=True, metavar="H", help="number of helpers (>= 1)")
    p.add_argument("--seed", default="0", metavar="S", help="random seed (>= 0, default 0)")
    p.add_argument("--model", default=None, help=f"bundled anchor profile (default {DEFAULT_MODEL})")
    p.add_argument("--cut", default=None, metavar="A,B", help="fixed cut points (not ganian3/ganian4)")
    p.add_argument(
        "--memory",
        default=None,
        metavar="MODE",
        help="helper memory: 'scaled' (binds, feasible; default), 'published' (4-15 GB; ganian4's default) "
        "or a capacity in MB for every helper",
    )
    p.add_argument(
        "--memory-slack",
        default=str(MEMORY_SLACK),
        metavar="X",
        help=f"scaled memory: total capacity / total demand (default {MEMORY_SLACK})",
    )
    p.add_argument(
        "--links",
        default=None,
        help=f"one of {', '.join(LINK_MODES)}: a link rate per client or per client-helper pair "
        "(default: pair for tirana2, client otherwise)",
    )
    p.add_argument("-o", "--output", required=True, metavar="INSTANCE.json")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    options = {}
    if args.cut is not None:
        parts = args.cut.replace(" ", "").split(",")
        if len(parts) != 2 or not all(_is_int(p) for p in parts):
            raise InputError("--cut", f"must be two integers A,B, got {args.cut!r}")
        options["cut"] = (int(parts[0]), int(parts[1]))
    if args.memory is not None:
        options["memory"] = args.memory if args.memory in MEMORY_MODES else _number("--memory", args.memory)
    out = Path(args.output)
    if out.is_dir():
        raise InputError("--output", f"{str(out)!r} is a folder")
    inst = generate(
        args.family,
        clients=_integer("--clients", args.clients),
        helpers=_integer("--helpers", args.helpers),
        seed=_integer("--seed", args.seed),
        model=args.model,
        memory_slack=_number("--memory-slack", args.memory_slack),
        links=args.links,
        **options,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_instance(inst, out)  # via a temporary file: a failure leaves nothing half-written
    print(f"wrote {out}: {inst.name} ({inst.num_clients} clients, {inst.num_helpers} helpers)")
    if not inst.meta.get("memory_witness", True):
        print("note: no packing of all clients into helper memory was found; the instance may be infeasible")
    return 0


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _integer(field: str, text: str) -> int:
    if not _is_int(str(text)):
        raise InputError(field, f"must be an integer, got {text!r}")
    return int(text)


def _number(field: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(field, f"must be a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise InputError(field, f"must be a positive number, got {text!r}")
    return value
