"""The run pages: a simulation (round 0's timeline, round times, completions, plan vs simulation) and a training run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pslsched.app.report.curves import (
    accuracy_figure,
    column,
    loss_figure,
    planned_vs_simulated_figure,
    round_time_figure,
    virtual_end_s,
)
from pslsched.app.report.figures import chain_figure
from pslsched.app.report.page import Page, fmt, fmt_ms
from pslsched.app.report.planning import add_timeline, instance_text
from pslsched.app.report.timeline import Timeline, chain_breakdown, plan_timeline, record_timeline
from pslsched.simulator.record import RunRecord


def _planned(record: RunRecord) -> float | None:
    m = record.schedule.makespan
    return float(m) if m is not None and math.isfinite(m) else None


def run_text(record: RunRecord) -> str:
    """The instance, solver, policy and round times of a record, as one sentence or two."""
    rounds = record.rounds
    cfg = record.config
    text = (
        f"{instance_text(record.instance)} Plan of {record.schedule.solver}, simulated for {len(rounds)} round(s) "
        f"(policy {cfg.policy}, {cfg.links} links, seed {cfg.seed})."
    )
    planned = _planned(record)
    if planned is not None:
        text += f" Planned makespan {fmt_ms(planned)}."
    if len(rounds):
        ms = column(rounds, "makespan_ms")
        rt = column(rounds, "round_time_ms")
        text += (
            f" Simulated makespan: mean {fmt_ms(float(ms.mean()))}, round 0 {fmt_ms(float(ms.iloc[0]))}; "
            f"mean round time (makespan + round-end exchange) {fmt_ms(float(rt.mean()))}."
        )
        lost = int(column(rounds, "dropped").sum()) + int(column(rounds, "timed_out").sum())
        if lost:
            text += f" {lost} client-round(s) dropped or timed out."
    return text


def add_rounds(page: Page, rounds: pd.DataFrame, planned: float | None) -> None:
    """The stacked round-time bars."""
    page.heading("Round times")
    page.caption(
        "Per round, the makespan (until the last client is done) and, stacked on it, the round-end weight "
        "exchange (round_time_ms - makespan_ms): the clients upload their weights, the aggregator averages."
    )
    page.figure(round_time_figure(rounds, planned), "rounds")


def _round0(page: Page, record: RunRecord, label: str) -> Timeline | None:
    if not len(record.rounds):
        page.note("no round finished: no timeline to draw")
        return None
    timeline = record_timeline(record, 0)
    first = record.rounds.iloc[0]
    if first["dropped"] or first["timed_out"]:
        page.note(
            f"round 0: {int(first['dropped'])} client(s) dropped, {int(first['timed_out'])} timed out; the round "
            f"closed at {fmt_ms(float(first['makespan_ms']))}, the dashed line marks the last client that finished"
        )
    add_timeline(page, timeline, f"Timeline of round 0 ({label})", "timeline")
    return timeline


def simulation_report(record: RunRecord, title: str | None = None) -> str:
    """The simulation page: round 0's timeline (helper tasks, client steps and waits), round times as stacked
    bars (makespan + exchange), per-client completion of round 0, planned vs simulated makespan, and the plan."""
    inst = record.instance
    page = Page(title or f"Simulation of {record.schedule.solver}'s plan on {inst.name}")
    page.summary = run_text(record)
    timeline = _round0(page, record, "simulated")
    if timeline is not None:
        page.heading("Per-client completion of round 0")
        page.caption(
            "A bar per client, its height the client's completion in round 0, split into its own steps, the "
            "helper's tasks and waiting (between two batches the client's T5 and next T1 are one part)."
        )
        page.figure(
            chain_figure(chain_breakdown(timeline), "Per-client completion of round 0", timeline.missing),
            "completion",
        )
    if len(record.rounds):
        add_rounds(page, record.rounds, _planned(record))
        page.heading("Planned vs simulated makespan")
        page.figure(planned_vs_simulated_figure(record.rounds, _planned(record)), "planned")
    if record.schedule.tasks:
        add_timeline(page, plan_timeline(inst, record.schedule), "Timeline as planned", "plan")
    page.heading("Rounds")
    page.table(record.rounds)
    return page.render()


def training_report(
    rounds: pd.DataFrame, record: RunRecord, target_accuracy: float | None, title: str | None = None
) -> str:
    """The training page: test accuracy against virtual time with the target line, the loss (a note instead for
    a cost-only run), round times as stacked bars (makespan + exchange), round 0's timeline and the rounds."""
    inst = record.instance
    page = Page(title or f"Training on the clock of {record.schedule.solver}'s plan on {inst.name}")
    acc = column(rounds, "test_accuracy")
    ends = virtual_end_s(rounds)
    text = run_text(record)
    measured = acc.dropna()
    if len(measured):
        text += (
            f" Final test accuracy {fmt(float(measured.iloc[-1]), 4)}, best {fmt(float(measured.max()), 4)}"
        )
        if target_accuracy is not None:
            hit = acc >= target_accuracy
            if hit.any():
                text += f"; target {target_accuracy:g} reached after {fmt(float(ends[hit.idxmax()]), 2)} s virtual"
            else:
                text += f"; target {target_accuracy:g} not reached"
        text += "."
    if len(ends) and ends.notna().any():
        text += f" Virtual time at the end: {fmt(float(ends.max()), 2)} s."
    page.summary = text
    page.heading("Test accuracy")
    fig = accuracy_figure(rounds, target_accuracy)
    if fig is None:
        page.note("no round was evaluated (no test accuracy): a cost-only run, or evaluation was off")
    else:
        page.caption("x: the round's end on the virtual clock (start_ms + round_time_ms), in seconds.")
        page.figure(fig, "accuracy")
    page.heading("Loss")
    fig = loss_figure(rounds)
    if fig is None:
        page.note("no loss was recorded (a cost-only run): nothing to plot")
    else:
        page.figure(fig, "loss")
    if len(rounds):
        add_rounds(page, rounds, _planned(record))
    _round0(page, record, "the clock of the training run")
    page.heading("Rounds")
    page.table(rounds.replace([np.inf, -np.inf], np.nan), digits=4)
    return page.render()
