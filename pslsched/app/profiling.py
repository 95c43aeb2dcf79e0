"""Profiling use-cases: measure a registered model here, measure an anchor's architecture, scale a profile.

``sched profile`` prints what these return; a bad value is one ``InputError`` naming the option.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pslsched.base.errors import InputError, ProfileError
from pslsched.profiles import (
    BUNDLED_PROFILES,
    SHIPPED_PROFILES,
    ModelProfile,
    bundled_path,
    load_profile,
    measure_blocks,
    read_meta,
    resolve_blocks,
)
from pslsched.profiles.calibrate import Calibration, read_calibration, scale_profile

Progress = Callable[[str], Callable[[int, int], None]]  # label -> progress(done, total)


def profile_path(name: str) -> Path:
    """A bundled or shipped profile's file, else the path as given."""
    return bundled_path(name) if name in BUNDLED_PROFILES + SHIPPED_PROFILES else Path(name)


def measure_model(
    model: str,
    shape,
    classes: int,
    timing: dict,
    optimizer: str,
    device: str,
    field: str,
    progress: Progress | None = None,
):
    """Resolve and measure ``model`` on this machine (a ``Measurement``); errors become one line on ``field``."""
    label = f"{model} on {'x'.join(map(str, shape))}, batch {timing['batch']}"
    try:
        blocks = resolve_blocks(model, shape, classes)
        return measure_blocks(
            blocks,
            shape,
            timing["batch"],
            num_classes=classes,
            repeats=timing["repeats"],
            warmup=timing["warmup"],
            threads=timing["threads"],
            optimizer=optimizer,
            device_name=device,
            model_name=model,
            progress=progress(label) if progress is not None else None,
        )
    except ProfileError as exc:
        raise InputError(field, str(exc)) from None


def anchor_measurement(
    anchor, from_csv: str | None, field: str, timing: dict, progress: Progress | None = None
):
    """(profile, batch, meta, Measurement or None) of an anchor's architecture: read from ``from_csv`` or measured."""
    if from_csv is not None:
        try:
            prof = load_profile(from_csv)
        except ProfileError as exc:
            raise InputError(field, str(exc)) from None
        meta = read_meta(from_csv) or {}
        batch = meta.get("batch", timing["batch"])
        if prof.num_layers != anchor.rows:
            raise InputError(
                field, f"{from_csv!r} has {prof.num_layers} rows, anchor {anchor.profile!r} has {anchor.rows}"
            )
        return prof, float(batch), meta, None
    meas = measure_model(
        anchor.architecture, anchor.input_shape, anchor.num_classes, timing, "sgd", "here", field, progress
    )
    return meas.profile(anchor.architecture), float(meas.meta["batch"]), meas.meta, meas


def scaled_profile(
    profile: str, factors: str, *, device: str | None = None, devices: list[str] | None = None
) -> tuple[ModelProfile, Calibration, object, dict]:
    """A measured profile scaled to anchor devices by a calibration: (profile, calibration, frame, sidecar meta)."""
    try:
        cal = read_calibration(factors)
    except ProfileError as exc:
        raise InputError("--factors", str(exc)) from None
    prof = load_profile(profile)
    try:
        frame = scale_profile(prof, cal, device=device, devices=devices)
    except ProfileError as exc:
        raise InputError("--devices" if devices else "--device", str(exc)) from None
    measured = read_meta(profile_path(profile)) or {}
    meta = {
        "kind": "scaled",
        "batch": measured.get("batch"),
        "source": str(profile),
        "calibration": {
            "file": str(factors),
            "anchor": cal.anchor,
            "measured_batch": cal.measured_batch,
            "anchor_batch": cal.anchor_batch,
            "factors": {
                d: {"fwd": cal.factors[d].fwd, "bwd": cal.factors[d].bwd} for d in frame["device"].unique()
            },
        },
        "blocks": measured.get("blocks"),
        "measured": measured,
    }
    return prof, cal, frame, meta
