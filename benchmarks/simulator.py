"""Simulator benchmark (issue 4): cost-only speed and a what-if table for the bundled testbed.

    python benchmarks/simulator.py            # both tables
    python benchmarks/simulator.py --speed    # only the speed table
    python benchmarks/simulator.py --whatif   # only the what-if table

Speed: each configuration runs in its own process pinned to one core: a greedy schedule of a generated tirana1
instance with its component workload (compute and transfers as separate steps), one round, no stragglers. "steps"
counts the simulated steps (every compute, transfer and helper task, each one SimPy timeout); the run time excludes
building the instance and solving. "sim_peak_mb" is the peak memory the simulation itself allocates (tracemalloc,
in a second, untimed run).
"""

from __future__ import annotations

# This file's name equals a package of the project: keep its folder off the import path.
import argparse
import json
import subprocess
import sys

import pandas as pd

CHILD = r"""
import json, sys, time, tracemalloc
from pslsched.simulator import SimConfig, simulate
from pslsched.simulator import NoHooks
from pslsched.solvers import solve
from pslsched.core.generators import generate_workload
import dataclasses
k, h, b = map(int, sys.argv[1:4])
inst, work = generate_workload("tirana1", k, h, seed=0)
inst = dataclasses.replace(inst, batches=b)
res = solve(inst, "greedy", time_limit=60)
class Count(NoHooks):
    n = 0
    def run(self, step):
        Count.n += 1
t0 = time.perf_counter()
rec = simulate(inst, res.schedule, SimConfig(), workload=work, hooks=Count())
wall = time.perf_counter() - t0
steps = Count.n
ok = abs(rec.makespans[0] - res.makespan) <= 1e-9 * res.makespan
del rec
tracemalloc.start()
simulate(inst, res.schedule, SimConfig(), workload=work)
peak = tracemalloc.get_traced_memory()[1] / 2**20
print(json.dumps({"K": k, "H": h, "B": b, "steps": steps, "wall_s": wall, "steps_per_s": steps / wall,
                  "sim_peak_mb": peak, "matches_plan": ok}))
"""


def speed() -> pd.DataFrame:
    rows = []
    for k in (100, 1000, 10000):
        for h in (10, 100):
            if h >= k:
                continue
            for b in (1, 10):
                proc = subprocess.run(
                    ["taskset", "-c", "0", sys.executable, "-c", CHILD, str(k), str(h), str(b)],
                    capture_output=True,
                    text=True,
                    timeout=1800,
                )
                if proc.returncode != 0:
                    raise RuntimeError(proc.stderr)
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(rows[-1], file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def whatif(rounds: int = 20) -> pd.DataFrame:
    from pslsched.core.testbed import build, default_testbed_path, load_testbed
    from pslsched.simulator import SimConfig, parse_stragglers, simulate
    from pslsched.solvers import solve

    built = build(load_testbed(default_testbed_path()))
    rows = []
    for solver in ("greedy", "auto"):
        res = solve(built.instance, solver, time_limit=20, seed=0)
        for level, spec in (
            ("none", "none"),
            ("mild (lognormal sigma 0.2)", "mild"),
            ("heavy (10% of clients 5x)", "heavy"),
        ):
            for policy in ("static", "fcfs", "priority", "replan"):
                cfg = SimConfig(rounds=rounds, policy=policy, stragglers=parse_stragglers(spec), seed=0)
                s = simulate(built.instance, res.schedule, cfg, workload=built.workload).summary()
                rows.append(
                    {
                        "schedule": solver,
                        "stragglers": level,
                        "policy": policy,
                        "planned_ms": round(res.makespan, 1),
                        "mean_ms": round(s["mean_makespan_ms"], 1),
                        "p95_ms": round(s["p95_makespan_ms"], 1),
                        "mean_vs_planned_%": round(100 * (s["mean_makespan_ms"] / res.makespan - 1), 2),
                    }
                )
    return pd.DataFrame(rows)


def md(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--whatif", action="store_true")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    both = not (args.speed or args.whatif)
    if args.speed or both:
        table = speed()
        table["wall_s"] = table["wall_s"].round(2)
        table["steps_per_s"] = table["steps_per_s"].round(0).astype(int)
        table["sim_peak_mb"] = table["sim_peak_mb"].round(1)
        print("### Cost-only speed (one core, one round)\n\n" + md(table) + "\n")
    if args.whatif or both:
        print(f"### What-if: bundled testbed, {args.rounds} rounds, seed 0\n\n" + md(whatif(args.rounds)))


if __name__ == "__main__":
    main()
