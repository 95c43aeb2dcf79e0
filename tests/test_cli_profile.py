"""`sched profile show|import`."""

from __future__ import annotations

import openpyxl

from pslsched.cli import main
from pslsched.profiles import load_profile


def test_profile_show_flags_quirks(capsys):
    assert main(["profile", "show", "resnet101_mnist"]) == 0
    out = capsys.readouterr().out
    assert "jetson-gpu" in out and "not profiled" in out and "block-aggregated" in out


def test_profile_import_roundtrip(tmp_path, capsys):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "VM"
    for row in [(1.0, 2.0, 0.5), (3.0, 4.0, 0.0)]:
        ws.append(row)
    mem = wb.create_sheet("memory")
    for row in [(100.0, 10.0), (50.0, 20.0)]:
        mem.append(row)
    book = tmp_path / "anchor.xlsx"
    wb.save(book)
    out = tmp_path / "anchor.csv"
    assert main(["profile", "import", str(book), "-o", str(out)]) == 0
    prof = load_profile(out)
    assert prof.devices["VM"].backward(0, 2) == 6.5
    assert prof.body_memory_mb(1, 2) == 70 / 1024


def test_profile_import_bad_workbook(tmp_path, capsys):
    bad = tmp_path / "bad.xlsx"
    bad.write_text("not a workbook")
    out = tmp_path / "x.csv"
    assert main(["profile", "import", str(bad), "-o", str(out)]) == 2
    assert "not a readable .xlsx" in capsys.readouterr().err
    assert not out.exists()
