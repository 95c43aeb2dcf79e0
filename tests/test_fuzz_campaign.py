"""The second fuzz campaign (issue 24, item 6): what the first (tests/test_fuzz_cli.py) did not cover.

Kinds of cases, each a seeded random mutation run through ``sched`` in process:

- ``data``: MNIST IDX files, CIFAR-10 binary and python batches, plain and ``.gz``, with bytes flipped, headers
  rewritten (dims up to 2^32 - 1), files truncated or extended, pickles rebuilt with odd shapes, dtypes and labels;
- ``resume``: a finished run's folder with its checkpoint, settings or schedule mutated (JSON edits, byte flips,
  deleted files, another run's checkpoint), then ``--resume``;
- ``sweep``: grid files mutated (odd values, aliases, huge axes, generate and path keys) through ``--dry-run``, and a
  finished sweep's folder damaged, then run again;
- ``options``: train / simulate / codecs / profile options with odd values.

Every case asserts: no traceback (an exception out of ``main`` fails it), an exit code among the documented ones,
exit 2 as one line on stderr; every resume either refused (exit 2) or exact (its rounds equal the uninterrupted
run's), unless the case forged the checksum itself (then only the first two hold).

The campaign runs in one subprocess limited to 6 GB of address space and a timeout, so an input that would take
the machine's memory fails the test instead. ``PSLSCHED_FUZZ_CASES=2000 pytest tests/test_fuzz_campaign.py``
runs a long campaign (default: 40 cases, under a minute); ``python tests/test_fuzz_campaign.py N [SEED]`` runs N
cases directly and prints the counts (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import pickle
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

CASES = int(os.environ.get("PSLSCHED_FUZZ_CASES", "40"))
KINDS = {"data": 3, "resume": 3, "sweep": 2, "options": 3}  # shares of the cases
DOCUMENTED = {0, 1, 2, 3, 4, 5}
ODD = [
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e300",
    "1e-300",
    "abc",
    "",
    "2",
    "0.5",
    "1e9",
    "9" * 25,
    "-0",
    "3,4",
]
JSON_ODD = [None, float("nan"), -1, 0, -2, 1e300, "abc", "", [], {}, 10**20, True, 2.5, "../../etc/passwd"]
RUN = ["--dataset", "synthetic:n=64,test=16", "--model", "mlp", "--batch-size", "8", "--threads", "1"]
RUN += ["--clients", "4"]


def sched(argv: list[str]) -> tuple[int, str, str]:
    """``sched ARGV`` in this process: exit code, stdout, stderr (argparse's exit included)."""
    from pslsched.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's rejection
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def check(code: int, err: str) -> None:
    assert code in DOCUMENTED, f"exit {code}: {err[-500:]}"
    assert "Traceback" not in err, err[-2000:]
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sched"), err[-1000:]


# ------------------------------------------------------------------------------------------------------ data files


def _idx(arr: np.ndarray, magic: int) -> bytes:
    head = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def _flip(rng: random.Random, blob: bytes, at_most: int | None = None) -> bytes:
    if not blob:
        return bytes([rng.randrange(256)])
    data = bytearray(blob)
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(min(len(data), at_most or len(data)))] = rng.randrange(256)
    return bytes(data)


def _mutate_bytes(rng: random.Random, blob: bytes, header: int) -> bytes:
    op = rng.choice(["header", "flip", "truncate", "extend", "dims", "empty"])
    if op == "header":
        return _flip(rng, blob, header)
    if op == "flip":
        return _flip(rng, blob)
    if op == "truncate":
        return blob[: rng.randrange(len(blob) + 1)]
    if op == "extend":
        return blob + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    if op == "dims" and header >= 8:
        k = rng.randrange(4, header - 3, 4) if header > 8 else 4
        value = rng.choice([0, 1, 2**31, 2**32 - 1, 10**6, 3])
        return blob[:k] + value.to_bytes(4, "big") + blob[k + 4 :]
    return b""


def _mnist_files(rng: random.Random) -> dict[str, bytes]:
    train_x = np.random.default_rng(0).integers(0, 256, (6, 4, 4))
    test_x = np.random.default_rng(1).integers(0, 256, (3, 4, 4))
    return {
        "train-images-idx3-ubyte": _idx(train_x, 2051),
        "train-labels-idx1-ubyte": _idx(np.arange(6) % 3, 2049),
        "t10k-images-idx3-ubyte": _idx(test_x, 2051),
        "t10k-labels-idx1-ubyte": _idx(np.arange(3) % 3, 2049),
    }


