"""Training benchmark: simulator overhead, achieved FLOP/s and time-to-accuracy per schedule.

    python benchmarks/training.py              # all tables (8 min of CPU; 18 min wall on the loaded 2-core machine)
    python benchmarks/training.py --csv r.csv  # also every round's wall and CPU time per variant
    python benchmarks/training.py --quick      # K = 20 only, 3 rounds, 1 repeat, 10 TTA rounds (about 3 minutes)
    python benchmarks/training.py --overhead   # only the overhead, breakdown and throughput tables
    python benchmarks/training.py --tta        # only the time-to-accuracy tables

torch runs with ``--threads`` threads (default 1).

Overhead: ``run_training`` (splitfed1, the per-client path: every step computes in event order inside SimPy)
against a plain PyTorch loop doing the same arithmetic on the same batches without the simulator. The plain loop
uses the same ``prepare_training`` (data, partition, initial model, the strategy's per-client copies and their optimizers),
the hook's data order (``TrainingHooks.begin_round`` + ``batch``) and the strategy's FedAvg; per client batch:
head -> body -> tail forward, summed cross-entropy / n, one backward, the body's and the client's optimizer steps.
Both evaluate the global model on the test set after every round (run_training's default). Two more references
split the difference: "hooks" runs ``TrainingHooks.run`` (the simulated run's per-step code) client after client,
"replay" runs it on the steps in the engine's event order (recorded once by a cost-only run), both without SimPy.
"plain2" is a second, identical plain loop: plain2 / plain is the measurement's own noise (an A/A test). The five
run in lockstep: between two rounds of ``run_training`` (its ``on_round``) each reference does the same round, so
the measurements of a round are seconds apart on this shared, noisy machine; the tables give the median and
quartiles of the per-round ratios to the geometric mean of the two plain loops, over the rounds after the first
(the first also deep-copies the K model copies), and the ratio of the fastest rounds.
CPU time (``process_time``) is the main clock: it does not count the time other processes hold the core. The final
global parameters of all five runs are compared bit for bit.

Throughput: the FLOPs of one forward + backward of every client batch of a round (``FlopCounterMode``: matmuls and
convolutions only), over the run's time per round, against this machine's dense float32 matmul rate
(1024 x 1024 x 1024, the fastest of 20 calls per measurement) with the same torch thread count.

Time-to-accuracy: the bundled testbed (20 clients, 3 helpers), digits, splitfed1, default training settings,
seed 0 for everything (data, partition, initial model, data order, stragglers, solver), so only the schedule differs.
First table: the default round (one local epoch in batches of 16) under the schedule solved for the testbed's
instance (one batch of the profile's 128 samples), as ``sched train --compare-solvers random,greedy,equid,auto``
does. Second table: ``--batches-per-round 5`` with the solvers given the instance that round amounts to
(``pslsched.simulator.plan_instance``), so that planned and simulated makespans agree (at most 10
rounds: 90% comes at round 6).
"""

from __future__ import annotations

# This file's name may equal a module of the project: keep its folder off the import path.
import argparse
import dataclasses
import functools
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from pslsched.core.testbed import build, default_testbed_path, load_testbed, scale_clients
from pslsched.simulator import (
    RecordingHooks,
    SimConfig,
    TaskEvent,
    orders_from_schedule,
    parse_stragglers,
    plan_instance,
    simulate,
)
from pslsched.solvers import solve
from pslsched.training import TrainConfig, load_dataset, runner

HELPER_MEMORY_MB = 16384  # K = 100: each helper may hold every client's body (the default testbed holds ~21)


