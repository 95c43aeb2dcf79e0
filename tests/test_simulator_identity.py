"""Identity with the plan for every registered solver (new ones included) on random instances, B = 1..3."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from strategies import instances

from pslsched.core.validate import validate
from pslsched.simulator import SimConfig, simulate
from pslsched.solvers import available_solvers, solve


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_clients=4, max_helpers=2, memory=False, fits_somewhere=True))
def test_every_solver_static_one_round_matches_its_schedule(inst):
    for name in sorted(available_solvers()):
        res = solve(inst, name, time_limit=1.0, seed=0)
        if res.schedule is None:
            continue
        assert validate(inst, res.schedule) == [], name
        assert res.lower_bound <= res.makespan + 1e-9, name
        rec = simulate(inst, res.schedule, SimConfig())
        assert math.isclose(rec.makespans[0], res.makespan, rel_tol=1e-9, abs_tol=1e-9), name
        assert validate(inst, rec.round_schedule(0)) == [], name