def _cifar_binary(rng: random.Random) -> dict[str, bytes]:
    records = np.random.default_rng(2).integers(0, 256, (2, 3073)).astype(np.uint8)
    records[:, 0] %= 10
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    return {name: records.tobytes() for name in names}


def _cifar_python(rng: random.Random) -> dict[str, bytes]:
    data: object = np.random.default_rng(3).integers(0, 256, (2, 3072)).astype(np.uint8)
    labels: object = [0, 1]
    op = rng.choice(["none", "shape", "dtype", "labels", "keys", "bytes"])
    if op == "shape":
        data = np.zeros(rng.choice([(2, 3071), (0, 3072), (3072,), (2, 3, 32, 32), (1, 1)]), np.uint8)
    elif op == "dtype":
        data = np.asarray(data).astype(rng.choice([np.float64, np.int64, np.bool_, object]))
    elif op == "labels":
        labels = rng.choice([[0], [255, 1], [-1, 0], ["a", "b"], None, np.array([0, 1]), [0.5, 1]])
    batch = {b"data": data, b"labels": labels}
    if op == "keys":
        batch = rng.choice([{b"data": data}, {"data": data, "labels": labels}, [data, labels], {}])
    blob = pickle.dumps(batch, protocol=rng.choice([2, 4]))
    if op == "bytes":
        blob = _mutate_bytes(rng, blob, 16)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {name: blob for name in names}


def case_data(rng: random.Random, tmp: Path) -> dict:
    kind = rng.choice(["mnist", "cifar-bin", "cifar-py"])
    files = {"mnist": _mnist_files, "cifar-bin": _cifar_binary, "cifar-py": _cifar_python}[kind](rng)
    if kind != "cifar-py" or rng.random() < 0.5:
        for name in rng.sample(sorted(files), rng.randint(1, 2)):
            files[name] = _mutate_bytes(rng, files[name], 16 if kind == "mnist" else 1)
    gz = rng.random() < 0.4
    for name, blob in files.items():
        if gz:
            packed = gzip.compress(blob)
            if rng.random() < 0.3:
                packed = _mutate_bytes(rng, packed, 10)
            (tmp / f"{name}.gz").write_bytes(packed)
        else:
            (tmp / name).write_bytes(blob)
    dataset = "mnist" if kind == "mnist" else "cifar10"
    argv = ["train", "--dataset", dataset, "--data-dir", str(tmp), "--model", "mlp", "--clients", "2"]
    argv += ["--batch-size", "2", "--rounds", "1", "--threads", "1", "--cost-only"]
    code, _, err = sched(argv)
    check(code, err)
    return {"code": code}


# ----------------------------------------------------------------------------------------------- checkpoints/resume

_RUNS: dict[str, Path] = {}


def _runs() -> dict[str, Path]:
    """A finished 2-round run (seed 7), another run (seed 8) and the seed-7 run's 3 rounds, made once."""
    if not _RUNS:
        root = Path(tempfile.mkdtemp(prefix="fuzz-runs-"))
        for name, seed, rounds in (("a", 7, 2), ("b", 8, 2), ("whole", 7, 3)):
            code, _, err = sched(
                ["train", *RUN, "--seed", str(seed), "--rounds", str(rounds), "--out", str(root / name)]
            )
            assert code == 0, err
            _RUNS[name] = root / name
    return _RUNS


def _json_paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _json_paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from _json_paths(v, (*prefix, i))


def _mutate_json(rng: random.Random, obj):
    paths = [p for p in _json_paths(obj) if p]
    if not paths:
        return rng.choice(JSON_ODD)
    path = rng.choice(paths)
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    op = rng.choice(["drop", "value", "value", "unknown"])
    if op == "drop" and isinstance(parent, dict):
        del parent[path[-1]]
    elif op == "unknown" and isinstance(parent, dict):
        parent["zz_unknown"] = 1
    else:
        parent[path[-1]] = rng.choice(JSON_ODD)
    return obj


def _rounds(run: Path) -> list:
    import pandas as pd

    frame = pd.read_csv(run / "rounds.csv").drop(columns=["wall_s"])
    return frame.round(12).astype(str).values.tolist()


