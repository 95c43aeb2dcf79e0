"""Instance/schedule JSON, the validator, the bounds and the baselines (issue 2's property and unit tests)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from core_strategies import instances
from hypothesis import HealthCheck, given, settings

from solvers import solve
from splitsched.bounds import chain_bound, jackson_bound, lower_bounds, memory_infeasibility
from splitsched.cli import main
from splitsched.errors import InputError
from splitsched.instance import Instance, read_instance, write_instance
from splitsched.schedule import Schedule, Task, read_schedule, write_schedule
from splitsched.timing import earliest_schedule
from splitsched.validate import validate

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

EXAMPLE = {
    "name": "example",
    "unit": "ms",
    "clients": ["c0", "c1"],
    "helpers": ["h0"],
    "release": [[5.0], [7.0]],
    "fwd": [[2.0], [2.0]],
    "delay": [[10.0], [3.0]],
    "bwd": [[4.0], [4.0]],
    "tail": [[1.0], [6.0]],
    "demand": [100.0, 100.0],
    "capacity": [512.0],
}


def example() -> Instance:
    return Instance.from_dict(json.loads(json.dumps(EXAMPLE)))


def test_problem_md_example_schedule_is_valid_and_optimal():
    inst = example()
    sched = Schedule(
        "example",
        "hand",
        "optimal",
        22.0,
        22.0,
        0.0,
        {"c0": "h0", "c1": "h0"},
        [
            Task("c0", "h0", "fwd", 5.0, 7.0),
            Task("c1", "h0", "fwd", 7.0, 9.0),
            Task("c1", "h0", "bwd", 12.0, 16.0),
            Task("c0", "h0", "bwd", 17.0, 21.0),
        ],
    )
    assert validate(inst, sched) == []
    assert lower_bounds(inst).best == 22.0
    for name in ("random", "greedy"):
        res = solve(inst, name)
        assert res.status == "optimal" and res.makespan == 22.0


@FAST
@given(instances())
def test_instance_json_roundtrip(inst):
    again = Instance.from_dict(json.loads(json.dumps(inst.to_dict())))
    assert again.to_dict() == inst.to_dict()


@FAST
@given(instances())
def test_baselines_valid_bounded_deterministic(inst):
    for name in ("random", "greedy"):
        res = solve(inst, name, seed=3)
        if res.schedule is None:
            assert res.status in ("infeasible", "unknown")
            if res.status == "infeasible":
                assert res.message
            continue
        assert validate(inst, res.schedule) == []
        assert res.lower_bound <= res.makespan * (1 + 1e-12)
        assert all(h is None or h in inst.helpers for h in res.schedule.assignment.values())
        again = solve(inst, name, seed=3)
        assert again.makespan == res.makespan and again.schedule.assignment == res.schedule.assignment
        data = json.loads(json.dumps(res.schedule.to_dict()))
        assert Schedule.from_dict(data).to_dict() == res.schedule.to_dict()
        assign = np.array(
            [-1 if h is None else inst.helper_index[h] for h in res.schedule.assignment.values()]
        )
        assert jackson_bound(inst, assign) <= res.makespan * (1 + 1e-9)


def test_client_that_fits_nowhere_is_infeasible_never_minus_one():
    data = dict(EXAMPLE, demand=[100.0, 600.0])
    inst = Instance.from_dict(data)
    assert "needs 600.0 MB" in memory_infeasibility(inst)
    for name in ("random", "greedy"):
        res = solve(inst, name)
        assert res.status == "infeasible" and res.schedule is None and "c1" in res.message


def test_bin_packing_infeasibility_found_by_the_load_ip():
    # each client fits alone on either helper, but three 60 MB bodies cannot share two 100 MB helpers
    inst = Instance(
        name="pack",
        clients=("a", "b", "c"),
        helpers=("x", "y"),
        **{m: np.ones((3, 2)) for m in ("release", "fwd", "delay", "bwd", "tail")},
        demand=np.array([60.0, 60.0, 60.0]),
        capacity=np.array([100.0, 100.0]),
    )
    assert memory_infeasibility(inst) is None
    assert lower_bounds(inst).infeasible
    assert solve(inst, "greedy").status == "infeasible"


def test_local_option_used_when_memory_is_short():
    inst = Instance(
        name="loc",
        clients=("a", "b"),
        helpers=("x",),
        **{m: np.ones((2, 1)) for m in ("release", "fwd", "delay", "bwd", "tail")},
        demand=np.array([60.0, 60.0]),
        capacity=np.array([100.0]),
        local=np.array([np.nan, 7.0]),
        batches=2,
    )
    res = solve(inst, "greedy")
    assert res.schedule.assignment == {"a": "x", "b": None}
    assert validate(inst, res.schedule) == []
    assert res.makespan == 14.0  # b trains 2 batches locally: 2 x 7 ms
    assert chain_bound(inst) == 10.0


def test_hand_computed_bounds():
    inst = example()
    # chains: c0 5+2+10+4+1 = 22, c1 7+2+3+4+6 = 22; load: min release 5 + load 12 + min tail 1 = 18
    assert chain_bound(inst) == 22.0
    rep = lower_bounds(inst)
    assert rep.load_lp == pytest.approx(22.0) and rep.load_ip == pytest.approx(22.0)
    two = Instance.from_dict(dict(EXAMPLE, delay=[[0.0], [0.0]], tail=[[0.0], [0.0]], release=[[0.0], [0.0]]))
    assert lower_bounds(two).best == pytest.approx(12.0)  # both 6 ms chains share one helper


# ---- validator: each kind of violation -------------------------------------------------------------------


def _valid():
    inst = example()
    res = solve(inst, "greedy")
    assert validate(inst, res.schedule) == []
    return inst, res.schedule


def _replace_task(sched, n, **changes):
    tasks = list(sched.tasks)
    tasks[n] = dataclasses.replace(tasks[n], **changes)
    return dataclasses.replace(sched, tasks=tasks)


def _index(sched, client, phase):
    return next(n for n, t in enumerate(sched.tasks) if t.client == client and t.phase == phase)


def test_validator_overlap():
    inst, s = _valid()
    n = _index(s, "c1", "fwd")  # c1 fwd runs 7-9; move it onto c0's 5-7 slot
    bad = _replace_task(s, n, start=6.0, end=8.0)
    assert any("release" in v or "before" in v for v in validate(inst, bad))
    n = _index(s, "c0", "bwd")
    t = s.tasks[_index(s, "c1", "bwd")]
    bad = _replace_task(s, n, start=t.start + 1, end=t.start + 5)
    assert any("ends at" in v for v in validate(inst, bad))


def test_validator_early_start_and_bwd_before_delay():
    inst, s = _valid()
    n = _index(s, "c0", "fwd")
    assert any("before its release" in v for v in validate(inst, _replace_task(s, n, start=4.0, end=6.0)))
    n = _index(s, "c0", "bwd")
    t = s.tasks[n]
    bad = _replace_task(s, n, start=t.start - 30, end=t.end - 30)
    assert any("forward end + delay" in v for v in validate(inst, bad))


def test_validator_wrong_length_wrong_helper_unknown_names():
    inst, s = _valid()
    n = _index(s, "c0", "fwd")
    assert any("lasts" in v for v in validate(inst, _replace_task(s, n, end=s.tasks[n].end + 1)))
    assert any(
        "unknown helper" in v
        for v in validate(inst, dataclasses.replace(s, assignment={"c0": "zz", "c1": "h0"}))
    )
    assert any("not assigned" in v for v in validate(inst, dataclasses.replace(s, assignment={"c0": "h0"})))
    assert any(
        "no local option" in v
        for v in validate(inst, dataclasses.replace(s, assignment={"c0": None, "c1": "h0"}))
    )


def test_validator_wrong_helper_and_unreachable():
    data = dict(
        EXAMPLE,
        helpers=["h0", "h1"],
        release=[[5.0, None], [7.0, 7.0]],
        fwd=[[2.0, 2.0], [2.0, 2.0]],
        delay=[[10.0, 10.0], [3.0, 3.0]],
        bwd=[[4.0, 4.0], [4.0, 4.0]],
        tail=[[1.0, 1.0], [6.0, 6.0]],
        capacity=[512.0, 512.0],
    )
    inst = Instance.from_dict(data)
    res = solve(inst, "greedy")
    s = res.schedule
    assert validate(inst, s) == []
    assert not inst.reachable[0, 1]
    moved = dataclasses.replace(s, assignment={**s.assignment, "c0": "h1"})
    assert any("cannot reach" in v for v in validate(inst, moved))
    n = _index(s, "c1", "fwd")
    other = "h0" if s.tasks[n].helper == "h1" else "h1"
    assert any("runs on" in v for v in validate(inst, _replace_task(s, n, helper=other)))


def test_validator_memory_makespan_bound_missing_duplicate():
    inst, s = _valid()
    small = Instance.from_dict(dict(EXAMPLE, capacity=[150.0], demand=[100.0, 40.0]))
    small2 = Instance.from_dict(dict(EXAMPLE, capacity=[150.0], demand=[100.0, 100.0]))
    assert validate(small, s) == []
    assert any("capacity" in v for v in validate(small2, s))
    assert any("makespan is" in v for v in validate(inst, dataclasses.replace(s, makespan=s.makespan - 1)))
    assert any("lower_bound" in v for v in validate(inst, dataclasses.replace(s, lower_bound=s.makespan + 1)))
    assert any("expected one fwd" in v for v in validate(inst, dataclasses.replace(s, tasks=s.tasks[1:])))
    assert any(
        "expected one fwd" in v for v in validate(inst, dataclasses.replace(s, tasks=s.tasks + s.tasks[:1]))
    )
    assert validate(inst, dataclasses.replace(s, status="infeasible"))


def test_validator_batches():
    inst = Instance.from_dict(dict(EXAMPLE, batches=2))
    res = solve(inst, "greedy")
    s = res.schedule
    assert validate(inst, s) == [] and len(s.tasks) == 8
    assert all("batch" in t for t in s.to_dict()["tasks"])
    n = next(k for k, t in enumerate(s.tasks) if t.batch == 1 and t.phase == "fwd")
    t = s.tasks[n]
    early = _replace_task(s, n, start=t.start - 15, end=t.end - 15)
    assert any("before its release" in v for v in validate(inst, early))
    assert any("does not exist" in v for v in validate(example(), s))


def test_earliest_schedule_matches_orders_and_rejects_cycles():
    inst = example()
    tasks, completion = earliest_schedule(
        inst, [0, 0], [[(0, "fwd", 0), (1, "fwd", 0), (1, "bwd", 0), (0, "bwd", 0)]]
    )
    assert max(completion) == 22.0
    with pytest.raises(ValueError, match="cyclic"):
        earliest_schedule(inst, [0, 0], [[(0, "bwd", 0), (0, "fwd", 0), (1, "fwd", 0), (1, "bwd", 0)]])


# ---- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"colour": 1}, "instance.colour: unknown key"),
        ({"fwd": [[2.0], [2.0], [1.0]]}, "instance.fwd: must have 2 rows"),
        ({"fwd": [[2.0, 1.0], [2.0]]}, "instance.fwd[0]: must have 1 entries"),
        ({"bwd": [[-4.0], [4.0]]}, "instance.bwd[0][0]: must be a finite number >= 0"),
        ({"tail": [["x"], [6.0]]}, "instance.tail[0][0]: must be a number"),
        ({"demand": [100.0]}, "instance.demand: must be a list of 2 numbers"),
        ({"capacity": [None]}, "instance.capacity[0]: must be a number"),
        ({"batches": 0}, "instance.batches"),
        ({"unit": "s"}, "instance.unit"),
        ({"clients": ["a", "a"]}, "duplicate name 'a'"),
        ({"local": [1.0]}, "instance.local"),
    ],
)
def test_bad_instances(changes, needle):
    with pytest.raises(InputError) as exc:
        Instance.from_dict(dict(EXAMPLE, **changes))
    assert needle in str(exc.value)


def test_nan_and_missing_key():
    with pytest.raises(InputError, match="release"):
        Instance.from_dict({k: v for k, v in EXAMPLE.items() if k != "release"})
    with pytest.raises(InputError, match=r"fwd\[0\]\[0\]"):
        Instance.from_dict(dict(EXAMPLE, fwd=[[float("nan")], [2.0]]))


def test_files_roundtrip_and_bad_files(tmp_path):
    inst = example()
    write_instance(inst, tmp_path / "i.json")
    assert read_instance(tmp_path / "i.json").to_dict() == inst.to_dict()
    res = solve(inst, "greedy")
    write_schedule(res.schedule, tmp_path / "s.json")
    assert read_schedule(tmp_path / "s.json").to_dict() == res.schedule.to_dict()
    (tmp_path / "bad.json").write_text("{ nope")
    with pytest.raises(InputError, match="malformed JSON at line 1"):
        read_instance(tmp_path / "bad.json")
    with pytest.raises(InputError, match="no such file"):
        read_instance(tmp_path / "none.json")


# ---- CLI ---------------------------------------------------------------------------------------------


def test_cli_solve_validate_corrupt(tmp_path, capsys):
    src = tmp_path / "inst.json"
    write_instance(example(), src)
    out = tmp_path / "out"
    assert main(["solve", "--instance", str(src), "--solver", "greedy", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "makespan   22.000 ms" in text and "gap        0.00 %" in text
    assert main(["validate", "--instance", str(out / "instance.json"), str(out / "schedule.json")]) == 0
    data = json.loads((out / "schedule.json").read_text())
    data["tasks"][0]["end"] += 1
    (tmp_path / "bad.json").write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["validate", "--instance", str(src), str(tmp_path / "bad.json")]) == 1
    assert "lasts" in capsys.readouterr().out


@pytest.mark.parametrize("content", ["{", "[]", json.dumps(dict(EXAMPLE, fwd=[[1.0]]))])
def test_cli_bad_instance_exit_2(tmp_path, capsys, content):
    src = tmp_path / "inst.json"
    src.write_text(content)
    out = tmp_path / "out"
    assert main(["solve", "--instance", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sched: error:") and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_unknown_solver_and_infeasible(tmp_path, capsys):
    src = tmp_path / "inst.json"
    write_instance(example(), src)
    assert main(["solve", "--instance", str(src), "--solver", "nope"]) == 2
    assert "unknown solver 'nope'" in capsys.readouterr().err
    write_instance(Instance.from_dict(dict(EXAMPLE, demand=[100.0, 600.0])), src)
    assert main(["solve", "--instance", str(src), "--solver", "greedy", "--out", str(tmp_path / "o")]) == 3
    assert "infeasible" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()


def test_makespan_recomputed_not_trusted():
    inst, s = _valid()
    assert math.isclose(s.makespan, 22.0)


def test_class_lp_bound_is_valid_and_weaker_than_the_full_lp(monkeypatch):
    import splitsched.bounds as bounds
    from splitsched.generators import generate

    inst = generate("tirana1", 60, 6, seed=4)
    full = bounds.lower_bounds(inst, time_limit=5)
    classes = bounds.helper_classes(inst)
    assert 1 < len(classes) < inst.num_helpers
    value = bounds._class_lp_load(inst, time_limit=5)
    assert value is not None and value <= full.load_lp + 1e-6
    for name in ("greedy", "equid", "lns"):
        res = solve(inst, name, time_limit=3)
        assert value <= res.makespan
    monkeypatch.setattr(bounds, "IP_PAIR_LIMIT", 200)  # 360 pairs: the large-instance path; 120 class pairs
    big = generate("tirana1", 60, 6, seed=4)  # a new object: not cached
    rep = bounds.lower_bounds(big, time_limit=5)
    assert rep.load_ip is None and rep.load_lp == pytest.approx(max(value, bounds._closed_form_load(big)))
