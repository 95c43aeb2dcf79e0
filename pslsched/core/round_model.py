"""Each training strategy's round as the planner sees it (problem.md §1, "The round" and "Memory").

Two facts per strategy decide what a round costs beyond the published model: whether it ends with the clients'
head + tail weights exchanged (federated) and whether a helper keeps a body per client or one shared body. The
training room's strategies agree with this table (a test checks their round flags against it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pslsched.base.errors import InputError
from pslsched.core.exchange import Exchange
from pslsched.core.instance import Instance
from pslsched.core.workload import Workload, transfer_ms


@dataclass(frozen=True)
class RoundModel:
    """What a strategy's round costs: ``exchange`` (head + tail weights to the aggregator and back at its end)
    and ``shared_body`` (one body per helper plus each client's activations, else a body per client)."""

    strategy: str
    exchange: bool
    shared_body: bool


ROUND_MODELS = {
    "splitfed1": RoundModel("splitfed1", exchange=True, shared_body=False),
    "locsplitfed": RoundModel("locsplitfed", exchange=True, shared_body=False),
    "splitfed2": RoundModel("splitfed2", exchange=True, shared_body=True),
    "locfedmix": RoundModel("locfedmix", exchange=True, shared_body=True),  # a federating round
    "psl": RoundModel("psl", exchange=False, shared_body=True),
    "sglr": RoundModel("sglr", exchange=False, shared_body=True),
}
DEFAULT_STRATEGY = "splitfed1"


def round_model(strategy: str | None, field: str = "--strategy") -> RoundModel:
    """The round model of a strategy spec (``psl``, ``splitfed2:order=interleaved``; None: SplitFed V1's)."""
    name = (strategy or DEFAULT_STRATEGY).split(":", 1)[0].strip()
    if name not in ROUND_MODELS:
        raise InputError(field, f"unknown strategy {name!r} (known: {', '.join(ROUND_MODELS)})")
    return ROUND_MODELS[name]


def exchange_of(workload: Workload, aggregator: int, aggregate_ms: float) -> Exchange:
    """The round-end exchange the simulator charges (dedicated links): each client's weights over the link to
    the aggregator, else to its own helper (``Workload.exchange_hop``)."""
    k, h = workload.uplink_mbps.shape
    up, down = np.full((k, h), np.nan), np.full((k, h), np.nan)
    local_up, local_down = np.zeros(k), np.zeros(k)
    size = workload.client_weights_bytes
    for j in range(k):
        for i in [*range(h), -1]:
            hop = workload.exchange_hop(j, i, aggregator)
            if i >= 0 and np.isnan(workload.uplink_mbps[j, i]):
                continue  # client j cannot use helper i
            u = (
                0.0
                if hop is None
                else float(transfer_ms(size[j], workload.uplink_mbps[j, hop], workload.latency_ms[j, hop]))
            )
            d = (
                0.0
                if hop is None
                else float(transfer_ms(size[j], workload.downlink_mbps[j, hop], workload.latency_ms[j, hop]))
            )
            if i >= 0:
                up[j, i], down[j, i] = u, d
            else:
                local_up[j], local_down[j] = u, d
    return Exchange(
        up=up, down=down, aggregate_ms=float(aggregate_ms), local_up=local_up, local_down=local_down
    )


def for_strategy(
    instance: Instance,
    workload: Workload | None,
    model: RoundModel,
    *,
    aggregator: int | None,
    aggregate_ms: float = 0.0,
) -> Instance:
    """The instance of ``model``'s round: its exchange (where the strategy federates and the weights' links are
    known) and its memory model (where the workload says what a body holds)."""
    exchange = None
    if workload is not None and aggregator is not None and model.exchange:
        exchange = exchange_of(workload, aggregator, aggregate_ms)
    elif aggregate_ms > 0:
        zero = np.where(instance.reachable, 0.0, np.nan)
        exchange = Exchange(up=zero, down=zero, aggregate_ms=float(aggregate_ms))
    out = dataclasses.replace(instance, exchange=exchange)
    if model.shared_body and workload is not None and workload.body_weights_mb is not None:
        weights, acts = workload.body_weights_mb, workload.body_activations_mb
        if len(np.unique(weights)) > 1:
            raise InputError(
                "cuts",
                f"{model.strategy} shares one body among its clients: every client needs the same cuts",
            )
        body = np.full(instance.num_helpers, float(weights[0]))
        out = dataclasses.replace(out, demand=np.array(acts, dtype=float), body_memory=body)
    return out
