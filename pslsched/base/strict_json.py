"""JSON as the standard defines it: a non-finite float (inf, -inf, NaN) is written as null, never as Infinity."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (numpy's too) inside dicts, lists and tuples replaced by ``None``."""
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` of ``finite(value)`` with ``allow_nan=False``: the text any JSON parser reads."""
    return json.dumps(finite(value), allow_nan=False, **options)
