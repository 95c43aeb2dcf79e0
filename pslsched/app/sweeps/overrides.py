"""``testbed.PATH: value`` in a grid: set one key of a testbed's YAML mapping.

A path is dot-separated keys; in a list of groups (``helpers``, ``clients``, ``topology.links``) a step is a group's
``name``, an index (``helpers.1`` or ``helpers[1]``) or ``*`` (every element): ``testbed.helpers.laptop.memory_mb``,
``testbed.clients.*.uplink_mbps``, ``testbed.simulation.rounds``. Missing mapping keys are created, so a section the
testbed lacks (``training``, ``compression``) can be set; the testbed's own validation then checks the result.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pslsched.base.errors import InputError

_STEP = re.compile(r"^([^\[\]]*)((?:\[\d+\])*)$")


def parse_path(path: str) -> list[str | int]:
    """``helpers[1].memory_mb`` -> ``["helpers", 1, "memory_mb"]``."""
    steps: list[str | int] = []
    for part in path.split("."):
        m = _STEP.match(part)
        if not m or (not m.group(1) and not m.group(2)):
            raise InputError(f"testbed.{path}", f"malformed key path (step {part!r})")
        if m.group(1):
            steps.append(int(m.group(1)) if m.group(1).isdigit() else m.group(1))
        steps.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return steps


def apply_overrides(data: dict, overrides: dict[str, Any]) -> dict:
    """A copy of the testbed mapping with every ``path: value`` set (paths without the ``testbed.`` prefix)."""
    out = copy.deepcopy(data)
    for path, value in overrides.items():
        _set(out, parse_path(path), copy.deepcopy(value), path)
    return out


def _set(node: Any, steps: list[str | int], value: Any, path: str) -> None:
    head, rest = steps[0], steps[1:]
    field = f"testbed.{path}"
    if isinstance(node, list):
        if head == "*":
            targets = list(range(len(node)))
        elif isinstance(head, int):
            if head >= len(node):
                raise InputError(field, f"index {head} is out of range (the list has {len(node)} entries)")
            targets = [head]
        else:
            targets = [
                i for i, item in enumerate(node) if isinstance(item, dict) and item.get("name") == head
            ]
            if not targets:
                names = [item.get("name") for item in node if isinstance(item, dict)]
                raise InputError(field, f"no entry named {head!r} (names: {', '.join(map(str, names))})")
        for i in targets:
            if rest:
                _set(node[i], rest, copy.deepcopy(value), path)
            else:
                node[i] = copy.deepcopy(value)
        return
    if not isinstance(node, dict):
        raise InputError(field, f"cannot set {head!r} inside a {type(node).__name__}")
    if head == "*" or isinstance(head, int):
        raise InputError(field, f"{head!r} selects list entries, but this is a mapping")
    if not rest:
        node[head] = value
        return
    if node.get(head) is None:
        node[head] = {}
    _set(node[head], rest, value, path)
