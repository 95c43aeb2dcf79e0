"""Per-layer cost tables of split-learning models on real devices (the anchor testbed and user CSVs).

Modules: ``profile`` (the CSV format, ``load_profile``, the bundled profiles), ``importer`` (the anchor's workbook),
``store`` (a profile CSV and its sidecar JSON on disk), ``measure`` (timing a model's blocks on this machine, and the
per-machine cache of measured profiles), ``model_blocks`` (a model's blocks by name: anchor architecture or zoo
model), ``machine`` (what identifies this machine) and ``calibrate`` (factors from this machine to the anchor
devices). Measuring and calibrating import torch only when they run: ``import pslsched.profiles`` stays torch-free.
"""

from pslsched.profiles.calibrate import (
    Calibration,
    Factors,
    calibrate,
    calibration_error,
    read_calibration,
    scale_profile,
    write_calibration,
)
from pslsched.profiles.importer import import_workbook
from pslsched.profiles.measure import Measurement, measure_blocks, measured_profile
from pslsched.profiles.model_blocks import known_models, resolve_blocks
from pslsched.profiles.profile import (
    BUNDLED_PROFILES,
    SHIPPED_PROFILES,
    DeviceProfile,
    ModelProfile,
    ProfileError,
    bundled_path,
    device_label,
    load_profile,
)
from pslsched.profiles.store import read_meta, sidecar_path, write_profile

__all__ = [
    "BUNDLED_PROFILES",
    "SHIPPED_PROFILES",
    "Calibration",
    "DeviceProfile",
    "Factors",
    "Measurement",
    "ModelProfile",
    "ProfileError",
    "bundled_path",
    "calibrate",
    "calibration_error",
    "device_label",
    "import_workbook",
    "known_models",
    "load_profile",
    "measure_blocks",
    "measured_profile",
    "read_calibration",
    "read_meta",
    "resolve_blocks",
    "scale_profile",
    "sidecar_path",
    "write_calibration",
    "write_profile",
]
