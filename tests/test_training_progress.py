"""A long round's progress (steps done of the round's steps, at most every ~2 s) and the summary's peak memory."""

from __future__ import annotations

import io
import json
import resource
import sys
from contextlib import redirect_stderr

import pytest
import torch
from test_training import SYN, greedy, tiny

from pslsched.simulator import SimConfig
from pslsched.training import TrainConfig, run_training
from pslsched.training.results import StepProgress, peak_rss_mb

torch.set_num_threads(1)


class Ticks:
    """A fake clock: every call advances by ``step`` seconds."""

    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def train(strategy: str, progress, **cfg):
    built = tiny(clients=4, helpers=2)
    settings = {"dataset": SYN, "model": "mlp", "batch_size": 8, "optimizer": "sgd", "lr": 0.05, **cfg}
    return run_training(
        built.instance,
        built.workload,
        greedy(built),
        SimConfig(rounds=2, seed=1),
        TrainConfig(strategy=strategy, **settings),
        progress=progress,
    )


@pytest.mark.parametrize(
    ("strategy", "unit"), [("psl", "steps"), ("splitfed1", "client-steps"), ("psl:path=per-client", "steps")]
)
def test_progress_counts_the_rounds_steps(strategy, unit):
    lines: list[str] = []
    # every clock call is 1 s later, the interval 1 s: a line per unit of work
    train(strategy, StepProgress(lines.append, interval=1.0, clock=Ticks(1.0)))
    per_round = [line for line in lines if line.startswith("round 2:")]
    assert per_round and all(unit in line for line in lines)
    last = per_round[-1].split()[2]  # "done/total"
    done, total = (int(v.replace(",", "")) for v in last.split("/"))
    assert done == total  # the last unit of the round was counted, and the total is the round's
    assert per_round[-1].endswith("s") and "(100%)" in per_round[-1]


def test_progress_is_quiet_within_the_interval_and_off_by_default():
    lines: list[str] = []
    train("psl", StepProgress(lines.append, interval=2.0, clock=Ticks(1e-6)))
    assert lines == []  # a round shorter than the interval prints nothing
    err = io.StringIO()
    with redirect_stderr(err):  # not a terminal: no progress unless asked
        train("psl", None)
    assert "steps" not in err.getvalue()
    err = io.StringIO()
    with redirect_stderr(err):  # asked: on stderr (a 0 s interval: every step)
        train("psl", StepProgress(interval=0.0))
    assert "round 1: 1/" in err.getvalue()


def test_summary_reports_the_peak_memory(tmp_path):
    run = train("psl", False)
    summary = run.summary()
    expected = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (
        2**20 if sys.platform == "darwin" else 1024
    )
    assert summary["peak_rss_mb"] == pytest.approx(expected, abs=1.0)
    assert 10 < summary["peak_rss_mb"] <= peak_rss_mb()
    run.write(tmp_path, curves=False)
    assert json.loads((tmp_path / "summary.json").read_text())["peak_rss_mb"] > 10


@pytest.mark.parametrize(
    ("flag", "expected"), [("--progress", True), ("--no-progress", False), (None, False)]
)
def test_train_progress_flag_forces_or_silences_the_step_lines(monkeypatch, capsys, flag, expected):
    import pslsched.training.runner as runner
    from pslsched.cli import main

    class Every(StepProgress):  # a line at every step, whatever the round's length
        def __init__(self, emit=None, interval=2.0, clock=None):
            super().__init__(emit, interval=0.0)

    monkeypatch.setattr(runner, "StepProgress", Every)
    argv = [
        "train",
        "--dataset",
        "synthetic:n=64,test=16",
        "--model",
        "mlp",
        "--clients",
        "3",
        "--rounds",
        "1",
    ]
    argv += [flag] if flag else []
    assert main(argv) == 0
    err = capsys.readouterr().err  # not a terminal: lines only when asked
    assert ("round 1: 1/" in err) == expected, err
