"""A training run: the simulator's clock executes a schedule while the training hook trains a real split model.

``run_training`` prepares the data, partition, model and strategy from a ``TrainConfig``, runs the engine round after
round, evaluates the global model after each round (evaluation is the experimenter's measurement: it takes no
virtual time), writes ``rounds.csv``, ``timeline.csv``, ``summary.json`` and a checkpoint after every round (so an
interrupted run loses at most the round in progress) and ``curves.png`` at the end. ``cost_only=True`` runs the
identical plan without computing anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from pslsched.base.errors import InputError
from pslsched.core.codecs import Compression
from pslsched.core.instance import Instance
from pslsched.core.schedule import Schedule
from pslsched.core.workload import Workload
from pslsched.models.zoo import MODELS, build_blocks, check_cuts, default_model_for, split
from pslsched.simulator import (
    MeasuredDurations,
    NoHooks,
    ProfileDurations,
    RoundPlan,
    RoundResult,
    RunRecord,
    SimConfig,
    Simulation,
    build_record,
)
from pslsched.training.config import TrainConfig
from pslsched.training.data import Dataset, load_dataset
from pslsched.training.hooks import Diverged, TrainingHooks
from pslsched.training.partitions import make_partition
from pslsched.training.plans import make_plan
from pslsched.training.samplers import SamplingPlanner, make_sampler
from pslsched.training.strategies import make_strategy, parse_optimizer

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
CHECKPOINT = "checkpoint"


@dataclass
class Prepared:
    """Everything a run needs besides the clock: data, partition, model parts, strategy, round plan."""

    dataset: Dataset
    client_data: list[np.ndarray]
    model_name: str
    cuts: tuple[int, int]
    parts: dict[str, nn.Module]
    planner: Callable[
        [int, list], RoundPlan
    ]  # the engine's plan function: round r's samples per step and client
    strategy: object


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
        _atomic(out / "rounds.csv", lambda p: self.rounds.to_csv(p, index=False))
        _atomic(out / "timeline.csv", lambda p: self.record.timeline.to_csv(p, index=False))
        _atomic(out / "summary.json", lambda p: p.write_text(json.dumps(self.summary(), indent=1) + "\n"))
        if curves and len(self.metrics):
            _atomic(out / "curves.png", lambda p: plot_curves({"": self}, p))


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    write(tmp)
    os.replace(tmp, path)


def seeds(seed: int) -> dict[str, int]:
    """Independent streams of a run's seed (SeedSequence.spawn): init, partition, data split, data order."""
    names = ("init", "partition", "split", "order", "sampling", "strategy")
    kids = np.random.SeedSequence(seed).spawn(len(names))
    return {n: int(k.generate_state(1, dtype=np.uint32)[0]) for n, k in zip(names, kids)}


