"""Reproduce, scaled down, the claims of SGLR and LocFedMix-SL (/work/shared/docs/algorithms.md B2, B3).

Every accuracy run is a real split training on the simulator's clock (virtual time), one local epoch per round.

A. Accuracy against the number of clients K: final test accuracy (and the round / virtual time at which 90% is
   first reached) of splitfed1, splitfed2, psl, sglr (p=0.5 and p=0), locfedmix and locsplitfed, for the same
   rounds, optimizer, learning rate and batch, on ``digits`` with ``iid`` and ``dirichlet:0.5`` partitions.
   Testbed: the former default (examples/forced_memory.yaml), scaled to K clients (helpers' memory raised so every client fits), greedy schedule.
B. The clock on the former default testbed (K=20, greedy): virtual round time and bytes per round of each strategy
   (``cost_only=True``), one strategy checked against its training run.

    .venv/bin/python benchmarks/reproduce_strategies.py            # K = 8, 32; 8 rounds
    .venv/bin/python benchmarks/reproduce_strategies.py --quick    # K = 8 only, 4 rounds, iid only
    .venv/bin/python benchmarks/reproduce_strategies.py --clients 8,32,64 --seeds 0,1 --data digits,mnist5k

Prints markdown tables; raw per-round results go to --out (default /tmp/reproduce_strategies): runs.csv, tables.md.
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

from pipeline import dataset, solved_testbed  # noqa: E402

from pslsched.simulator import SimConfig  # noqa: E402
from pslsched.training import TrainConfig, run_training  # noqa: E402

torch.set_num_threads(1)

STRATEGIES = ["splitfed1", "splitfed2", "psl", "sglr", "sglr:p=0", "locfedmix", "locsplitfed"]
OPT, LR, BATCH = "adam", 0.01, 16  # the library's defaults, the same for every strategy

ROWS: list[pd.DataFrame] = []


def run(part, *, k, strategy, partition="iid", data="digits", seed=0, rounds=8, cost_only=False) -> dict:
    inst, work, sched = solved_testbed(None, k, memory_mb=100000 if k is not None else None, time_limit=5)
    cfg = TrainConfig(
        dataset=data,
        strategy=strategy,
        partition=partition,
        batch_size=BATCH,
        lr=LR,
        optimizer=OPT,
        threads=1,
    )
    t0 = time.perf_counter()
    res = run_training(
        inst,
        work,
        sched,
        SimConfig(rounds=rounds, seed=seed),
        cfg,
        dataset=None if cost_only else dataset(data, seed),
        cost_only=cost_only,
    )
    wall = time.perf_counter() - t0
    df = res.rounds[["round", "start_ms", "round_time_ms", "bytes_sent", "test_accuracy"]].copy()
    s = res.summary()
    acc = df["test_accuracy"].to_numpy(dtype=float)
    hit = np.flatnonzero(acc >= cfg.target_accuracy)
    row = dict(
        part=part,
        K=inst.num_clients,
        data=data,
        partition=partition,
        strategy=strategy,
        seed=seed,
        rounds=rounds,
        cost_only=cost_only,
        final_acc=s["final_accuracy"],
        best_acc=s["best_accuracy"],
        rounds_to_90=int(hit[0]) + 1 if len(hit) else None,
        tta_ms=s["time_to_accuracy_ms"],
        round_ms=float(df["round_time_ms"].mean()),
        bytes_per_round=float(df["bytes_sent"].mean()),
        diverged=s["diverged"],
        wall_s=wall,
    )
    for key, v in row.items():
        if key not in ("final_acc",):
            df[key] = v
    df["final_acc"] = row["final_acc"]
    ROWS.append(df)
    fa = "-" if row["final_acc"] is None else f"{row['final_acc']:.3f}"
    print(
        f"  [{part}] K={row['K']} {data} {partition} {strategy} seed={seed}: acc {fa}, "
        f"r90 {row['rounds_to_90']}, round {row['round_ms']:.0f} ms, {wall:.0f}s wall",
        flush=True,
    )
    return row


def fmt_acc(vals):
    vals = [v for v in vals if v is not None and not np.isnan(v)]
    if not vals:
        return "-"
    return f"{np.mean(vals):.3f}" + (f" ±{np.std(vals):.3f}" if len(vals) > 1 else "")


def table_a(rows: list[dict]) -> str:
    df = pd.DataFrame(rows)
    out = [
        "| data | partition | strategy | "
        + " | ".join(f"K={k} acc (r90, t90 s)" for k in sorted(df.K.unique()))
        + " |"
    ]
    out.append("|" + "---|" * (3 + df.K.nunique()))
    for (data, part), g in df.groupby(["data", "partition"], sort=False):
        for strat in [s for s in STRATEGIES if s in set(g.strategy)] + [
            s for s in g.strategy.unique() if s not in STRATEGIES
        ]:
            cells = []
            for k in sorted(df.K.unique()):
                h = g[(g.strategy == strat) & (g.K == k)]
                if h.empty:
                    cells.append("n/a")
                    continue
                r90 = [r for r in h.rounds_to_90 if r is not None and not pd.isna(r)]
                t90 = [t for t in h.tta_ms if t is not None and not pd.isna(t)]
                reach = (
                    f"{np.median(r90):g}, {np.median(t90) / 1000:.1f}"
                    if len(r90) == len(h)
                    else (f"{len(r90)}/{len(h)} seeds" if r90 else "not reached")
                )
                cells.append(f"{fmt_acc(list(h.final_acc))} ({reach})")
            out.append(f"| {data} | {part} | `{strat}` | " + " | ".join(cells) + " |")
    return "\n".join(out)


def table_b(rows: list[dict]) -> str:
    df = pd.DataFrame(rows)
    base = df[df.strategy == "splitfed1"].round_ms.iloc[0]
    out = ["| strategy | round (virtual s) | vs splitfed1 | MB sent per round |", "|---|---|---|---|"]
    for _, r in df.iterrows():
        out.append(
            f"| `{r.strategy}` | {r.round_ms / 1000:.2f} | {r.round_ms / base:.2f}x | {r.bytes_per_round / 1e6:.1f} |"
        )
    return "\n".join(out)


def main() -> None:
    global OPT, LR
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="K=8, iid, 4 rounds, one seed (smoke run)")
    ap.add_argument("--clients", default="8,32")
    ap.add_argument("--partitions", default="iid,dirichlet:0.5")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--skip-a", action="store_true")
    ap.add_argument("--skip-b", action="store_true")
    ap.add_argument("--optimizer", default=OPT, choices=["adam", "sgd"], help="the same for every strategy")
    ap.add_argument("--lr", type=float, default=LR)
    ap.add_argument("--out", default="/tmp/reproduce_strategies")
    a = ap.parse_args()
    OPT, LR = a.optimizer, a.lr
    if a.quick:
        a.clients, a.partitions, a.rounds, a.seeds = "8", "iid", 4, "0"
    ks = [int(x) for x in a.clients.split(",")]
    strats = a.strategies.split(",")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    md = []
    if not a.skip_b:
        print("B. default testbed (K=20, greedy): the clock alone", flush=True)
        clocked = list(dict.fromkeys(["splitfed1", *strats]))  # splitfed1: the table's reference
        rows_b = [run("B", k=None, strategy=s, rounds=2, cost_only=True) for s in clocked]
        checked = "sglr" if "sglr" in clocked else strats[0]
        check = run("B-check", k=None, strategy=checked, rounds=2)
        cb = next(r for r in rows_b if r["strategy"] == checked)
        tb = (
            "### B. Clock on the default testbed (K=20, greedy, cost_only)\n\n"
            + table_b(rows_b)
            + (
                f"\n\nCheck: `{checked}` trained for 2 rounds: {check['round_ms'] / 1000:.3f} s and "
                f"{check['bytes_per_round'] / 1e6:.2f} MB per round; cost_only: {cb['round_ms'] / 1000:.3f} s, "
                f"{cb['bytes_per_round'] / 1e6:.2f} MB."
            )
        )
        print(tb, flush=True)
        md.append(tb)
    if not a.skip_a:
        print("A. accuracy against K", flush=True)
        rows_a = []
        for data in a.data.split(","):
            for part in a.partitions.split(","):
                for k in ks:
                    for s in strats:
                        for seed in [int(x) for x in a.seeds.split(",")]:
                            rows_a.append(
                                run(
                                    "A",
                                    k=k,
                                    strategy=s,
                                    partition=part,
                                    data=data,
                                    seed=seed,
                                    rounds=a.rounds,
                                )
                            )
                            pd.concat(ROWS).to_csv(out / "runs.csv", index=False)
        ta = (
            f"### A. Final test accuracy after {a.rounds} rounds ({OPT} lr {LR}, batch {BATCH}); "
            "(rounds to 90%, virtual s to 90%)\n\n" + table_a(rows_a)
        )
        print(ta, flush=True)
        md.append(ta)
    pd.concat(ROWS).to_csv(out / "runs.csv", index=False)
    (out / "tables.md").write_text("\n\n".join(md) + "\n")


if __name__ == "__main__":
    main()
