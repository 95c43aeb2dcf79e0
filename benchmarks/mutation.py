"""Mutation testing of the training room: how many small bugs in ``pslsched/training/`` do its tests catch?

    python benchmarks/mutation.py --deselect-baseline-failures  # 60 mutants, seed 0: 33 min on the 2-core box
    python benchmarks/mutation.py --mutants 3                   # smoke test (about 3-4 min)
    python benchmarks/mutation.py --list                        # only count the mutants per module and operator
    python benchmarks/mutation.py --mutants 60 --budget 45      # stop early (a prefix of the draw) after 45 min

Mutants (first order, from ``ast``, every module under ``pslsched/training/``): arithmetic swap (+ -, * /),
comparison flip (< >=, > <=, == !=, is / is not, in / not in), and <-> or, ``not`` removal, numeric constant
(0 <-> 1, 1.0 -> 2.0, c -> c + 1), True <-> False, augmented assignment (+= -=, *= /=), a call statement ->
``pass`` and ``return X`` -> ``return None``. Left alone: docstrings, annotations, ``raise``/``assert``,
f-strings, ``__all__``, print/logging/warnings calls, ``if TYPE_CHECKING``. Only the mutated node's source text
is replaced. All mutants are enumerated in a fixed order; ``--mutants`` of them are drawn with ``--seed``.

``pslsched/``, ``tests/`` and ``pyproject.toml`` are copied to a temp dir once, at the start (a snapshot of the
working tree: later edits do not reach the run). Per mutant one file of the copy is written, its module's test
files (``TESTS_BY_MODULE``, default the six training test files) run with ``pytest -x -q -p no:cacheprovider``,
``PYTHONPATH=<tempdir>``, one torch/MKL thread, and the file is restored. ``import pslsched`` then loads the copy
(the editable install's finder comes after ``sys.path``): a pytest plugin records every ``pslsched`` module's
file and each run is checked; a canary mutant (an exception in ``training/__init__.py``) must be killed first.
The unmutated tests must pass (``--deselect-baseline-failures``: deselect the ones that fail, reported).
Outcomes: killed (a test failed), error (import/collection failed: killed, counted apart), timeout (more CPU
than max(60 s, 3 x the unmutated run's) or wall than max(600 s, 10 x): killed), survived. CPU time is the
timeout's clock, so a loaded machine does not kill mutants. All results go to ``--out``.json / .csv.
"""

from __future__ import annotations

import argparse
import ast
import copy
import csv
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the six training test files, quick ones first (with -x a killed mutant stops at its first failing test)
TESTS = [f"tests/test_training{s}.py" for s in ("_samplers", "_data", "_models", "_batched", "_scaling", "")]
TESTS_BY_MODULE: dict[str, list[str]] = {}  # module path (relative to pslsched/) -> test files; default TESTS
AOR = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult}
FLIP = [(ast.Lt, ast.GtE), (ast.Gt, ast.LtE), (ast.Eq, ast.NotEq), (ast.Is, ast.IsNot), (ast.In, ast.NotIn)]
ROR = dict(FLIP) | {b: a for a, b in FLIP}
ASG = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
QUIET = {"logging", "logger", "log", "_log", "_logger", "LOG", "warnings", "sys.stderr", "sys.stdout"}
PROBE = """import json, os, sys
FAILED, BROKEN = set(), set()
def pytest_runtest_logreport(report):
    if report.failed:
        FAILED.add(report.nodeid)
def pytest_collectreport(report):
    if report.failed:
        BROKEN.add(report.nodeid)
def pytest_sessionfinish(session, exitstatus):
    mods = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items()) if n.split(".")[0] == "pslsched"}
    with open(os.environ["MUTATION_PROBE_OUT"], "w") as f:
        json.dump({"modules": mods, "failed": sorted(FAILED), "collect_errors": sorted(BROKEN)}, f)
"""


