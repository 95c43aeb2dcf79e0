"""Simulator invariants (issue 4): identity with the plan, validity, determinism, monotonicity, shared links."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from strategies import instances

from pslsched.base.errors import InputError
from pslsched.base.registry import catalogue
from pslsched.cli import main
from pslsched.core.generators import generate, generate_workload
from pslsched.core.instance import Instance
from pslsched.core.testbed import build, default_testbed_path, load_testbed
from pslsched.core.validate import validate
from pslsched.simulator import (
    POLICIES,
    STRAGGLER_DISTRIBUTIONS,
    DispatchPolicy,
    MeasuredDurations,
    RecordingHooks,
    SimConfig,
    config_from,
    parse_stragglers,
    simulate,
)
from pslsched.solvers import available_solvers, solve

ROOT = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _solved(inst, name="greedy", limit=2.0):
    res = solve(inst, name, time_limit=limit, seed=0)
    assert res.schedule is not None and validate(inst, res.schedule) == []
    return res.schedule


@FAST
@given(instances(max_clients=6, max_helpers=3, memory=False, fits_somewhere=True))
def test_identity_with_plan_random_instances(inst):
    for name in ("random", "greedy", "equid", "ed-fcfs"):
        sched = _solved(inst, name)
        rec = simulate(inst, sched, SimConfig())
        assert math.isclose(rec.makespans[0], sched.makespan, rel_tol=1e-9, abs_tol=1e-9)
        assert validate(inst, rec.round_schedule(0)) == []


@pytest.mark.parametrize("batches", [1, 3])
def test_identity_for_every_registered_solver(batches):
    inst, work = generate_workload("tirana1", 8, 2, seed=1)
    inst = dataclasses.replace(inst, batches=batches)
    for name in sorted(available_solvers()):
        res = solve(inst, name, time_limit=3.0, seed=0)
        if res.schedule is None:
            continue
        for wl in (None, work):  # opaque T1..T5 and the component breakdown agree
            rec = simulate(inst, res.schedule, SimConfig(), workload=wl)
            assert math.isclose(rec.makespans[0], res.makespan, rel_tol=1e-9), (name, wl is None)
            assert validate(inst, rec.round_schedule(0)) == []


def test_default_testbed_identity_and_files(tmp_path):
    built = build(load_testbed(default_testbed_path()))
    sched = _solved(built.instance)
    rec = simulate(built.instance, sched, SimConfig(links="shared"), workload=built.workload)
    assert math.isclose(rec.makespans[0], sched.makespan, rel_tol=1e-9)
    rec.write(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("planned_makespan_ms", "rounds", "makespan_ms", "mean_makespan_ms", "p95_makespan_ms"):
        assert key in summary
    assert list(rec.timeline.columns) == [
        "round",
        "batch",
        "client",
        "helper",
        "phase",
        "ready",
        "start",
        "end",
        "wait",
    ]
    assert (rec.timeline["wait"] >= 0).all()
    assert rec.rounds["bytes_sent"].iloc[0] > 0


def test_same_seed_same_run_different_seed_different():
    built = build(load_testbed(default_testbed_path()))
    sched = _solved(built.instance)
    cfg = SimConfig(
        rounds=3, stragglers=parse_stragglers("client:lognormal:sigma=0.3;helper:gaussian:sigma=0.1")
    )
    a = simulate(built.instance, sched, cfg, workload=built.workload)
    b = simulate(built.instance, sched, cfg, workload=built.workload)
    c = simulate(built.instance, sched, cfg.model_copy(update={"seed": 1}), workload=built.workload)
    assert a.makespans == b.makespans and a.timeline.equals(b.timeline)
    assert a.makespans != c.makespans


@FAST
@given(instances(max_clients=5, max_helpers=2, memory=False, local=False, fits_somewhere=True))
def test_static_dedicated_is_monotone(inst):
    sched = _solved(inst)
    base = simulate(inst, sched, SimConfig()).completion["completion_ms"].to_numpy()
    rng = np.random.default_rng(len(inst.clients))
    for field in ("release", "fwd", "delay", "bwd", "tail"):
        arr = np.array(getattr(inst, field))
        arr[rng.integers(inst.num_clients)] += 7.0  # slow one task down (NaN stays NaN)
        slower = dataclasses.replace(inst, **{field: arr})
        comp = simulate(slower, sched, SimConfig()).completion["completion_ms"].to_numpy()
        assert (comp >= base - 1e-9).all(), field


def test_shared_links_never_beat_dedicated():
    built = build(load_testbed(ROOT / "pslsched" / "profiles" / "examples" / "campus_topology.yaml"))
    for name in ("random", "greedy"):
        sched = _solved(built.instance, name)
        ded = simulate(built.instance, sched, SimConfig(), workload=built.workload)
        sh = simulate(built.instance, sched, SimConfig(links="shared"), workload=built.workload)
        d = ded.completion["completion_ms"].to_numpy()
        s = sh.completion["completion_ms"].to_numpy()
        assert (s >= d - 1e-6).all()
        assert (s > d + 1e-6).any()  # the campus access points and NICs really are shared
        assert math.isclose(ded.makespans[0], sched.makespan, rel_tol=1e-9)


def test_fcfs_anomaly_slower_task_shorter_makespan():
    """Graham-style anomaly: under FCFS, delaying client a's release lets b's long delay start earlier."""

    def inst(release_a: float) -> Instance:
        return Instance(
            name="anomaly",
            clients=("a", "b"),
            helpers=("h",),
            release=np.array([[release_a], [1.0]]),
            fwd=np.array([[10.0], [1.0]]),
            delay=np.array([[0.0], [100.0]]),
            bwd=np.array([[1.0], [1.0]]),
            tail=np.zeros((2, 1)),
            demand=np.ones(2),
            capacity=np.array([10.0]),
        )

    fast, slow = inst(0.0), inst(2.0)
    sched = _solved(fast)
    cfg = SimConfig(policy="fcfs")
    assert simulate(fast, sched, cfg).makespans[0] == 112.0
    assert (
        simulate(slow, sched, cfg).makespans[0] == 103.0
    )  # slowing a's release made everything finish earlier


def test_policies_stragglers_dropout_replan():
    built = build(load_testbed(default_testbed_path()))
    sched = _solved(built.instance)
    for policy in ("static", "fcfs", "priority", "replan"):
        rec = simulate(
            built.instance,
            sched,
            SimConfig(policy=policy, rounds=3, stragglers=parse_stragglers("heavy")),
            workload=built.workload,
        )
        assert len(rec.makespans) == 3 and min(rec.makespans) > 0
    rec = simulate(
        built.instance, sched, SimConfig(rounds=2, dropout=0.3, policy="fcfs"), workload=built.workload
    )
    assert rec.rounds["dropped"].sum() > 0
    assert rec.summary()["dropped_clients"] == rec.rounds["dropped"].sum()
    timed = simulate(
        built.instance,
        sched,
        SimConfig(rounds=1, dropout=0.3, round_timeout_ms=5000.0),
        workload=built.workload,
    )
    assert timed.makespans[0] == 5000.0  # the round closed at its timeout without the missing clients


def test_hooks_follow_event_order_and_measured_durations():
    inst, work = generate_workload("tirana1", 4, 2, seed=0)
    sched = _solved(inst)
    hooks = RecordingHooks()
    simulate(inst, sched, SimConfig(), workload=work, hooks=hooks)
    times = [s.at_ms for s in hooks.steps]
    assert times == sorted(times)
    kinds = [s.kind for s in hooks.steps if s.client == 0 and not s.kind.startswith("aggregate")]
    assert kinds == [
        "head_fwd",
        "upload_a",
        "body_fwd",
        "download_b",
        "tail",
        "upload_b",
        "body_bwd",
        "download_a",
        "head_bwd",
    ]

    class Measured(RecordingHooks):
        def run(self, step):
            super().run(step)
            return 1.0 if step.kind == "head_fwd" else None

    slow = simulate(
        inst,
        sched,
        SimConfig(),
        workload=work,
        hooks=Measured(),
        durations=MeasuredDurations(client_speed={0: 5000.0}, helper_speed={}),
    )
    assert (
        slow.completion["completion_ms"].iloc[0]
        > simulate(inst, sched, SimConfig(), workload=work).completion["completion_ms"].iloc[0]
    )


def test_bad_config():
    with pytest.raises(InputError, match="--stragglers"):
        parse_stragglers("disk:lognormal:sigma=1")
    with pytest.raises(InputError, match="unknown distribution 'zipf'"):
        parse_stragglers("client:zipf:sigma=1")
    with pytest.raises(InputError, match="stragglers.trace"):
        simulate(*_tiny(), SimConfig(stragglers=parse_stragglers("client:trace:path=/nonexistent")))
    with pytest.raises(InputError, match="simulation.rounds"):
        config_from({"rounds": 0})
    with pytest.raises(InputError, match="simulation.colour"):
        config_from({"colour": 1})


def _tiny():
    inst, _ = generate_workload("ganian1", 3, 1, seed=0)
    return inst, _solved(inst)


def test_cli_simulate(tmp_path, capsys):
    out = tmp_path / "sim"
    assert (
        main(["simulate", "--rounds", "3", "--stragglers", "mild", "--compare-policies", "--out", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    assert "planned makespan" in text and "priority" in text
    assert {p.name for p in out.iterdir()} == {
        "timeline.csv",
        "rounds.csv",
        "summary.json",
        "gantt.png",
        "report.html",
    }
    assert main(["simulate", "--stragglers", "moon:x", "--out", str(tmp_path / "bad")]) == 2
    assert "--stragglers" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    sched_dir = tmp_path / "solved"
    assert main(["solve", "--solver", "greedy", "--out", str(sched_dir)]) == 0
    assert (
        main(
            [
                "simulate",
                "--instance",
                str(sched_dir / "instance.json"),
                "--schedule",
                str(sched_dir / "schedule.json"),
                "--policy",
                "fcfs",
            ]
        )
        == 0
    )


def test_replan_keeps_the_current_plan_when_the_new_one_is_not_shorter():
    """Without stragglers the observed instance is the planned one: a worse solver's plan must not replace it."""
    inst = generate("ganian2", clients=8, helpers=2, seed=0)
    best = solve(inst, "cpsat", time_limit=10, seed=0, workers=1)
    assert best.status == "optimal" and not validate(inst, best.schedule)
    worse = solve(inst, "random", seed=0)
    assert worse.makespan > best.makespan + 1e-6  # random's plan would be a change for the worse
    config = SimConfig(rounds=3, policy="replan", replan_solver="random", replan_time_limit=0.5)
    record = simulate(inst, best.schedule, config)
    assert record.makespans == pytest.approx([best.makespan] * 3)


