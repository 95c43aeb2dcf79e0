"""The run record: per-task timeline, per-round table and summary, as DataFrames and files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pslsched.base import strict_json
from pslsched.core.instance import Instance
from pslsched.core.report import draw_gantt
from pslsched.core.schedule import Schedule, Task
from pslsched.simulator.config import SimConfig
from pslsched.simulator.round_result import RoundResult

TIMELINE_COLUMNS = ["round", "batch", "client", "helper", "phase", "ready", "start", "end", "wait"]


@dataclass
class RunRecord:
    """What a simulation produced. Times are ms from the start of round 0."""

    instance: Instance
    schedule: Schedule
    config: SimConfig
    timeline: pd.DataFrame
    rounds: pd.DataFrame
    completion: pd.DataFrame  # round, client, completion_ms (from the round's start; NaN = dropped/timed out)

    @property
    def makespans(self) -> list[float]:
        return [float(v) for v in self.rounds["makespan_ms"]]

    def summary(self) -> dict:
        ms = np.array(self.makespans)
        return {
            "instance": self.instance.name,
            "solver": self.schedule.solver,
            "policy": self.config.policy,
            "links": self.config.links,
            "seed": self.config.seed,
            "planned_makespan_ms": self.schedule.makespan,
            "rounds": len(ms),
            "batches": self.instance.batches,
            "makespan_ms": [float(v) for v in ms],
            # None when no round finished (training that diverged in its first round)
            "mean_makespan_ms": float(ms.mean()) if len(ms) else None,
            "p95_makespan_ms": float(np.percentile(ms, 95)) if len(ms) else None,
            "mean_round_time_ms": float(self.rounds["round_time_ms"].mean()) if len(ms) else None,
            "dropped_clients": int(self.rounds["dropped"].sum()),
            "timed_out_clients": int(self.rounds["timed_out"].sum()),
        }

    def round_schedule(self, r: int = 0) -> Schedule:
        """Round ``r``'s timeline as a Schedule (times from the round's start), for the validator and plots."""
        rows = self.timeline[self.timeline["round"] == r]
        start = float(self.rounds.loc[self.rounds["round"] == r, "start_ms"].iloc[0])
        tasks = [
            Task(row.client, row.helper, row.phase, row.start - start, row.end - start, int(row.batch))
            for row in rows.itertuples()
        ]
        assignment = {c: None for c in self.instance.clients}
        for t in tasks:
            assignment[t.client] = t.helper
        for c, h in self.schedule.assignment.items():
            if h is None:
                assignment[c] = None
        comp = self.completion[self.completion["round"] == r]["completion_ms"]
        return Schedule(
            self.instance.name,
            f"simulated:{self.config.policy}",
            "feasible",
            float(comp.max()),
            None,
            0.0,
            assignment,
            tasks,
        )

    def write(self, out: Path) -> None:
        """timeline.csv, rounds.csv, summary.json and gantt.png into ``out`` (an existing folder)."""
        self.timeline.to_csv(out / "timeline.csv", index=False)
        self.rounds.to_csv(out / "rounds.csv", index=False)
        (out / "summary.json").write_text(strict_json.dumps(self.summary(), indent=1) + "\n")
        plot_planned_vs_actual(self, out / "gantt.png")


def build_record(
    instance: Instance, schedule: Schedule, config: SimConfig, results: list[RoundResult]
) -> RunRecord:
    """Turn the engine's round results into DataFrames."""
    names_c, names_h = instance.clients, instance.helpers
    rows = [
        (r, b, names_c[j], names_h[i], ph, ready, start, end, start - ready)
        for res in results
        for (r, b, j, i, ph, ready, start, end) in res.tasks
    ]
    timeline = pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
    round_rows, comp_rows = [], []
    for r, res in enumerate(results):
        row = {
            "round": r,
            "start_ms": res.start,
            "makespan_ms": res.makespan_ms,
            "round_time_ms": res.round_time_ms,
            "bytes_sent": res.bytes_sent,
            "dropped": len(res.dropped),
            "timed_out": len(res.timed_out),
        }
        for i, h in enumerate(names_h):
            row[f"idle_{h}_ms"] = max(0.0, res.makespan_ms - res.busy_ms[i])
        round_rows.append(row)
        for j, c in enumerate(names_c):
            comp_rows.append({"round": r, "client": c, "completion_ms": res.completion[j] - res.start})
    round_cols = ["round", "start_ms", "makespan_ms", "round_time_ms", "bytes_sent", "dropped", "timed_out"]
    round_cols += [f"idle_{h}_ms" for h in names_h]
    rounds = pd.DataFrame(round_rows, columns=round_cols)  # the columns also when no round finished
    completions = pd.DataFrame(comp_rows, columns=["round", "client", "completion_ms"])
    return RunRecord(instance, schedule, config, timeline, rounds, completions)


def plot_planned_vs_actual(record: RunRecord, path: Path) -> None:
    """Two Gantt charts of round 1: the schedule as planned and as simulated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_h = max(3.5, 1.0 * len(record.instance.helpers) + 2.5)
    fig, axes = plt.subplots(2, 1, figsize=(12, fig_h), sharex=True)
    draw_gantt(
        axes[0],
        record.instance,
        record.schedule,
        f"planned ({record.schedule.solver}): {record.schedule.makespan:.0f} ms",
    )
    actual = record.round_schedule(0)
    title = (
        f"simulated round 1 ({record.config.policy}, {record.config.links} links): {actual.makespan:.0f} ms"
    )
    row = record.rounds.iloc[0]
    if row["dropped"] or row["timed_out"]:
        title += (
            f" (last finisher; {int(row['dropped'])} dropped, {int(row['timed_out'])} timed out, "
            f"round closed at {row['makespan_ms']:.0f} ms)"
        )
    draw_gantt(axes[1], record.instance, actual, title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
