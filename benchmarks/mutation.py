"""Mutation testing of the training room: how many small bugs in ``pslsched/training/`` do its tests catch?

    python benchmarks/mutation.py                      # 60 mutants, seed 0 (about 30-45 min on the 2-core machine)
    python benchmarks/mutation.py --mutants 3          # smoke test (about 3 min)
    python benchmarks/mutation.py --list               # only count the mutants per module and operator
    python benchmarks/mutation.py --deselect-baseline-failures   # deselect tests that fail without a mutant

First-order mutants are generated with ``ast`` from every module under ``pslsched/training/`` (recursively):
arithmetic swap (+ -, * /), comparison flip (< >=, > <=, == !=, is / is not, in / not in), and <-> or,
``not`` removal, numeric constant change (0 <-> 1, 1.0 -> 2.0, c -> c + 1), True <-> False, augmented
assignment swap (+= -=, *= /=), deleting a call statement (-> ``pass``) and ``return X`` -> ``return None``.
Docstrings, annotations, ``raise``/``assert`` statements, f-strings, ``__all__``, print/logging/warnings calls
and ``if TYPE_CHECKING`` blocks are left alone. The mutated node's source text is replaced in place, so the
rest of the file is unchanged.

All mutants are enumerated in a fixed order and ``--mutants`` of them are drawn with ``random.Random(--seed)``.
``pslsched/``, ``tests/`` and ``pyproject.toml`` are copied once to a temp dir at the start (a snapshot of
the working tree, uncommitted edits included; later edits to the repo do not reach the run); for each mutant one
file of the copy is written, the module's test files (``TESTS_BY_MODULE``, default the six training test files)
run with ``pytest -x -q -p no:cacheprovider`` and ``PYTHONPATH=<tempdir>`` (so ``import pslsched`` loads the
copy: the editable install's finder sits behind ``sys.path``), then the file is restored. A small pytest plugin
records where every ``pslsched`` module was loaded from, and every run is checked to have used the copy; a
deliberate canary mutant (an exception in ``pslsched/training/__init__.py``) must fail before the mutants run.
Outcomes: killed (a test failed), error (killed at import/collection), timeout (over max(60 s, 3 x the
unmutated run): killed), survived. Results go to ``--out``.json and .csv (default /tmp/mutation).
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
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the six training test files, the quick ones first (with -x a killed mutant stops at its first failing test)
TESTS = [f"tests/test_training{s}.py" for s in ("_samplers", "_data", "_models", "_batched", "_scaling", "")]
TESTS_BY_MODULE: dict[str, list[str]] = {}  # module path (relative to pslsched/) -> test files; default TESTS
AOR = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult}
FLIP = [(ast.Lt, ast.GtE), (ast.Gt, ast.LtE), (ast.Eq, ast.NotEq), (ast.Is, ast.IsNot), (ast.In, ast.NotIn)]
ROR = dict(FLIP) | {b: a for a, b in FLIP}
ASG = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
QUIET = {"logging", "logger", "log", "_log", "_logger", "LOG", "warnings", "sys.stderr", "sys.stdout"}
PROBE = """import json, os, sys
def pytest_sessionfinish(session, exitstatus):
    mods = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items()) if n.split(".")[0] == "pslsched"}
    with open(os.environ["MUTATION_PROBE_OUT"], "w") as f:
        json.dump({"modules": mods, "failed": sorted(FAILED), "collect_errors": sorted(BROKEN)}, f)
FAILED, BROKEN = set(), set()
def pytest_runtest_logreport(report):
    if report.failed:
        FAILED.add(report.nodeid)
def pytest_collectreport(report):
    if report.failed:
        BROKEN.add(report.nodeid)