def test_policies_and_straggler_distributions_are_registries():
    assert POLICIES.names() == ["fcfs", "priority", "replan", "static"]
    assert all(issubclass(e.fn, DispatchPolicy) and e.summary for e in POLICIES.entries())
    assert [POLICIES.get(n).follows_orders for n in ("static", "replan", "fcfs", "priority")] == [
        True,
        True,
        False,
        False,
    ]
    assert STRAGGLER_DISTRIBUTIONS.names() == ["fixed", "gaussian", "lognormal", "pareto", "trace"]
    kinds = catalogue()
    assert [n for n, _ in kinds["dispatch policies"]] == POLICIES.names()
    assert [n for n, _ in kinds["straggler distributions"]] == STRAGGLER_DISTRIBUTIONS.names()
    with pytest.raises(InputError, match=r"simulation.policy: unknown policy 'lifo' \(known: fcfs, priority"):
        config_from({"policy": "lifo"})
    with pytest.raises(
        InputError, match=r"--stragglers: unknown distribution 'zipf' \(known: fixed, gaussian"
    ):
        parse_stragglers("client:zipf")


def test_batches_that_the_instance_does_not_have_are_refused():
    """SimConfig(batches=2) on a one-batch instance and schedule would silently run one batch: it is refused."""
    from pslsched.base.errors import InputError
    from pslsched.core.testbed import build, default_testbed_path, load_testbed
    from pslsched.solvers import solve as run

    built = build(load_testbed(default_testbed_path()))
    schedule = run(built.instance, "greedy").schedule
    with pytest.raises(InputError) as info:
        simulate(built.instance, schedule, SimConfig(batches=2), workload=built.workload)
    assert info.value.field == "simulation.batches"
    assert simulate(built.instance, schedule, SimConfig(batches=1), workload=built.workload).makespans