def _skipped(node: ast.AST) -> bool:
    """raise/assert, f-strings, docstrings, ``__all__`` and print/logging/warnings call statements."""
    if isinstance(node, (ast.Raise, ast.Assert, ast.JoinedStr)):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        f = node.value.func
        return getattr(f, "id", "") == "print" or (
            isinstance(f, ast.Attribute) and ast.unparse(f.value) in QUIET
        )
    names = [getattr(t, "id", "") for t in getattr(node, "targets", [getattr(node, "target", None)])]
    return isinstance(node, (ast.Assign, ast.AnnAssign)) and "__all__" in names


class Mutator:
    """Collects (line, col, end_line, end_col, replacement, operator) for every mutant of one module."""

    def __init__(self) -> None:
        self.found: list[tuple[int, int, int, int, str, str]] = []

    def add(self, node: ast.AST, text: str, op: str) -> None:
        self.found.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, text, op))

    def swap(self, node: ast.AST, field: str, value, op: str, index: int | None = None) -> None:
        new = copy.deepcopy(node)
        if index is None:
            setattr(new, field, value)
        else:
            getattr(new, field)[index] = value
        self.add(node, ast.unparse(new) if isinstance(node, ast.stmt) else f"({ast.unparse(new)})", op)

    def visit(self, node: ast.AST) -> None:
        if _skipped(node):
            return
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        if isinstance(node, ast.BinOp) and type(node.op) in AOR:
            self.swap(node, "op", AOR[type(node.op)](), "arith")
        elif isinstance(node, ast.Compare):
            for i, o in enumerate(node.ops):
                if type(o) in ROR:
                    self.swap(node, "ops", ROR[type(o)](), "compare", i)
        elif isinstance(node, ast.BoolOp):
            self.swap(node, "op", ast.Or() if isinstance(node.op, ast.And) else ast.And(), "boolop")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.add(node, f"({ast.unparse(node.operand)})", "not")
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            self.add(node, repr(not node.value), "bool")
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            v = node.value
            new = {0: 1, 1: 0}.get(v, v + 1) if type(v) is int else (2.0 if v == 1 else v + 1)
            self.add(node, repr(new), "number")
        elif isinstance(node, ast.AugAssign) and type(node.op) in ASG:
            self.swap(node, "op", ASG[type(node.op)](), "augassign")
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            self.add(node, "pass", "delete-call")
        elif isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                self.add(node, "return None", "return-none")
        for name, value in ast.iter_fields(node):
            if name not in ("annotation", "returns", "type_comment"):
                for child in value if isinstance(value, list) else [value]:
                    if isinstance(child, ast.AST):
                        self.visit(child)


def enumerate_mutants(package: Path) -> list[dict]:
    """Every mutant of ``package/training/**.py`` in a fixed order (files sorted, nodes in source order)."""
    mutants = []
    for path in sorted((package / "training").rglob("*.py")):
        source = path.read_bytes()
        tree = ast.parse(source)
        mutator = Mutator()
        mutator.visit(tree)
        starts = [0]  # byte offset of each line: ast columns are UTF-8 byte offsets
        for line in source.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        lines = source.decode().splitlines()
        for l0, c0, l1, c1, text, op in mutator.found:
            mutated = source[: starts[l0 - 1] + c0] + text.encode() + source[starts[l1 - 1] + c1 :]
            try:
                if ast.dump(ast.parse(mutated)) == ast.dump(tree):
                    continue  # not a change
            except SyntaxError:
                pass  # kept: it fails at import, an "error"
            new_lines = mutated.decode().splitlines()
            new = new_lines[l0 - 1 : l1 + len(new_lines) - len(lines)]
            old = " ".join(s.strip() for s in lines[l0 - 1 : l1])
            row = dict(file=str(path.relative_to(package)), line=l0, operator=op, original=old)
            mutants.append({**row, "mutated": " ".join(s.strip() for s in new), "source": mutated})
    return mutants


