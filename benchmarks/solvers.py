"""Solver benchmark over the published instance families (issue 3): makespan / best lower bound and runtime.

Every schedule is checked by the independent validator; the "best lower bound" of an instance is the largest bound
any solver proved on it. Ratios are measured side by side in one run, so machine noise affects all solvers alike.

    python benchmarks/solvers.py --preset quick      # a few minutes: small grid, short limits
    python benchmarks/solvers.py --preset full       # the issue's grid (hours on 2 cores)
    python benchmarks/solvers.py --large             # K = 10,000, H = 100 (time to first schedule, memory)
    python benchmarks/solvers.py --report a.csv,b.csv  # the tables again from saved rows (b's rows replace a's)

Prints markdown tables (paste into benchmarks/RESULTS.md) and writes the raw rows to --csv.
"""

from __future__ import annotations

# This file's name equals a package of the project: keep its folder off the import path.
import argparse
import json
import subprocess
import sys
import time
from itertools import product

import pandas as pd

from pslsched.core.generators import generate
from pslsched.core.validate import validate
from pslsched.solvers import available_solvers, solve

FAMILIES = ["tirana1", "tirana2", "ganian1", "ganian2", "ganian3", "ganian4"]
PRESETS = {
    "quick": dict(clients=[10, 20, 50], helpers=[2, 5], seeds=[0, 1], limit=10.0),
    "medium": dict(clients=[10, 20, 50, 100, 200], helpers=[2, 5, 10], seeds=[0, 1], limit=30.0),
    "full": dict(clients=[10, 20, 50, 100, 200, 1000], helpers=[2, 5, 10, 20], seeds=[0, 1, 2], limit=60.0),
}
HEURISTICS = ["random", "greedy", "equid", "ed-fcfs", "admm"]  # auto must never be worse than these
RAW_COLUMNS = [
    "solver",
    "status",
    "makespan",
    "lower_bound",
    "runtime_s",
    "valid",
    "family",
    "K",
    "H",
    "seed",
]


def md(frame: pd.DataFrame, index: bool = True) -> str:
    """A markdown table without the optional tabulate dependency."""
    frame = frame.reset_index() if index else frame
    cols = [" / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |")
    return "\n".join(lines)


def run_one(inst, name: str, limit: float, seed: int) -> dict:
    t0 = time.perf_counter()
    res = solve(inst, name, time_limit=limit, seed=seed)
    wall = time.perf_counter() - t0
    valid = res.schedule is not None and validate(inst, res.schedule) == []
    return {
        "solver": name,
        "status": res.status,
        "makespan": res.makespan if valid else None,
        "lower_bound": res.lower_bound,
        "runtime_s": wall,
        "valid": valid,
    }


def grid(preset: dict, solvers: list[str], families: list[str]) -> pd.DataFrame:
    rows = []
    cells = list(product(families, preset["clients"], preset["helpers"], preset["seeds"]))
    for n, (fam, k, h, seed) in enumerate(cells, 1):
        if h >= k:
            continue
        inst = generate(fam, clients=k, helpers=h, seed=seed)
        for name in solvers:
            if name in ("milp-slotted", "milp") and k * h > 200:
                continue  # exact time-indexed / big-M models are for small instances only
            row = run_one(inst, name, preset["limit"], seed)
            row.update(family=fam, K=k, H=h, seed=seed)
            rows.append(row)
        print(f"[{n}/{len(cells)}] {fam} K={k} H={h} seed={seed}", file=sys.stderr, flush=True)
    return enrich(pd.DataFrame(rows))