def case_resume(rng: random.Random, tmp: Path) -> dict:
    from pslsched.training.manifest import canonical, sha256_text

    runs = _runs()
    run = tmp / "run"
    shutil.copytree(runs["a"], run)
    forged = False
    for _ in range(rng.randint(0, 2)):
        op = rng.choice(
            ["state", "state", "forge", "model", "settings", "schedule", "delete", "other", "trunc"]
        )
        state = run / "checkpoint" / "state.json"
        if op in ("state", "forge") and state.is_file():
            try:
                data = json.loads(state.read_text())
            except ValueError:
                continue
            data = _mutate_json(rng, data)
            if op == "forge" and isinstance(data, dict):  # a forger who recomputes the checksum
                data.pop("checksum", None)
                data["checksum"] = sha256_text(canonical(data))
                forged = True
            state.write_text(json.dumps(data))
        elif op == "model":
            for model in (run / "checkpoint").glob("model-*.pt"):
                model.write_bytes(_mutate_bytes(rng, model.read_bytes(), 64))
        elif op in ("settings", "schedule"):
            file = run / f"{op}.json"
            if file.is_file():
                with contextlib.suppress(ValueError):
                    file.write_text(json.dumps(_mutate_json(rng, json.loads(file.read_text()))))
        elif op == "delete":
            files = [p for p in run.rglob("*") if p.is_file()]
            rng.choice(files).unlink()
        elif op == "other" and (run / "checkpoint").is_dir():
            shutil.rmtree(run / "checkpoint")
            shutil.copytree(runs["b"] / "checkpoint", run / "checkpoint")
        elif op == "trunc":
            file = rng.choice([p for p in run.rglob("*.json")])
            file.write_bytes(file.read_bytes()[: rng.randrange(file.stat().st_size + 1)])
    code, _, err = sched(["train", "--resume", str(run), "--rounds", "3"])
    check(code, err)
    exact = None
    if code in (0, 5) and not forged:
        exact = _rounds(run) == _rounds(runs["whole"])
        assert exact, "a resume that was neither refused nor exact"
    return {"code": code, "exact": exact, "forged": forged}


# ----------------------------------------------------------------------------------------------------------- sweeps

BASE_GRID = {
    "command": "simulate",
    "seed": 3,
    "base": {"rounds": 1, "solver": "greedy", "links": "dedicated"},
    "axes": {
        "policy": ["static", "fcfs"],
        "testbed.helpers.laptop.memory_mb": [1024, 2048],
        "stragglers": ["none", "client:lognormal:sigma=0.2"],
        "seed": [0, 1],
    },
}
_SWEEP: dict[str, Path] = {}


def _finished_sweep() -> tuple[Path, Path]:
    if not _SWEEP:
        root = Path(tempfile.mkdtemp(prefix="fuzz-sweep-"))
        grid = root / "grid.yaml"
        grid.write_text(
            json.dumps({"command": "solve", "base": {"solver": "greedy"}, "axes": {"seed": [0, 1]}})
        )
        code, _, err = sched(["sweep", str(grid), "--out", str(root / "out"), "--workers", "1"])
        assert code == 0, err
        _SWEEP.update(grid=grid, out=root / "out")
    return _SWEEP["grid"], _SWEEP["out"]


def _grid_text(rng: random.Random, tmp: Path) -> str:
    import yaml

    data = json.loads(json.dumps(BASE_GRID))
    data["command"] = rng.choice(["solve", "simulate", "train"])
    op = rng.choice(["json", "json", "alias", "huge", "generate", "path", "text"])
    if op == "json":
        data = _mutate_json(rng, data)
    elif op == "huge":
        data["axes"] = {
            f"testbed.helpers.{i}.memory_mb": list(range(1, rng.choice([2, 11, 40]))) for i in range(6)
        }
    elif op == "generate":
        data["axes"] = {"generate.family": ["tirana1"], "generate.clients": [4], "generate.helpers": [2]}
        data["axes"][rng.choice(["generate.output", "generate.seed", "generate.clients", "generate.zz"])] = [
            rng.choice(JSON_ODD[1:])
        ]
        data["base"] = {}
    elif op == "path":
        bad = tmp / "bad.json"
        bad.write_text(rng.choice(["", "garbage", "[]", "{}"]))
        key = rng.choice(["schedule", "instance", "profile", "data_dir"])
        data["axes"][key] = [rng.choice([str(bad), str(tmp), str(tmp / "missing")])]
    text = yaml.safe_dump(data, allow_unicode=True)
    if op == "alias":
        text = (
            "command: solve\naxes:\n  a: &a [1, 2]\n  b: " + rng.choice(["*a", "[*a, *a]", "&b [*b]"]) + "\n"
        )
    elif op == "text":
        text = _flip(rng, text.encode()).decode("latin-1")
    return text


