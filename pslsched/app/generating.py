"""Generating use-case: a seeded instance of a published benchmark family (docs/generators.md)."""

from __future__ import annotations

from pathlib import Path

from pslsched.app.requests import GenerateRequest
from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_GROUP, MAX_PAIRS, MAX_SEED, PAIR_BYTES, human_bytes
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
    clients, helpers = _integer("--clients", request.clients), _integer("--helpers", request.helpers)
    check_size(clients, helpers)
    seed = _integer("--seed", request.seed)
    if not 0 <= seed <= MAX_SEED:
        raise InputError("--seed", f"must be a whole number in [0, 2^63), got {seed}")
    return generate_family(
        request.family,
        clients=clients,
        helpers=helpers,
        seed=seed,
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


def check_size(clients: int, helpers: int) -> None:
    """Refuse more than ``MAX_GROUP`` clients or helpers, or more than ``MAX_PAIRS`` pairs, before any work; the
    message gives the memory it would need (docs/generators.md)."""
    need = human_bytes(PAIR_BYTES * max(clients, 0) * max(helpers, 0))
    for field, value in (("--clients", clients), ("--helpers", helpers)):
        if value > MAX_GROUP:
            raise InputError(
                field, f"must be at most {MAX_GROUP:,}, got {value:,} (the instance would need ~{need})"
            )
    if clients * helpers > MAX_PAIRS:
        raise InputError(
            "--clients",
            f"{clients:,} clients x {helpers:,} helpers are {clients * helpers:,} pairs and would need ~{need}; "
            f"the limit is {MAX_PAIRS:,} pairs (docs/generators.md)",
        )


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
