"""A round as timeline segments: helper tasks and client steps (T1, T3, T5, waiting), with the critical path marked.

A segment table has one row per bar of the Gantt chart: ``row`` ("helper NAME" or "client NAME"), ``lane``
("helper" / "client"), ``kind`` (one of :data:`KINDS`), ``client``, ``helper``, ``batch``, ``start``, ``end``,
``ready`` (helper tasks: when the task could have started; NaN on client rows) and ``critical``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pslsched.core.instance import Instance
from pslsched.core.schedule import Schedule
from pslsched.simulator.record import RunRecord

# kind -> legend label; client-side kinds first, then the helper's phases
KINDS = {
    "T1": "T1 release: head forward + upload (client)",
    "T3": "T3 delay: download, tail, upload (client)",
    "T5": "T5 tail: download + head backward (client)",
    "T5+T1": "T5 + next T1: tail, then the next batch's head (client)",
    "wait": "waiting for the helper (queued)",
    "local": "local training (client, no helper)",
    "fwd": "T2 fwd: body forward (helper)",
    "bwd": "T4 bwd: body backward (helper)",
}
HELPER_KINDS = ("fwd", "bwd")
COLUMNS = ["row", "lane", "kind", "client", "helper", "batch", "start", "end", "ready", "critical"]


@dataclass
class Timeline:
    """One round's segments, its row order (top to bottom), the client that finishes last and its completion."""

    segments: pd.DataFrame
    rows: list[str]
    last_client: str | None
    makespan: float
    missing: list[str]  # clients that did not complete: dropped, timed out, or tasks missing from the plan

    @property
    def tasks(self) -> pd.DataFrame:
        """The helper tasks only."""
        return self.segments[self.segments["lane"] == "helper"]

    @property
    def clients(self) -> list[str]:
        """The clients, in row order."""
        return [r.removeprefix("client ") for r in self.rows if r.startswith("client ")]


def helper_row(name: str) -> str:
    """The row label of a helper."""
    return f"helper {name}"


def client_row(name: str) -> str:
    """The row label of a client."""
    return f"client {name}"


def _row_order(helpers: list[str], clients: list[str], assignment: dict[str, str | None]) -> list[str]:
    rows = []
    for h in helpers:
        rows.append(helper_row(h))
        rows += [client_row(c) for c in clients if assignment.get(c) == h]
    rows += [client_row(c) for c in clients if assignment.get(c) not in helpers]
    return rows


class _Builder:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(
        self,
        lane: str,
        kind: str,
        client: str,
        helper: str | None,
        batch: int,
        start: float,
        end: float,
        ready: float = np.nan,
    ) -> None:
        if lane == "client" and end - start <= 1e-9 * max(1.0, abs(end)):  # no slivers of rounding error
            return
        row = helper_row(helper) if lane == "helper" else client_row(client)
        self.rows.append(
            {
                "row": row,
                "lane": lane,
                "kind": kind,
                "client": client,
                "helper": helper or "(local)",
                "batch": batch,
                "start": float(start),
                "end": float(end),
                "ready": float(ready),
                "critical": False,
            }
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)


def plan_timeline(instance: Instance, schedule: Schedule) -> Timeline:
    """The planned round: each client's chain T1, wait, T2, T3, wait, T4, T5 per batch (problem.md §1)."""
    by_key = {(t.client, t.batch, t.phase): t for t in schedule.tasks}
    out, missing = _Builder(), []
    for j, c in enumerate(instance.clients):
        h = schedule.assignment.get(c)
        if h is None or h not in instance.helper_index:
            if instance.can_local[j]:
                step = float(instance.local[j])  # type: ignore[index]
                for b in range(instance.batches):
                    out.add("client", "local", c, None, b, b * step, (b + 1) * step)
            else:
                missing.append(c)
            continue
        i = instance.helper_index[h]
        keys = [(c, b, p) for b in range(instance.batches) for p in HELPER_KINDS]
        if any(k not in by_key for k in keys):
            missing.append(c)
            continue
        t = 0.0
        for b in range(instance.batches):
            f, k = by_key[(c, b, "fwd")], by_key[(c, b, "bwd")]
            ready_f = t + float(instance.release[j, i])
            out.add("client", "T1", c, h, b, t, ready_f)
            out.add("client", "wait", c, h, b, ready_f, f.start)
            out.add("helper", "fwd", c, h, b, f.start, f.end, ready_f)
            ready_b = f.end + float(instance.delay[j, i])
            out.add("client", "T3", c, h, b, f.end, ready_b)
            out.add("client", "wait", c, h, b, ready_b, k.start)
            out.add("helper", "bwd", c, h, b, k.start, k.end, ready_b)
            t = k.end + float(instance.tail[j, i])
            out.add("client", "T5", c, h, b, k.end, t)
    rows = _row_order(list(instance.helpers), list(instance.clients), schedule.assignment)
    return _finish(out.frame(), rows, missing)


