"""Batched SplitFed V1 benchmark: wall time per round, ``splitfed1:batched=true`` against client after client.

    python benchmarks/training_batched.py                      # K = 20, 100 on digits and mnist5k
    python benchmarks/training_batched.py --clients 20 --datasets digits --repeats 1 --rounds 2
    python benchmarks/training_batched.py --clients 20 --datasets mnist5k --repeats 1 --noise-floor
    python benchmarks/training_batched.py --large                 # K = 100, 10,000 on 60,000 samples, capped

For every (dataset, K) both variants train the same run (same seed, data, partition, schedule, plan) side by side
in one process: ``--repeats`` times, alternating which variant goes first, ``--rounds`` rounds each. A round's wall
time is the engine's round (the SimPy clock plus the training hook; no evaluation) measured with
``time.perf_counter``; "train" is the part spent in the training hook's arithmetic (``TrainingHooks.compute_s``).
The first round of every run is warm-up (the strategy deep-copies the model for every client then) and is not
timed. The tables report medians over all measured rounds and the ratio per-client / batched. "max abs diff" is
the largest absolute difference between the two variants' final global parameters (head, body and tail);
``--noise-floor`` adds how far the per-client path moves by itself with one more torch thread.

``--large`` runs the scale rows instead: K = ``--large-clients`` (100 and 10,000) on ``--large-dataset``
(``synthetic:n=60000,size=28``, generated offline), one round of each variant, each in a fresh subprocess whose
address space is capped at ``--memory-limit-gb`` (6, ``RLIMIT_AS``) and whose wall time is capped at ``--timeout``;
it reports the round's wall time, the hook's part, the round-end FedAvg's part, the subprocess's peak memory
(``getrusage(RUSAGE_SELF).ru_maxrss``), and, when both variants finished, their ratio, the max abs difference of
the final global parameters and whether the timelines are identical.

Testbeds: K = 20 is the bundled default testbed (20 clients, 3 helpers). For K = 100 the default testbed's client
groups are scaled with ``pslsched.core.testbed.scale_clients(testbed, 100)`` and every helper's ``memory_mb`` is raised
to ``--helper-memory`` (default 8192 MB; the default's 1-2 GB hold only ~21 ResNet-101 bodies of ~186 MB) with
``HelperGroup.model_copy``, so the greedy schedule can place all 100 clients. Memory only shapes the simulated
schedule; the trained model is the dataset's default (``cnn``). Training: batch 16, one local epoch per round, SGD
with momentum 0.9 (``--optimizer adam``: Adam), lr ``--lr`` (0.01), iid partition, ``torch.set_num_threads``
fixed by ``--threads`` (default 1).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

VARIANTS = {"per-client": "splitfed1", "batched": "splitfed1:batched=true"}


def testbed_for(k: int, helper_memory: float):
    """The default testbed with ``k`` clients (helpers' memory raised when it is not the default 20)."""
    from pslsched.core.testbed import build, default_testbed_path, load_testbed, scale_clients

    testbed = load_testbed(default_testbed_path())
    if k != sum(g.count for g in testbed.clients):
        testbed = scale_clients(testbed, k)
        helpers = [
            h.model_copy(update={"memory_mb": max(h.memory_mb, helper_memory)}) for h in testbed.helpers
        ]
        testbed = testbed.model_copy(update={"helpers": helpers})
    return build(testbed)


def one_run(built, schedule, sim_config, cfg, dataset) -> tuple[list[float], list[float], dict, float]:
    """Train ``sim_config.rounds`` rounds as ``run_training`` does (without evaluation and files): per-round wall
    and training-hook seconds, the final global parameters and the final test accuracy."""
    from pslsched.simulator import Simulation
    from pslsched.training import evaluate, prepare_training

    instance = built.instance
    prep = prepare_training(instance, cfg, sim_config.seed, dataset)
    data = prep.dataset
    hooks = prep.executor(instance.clients, sim_config.seed)
    sim = Simulation(
        instance, schedule, sim_config, workload=built.workload, hooks=hooks, plan=_planner(prep)
    )
    walls, trains = [], []
    mark = {"t": time.perf_counter(), "c": 0.0}

    def after_round(r: int) -> None:
        now = time.perf_counter()
        walls.append(now - mark["t"])
        trains.append(hooks.compute_s - mark["c"])
        mark["c"] = hooks.compute_s
        mark["t"] = time.perf_counter()

    sim.run(after_round)
    params = {
        f"{p}.{n}": t.detach().clone() for p, m in prep.parts.items() for n, t in m.state_dict().items()
    }
    _, acc = evaluate(prep.parts, data.x_test, data.y_test)
    return walls, trains, params, acc


def bench(dataset_name: str, k: int, args) -> dict:
    from pslsched import simulator
    from pslsched.solvers import solve
    from pslsched.training import TrainConfig, load_dataset, seeds

    built = testbed_for(k, args.helper_memory)
    schedule = solve(built.instance, "greedy", time_limit=10).schedule
    sim_config = simulator.SimConfig(rounds=args.rounds, seed=args.seed)
    dataset = load_dataset(dataset_name, seed=seeds(args.seed)["split"])
    opt = {"optimizer": args.optimizer, "lr": args.lr}
    if args.optimizer == "sgd":
        opt["momentum"] = 0.9
    base = {"dataset": dataset_name, "batch_size": 16, "partition": "iid", "threads": args.threads, **opt}
    walls: dict[str, list[float]] = {v: [] for v in VARIANTS}
    trains: dict[str, list[float]] = {v: [] for v in VARIANTS}
    finals: dict[str, dict] = {}
    accs: dict[str, float] = {}
    for rep in range(args.repeats):
        order = list(VARIANTS) if rep % 2 == 0 else list(VARIANTS)[::-1]
        for variant in order:
            cfg = TrainConfig(strategy=VARIANTS[variant], **base)
            w, t, params, acc = one_run(built, schedule, sim_config, cfg, dataset)
            walls[variant] += w[1:]  # the first round also creates every client's copies (deepcopy): warm-up
            trains[variant] += t[1:]
            finals[variant], accs[variant] = params, acc
    diff = _max_diff(finals["per-client"], finals["batched"])
    floor = None
    if args.noise_floor:  # how far the per-client path itself moves with one more torch thread (not timed)
        cfg = TrainConfig(strategy=VARIANTS["per-client"], **{**base, "threads": args.threads + 1})
        floor = _max_diff(finals["per-client"], one_run(built, schedule, sim_config, cfg, dataset)[2])
        torch.set_num_threads(args.threads)
    med = {v: statistics.median(walls[v]) for v in VARIANTS}
    med_train = {v: statistics.median(trains[v]) for v in VARIANTS}
    steps = int((np.asarray(_plan_samples(built, base, dataset, args.seed)) > 0).any(axis=1).sum())
    return {
        "dataset": dataset_name,
        "K": k,
        "steps/round": steps,
        "per-client s/round": round(med["per-client"], 3),
        "batched s/round": round(med["batched"], 3),
        "speedup": round(med["per-client"] / med["batched"], 2),
        "per-client train s": round(med_train["per-client"], 3),
        "batched train s": round(med_train["batched"], 3),
        "train speedup": round(med_train["per-client"] / med_train["batched"], 2),
        "max abs diff": f"{diff:.1e}",
        **(
            {}
            if floor is None
            else {f"per-client {args.threads} vs {args.threads + 1} threads": f"{floor:.1e}"}
        ),
        "accuracy": f"{accs['per-client']:.4f} / {accs['batched']:.4f}",
        "rounds measured": len(walls["batched"]),
    }


def large_one(args) -> dict:
    """One round of ``args.one`` at K = ``args.large_clients`` in this process: phase times, peak RSS; the final
    global parameters and the timeline go to ``args.save`` (for the parent's comparison)."""
    from pslsched.simulator import SimConfig, Simulation, build_record
    from pslsched.solvers import solve
    from pslsched.training import TrainConfig, load_dataset, prepare_training, seeds

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    dataset = load_dataset(args.large_dataset, seed=seeds(args.seed)["split"])
    built = testbed_for(args.large_clients, max(args.helper_memory, 200.0 * args.large_clients))
    schedule = solve(built.instance, "greedy", time_limit=60).schedule
    opt = {
        "optimizer": args.optimizer,
        "lr": args.lr,
        **({"momentum": 0.9} if args.optimizer == "sgd" else {}),
    }
    cfg = TrainConfig(
        strategy=VARIANTS[args.one], dataset=args.large_dataset, batch_size=16, partition="iid", **opt
    )
    prep = prepare_training(built.instance, cfg, args.seed, dataset)
    hooks = prep.executor(built.instance.clients, args.seed)
    config = SimConfig(rounds=1, seed=args.seed)
    sim = Simulation(
        built.instance, schedule, config, workload=built.workload, hooks=hooks, plan=prep.planner
    )
    fedavg = {"s": 0.0}
    end_round = prep.strategy.end_round

    def timed_end_round(members):
        t = time.perf_counter()
        end_round(members)
        fedavg["s"] += time.perf_counter() - t

    prep.strategy.end_round = timed_end_round
    t1 = time.perf_counter()
    sim.run(lambda r: None)
    t2 = time.perf_counter()
    params = {f"{p}.{n}": t.detach() for p, m in prep.parts.items() for n, t in m.state_dict().items()}
    timeline = build_record(built.instance, schedule, config, list(sim.results)).timeline
    torch.save({"params": params, "timeline": timeline.to_dict("list")}, args.save)
    return {
        "variant": args.one,
        "K": args.large_clients,
        "steps": int((np.asarray(sim.results[0].plan.samples) > 0).any(axis=1).sum()),
        "set-up s": round(t1 - t0, 1),
        "round s": round(t2 - t1, 2),
        "hook s": round(hooks.compute_s, 2),
        "FedAvg s": round(fedavg["s"], 2),
        "peak RSS MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "train loss": round(hooks.round_loss(), 4),
    }


def large(args) -> list[dict]:
    """Both variants at every K of ``--large-clients``, each in its own capped subprocess; side by side per K."""
    limit = int(args.memory_limit_gb * 2**30)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    rows = []
    for k in args.large_clients:
        runs, saved = {}, {}
        for variant in VARIANTS:
            path = Path(tempfile.mkdtemp()) / "run.pt"
            cmd = [sys.executable, __file__, "--one", variant, "--save", str(path), "--large-clients", str(k)]
            cmd += [
                "--large-dataset",
                args.large_dataset,
                "--threads",
                str(args.threads),
                "--seed",
                str(args.seed),
            ]
            cmd += ["--optimizer", args.optimizer, "--lr", str(args.lr)]
            try:
                done = subprocess.run(
                    cmd, capture_output=True, text=True, preexec_fn=cap, timeout=args.timeout
                )
                if done.returncode != 0:
                    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                    runs[variant] = {"error": f"exit {done.returncode}: {tail[:120]}"}
                else:
                    runs[variant] = json.loads(done.stdout.strip().splitlines()[-1])
                    saved[variant] = torch.load(path, weights_only=False)
            except subprocess.TimeoutExpired:
                runs[variant] = {"error": f"timed out after {args.timeout:g} s"}
            print(k, variant, runs[variant], flush=True)
        row: dict = {"dataset": args.large_dataset, "K": k, "steps": runs["batched"].get("steps", "")}
        for variant, run in runs.items():
            for key in ("round s", "hook s", "FedAvg s", "peak RSS MB"):
                row[f"{variant} {key}"] = run.get(key, run.get("error", "") if key == "round s" else "")
        if len(saved) == 2:
            a, b = saved["per-client"], saved["batched"]
            row["speedup"] = round(runs["per-client"]["round s"] / runs["batched"]["round s"], 2)
            row["max abs diff"] = f"{_max_diff(a['params'], b['params']):.1e}"
            row["same timeline"] = a["timeline"] == b["timeline"]
        rows.append(row)
    return rows


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[n] - b[n]).abs().max()) for n in a)


