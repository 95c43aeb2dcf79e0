"""Measuring a split model on this machine: per-block forward, backward and update times, activation and weight sizes.

:func:`measure_blocks` times a list of blocks now; :func:`measured_profile` measures a model by name once per
machine and keeps the profile in a cache (``$PSL_SCHED_CACHE``), which is what a testbed's ``model: {measure: ...}``
reads. The result is a profile in the project's CSV format (one device, one row per block) plus what goes in its sidecar
JSON (:mod:`pslsched.profiles.store`): the batch, the input, the machine, the torch version, the thread count and
the run-to-run spread. ``docs/profiles.md`` explains the method; in short, per repetition (after warm-up runs that are
not timed):

- **forward**: each block runs on the *detached* output of the block before it (a fresh leaf that requires grad),
  timed alone with ``time.perf_counter_ns``; the last block's time includes the loss (cross-entropy on random
  labels when the output is ``(batch, classes)`` logits);
- **backward**: blocks run backward in reverse order, each one alone, ``torch.autograd.backward(output, grad)``
  with ``grad`` the gradient the next block's backward left on its detached input: the real upstream gradient,
  and the time of exactly this block's autograd graph (weight gradients + the gradient for its input; the first
  block computes no input gradient, as in training);
- **update**: one optimizer per block (``sgd`` or ``adam``), its ``step()`` timed alone (0 for a block without
  parameters).

The reported time is the median over the repetitions; the spread is the relative inter-quartile range. The thread
count is set explicitly (and restored). Sizes are exact: ``activation_kb`` is the block output's
``numel * element_size`` for the whole batch over 1024, ``weights_kb`` the block's ``state_dict`` tensors' (parameters
and buffers) ``numel * element_size`` over 1024.

torch is imported inside the functions: ``import pslsched.profiles`` stays torch-free. Where a model's blocks come
from is :mod:`pslsched.profiles.model_blocks`; what identifies the machine, :mod:`pslsched.profiles.machine`.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pslsched.base.limits import capped
from pslsched.profiles.machine import machine_info
from pslsched.profiles.model_blocks import one_line, resolve_blocks
from pslsched.profiles.profile import COLUMNS, ModelProfile, ProfileError, load_profile
from pslsched.profiles.store import write_profile

DEFAULT_DEVICE = "here"
CACHE_ENV = "PSL_SCHED_CACHE"
OPTIMIZERS = ("adam", "sgd")


@dataclass
class Measurement:
    """A measured profile: ``frame`` in the profile CSV format (one device) and ``meta`` for the sidecar."""

    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def profile(self, name: str | None = None) -> ModelProfile:
        from pslsched.profiles.profile import profile_from_frame

        return profile_from_frame(self.frame, name=name or str(self.meta.get("model", "measured")))


def _state_bytes(module) -> int:
    return int(sum(t.numel() * t.element_size() for t in module.state_dict().values()))


def _quartiles(samples_ns: np.ndarray) -> tuple[float, float]:
    """Median (ms) and relative inter-quartile range of a set of timings in ns."""
    med = float(np.median(samples_ns)) / 1e6
    q1, q3 = np.percentile(samples_ns, [25, 75]) / 1e6
    return med, (float(q3 - q1) / med if med > 0 else 0.0)


def measure_blocks(
    blocks: Sequence[Any],
    input_shape: Sequence[int],
    batch: int,
    *,
    num_classes: int = 10,
    repeats: int = 10,
    warmup: int = 3,
    threads: int | None = None,
    optimizer: str = "adam",
    device_name: str = DEFAULT_DEVICE,
    model_name: str = "model",
    names: Sequence[str] | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Measurement:
    """Time every block of ``blocks`` (torch modules, run in order) on a batch of ``batch`` inputs ``(C, H, W)``.

    Raises ``ProfileError`` (one line) for bad settings or when the model cannot run on this input.
    ``progress(done, total)`` is called after every repetition (warm-up included). The blocks are really trained
    for ``warmup + repeats`` steps (their weights change; pass copies to keep yours) and left in ``train()`` mode.
    """
    import torch

    if not isinstance(batch, int | np.integer) or isinstance(batch, bool) or batch < 1:
        raise ProfileError(f"batch must be a whole number >= 1, got {batch!r}")
    if repeats < 1 or warmup < 0:
        raise ProfileError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    repeats = int(capped("repeats", repeats))  # PSLSCHED_CAP (quick runs); unchanged without it
    if threads is not None and threads < 1:
        raise ProfileError(f"threads must be >= 1, got {threads}")
    if optimizer not in OPTIMIZERS:
        raise ProfileError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    shape = tuple(int(d) for d in input_shape)
    blocks = list(blocks)
    if not blocks:
        raise ProfileError("the model has no blocks")
    names = (
        list(names)
        if names is not None
        else [getattr(b, "block_name", None) or type(b).__name__.lower() for b in blocks]
    )
    what = f"model {model_name!r} on input {shape} (batch {batch})"

    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    used_threads = torch.get_num_threads()
    n = len(blocks)
    fwd = np.zeros((repeats, n))
    bwd = np.zeros((repeats, n))
    upd = np.zeros((repeats, n))
    act_bytes = [0] * n
    was_gc = gc.isenabled()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                x0 = torch.randn((batch, *shape))
                y = torch.randint(0, max(int(num_classes), 1), (batch,))
            except (RuntimeError, MemoryError, ValueError) as exc:
                raise ProfileError(f"{what}: cannot make the input batch: {one_line(exc)}") from None
            params = [[p for p in b.parameters() if p.requires_grad] for b in blocks]
            opts = [_make_optimizer(torch, optimizer, p) if p else None for p in params]
            for b in blocks:
                b.train()
            # the first optimizer step of a process imports torch._dynamo (seconds): pay it here, untimed
            dummy = torch.zeros(1, requires_grad=True)
            dummy.grad = torch.zeros(1)
            _make_optimizer(torch, optimizer, [dummy]).step()
            gc.collect()
            gc.disable()
            total = warmup + repeats
            for r in range(total):
                timed = r - warmup
                _one_step(torch, blocks, params, opts, x0, y, fwd, bwd, upd, act_bytes, timed, what)
                if progress is not None:
                    progress(r + 1, total)
    finally:
        if was_gc:
            gc.enable()
        torch.set_num_threads(old_threads)

    weights = [_state_bytes(b) for b in blocks]
    rows, spread = [], {"fwd": [], "bwd": [], "update": []}
    for i in range(n):
        f_med, f_iqr = _quartiles(fwd[:, i])
        b_med, b_iqr = _quartiles(bwd[:, i])
        u_med, u_iqr = _quartiles(upd[:, i])
        spread["fwd"].append(round(f_iqr, 4))
        spread["bwd"].append(round(b_iqr, 4))
        spread["update"].append(round(u_iqr, 4))
        rows.append((device_name, i, f_med, b_med, u_med, act_bytes[i] / 1024.0, weights[i] / 1024.0))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    tot_f = fwd.sum(axis=1) / 1e6
    tot_b = (bwd + upd).sum(axis=1) / 1e6

    def rel(v: np.ndarray) -> dict[str, float]:
        med = float(np.median(v))
        q1, q3 = np.percentile(v, [25, 75])
        return {
            "median_ms": round(med, 6),
            "min_ms": round(float(v.min()), 6),
            "max_ms": round(float(v.max()), 6),
            "iqr_rel": round(float(q3 - q1) / med, 4) if med > 0 else 0.0,
            "range_rel": round(float(v.max() - v.min()) / med, 4) if med > 0 else 0.0,
        }

    meta = {
        "kind": "measured",
        "model": model_name,
        "input_shape": list(shape),
        "num_classes": int(num_classes),
        "batch": int(batch),
        "device": device_name,
        "blocks": names,
        "optimizer": optimizer,
        "repeats": int(repeats),
        "warmup": int(warmup),
        "threads": int(used_threads),
        "torch": str(torch.__version__),
        "machine": machine_info(),
        "timer": "time.perf_counter_ns, median over repeats",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "totals": {"fwd": rel(tot_f), "bwd_update": rel(tot_b)},
        "spread": {"per_block_iqr_rel": spread},
    }
    return Measurement(frame=frame, meta=meta)


def _make_optimizer(torch, name: str, params: list):
    return torch.optim.Adam(params, lr=1e-3) if name == "adam" else torch.optim.SGD(params, lr=1e-3)


def _one_step(torch, blocks, params, opts, x0, y, fwd, bwd, upd, act_bytes, timed, what) -> None:
    """One forward + backward + update of every block, each timed alone; ``timed < 0`` is a warm-up run."""
    clock = time.perf_counter_ns
    n = len(blocks)
    for ps in params:
        for p in ps:
            p.grad = None
    inputs, outputs = [], []
    x = x0
    loss = None
    for i, blk in enumerate(blocks):
        xin = x.detach().requires_grad_(i > 0 and x.is_floating_point())
        try:
            t0 = clock()
            out = blk(xin)
            if i == n - 1:
                loss = _loss(torch, out, y)
            t1 = clock()
        except Exception as exc:
            raise ProfileError(f"{what}: block {i} failed: {type(exc).__name__}: {one_line(exc)}") from None
        if not isinstance(out, torch.Tensor):
            raise ProfileError(f"{what}: block {i} returned {type(out).__name__}, not a tensor")
        if timed >= 0:
            fwd[timed, i] = t1 - t0
        act_bytes[i] = out.numel() * out.element_size()
        inputs.append(xin)
        outputs.append(loss if i == n - 1 else out)
        x = out
    grad = None
    for i in range(n - 1, -1, -1):
        out = outputs[i]
        t0 = t1 = 0
        if out.requires_grad and (i == n - 1 or grad is not None):
            try:
                t0 = clock()
                torch.autograd.backward(out, grad_tensors=None if i == n - 1 else grad)
                t1 = clock()
            except Exception as exc:
                raise ProfileError(
                    f"{what}: backward of block {i} failed: {type(exc).__name__}: {one_line(exc)}"
                ) from None
        grad = inputs[i].grad
        u0 = u1 = 0
        if opts[i] is not None:
            u0 = clock()
            opts[i].step()
            u1 = clock()
        if timed >= 0:
            bwd[timed, i] = t1 - t0
            upd[timed, i] = u1 - u0


def _loss(torch, out, y):
    if out.dim() == 2 and out.shape[0] == y.shape[0] and out.is_floating_point():
        return torch.nn.functional.cross_entropy(out, y.clamp(max=out.shape[1] - 1))
    return out.float().pow(2).mean()


# ------------------------------------------------------------------------------------- measured on first use


def cache_dir() -> Path:
    """Where measured profiles are cached: ``$PSL_SCHED_CACHE`` or ``~/.cache/psl-sched``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "psl-sched"


