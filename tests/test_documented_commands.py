"""Every ``sched ...`` line of README.md and docs/*.md runs as written (a doc example that fails is a failing test).

The commands of each fenced block run in order, one page per workspace (a copy of the bundled profiles and sweeps,
so a command that writes into ``pslsched/profiles/`` writes into the copy), as a user would paste them. They run
with ``PSLSCHED_CAP`` set (README, "Quick runs"): rounds, solver time limits and measuring repeats are capped there,
never by editing the line. A line is expected to exit 0 unless its comment promises another code ("exit N").
Lines that need what a test machine cannot have (a running Ray cluster, Ray itself when it is not installed) are
skipped with the reason. ``python tests/test_documented_commands.py`` lists every command with its time.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_BLOCKS = ("", "bash", "sh", "shell", "console")
CAP = "rounds=2,time_limit=1,repeats=2"
SCHED = [sys.executable, "-P", "-c", "import sys; from pslsched.cli import main; sys.exit(main())"]


def commands(page: Path) -> list[tuple[int, str, str]]:
    """(line number, command, comment) of every ``sched`` line in the page's shell blocks (continuations joined;
    a ```text block holds a synopsis, not a command)."""
    out: list[tuple[int, str, str]] = []
    fenced, shell, pending, start = False, False, "", 0
    for n, line in enumerate(page.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced, pending = not fenced, ""
            shell = fenced and line.strip()[3:].strip() in SHELL_BLOCKS
            continue
        if not shell:
            continue
        text = line.strip()
        if pending:
            text = pending + " " + text
        elif not re.match(r"^(\$ )?(\.venv/bin/)?sched( |$)", text):
            continue
        else:
            start = n
        if text.endswith("\\"):
            pending = text[:-1].rstrip()
            continue
        pending = ""
        command, _, comment = text.partition(" # ")
        command = re.sub(r"^(\$ )?(\.venv/bin/)?", "", command).strip()
        out.append((start, command, comment.strip()))
    return out


def expected_code(comment: str) -> int:
    """The exit code a line's comment promises ("exit 2: ..."), else 0."""
    found = re.match(r"\(?exits? (\d)\b", comment)
    return int(found.group(1)) if found else 0


def skip_reason(command: str) -> str | None:
    if "--address" in command:
        return "needs a running Ray cluster"
    if "--backend ray" in command and importlib.util.find_spec("ray") is None:
        return "Ray is not installed (the cluster extra)"
    return None


def workspace(tmp: Path, page: Path) -> Path:
    """A folder with what the documented commands read: the bundled profiles (a copy, where the page names them),
    the sweeps and a user's workbook."""
    if "pslsched/profiles" in " ".join(c for _, c, _ in commands(page)):
        shutil.copytree(ROOT / "pslsched" / "profiles", tmp / "pslsched" / "profiles")
    shutil.copytree(ROOT / "sweeps", tmp / "sweeps")
    import openpyxl

    book = openpyxl.Workbook()  # the anchor's layout: a sheet per device (fwd, bwd, update ms), then memory
    book.active.title = "VM"
    for row in [(1.0, 2.0, 0.5), (3.0, 4.0, 0.0)]:
        book.active.append(row)
    memory = book.create_sheet("memory")
    for row in [(100.0, 10.0), (50.0, 20.0)]:
        memory.append(row)
    book.save(tmp / "anchor.xlsx")
    return tmp


def run(command: str, cwd: Path, timeout: float = 600) -> tuple[int, str, float]:
    # PYTHONSAFEPATH: no process (Ray's workers included) puts the workspace on sys.path, where its copy of
    # pslsched/profiles would shadow the package as a namespace package
    env = {
        **os.environ,
        "PSLSCHED_CAP": CAP,
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "PYTHONSAFEPATH": "1",
    }
    t0 = time.perf_counter()
    done = subprocess.run(
        SCHED + shlex.split(command)[1:],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, (done.stderr or done.stdout).strip()[-600:], time.perf_counter() - t0


def test_the_pages_have_commands():
    found = {page.name: len(commands(page)) for page in PAGES}
    assert found["README.md"] >= 20 and sum(found.values()) >= 50, found
    line, command, comment = commands(ROOT / "README.md")[0]
    assert command.startswith("sched ") and "#" not in command


def page_failures(page: Path, tmp: Path) -> list[str]:
    """Every command of ``page`` that did not exit as its text promises, run in order in a fresh workspace."""
    cwd = workspace(tmp, page)
    failures = []
    for line, command, comment in commands(page):
        if skip_reason(command):
            continue
        code, tail, _ = run(command, cwd)
        if code != expected_code(comment):
            failures.append(
                f"{page.name}:{line}: `{command}` exited {code} (expected {expected_code(comment)}):\n{tail}"
            )
    return failures


RUN_PAGES = [p for p in PAGES if commands(p)]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, list[str]]:
    """Every page's failures; the pages run two at a time (each page's commands in order), halving the wall time
    on two cores."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {p.name: pool.submit(page_failures, p, tmp_path_factory.mktemp(p.stem)) for p in RUN_PAGES}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda p: p.name)
def test_every_documented_command_runs(page, outcomes):
    failures = outcomes[page.name]
    assert not failures, "\n\n".join(failures)


if __name__ == "__main__":  # every command, its exit code and its time
    import tempfile

    for page in PAGES:
        with tempfile.TemporaryDirectory() as tmp:
            cwd = workspace(Path(tmp), page)
            for line, command, comment in commands(page):
                reason = skip_reason(command)
                if reason:
                    print(f"{page.name}:{line}  skip ({reason})  {command}", flush=True)
                    continue
                code, tail, seconds = run(command, cwd)
                mark = "ok " if code == expected_code(comment) else "FAIL"
                print(f"{page.name}:{line}  {mark} {code} {seconds:6.1f}s  {command}", flush=True)
                if mark == "FAIL":
                    print("    " + tail.replace("\n", "\n    "), flush=True)
