"""Link rates and latencies in testbed.yaml: a fixed number or a distribution drawn per group member.

Every kind is an entry of ``RATE_DISTRIBUTIONS`` (one ``Registry``): a pydantic model that validates its
parameters and ``draw(n, rng)``-s n values. In YAML a kind is written as a plain number (``number``), a mapping
with ``dist: NAME`` (``uniform``, ``lognormal``, ``choice``) or a mapping with ``classes: [...]`` (``classes``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, ConfigDict, Field, RootModel, ValidationError, model_validator

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_MS
from pslsched.base.registry import Registry
from pslsched.core.testbed.fields import NonNegFloat, PositiveFloat, Strict, first_error


class RateDistribution:
    """The interface of a rate or latency kind: ``draw(n, rng)`` returns n values (numpy floats)."""

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


RATE_DISTRIBUTIONS: Registry[type[RateDistribution]] = Registry(
    "distribution", "dist", plural="rate distributions"
)


@RATE_DISTRIBUTIONS.register("number", "a fixed value for every member (a plain number: uplink_mbps: 20)")
class Number(RootModel[float], RateDistribution):
    """A fixed value; it reads and dumps as the plain number."""

    model_config = ConfigDict(frozen=True)

    @property
    def value(self) -> float:
        return self.root

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(n, self.root)


@RATE_DISTRIBUTIONS.register("uniform", "dist: uniform, low, high: uniform in [low, high]")
class Uniform(Strict, RateDistribution):
    dist: Literal["uniform"]
    low: NonNegFloat
    high: NonNegFloat

    @model_validator(mode="after")
    def _order(self):
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
        return self

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)


@RATE_DISTRIBUTIONS.register("lognormal", "dist: lognormal, median, sigma: median x exp(N(0, sigma))")
class LogNormal(Strict, RateDistribution):
    dist: Literal["lognormal"]
    median: PositiveFloat
    sigma: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)]

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.median * np.exp(rng.normal(0.0, self.sigma, n))


@RATE_DISTRIBUTIONS.register("choice", "dist: choice, values: one of the values, equally likely")
class Choice(Strict, RateDistribution):
    dist: Literal["choice"]
    values: list[NonNegFloat] = Field(min_length=1)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(np.asarray(self.values, dtype=float), n)


class RateClass(Strict):
    share: NonNegFloat
    low: NonNegFloat
    high: NonNegFloat


@RATE_DISTRIBUTIONS.register(
    "classes", "classes: [{share, low, high}, ...]: a class by share, then uniform in it"
)
class Classes(Strict, RateDistribution):
    """Rate classes: pick a class with probability ``share``, then a uniform value inside it."""

    classes: list[RateClass] = Field(min_length=1)

    @model_validator(mode="after")
    def _shares(self):
        total = sum(c.share for c in self.classes)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"class shares must sum to 1, got {total}")
        for c in self.classes:
            if c.low > c.high:
                raise ValueError(f"class low ({c.low}) must be <= high ({c.high})")
        return self

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        shares = np.array([c.share for c in self.classes])
        idx = rng.choice(len(self.classes), n, p=shares / shares.sum())
        low = np.array([c.low for c in self.classes])[idx]
        high = np.array([c.high for c in self.classes])[idx]
        return rng.uniform(low, high)


def parse_rate(value: Any) -> RateDistribution:
    """A YAML rate or latency: a number in [0, MAX_MS], ``{dist: NAME, ...}`` or ``{classes: [...]}``."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number or a distribution, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0 or value > MAX_MS:
            raise ValueError(f"must be a number in [0, {MAX_MS:g}]")
        return Number(float(value))
    if not isinstance(value, dict):
        raise ValueError(f"must be a number or a distribution mapping, got {value!r}")
    if "dist" in value:
        name = value["dist"]
    elif "classes" in value:
        name = "classes"
    else:
        raise ValueError("a distribution mapping needs dist: NAME (or classes: [...])")
    try:
        kind = RATE_DISTRIBUTIONS.get(str(name))
        if kind is Number:  # a plain number, never a mapping
            raise InputError("dist", f"write a fixed value as a plain number, not dist: {name}")
        return kind.model_validate(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None
    except ValidationError as exc:
        where, msg, _ = first_error(exc)
        raise ValueError(f"{where + ': ' if where else ''}{msg}") from None


Rate = Annotated[Any, BeforeValidator(parse_rate)]