def record_timeline(record: RunRecord, round_index: int = 0) -> Timeline:
    """Round ``round_index`` of a simulation record, times from the round's start.

    Client rows come from the tasks' ready/start/end: the client works until a task is ready (T1; between two
    batches T5 + the next T1), waits from ready to start, works from the forward's end to the backward's ready
    (T3), and from the last backward's end to its completion (T5).
    """
    inst: Instance = record.instance
    rounds = record.rounds
    match = rounds[rounds["round"] == round_index]
    origin = float(match["start_ms"].iloc[0]) if len(match) else 0.0
    tl = record.timeline[record.timeline["round"] == round_index]
    comp = record.completion[record.completion["round"] == round_index].set_index("client")["completion_ms"]
    out, missing = _Builder(), []
    assignment: dict[str, str | None] = {c: record.schedule.assignment.get(c) for c in inst.clients}
    for c in inst.clients:
        mine = tl[tl["client"] == c].sort_values(["batch", "start"], kind="stable")
        done = float(comp.get(c, np.nan))
        if mine.empty:
            if np.isfinite(done) and assignment.get(c) is None:
                out.add("client", "local", c, None, 0, 0.0, done)
            elif not np.isfinite(done):
                missing.append(c)
            continue
        assignment[c] = str(mine["helper"].iloc[0])
        t = 0.0
        for task in mine.itertuples():
            ready, start, end = task.ready - origin, task.start - origin, task.end - origin
            h, b = str(task.helper), int(task.batch)
            before = "T3" if task.phase == "bwd" else ("T1" if t == 0.0 else "T5+T1")
            out.add("client", before, c, h, b, t, ready)
            out.add("client", "wait", c, h, b, ready, start)
            out.add("helper", task.phase, c, h, b, start, end, ready)
            t = end
        if np.isfinite(done):
            out.add("client", "T5", c, str(mine["helper"].iloc[-1]), int(mine["batch"].iloc[-1]), t, done)
        else:
            missing.append(c)
    rows = _row_order(list(inst.helpers), list(inst.clients), assignment)
    return _finish(out.frame(), rows, missing)


def _finish(seg: pd.DataFrame, rows: list[str], missing: list[str]) -> Timeline:
    if seg.empty:
        return Timeline(seg, rows, None, 0.0, missing)
    client = seg[seg["lane"] == "client"]
    ends = client.groupby("client", sort=False)["end"].max()
    last = str(ends.idxmax()) if len(ends) else None
    makespan = float(ends.max()) if len(ends) else float(seg["end"].max())
    seg = seg.copy()
    if last is not None:
        seg["critical"] = _critical_path(seg, last)
    return Timeline(seg.reset_index(drop=True), rows, last, makespan, missing)


def _critical_path(seg: pd.DataFrame, last: str) -> np.ndarray:
    """Walk back from the last client's completion: a task that started at its ready time continues along its
    client's chain; one that waited continues through the helper task that ended when it started."""
    critical = np.zeros(len(seg), dtype=bool)
    eps = 1e-6 * max(1.0, float(seg["end"].max()))
    pos = {idx: n for n, idx in enumerate(seg.index)}
    tasks = seg[seg["lane"] == "helper"]
    client_segs = seg[seg["lane"] == "client"]

    def mark_client(c: str, lo: float, hi: float) -> None:
        part = client_segs[(client_segs["client"] == c) & (client_segs["start"] >= lo - eps)]
        for idx in part[part["end"] <= hi + eps].index:
            critical[pos[idx]] = True

    mine = tasks[tasks["client"] == last]
    if mine.empty:  # a local client: its own steps are the path
        mark_client(last, -np.inf, np.inf)
        return critical
    cur = mine.sort_values("end").index[-1]
    mark_client(last, float(seg.at[cur, "end"]), np.inf)
    for _ in range(len(tasks) + 1):
        critical[pos[cur]] = True
        c, start, ready = seg.at[cur, "client"], float(seg.at[cur, "start"]), float(seg.at[cur, "ready"])
        if start > ready + eps:  # it waited: the helper was busy with the task that ended at its start
            same = tasks[(tasks["helper"] == seg.at[cur, "helper"]) & (abs(tasks["end"] - start) <= eps)]
            same = same[same.index != cur]
            if len(same):
                cur = same.index[0]
                continue
            mark_client(c, ready, start)  # an idle helper: the wait itself is on the path
        before = tasks[(tasks["client"] == c) & (tasks["end"] <= ready + eps) & (tasks.index != cur)]
        if before.empty:
            mark_client(c, -np.inf, ready)
            break
        prev = before.sort_values("end").index[-1]
        mark_client(c, float(seg.at[prev, "end"]), ready)
        cur = prev
    return critical


def chain_breakdown(timeline: Timeline) -> pd.DataFrame:
    """Per client (rows in timeline order): ms in each kind of segment; a row sums to the client's completion."""
    seg = timeline.segments
    dur = seg.assign(ms=seg["end"] - seg["start"])
    table = dur.pivot_table(index="client", columns="kind", values="ms", aggfunc="sum", fill_value=0.0)
    clients = timeline.clients
    table = table.reindex(index=clients, columns=[k for k in KINDS if k in table.columns], fill_value=0.0)
    return table.fillna(0.0)
