"""Hooks: what runs when a step happens in simulated time, and where a step's duration comes from.

The engine calls ``hooks.run(step)`` for every step in event order; cost-only runs use ``NoHooks``. A hook may
also define ``begin_round(r, plan, assign)`` (called before round r starts, with its ``RoundPlan`` or None and
the clients' helper indices, -1 = local) and ``end_round(r, members)`` (called at the round's aggregation with the
clients that finished it). Real split
training plugs in here: a hook performs the step's computation (between SimPy yields; SimPy time is virtual) and
may return the wall time it measured. The ``DurationSource`` then decides the step's simulated duration: the profile
(default) or the measured wall time times a device speed factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TaskEvent:
    """One step of a client's chain (or of the round-end aggregation)."""

    kind: str  # head_fwd, upload_a, body_fwd, download_b, tail, upload_b, body_bwd, download_a, head_bwd,
    # release/delay/tail_opaque (instance-only runs), local, aggregate_up, aggregate, aggregate_down,
    # sync (a synchronous step's barrier opened; ``batch`` is the step), broadcast (helper ``helper``'s averaged
    # cut-a gradient of step ``batch`` is sent to its clients)
    round: int
    batch: int
    client: int
    helper: int  # -1 for local training / no helper (aggregate: the aggregator, -1 without helpers)
    base_ms: float  # the profiled (or instance) duration of the step, scaled to its samples
    at_ms: float = 0.0  # simulated time the step starts, from the round's start
    samples: int | None = None  # samples the step processes (None: the profile's batch, no round plan)


class Hooks(Protocol):
    """What runs a step: the measured wall time in ms, or None (the duration source then uses the profile)."""

    def run(self, step: TaskEvent) -> float | None: ...


class DurationSource(Protocol):
    """Where a step's simulated duration comes from, given what its hook measured."""

    def duration(self, step: TaskEvent, measured_ms: float | None) -> float: ...


class NoHooks:
    """Cost-only mode: nothing runs, nothing is measured."""

    def run(self, step: TaskEvent) -> float | None:
        return None


class RecordingHooks(NoHooks):
    """Records every step in the order the simulation executes them (for tests and debugging)."""

    def __init__(self) -> None:
        self.steps: list[TaskEvent] = []

    def run(self, step: TaskEvent) -> float | None:
        self.steps.append(step)
        return None


class ProfileDurations:
    """Durations from the profile / instance (virtual time)."""

    def duration(self, step: TaskEvent, measured_ms: float | None) -> float:
        return step.base_ms


@dataclass
class MeasuredDurations:
    """Durations from the hook's measured wall time times a per-device speed factor (profile when unmeasured).

    ``speed[device]`` scales this machine's wall time to the device the step is simulated on.
    """

    client_speed: dict[int, float]
    helper_speed: dict[int, float]

    def duration(self, step: TaskEvent, measured_ms: float | None) -> float:
        if measured_ms is None:
            return step.base_ms
        if step.kind in ("body_fwd", "body_bwd"):
            return measured_ms * self.helper_speed.get(step.helper, 1.0)
        return measured_ms * self.client_speed.get(step.client, 1.0)
