"""A local head (problem.md §1, LocSplitFed) planned through the published model, with a bound of its own.

On a ``local_head`` instance no cut-a gradient comes back: ``tail`` is the client's own head update, run right
after ``delay``, and its next batch starts then, while the helper may still run the backward. Every constraint of
the published instance ``published`` (the part of the head update that outlasts the backward as its tail) is at
least as strong, so a solver's schedule there, re-timed with the same assignment and per-helper orders, is a
local-head schedule no longer than it (``result_for``). The published instance's bounds are not bounds here; ``makespan_bound`` is, from a relaxation:
each batch ``b`` of client ``j`` as a client of its own, released no earlier than ``b`` whole head chains
``release + fwd + delay + tail`` after the round starts, with no tail and no memory after the first batch.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pslsched.core.bounds import lower_bounds
from pslsched.core.exchange import round_bound
from pslsched.core.instance import Instance
from pslsched.core.reduction import assignment_and_orders, retimed, solver_view
from pslsched.core.result import SolveResult

RELAXATION_PAIRS = 200_000  # (batch-client, helper) pairs up to which the relaxation's LP bounds are computed


def published(instance: Instance) -> Instance:
    """The published instance the solvers plan for a local head: tail ``max(0, tail - bwd)``. Its completion
    ``E_b + max(0, tail - bwd)`` is never below the local head's ``max(E_b, E_f + delay + tail)`` (as ``E_b >=
    E_f + delay + bwd``), and so is its next batch's release: every constraint is at least as strong, and the
    tightest such tail."""
    return dataclasses.replace(instance, local_head=False, tail=np.maximum(instance.tail - instance.bwd, 0.0))


def _uploads(instance: Instance) -> tuple[np.ndarray, np.ndarray | None]:
    ex = instance.exchange
    k, h = instance.num_clients, instance.num_helpers
    if ex is None:
        return np.zeros((k, h)), None
    local_up = None if ex.local_up is None else np.nan_to_num(ex.local_up)
    return np.nan_to_num(ex.up), local_up


def _chain_bound(instance: Instance) -> float:
    """max_j of the shortest ``(B - 1)`` head chains, then a forward, the delay and the longer of the head update
    and the backward (plus the weights' upload), over the helpers that can hold j alone, or training locally."""
    up, local_up = _uploads(instance)
    chain = instance.release + instance.fwd + instance.delay + instance.tail
    last = instance.release + instance.fwd + instance.delay + np.maximum(instance.tail, instance.bwd)
    per_pair = np.where(instance.fits, (instance.batches - 1) * chain + last + up, np.inf)
    best = per_pair.min(axis=1) if instance.num_helpers else np.full(instance.num_clients, np.inf)
    if instance.local is not None:
        alone = instance.batches * instance.local + (0.0 if local_up is None else local_up)
        best = np.minimum(best, np.where(instance.can_local, alone, np.inf))
    best = best[np.isfinite(best)]
    return float(best.max()) if len(best) else 0.0


def relaxation(instance: Instance) -> Instance | None:
    """The published one-batch instance whose makespan bounds ``max_j (C[j] + up_j)`` of ``instance`` (None
    where it would exceed ``RELAXATION_PAIRS``)."""
    nb = instance.batches
    if instance.num_clients * nb * max(instance.num_helpers, 1) > RELAXATION_PAIRS:
        return None
    up, local_up = _uploads(instance)
    base = solver_view(dataclasses.replace(instance, local_head=False, exchange=None))
    reach = base.reachable
    tail = np.where(reach, up, np.nan)
    if nb == 1:
        local = base.local
        if local is not None and local_up is not None:
            local = local + local_up
        return dataclasses.replace(base, tail=tail, local=local)
    chain = base.release + base.fwd + base.delay + instance.tail
    rows = {"release": [], "fwd": [], "delay": [], "bwd": [], "tail": []}
    for b in range(nb):
        rows["release"].append(b * chain + base.release)
        rows["fwd"].append(base.fwd)
        rows["delay"].append(base.delay)
        rows["bwd"].append(base.bwd)
        rows["tail"].append(tail)
    local = None
    if base.local is not None:
        lu = 0.0 if local_up is None else local_up
        local = np.concatenate([(b + 1) * base.local + lu for b in range(nb)])
    # batch b of every client, then batch b + 1 (the order of np.concatenate above)
    clients = tuple(f"{c}#{b}" for b in range(nb) for c in instance.clients)
    return Instance(
        name=f"{instance.name}-local-head-relaxation",
        clients=clients,
        helpers=instance.helpers,
        demand=np.zeros(len(clients)),
        capacity=base.capacity,
        local=local,
        **{name: np.concatenate(parts) for name, parts in rows.items()},
    )


def bound_parts(instance: Instance, time_limit: float | None = 5.0) -> dict[str, float]:
    """Lower bounds on ``max_j (C[j] + up_j)`` of a ``local_head`` instance (``up`` = 0 without an exchange): the
    chains, and the relaxation's §4 bound where it is built and feasible."""
    parts = {"local_head_chain": _chain_bound(instance)}
    relaxed = relaxation(instance)
    if relaxed is not None:
        report = lower_bounds(relaxed, time_limit=time_limit, integer=instance.batches == 1)
        if report.infeasible is None:
            parts["batch_relaxation"] = report.best
    return parts


def makespan_bound(instance: Instance, time_limit: float | None = 5.0) -> float:
    """The best of ``bound_parts``."""
    return max(bound_parts(instance, time_limit).values())


def result_for(instance: Instance, answer: SolveResult, time_limit: float | None = 5.0) -> SolveResult:
    """A solver's answer on ``published(instance)`` as the answer on the ``local_head`` ``instance``: re-timed,
    with the local-head bound (the published bound does not hold here)."""
    parts = bound_parts(instance, time_limit)
    bound = round_bound(instance, max(parts.values()))
    answer = dataclasses.replace(answer, bounds=parts)
    if answer.schedule is None:
        if answer.status == "infeasible":  # memory and reachability are the same in both models
            return answer
        return dataclasses.replace(answer, lower_bound=bound)
    assign, orders = assignment_and_orders(instance, answer.schedule)
    return retimed(instance, answer, assign, orders, bound, lambda met: "optimal" if met else "feasible")
