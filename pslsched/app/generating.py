"""Generating use-case: a seeded instance of a published benchmark family (docs/generators.md)."""

from __future__ import annotations

from pathlib import Path

from pslsched.app.requests import GenerateRequest
from pslsched.base.errors import InputError
from pslsched.core.generators import MEMORY_MODES, MEMORY_SLACK
from pslsched.core.generators import generate as generate_family
from pslsched.core.instance import Instance, write_instance


def generate(request: GenerateRequest) -> Instance:
    """The instance the request describes; values are checked here (one InputError naming the option)."""
    options: dict = {}
    if request.cut is not None:
        parts = request.cut.replace(" ", "").split(",")
        if len(parts) != 2 or not all(_is_int(p) for p in parts):
            raise InputError("--cut", f"must be two integers A,B, got {request.cut!r}")
        options["cut"] = (int(parts[0]), int(parts[1]))
    if request.memory is not None:
        options["memory"] = (
            request.memory if request.memory in MEMORY_MODES else _number("--memory", request.memory)
        )
    slack = MEMORY_SLACK if request.memory_slack is None else request.memory_slack
    return generate_family(
        request.family,
        clients=_integer("--clients", request.clients),
        helpers=_integer("--helpers", request.helpers),
        seed=_integer("--seed", request.seed),
        model=request.model,
        memory_slack=_number("--memory-slack", slack),
        links=request.links,
        **options,
    )


def generate_to(request: GenerateRequest, output: str | Path) -> Instance:
    """Generate and write the instance JSON (via a temporary file: a failure leaves nothing half-written)."""
    out = Path(output)
    if out.is_dir():
        raise InputError("--output", f"{str(out)!r} is a folder")
    instance = generate(request)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_instance(instance, out)
    return instance


def _is_int(text: str) -> bool:
    return str(text).lstrip("-").isdigit()


def _integer(field: str, value) -> int:
    if isinstance(value, bool) or not _is_int(str(value)):
        raise InputError(field, f"must be an integer, got {value!r}")
    return int(value)


def _number(field: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(field, f"must be a number, got {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise InputError(field, f"must be a positive number, got {value!r}")
    return number
