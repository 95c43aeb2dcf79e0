"""The planning pages: one schedule (timeline, critical path, per-client chain, baselines) and a solver comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pslsched.app.report.figures import chain_figure, makespan_bars, shown_rows, timeline_figure
from pslsched.app.report.page import Page, fmt, fmt_ms
from pslsched.app.report.timeline import Timeline, chain_breakdown, plan_timeline
from pslsched.core.instance import Instance
from pslsched.core.report import helper_table
from pslsched.core.schedule import Schedule
from pslsched.core.timing import completion_times


def instance_text(instance: Instance) -> str:
    """ "Instance NAME: K clients, H helpers, B batches per round"."""
    batches = f", {instance.batches} batches per round" if instance.batches > 1 else ", 1 batch per round"
    return (
        f"Instance {instance.name}: {instance.num_clients} clients, {instance.num_helpers} helpers{batches}"
        + (" (sequential helpers)" if instance.sequential else "")
        + "."
    )


def best_valid(table: pd.DataFrame, schedules: dict[str, Schedule] | None = None) -> str | None:
    """The solver with the smallest round time (makespan without an exchange) among the valid rows (and, if
    given, with a schedule)."""
    ms = pd.to_numeric(table["round_ms" if "round_ms" in table.columns else "makespan_ms"], errors="coerce")
    ok = ms.notna()
    if "valid" in table.columns:
        ok &= table["valid"].astype(bool)
    if schedules is not None:
        ok &= table["solver"].isin([s for s, v in schedules.items() if v is not None and v.tasks is not None])
    if not ok.any():
        return None
    return str(table.loc[ms[ok].idxmin(), "solver"])


def add_timeline(page: Page, timeline: Timeline, title: str, key: str) -> None:
    """The timeline figure with its heading and caption (and a note for clients without bars)."""
    page.heading(title)
    page.caption(
        "A row per helper (its body tasks: forward T2 and backward T4, labelled with the client) and per client "
        "(its own steps T1, T3, T5 and the time it waits for its helper). The red outline is the critical path: "
        "walking back from the last client's completion, a task that started as soon as it was ready follows "
        "its client's chain, one that waited follows the helper task before it. Drag to zoom."
    )
    if timeline.missing:
        page.note(
            f"{len(timeline.missing)} client(s) did not complete (dropped, timed out or without tasks; their bars "
            f"stop where they stopped): {', '.join(timeline.missing)}"
        )
    shown = shown_rows(timeline)
    if len(shown) < len(timeline.rows):
        page.note(
            f"{len(timeline.rows)} rows are more than a chart can show: drawn are the helpers' rows and the "
            f"{len(shown) - sum(r.startswith('helper ') for r in shown)} client row(s) the critical path goes "
            f"through; the other clients' rows are left out"
        )
    page.figure(timeline_figure(timeline, title), key)


def add_chain(page: Page, timeline: Timeline, title: str, key: str) -> None:
    """The per-client stacked bar of T1..T5 and waiting."""
    page.heading(title)
    page.caption(
        "Per client, where its time goes: on the client (T1, T3, T5), on the helper (T2, T4) and waiting in the "
        "helper's queue; a bar's height is the client's completion time."
    )
    page.figure(chain_figure(chain_breakdown(timeline), title, timeline.missing), key)


def add_comparison(page: Page, table: pd.DataFrame, best: str | None, key: str) -> None:
    """The makespan bars (from zero, the lower bound as a line) and the table."""
    label = "Round time per solver" if "round_ms" in table.columns else "Makespan per solver"
    page.heading(label)
    page.caption("Bars from zero; the label is the gap to the instance's lower bound (the dashed line).")
    page.figure(makespan_bars(table, label, best), key)
    page.table(table)


def schedule_report(
    instance: Instance, schedule: Schedule, title: str, baselines: pd.DataFrame | None = None
) -> str:
    """The page of one schedule: the timeline with the critical path and the makespan, the per-client chain
    (T1..T5, waiting), the helpers' load; with ``baselines`` (a compare table) the makespan per solver too."""
    page = Page(title)
    timeline = plan_timeline(instance, schedule)
    comp = completion_times(instance, schedule.assignment, schedule.tasks)
    makespan = schedule.makespan if schedule.makespan is not None else timeline.makespan
    text = f"{instance_text(instance)} Solver {schedule.solver} (status {schedule.status}): makespan {fmt_ms(makespan)}"
    objective = makespan
    if schedule.round_time is not None:
        objective = schedule.round_time
        text += f", round-end weight exchange {fmt_ms(schedule.round_time - makespan)}, round {fmt_ms(schedule.round_time)}"
    if schedule.lower_bound:
        gap = 100 * (objective - schedule.lower_bound) / schedule.lower_bound
        on = " on the round" if schedule.round_time is not None else ""
        text += f", lower bound{on} {fmt_ms(schedule.lower_bound)}, gap {fmt(gap, 2)} %"
    text += "."
    if schedule.cuts:
        counts = pd.Series([f"a={a}, b={b}" for a, b in schedule.cuts.values()]).value_counts()
        text += (
            " Cuts chosen with the plan: " + "; ".join(f"{k} ({v} clients)" for k, v in counts.items()) + "."
        )
    if timeline.last_client is not None:
        text += (
            f" The last client to finish is {timeline.last_client} (at {fmt_ms(timeline.makespan)}); the critical "
            "path (red outline) ends with it."
        )
    page.summary = text
    if not schedule.tasks and not np.isfinite(comp).any():
        page.note(f"the schedule has no tasks (status {schedule.status}): nothing to draw")
    else:
        add_timeline(page, timeline, f"Timeline of {schedule.solver} on {instance.name}", "timeline")
        add_chain(page, timeline, "Per-client chain: T1..T5 and waiting", "chain")
        page.heading("Helpers")
        page.table(helper_table(instance, schedule))
        if schedule.cuts:
            page.heading("Cut points per client (chosen with the plan)")
            page.table(
                pd.DataFrame(
                    [{"client": c, "a": a, "b": b} for c, (a, b) in schedule.cuts.items()],
                    columns=["client", "a", "b"],
                )
            )
    if baselines is not None and len(baselines):
        add_comparison(page, baselines, best_valid(baselines), "baselines")
    return page.render()


