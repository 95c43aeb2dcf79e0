"""Training at scale: a simulated epoch of psl + ugs against a plain PyTorch loop over the same global batches.

    python benchmarks/training_scale.py                              # K = 32, 1,000, 4,000 on mnist5k
    python benchmarks/training_scale.py --clients 32 1000 --repeats 1 --no-per-client

For every K the run is `sched train --strategy psl --sampler ugs --global-batch 64 --dataset mnist5k` for one
epoch (63 steps of 64 samples) on the bundled default testbed scaled to K clients (``scale_clients``; every helper's
``memory_mb`` raised to K x 200 MB so that the greedy schedule can place all of them; memory only shapes the
simulated schedule). Three variants train the same run (same seed, data, partition, schedule, plan) side by side in
one process, ``--repeats`` times, alternating their order:

* ``batched``: ``psl`` (the default ``path=batched``: each step computed at its barrier as one batch);
* ``per-client``: ``psl:path=per-client`` (every client's step in event order, the reference);
* ``plain``: a plain PyTorch loop over the same global batches (step t: the union of the step's client samples, in
  the same order) through the same initial model head -> body -> tail, mean cross-entropy, one backward, one Adam
  step (the runner's defaults: Adam, lr 0.01), without the simulator.

Wall time: the engine's epoch (SimPy clock plus the training hook, no evaluation, no set-up) and the plain loop's
epoch, ``time.perf_counter``, medians over the repeats, after ``--warmup`` untimed runs of every variant (torch's
first calls of each shape are slower); "hook s" is the part inside the training hook
(``TrainingHooks.compute_s``: the arithmetic and its bookkeeping), the rest is the simulator's. "CPU s": the same
epochs in this process's CPU time (``time.process_time``), medians: on a loaded machine the wall time includes the
waits for a core, the CPU time does not (one thread: on an idle machine the two agree). "max abs diff" is the largest absolute difference between
the batched and per-client paths' final global parameters (head, body and tail); ``--noise-floor`` adds how far the
per-client path moves from itself with one more torch thread (Adam on 63 steps amplifies float rounding), and
``--float64`` the difference of the two paths when both train in float64 (model and data; not timed): what is left
once float32 rounding is out of the way. The plain loop equals psl only with
one helper (the default testbed has 4: each body steps on its own clients' mean, so it is a timing reference only).
``torch.set_num_threads(--threads)`` (default 1).

``--large`` runs the scale row instead: K = ``--large-clients`` (10,000) clients on ``--large-dataset``
(``synthetic:n=60000,size=28``: 60,000 28x28 samples, generated offline), one epoch of each of
``--large-strategies`` with ``ugs`` and ``--global-batch``, each strategy in a fresh subprocess whose address space
is capped at ``--memory-limit-gb`` (``RLIMIT_AS``); it reports the wall time of each phase (dataset, testbed,
greedy solve, set-up, the engine's epoch and the hook's part of it) and the subprocess's peak memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``); "epoch CPU s" is the epoch's CPU time (``time.process_time``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

VARIANTS = {"batched": "psl", "per-client": "psl:path=per-client"}


def testbed_for(k: int):
    """The default testbed scaled to ``k`` clients, helpers' memory raised so that every client fits."""
    from pslsched.core.testbed import build, default_testbed_path, load_testbed, scale_clients

    testbed = scale_clients(load_testbed(default_testbed_path()), k)
    helpers = [h.model_copy(update={"memory_mb": max(h.memory_mb, 200.0 * k)}) for h in testbed.helpers]
    return build(testbed.model_copy(update={"helpers": helpers}))


def simulated(built, schedule, cfg, dataset, seed: int) -> tuple[float, float, dict, object, float]:
    """One epoch on the simulator's clock: wall seconds, seconds inside the training hook, final global parameters,
    the run's timeline, CPU seconds of this process (``time.process_time``)."""
    from pslsched.simulator import SimConfig, Simulation
    from pslsched.training import prepare_training

    sim_config = SimConfig(rounds=1, seed=seed)
    prep = prepare_training(built.instance, cfg, seed, dataset)
    hooks = prep.executor(built.instance.clients, seed)
    sim = Simulation(
        built.instance, schedule, sim_config, workload=built.workload, hooks=hooks, plan=prep.planner
    )
    t0, c0 = time.perf_counter(), time.process_time()
    sim.run(lambda r: None)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    params = {
        f"{p}.{n}": t.detach().clone() for p, m in prep.parts.items() for n, t in m.state_dict().items()
    }
    tasks = build_timeline(built, schedule, sim_config, sim)
    return wall, hooks.compute_s, params, tasks, cpu


def build_timeline(built, schedule, sim_config, sim):
    from pslsched.simulator import build_record

    return build_record(built.instance, schedule, sim_config, list(sim.results)).timeline