"""


def _quiet_call(node: ast.AST) -> bool:
    """A print(...), logging, warnings or sys.stderr/stdout call statement."""
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    f = node.value.func
    return (isinstance(f, ast.Name) and f.id == "print") or (
        isinstance(f, ast.Attribute) and ast.unparse(f.value) in QUIET
    )


class Mutator:
    """Collects (line, col, end_line, end_col, replacement, operator) for every mutant of one module."""

    def __init__(self) -> None:
        self.found: list[tuple[int, int, int, int, str, str]] = []

    def add(self, node: ast.AST, text: str, op: str) -> None:
        self.found.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, text, op))

    def expr(self, node: ast.AST, field: str, value, op: str, index: int | None = None) -> None:
        new = copy.deepcopy(node)
        if index is None:
            setattr(new, field, value)
        else:
            getattr(new, field)[index] = value
        self.add(node, f"({ast.unparse(new)})", op)

    def visit(self, node: ast.AST) -> None:  # noqa: C901 - one branch per node kind
        if isinstance(node, (ast.Raise, ast.Assert, ast.JoinedStr)) or _quiet_call(node):
            return
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return  # docstring or bare string
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                return
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        if isinstance(node, ast.BinOp) and type(node.op) in AOR:
            self.expr(node, "op", AOR[type(node.op)](), "arith")
        elif isinstance(node, ast.Compare):
            for i, o in enumerate(node.ops):
                if type(o) in ROR:
                    self.expr(node, "ops", ROR[type(o)](), "compare", i)
        elif isinstance(node, ast.BoolOp):
            self.expr(node, "op", ast.Or() if isinstance(node.op, ast.And) else ast.And(), "boolop")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.add(node, f"({ast.unparse(node.operand)})", "not")
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            self.add(node, repr(not node.value), "bool")
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            v = node.value
            new = {0: 1, 1: 0}.get(v, v + 1) if type(v) is int else (2.0 if v == 1 else v + 1)
            self.add(node, repr(new), "number")
        elif isinstance(node, ast.AugAssign) and type(node.op) in ASG:
            new = copy.deepcopy(node)
            new.op = ASG[type(node.op)]()
            self.add(node, ast.unparse(new), "augassign")
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            self.add(node, "pass", "delete-call")
        elif isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                self.add(node, "return None", "return-none")
        for name, value in ast.iter_fields(node):
            if name in ("annotation", "returns", "type_comment"):
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    self.visit(child)


def apply(source: bytes, m: tuple[int, int, int, int, str, str]) -> bytes:
    """Replace the node's span (ast columns are UTF-8 byte offsets) with the replacement text."""
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    a, b = starts[m[0] - 1] + m[1], starts[m[2] - 1] + m[3]
    return source[:a] + m[4].encode() + source[b:]


def enumerate_mutants(package: Path) -> list[dict]:
    mutants = []
    for path in sorted((package / "training").rglob("*.py")):
        source = path.read_bytes()
        tree = ast.parse(source)
        mutator = Mutator()
        mutator.visit(tree)
        rel = str(path.relative_to(package))
        lines = source.decode().splitlines()
        for m in mutator.found:
            mutated = apply(source, m)
            try:
                same = ast.dump(ast.parse(mutated)) == ast.dump(tree)
                compiles = True
            except SyntaxError:
                same, compiles = False, False
            if same:
                continue
            new_lines = mutated.decode().splitlines()
            extra = len(new_lines) - len(lines)
            original = " ".join(s.strip() for s in lines[m[0] - 1 : m[2]])
            new = " ".join(s.strip() for s in new_lines[m[0] - 1 : m[2] + extra])
            row = dict(file=rel, line=m[0], operator=m[5], original=original, mutated=new, compiles=compiles)
            mutants.append({**row, "source": mutated})
    return mutants


