"""One interface for every solver: ``solve(instance, *, time_limit=None, seed=0, **options) -> SolveResult``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pslsched.core.instance import Instance
from pslsched.core.result import SolveResult

SolverFn = Callable[..., SolveResult]


@dataclass(frozen=True)
class SolverInfo:
    name: str
    fn: SolverFn
    summary: str


_REGISTRY: dict[str, SolverInfo] = {}


def register(name: str, summary: str) -> Callable[[SolverFn], SolverFn]:
    """Decorator: register ``fn`` under ``name`` (names are unique)."""

    def deco(fn: SolverFn) -> SolverFn:
        if name in _REGISTRY:
            raise ValueError(f"solver {name!r} registered twice")
        _REGISTRY[name] = SolverInfo(name, fn, summary)
        return fn

    return deco


def available_solvers() -> dict[str, SolverInfo]:
    """Registered solvers by name."""
    return dict(_REGISTRY)


def get_solver(name: str) -> SolverFn:
    """The solver registered under ``name``; a KeyError naming the known ones otherwise."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown solver {name!r} (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name].fn


def solve(
    instance: Instance, solver: str = "greedy", *, time_limit: float | None = None, seed: int = 0, **options
) -> SolveResult:
    """Run the solver registered as ``solver`` on ``instance``."""
    return get_solver(solver)(instance, time_limit=time_limit, seed=seed, **options)
