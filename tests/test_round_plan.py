"""The whole round as the plan (problem.md §1, "The round" and "Memory"): the exchange, the shared body, the cut."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from solver_instances import random_instance
from strategies import instances

from pslsched.base.errors import InfeasibleInput, InputError
from pslsched.core.exchange import Exchange, round_time
from pslsched.core.instance import Instance
from pslsched.core.round_model import ROUND_MODELS, for_strategy, round_model
from pslsched.core.testbed import build, default_testbed_path, load_testbed
from pslsched.core.testbed import parse_testbed as parse_mapping
from pslsched.core.testbed.cut_choice import candidate_cuts
from pslsched.core.timing import earliest_schedule
from pslsched.core.validate import validate
from pslsched.solvers import solve

VGG_LAB = """
name: vgg19-pi-lab
seed: 3
model: {profile: vgg19_cifar10}
cuts: {a: 3, b: 20}
helpers:
  - {name: jetson, device: jetson-gpu, memory_mb: 4096}
  - {name: laptop, device: laptop, memory_mb: 4096}
clients:
  - {name: rpi, count: 4, device: d1, uplink_mbps: {dist: uniform, low: 1, high: 4}, latency_ms: 5}
"""


def parse_testbed(text: str):
    return parse_mapping(yaml.safe_load(text))


def with_exchange(inst: Instance, seed: int, down_per_helper: bool = False) -> Instance:
    """A random exchange; the download per client only (an aggregator every client reaches) unless asked."""
    rng = np.random.default_rng(seed)
    k, h = inst.num_clients, inst.num_helpers
    up = np.where(inst.reachable, rng.uniform(0, 30, (k, h)), np.nan)
    per = rng.uniform(0, 30, (k, h)) if down_per_helper else np.repeat(rng.uniform(0, 30, (k, 1)), h, axis=1)
    down = np.where(inst.reachable, per, np.nan)
    return dataclasses.replace(
        inst, exchange=Exchange(up=up, down=down, aggregate_ms=float(rng.uniform(0, 5)))
    )


def brute_round(inst: Instance) -> float:
    """The least round time over every assignment and per-helper forward order (one batch, tiny instances)."""
    best = math.inf
    k, h = inst.num_clients, inst.num_helpers
    for assign in itertools.product(range(h), repeat=k):
        if any(
            inst.demand[[j for j in range(k) if assign[j] == i]].sum() > inst.capacity[i] for i in range(h)
        ):
            continue
        if any(not inst.reachable[j, assign[j]] for j in range(k)):
            continue
        per = [[j for j in range(k) if assign[j] == i] for i in range(h)]
        for fwd in itertools.product(*(itertools.permutations(p) for p in per)):
            for bwd in itertools.product(*(itertools.permutations(p) for p in per)):
                orders = [[(j, "fwd", 0) for j in f] + [(j, "bwd", 0) for j in b] for f, b in zip(fwd, bwd)]
                _, completion = earliest_schedule(inst, list(assign), orders)
                best = min(best, round_time(inst, np.array(assign), completion))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_exact_solvers_plan_the_round_not_the_makespan(seed):
    inst = with_exchange(random_instance(4, 2, seed), seed)
    optimum = brute_round(inst)
    for name in ("cpsat", "milp"):
        res = solve(inst, name, time_limit=20, seed=0, workers=1)
        assert validate(inst, res.schedule) == []
        assert res.round_time == pytest.approx(optimum, rel=1e-6), name
        assert res.status == "optimal"
        assert res.lower_bound <= res.round_time + 1e-6


def test_a_download_that_depends_on_the_helper_is_never_claimed_optimal_beyond_its_bound():
    for seed in range(6):
        inst = with_exchange(random_instance(4, 2, seed), seed, down_per_helper=True)
        optimum = brute_round(inst)
        res = solve(inst, "cpsat", time_limit=20, seed=0, workers=1)
        assert validate(inst, res.schedule) == []
        assert res.lower_bound <= optimum + 1e-6 <= res.round_time + 2e-6
        if res.status == "optimal":
            assert res.round_time == pytest.approx(optimum, rel=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_every_solver_bound_is_below_its_validated_round(seed):
    inst = with_exchange(
        random_instance(6, 3, 100 + seed, batches=1 + seed % 2), seed, down_per_helper=seed % 3 == 0
    )
    for name in ("greedy", "equid", "lns", "auto"):
        res = solve(inst, name, time_limit=2, seed=0, workers=1)
        assert validate(inst, res.schedule) == [], name
        assert res.schedule.round_time == pytest.approx(res.round_time)
        assert res.lower_bound <= res.round_time * (1 + 1e-9) + 1e-6, name


def test_the_validator_checks_the_round_time_and_a_bound_on_it():
    inst = with_exchange(random_instance(5, 2, 7), 7)
    res = solve(inst, "greedy")
    good = res.schedule
    assert validate(inst, good) == []
    assert any(
        "round_time" in p for p in validate(inst, dataclasses.replace(good, round_time=good.round_time - 1))
    )
    too_high = dataclasses.replace(good, lower_bound=good.round_time + 1)
    assert any("exceeds the round time" in p for p in validate(inst, too_high))


def test_exchange_and_body_memory_round_trip_through_json():
    inst = dataclasses.replace(
        with_exchange(random_instance(4, 2, 3), 3), body_memory=np.array([5.0, 7.0]), demand=np.ones(4)
    )
    back = Instance.from_dict(json.loads(json.dumps(inst.to_dict())))
    assert np.allclose(back.exchange.up, inst.exchange.up, equal_nan=True)
    assert back.exchange.aggregate_ms == inst.exchange.aggregate_ms
    assert list(back.body_memory) == [5.0, 7.0]
    bad = inst.to_dict()
    bad["exchange"]["up"] = [[1.0]]
    with pytest.raises(InputError, match="exchange.up"):
        Instance.from_dict(bad)


def test_a_shared_body_holds_what_a_body_per_client_cannot():
    built = build(load_testbed(default_testbed_path()))
    agg = 0
    per_client = for_strategy(built.instance, built.workload, ROUND_MODELS["splitfed1"], aggregator=agg)
    shared = for_strategy(built.instance, built.workload, ROUND_MODELS["psl"], aggregator=agg)
    # 4x the clients: the bodies per client no longer fit, one body per helper does
    many = {m: np.repeat(getattr(shared, m), 4, axis=0) for m in ("release", "fwd", "delay", "bwd", "tail")}
    names = tuple(f"c{j}" for j in range(4 * shared.num_clients))
    big_shared = dataclasses.replace(shared, clients=names, demand=np.repeat(shared.demand, 4), **many)
    big_per_client = dataclasses.replace(big_shared, demand=np.repeat(per_client.demand, 4), body_memory=None)
    assert solve(big_per_client, "greedy").status == "infeasible"
    res = solve(big_shared, "greedy")
    assert res.schedule is not None and validate(big_shared, res.schedule) == []
    # the validator rejects an over-full helper under the shared-body model
    tight = dataclasses.replace(big_shared, body_memory=big_shared.capacity - 1e-3)
    assert any("shared body" in p for p in validate(tight, res.schedule))


@pytest.mark.parametrize("strategy", [*sorted(ROUND_MODELS), "sglr:off=0"])  # SGLR without averaging: no gate
def test_each_strategys_clock_charges_the_exchange_the_planner_plans(strategy, tmp_path):
    """A cost-only training round of every strategy on the VGG lab with ``cuts: auto`` and two batches: the planned
    instance carries an exchange, a shared body, a local head, a step barrier and a gate exactly where the clock
    has one, and the plan's round time is the clock's, exactly."""
    pytest.importorskip("torch")
    from pslsched.app.requests import TrainRequest
    from pslsched.app.training import train

    lab = tmp_path / "lab.yaml"
    # helpers' interfaces of 2 Gbit/s: every strategy averages its bodies across helpers, a trip of ~2 s each way
    nic = VGG_LAB.replace("memory_mb: 4096}", "memory_mb: 4096, nic_mbps: 2000}")
    # the cut chosen with the plan for two of them (276 candidates each), the cut it chooses for the others
    chosen = "cuts: auto" if strategy in ("splitfed1", "psl") else "cuts: {a: 6, b: 24}"
    lab.write_text(nic.replace("cuts: {a: 3, b: 20}", chosen))
    if strategy in ("locsplitfed", "sglr"):  # and at the given cut, three steps
        given = TrainRequest(
            dataset="digits",
            rounds=1,
            threads=1,
            cost_only=True,
            solver="greedy",
            strategy=strategy,
            clients=6,
            batches_per_round=3,
        )
        run = train(given)
        clock = float(run.result.rounds["round_time_ms"].iloc[0])
        assert clock == pytest.approx(run.schedule.round_time or run.schedule.makespan, rel=1e-9)
    request = TrainRequest(
        profile=str(lab),
        dataset="digits",
        rounds=1,
        threads=1,
        cost_only=True,
        solver="greedy",
        strategy=strategy,
        batches_per_round=2,
    )
    outcome = train(request)
    planned = outcome.experiment.planned_instance
    rounds = outcome.result.rounds
    exchange = float(rounds["round_time_ms"].iloc[0] - rounds["makespan_ms"].iloc[0])
    assert (planned.exchange is not None and float(np.nanmax(planned.exchange.up)) > 0) == (exchange > 0)
    assert (planned.body_memory is not None) == round_model(strategy).shared_body
    assert planned.local_head == (strategy == "locsplitfed")
    assert planned.step_barrier == (strategy.split(":")[0] in ("psl", "sglr", "locfedmix"))
    assert planned.gated == (strategy == "sglr")
    assert planned.exchange.helper_up is not None and planned.exchange.helper_up.max() > 1000
    assert validate(planned, outcome.schedule) == []
    clock, plan = (
        float(rounds["round_time_ms"].iloc[0]),
        outcome.schedule.round_time or outcome.schedule.makespan,
    )
    assert clock == pytest.approx(plan, rel=1e-9)


def test_simulate_of_a_solved_plan_is_the_planned_round(tmp_path):
    lab = tmp_path / "lab.yaml"
    lab.write_text(VGG_LAB)
    for extra in ([], ["--cuts", "auto"]):
        out = tmp_path / f"plan{len(extra)}"
        cmd = [sys.executable, "-m", "pslsched.cli", "solve", "--profile", str(lab), "--time-limit", "2"]
        subprocess.run(
            [*cmd, "--baselines", "none", "--out", str(out), *extra], check=True, capture_output=True
        )
        plan = json.loads((out / "schedule.json").read_text())
        sim = tmp_path / f"sim{len(extra)}"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pslsched.cli",
                "simulate",
                "--profile",
                str(lab),
                "--schedule",
                str(out / "schedule.json"),
                "--rounds",
                "1",
                "--out",
                str(sim),
                *extra,
            ],
            check=True,
            capture_output=True,
        )
        rounds = (sim / "rounds.csv").read_text().splitlines()
        header, row = rounds[0].split(","), rounds[1].split(",")
        simulated = float(row[header.index("round_time_ms")])
        assert simulated == pytest.approx(plan["round_time"], rel=1e-9)


def test_cuts_auto_beats_the_given_cut_and_never_loses_to_it():
    testbed = parse_testbed(VGG_LAB.replace("cuts: {a: 3, b: 20}", "cuts: auto"))
    cands = candidate_cuts(testbed)
    assert (3, 20) in cands and len(cands) > 10
    from pslsched.app.cut_planning import choose_cut
    from pslsched.app.experiment import strategy_instance

    def instance_of(b):
        return strategy_instance(b.instance, b.workload, None, b.testbed.simulation)

    started = time.perf_counter()
    fixed, choice, res = choose_cut(testbed, instance_of, solver="greedy", time_limit=1, given=(3, 20))
    elapsed = time.perf_counter() - started
    assert 0.9 * elapsed <= res.runtime_s <= elapsed  # the whole choice's time, not its last solve's
    assert res.schedule.runtime_s == res.runtime_s
    at_given = solve(instance_of(build(parse_testbed(VGG_LAB))), "greedy")
    assert res.round_time <= at_given.round_time
    assert res.round_time < 0.2 * at_given.round_time  # VGG's fully connected layers off the clients
    assert choice.bound <= res.round_time
    assert validate(instance_of(build(fixed)), res.schedule) == []


@pytest.mark.parametrize("limit", [0.5, 2.0])
def test_cuts_auto_keeps_its_time_limit_and_says_what_it_planned(limit):
    # 276 candidates on the VGG lab: at 0.5 s the ranking is cut short, at 2 s every candidate is planned
    testbed = parse_testbed(VGG_LAB.replace("cuts: {a: 3, b: 20}", "cuts: auto"))
    from pslsched.app.cut_planning import choose_cut
    from pslsched.app.experiment import strategy_instance

    def instance_of(b):
        return strategy_instance(b.instance, b.workload, None, b.testbed.simulation)

    choose_cut(testbed, instance_of, solver="greedy", time_limit=0.2, given=(3, 20))  # imports, caches
    started = time.perf_counter()
    fixed, choice, res = choose_cut(
        testbed,
        instance_of,
        solver="auto",
        time_limit=limit,
        given=(3, 20),
        options={"workers": 1},
        per_client=True,
    )
    elapsed = time.perf_counter() - started
    assert elapsed <= 1.05 * limit + 0.2, f"{elapsed:.2f} s for {limit} s"
    assert validate(instance_of(build(fixed)), res.schedule) == []
    planned = choice.table["round_ms"].notna()
    assert choice.planned == int(planned.sum()) and choice.planned > 0
    text = choice.what_if(res.round_time)
    if choice.planned < len(choice.table):
        assert f"{choice.planned} planned of {len(choice.table)}" in text and "every global cut" not in text
        # the bound claims only the candidates planned
        assert choice.table.loc[~planned, "bound_ms"].isna().all()
    else:
        assert limit == 2.0 and "every global cut" in text
    assert choice.bound <= res.round_time * (1 + 1e-9)


def test_bad_cuts_are_one_clear_error():
    with pytest.raises(InputError, match="not meaningful"):
        candidate_cuts(
            parse_testbed(
                VGG_LAB.replace("cuts: {a: 3, b: 20}", "cuts: {allowed: [{a: 3, b: 20}]}")
                .replace("device: d1", "device: d2")
                .replace("{a: 3, b: 20}]", "{a: 4, b: 20}]")
            )
        )
    small = VGG_LAB.replace("cuts: {a: 3, b: 20}", "cuts: auto").replace(
        "latency_ms: 5}", "latency_ms: 5, memory_mb: 1}"
    )
    with pytest.raises(InfeasibleInput, match=r"clients\[0\].memory_mb"):
        candidate_cuts(parse_testbed(small))


def test_cuts_auto_with_no_cut_a_client_can_hold_exits_3(tmp_path):
    lab = tmp_path / "lab.yaml"
    lab.write_text(VGG_LAB.replace("latency_ms: 5}", "latency_ms: 5, memory_mb: 1}"))
    p = subprocess.run(
        [sys.executable, "-m", "pslsched.cli", "solve", "--profile", str(lab), "--cuts", "auto"],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 3
    assert p.stderr.strip().count("\n") == 0 and "memory_mb" in p.stderr and "Traceback" not in p.stderr


def test_unknown_strategy_is_refused():
    with pytest.raises(InputError, match="--strategy"):
        round_model("nosuch")


def test_a_per_client_cut_beats_every_global_cut_where_clients_differ():
    """Two candidate cuts, each better for one half of the clients: the search mixes them, the mix's round is
    below both global cuts', and the option bounds stay below the validated round."""
    from pslsched.app.cut_planning import _client_search
    from pslsched.core.cut_options import compose, envelope, options_bound

    base = with_exchange(random_instance(6, 2, 11), 11)
    half = np.arange(6) < 3
    scale0 = np.where(half, 0.3, 1.0)[:, None]
    scale1 = np.where(half, 1.0, 0.3)[:, None]

    def scaled(f):
        return dataclasses.replace(base, **{m: getattr(base, m) * f for m in ("release", "delay", "tail")})

    insts = [scaled(scale0), scaled(scale1)]
    rounds = [solve(x, "greedy").round_time for x in insts]
    picks = _client_search(insts, int(np.argmin(rounds)), 0, math.inf)
    assert picks is not None and len(set(picks.tolist())) == 2
    mixed = compose(insts, picks)
    res = solve(mixed, "cpsat", time_limit=10, workers=1)
    assert validate(mixed, res.schedule) == []
    assert res.round_time < min(rounds) - 1e-6
    lp = options_bound(insts)
    assert lp > solve(envelope(insts), "greedy").lower_bound * 0.5  # not a trivial bound
    for bound in (solve(envelope(insts), "greedy").lower_bound, lp):
        for choice in itertools.product(range(2), repeat=6):
            x = compose(insts, np.array(choice))
            assert bound <= solve(x, "greedy").round_time + 1e-6


