"""Plotly figures of runs: round times (makespan + exchange), planned vs simulated makespan, accuracy and loss."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pslsched.app.report.figures import CRITICAL, add_hline, from_zero, new_figure
from pslsched.app.report.page import esc

EXCHANGE_NAME = "round-end weight exchange"


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """``frame[name]`` as floats (NaN where missing or not a number; all NaN when the column is absent)."""
    if name not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[name], errors="coerce").astype(float)


def virtual_end_s(rounds: pd.DataFrame) -> pd.Series:
    """Each round's end on the virtual clock, in s: (start_ms + round_time_ms) / 1000."""
    return (column(rounds, "start_ms") + column(rounds, "round_time_ms")) / 1000.0


def round_time_figure(rounds: pd.DataFrame, planned: float | None = None) -> go.Figure:
    """Per round a stacked bar: the makespan and the round-end exchange (round_time_ms - makespan_ms)."""
    fig = new_figure("Round time per round: makespan + round-end weight exchange", "round", "time (ms)")
    x = [str(int(r)) for r in rounds["round"]]
    makespan = column(rounds, "makespan_ms")
    exchange = (column(rounds, "round_time_ms") - makespan).clip(lower=0.0)
    fig.add_trace(
        go.Bar(
            name="makespan (last client done)",
            x=x,
            y=makespan.to_numpy(),
            marker_color="#1f77b4",
            hovertemplate="round %{x}<br>makespan %{y:,.1f} ms<extra></extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            name=EXCHANGE_NAME,
            x=x,
            y=exchange.to_numpy(),
            marker_color="#aec7e8",
            hovertemplate="round %{x}<br>exchange %{y:,.1f} ms<extra></extra>",
        )
    )
    if planned is not None and math.isfinite(planned):
        add_hline(fig, planned, f"planned makespan {planned:,.1f} ms", CRITICAL)
    fig.update_layout(barmode="stack")
    fig.update_xaxes(type="category")
    top = float(np.nanmax([(makespan + exchange).max(), planned or 0.0, 0.0])) if len(x) else None
    from_zero(fig, top)
    return fig


def planned_vs_simulated_figure(rounds: pd.DataFrame, planned: float | None) -> go.Figure:
    """The planned makespan next to each simulated round's makespan, labelled with the difference in %."""
    fig = new_figure("Planned vs simulated makespan", "plan / simulated round", "makespan (ms)")
    makespan = column(rounds, "makespan_ms")
    x = [f"round {int(r)}" for r in rounds["round"]]
    if planned is not None and math.isfinite(planned):
        fig.add_trace(
            go.Bar(
                name="planned (solver)",
                x=["plan"],
                y=[planned],
                marker_color="#7f7f7f",
                text=[f"{planned:,.0f} ms"],
                textposition="outside",
                hovertemplate="planned %{y:,.1f} ms<extra></extra>",
            )
        )
        labels = [f"{100 * (m - planned) / planned:+.1f} % vs plan" if planned > 0 else "" for m in makespan]
    else:
        labels = ["" for _ in makespan]
    fig.add_trace(
        go.Bar(
            name="simulated",
            x=x,
            y=makespan.to_numpy(),
            marker_color="#1f77b4",
            text=labels,
            textposition="outside",
            hovertemplate="%{x}: %{y:,.1f} ms<br>%{text}<extra></extra>",
        )
    )
    fig.update_xaxes(type="category")
    from_zero(fig, float(np.nanmax([makespan.max() if len(makespan) else 0.0, planned or 0.0, 0.0])))
    return fig


def accuracy_figure(rounds: pd.DataFrame, target: float | None) -> go.Figure | None:
    """Test accuracy against virtual time (s) with the target as a labelled line; None when never evaluated."""
    acc = column(rounds, "test_accuracy")
    have = acc.notna()
    if not have.any():
        return None
    x = virtual_end_s(rounds)
    fig = new_figure(
        "Test accuracy against virtual time",
        "virtual time at the round's end (s)",
        "test accuracy (fraction)",
    )
    fig.add_trace(
        go.Scatter(
            name="test accuracy",
            x=x[have].to_numpy(),
            y=acc[have].to_numpy(),
            mode="lines+markers",
            customdata=rounds.loc[have, "round"].to_numpy(),
            hovertemplate="round %{customdata}<br>%{x:,.2f} s<br>accuracy %{y:.4f}<extra></extra>",
        )
    )
    if target is not None and math.isfinite(target):
        add_hline(fig, target, f"target {target:g}", CRITICAL)
        hit = have & (acc >= target)
        if hit.any():
            first = hit.idxmax()
            fig.add_annotation(
                x=float(x[first]),
                y=float(acc[first]),
                text=esc(f"reached at {x[first]:,.1f} s"),
                showarrow=True,
                arrowhead=2,
                ay=40,
            )
    top = max(1.0, float(acc.max()), target or 0.0)
    fig.update_yaxes(range=[0, top * 1.05])
    fig.update_xaxes(rangemode="tozero")
    return fig


def loss_figure(rounds: pd.DataFrame) -> go.Figure | None:
    """Train (and test) loss against virtual time (s); None when no round has a loss (a cost-only run)."""
    x = virtual_end_s(rounds)
    series = [(n, column(rounds, c)) for n, c in (("train loss", "train_loss"), ("test loss", "test_loss"))]
    series = [(n, s) for n, s in series if s.notna().any() and np.isfinite(s[s.notna()]).any()]
    if not series:
        return None
    fig = new_figure(
        "Loss against virtual time", "virtual time at the round's end (s)", "loss (cross-entropy)"
    )
    for name, s in series:
        ok = s.notna() & np.isfinite(s)
        fig.add_trace(
            go.Scatter(
                name=name,
                x=x[ok].to_numpy(),
                y=s[ok].to_numpy(),
                mode="lines+markers",
                hovertemplate=f"{name}<br>%{{x:,.2f}} s<br>%{{y:.4f}}<extra></extra>",
            )
        )
    fig.update_xaxes(rangemode="tozero")
    fig.update_yaxes(rangemode="tozero")
    return fig
