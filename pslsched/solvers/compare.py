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
    "lower_bound_ms",  # the instance's: the best bound any solver proved (one per instance)
    "gap_%",
    "runtime_s",
    "own_bound_ms",  # the bound the solver proved itself
]
VS_RANDOM = "reduction_vs_random_%"  # a column only when random ran
OPTIMAL_REL = 1e-9  # a makespan this close to the instance's bound is proved optimal by it


def compare(
    instance: Instance,
    solvers: Sequence[str] | None = None,
    *,
    time_limit: float | None = 10.0,
    seed: int = 0,
    on_result: Callable[[str], None] | None = None,
    schedules: dict | None = None,
    **options,
) -> pd.DataFrame:
    """One row per solver: status, validity, makespan, the instance's lower bound (the best any solver proved, one
    per instance), the gap to it, runtime, the solver's own bound, and the makespan reduction versus ``random``
    (a column only when random ran); ``options`` go to every solver (e.g. ``workers``). A makespan that meets the
    instance's bound is ``optimal`` whichever solver proved the bound. Every schedule goes through the validator; an
    invalid one is reported with ``valid = False`` and no makespan. ``schedules``, when given, receives each valid
    schedule by solver name."""
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
                    "round_ms": np.nan,
                    "own_bound_ms": np.nan,
                    "runtime_s": np.nan,
                }
            )
            continue
        problems = validate(instance, res.schedule) if res.schedule is not None else []
        valid = res.schedule is not None and not problems
        if valid and schedules is not None:
            schedules[name] = res.schedule
        rows.append(
            {
                "solver": name,
                "status": res.status if not problems else "invalid",
                "valid": valid,
                "makespan_ms": res.makespan if valid else np.nan,
                "round_ms": res.objective if valid else np.nan,
                # a solver whose schedule fails the validator is buggy: its bound is not trusted either
                "own_bound_ms": res.lower_bound if not problems else np.nan,
                "runtime_s": res.runtime_s,
            }
        )
        if on_result:
            on_result(name)
    table = pd.DataFrame(rows)
    # with a round-end exchange the planned quantity (and the bounds) is the round time (problem.md §1)
    obj = "round_ms" if instance.exchange is not None else "makespan_ms"
    best = float(table["own_bound_ms"].max()) if table["own_bound_ms"].notna().any() else np.nan
    table["lower_bound_ms"] = best
    gap = 100 * (table[obj] - best) / best if best > 0 else np.full(len(table), np.nan)
    table["gap_%"] = np.maximum(0.0, gap)  # a makespan never beats a valid bound: rounding only, no -0.00
    proved = table["valid"] & (table[obj] <= best * (1 + OPTIMAL_REL) + 1e-9)
    table.loc[proved, "status"] = "optimal"
    columns = list(COLUMNS)
    if obj == "round_ms":
        columns.insert(columns.index("makespan_ms") + 1, "round_ms")
    rnd = table.loc[table["solver"] == "random", obj]
    if len(rnd) and not np.isnan(rnd.iloc[0]):
        table[VS_RANDOM] = 100 * (1 - table[obj] / float(rnd.iloc[0]))
        columns.append(VS_RANDOM)
    return table[columns]


def plot_compare(table: pd.DataFrame, path, title: str = "") -> None:
    """Bar chart of the makespans (from zero, each with its gap to the bound) and the instance's bound as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(table) + 2), 4))
    obj = "round_ms" if "round_ms" in table else "makespan_ms"
    values = table[obj].fillna(0).to_numpy() / 1000
    colors = ["tab:blue" if v else "lightgray" for v in table["valid"]]
    ax.bar(table["solver"], values, color=colors)
    best = float(table["lower_bound_ms"].iloc[0]) / 1000
    ax.axhline(best, color="red", linestyle="--", linewidth=1, label=f"best lower bound {best:.3f} s")
    for x, (v, ok, gap) in enumerate(zip(values, table["valid"], table["gap_%"])):
        label = f"{v:.2f} (+{gap:.1f}%)" if ok and gap == gap else ("none" if not ok else f"{v:.2f}")
        ax.text(x, v, label, ha="center", va="bottom", fontsize=8)
    ax.set_ylim(bottom=0.0)  # a bar's length is the makespan: from zero, so small spreads look small
    ax.set_ylabel("round time (s)" if obj == "round_ms" else "makespan (s)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
