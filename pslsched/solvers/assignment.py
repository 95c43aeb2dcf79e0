"""Client-to-helper assignments shared by the EquiD family, the exact solvers' hints and LNS.

* :func:`min_max_load_assignment`: EquiD's integer program (Ganian et al. 2026) with HiGHS: minimise the
  largest helper load ``B * sum (fwd + bwd)`` subject to memory and one helper per client. A client with a local
  option may train locally; it then adds no load, but ``M >= B * local[j]`` so that local training is chosen only
  when it is not the bottleneck itself. Above ``IP_PAIR_LIMIT`` pairs, or when HiGHS finds no integer solution in
  time, :func:`greedy_load_assignment` (largest load first to the least loaded helper with room) is used instead.
* :func:`greedy_load_assignment`: the LPT-style fallback, O(K H).
* :func:`chain_aware_assignment`: LNS's constructive start (LPT order); it estimates each helper's finish as
  ``max(longest chain on it, smallest release + load + smallest tail)`` rather than the load alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pulp

from pslsched.core.backend_log import PulpHiGHS
from pslsched.core.bounds import LinearModel
from pslsched.core.instance import Instance

IP_PAIR_LIMIT = 20_000
MIN_HIGHS_S = 0.05  # HiGHS is given at least this long (to find anything at all)


def _with_local(instance: Instance) -> np.ndarray:
    """K-vector: B * local[j] where j may train locally, +inf elsewhere."""
    if instance.local is None:
        return np.full(instance.num_clients, np.inf)
    return np.where(instance.can_local, instance.batches * np.nan_to_num(instance.local, nan=0.0), np.inf)


def min_max_load_assignment(
    instance: Instance, time_limit: float | None = 10.0
) -> tuple[np.ndarray | None, str]:
    """EquiD's assignment. Returns (assignment with -1 = local, how) where ``how`` is ``"ip-optimal"``,
    ``"ip-feasible"``, ``"greedy"`` or ``"infeasible"`` (the IP proved no memory-feasible assignment exists).
    ``time_limit`` covers building the model too (HiGHS, built from numpy arrays: no PuLP)."""
    t0 = time.perf_counter()
    if int(instance.fits.sum()) > IP_PAIR_LIMIT:
        return greedy_load_assignment(instance), "greedy"
    k, nb = instance.num_clients, instance.batches
    local = _with_local(instance)
    pj, pi = np.nonzero(instance.fits)
    lj = np.flatnonzero(np.isfinite(local))
    if not (instance.fits.any(axis=1) | np.isfinite(local)).all():
        return None, "infeasible"
    x, y = 1 + np.arange(len(pj)), 1 + len(pj) + np.arange(len(lj))
    model = LinearModel(1 + len(pj) + len(lj))
    model.add(np.concatenate([pj, lj]), np.concatenate([x, y]), 1.0, np.ones(k), np.ones(k), k)
    if len(lj):  # M >= B * local[j] * y[j]
        model.add_m(np.arange(len(lj)))
        model.add(np.arange(len(lj)), y, -local[lj], np.zeros(len(lj)), None, len(lj))
    used = np.flatnonzero(instance.fits.any(axis=0))
    row = np.full(instance.num_helpers, -1)
    row[used] = np.arange(len(used))
    model.add_m(row[used])  # M >= the helper's load
    model.add(row[pi], x, -nb * instance.load[pj, pi], np.zeros(len(used)), None, len(used))
    model.add(row[pi], x, instance.demand[pj], None, instance.capacity[used], len(used))
    left = math.inf if time_limit is None else time_limit - (time.perf_counter() - t0)
    status, _, _, values = model.solve(np.arange(1, model.num_cols), max(0.0, left))
    if status == "infeasible":
        return None, "infeasible"
    if values is None:
        return greedy_load_assignment(instance), "greedy"
    assignment = np.full(k, -1, dtype=int)
    chosen = values[x] > 0.5
    assignment[pj[chosen]] = pi[chosen]
    return assignment, "ip-optimal" if status == "optimal" else "ip-feasible"


class HighsWithStart(PulpHiGHS):
    """PuLP's HiGHS interface (quiet: :class:`pslsched.core.backend_log.PulpHiGHS`) plus a MIP start: the variables'
    initial values are handed to setSolution (unless ``warm`` is False). With ``deadline`` (a
    ``time.perf_counter()`` instant), HiGHS's time limit is set just before it runs to what is left then, less
    half the time PuLP took to build the model (about what reading the solution back takes): PuLP's own work
    counts against the limit."""

    def __init__(self, *args, deadline: float | None = None, warm: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadline, self.warm, self.began = deadline, warm, time.perf_counter()

    def actualSolve(self, lp):  # noqa: N802 (PuLP's name)
        self.began = time.perf_counter()
        return super().actualSolve(lp)

    def callSolver(self, lp):  # noqa: N802 (PuLP's name)
        variables = lp.variables()
        if self.warm and variables and all(v.varValue is not None for v in variables):
            index = np.array([v.index for v in variables], dtype=np.int32)
            values = np.array([float(v.varValue) for v in variables], dtype=float)
            lp.solverModel.setSolution(len(index), index, values)
        if self.deadline is not None:
            now = time.perf_counter()
            left = self.deadline - now - (now - self.began) / 2
            # (5% less: a MIP may overrun its limit a little, finishing a round of cuts)
            lp.solverModel.setOptionValue("time_limit", max(MIN_HIGHS_S, 0.95 * left))
        lp.solverModel.run()


def highs_status(prob: pulp.LpProblem) -> str:
    """``optimal``, ``feasible`` (a solution, limit reached), ``infeasible`` or ``none`` for a model PuLP solved
    with HiGHS. PuLP maps HiGHS's time limit to "Optimal", so the HiGHS model status is read directly."""
    import highspy

    model = getattr(prob, "solverModel", None)
    if model is None:
        return "infeasible" if prob.status == pulp.LpStatusInfeasible else "none"
    st = model.getModelStatus()
    if st == highspy.HighsModelStatus.kOptimal:
        return "optimal"
    if st in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return "infeasible"
    info = model.getInfo()
    return "feasible" if info.primal_solution_status == 2 else "none"


