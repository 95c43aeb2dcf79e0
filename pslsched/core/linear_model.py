"""A HiGHS model built from numpy blocks (the bounds' and the assignment IPs' back end), and the framed load
model's columns (problem.md §4)."""

from __future__ import annotations

import math

import numpy as np

MIN_SOLVE_S = 0.02  # with less of the budget left, a model is not started
HIGHS_SHARE = 1.0  # of the time left that HiGHS is given (less MIN_SOLVE_S; it may overrun ~0.1 s)
INF = math.inf


class LinearModel:
    """A HiGHS model built block of rows by block of rows from numpy arrays (no PuLP: building is ~10x faster):
    minimise column 0 (``M`` >= 0), every other column in [0, 1]."""

    def __init__(self, num_cols: int):
        self.num_cols, self.num_rows = num_cols, 0
        # the entries (rows, columns, values) and the row bounds (lower, upper), block by block
        self.rows, self.cols, self.vals, self.lower, self.upper = ([] for _ in range(5))  # lists of arrays

    def add_m(self, rows: np.ndarray) -> None:
        """Coefficient 1 for ``M`` in rows ``rows`` of the next block."""
        self.add(rows, np.zeros(len(rows), dtype=int), 1.0, None, None, 0)

    def add(self, rows, cols, vals, lower, upper, count: int) -> None:
        """Entries of the next block (``rows`` relative to it); ``count`` > 0 closes the block with its bounds
        (``lower`` / ``upper`` arrays, None: unbounded on that side)."""
        rows = np.asarray(rows, dtype=np.int64)
        self.rows.append(rows + self.num_rows)
        self.cols.append(np.asarray(cols, dtype=np.int64))
        self.vals.append(np.broadcast_to(np.asarray(vals, dtype=float), rows.shape))
        if count:
            self.lower.append(np.full(count, -INF) if lower is None else np.asarray(lower, dtype=float))
            self.upper.append(np.full(count, INF) if upper is None else np.asarray(upper, dtype=float))
            self.num_rows += count

    def solve(
        self,
        integer: np.ndarray | None,
        time_limit: float,
        presolve: bool = True,
        rel_gap: float | None = None,
    ) -> tuple[str, float | None, float | None, np.ndarray | None]:
        """(status, objective or None, proved MIP bound or None, column values or None); ``integer``: the columns
        that are binary (None: an LP). Status: ``optimal``, ``feasible`` (the limit, with a solution),
        ``infeasible`` or ``limit``. ``presolve`` False: HiGHS's presolve off, no relative gap tolerance.
        ``rel_gap``: HiGHS's relative MIP gap (default 1e-4; a bound model wants its dual bound tight)."""
        import highspy

        from pslsched.core.backend_log import c_stdout_redirected, configure_highs

        rows, cols, vals = (np.concatenate(a) for a in (self.rows, self.cols, self.vals))
        order = np.lexsort((cols, rows))
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.num_cols, self.num_rows
        lp.col_cost_, lp.col_lower_ = np.eye(1, self.num_cols).ravel(), np.zeros(self.num_cols)
        lp.col_upper_ = np.concatenate([[INF], np.ones(self.num_cols - 1)])
        lp.row_lower_, lp.row_upper_ = np.concatenate(self.lower), np.concatenate(self.upper)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=self.num_rows))])
        lp.a_matrix_.index_ = cols[order].astype(np.int32)
        lp.a_matrix_.value_ = vals[order]
        if integer is not None:
            kinds = np.full(self.num_cols, highspy.HighsVarType.kContinuous)
            kinds[integer] = highspy.HighsVarType.kInteger
            lp.integrality_ = list(kinds)
        with c_stdout_redirected():
            model = highspy.Highs()
        configure_highs(model)
        model.setOptionValue("threads", 1)
        if not presolve:  # (a bound model: solved to the end, its dual bound is then the optimum itself)
            model.setOptionValue("presolve", "off")
            model.setOptionValue("mip_rel_gap", 0.0)
        elif rel_gap is not None:
            model.setOptionValue("mip_rel_gap", float(rel_gap))
        # HiGHS may overrun its limit by ~0.1-0.3 s (a root cut round in progress): a search after absorbs it
        model.setOptionValue("time_limit", max(MIN_SOLVE_S, HIGHS_SHARE * float(time_limit) - MIN_SOLVE_S))
        model.passModel(lp)
        try:
            model.run()
        except (RuntimeError, ValueError, OverflowError):  # HiGHS gave up on the numbers: no bound
            return "limit", None, None, None
        status, info = model.getModelStatus(), model.getInfo()
        dual = float(info.mip_dual_bound) if integer is not None else None
        dual = dual if dual is not None and math.isfinite(dual) else None
        values = np.asarray(model.getSolution().col_value) if info.primal_solution_status == 2 else None
        if status == highspy.HighsModelStatus.kOptimal:
            return "optimal", float(info.objective_function_value), dual, values
        if status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return "infeasible", None, None, None
        return ("limit" if values is None else "feasible"), None, dual, values


def _frame_order(pi: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs sorted by helper, then by ``times``; and each pair's rise over the previous one of its helper
    (0 for a helper's first)."""
    order = np.lexsort((times, pi))
    rise = np.diff(times[order], prepend=0.0)
    rise[np.r_[True, pi[order][1:] != pi[order][:-1]]] = 0.0
    return order, rise


def frame_columns(pi, times, helper_u, first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The helper rows' entries of the frame columns ``w`` (one per pair, from column ``first``): helper i's
    frame is its least ``times`` among the fitting clients plus sum_k rise_k * w_k, where w_k is 1 while none of
    the clients before the k-th (in ``times`` order) is on i."""
    order, rise = _frame_order(pi, times)
    keep = rise > 0
    return helper_u[pi[order]][keep], first + np.flatnonzero(keep), rise[keep]


def add_frame_chains(model: LinearModel, pi, times, helper_u, u, x, first: int) -> None:
    """w_k >= u_i for a helper's first pair, w_k >= w_(k-1) - x_(k-1) for the others (each in [0, 1]): in an
    integer solution w_k = 1 exactly when i is used and no earlier client is on it (so the frame is the least
    release, or tail, of the clients i holds); a valid relaxation of that for fractional ones."""
    order, _ = _frame_order(pi, times)
    n = len(order)
    w = first + np.arange(n)
    head = np.r_[True, pi[order][1:] != pi[order][:-1]]
    rows = np.arange(n)
    model.add(rows, w, 1.0, None, None, 0)
    lead = np.flatnonzero(head)
    model.add(lead, u[helper_u[pi[order][lead]]], -1.0, None, None, 0)
    rest = np.flatnonzero(~head)
    model.add(rest, w[rest - 1], -1.0, None, None, 0)
    model.add(rest, 1 + order[rest - 1], 1.0, np.zeros(n), None, n)
