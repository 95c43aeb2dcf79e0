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
    local_head: bool = False  # no cut-a gradient comes back: the head learns locally (problem.md §1)
    step_barrier: bool = False  # nobody starts a step before everyone is done with the previous one
    # a helper's clients get a step's cut-a gradient once all are through (SGLR's average, in its first round)
    gated: bool = False
    sequential: bool = False  # a helper runs each client's forward and backward back to back (SplitFed V2)


ROUND_MODELS = {
    "splitfed1": RoundModel("splitfed1", exchange=True, shared_body=False),
    "locsplitfed": RoundModel("locsplitfed", exchange=True, shared_body=False, local_head=True),
    "splitfed2": RoundModel("splitfed2", exchange=True, shared_body=True, sequential=True),
    "locfedmix": RoundModel("locfedmix", exchange=True, shared_body=True, step_barrier=True),  # federating
    "psl": RoundModel("psl", exchange=False, shared_body=True, step_barrier=True),
    "sglr": RoundModel("sglr", exchange=False, shared_body=True, step_barrier=True, gated=True),
}
DEFAULT_STRATEGY = "splitfed1"


def round_model(strategy: str | None, field: str = "--strategy") -> RoundModel:
    """The round model of a strategy spec (``psl``, ``splitfed2:order=interleaved``; None: SplitFed V1's)."""
    name, _, rest = (strategy or DEFAULT_STRATEGY).partition(":")
    name = name.strip()
    if name not in ROUND_MODELS:
        raise InputError(field, f"unknown strategy {name!r} (known: {', '.join(ROUND_MODELS)})")
    model = ROUND_MODELS[name]
    options = dict(kv.split("=", 1) for kv in rest.replace(" ", "").split(",") if "=" in kv)
    if name == "splitfed2" and "order" in options:  # (the strategy checks the value when it trains)
        model = dataclasses.replace(model, sequential=options["order"] != "interleaved")
    if name == "sglr" and "off" in options:  # the first round averages (the gate) unless off = 0
        try:
            off = float(options["off"])
        except ValueError:
            raise InputError(f"{field}.off", f"must be a number in [0, 1], got {options['off']!r}") from None
        model = dataclasses.replace(model, gated=off > 0)
    return model


def body_trips(
    instance: Instance, workload: Workload, aggregator: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Each helper's body to the aggregator and the average back, in ms (every strategy averages its bodies
    across helpers): the body's weights over the slower of the two helpers' network interfaces (``nic_mbps``;
    an interface without one is unlimited), no latency; the aggregator's own is 0. None where no helper has a
    ``nic_mbps`` or the body's size is not known (nothing to charge)."""
    if workload.body_weights_mb is None:
        return None
    nic = workload.resources
    names = instance.helpers
    size = float(np.max(workload.body_weights_mb)) * 1024.0 * 1024.0

    def trip(src: int, dst: int) -> float:
        rates = [
            r for r in (nic.get(f"nic-out:{names[src]}"), nic.get(f"nic-in:{names[dst]}")) if r is not None
        ]
        return float(transfer_ms(size, min(rates), 0.0)) if rates else 0.0

    h = instance.num_helpers
    up = np.array([0.0 if i == aggregator else trip(i, aggregator) for i in range(h)])
    down = np.array([0.0 if i == aggregator else trip(aggregator, i) for i in range(h)])
    return (up, down) if (up.any() or down.any()) else None


def exchange_of(workload: Workload, aggregator: int, aggregate_ms: float) -> Exchange:
    """The round-end exchange the simulator charges (dedicated links): each client's weights over the link to
    the aggregator, else to its own helper, else (training locally) to the first it reaches
    (``Workload.exchange_hop``, vectorised here)."""
    up_mbps, down_mbps, lat = workload.uplink_mbps, workload.downlink_mbps, workload.latency_ms
    k = up_mbps.shape[0]
    size = np.asarray(workload.client_weights_bytes, dtype=float)[:, None]
    direct = ~np.isnan(up_mbps[:, aggregator])  # the client reaches the aggregator: every option's hop
    hop_up = np.where(direct[:, None], up_mbps[:, [aggregator]], up_mbps)
    hop_down = np.where(direct[:, None], down_mbps[:, [aggregator]], down_mbps)
    hop_lat = np.where(direct[:, None], lat[:, [aggregator]], lat)
    reachable = ~np.isnan(up_mbps)
    up = np.where(reachable, transfer_ms(size, hop_up, hop_lat), np.nan)
    down = np.where(reachable, transfer_ms(size, hop_down, hop_lat), np.nan)
    # training locally: the aggregator's link, else the first helper's it reaches, else none (nothing to send)
    first = np.where(reachable.any(axis=1), reachable.argmax(axis=1), -1)
    local_hop = np.where(direct, aggregator, first)
    rows = np.arange(k)
    some = local_hop >= 0
    local_up, local_down = np.zeros(k), np.zeros(k)
    col = np.maximum(local_hop, 0)
    local_up[some] = transfer_ms(size[some, 0], up_mbps[rows, col][some], lat[rows, col][some])
    local_down[some] = transfer_ms(size[some, 0], down_mbps[rows, col][some], lat[rows, col][some])
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
    bodies = None if workload is None or aggregator is None else body_trips(instance, workload, aggregator)
    if workload is not None and aggregator is not None and model.exchange:
        exchange = exchange_of(workload, aggregator, aggregate_ms)
    elif aggregate_ms > 0 or bodies is not None:
        zero = np.where(instance.reachable, 0.0, np.nan)
        exchange = Exchange(up=zero, down=zero, aggregate_ms=float(aggregate_ms))
    if bodies is not None:
        exchange = dataclasses.replace(exchange, helper_up=bodies[0], helper_down=bodies[1])
    out = dataclasses.replace(instance, exchange=exchange)
    out = dataclasses.replace(
        out, step_barrier=model.step_barrier, gated=model.gated, sequential=model.sequential or out.sequential
    )
    if model.local_head and workload is not None:  # T5 is the head update alone: no gradient download
        head = np.asarray(workload.head_bwd_ms, dtype=float)[:, None]
        out = dataclasses.replace(out, tail=np.where(instance.reachable, head, np.nan), local_head=True)
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