def test_client_cuts_in_a_testbed_and_a_schedule_run_on_the_clock(tmp_path):
    text = VGG_LAB.replace("cuts: {a: 3, b: 20}", "cuts: {a: 3, b: 20}\nclient_cuts: {rpi-1: {a: 6, b: 24}}")
    built = build(parse_testbed(text))
    plain = build(parse_testbed(VGG_LAB))
    assert built.instance.demand[1] != plain.instance.demand[1]
    assert built.instance.demand[0] == plain.instance.demand[0]
    with pytest.raises(InputError, match="client_cuts.nosuch"):
        build(parse_testbed(text.replace("rpi-1:", "nosuch:")))
    with pytest.raises(InputError, match="client_cuts.rpi-1"):
        build(parse_testbed(text.replace("{a: 6, b: 24}}", "{a: 6, b: 99}}")))


def test_an_instance_json_with_an_exchange_simulates_its_planned_round(tmp_path):
    from pslsched.core.instance import write_instance
    from pslsched.simulator import SimConfig, simulate

    inst = with_exchange(random_instance(6, 2, 5), 5)
    res = solve(inst, "cpsat", time_limit=5, workers=1)
    rec = simulate(inst, res.schedule, SimConfig())
    assert float(rec.rounds["round_time_ms"].iloc[0]) == pytest.approx(res.round_time, rel=1e-9)
    path = tmp_path / "inst.json"
    write_instance(inst, path)
    out = tmp_path / "s"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pslsched.cli",
            "solve",
            "--instance",
            str(path),
            "--baselines",
            "none",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    assert "round " in p.stdout and "exchange" in p.stdout


