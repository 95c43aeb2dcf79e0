"""What the reproduction benchmarks share: a testbed scaled and solved once, a dataset loaded once, table helpers.

The reproductions solve the testbed's own instance (one batch per client at the profile's batch size) and train on
its clock, as the published setups do; ``pslsched.app`` (``app.plan``) would solve the training round instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pslsched.core.testbed import build, default_testbed_path, load_testbed, scale_clients
from pslsched.solvers import solve
from pslsched.training import load_dataset, seeds

# The testbed the reproductions of docs/reproduction.md were measured on: the former default (memory forces the
# assignment), kept as an example when the Tirana et al. scenario became the default.
REPRODUCTION_TESTBED = default_testbed_path().parent / "examples" / "forced_memory.yaml"

_solved: dict = {}
_datasets: dict = {}


def solved_testbed(
    path: Path | None,
    k: int | None,
    solver: str = "greedy",
    *,
    memory_mb: float | None = None,
    time_limit: float = 10.0,
):
    """(instance, workload, schedule) of a testbed scaled to k clients (helpers' memory set to ``memory_mb``),
    solved once per argument set."""
    key = (str(path), k, solver, memory_mb, time_limit)
    if key not in _solved:
        tb = load_testbed(path or REPRODUCTION_TESTBED)
        if k is not None:
            tb = scale_clients(tb, k)
        if memory_mb is not None:
            tb = tb.model_copy(
                update={"helpers": [h.model_copy(update={"memory_mb": memory_mb}) for h in tb.helpers]}
            )
        built = build(tb)
        options = {"workers": 1} if solver == "auto" else {}
        res = solve(built.instance, solver, time_limit=time_limit, seed=0, **options)
        if res.schedule is None or res.schedule.assignment is None:
            raise SystemExit(
                f"{solver} found no schedule for {path or 'the default testbed'} with {k} clients"
            )
        _solved[key] = (built.instance, built.workload, res.schedule)
    return _solved[key]


def dataset(name: str, seed: int):
    """The dataset split as a training run with ``seed`` splits it, loaded once."""
    key = (name, seed)
    if key not in _datasets:
        _datasets[key] = load_dataset(name, None, seed=seeds(seed)["split"])
    return _datasets[key]


def fmt(values, digits: int = 1, scale: float = 1.0) -> str:
    """mean [min, max] over seeds (just the value for one seed; '-' for none)."""
    v = np.array([x for x in values if x is not None and not pd.isna(x)], dtype=float) * scale
    if len(v) == 0:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} [{v.min():.{digits}f}, {v.max():.{digits}f}]"


def md(df: pd.DataFrame) -> str:
    """A frame as a Markdown table."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(lines)