def compare_report(
    instance: Instance, table: pd.DataFrame, schedules: dict[str, Schedule], title: str | None = None
) -> str:
    """The comparison page: makespan per solver (from zero, the lower bound as a line), the table, and the
    timeline and chain of the best valid schedule."""
    page = Page(title or f"Solvers compared on {instance.name}")
    best = best_valid(table, schedules)
    what = "round time" if "round_ms" in table.columns else "makespan"
    ms = pd.to_numeric(table["round_ms" if "round_ms" in table.columns else "makespan_ms"], errors="coerce")
    bounds = pd.to_numeric(table.get("lower_bound_ms", pd.Series(dtype=float)), errors="coerce").dropna()
    bound_text = f"; lower bound {fmt_ms(float(bounds.max()))}" if len(bounds) else ""
    valid = int(ms.notna().sum())
    if best is not None:
        best_ms = float(ms[table["solver"] == best].iloc[0])
        best_text = f" The best valid schedule is {best}'s: {what} {fmt_ms(best_ms)}{bound_text}."
    else:
        best_text = f" No solver produced a valid schedule{bound_text}."
    page.summary = (
        f"{instance_text(instance)} {len(table)} solver(s) ran, {valid} with a valid schedule.{best_text}"
    )
    add_comparison(page, table, best, "compare")
    if best is not None:
        timeline = plan_timeline(instance, schedules[best])
        add_timeline(page, timeline, f"Timeline of the best valid schedule ({best})", "timeline")
        add_chain(page, timeline, f"Per-client chain of {best}: T1..T5 and waiting", "chain")
    return page.render()
