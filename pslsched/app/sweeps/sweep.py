"""Run a grid: check every point, skip the finished ones, run the rest on a backend, collect the results.

Output folder::

    DIR/grid.yaml        the grid as run
    DIR/runs/ID.json     one file per point (its parameters, seed, status, error, metrics, series, timings)
    DIR/work/ID/         each point's scratch: log.txt, edited testbed, generated instance, training checkpoints
    DIR/results.csv      one row per point, in the grid's order: parameters and measured outputs
    DIR/timings.csv      wall-clock seconds per point (kept apart: results.csv is the same on every backend)
    DIR/summary.png      the command's main output against the first axis
    DIR/report.html      every point of every main output, interactive (offline)

A sweep holds ``DIR``'s lock while it runs (a second sweep or train on it is refused), checks the folder before
any point runs (a ``runs/`` that is a file, a result file that is a folder, a folder it cannot write: one line) and
reruns a point whose result file is not a finished point's record (unreadable, or ``metrics`` not a mapping).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pslsched.app.requests import field_of
from pslsched.app.sweeps.backends import BACKENDS, RAY_HINT, LocalPool, ray_available, run_ray
from pslsched.app.sweeps.grid import Grid, Point
from pslsched.app.sweeps.plot import plot_summary
from pslsched.app.sweeps.runner import (
    PATH_OPTIONS,
    TESTBED_PREFIX,
    check_keys,
    check_point,
    write_json_atomic,
)
from pslsched.base.errors import InputError
from pslsched.base.files import folder_lock, temp_name, write_atomically
from pslsched.base.limits import MAX_SWEEP_POINTS, MAX_SWEEP_POINTS_LIMIT

# the main outputs per command, in results.csv's column order (others follow in the order they come)
METRICS = {
    "solve": ["status", "makespan_ms", "round_ms", "lower_bound_ms", "gap", "clients", "helpers"],
    "simulate": [
        "planned_makespan_ms",
        "mean_makespan_ms",
        "p95_makespan_ms",
        "mean_round_time_ms",
        "rounds",
        "dropped_clients",
        "timed_out_clients",
    ],
    "train": [
        "final_accuracy",
        "best_accuracy",
        "time_to_accuracy_ms",
        "virtual_time_ms",
        "mean_round_time_ms",
        "planned_makespan_ms",
        "rounds",
    ],
}


@dataclass
class SweepReport:
    """What a sweep did: points in the grid, already finished before this run, run now, failed in all."""

    out: Path
    total: int
    reused: int
    ran: int
    failed: int
    results: pd.DataFrame = field(repr=False)


def resolve_paths(grid: Grid, here: Path | None = None) -> Grid:
    """Path options made absolute (relative to the working directory, else to the grid file's folder)."""
    base_dir = grid.source.parent if grid.source is not None else None

    def fix(key: str, value: Any) -> Any:
        is_path = key in PATH_OPTIONS or key == f"{TESTBED_PREFIX}model.profile"
        if not is_path or not isinstance(value, str) or not value:
            return value
        p = Path(value).expanduser()
        if p.is_absolute():
            return str(p)
        for root in (here or Path.cwd(), base_dir):
            if root is not None and (root / p).exists():
                return str((root / p).resolve())
        return value  # a bundled profile name, or a missing file the command will name

    grid.base = {k: fix(k, v) for k, v in grid.base.items()}
    grid.axes = {k: [fix(k, v) for v in vs] for k, vs in grid.axes.items()}
    return grid


def check_grid(grid: Grid, points: list[Point]) -> None:
    """Every option is the command's and every point's values are accepted by it; nothing is run.

    The error names the axis (or base option) at fault and its value.
    """
    labels = {k: f"base.{k}" for k in grid.base} | {k: f"axes.{k}" for k in grid.axes}
    check_keys(grid.command, list({**grid.base, **grid.axes}), labels)
    for key in PATH_OPTIONS:
        values = [grid.base[key]] if key in grid.base else grid.axes.get(key, [])
        for value in values:
            if value is not None and not Path(str(value)).exists():
                label = labels[key] if key in grid.base else f"{labels[key]}: value {value!r}"
                raise InputError(label, f"{value!r}: no such file (relative to here or to the grid's folder)")
    scratch = Path(tempfile.mkdtemp(prefix="sched-sweep-check-"))
    try:
        for point in points:
            try:
                check_point(grid.command, point.options, point.run_seed, scratch / point.id)
            except InputError as exc:
                raise _blame(grid, point, exc) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _blame(grid: Grid, point: Point, exc: InputError) -> InputError:
    message = str(exc)[len(exc.field) + 2 :] if str(exc).startswith(f"{exc.field}: ") else str(exc)
    key = field_of(exc.field)
    if key not in point.options:
        key = _testbed_key(point, exc.field)
    if key in grid.axes:
        return InputError(f"axes.{key}", f"value {point.params[key]!r}: {message}")
    if key in grid.base:
        return InputError(f"base.{key}", message)
    where = ", ".join(f"{k}={v!r}" for k, v in point.params.items())
    return InputError(f"point ({where})", f"{exc.field}: {message}")


def _testbed_key(point: Point, field: str) -> str | None:
    """A testbed validation error (``testbed: helpers[0].memory_mb``) -> the one testbed.* key it can come from."""
    name = field.rsplit(".", 1)[-1].split("[")[0].strip()
    keys = [k for k in point.options if k.startswith(TESTBED_PREFIX) and k.rsplit(".", 1)[-1] == name]
    return keys[0] if len(keys) == 1 else None


def finished(out: Path, points: list[Point], retry_failed: bool) -> dict[str, dict]:
    """The points with a result file (failed ones too, unless they are to be retried)."""
    done = {}
    for point in points:
        file = out / "runs" / f"{point.id}.json"
        if not file.is_file():
            continue
        try:
            record = json.loads(file.read_text())
        except (ValueError, UnicodeDecodeError):  # not a finished point's file: run the point again
            continue
        if not _is_record(record):  # damaged: the point runs again and its file is replaced
            continue
        if record["status"] == "failed" and retry_failed:
            continue
        done[point.id] = record
    return done


def _is_record(record: Any) -> bool:
    """Whether a runs/ID.json holds a finished point's record (a status, metrics a mapping or none)."""
    return (
        isinstance(record, dict)
        and record.get("status") in ("ok", "failed")
        and isinstance(record.get("metrics") or {}, dict)
        and isinstance(record.get("error") or "", str)
    )


OUTPUT_FILES = ("grid.yaml", "results.csv", "timings.csv", "summary.png", "report.html")


def check_output(out: Path, points: list[Point]) -> None:
    """Refuse, in one line, an output folder the sweep could not write its results into; nothing is run yet."""
    for sub in ("runs", "work"):
        if (out / sub).exists() and not (out / sub).is_dir():
            raise InputError(
                "--out", f"{str(out / sub)!r} is not a folder: move it away, or choose another --out"
            )
    for name in OUTPUT_FILES:
        if (out / name).is_dir():
            raise InputError(
                "--out", f"{str(out / name)!r} is a folder: move it away, or choose another --out"
            )
    for point in points:
        file = out / "runs" / f"{point.id}.json"
        if file.exists() and not file.is_file():
            raise InputError(
                "--out", f"{str(file)!r} (point {point.index}'s result) is not a file: move it away"
            )
    for folder in (out, out / "runs", out / "work"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = temp_name(folder / "probe")
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise InputError("--out", f"cannot write to {str(folder)!r}: {exc.strerror or exc}") from None


def run_sweep(
    grid: Grid,
    out: str | Path,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    progress: Callable[[Point, dict, dict[str, int]], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    max_points: int = MAX_SWEEP_POINTS,
) -> SweepReport:
    """Run every point of ``grid`` not yet finished in ``out``; write the results (see the module docstring).

    ``progress(point, outcome, counts)`` is called as each point finishes, ``on_start(total, to_run)`` once the
    grid is checked. A grid of more than ``max_points`` points is refused before it is expanded.
    """
    check_max_points(max_points)
    if backend not in BACKENDS:
        raise InputError("--backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "ray":
        if not ray_available():
            raise InputError("--backend", RAY_HINT)
    if address and backend != "ray":
        raise InputError("--address", "only with --backend ray")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("--out", f"{str(out)!r} exists and is not a folder")
    grid.check_size(max_points)
    with folder_lock(out):
        return _run_locked(
            grid, out, (backend, workers, address), retry_failed, progress, on_start, max_points
        )


def check_max_points(max_points: int) -> None:
    """``--max-points`` is a whole number in [1, MAX_SWEEP_POINTS_LIMIT]."""
    if isinstance(max_points, bool) or not isinstance(max_points, int):
        raise InputError("--max-points", f"must be a whole number, got {max_points!r}")
    if not 1 <= max_points <= MAX_SWEEP_POINTS_LIMIT:
        raise InputError("--max-points", f"must be in [1, {MAX_SWEEP_POINTS_LIMIT:,}], got {max_points:,}")


def _run_locked(grid, out, where, retry_failed, progress, on_start, max_points) -> SweepReport:
    backend, workers, _ = where
    grid = resolve_paths(grid)
    points = grid.points(max_points)
    done = finished(out, points, retry_failed)
    todo = [p for p in points if p.id not in done]
    pool = LocalPool(grid.command, todo, workers) if backend == "local" and todo else None
    try:
        if pool is not None:
            pool.warm()  # the workers import torch & co. while the grid is checked
        check_grid(grid, todo)  # before any point runs: a bad value stops the sweep here
        check_output(out, points)
        report = _run_checked(grid, out, points, done, todo, pool, where, progress, on_start)
    except BaseException:
        if pool is not None:
            pool.close(wait_for_workers=False)
        raise
    if pool is not None:
        pool.close()
    return report


def _run_checked(grid, out, points, done, todo, pool, where, progress, on_start) -> SweepReport:
    """Run the checked points (``pool`` for the local backend, else Ray) and write the results."""
    backend, workers, address = where
    (out / "runs").mkdir(parents=True, exist_ok=True)
    write_atomically(
        out / "grid.yaml", lambda p: p.write_text(yaml.safe_dump(_grid_dict(grid), sort_keys=False))
    )
    counts = {"done": len(done), "failed": sum(r["status"] == "failed" for r in done.values())}
    counts["remaining"] = len(todo)
    if on_start is not None:
        on_start(len(points), len(todo))

    def record(point: Point, outcome: dict) -> None:
        data = {
            "id": point.id,
            "index": point.index,
            "command": grid.command,
            "params": point.params,
            "options": point.options,
            "run_seed": point.run_seed,
            "backend": backend,
            **outcome,
        }
        write_json_atomic(out / "runs" / f"{point.id}.json", data)
        done[point.id] = data
        counts["done"] += 1
        counts["remaining"] -= 1
        counts["failed"] += outcome["status"] == "failed"
        if progress is not None:
            progress(point, outcome, dict(counts))

    work = out / "work"
    if pool is not None:
        pool.run(todo, work, record)
    elif todo:
        run_ray(grid.command, todo, work, record, workers, address)
    results = write_results(grid, points, done, out)
    failed = sum(done[p.id]["status"] == "failed" for p in points)
    return SweepReport(out, len(points), len(points) - len(todo), len(todo), failed, results)


def _grid_dict(grid: Grid) -> dict:
    data: dict[str, Any] = {"command": grid.command, "name": grid.name, "seed": grid.seed}
    if grid.seed_by is not None:
        data["seed_by"] = "all" if grid.seed_by == ["*"] else grid.seed_by
    data["base"] = grid.base
    data["axes"] = grid.axes
    return data


def write_results(grid: Grid, points: list[Point], done: dict[str, dict], out: Path) -> pd.DataFrame:
    """results.csv (deterministic outputs), timings.csv (wall-clock) and summary.png, in the grid's order."""
    rows, timing_rows = [], []
    for point in points:
        record = done.get(point.id)
        if record is None:
            continue
        head = {"point": point.index, "id": point.id, **_flat(point.params), "run_seed": point.run_seed}
        metrics = record.get("metrics") or {}
        row = {**head, "run_status": record["status"], "error": record.get("error", "")}
        for key in METRICS[grid.command]:
            row[key] = metrics.get(key)
        row.update({k: v for k, v in metrics.items() if k not in row and not k.endswith("_s")})
        rows.append(row)
        timings = {k: v for k, v in metrics.items() if k.endswith("_s")}
        timing_rows.append({**head, "wall_s": record.get("wall_s"), **timings, "host": record.get("host")})
    results = pd.DataFrame(rows)
    _write_csv(results, out / "results.csv")
    _write_csv(pd.DataFrame(timing_rows), out / "timings.csv")
    if len(results):
        plot_summary(grid, results, out / "summary.png")
        from pslsched.app.report import (
            sweep_report,
            write_report,
        )  # plotly only where a sweep writes its page

        metrics = [m for m in METRICS[grid.command] if m in results and m not in ("clients", "helpers")]
        write_report(out / "report.html", sweep_report(results, list(grid.axes), metrics, grid.name))
    return results


def _flat(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, (int, float, str, bool)) or v is None else str(v) for k, v in params.items()
    }


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    write_atomically(path, lambda p: frame.to_csv(p, index=False))


def print_progress(total: int) -> Callable[[Point, dict, dict[str, int]], None]:
    """A progress bar on a terminal (points done, failed, remaining); one line per point otherwise."""
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit="point", file=sys.stderr)

    def update(point: Point, outcome: dict, counts: dict[str, int]) -> None:
        state = f"done {counts['done']}, failed {counts['failed']}, remaining {counts['remaining']}"
        if bar is not None:
            bar.set_postfix_str(state)
            bar.update(1)
            if counts["remaining"] == 0:
                bar.close()
            return
        params = " ".join(f"{k}={v}" for k, v in point.params.items())
        status = outcome["status"] + (f" ({outcome.get('error')})" if outcome["status"] == "failed" else "")
        print(f"point {point.index} {status}: {params}  [{state}]", file=sys.stderr, flush=True)

    return update
