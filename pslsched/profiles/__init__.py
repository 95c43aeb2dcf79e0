"""Per-layer cost tables of split-learning models on real devices (the anchor testbed and user CSVs).

Measuring a model on this machine (``pslsched.profiles.measure``) and calibrating against the anchor devices
(``pslsched.profiles.calibrate``) import torch only when they run: ``import pslsched.profiles`` stays torch-free.
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
from pslsched.profiles.profile import (
    BUNDLED_PROFILES,
    SHIPPED_PROFILES,
    DeviceProfile,
    ModelProfile,
    ProfileError,
    bundled_path,
    load_profile,
)

__all__ = [
    "BUNDLED_PROFILES",
    "SHIPPED_PROFILES",
    "Calibration",
    "DeviceProfile",
    "Factors",
    "ModelProfile",
    "ProfileError",
    "bundled_path",
    "calibrate",
    "calibration_error",
    "import_workbook",
    "load_profile",
    "read_calibration",
    "scale_profile",
    "write_calibration",
]
