"""The speed-ups of `sched solve`'s reading and writing (issue 25, item 4) keep every output's content.

Reading and writing instance JSON go through numpy (``_fast_numbers``, ``_json_rows``): checked here against the
entry-by-entry definitions they replace, byte for byte; the large-schedule chart paths (the report's timeline
without the clients' rows, the PNG's aggregated bars) are used above their thresholds only.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pslsched.app.report import figures
from pslsched.app.report.timeline import plan_timeline
from pslsched.app.requests import SolveRequest
from pslsched.app.solving import OUTPUT_FILES, solve, write_outputs
from pslsched.base.errors import InputError
from pslsched.core import report as core_report
from pslsched.core.generators import generate
from pslsched.core.instance import MATRICES, Instance, _fast_numbers, read_instance, write_instance
from pslsched.core.json_io import write_json
from pslsched.solvers import solve as run_solver


def odd_instance() -> Instance:
    """Unreachable pairs (NaN rows and lone NaNs), a partial local option, a shared body, ints and -0.0."""
    rng = np.random.default_rng(3)
    k, h = 7, 3
    mats = {m: rng.uniform(0, 50, (k, h)).round(rng.integers(0, 9)) for m in MATRICES}
    mats["fwd"][2, 1] = np.nan
    mats["bwd"][4, :2] = np.nan
    mats["release"][0, 0] = -0.0
    local = np.full(k, np.nan)
    local[[1, 4]] = [123.25, 1e-7]
    return Instance(
        name="odd",
        clients=tuple(f"c{j}" for j in range(k)),
        helpers=tuple(f"h{i}" for i in range(h)),
        demand=rng.uniform(1, 9, k),
        capacity=np.array([100.0, 200.0, 1e5 / 3]),
        local=local,
        body_memory=np.array([1.0, 2.5, 0.0]),
        batches=2,
        **mats,
    )


def entrywise_dict(inst: Instance) -> dict:
    """``Instance.to_dict`` as it was written before (one ``float`` per entry, NaN as None)."""
    out = inst.to_dict()
    num = lambda v: None if math.isnan(v) else float(v)  # noqa: E731
    for m in MATRICES:
        out[m] = [[num(v) for v in row] for row in getattr(inst, m)]
    out["demand"] = [float(v) for v in inst.demand]
    out["capacity"] = [float(v) for v in inst.capacity]
    if inst.local is not None:
        out["local"] = [num(v) for v in inst.local]
    if inst.body_memory is not None:
        out["body_memory"] = [float(v) for v in inst.body_memory]
    return out


@pytest.mark.parametrize("make", [odd_instance, lambda: generate("tirana2", 30, 4, seed=1)])
def test_an_instance_is_written_as_before_and_reads_back_equal(tmp_path, make):
    inst = make()
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    write_instance(inst, new)
    write_json(entrywise_dict(inst), old)
    assert new.read_bytes() == old.read_bytes()
    again = read_instance(new)
    for m in (*MATRICES, "demand", "capacity", "local", "body_memory"):
        a, b = getattr(inst, m), getattr(again, m)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)  # NaN == NaN here
            assert np.signbit(a).tolist() == np.signbit(b).tolist()


def test_the_fast_read_gives_the_entry_by_entry_floats():
    data = odd_instance().to_dict()
    data["fwd"][0] = [3, 999_999_999, 0.1]  # ints among the floats
    data["demand"][0] = 7
    inst = Instance.from_dict(json.loads(json.dumps(data)))
    assert inst.fwd[0].tolist() == [3.0, 999_999_999.0, 0.1]
    big = [2**53 + 1, 2**63 + 5, 10**30, 12345678901234567891]  # rounded as float() rounds them
    assert _fast_numbers([big], allow_null=False)[0].tolist() == [float(v) for v in big]
    assert _fast_numbers([[10**400]], allow_null=False) is None  # left to the entry-by-entry check
    assert inst.demand[0] == 7.0 and np.isnan(inst.fwd[2, 1]) and np.isnan(inst.bwd[4, 0])
    assert np.signbit(inst.release[0, 0])


@pytest.mark.parametrize(
    ("where", "value", "field", "message"),
    [
        ("tail", float("nan"), "instance.tail[3][1]", "must be a finite number >= 0"),
        ("tail", float("inf"), "instance.tail[3][1]", "must be a finite number >= 0"),
        ("tail", -2.0, "instance.tail[3][1]", "must be a finite number >= 0"),
        ("tail", True, "instance.tail[3][1]", "must be a number or null"),
        ("tail", "4", "instance.tail[3][1]", "must be a number or null"),
        ("demand", None, "instance.demand[3]", "must be a number, got None"),
        ("demand", float("nan"), "instance.demand[3]", "must be a finite number >= 0"),
        ("local", -1, "instance.local[3]", "must be a finite number >= 0"),
    ],
)
def test_a_bad_entry_is_still_named(where, value, field, message):
    data = odd_instance().to_dict()
    if where == "tail":
        data["tail"][3][1] = value
    else:
        data[where][3] = value
    with pytest.raises(InputError) as err:
        Instance.from_dict(data)
    assert err.value.field == field and message in str(err.value)


def test_the_timeline_leaves_out_the_clients_rows_only_above_its_threshold():
    inst = generate("tirana1", 12, 3, seed=0)
    timeline = plan_timeline(inst, run_solver(inst, "greedy").schedule)
    n = len(timeline.rows)
    assert figures.DETAILED_ROWS >= 400 and figures.shown_rows(timeline) == timeline.rows
    full = figures.timeline_figure(timeline, "t", max_rows=n)
    assert list(full.layout.yaxis.categoryarray) == timeline.rows
    small = figures.timeline_figure(timeline, "t", max_rows=n - 1)
    shown = list(small.layout.yaxis.categoryarray)
    crit = set(timeline.segments.loc[timeline.segments["critical"], "row"])
    helpers = [r for r in timeline.rows if r.startswith("helper ")]
    assert shown == [r for r in timeline.rows if r in crit or r in helpers] and len(shown) < n
    assert any(r.startswith("client ") for r in shown)  # the critical path's clients stay
    # every helper task and every critical segment is still drawn
    bars = {t.name: len(t.x) for t in small.data}
    assert sum(v for k, v in bars.items() if k.startswith("T2") or k.startswith("T4")) == 2 * inst.num_clients
    (critical,) = [t for t in small.data if t.name.startswith("critical path")]
    assert len(critical.x) == int(timeline.segments["critical"].sum())


def test_the_png_aggregates_only_above_its_threshold(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inst = generate("tirana1", 10, 2, seed=0)
    sched = run_solver(inst, "greedy").schedule
    calls = []
    monkeypatch.setattr(core_report, "_draw_aggregated", lambda *a: calls.append(a))
    fig, ax = plt.subplots()
    monkeypatch.setattr(core_report, "DETAILED_TASKS", len(sched.tasks))
    core_report.draw_gantt(ax, inst, sched, "t")
    assert not calls and len(ax.patches) == len(sched.tasks)
    monkeypatch.setattr(core_report, "DETAILED_TASKS", len(sched.tasks) - 1)
    ax.clear()
    core_report.draw_gantt(ax, inst, sched, "t")
    assert len(calls) == 1 and not ax.patches
    plt.close(fig)


def test_the_outputs_copy_the_given_instance_file_and_write_the_rest(tmp_path):
    src = tmp_path / "given.json"
    src.write_text(json.dumps(odd_instance().to_dict(), indent=3))  # not how we would write it
    outcome = solve(SolveRequest(instance=str(src), solver="greedy", baselines="greedy,random"))
    copied, written = tmp_path / "copied", tmp_path / "written"
    copied.mkdir(), written.mkdir()
    seconds = write_outputs(outcome, copied, source=str(src))
    assert list(seconds) == list(OUTPUT_FILES)
    assert sorted(p.name for p in copied.iterdir()) == sorted(OUTPUT_FILES)
    assert (copied / "instance.json").read_bytes() == src.read_bytes()
    write_outputs(outcome, written)
    write_instance(outcome.instance, tmp_path / "ref.json")
    assert (written / "instance.json").read_bytes() == (tmp_path / "ref.json").read_bytes()
    for name in ("schedule.json", "schedule.csv"):
        assert (copied / name).read_bytes() == (written / name).read_bytes()
    assert read_instance(copied / "instance.json").to_dict() == outcome.instance.to_dict()
