"""Fuzz: mutated testbeds, instances, schedules and profiles through the CLI, in process. Every outcome is exit 0
(and the schedule validates), 2 (one line naming a field), 3 or 4; never a traceback; nothing half-written.

``FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_cli.py`` runs a longer campaign (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pslsched.cli import main
from pslsched.core.instance import read_instance
from pslsched.core.schedule import read_schedule
from pslsched.core.testbed import default_testbed_path
from pslsched.core.validate import validate
from pslsched.profiles import bundled_path

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)

VALUES = [
    None,
    float("nan"),
    float("inf"),
    -1,
    0,
    1e30,
    -1e30,
    1e12,
    "abc",
    "",
    [],
    {},
    10**20,
    True,
    1e-300,
    2.5,
]

BASE_TESTBED = yaml.safe_load(Path(default_testbed_path()).read_text())
BASE_TESTBED["training"] = {"dataset": "synthetic:n=64,test=16", "model": "mlp", "batch_size": 8}
BASE_TESTBED["simulation"] = {"rounds": 1}
BASE_TESTBED["compression"] = {"codec": "topk:r=0.1", "cut_b": False}


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw, base):
    """``base`` with one or two edits: a key dropped, a value replaced by an odd one, an unknown key added."""
    obj = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 2))):
        paths = [p for p in _paths(obj) if p]
        path = draw(st.sampled_from(paths))
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["drop", "value", "value", "value", "unknown"]))
        if op == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif op == "unknown" and isinstance(parent, dict):
            parent["zz_unknown"] = 1
        else:
            parent[path[-1]] = draw(st.sampled_from(VALUES))
    return obj


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)  # a traceback here fails the test: that is the bug this file hunts
    return code, out.getvalue(), err.getvalue()


def check_outcome(code: int, err: str, out_dir: Path | None, instance_file: Path | None = None) -> None:
    assert code in (0, 2, 3, 4), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sched: error: ") and ":" in lines[0][14:], err
    if out_dir is not None and code != 0:
        assert not out_dir.exists(), f"exit {code} left {sorted(p.name for p in out_dir.iterdir())}"
    if code == 0 and out_dir is not None and (out_dir / "schedule.json").is_file():
        inst = read_instance(instance_file or out_dir / "instance.json")
        assert validate(inst, read_schedule(out_dir / "schedule.json")) == []


def _write_testbed(folder: Path, data) -> Path:
    path = folder / "testbed.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@FUZZ
@given(data=mutated(BASE_TESTBED), command=st.sampled_from(["solve", "simulate", "train"]))
def test_mutated_testbeds(data, command):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = _write_testbed(folder, data)
        out = folder / "out"
        extra = {
            "solve": ["--solver", "greedy", "--time-limit", "2"],
            "simulate": ["--rounds", "1"],
            "train": ["--rounds", "1", "--cost-only"],
        }[command]
        code, _, err = run_cli([command, "--profile", str(path), *extra, "--out", str(out)])
        check_outcome(code, err, None if command == "train" else out)


@st.composite
def mutated_instance(draw):
    base = json.loads(_INSTANCE.read_text())
    obj = draw(mutated(base))
    return obj


_TMP = Path(tempfile.mkdtemp(prefix="fuzz-base-"))
_INSTANCE = _TMP / "instance.json"
with contextlib.redirect_stdout(io.StringIO()):
    main(
        [
            "generate",
            "--family",
            "tirana1",
            "--clients",
            "8",
            "--helpers",
            "2",
            "--seed",
            "3",
            "-o",
            str(_INSTANCE),
        ]
    )
    main(
        [
            "solve",
            "--instance",
            str(_INSTANCE),
            "--solver",
            "greedy",
            "--time-limit",
            "2",
            "--out",
            str(_TMP / "s"),
        ]
    )
_SCHEDULE = _TMP / "s" / "schedule.json"


@FUZZ
@given(data=mutated_instance())
def test_mutated_instances(data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "i.json"
        path.write_text(json.dumps(data))
        out = folder / "out"
        code, _, err = run_cli(
            ["solve", "--instance", str(path), "--solver", "greedy", "--time-limit", "2", "--out", str(out)]
        )
        check_outcome(code, err, out)


@FUZZ
@given(data=st.deferred(lambda: mutated(json.loads(_SCHEDULE.read_text()))))
def test_mutated_schedules_through_validate(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.json"
        path.write_text(json.dumps(data))
        code, _, err = run_cli(["validate", "--instance", str(_INSTANCE), str(path)])
        assert code in (0, 1, 2), (code, err)
        if code == 2:
            assert len(err.strip().splitlines()) == 1


_PROFILE = pd.read_csv(bundled_path("resnet101_cifar10"))


@FUZZ
@given(
    row=st.integers(0, len(_PROFILE) - 1),
    column=st.sampled_from(list(_PROFILE.columns)),
    value=st.sampled_from(
        ["nan", "inf", "-1", "0", "1e30", "1e12", "abc", "", "[]", "True", "1e-300", "d9", "VM"]
    ),
    drop=st.booleans(),
)
def test_mutated_profiles(row, column, value, drop):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frame = _PROFILE.copy()
        if drop:
            frame = frame.drop(columns=[column])
        else:
            frame[column] = frame[column].astype(object)
            frame.loc[row, column] = value
        csv = folder / "p.csv"
        frame.to_csv(csv, index=False)
        code, _, err = run_cli(["profile", "show", str(csv)])
        assert code in (0, 2), err
        testbed = json.loads(json.dumps(BASE_TESTBED))
        testbed["model"]["profile"] = str(csv)
        out = folder / "out"
        code, _, err = run_cli(
            [
                "solve",
                "--profile",
                str(_write_testbed(folder, testbed)),
                "--solver",
                "greedy",
                "--time-limit",
                "2",
                "--out",
                str(out),
            ]
        )
        check_outcome(code, err, out)


def test_the_two_crashing_inputs_of_the_report(tmp_path):
    inst = json.loads(_INSTANCE.read_text())
    inst["tail"][0][0] = 1e30
    (tmp_path / "i.json").write_text(json.dumps(inst))
    code, _, err = run_cli(["solve", "--instance", str(tmp_path / "i.json"), "--solver", "greedy"])
    assert code == 2 and "tail[0][0]" in err
    testbed = json.loads(json.dumps(BASE_TESTBED))
    testbed["clients"][0]["latency_ms"] = 1e30
    code, _, err = run_cli(
        ["solve", "--profile", str(_write_testbed(tmp_path, testbed)), "--solver", "greedy"]
    )
    assert code == 2 and "clients[0].latency_ms" in err
    # legal but numerically hard: answered, never a crash
    inst["tail"][0][0] = 1e9
    inst["release"][1][1] = 1e-9
    (tmp_path / "h.json").write_text(json.dumps(inst))
    for solver in ("greedy", "equid", "milp"):
        code, out, err = run_cli(
            [
                "solve",
                "--instance",
                str(tmp_path / "h.json"),
                "--solver",
                solver,
                "--time-limit",
                "3",
                "--out",
                str(tmp_path / solver),
            ]
        )
        check_outcome(code, err, tmp_path / solver, tmp_path / "h.json")


BASE_GRID = {
    "command": "simulate",
    "seed": 3,
    "base": {"rounds": 1, "solver": "greedy", "links": "dedicated"},
    "axes": {
        "policy": ["static", "fcfs"],
        "testbed.helpers.laptop.memory_mb": [1024, 2048],
        "testbed.clients.*.latency_ms": [1.0],
        "stragglers": ["none", "client:lognormal:sigma=0.2"],
        "seed": [0, 1],
    },
}


@FUZZ
@given(data=mutated(BASE_GRID), command=st.sampled_from(["solve", "simulate", "train"]))
def test_mutated_sweep_grids(data, command):
    """Grid files checked by `sched sweep --dry-run`: valid (exit 0) or one line naming the key (exit 2)."""
    if isinstance(data, dict) and data.get("command") == "simulate":
        data["command"] = command
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        grid = folder / "grid.yaml"
        grid.write_text(yaml.safe_dump(data, allow_unicode=True))
        out = folder / "out"
        code, _, err = run_cli(["sweep", str(grid), "--out", str(out), "--dry-run"])
        assert code in (0, 2), (code, err)
        if code == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("sched: error: "), err
        assert not out.exists()
