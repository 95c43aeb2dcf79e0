"""Simulator faults and round ends: dropouts under static orders, round timeouts, aggregation, the aggregator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pslsched.base.errors import InputError
from pslsched.cli import main
from pslsched.core.instance import Instance
from pslsched.core.testbed import build, default_testbed_path, load_testbed
from pslsched.core.validate import validate
from pslsched.core.workload import Workload, instance_times
from pslsched.simulator import RecordingHooks, SimConfig, parse_stragglers, simulate
from pslsched.solvers import solve

NAN = float("nan")


@pytest.fixture(scope="module")
def testbed():
    built = build(load_testbed(default_testbed_path()))
    res = solve(built.instance, "greedy", time_limit=2.0, seed=0)
    assert res.schedule is not None and validate(built.instance, res.schedule) == []
    assert res.lower_bound <= res.makespan
    return built, res.schedule


def _two_clients() -> tuple[Instance, Workload]:
    """Client c0 on helper h0 (80 Mbit/s up, 160 down, no latency); c1 has no link and trains locally."""
    k1 = np.array([[1.0], [NAN]])
    w = Workload(
        client_devices=("phone", "phone"),
        helper_devices=("vm",),
        head_fwd_ms=np.array([1.0, 1.0]),
        head_bwd_ms=np.array([2.0, 2.0]),
        tail_fwd_ms=np.array([1.0, 1.0]),
        tail_bwd_ms=np.array([1.0, 1.0]),
        body_fwd_ms=3.0 * k1,
        body_bwd_ms=4.0 * k1,
        cut_a_bytes=np.array([1e6, 1e6]),
        cut_b_bytes=np.array([5e5, 5e5]),
        uplink_mbps=80.0 * k1,
        downlink_mbps=160.0 * k1,
        latency_ms=0.0 * k1,
        client_weights_bytes=np.array([2e6, 2e6]),
    )
    inst = Instance(
        name="two",
        clients=("c0", "c1"),
        helpers=("h0",),
        demand=np.ones(2),
        capacity=np.array([10.0]),
        local=np.array([NAN, 50.0]),
        **instance_times(w),
    )
    return inst, w


def test_aggregation_times_bytes_and_a_client_without_links():
    inst, work = _two_clients()
    res = solve(inst, "greedy", time_limit=2.0, seed=0)
    assert res.schedule.assignment == {"c0": "h0", "c1": None}
    assert validate(inst, res.schedule) == [] and res.lower_bound <= res.makespan
    hooks = RecordingHooks()
    rec = simulate(inst, res.schedule, SimConfig(aggregate_ms=5.0), workload=work, hooks=hooks)
    row = rec.rounds.iloc[0]
    assert math.isclose(row["makespan_ms"], res.makespan, rel_tol=1e-9)
    # c0 uploads 2 MB at 80 Mbit/s (200 ms), the average takes 5 ms, c0 downloads at 160 Mbit/s (100 ms);
    # c1 has no link to anyone and takes no part in the transfers
    assert math.isclose(row["round_time_ms"], res.makespan + 305.0, rel_tol=1e-12)
    assert row["bytes_sent"] == 2 * 1e6 + 2 * 5e5 + 2 * 2e6
    kinds = [s.kind for s in hooks.steps]
    assert kinds[-3:] == ["aggregate_up", "aggregate", "aggregate_down"]


def test_instance_only_runs_call_the_aggregation_hook():
    inst, _ = _two_clients()
    res = solve(inst, "greedy", time_limit=2.0, seed=0)
    hooks = RecordingHooks()
    rec = simulate(inst, res.schedule, SimConfig(rounds=2, aggregate_ms=7.0), hooks=hooks)
    assert [s.kind for s in hooks.steps].count("aggregate") == 2
    assert math.isclose(rec.rounds["round_time_ms"].iloc[0], res.makespan + 7.0, rel_tol=1e-12)
    assert math.isclose(rec.rounds["start_ms"].iloc[1], res.makespan + 7.0, rel_tol=1e-12)


def test_static_dropouts_do_not_block_the_other_clients(testbed):
    built, sched = testbed
    for policy in ("static", "fcfs"):
        cfg = SimConfig(policy=policy, rounds=3, dropout=0.3, round_timeout_ms=1e7, seed=2)
        rec = simulate(built.instance, sched, cfg, workload=built.workload)
        assert rec.rounds["dropped"].sum() > 0, policy
        assert rec.rounds["timed_out"].sum() == 0, policy  # everyone who stayed finished
        comp = rec.completion.merge(rec.rounds[["round", "dropped"]], on="round")
        missing = comp.groupby("round")["completion_ms"].apply(lambda s: int(s.isna().sum()))
        assert list(missing) == list(rec.rounds["dropped"]), policy
        assert (rec.rounds["makespan_ms"] == 1e7).all()  # the round waited for the silent clients


def test_round_timeout_cuts_off_late_clients(testbed):
    built, sched = testbed
    timeout = 1.2 * sched.makespan
    cfg = SimConfig(
        stragglers=parse_stragglers("client:fixed:value=2;helper:fixed:value=2;link:fixed:value=2"),
        round_timeout_ms=timeout,
    )
    rec = simulate(built.instance, sched, cfg, workload=built.workload)
    row = rec.rounds.iloc[0]
    assert row["timed_out"] > 0 and row["dropped"] == 0
    assert row["makespan_ms"] == timeout and row["round_time_ms"] > timeout
    assert rec.completion["completion_ms"].isna().sum() == row["timed_out"]
    assert (rec.timeline["end"] <= timeout + 1e-9).all()  # nothing of the cut-off clients ran after the close
    assert rec.summary()["timed_out_clients"] == row["timed_out"]


def test_unknown_aggregator(testbed, capsys):
    built, sched = testbed
    with pytest.raises(InputError, match="simulation.aggregator"):
        simulate(built.instance, sched, SimConfig(aggregator="moon"), workload=built.workload)
    assert main(["simulate", "--aggregator", "moon"]) == 2
    assert "aggregator" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--round-timeout", "-1"])
    assert exc.value.code == 2


def test_a_hook_error_is_not_swallowed():
    inst, work = _two_clients()
    res = solve(inst, "greedy", time_limit=2.0, seed=0)

    class Broken(RecordingHooks):
        def run(self, step):
            if step.kind == "body_bwd":
                raise RuntimeError("training step failed")
            return super().run(step)

    with pytest.raises(RuntimeError, match="training step failed"):
        simulate(inst, res.schedule, SimConfig(), workload=work, hooks=Broken())
