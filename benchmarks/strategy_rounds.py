"""Every strategy's planned round against the round its clock runs (issue 20: "simulate of the solved plan equals
it, per strategy").

A cost-only training round (``sched train --cost-only``, noise-free) of each strategy on the VGG-19 Pi lab of
``tests/test_round_plan.py`` with ``cuts: auto`` and two batches per round, once with helpers whose network
interfaces are unknown (no body trips) and once at 50 Mbit/s (each body's trip to the aggregator is charged):
the planned round (``schedule.json``'s ``round_time``), the clock's, their ratio, the plan's bound and status.

    .venv/bin/python benchmarks/strategy_rounds.py            # ~1 min on 2 cores
    .venv/bin/python benchmarks/strategy_rounds.py --solver auto --time-limit 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from pslsched.app.requests import TrainRequest  # noqa: E402
from pslsched.app.training import train  # noqa: E402
from pslsched.core.round_model import ROUND_MODELS  # noqa: E402
from pslsched.core.validate import validate  # noqa: E402

LAB = """
name: vgg19-pi-lab
seed: 3
model: {profile: vgg19_cifar10}
cuts: auto
helpers:
  - {name: jetson, device: jetson-gpu, memory_mb: 4096NIC}
  - {name: laptop, device: laptop, memory_mb: 4096NIC}
clients:
  - {name: rpi, count: 4, device: d1, uplink_mbps: {dist: uniform, low: 1, high: 4}, latency_ms: 5}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--solver", default="greedy")
    parser.add_argument("--time-limit", type=float, default=4.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        "| helper interfaces | strategy | planned round (s) | clock's round (s) | clock / plan | bound (s) | status | helpers used |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for nic, label in (("", "unknown"), (", nic_mbps: 50", "50 Mbit/s")):
            lab = Path(tmp) / "lab.yaml"
            lab.write_text(LAB.replace("NIC", nic))
            for strategy in sorted(ROUND_MODELS):
                request = TrainRequest(
                    profile=str(lab),
                    dataset="digits",
                    rounds=1,
                    threads=1,
                    cost_only=True,
                    solver=args.solver,
                    time_limit=args.time_limit,
                    strategy=strategy,
                    batches_per_round=2,
                )
                outcome = train(request)
                sch = outcome.schedule
                assert validate(outcome.experiment.planned_instance, sch) == []
                plan = sch.round_time or sch.makespan
                clock = float(outcome.result.rounds["round_time_ms"].iloc[0])
                used = len({h for h in sch.assignment.values() if h is not None})
                print(
                    f"| {label} | {strategy} | {plan / 1e3:,.3f} | {clock / 1e3:,.3f} | {clock / plan:.12f} | "
                    f"{sch.lower_bound / 1e3:,.3f} | {sch.status} | {used} |"
                )


if __name__ == "__main__":
    main()
