"""Plotly figures of plans: the timeline (Gantt) with its critical path, the per-client chain, solvers' makespans."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pslsched.app.report.page import esc
from pslsched.app.report.timeline import KINDS, Timeline

COLORS = {
    "T1": "#2ca02c",
    "T3": "#17becf",
    "T5": "#9467bd",
    "T5+T1": "#8c564b",
    "wait": "#c7c7c7",
    "local": "#bcbd22",
    "fwd": "#1f77b4",
    "bwd": "#ff7f0e",
}
CRITICAL = "#d62728"
CRITICAL_NAME = "critical path"
MAKESPAN_NAME = "makespan"
TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif", "size": 12},
        "plot_bgcolor": "#ffffff",
        "paper_bgcolor": "#ffffff",
        "colorway": ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"],
        "xaxis": {"gridcolor": "#e8e8e8", "zerolinecolor": "#bbbbbb", "linecolor": "#888", "showline": True},
        "yaxis": {"gridcolor": "#e8e8e8", "zerolinecolor": "#bbbbbb", "linecolor": "#888", "showline": True},
        "hoverlabel": {"align": "left"},
        "margin": {"l": 70, "r": 30, "t": 60, "b": 60},
    }
)


def new_figure(title: str, x_title: str, y_title: str, height: int = 420) -> go.Figure:
    """An empty figure in the report's style, with a title and both axis titles."""
    fig = go.Figure()
    fig.update_layout(
        template=TEMPLATE,
        title={"text": esc(title), "x": 0.01, "xanchor": "left"},
        height=height,
        legend={"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "top"},
    )
    fig.update_xaxes(title_text=esc(x_title), automargin=True)
    fig.update_yaxes(title_text=esc(y_title), automargin=True)
    return fig


def from_zero(fig: go.Figure, top: float | None) -> None:
    """The y-axis from 0 (to a little above ``top``)."""
    if top is not None and math.isfinite(top) and top > 0:
        fig.update_yaxes(range=[0, top * 1.15], rangemode="tozero")
    else:
        fig.update_yaxes(rangemode="tozero")


# above this many rows the timeline draws the helpers' rows and the critical path's clients only
DETAILED_ROWS = 400


def shown_rows(timeline: Timeline, max_rows: int = DETAILED_ROWS) -> list[str]:
    """The timeline's rows the chart draws: all of them up to ``max_rows``; above, the helpers' rows and the rows
    of the clients the critical path goes through, in the timeline's order."""
    if len(timeline.rows) <= max_rows:
        return timeline.rows
    seg = timeline.segments
    keep = set(seg.loc[seg["critical"] | (seg["lane"] == "helper"), "row"])
    return [r for r in timeline.rows if r in keep or r.startswith("helper ")]


def timeline_figure(timeline: Timeline, title: str, max_rows: int = DETAILED_ROWS) -> go.Figure:
    """The Gantt chart: a row per helper (fwd/bwd tasks) and per client (T1, T3, T5, waiting), the critical path
    outlined in red, the makespan as a dashed vertical line; one bar per segment (above ``max_rows`` rows, the
    clients' own rows only where the critical path goes: :func:`shown_rows`)."""
    seg = timeline.segments
    shown = shown_rows(timeline, max_rows)
    if len(shown) < len(timeline.rows):
        seg = seg[seg["row"].isin(set(shown))]
    rows = [esc(r) for r in shown]
    fig = new_figure(
        title, "time from the round's start (ms)", "helper / client", height=max(400, 140 + 22 * len(rows))
    )
    for kind, label in KINDS.items():
        part = seg[seg["kind"] == kind]
        if part.empty:
            continue
        is_task = kind in ("fwd", "bwd")
        wait = (part["start"] - part["ready"]).where(part["lane"] == "helper", np.nan)
        custom = [
            [
                esc(r.client),
                esc(r.helper),
                kind,
                int(r.batch),
                float(r.start),
                float(r.end),
                float(r.end - r.start),
                None if np.isnan(w) else float(w),
            ]
            for r, w in zip(part.itertuples(), wait)
        ]
        wait_line = "wait (start - ready): %{customdata[7]:,.1f} ms<br>" if is_task else ""
        fig.add_trace(
            go.Bar(
                name=esc(label),
                orientation="h",
                y=[esc(r) for r in part["row"]],
                x=(part["end"] - part["start"]).to_numpy(),
                base=part["start"].to_numpy(),
                marker={"color": COLORS[kind], "line": {"color": "#333", "width": 0.5}},
                text=[esc(c) for c in part["client"]] if is_task else None,
                textposition="inside" if is_task else "none",
                insidetextanchor="middle",
                customdata=custom,
                hovertemplate=(
                    "<b>%{customdata[2]}</b> client %{customdata[0]} on helper %{customdata[1]}<br>"
                    "batch %{customdata[3]}<br>start %{customdata[4]:,.1f} ms, end %{customdata[5]:,.1f} ms<br>"
                    f"duration %{{customdata[6]:,.1f}} ms<br>{wait_line}<extra></extra>"
                ),
            )
        )
    crit = seg[seg["critical"]]
    if len(crit):
        fig.add_trace(
            go.Bar(
                name=esc(f"{CRITICAL_NAME} (ends with client {timeline.last_client})"),
                orientation="h",
                y=[esc(r) for r in crit["row"]],
                x=(crit["end"] - crit["start"]).to_numpy(),
                base=crit["start"].to_numpy(),
                marker={"color": "rgba(0,0,0,0)", "line": {"color": CRITICAL, "width": 3}},
                hoverinfo="skip",
                meta={"critical_client": esc(timeline.last_client)},
            )
        )
    if timeline.makespan > 0:
        add_vline(fig, timeline.makespan, f"{MAKESPAN_NAME} {timeline.makespan:,.1f} ms", CRITICAL)
    fig.update_layout(barmode="overlay", bargap=0.25, uniformtext={"minsize": 8, "mode": "hide"})
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=rows, autorange="reversed")
    fig.update_xaxes(rangemode="tozero")
    return fig


