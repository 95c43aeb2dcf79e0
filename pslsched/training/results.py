"""What a training run produced: ``TrainResult`` (the simulator's record plus accuracy and loss per round), its
summary, the files it writes (``rounds.csv``, ``timeline.csv``, ``summary.json``, ``curves.png``) and the plots;
``StepProgress``, a long round's progress (steps done of the round's steps), and ``peak_rss_mb``."""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from pslsched.base import strict_json
from pslsched.base.files import write_atomically
from pslsched.simulator import RoundPlan, RunRecord
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


# A run has collapsed when, over its last COLLAPSE_ROUNDS evaluated rounds, the test accuracy never rises above what
# a constant guess scores (the test set's largest class share) by more than COLLAPSE_SE binomial standard errors of
# that share on the test set (3 standard errors: a model that learned anything at all leaves this band; one at
# chance stays in it with probability > 99.8% per round), or the training loss stays at or above the loss of a
# uniform guess, ln(classes).
COLLAPSE_ROUNDS = 3
COLLAPSE_SE = 3.0


@dataclass(frozen=True)
class Chance:
    """What guessing scores on a run's test set: the largest class share, the test set's size, the classes."""

    accuracy: float
    test_size: int
    classes: int

    @property
    def tolerance(self) -> float:
        p = self.accuracy
        return COLLAPSE_SE * math.sqrt(p * (1 - p) / max(1, self.test_size))


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
    chance: Chance | None = None  # None: unknown (the collapse test is skipped)
    note: str | None = None  # what the test accuracy measures, where the strategy makes that not obvious

    @property
    def collapsed(self) -> str | None:
        """Why the run learned nothing (its last rounds at chance accuracy or at a uniform guess's loss), or None."""
        if self.chance is None or self.diverged or len(self.metrics) < COLLAPSE_ROUNDS:
            return None
        last = self.metrics.dropna(subset=["test_accuracy"]).tail(COLLAPSE_ROUNDS)
        c = self.chance
        if len(last) == COLLAPSE_ROUNDS and (last["test_accuracy"] <= c.accuracy + c.tolerance).all():
            return (
                f"test accuracy {last['test_accuracy'].iloc[-1]:.4f} in the last {COLLAPSE_ROUNDS} evaluated rounds "
                f"at most {c.accuracy + c.tolerance:.4f}, chance ({c.accuracy:.4f}, the largest class share of "
                f"{c.test_size} test samples) plus {COLLAPSE_SE:g} standard errors: the model learned nothing"
            )
        loss = self.metrics["train_loss"].tail(COLLAPSE_ROUNDS)
        if loss.notna().all() and (loss >= math.log(c.classes)).all():
            return (
                f"training loss {loss.iloc[-1]:.4f} in the last {COLLAPSE_ROUNDS} rounds at or above ln({c.classes}) "
                f"= {math.log(c.classes):.4f}, a uniform guess's loss: the optimisation makes no progress"
            )
        return None

    def network(self) -> nn.Module:
        """The trained global model as one module (head -> body -> tail)."""
        return nn.Sequential(self.parts["head"], self.parts["body"], self.parts["tail"])

    @property
    def rounds(self) -> pd.DataFrame:
        """rounds.csv: the simulator's columns plus samples, train_loss, test_loss, test_accuracy, wall_s."""
        return self.record.rounds.merge(self.metrics, on="round", how="left")

    def _staleness(self) -> dict:
        """SplitFed V2 interleaved: how many body steps old the weights of its body gradients were, over the run."""
        m = self.metrics
        if "stale_mean" not in m or not len(m):
            return {}
        return {"stale_mean": float(m["stale_mean"].mean()), "stale_max": float(m["stale_max"].max())}

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
                "peak_rss_mb": peak_rss_mb(),
                "diverged": self.diverged,
                "collapsed": self.collapsed,
                "note": self.note,
                **self._staleness(),
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
            out / "summary.json", lambda p: p.write_text(strict_json.dumps(self.summary(), indent=1) + "\n")
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
        ax_t.plot(ends, acc, marker=".", label=label or "test accuracy")
        ax_r.plot(rounds["round"][ok] + 1, acc, marker=".", label=label or "test accuracy")
    target = next(iter(runs.values())).config.target_accuracy
    for ax in (ax_t, ax_r):
        ax.axhline(target, color="grey", lw=0.8, ls="--", label=f"target {target:.0%}")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    ax_t.set_xlabel("virtual time (s)")
    ax_t.set_title("test accuracy against virtual time")
    ax_r.set_xlabel("round")
    ax_r.set_title("test accuracy per round")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, MB (``getrusage(RUSAGE_SELF).ru_maxrss``: kB on Linux, bytes
    on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 1024), 1)


class StepProgress:
    """A long round's progress: ``round R: done/total steps (x%), s`` through ``emit``, at most every
    ``interval`` seconds of wall time (a round shorter than that prints nothing).

    ``begin(r, total, unit)`` starts a round (``unit``: ``steps`` for strategies with a barrier per step,
    ``client-steps`` otherwise); ``advance()`` counts one done."""

    def __init__(
        self,
        emit: Callable[[str], None] | None = None,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.emit = emit if emit is not None else _to_stderr
        self.interval = float(interval)
        self.clock = clock
        self.r, self.done, self.total, self.unit = 0, 0, 0, "steps"
        self.start = self.last = clock()

    def begin(self, r: int, total: int, unit: str = "steps") -> None:
        """Round ``r`` has ``total`` units of work to do."""
        self.r, self.done, self.total, self.unit = r, 0, int(total), unit
        self.start = self.last = self.clock()

    def advance(self) -> None:
        """One more unit done; report when ``interval`` has passed since the last report."""
        self.done += 1
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            share = self.done / self.total if self.total else 1.0
            self.emit(
                f"round {self.r + 1}: {self.done:,}/{self.total:,} {self.unit} ({share:.0%}), "
                f"{now - self.start:.0f} s"
            )


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
