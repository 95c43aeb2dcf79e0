"""What a resume checks before it continues a run: the stored settings, the options given with it, its rounds.

A run's folder holds ``settings.json`` (what the run is), ``schedule.json`` (its plan) and, after its first round,
``checkpoint/`` (where it is). ``read_settings`` reads and checks the first; ``check_resume_options`` refuses every
option a resume would otherwise ignore and says what the ones it takes do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pslsched.app.requests import TrainRequest, flag_of
from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_DATA_FILE_BYTES

SETTINGS = "settings.json"
SCHEDULE = "schedule.json"
RESUME_OPTIONS = {
    "rounds",
    "verbose",
    "progress",
}  # what a resume may set: the run's length (longer), its logging
SECTIONS = ("training", "simulation", "testbed")


def read_settings(out: Path) -> dict[str, Any]:
    """``out/settings.json`` as a mapping with its three sections; one ``InputError`` naming what is wrong."""
    file = out / SETTINGS
    if not file.is_file():
        raise InputError("--resume", f"{str(out)!r} holds no run to resume (no {SETTINGS})")
    try:
        if file.stat().st_size > MAX_DATA_FILE_BYTES:
            raise InputError("--resume", f"{file} is larger than {MAX_DATA_FILE_BYTES:,} bytes")
        stored = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError("--resume", f"unreadable {file}: {type(exc).__name__}") from None
    if not isinstance(stored, dict):
        raise InputError("--resume", f"{file} is not a mapping")
    for key in SECTIONS:
        if not isinstance(stored.get(key), dict):
            raise InputError("--resume", f"{file} has no {key!r} section (a mapping)")
    if not isinstance(stored.get("cost_only", False), bool):
        raise InputError("--resume", f"{file}: cost_only must be true or false")
    return stored


def planned_rounds(stored: dict[str, Any], done: int) -> int:
    """The rounds the stored run was asked for (its settings' simulation section; else what is done)."""
    rounds = stored["simulation"].get("rounds")
    return rounds if isinstance(rounds, int) and not isinstance(rounds, bool) and rounds >= 1 else done


def check_resume_options(request: TrainRequest, out: Path, stored: dict[str, Any], done: int) -> str:
    """A resume continues exactly its run: any other option given is refused (naming it); ``--rounds`` must be
    more than the ``done`` rounds, and a finished run needs it. Returns what the resume will do, in words."""
    default = TrainRequest()
    for name in TrainRequest.model_fields:
        if name not in RESUME_OPTIONS and getattr(request, name) != getattr(default, name):
            raise InputError(
                flag_of(name),
                f"cannot change a resumed run: {str(out)!r}'s settings.json fixes it (start a new run with --out)",
            )
    planned = planned_rounds(stored, done)
    if request.rounds is not None and request.rounds <= done:
        raise InputError(
            "--rounds",
            f"the run in {str(out)!r} has {done} round(s) done; ask for more to continue it "
            f"(without --rounds it finishes its planned {planned})",
        )
    target = request.rounds or planned
    if target <= done:
        raise InputError(
            "--resume",
            f"the run in {str(out)!r} has finished its {done} round(s); give --rounds R (more than {done}) to "
            "continue it",
        )
    given = f" (--rounds {request.rounds})" if request.rounds is not None else ""
    if done == 0:
        return f"no checkpoint yet: restarted from round 0 with its settings, to {target} round(s){given}"
    return f"continued after round {done}, to {target} round(s){given}"
