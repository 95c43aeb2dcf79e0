"""A checkpoint's manifest: which run it belongs to (the settings' hash, seed, package version) and its files' checksums.

``run_identity`` describes a run by everything that decides its numbers except its length: the training and
simulation settings (``rounds`` left out, a resume may extend it), the seed and hashes of the schedule and of the
instance the clock runs. ``differences`` names what two identities disagree on, so a refused resume says what
differs ("seed: the checkpoint's 8, this run's 7").
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pslsched import __version__
from pslsched.core.instance import Instance
from pslsched.core.schedule import Schedule
from pslsched.simulator import SimConfig
from pslsched.training.config import TrainConfig

MANIFEST_FORMAT = 2  # state.json's layout; 1 (no manifest) cannot be verified


def canonical(value: Any) -> str:
    """The one JSON text of ``value`` that hashes are taken of (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def sha256_text(text: str) -> str:
    """The hex SHA-256 of ``text``'s UTF-8 bytes."""
    return hashlib.sha256(text.encode()).hexdigest()


def run_identity(instance: Instance, schedule: Schedule, sim: SimConfig, cfg: TrainConfig) -> dict[str, Any]:
    """What makes a run this run: settings (without ``rounds``), seed, schedule and instance hashes, version."""
    simulation = sim.model_dump(mode="json")
    simulation.pop("rounds", None)
    identity: dict[str, Any] = {
        "version": __version__,
        "seed": sim.seed,
        "training": cfg.model_dump(mode="json"),
        "simulation": simulation,
        "schedule_sha256": sha256_text(canonical(schedule.to_dict())),
        "instance_sha256": sha256_text(canonical(instance.to_dict())),
    }
    identity["settings_sha256"] = sha256_text(
        canonical({k: v for k, v in identity.items() if k != "version"})
    )
    return identity


def differences(stored: Any, current: dict[str, Any], limit: int = 3) -> list[str]:
    """Up to ``limit`` readable differences between a checkpoint's identity and this run's (empty: the same run)."""
    if not isinstance(stored, dict):
        return ["its manifest is not a mapping"]
    out: list[str] = []
    if stored.get("version") != current["version"]:
        out.append(f"written by psl-sched {stored.get('version')!r}, this is {current['version']!r}")
    if stored.get("seed") != current["seed"]:
        out.append(f"seed: the checkpoint's {stored.get('seed')!r}, this run's {current['seed']!r}")
    for section in ("training", "simulation"):
        mine, theirs = current[section], stored.get(section)
        if not isinstance(theirs, dict):
            out.append(f"{section}: missing from the checkpoint")
            continue
        for key in sorted(set(mine) | set(theirs)):
            if key == "seed" or canonical(mine.get(key)) == canonical(theirs.get(key)):
                continue
            out.append(f"{section}.{key}: the checkpoint's {theirs.get(key)!r}, this run's {mine.get(key)!r}")
    for key, what in (("schedule_sha256", "the schedule"), ("instance_sha256", "the instance (testbed)")):
        if stored.get(key) != current[key]:
            out.append(f"{what} differs from the checkpoint's")
    if not out and stored.get("settings_sha256") != current["settings_sha256"]:
        out.append("the settings' hash differs")
    return out[:limit]


def settings_differences(stored: Any, settings: dict[str, Any], limit: int = 3) -> list[str]:
    """Differences between a checkpoint's identity and a run folder's ``settings.json`` (its ``training`` and
    ``simulation`` sections, ``rounds`` aside): names what another run's checkpoint disagrees on."""
    if not isinstance(stored, dict):
        return ["its manifest is not a mapping"]
    out: list[str] = []
    sim = settings.get("simulation") or {}
    if "seed" in sim and stored.get("seed") != sim["seed"]:
        out.append(f"seed: the checkpoint's {stored.get('seed')!r}, settings.json's {sim['seed']!r}")
    for section in ("training", "simulation"):
        theirs, mine = stored.get(section), settings.get(section) or {}
        if not isinstance(theirs, dict):
            continue
        for key, value in mine.items():
            if key in ("seed", "rounds") or canonical(theirs.get(key)) == canonical(value):
                continue
            out.append(f"{section}.{key}: the checkpoint's {theirs.get(key)!r}, settings.json's {value!r}")
    return out[:limit]
