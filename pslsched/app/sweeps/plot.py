"""summary.png: a sweep's main outputs against its first varied axis, one line per value of the second."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pslsched.app.sweeps.grid import Grid
from pslsched.base.files import write_atomically

PLOTTED = {
    "solve": [("makespan_ms", "makespan (ms)"), ("gap", "gap to the lower bound (fraction)")],
    "simulate": [("mean_makespan_ms", "mean makespan (ms)"), ("p95_makespan_ms", "p95 makespan (ms)")],
    "train": [
        ("final_accuracy", "final test accuracy"),
        ("time_to_accuracy_ms", "time to target (ms, virtual)"),
    ],
}


def plot_summary(grid: Grid, results: pd.DataFrame, path: Path) -> None:
    """Mean over the other axes (seeds, ...) with their min-max range; a categorical first axis as categories (markers,
    no lines); points whose value is missing (a target never reached) marked at the axis; failed points left out."""
    import matplotlib  # a headless backend only when a file is written (a notebook keeps its inline one)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = results[results["run_status"] == "ok"]
    varied = [a for a, values in grid.axes.items() if len(values) > 1 and a != "seed"]
    x_axis = varied[0] if varied else next(iter(grid.axes))
    line_axis = varied[1] if len(varied) > 1 else None
    ok = ok.assign(**{m: pd.to_numeric(ok[m], errors="coerce") for m, _ in PLOTTED[grid.command] if m in ok})
    panels = [(m, label) for m, label in PLOTTED[grid.command] if m in ok and ok[m].notna().any()]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.5 * max(1, len(panels)), 4), squeeze=False)
    # a categorical first axis (solver, strategy, ...) is drawn as categories side by side, never joined by lines
    categorical = pd.to_numeric(ok[x_axis], errors="coerce").isna().any() if len(ok) else True
    order = list(dict.fromkeys(str(v) for v in ok[x_axis]))
    for ax, (metric, label) in zip(axes[0], panels):
        groups = list(ok.groupby(line_axis, sort=False)) if line_axis else [(None, ok)]
        width = 0.6 / max(1, len(groups))
        for g, (value, frame) in enumerate(groups):
            keys = frame[x_axis].astype(str)
            stats = frame.groupby(keys, sort=False)[metric].agg(["mean", "min", "max"])
            name = None if line_axis is None else f"{line_axis}={value}"
            reached = stats.dropna()
            if categorical:
                pos = [order.index(k) + (g - (len(groups) - 1) / 2) * width for k in reached.index]
                # equal values' mean can sit an ulp outside them: no negative error bars
                err = [
                    (reached["mean"] - reached["min"]).clip(lower=0),
                    (reached["max"] - reached["mean"]).clip(lower=0),
                ]
                ax.errorbar(pos, reached["mean"], yerr=err, fmt="o", ls="none", capsize=3, label=name)
            elif not reached.empty:
                x = list(reached.index)
                ax.plot(x, reached["mean"], marker="o", label=name)
                ax.fill_between(x, reached["min"], reached["max"], alpha=0.15)
            missing = frame[frame[metric].isna()].groupby(keys, sort=False).size()
            for key, count in missing.items():  # a point that never reached its target is shown, not dropped
                where = order.index(key) + (g - (len(groups) - 1) / 2) * width if categorical else key
                ax.plot(
                    [where], [0], marker="v", color="red", clip_on=False, transform=ax.get_xaxis_transform()
                )
                ax.annotate(
                    f"{count} not reached",
                    (where, 0.02),
                    xycoords=("data", "axes fraction"),
                    fontsize=7,
                    color="red",
                    ha="center",
                    rotation=90,
                    va="bottom",
                )
        if categorical:
            ax.set_xticks(range(len(order)), order)
        ax.set_xlabel(x_axis)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if line_axis:
            ax.legend(fontsize=8)
    if not panels:
        axes[0][0].text(0.5, 0.5, "no successful point", ha="center", va="center")
    failed = int((results["run_status"] != "ok").sum())
    title = f"sched sweep {grid.name}: {grid.command}, {len(ok)} point(s)" + (
        f", {failed} failed" if failed else ""
    )
    rest = [a for a in grid.axes if a not in (x_axis, line_axis)]
    if rest:
        title += f"\nmean over {', '.join(rest)} (bars or band: min-max)"
    fig.suptitle(title)
    fig.tight_layout()
    try:
        write_atomically(path, lambda p: fig.savefig(p, dpi=110))
    finally:
        plt.close(fig)
