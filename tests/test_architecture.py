"""The layers of docs/architecture.md, read from the source: imports go downwards only, and nothing forms a circle.

Every ``import`` of a ``pslsched`` module is read with ``ast`` (at module level and inside functions alike, so a
function-local import cannot hide a circle or an upward arrow). Only ``if TYPE_CHECKING:`` blocks are left out of the
circle check (they never run), not out of the direction check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pslsched"
# bottom to top; a module may import from its own layer and the ones before it
LAYERS = ("base", "models", "profiles", "core", "solvers", "simulator", "training", "app", "cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported pslsched module, line, runs at import or call time) for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in modules else base)
        for target in targets:
            if target == "pslsched" or target.startswith("pslsched."):
                while target not in modules and "." in target:
                    target = target.rpartition(".")[0]
                found.append((target, node.lineno, node.lineno not in typing_only))
    return found


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1  # the root package: imports nothing of the library
    return LAYERS.index(parts[1])


def test_every_subpackage_is_a_layer():
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert subpackages == set(LAYERS)
    stray = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert stray == [], "modules belong to a layer's subpackage"


def test_imports_point_downwards():
    modules = all_modules()
    upward = []
    for name, path in modules.items():
        for target, line, _ in imports_of(name, path, modules):
            if layer_of(target) > layer_of(name) or (layer_of(name) == -1 and target != name):
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert upward == []


def test_no_import_circles():
    modules = all_modules()
    graph = {
        name: sorted({t for t, _, runs in imports_of(name, path, modules) if runs and t != name})
        for name, path in modules.items()
    }
    # Tarjan's strongly connected components; any component of two or more modules is a circle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


@pytest.mark.parametrize("folder", ["notebooks", "benchmarks"])
def test_studies_import_the_public_api_only(folder):
    offenders = []
    for path in sorted((ROOT / folder).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            if any(n == "pslsched.cli" or n.startswith("pslsched.cli.") for n in names):
                offenders.append(f"{path.name}:{node.lineno}")
            private = [
                n for n in names if n.startswith("pslsched") and any(p.startswith("_") for p in n.split("."))
            ]
            if private:  # the public API only: no private module or name of the library
                offenders.append(f"{path.name}:{node.lineno} {private[0]}")
    assert offenders == []


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The direction check is not vacuous: a core module importing the simulator is reported."""
    modules = all_modules()
    fake = PACKAGE / "core" / "instance.py"
    text = "from pslsched.simulator.engine import Simulation\n"
    found = imports_of("pslsched.core.instance", _write(tmp_path, text, fake), modules)
    assert [(t, layer_of(t) > layer_of("pslsched.core.instance")) for t, _, _ in found] == [
        ("pslsched.simulator.engine", True)
    ]


def _write(tmp_path: Path, text: str, like: Path) -> Path:
    # a copy placed at the same relative spot under a fake root would change ROOT; parse the text directly instead
    target = tmp_path / like.name
    target.write_text(text)
    return target


def layout() -> str:
    """The package tree, one line per module: its docstring's first sentence (what the module is for)."""

    def first(path: Path) -> str:
        doc = (
            (ast.get_docstring(ast.parse(path.read_text())) or "").strip().split("\n\n")[0].replace("\n", " ")
        )
        return doc.split(". ")[0].rstrip(".")

    lines = []

    def walk(folder: Path, depth: int) -> None:
        for path in sorted(folder.iterdir(), key=lambda p: (p.is_dir(), p.name)):
            if path.is_dir() and (path / "__init__.py").exists():
                lines.append(f"{'    ' * depth}{path.name}/  {first(path / '__init__.py')}")
                walk(path, depth + 1)
            elif path.suffix == ".py" and path.name != "__init__.py":
                lines.append(f"{'    ' * depth}{path.name:<18} {first(path)}")

    walk(PACKAGE, 1)
    return "pslsched/\n" + "\n".join(lines)


def test_the_architecture_doc_shows_the_layout():
    """docs/architecture.md holds the current layout (refresh: python tests/test_architecture.py)."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    block = doc.split("```text\n")[-1].split("```")[0].rstrip("\n")
    assert block == layout()


def test_no_module_is_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


if __name__ == "__main__":
    print(layout())
