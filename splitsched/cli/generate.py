"""`sched generate`: a seeded instance of a published benchmark family, written as instance JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from splitsched.generators import FAMILIES, generate
from splitsched.instance import write_instance


def add_parser(sub) -> None:
    p = sub.add_parser(
        "generate", help="generate a benchmark instance (Tirana et al. / Ganian et al. families)"
    )
    p.add_argument("--family", required=True, help=f"one of: {', '.join(FAMILIES)}")
    p.add_argument("--clients", type=int, required=True, metavar="K")
    p.add_argument("--helpers", type=int, required=True, metavar="H")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--model", default=None, help="bundled profile or CSV (default resnet101_cifar10; not ganian4)"
    )
    p.add_argument("-o", "--output", required=True, metavar="INSTANCE.json")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    inst = generate(args.family, clients=args.clients, helpers=args.helpers, seed=args.seed, model=args.model)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_instance(inst, out)
    print(f"wrote {out}: {inst.name} ({inst.num_clients} clients, {inst.num_helpers} helpers)")
    return 0
