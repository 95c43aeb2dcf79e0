"""A training run's checkpoint: the global model and the engine's state after the last finished round.

``checkpoint/model-<rounds>.pt`` holds the global model's parts (``torch.save`` of their state dicts) and
``checkpoint/state.json`` points at it, with the rounds done, every round's ``RoundResult``, the engine's random
generator and the metrics so far. They are written in that order, each atomically, so a killed process leaves the
previous consistent pair; ``--resume`` reads them back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pslsched.base.errors import InputError
from pslsched.simulator import RoundPlan, RoundResult

CHECKPOINT = "checkpoint"
OPTIMIZERS = "optimizers"  # the model file's entry for a strategy's optimizer state (not a model part)


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write`` a temporary file beside ``path``, then move it into place (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(
    out: Path,
    rounds_done: int,
    parts: dict[str, nn.Module],
    results: list[RoundResult],
    rng: np.random.Generator,
    metrics: list[dict],
    optimizers: dict | None = None,
) -> None:
    """``checkpoint/model-<rounds>.pt`` (the global model, and the optimizer state of a strategy that keeps it
    across rounds) and ``checkpoint/state.json`` pointing at it; written in that order, each atomically, so a
    killed process leaves the previous consistent pair."""
    folder = out / CHECKPOINT
    folder.mkdir(exist_ok=True)
    model_file = f"model-{rounds_done}.pt"
    saved = {k: m.state_dict() for k, m in parts.items()}
    if optimizers is not None:
        saved[OPTIMIZERS] = optimizers
    write_atomically(folder / model_file, lambda p: torch.save(saved, p))
    state = {
        "rounds_done": rounds_done,
        "model": model_file,
        "results": [round_result_json(r) for r in results],
        "rng": rng.bit_generator.state,
        "metrics": [
            {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in m.items()} for m in metrics
        ],
    }
    write_atomically(folder / "state.json", lambda p: p.write_text(json.dumps(state)))
    for old in folder.glob("model-*.pt"):
        if old.name != model_file:
            old.unlink(missing_ok=True)


def load_checkpoint(
    out: Path, parts: dict[str, nn.Module], on_optimizers: Callable[[dict], None] | None = None
) -> tuple[int, list[RoundResult], np.random.Generator, list[dict]]:
    """Load the global model into ``parts`` (a saved optimizer state goes to ``on_optimizers``); the rounds done,
    the engine's results and rng, the metrics so far."""
    folder = out / CHECKPOINT
    state_file = folder / "state.json"
    if not state_file.is_file():
        raise InputError("--resume", f"no checkpoint in {str(out)!r} (expected {state_file})")
    try:
        state = json.loads(state_file.read_text())
        weights = torch.load(folder / state["model"], weights_only=True)
        for k, m in parts.items():
            m.load_state_dict(weights[k])
        if on_optimizers is not None and OPTIMIZERS in weights:
            on_optimizers(weights[OPTIMIZERS])
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError("--resume", f"unreadable checkpoint in {str(out)!r}: {exc}") from None
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    metrics = [{k: (np.nan if v is None else v) for k, v in m.items()} for m in state["metrics"]]
    results = [round_result_from_json(r) for r in state["results"]]
    return int(state["rounds_done"]), results, rng, metrics


def round_result_json(r: RoundResult) -> dict:
    """One round's ``RoundResult`` as JSON-ready values (NaN completion times as None)."""
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
            "sequential": r.plan.sequential,
        },
        "assign": None if r.assign is None else [int(a) for a in r.assign],
        "orders": None if r.orders is None else [[list(t) for t in o] for o in r.orders],
    }


def round_result_from_json(d: dict) -> RoundResult:
    """The ``RoundResult`` that ``round_result_json`` wrote."""
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
            plan.get("sequential", False),
        ),
        assign=None if d["assign"] is None else np.array(d["assign"]),
        orders=None if d["orders"] is None else [[tuple(t) for t in o] for o in d["orders"]],
    )
