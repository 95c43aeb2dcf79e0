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

from pslsched.app.sweeps.grid import Point
from pslsched.app.sweeps.runner import cpus_per_point, run_point
from pslsched.base.errors import InputError

Done = Callable[[Point, dict], None]
BACKENDS = ("local", "ray")
RAY_HINT = "Ray is not installed: pip install 'psl-sched[cluster]' (or pip install ray)"


class LocalPool:
    """A pool of fresh processes (spawned: no torch state forked from the driver), ``workers`` at a time.

    ``warm()`` starts the workers and has them import what the command needs (torch, scikit-learn, the solvers: a
    few seconds per process) while the driver is still checking the grid; nothing of a point runs before
    ``run``. ``close()`` ends the workers (also after an interruption or a refused grid)."""

    def __init__(self, command: str, points: Sequence[Point], workers: int | None):
        self.command = command
        if (
            workers is None
        ):  # as many points at a time as the CPUs hold (a point's threads capped at all CPUs)
            cpus = os.cpu_count() or 1
            per = max((min(cpus, cpus_per_point(command, p.options)) for p in points), default=1)
            workers = max(1, cpus // per)
        self.workers = max(1, min(workers, len(points)))
        self.pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
        )

    def warm(self) -> None:
        for _ in range(self.workers):
            self.pool.submit(warm_imports, self.command)

    def run(self, points: Sequence[Point], work: Path, done: Done) -> None:
        pending = {
            self.pool.submit(run_point, self.command, p.options, p.run_seed, str(work / p.id)): p
            for p in points
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

    def close(self, wait_for_workers: bool = True) -> None:
        if wait_for_workers:
            self.pool.shutdown(wait=True)
            return
        self.pool.shutdown(wait=False, cancel_futures=True)
        for proc in list((getattr(self.pool, "_processes", None) or {}).values()):
            proc.terminate()


def warm_imports(command: str) -> None:
    """Import what a point of ``command`` imports on first use (run in a fresh worker)."""
    from pslsched import solvers  # noqa: F401
    from pslsched.app import simulating, solving  # noqa: F401

    if command == "train":
        import sklearn.datasets  # noqa: F401
        import torch._dynamo  # noqa: F401  (torch.optim's first optimizer imports it)

        from pslsched.app import training  # noqa: F401


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
    """Each point a Ray task with ``num_cpus`` = its CP-SAT workers / torch threads (at most a node's CPUs).

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
        # a point reserves its threads' CPUs, at most a whole node (more would never be scheduled)
        largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=1)
        task = ray.remote(run_point)
        refs = {
            task.options(num_cpus=min(largest, cpus_per_point(command, p.options)), max_retries=1).remote(
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