def md(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def testbed_for(k: int):
    """The bundled testbed with K clients; K > 20: helper memory raised so the bodies fit."""
    tb = load_testbed(default_testbed_path())
    if k != sum(g.count for g in tb.clients):
        tb = scale_clients(tb, k)
        tb = tb.model_copy(
            update={"helpers": [h.model_copy(update={"memory_mb": HELPER_MEMORY_MB}) for h in tb.helpers]}
        )
    return build(tb)


# --- three ways of training the same thing ------------------------------------------------------------------


def now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t0: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU) seconds since ``t0``."""
    t1 = now()
    return t1[0] - t0[0], t1[1] - t0[1]


def round_plan(prep, r: int):
    """Round r's RoundPlan (without a sampler: the same every round)."""
    planner = getattr(prep, "planner", None)
    return planner(r, []) if planner is not None else prep.plan


def _setup(built, schedule, sim, cfg, dataset):
    instance = built.instance
    prep = runner.prepare_training(instance, cfg, sim.seed, dataset)
    assign, _ = orders_from_schedule(instance, schedule)
    return prep, assign, prep.executor(instance.clients, sim.seed)


# --- the reference runs: generators that do one round per next() ----------------------------------------------
# Each first sets up (prepare: same data, partition, initial model, strategy with its per-client copies and
# optimizers) and yields None; then every next() runs one round (the hook's data order via begin_round, which also
# loads the copies and makes fresh optimizers as in the simulated run; the strategy's FedAvg; the test-set
# evaluation run_training does after every round) and yields its (wall, CPU) seconds. ``out`` receives the
# Prepared (for the final parameters) and the accuracies.

CHAIN = ("head_fwd", "body_fwd", "tail", "body_bwd", "head_bwd")


def plain_rounds(built, schedule, sim, cfg, dataset, out: dict):
    """A plain PyTorch loop: client after client, per batch head -> body -> tail, summed cross-entropy / n, one
    backward, the body's and the client's optimizer steps (the same modules and optimizer objects)."""
    prep, assign, order = _setup(built, schedule, sim, cfg, dataset)
    data, strategy = prep.dataset, prep.strategy
    members = list(range(built.instance.num_clients))
    out.update(prep=prep, accuracies=[])
    yield None
    for r in range(sim.rounds):
        t0 = now()
        plan = round_plan(prep, r)
        order.begin_round(r, plan, assign)
        loss_sum = 0.0
        for j in members:
            head, body, tail = (strategy.parts[j][p] for p in ("head", "body", "tail"))
            c_opt, b_opt = strategy.client_opt[j], strategy.body_opt[j]
            for t in range(plan.steps):
                n = int(plan.samples[t, j])
                if n == 0:
                    continue
                x, y = order.batch(j, t)
                total = F.cross_entropy(tail(body(head(x))), y, reduction="sum")
                loss_sum += float(total.detach())
                (total / n).backward()
                b_opt.step()
                b_opt.zero_grad(set_to_none=True)
                c_opt.step()
                c_opt.zero_grad(set_to_none=True)
                strategy.samples[j] += n  # FedAvg weights
        strategy.end_round(members)
        out["accuracies"].append(runner.evaluate(prep.parts, data.x_test, data.y_test)[1])
        yield since(t0)


def hooks_rounds(built, schedule, sim, cfg, dataset, out: dict, steps=None):
    """The simulated run's per-step code (``TrainingHooks.run``: detached cut tensors, three backward calls, the
    strategy's after-step calls) without the engine: client after client (``steps=None``) or in the engine's
    event order (``steps``: every round's recorded compute steps; clients interleaved, many batches in flight)."""
    prep, assign, hooks = _setup(built, schedule, sim, cfg, dataset)
    data = prep.dataset
    members = list(range(built.instance.num_clients))
    out.update(prep=prep, accuracies=[])
    yield None
    for r in range(sim.rounds):
        t0 = now()
        plan = round_plan(prep, r)
        hooks.begin_round(r, plan, assign)
        if steps is None:
            for j in members:
                i = int(assign[j])
                for t in range(plan.steps):
                    n = int(plan.samples[t, j])
                    if n:
                        for kind in CHAIN:
                            hooks.run(TaskEvent(kind, r, t, j, i, 0.0, 0.0, n))
        else:
            for step in steps[r]:
                hooks.run(step)
        hooks.end_round(r, members)
        out["accuracies"].append(runner.evaluate(prep.parts, data.x_test, data.y_test)[1])
        yield since(t0)


