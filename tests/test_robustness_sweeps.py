"""Sweeps that survive (issue 24, item 3): a lost worker fails only its point and is replaced, the driver's death
takes its workers with it, ``--retry-failed`` retries a point killed before its first checkpoint, the grid is
counted before it is expanded (``--max-points``), YAML aliases are refused, every path is checked before anything
runs, a damaged output folder is repaired or refused in one line, and a second writer on one ``--out`` is refused.

The tests that start real worker processes run the sweep in a subprocess limited to 6 GB of address space and a
timeout (a broken fix must fail here, not take the machine).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pslsched.base.files import folder_lock
from pslsched.cli import main

TRAIN_GRID = {
    "command": "train",
    "base": {"dataset": "synthetic:n=64,test=16", "model": "mlp", "batch_size": 8, "rounds": 8, "clients": 4},
    "axes": {"lr": [0.01, 0.02, 0.03, 0.04]},
}
SOLVE_GRID = {"command": "solve", "base": {"solver": "greedy", "time_limit": 1}, "axes": {"seed": [0, 1]}}


def write(folder: Path, grid: dict, name: str = "grid.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(grid))
    return path


def refused(capsys, argv: list[str], *needles: str) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("sched"), (code, out, err)
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    os.setsid()  # its own process group: the test can end everything it started


def start_sweep(grid: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pslsched.cli",
            "sweep",
            str(grid),
            "--out",
            str(out),
            "--workers",
            "2",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit_memory,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def first_started(out: Path, timeout: float = 120) -> tuple[Path, int]:
    """The work folder of the first point a worker started, and that worker's pid."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for marker in (out / "work").glob("*/.started"):
            try:
                return marker.parent, int(marker.read_text())
            except (OSError, ValueError):
                pass
        time.sleep(0.1)
    raise AssertionError("no point started")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_lost_worker_fails_only_its_point_and_retry_failed_reruns_it(tmp_path):
    grid = write(tmp_path, TRAIN_GRID)
    out = tmp_path / "out"
    proc = start_sweep(grid, out)
    try:
        work, pid = first_started(out)
        os.kill(pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    results = pd.read_csv(out / "results.csv")
    failed = results[results["run_status"] == "failed"]
    assert len(results) == 4 and list(failed["id"]) == [work.name], results[["id", "run_status", "error"]]
    assert "worker lost (killed by signal 9)" in failed["error"].iloc[0]
    # the point was killed in its first rounds (maybe before its first checkpoint): --retry-failed runs it again
    done = subprocess.run(
        [sys.executable, "-m", "pslsched.cli", "sweep", str(grid), "--out", str(out), "--retry-failed"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_memory,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (pd.read_csv(out / "results.csv")["run_status"] == "ok").all()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_the_drivers_death_takes_its_workers_with_it(tmp_path):
    grid = write(tmp_path, TRAIN_GRID)
    out = tmp_path / "out"
    proc = start_sweep(grid, out)
    try:
        _, worker = first_started(out)
        os.kill(proc.pid, signal.SIGKILL)  # the driver only; its workers are not signalled by anyone
        proc.wait(timeout=30)
        end = time.monotonic() + 20
        while alive(worker) and time.monotonic() < end:
            time.sleep(0.2)
        assert not alive(worker), "the worker outlived its driver"
    finally:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_point_killed_before_its_first_checkpoint_restarts(tmp_path):
    """What a lost worker leaves: settings.json and schedule.json, a checkpoint folder without state.json."""
    from pslsched.app.sweeps import load_grid
    from pslsched.app.sweeps.runner import run_point

    grid = load_grid(write(tmp_path, {**TRAIN_GRID, "base": {**TRAIN_GRID["base"], "rounds": 2}}))
    point = grid.points()[0]
    work = tmp_path / "work" / point.id
    assert run_point("train", point.options, point.run_seed, str(tmp_path / "whole"))["status"] == "ok"
    first = run_point("train", point.options, point.run_seed, str(work))
    (work / "train" / "checkpoint").mkdir(exist_ok=True)
    (work / "train" / "checkpoint" / "model-1.pt").write_bytes(b"half written")
    for name in ("state.json", "model-2.pt"):
        (work / "train" / "checkpoint" / name).unlink(missing_ok=True)
    again = run_point("train", point.options, point.run_seed, str(work))
    assert again["status"] == "ok", again
    assert again["metrics"] == first["metrics"] | {"wall_s": again["metrics"]["wall_s"]}


def test_a_grid_is_counted_before_it_is_expanded(tmp_path, capsys):
    axes = {f"testbed.helpers.{i}.memory_mb": list(range(1, 11)) for i in range(9)}
    grid = write(tmp_path, {"command": "solve", "axes": axes})
    start = time.perf_counter()
    refused(
        capsys, ["sweep", str(grid), "--out", str(tmp_path / "o")], "axes", "1,000,000,000 points", "10,000"
    )
    refused(capsys, ["sweep", str(grid), "--out", str(tmp_path / "o"), "--dry-run"], "1,000,000,000 points")
    assert time.perf_counter() - start < 10
    small = write(tmp_path, SOLVE_GRID, "small.yaml")
    refused(capsys, ["sweep", str(small), "--out", str(tmp_path / "o"), "--max-points", "1"], "2 points")
    refused(
        capsys, ["sweep", str(small), "--out", str(tmp_path / "o"), "--max-points", "10000000"], "1,000,000"
    )
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", str(small), "--out", str(tmp_path / "o"), "--max-points", "0"])
    assert exit_.value.code == 2 and "--max-points must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "text",
    [
        "command: solve\naxes:\n  a: &a [1,2,3,4,5,6,7,8,9]\n  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n  d: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
        "command: solve\naxes:\n  solver: &a [*a]\n",
        "command: solve\nbase: &b {solver: greedy}\naxes:\n  seed: [0]\n  x: *b\n",
    ],
    ids=["billion-laughs", "recursive", "alias"],
)
def test_yaml_aliases_are_refused_in_one_line(tmp_path, capsys, text):
    grid = tmp_path / "grid.yaml"
    grid.write_text(text)
    refused(capsys, ["sweep", str(grid), "--out", str(tmp_path / "o")], "YAML alias")
    assert not (tmp_path / "o").exists()


def test_a_huge_grid_file_is_refused(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("command: solve\naxes:\n  seed: [" + ",".join(map(str, range(300_000))) + "]\n")
    refused(capsys, ["sweep", str(grid), "--out", str(tmp_path / "o")], "at most")


@pytest.mark.parametrize("bad", ["garbage", "folder", "missing"])
def test_a_bad_schedule_path_is_found_before_anything_runs(tmp_path, capsys, bad):
    schedule = tmp_path / "s.json"
    if bad == "garbage":
        schedule.write_text("garbage")
    elif bad == "folder":
        schedule.mkdir()
    grid = write(
        tmp_path, {"command": "simulate", "base": {"rounds": 1}, "axes": {"schedule": [str(schedule)]}}
    )
    refused(capsys, ["sweep", str(grid), "--out", str(tmp_path / "o")], "axes.schedule")
    assert not (tmp_path / "o").exists()


def test_a_generate_output_axis_is_refused(tmp_path, capsys):
    axes = {"generate.family": ["tirana1"], "generate.clients": [4], "generate.helpers": [2]}
    grid = write(tmp_path, {"command": "solve", "axes": {**axes, "generate.output": ["x.json"]}})
    refused(capsys, ["sweep", str(grid), "--out", str(tmp_path / "o")], "generate.output")


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sweep")
    grid = write(root, SOLVE_GRID)
    assert main(["sweep", str(grid), "--out", str(root / "out"), "--workers", "1"]) == 0
    return grid, root / "out"


def _copy(out: Path, where: Path) -> Path:
    import shutil

    shutil.copytree(out, where)
    return where


def test_a_damaged_output_folder_is_refused_in_one_line(finished_sweep, tmp_path, capsys, monkeypatch):
    grid, out = finished_sweep
    first = sorted((out / "runs").iterdir())[0]
    a = _copy(out, tmp_path / "a")
    (a / "runs" / first.name).unlink()
    (a / "runs" / first.name).mkdir()
    refused(capsys, ["sweep", str(grid), "--out", str(a)], "is not a file")
    b = _copy(out, tmp_path / "b")
    import shutil

    shutil.rmtree(b / "runs")
    (b / "runs").write_text("")
    refused(capsys, ["sweep", str(grid), "--out", str(b)], "runs' is not a folder")
    c = _copy(out, tmp_path / "c")
    (c / "results.csv").unlink()
    (c / "results.csv").mkdir()
    refused(capsys, ["sweep", str(grid), "--out", str(c)], "results.csv' is a folder")
    d = _copy(out, tmp_path / "d")
    (d / "runs" / first.name).unlink()
    if os.geteuid() != 0:
        (d / "runs").chmod(0o555)
    else:  # root writes anywhere: stand in for the refusal of a folder it cannot write to
        import pslsched.app.sweeps.sweep as sweep

        monkeypatch.setattr(sweep, "temp_name", lambda p: p.parent / "no such folder" / p.name)
    try:
        refused(capsys, ["sweep", str(grid), "--out", str(d)], "cannot write to")
    finally:
        (d / "runs").chmod(0o755)
    assert not (d / "runs" / first.name).exists()  # refused before the point ran


@pytest.mark.parametrize(
    "damage",
    [
        lambda r: {**r, "metrics": "a string"},
        lambda r: [r],
        lambda r: {**r, "status": "weird"},
        lambda r: {k: v for k, v in r.items() if k != "status"},
        lambda r: {**r, "error": {"x": 1}},
    ],
    ids=["metrics-string", "list", "status", "no-status", "error-mapping"],
)
def test_a_damaged_result_file_is_rerun_and_replaced(finished_sweep, tmp_path, capsys, damage):
    grid, out = finished_sweep
    a = _copy(out, tmp_path / "a")
    first = sorted((a / "runs").iterdir())[0]
    first.write_text(json.dumps(damage(json.loads(first.read_text()))))
    assert main(["sweep", str(grid), "--out", str(a), "--workers", "1"]) == 0
    assert "1 run now" in capsys.readouterr().out
    assert json.loads(first.read_text())["status"] == "ok"
    pd.testing.assert_frame_equal(pd.read_csv(a / "results.csv"), pd.read_csv(out / "results.csv"))


def test_two_sweeps_or_a_sweep_and_a_train_on_one_folder_are_refused(finished_sweep, tmp_path, capsys):
    grid, out = finished_sweep
    a = _copy(out, tmp_path / "a")
    with folder_lock(a):
        refused(capsys, ["sweep", str(grid), "--out", str(a)], "in use by another sched run", "pid")
        refused(capsys, ["train", "--cost-only", "--rounds", "1", "--out", str(a)], "in use")
    assert main(["sweep", str(grid), "--out", str(a)]) == 0