@given(instances(max_clients=5, max_helpers=3), st.integers(0, 2**31 - 1), st.booleans())
@settings(max_examples=20, deadline=None)
def test_no_bound_is_above_a_validated_round_time(inst, seed, per_helper):
    """Any instance (local clients, several batches, unreachable pairs), any exchange, a shared body or not."""
    inst = with_exchange(inst, seed, down_per_helper=per_helper)
    rng = np.random.default_rng(seed)
    if inst.local is not None:
        ex = inst.exchange
        inst = dataclasses.replace(
            inst,
            exchange=dataclasses.replace(
                ex,
                local_up=rng.uniform(0, 9, inst.num_clients),
                local_down=rng.uniform(0, 9, inst.num_clients),
            ),
        )
    if seed % 2:
        inst = dataclasses.replace(inst, body_memory=rng.uniform(0, 0.3, inst.num_helpers) * inst.capacity)
    for name in ("greedy", "equid", "cpsat"):
        res = solve(inst, name, time_limit=2, workers=1)
        if res.schedule is None:
            continue
        assert validate(inst, res.schedule) == [], name
        assert res.lower_bound <= res.round_time * (1 + 1e-9) + 1e-6, name


def test_one_allowed_cut_is_todays_model_and_several_never_lose_to_the_best_single_one():
    from pslsched.app.cut_planning import choose_cut
    from pslsched.app.experiment import strategy_instance

    def instance_of(b):
        return strategy_instance(b.instance, b.workload, None, b.testbed.simulation)

    one = parse_testbed(VGG_LAB.replace("cuts: {a: 3, b: 20}", "cuts: {allowed: [{a: 6, b: 24}]}"))
    fixed = parse_testbed(VGG_LAB.replace("cuts: {a: 3, b: 20}", "cuts: {a: 6, b: 24}"))
    _, choice, res = choose_cut(one, instance_of, solver="cpsat", time_limit=4, options={"workers": 1})
    today = solve(instance_of(build(fixed)), "cpsat", time_limit=4, workers=1)
    assert res.round_time == pytest.approx(today.round_time, rel=1e-9)
    assert choice.cut == (6, 24) and len(choice.table) == 1
    allowed = "cuts: {allowed: [{a: 3, b: 20}, {a: 6, b: 24}, {a: 3, b: 24}, {a: 10, b: 24}]}"
    several = parse_testbed(VGG_LAB.replace("cuts: {a: 3, b: 20}", allowed))
    fixed, choice, res = choose_cut(
        several, instance_of, solver="cpsat", time_limit=4, options={"workers": 1}, per_client=True
    )
    assert validate(instance_of(build(fixed)), res.schedule) == []
    for cut in ((3, 20), (6, 24), (3, 24), (10, 24)):
        text = VGG_LAB.replace("cuts: {a: 3, b: 20}", f"cuts: {{a: {cut[0]}, b: {cut[1]}}}")
        single = solve(instance_of(build(parse_testbed(text))), "cpsat", time_limit=2, workers=1)
        assert res.round_time <= single.round_time * (1 + 1e-9), cut
        assert choice.bound <= single.round_time * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(2))
