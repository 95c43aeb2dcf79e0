"""`sched generate`: a seeded instance of a published benchmark family, written as instance JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from pslsched.app.requests import GenerateRequest
from pslsched.cli.common import request_from
from pslsched.core.generators import DEFAULT_MODEL, FAMILIES, FAMILY_SUMMARIES, LINK_MODES, MEMORY_SLACK


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
    from pslsched.app.generating import generate_to

    request = request_from(args, GenerateRequest)
    out = Path(args.output)
    inst = generate_to(request, out)
    print(f"wrote {out}: {inst.name} ({inst.num_clients} clients, {inst.num_helpers} helpers)")
    if not inst.meta.get("memory_witness", True):
        print("note: no packing of all clients into helper memory was found; the instance may be infeasible")
    return 0
