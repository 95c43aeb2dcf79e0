"""Reading testbeds: the bundled default, YAML files and mappings, validated with errors that name field and value."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pslsched.base.errors import InputError
from pslsched.core.testbed.fields import first_error
from pslsched.core.testbed.schema import Testbed


def default_testbed_path() -> Path:
    """The bundled default testbed (ResNet-101 / CIFAR-10, 20 clients, 3 helpers)."""
    return Path(str(resources.files("pslsched.profiles") / "testbed.yaml"))


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content; a missing, malformed or binary file is an InputError naming the file (and line)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise InputError(str(path), f"malformed YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise InputError(str(path), "not a text file") from None


def load_testbed(path: str | Path) -> Testbed:
    """Read and validate a testbed YAML file; errors name the field and the value."""
    return parse_testbed(read_yaml(path), source=Path(path).name)


def parse_testbed(data: Any, source: str = "testbed") -> Testbed:
    """Validate a testbed mapping (already parsed from YAML)."""
    if not isinstance(data, dict):
        raise InputError(source, "must be a YAML mapping")
    try:
        return Testbed.model_validate(data)
    except ValidationError as exc:
        loc, msg, err = first_error(exc)
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif not isinstance(value, (dict, list)):
            msg += f" (got {value!r})"
        raise InputError(f"{source}: {loc}" if loc else source, msg) from None
