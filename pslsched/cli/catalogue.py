"""`sched list`: every registered solver, policy, distribution, codec, model, dataset and strategy, by kind."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "list",
        help="list what can be plugged in: solvers, policies, codecs, models, datasets, strategies, ...",
        description="The registered names of every pluggable kind, with a one-line summary each.",
    )
    p.add_argument("kind", nargs="?", help="one kind only (e.g. solvers, strategies, codecs)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pslsched.app.catalogue import registered

    for kind, entries in registered(args.kind).items():
        print(f"{kind}:")
        width = max((len(name) for name, _ in entries), default=0)
        for name, summary in entries:
            print(f"  {name:<{width}}  {summary}".rstrip())
    return 0
