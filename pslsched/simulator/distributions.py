"""Straggler distributions: each draws multiplicative slow-down factors (1.0 = as profiled).

Every distribution is an entry of ``STRAGGLER_DISTRIBUTIONS`` (one ``Registry``): a factory that takes the spec's
parameters and returns a ``Draw``, a callable ``draw(rng, n)`` giving n factors > 0. Parameters and drawn factors
lie in the documented ranges (docs/simulator.md): a drawn factor is clipped to [1e-6, 1e6], so no slow-down makes
virtual time infinite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_FACTOR, MIN_FACTOR
from pslsched.base.registry import Registry

Draw = Callable[[np.random.Generator, int], np.ndarray]

STRAGGLER_DISTRIBUTIONS: Registry[Callable[..., Draw]] = Registry(
    "distribution", "stragglers.dist", plural="straggler distributions"
)


@dataclass(frozen=True)
class Distribution:
    """A named factor distribution with its parameters bound; ``draw(rng, n)`` returns n factors > 0."""

    name: str
    params: dict
    draw: Draw


@STRAGGLER_DISTRIBUTIONS.register("fixed", "value: the same factor every time")
def _fixed(value: float = 1.0) -> Draw:
    return lambda rng, n: np.full(n, float(value))


@STRAGGLER_DISTRIBUTIONS.register("gaussian", "mean, sigma (floor 0.05): normal factors")
def _gaussian(mean: float = 1.0, sigma: float = 0.1, floor: float = 0.05) -> Draw:
    return lambda rng, n: np.maximum(rng.normal(mean, sigma, n), floor)


@STRAGGLER_DISTRIBUTIONS.register("lognormal", "sigma, median: median x exp(N(0, sigma))")
def _lognormal(sigma: float = 0.2, median: float = 1.0) -> Draw:
    return lambda rng, n: median * np.exp(rng.normal(0.0, sigma, n))


@STRAGGLER_DISTRIBUTIONS.register("pareto", "alpha, scale: heavy right tail of slow-downs, at least scale")
def _pareto(alpha: float = 3.0, scale: float = 1.0) -> Draw:
    # classic Pareto with minimum ``scale``: heavy right tail of slow-downs
    return lambda rng, n: scale * (1.0 + rng.pareto(alpha, n))


@STRAGGLER_DISTRIBUTIONS.register("trace", "path: factors drawn from a file of one factor per line")
def _trace(path: str) -> Draw:
    file = Path(path)
    if not file.is_file():
        raise InputError("stragglers.trace", f"no such file {path!r}")
    try:
        values = np.loadtxt(file, dtype=float, ndmin=1)
    except ValueError as exc:
        raise InputError("stragglers.trace", f"{path!r} must hold one number per line ({exc})") from None
    if len(values) == 0 or not ((values >= MIN_FACTOR) & (values <= MAX_FACTOR)).all():
        raise InputError(
            "stragglers.trace", f"{path!r} must hold factors in [{MIN_FACTOR:g}, {MAX_FACTOR:g}]"
        )
    return lambda rng, n: values[rng.integers(0, len(values), n)]


def make_distribution(name: str, **params) -> Distribution:
    """Build a registered distribution; errors name the bad parameter."""
    factory = STRAGGLER_DISTRIBUTIONS.get(name)
    for key, value in params.items():
        if key == "path":
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value):
            raise InputError(f"stragglers.{key}", f"must be a finite number, got {value!r}")
        if value < 0 or (key in ("alpha", "median", "scale", "value") and value <= 0):
            raise InputError(f"stragglers.{key}", f"must be > 0, got {value!r}")
    try:
        raw = factory(**params)
    except TypeError as exc:
        raise InputError("stragglers", f"bad parameters for {name!r}: {exc}") from None

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        with np.errstate(over="ignore"):  # an overflow to inf is clipped like any factor past the range
            return np.clip(raw(rng, n), MIN_FACTOR, MAX_FACTOR)

    return Distribution(name, dict(params), draw)
