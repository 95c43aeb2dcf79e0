"""What a training run produced: ``TrainResult`` (the simulator's record plus accuracy and loss per round), its
summary, the files it writes (``rounds.csv``, ``timeline.csv``, ``summary.json``, ``curves.png``) and the plots."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from pslsched.simulator import RoundPlan, RunRecord
from pslsched.training.checkpoints import write_atomically
from pslsched.training.config import TrainConfig

METRIC_COLUMNS = [
    "samples",
    "steps",
    "clients_per_step_min",
    "clients_per_step_max",
    "samples_per_step_min",
    "samples_per_step_max",
    "train_loss",
    "test_loss",
    "test_accuracy",
    "wall_s",
]


@dataclass
class TrainResult:
    """What a training run produced: the simulator's record plus accuracy and loss per round."""

    record: RunRecord
    metrics: pd.DataFrame  # round + METRIC_COLUMNS
    config: TrainConfig
    model: str
    cuts: tuple[int, int]
    diverged: str | None = None
    parts: dict[str, nn.Module] = field(default_factory=dict)  # the global model: head, body, tail

    def network(self) -> nn.Module:
        """The trained global model as one module (head -> body -> tail)."""
        return nn.Sequential(self.parts["head"], self.parts["body"], self.parts["tail"])

    @property
    def rounds(self) -> pd.DataFrame:
        """rounds.csv: the simulator's columns plus samples, train_loss, test_loss, test_accuracy, wall_s."""
        return self.record.rounds.merge(self.metrics, on="round", how="left")

    def summary(self) -> dict:
        """summary.json: the simulator's summary plus accuracy, time to the target accuracy and the settings."""
        cfg = self.config
        s = self.record.summary()
        acc = self.metrics["test_accuracy"].to_numpy(dtype=float) if len(self.metrics) else np.array([])
        measured = acc[~np.isnan(acc)]
        rounds = self.rounds
        ends = (rounds["start_ms"] + rounds["round_time_ms"]).to_numpy(dtype=float)
        tta = None
        for k, a in enumerate(acc):
            if not np.isnan(a) and a >= self.config.target_accuracy:
                tta = float(ends[k])
                break
        s.update(
            {
                "final_accuracy": float(measured[-1]) if len(measured) else None,
                "best_accuracy": float(measured.max()) if len(measured) else None,
                "target_accuracy": self.config.target_accuracy,
                "time_to_accuracy_ms": tta,
                "virtual_time_ms": float(ends[-1]) if len(ends) else 0.0,
                "wall_s": float(self.metrics["wall_s"].sum()) if len(self.metrics) else 0.0,
                "diverged": self.diverged,
                "settings": {
                    **self.config.model_dump(mode="json"),
                    "model": self.model,
                    "cuts": list(self.cuts),
                },
                "sampler": cfg.sampler,
                "global_batch": (cfg.global_batch or cfg.batch_size * self.record.instance.num_clients)
                if cfg.sampler
                else None,
            }
        )
        return s

    def write(self, out: Path, curves: bool = True) -> None:
        """rounds.csv, timeline.csv, summary.json (and curves.png), each replaced atomically."""
        write_atomically(out / "rounds.csv", lambda p: self.rounds.to_csv(p, index=False))
        write_atomically(out / "timeline.csv", lambda p: self.record.timeline.to_csv(p, index=False))
        write_atomically(
            out / "summary.json", lambda p: p.write_text(json.dumps(self.summary(), indent=1) + "\n")
        )
        if curves and len(self.metrics):
            write_atomically(out / "curves.png", lambda p: plot_curves({"": self}, p))


def plan_spread(plan: RoundPlan | None) -> dict:
    """Steps and the per-step spread of a round plan (clients taking part, samples)."""
    if plan is None:
        return {}
    per_step_clients = (plan.samples > 0).sum(axis=1)
    per_step_samples = plan.samples.sum(axis=1)
    return {
        "steps": plan.steps,
        "clients_per_step_min": int(per_step_clients.min()),
        "clients_per_step_max": int(per_step_clients.max()),
        "samples_per_step_min": int(per_step_samples.min()),
        "samples_per_step_max": int(per_step_samples.max()),
    }


def plot_curves(runs: dict[str, TrainResult], path: Path) -> None:
    """Test accuracy against virtual time and against round, one curve per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(11, 4))
    for label, res in runs.items():
        rounds = res.rounds
        ok = rounds["test_accuracy"].notna()
        ends = (rounds["start_ms"] + rounds["round_time_ms"])[ok] / 1e3
        acc = rounds["test_accuracy"][ok]
        ax_t.plot(ends, acc, marker=".", label=label or None)
        ax_r.plot(rounds["round"][ok] + 1, acc, marker=".", label=label or None)
    target = next(iter(runs.values())).config.target_accuracy
    for ax in (ax_t, ax_r):
        ax.axhline(target, color="grey", lw=0.8, ls="--")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    ax_t.set_xlabel("virtual time (s)")
    ax_r.set_xlabel("round")
    if len(runs) > 1 or next(iter(runs)):
        ax_t.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
