"""Shared fixtures: the problem.md example, small hand-made instances and a quiet hypothesis profile.

The hypothesis instance strategy lives in ``tests/strategies.py`` (``from strategies import instances``).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from pslsched.core.instance import Instance
from pslsched.core.schedule import Schedule

# The machine is shared and slow at times: no per-example deadline; example counts stay per test.
settings.register_profile(
    "pslsched.core", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("pslsched.core")

EXAMPLE: dict[str, Any] = {
    "name": "example",
    "unit": "ms",
    "clients": ["c0", "c1"],
    "helpers": ["h0"],
    "release": [[5.0], [7.0]],
    "fwd": [[2.0], [2.0]],
    "delay": [[10.0], [3.0]],
    "bwd": [[4.0], [4.0]],
    "tail": [[1.0], [6.0]],
    "demand": [100.0, 100.0],
    "capacity": [512.0],
}

EXAMPLE_SCHEDULE: dict[str, Any] = {
    "instance": "example",
    "solver": "hand",
    "status": "optimal",
    "makespan": 22.0,
    "lower_bound": 22.0,
    "runtime_s": 0.0,
    "assignment": {"c0": "h0", "c1": "h0"},
    "tasks": [
        {"client": "c0", "helper": "h0", "phase": "fwd", "start": 5.0, "end": 7.0},
        {"client": "c1", "helper": "h0", "phase": "fwd", "start": 7.0, "end": 9.0},
        {"client": "c1", "helper": "h0", "phase": "bwd", "start": 12.0, "end": 16.0},
        {"client": "c0", "helper": "h0", "phase": "bwd", "start": 17.0, "end": 21.0},
    ],
}


def _fresh_copy(name: str, data: dict[str, Any], what: str):
    """A fixture ``name`` giving a fresh deep copy of ``data`` (safe to mutate)."""

    def fixture() -> dict[str, Any]:
        return copy.deepcopy(data)

    fixture.__doc__ = f"A fresh deep copy of the {what} (safe to mutate)."
    return pytest.fixture(name=name)(fixture)


example_dict = _fresh_copy("example_dict", EXAMPLE, "problem.md §2 instance object")
example_schedule_dict = _fresh_copy(
    "example_schedule_dict", EXAMPLE_SCHEDULE, "problem.md §3 schedule object"
)


@pytest.fixture
def example_instance(example_dict: dict[str, Any]) -> Instance:
    """The problem.md §2 example: two clients, one helper, optimum 22 ms."""
    return Instance.from_dict(example_dict)


@pytest.fixture
def example_schedule(example_schedule_dict: dict[str, Any]) -> Schedule:
    """The problem.md §3 example schedule (valid and optimal for ``example_instance``)."""
    return Schedule.from_dict(example_schedule_dict)


@pytest.fixture
def two_helper_instance() -> Instance:
    """Three clients, two helpers with different speeds; client c2 cannot reach helper h1."""
    nan = np.nan
    return Instance(
        name="two-helpers",
        clients=("c0", "c1", "c2"),
        helpers=("h0", "h1"),
        release=np.array([[2.0, 3.0], [1.0, 4.0], [5.0, nan]]),
        fwd=np.array([[4.0, 2.0], [3.0, 2.0], [5.0, nan]]),
        delay=np.array([[6.0, 7.0], [2.0, 3.0], [4.0, nan]]),
        bwd=np.array([[8.0, 4.0], [6.0, 3.0], [9.0, nan]]),
        tail=np.array([[1.0, 2.0], [3.0, 1.0], [2.0, nan]]),
        demand=np.array([50.0, 60.0, 70.0]),
        capacity=np.array([200.0, 120.0]),
    )
