"""A checkpoint that knows its run (issue 24, item 2): the manifest (settings' hash, seed, version, checksums) is
verified by ``--resume``; another run's checkpoint, an edited or damaged file is one line naming what differs (exit
2); a run stopped before its first checkpoint restarts from its settings; a second writer on one folder is refused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pslsched.base.files import folder_lock
from pslsched.cli import main
from pslsched.training.manifest import canonical

RUN = [
    "train",
    "--dataset",
    "synthetic:n=64,test=16",
    "--model",
    "mlp",
    "--batch-size",
    "8",
    "--threads",
    "1",
    "--clients",
    "4",
]
COLUMNS = ["round", "makespan_ms", "round_time_ms", "samples", "train_loss", "test_loss", "test_accuracy"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two finished 2-round runs (seeds 7 and 8) and the seed-7 run's 3-round twin, run once for the module."""
    root = tmp_path_factory.mktemp("runs")
    for name, seed, rounds in (("a", 7, 2), ("b", 8, 2), ("whole", 7, 3)):
        assert main([*RUN, "--seed", str(seed), "--rounds", str(rounds), "--out", str(root / name)]) == 0
    return {name: root / name for name in ("a", "b", "whole")}


def copy(run: Path, where: Path) -> Path:
    shutil.copytree(run, where)
    return where


def refused(capsys, argv: list[str], *needles: str) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("sched: error: "), (code, out, err)
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def rounds_of(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "rounds.csv")[COLUMNS]


def rewrite_state(run: Path, edit, recheck: bool = True) -> None:
    """Edit checkpoint/state.json; with ``recheck`` its checksum is recomputed (so the check behind it is hit)."""
    file = run / "checkpoint" / "state.json"
    state = edit(json.loads(file.read_text()))
    if recheck and isinstance(state, dict):
        state.pop("checksum", None)
        state["checksum"] = hashlib.sha256(canonical(state).encode()).hexdigest()
    file.write_text(json.dumps(state))


def test_a_resume_is_exact_and_says_what_it_did(runs, tmp_path, capsys):
    run = copy(runs["a"], tmp_path / "a")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--rounds", "3"]) == 0
    out = capsys.readouterr().out
    assert "resumed    continued after round 2, to 3 round(s) (--rounds 3)" in out
    pd.testing.assert_frame_equal(rounds_of(run), rounds_of(runs["whole"]))


def test_another_runs_checkpoint_is_refused_naming_the_difference(runs, tmp_path, capsys):
    run = copy(runs["a"], tmp_path / "a")
    shutil.rmtree(run / "checkpoint")
    shutil.copytree(runs["b"] / "checkpoint", run / "checkpoint")
    refused(capsys, ["train", "--resume", str(run), "--rounds", "3"], "another run", "seed", "8", "7")


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda s: s.replace('"lr": 0.01', '"lr": 0.5'), "training.lr"),
        (lambda s: s.replace('"strategy": "splitfed1"', '"strategy": "psl"'), "training.strategy"),
        (lambda s: s.replace('"seed": 7', '"seed": 9'), "seed"),
        (lambda s: s + " ", "settings.json was edited"),
    ],
)
def test_an_edited_settings_json_is_refused_naming_the_field(runs, tmp_path, capsys, edit, needle):
    run = copy(runs["a"], tmp_path / "a")
    file = run / "settings.json"
    text = file.read_text()
    assert edit(text) != text
    file.write_text(edit(text))
    refused(capsys, ["train", "--resume", str(run), "--rounds", "3"], needle)


def _garbage_model(run: Path) -> None:
    (run / "checkpoint" / "model-2.pt").write_bytes(b"not a torch file")


def _garbage_model_with_its_checksum(run: Path) -> None:
    _garbage_model(run)
    digest = hashlib.sha256(b"not a torch file").hexdigest()

    def edit(state):
        state["manifest"]["files"]["checkpoint/model-2.pt"] = digest
        return state

    rewrite_state(run, edit)


def _forge_results(state: dict) -> dict:
    state["results"][1]["orders"][0][0][2] = "x"
    return state


def _settings_without(key: str):
    def edit(run: Path) -> None:
        data = json.loads((run / "settings.json").read_text())
        del data[key]
        (run / "settings.json").write_text(json.dumps(data))

    return edit


