"""Training settings: testbed.yaml's ``training:`` section, overridden by ``sched train`` options."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pslsched.base.errors import InputError
from pslsched.base.limits import (
    MAX_BATCHES,
    MAX_COUNT,
    MAX_GROUP,
    MAX_PROFILE_BATCH,
    MAX_SPEED,
    MAX_THREADS,
    MIN_PROFILE_BATCH,
    MIN_SPEED,
)


class CutPoints(BaseModel):
    """Cut points of the trained model; checked against its blocks when it is built (``models.check_cuts``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    a: int
    b: int


class TrainConfig(BaseModel):
    """What to train and how; the clock's settings (rounds, stragglers, policy, seed) are the SimConfig's."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dataset: str = "digits"
    data_dir: str | None = None
    model: str | None = None  # None: the dataset's default (cnn for grey images, resnet for colour)
    cuts: CutPoints | None = None  # cut points of the trained model (None: the model's default)
    strategy: str = "splitfed1"
    partition: str = "iid"
    clients: int | None = Field(
        default=None, ge=1, le=MAX_GROUP
    )  # scale the testbed's client groups to this many clients
    batch_size: int = Field(default=16, ge=1, le=MAX_COUNT)
    batches_per_round: int | None = Field(
        default=None, ge=1, le=MAX_BATCHES
    )  # None: a round is one local epoch
    sampler: str | None = None  # fls | fpls | ugs | lds[:tilt=..,c=..]; None: local epochs of batch_size
    global_batch: int | None = Field(
        default=None, ge=1, le=MAX_COUNT
    )  # a sampler's B (default batch_size x clients)
    steps_per_round: int | None = Field(
        default=None, ge=1, le=MAX_BATCHES
    )  # with a sampler (default: one epoch per round)
    lr: float = Field(default=0.01, gt=0, allow_inf_nan=False)
    optimizer: Literal["sgd", "adam"] = "adam"
    momentum: float = Field(default=0.0, ge=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    eval_every: int = Field(default=1, ge=1, le=MAX_COUNT)
    target_accuracy: float = Field(default=0.9, gt=0, le=1)
    # the batch the profile's costs are for (None: the testbed's model.batch, 128 by default)
    profile_batch: float | None = Field(default=None, ge=MIN_PROFILE_BATCH, le=MAX_PROFILE_BATCH)
    clock: Literal["profile", "measured"] = "profile"
    speed: float = Field(default=1.0, ge=MIN_SPEED, le=MAX_SPEED)  # measured clock: simulated ms per wall ms
    device: str = "cpu"
    # torch threads; None: 1, the fastest for a run's small steps (one client's batch through part of a model; 4x
    # faster than torch's default of all cores on 2 cores); raise it for large models or splitfed1:batched=true
    threads: int | None = Field(default=None, ge=1, le=MAX_THREADS)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return check_device(value)


def check_device(name: str) -> str:
    """``name`` if it is a torch device this machine can train on (``cpu``, an available ``cuda[:N]`` or ``mps``);
    a ``ValueError`` saying which devices there are otherwise (``meta`` holds no data: nothing can train on it)."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        device = None
    known = ["cpu"]
    if torch.cuda.is_available():
        known += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        known.append("mps")
    ok = device is not None and (
        device.type == "cpu"
        or (
            device.type == "cuda"
            and torch.cuda.is_available()
            and (device.index or 0) < torch.cuda.device_count()
        )
        or (device.type == "mps" and "mps" in known)
    )
    if not ok:
        raise ValueError(f"unknown or unavailable torch device {name!r} (available here: {', '.join(known)})")
    return name


def train_config_from(section: dict | None, **overrides) -> TrainConfig:
    """A TrainConfig from a testbed's ``training:`` mapping with CLI overrides (None = keep)."""
    data = dict(section or {})
    sampling = data.pop("sampling", None)
    if isinstance(sampling, str):
        data["sampler"] = sampling
    elif isinstance(sampling, dict):
        sampling = dict(sampling)
        name = sampling.pop("sampler", None)
        for key in ("global_batch", "steps_per_round"):
            if key in sampling:
                data[key] = sampling.pop(key)
        if name is not None and sampling:  # the sampler's own knobs, e.g. {sampler: lds, tilt: 2}
            name = name + ":" + ",".join(f"{k}={v}" for k, v in sampling.items())
        elif sampling:
            raise InputError(f"training.sampling.{next(iter(sampling))}", "unknown key (no sampler named)")
        if name is not None:
            data["sampler"] = name
    elif sampling is not None:
        raise InputError("training.sampling", f"expected a sampler name or a mapping, got {sampling!r}")
    given = {k: v for k, v in overrides.items() if v is not None}
    data.update(given)
    if isinstance(data.get("cuts"), str):
        data["cuts"] = _parse_cuts(data["cuts"])
    try:
        cfg = TrainConfig(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise InputError(f"training.{loc}", "unknown key") from None
        msg = err["msg"].removeprefix("Value error, ")
        key = str(err["loc"][0]) if err["loc"] else ""
        field = "--" + key.replace("_", "-") if key in given else f"training.{loc}"  # an option: its flag
        raise InputError(field, f"{msg} (got {err.get('input')!r})") from None
    if cfg.sampler is None and (cfg.steps_per_round or cfg.global_batch):
        key = "--steps-per-round" if cfg.steps_per_round else "--global-batch"
        raise InputError(key, "applies to a sampler: give --sampler fls|fpls|ugs|lds")
    if cfg.sampler is not None and cfg.batches_per_round:
        raise InputError("--batches-per-round", "with a sampler the round is set by --steps-per-round")
    return cfg


def _parse_cuts(text: str) -> dict:
    parts = text.replace(":", ",").split(",")
    try:
        a, b = (int(p) for p in parts)
    except ValueError:
        raise InputError("--cuts", f"expected A,B (two block indices), got {text!r}") from None
    return {"a": a, "b": b}
