"""Per-client cut options (problem.md §1, "the cut as a decision"): one instance per candidate cut, composed.

The instances of one testbed at different global cuts have the same clients, helpers and links; row j of the
instance at cut c is client j at cut c. ``compose`` takes each client's row from its chosen cut's instance, and
``envelope`` the least of every entry over the candidates: every composition's times and demands are at least the
envelope's, and a round never gets shorter when a duration grows, so a lower bound on the envelope bounds every
per-client choice.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pslsched.core.exchange import Exchange
from pslsched.core.instance import MATRICES, Instance


def _rows(arrays: list[np.ndarray | None], choice: np.ndarray) -> np.ndarray | None:
    if any(a is None for a in arrays):
        return None
    stack = np.stack([np.asarray(a, dtype=float) for a in arrays])
    return stack[choice, np.arange(len(choice))]


def compose(instances: list[Instance], choice: np.ndarray) -> Instance:
    """The instance where client j runs at the cut of ``instances[choice[j]]`` (a body per client)."""
    choice = np.asarray(choice, dtype=int)
    base = instances[0]
    fields = {m: _rows([getattr(x, m) for x in instances], choice) for m in MATRICES}
    fields["demand"] = _rows([x.demand for x in instances], choice)
    fields["local"] = _rows([x.local for x in instances], choice) if base.local is not None else None
    if base.exchange is not None:
        exs = [x.exchange for x in instances]
        fields["exchange"] = Exchange(
            up=_rows([e.up for e in exs], choice),
            down=_rows([e.down for e in exs], choice),
            aggregate_ms=base.exchange.aggregate_ms,
            local_up=_rows([e.local_up for e in exs], choice),
            local_down=_rows([e.local_down for e in exs], choice),
        )
    return dataclasses.replace(base, **fields)


def envelope(instances: list[Instance]) -> Instance:
    """The entry-wise least instance over the candidates (NaN only where no candidate reaches the pair)."""
    base = instances[0]

    def least(arrays):
        if any(a is None for a in arrays):
            return None
        return np.fmin.reduce(np.stack([np.asarray(a, dtype=float) for a in arrays]), axis=0)

    fields = {m: least([getattr(x, m) for x in instances]) for m in MATRICES}
    fields["demand"] = least([x.demand for x in instances])
    fields["local"] = least([x.local for x in instances]) if base.local is not None else None
    if base.exchange is not None:
        exs = [x.exchange for x in instances]
        fields["exchange"] = Exchange(
            up=least([e.up for e in exs]),
            down=least([e.down for e in exs]),
            aggregate_ms=base.exchange.aggregate_ms,
            local_up=least([e.local_up for e in exs]),
            local_down=least([e.local_down for e in exs]),
        )
    return dataclasses.replace(base, name=f"{base.name}-envelope", **fields)
