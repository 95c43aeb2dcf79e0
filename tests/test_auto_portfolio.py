"""``auto`` as a portfolio (issue 25, item 1): never worse than any of its parts run alone with the same limit and
workers, schedules valid and every bound below every makespan.

The instances are small ones where each part reaches its final answer well inside the limit (``cpsat`` proves the
optimum in ~0.4 s, most of it its process's start; ``lns`` stops by its stall rule or meets the bound in ~1 s), so
the comparison is not decided by timing noise. Each one catches a way of chaining the parts that loses: on the two
K = 10 instances LNS alone stalls above the optimum (the chain that ran LNS alone under short limits), on
tirana2 K = 40 CP-SAT alone with one worker stays above it (the chain that ran CP-SAT alone on small models).
"""

from __future__ import annotations

import dataclasses

import pytest

from pslsched.core.generators import generate
from pslsched.core.validate import validate
from pslsched.solvers import solve

PARTS = ("cpsat", "lns", "greedy", "random", "equid", "ed-fcfs")
WITH_WORKERS = ("auto", "cpsat")
TOL = 1e-9

CASES = [
    ("tirana2", 10, 3, 1.0),  # cpsat alone: 7912 (optimal); lns alone: 8465
    ("ganian2", 10, 3, 1.0),  # cpsat alone: 14966 (optimal); lns alone: 15140 when it has no time for CP-SAT
    ("tirana2", 40, 3, 3.0),  # lns alone: 44137 (meets the bound); cpsat alone: 44563
]


def solve_all(instance, limit: float) -> dict:
    """auto and each part alone, same limit, seed and one worker; each on a fresh copy (its own bound cache)."""
    results = {}
    for name in ("auto", *PARTS):
        options = {"workers": 1} if name in WITH_WORKERS else {}
        copy = dataclasses.replace(instance)
        results[name] = solve(copy, name, time_limit=limit, seed=0, **options)
    return results


@pytest.mark.parametrize("family, k, h, limit", CASES)
def test_auto_is_never_worse_than_its_parts(family, k, h, limit):
    inst = generate(family, k, h, seed=0)
    results = solve_all(inst, limit)
    bound = max(r.lower_bound for r in results.values())
    for name, res in results.items():
        assert res.schedule is not None, (name, res.message)
        assert validate(inst, res.schedule) == [], name
        assert res.lower_bound <= res.makespan * (1 + TOL), name
        assert bound <= res.makespan * (1 + TOL), name  # no makespan below any proved bound
    auto = results["auto"]
    parts = {name: results[name].makespan for name in PARTS}
    assert auto.makespan <= min(parts.values()) * (1 + TOL), (auto.makespan, parts)
    assert auto.status == "optimal"  # the best part reaches the optimum on these instances
    assert {"cpsat", "lns"} <= set(auto.extra["ran"])


def test_a_bound_met_by_lns_stops_cpsat():
    """On tirana2 K = 40 LNS meets the bound: CP-SAT (which would search to the limit) is stopped."""
    inst = generate("tirana2", 40, 3, seed=0)
    res = solve(inst, "auto", time_limit=3.0, seed=0, workers=1)
    assert res.status == "optimal" and res.extra["chosen"] == "lns"
    assert res.extra["ran"]["cpsat"] is None  # stopped: its answer dropped
    assert res.runtime_s < 0.8 * 3.0  # LNS meets it after ~1 s; the portfolio does not wait for the limit
