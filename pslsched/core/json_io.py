"""JSON files of the core vocabulary (instances, schedules): reading, atomic writing, checking an object's keys."""

from __future__ import annotations

import json
import os
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


COMPACT_BYTES = 1_000_000  # above: one line without spaces (a 10,000-client instance is ~100 MB indented)


def write_json(data: Any, path: str | Path) -> None:
    """Write JSON via a temporary file (its name unique to this process) so a failure leaves nothing
    half-written; indented while small, compact once large."""
    path = Path(path)
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    if len(text) <= COMPACT_BYTES:
        text = json.dumps(data, indent=1, allow_nan=False)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


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
