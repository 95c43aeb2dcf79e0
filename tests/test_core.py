"""Instance/schedule JSON, the validator, the bounds and the baselines (issue 2's property and unit tests)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from pslsched.core.bounds import chain_bound, lower_bounds
from pslsched.core.instance import Instance
from pslsched.core.schedule import Schedule, Task
from pslsched.core.timing import earliest_schedule
from pslsched.core.validate import validate
from pslsched.solvers import solve

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

from conftest import EXAMPLE  # noqa: E402  (the problem.md example)


def example() -> Instance:
    return Instance.from_dict(json.loads(json.dumps(EXAMPLE)))


def test_problem_md_example_schedule_is_valid_and_optimal():
    inst = example()
    sched = Schedule(
        "example",
        "hand",
        "optimal",
        22.0,
        22.0,
        0.0,
        {"c0": "h0", "c1": "h0"},
        [
            Task("c0", "h0", "fwd", 5.0, 7.0),
            Task("c1", "h0", "fwd", 7.0, 9.0),
            Task("c1", "h0", "bwd", 12.0, 16.0),
            Task("c0", "h0", "bwd", 17.0, 21.0),
        ],
    )
    assert validate(inst, sched) == []
    assert lower_bounds(inst).best == 22.0
    for name in ("random", "greedy"):
        res = solve(inst, name)
        assert res.status == "optimal" and res.makespan == 22.0


def test_local_option_used_when_memory_is_short():
    inst = Instance(
        name="loc",
        clients=("a", "b"),
        helpers=("x",),
        **{m: np.ones((2, 1)) for m in ("release", "fwd", "delay", "bwd", "tail")},
        demand=np.array([60.0, 60.0]),
        capacity=np.array([100.0]),
        local=np.array([np.nan, 7.0]),
        batches=2,
    )
    res = solve(inst, "greedy")
    assert res.schedule.assignment == {"a": "x", "b": None}
    assert validate(inst, res.schedule) == []
    assert res.makespan == 14.0  # b trains 2 batches locally: 2 x 7 ms
    assert chain_bound(inst) == 10.0


def test_earliest_schedule_matches_orders_and_rejects_cycles():
    inst = example()
    tasks, completion = earliest_schedule(
        inst, [0, 0], [[(0, "fwd", 0), (1, "fwd", 0), (1, "bwd", 0), (0, "bwd", 0)]]
    )
    assert max(completion) == 22.0
    with pytest.raises(ValueError, match="cyclic"):
        earliest_schedule(inst, [0, 0], [[(0, "bwd", 0), (0, "fwd", 0), (1, "fwd", 0), (1, "bwd", 0)]])


def test_class_lp_bound_is_valid_and_weaker_than_the_full_lp(monkeypatch):
    import pslsched.core.bounds as bounds
    from pslsched.core.generators import generate

    inst = generate("tirana1", 60, 6, seed=4)
    full = bounds.lower_bounds(inst, time_limit=5)
    classes = bounds.helper_classes(inst)
    assert 1 < len(classes) < inst.num_helpers
    value = bounds._class_lp_load(inst, time_limit=5)
    assert value is not None and value <= full.load_lp + 1e-6
    for name in ("greedy", "equid", "lns"):
        res = solve(inst, name, time_limit=3)
        assert value <= res.makespan
    monkeypatch.setattr(bounds, "IP_PAIR_LIMIT", 200)  # 360 pairs: the large-instance path; 120 class pairs
    big = generate("tirana1", 60, 6, seed=4)  # a new object: not cached
    rep = bounds.lower_bounds(big, time_limit=5)
    assert rep.load_ip is None and rep.load_lp == pytest.approx(max(value, bounds._closed_form_load(big)))