def _plan_samples(built, base, dataset, seed):
    from pslsched.training import TrainConfig, prepare_training

    return _planner(prepare_training(built.instance, TrainConfig(**base), seed, dataset))(0, []).samples


def _planner(prep):
    """The engine's plan function of a prepared run (older runners kept one fixed ``plan``)."""
    planner = getattr(prep, "planner", None)
    return planner if planner is not None else (lambda r, results: prep.plan)


def markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[20, 100])
    ap.add_argument("--datasets", nargs="+", default=["digits", "mnist5k"])
    ap.add_argument("--rounds", type=int, default=3, help="rounds per run, the first not timed (default 3)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per variant, alternating (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="sgd: momentum 0.9 (default)")
    ap.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    ap.add_argument(
        "--noise-floor",
        action="store_true",
        help="also train the per-client path once with one more torch thread: how far it moves by itself",
    )
    ap.add_argument("--helper-memory", type=float, default=8192.0, help="helpers' memory_mb for K != 20")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown section here")
    ap.add_argument("--large", action="store_true", help="the scale rows (one round, capped subprocesses)")
    ap.add_argument("--large-clients", type=int, nargs="+", default=[100, 10_000])
    ap.add_argument("--large-dataset", default="synthetic:n=60000,size=28")
    ap.add_argument("--memory-limit-gb", type=float, default=6.0, help="RLIMIT_AS of each large run")
    ap.add_argument("--timeout", type=float, default=1200.0, help="wall seconds of each large run")
    ap.add_argument("--one", choices=list(VARIANTS), help=argparse.SUPPRESS)  # a large run's subprocess
    ap.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one is not None:
        args.large_clients = args.large_clients[0]
        print(json.dumps(large_one(args)))
        return
    if args.large:
        torch.set_num_threads(args.threads)
        table = markdown(pd.DataFrame(large(args)))
        print()
        print(table)
        return
    if args.rounds < 2:
        ap.error("--rounds must be >= 2 (the first round of a run is warm-up)")
    torch.set_num_threads(args.threads)
    rows = []
    for dataset_name in args.datasets:
        for k in args.clients:
            row = bench(dataset_name, k, args)
            rows.append(row)
            print(row, flush=True)
    df = pd.DataFrame(rows)
    table = markdown(df)
    print()
    print(table)
    if args.out is not None:
        command = "python benchmarks/training_batched.py " + " ".join(sys.argv[1:])
        args.out.write_text(section(table, command.strip(), args))
        print(f"\nwrote {args.out}")


def section(table: str, command: str, args) -> str:
    opt = f"SGD lr {args.lr:g} momentum 0.9" if args.optimizer == "sgd" else f"Adam lr {args.lr:g}"
    measured = args.repeats * (args.rounds - 1)
    return f"""## Batched SplitFed V1 (`splitfed1:batched=true`)

Command: `{command}`
(torch {torch.__version__}, `torch.set_num_threads({args.threads})`. Per (dataset, K) both variants run side by side
in one process, {args.repeats} runs each, alternating which goes first, {args.rounds} rounds per run of which the
first (warm-up: the per-client model copies are created) is not timed; medians over the {measured} measured rounds
of a variant. Round = the engine's round: SimPy clock plus the training hook, no evaluation; "train" = the time
inside the training hook's arithmetic. K = 20: the bundled default testbed; K = 100: `scale_clients(default, 100)`
with every helper's `memory_mb` raised to {args.helper_memory:g} so that all clients fit. Model `cnn`, batch 16, one
local epoch per round, iid partition, {opt}. "max abs diff" = largest absolute difference of the final global
parameters of the two variants; accuracy = final test accuracy, per-client / batched.)

{table}
"""


if __name__ == "__main__":
    main()
