"""Schedules (problem.md §3): an assignment plus timed helper tasks, with JSON and CSV I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_SCHEDULE_MS
from pslsched.core.json_io import check_keys, load_json, write_json

STATUSES = ("optimal", "feasible", "infeasible", "unknown")
PHASES = ("fwd", "bwd")
_KEYS = {
    "instance",
    "solver",
    "status",
    "makespan",
    "round_time",
    "lower_bound",
    "runtime_s",
    "assignment",
    "tasks",
    "cuts",
}
_TASK_KEYS = {"client", "helper", "phase", "start", "end", "batch"}


@dataclass(frozen=True)
class Task:
    """One helper task: the forward or backward body pass of one batch of one client."""

    client: str
    helper: str
    phase: str
    start: float
    end: float
    batch: int = 0


@dataclass
class Schedule:
    """A solver's answer. ``assignment`` maps every client to a helper name, or None for local training."""

    instance: str
    solver: str
    status: str
    makespan: float | None
    lower_bound: float | None
    runtime_s: float
    assignment: dict[str, str | None] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    round_time: float | None = None  # problem.md §1 "The round": makespan + round-end exchange (None: none)
    cuts: dict[str, tuple[int, int]] | None = (
        None  # each client's cut points (a, b), where the planner chose them
    )

    def to_dict(self) -> dict[str, Any]:
        with_batch = any(t.batch != 0 for t in self.tasks)
        tasks = []
        for t in self.tasks:
            row: dict[str, Any] = {"client": t.client, "helper": t.helper, "phase": t.phase}
            if with_batch:
                row["batch"] = t.batch
            row["start"] = float(t.start)
            row["end"] = float(t.end)
            tasks.append(row)
        return {
            "instance": self.instance,
            "solver": self.solver,
            "status": self.status,
            "makespan": _opt(self.makespan),
            **({} if self.round_time is None else {"round_time": float(self.round_time)}),
            "lower_bound": _opt(self.lower_bound),
            "runtime_s": float(self.runtime_s),
            "assignment": dict(self.assignment),
            **(
                {}
                if self.cuts is None
                else {"cuts": {c: [int(a), int(b)] for c, (a, b) in self.cuts.items()}}
            ),
            "tasks": tasks,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "schedule") -> Schedule:
        """Parse a problem.md §3 object; structural errors name the field."""
        if not isinstance(data, dict):
            raise InputError(source, f"must be a JSON object, got {type(data).__name__}")
        check_keys(data, source, _KEYS, ("status", "assignment", "tasks"))
        if data["status"] not in STATUSES:
            raise InputError(f"{source}.status", f"must be one of {STATUSES}, got {data['status']!r}")
        assignment = data["assignment"]
        if not isinstance(assignment, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in assignment.items()
        ):
            raise InputError(f"{source}.assignment", "must map client names to helper names or null")
        if not isinstance(data["tasks"], list):
            raise InputError(f"{source}.tasks", "must be a list")
        tasks = [_task(f"{source}.tasks[{n}]", t) for n, t in enumerate(data["tasks"])]
        return cls(
            instance=str(data.get("instance", "")),
            solver=str(data.get("solver", "")),
            status=data["status"],
            makespan=_opt_number(f"{source}.makespan", data.get("makespan")),
            lower_bound=_opt_number(f"{source}.lower_bound", data.get("lower_bound")),
            runtime_s=_opt_number(f"{source}.runtime_s", data.get("runtime_s", 0.0)) or 0.0,
            assignment=dict(assignment),
            tasks=tasks,
            round_time=_opt_number(f"{source}.round_time", data.get("round_time")),
            cuts=_cuts(f"{source}.cuts", data.get("cuts")),
        )


def read_schedule(path: str | Path) -> Schedule:
    """Read a schedule JSON file."""
    path = Path(path)
    return Schedule.from_dict(load_json(path), source=path.name)


def write_schedule(schedule: Schedule, path: str | Path) -> None:
    """Write a schedule JSON file atomically."""
    write_json(schedule.to_dict(), path)


def _cuts(field_name: str, value: Any) -> dict[str, tuple[int, int]] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError(field_name, "must map client names to [a, b]")
    out = {}
    for client, cut in value.items():
        ok = isinstance(cut, list) and len(cut) == 2 and all(type(v) is int and v >= 0 for v in cut)
        if not ok or cut[0] >= cut[1]:
            raise InputError(f"{field_name}.{client}", f"must be [a, b] with 0 <= a < b, got {cut!r}")
        out[str(client)] = (cut[0], cut[1])
    return out


def _opt(v: float | None) -> float | None:
    return None if v is None else float(v)


def _opt_number(field_name: str, v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise InputError(field_name, f"must be a finite number or null, got {v!r}")
    if abs(float(v)) > MAX_SCHEDULE_MS:
        raise InputError(field_name, f"must be within +-{MAX_SCHEDULE_MS:g} ms, got {v!r}")
    return float(v)


def _task(field_name: str, t: Any) -> Task:
    if not isinstance(t, dict):
        raise InputError(field_name, "must be an object")
    check_keys(t, field_name, _TASK_KEYS, ("client", "helper", "phase", "start", "end"))
    if not isinstance(t["client"], str) or not isinstance(t["helper"], str):
        raise InputError(field_name, "client and helper must be strings")
    if t["phase"] not in PHASES:
        raise InputError(f"{field_name}.phase", f"must be 'fwd' or 'bwd', got {t['phase']!r}")
    batch = t.get("batch", 0)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 0:
        raise InputError(f"{field_name}.batch", f"must be an integer >= 0, got {batch!r}")
    start = _opt_number(f"{field_name}.start", t["start"])
    end = _opt_number(f"{field_name}.end", t["end"])
    if start is None or end is None:
        raise InputError(field_name, "start and end must be numbers")
    return Task(client=t["client"], helper=t["helper"], phase=t["phase"], start=start, end=end, batch=batch)
