"""Import the anchor testbed's original spreadsheet layout into the project's profile CSV format.

The workbook has one sheet per device (three unlabelled columns: fwd, bwd, update ms per layer) and a ``memory``
sheet (two columns: activation KB, weights KB per layer).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pslsched.profiles.profile import COLUMNS, ProfileError, profile_from_frame


def import_workbook(path: str | Path, out_csv: str | Path | None = None) -> pd.DataFrame:
    """Reshape a per-device workbook into the long CSV format; write it to ``out_csv`` when given.

    Every value is checked (via ``profile_from_frame``) before anything is written.
    """
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"workbook {str(path)!r}: no such file")
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None)
    except Exception as exc:  # openpyxl raises several unrelated types for a bad file
        raise ProfileError(f"workbook {str(path)!r}: not a readable .xlsx ({exc})") from None
    if "memory" not in sheets:
        raise ProfileError(f"workbook {str(path)!r}: no 'memory' sheet (activation KB, weights KB per layer)")
    memory = sheets.pop("memory")
    if memory.shape[1] < 2:
        raise ProfileError(f"workbook {str(path)!r}: sheet 'memory' needs 2 columns, has {memory.shape[1]}")
    if not sheets:
        raise ProfileError(f"workbook {str(path)!r}: no device sheets")
    frames = []
    for device, sheet in sheets.items():
        if sheet.shape[1] < 3:
            raise ProfileError(
                f"workbook {str(path)!r}: sheet {device!r} needs 3 columns (fwd, bwd, update ms)"
            )
        if len(sheet) != len(memory):
            raise ProfileError(
                f"workbook {str(path)!r}: sheet {device!r} has {len(sheet)} rows, 'memory' has {len(memory)}"
            )
        frames.append(
            pd.DataFrame(
                {
                    "device": str(device),
                    "layer_index": range(len(sheet)),
                    "fwd_ms": sheet.iloc[:, 0].to_numpy(),
                    "bwd_ms": sheet.iloc[:, 1].to_numpy(),
                    "update_ms": sheet.iloc[:, 2].to_numpy(),
                    "activation_kb": memory.iloc[:, 0].to_numpy(),
                    "weights_kb": memory.iloc[:, 1].to_numpy(),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)[list(COLUMNS)]
    profile_from_frame(frame, name=path.stem, source=f"workbook {str(path)!r}")
    if out_csv is not None:
        out_csv = Path(out_csv)
        tmp = out_csv.with_suffix(out_csv.suffix + ".tmp")
        frame.to_csv(tmp, index=False, float_format="%.6f")
        tmp.replace(out_csv)
    return frame
