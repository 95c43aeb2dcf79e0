"""`auto` as a portfolio (issue 25, item 1): is `auto` ever worse than one of its parts run alone?

For each cell (family x K x time limit x CP-SAT workers) a generated instance is solved by ``auto`` and by each of
its parts alone (``cpsat``, ``lns`` and the heuristics ``greedy``, ``random``, ``equid``, ``ed-fcfs``) with the same
limit, seed and workers, each on a fresh copy of the instance (so that every solve pays for its own lower bounds),
one after another in this process. A cell reports auto's makespan, the best part's, their ratio (``auto / best``,
> 1 where auto loses) and the largest lower bound any run proved. Every schedule is validated and every bound is
checked against every makespan. ``--repeat N`` runs each cell N times (time-limited runs are noisy on a shared
machine) and reports the worst ratio, with auto's and the best part's ranges.

    python benchmarks/portfolio.py                    # ~2 minutes on 2 cores (workers 1; 4 with --workers 1,8)
    python benchmarks/portfolio.py --workers 1,2 --limits 0.5,2
    python benchmarks/portfolio.py --families tirana2 --clients 10 --limits 0.5 --repeat 3

Prints a markdown table (paste into benchmarks/RESULTS.md), then the worst cell.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from pslsched.core.generators import generate
from pslsched.core.instance import Instance
from pslsched.core.validate import validate
from pslsched.solvers import solve

FAMILIES = ["tirana1", "tirana2", "ganian2"]
CLIENTS = [10, 40, 200]
HELPERS = {10: 3, 40: 3, 200: 10}  # K -> H (the notebook's 3 helpers at K = 10 and 40)
LIMITS = [0.5, 2.0, 5.0]
PARTS = ["cpsat", "lns", "greedy", "random", "equid", "ed-fcfs"]
WITH_WORKERS = {"auto", "cpsat"}  # lns always runs one CP-SAT worker; the heuristics none
TOL = 1e-6  # relative: makespans closer than this are equal (re-timing is exact, in float ms)


def run_one(instance: Instance, solver: str, limit: float, seed: int, workers: int) -> dict:
    """One solve of a fresh copy of ``instance``, validated: makespan, bound, status, wall time."""
    copy = dataclasses.replace(instance)  # a new object: the bound cache (per instance object) starts empty
    options = {"workers": workers} if solver in WITH_WORKERS else {}
    t0 = time.perf_counter()
    res = solve(copy, solver, time_limit=limit, seed=seed, **options)
    wall = time.perf_counter() - t0
    if res.schedule is not None:
        problems = validate(copy, res.schedule)
        assert not problems, f"{solver} on {instance.name}: {problems[:3]}"
    return {
        "makespan": res.makespan,
        "bound": res.lower_bound,
        "status": res.status,
        "wall": wall,
        "ran": sorted(res.extra.get("ran", {})) if solver == "auto" else None,
    }


def cell(instance: Instance, limit: float, seed: int, workers: int, parts: list[str], repeat: int) -> dict:
    """auto and its parts side by side, ``repeat`` times; the worst ``auto / best part`` over the repetitions."""
    reps = []
    for _ in range(repeat):
        runs = {name: run_one(instance, name, limit, seed, workers) for name in ["auto", *parts]}
        found = {n: r["makespan"] for n, r in runs.items() if n != "auto" and r["makespan"] is not None}
        best_part = min(found, key=found.get)
        reps.append((runs, best_part, runs["auto"]["makespan"] / found[best_part]))
    bound = max(r["bound"] for runs, _, _ in reps for r in runs.values() if r["bound"] is not None)
    for runs, _, _ in reps:
        for name, r in runs.items():
            assert r["makespan"] is None or r["makespan"] >= bound * (1 - 1e-9), (
                f"{name} below a proved bound"
            )
    runs, best_part, ratio = max(reps, key=lambda x: x[2])
    autos = [x[0]["auto"]["makespan"] for x in reps]
    bests = [x[0][x[1]]["makespan"] for x in reps]
    return {
        "auto": autos,
        "best": bests,
        "best_part": best_part,
        "ratio": ratio,
        "bound": bound,
        "auto_status": runs["auto"]["status"],
        "auto_wall": max(x[0]["auto"]["wall"] for x in reps),
        "ran": runs["auto"]["ran"],
        "parts": {n: runs[n]["makespan"] for n in parts},
    }


def span(values: list[float]) -> str:
    """``a`` or ``a-b`` (min-max) for one or several makespans."""
    lo, hi = min(values), max(values)
    return f"{lo:.0f}" if hi - lo < 0.5 else f"{lo:.0f}-{hi:.0f}"


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run the grid, print the table and the worst cell."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--clients", default=",".join(map(str, CLIENTS)), help="K values (H from K: 3, 3, 10)")
    ap.add_argument(
        "--helpers", type=int, default=None, help="H for every K (default: 3 up to K=40, else 10)"
    )
    ap.add_argument("--limits", default=",".join(map(str, LIMITS)), help="time limits in s")
    ap.add_argument("--workers", default="1", help="CP-SAT workers of auto and cpsat, comma-separated")
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--seed", type=int, default=0, help="instance and solver seed")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    parts = args.parts.split(",")
    started = time.perf_counter()
    print(
        "| family | K x H | limit s | workers | auto | best part | best | auto / best | best bound | "
        "auto gap % | auto status | cpsat | lns |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    worst: tuple[float, str] = (0.0, "")
    for family in args.families.split(","):
        for k in (int(x) for x in args.clients.split(",")):
            h = args.helpers or HELPERS.get(k, 3 if k <= 40 else 10)
            instance = generate(family, k, h, seed=args.seed)
            for limit in (float(x) for x in args.limits.split(",")):
                for workers in (int(x) for x in args.workers.split(",")):
                    c = cell(instance, limit, args.seed, workers, parts, args.repeat)
                    gap = 100 * (max(c["auto"]) / c["bound"] - 1)
                    other = {n: "" if v is None else f"{v:.0f}" for n, v in c["parts"].items()}
                    label = f"{family} {k} x {h} {limit:g} s w{workers}"
                    print(
                        f"| {family} | {k} x {h} | {limit:g} | {workers} | {span(c['auto'])} | {c['best_part']} | "
                        f"{span(c['best'])} | {c['ratio']:.4f} | {c['bound']:.0f} | {gap:.2f} | "
                        f"{c['auto_status']} | {other.get('cpsat', '')} | {other.get('lns', '')} |",
                        flush=True,
                    )
                    worst = max(worst, (c["ratio"], label))
    print(f"\nworst auto / best part: {worst[0]:.4f} ({worst[1]}); {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
