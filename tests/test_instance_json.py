"""Instance and schedule JSON (problem.md §2-3): round trips, and every bad input naming its field."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import instances

from pslsched.base.errors import InputError
from pslsched.core.instance import MATRICES, Instance, read_instance, write_instance
from pslsched.core.schedule import Schedule, Task, read_schedule, write_schedule
from pslsched.solvers import solve

# ---- instance round trips --------------------------------------------------------------------------------


def same_instance(a: Instance, b: Instance) -> None:
    assert a.to_dict() == b.to_dict()
    assert (a.name, a.clients, a.helpers, a.batches) == (b.name, b.clients, b.helpers, b.batches)
    for m in (*MATRICES, "demand", "capacity"):
        np.testing.assert_array_equal(getattr(a, m), getattr(b, m))  # NaN == NaN here
    assert (a.local is None) == (b.local is None)
    if a.local is not None:
        np.testing.assert_array_equal(a.local, b.local)


@settings(max_examples=40)
@given(inst=instances())
def test_instance_roundtrip_through_a_file(tmp_path_factory, inst):
    path = tmp_path_factory.mktemp("rt") / "inst.json"
    write_instance(inst, path)
    again = read_instance(path)
    same_instance(inst, again)
    assert not path.with_name("inst.json.tmp").exists()
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text  # unreachable pairs are written as null


@settings(max_examples=40)
@given(inst=instances())
def test_instance_roundtrip_through_a_dict(inst):
    data = json.loads(json.dumps(inst.to_dict()))
    same_instance(inst, Instance.from_dict(data))
    assert ("batches" in data) == (inst.batches != 1)
    assert ("local" in data) == (inst.local is not None)


def test_problem_md_example_parses(example_dict):
    inst = Instance.from_dict(example_dict)
    assert inst.clients == ("c0", "c1") and inst.helpers == ("h0",)
    assert inst.chain.tolist() == [[22.0], [22.0]]
    assert inst.load.tolist() == [[6.0], [6.0]]
    assert inst.batches == 1 and inst.local is None
    assert inst.to_dict() == example_dict


def test_one_null_makes_the_pair_unreachable_everywhere(example_dict):
    example_dict["helpers"] = ["h0", "h1"]
    for m in MATRICES:
        example_dict[m] = [[row[0], row[0] + 1] for row in example_dict[m]]
    example_dict["capacity"] = [512.0, 512.0]
    example_dict["delay"][1][1] = None
    inst = Instance.from_dict(example_dict)
    assert inst.reachable.tolist() == [[True, True], [True, False]]
    for m in MATRICES:
        assert math.isnan(getattr(inst, m)[1, 1])
        assert inst.to_dict()[m][1][1] is None


def test_optional_keys(example_dict):
    example_dict.update(batches=3, local=[None, 40.0])
    inst = Instance.from_dict(example_dict)
    assert inst.batches == 3
    assert inst.can_local.tolist() == [False, True]
    assert Instance.from_dict(inst.to_dict()).to_dict() == inst.to_dict()
    example_dict["local"] = [None, None]  # no client has a local option: same as no key
    assert Instance.from_dict(example_dict).local is None
    example_dict["local"] = None
    assert Instance.from_dict(example_dict).local is None


def test_instance_arrays_are_read_only(example_instance):
    with pytest.raises(ValueError):
        example_instance.fwd[0, 0] = 1.0
    with pytest.raises(AttributeError):
        example_instance.batches = 2


# ---- bad instance objects: each error names the field ----------------------------------------------------


def _set(key, value):
    def change(d):
        d[key] = value

    return change


def _cell(key, j, i, value):
    def change(d):
        d[key][j][i] = value

    return change


def _item(key, j, value):
    def change(d):
        d[key][j] = value

    return change


def _drop(key):
    def change(d):
        del d[key]

    return change


BAD_INSTANCES = [
    ("unknown key", _set("colour", "red"), "instance.colour", "unknown key"),
    ("missing matrix", _drop("fwd"), "instance.fwd", "missing"),
    ("missing capacity", _drop("capacity"), "instance.capacity", "missing"),
    ("too few rows", _set("fwd", [[2.0]]), "instance.fwd", "must have 2 rows"),
    ("too many columns", _set("bwd", [[4.0, 1.0], [4.0, 1.0]]), "instance.bwd[0]", "must have 1 entries"),
    ("ragged matrix", _set("tail", [[1.0], [6.0, 2.0]]), "instance.tail[1]", "must have 1 entries"),
    ("matrix not a list", _set("delay", "ten"), "instance.delay", "must have 2 rows"),
    ("row not a list", _set("delay", [10.0, 3.0]), "instance.delay[0]", "must have 1 entries"),
    ("negative time", _cell("release", 0, 0, -5.0), "instance.release[0][0]", ">= 0"),
    ("NaN time", _cell("delay", 1, 0, float("nan")), "instance.delay[1][0]", "finite number"),
    ("infinite time", _cell("fwd", 1, 0, float("inf")), "instance.fwd[1][0]", "finite number"),
    ("string time", _cell("bwd", 0, 0, "4"), "instance.bwd[0][0]", "must be a number or null"),
    ("boolean time", _cell("bwd", 0, 0, True), "instance.bwd[0][0]", "must be a number"),
    ("demand too short", _set("demand", [100.0]), "instance.demand", "list of 2 numbers"),
    ("demand null", _item("demand", 1, None), "instance.demand[1]", "must be a number"),
    ("demand negative", _item("demand", 0, -1.0), "instance.demand[0]", ">= 0"),
    ("capacity string", _item("capacity", 0, "lots"), "instance.capacity[0]", "must be a number"),
    ("capacity not a list", _set("capacity", 512.0), "instance.capacity", "list of 1 numbers"),
    ("local too long", _set("local", [1.0, 2.0, 3.0]), "instance.local", "list of 2 numbers"),
    ("local negative", _set("local", [None, -3.0]), "instance.local[1]", ">= 0"),
    ("batches zero", _set("batches", 0), "instance.batches", "integer in [1, 10000]"),
    ("batches negative", _set("batches", -2), "instance.batches", "integer in [1, 10000]"),
    ("batches fractional", _set("batches", 1.5), "instance.batches", "integer in [1, 10000]"),
    ("batches huge", _set("batches", 10**9), "instance.batches", "integer in [1, 10000]"),
    ("batches string", _set("batches", "2"), "instance.batches", "integer in [1, 10000]"),
    ("batches boolean", _set("batches", True), "instance.batches", "integer in [1, 10000]"),
    ("batches null", _set("batches", None), "instance.batches", "integer in [1, 10000]"),
    ("unit", _set("unit", "s"), "instance.unit", "must be 'ms'"),
    ("name", _set("name", 7), "instance.name", "must be a string"),
    ("clients not names", _set("clients", ["c0", 1]), "instance.clients", "non-empty strings"),
    ("empty client name", _set("clients", ["c0", ""]), "instance.clients", "non-empty strings"),
    ("duplicate clients", _set("clients", ["c0", "c0"]), "clients", "duplicate name 'c0'"),
]


@pytest.mark.parametrize(
    "change, field, needle", [c[1:] for c in BAD_INSTANCES], ids=[c[0] for c in BAD_INSTANCES]
)
def test_bad_instance_names_the_field(example_dict, change, field, needle):
    change(example_dict)
    with pytest.raises(InputError) as err:
        Instance.from_dict(example_dict)
    assert err.value.field == field
    assert needle in str(err.value)
    assert str(err.value).startswith(f"{field}: ")


@pytest.mark.parametrize("data", [[1, 2], "instance", None, 3.0])
def test_instance_must_be_an_object(data):
    with pytest.raises(InputError, match="must be a JSON object") as err:
        Instance.from_dict(data)
    assert err.value.field == "instance"


def test_constructor_checks_too():
    ok = {m: np.ones((2, 1)) for m in MATRICES}
    args = dict(name="x", clients=("a", "b"), helpers=("h",), demand=np.ones(2), capacity=np.ones(1))
    with pytest.raises(InputError) as err:
        Instance(**{**args, **ok, "fwd": np.ones((1, 2))})
    assert err.value.field == "fwd"
    with pytest.raises(InputError) as err:
        Instance(**{**args, **ok, "delay": -np.ones((2, 1))})
    assert err.value.field == "delay[0][0]"
    with pytest.raises(InputError) as err:
        Instance(**{**args, **ok, "batches": 0})
    assert err.value.field == "batches"
    with pytest.raises(InputError) as err:
        Instance(**{**args, **ok, "clients": ()})
    assert err.value.field == "clients"
    with pytest.raises(InputError) as err:
        Instance(**{**args, **ok, "capacity": np.array([np.nan])})
    assert err.value.field == "capacity[0]"


def test_no_helpers_needs_every_client_local():
    empty = {m: np.zeros((2, 0)) for m in MATRICES}
    args = dict(name="x", clients=("a", "b"), helpers=(), demand=np.ones(2), capacity=np.zeros(0))
    for local in (None, [3.0, None], [np.nan, 4.0]):
        with pytest.raises(InputError) as err:
            Instance(**args, **empty, local=local)
        assert err.value.field == "helpers"
    assert Instance(**args, **empty, local=[3.0, 4.0]).can_local.all()
    data = {"clients": ["a"], "helpers": [], "demand": [1.0], "capacity": [], "local": [None]}
    data.update({m: [[]] for m in MATRICES})
    with pytest.raises(InputError) as err:
        Instance.from_dict(data)
    assert err.value.field == "helpers"


# ---- bad instance files ----------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "absent.json"
    with pytest.raises(InputError, match="no such file") as err:
        read_instance(path)
    assert err.value.field == str(path)


@pytest.mark.parametrize("text, line", [('{"name": "x",', 1), ('{\n "clients": ["a"]\n "helpers": []}', 3)])
def test_malformed_json(tmp_path, text, line):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=f"malformed JSON at line {line}") as err:
        read_instance(path)
    assert err.value.field == str(path)


def test_binary_file(tmp_path):
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(InputError, match="not a text file"):
        read_instance(path)


def test_file_errors_are_prefixed_with_the_file_name(tmp_path, example_dict):
    example_dict["fwd"][1][0] = "fast"
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(example_dict))
    with pytest.raises(InputError) as err:
        read_instance(path)
    assert err.value.field == "mine.json.fwd[1][0]"
    assert "'fast'" in str(err.value)


def test_nan_literal_in_a_file_is_rejected(tmp_path, example_dict):
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(example_dict).replace("10.0", "NaN"))
    with pytest.raises(InputError) as err:
        read_instance(path)
    assert err.value.field == "nan.json.delay[0][0]"


# ---- schedule JSON ---------------------------------------------------------------------------------------


def test_problem_md_schedule_roundtrip(tmp_path, example_schedule):
    assert example_schedule.tasks[2] == Task("c1", "h0", "bwd", 12.0, 16.0, 0)
    path = tmp_path / "schedule.json"
    write_schedule(example_schedule, path)
    again = read_schedule(path)
    assert again == example_schedule
    data = json.loads(path.read_text())
    assert all("batch" not in t for t in data["tasks"])  # batch only written when B > 1


@settings(max_examples=25)
@given(inst=instances(fits_somewhere=True))
def test_solver_schedule_roundtrip(tmp_path_factory, inst):
    result = solve(inst, "greedy", time_limit=1.0)
    if result.schedule is None:
        return
    path = tmp_path_factory.mktemp("sched") / "s.json"
    write_schedule(result.schedule, path)
    again = read_schedule(path)
    assert again == result.schedule
    if inst.batches > 1 and result.schedule.tasks:
        assert all("batch" in t for t in json.loads(path.read_text())["tasks"])


def test_schedule_without_answer_roundtrips():
    empty = Schedule("x", "cpsat", "infeasible", None, None, 0.5, {}, [])
    data = json.loads(json.dumps(empty.to_dict()))
    assert data["makespan"] is None
    assert Schedule.from_dict(data) == empty


def test_local_client_in_schedule_json(example_schedule):
    example_schedule.assignment["c1"] = None
    example_schedule.tasks = [t for t in example_schedule.tasks if t.client != "c1"]
    data = json.loads(json.dumps(example_schedule.to_dict()))
    assert data["assignment"] == {"c0": "h0", "c1": None}
    assert Schedule.from_dict(data) == example_schedule


BAD_SCHEDULES = [
    ("unknown key", lambda d: d.update(colour=1), "schedule.colour"),
    ("missing status", lambda d: d.pop("status"), "schedule.status"),
    ("missing tasks", lambda d: d.pop("tasks"), "schedule.tasks"),
    ("bad status", lambda d: d.update(status="great"), "schedule.status"),
    ("assignment list", lambda d: d.update(assignment=["h0"]), "schedule.assignment"),
    ("assignment number", lambda d: d["assignment"].update(c0=0), "schedule.assignment"),
    ("tasks not a list", lambda d: d.update(tasks={}), "schedule.tasks"),
    ("task not an object", lambda d: d["tasks"].append(3), "schedule.tasks[4]"),
    ("task unknown key", lambda d: d["tasks"][0].update(length=2), "schedule.tasks[0].length"),
    ("task missing end", lambda d: d["tasks"][1].pop("end"), "schedule.tasks[1].end"),
    ("task phase", lambda d: d["tasks"][2].update(phase="both"), "schedule.tasks[2].phase"),
    ("task batch negative", lambda d: d["tasks"][0].update(batch=-1), "schedule.tasks[0].batch"),
    ("task batch float", lambda d: d["tasks"][0].update(batch=0.5), "schedule.tasks[0].batch"),
    ("task start string", lambda d: d["tasks"][3].update(start="17"), "schedule.tasks[3].start"),
    ("task start null", lambda d: d["tasks"][3].update(start=None), "schedule.tasks[3]"),
    ("task client number", lambda d: d["tasks"][3].update(client=0), "schedule.tasks[3]"),
    ("makespan NaN", lambda d: d.update(makespan=float("nan")), "schedule.makespan"),
    ("bound string", lambda d: d.update(lower_bound="22"), "schedule.lower_bound"),
]


@pytest.mark.parametrize("change, field", [c[1:] for c in BAD_SCHEDULES], ids=[c[0] for c in BAD_SCHEDULES])
def test_bad_schedule_names_the_field(example_schedule_dict, change, field):
    data = example_schedule_dict
    change(data)
    with pytest.raises(InputError) as err:
        Schedule.from_dict(data)
    assert err.value.field == field


def test_bad_schedule_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("[]")
    with pytest.raises(InputError) as err:
        read_schedule(path)
    assert err.value.field == "s.json"
    with pytest.raises(InputError, match="no such file"):
        read_schedule(tmp_path / "absent.json")