def case_sweep(rng: random.Random, tmp: Path) -> dict:
    if rng.random() < 0.7:
        grid = tmp / "grid.yaml"
        grid.write_text(_grid_text(rng, tmp), encoding="latin-1")
        out = tmp / "out"
        code, _, err = sched(["sweep", str(grid), "--out", str(out), "--dry-run"])
        check(code, err)
        assert code in (0, 2) and not out.exists(), (code, err)
        return {"code": code}
    grid, finished = _finished_sweep()
    out = tmp / "out"
    shutil.copytree(finished, out)
    target = rng.choice(sorted(p for p in out.rglob("*") if ".sched.lock" not in p.name))
    op = rng.choice(["folder", "file", "json", "garbage", "delete"])
    rerun = target.parent.name == "runs" and op != "folder"
    if rerun and rng.random() < 0.8:  # a rerun starts a worker pool (seconds): keep those few
        op = "none"
    if op == "folder" and target.is_file():
        target.unlink()
        target.mkdir()
    elif op == "file" and target.is_dir():
        shutil.rmtree(target)
        target.write_text("")
    elif op == "json" and target.suffix == ".json":
        with contextlib.suppress(ValueError):
            target.write_text(json.dumps(_mutate_json(rng, json.loads(target.read_text()))))
    elif op == "garbage" and target.is_file():
        target.write_bytes(_flip(rng, target.read_bytes()))
    elif op == "delete" and target.is_file():
        target.unlink()
    code, _, err = sched(["sweep", str(grid), "--out", str(out), "--workers", "1"])
    check(code, err)
    assert code in (0, 1, 2), (code, err)
    return {"code": code}


# ---------------------------------------------------------------------------------------------------------- options

OPTIONS = {
    "train": [
        "--lr",
        "--batch-size",
        "--batches-per-round",
        "--global-batch",
        "--steps-per-round",
        "--eval-every",
        "--profile-batch",
        "--speed",
        "--dropout",
        "--round-timeout",
        "--seed",
        "--momentum",
        "--target-accuracy",
        "--clients",
        "--threads",
    ],
    "simulate": [
        "--rounds",
        "--dropout",
        "--round-timeout",
        "--seed",
        "--batches",
        "--clients",
        "--time-limit",
    ],
}
SPECS = {
    "--sampler": ["lds:tilt={}", "ugs", "fls", "lds:c={}", "nosuch"],
    "--stragglers": [
        "client:slow:p={},factor=5",
        "client:lognormal:sigma={}",
        "helper:pareto:alpha={}",
        "heavy",
    ],
    "--strategy": ["psl", "sglr:p={}", "splitfed2:order={}", "locfedmix:mix={}", "splitfed1:batched={}"],
    "--partition": ["dirichlet:{}", "classes:{}", "quantity:{}", "iid"],
    "--codec": ["quant:bits={}", "topk:r={}", "ms:r={},bits=2", "randtopk:r=0.1,alpha={}", "fp16"],
    "--cuts": ["{}", "1,{}", "{},5"],
    "--device": ["{}", "meta", "cuda:{}"],
    "--clock": ["measured", "profile"],
    "--policy": ["static", "fcfs", "replan", "{}"],
}


def _value(rng: random.Random) -> str:
    return rng.choice(ODD)