CORRUPTIONS = {
    "garbage model": (_garbage_model, "model-2.pt was edited or damaged"),
    "empty model": (lambda r: (r / "checkpoint" / "model-2.pt").write_bytes(b""), "model-2.pt was edited"),
    "missing model": (lambda r: (r / "checkpoint" / "model-2.pt").unlink(), "model-2.pt is missing"),
    "garbage model, checksum fixed": (_garbage_model_with_its_checksum, "model-2.pt does not load"),
    "state a list": (lambda r: rewrite_state(r, lambda s: [s]), "not a mapping"),
    "state garbage": (lambda r: (r / "checkpoint" / "state.json").write_bytes(b"\x00\xff{"), "not readable"),
    "state empty": (lambda r: (r / "checkpoint" / "state.json").write_text(""), "not readable"),
    "no rng": (lambda r: rewrite_state(r, lambda s: {k: v for k, v in s.items() if k != "rng"}), "rng"),
    "bad rng": (lambda r: rewrite_state(r, lambda s: {**s, "rng": {"x": 1}}), "malformed"),
    "rounds_done -2": (lambda r: rewrite_state(r, lambda s: {**s, "rounds_done": -2}), "rounds_done"),
    "rounds_done text": (lambda r: rewrite_state(r, lambda s: {**s, "rounds_done": "2"}), "rounds_done"),
    "model path": (
        lambda r: rewrite_state(r, lambda s: {**s, "model": "../../etc/passwd"}),
        "'../../etc/passwd'",
    ),
    "rounds_done vs results": (
        lambda r: rewrite_state(r, lambda s: {**s, "rounds_done": 1, "model": "model-1.pt"}),
        "rounds_done says 1",
    ),
    "results dropped": (
        lambda r: rewrite_state(r, lambda s: {**s, "results": s["results"][:1]}),
        "results has 1 round(s)",
    ),
    "results malformed": (
        lambda r: rewrite_state(r, lambda s: {**s, "results": [{}, {}]}),
        "results[0].start is not what a run of 4 clients",
    ),
    "results forged": (  # a forger who recomputes the checksum: the stored rounds must still fit the run
        lambda r: rewrite_state(r, lambda s: _forge_results(s)),
        "results[1].orders is not what a run of 4 clients",
    ),
    "state edited": (
        lambda r: rewrite_state(r, lambda s: {**s, "rounds_done": 1}, recheck=False),
        "state.json was edited",
    ),
    "no manifest": (
        lambda r: rewrite_state(r, lambda s: {k: v for k, v in s.items() if k not in ("manifest", "format")}),
        "no manifest",
    ),
    "manifest outside": (
        lambda r: rewrite_state(
            r,
            lambda s: {**s, "manifest": {**s["manifest"], "files": {**s["manifest"]["files"], "../x": "0"}}},
        ),
        "outside the run's folder",
    ),
    "schedule edited": (
        lambda r: (r / "schedule.json").write_text((r / "schedule.json").read_text() + " "),
        "schedule.json was edited",
    ),
    "settings without training": (_settings_without("training"), "no 'training' section"),
    "settings without testbed": (_settings_without("testbed"), "no 'testbed' section"),
    "settings a list": (lambda r: (r / "settings.json").write_text("[]"), "not a mapping"),
    "no settings": (lambda r: (r / "settings.json").unlink(), "no settings.json"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_damaged_checkpoint_is_one_line_never_a_traceback(runs, tmp_path, capsys, name):
    damage, needle = CORRUPTIONS[name]
    run = copy(runs["a"], tmp_path / "a")
    damage(run)
    before = rounds_of(run)
    refused(capsys, ["train", "--resume", str(run), "--rounds", "3"], needle)
    pd.testing.assert_frame_equal(rounds_of(run), before)  # nothing run, nothing rewritten


def test_a_run_stopped_before_its_first_checkpoint_restarts_from_its_settings(runs, tmp_path, capsys):
    run = copy(runs["whole"], tmp_path / "w")
    shutil.rmtree(run / "checkpoint")
    for name in ("rounds.csv", "timeline.csv", "summary.json"):
        (run / name).unlink()
    (run / "checkpoint").mkdir()  # killed between its folder and its first files
    (run / "checkpoint" / "model-1.pt").write_bytes(b"half")
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    assert "no checkpoint yet: restarted from round 0" in capsys.readouterr().out
    pd.testing.assert_frame_equal(rounds_of(run), rounds_of(runs["whole"]))


@pytest.mark.parametrize(
    "extra, flag",
    [
        (["--cost-only"], "--cost-only"),
        (["--seed", "3"], "--seed"),
        (["--dataset", "nosuch"], "--dataset"),
        (["--out", "elsewhere"], "--out"),
        (["--compare-solvers", "greedy"], "--compare-solvers"),
        ([], "has finished its 2 round(s)"),
    ],
)
def test_every_option_given_with_resume_is_refused_or_stated(runs, tmp_path, capsys, extra, flag):
    run = copy(runs["a"], tmp_path / "a")
    refused(capsys, ["train", "--resume", str(run), *extra], flag)
    assert not Path("elsewhere").exists()


def test_a_second_writer_on_one_folder_is_refused(runs, tmp_path, capsys):
    run = copy(runs["a"], tmp_path / "a")
    fresh = tmp_path / "fresh"
    with folder_lock(run):
        refused(capsys, ["train", "--resume", str(run), "--rounds", "3"], "in use by another sched run")
        refused(capsys, [*RUN, "--rounds", "1", "--out", str(run)], "in use by another sched run")
    with folder_lock(fresh):
        refused(capsys, [*RUN, "--rounds", "1", "--out", str(fresh)], "in use")
    assert not fresh.exists()  # the lock's own folder goes when nothing was written
    assert main(["train", "--resume", str(run), "--rounds", "3"]) == 0  # released: the run continues


def test_temp_names_are_unique_per_process_and_call(tmp_path):
    from pslsched.base.files import temp_name, write_atomically

    target = tmp_path / "x.json"
    names = {temp_name(target) for _ in range(100)}
    assert len(names) == 100 and all(str(__import__("os").getpid()) in n.name for n in names)
    with pytest.raises(RuntimeError):
        write_atomically(target, lambda p: (p.write_text("half"), (_ for _ in ()).throw(RuntimeError()))[0])
    assert list(tmp_path.iterdir()) == []  # a failed write leaves no temporary file


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda sim, cfg: (sim, cfg.model_copy(update={"lr": 0.5})), "training.lr"),
        (
            lambda sim, cfg: (sim.model_copy(update={"seed": 9}), cfg),
            "seed: the checkpoint's 4, this run's 9",
        ),
        (lambda sim, cfg: (sim.model_copy(update={"dropout": 0.1}), cfg), "simulation.dropout"),
    ],
)
def test_the_runner_verifies_the_checkpoint_against_the_run_it_is_given(tmp_path, change, needle):
    """Below the command line (``run_training(resume=True)``), the manifest's identity is checked too."""
    from pslsched.base.errors import InputError
    from pslsched.core.testbed import build, parse_testbed
    from pslsched.simulator import SimConfig
    from pslsched.solvers import solve
    from pslsched.training import TrainConfig, run_training

    built = build(
        parse_testbed(
            {
                "name": "tiny",
                "seed": 1,
                "model": {"profile": "resnet101_cifar10"},
                "cuts": {"a": 2, "b": 35},
                "helpers": [{"name": "h", "device": "VM", "memory_mb": 8192}],
                "clients": [{"name": "c", "count": 2, "device": "d1", "uplink_mbps": 10, "latency_ms": 2}],
            }
        )
    )
    schedule = solve(built.instance, "greedy", time_limit=5).schedule
    cfg = TrainConfig(dataset="synthetic:n=32,test=16", model="mlp", batch_size=8)
    sim = SimConfig(rounds=1, seed=4)
    run_training(built.instance, built.workload, schedule, sim, cfg, out=tmp_path)
    sim2, cfg2 = change(sim.model_copy(update={"rounds": 2}), cfg)
    with pytest.raises(InputError, match="another run") as err:
        run_training(built.instance, built.workload, schedule, sim2, cfg2, out=tmp_path, resume=True)
    assert needle in str(err.value)
    resumed = run_training(
        built.instance,
        built.workload,
        schedule,
        sim.model_copy(update={"rounds": 2}),
        cfg,
        out=tmp_path,
        resume=True,
    )
    assert len(resumed.metrics) == 2
