"""Human-readable reports of a SolveResult: a text summary, a CSV of tasks and a Gantt chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult
from pslsched.core.schedule import Schedule


def helper_table(instance: Instance, schedule: Schedule) -> pd.DataFrame:
    """Per helper: clients, memory used, busy time (load) and utilisation over the makespan."""
    rows = []
    span = schedule.makespan or 0.0
    busy = {h: 0.0 for h in instance.helpers}
    for t in schedule.tasks:
        busy[t.helper] += t.end - t.start
    for i, h in enumerate(instance.helpers):
        members = [c for c, a in schedule.assignment.items() if a == h]
        mem = float(sum(instance.demand[instance.client_index[c]] for c in members))
        if instance.body_memory is not None and members:
            mem += float(instance.body_memory[i])  # the one shared body
        rows.append(
            {
                "helper": h,
                "clients": len(members),
                "memory_mb": mem,
                "capacity_mb": float(instance.capacity[i]),
                "load_ms": busy[h],
                "utilisation": busy[h] / span if span > 0 else 0.0,
            }
        )
    local = sum(1 for a in schedule.assignment.values() if a is None)
    if local:
        rows.append(
            {
                "helper": "(local)",
                "clients": local,
                "memory_mb": 0.0,
                "capacity_mb": float("nan"),
                "load_ms": 0.0,
                "utilisation": float("nan"),
            }
        )
    return pd.DataFrame(rows)


def summary_text(instance: Instance, result: SolveResult) -> str:
    """The text `sched solve` prints."""
    lines = [
        f"instance   {instance.name}  ({instance.num_clients} clients, {instance.num_helpers} helpers"
        + (f", {instance.batches} batches" if instance.batches > 1 else "")
        + ")",
        f"solver     {result.solver}",
        f"status     {result.status}",
    ]
    if result.makespan is not None:
        lines.append(f"makespan   {result.makespan:.3f} ms  ({result.makespan / 1000:.3f} s)")
    if result.round_time is not None:
        lines.append(
            f"exchange   {result.exchange_ms:.3f} ms  (round-end weights: upload, averaging, download)"
        )
        lines.append(f"round      {result.round_time:.3f} ms  ({result.round_time / 1000:.3f} s)")
    if instance.exchange is not None:
        # the parts are the solved (folded) makespan's; the round adds the averaging and the downloads
        lines.append(
            f"lower bnd  {result.lower_bound:.3f} ms on the round  (solved makespan's: {_bound_parts(result)})"
        )
    else:
        lines.append(f"lower bnd  {result.lower_bound:.3f} ms  ({_bound_parts(result)})")
    if result.gap is not None:
        lines.append(f"gap        {100 * result.gap:.2f} %")
    lines.append(f"runtime    {result.runtime_s:.3f} s")
    if result.message:
        lines.append(f"note       {result.message}")
    if result.schedule is not None and result.schedule.tasks is not None:
        table = helper_table(instance, result.schedule)
        lines.append("")
        if instance.body_memory is not None:
            lines.append("memory     one shared body per helper + each client's activations")
        lines.append(f"{'helper':<16}{'clients':>8}{'memory MB':>14}{'load ms':>14}{'util':>8}")
        for row in table.itertuples():
            cap = "" if np.isnan(row.capacity_mb) else f"/{row.capacity_mb:.0f}"
            util = "" if np.isnan(row.utilisation) else f"{100 * row.utilisation:.1f}%"
            lines.append(
                f"{row.helper:<16}{row.clients:>8}{f'{row.memory_mb:.0f}{cap}':>14}{row.load_ms:>14.1f}{util:>8}"
            )
    return "\n".join(lines)


def _bound_parts(result: SolveResult) -> str:
    parts = [f"{k} {v:.1f}" for k, v in result.bounds.items() if k != "best" and v is not None]
    return ", ".join(parts) if parts else "none"


def schedule_frame(schedule: Schedule) -> pd.DataFrame:
    """One row per task, sorted by helper and start."""
    frame = pd.DataFrame(
        [
            {
                "helper": t.helper,
                "client": t.client,
                "batch": t.batch,
                "phase": t.phase,
                "start_ms": t.start,
                "end_ms": t.end,
                "duration_ms": t.end - t.start,
            }
            for t in schedule.tasks
        ],
        columns=["helper", "client", "batch", "phase", "start_ms", "end_ms", "duration_ms"],
    )
    return frame.sort_values(["helper", "start_ms"], kind="stable").reset_index(drop=True)


def write_schedule_csv(schedule: Schedule, path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    schedule_frame(schedule).to_csv(tmp, index=False)
    tmp.replace(path)


DETAILED_TASKS = 4_000  # above: one bar collection per helper and phase, no per-task edges or labels


def _draw_aggregated(ax, helpers: list[str], schedule: Schedule) -> None:
    """A large schedule's chart: each helper's forward and backward passes as two bar collections (what no eye
    can read task by task is drawn in one call per row, in seconds rather than minutes)."""
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for t in schedule.tasks:
        rows.setdefault((t.helper, t.phase), []).append((t.start, t.end - t.start))
    for (helper, phase), bars in rows.items():
        y = helpers.index(helper)
        h = 0.7 if phase == "fwd" else 0.5
        color = "tab:blue" if phase == "fwd" else "tab:orange"
        ax.broken_barh(bars, (y - h / 2, h), facecolors=color, linewidth=0)


def draw_gantt(ax, instance: Instance, schedule: Schedule, title: str) -> None:
    """Draw one Gantt chart on ``ax``: a row per helper, tasks coloured and (where they fit) labelled by client,
    backward passes hatched (above ``DETAILED_TASKS`` tasks: forward and backward passes per helper, aggregated);
    report.html has the interactive one with the clients' own rows."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    helpers = list(instance.helpers)
    cmap = plt.get_cmap("tab20")
    span = max((t.end for t in schedule.tasks), default=0.0) or 1.0
    if len(schedule.tasks) > DETAILED_TASKS:
        _draw_aggregated(ax, helpers, schedule)
    for t in schedule.tasks if len(schedule.tasks) <= DETAILED_TASKS else ():
        y = helpers.index(t.helper)
        color = cmap(instance.client_index[t.client] % 20)
        ax.barh(
            y,
            t.end - t.start,
            left=t.start,
            height=0.7 if t.phase == "fwd" else 0.5,
            color=color,
            edgecolor="black",
            linewidth=0.3,
            hatch="//" if t.phase == "bwd" else None,
        )
        if t.phase == "fwd" and t.end - t.start > 0.04 * span:  # the client's name where it fits
            ax.text((t.start + t.end) / 2, y, t.client, ha="center", va="center", fontsize=6, clip_on=True)
    ax.set_yticks(range(len(helpers)), helpers)
    ax.set_ylim(len(helpers) - 0.5, -0.5)
    ax.set_xlabel("time (ms)")
    if schedule.makespan is not None:
        ax.axvline(schedule.makespan, color="red", linestyle="--", linewidth=1)
    ax.set_title(title)
    ax.legend(
        handles=[
            Patch(facecolor="lightgray", edgecolor="black", label="body forward"),
            Patch(facecolor="lightgray", edgecolor="black", hatch="//", label="body backward"),
            Patch(
                facecolor="white",
                edgecolor="red",
                linestyle="--",
                label="makespan (ends with the\nlast client's tail)",
            ),
        ],
        loc="upper left",
        bbox_to_anchor=(1.005, 1.0),
        fontsize=8,
    )


def _gantt_title(instance: Instance, schedule: Schedule) -> str:
    text = f"{schedule.solver} on {instance.name}: makespan {schedule.makespan or 0:.0f} ms"
    if schedule.round_time is not None:
        text += f", round {schedule.round_time:.0f} ms"
    if schedule.cuts:
        cuts = sorted(set(schedule.cuts.values()))
        text += "; cuts " + ", ".join(f"{a}-{b}" for a, b in cuts[:4]) + (" ..." if len(cuts) > 4 else "")
    return text


def plot_gantt(instance: Instance, schedule: Schedule, path: str | Path, title: str | None = None) -> None:
    """Gantt chart of a schedule written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, max(2.5, 0.6 * len(instance.helpers) + 1.5)))
    draw_gantt(
        ax,
        instance,
        schedule,
        title or _gantt_title(instance, schedule),
    )
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
