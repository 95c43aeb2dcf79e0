"""Simulation settings: rounds, batches, dispatch policy, link model, stragglers, dropouts, aggregation.

Configured in testbed.yaml's ``simulation:`` section and overridable on the CLI (``--stragglers SPEC``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pslsched.base.errors import InputError
from pslsched.base.limits import (
    MAX_ALPHA,
    MAX_BATCHES,
    MAX_FACTOR,
    MAX_SEED,
    MAX_SIGMA,
    MIN_ALPHA,
    MIN_FACTOR,
    capped,
)
from pslsched.base.registry import Registry, as_number, parse_spec
from pslsched.simulator.distributions import STRAGGLER_DISTRIBUTIONS
from pslsched.simulator.policies import POLICIES, PolicySettings

TARGETS = ("client", "helper", "link")
FIELD = "--stragglers"


def _registered(registry: Registry, name: str) -> str:
    """``name`` if ``registry`` knows it; else the registry's "unknown ... (known: ...)" as a validation error."""
    try:
        return registry.check(name)
    except InputError as exc:
        raise ValueError(str(exc).removeprefix(f"{exc.field}: ")) from None


class StragglerSpec(BaseModel):
    """Slow-downs of one kind of entity.

    Either a distribution of factors (``dist`` + parameters, drawn ``per`` run, round or task), or the
    "p of the entities slow down by ``factor``" model (``p`` + ``factor``, drawn per round, or once with
    ``per: run``: persistent stragglers).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    target: Literal["client", "helper", "link"] = "client"
    per: Literal["run", "round", "task"] = "task"  # run: drawn once, the same entities slow in every round
    dist: str | None = None
    # the documented ranges (docs/simulator.md): a factor beyond them makes virtual time infinite or meaningless
    sigma: float | None = Field(default=None, ge=0, le=MAX_SIGMA)
    mean: float | None = Field(default=None, ge=MIN_FACTOR, le=MAX_FACTOR)
    median: float | None = Field(default=None, ge=MIN_FACTOR, le=MAX_FACTOR)
    alpha: float | None = Field(default=None, ge=MIN_ALPHA, le=MAX_ALPHA)
    scale: float | None = Field(default=None, ge=MIN_FACTOR, le=MAX_FACTOR)
    value: float | None = Field(default=None, ge=MIN_FACTOR, le=MAX_FACTOR)
    path: str | None = None
    p: float | None = Field(default=None, ge=0, le=1)
    factor: float | None = Field(default=None, ge=MIN_FACTOR, le=MAX_FACTOR)

    @model_validator(mode="after")
    def _one_model(self):
        if (self.dist is None) == (self.p is None):
            raise ValueError("give either dist (a distribution of factors) or p and factor (a slow fraction)")
        if self.p is not None and self.factor is None:
            raise ValueError("p needs a factor (how much slower the chosen entities are)")
        if self.dist is not None:
            _registered(STRAGGLER_DISTRIBUTIONS, self.dist)
        return self

    def dist_params(self) -> dict[str, Any]:
        keys = ("sigma", "mean", "median", "alpha", "scale", "value", "path")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


class SimConfig(BaseModel):
    """Everything a simulation run needs besides the instance, workload and schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rounds: int = Field(default=1, ge=1)
    batches: int | None = Field(default=None, ge=1, le=MAX_BATCHES)  # None: the instance's batches
    policy: str = "static"  # a registered dispatch policy (pslsched.simulator.policies)
    links: Literal["dedicated", "shared"] = "dedicated"
    stragglers: list[StragglerSpec] = Field(default_factory=list)
    dropout: float = Field(default=0.0, ge=0, lt=1)  # probability a client drops out during a round
    round_timeout_ms: float | None = Field(default=None, gt=0)  # default with dropouts: 3 x planned makespan
    aggregator: str | None = (
        None  # helper that averages head+tail weights at round end (default: first helper)
    )
    aggregate_ms: float = Field(default=0.0, ge=0)  # the averaging compute itself
    replan_solver: str = "auto"
    replan_time_limit: float = Field(default=2.0, gt=0)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)

    @field_validator("policy")
    @classmethod
    def _policy(cls, v: str) -> str:
        return _registered(POLICIES, v)

    @field_validator("rounds")
    @classmethod
    def _rounds(cls, v: int) -> int:
        return int(capped("rounds", v))  # PSLSCHED_CAP (quick runs); unchanged without it

    def policy_settings(self) -> PolicySettings:
        """What the dispatch policy may use: the replanning solver, its time limit, the seed."""
        return PolicySettings(self.replan_solver, self.replan_time_limit, self.seed)


PRESETS: dict[str, list[dict[str, Any]]] = {
    "none": [],
    "mild": [{"target": "client", "per": "task", "dist": "lognormal", "sigma": 0.2}],
    "heavy": [{"target": "client", "per": "round", "p": 0.1, "factor": 5.0}],
}


def parse_stragglers(text: str) -> list[StragglerSpec]:
    """``none|mild|heavy`` or ``target:dist:key=value,...`` / ``target:slow:p=..,factor=..`` joined by ``;``.

    Examples: ``client:lognormal:sigma=0.2``, ``helper:pareto:alpha=3,per=round``, ``client:slow:p=0.1,factor=5``.
    """
    if text in PRESETS:
        return [StragglerSpec(**s) for s in PRESETS[text]]
    specs = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        target, args, options = parse_spec(part, FIELD)
        if target not in TARGETS or len(args) != 1:
            raise InputError(
                FIELD, f"expected target:dist[:key=value,...] with target in {TARGETS}, got {part!r}"
            )
        data: dict[str, Any] = {"target": target}
        if args[0] != "slow":
            data["dist"] = args[0]
        for key, value in options.items():
            data[key] = value if key in ("per", "path") else as_number(f"{FIELD}.{key}", value)
        specs.append(_spec(data, FIELD))
    return specs


def _spec(data: dict, source: str) -> StragglerSpec:
    try:
        return StragglerSpec(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if loc and "input" in err and not isinstance(err["input"], dict):
            msg = f"{msg}, got {err['input']!r}"
        raise InputError(f"{source}.{loc}" if loc else source, msg) from None


def config_from(section: dict | None, **overrides) -> SimConfig:
    """A SimConfig from a testbed's ``simulation:`` mapping, with CLI overrides (None = keep)."""
    data = dict(section or {})
    if isinstance(data.get("stragglers"), str):
        data["stragglers"] = [s.model_dump(exclude_none=True) for s in parse_stragglers(data["stragglers"])]
    data.update({k: v for k, v in overrides.items() if v is not None})
    if "stragglers" in overrides and isinstance(overrides["stragglers"], list):
        data["stragglers"] = [
            s.model_dump(exclude_none=True) if isinstance(s, StragglerSpec) else s
            for s in overrides["stragglers"]
        ]
    try:
        return SimConfig(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise InputError(
            f"simulation.{loc}",
            f"{msg} (got {err.get('input')!r})" if err["type"] != "extra_forbidden" else msg,
        ) from None
