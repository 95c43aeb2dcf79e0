"""What planning buys on the bundled default testbed (Tirana et al.'s scenario 1, 24 clients x 4 helpers): the README's
figures, each the median and range over 10 draws of the scenario (the testbed's ``seed`` sets its link rates).

1. Makespan and round time of random, balanced-greedy, EquiD and auto (CP-SAT portfolio, 10 s, one worker), and
   what auto saves against each.
2. Training: time to 90% test accuracy (digits, splitfed1, the library's defaults) on auto's plan against random's,
   each solved for the round the clock runs (as ``sched train`` plans).
3. Stragglers: one setting (20% of the clients 5x slower for the whole run), psl with UGS against LDS (tilt 2),
   global batch 64 over 3 epochs: virtual time per epoch and time to 85%.

    .venv/bin/python benchmarks/default_scenario.py              # 10 seeds: ~10 min on 2 cores
    .venv/bin/python benchmarks/default_scenario.py --seeds 2    # smoke run

Prints markdown tables (the README's "What planning buys" section comes from them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pslsched.core.testbed import build, default_testbed_path, load_testbed  # noqa: E402
from pslsched.core.validate import validate  # noqa: E402
from pslsched.simulator import SimConfig, parse_stragglers, simulate  # noqa: E402
from pslsched.solvers import solve  # noqa: E402
from pslsched.training import TrainConfig, prepare_training, round_instance, run_training  # noqa: E402

SOLVERS = ("random", "greedy", "equid", "auto")
BASE_SEED = 2024  # the bundled testbed's own seed is the first draw


def spread(values) -> str:
    v = np.asarray([x for x in values if x is not None and x == x], dtype=float)
    if not len(v):
        return "not reached"
    return f"{np.median(v):.1f} [{v.min():.1f}, {v.max():.1f}]"


def planning(built) -> dict:
    out = {}
    for name in SOLVERS:
        res = solve(built.instance, name, time_limit=10, seed=0, workers=1)
        assert validate(built.instance, res.schedule) == [], name
        rec = simulate(built.instance, res.schedule, SimConfig(), workload=built.workload)
        out[name] = (res.makespan, float(rec.rounds["round_time_ms"].iloc[0]), res.schedule, res.status)
    return out


def round_plan(built, cfg: TrainConfig, solver: str):
    """The solver's schedule of the round the clock runs (as ``sched train`` plans it)."""
    prep = prepare_training(built.instance, cfg, 0)
    inst = round_instance(built.instance, prep.planner(0, []), built.workload)
    res = solve(inst, solver, time_limit=10, seed=0, workers=1)
    assert validate(inst, res.schedule) == [], solver
    return res.schedule


def time_to(built, schedule, cfg: TrainConfig, sim: SimConfig) -> tuple[float | None, float]:
    run = run_training(built.instance, built.workload, schedule, sim, cfg)
    s = run.summary()
    return s["time_to_accuracy_ms"], s["virtual_time_ms"] / max(1, s["rounds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(1)
    testbed = load_testbed(default_testbed_path())
    rows = []
    for n in range(a.seeds):
        seed = BASE_SEED + n
        built = build(testbed.model_copy(update={"seed": seed}))
        plans = planning(built)
        auto = plans["auto"]
        row = {"seed": seed, "status": auto[3]}
        for name in SOLVERS:
            row[f"{name}_makespan_s"] = plans[name][0] / 1e3
            row[f"{name}_round_s"] = plans[name][1] / 1e3
            row[f"saved_vs_{name}_%"] = 100 * (1 - auto[0] / plans[name][0])
            row[f"round_saved_vs_{name}_%"] = 100 * (1 - auto[1] / plans[name][1])
        train = TrainConfig(dataset="digits", strategy="splitfed1", target_accuracy=0.9)
        sim = SimConfig(rounds=12, seed=0)
        tta = {
            name: time_to(built, round_plan(built, train, name), train, sim)[0] for name in ("random", "auto")
        }
        row["tta90_random_s"] = None if tta["random"] is None else tta["random"] / 1e3
        row["tta90_auto_s"] = None if tta["auto"] is None else tta["auto"] / 1e3
        if tta["random"] and tta["auto"]:
            row["tta_saved_%"] = 100 * (1 - tta["auto"] / tta["random"])
        slow = SimConfig(rounds=3, seed=0, stragglers=parse_stragglers("client:slow:p=0.2,factor=5,per=run"))
        for sampler in ("ugs", "lds:tilt=2"):
            cfg = TrainConfig(
                dataset="digits", strategy="psl", sampler=sampler, global_batch=64, target_accuracy=0.85
            )
            t85, per_epoch = time_to(built, round_plan(built, cfg, "auto"), cfg, slow)
            key = sampler.split(":")[0]
            row[f"{key}_epoch_s"], row[f"{key}_tta85_s"] = per_epoch / 1e3, None if t85 is None else t85 / 1e3
        row["lds_epoch_saved_%"] = 100 * (1 - row["lds_epoch_s"] / row["ugs_epoch_s"])
        rows.append(row)
        print(
            f"seed {seed}: auto {auto[0] / 1e3:.1f} s ({auto[3]}), saved vs random {row['saved_vs_random_%']:.1f}%, "
            f"greedy {row['saved_vs_greedy_%']:.1f}%, equid {row['saved_vs_equid_%']:.1f}%; "
            f"tta90 random {row['tta90_random_s']} s, auto {row['tta90_auto_s']} s; "
            f"epoch ugs {row['ugs_epoch_s']:.1f} s, lds {row['lds_epoch_s']:.1f} s",
            flush=True,
        )
    col = lambda k: [r.get(k) for r in rows]  # noqa: E731
    proved = sum(r["status"] == "optimal" for r in rows)
    print(f"\n### Planning ({len(rows)} draws; auto proved optimal on {proved}); median [min, max]\n")
    print("| solver | makespan (s) | round (s) | auto saves: makespan | auto saves: round |")
    print("|---|---|---|---|---|")
    for name in SOLVERS:
        print(
            f"| {name} | {spread(col(f'{name}_makespan_s'))} | {spread(col(f'{name}_round_s'))} | "
            f"{spread(col(f'saved_vs_{name}_%'))} % | {spread(col(f'round_saved_vs_{name}_%'))} % |"
        )
    print("\n### Training (digits, splitfed1): time to 90% (virtual s)\n")
    print("| random plan | auto plan | auto saves |")
    print("|---|---|---|")
    print(
        f"| {spread(col('tta90_random_s'))} | {spread(col('tta90_auto_s'))} | {spread(col('tta_saved_%'))} % |"
    )
    print("\n### Stragglers (20% of clients 5x slower, psl, global batch 64, auto plan)\n")
    print("| sampler | virtual s per epoch | time to 85% (s) |")
    print("|---|---|---|")
    for key in ("ugs", "lds"):
        print(f"| {key} | {spread(col(f'{key}_epoch_s'))} | {spread(col(f'{key}_tta85_s'))} |")
    print(f"\nLDS saves per epoch: {spread(col('lds_epoch_saved_%'))} %")


if __name__ == "__main__":
    main()
