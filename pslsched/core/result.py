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
    # the round time (problem.md §1, "The round") where the instance has a round-end exchange; the bound is then
    # a bound on it
    round_time: float | None = None

    @property
    def objective(self) -> float | None:
        """What was planned: the round time where the instance has an exchange, else the makespan."""
        return self.round_time if self.round_time is not None else self.makespan

    @property
    def exchange_ms(self) -> float | None:
        """The round time less the makespan (None without an exchange)."""
        if self.round_time is None or self.makespan is None:
            return None
        return self.round_time - self.makespan

    @property
    def gap(self) -> float | None:
        """(objective - LB) / LB, or None without an answer or a positive bound."""
        if self.objective is None or self.lower_bound <= 0:
            return None
        return max(0.0, (self.objective - self.lower_bound) / self.lower_bound)