def add_vline(fig: go.Figure, x: float, label: str, color: str) -> None:
    """A dashed vertical line at ``x`` with a label and a legend entry."""
    fig.add_shape(
        type="line",
        xref="x",
        yref="paper",
        x0=x,
        x1=x,
        y0=0,
        y1=1,
        line={"color": color, "dash": "dash", "width": 2},
        showlegend=True,
        name=esc(label),
    )
    fig.add_annotation(
        x=x,
        xref="x",
        y=1.0,
        yref="paper",
        text=esc(label),
        showarrow=False,
        xanchor="right",
        yanchor="bottom",
        font={"color": color},
    )


def add_hline(fig: go.Figure, y: float, label: str, color: str) -> None:
    """A dashed horizontal line at ``y`` with a label and a legend entry."""
    fig.add_shape(
        type="line",
        xref="paper",
        yref="y",
        x0=0,
        x1=1,
        y0=y,
        y1=y,
        line={"color": color, "dash": "dash", "width": 2},
        showlegend=True,
        name=esc(label),
    )
    fig.add_annotation(
        x=1.0,
        xref="paper",
        y=y,
        yref="y",
        text=esc(label),
        showarrow=False,
        xanchor="right",
        yanchor="bottom",
        font={"color": color},
    )


CHAIN_PARTS = [  # stacking order: the chain's steps, then waiting
    ("T1", "T1 release (client)"),
    ("fwd", "T2 fwd (helper)"),
    ("T3", "T3 delay (client)"),
    ("bwd", "T4 bwd (helper)"),
    ("T5", "T5 tail (client)"),
    ("T5+T1", "T5 + next T1 (client)"),
    ("local", "local training (client)"),
    ("wait", "waiting for the helper"),
]