def test_cpsat_over_cut_options_proves_the_best_mix(seed):
    """CP-SAT with (cut, helper) options per client: its round equals the best over every mix of two cuts (each
    mix solved to optimality), its bound is below it, and its schedule validates on its mix."""
    from pslsched.core.cut_options import compose
    from pslsched.solvers.cut_mix import solve_mix

    base = with_exchange(random_instance(4, 2, 40 + seed), seed)
    rng = np.random.default_rng(seed)
    other = dataclasses.replace(
        base,
        **{
            m: getattr(base, m) * rng.uniform(0.3, 1.7, (4, 1))
            for m in ("release", "fwd", "delay", "bwd", "tail")
        },
        demand=base.demand * rng.uniform(0.5, 1.5, 4),
    )
    insts = [base, other]
    best = math.inf
    for choice in itertools.product(range(2), repeat=4):
        res = solve(compose(insts, np.array(choice)), "cpsat", time_limit=10, workers=1)
        if res.status == "optimal":
            best = min(best, res.round_time)
        else:
            assert res.status == "infeasible"
    start = solve(base, "greedy")
    mixed = solve_mix(insts, np.zeros(4, dtype=int), start, time_limit=20, workers=1)
    assert mixed is not None
    cuts, answer, every_mix = mixed
    mix = compose(insts, cuts)
    assert validate(mix, answer.schedule) == []
    assert answer.status == "optimal"
    assert answer.round_time == pytest.approx(best, rel=1e-6)
    assert every_mix <= best * (1 + 1e-9)


