"""EquiD and ED-FCFS (Ganian, Mc Inerney, Tsigkari, INFOCOM 2026), generalised to pair-dependent times.

Both use the min-max-load assignment (:func:`pslsched.solvers.assignment.min_max_load_assignment`). EquiD then runs, on each
helper, the non-idling rule "a released forward task with the largest delay ``delay[j][i]`` first, else the ready
backward task with the largest tail ``tail[j][i]``" (:func:`pslsched.solvers.list_scheduling.equid_rule`); the paper's
delays and tails depend on the client only, ours on the pair, which is the same rule read on the chosen helper.
ED-FCFS runs FCFS on the same assignment. With ``B > 1`` batches a later batch's forward task is released when the
previous batch completes; local clients train locally and take no helper time.
"""

from __future__ import annotations

from pslsched.core.result import SolveResult
from pslsched.solvers.assignment import min_max_load_assignment
from pslsched.solvers.base import SolverRun, register_run
from pslsched.solvers.baselines import rule_on_assignment
from pslsched.solvers.list_scheduling import Rule, equid_rule, fcfs


def _on_min_max_load(run: SolverRun, options: dict, rule: Rule) -> SolveResult:
    """``rule`` on every helper of EquiD's min-max-load assignment."""
    run.options = {"seed": run.seed, **options}
    if run.bounds().infeasible:  # the bounds first (within their share): the IP then gets what is left
        return run.no_schedule()
    # what is left, less the list schedule and the answer's packaging (each about one re-timing)
    ip_limit = 10.0 if run.time_limit is None else max(0.0, run.search_left() - run.reserve())
    assignment, how = min_max_load_assignment(run.instance, time_limit=ip_limit)
    failure = (
        "no memory-feasible assignment exists"
        if how == "infeasible"
        else "the load assignment found no room for some client"
    )
    return rule_on_assignment(run, assignment, rule, failure, extra={"assignment": how})


@register_run("equid", "min-max-load assignment + EquiD's rule (largest delay / largest tail first)")
def solve_equid(run: SolverRun, options: dict) -> SolveResult:
    """EquiD: min-max-load assignment, then the EquiD priority rule on each helper."""
    return _on_min_max_load(run, options, equid_rule)


@register_run("ed-fcfs", "min-max-load assignment + FCFS (EquiD's baseline ED-FCFS)")
def solve_ed_fcfs(run: SolverRun, options: dict) -> SolveResult:
    """ED-FCFS: EquiD's assignment, FCFS on each helper."""
    return _on_min_max_load(run, options, fcfs)