def cache_path(
    model: str, batch: int, input_shape: Sequence[int], num_classes: int = 10, threads: int | None = None
) -> Path:
    """The cached profile's path, keyed by model, batch, input shape, classes and machine (incl. torch version)."""
    ident = dict(machine_info(), threads=threads or "default")
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model)
    shape = "x".join(str(int(d)) for d in input_shape)
    return cache_dir() / "profiles" / f"{safe}-b{int(batch)}-{shape}-c{int(num_classes)}-{digest}.csv"


def measured_profile(
    model: str,
    batch: int,
    input_shape: Sequence[int],
    num_classes: int = 10,
    *,
    threads: int | None = None,
    repeats: int = 10,
    warmup: int = 3,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The cached measured profile of ``model`` on this machine, measured (device ``here``) on first use."""
    path = cache_path(model, batch, input_shape, num_classes, threads)
    if path.is_file():
        try:
            load_profile(path)
            return path
        except ProfileError:
            pass  # a damaged cache entry: measure again
    blocks = resolve_blocks(model, input_shape, num_classes)
    say = log or (lambda msg: print(msg, file=sys.stderr))
    say(
        f"profiles: measuring {model!r} (batch {batch}, input {'x'.join(map(str, input_shape))}) on this machine"
    )
    meas = measure_blocks(
        blocks,
        input_shape,
        int(batch),
        num_classes=num_classes,
        repeats=repeats,
        warmup=warmup,
        threads=threads,
        model_name=model,
    )
    try:
        write_profile(meas.frame, meas.meta, path)
    except OSError as exc:
        raise ProfileError(f"cannot write the profile cache {str(path)!r} ({exc}); set {CACHE_ENV}") from None
    say(f"profiles: cached at {path}")
    return path