def case_options(rng: random.Random, tmp: Path) -> dict:
    command = rng.choice(["train", "train", "simulate", "codecs", "profile"])
    if command == "codecs":
        argv = ["codecs", "--samples", "16", "--warmup-steps", "0"]
        flag = rng.choice(["--budget", "--samples", "--cut", "--codec", "--seed", "--warmup-steps"])
        spec = rng.choice(SPECS["--codec"]) if flag == "--codec" else "{}"
        argv += [flag, spec.format(_value(rng))]
    elif command == "profile":
        argv = rng.choice(
            [
                ["profile", "show", rng.choice(["resnet101_mnist", "/etc/passwd", str(tmp), _value(rng)])],
                ["profile", "measure", "--model", "mlp", "--input-shape", rng.choice(["1,4,4", _value(rng)])]
                + ["--batch", rng.choice(["2", _value(rng)]), "--repeats", "1", "-o", str(tmp / "p.csv")],
            ]
        )
    else:
        argv = [command, "--rounds", "1"]
        argv += [*RUN, "--cost-only"] if command == "train" and rng.random() < 0.7 else []
        argv += RUN if command == "train" and "--cost-only" not in argv else []
        argv += ["--solver", "greedy", "--time-limit", "1"] if command == "simulate" else []
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.5:
                flag = rng.choice(
                    list(SPECS if command == "train" else ["--stragglers", "--policy", "--codec"])
                )
                argv += [flag, rng.choice(SPECS[flag]).format(_value(rng))]
            else:
                argv += [rng.choice(OPTIONS[command]), _value(rng)]
    code, _, err = sched(argv)
    check(code, err)
    return {"code": code}


CASE = {"data": case_data, "resume": case_resume, "sweep": case_sweep, "options": case_options}


def campaign(cases: int, seed: int = 0) -> dict:
    """Run ``cases`` cases (split over the kinds by their shares); the counts per kind and exit code, failures."""
    total = sum(KINDS.values())
    plan = [kind for kind, share in KINDS.items() for _ in range(max(1, round(cases * share / total)))]
    report: dict = {"cases": 0, "by_kind": {}, "codes": {}, "failures": [], "exact_resumes": 0}
    start = time.perf_counter()
    for i, kind in enumerate(plan):
        rng = random.Random(f"{seed}-{kind}-{i}")
        with tempfile.TemporaryDirectory(prefix=f"fuzz-{kind}-") as tmp:
            try:
                outcome = CASE[kind](rng, Path(tmp))
            except BaseException as exc:  # noqa: BLE001 - a case's failure is recorded with its traceback
                if isinstance(exc, KeyboardInterrupt):
                    raise
                report["failures"].append({"kind": kind, "case": i, "error": traceback.format_exc()[-3000:]})
                continue
        report["cases"] += 1
        if os.environ.get("PSLSCHED_FUZZ_VERBOSE"):
            print(
                f"{i} {kind} exit {outcome['code']} at {time.perf_counter() - start:.1f} s", file=sys.stderr
            )
        report["by_kind"][kind] = report["by_kind"].get(kind, 0) + 1
        report["codes"][str(outcome["code"])] = report["codes"].get(str(outcome["code"]), 0) + 1
        report["exact_resumes"] += bool(outcome.get("exact"))
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


def test_fuzz_campaign():
    """The campaign in a subprocess limited to 6 GB and a timeout: no traceback, documented codes, resumes exact
    or refused."""
    done = subprocess.run(
        [sys.executable, __file__, str(CASES)],
        capture_output=True,
        text=True,
        timeout=max(600, 2 * CASES),
        preexec_fn=_limit,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PSLSCHED_CAP": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failures"] == [], report["failures"][:3]
    assert report["cases"] >= CASES * 0.9 and set(report["by_kind"]) == set(KINDS), report


@pytest.mark.parametrize(
    "argv, needle",
    [
        (
            ["codecs", "--warmup-steps", "9" * 25],
            "--warmup-steps: must be in [0, 100,000]",
        ),  # trained ~forever
        (["codecs", "--seed", "9" * 25], "--seed: must be a whole number in [0, 2^63)"),  # torch's ValueError
        (["train", *RUN, "--batch-size", "9" * 25], "--batch-size"),  # OverflowError in the round plan
        (["train", *RUN, "--steps-per-round", "99999", "--sampler", "ugs"], "--steps-per-round"),
        (
            ["profile", "measure", "--model", "mlp", "--batch", "9" * 19, "-o", "p.csv"],
            "--batch",
        ),  # TypeError
        (["profile", "measure", "--model", "mlp", "--input-shape", "3,9999,9999", "-o", "p.csv"], "~"),
    ],
)
def test_found_by_the_campaign(argv, needle):
    """Inputs the campaign found (a traceback or a practically endless run); now one line, exit 2."""
    code, out, err = sched(argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not Path("p.csv").exists()


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    result = campaign(
        int(sys.argv[1]) if len(sys.argv) > 1 else CASES, int(sys.argv[2]) if len(sys.argv) > 2 else 0
    )
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps(result))
