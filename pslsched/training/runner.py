"""A training run: the simulator's clock executes a schedule while the training hooks train a real split model.

``prepare_training`` builds the data, partition, model and strategy from a ``TrainConfig``; ``run_training`` runs
the engine round after round, evaluates the global model after each round (evaluation is the experimenter's
measurement: it takes no virtual time), writes ``rounds.csv``, ``timeline.csv``, ``summary.json`` and a checkpoint
after every round (so an interrupted run loses at most the round in progress) and ``curves.png`` at the end.
``cost_only=True`` runs the identical plan without computing anything.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    SimConfig,
    Simulation,
    build_record,
)
from pslsched.training.checkpoints import load_checkpoint, save_checkpoint
from pslsched.training.config import TrainConfig
from pslsched.training.datasets import Dataset, load_dataset
from pslsched.training.errors import Diverged
from pslsched.training.executor import TrainingHooks
from pslsched.training.manifest import run_identity
from pslsched.training.memory import check_copies_fit
from pslsched.training.partitions import make_partition
from pslsched.training.plans import make_plan
from pslsched.training.results import METRIC_COLUMNS, Chance, StepProgress, TrainResult, plan_spread
from pslsched.training.samplers import SamplingPlanner, make_sampler
from pslsched.training.strategies import (
    Strategy,
    StrategySettings,
    make_strategy,
    parse_optimizer,
    synchronous,
)

Planner = Callable[
    [int, list], RoundPlan
]  # the engine's plan function: round r's samples per step and client


@dataclass
class Prepared:
    """Everything a run needs besides the clock: data, partition, model parts, strategy, round plan."""

    dataset: Dataset
    client_data: list[np.ndarray]
    model_name: str
    cuts: tuple[int, int]
    parts: dict[str, nn.Module]
    planner: Planner
    strategy: Strategy

    def executor(self, client_names: list[str], seed: int, **options) -> TrainingHooks:
        """The step executor of this set-up: its strategy, data and partition, the data order of run seed ``seed``
        (``options``: ``measure``, ``compression``)."""
        data = self.dataset
        return TrainingHooks(
            self.strategy,
            data.x_train,
            data.y_train,
            self.client_data,
            list(client_names),
            seeds(seed)["order"],
            **options,
        )


DEFAULT_THREADS = 1  # TrainConfig.threads unset: a run's steps are small, where one thread is fastest
# subnormal floats (below 1.2e-38) flushed to zero on the CPU: once a model fits its data, gradients and Adam's
# second moments underflow into the subnormal range, where every float operation is many times slower (psl at
# K = 10,000 on synthetic data: the backward 2.4x slower); the values lost are below float32's normal range.
# Set while a run trains (``run_training``), off again after it.
FLUSH_DENORMAL = True


def seeds(seed: int) -> dict[str, int]:
    """Independent streams of a run's seed (SeedSequence.spawn): init, partition, data split, data order."""
    names = ("init", "partition", "split", "order", "sampling", "strategy")
    kids = np.random.SeedSequence(seed).spawn(len(names))
    return {n: int(k.generate_state(1, dtype=np.uint32)[0]) for n, k in zip(names, kids)}


# a sampler splits one global batch over the clients at every step: that is one update only where a step has one
_NOT_GLOBAL = (
    "global sampling needs a strategy with one update per step ({sync}); {name!r} steps each client's own copy "
    "on its share and averages the copies only at the round's end, so no global batch ever forms one update"
)


