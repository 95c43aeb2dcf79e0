"""summary.png: a sweep's main outputs against its first varied axis, one line per value of the second."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pslsched.app.sweeps.grid import Grid

PLOTTED = {
    "solve": [("makespan_ms", "makespan (ms)"), ("gap", "gap to the lower bound")],
    "simulate": [("mean_makespan_ms", "mean makespan (ms)"), ("p95_makespan_ms", "p95 makespan (ms)")],
    "train": [
        ("final_accuracy", "final test accuracy"),
        ("time_to_accuracy_ms", "time to target (ms, virtual)"),
    ],
}


def plot_summary(grid: Grid, results: pd.DataFrame, path: Path) -> None:
    """Mean over the other axes (seeds, ...) with their min-max range; failed points are left out."""
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
    for ax, (metric, label) in zip(axes[0], panels):
        groups = ok.groupby(line_axis, sort=False) if line_axis else [(None, ok)]
        for value, frame in groups:
            stats = frame.groupby(x_axis, sort=False)[metric].agg(["mean", "min", "max"]).dropna()
            if stats.empty:
                continue
            x = [str(v) for v in stats.index]
            ax.plot(x, stats["mean"], marker="o", label=None if line_axis is None else f"{line_axis}={value}")
            ax.fill_between(x, stats["min"], stats["max"], alpha=0.15)
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
        title += f"\nmean over {', '.join(rest)} (band: min-max)"
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
