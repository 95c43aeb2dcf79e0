"""What every testbed.yaml section shares: the strict base model, the ranged number types, readable error paths."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pslsched.base.limits import MAX_MB, MAX_MBPS, MAX_MS, MIN_MBPS

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# the documented ranges (pslsched.base.limits): memory, rates, latencies
MemoryMB = Annotated[float, Field(gt=0, le=MAX_MB, allow_inf_nan=False)]
RateMbps = Annotated[float, Field(ge=MIN_MBPS, le=MAX_MBPS, allow_inf_nan=False)]
LatencyMs = Annotated[float, Field(ge=0, le=MAX_MS, allow_inf_nan=False)]


class Strict(BaseModel):
    """A section of testbed.yaml: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def field_path(loc: tuple) -> str:
    """A pydantic error location as the YAML path a user reads: ``clients[0].uplink_mbps``."""
    parts = []
    for p in loc:
        s = str(p)
        if "[" in s:
            continue
        parts.append(f"[{p}]" if isinstance(p, int) else s)
    return ".".join(parts).replace(".[", "[")


def first_error(exc: ValidationError) -> tuple[str, str, dict]:
    """The first error of a validation: (its path, its message without pydantic's prefix, the raw error)."""
    err = exc.errors()[0]
    return field_path(err["loc"]), err["msg"].removeprefix("Value error, "), err
