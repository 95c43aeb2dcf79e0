"""Loading per-layer profiles and summing them over layer segments.

A profile CSV has one row per (device, layer): ``device, layer_index, fwd_ms, bwd_ms, update_ms,
activation_kb, weights_kb`` (see ``anchor_testbed/SOURCE.md``). Sizes are per mini-batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from pslsched.base.errors import ProfileError

COLUMNS = ("device", "layer_index", "fwd_ms", "bwd_ms", "update_ms", "activation_kb", "weights_kb")
NUMERIC = COLUMNS[2:]
BUNDLED_PROFILES = ("resnet101_cifar10", "resnet101_mnist", "vgg19_cifar10", "vgg19_mnist")
# measured with `sched profile measure` and scaled to the anchor devices (pslsched/profiles/measured/, docs/profiles.md)
SHIPPED_PROFILES = ("cnn_digits",)
# What the anchor testbed's device names stand for (Tirana et al.'s measurements, anchor_testbed/SOURCE.md)
DEVICE_DESCRIPTIONS = {
    "d1": "Raspberry Pi 4",
    "d2": "Raspberry Pi 3",
    "jetson-cpu": "Jetson Nano, CPU",
    "jetson-gpu": "Jetson Nano, GPU",
    "VM": "cloud VM",
    "laptop": "laptop",
}


def device_label(name: str) -> str:
    """A device name with what it stands for where known: ``d1 (Raspberry Pi 4)``."""
    what = DEVICE_DESCRIPTIONS.get(name)
    return name if what is None or what == name else f"{name} ({what})"


@dataclass(frozen=True, eq=False)
class DeviceProfile:
    """Per-layer compute times of one device (arrays of length L, in ms)."""

    name: str
    fwd_ms: np.ndarray
    bwd_ms: np.ndarray
    update_ms: np.ndarray

    @property
    def profiled(self) -> bool:
        """False when every entry is zero: the device was never measured (not 'free')."""
        return bool(np.any(self.fwd_ms) or np.any(self.bwd_ms) or np.any(self.update_ms))

    @property
    def aggregated(self) -> bool:
        """True when most rows are zero and a few carry block totals (the anchor's d2 quirk)."""
        zero_rows = (self.fwd_ms == 0) & (self.bwd_ms == 0)
        return self.profiled and bool(zero_rows.sum() > len(self.fwd_ms) / 2)

    def safe_cuts(self) -> list[int]:
        """Cut positions c (layers [0,c) | [c,L)) where segment sums are meaningful.

        For a block-aggregated device the source does not say on which row of a block its total sits. A zero
        first row means totals sit on a block's last row (no real first layer costs nothing), so a cut is safe
        after a non-zero row; otherwise totals sit on a block's first row, so a cut is safe before one.
        """
        n = len(self.fwd_ms)
        if not self.aggregated:
            return list(range(1, n))
        nonzero = (self.fwd_ms != 0) | (self.bwd_ms != 0)
        if not nonzero[0]:
            return [c for c in range(1, n) if nonzero[c - 1]]
        return [c for c in range(1, n) if nonzero[c]]

    def forward(self, start: int, stop: int) -> float:
        """F(d, [start, stop)): summed forward time in ms."""
        return float(self.fwd_ms[start:stop].sum())

    def backward(self, start: int, stop: int) -> float:
        """B(d, [start, stop)): summed backward + weight-update time in ms."""
        return float(self.bwd_ms[start:stop].sum() + self.update_ms[start:stop].sum())


@dataclass(frozen=True, eq=False)
class ModelProfile:
    """One model's per-layer costs on several devices, plus its per-layer sizes."""

    name: str
    devices: dict[str, DeviceProfile]
    activation_kb: np.ndarray
    weights_kb: np.ndarray

    @property
    def num_layers(self) -> int:
        return len(self.activation_kb)

    def device(self, name: str) -> DeviceProfile:
        """The profile of device ``name``; an error if it is unknown or was never profiled."""
        if name not in self.devices:
            known = ", ".join(sorted(self.devices))
            raise ProfileError(f"device {name!r} is not in profile {self.name!r} (known: {known})")
        dev = self.devices[name]
        if not dev.profiled:
            raise ProfileError(
                f"device {name!r} has no measurements in profile {self.name!r} (all zeros: not profiled)"
            )
        return dev

    def check_cut(self, device: str, a: int, b: int) -> None:
        """Raise ProfileError unless 0 < a < b < L and both cuts are meaningful for ``device``."""
        n = self.num_layers
        if not (0 < a < b < n):
            raise ProfileError(f"cut points (a={a}, b={b}) must satisfy 0 < a < b < {n} for {self.name!r}")
        dev = self.device(device)
        if dev.aggregated:
            safe = dev.safe_cuts()
            for c in (a, b):
                if c not in safe:
                    raise ProfileError(
                        f"cut {c} falls inside an aggregated block of device {device!r} in {self.name!r}; "
                        f"cuts that are meaningful there: {safe}"
                    )

    def segment_bytes(self, layer: int) -> float:
        """Bytes of the activation produced by ``layer`` (what crosses a cut after it)."""
        return float(self.activation_kb[layer]) * 1024.0

    def body_memory_mb(self, a: int, b: int) -> float:
        """Helper memory demand of body [a, b): activations + weights, in MB."""
        return float((self.activation_kb[a:b].sum() + self.weights_kb[a:b].sum()) / 1024.0)


def bundled_path(name: str) -> Path:
    """Path of a bundled profile CSV: an anchor one (``resnet101_cifar10``, ...) or a shipped measured one."""
    folder = "measured" if name in SHIPPED_PROFILES else "anchor_testbed"
    return Path(str(resources.files("pslsched.profiles") / folder / f"{name}.csv"))


# the documented ranges (the same as pslsched.base.limits: profiles import nothing from the rooms to their right)
MAX_LAYER_MS = 1e9
MAX_SIZE_KB = 1e12
MAX_LAYERS = 100_000


def load_profile(name_or_path: str | Path) -> ModelProfile:
    """Load a bundled profile by name or a profile CSV by path."""
    text = str(name_or_path)
    if text in BUNDLED_PROFILES or text in SHIPPED_PROFILES:
        path = bundled_path(text)
        name = text
    else:
        path = Path(text)
        name = path.stem
        if not path.is_file():
            raise ProfileError(
                f"profile {text!r}: no such file, and not a bundled profile "
                f"({', '.join(BUNDLED_PROFILES + SHIPPED_PROFILES)})"
            )
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, name, text)
    cached = _LOADED.get(key)
    if cached is not None:
        return cached
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {text!r}: not a readable CSV ({str(exc).strip()})") from None
    profile = _read_only(profile_from_frame(frame, name=name, source=text))
    if len(_LOADED) >= MAX_CACHED_PROFILES:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[key] = profile
    return profile


