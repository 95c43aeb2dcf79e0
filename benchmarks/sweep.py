"""Sweep benchmark: what `sched sweep` costs over plain loops, and what its backends gain, measured side by side.

    python benchmarks/sweep.py                 # simulate and train grids, 3 repeats (about 8 minutes on 2 cores)
    python benchmarks/sweep.py --quick         # the simulate grid only, 1 repeat

Each grid runs five ways, in rotation within every repeat (so machine noise hits all of them alike), each way
from a cold start (a fresh process: Python's imports of torch and scikit-learn cost a few seconds once per process):

- ``cli-loop``: one ``sched COMMAND ...`` process per point, one after another (what a shell loop over the points
  would run; ``runner.point_argv`` gives each point's command line);
- ``py-loop``: one fresh Python process running the points one after another with the same ``run_point`` a
  worker calls (no checks, no result files, no pool): the work itself plus one set of imports;
- ``local-1``: ``sched sweep`` with one worker process (checks every point first in the driver, spawns the worker,
  writes the files);
- ``local-2``: two worker processes;
- ``ray-2``: a Ray instance with two CPUs started for the sweep (skipped without Ray).

Printed per grid: the median wall time of each way and its ratio to ``py-loop``. The sweeps' results.csv must be
identical (checked).
"""

from __future__ import annotations

# This file's name may equal a module of the project: keep its folder off the import path.
import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pslsched.app.sweeps import parse_grid
from pslsched.app.sweeps.backends import ray_available
from pslsched.app.sweeps.runner import point_argv, run_point

HERE = Path(__file__).resolve()

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


def py_loop(name: str, work: Path) -> None:
    grid = parse_grid(GRIDS[name])
    for p in grid.points():
        outcome = run_point(grid.command, p.options, p.run_seed, str(work / p.id))
        assert outcome["status"] == "ok", outcome


def cli_loop(grid, work: Path) -> None:
    sched = Path(sys.executable).with_name("sched")
    for p in grid.points():
        argv = point_argv(grid.command, p.options, p.run_seed, work / p.id)
        subprocess.run([str(sched), *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_way(way: str, name: str, root: Path) -> str | None:
    """Run one way from a cold start; the results.csv of a sweep (None for the loops)."""
    grid = parse_grid(GRIDS[name])
    if way == "cli-loop":
        cli_loop(grid, root)
        return None
    if way == "py-loop":
        subprocess.run([sys.executable, str(HERE), "--py-loop", name, str(root)], check=True)
        return None
    backend, workers = way.split("-")
    argv = [
        sys.executable,
        "-m",
        "pslsched.cli",
        "sweep",
        str(root / "grid.yaml"),
        "--out",
        str(root / "out"),
    ]
    (root / "grid.yaml").write_text(yaml.safe_dump(GRIDS[name]))
    argv += ["--backend", backend, "--workers", workers]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (root / "out" / "results.csv").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--py-loop", nargs=2, metavar=("GRID", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.py_loop:  # one of the measured ways, in a process of its own
        py_loop(args.py_loop[0], Path(args.py_loop[1]))
        return
    repeats = 1 if args.quick else args.repeats
    names = list(GRIDS)[:1] if args.quick else list(GRIDS)
    ways = ["cli-loop", "py-loop", "local-1", "local-2"] + (["ray-2"] if ray_available() else [])
    for name in names:
        times: dict[str, list[float]] = {w: [] for w in ways}
        csv: dict[str, str] = {}
        for _ in range(repeats):
            for way in ways:
                root = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
                start = time.perf_counter()
                text = run_way(way, name, root)
                times[way].append(time.perf_counter() - start)
                if text is not None:
                    csv[way] = text
                shutil.rmtree(root, ignore_errors=True)
        assert len(set(csv.values())) == 1, "results.csv differs between backends"
        base = statistics.median(times["py-loop"])
        print(f"\n{name}: median of {repeats}, each way from a cold start")
        print(f"{'way':<10}{'wall s':>10}{'vs py-loop':>12}")
        for way in ways:
            med = statistics.median(times[way])
            print(f"{way:<10}{med:>10.2f}{med / base:>11.2f}x")
        print("results.csv identical across " + ", ".join(w for w in ways if w in csv))


if __name__ == "__main__":
    main()
