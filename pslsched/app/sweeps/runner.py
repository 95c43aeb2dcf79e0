"""One point of a sweep: its options become the command's request, checked and run in this process.

A point is an application call: its options build the same typed request (``pslsched.app.requests``) that the
command line builds, and the same use-case runs it, so a point accepts and rejects exactly what ``sched
solve|simulate|train`` would. ``testbed.*`` options write the edited testbed, ``generate.*`` options generate the
instance, both into the point's work folder.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

from pslsched.app.generating import generate_to
from pslsched.app.requests import (
    GenerateRequest,
    Request,
    SimulateRequest,
    SolveRequest,
    TrainRequest,
    as_text,
    field_of,
    flag_of,
)
from pslsched.app.simulating import check_simulate, simulate
from pslsched.app.solving import check_solve, default_solver, solve
from pslsched.app.sweeps.overrides import apply_overrides
from pslsched.base import strict_json
from pslsched.base.errors import InputError
from pslsched.base.files import write_text_atomically
from pslsched.core.result import SolveResult
from pslsched.core.schedule import read_schedule
from pslsched.core.testbed import default_testbed_path, parse_testbed, read_yaml
from pslsched.solvers.cpsat_client import DEFAULT_WORKERS

# options a point cannot take: the sweep owns the output, the seed and the progress display
FORBIDDEN = {
    "out": "the sweep writes each point's results under DIR/runs",
    "resume": "an interrupted sweep resumes by itself",
    "list": "not a run",
    "compare_solvers": "make solver an axis instead",
    "compare_policies": "make policy an axis instead",
    "progress": "the sweep shows its own progress",
    "help": "not a run",
}
PATH_OPTIONS = ("profile", "instance", "schedule", "data_dir")
GENERATE_PREFIX, TESTBED_PREFIX = "generate.", "testbed."
REQUESTS: dict[str, type[Request]] = {
    "solve": SolveRequest,
    "simulate": SimulateRequest,
    "train": TrainRequest,
}


def option_names(command: str) -> list[str]:
    """The options a point of ``command`` can set (its request's fields, the seed aside)."""
    return [k for k in REQUESTS[command].model_fields if k != "seed"]


def generate_options() -> list[str]:
    return list(GenerateRequest.model_fields)


def check_keys(command: str, keys: list[str], where: dict[str, str]) -> None:
    """Every key names an option of the command, a testbed path or a generate option (``where``: key -> label)."""
    options = option_names(command)
    given = [k[len(GENERATE_PREFIX) :] for k in keys if k.startswith(GENERATE_PREFIX)]
    if given:
        required = [k for k, f in GenerateRequest.model_fields.items() if f.is_required()]
        missing = [f"{GENERATE_PREFIX}{k}" for k in required if k not in given]
        if missing:
            raise InputError("generate", f"a generated instance needs {', '.join(missing)} too")
    for key in keys:
        label = where.get(key, key)
        if key == "seed":  # a replicate: the run's seed is derived from it
            continue
        if key.startswith(TESTBED_PREFIX):
            if "instance" in keys or any(k.startswith(GENERATE_PREFIX) for k in keys):
                raise InputError(label, "testbed keys need a testbed (profile), not an instance")
            continue
        if key.startswith(GENERATE_PREFIX):
            if key[len(GENERATE_PREFIX) :] not in generate_options():
                raise InputError(
                    label,
                    f"not an option of sched generate (options: {', '.join(sorted(generate_options()))})",
                )
            if "instance" in keys or "profile" in keys:
                raise InputError(label, "a generated instance replaces profile/instance; give one source")
            continue
        if key in FORBIDDEN:
            raise InputError(label, f"not a sweep option: {FORBIDDEN[key]}")
        if key not in options:
            known = ", ".join(sorted(options))
            raise InputError(label, f"not an option of sched {command} (options: {known}; or testbed.PATH)")


def build_request(command: str, options: dict[str, Any], run_seed: int, workdir: Path) -> Request:
    """The command's request for one point; the edited testbed or generated instance goes to workdir."""
    options = dict(options)
    testbed = {
        k[len(TESTBED_PREFIX) :]: options.pop(k) for k in list(options) if k.startswith(TESTBED_PREFIX)
    }
    generate = {
        k[len(GENERATE_PREFIX) :]: options.pop(k) for k in list(options) if k.startswith(GENERATE_PREFIX)
    }
    if command == "train" and options.get("threads") is None:
        options["threads"] = 1  # torch's default (all cores) would make results depend on the machine
    workdir.mkdir(parents=True, exist_ok=True)
    if testbed:
        options["profile"] = str(_edited_testbed(options.get("profile"), testbed, workdir))
    if generate:
        options["instance"] = str(_generated_instance(generate, workdir))
    return REQUESTS[command].from_options({**options, "seed": run_seed})


def point_argv(command: str, options: dict[str, Any], run_seed: int, workdir: Path) -> list[str]:
    """The ``sched`` command line that runs one point on its own (what a shell loop would run)."""
    request = build_request(command, options, run_seed, workdir)
    argv = [command]
    for key, value in request.options().items():
        if key == "seed":
            continue
        argv += [flag_of(key)] if value is True else [flag_of(key), as_text(value)]
    return argv + ["--seed", str(run_seed)]


def _edited_testbed(profile: str | None, overrides: dict[str, Any], workdir: Path) -> Path:
    path = Path(profile) if profile else default_testbed_path()
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InputError("profile", f"{str(path)!r} is not a testbed mapping")
    edited = apply_overrides(data, overrides)
    parse_testbed(edited, source="testbed")  # errors name the key in the edited testbed
    out = workdir / "testbed.yaml"
    out.write_text(yaml.safe_dump(edited, sort_keys=False))
    return out


def _generated_instance(options: dict[str, Any], workdir: Path) -> Path:
    out = workdir / "instance.json"
    try:
        generate_to(GenerateRequest.from_options(options), out)
    except InputError as exc:
        key = field_of(exc.field)
        label = f"{GENERATE_PREFIX}{key}" if key in options or key in generate_options() else exc.field
        raise InputError(label, str(exc).split(": ", 1)[-1]) from None
    return out


def check_point(command: str, options: dict[str, Any], run_seed: int, workdir: Path) -> None:
    """Everything the command checks before it computes (InputError on a bad value); nothing is run."""
    request = build_request(command, options, run_seed, workdir)
    schedule = getattr(request, "schedule", None)
    if schedule:  # read now, not when the point runs
        try:
            read_schedule(schedule)
        except InputError as exc:
            raise InputError("schedule", str(exc)) from None
    if command == "solve":
        check_solve(request)
    elif command == "simulate":
        check_simulate(request)
    else:
        from pslsched.app.training import check_train  # torch & co.: only where a point trains

        check_train(request)


def measure(command: str, request: Request, workdir: Path) -> dict:
    """One point's numbers: the use-case run and its outcome's metrics (RuntimeError when it has none)."""
    if command == "solve":
        return solve(request).metrics()
    if command == "simulate":
        outcome = simulate(request)
        if isinstance(outcome, SolveResult):
            raise RuntimeError(f"no schedule to simulate: {outcome.status} ({outcome.message})")
        return outcome.metrics()
    from pslsched.app.training import train  # torch & co.: only where a point trains

    outcome = train(request, workdir / "train", continue_existing=True)
    if isinstance(outcome, SolveResult):
        raise RuntimeError(f"no schedule to train with: {outcome.status} ({outcome.message})")
    return outcome.metrics()


def run_point(command: str, options: dict[str, Any], run_seed: int, workdir: str) -> dict:
    """Run one point; never raises: a failure is returned with its error. Output goes to workdir/log.txt."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    outcome: dict[str, Any] = {"host": socket.gethostname()}
    with open(work / "log.txt", "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            metrics = measure(command, build_request(command, options, run_seed, work), work)
            outcome["status"] = "ok"
            outcome["series"] = metrics.pop("series", None)
            outcome["metrics"] = metrics
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a failing point is recorded; the sweep goes on
            traceback.print_exc(file=log)
            outcome["status"] = "failed"
            outcome["error"] = _one_line(exc)
    outcome["wall_s"] = time.perf_counter() - start
    if outcome["status"] == "ok":
        _tidy(work)
    return outcome


def _tidy(work: Path) -> None:
    """After a finished point: drop what only an interrupted one needs (checkpoints) and an empty log."""
    shutil.rmtree(work / "train" / "checkpoint", ignore_errors=True)
    log = work / "log.txt"
    if log.is_file() and log.stat().st_size == 0:
        log.unlink()
    if not any(work.iterdir()):
        work.rmdir()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    if isinstance(exc, (InputError, RuntimeError)) and text:
        return text[0]
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# solvers whose CP-SAT runs ``workers`` threads (default DEFAULT_WORKERS); lns's neighbourhoods use one
THREADED_SOLVERS = ("auto", "cpsat", "benders")


def cpus_per_point(command: str, options: dict[str, Any]) -> int:
    """CPUs one point keeps busy: its CP-SAT threads (``workers``, default 8 for auto/cpsat/benders) or its torch
    threads (train); at least 1."""
    workers = options.get("workers")
    if not _whole(workers):
        solver = options.get("solver")
        if solver is None:
            solver = default_solver() if command == "solve" else "greedy"
        workers = DEFAULT_WORKERS if solver in THREADED_SOLVERS else 1
    threads = options.get("threads") if command == "train" else 1
    return max(1, workers, threads if _whole(threads) else 1)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def write_json_atomic(path: Path, data: dict) -> None:
    """Write via a temporary file unique to this process and rename: a reader sees the old file or the whole
    new one (strict JSON: a non-finite number is null)."""
    write_text_atomically(path, strict_json.dumps(data, indent=1, default=_jsonable) + "\n")


def _jsonable(value: Any):
    if hasattr(value, "item"):
        return value.item()
    return str(value)
