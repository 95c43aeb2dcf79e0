"""What a user asks for, typed: one request per use-case, with the ``sched`` options as its fields.

The CLI builds a request from its parsed options, a sweep point from its grid values, a notebook from keyword
arguments; all three go through the same validation (``Request.from_options``), so a value is accepted or refused
the same way everywhere. A refused value is an ``InputError`` naming the option (``--time-limit``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_BATCHES, MAX_SEED

Positive = Field(default=None, gt=0, allow_inf_nan=False)
PositiveInt = Field(default=None, ge=1)
SEED_RANGE = {"ge": 0, "le": MAX_SEED}  # seeds: whole numbers in [0, 2^63)
Links = Literal["dedicated", "shared"]


def flag_of(field: str) -> str:
    """The command-line flag of a request field: ``time_limit`` -> ``--time-limit``."""
    return "--" + field.replace("_", "-")


def field_of(flag: str) -> str:
    """The request field of a flag: ``--time-limit`` -> ``time_limit`` (anything else unchanged)."""
    return flag[2:].replace("-", "_") if flag.startswith("--") else flag


def as_text(value: Any) -> str:
    """A grid or Python value as the command line would write it (lists ``a,b``, mappings ``k=v,...``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(as_text(v) for v in value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}={as_text(v)}" for k, v in value.items())
    return str(value)


class Request(BaseModel):
    """Base of every request: unknown options are refused, values are checked on construction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]):
        """The request from option values (``None`` = not given); an InputError names the first bad option."""
        given = {k: v for k, v in options.items() if v is not None}
        for key, value in list(given.items()):
            if key in cls.model_fields and _takes_text(cls.model_fields[key].annotation):
                if not isinstance(value, str):
                    given[key] = as_text(value)
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = str(err["loc"][0]) if err["loc"] else "options"
            if err["type"] == "extra_forbidden":
                known = ", ".join(sorted(cls.model_fields))
                raise InputError(key, f"not an option of this command (options: {known})") from None
            raise InputError(flag_of(key), f"{err['msg']}, got {err.get('input')!r}") from None

    def options(self) -> dict[str, Any]:
        """The options that differ from the defaults (what a command line would spell out)."""
        return {
            k: v
            for k, v in self.model_dump().items()
            if v != type(self).model_fields[k].default and v is not None
        }


def _takes_text(annotation: Any) -> bool:
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    return str in args


class CodecOptions(Request):
    """What compresses the smashed data: a codec on the cut-a activations, optionally cut b and the gradients."""

    codec: str | None = None
    codec_cut_b: bool = False
    compress_grads: bool = False

    def wants_codec(self) -> bool:
        return self.codec is not None or self.codec_cut_b or self.compress_grads


class SourceOptions(CodecOptions):
    """Where the instance comes from: a testbed (default: the bundled one) or an instance JSON, and a codec."""

    profile: str | None = None
    instance: str | None = None
    clients: int | None = PositiveInt  # the testbed's client groups scaled to this many
    cuts: str | None = None  # ``auto`` or ``A,B``: the cost profile's cuts (auto: chosen with the plan)


DEFAULT_BASELINES = ("random", "greedy", "equid")  # Tirana et al.'s two baselines and Ganian et al.'s EquiD


class SolveRequest(SourceOptions):
    """``sched solve``: one solver on one instance."""

    solver: str | None = None  # default: auto
    strategy: str | None = None  # whose round is planned (exchange, memory): default SplitFed V1's
    time_limit: float | None = Positive
    seed: int = Field(default=0, **SEED_RANGE)
    workers: int | None = PositiveInt
    verbose: bool = False
    # the published baselines the answer is measured against ("none": none)
    baselines: list[str] = Field(default_factory=lambda: list(DEFAULT_BASELINES))

    @field_validator("baselines", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if value is None:
            return list(DEFAULT_BASELINES)
        if isinstance(value, str):
            names = [name.strip() for name in value.split(",") if name.strip()]
            return [] if names == ["none"] else names
        return value


class CompareRequest(SourceOptions):
    """``sched compare``: several solvers on one instance."""

    solvers: list[str] | None = None  # default: every registered solver
    strategy: str | None = None  # whose round is planned (exchange, memory): default SplitFed V1's
    time_limit: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    seed: int = Field(default=0, **SEED_RANGE)
    workers: int | None = PositiveInt
    verbose: bool = False

    @field_validator("solvers", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value


# request field -> SimConfig override of config_from
SIMULATION_OVERRIDES = {
    "rounds": "rounds",
    "policy": "policy",
    "links": "links",
    "dropout": "dropout",
    "round_timeout": "round_timeout_ms",
    "aggregator": "aggregator",
    "seed": "seed",
}


class SimulationOptions(Request):
    """The options of a simulation run shared by ``simulate`` and ``train`` (None = the testbed's or default)."""

    policy: str | None = None  # a registered dispatch policy (checked by the simulation settings)
    links: Links | None = None
    rounds: int | None = PositiveInt
    stragglers: str | None = None
    dropout: float | None = Field(default=None, ge=0, lt=1)  # 1: every client drops out, nothing runs
    round_timeout: float | None = Positive
    aggregator: str | None = None
    seed: int | None = Field(default=None, **SEED_RANGE)


class SimulateRequest(SourceOptions, SimulationOptions):
    """``sched simulate``: a schedule (read or solved) executed in simulated time."""

    schedule: str | None = None
    solver: str | None = None  # default: greedy
    time_limit: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    batches: int | None = Field(default=None, ge=1, le=MAX_BATCHES)
    strategy: str | None = (
        None  # whose round the clock runs (its exchange, memory and waits); default splitfed1
    )


class TrainRequest(CodecOptions, SimulationOptions):
    """``sched train``: real split training on the clock of a schedule (read or solved)."""

    profile: str | None = None
    schedule: str | None = None
    solver: str | None = None  # default: greedy
    time_limit: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    workers: int | None = PositiveInt
    dataset: str | None = None
    data_dir: str | None = None
    model: str | None = None
    cuts: str | None = None
    strategy: str | None = None
    partition: str | None = None
    clients: int | None = PositiveInt
    batch_size: int | None = PositiveInt
    batches_per_round: int | None = PositiveInt
    sampler: str | None = None
    global_batch: int | None = PositiveInt
    steps_per_round: int | None = PositiveInt
    lr: float | None = Positive
    optimizer: Literal["sgd", "adam"] | None = None
    momentum: float | None = None
    eval_every: int | None = PositiveInt
    target_accuracy: float | None = None
    profile_batch: float | None = Positive
    clock: Literal["profile", "measured"] | None = None
    speed: float | None = Positive
    device: str | None = None
    threads: int | None = PositiveInt
    cost_only: bool = False
    verbose: bool = False
    progress: bool | None = (
        None  # a long round's step lines: None on a terminal only, True always, False never
    )

    def plan_options(self) -> dict[str, Any]:
        """What ``pslsched.app.solving.plan`` takes from this request."""
        return {
            "schedule": self.schedule,
            "solver": self.solver,
            "time_limit": self.time_limit,
            "workers": self.workers,
            "verbose": self.verbose,
        }


class GenerateRequest(Request):
    """``sched generate``: a seeded instance of a published benchmark family."""

    family: str
    clients: str | int
    helpers: str | int
    seed: str | int = 0
    model: str | None = None
    cut: str | None = None
    memory: str | None = None
    memory_slack: str | float | None = None
    links: str | None = None


COMMANDS: dict[str, type[Request]] = {
    "solve": SolveRequest,
    "compare": CompareRequest,
    "simulate": SimulateRequest,
    "train": TrainRequest,
    "generate": GenerateRequest,
}