def _exchange_by_definition(w, a):
    """Each (client, option) pair's upload and download over ``Workload.exchange_hop``, one at a time."""
    from pslsched.core.workload import transfer_ms

    k, h = w.uplink_mbps.shape
    up, down = np.full((k, h), np.nan), np.full((k, h), np.nan)
    local_up, local_down = np.zeros(k), np.zeros(k)
    for j in range(k):
        for i in [*range(h), -1]:
            if i >= 0 and np.isnan(w.uplink_mbps[j, i]):
                continue
            hop = w.exchange_hop(j, i, a)
            size = w.client_weights_bytes[j]
            u = 0.0 if hop is None else float(transfer_ms(size, w.uplink_mbps[j, hop], w.latency_ms[j, hop]))
            d = (
                0.0
                if hop is None
                else float(transfer_ms(size, w.downlink_mbps[j, hop], w.latency_ms[j, hop]))
            )
            if i >= 0:
                up[j, i], down[j, i] = u, d
            else:
                local_up[j], local_down[j] = u, d
    return up, down, local_up, local_down


@pytest.mark.parametrize("example", ["campus_topology", "hybrid_local", "vgg19_small"])
def test_the_exchange_is_what_the_simulator_charges_pair_by_pair(example):
    from pslsched.core.round_model import exchange_of

    path = Path(__file__).resolve().parents[1] / "pslsched/profiles/examples" / f"{example}.yaml"
    built = build(load_testbed(path))
    for a in range(built.instance.num_helpers):
        ex = exchange_of(built.workload, a, 0.0)
        want = _exchange_by_definition(built.workload, a)
        for got, ref in zip((ex.up, ex.down, ex.local_up, ex.local_down), want):
            assert np.allclose(got, ref, equal_nan=True, rtol=0, atol=1e-9)