def chain_figure(breakdown: pd.DataFrame, title: str, unfinished: list[str] | None = None) -> go.Figure:
    """Per client a stacked bar of its time: on the client (T1, T3, T5), on the helper (T2, T4) and waiting;
    a bar's height is the client's completion. ``unfinished`` clients get a marker at 0 instead."""
    fig = new_figure(title, "client", "time (ms)")
    clients = [esc(c) for c in breakdown.index]
    for kind, label in CHAIN_PARTS:
        if kind not in breakdown.columns or not (breakdown[kind] > 0).any():
            continue
        fig.add_trace(
            go.Bar(
                name=esc(label),
                x=clients,
                y=breakdown[kind].to_numpy(),
                marker_color=COLORS[kind],
                hovertemplate=f"client %{{x}}<br>{esc(label)}: %{{y:,.1f}} ms<extra></extra>",
            )
        )
    total = breakdown.sum(axis=1)
    if unfinished:
        fig.add_trace(
            go.Scatter(
                name="did not finish (dropped or timed out)",
                x=[esc(c) for c in unfinished],
                y=[0.0] * len(unfinished),
                mode="markers",
                marker={"symbol": "x", "size": 11, "color": CRITICAL},
                cliponaxis=False,
                hovertemplate="client %{x}: did not finish<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=clients, tickangle=-45)
    from_zero(fig, float(total.max()) if len(total) else None)
    return fig


def makespan_bars(table: pd.DataFrame, title: str, best: str | None = None) -> go.Figure:
    """Makespan per solver from zero, labelled with the gap to the instance's lower bound (a dashed line);
    a solver without a valid schedule gets a marker at 0 with its status."""
    col = "round_ms" if "round_ms" in table.columns else "makespan_ms"  # the planned quantity
    fig = new_figure(title, "solver", "round time (ms)" if col == "round_ms" else "makespan (ms)")
    ms = pd.to_numeric(table[col], errors="coerce")
    ok = table[ms.notna()]
    gap_col = "gap_%" if "gap_%" in table.columns else ("gap" if "gap" in table.columns else None)
    labels = []
    for _, row in ok.iterrows():
        g = pd.to_numeric(pd.Series([row.get(gap_col)]), errors="coerce").iloc[0] if gap_col else np.nan
        if gap_col == "gap" and pd.notna(g):
            g = 100 * g
        labels.append(f"gap {g:.1f} %" if pd.notna(g) else "")
    names = [esc(s) for s in ok["solver"]]
    colors = ["#2ca02c" if best is not None and s == best else "#1f77b4" for s in ok["solver"]]
    fig.add_trace(
        go.Bar(
            name="round time" if col == "round_ms" else "makespan",
            x=names,
            y=ms[ms.notna()].to_numpy(),
            marker_color=colors,
            text=labels,
            textposition="outside",
            customdata=[esc(s) for s in ok["status"]],
            hovertemplate="%{x}: %{y:,.1f} ms<br>status %{customdata}<br>%{text}<extra></extra>",
        )
    )
    bad = table[ms.isna()]
    if len(bad):
        fig.add_trace(
            go.Scatter(
                name="no valid schedule",
                x=[esc(s) for s in bad["solver"]],
                y=[0.0] * len(bad),
                mode="markers+text",
                text=[esc(f"no valid schedule ({s})")[:60] for s in bad["status"]],
                textposition="top center",
                marker={"symbol": "x", "size": 12, "color": CRITICAL},
            )
        )
    bound = np.nan
    if "lower_bound_ms" in table.columns:
        bounds = pd.to_numeric(table["lower_bound_ms"], errors="coerce").dropna()
        bound = float(bounds.max()) if len(bounds) else np.nan
    if math.isfinite(bound) and bound > 0:
        add_hline(fig, bound, f"lower bound {bound:,.1f} ms", "#444")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=[esc(s) for s in table["solver"]])
    top = np.nanmax([float(ms.max()) if ms.notna().any() else np.nan, bound, 0.0])
    from_zero(fig, float(top))
    return fig
