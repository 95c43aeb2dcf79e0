"""The bodies' trip between helpers at the round's end (problem.md §1, "The round"): charged where a round used two
helpers or more, planned with and without it, executed by the clock as planned."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import yaml
from solver_instances import random_instance

from pslsched.base.errors import InputError
from pslsched.core.exchange import Exchange, round_time
from pslsched.core.instance import Instance
from pslsched.core.testbed import build, parse_testbed
from pslsched.core.timing import earliest_schedule
from pslsched.core.validate import validate
from pslsched.simulator import SimConfig, simulate
from pslsched.solvers import solve
from pslsched.solvers.body_trips import with_trips as evaluated
from pslsched.solvers.body_trips import without_trips


def with_trips(inst: Instance, up: float, down: float) -> Instance:
    k, h = inst.num_clients, inst.num_helpers
    zero = np.zeros((k, h))
    trips = np.full(h, up), np.full(h, down)
    trips[0][0] = trips[1][0] = 0.0  # helper 0 is the aggregator
    ex = Exchange(up=zero + 1.0, down=zero + 2.0, aggregate_ms=3.0, helper_up=trips[0], helper_down=trips[1])
    return dataclasses.replace(inst, exchange=ex.check(k, h))


def test_the_trips_read_and_write_and_go_together():
    inst = with_trips(random_instance(4, 3, 0), 5.0, 6.0)
    back = Instance.from_dict(inst.to_dict())
    assert list(back.exchange.helper_up) == [0.0, 5.0, 5.0]
    data = inst.to_dict()
    del data["exchange"]["helper_down"]
    with pytest.raises(InputError, match="helper_up"):
        Instance.from_dict(data)
    data = inst.to_dict()
    data["exchange"]["helper_up"] = [0.0, -1.0, 5.0]
    with pytest.raises(InputError) as info:
        Instance.from_dict(data)
    assert info.value.field == "instance.exchange.helper_up[1]"


def test_a_round_on_two_helpers_pays_the_trip_and_one_on_a_single_helper_does_not():
    inst = with_trips(random_instance(3, 2, 1), 50.0, 70.0)
    for assign in ([0, 1, 0], [1, 1, 1]):
        orders = [[(j, p, 0) for p in ("fwd", "bwd") for j in range(3) if assign[j] == i] for i in range(2)]
        tasks, completion = earliest_schedule(inst, assign, orders)
        plain = float(np.max(completion + 1.0) + 3.0 + 2.0)
        if len(set(assign)) == 1:  # one helper: its bodies are averaged where they are
            assert round_time(inst, np.array(assign), completion, tasks) == plain
        else:
            last_b = max(t.end for t in tasks if t.helper == inst.helpers[1])
            trip = max(float(np.max(completion + 1.0)), last_b + 50.0) + 3.0 + 70.0
            assert round_time(inst, np.array(assign), completion, tasks) == pytest.approx(trip, rel=1e-12)
            with pytest.raises(ValueError, match="tasks"):
                round_time(inst, np.array(assign), completion)


@pytest.mark.parametrize("trip,tight", [(0.5, False), (5e4, False), (60.0, True)])
def test_the_planner_keeps_the_shorter_round_with_the_trips_and_the_clock_repeats_it(trip, tight):
    # tight: no helper holds every client, so the bodies travel and their trip sets the round's end
    inst = with_trips(random_instance(6, 3, 2, tight_memory=tight), trip, trip)
    for name in ("greedy", "cpsat"):
        res = solve(inst, name, time_limit=1, workers=1)
        assert validate(inst, res.schedule) == [], name
        assert res.lower_bound <= res.round_time + 1e-6
        used = set(res.schedule.assignment.values())
        if trip > 1e4:  # a trip longer than any round: one helper serves everyone
            assert len(used) == 1, name
        if tight:
            assert len(used) > 1 and res.round_time > res.makespan + 1.0 + 3.0 + 60.0, name
        # never longer than the plan that ignores the trips, once it pays them
        plain = evaluated(inst, solve(without_trips(inst), name, time_limit=1, workers=1))
        assert res.round_time <= plain.round_time + 1e-6, name
        rec = simulate(inst, res.schedule, SimConfig())
        assert math.isclose(float(rec.rounds["round_time_ms"].iloc[0]), res.round_time, rel_tol=1e-9), name


def test_a_testbed_charges_the_trip_over_the_helpers_interfaces():
    text = """
name: two-helpers
model: {profile: resnet101_cifar10}
cuts: {a: 2, b: 35}
helpers:
  - {name: a, device: VM, memory_mb: 100000, nic_mbps: 100}
  - {name: b, device: VM, memory_mb: 100000}
clients:
  - {name: c, count: 4, device: d1, uplink_mbps: 10, latency_ms: 1}
"""
    from pslsched.app.experiment import strategy_instance

    built = build(parse_testbed(yaml.safe_load(text)))
    inst = strategy_instance(built.instance, built.workload, "psl", built.testbed.simulation)
    body = float(built.workload.body_weights_mb.max()) * 2**20
    # b sends its body over a's 100 Mbit/s interface (b's own is unlimited); the aggregator a sends nothing
    assert inst.exchange.helper_up[0] == 0.0
    assert inst.exchange.helper_up[1] == pytest.approx(body * 8 / 100e6 * 1e3)
    unlimited = build(parse_testbed(yaml.safe_load(text.replace(", nic_mbps: 100", ""))))
    plain = strategy_instance(unlimited.instance, unlimited.workload, "psl", unlimited.testbed.simulation)
    assert plain.exchange is None  # no interface rate: nothing to charge, the published instance unchanged