def highs_dual_bound(prob: pulp.LpProblem) -> float | None:
    """HiGHS's proved MIP bound (``mip_dual_bound``), or None when it has none."""
    model = getattr(prob, "solverModel", None)
    if model is None:
        return None
    value = float(model.getInfo().mip_dual_bound)
    return value if math.isfinite(value) else None


def greedy_load_assignment(instance: Instance) -> np.ndarray | None:
    """Largest smallest-load first; each client to the helper with room whose load stays smallest (ties: lowest
    index); local training when that is shorter than the best helper's load or no helper has room."""
    nb = instance.batches
    load = np.where(instance.fits, nb * np.nan_to_num(instance.load, nan=0.0), np.inf)
    local = _with_local(instance)
    total = np.zeros(instance.num_helpers)
    order = np.argsort(-np.minimum(load.min(axis=1, initial=np.inf), local), kind="stable")

    def placed(j: int, i: int) -> None:
        total[i] += load[j, i]

    return _place_in_order(instance, order, local, lambda j: total + load[j], placed)


def _place_in_order(
    instance: Instance,
    order: np.ndarray,
    local: np.ndarray,
    estimate: Callable[[int], np.ndarray],
    placed: Callable[[int, int], None],
) -> np.ndarray | None:
    """Clients in ``order``, each to the helper with room of smallest ``estimate(j)`` (an H-vector; ties: lowest
    index), or to local training when ``local[j]`` is no later; ``placed(j, i)`` lets the caller update its
    estimates. None when some client finds no room."""
    free = instance.capacity.astype(float).copy()
    assignment = np.full(instance.num_clients, -1, dtype=int)
    for j in order:
        est = np.where((instance.demand[j] <= free + 1e-9) & instance.fits[j], estimate(j), np.inf)
        i = int(np.argmin(est)) if len(est) else -1
        best = est[i] if i >= 0 else np.inf
        if local[j] < np.inf and local[j] <= best:
            continue
        if not np.isfinite(best):
            return None
        assignment[j] = i
        free[i] -= instance.demand[j]
        placed(j, i)
    return assignment


def helper_profile(instance: Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K x H arrays used by the estimates: B * load, release and tail (inf where j does not fit i)."""
    nb = instance.batches
    fits = instance.fits
    load = np.where(fits, nb * np.nan_to_num(instance.load, nan=0.0), np.inf)
    rel = np.where(fits, np.nan_to_num(instance.release, nan=0.0), np.inf)
    tail = np.where(fits, np.nan_to_num(instance.tail, nan=0.0), np.inf)
    return load, rel, tail


def chain_aware_assignment(instance: Instance) -> np.ndarray | None:
    """Constructive assignment: clients by decreasing smallest load (LPT), each to the helper with room whose estimated
    finish ``max(longest chain, min release + B * load + min tail)`` grows least; local when that is no later."""
    h, nb = instance.num_helpers, instance.batches
    load, rel, tail = helper_profile(instance)
    chain = np.where(instance.fits, nb * np.nan_to_num(instance.chain, nan=0.0), np.inf)
    local = _with_local(instance)
    total = np.zeros(h)
    rmin = np.full(h, np.inf)
    tmin = np.full(h, np.inf)
    cmax = np.zeros(h)
    key = np.minimum(chain.min(axis=1, initial=np.inf), local)
    order = np.lexsort((-key, -load.min(axis=1, initial=np.inf)))

    def estimate(j: int) -> np.ndarray:
        head_load_tail = np.minimum(rmin, rel[j]) + total + load[j] + np.minimum(tmin, tail[j])
        return np.maximum(np.maximum(cmax, chain[j]), head_load_tail)

    def placed(j: int, i: int) -> None:
        total[i] += load[j, i]
        rmin[i] = min(rmin[i], rel[j, i])
        tmin[i] = min(tmin[i], tail[j, i])
        cmax[i] = max(cmax[i], chain[j, i])

    return _place_in_order(instance, order, local, estimate, placed)
