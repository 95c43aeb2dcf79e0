"""`sched compare` and solvers.compare."""

from __future__ import annotations

import numpy as np

from pslsched.cli import main
from pslsched.core.generators import generate
from pslsched.solvers.compare import compare


def test_compare_table_one_row_per_solver():
    inst = generate("tirana1", 8, 2, seed=0)
    table = compare(inst, ["random", "greedy", "equid"], time_limit=2)
    assert list(table["solver"]) == ["random", "greedy", "equid"]
    assert table["valid"].all()
    best = table["lower_bound_ms"].iloc[0]
    assert (table["lower_bound_ms"] == best).all()  # one bound per instance
    assert (table["own_bound_ms"] <= best).all() and (table["makespan_ms"] >= best * (1 - 1e-12)).all()
    assert table.loc[table.solver == "random", "reduction_vs_random_%"].iloc[0] == 0
    assert np.isclose(table["gap_%"], 100 * (table["makespan_ms"] / best - 1), atol=1e-9).all()
    assert (table["gap_%"] >= 0).all()
    # a makespan that meets the instance's bound is optimal, whoever proved the bound
    met = table["makespan_ms"] <= best * (1 + 1e-9)
    assert (table.loc[met, "status"] == "optimal").all()
    assert "reduction_vs_random_%" not in compare(inst, ["greedy"], time_limit=2).columns


def test_cli_compare_writes_files_and_rejects_unknown(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--solvers", "random,greedy", "--time-limit", "2", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"compare.csv", "compare.png", "report.html"}
    assert "greedy" in capsys.readouterr().out
    assert main(["compare", "--solvers", "random,bogus", "--out", str(tmp_path / "x")]) == 2
    assert "unknown solver 'bogus'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_compare_marks_an_invalid_schedule(monkeypatch):
    import dataclasses

    import pslsched.solvers.compare as cmp

    real = cmp.solve

    def broken(instance, name, **kw):
        res = real(instance, name, **kw)
        if name == "greedy":  # shift one task: the validator must catch it
            tasks = list(res.schedule.tasks)
            tasks[0] = dataclasses.replace(tasks[0], start=tasks[0].start + 1.0)
            res.schedule = dataclasses.replace(res.schedule, tasks=tasks)
        return res

    monkeypatch.setattr(cmp, "solve", broken)
    table = compare(generate("tirana1", 5, 2, seed=0), ["random", "greedy"], time_limit=2)
    row = table.set_index("solver").loc["greedy"]
    assert row["status"] == "invalid" and not row["valid"] and np.isnan(row["makespan_ms"])
    assert table.set_index("solver").loc["random", "valid"]


def test_compare_includes_the_slotted_solvers():
    inst = generate("ganian2", 5, 2, seed=1)
    table = compare(inst, ["cpsat", "admm", "milp-slotted"], time_limit=3, workers=1)
    assert list(table["solver"]) == ["cpsat", "admm", "milp-slotted"] and table["valid"].all()
    assert (table["makespan_ms"] >= table["lower_bound_ms"] * (1 - 1e-12)).all()


def test_compare_survives_a_crashing_solver(monkeypatch):
    from pslsched.base.registry import Entry
    from pslsched.solvers import SOLVERS

    def boom(instance, **_):
        raise RuntimeError("solver exploded")

    monkeypatch.setitem(SOLVERS._entries, "boom", Entry("boom", boom, "test"))
    table = compare(generate("ganian1", 5, 2, seed=0), ["greedy", "boom"], time_limit=2)
    row = table.set_index("solver").loc["boom"]
    assert not row["valid"] and "solver exploded" in row["status"]
    assert table.set_index("solver").loc["greedy", "valid"]
