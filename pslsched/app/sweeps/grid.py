"""A sweep's grid file: the command, its base options, the axes to vary; expanded into points with stable ids.

```yaml
command: solve                 # solve | simulate | train
base: {profile: pslsched/profiles/testbed.yaml, time_limit: 2}   # the command's options
axes:                          # every combination is one point
  solver: [greedy, equid]
  seed: [0, 1, 2]
```

Keys of ``base`` and ``axes``: the command's options (``time_limit`` or ``time-limit``), ``testbed.PATH`` (a key of
the testbed YAML, e.g. ``testbed.helpers.laptop.memory_mb``) and ``generate.OPTION`` (an instance of a generated
family, ``sched generate``'s options). The run's seed is derived, never taken from the order of execution.

A grid is bounded before it is expanded: its size (the product of the axes' lengths, in Python integers) is
checked against ``--max-points`` (default ``MAX_SWEEP_POINTS``), and a grid file is read only if it is at most
``MAX_GRID_FILE_BYTES`` and uses no YAML aliases (``*name``: a billion-laughs file or a recursive anchor would
expand without bound).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_GRID_FILE_BYTES, MAX_SEED, MAX_SWEEP_POINTS

COMMANDS = ("solve", "simulate", "train")
TOP_KEYS = ("command", "base", "axes", "seed", "seed_by", "name")


@dataclass(frozen=True)
class Point:
    """One run of the grid: its axis values, all its options and the seed derived for it."""

    index: int
    params: dict[str, Any]  # the axis values (the results.csv columns)
    options: dict[str, Any]  # base + params
    run_seed: int
    id: str


@dataclass
class Grid:
    command: str
    base: dict[str, Any]
    axes: dict[str, list[Any]]
    seed: int = 0
    seed_by: list[str] | None = None  # None: the `seed` axis only; ["*"]: every axis
    name: str = "sweep"
    source: Path | None = field(default=None, compare=False)

    @property
    def size(self) -> int:
        """How many points the grid has (the product of its axes' lengths), counted without expanding it."""
        return math.prod(len(v) for v in self.axes.values())

    def check_size(self, max_points: int = MAX_SWEEP_POINTS) -> None:
        """Refuse a grid of more than ``max_points`` points before it is expanded."""
        if self.size > max_points:
            shape = " x ".join(f"{len(v)} {k}" for k, v in self.axes.items())
            raise InputError(
                "axes",
                f"the grid has {self.size:,} points ({shape}); the limit is {max_points:,} "
                "(--max-points; docs/sweeps.md)",
            )

    def points(self, max_points: int = MAX_SWEEP_POINTS) -> list[Point]:
        """Every combination of the axes, in the grid's order (the first axis varies slowest); a grid larger
        than ``max_points`` is refused first."""
        self.check_size(max_points)
        names = list(self.axes)
        out = []
        for index, values in enumerate(itertools.product(*(self.axes[n] for n in names))):
            params = dict(zip(names, values))
            options = {**self.base, **params}
            options.pop("seed", None)  # the seed axis names a replicate; the run's seed is derived from it
            run_seed = self.run_seed(params)
            out.append(Point(index, params, options, run_seed, self.point_id(options, run_seed)))
        return out

    def run_seed(self, params: dict[str, Any]) -> int:
        """The seed a point runs with: from the grid's seed and the point's parameters named by ``seed_by``."""
        keys = list(params) if self.seed_by == ["*"] else (self.seed_by or ["seed"])
        chosen = {k: params.get(k, self.base.get(k)) for k in keys}
        digest = hashlib.sha256(_canonical(chosen).encode()).digest()
        entropy = [self.seed, *np.frombuffer(digest[:16], dtype=np.uint32).tolist()]
        return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)

    def point_id(self, options: dict[str, Any], run_seed: int) -> str:
        """A point's file name: a hash of everything that defines its run (so any change gives a new id)."""
        text = _canonical({"command": self.command, "options": options, "run_seed": run_seed})
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file's structure (the options themselves are checked against the command later)."""
    from pslsched.core.testbed import read_yaml

    path = Path(path)
    if path.is_file() and path.stat().st_size > MAX_GRID_FILE_BYTES:
        raise InputError(str(path), f"a grid file is at most {MAX_GRID_FILE_BYTES:,} bytes")
    data = read_yaml(path)
    _no_aliases(path)
    grid = parse_grid(data)
    grid.source = path
    if "name" not in data:
        grid.name = path.stem
    return grid


def _no_aliases(path: Path) -> None:
    """Refuse YAML aliases in a grid file (read already, so the text is valid YAML): one line, the first alias."""
    for event in yaml.parse(path.read_text(), Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            raise InputError(
                str(path),
                f"YAML alias *{event.anchor} at line {mark.line + 1}: a grid file takes no aliases "
                "(write the values out)",
            )


def parse_grid(data: Any) -> Grid:
    """A grid from its mapping; errors name the key at fault."""
    if not isinstance(data, dict):
        raise InputError("grid", "must be a YAML mapping with command, base and axes")
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise InputError(str(unknown[0]), f"unknown key (known: {', '.join(TOP_KEYS)})")
    command = data.get("command")
    if command not in COMMANDS:
        raise InputError("command", f"must be one of {', '.join(COMMANDS)}, got {command!r}")
    base = data.get("base") or {}
    if not isinstance(base, dict):
        raise InputError("base", "must be a mapping of the command's options")
    axes = data.get("axes")
    if not isinstance(axes, dict) or not axes:
        raise InputError("axes", "must be a mapping of at least one option to its list of values")
    for key in (*base, *axes):
        if not isinstance(key, str) or not key:
            raise InputError(str(key), "option names are text")
    clean_axes: dict[str, list[Any]] = {}
    for key, values in axes.items():
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise InputError(f"axes.{key}", "is empty: give at least one value")
        try:
            texts = [_canonical(v) for v in values]
        except (ValueError, RecursionError):  # a value that contains itself
            raise InputError(f"axes.{key}", "a value refers to itself (a recursive structure)") from None
        if len(set(texts)) != len(texts):
            raise InputError(f"axes.{key}", "lists a value twice")
        clean_axes[_normal(key)] = values
    clean_base = {_normal(k): v for k, v in base.items()}
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError("seed", f"must be a whole number in [0, 2^63), got {seed!r}")
    seed_by = data.get("seed_by")
    if seed_by is not None:
        if seed_by in ("all", "*"):
            seed_by = ["*"]
        elif isinstance(seed_by, str):
            seed_by = [seed_by]
        if not isinstance(seed_by, list) or not all(isinstance(k, str) for k in seed_by):
            raise InputError("seed_by", "must be 'all' or a list of axis names")
        seed_by = [k if k == "*" else _normal(k) for k in seed_by]
        for k in seed_by:
            if k != "*" and k not in clean_axes and k not in clean_base:
                raise InputError("seed_by", f"{k!r} is neither an axis nor a base option")
    name = data.get("name", "sweep")
    if not isinstance(name, str) or not name:
        raise InputError("name", "must be text")
    return Grid(command, clean_base, clean_axes, seed, seed_by, name)


def _normal(key: str) -> str:
    """``time-limit`` and ``time_limit`` name the same option; testbed and generate paths keep their spelling."""
    if key.startswith(("testbed.", "generate.")):
        head, rest = key.split(".", 1)
        return f"{head}.{rest}" if head == "testbed" else f"{head}.{rest.replace('-', '_')}"
    return key.replace("-", "_")
