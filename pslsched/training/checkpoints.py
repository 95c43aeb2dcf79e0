"""A training run's checkpoint: the global model and the engine's state after the last finished round.

``checkpoint/model-<rounds>.pt`` holds the global model's parts (``torch.save`` of their state dicts) and
``checkpoint/state.json`` points at it, with the rounds done, every round's ``RoundResult``, the engine's random
generator, the metrics so far and a **manifest**: the run's identity (settings' hash, seed, package version:
``manifest.run_identity``) and the SHA-256 of the model file and of the run's own files (``settings.json``,
``schedule.json``), plus a checksum of state.json itself. They are written in that order, each atomically under a
temp name unique to the process, so a killed process leaves the previous consistent pair; ``load_checkpoint``
verifies everything before it trusts anything and refuses (one ``InputError``) a checkpoint of another run, an
edited file or a damaged one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pslsched.base.errors import InputError
from pslsched.base.files import sha256_file
from pslsched.base.files import write_atomically as write_atomically
from pslsched.base.limits import MAX_DATA_FILE_BYTES
from pslsched.simulator import RoundPlan, RoundResult
from pslsched.training.manifest import (
    MANIFEST_FORMAT,
    canonical,
    differences,
    settings_differences,
    sha256_text,
)

CHECKPOINT = "checkpoint"
STATE = "state.json"
OPTIMIZERS = "optimizers"  # the model file's entry for a strategy's optimizer state (not a model part)
_MODEL_NAME = re.compile(r"model-([1-9][0-9]*)\.pt")


def save_checkpoint(
    out: Path,
    rounds_done: int,
    parts: dict[str, nn.Module],
    results: list[RoundResult],
    rng: np.random.Generator,
    metrics: list[dict],
    optimizers: dict | None = None,
    identity: dict | None = None,
    checked_files: Sequence[str] = (),
) -> None:
    """``checkpoint/model-<rounds>.pt`` (the global model, and the optimizer state of a strategy that keeps it
    across rounds) and ``checkpoint/state.json`` pointing at it, with the manifest (``identity``, the checksums of
    the model file and of ``checked_files`` in ``out``); written in that order, each atomically, so a killed
    process leaves the previous consistent pair."""
    folder = out / CHECKPOINT
    folder.mkdir(exist_ok=True)
    model_file = f"model-{rounds_done}.pt"
    saved = {k: m.state_dict() for k, m in parts.items()}
    if optimizers is not None:
        saved[OPTIMIZERS] = optimizers
    write_atomically(folder / model_file, lambda p: torch.save(saved, p))
    files = {f"{CHECKPOINT}/{model_file}": sha256_file(folder / model_file)}
    files.update({name: sha256_file(out / name) for name in checked_files if (out / name).is_file()})
    state = {
        "format": MANIFEST_FORMAT,
        "rounds_done": rounds_done,
        "model": model_file,
        "results": [round_result_json(r) for r in results],
        "rng": rng.bit_generator.state,
        "metrics": [
            {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in m.items()} for m in metrics
        ],
        "manifest": {"run": identity, "files": files},
    }
    state["checksum"] = sha256_text(canonical(state))
    write_atomically(folder / STATE, lambda p: p.write_text(json.dumps(state)))
    for old in folder.glob("model-*.pt"):
        if old.name != model_file:
            old.unlink(missing_ok=True)


def has_checkpoint(out: Path) -> bool:
    """Whether ``out`` holds a checkpoint (its state.json; whether it verifies is ``read_state``'s answer)."""
    return (Path(out) / CHECKPOINT / STATE).is_file()


def _bad(out: Path, why: str) -> InputError:
    return InputError("--resume", f"the checkpoint in {str(out)!r} cannot be resumed: {why}")


def read_state(
    out: Path, identity: dict | None = None, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``checkpoint/state.json`` verified: its structure, its checksum, the run it belongs to (``identity``, when
    given; ``settings``: the folder's settings.json, compared by section) and every file it lists; an
    ``InputError`` naming what is wrong otherwise."""
    out = Path(out)
    file = out / CHECKPOINT / STATE
    if not file.is_file():
        raise InputError("--resume", f"no checkpoint in {str(out)!r} (expected {file})")
    try:
        if file.stat().st_size > MAX_DATA_FILE_BYTES:
            raise _bad(out, f"{STATE} is larger than {MAX_DATA_FILE_BYTES:,} bytes")
        state = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise _bad(out, f"{STATE} is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise _bad(out, f"{STATE} is not a mapping")
    if state.get("format") != MANIFEST_FORMAT or not isinstance(state.get("manifest"), dict):
        raise _bad(out, f"{STATE} has no manifest (written by an older psl-sched?): it cannot be verified")
    body = {k: v for k, v in state.items() if k != "checksum"}
    if state.get("checksum") != sha256_text(canonical(body)):
        raise _bad(out, f"{STATE} was edited or damaged (its checksum differs)")
    _check_structure(out, state)
    manifest = state["manifest"]
    diff = [] if settings is None else settings_differences(manifest.get("run"), settings)
    if identity is not None and not diff:
        diff = differences(manifest.get("run"), identity)
    if diff:
        raise _bad(out, "it belongs to another run: " + "; ".join(diff))
    files = manifest.get("files")
    model_key = f"{CHECKPOINT}/{state['model']}"
    if not isinstance(files, dict) or model_key not in files:
        raise _bad(out, f"its manifest lists no checksum of {state['model']}")
    for name, digest in files.items():
        path = out / str(name)
        if path.resolve().parent not in (out.resolve(), (out / CHECKPOINT).resolve()):
            raise _bad(out, f"its manifest names a file outside the run's folder: {name!r}")
        if not path.is_file():
            raise _bad(out, f"{name} is missing")
        if sha256_file(path) != digest:
            raise _bad(out, f"{name} was edited or damaged since the checkpoint (its checksum differs)")
    return state


def _check_structure(out: Path, state: dict) -> None:
    done = state.get("rounds_done")
    if isinstance(done, bool) or not isinstance(done, int) or done < 1:
        raise _bad(out, f"rounds_done must be a whole number >= 1, got {done!r}")
    model = state.get("model")
    match = _MODEL_NAME.fullmatch(model) if isinstance(model, str) else None
    if match is None or int(match.group(1)) != done:
        raise _bad(out, f"model must be 'model-{done}.pt' in the checkpoint folder, got {model!r}")
    for key in ("results", "metrics"):
        value = state.get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise _bad(out, f"{key} must be a list of mappings")
        if len(value) != done:
            raise _bad(out, f"{key} has {len(value)} round(s), rounds_done says {done}")
    if not isinstance(state.get("rng"), dict):
        raise _bad(out, "rng (the engine's random state) is missing")


def load_checkpoint(
    out: Path,
    parts: dict[str, nn.Module],
    on_optimizers: Callable[[dict], None] | None = None,
    identity: dict | None = None,
    shape: tuple[int, int] | None = None,
) -> tuple[int, list[RoundResult], np.random.Generator, list[dict]]:
    """Load the global model into ``parts`` (a saved optimizer state goes to ``on_optimizers``); the rounds done,
    the engine's results and rng, the metrics so far. Verified first (``read_state``; ``identity``: this run's;
    ``shape``: its clients and helpers, which every stored round's numbers must fit)."""
    state = read_state(out, identity)
    if shape is not None:
        for r, result in enumerate(state["results"]):
            problem = _result_problem(result, *shape)
            if problem:
                raise _bad(out, f"{STATE}: results[{r}].{problem}")
    try:
        weights = torch.load(out / CHECKPOINT / state["model"], weights_only=True)
        if not isinstance(weights, dict):
            raise ValueError("not a mapping of model parts")
        for k, m in parts.items():
            m.load_state_dict(weights[k])
        if on_optimizers is not None and OPTIMIZERS in weights:
            on_optimizers(weights[OPTIMIZERS])
    except Exception as exc:  # a model file of another shape, or one torch cannot read
        raise _bad(out, f"{state['model']} does not load: {type(exc).__name__}: {_first(exc)}") from None
    try:
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        metrics = [{k: (np.nan if v is None else v) for k, v in m.items()} for m in state["metrics"]]
        results = [round_result_from_json(r) for r in state["results"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad(out, f"{STATE} is malformed: {type(exc).__name__}: {_first(exc)}") from None
    return int(state["rounds_done"]), results, rng, metrics


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _int(v: Any, low: int = 0, high: int = 2**62) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v < high


def _result_problem(d: dict, k: int, h: int) -> str | None:
    """What is wrong with one stored round for a run of ``k`` clients and ``h`` helpers (None: nothing)."""
    checks = {
        "start": _num(d.get("start")),
        "makespan_ms": _num(d.get("makespan_ms")),
        "round_time_ms": _num(d.get("round_time_ms")),
        "bytes_sent": _num(d.get("bytes_sent")),
        "samples": _int(d.get("samples")),
        "steps": _int(d.get("steps")),
        "completion": _list(d.get("completion"), k, lambda c: c is None or _num(c)),
        "busy_ms": _list(d.get("busy_ms"), h, _num),
        "dropped": _list(d.get("dropped"), None, lambda j: _int(j, 0, k)),
        "timed_out": _list(d.get("timed_out"), None, lambda j: _int(j, 0, k)),
        "tasks": _list(d.get("tasks"), None, lambda t: _task(t, k, h)),
        "assign": d.get("assign") is None or _list(d["assign"], k, lambda i: _int(i, -1, h)),
        "orders": d.get("orders") is None
        or _list(d["orders"], None, lambda o: _list(o, None, lambda t: _order(t, k))),
        "plan": d.get("plan") is None or _plan(d["plan"], k),
    }
    bad = [key for key, ok in checks.items() if not ok]
    return f"{bad[0]} is not what a run of {k} clients and {h} helpers stores" if bad else None


def _list(v: Any, n: int | None, ok: Callable[[Any], bool]) -> bool:
    return isinstance(v, list) and (n is None or len(v) == n) and all(ok(x) for x in v)


def _task(t: Any, k: int, h: int) -> bool:
    return (
        isinstance(t, list)
        and len(t) == 8
        and _int(t[0])
        and _int(t[1])
        and _int(t[2], 0, k)
        and _int(t[3], 0, h)
        and isinstance(t[4], str)
        and all(_num(x) for x in t[5:])
    )


def _order(t: Any, k: int) -> bool:
    return isinstance(t, list) and len(t) == 3 and _int(t[0], 0, k) and isinstance(t[1], str) and _int(t[2])


def _plan(p: Any, k: int) -> bool:
    flags = ("sync", "return_grad", "broadcast", "exchange_weights", "sequential")
    return (
        isinstance(p, dict)
        and _list(p.get("samples"), None, lambda row: _list(row, k, lambda v: _int(v, 0, 2**40)))
        and _num(p.get("unit"))
        and all(_flag(p.get(f, False)) for f in flags)
    )


def _flag(v: Any) -> bool:
    """A plan's flag: one for the round, or one per step."""
    return isinstance(v, bool) or _list(v, None, lambda x: isinstance(x, bool))


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else ""


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
