"""Choosing the cut with the plan: every candidate cut's round, the best one solved, the answer with its what-ifs.

``cuts: auto`` (or ``{allowed: [...]}``) in testbed.yaml, or ``--cuts auto`` on the command line, makes the cut a
decision: one cut for every client group whose cut is not fixed. Each candidate is built as the strategy's round
(exchange and memory included) and planned quickly (``greedy``, milliseconds); the most promising candidates are
then solved with the requested solver, the time limit split among them. The bound on the round over *every*
candidate is the least of their bounds (a solved candidate's solver bound, the others' greedy bound), so the answer's
gap is to the best round any global cut could give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from pslsched.base.errors import InfeasibleInput, InputError
from pslsched.core.result import SolveResult
from pslsched.core.testbed import Testbed, build
from pslsched.core.testbed.cut_choice import candidate_cuts, with_cut
from pslsched.core.testbed.schema import Cut
from pslsched.solvers import solve as run_solver

FINALISTS = 6  # candidates solved with the requested solver
DEFAULT_LIMIT_S = 10.0


@dataclass
class CutChoice:
    """The chosen cut and what choosing it bought: each candidate's round and bound, and the given cut's."""

    cut: tuple[int, int]
    table: pd.DataFrame  # one row per candidate: a, b, round_ms (greedy), solved_round_ms, bound_ms
    bound: float  # a lower bound on the round over every candidate
    given: tuple[int, int] | None = None
    given_round: float | None = None
    notes: list[str] = field(default_factory=list)

    def what_if(self, chosen_round: float) -> str:
        """One line: the chosen cut's round against the given cut's."""
        a, b = self.cut
        text = (
            f"cuts       chose a={a}, b={b} of {len(self.table)} candidates (one cut for the chosen groups)"
        )
        if self.given is not None and self.given_round is not None:
            ga, gb = self.given
            saved = 100 * (1 - chosen_round / self.given_round) if self.given_round > 0 else 0.0
            text += f"; the given a={ga}, b={gb}: round {self.given_round:,.1f} ms ({saved:.1f}% saved)"
        return text


def parse_cuts(text: str | None) -> str | Cut | None:
    """``--cuts``: ``auto`` or ``A,B``."""
    if text is None:
        return None
    if text.strip() == "auto":
        return "auto"
    try:
        a, b = (int(x) for x in text.split(","))
        return Cut(a=a, b=b)
    except (ValueError, TypeError):
        raise InputError("--cuts", f"expected auto or A,B (two layer indices, A < B), got {text!r}") from None


def with_cuts_option(testbed: Testbed, spec: str | Cut | None) -> tuple[Testbed, tuple[int, int] | None]:
    """The testbed under ``--cuts`` (every group's cut replaced) and the testbed's own global cut, if fixed."""
    given = (testbed.cuts.a, testbed.cuts.b) if isinstance(testbed.cuts, Cut) else None
    if spec is None:
        return testbed, given
    clients = [g.model_copy(update={"cut": None}) for g in testbed.clients]
    return testbed.model_copy(update={"cuts": spec, "clients": clients}), given


def _objective(result: SolveResult) -> float:
    return math.inf if result.objective is None else float(result.objective)


def choose_cut(
    testbed: Testbed,
    instance_of,
    *,
    solver: str,
    time_limit: float | None,
    seed: int = 0,
    given: tuple[int, int] | None = None,
    options: dict | None = None,
) -> tuple[Testbed, CutChoice, SolveResult]:
    """The testbed at the best candidate cut, the choice and the solver's answer there. ``instance_of(built)`` is
    the strategy's round of a built testbed (exchange and memory model)."""
    options = options or {}
    cands = candidate_cuts(testbed)
    rows, quick = [], {}
    for cut in cands:
        inst = instance_of(build(with_cut(testbed, cut)))
        res = run_solver(inst, "greedy", seed=seed)
        quick[cut] = (inst, res)
        rows.append({"a": cut[0], "b": cut[1], "round_ms": _objective(res), "bound_ms": res.lower_bound})
    table = pd.DataFrame(rows)
    if not table["round_ms"].map(math.isfinite).any():
        raise InfeasibleInput("cuts", f"no candidate cut of {len(cands)} gives a memory-feasible plan")
    order = table.sort_values(["round_ms", "a", "b"], kind="stable")
    finalists = [
        (int(r.a), int(r.b)) for r in order.head(FINALISTS).itertuples() if math.isfinite(r.round_ms)
    ]
    if given in quick and given not in finalists:
        finalists.append(given)
    each = (time_limit or DEFAULT_LIMIT_S) / len(finalists)
    solved: dict[tuple[int, int], SolveResult] = {}
    for cut in finalists:
        solved[cut] = run_solver(quick[cut][0], solver, time_limit=each, seed=seed, **options)
    table["solved_round_ms"] = [
        _objective(solved[c]) if c in solved else math.nan for c in zip(table["a"], table["b"])
    ]
    table["bound_ms"] = [
        max(solved[c].lower_bound, b) if c in solved else b
        for c, b in zip(zip(table["a"], table["b"]), table["bound_ms"])
    ]
    best = min(finalists, key=lambda c: (_objective(solved[c]), c))
    choice = CutChoice(cut=best, table=table, bound=float(table["bound_ms"].min()), given=given)
    if given in solved:
        choice.given_round = _objective(solved[given])
    result = solved[best]
    result.lower_bound = min(choice.bound, _objective(result))
    if result.schedule is not None:
        result.schedule.lower_bound = result.lower_bound
        if result.status == "optimal" and _objective(result) > result.lower_bound * (1 + 1e-9):
            result.status = result.schedule.status = "feasible"  # optimal at its cut, not over all cuts
    result.extra = {**result.extra, "cut": list(best)}
    return with_cut(testbed, best), choice, result