@pytest.mark.parametrize("strategy", ["splitfed2", "locsplitfed", "sglr"])
def test_sched_simulate_of_a_strategys_solved_plan_is_its_planned_round(strategy, tmp_path):
    """``sched solve --strategy S`` then ``sched simulate --strategy S --schedule``: the clock runs S's round (its
    exchange, memory, sequential helpers, local head, barrier and gate, the bodies' trip) as it was planned."""
    from pslsched.app.requests import SimulateRequest, SolveRequest
    from pslsched.app.simulating import simulate as run_simulate
    from pslsched.app.solving import solve as run_solve
    from pslsched.core.schedule import write_schedule

    lab = tmp_path / "lab.yaml"
    lab.write_text(VGG_LAB.replace("memory_mb: 4096}", "memory_mb: 4096, nic_mbps: 2000}"))
    solved = run_solve(
        SolveRequest(profile=str(lab), strategy=strategy, solver="greedy", baselines=[], time_limit=2)
    )
    assert solved.violations == []
    assert solved.instance.sequential == (strategy == "splitfed2")
    path = tmp_path / "schedule.json"
    write_schedule(solved.result.schedule, path)
    outcome = run_simulate(SimulateRequest(profile=str(lab), strategy=strategy, schedule=str(path), rounds=1))
    clock = float(outcome.record.rounds["round_time_ms"].iloc[0])
    assert clock == pytest.approx(solved.result.round_time or solved.result.makespan, rel=1e-9)


def test_a_strategys_options_set_its_rounds_waits():
    assert round_model("splitfed2").sequential and not round_model("splitfed2:order=interleaved").sequential
    assert round_model("sglr").gated and not round_model("sglr:p=0.5,off=0").gated
    assert round_model("psl").step_barrier and not round_model("splitfed1").step_barrier
    with pytest.raises(InputError, match="off"):
        round_model("sglr:off=x")