def cpu_seconds(pid: int) -> float:
    """utime + stime of a running process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def run_tests(
    tmp: Path, tests: list[str], extra: list[str], limit: tuple[float, float] | None = None
) -> tuple:
    """Run pytest on the copy: (outcome, exit code, wall s, CPU s, probe record); over ``limit`` (CPU s,
    wall s) the run is killed as a timeout."""
    probe_out = tmp / "probe.json"
    probe_out.unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(tmp), os.environ.get("PYTHONPATH")] if p)
    env["MUTATION_PROBE_OUT"] = str(probe_out)
    cmd = [sys.executable, "-m", "pytest", *[str(tmp / t) for t in tests], "-q", "-p", "no:cacheprovider"]
    cmd += ["-p", "_mutation_probe", "-c", str(tmp / "pyproject.toml"), "--rootdir", str(tmp)]
    cmd += ["--basetemp", str(tmp / "pytest-tmp"), *extra]
    ru0, t0, code = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter(), None
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, start_new_session=True, **quiet)
    try:
        while code is None:
            try:
                code = proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                cpu = cpu_seconds(proc.pid)
                if limit and (cpu > limit[0] or time.perf_counter() - t0 > limit[1]):
                    return "timeout", None, time.perf_counter() - t0, cpu, {}
    finally:
        if proc.poll() is None:  # timeout, Ctrl-C or SIGTERM: the tests go with us
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    probe = json.loads(probe_out.read_text()) if probe_out.exists() else {}
    foreign = [f for f in probe.get("modules", {}).values() if f and not f.startswith(str(tmp / "pslsched"))]
    if foreign:
        sys.exit(f"pslsched was not loaded from the copy {tmp}: {foreign[:3]}")
    outcome = {0: "survived", 1: "killed"}.get(code, "error")  # 2-5: interrupted, usage error, no tests
    if probe.get("collect_errors"):  # a test file failed to import (with -x pytest then exits 1)
        outcome = "error"
    return outcome, code, time.perf_counter() - t0, cpu, probe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=60, help="how many mutants to sample and run (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/mutation", help="writes OUT.json and OUT.csv")
    ap.add_argument("--list", action="store_true", help="only count the mutants")
    ap.add_argument("--deselect-baseline-failures", action="store_true", help="instead of aborting")
    ap.add_argument("--budget", type=float, help="minutes: stop before a mutant that would likely overrun")
    args = ap.parse_args()
    # SIGTERM runs the finally blocks: the tests are killed and the temp dir removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="mutation-"))
    try:
        # copy2 keeps mtimes: the copied .pyc stay valid, and so does a restored file's (bytecode is not written)
        pristine = tmp / "pristine" / "pslsched"
        shutil.copytree(REPO / "pslsched", pristine)
        shutil.copytree(pristine, tmp / "pslsched")
        shutil.copytree(REPO / "tests", tmp / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(REPO / "pyproject.toml", tmp / "pyproject.toml")
        (tmp / "_mutation_probe.py").write_text(PROBE)
        mutants = enumerate_mutants(pristine)
        sources = b"".join(p.read_bytes() for p in sorted((pristine / "training").rglob("*.py")))
        args.snapshot = hashlib.sha256(sources).hexdigest()[:16]  # the sources the mutant indices refer to
        print(
            f"{len(mutants)} mutants in {len({m['file'] for m in mutants})} files (sources {args.snapshot})"
        )
        if args.list:
            for (f, op), n in sorted(Counter((m["file"], m["operator"]) for m in mutants).items()):
                print(f"  {f:40s} {op:12s} {n}")
            return
        # run in draw order: every prefix is a uniform sample too (what --budget relies on)
        chosen = random.Random(args.seed).sample(range(len(mutants)), min(args.mutants, len(mutants)))
        _, code, base_s, base_cpu, probe = run_tests(tmp, TESTS, [])
        failed = probe.get("failed", [])
        print(f"unmutated: exit {code}, {base_s:.1f} s ({base_cpu:.1f} s CPU), failing: {failed}")
        if probe.get("collect_errors") or (code != 0 and not (failed and args.deselect_baseline_failures)):
            sys.exit("the unmutated tests do not pass: aborting (see --deselect-baseline-failures)")
        deselect = [f"--deselect={n}" for n in failed]
        if failed:
            _, code, base_s, base_cpu, _ = run_tests(tmp, TESTS, deselect)
            print(f"unmutated without them: exit {code}, {base_s:.1f} s ({base_cpu:.1f} s CPU)")
            if code != 0:
                sys.exit("the unmutated tests still fail: aborting")
        init = tmp / "pslsched" / "training" / "__init__.py"
        init.write_bytes(init.read_bytes() + b'\nraise RuntimeError("mutation canary")\n')
        canary = run_tests(tmp, TESTS, ["-x", *deselect])
        shutil.copy2(pristine / "training" / "__init__.py", init)
        print(f"canary mutant: {canary[0]} (exit {canary[1]}, {canary[2]:.1f} s)")
        if canary[0] == "survived":
            sys.exit("the canary mutant survived: the tests do not load the copy")
        limit = (max(60.0, 3 * base_cpu), max(600.0, 10 * base_s))
        results = []
        for k, i in enumerate(chosen, 1):
            mean = sum(r["seconds"] for r in results) / max(1, len(results))
            if args.budget and time.perf_counter() - t_start + mean > 60 * args.budget:
                print(f"--budget {args.budget} min reached: {len(results)} of {len(chosen)} mutants run")
                break
            m = mutants[i]
            (tmp / "pslsched" / m["file"]).write_bytes(m["source"])
            tests = TESTS_BY_MODULE.get(m["file"], TESTS)
            outcome, code, seconds, cpu, probe = run_tests(tmp, tests, ["-x", *deselect], limit)
            shutil.copy2(pristine / m["file"], tmp / "pslsched" / m["file"])
            row = {key: v for key, v in m.items() if key != "source"}
            by = ";".join(probe.get("failed", []) + probe.get("collect_errors", []))
            times = dict(seconds=round(seconds, 1), cpu_seconds=round(cpu, 1))
            results.append(dict(index=i, **row, outcome=outcome, exit=code, **times, killed_by=by))
            where = (
                f"[{k}/{len(chosen)}] {outcome:8s} {seconds:5.0f}s {m['file']}:{m['line']} {m['operator']}"
            )
            print(f"{where}: {m['original']}  ->  {m['mutated']}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = dict(command=" ".join(sys.argv), mutants=len(results), drawn=len(chosen), enumerated=len(mutants))
    meta["seed"] = args.seed
    meta |= dict(
        training_sources_sha256=args.snapshot, baseline_s=round(base_s), baseline_cpu_s=round(base_cpu)
    )
    meta |= dict(timeout_cpu_s=round(limit[0]), timeout_wall_s=round(limit[1]), deselected=failed)
    meta["wall_s"] = round(time.perf_counter() - t_start, 1)
    report(args, meta, sorted(results, key=lambda r: r["index"]))


def report(args, meta: dict, results: list[dict]) -> None:
    by_file: dict[str, list[dict]] = {}
    for r in results:
        by_file.setdefault(r["file"], []).append(r)
    head = f"{meta['mutants']} of {meta['enumerated']} mutants (seed {meta['seed']}"
    print(f"\n{head}, sources {meta['training_sources_sha256']}); wall {meta['wall_s'] / 60:.1f} min\n")
    print("| module | mutants | killed by a test | timeout | import error | survived | score |")
    print("|---|---|---|---|---|---|---|")
    for f, rs in [*sorted(by_file.items()), ("**all**", results)]:
        n = Counter(r["outcome"] for r in rs)
        row = f"{len(rs)} | {n['killed']} | {n['timeout']} | {n['error']} | {n['survived']}"
        print(f"| {f} | {row} | {1 - n['survived'] / max(1, len(rs)):.0%} |")
    print("\nSurvivors:\n\n| module:line | operator | original | mutated |\n|---|---|---|---|")
    for r in results:
        if r["outcome"] == "survived":
            print(f"| {r['file']}:{r['line']} | {r['operator']} | `{r['original']}` | `{r['mutated']}` |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    with open(f"{args.out}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(results[0]) if results else ["index"])
        writer.writeheader()
        writer.writerows(results)
    print(f"\nwrote {args.out}.json and {args.out}.csv")


if __name__ == "__main__":
    main()