def prepare_training(
    instance: Instance, cfg: TrainConfig, seed: int, dataset: Dataset | None = None, *, rounds: int = 1
) -> Prepared:
    """Data, partition over the instance's clients, the split model and the strategy of a run of ``rounds``
    rounds with ``seed`` (nothing trained yet); ``dataset`` is used instead of loading ``cfg.dataset``."""
    s = seeds(seed)
    torch.set_num_threads(cfg.threads or DEFAULT_THREADS)
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
    optimizer = parse_optimizer(cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    strategy = make_strategy(cfg.strategy, StrategySettings(optimizer, rounds, s["strategy"]))
    example = torch.zeros((1, *data.input_shape), device=device)
    check_copies_fit(strategy.name, parts, k, optimizer.name, optimizer.momentum)
    strategy.setup(parts, k, instance.num_helpers, example=example, num_classes=data.num_classes)
    sizes = np.array([len(c) for c in client_data])
    unit = profile_batch(cfg, instance)
    if cfg.sampler is None:
        plan = make_plan(sizes, cfg.batch_size, unit, strategy.sync, cfg.batches_per_round)

        def base(r: int, results: list) -> RoundPlan:
            return plan
    else:
        sampler = make_sampler(cfg.sampler)
        if not strategy.sync:
            raise InputError(
                "--sampler", _NOT_GLOBAL.format(name=cfg.strategy, sync=", ".join(synchronous()))
            )
        base = SamplingPlanner(
            sampler,
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


def _progress(progress: StepProgress | bool | None) -> StepProgress | None:
    """The run's progress reporter: on stderr when asked (``True``) or, unasked, when stderr is a terminal."""
    if isinstance(progress, StepProgress):
        return progress
    if progress is None:
        progress = sys.stderr.isatty()
    return StepProgress() if progress else None


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
    checked_files: tuple[str, ...] = (),
    progress: StepProgress | bool | None = None,
) -> TrainResult:
    """Train for ``sim_config.rounds`` rounds on the simulator's clock; see the module docstring.

    ``compression`` encodes what crosses the cuts (give the same one the workload was built with, so the clock
    carries its payload sizes). ``resume=True`` continues from ``out``'s checkpoint, verified against this run
    (its manifest: settings' hash, seed, version, checksums; another run's or an edited one is an ``InputError``).
    ``checked_files``: files of ``out`` (the caller's settings) whose checksums each checkpoint records. A NaN loss stops the run: the rounds already done are kept (and written) and
    ``TrainResult.diverged`` says why.
    """
    prep = prepare_training(instance, cfg, sim_config.seed, dataset, rounds=sim_config.rounds)
    if prep.strategy.precompute is not None and not cost_only:
        # a whole round computed at once has no per-step tensors to encode and no per-step wall times
        if compression is not None and compression.active:
            raise InputError(
                "--strategy.batched", "does not apply codecs: drop batched=true to train with --codec"
            )
        if cfg.clock == "measured":
            raise InputError("--strategy.batched", "has no per-step wall times: use --clock profile")
    data = prep.dataset
    hooks = (
        NoHooks()
        if cost_only
        else prep.executor(
            instance.clients,
            sim_config.seed,
            measure=cfg.clock == "measured",
            compression=compression,
            progress=_progress(progress),
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
    identity = run_identity(instance, schedule, sim_config, cfg) if out is not None else None
    if resume:
        if out is None:
            raise InputError("--resume", "needs the run's folder")
        start_round, results, rng, metrics = load_checkpoint(
            out,
            prep.parts,
            prep.strategy.restore_optimizers,
            identity,
            (instance.num_clients, instance.num_helpers),
        )
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
            row.update(prep.strategy.round_metrics())
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
            save_checkpoint(
                out,
                r + 1,
                prep.parts,
                sim.results,
                sim.rng,
                metrics,
                prep.strategy.optimizer_state(),
                identity,
                checked_files,
            )
        if on_round is not None:
            on_round({**row, "virtual_ms": sim.results[-1].start + sim.results[-1].round_time_ms})

    diverged = None
    # only while the run trains: flushing is the calling thread's floating-point mode, which numpy, HiGHS and
    # the rest of the process share (torch's default, off, is restored after)
    torch.set_flush_denormal(FLUSH_DENORMAL)
    try:
        sim.run(after_round, start_round=start_round, results=results, rng=rng)
    except Diverged as exc:
        diverged = str(exc)
    finally:
        torch.set_flush_denormal(False)
    done = sim.results[: len(metrics)] if hasattr(sim, "results") else []
    result = _result(instance, schedule, sim_config, cfg, prep, done, metrics)
    result.diverged = diverged
    if out is not None:
        result.write(out)
    return result


def _result(
    instance: Instance,
    schedule: Schedule,
    sim_config: SimConfig,
    cfg: TrainConfig,
    prep: Prepared,
    results: list[RoundResult],
    metrics: list[dict],
) -> TrainResult:
    record = build_record(instance, schedule, sim_config, list(results))
    cols = ["round", *METRIC_COLUMNS]
    cols += [c for c in dict.fromkeys(k for row in metrics for k in row) if c not in cols]
    labels = prep.dataset.y_test.cpu().numpy()
    share = float(np.bincount(labels, minlength=prep.dataset.num_classes).max() / max(1, len(labels)))
    chance = Chance(share, len(labels), prep.dataset.num_classes)
    return TrainResult(
        record,
        pd.DataFrame(metrics, columns=cols),
        cfg,
        prep.model_name,
        prep.cuts,
        parts=prep.parts,
        chance=chance,
        note=prep.strategy.evaluation_note(),
    )
