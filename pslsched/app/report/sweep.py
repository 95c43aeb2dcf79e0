"""The sweep page: every point of a grid per metric, categories side by side, missing values shown as such."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pslsched.app.report.figures import CRITICAL, new_figure
from pslsched.app.report.page import Page, esc, fmt

NOT_REACHED = "not reached"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]


def _categories(values: pd.Series) -> list[str]:
    """The distinct values as labels: numeric order when all are numbers, else their order of appearance."""
    distinct = list(dict.fromkeys(values.tolist()))
    nums = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce")
    if len(distinct) and nums.notna().all():
        distinct = [d for _, d in sorted(zip(nums, distinct), key=lambda p: p[0])]
    return [str(d) for d in distinct]


def plot_axes(results: pd.DataFrame, axes: list[str]) -> tuple[str | None, str | None]:
    """The axis along x (the first varied one, seeds last) and the one that makes the series (the second)."""
    present = [a for a in axes if a in results.columns]
    varied = [a for a in present if results[a].astype(str).nunique() > 1]
    order = [a for a in varied if a != "seed"] + [a for a in varied if a == "seed"]
    if not order:
        return (present[0] if present else None), None
    return order[0], (order[1] if len(order) > 1 and order[1] != "seed" else None)


def missing_label(results: pd.DataFrame, metric: str) -> pd.Series:
    """Per point the reason its metric has no value: "failed", "not reached" (a target metric) or "no value"."""
    failed = results["run_status"].astype(str) != "ok" if "run_status" in results.columns else False
    base = NOT_REACHED if metric.startswith("time_to") or "target" in metric else "no value"
    return pd.Series(np.where(failed, "failed", base), index=results.index)


def metric_label(metric: str) -> str:
    """A metric's axis title with its unit: "makespan_ms" -> "makespan (ms)", "gap_%" -> "gap (%)"."""
    for suffix, unit in (("_ms", "ms"), ("_s", "s"), ("_%", "%"), ("_mb", "MB")):
        if metric.endswith(suffix):
            return f"{metric.removesuffix(suffix)} ({unit})"
    return metric


def metric_figure(results: pd.DataFrame, axes: list[str], metric: str) -> go.Figure:
    """One metric: markers per point (never joined across categories), x the first varied axis as categories,
    a series per value of the second; points without a value sit at the axis with their reason."""
    x_axis, series_axis = plot_axes(results, axes)
    raw = results[metric]
    values = pd.to_numeric(raw, errors="coerce")
    numeric = bool((values.notna() | raw.isna()).all())  # every value given is a number
    present = values.notna() if numeric else raw.notna()
    title = f"{metric} per point" + (f" by {x_axis}" if x_axis else "")
    title += f", one series per {series_axis}" if series_axis else ""
    fig = new_figure(title, x_axis or "point", metric_label(metric) + ("" if numeric else " (category)"))
    xs = results[x_axis].astype(str) if x_axis else pd.Series("all", index=results.index)
    cats = [esc(c) for c in (_categories(results[x_axis]) if x_axis else ["all"])]
    groups = list(dict.fromkeys(results[series_axis].tolist())) if series_axis else [None]
    reasons = missing_label(results, metric)
    floor = min(0.0, float(values.min())) if numeric and values.notna().any() else 0.0
    shown = [a for a in axes if a in results.columns] + (["id"] if "id" in results.columns else [])
    hover = pd.Series(
        ["<br>".join(esc(f"{a}={results.at[i, a]}") for a in shown) for i in results.index],
        index=results.index,
    )
    for n, group in enumerate(groups):
        member = results[series_axis] == group if series_axis else pd.Series(True, index=results.index)
        name = esc(f"{series_axis}={group}") if series_axis else esc(metric)
        color = PALETTE[n % len(PALETTE)]
        ok = member & present
        if ok.any():
            fig.add_trace(
                go.Scatter(
                    name=name,
                    x=[esc(v) for v in xs[ok]],
                    y=values[ok].to_numpy() if numeric else [esc(v) for v in raw[ok]],
                    mode="markers",
                    legendgroup=name,
                    marker={"color": color, "size": 10, "line": {"color": "#333", "width": 0.5}},
                    customdata=[
                        f"{h}<br>{esc(metric)}: {esc(fmt(v, 3))}" for h, v in zip(hover[ok], raw[ok])
                    ],
                    hovertemplate="%{customdata}<extra></extra>",
                )
            )
        gone = member & ~present
        if gone.any():
            why = reasons[gone]
            fig.add_trace(
                go.Scatter(
                    name=esc(f"{group if series_axis else metric}: {', '.join(sorted(set(why)))}"),
                    x=[esc(v) for v in xs[gone]],
                    y=[floor if numeric else "—"] * int(gone.sum()),
                    mode="markers+text",
                    legendgroup=name,
                    text=list(why),
                    textposition="top center",
                    textfont={"color": CRITICAL},
                    marker={"symbol": "x-open", "size": 12, "color": color, "line": {"width": 2}},
                    cliponaxis=False,
                    customdata=[f"{h}<br>{esc(metric)}: {r}" for h, r in zip(hover[gone], why)],
                    hovertemplate="%{customdata}<extra></extra>",
                )
            )
    fig.update_layout(scattermode="group", scattergap=0.4)
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=cats)
    if numeric:
        fig.update_yaxes(rangemode="tozero")
    else:
        fig.update_yaxes(type="category")
    return fig


def sweep_report(results: pd.DataFrame, axes: list[str], metrics: list[str], title: str | None = None) -> str:
    """The sweep page: per metric a figure of every point (categories side by side, NaN/None shown as "not
    reached" or "no value" at the axis, never dropped), then the full results table."""
    axes = [str(a) for a in axes]
    page = Page(title or "Sweep report")
    failed = int((results["run_status"].astype(str) != "ok").sum()) if "run_status" in results.columns else 0
    described = ", ".join(
        f"{a} ({results[a].astype(str).nunique()} value(s))" for a in axes if a in results.columns
    )
    page.summary = (
        f"{len(results)} point(s) over the axes {described or '(none)'}"
        + (f"; {failed} failed" if failed else "")
        + f". Metrics shown: {', '.join(metrics) or '(none)'}. Each point is a marker; the values of an axis "
        "are categories, never joined by lines; a point without a value is drawn at the axis with its reason."
    )
    if "instance" in results.columns and results["instance"].nunique() == 1:
        page.summary = f"Instance {results['instance'].iloc[0]}: " + page.summary
    for n, metric in enumerate(metrics):
        page.heading(metric)
        if metric not in results.columns:
            page.note(f"the results have no column {metric!r}: nothing to plot")
            continue
        missing = int(results[metric].isna().sum())
        if missing:
            page.caption(f"{missing} of {len(results)} point(s) have no {metric} value (marked with an x).")
        page.figure(metric_figure(results, axes, metric), f"metric-{n}")
    page.heading("All points")
    page.table(results)
    return page.render()
