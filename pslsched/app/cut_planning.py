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
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pslsched.base.errors import InfeasibleInput, InputError
from pslsched.core.cut_options import compose, options_bound
from pslsched.core.result import SolveResult
from pslsched.core.testbed import Testbed, build, scale_clients
from pslsched.core.testbed.cut_choice import candidate_cuts, with_client_cuts, with_cut
from pslsched.core.testbed.schema import Cut
from pslsched.solvers import solve as run_solver
from pslsched.solvers.cpsat_client import MAX_INTERVALS
from pslsched.solvers.cut_mix import MIN_MIX_S, mix_intervals, solve_mix

FINALISTS = 6  # candidates solved with the requested solver
EXACT = ("auto", "cpsat", "benders", "milp")  # with these the per-client mix is also solved by CP-SAT
SCREEN_CLIENTS = 200  # above: candidates ranked on a proportional sample of this many clients
DEFAULT_LIMIT_S = 10.0
SCREEN_LIMIT_S = 0.01  # greedy's limit when ranking: its bounds are then the instant ones (the chains)
MIN_PHASE_S = 0.1  # a later phase with less than this left of the limit is skipped
SCREEN_SHARE = 0.5  # of the limit, at most, for ranking the candidates
BOUND_SHARE = 0.15  # of the limit, at most, for strengthening the bounds of candidates not solved


@dataclass
class CutChoice:
    """The chosen cut(s) and what choosing bought: each candidate's round and bound, the given cut's round."""

    cut: tuple[int, int]  # the best global cut
    table: pd.DataFrame  # one row per candidate: a, b, round_ms (greedy), solved_round_ms, bound_ms
    bound: float  # a lower bound on the round over every option searched (global cuts, and per client)
    global_round: float = math.inf  # the best global cut's round (the solver's)
    global_bound: float = 0.0  # a lower bound on the round over every global cut
    given: tuple[int, int] | None = None
    given_round: float | None = None
    client_cuts: dict[str, tuple[int, int]] | None = None  # per client, where that beat the best global cut
    scope: str = ""  # what the bound covers when not every candidate ("": every candidate, and per client)
    planned: int | None = None  # candidates planned (the rest not reached within the time limit; None: all)

    def what_if(self, chosen_round: float) -> str:
        """Two lines: what was chosen, and its round against the best global cut's and the given cut's."""
        n = len(self.table)
        partial = self.planned is not None and self.planned < n  # the ranking was cut short by the limit
        among = f"{self.planned} planned of {n}" if partial else n
        every = "every planned global cut" if partial else "every global cut"
        if self.client_cuts is not None:
            counts = pd.Series([f"a={a},b={b}" for a, b in self.client_cuts.values()]).value_counts()
            mix = ", ".join(f"{k} x{v}" for k, v in counts.items())
            text = f"cuts       chose per client ({mix}) among {among} candidates"
        else:
            text = f"cuts       chose a={self.cut[0]}, b={self.cut[1]} for every chosen client among {among} candidates"
        parts = []
        if self.client_cuts is None and math.isfinite(self.global_round) and self.global_bound > 0:
            if self.global_round <= self.global_bound * (1 + 1e-9):
                parts.append(f"proved the best of {every}")
            else:
                parts.append(f"bound over {every} {self.global_bound:,.1f} ms")
        if self.client_cuts is not None and math.isfinite(self.global_round):
            a, b = self.cut
            parts.append(f"best global cut a={a}, b={b}: round {self.global_round:,.1f} ms")
        if self.given is not None and self.given_round is not None:
            ga, gb = self.given
            saved = 100 * (1 - chosen_round / self.given_round) if self.given_round > 0 else 0.0
            parts.append(f"the given a={ga}, b={gb}: round {self.given_round:,.1f} ms ({saved:.1f}% saved)")
        if self.scope:
            parts.append(f"the bound covers {self.scope}")
        if parts:
            text += "\n           " + "; ".join(parts)
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


