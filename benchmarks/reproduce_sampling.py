"""Reproduce Kohankhaki et al.'s global-sampling results (UGS, LDS; algorithms.md B4), scaled to CPU.

Three parts, every run a real PSL training on the simulator's clock (virtual time):

A. Non-IID: final test accuracy of ``ugs`` against ``fls`` and ``fpls`` after the same number of epochs, same
   optimizer and learning rate, for IID, ``classes:5`` (mild) and ``classes:2`` (severe) partitions and K clients.
   Testbed: pslsched/profiles/examples/psl_sampling.yaml (one server, as in the paper); the accuracy does not depend on
   the clock, the virtual time per epoch is reported alongside.
B. Stragglers on the same testbed (client compute is most of a step): 10% / 20% of the clients 5x slower for the
   whole run (``per=run``), IID and severe non-IID, ``lds`` at several tilts against ``ugs``: virtual time to a
   target accuracy, steady-state time per epoch and final accuracy. Controls (clock only, ``cost_only``): no
   stragglers, and stragglers redrawn every round (``per=round``).
C. The former default testbed, examples/forced_memory.yaml (20 clients, 3 helpers, cut a=2: helpers do most of
   the work) with its solved schedules (greedy, auto): does the schedule or the sampler move the virtual time more?

    .venv/bin/python benchmarks/reproduce_sampling.py            # full (~20-25 min of CPU on 2 shared cores)
    .venv/bin/python benchmarks/reproduce_sampling.py --quick    # smoke run (~2 min)

Prints markdown tables; raw per-round results go to --out (default /tmp/reproduce_sampling): runs.csv (one row per
round of every run) and tables.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import dataset, fmt, md, solved_testbed  # noqa: E402

from pslsched.simulator import SimConfig, Stragglers, parse_stragglers  # noqa: E402
from pslsched.training import TrainConfig, run_training  # noqa: E402

torch.set_num_threads(1)

PSL_TESTBED = ROOT / "pslsched" / "profiles" / "examples" / "psl_sampling.yaml"
B = 64  # global batch (the later paper version's B)
OPT, LR = "sgd", 0.05  # plain SGD, no momentum: the optimizer's fresh state per round then changes nothing
EPOCH_STEPS = 63  # ugs / lds epoch on mnist5k: ceil(4,000 training samples / 64)
STEPS_PER_ROUND = 21  # parts B and C: a third of an epoch

ROWS: list[pd.DataFrame] = []


def run(
    tag: str,
    *,
    path: Path | None,
    k: int | None,
    sampler: str,
    partition: str,
    seed: int,
    rounds: int,
    data: str = "mnist5k",
    stragglers: str = "none",
    steps_per_round: int | None = None,
    target: float = 0.85,
    solver: str = "greedy",
    cost_only: bool = False,
) -> pd.DataFrame:
    """One training run; returns its per-round frame (with the settings as columns) and keeps it in ROWS."""
    inst, work, sched = solved_testbed(path, k, solver)
    cfg = TrainConfig(
        dataset=data,
        strategy="psl",
        partition=partition,
        sampler=sampler,
        global_batch=B,
        steps_per_round=steps_per_round,
        optimizer=OPT,
        lr=LR,
        target_accuracy=target,
        threads=1,
    )
    sim = SimConfig(rounds=rounds, seed=seed, stragglers=parse_stragglers(stragglers))
    t0 = time.process_time()
    res = run_training(
        inst, work, sched, sim, cfg, dataset=None if cost_only else dataset(data, seed), cost_only=cost_only
    )
    df = res.rounds[
        [
            "round",
            "start_ms",
            "round_time_ms",
            "makespan_ms",
            "steps",
            "test_accuracy",
            "clients_per_step_min",
        ]
    ].copy()
    df["end_ms"] = df["start_ms"] + df["round_time_ms"]
    s = res.summary()
    settings = dict(
        part=tag,
        testbed="default" if path is None else Path(path).stem,
        solver=solver,
        K=inst.num_clients,
        data=data,
        partition=partition,
        sampler=sampler,
        stragglers=stragglers,
        seed=seed,
        cost_only=cost_only,
        tta_ms=s["time_to_accuracy_ms"],
        target=target,
        slow=slow_clients(stragglers, seed, inst.num_clients),
        cpu_s=time.process_time() - t0,
    )
    for key, value in settings.items():
        df[key] = value
    if res.diverged:
        print(f"  !! diverged: {res.diverged}", flush=True)
    ROWS.append(df)
    acc = df["test_accuracy"].iloc[-1]
    print(
        f"  [{tag}] K={settings['K']} {data} {partition} {sampler} {stragglers} seed={seed}"
        f"{' (cost only)' if cost_only else f' acc={acc:.3f}'} virtual={df['end_ms'].iloc[-1] / 1e3:.0f}s"
        f" cpu={settings['cpu_s']:.1f}s",
        flush=True,
    )
    return df


def slow_clients(spec: str, seed: int, k: int) -> int:
    """How many clients the straggler spec slows in round 0 (per=run: in every round)."""
    st = Stragglers(parse_stragglers(spec), seed, {"client": k, "helper": 1, "link": k})
    st.start_round(0)
    return int((st.round_factors["client"] > 1).sum())


# --- A: non-IID ---------------------------------------------------------------------------------------------------
def part_a(datasets, ks, partitions, seed_list, epochs) -> str:
    print(f"\n== A. non-IID: fls / fpls / ugs, {epochs} epochs, B={B}, {OPT} lr {LR}", flush=True)
    rows = []
    for data in datasets:
        for part in partitions:
            for k in ks:
                acc = {s: [] for s in ("fls", "fpls", "ugs")}
                steps, clock = {}, {s: [] for s in acc}
                for seed in seed_list:
                    for sampler in acc:
                        df = run(
                            "A",
                            path=PSL_TESTBED,
                            k=k,
                            sampler=sampler,
                            partition=part,
                            seed=seed,
                            rounds=epochs,
                            data=data,
                        )
                        acc[sampler].append(df["test_accuracy"].iloc[-1])
                        steps[sampler] = int(df["steps"].iloc[0])
                        clock[sampler].append(df["end_ms"].iloc[-1] / epochs / 1e3)
                d_fls = [u - f for u, f in zip(acc["ugs"], acc["fls"])]
                d_fpls = [u - f for u, f in zip(acc["ugs"], acc["fpls"])]
                rows.append(
                    {
                        "data": data,
                        "partition": part,
                        "K": k,
                        "FLS acc %": fmt(acc["fls"], 1, 100),
                        "FPLS acc %": fmt(acc["fpls"], 1, 100),
                        "UGS acc %": fmt(acc["ugs"], 1, 100),
                        "UGS-FLS pts": fmt(d_fls, 1, 100),
                        "UGS-FPLS pts": fmt(d_fpls, 1, 100),
                        "steps/epoch fls/fpls/ugs": f"{steps['fls']}/{steps['fpls']}/{steps['ugs']}",
                        "virtual s/epoch fls/fpls/ugs": "/".join(f"{np.mean(clock[x]):.0f}" for x in clock),
                    }
                )
    return md(pd.DataFrame(rows))


# --- B: stragglers, PSL testbed -------------------------------------------------------------------------------------
def epoch_times(df: pd.DataFrame, rounds_per_epoch: int) -> tuple[float, float]:
    """(first epoch's virtual time, mean virtual time of the later epochs) in seconds."""
    ends = df["end_ms"].to_numpy()[rounds_per_epoch - 1 :: rounds_per_epoch] / 1e3
    first = ends[0]
    later = np.diff(ends).mean() if len(ends) > 1 else np.nan
    return first, later


def straggler_table(
    tag,
    path,
    k,
    partitions,
    levels,
    samplers,
    seed_list,
    epochs,
    target,
    solver="greedy",
    cost_only=False,
    per="run",
) -> pd.DataFrame:
    rpe = -(-EPOCH_STEPS // STEPS_PER_ROUND)
    rows = []
    for part in partitions:
        for p in levels:
            spec = "none" if p == 0 else f"client:slow:p={p},factor=5,per={per}"
            base_tta, base_epoch = {}, {}
            for sampler in samplers:
                first, later, tta, acc, last, slow = [], [], [], [], [], []
                for seed in seed_list:
                    df = run(
                        tag,
                        path=path,
                        k=k,
                        sampler=sampler,
                        partition=part,
                        seed=seed,
                        rounds=epochs * rpe,
                        stragglers=spec,
                        steps_per_round=STEPS_PER_ROUND,
                        target=target,
                        solver=solver,
                        cost_only=cost_only,
                    )
                    f, la = epoch_times(df, rpe)
                    first.append(f)
                    later.append(la)
                    tta.append(df["tta_ms"].iloc[0])
                    acc.append(df["test_accuracy"].iloc[-1])
                    last.append(df["test_accuracy"].iloc[-rpe:].mean())  # the last epoch's evaluations
                    slow.append(int(df["slow"].iloc[0]))
                if sampler == samplers[0]:
                    base_tta, base_epoch = tta, later
                rel_t = [
                    None if (a is None or b is None or pd.isna(a) or pd.isna(b)) else 100 * (a / b - 1)
                    for a, b in zip(tta, base_tta)
                ]
                rel_e = [100 * (a / b - 1) for a, b in zip(later, base_epoch)]
                reached = sum(t is not None and not pd.isna(t) for t in tta)
                row = {
                    "schedule": solver,
                    "partition": part,
                    "stragglers": "none" if p == 0 else f"p={p} x5 per={per}",
                    "slow clients": "/".join(map(str, slow)),
                    "sampler": sampler,
                    "epoch 1 s": fmt(first, 0),
                    "later epochs s": fmt(later, 0),
                    "vs UGS (later epochs) %": "" if sampler == samplers[0] else fmt(rel_e, 0),
                }
                if not cost_only:
                    row.update(
                        {
                            f"time to {target:.0%} s": fmt([t / 1e3 if t else None for t in tta], 0)
                            + ("" if reached == len(seed_list) else f" ({reached}/{len(seed_list)} reached)"),
                            "vs UGS (TTA) %": "" if sampler == samplers[0] else fmt(rel_t, 0),
                            "final acc %": fmt(acc, 1, 100),
                            "last-epoch mean acc %": fmt(last, 1, 100),
                        }
                    )
                rows.append(row)
    out = pd.DataFrame(rows)
    if len(set(out["schedule"])) == 1 and tag.startswith("B"):
        out = out.drop(columns="schedule")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: one seed, K=16, few epochs (~2 min)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds per setting (full run; default 2)")
    ap.add_argument("--out", default="/tmp/reproduce_sampling", help="folder for runs.csv and tables.md")
    ap.add_argument(
        "--datasets", default="mnist5k", help="part A's datasets, comma-separated (e.g. mnist5k,digits)"
    )
    ap.add_argument("--epochs-a", type=int, default=3, help="part A's epochs (full run; default 3)")
    ap.add_argument("--parts", default="ABC", help="which parts to run (default ABC)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.time(), time.process_time()
    tilts = ["lds:tilt=0.5", "lds:tilt=1", "lds:tilt=2"]
    if args.quick:
        a = dict(datasets=["mnist5k"], ks=[16], partitions=["classes:2", "iid"], seed_list=[0], epochs=2)
        b = dict(
            k=16,
            partitions=["classes:2"],
            levels=[0.2],
            samplers=["ugs", "lds:tilt=1"],
            seed_list=[0],
            epochs=2,
        )
        c_train = dict(
            partitions=["iid"], levels=[0.2], samplers=["ugs", "lds:tilt=1"], seed_list=[0], epochs=1
        )
        solvers_c = ["greedy"]
    else:
        seed_list = list(range(args.seeds))
        a = dict(
            datasets=args.datasets.split(","),
            ks=[16, 32, 64],
            partitions=["classes:2", "classes:5", "iid"],
            seed_list=seed_list,
            epochs=args.epochs_a,
        )
        b = dict(
            k=32,
            partitions=["iid", "classes:2"],
            levels=[0.1, 0.2],
            samplers=["ugs", *tilts],
            seed_list=seed_list,
            epochs=3,
        )
        c_train = dict(
            partitions=["iid", "classes:2"],
            levels=[0.2],
            samplers=["ugs", "lds:tilt=1"],
            seed_list=[0],
            epochs=3,
        )
        solvers_c = ["greedy", "auto"]
    sections = []
    settings = (
        f"psl, global batch B={B}, {OPT} lr {LR} (no momentum), mnist5k (4,000 train / 1,000 test), cnn cut 1,5; "
        f"one round = one epoch in A, {STEPS_PER_ROUND} steps (a third of an epoch) in B and C"
    )
    sections.append(
        f"Command: `{' '.join(['.venv/bin/python', 'benchmarks/reproduce_sampling.py', *sys.argv[1:]])}`\n\n"
        f"Settings: {settings}."
    )

    if "A" in args.parts:
        sections.append(
            f"### A. Final test accuracy after {a['epochs']} epochs (no stragglers), mean [min, max] over seeds\n\n"
            + part_a(**a)
        )
        print(sections[-1], flush=True)

    if "B" in args.parts:
        print("\n== B. stragglers on psl_sampling (client compute dominates)", flush=True)
        tab = straggler_table("B", PSL_TESTBED, target=0.85, **b)
        sections.append(
            f"### B. Stragglers, one server (psl_sampling.yaml, K={b['k']}, {b['epochs']} epochs, target 85%), "
            "mean [min, max] over seeds\n\n" + md(tab)
        )
        print(sections[-1], flush=True)
        ctrl = dict(b, seed_list=b["seed_list"], epochs=b["epochs"])
        t_none = straggler_table(
            "B0",
            PSL_TESTBED,
            target=0.85,
            cost_only=True,
            **dict(
                ctrl, levels=[0], partitions=["iid"], samplers=["ugs", "lds:tilt=0", *ctrl["samplers"][1:]]
            ),
        )
        t_round = straggler_table(
            "Br",
            PSL_TESTBED,
            target=0.85,
            cost_only=True,
            per="round",
            **dict(ctrl, partitions=["iid"], levels=[0.2]),
        )
        sections.append(
            "### B controls (clock only): no stragglers, and stragglers redrawn every round\n\n"
            + md(pd.concat([t_none, t_round]))
        )
        print(sections[-1], flush=True)

    if "C" in args.parts:
        print(
            "\n== C. the former default testbed (examples/forced_memory.yaml: 20 clients, 3 helpers, cut a=2) with solved schedules",
            flush=True,
        )
        trained = pd.concat(
            [straggler_table("C", None, None, target=0.85, solver=s, **c_train) for s in solvers_c]
        )
        sections.append("### C. Default testbed, 20 clients, trained (target 85%, seed 0)\n\n" + md(trained))
        print(sections[-1], flush=True)
        clock = dict(
            c_train,
            partitions=["iid"],
            samplers=["ugs", "lds:tilt=0", *tilts] if not args.quick else c_train["samplers"],
            levels=[0, 0.1, 0.2] if not args.quick else [0.2],
            seed_list=[0, 1] if not args.quick else [0],
        )
        cost = pd.concat(
            [
                straggler_table("Cc", None, None, target=0.85, solver=s, cost_only=True, **clock)
                for s in solvers_c
            ]
        )
        sections.append("### C. Default testbed, clock only (IID), schedule x sampler\n\n" + md(cost))
        print(sections[-1], flush=True)

    wall, cpu = time.time() - t0, time.process_time() - c0
    sections.append(f"Total: {cpu / 60:.1f} min CPU, {wall / 60:.1f} min wall (torch threads 1).")
    print(sections[-1])
    pd.concat(ROWS).to_csv(out / "runs.csv", index=False)
    (out / "tables.md").write_text("\n\n".join(sections) + "\n")
    print(f"wrote {out / 'runs.csv'} and {out / 'tables.md'}")


if __name__ == "__main__":
    main()
