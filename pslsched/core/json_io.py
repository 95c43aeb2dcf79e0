"""JSON files of the core vocabulary (instances, schedules): reading, atomic writing, checking an object's keys."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pslsched.base.errors import InputError


def load_json(path: Path) -> Any:
    """Read JSON, turning a missing file or a syntax error into one InputError."""
    if not path.is_file():
        raise InputError(str(path), "no such file")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(
            str(path), f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except UnicodeDecodeError:
        raise InputError(str(path), "not a text file") from None


def write_json(data: Any, path: str | Path) -> None:
    """Write JSON via a temporary file so a failure leaves nothing half-written."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    tmp.replace(path)


def check_keys(
    data: dict, source: str, allowed: set[str], required: Iterable[str], *, list_allowed: bool = False
) -> None:
    """An InputError on ``source.KEY`` for the first unknown key (``list_allowed``: naming the allowed ones), then
    for the first missing required key."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        hint = f" (allowed: {', '.join(sorted(allowed))})" if list_allowed else ""
        raise InputError(f"{source}.{unknown[0]}", f"unknown key{hint}")
    for key in required:
        if key not in data:
            raise InputError(f"{source}.{key}", "missing")
