"""SolveResult: a solver's schedule with its status, lower bound, gap, runtime and anytime trajectory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pslsched.core.schedule import Schedule


@dataclass
class SolveResult:
    """What every registered solver returns."""

    solver: str
    status: str  # optimal | feasible | infeasible | unknown
    schedule: Schedule | None
    makespan: float | None
    lower_bound: float
    runtime_s: float
    bounds: dict[str, float | None] = field(default_factory=dict)
    trajectory: list[tuple[float, float | None, float]] = field(
        default_factory=list
    )  # (t_s, makespan, bound)
    options: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        """(makespan - LB) / LB, or None without a makespan or a positive bound."""
        if self.makespan is None or self.lower_bound <= 0:
            return None
        return max(0.0, (self.makespan - self.lower_bound) / self.lower_bound)
