"""Calibration: speed factors between this machine and the anchor devices, scaling measured profiles, its error.

A **speed factor** of anchor device ``d`` is its time per sample over this machine's, for the same architecture
(the anchor model measured here, same block rows as the anchor sheet), per kind of work:

    fwd(d) = (F_d / anchor_batch) / (F_here / measured_batch)        F = forward sum over all rows
    bwd(d) = (B_d / anchor_batch) / (B_here / measured_batch)        B = backward + update sum over all rows

so a factor of 20 means "20 times slower than here, per sample". Whole-model sums are used because the anchor's
single rows are unreliable (block-aggregated ``d2``, the shifted ``jetson-cpu`` backward column, zero rows; see
``anchor_testbed/SOURCE.md``); a device whose rows are all zeros gets no factor. Times are assumed to scale
linearly with the batch (per-sample times are compared); the anchor batch is 128 (its activation sizes match it).

**Scaling** a measured profile (any model, measured here at batch ``b``) to device ``d`` multiplies its forward
times by ``fwd(d)`` and its backward and update times by ``bwd(d)``; the scaled profile is still for batch ``b``
and keeps the measured sizes. The **calibration error** is how well this predicts an anchor model the factors were
not fitted on (``calibration_error``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pslsched.profiles.profile import COLUMNS, DeviceProfile, ModelProfile, ProfileError
from pslsched.profiles.store import atomic_write

ANCHOR_BATCH = 128.0


@dataclass(frozen=True)
class Factors:
    """Per-sample time of a device over this machine's: forward, and backward + update."""

    fwd: float
    bwd: float


@dataclass
class Calibration:
    """Speed factors of the anchor devices against the machine the anchor model was measured on."""

    anchor: str
    factors: dict[str, Factors]
    measured_batch: float
    anchor_batch: float = ANCHOR_BATCH
    measured_device: str = "here"
    not_profiled: list[str] = field(default_factory=list)
    measurement: dict[str, Any] = field(default_factory=dict)
    check: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "anchor": self.anchor,
            "anchor_batch": self.anchor_batch,
            "measured_batch": self.measured_batch,
            "measured_device": self.measured_device,
            "method": "per-sample ratio of whole-model sums: fwd = F_anchor/F_here, bwd = (bwd+update)_anchor/"
            "(bwd+update)_here, both per sample; a factor > 1 means slower than the measuring machine",
            "factors": {d: {"fwd": f.fwd, "bwd": f.bwd} for d, f in self.factors.items()},
            "not_profiled": list(self.not_profiled),
            "measurement": self.measurement,
        }
        if self.check is not None:
            data["check"] = self.check
        return data


def single_device(profile: ModelProfile, device: str | None = None) -> DeviceProfile:
    """The one measured device of ``profile`` (or ``device``); an error naming the choices when ambiguous."""
    if device is not None:
        return profile.device(device)
    if len(profile.devices) != 1:
        raise ProfileError(
            f"profile {profile.name!r} has {len(profile.devices)} devices ({', '.join(profile.devices)}); "
            "name the measured one (--device)"
        )
    return profile.device(next(iter(profile.devices)))


def _per_sample(dev: DeviceProfile, n: int, batch: float) -> tuple[float, float]:
    return dev.forward(0, n) / batch, dev.backward(0, n) / batch


def calibrate(
    measured: ModelProfile,
    anchor: ModelProfile,
    measured_batch: float,
    anchor_batch: float = ANCHOR_BATCH,
    *,
    device: str | None = None,
    anchor_name: str | None = None,
    measurement: dict[str, Any] | None = None,
) -> Calibration:
    """Speed factors of every profiled device of ``anchor`` against ``measured`` (the same architecture measured here)."""
    if not (measured_batch > 0 and anchor_batch > 0):
        raise ProfileError(f"batches must be > 0, got {measured_batch} and {anchor_batch}")
    here = single_device(measured, device)
    n = anchor.num_layers
    if measured.num_layers != n:
        raise ProfileError(
            f"the measured profile has {measured.num_layers} rows but anchor {anchor.name!r} has {n}: "
            "measure the anchor's own architecture (sched profile calibrate measures it for you)"
        )
    f_here, b_here = _per_sample(here, n, measured_batch)
    if f_here <= 0 or b_here <= 0:
        raise ProfileError(
            f"the measured profile's forward and backward sums must be > 0 (device {here.name!r})"
        )
    factors, skipped = {}, []
    for name, dev in anchor.devices.items():
        if not dev.profiled:
            skipped.append(name)
            continue
        f_dev, b_dev = _per_sample(dev, n, anchor_batch)
        if f_dev <= 0 or b_dev <= 0:
            skipped.append(name)
            continue
        factors[name] = Factors(fwd=f_dev / f_here, bwd=b_dev / b_here)
    return Calibration(
        anchor=anchor_name or anchor.name,
        factors=factors,
        measured_batch=float(measured_batch),
        anchor_batch=float(anchor_batch),
        measured_device=here.name,
        not_profiled=skipped,
        measurement=dict(measurement or {}),
    )


