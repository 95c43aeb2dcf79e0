"""Profile files on disk: a profile CSV and its sidecar JSON (``<profile>.meta.json``: how it was measured or scaled),
each written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

SIDECAR_SUFFIX = ".meta.json"


def sidecar_path(csv_path: str | Path) -> Path:
    """``profile.csv`` -> ``profile.meta.json`` (next to it)."""
    p = Path(csv_path)
    return p.with_name(p.stem + SIDECAR_SUFFIX)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_profile(
    frame: pd.DataFrame, meta: dict[str, Any] | None, path: str | Path
) -> tuple[Path, Path | None]:
    """Write a profile CSV (and its sidecar when ``meta`` is given), each atomically; returns both paths."""
    path = Path(path)
    atomic_write(path, frame.to_csv(index=False))
    side = None
    if meta is not None:
        side = sidecar_path(path)
        atomic_write(side, json.dumps(meta, indent=2) + "\n")
    return path, side


def read_meta(csv_path: str | Path) -> dict[str, Any] | None:
    """The sidecar of a profile CSV (``None`` when there is none or it is not readable JSON)."""
    side = sidecar_path(csv_path)
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