def event_order(built, schedule, sim, cfg, dataset) -> dict[int, list[TaskEvent]]:
    """The compute steps of every round in the order the engine runs them (a cost-only run with a recorder;
    with profile durations and no stragglers the order does not depend on the training)."""
    prep = runner.prepare_training(built.instance, cfg, sim.seed, dataset)
    rec = RecordingHooks()
    simulate(
        built.instance,
        schedule,
        sim,
        workload=built.workload,
        hooks=rec,
        plan=lambda r, res: round_plan(prep, r),
    )
    steps: dict[int, list[TaskEvent]] = {r: [] for r in range(sim.rounds)}
    for step in rec.steps:
        if step.kind in CHAIN:
            steps[step.round].append(step)
    return steps


VARIANTS = ("sim", "plain", "plain2", "hooks", "replay")
PLAINS = ("plain", "plain2")


def lockstep(built, schedule, sim, cfg, dataset, steps) -> tuple[dict[str, list], dict[str, dict]]:
    """``run_training`` with the reference runs advanced by one round each between its rounds (in its
    ``on_round``; rotating order), so the measurements of a round are taken within seconds of each other.
    "plain2" is a second, identical plain loop: plain2 / plain is the noise of the measurement (an A/A test).
    Returns per variant the (wall, CPU) seconds of every round, and what each run trained."""
    outs = {v: {} for v in VARIANTS}
    gens = {
        "plain": plain_rounds(built, schedule, sim, cfg, dataset, outs["plain"]),
        "plain2": plain_rounds(built, schedule, sim, cfg, dataset, outs["plain2"]),
        "hooks": hooks_rounds(built, schedule, sim, cfg, dataset, outs["hooks"]),
        "replay": hooks_rounds(built, schedule, sim, cfg, dataset, outs["replay"], steps),
    }
    for g in gens.values():
        next(g)  # set up
    times: dict[str, list] = {v: [] for v in outs}
    mark = {}
    original = runner.prepare_training

    def spy(*args, **kwargs):
        outs["sim"]["prep"] = original(*args, **kwargs)
        return outs["sim"]["prep"]

    def start() -> None:
        mark["t"] = now()

    def between(row: dict) -> None:
        times["sim"].append(since(mark["t"]))
        names = list(gens)
        k = len(times["sim"]) % len(names)
        for v in names[k:] + names[:k]:
            times[v].append(next(gens[v]))
        mark["t"] = now()

    runner.prepare_training = spy  # only to keep a handle on the trained model parts (no effect on the run)
    try:
        res = runner.run_training(
            built.instance,
            built.workload,
            schedule,
            sim,
            cfg,
            dataset=dataset,
            on_start=start,
            on_round=between,
        )
    finally:
        runner.prepare_training = original
    outs["sim"]["accuracies"] = res.metrics["test_accuracy"].tolist()
    return times, outs


def same_parameters(a, b) -> tuple[bool, float]:
    """(bitwise equal, max |difference|) of two Prepared's global models."""
    equal, diff = True, 0.0
    for part in ("head", "body", "tail"):
        sa, sb = a.parts[part].state_dict(), b.parts[part].state_dict()
        for name in sa:
            equal &= torch.equal(sa[name], sb[name])
            diff = max(diff, float((sa[name] - sb[name]).abs().max()))
    return equal, diff


# --- FLOPs ------------------------------------------------------------------------------------------------------