def _bound(result: SolveResult) -> float:
    """A solver's bound on its instance's round (infinite where it proved the instance infeasible)."""
    return math.inf if result.status == "infeasible" else result.lower_bound


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
    per_client: bool = False,
) -> tuple[Testbed, CutChoice, SolveResult]:
    """The testbed at the best cut(s), the choice and the solver's answer there. ``instance_of(built)`` is the
    strategy's round of a built testbed (exchange and memory model). ``per_client`` (a body per client) lets
    each client take its own cut where that shortens the round (a local search over the finalists' cuts)."""
    options = options or {}
    total = time_limit or DEFAULT_LIMIT_S
    t0 = time.perf_counter()
    deadline = t0 + total

    def left() -> float:
        return deadline - time.perf_counter()

    cands = candidate_cuts(testbed)
    clients = sum(g.count for g in testbed.clients)
    screen = clients > SCREEN_CLIENTS  # rank on a proportional sample, solve the finalists at full size
    ranked_on = scale_clients(testbed, SCREEN_CLIENTS) if screen else testbed
    rows, quick = [], {}
    # in a seeded random order (the given cut first), until SCREEN_SHARE of the limit: a screening cut short by
    # the limit is then an even sample of the candidates, and says so
    order = [given] if given in cands else []
    rest = [c for c in cands if c != given]
    order += [rest[i] for i in np.random.default_rng(seed).permutation(len(rest))]
    screen_end = t0 + SCREEN_SHARE * total
    for cut in order:
        if time.perf_counter() > screen_end and any(math.isfinite(r["round_ms"]) for r in rows):
            rows.append({"a": cut[0], "b": cut[1], "round_ms": math.nan, "bound_ms": math.nan})
            continue
        inst = instance_of(build(with_cut(ranked_on, cut)))
        # ranked by greedy's round; the bounds that cost a model come later, only where they can matter
        res = run_solver(inst, "greedy", seed=seed, time_limit=SCREEN_LIMIT_S)
        quick[cut] = (inst, res)
        # a cut proved infeasible (no assignment fits the memory) bounds nothing
        bound = math.inf if res.status == "infeasible" else res.lower_bound
        rows.append({"a": cut[0], "b": cut[1], "round_ms": _objective(res), "bound_ms": bound})
    position = {c: n for n, c in enumerate(cands)}
    table = pd.DataFrame(sorted(rows, key=lambda r: position[(r["a"], r["b"])]))
    planned = int(table["round_ms"].notna().sum())
    if not table["round_ms"].map(math.isfinite).any():
        raise InfeasibleInput("cuts", f"no candidate cut of {len(cands)} gives a memory-feasible plan")
    ranking = table.sort_values(["round_ms", "a", "b"], kind="stable")
    finalists = [
        (int(r.a), int(r.b)) for r in ranking.head(FINALISTS).itertuples() if math.isfinite(r.round_ms)
    ]
    if given in quick and given not in finalists:
        finalists.append(given)
    search = per_client and not screen and len(finalists) > 1 and clients > 1
    # of what is left of the limit: the bounds of the candidates not solved, then the global cuts
    share = max(0.0, left()) * (1 - BOUND_SHARE) * (0.5 if search else 1.0)
    each = max(MIN_PHASE_S, 0.4 * share / len(finalists))
    solved: dict[tuple[int, int], SolveResult] = {}
    full: dict[tuple[int, int], object] = {}
    for cut in finalists:
        full[cut] = instance_of(build(with_cut(testbed, cut))) if screen else quick[cut][0]
        solved[cut] = run_solver(full[cut], solver, time_limit=each, seed=seed, **options)
    # the two best (and the given cut, so that choosing never loses to it for want of time) get the rest of the
    # share: a time-limited solver's answer improves with its time
    second = sorted(finalists, key=lambda c: (_objective(solved[c]), c))[:2]
    if given in solved and given not in second:
        second.append(given)
    for cut in second:
        if solved[cut].status in ("optimal", "infeasible") or left() < MIN_PHASE_S:
            continue
        limit = min(0.6 * share / len(second), left() - total * BOUND_SHARE)
        if limit < MIN_PHASE_S:
            continue
        again = run_solver(full[cut], solver, time_limit=limit, seed=seed, **options)
        if _objective(again) < _objective(solved[cut]) or (
            _objective(again) == _objective(solved[cut]) and again.lower_bound > solved[cut].lower_bound
        ):
            solved[cut] = again
    pairs = list(zip(table["a"], table["b"]))
    table["solved_round_ms"] = [_objective(solved[c]) if c in solved else math.nan for c in pairs]
    best = min(finalists, key=lambda c: (_objective(solved[c]), c))
    if screen:  # the sample's bounds are not the testbed's: only the finalists' count
        table["bound_ms"] = [_bound(solved[c]) if c in solved else math.nan for c in pairs]
    else:
        table["bound_ms"] = [
            max(_bound(solved[c]), b) if c in solved else b for c, b in zip(pairs, table["bound_ms"])
        ]
        until = time.perf_counter() + min(total * BOUND_SHARE, max(0.0, left()))
        _tighten_bounds(table, quick, _objective(solved[best]), until, seed)
    global_bound = float(table["bound_ms"].min())  # NaN-skipping: over the finalists when screened
    choice = CutChoice(
        cut=best,
        table=table,
        bound=global_bound,
        global_round=_objective(solved[best]),
        global_bound=global_bound,
        given=given,
        scope=f"the {len(finalists)} finalists (ranked on a {SCREEN_CLIENTS}-client sample)"
        if screen
        else "",
        planned=planned,
    )
    if planned < len(table) and not screen:
        choice.scope = f"the {planned} candidates planned within the time limit"
    if given in solved:
        choice.given_round = _objective(solved[given])
    result, fixed = solved[best], with_cut(testbed, best)
    if search:  # what the search may choose: every global cut (above) and per-client mixes of the finalists'
        lp = options_bound([full[c] for c in finalists])
        choice.bound = min(global_bound, lp)
        cuts_covered = "every global cut" if planned == len(table) else f"the {planned} planned global cuts"
        choice.scope = f"{cuts_covered} and every per-client mix of the {len(finalists)} finalists' cuts"
        insts = [quick[c][0] for c in finalists]
        # CP-SAT's mixed model is the published one: its plans and bounds are not a local head's
        exact = solver in EXACT and not insts[0].local_head and mix_intervals(insts) <= MAX_INTERVALS
        search_end = time.perf_counter() + max(0.0, left()) * (0.2 if exact else 0.5)
        picks = _client_search(insts, finalists.index(best), seed, search_end)
        remaining = left()
        names = quick[best][0].clients
        if picks is not None and remaining >= MIN_PHASE_S:
            share = remaining / 2 if not exact else remaining / 3
            mine = run_solver(compose(insts, picks), solver, time_limit=share, seed=seed, **options)
            if _objective(mine) < _objective(result) * (1 - 1e-9):
                choice.client_cuts = {c: finalists[int(k)] for c, k in zip(names, picks)}
                result, fixed = mine, with_client_cuts(testbed, choice.client_cuts)
        start = np.full(len(names), finalists.index(best))
        if choice.client_cuts is not None:
            start = picks
        if exact and result.schedule is not None and left() >= MIN_MIX_S:
            # CP-SAT over every (cut, helper) option per client, hinted with the best so far: never worse
            workers = int(options.get("workers", 1))
            mixed = solve_mix(insts, start, result, time_limit=left(), seed=seed, workers=workers)
            if mixed is not None:
                cuts, answer, every_mix = mixed
                choice.bound = min(global_bound, max(lp, every_mix))
                if _objective(answer) < _objective(result) * (1 - 1e-9):
                    result = answer
                    chosen = {c: finalists[int(k)] for c, k in zip(names, cuts)}
                    if len(set(chosen.values())) > 1:
                        choice.client_cuts = chosen
                        fixed = with_client_cuts(testbed, chosen)
                    else:
                        fixed = with_cut(testbed, next(iter(chosen.values())))
        elif (
            choice.client_cuts is None
            and result.status not in ("optimal", "infeasible")
            and left() >= MIN_PHASE_S
        ):
            # no mix helped: the best global cut gets the rest of the time
            again = run_solver(full[best], solver, time_limit=left(), seed=seed, **options)
            if _objective(again) < _objective(result):
                result = solved[best] = again
                choice.global_round = _objective(again)
    result.lower_bound = min(choice.bound, _objective(result))
    if result.schedule is not None:
        result.schedule.lower_bound = result.lower_bound
        if result.status == "optimal" and _objective(result) > result.lower_bound * (1 + 1e-9):
            result.status = result.schedule.status = "feasible"  # optimal at its cut, not over all cuts
    result.extra = {**result.extra, "cut": list(best)}
    result.runtime_s = time.perf_counter() - t0  # the whole choice, not its last solve
    if result.schedule is not None:
        result.schedule.runtime_s = result.runtime_s
    return fixed, choice, result


