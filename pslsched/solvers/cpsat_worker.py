"""The CP-SAT worker process's loop: requests in on stdin, progress and answers out on a private copy of stdout.

Started by :mod:`pslsched.solvers.cpsat_client` (OR-Tools and highspy bundle incompatible copies of ``libhighs.so.1``,
so CP-SAT runs in its own process); the model itself is :mod:`pslsched.solvers.cpsat_model`.
"""

from __future__ import annotations

import time

from pslsched.solvers.cpsat_model import run_cpsat


def serve() -> None:
    """Worker loop: read pickled requests ``(instance, kwargs)`` from stdin, answer with pickled messages
    ``("progress", elapsed, makespan, bound)`` during the search and ``("done", CpOutcome)`` at the end.
    The answers go to a private copy of the stdout pipe; fd 1 itself is pointed at stderr, so that nothing
    OR-Tools might print can corrupt them (or reach the parent's stdout)."""
    import os
    import pickle
    import sys

    sys.stdout.flush()
    inp, out = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)

    def send(msg) -> None:
        pickle.dump(msg, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    while True:
        try:
            instance, kwargs = pickle.load(inp)
        except EOFError:
            return
        transit = max(0.0, time.time() - float(kwargs.pop("sent_at", time.time())))
        elapsed0 = float(kwargs.pop("elapsed0", 0.0)) + transit
        t0 = time.perf_counter() - elapsed0
        if "time_limit" in kwargs:
            kwargs["time_limit"] = max(0.05, float(kwargs["time_limit"]) - transit)
        wants_progress = bool(kwargs.pop("progress", False))

        def report(elapsed: float, makespan: float, bound: float) -> None:
            send(("progress", elapsed, makespan, bound))

        try:
            result = run_cpsat(instance, progress=report if wants_progress else None, t0=t0, **kwargs)
            send(("done", result))
        except Exception as exc:  # report, keep serving
            send(("error", f"{type(exc).__name__}: {exc}"))