def round_flops(prep) -> float:
    """Matmul + convolution FLOPs of one forward + backward of every client batch of one round."""
    parts = prep.parts
    x = prep.dataset.x_train
    y = prep.dataset.y_train
    samples = round_plan(prep, 0).samples
    sizes, counts = np.unique(samples[samples > 0], return_counts=True)
    total = 0.0
    for n, c in zip(sizes, counts):
        with FlopCounterMode(display=False) as fc:
            loss = F.cross_entropy(parts["tail"](parts["body"](parts["head"](x[:n]))), y[:n])
            loss.backward()
        for m in parts.values():
            m.zero_grad(set_to_none=True)
        total += float(fc.get_total_flops()) * int(c)
    return total


def eval_flops(prep) -> float:
    parts = prep.parts
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        parts["tail"](parts["body"](parts["head"](prep.dataset.x_test)))
    return float(fc.get_total_flops())


def matmul_flops(repeats: int = 20) -> float:
    """This machine's dense float32 matmul rate (FLOP/s), 1024 x 1024 x 1024: the fastest of ``repeats`` (the
    least disturbed by whatever else the machine runs)."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * 1024**3 / min(times)


# --- tables -----------------------------------------------------------------------------------------------------


def _ratios(per: dict, v: str, clock: int) -> list[float]:
    """Per steady round: variant / reference - 1, in %, the reference being the geometric mean of the two
    identical plain loops (plain2 itself: against plain alone, the A/A test); clock 0 = wall, 1 = CPU."""
    if v == "plain2":
        return [100 * (a[clock] / b[clock] - 1) for a, b in zip(per["plain2"], per["plain"])]
    ref = [np.sqrt(a[clock] * b[clock]) for a, b in zip(per["plain"], per["plain2"])]
    return [100 * (a[clock] / b - 1) for a, b in zip(per[v], ref)]


def _median(per: dict, v: str, clock: int) -> float:
    return statistics.median(t[clock] for t in per[v])


def _spread(values: list[float]) -> str:
    """median [first quartile, third quartile]."""
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    return f"{q2:.1f} [{q1:.1f}, {q3:.1f}]"


def overhead(datasets, clients, rounds, repeats, csv=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows, where, thr, raw = [], [], [], []
    peaks = []
    for name in datasets:
        dataset = load_dataset(name, seed=runner.seeds(0)["split"])
        for k in clients:
            built = testbed_for(k)
            schedule = solve(built.instance, "greedy", time_limit=10, seed=0).schedule
            sim = SimConfig(rounds=rounds, seed=0)
            cfg = TrainConfig(dataset=name)
            steps = event_order(built, schedule, sim, cfg, dataset)
            per = {v: [] for v in VARIANTS}  # steady rounds: (wall, CPU)
            cost = []
            for rep in range(repeats):
                times, outs = lockstep(built, schedule, sim, cfg, dataset, steps)
                for v in per:
                    # the first round also deep-copies the K model copies (in every variant) and, in the first
                    # repeat, makes the first calls of every op: left out
                    per[v] += times[v][1:]
                    raw += [
                        {
                            "dataset": name,
                            "K": k,
                            "repeat": rep,
                            "round": r,
                            "variant": v,
                            "wall_s": w,
                            "cpu_s": c,
                        }
                        for r, (w, c) in enumerate(times[v])
                    ]
                t0 = now()
                runner.run_training(
                    built.instance, built.workload, schedule, sim, cfg, dataset=dataset, cost_only=True
                )
                cost.append(since(t0)[1] / rounds)
                peaks.append(matmul_flops())
                print(
                    f"{name} K={k} rep {rep} (CPU s/round): "
                    + ", ".join(f"{v} {np.mean([c for _, c in times[v][1:]]):.3f}" for v in per)
                    + f", cost-only {cost[-1]:.4f}",
                    file=sys.stderr,
                    flush=True,
                )
            equal, diff = same_parameters(outs["sim"]["prep"], outs["plain"]["prep"])
            for v in VARIANTS[2:]:
                equal &= same_parameters(outs[v]["prep"], outs["plain"]["prep"])[0]
            same_acc = all(outs[v]["accuracies"] == outs["plain"]["accuracies"] for v in per)
            ratios = functools.partial(_ratios, per)
            med = functools.partial(_median, per)
            plan = round_plan(outs["sim"]["prep"], 0)
            batches = int((plan.samples > 0).sum())
            rows.append(
                {
                    "dataset": name,
                    "K": k,
                    "batches/round": batches,
                    "steady_rounds": len(per["sim"]),
                    "plain_cpu_s": round(med("plain", 1), 3),
                    "sim_cpu_s": round(med("sim", 1), 3),
                    "overhead_%_cpu": _spread(ratios("sim", 1)),
                    "overhead_%_min_cpu": round(
                        100 * (min(c for _, c in per["sim"]) / min(c for v in PLAINS for _, c in per[v]) - 1),
                        1,
                    ),
                    "overhead_%_wall": round(statistics.median(ratios("sim", 0)), 1),
                    "A/A_%_cpu": _spread(ratios("plain2", 1)),
                    "same_params": equal,
                    "max_abs_diff": f"{diff:.1e}",
                    "same_accuracy": same_acc,
                }
            )
            hook, replay, sim_ = (statistics.median(ratios(v, 1)) for v in ("hooks", "replay", "sim"))
            where.append(
                {
                    "dataset": name,
                    "K": k,
                    "hook_code_%": round(hook, 1),
                    "event_order_%": round(replay - hook, 1),
                    "engine_%": round(sim_ - replay, 1),
                    "cost_only_%": round(100 * statistics.median(cost) / med("plain", 1), 1),
                    "sim-plain_us/batch": round(1e4 * sim_ * med("plain", 1) / batches),
                }
            )
            thr.append(
                {
                    "dataset": name,
                    "K": k,
                    "train": round_flops(outs["sim"]["prep"]),
                    "eval": eval_flops(outs["sim"]["prep"]),
                    "sim": (med("sim", 0), med("sim", 1)),
                    "plain": med("plain", 1),
                }
            )
    if csv:
        pd.DataFrame(raw).to_csv(csv, index=False)
    peak = max(peaks)  # the machine's rate: the fastest matmul of the whole benchmark
    throughput = [
        {
            "dataset": t["dataset"],
            "K": t["K"],
            "train_GFLOP/round": round(t["train"] / 1e9, 2),
            "eval_GFLOP/round": round(t["eval"] / 1e9, 3),
            "matmul_GFLOP/s": round(peak / 1e9, 1),
            "sim_GFLOP/s_wall": round(t["train"] / t["sim"][0] / 1e9, 2),
            "sim_%_of_matmul_wall": round(100 * t["train"] / t["sim"][0] / peak, 1),
            "sim_GFLOP/s_cpu": round(t["train"] / t["sim"][1] / 1e9, 2),
            "sim_%_of_matmul_cpu": round(100 * t["train"] / t["sim"][1] / peak, 1),
            "plain_%_of_matmul_cpu": round(100 * t["train"] / t["plain"] / peak, 1),
        }
        for t in thr
    ]
    return pd.DataFrame(rows), pd.DataFrame(where), pd.DataFrame(throughput)


def tta(rounds, time_limit, matched: bool) -> pd.DataFrame:
    """Time to 90% per solver's schedule, without and with heavy stragglers.

    ``matched=False``: the default round (one local epoch in batches of 16) run with the schedule solved for the
    testbed's instance (one batch of the profile's 128 samples), as ``sched train --compare-solvers`` does.
    ``matched=True``: ``--batches-per-round 5`` (every client 5 batches of 16, a uniform plan) and the solvers get
    the instance that round amounts to (``plan_instance``), so the planned makespan is the round's compute phase."""
    built = testbed_for(20)
    dataset = load_dataset("digits", seed=runner.seeds(0)["split"])
    # defaults: digits, splitfed1, batch 16, adam lr 0.01, iid partition, target 0.9
    cfg = TrainConfig(batches_per_round=5) if matched else TrainConfig()
    instance = built.instance
    solve_for = instance
    if matched:
        plan = round_plan(runner.prepare_training(instance, cfg, 0, dataset), 0)
        solve_for = plan_instance(instance, plan, built.workload)
        instance = dataclasses.replace(instance, batches=plan.steps)  # the helpers' orders cover 5 steps
    rows = []
    for solver in ("random", "greedy", "equid", "auto"):
        res = solve(solve_for, solver, time_limit=time_limit, seed=0)
        for level in ("none", "heavy"):
            sim = SimConfig(rounds=rounds, stragglers=parse_stragglers(level), seed=0)
            t0 = time.perf_counter()
            out = runner.run_training(instance, built.workload, res.schedule, sim, cfg, dataset=dataset)
            wall = time.perf_counter() - t0
            s = out.summary()
            reached = s["time_to_accuracy_ms"]
            rounds_to = None
            if reached is not None:
                ok = out.metrics["test_accuracy"] >= cfg.target_accuracy
                rounds_to = int(out.metrics["round"][ok].iloc[0]) + 1
            rows.append(
                {
                    "solver": solver,
                    "stragglers": level,
                    "planned_makespan_ms": round(res.makespan, 1),
                    "mean_makespan_ms": round(s["mean_makespan_ms"], 1),
                    "mean_round_ms": round(s["mean_round_time_ms"], 1),
                    "time_to_90%_ms": "not reached" if reached is None else round(reached, 1),
                    "rounds_to_90%": "-" if rounds_to is None else rounds_to,
                    "final_accuracy": round(s["final_accuracy"], 4),
                    "wall_s": round(wall, 1),
                }
            )
            print(rows[-1], file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="K = 20 only, 3 rounds, 1 repeat, 10 TTA rounds")
    ap.add_argument("--csv", help="write every round's wall and CPU time per variant here")
    ap.add_argument("--overhead", action="store_true")
    ap.add_argument("--tta", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None, help="overhead rounds (default 5, quick 3)")
    ap.add_argument("--tta-rounds", type=int, default=None, help="default 20, quick 10")
    ap.add_argument(
        "--time-limit", type=float, default=None, help="solver limit for TTA (default 10, quick 2)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    both = not (args.overhead or args.tta)
    t0 = time.perf_counter()
    print(
        f"machine: nproc {os.cpu_count()}, torch {torch.__version__}, torch threads {torch.get_num_threads()}\n"
    )
    if args.overhead or both:
        clients = (20,) if args.quick else (20, 100)
        rounds = args.rounds or (3 if args.quick else 5)
        repeats = args.repeats or (1 if args.quick else 2)
        table, where, thr = overhead(("digits", "mnist5k"), clients, rounds, repeats, args.csv)
        print(
            f"### Overhead: run_training vs a plain PyTorch loop (splitfed1, greedy schedule, {repeats} x "
            f"{rounds} rounds in lockstep; per-round ratios over the rounds after the first: median [quartiles])"
            "\n\n" + md(table) + "\n"
        )
        print("### Where the difference goes (CPU time, % of the plain loop)\n\n" + md(where) + "\n")
        print("### Throughput (matmul + conv FLOPs of forward + backward)\n\n" + md(thr) + "\n")
    if args.tta or both:
        rounds = args.tta_rounds or (10 if args.quick else 20)
        limit = args.time_limit or (2.0 if args.quick else 10.0)
        table = tta(rounds, limit, matched=False)
        print(
            f"### Time to 90% test accuracy: digits, bundled testbed (20 clients), splitfed1, {rounds} rounds, "
            f"solvers at {limit:g} s, seed 0\n\n" + md(table) + "\n"
        )
        rounds = min(rounds, 10)  # 90% comes at round 6: 10 rounds show it at half the cost
        table = tta(rounds, limit, matched=True)
        print(
            f"### Same, {rounds} rounds of 5 batches of 16, solvers given that round (plan_instance)\n\n"
            + md(table)
            + "\n"
        )
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
