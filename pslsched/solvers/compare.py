"""All (or some) registered solvers side by side on one instance: a table a notebook can use in three lines.

from pslsched.solvers.compare import compare
table = compare(instance, ["random", "greedy", "equid", "auto"], time_limit=10)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from pslsched.core.instance import Instance
from pslsched.core.validate import validate
from pslsched.solvers.registry import available_solvers, solve

COLUMNS = [
    "solver",
    "status",
    "valid",
    "makespan_ms",
    "lower_bound_ms",
    "best_lower_bound_ms",
    "gap_%",
    "runtime_s",
    "reduction_vs_random_%",
]


def compare(
    instance: Instance,
    solvers: Sequence[str] | None = None,
    *,
    time_limit: float | None = 10.0,
    seed: int = 0,
    on_result: Callable[[str], None] | None = None,
    **options,
) -> pd.DataFrame:
    """One row per solver: status, validity, makespan, its own and the best lower bound, gap, runtime, and the
    makespan reduction versus ``random`` (when it ran); ``options`` go to every solver (e.g. ``workers``). Every
    schedule goes through the validator; an invalid one is reported with ``valid = False`` and no makespan."""
    names = list(solvers) if solvers else sorted(available_solvers())
    rows = []
    for name in names:
        try:
            res = solve(instance, name, time_limit=time_limit, seed=seed, **options)
        except Exception as exc:  # one failing solver must not hide the others' rows
            rows.append(
                {
                    "solver": name,
                    "status": f"error: {type(exc).__name__}: {exc}",
                    "valid": False,
                    "makespan_ms": np.nan,
                    "lower_bound_ms": np.nan,
                    "runtime_s": np.nan,
                }
            )
            continue
        problems = validate(instance, res.schedule) if res.schedule is not None else []
        valid = res.schedule is not None and not problems
        rows.append(
            {
                "solver": name,
                "status": res.status if not problems else "invalid",
                "valid": valid,
                "makespan_ms": res.makespan if valid else np.nan,
                # a solver whose schedule fails the validator is buggy: its bound is not trusted either
                "lower_bound_ms": res.lower_bound if not problems else np.nan,
                "runtime_s": res.runtime_s,
            }
        )
        if on_result:
            on_result(name)
    table = pd.DataFrame(rows)
    best = float(table["lower_bound_ms"].max()) if table["lower_bound_ms"].notna().any() else np.nan
    table["best_lower_bound_ms"] = best
    table["gap_%"] = 100 * (table["makespan_ms"] - best) / best if best > 0 else np.nan
    rnd = table.loc[table["solver"] == "random", "makespan_ms"]
    base = float(rnd.iloc[0]) if len(rnd) and not np.isnan(rnd.iloc[0]) else np.nan
    table["reduction_vs_random_%"] = 100 * (1 - table["makespan_ms"] / base)
    return table[COLUMNS]


def plot_compare(table: pd.DataFrame, path, title: str = "") -> None:
    """Bar chart of the makespans with the best lower bound as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(table) + 2), 4))
    values = table["makespan_ms"].fillna(0).to_numpy() / 1000
    colors = ["tab:blue" if v else "lightgray" for v in table["valid"]]
    ax.bar(table["solver"], values, color=colors)
    best = float(table["best_lower_bound_ms"].iloc[0]) / 1000
    ax.axhline(best, color="red", linestyle="--", linewidth=1, label=f"best lower bound {best:.3f} s")
    for x, (v, ok) in enumerate(zip(values, table["valid"])):
        ax.text(x, v, f"{v:.2f}" if ok else "none", ha="center", va="bottom", fontsize=8)
    low = min([best, *[v for v in values if v > 0]])
    ax.set_ylim(bottom=max(0.0, low * 0.9))
    ax.set_ylabel("makespan (s)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
