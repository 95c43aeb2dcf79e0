"""Training strategies, one module per family, all registered in ``STRATEGIES`` once this package is imported.

``base`` holds the ``Strategy`` interface, its settings and the shared parts (optimizers, FedAvg); the families are
``splitfed`` (SplitFed V1 and V2, with V1's batched round in ``batched``), ``psl``, ``sglr``, ``locsplitfed`` and
``locfedmix``. ``make_strategy("name[:key=value,...]", settings)`` builds one.
"""

from __future__ import annotations

from pslsched.base.errors import InputError
from pslsched.base.registry import parse_spec
from pslsched.training.strategies.base import (
    PARTS,
    STRATEGIES,
    OptimizerSpec,
    Strategy,
    StrategySettings,
    parse_optimizer,
    weighted_average,
)
from pslsched.training.strategies.locfedmix import LocFedMix
from pslsched.training.strategies.locsplitfed import LocSplitFed
from pslsched.training.strategies.psl import PSL
from pslsched.training.strategies.sglr import SGLR
from pslsched.training.strategies.splitfed import SplitFedV1, SplitFedV2


def synchronous() -> list[str]:
    """The strategies with one update per step (a barrier after it): the ones a global sampler can drive."""
    return [name for name in STRATEGIES.names() if STRATEGIES.get(name).sync]


def make_strategy(spec: str, settings: StrategySettings | None = None) -> Strategy:
    """``name[:key=value,...]`` -> a Strategy built with ``settings`` (default: ``StrategySettings()``)."""
    name, args, kwargs = parse_spec(spec, "--strategy")
    cls = STRATEGIES.get(name)
    if args:
        raise InputError("--strategy", f"{name!r} takes key=value options, got {args[0]!r}")
    return cls(settings, **kwargs)


__all__ = [
    "synchronous",
    "PARTS",
    "PSL",
    "SGLR",
    "STRATEGIES",
    "LocFedMix",
    "LocSplitFed",
    "OptimizerSpec",
    "SplitFedV1",
    "SplitFedV2",
    "Strategy",
    "StrategySettings",
    "make_strategy",
    "parse_optimizer",
    "weighted_average",
]