def _tighten_bounds(table: pd.DataFrame, quick: dict, best_round: float, until: float, seed: int) -> None:
    """Stronger bounds (greedy's, with its model-built bounds) for the candidates whose instant bound is below
    ``best_round``, weakest first, until ``until``: the bound over every global cut is the least of them."""
    weak = table[(table["bound_ms"] < best_round) & table["solved_round_ms"].isna()]
    for idx in weak.sort_values("bound_ms").index:
        room = until - time.perf_counter()
        if room < MIN_PHASE_S:
            return
        cut = (int(table.at[idx, "a"]), int(table.at[idx, "b"]))
        res = run_solver(quick[cut][0], "greedy", seed=seed, time_limit=min(1.0, room))
        table.at[idx, "bound_ms"] = max(float(table.at[idx, "bound_ms"]), _bound(res))


def _client_search(insts, start: int, seed: int, deadline: float) -> np.ndarray | None:
    """First-improvement local search over each client's cut among ``insts`` (greedy plans as the measure),
    from every client at ``start``; the better choice, or None when none beats the start."""
    k = insts[0].num_clients
    picks = np.full(k, start)
    best = _objective(run_solver(insts[start], "greedy", seed=seed))
    found = False
    for _ in range(3):
        improved = False
        for j in range(k):
            for c in range(len(insts)):
                if c == picks[j] or time.perf_counter() > deadline:
                    continue
                trial = picks.copy()
                trial[j] = c
                value = _objective(run_solver(compose(insts, trial), "greedy", seed=seed))
                if value < best * (1 - 1e-9):
                    best, picks, improved, found = value, trial, True, True
        if not improved or time.perf_counter() > deadline:
            break
    return picks if found else None