def plain(built, cfg, dataset, seed: int) -> tuple[float, float]:
    """The plain loop over the run's global batches (the same data order as the hook's): wall and CPU seconds."""
    from pslsched.training import prepare_training

    prep = prepare_training(built.instance, cfg, seed, dataset)
    hooks = prep.executor(built.instance.clients, seed)
    plan = prep.planner(0, [])
    assign = np.zeros(built.instance.num_clients, dtype=np.int64)
    hooks.begin_round(0, plan, assign)  # the data order of round 0 (the strategy's copies are not used)
    steps = []
    for t in range(plan.samples.shape[0]):
        js = np.flatnonzero(plan.samples[t] > 0)
        idx = np.concatenate([hooks.order[j][hooks.offsets[t, j] : hooks.offsets[t + 1, j]] for j in js])
        steps.append(torch.from_numpy(idx))
    parts = copy.deepcopy(prep.parts)
    model = torch.nn.Sequential(parts["head"], parts["body"], parts["tail"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x, y = dataset.x_train, dataset.y_train
    t0, c0 = time.perf_counter(), time.process_time()
    for sel in steps:
        loss = F.cross_entropy(model(x[sel]), y[sel])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0, time.process_time() - c0


def bench(k: int, args, dataset) -> dict:
    from pslsched.solvers import solve
    from pslsched.training import TrainConfig

    built = testbed_for(k)
    schedule = solve(built.instance, "greedy", time_limit=30).schedule
    base = {
        "dataset": args.dataset,
        "sampler": "ugs",
        "global_batch": args.global_batch,
        "partition": "iid",
        "threads": args.threads,
    }
    variants = dict(VARIANTS) if args.per_client else {"batched": VARIANTS["batched"]}
    walls: dict[str, list[float]] = {v: [] for v in [*variants, "plain"]}
    cpus: dict[str, list[float]] = {v: [] for v in [*variants, "plain"]}
    hook_s: dict[str, list[float]] = {v: [] for v in variants}
    finals, timelines = {}, {}
    for rep in range(-args.warmup, args.repeats):  # the first runs (rep < 0) warm up and are not timed
        order = [*variants, "plain"]
        order = order if rep % 2 == 0 else order[::-1]
        for v in order:
            if v == "plain":
                w, c = plain(built, TrainConfig(strategy="psl", **base), dataset, args.seed)
            else:
                cfg = TrainConfig(strategy=variants[v], **base)
                w, h, finals[v], timelines[v], c = simulated(built, schedule, cfg, dataset, args.seed)
                if rep >= 0:
                    hook_s[v].append(h)
            if rep >= 0:
                walls[v].append(w)
                cpus[v].append(c)
    med = {v: statistics.median(ws) for v, ws in walls.items()}
    cpu = {v: statistics.median(cs) for v, cs in cpus.items()}
    row = {
        "K": k,
        "steps": args.steps,
        "plain s": round(med["plain"], 3),
        "batched s": round(med["batched"], 3),
        "batched / plain": round(med["batched"] / med["plain"], 2),
        "batched hook s": round(statistics.median(hook_s["batched"]), 3),
        "hook / plain": round(statistics.median(hook_s["batched"]) / med["plain"], 2),
        "plain CPU s": round(cpu["plain"], 3),
        "batched CPU s": round(cpu["batched"], 3),
        "batched / plain, CPU": round(cpu["batched"] / cpu["plain"], 2),
    }
    if args.per_client:
        a, b = finals["batched"], finals["per-client"]
        row["per-client s"] = round(med["per-client"], 3)
        row["per-client / plain"] = round(med["per-client"] / med["plain"], 2)
        row["max abs diff"] = f"{max(float((a[n] - b[n]).abs().max()) for n in a):.1e}"
        row["same timeline"] = bool(timelines["batched"].equals(timelines["per-client"]))
        if args.float64:  # the same two runs in float64: what is left is the paths' difference, not rounding
            row["max abs diff, float64"] = f"{float64_diff(built, schedule, base, dataset, args.seed):.1e}"
        if args.noise_floor:  # how far the per-client path moves by itself with one more torch thread
            cfg = TrainConfig(strategy=VARIANTS["per-client"], **{**base, "threads": args.threads + 1})
            c = simulated(built, schedule, cfg, dataset, args.seed)[2]
            torch.set_num_threads(args.threads)
            row[f"per-client {args.threads} vs {args.threads + 1} threads"] = (
                f"{max(float((b[n] - c[n]).abs().max()) for n in b):.1e}"
            )
    return row


def float64_diff(built, schedule, base: dict, dataset, seed: int) -> float:
    """Max abs difference of the batched and per-client paths' final parameters, both trained in float64."""
    from pslsched.training import TrainConfig

    wide = dataclasses.replace(dataset, x_train=dataset.x_train.double(), x_test=dataset.x_test.double())
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        runs = [
            simulated(built, schedule, TrainConfig(strategy=s, **base), wide, seed)[2]
            for s in VARIANTS.values()
        ]
    finally:
        torch.set_default_dtype(before)
    a, b = runs
    return max(float((a[n] - b[n]).abs().max()) for n in a)


def large_one(args) -> dict:
    """One epoch of ``args.one`` at the large scale in this process: wall seconds per phase, peak RSS."""
    from pslsched.simulator import SimConfig, Simulation
    from pslsched.solvers import solve
    from pslsched.training import TrainConfig, load_dataset, prepare_training, seeds

    torch.set_num_threads(args.threads)
    row: dict = {"strategy": args.one, "K": args.large_clients, "dataset": args.large_dataset}
    t0 = time.perf_counter()
    dataset = load_dataset(args.large_dataset, seed=seeds(args.seed)["split"])
    t1 = time.perf_counter()
    built = testbed_for(args.large_clients)
    t2 = time.perf_counter()
    schedule = solve(built.instance, "greedy", time_limit=60).schedule
    t3 = time.perf_counter()
    cfg = TrainConfig(
        strategy=args.one,
        dataset=args.large_dataset,
        sampler="ugs",
        global_batch=args.global_batch,
        partition="iid",
        threads=args.threads,
    )
    prep = prepare_training(built.instance, cfg, args.seed, dataset)
    hooks = prep.executor(built.instance.clients, args.seed)
    sim = Simulation(
        built.instance,
        schedule,
        SimConfig(rounds=1, seed=args.seed),
        workload=built.workload,
        hooks=hooks,
        plan=prep.planner,
    )
    t4, c4 = time.perf_counter(), time.process_time()
    sim.run(lambda r: None)
    t5, c5 = time.perf_counter(), time.process_time()
    plan = sim.results[0].plan
    row.update(
        {
            "samples": len(dataset.y_train),
            "steps": int(plan.samples.shape[0]),
            "path": hooks.path,
            "dataset s": round(t1 - t0, 1),
            "testbed s": round(t2 - t1, 1),
            "solve s": round(t3 - t2, 1),
            "set-up s": round(t4 - t3, 1),
            "epoch s": round(t5 - t4, 1),
            "epoch CPU s": round(c5 - c4, 1),
            "hook s": round(hooks.compute_s, 1),
            "simulator s": round(t5 - t4 - hooks.compute_s, 1),
            "total s": round(t5 - t0, 1),
            "train loss": round(hooks.round_loss(), 3),
            "peak RSS MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    )
    return row


def large(args) -> list[dict]:
    """The large-scale row: every strategy of ``--large-strategies`` in its own capped subprocess."""
    rows = []
    limit = int(args.memory_limit_gb * 2**30)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    for strategy in args.large_strategies:
        cmd = [sys.executable, __file__, "--one", strategy, "--large-clients", str(args.large_clients)]
        cmd += ["--large-dataset", args.large_dataset, "--global-batch", str(args.global_batch)]
        cmd += ["--threads", str(args.threads), "--seed", str(args.seed)]
        done = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=cap)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            row = {"strategy": strategy, "K": args.large_clients, "error": f"exit {done.returncode}: {tail}"}
        else:
            row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(row, flush=True)
    return rows


def markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[32, 1000, 4000])
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--global-batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3, help="runs per variant, alternating (default 3)")
    ap.add_argument(
        "--warmup", type=int, default=1, help="untimed runs of each variant first, per K (default 1)"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument(
        "--no-per-client", dest="per_client", action="store_false", help="skip the reference path"
    )
    ap.add_argument(
        "--float64",
        action="store_true",
        help="also train both paths in float64 (not timed): their difference without float32 rounding",
    )
    ap.add_argument(
        "--noise-floor",
        action="store_true",
        help="also run the per-client path once with one more torch thread: how far it moves by itself",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown section here")
    ap.add_argument(
        "--large", action="store_true", help="run the large-scale row instead (see the docstring)"
    )
    ap.add_argument("--large-clients", type=int, default=10_000)
    ap.add_argument("--large-dataset", default="synthetic:n=60000,size=28")
    ap.add_argument("--large-strategies", nargs="+", default=["psl", "sglr:p=0"])
    ap.add_argument("--memory-limit-gb", type=float, default=6.0, help="RLIMIT_AS of each large run")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one large run, JSON on stdout
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(large_one(args)), flush=True)
        return
    if args.large:
        table = markdown(pd.DataFrame(large(args)))
        print()
        print(table)
        if args.out is not None:
            command = "python benchmarks/training_scale.py " + " ".join(sys.argv[1:])
            args.out.write_text(f"Command: `{command.strip()}` (torch {torch.__version__})\n\n{table}\n")
        return
    from pslsched.training import load_dataset, seeds

    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset, seed=seeds(args.seed)["split"])
    args.steps = -(-len(dataset.y_train) // args.global_batch)
    rows = []
    for k in args.clients:
        row = bench(k, args, dataset)
        rows.append(row)
        print(row, flush=True)
    table = markdown(pd.DataFrame(rows))
    print()
    print(table)
    if args.out is not None:
        command = "python benchmarks/training_scale.py " + " ".join(sys.argv[1:])
        args.out.write_text(f"Command: `{command.strip()}` (torch {torch.__version__})\n\n{table}\n")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
