"""Sweep benchmark: what `sched sweep` costs over a plain loop, and what its backends gain, measured side by side.

    python benchmarks/sweep.py                 # simulate and train grids, 3 repeats (about 6 minutes on 2 cores)
    python benchmarks/sweep.py --quick         # the simulate grid only, 1 repeat

Each grid runs four ways, in rotation within every repeat (so machine noise hits all of them alike):

- ``loop``: the points one after another in this process, calling the same ``run_point`` a worker calls (no
  checks, no files, no pool): the work itself;
- ``local-1``: ``run_sweep`` with one worker process (checks every point first, spawns the worker, writes the files);
- ``local-2``: two worker processes;
- ``ray-2``: a Ray instance with two CPUs started for the sweep (skipped without Ray).

Printed per grid: the median wall time of each way, and the ratios to ``loop`` (the overhead of the sweep machinery
on one worker, the speed-up of two). Every way's results.csv must be identical to the others' (checked).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file's name may equal a module of the project: keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import shutil
import statistics
import tempfile
import time

from splitsched.sweep import parse_grid, run_sweep
from splitsched.sweep.backends import ray_available
from splitsched.sweep.runner import run_point

GRIDS = {
    "simulate 24 points (default testbed, 40 rounds)": {
        "command": "simulate",
        "base": {"solver": "greedy", "rounds": 40},
        "axes": {"stragglers": ["none", "mild", "heavy"], "policy": ["static", "fcfs"], "seed": [0, 1, 2, 3]},
    },
    "train 6 points (digits, 3 rounds)": {
        "command": "train",
        "base": {"dataset": "digits", "rounds": 3, "solver": "greedy"},
        "axes": {"strategy": ["splitfed1", "psl", "locsplitfed"], "seed": [0, 1]},
    },
}


def loop(grid, work: Path) -> None:
    for p in grid.points():
        outcome = run_point(grid.command, p.options, p.run_seed, str(work / p.id))
        assert outcome["status"] == "ok", outcome


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    grids = dict(list(GRIDS.items())[:1]) if args.quick else GRIDS
    ways = ["loop", "local-1", "local-2"] + (["ray-2"] if ray_available() else [])
    for title, data in grids.items():
        times: dict[str, list[float]] = {w: [] for w in ways}
        csv: dict[str, str] = {}
        for _ in range(repeats):
            for way in ways:
                root = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
                grid = parse_grid(data)
                start = time.perf_counter()
                if way == "loop":
                    loop(grid, root)
                else:
                    backend, workers = way.split("-")
                    backend = "local" if backend == "local" else "ray"
                    report = run_sweep(grid, root, backend=backend, workers=int(workers))
                    assert report.failed == 0
                    csv[way] = (root / "results.csv").read_text()
                times[way].append(time.perf_counter() - start)
                shutil.rmtree(root, ignore_errors=True)
        assert len(set(csv.values())) == 1, "results.csv differs between backends"
        base = statistics.median(times["loop"])
        print(f"\n{title}: median of {repeats} ({len(parse_grid(data).points())} points)")
        print(f"{'way':<10}{'wall s':>10}{'vs loop':>10}")
        for way in ways:
            med = statistics.median(times[way])
            print(f"{way:<10}{med:>10.2f}{med / base:>10.2f}x")
        print("results.csv identical across local-1, local-2" + (", ray-2" if "ray-2" in ways else ""))


if __name__ == "__main__":
    main()