def enrich(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the best lower bound per instance, each row's ratio to it and its reduction versus random."""
    key = ["family", "K", "H", "seed"]
    frame = frame[[c for c in RAW_COLUMNS if c in frame.columns]].copy()
    frame["best_lb"] = frame.groupby(key)["lower_bound"].transform("max")
    frame["ratio"] = frame["makespan"] / frame["best_lb"]
    rnd = frame[frame.solver == "random"].set_index(key)["makespan"].rename("random_makespan")
    frame = frame.join(rnd, on=key)
    frame["reduction_vs_random"] = 1 - frame["makespan"] / frame["random_makespan"]
    return frame


def report(frame: pd.DataFrame) -> str:
    out = []
    table = frame.pivot_table(index=["family", "K"], columns="solver", values="ratio", aggfunc="mean")
    out.append("### Mean makespan / best lower bound\n\n" + md(table.round(4)))
    rt = frame.pivot_table(index=["family", "K"], columns="solver", values="runtime_s", aggfunc="mean")
    out.append("### Mean runtime (s)\n\n" + md(rt.round(2)))
    if (frame.solver == "random").any():
        red = (
            frame[frame.solver != "random"]
            .groupby(["family", "solver"])["reduction_vs_random"]
            .agg(["mean", "max"])
        )
        out.append(
            "### Reduction of the makespan versus random (published: up to 52.3%)\n\n"
            + md((100 * red).round(1).unstack("solver"))
        )
    key = ["family", "K", "H", "seed"]
    piv = frame.pivot_table(index=key, columns="solver", values="makespan")
    notes = []
    if "auto" in piv:
        others = [s for s in HEURISTICS if s in piv]
        if others:
            worse = (piv["auto"].to_numpy()[:, None] > piv[others].to_numpy() * (1 + 1e-9)).any(axis=1).sum()
            notes.append(f"- auto worse than one of {others} on {worse} of {len(piv)} instances")
        if "equid" in piv:
            het = piv.reset_index()
            het = het[het.family.isin(["tirana2", "ganian2", "ganian3", "ganian4"])]
            better = (het["auto"] < het["equid"] * (1 - 1e-9)).sum()
            notes.append(
                f"- auto strictly better than equid on {better} of {len(het)} heterogeneous instances"
            )
        for kmax, target in ((100, 0.02), (1000, 0.05)):
            sub = frame[(frame.solver == "auto") & (frame.K <= kmax)]
            if len(sub):
                notes.append(
                    f"- auto mean gap to best bound, K <= {kmax}: {100 * (sub.ratio.mean() - 1):.2f}% "
                    f"(target {100 * target:.0f}%)"
                )
    for name in ("cpsat", "benders", "auto", "milp"):
        sub = frame[(frame.solver == name) & (frame.K <= 20) & (frame.H <= 3)]
        if len(sub):
            notes.append(
                f"- {name} proved optimal on {(sub.status == 'optimal').sum()} of {len(sub)} instances "
                f"with K <= 20, H <= 3"
            )
    invalid = frame[~frame.valid & frame.status.isin(["optimal", "feasible"])]
    notes.append(f"- schedules failing the validator: {len(invalid)}")
    out.append("### Targets\n\n" + "\n".join(notes))
    return "\n\n".join(out)


LARGE_CHILD = r"""
import json, resource, sys, time
from pslsched.solvers import solve
from pslsched.core.generators import generate
from pslsched.core.validate import validate
name, limit, fam = sys.argv[1], float(sys.argv[2]), sys.argv[3]
inst = generate(fam, clients=10000, helpers=100, seed=0)
t0 = time.perf_counter()
res = solve(inst, name, time_limit=limit, seed=0)
wall = time.perf_counter() - t0
ok = res.schedule is not None and validate(inst, res.schedule) == []
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"solver": name, "limit_s": limit, "family": fam, "makespan": res.makespan, "lower_bound":
                  res.lower_bound, "runtime_s": wall, "valid": ok, "peak_mb": peak}))
"""


def large(solvers_limits: list[tuple[str, float]], family: str) -> str:
    rows = []
    for name, limit in solvers_limits:
        proc = subprocess.run(
            [sys.executable, "-c", LARGE_CHILD, name, str(limit), family],
            capture_output=True,
            text=True,
            timeout=limit * 4 + 600,
        )
        if proc.returncode != 0:
            rows.append({"solver": name, "limit_s": limit, "error": proc.stderr.strip().splitlines()[-1]})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1], file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    if "makespan" in frame and frame["lower_bound"].notna().any():
        frame["ratio_to_best_lb"] = frame["makespan"] / frame["lower_bound"].max()
    return f"### K = 10,000, H = 100 ({family}, seed 0)\n\n" + md(frame.round(3), index=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--solvers", default=None, help="comma-separated (default: all registered)")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--limit", type=float, default=None, help="override the preset's time limit (s)")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (override the preset's)")
    ap.add_argument("--clients", default=None, help="comma-separated K values (override the preset's)")
    ap.add_argument("--helpers", default=None, help="comma-separated H values (override the preset's)")
    ap.add_argument("--csv", default=None, help="write the raw rows here")
    ap.add_argument("--large", action="store_true", help="run the K = 10,000, H = 100 benchmark instead")
    ap.add_argument(
        "--report", default=None, metavar="CSV", help="only print the tables of rows saved by --csv"
    )
    args = ap.parse_args()
    if args.report:
        # several files: a later file's row replaces an earlier one for the same solver and instance
        frames = [pd.read_csv(path) for path in args.report.split(",")]
        merged = pd.concat(frames).drop_duplicates(["solver", "family", "K", "H", "seed"], keep="last")
        print(report(enrich(merged)))
        return
    names = args.solvers.split(",") if args.solvers else sorted(available_solvers())
    if args.large:
        plan = [(n, 5.0) for n in names if n in ("greedy", "equid", "lns", "auto")]
        plan += [(n, 60.0) for n in names if n in ("lns", "auto")]
        print(large(plan, args.families.split(",")[0]))
        return
    preset = dict(PRESETS[args.preset])
    if args.limit:
        preset["limit"] = args.limit
    for key in ("seeds", "clients", "helpers"):
        if getattr(args, key):
            preset[key] = [int(x) for x in getattr(args, key).split(",")]
    t0 = time.perf_counter()
    frame = grid(preset, names, args.families.split(","))
    if args.csv:
        frame.to_csv(args.csv, index=False)
    print(
        f"preset {args.preset}: {json.dumps(preset)}; {frame[['family', 'K', 'H', 'seed']].drop_duplicates().shape[0]}"
        f" instances; {time.perf_counter() - t0:.0f} s\n"
    )
    print(report(frame))


if __name__ == "__main__":
    main()