def run_tests(tmp: Path, tests: list[str], extra: list[str], timeout: float | None) -> tuple:
    """Run pytest on the copy; returns (outcome, exit code, seconds, probe record)."""
    probe_out = tmp / "probe.json"
    probe_out.unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(tmp), os.environ.get("PYTHONPATH")] if p)
    env["MUTATION_PROBE_OUT"] = str(probe_out)
    cmd = [sys.executable, "-m", "pytest", *[str(tmp / t) for t in tests], "-q", "-p", "no:cacheprovider"]
    cmd += ["-p", "_mutation_probe", "-c", str(tmp / "pyproject.toml"), "--rootdir", str(tmp)]
    cmd += ["--basetemp", str(tmp / "pytest-tmp"), *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        return "timeout", -9, time.perf_counter() - t0, {}
    seconds = time.perf_counter() - t0
    probe = json.loads(probe_out.read_text()) if probe_out.exists() else {}
    foreign = [f for f in probe.get("modules", {}).values() if f and not f.startswith(str(tmp / "pslsched"))]
    if foreign:
        sys.exit(f"pslsched was not loaded from the copy {tmp}: {foreign[:3]}")
    outcome = {0: "survived", 1: "killed"}.get(code, "error")  # 2-5: interrupted, usage error, no tests
    if probe.get("collect_errors"):  # a test file failed to import (with -x pytest then exits 1)
        outcome = "error"
    return outcome, code, seconds, probe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=60, help="how many mutants to sample and run (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/mutation", help="writes OUT.json and OUT.csv")
    ap.add_argument("--list", action="store_true", help="only count the mutants")
    ap.add_argument("--deselect-baseline-failures", action="store_true", help="instead of aborting")
    args = ap.parse_args()
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="mutation-"))
    try:
        # a snapshot of the working tree: the package (pristine + work copy), the tests and the pytest config;
        # copy2 keeps mtimes, so the copied .pyc stay valid and a restored file's .pyc is valid again
        pristine = tmp / "pristine" / "pslsched"
        shutil.copytree(REPO / "pslsched", pristine)
        shutil.copytree(pristine, tmp / "pslsched")
        shutil.copytree(REPO / "tests", tmp / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(REPO / "pyproject.toml", tmp / "pyproject.toml")
        (tmp / "_mutation_probe.py").write_text(PROBE)
        mutants = enumerate_mutants(pristine)
        digest = hashlib.sha256(
            b"".join(p.read_bytes() for p in sorted((pristine / "training").rglob("*.py")))
        )
        args.snapshot = digest.hexdigest()[:16]  # which sources the mutant indices refer to
        print(f"{len(mutants)} mutants in {len({m['file'] for m in mutants})} modules (snapshot in {tmp})")
        if args.list:
            for (f, op), n in sorted(Counter((m["file"], m["operator"]) for m in mutants).items()):
                print(f"  {f:40s} {op:12s} {n}")
            return
        chosen = sorted(random.Random(args.seed).sample(range(len(mutants)), min(args.mutants, len(mutants))))
        outcome, code, base_s, probe = run_tests(tmp, TESTS, [], None)
        failed = probe.get("failed", [])
        if probe.get("collect_errors"):
            sys.exit(f"the unmutated test files do not import: {probe['collect_errors']}")
        print(f"unmutated: exit {code}, {base_s:.1f} s, {len(failed)} failing: {failed}")
        if code != 0 and (not failed or not args.deselect_baseline_failures):
            sys.exit("the unmutated tests do not pass: aborting (see --deselect-baseline-failures)")
        deselect = [f"--deselect={n}" for n in failed]
        if failed:
            outcome, code, base_s, _ = run_tests(tmp, TESTS, deselect, None)
            print(f"unmutated without them: exit {code}, {base_s:.1f} s")
            if code != 0:
                sys.exit("the unmutated tests still fail: aborting")
        init = tmp / "pslsched" / "training" / "__init__.py"
        original_init = init.read_bytes()
        init.write_bytes(original_init + b'\nraise RuntimeError("mutation canary")\n')
        canary = run_tests(tmp, TESTS, ["-x", *deselect], None)
        shutil.copy2(pristine / "training" / "__init__.py", init)
        print(f"canary mutant: {canary[0]} (exit {canary[1]}, {canary[2]:.1f} s)")
        if canary[0] == "survived":
            sys.exit("the canary mutant survived: the tests do not load the copy")
        timeout = max(60.0, 3 * base_s)
        results = []
        for k, i in enumerate(chosen, 1):
            m = mutants[i]
            target = tmp / "pslsched" / m["file"]
            if m["compiles"]:
                target.write_bytes(m["source"])
                tests = TESTS_BY_MODULE.get(m["file"], TESTS)
                outcome, code, seconds, probe = run_tests(tmp, tests, ["-x", *deselect], timeout)
                shutil.copy2(pristine / m["file"], target)
            else:
                outcome, code, seconds, probe = "compile-error", None, 0.0, {}
            row = {k2: v for k2, v in m.items() if k2 not in ("source", "compiles")}
            by = ";".join(probe.get("failed", []) + probe.get("collect_errors", []))
            results.append(dict(index=i, **row, outcome=outcome, exit=code, seconds=round(seconds, 1), by=by))
            print(
                f"[{k}/{len(chosen)}] {outcome:9s} {seconds:6.1f}s {m['file']}:{m['line']} {m['operator']}: "
                f"{m['original']}  ->  {m['mutated']}",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(args, results, len(mutants), base_s, timeout, failed, time.perf_counter() - t_start)


def report(args, results: list[dict], total: int, base_s: float, timeout: float, failed: list, wall: float):
    by_file: dict[str, list[dict]] = {}
    for r in results:
        by_file.setdefault(r["file"], []).append(r)
    print(
        f"\n{len(results)} of {total} mutants (seed {args.seed}, sources {args.snapshot}); wall {wall / 60:.1f} min\n"
    )
    print("| module | mutants | killed by a test | timeout | import/compile error | survived | score |")
    print("|---|---|---|---|---|---|---|")
    for f, rs in [*sorted(by_file.items()), ("**all**", results)]:
        n = Counter(r["outcome"] for r in rs)
        err, surv = n["error"] + n["compile-error"], n["survived"]
        print(
            f"| {f} | {len(rs)} | {n['killed']} | {n['timeout']} | {err} | {surv} | {1 - surv / len(rs):.0%} |"
        )
    print("\nSurvivors:\n\n| module:line | operator | original | mutated |\n|---|---|---|---|")
    for r in results:
        if r["outcome"] == "survived":
            print(f"| {r['file']}:{r['line']} | {r['operator']} | `{r['original']}` | `{r['mutated']}` |")
    meta = dict(command=" ".join(sys.argv), mutants=len(results), enumerated=total, seed=args.seed)
    meta["training_sources_sha256"] = args.snapshot
    meta |= dict(baseline_s=round(base_s, 1), timeout_s=round(timeout, 1), wall_s=round(wall, 1))
    meta["deselected_baseline_failures"] = failed
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    with open(f"{args.out}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(results[0]) if results else ["index"])
        writer.writeheader()
        writer.writerows(results)
    print(f"\nwrote {args.out}.json and {args.out}.csv")


if __name__ == "__main__":
    main()