def scale_profile(
    measured: ModelProfile,
    calibration: Calibration,
    *,
    device: str | None = None,
    devices: list[str] | None = None,
) -> pd.DataFrame:
    """The measured profile turned into one device per calibrated anchor device (profile CSV rows).

    Forward times are multiplied by the device's ``fwd`` factor, backward and update times by its ``bwd`` factor;
    sizes are kept (the batch stays the measured one).
    """
    here = single_device(measured, device)
    names = list(calibration.factors) if devices is None else devices
    unknown = [d for d in names if d not in calibration.factors]
    if unknown:
        raise ProfileError(
            f"device {unknown[0]!r} has no factor in the calibration (calibrated: {', '.join(calibration.factors)})"
        )
    if not names:
        raise ProfileError("the calibration has no device factors")
    n = measured.num_layers
    frames = []
    for name in names:
        f = calibration.factors[name]
        frames.append(
            pd.DataFrame(
                {
                    "device": name,
                    "layer_index": np.arange(n),
                    "fwd_ms": here.fwd_ms * f.fwd,
                    "bwd_ms": here.bwd_ms * f.bwd,
                    "update_ms": here.update_ms * f.bwd,
                    "activation_kb": measured.activation_kb,
                    "weights_kb": measured.weights_kb,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[list(COLUMNS)]


def _segments(dev: DeviceProfile, n: int) -> list[tuple[int, int]]:
    """Every contiguous segment [s, e) between meaningful cut points (for an aggregated device: its safe cuts)."""
    bounds = [0, *dev.safe_cuts(), n]
    return [(s, e) for i, s in enumerate(bounds) for e in bounds[i + 1 :] if (s, e) != (0, n)]


def calibration_error(
    calibration: Calibration,
    measured_other: ModelProfile,
    anchor_other: ModelProfile,
    measured_batch: float,
    *,
    device: str | None = None,
) -> pd.DataFrame:
    """How well the factors predict another anchor model: one row per device profiled in both.

    The other model (measured here at ``measured_batch``) is scaled with the factors and to the anchor batch, then
    compared with ``anchor_other``'s sheets: the signed relative error of the whole-model forward and backward
    (+ update) sums, and the median and 90th percentile of the absolute relative error of F + B over every segment
    [s, e) between meaningful cut points (heads, bodies and tails of all cut pairs; segments the sheet gives zero
    time are left out).
    """
    here = single_device(measured_other, device)
    n = anchor_other.num_layers
    if measured_other.num_layers != n:
        raise ProfileError(
            f"the measured profile has {measured_other.num_layers} rows but anchor {anchor_other.name!r} has {n}"
        )
    ratio = calibration.anchor_batch / measured_batch
    rows = []
    for name, f in calibration.factors.items():
        dev = anchor_other.devices.get(name)
        if dev is None or not dev.profiled:
            continue
        pred_f = here.fwd_ms * f.fwd * ratio
        pred_b = (here.bwd_ms + here.update_ms) * f.bwd * ratio
        true_f = dev.fwd_ms
        true_b = dev.bwd_ms + dev.update_ms
        errs = []
        for s, e in _segments(dev, n):
            truth = true_f[s:e].sum() + true_b[s:e].sum()
            if truth > 0:
                errs.append(abs((pred_f[s:e].sum() + pred_b[s:e].sum()) / truth - 1.0))
        rows.append(
            {
                "device": name,
                "fwd_factor": f.fwd,
                "bwd_factor": f.bwd,
                "pred_fwd_ms": float(pred_f.sum()),
                "true_fwd_ms": float(true_f.sum()),
                "fwd_err": float(pred_f.sum() / true_f.sum() - 1.0) if true_f.sum() > 0 else math.nan,
                "pred_bwd_ms": float(pred_b.sum()),
                "true_bwd_ms": float(true_b.sum()),
                "bwd_err": float(pred_b.sum() / true_b.sum() - 1.0) if true_b.sum() > 0 else math.nan,
                "segments": len(errs),
                "seg_median_abs_err": float(np.median(errs)) if errs else math.nan,
                "seg_p90_abs_err": float(np.percentile(errs, 90)) if errs else math.nan,
            }
        )
    return pd.DataFrame(rows)


def write_calibration(calibration: Calibration, path: str | Path) -> Path:
    """Write the calibration JSON (atomically)."""
    path = Path(path)
    atomic_write(path, json.dumps(calibration.to_dict(), indent=2, allow_nan=True) + "\n")
    return path


def read_calibration(path: str | Path) -> Calibration:
    """Read a calibration JSON written by ``write_calibration``; ``ProfileError`` naming the file and field."""
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"calibration {str(path)!r}: no such file")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProfileError(f"calibration {str(path)!r}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("factors"), dict):
        raise ProfileError(f"calibration {str(path)!r}: no 'factors' mapping")
    factors = {}
    for dev, f in data["factors"].items():
        try:
            fwd, bwd = float(f["fwd"]), float(f["bwd"])
        except (TypeError, KeyError, ValueError):
            raise ProfileError(
                f"calibration {str(path)!r}: factors.{dev} needs numbers fwd and bwd"
            ) from None
        if not (math.isfinite(fwd) and math.isfinite(bwd) and fwd > 0 and bwd > 0):
            raise ProfileError(f"calibration {str(path)!r}: factors.{dev} must be finite and > 0, got {f!r}")
        factors[str(dev)] = Factors(fwd, bwd)
    try:
        return Calibration(
            anchor=str(data.get("anchor", "?")),
            factors=factors,
            measured_batch=float(data.get("measured_batch", 0) or 0),
            anchor_batch=float(data.get("anchor_batch", ANCHOR_BATCH)),
            measured_device=str(data.get("measured_device", "here")),
            not_profiled=list(data.get("not_profiled", [])),
            measurement=dict(data.get("measurement", {}) or {}),
            check=data.get("check"),
        )
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"calibration {str(path)!r}: {exc}") from None