def prepare(instance: Instance, cfg: TrainConfig, seed: int, dataset: Dataset | None = None) -> Prepared:
    """Data, partition over the instance's clients, the split model and the strategy (nothing trained yet)."""
    s = seeds(seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg.device)
    data = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.data_dir, seed=s["split"])
    k = instance.num_clients
    labels = data.y_train.numpy()
    client_data = make_partition(cfg.partition, labels, k, np.random.default_rng(s["partition"]))
    name = cfg.model or default_model_for(data.input_shape)
    spec = MODELS.get(name)
    torch.manual_seed(s["init"])
    blocks = build_blocks(name, data.input_shape, data.num_classes)
    a, b = (cfg.cuts.a, cfg.cuts.b) if cfg.cuts is not None else spec.default_cuts
    check_cuts(len(blocks), a, b, "--cuts")
    sp = split(blocks, a, b)
    parts = {"head": sp.head.to(device), "body": sp.body.to(device), "tail": sp.tail.to(device)}
    strategy = make_strategy(cfg.strategy)
    optimizer = parse_optimizer(cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    example = torch.zeros((1, *data.input_shape), device=device)
    strategy.setup(parts, k, instance.num_helpers, optimizer, example=example, num_classes=data.num_classes)
    sizes = np.array([len(c) for c in client_data])
    unit = profile_batch(cfg, instance)
    if cfg.sampler is None:
        plan = make_plan(sizes, cfg.batch_size, unit, strategy.sync, cfg.batches_per_round)

        def base(r: int, results: list) -> RoundPlan:
            return plan
    else:
        base = SamplingPlanner(
            make_sampler(cfg.sampler),
            sizes,
            cfg.global_batch or cfg.batch_size * k,
            unit,
            strategy.sync,
            s["sampling"],
            prior_delay(instance, unit),
            cfg.steps_per_round,
        )

    def planner(r: int, results: list) -> RoundPlan:
        flags = strategy.plan_flags(r)  # the strategy's chain options for this round
        p = base(r, results)
        return dataclasses.replace(p, **flags) if flags else p

    if device.type != "cpu":
        data = Dataset(
            data.name,
            data.x_train.to(device),
            data.y_train.to(device),
            data.x_test.to(device),
            data.y_test.to(device),
            data.num_classes,
        )
    return Prepared(data, client_data, name, (a, b), parts, planner, strategy)


def profile_batch(cfg: TrainConfig, instance: Instance) -> float:
    """The batch the clock's profile was measured with: the setting, else the testbed's ``model.batch``."""
    return float(cfg.profile_batch or instance.meta.get("profile_batch", 128.0))


def prior_delay(instance: Instance, unit: float) -> np.ndarray:
    """Each client's expected own time per sample before any round (its chain T1 + T3 + T5 averaged over the
    helpers it can reach, or local training), what LDS tilts by until it has observed the clients."""
    own = (
        np.nanmean(instance.release + instance.delay + instance.tail, axis=1)
        if instance.num_helpers
        else None
    )
    out = np.full(instance.num_clients, np.nan) if own is None else own
    if instance.local is not None:
        out = np.where(np.isnan(out), instance.local, out)
    return np.nan_to_num(out, nan=0.0) / unit


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError("--device", f"unknown device {name!r} (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", "cuda is not available on this machine (use cpu)")
    return device


@torch.no_grad()
def evaluate(
    parts: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor, batch: int = 1024
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of head -> body -> tail on (x, y)."""
    loss, correct = 0.0, 0
    for s in range(0, len(y), batch):
        logits = parts["tail"](parts["body"](parts["head"](x[s : s + batch])))
        loss += float(F.cross_entropy(logits, y[s : s + batch], reduction="sum"))
        correct += int((logits.argmax(1) == y[s : s + batch]).sum())
    return loss / len(y), correct / len(y)


def run_training(
    instance: Instance,
    workload: Workload | None,
    schedule: Schedule,
    sim_config: SimConfig,
    cfg: TrainConfig,
    *,
    out: Path | None = None,
    resume: bool = False,
    cost_only: bool = False,
    dataset: Dataset | None = None,
    on_round: Callable[[dict], None] | None = None,
    on_start: Callable[[], None] | None = None,
    compression: Compression | None = None,
) -> TrainResult:
    """Train for ``sim_config.rounds`` rounds on the simulator's clock; see the module docstring.

    ``compression`` encodes what crosses the cuts (give the same one the workload was built with, so the clock
    carries its payload sizes). ``resume=True`` continues from ``out``'s checkpoint (the same settings are the caller's job). A NaN loss stops
    the run: the rounds already done are kept (and written) and ``TrainResult.diverged`` says why.
    """
    prep = prepare(instance, cfg, sim_config.seed, dataset)
    if prep.strategy.precompute is not None and not cost_only:
        # a whole round computed at once has no per-step tensors to encode and no per-step wall times
        if compression is not None and compression.active:
            raise InputError(
                "--strategy.batched", "does not apply codecs: drop batched=true to train with --codec"
            )
        if cfg.clock == "measured":
            raise InputError("--strategy.batched", "has no per-step wall times: use --clock profile")
    prep.strategy.total_rounds = sim_config.rounds
    prep.strategy.seed = seeds(sim_config.seed)["strategy"]
    data = prep.dataset
    hooks = (
        NoHooks()
        if cost_only
        else TrainingHooks(
            prep.strategy,
            data.x_train,
            data.y_train,
            prep.client_data,
            list(instance.clients),
            seeds(sim_config.seed)["order"],
            measure=cfg.clock == "measured",
            compression=compression,
        )
    )
    durations = (
        MeasuredDurations(
            {j: cfg.speed for j in range(instance.num_clients)},
            {i: cfg.speed for i in range(instance.num_helpers)},
        )
        if cfg.clock == "measured" and not cost_only
        else ProfileDurations()
    )
    sim = Simulation(
        instance,
        schedule,
        sim_config,
        workload=workload,
        hooks=hooks,
        durations=durations,
        plan=prep.planner,
    )
    metrics: list[dict] = []
    start_round, results, rng = 0, None, None
    if resume:
        if out is None:
            raise InputError("--resume", "needs the run's folder")
        start_round, results, rng, metrics = load_checkpoint(out, prep.parts)
        if isinstance(hooks, TrainingHooks):
            for res in results:
                hooks.consumed += res.plan.samples.sum(axis=0).astype(np.int64)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if on_start is not None:
        on_start()  # everything is validated: the caller may write its set-up files now
    clock = {"t": time.perf_counter()}

    def after_round(r: int) -> None:
        row = {"round": r, "samples": sim.results[-1].samples, **plan_spread(sim.results[-1].plan)}
        if cost_only:
            row.update(train_loss=np.nan, test_loss=np.nan, test_accuracy=np.nan)
        else:
            row["train_loss"] = hooks.round_loss()
            last = r == sim_config.rounds - 1
            if (r + 1) % cfg.eval_every == 0 or last:
                row["test_loss"], row["test_accuracy"] = evaluate(prep.parts, data.x_test, data.y_test)
            else:
                row["test_loss"] = row["test_accuracy"] = np.nan
        now = time.perf_counter()
        row["wall_s"] = now - clock["t"]
        clock["t"] = now
        metrics.append(row)
        if out is not None:
            result = _result(instance, schedule, sim_config, cfg, prep, sim.results, metrics)
            result.write(out, curves=False)
            save_checkpoint(out, r + 1, prep.parts, sim.results, sim.rng, metrics)
        if on_round is not None:
            on_round({**row, "virtual_ms": sim.results[-1].start + sim.results[-1].round_time_ms})

    diverged = None
    try:
        sim.run(after_round, start_round=start_round, results=results, rng=rng)
    except Diverged as exc:
        diverged = str(exc)
    done = sim.results[: len(metrics)] if hasattr(sim, "results") else []
    result = _result(instance, schedule, sim_config, cfg, prep, done, metrics)
    result.diverged = diverged
    if out is not None:
        result.write(out)
    return result


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


def _result(instance, schedule, sim_config, cfg, prep, results, metrics) -> TrainResult:
    record = build_record(instance, schedule, sim_config, list(results))
    cols = ["round", *METRIC_COLUMNS]
    return TrainResult(
        record, pd.DataFrame(metrics, columns=cols), cfg, prep.model_name, prep.cuts, parts=prep.parts
    )


# --- checkpoints ------------------------------------------------------------------------------------------------


def save_checkpoint(out: Path, rounds_done: int, parts, results: list[RoundResult], rng, metrics) -> None:
    """``checkpoint/model-<rounds>.pt`` (the global model) and ``checkpoint/state.json`` pointing at it; written
    in that order, each atomically, so a killed process leaves the previous consistent pair."""
    folder = out / CHECKPOINT
    folder.mkdir(exist_ok=True)
    model_file = f"model-{rounds_done}.pt"
    _atomic(folder / model_file, lambda p: torch.save({k: m.state_dict() for k, m in parts.items()}, p))
    state = {
        "rounds_done": rounds_done,
        "model": model_file,
        "results": [_result_json(r) for r in results],
        "rng": rng.bit_generator.state,
        "metrics": [
            {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in m.items()} for m in metrics
        ],
    }
    _atomic(folder / "state.json", lambda p: p.write_text(json.dumps(state)))
    for old in folder.glob("model-*.pt"):
        if old.name != model_file:
            old.unlink(missing_ok=True)


def load_checkpoint(out: Path, parts) -> tuple[int, list[RoundResult], np.random.Generator, list[dict]]:
    """Load the global model into ``parts``; the engine's results and rng and the metrics so far."""
    folder = out / CHECKPOINT
    state_file = folder / "state.json"
    if not state_file.is_file():
        raise InputError("--resume", f"no checkpoint in {str(out)!r} (expected {state_file})")
    try:
        state = json.loads(state_file.read_text())
        weights = torch.load(folder / state["model"], weights_only=True)
        for k, m in parts.items():
            m.load_state_dict(weights[k])
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError("--resume", f"unreadable checkpoint in {str(out)!r}: {exc}") from None
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    metrics = [{k: (np.nan if v is None else v) for k, v in m.items()} for m in state["metrics"]]
    results = [_result_from_json(r) for r in state["results"]]
    return int(state["rounds_done"]), results, rng, metrics


def _result_json(r: RoundResult) -> dict:
    return {
        "start": r.start,
        "makespan_ms": r.makespan_ms,
        "round_time_ms": r.round_time_ms,
        "completion": [None if np.isnan(c) else float(c) for c in r.completion],
        "busy_ms": [float(b) for b in r.busy_ms],
        "bytes_sent": r.bytes_sent,
        "dropped": [int(j) for j in r.dropped],
        "tasks": [list(t) for t in r.tasks],
        "timed_out": [int(j) for j in r.timed_out],
        "samples": int(r.samples),
        "steps": int(r.steps),
        "plan": None
        if r.plan is None
        else {
            "samples": r.plan.samples.tolist(),
            "unit": r.plan.unit,
            "sync": r.plan.sync,
            "return_grad": r.plan.return_grad,
            "broadcast": r.plan.broadcast,
            "exchange_weights": r.plan.exchange_weights,
        },
        "assign": None if r.assign is None else [int(a) for a in r.assign],
        "orders": None if r.orders is None else [[list(t) for t in o] for o in r.orders],
    }


def _result_from_json(d: dict) -> RoundResult:
    plan = d["plan"]
    return RoundResult(
        start=d["start"],
        makespan_ms=d["makespan_ms"],
        round_time_ms=d["round_time_ms"],
        completion=np.array([np.nan if c is None else c for c in d["completion"]], dtype=float),
        busy_ms=np.array(d["busy_ms"], dtype=float),
        bytes_sent=d["bytes_sent"],
        dropped=d["dropped"],
        tasks=[tuple(t) for t in d["tasks"]],
        timed_out=d["timed_out"],
        samples=d["samples"],
        steps=d["steps"],
        plan=None
        if plan is None
        else RoundPlan(
            np.array(plan["samples"], dtype=np.int64),
            plan["unit"],
            plan["sync"],
            plan.get("return_grad", True),
            plan.get("broadcast", False),
            plan.get("exchange_weights", True),
        ),
        assign=None if d["assign"] is None else np.array(d["assign"]),
        orders=None if d["orders"] is None else [[tuple(t) for t in o] for o in d["orders"]],
    )


# --- plots ------------------------------------------------------------------------------------------------------


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
