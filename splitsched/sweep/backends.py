"""Where a sweep's points run: a local process pool, or Ray tasks (this machine or a cluster).

A backend takes the points still to run and calls ``done(point, outcome)`` in the driver as each finishes; the
driver writes the result files, so workers need no shared file system.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from splitsched.errors import InputError
from splitsched.sweep.grid import Point
from splitsched.sweep.runner import cpus_per_point, run_point

Done = Callable[[Point, dict], None]
BACKENDS = ("local", "ray")
RAY_HINT = "Ray is not installed: pip install 'psl-sched[cluster]' (or pip install ray)"


def run_local(command: str, points: Sequence[Point], work: Path, done: Done, workers: int | None) -> None:
    """A pool of fresh processes (spawned: no torch state forked from the driver), ``workers`` at a time."""
    if not points:
        return
    if workers is None:
        per = max(cpus_per_point(p.options) for p in points)
        workers = max(1, (os.cpu_count() or 1) // per)
    workers = min(workers, len(points))
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        pending = {
            pool.submit(run_point, command, p.options, p.run_seed, str(work / p.id)): p for p in points
        }
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                point = pending.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # the worker process died (killed, out of memory)
                    outcome = {"status": "failed", "error": f"worker lost: {type(exc).__name__}: {exc}"}
                done(point, outcome)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        raise
    pool.shutdown(wait=True)


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_ray(
    command: str,
    points: Sequence[Point],
    work: Path,
    done: Done,
    workers: int | None,
    address: str | None,
) -> None:
    """Each point a Ray task with ``num_cpus`` = its CP-SAT workers / torch threads.

    Without ``address`` a local Ray instance is started (``workers`` CPUs, default all); with one, the sweep
    joins that cluster (``ray.init(address=...)``, e.g. ``auto`` or ``ray://head:10001``), whose nodes need
    psl-sched installed.
    """
    if not ray_available():
        raise InputError("--backend", RAY_HINT)
    import logging

    import ray

    if not points:
        return
    started = not ray.is_initialized()
    if started:
        kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=workers or os.cpu_count() or 1, **kwargs)
    try:
        largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0)
        need = max(cpus_per_point(p.options) for p in points)
        if need > largest:
            raise InputError(
                "workers/threads", f"a point needs {need} CPUs but the largest Ray node has {largest:g}"
            )
        task = ray.remote(run_point)
        refs = {
            task.options(num_cpus=cpus_per_point(p.options), max_retries=1).remote(
                command, p.options, p.run_seed, str(work / p.id)
            ): p
            for p in points
        }
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            point = refs.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except Exception as exc:  # the task's worker died or the cluster lost it
                outcome = {"status": "failed", "error": f"ray task lost: {type(exc).__name__}: {exc}"}
            done(point, outcome)
    finally:
        if started:  # also ends the tasks still running when the sweep is interrupted
            ray.shutdown()
