"""Per-layer cost tables of split-learning models on real devices (the anchor testbed and user CSVs)."""

from profiles.importer import import_workbook
from profiles.profile import (
    BUNDLED_PROFILES,
    DeviceProfile,
    ModelProfile,
    ProfileError,
    bundled_path,
    load_profile,
)

__all__ = [
    "BUNDLED_PROFILES",
    "DeviceProfile",
    "ModelProfile",
    "ProfileError",
    "bundled_path",
    "import_workbook",
    "load_profile",
]
