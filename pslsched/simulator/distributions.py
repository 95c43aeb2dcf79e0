"""A registry of duration distributions: each draws multiplicative slow-down factors (1.0 = as profiled)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pslsched.base.errors import InputError

Sampler = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class Distribution:
    """A named factor distribution; ``sample(rng, n)`` returns n factors > 0."""

    name: str
    params: dict
    sample: Sampler


def _fixed(value: float = 1.0) -> Sampler:
    return lambda rng, n: np.full(n, float(value))


def _gaussian(mean: float = 1.0, sigma: float = 0.1, floor: float = 0.05) -> Sampler:
    return lambda rng, n: np.maximum(rng.normal(mean, sigma, n), floor)


def _lognormal(sigma: float = 0.2, median: float = 1.0) -> Sampler:
    return lambda rng, n: median * np.exp(rng.normal(0.0, sigma, n))


def _pareto(alpha: float = 3.0, scale: float = 1.0) -> Sampler:
    # classic Pareto with minimum ``scale``: heavy right tail of slow-downs
    return lambda rng, n: scale * (1.0 + rng.pareto(alpha, n))


def _trace(path: str) -> Sampler:
    file = Path(path)
    if not file.is_file():
        raise InputError("stragglers.trace", f"no such file {path!r}")
    try:
        values = np.loadtxt(file, dtype=float, ndmin=1)
    except ValueError as exc:
        raise InputError("stragglers.trace", f"{path!r} must hold one number per line ({exc})") from None
    if len(values) == 0 or not np.isfinite(values).all() or (values <= 0).any():
        raise InputError("stragglers.trace", f"{path!r} must hold positive finite factors")
    return lambda rng, n: values[rng.integers(0, len(values), n)]


DISTRIBUTIONS: dict[str, Callable[..., Sampler]] = {
    "fixed": _fixed,
    "gaussian": _gaussian,
    "lognormal": _lognormal,
    "pareto": _pareto,
    "trace": _trace,
}


def make_distribution(name: str, **params) -> Distribution:
    """Build a registered distribution; errors name the bad parameter."""
    if name not in DISTRIBUTIONS:
        raise InputError(
            "stragglers.dist", f"unknown distribution {name!r} (known: {', '.join(DISTRIBUTIONS)})"
        )
    for key, value in params.items():
        if key == "path":
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value):
            raise InputError(f"stragglers.{key}", f"must be a finite number, got {value!r}")
        if value < 0 or (key in ("alpha", "median", "scale", "value") and value <= 0):
            raise InputError(f"stragglers.{key}", f"must be > 0, got {value!r}")
    try:
        sampler = DISTRIBUTIONS[name](**params)
    except TypeError as exc:
        raise InputError("stragglers", f"bad parameters for {name!r}: {exc}") from None
    return Distribution(name, dict(params), sampler)
