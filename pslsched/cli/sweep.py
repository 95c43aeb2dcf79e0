"""`sched sweep`: every combination of a grid's axes as one solve / simulate / train run, locally or on Ray."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pslsched.base.limits import MAX_SWEEP_POINTS, MAX_SWEEP_POINTS_LIMIT
from pslsched.cli.common import positive_int

EXIT_SOME_FAILED = 1


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid of solve/simulate/train points (process pool or Ray), resumable: results.csv",
        description="Run every combination of a grid file's axes as one `sched solve|simulate|train` run. Each "
        "finished point is written to DIR/runs/ at once, so an interrupted sweep continues where it stopped; "
        "DIR/results.csv has one row per point (identical on both backends), DIR/summary.png the main outputs. "
        "See docs/sweeps.md for the grid format.",
        epilog="exit codes: 0 every point ran, 1 some points failed (their errors are in results.csv), "
        "2 bad grid (nothing run), 130 interrupted",
    )
    p.add_argument("grid", metavar="GRID.yaml", help="command, base options and axes (docs/sweeps.md)")
    p.add_argument(
        "--out", required=True, metavar="DIR", help="results folder; re-run with the same DIR to resume"
    )
    p.add_argument(
        "--backend", choices=["local", "ray"], default="local", help="process pool (default) or Ray"
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="a running Ray cluster (ray.init(address=...): auto, HOST:PORT or ray://HOST:10001); "
        "default: start Ray on this machine",
    )
    p.add_argument(
        "--workers",
        type=positive_int("--workers"),
        metavar="N",
        help="points at a time on this machine (default: CPUs / CPUs per point); with Ray: the local instance's CPUs",
    )
    p.add_argument("--retry-failed", action="store_true", help="run the points that failed last time again")
    p.add_argument(
        "--max-points",
        type=positive_int("--max-points"),
        default=MAX_SWEEP_POINTS,
        metavar="N",
        help=f"refuse a grid of more than N points before expanding it (default {MAX_SWEEP_POINTS:,}, "
        f"at most {MAX_SWEEP_POINTS_LIMIT:,})",
    )
    p.add_argument("--dry-run", action="store_true", help="check the grid and list its points; run nothing")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pslsched.app.sweeps import load_grid, run_sweep
    from pslsched.app.sweeps.sweep import (
        check_grid,
        check_max_points,
        finished,
        print_progress,
        resolve_paths,
    )

    check_max_points(args.max_points)
    grid = load_grid(args.grid)
    grid.check_size(args.max_points)
    if args.dry_run:
        grid = resolve_paths(grid)
        points = grid.points(args.max_points)
        done = finished(Path(args.out), points, args.retry_failed)
        check_grid(grid, [p for p in points if p.id not in done])
        print(f"{len(points)} point(s), {len(done)} finished in {args.out}; the grid is valid")
        for p in points:
            state = "done" if p.id in done else "to run"
            params = " ".join(f"{k}={v}" for k, v in p.params.items())
            print(f"  {p.index:>4} {p.id} seed {p.run_seed:>10}  {state:<6} {params}")
        return 0
    total = grid.size

    def announce(total: int, to_run: int) -> None:
        print(
            f"sweep {grid.name}: {total} point(s) of sched {grid.command}, {total - to_run} finished already, "
            f"{to_run} to run on {args.backend}",
            file=sys.stderr,
        )

    try:
        report = run_sweep(
            grid,
            args.out,
            backend=args.backend,
            workers=args.workers,
            address=args.address,
            retry_failed=args.retry_failed,
            progress=print_progress(total),
            on_start=announce,
            max_points=args.max_points,
        )
    except KeyboardInterrupt:
        print(
            f"sched: sweep interrupted; finished points are kept in {args.out}/runs: "
            "run the same command again to continue",
            file=sys.stderr,
        )
        return 130
    print(
        f"{report.total} point(s): {report.reused} already finished, {report.ran} run now, "
        f"{report.failed} failed"
    )
    print(f"wrote {args.out}/results.csv, timings.csv, summary.png, runs/")
    if report.failed:
        errors = report.results.loc[report.results["run_status"] == "failed", "error"]
        for line in errors.head(5):
            print(f"  failed: {line}")
    return EXIT_SOME_FAILED if report.failed else 0