# Loaded profiles by file identity (path, modification time, size): choosing a cut builds the testbed once per
# candidate (hundreds), and reading the CSV was two thirds of that. A changed file has a new identity.
MAX_CACHED_PROFILES = 16
_LOADED: dict[tuple, ModelProfile] = {}


def _read_only(profile: ModelProfile) -> ModelProfile:
    """The profile with its arrays made read-only: a cached profile is shared, so nobody may change it."""
    arrays = [profile.activation_kb, profile.weights_kb]
    for dev in profile.devices.values():
        arrays += [dev.fwd_ms, dev.bwd_ms, dev.update_ms]
    for arr in arrays:
        arr.flags.writeable = False
    return profile


def profile_from_frame(frame: pd.DataFrame, name: str, source: str = "profile") -> ModelProfile:
    """Build a ModelProfile from a long-format frame with the COLUMNS above, checking every value."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ProfileError(f"{source}: missing column(s) {missing}; expected {list(COLUMNS)}")
    extra = [c for c in frame.columns if c not in COLUMNS]
    if extra:
        raise ProfileError(f"{source}: unknown column(s) {extra}")
    if frame.empty:
        raise ProfileError(f"{source}: no rows")
    for col in NUMERIC:
        values = pd.to_numeric(frame[col], errors="coerce")
        high = MAX_SIZE_KB if col.endswith("_kb") else MAX_LAYER_MS
        bad = values.isna() | ~np.isfinite(values.astype(float)) | (values < 0) | (values > high)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ProfileError(
                f"{source}: column {col} row {row + 2} must be a number in [0, {high:g}], got {frame[col].iloc[row]!r}"
            )
        frame = frame.assign(**{col: values.astype(float)})
    layers = pd.to_numeric(frame["layer_index"], errors="coerce")
    if (
        layers.isna().any()
        or (layers < 0).any()
        or (layers > MAX_LAYERS).any()
        or (layers != layers.round()).any()
    ):
        raise ProfileError(f"{source}: layer_index must be integers in [0, {MAX_LAYERS}]")
    frame = frame.assign(layer_index=layers.astype(int), device=frame["device"].astype(str))
    num_layers = int(frame["layer_index"].max()) + 1
    devices: dict[str, DeviceProfile] = {}
    sizes = None
    for dev_name, rows in frame.groupby("device", sort=False):
        rows = rows.sort_values("layer_index")
        if list(rows["layer_index"]) != list(range(num_layers)):
            raise ProfileError(
                f"{source}: device {dev_name!r} must have exactly one row per layer 0..{num_layers - 1}"
            )
        devices[str(dev_name)] = DeviceProfile(
            name=str(dev_name),
            fwd_ms=rows["fwd_ms"].to_numpy(float),
            bwd_ms=rows["bwd_ms"].to_numpy(float),
            update_ms=rows["update_ms"].to_numpy(float),
        )
        dev_sizes = rows[["activation_kb", "weights_kb"]].to_numpy(float)
        if sizes is None:
            sizes = dev_sizes
        elif not np.allclose(sizes, dev_sizes, rtol=1e-9, atol=1e-9):
            raise ProfileError(
                f"{source}: activation_kb/weights_kb differ between devices (device {dev_name!r})"
            )
    assert sizes is not None
    if not math.isfinite(float(sizes.sum())):
        raise ProfileError(f"{source}: sizes must be finite")
    return ModelProfile(name=name, devices=devices, activation_kb=sizes[:, 0], weights_kb=sizes[:, 1])
