"""Limits kept (issue 25, item 4): wall time spent against the asked time limit, and the gap to the bound.

For each solver and size, a fresh copy of one generated instance (so no solver reuses another's cached bounds) is
solved in this process through the registry's front door (``pslsched.solvers.solve``); the wall time around that
call (model building, bounds and re-timing included; Python start-up and instance generation not) is divided by
the asked limit. The gap is ``makespan / lower bound - 1`` with the bound the answer reports. Solvers run one
after another in one process, so machine noise affects them alike; repeat (``--repeat``) when in doubt.

    python benchmarks/limits.py                       # ~1.5 minutes: 1000x20 and 10,000x100 at 5 s
    python benchmarks/limits.py --limits 5,10         # both limits (2-3 minutes)
    python benchmarks/limits.py --sizes 1000x20 --solvers auto,cpsat --repeat 3

Prints a markdown table (paste into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from pslsched.core.generators import generate
from pslsched.core.validate import validate
from pslsched.solvers import solve

SOLVERS = ["auto", "cpsat", "lns", "greedy", "random", "equid", "ed-fcfs"]
SIZES = ["1000x20", "10000x100"]


def measure(instance, solver: str, limit: float, seed: int, workers: int | None) -> dict:
    """One solve of a fresh copy of ``instance``: wall time, ratio to the limit, status, gap, validity."""
    copy = dataclasses.replace(instance)  # a new object: the bound cache (per instance object) starts empty
    options = {} if workers is None else {"workers": workers}
    t0 = time.perf_counter()
    res = solve(copy, solver, time_limit=limit, seed=seed, **options)
    wall = time.perf_counter() - t0
    valid = "" if res.schedule is None else ("yes" if not validate(copy, res.schedule) else "NO")
    gap = None if res.makespan is None or res.lower_bound <= 0 else res.makespan / res.lower_bound - 1
    return {
        "solver": solver,
        "limit": limit,
        "wall": wall,
        "ratio": wall / limit,
        "reported": res.runtime_s,
        "status": res.status,
        "gap": gap,
        "valid": valid,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run the grid, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", default="tirana1")
    ap.add_argument("--sizes", default=",".join(SIZES), help="KxH,KxH,...")
    ap.add_argument("--limits", default="5", help="time limits in s, comma-separated")
    ap.add_argument("--solvers", default=",".join(SOLVERS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None, help="CP-SAT workers (default: each solver's)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    limits = [float(x) for x in args.limits.split(",")]
    print(
        "| family | K x H | solver | limit s | wall s | wall / limit | reported s | status | gap % | valid |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        k, h = (int(x) for x in size.lower().split("x"))
        instance = generate(args.family, k, h, seed=args.seed)
        for limit in limits:
            for solver in args.solvers.split(","):
                for _ in range(args.repeat):
                    row = measure(instance, solver, limit, args.seed, args.workers)
                    gap = "" if row["gap"] is None else f"{100 * row['gap']:.2f}"
                    print(
                        f"| {args.family} | {k} x {h} | {solver} | {limit:g} | {row['wall']:.2f} | "
                        f"{row['ratio']:.2f} | {row['reported']:.2f} | {row['status']} | {gap} | {row['valid']} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
