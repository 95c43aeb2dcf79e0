"""The application layer: the use-cases over one experiment description, for the CLI, notebooks and benchmarks.

Every front end calls these (the CLI only parses, calls and prints)::

    from pslsched import app
    outcome = app.solve(app.SolveRequest(solver="greedy", time_limit=10))
    outcome.result.makespan, outcome.result.lower_bound, outcome.violations
    run = app.train(app.TrainRequest(dataset="digits", rounds=3, threads=1))
    run.result.summary()["final_accuracy"]

A request (``pslsched.app.requests``) holds the options of one ``sched`` command, checked on construction; an
``Experiment`` (``pslsched.app.experiment``) is what it resolves to: testbed -> built instance -> the round the
clock runs -> settings. Use-cases: ``solve``, ``compare``, ``simulate``, ``compare_policies``, ``train``,
``resume``, ``compare_solvers``, ``generate``, ``run_sweep``. Names are loaded on first use, so planning never
imports the training room (torch).
"""

from __future__ import annotations

from importlib import import_module

_WHERE = {
    "Experiment": "experiment",
    "source_instance": "experiment",
    "simulation_experiment": "experiment",
    "SolveRequest": "requests",
    "CompareRequest": "requests",
    "SimulateRequest": "requests",
    "TrainRequest": "requests",
    "GenerateRequest": "requests",
    "solve": "solving",
    "compare": "solving",
    "plan": "solving",
    "default_solver": "solving",
    "SolveOutcome": "solving",
    "simulate": "simulating",
    "compare_policies": "simulating",
    "SimulateOutcome": "simulating",
    "train": "training",
    "resume": "training",
    "compare_solvers": "training",
    "training_experiment": "training",
    "TrainOutcome": "training",
    "generate": "generating",
    "generate_to": "generating",
    "run_sweep": "sweeps",
    "parse_grid": "sweeps",
    "load_grid": "sweeps",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'pslsched.app' has no attribute {name!r}")
    return getattr(import_module(f"pslsched.app.{_WHERE[name]}"), name)
