"""One point of a sweep: its options become the command's own arguments, checked and run in this process.

The command's parser and its ``prepare``/``measure`` functions do the work, so a point accepts and rejects exactly
what ``sched solve|simulate|train`` would. ``testbed.*`` options write the edited testbed, ``generate.*`` options
generate the instance, both into the point's work folder.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shutil
import socket
import time
import traceback
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pslsched.base.errors import InputError

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


@cache
def command_parser(command: str) -> argparse.ArgumentParser:
    """The argparse parser of ``sched COMMAND``."""
    from pslsched.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def option_actions(command: str) -> dict[str, argparse.Action]:
    """The command's options by name (argparse ``dest``), without the ones a point cannot take."""
    return {
        a.dest: a
        for a in command_parser(command)._actions
        if a.option_strings and a.dest not in FORBIDDEN and a.dest != "seed"
    }


def check_keys(command: str, keys: list[str], where: dict[str, str]) -> None:
    """Every key names an option of the command, a testbed path or a generate option (``where``: key -> label)."""
    actions = option_actions(command)
    given = [k[len(GENERATE_PREFIX) :] for k in keys if k.startswith(GENERATE_PREFIX)]
    if given:
        required = [a.dest for a in generate_actions().values() if a.required and a.dest != "output"]
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
            if key[len(GENERATE_PREFIX) :] not in generate_actions():
                raise InputError(
                    label,
                    f"not an option of sched generate (options: {', '.join(sorted(generate_actions()))})",
                )
            if "instance" in keys or "profile" in keys:
                raise InputError(label, "a generated instance replaces profile/instance; give one source")
            continue
        if key in FORBIDDEN:
            raise InputError(label, f"not a sweep option: {FORBIDDEN[key]}")
        if key not in actions:
            known = ", ".join(sorted(actions))
            raise InputError(label, f"not an option of sched {command} (options: {known}; or testbed.PATH)")


@cache
def generate_actions() -> dict[str, argparse.Action]:
    return {a.dest: a for a in command_parser("generate")._actions if a.option_strings and a.dest != "help"}


def _flag(action: argparse.Action) -> str:
    return max(action.option_strings, key=len)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={_text(v)}" for k, v in value.items())
    return str(value)


def _argv(
    actions: dict[str, argparse.Action], options: dict[str, Any], flag_names: dict[str, str]
) -> list[str]:
    argv = []
    for key, value in options.items():
        action = actions[key]
        flag = _flag(action)
        flag_names[flag] = key
        if action.nargs == 0:  # a switch: true turns it on
            if not isinstance(value, bool):
                raise InputError(key, f"is a switch: true or false, got {value!r}")
            if value:
                argv.append(flag)
        elif value is not None:
            argv += [flag, _text(value)]
    return argv


def _parse(
    parser: argparse.ArgumentParser, argv: list[str], flag_names: dict[str, str]
) -> argparse.Namespace:
    """Parse like the command line; a rejected value becomes an InputError naming the option."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_args(argv)
    except SystemExit:
        line = (err.getvalue().strip().splitlines() or ["invalid options"])[-1]
        message = line.split("error: ", 1)[-1]
        m = re.match(r"argument ([^:]+): (.*)", message)
        if m:
            flag = m.group(1).split("/")[-1]
            raise InputError(flag_names.get(flag, flag), m.group(2)) from None
        raise InputError("options", message) from None


def build_args(command: str, options: dict[str, Any], run_seed: int, workdir: Path) -> argparse.Namespace:
    """The command's parsed arguments for one point; the edited testbed or generated instance goes to workdir."""
    options = dict(options)
    testbed = {
        k[len(TESTBED_PREFIX) :]: options.pop(k) for k in list(options) if k.startswith(TESTBED_PREFIX)
    }
    generate = {
        k[len(GENERATE_PREFIX) :]: options.pop(k) for k in list(options) if k.startswith(GENERATE_PREFIX)
    }
    actions = option_actions(command)
    if command == "train" and options.get("threads") is None:
        options["threads"] = 1  # torch's default (all cores) would make results depend on the machine
    workdir.mkdir(parents=True, exist_ok=True)
    if testbed:
        options["profile"] = str(_edited_testbed(options.get("profile"), testbed, workdir))
    if generate:
        options["instance"] = str(_generated_instance(generate, workdir))
    names: dict[str, str] = {}
    argv = _argv(actions, options, names) + ["--seed", str(run_seed)]
    return _parse(command_parser(command), argv, names)


def point_argv(command: str, options: dict[str, Any], run_seed: int, workdir: Path) -> list[str]:
    """The ``sched`` command line that runs one point on its own (what a shell loop would run)."""
    args = build_args(command, options, run_seed, workdir)
    argv = [command]
    for key, action in option_actions(command).items():
        value = getattr(args, key, None)
        if value is None or value is False or value == action.default:
            continue
        argv += [_flag(action)] if action.nargs == 0 else [_flag(action), _text(value)]
    return argv + ["--seed", str(run_seed)]


def _edited_testbed(profile: str | None, overrides: dict[str, Any], workdir: Path) -> Path:
    from pslsched.cli.sweeps.overrides import apply_overrides
    from pslsched.core.testbed import default_testbed_path, parse_testbed, read_yaml

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
    from pslsched.cli import generate

    out = workdir / "instance.json"
    actions = {k: v for k, v in generate_actions().items() if k != "output"}
    names: dict[str, str] = {}
    argv = _argv(actions, options, names) + ["--output", str(out)]
    names = {flag: f"generate.{key}" for flag, key in names.items()}
    args = _parse(command_parser("generate"), argv, names)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            generate.run(args)
    except InputError as exc:
        flag = exc.field
        label = names.get(flag) or names.get(f"--{flag}") or f"generate: {flag}"
        raise InputError(label, str(exc).split(": ", 1)[-1]) from None
    return out


def _module(command: str):
    from pslsched.cli import simulate, solve, train

    return {"solve": solve, "simulate": simulate, "train": train}[command]


def check_point(command: str, options: dict[str, Any], run_seed: int, workdir: Path) -> None:
    """Everything the command checks before it computes (InputError on a bad value); nothing is run."""
    with contextlib.redirect_stdout(io.StringIO()):
        args = build_args(command, options, run_seed, workdir)
        _module(command).prepare(args)


def run_point(command: str, options: dict[str, Any], run_seed: int, workdir: str) -> dict:
    """Run one point; never raises: a failure is returned with its error. Output goes to workdir/log.txt."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    outcome: dict[str, Any] = {"host": socket.gethostname()}
    with open(work / "log.txt", "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            args = build_args(command, options, run_seed, work)
            metrics = _module(command).measure(args, work)
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
    from pslsched.solvers.cpsat_client import DEFAULT_WORKERS

    workers = options.get("workers")
    if not _whole(workers):
        solver = options.get("solver")
        if solver is None:
            from pslsched.cli.solve import default_solver

            solver = default_solver() if command == "solve" else "greedy"
        workers = DEFAULT_WORKERS if solver in THREADED_SOLVERS else 1
    threads = options.get("threads") if command == "train" else 1
    return max(1, workers, threads if _whole(threads) else 1)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def write_json_atomic(path: Path, data: dict) -> None:
    """Write via a temporary file and rename: a reader sees the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{id(data)}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_jsonable) + "\n")
    tmp.replace(path)


def _jsonable(value: Any):
    if hasattr(value, "item"):
        return value.item()
    return str(value)
