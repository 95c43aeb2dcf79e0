"""The command around the solve (issue 25, item 4): `sched solve --out` at 10,000 x 100, split by phase, before/after.

For each tree (``before``: ``git archive REF pslsched`` unpacked in a temporary folder; ``after``: this working
tree), one child process times the phases `sched solve --instance X --solver S --time-limit T --out D` goes
through, with that tree's functions: importing, reading the instance JSON, the solve, validating it, the default
baselines (random, greedy, equid), the printed summary, and each output file. Then the whole command is timed
as a subprocess (Python start-up included). The trees alternate in one run, so the machine's load hits both.

    python benchmarks/outputs.py                          # 10,000 x 100 tirana1, lns 5 s, before = HEAD (~2.5 min)
    python benchmarks/outputs.py --clients 1000 --helpers 20 --ref HEAD~1
    python benchmarks/outputs.py --no-before              # this tree only

Prints a markdown table (paste into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASES = ["import", "read", "solve", "validate", "baselines", "summary"]
FILES = ["instance.json", "schedule.json", "schedule.csv", "gantt.png", "report.html"]


def child(instance: str, solver: str, limit: float, out: str) -> dict:
    """The phases of `sched solve ... --out` with the imported tree's functions (seconds each)."""
    sec: dict[str, float] = {}
    t = time.perf_counter()
    from pslsched.app.report import schedule_report, write_report
    from pslsched.app.requests import DEFAULT_BASELINES
    from pslsched.app.solving import SolveOutcome
    from pslsched.core.instance import read_instance, write_instance
    from pslsched.core.report import plot_gantt, summary_text, write_schedule_csv
    from pslsched.core.schedule import write_schedule
    from pslsched.core.validate import validate
    from pslsched.solvers import solve
    from pslsched.solvers.compare import compare

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        sec[name] = now - t
        t = now

    lap("import")
    inst = read_instance(instance)
    lap("read")
    result = solve(inst, solver, time_limit=limit, seed=0)
    lap("solve")
    violations = validate(inst, result.schedule)
    lap("validate")
    names = [b for b in DEFAULT_BASELINES if b != solver]
    outcome = SolveOutcome(inst, solver, result, violations)
    outcome.baselines = compare(inst, names, time_limit=limit, seed=0, workers=1)
    lap("baselines")
    summary_text(inst, result)
    lap("summary")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        from pslsched.app.solving import write_outputs  # the tree after: the CLI's own writer
    except ImportError:  # the tree before: the CLI's sequence of calls, inlined
        s = result.schedule
        old = {
            "instance.json": lambda p: write_instance(inst, p),
            "schedule.json": lambda p: write_schedule(s, p),
            "schedule.csv": lambda p: write_schedule_csv(s, p),
            "gantt.png": lambda p: plot_gantt(inst, s, p),
            "report.html": lambda p: write_report(
                p, schedule_report(inst, s, f"{s.solver} on {inst.name}", outcome.comparison())
            ),
        }
        for name in FILES:
            old[name](folder / name)
            lap(name)
    else:
        sec.update(write_outputs(outcome, folder, source=instance))
    sec["solver runtime_s"] = result.runtime_s
    sec["module"] = sys.modules["pslsched"].__file__
    return sec


def run_tree(tree: Path, args: argparse.Namespace, work: Path, label: str) -> dict[str, float]:
    """The phase split (a child process) and the whole command's wall time, with ``tree`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = work / f"phases-{label}"
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from outputs import child; "
        "print(json.dumps(child(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])))"
    )
    cmd = [
        sys.executable,
        "-c",
        code,
        str(ROOT / "benchmarks"),
        args.instance,
        args.solver,
        str(args.time_limit),
    ]
    proc = subprocess.run([*cmd, str(out)], env=env, capture_output=True, text=True, check=True, cwd=work)
    sec = json.loads(proc.stdout.strip().splitlines()[-1])
    if not sec.pop("module").startswith(str(tree)):
        raise RuntimeError(f"the child imported pslsched from outside {tree}")
    solve = [sys.executable, "-m", "pslsched.cli", "solve", "--instance", args.instance]
    solve += ["--solver", args.solver, "--time-limit", str(args.time_limit)]
    for with_out in (False, True):
        extra = ["--out", str(work / f"cli-{label}")] if with_out else []
        t0 = time.perf_counter()
        subprocess.run([*solve, *extra], env=env, capture_output=True, check=True, cwd=work)
        sec["command --out" if with_out else "command"] = time.perf_counter() - t0
    sec["instance.json bytes"] = (work / f"cli-{label}" / "instance.json").stat().st_size
    sec["report.html bytes"] = (work / f"cli-{label}" / "report.html").stat().st_size
    return sec


def main(argv: list[str] | None = None) -> None:
    """Parse the options, make the instance if needed, time both trees side by side, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", default="tirana1")
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--helpers", type=int, default=100)
    ap.add_argument(
        "--instance", default=None, help="an instance JSON (default: generated in a temporary folder)"
    )
    ap.add_argument("--solver", default="lns")
    ap.add_argument("--time-limit", type=float, default=5.0)
    ap.add_argument("--ref", default="HEAD", help="the git revision timed as 'before'")
    ap.add_argument("--no-before", action="store_true", help="time this tree only")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="outputs-bench-") as tmp:
        work = Path(tmp)
        if args.instance is None:
            args.instance = str(work / "instance.json")
            from pslsched.core.generators import generate
            from pslsched.core.instance import write_instance

            write_instance(generate(args.family, args.clients, args.helpers, seed=0), args.instance)
        args.instance = str(Path(args.instance).resolve())
        trees = {"after": ROOT}
        if not args.no_before:
            before = work / "before"
            before.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.ref, "pslsched"], cwd=ROOT, capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
            trees = {"before": before, **trees}
        results = {label: run_tree(tree, args, work, label) for label, tree in trees.items()}
    print(
        f"`sched solve --instance X --solver {args.solver} --time-limit {args.time_limit:g} [--out D]`, "
        f"{args.clients:,} x {args.helpers} ({args.family}), seconds\n"
    )
    print("| phase | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    keys = [*PHASES, *FILES, "solver runtime_s", "command", "command --out"]
    for key in keys:
        print(f"| {key} | " + " | ".join(f"{r[key]:.2f}" for r in results.values()) + " |")
    for key in ("instance.json bytes", "report.html bytes"):
        print(f"| {key} | " + " | ".join(f"{r[key] / 1e6:.1f} MB" for r in results.values()) + " |")


if __name__ == "__main__":
    main()
