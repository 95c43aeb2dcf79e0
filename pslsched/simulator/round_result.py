"""What one simulated round produced: completion times, helper busy time, bytes, dropouts and its task timeline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pslsched.simulator.round_plan import RoundPlan


@dataclass
class RoundResult:
    """What one round produced."""

    start: float
    makespan_ms: float
    round_time_ms: float
    completion: np.ndarray  # absolute completion time per client (NaN = dropped / not finished)
    busy_ms: np.ndarray  # per helper
    bytes_sent: float
    dropped: list[int] = field(default_factory=list)  # clients that dropped out
    tasks: list[tuple] = field(default_factory=list)  # (round, batch, j, i, phase, ready, start, end)
    timed_out: list[int] = field(default_factory=list)  # clients still running when the round timed out
    samples: int = 0  # samples processed by the clients that finished (0 without a round plan)
    steps: int = 0  # steps (batches) of the round
    plan: RoundPlan | None = None
    client_ms: np.ndarray | None = None  # per client: time in its own compute and transfers (no queue waits)
    assign: np.ndarray | None = None  # the assignment this round ran (replan may change it between rounds)
    orders: list | None = None  # the helpers' template orders this round ran (static policies)

    def shift(self, clock: float) -> None:
        """Move the times from the round's start (0) to ``clock``, the run's time."""
        self.start = clock
        self.completion = self.completion + clock
        self.tasks = [(*t[:5], t[5] + clock, t[6] + clock, t[7] + clock) for t in self.tasks]
