"""Where a sweep's points run: a local process pool, or Ray tasks (this machine or a cluster).

A backend takes the points still to run and calls ``done(point, outcome)`` in the driver as each finishes; the
driver writes the result files, so workers need no shared file system.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

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
    ``run``. ``close()`` ends the workers (also after an interruption or a refused grid).

    A worker that dies (killed, out of memory: ``BrokenProcessPool``) fails only the point it was running: each
    point marks its start in its work folder with the worker's pid, so the point of the worker that died is
    recorded as failed, a fresh pool replaces the broken one and every other point (running in a worker the
    broken pool ended, or never started) runs there. Workers die with the driver (``watch_parent``)."""

    def __init__(self, command: str, points: Sequence[Point], workers: int | None):
        self.command = command
        if (
            workers is None
        ):  # as many points at a time as the CPUs hold (a point's threads capped at all CPUs)
            cpus = os.cpu_count() or 1
            per = max((min(cpus, cpus_per_point(command, p.options)) for p in points), default=1)
            workers = max(1, cpus // per)
        self.workers = max(1, min(workers, len(points)))
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=watch_parent,
            initargs=(os.getpid(),),
        )

    def warm(self) -> None:
        for _ in range(self.workers):
            self.pool.submit(warm_imports, self.command)

    def run(self, points: Sequence[Point], work: Path, done: Done) -> None:
        queue = list(points)
        while queue:
            queue = self._run_until_broken(queue, work, done)

    def _run_until_broken(self, points: Sequence[Point], work: Path, done: Done) -> list[Point]:
        """Run ``points`` on the current pool; if it breaks, fail the lost worker's point, replace the pool and
        return the points still to run."""
        pending = {
            self.pool.submit(run_marked, self.command, p.options, p.run_seed, str(work / p.id)): p
            for p in points
        }
        processes: dict[int, Any] = {}
        lost: list[Point] = []
        while pending:
            processes.update(getattr(self.pool, "_processes", None) or {})
            finished, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in finished:
                point = pending.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    lost.append(point)
                    continue
                except Exception as exc:  # the point's result could not come back (unpicklable, ...)
                    outcome = {"status": "failed", "error": f"worker error: {type(exc).__name__}: {exc}"}
                done(point, outcome)
        if not lost:
            return []
        processes.update(getattr(self.pool, "_processes", None) or {})
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = self._new_pool()
        culprits = _culprits(lost, work, processes)
        for point in lost:
            if point.id in culprits:
                why = culprits[point.id]
                done(point, {"status": "failed", "error": f"worker lost ({why}) while running this point"})
        return [p for p in lost if p.id not in culprits]

    def close(self, wait_for_workers: bool = True) -> None:
        if wait_for_workers:
            self.pool.shutdown(wait=True)
            return
        self.pool.shutdown(wait=False, cancel_futures=True)
        for proc in list((getattr(self.pool, "_processes", None) or {}).values()):
            proc.terminate()


STARTED = ".started"  # a point's work-folder marker: the pid of the worker running it


def run_marked(command: str, options: dict[str, Any], run_seed: int, workdir: str) -> dict:
    """``run_point`` with its start marked in ``workdir`` (the worker's pid; removed when the point returns)."""
    marker = Path(workdir) / STARTED
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    try:
        return run_point(command, options, run_seed, workdir)
    finally:
        marker.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            Path(workdir).rmdir()  # an empty folder (a finished point's, tidied)


def _started_by(workdir: Path) -> int | None:
    try:
        return int((workdir / STARTED).read_text())
    except (OSError, ValueError):
        return None


def _culprits(lost: list[Point], work: Path, processes: dict[int, Any]) -> dict[str, str]:
    """The lost points (by id) whose worker died by itself (not ended by the broken pool with SIGTERM), with how
    it died; if none is known to have, every lost point that had started. Their start markers are removed."""
    started: dict[str, Any] = {}
    for point in lost:
        pid = _started_by(work / point.id)
        if pid is not None:
            started[point.id] = processes.get(pid)
        (work / point.id / STARTED).unlink(missing_ok=True)
    died: dict[str, str] = {}
    for key, proc in started.items():
        if proc is None:
            continue
        proc.join(timeout=5)
        code = proc.exitcode
        if code is not None and code != -signal.SIGTERM:
            died[key] = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    return died or {key: "the pool broke" for key in started}


def watch_parent(parent: int) -> None:
    """A worker's initializer: end this process when the driver ``parent`` dies (Linux: the kernel's
    parent-death signal, ``prctl(PR_SET_PDEATHSIG, SIGTERM)``; elsewhere, and as a fallback, a thread that polls
    the parent's pid every second)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent:  # the driver died before the signal was armed
        os._exit(1)

    def poll() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=poll, name="watch-parent", daemon=True).start()


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
