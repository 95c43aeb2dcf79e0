"""Profiles: loading bundled and user CSVs, segment sums, the anchor data quirks, the workbook importer."""

from __future__ import annotations

import numpy as np
import openpyxl
import pandas as pd
import pytest

from pslsched.profiles import (
    BUNDLED_PROFILES,
    ProfileError,
    bundled_path,
    import_workbook,
    load_profile,
)
from pslsched.profiles.profile import COLUMNS

LAYERS = {"resnet101_cifar10": 37, "resnet101_mnist": 37, "vgg19_cifar10": 25, "vgg19_mnist": 25}
DEVICES = {"VM", "laptop", "d1", "d2", "jetson-cpu", "jetson-gpu"}

TINY_ROWS = [
    # device, layer, fwd, bwd, update, activation_kb, weights_kb
    ("srv", 0, 1.0, 2.0, 0.5, 100.0, 10.0),
    ("srv", 1, 3.0, 4.0, 0.25, 50.0, 20.0),
    ("srv", 2, 5.0, 6.0, 0.0, 25.0, 30.0),
    ("srv", 3, 7.0, 8.0, 1.0, 10.0, 40.0),
    ("pi", 0, 10.0, 20.0, 0.0, 100.0, 10.0),
    ("pi", 1, 30.0, 40.0, 1.0, 50.0, 20.0),
    ("pi", 2, 50.0, 60.0, 2.0, 25.0, 30.0),
    ("pi", 3, 70.0, 80.0, 3.0, 10.0, 40.0),
]


def tiny_frame() -> pd.DataFrame:
    return pd.DataFrame(TINY_ROWS, columns=list(COLUMNS))


def write_csv(tmp_path, frame: pd.DataFrame, name: str = "tiny.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


# ---- loading ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUNDLED_PROFILES)
def test_bundled_profile_loads_by_name(name):
    prof = load_profile(name)
    assert prof.name == name
    assert prof.num_layers == LAYERS[name]
    assert set(prof.devices) == DEVICES
    for dev in prof.devices.values():
        assert len(dev.fwd_ms) == len(dev.bwd_ms) == len(dev.update_ms) == prof.num_layers
    assert len(prof.weights_kb) == prof.num_layers
    assert np.all(prof.activation_kb >= 0) and np.all(prof.weights_kb >= 0)


def test_profile_loads_by_path_same_as_by_name(tmp_path):
    by_name = load_profile("vgg19_cifar10")
    by_path = load_profile(bundled_path("vgg19_cifar10"))
    copy = tmp_path / "my_vgg.csv"
    copy.write_bytes(bundled_path("vgg19_cifar10").read_bytes())
    by_copy = load_profile(str(copy))
    assert by_copy.name == "my_vgg"
    for other in (by_path, by_copy):
        assert set(other.devices) == set(by_name.devices)
        np.testing.assert_array_equal(other.activation_kb, by_name.activation_kb)
        for d, dev in by_name.devices.items():
            np.testing.assert_array_equal(other.devices[d].fwd_ms, dev.fwd_ms)
            np.testing.assert_array_equal(other.devices[d].update_ms, dev.update_ms)


def test_unknown_profile_names_the_bundled_ones(tmp_path):
    with pytest.raises(ProfileError, match="no such file") as err:
        load_profile(tmp_path / "absent.csv")
    assert "resnet101_cifar10" in str(err.value)
    with pytest.raises(ProfileError, match="not a bundled profile"):
        load_profile("resnet50_imagenet")


# ---- segment sums ----------------------------------------------------------------------------------------


def test_segment_sums_on_a_hand_made_profile(tmp_path):
    prof = load_profile(write_csv(tmp_path, tiny_frame()))
    srv, pi = prof.device("srv"), prof.device("pi")
    assert srv.forward(1, 3) == 3.0 + 5.0
    assert srv.backward(1, 3) == (4.0 + 0.25) + (6.0 + 0.0)
    assert pi.forward(0, 1) == 10.0
    assert pi.backward(2, 4) == (60.0 + 2.0) + (80.0 + 3.0)
    assert srv.forward(2, 2) == 0.0  # empty segment
    assert prof.body_memory_mb(1, 3) == (50.0 + 25.0 + 20.0 + 30.0) / 1024
    assert prof.segment_bytes(1) == 50.0 * 1024


def test_a_loaded_profile_is_shared_read_only_and_reloaded_when_its_file_changes(tmp_path):
    path = write_csv(tmp_path, tiny_frame())
    first = load_profile(path)
    assert load_profile(path) is first  # read once: choosing a cut builds the testbed hundreds of times
    with pytest.raises(ValueError):
        first.device("srv").fwd_ms[0] = 99.0  # shared, so nobody may change it
    frame = tiny_frame()
    frame.loc[0, "fwd_ms"] = 7.5
    frame.to_csv(path, index=False)
    again = load_profile(path)
    assert again is not first and again.device(frame.loc[0, "device"]).fwd_ms[0] == 7.5


@pytest.mark.parametrize("name", ["resnet101_cifar10", "vgg19_mnist"])
def test_segment_sums_match_the_csv_for_every_cut(name):
    raw = pd.read_csv(bundled_path(name))
    prof = load_profile(name)
    for device in ("VM", "laptop", "d1"):
        rows = raw[raw.device == device].sort_values("layer_index")
        fwd = rows.fwd_ms.to_numpy()
        back = (rows.bwd_ms + rows.update_ms).to_numpy()
        dev = prof.device(device)
        n = prof.num_layers
        for a in range(1, n - 1, 3):
            for b in range(a + 1, n, 4):
                assert dev.forward(a, b) == pytest.approx(fwd[a:b].sum(), abs=1e-9)
                assert dev.backward(a, b) == pytest.approx(back[a:b].sum(), abs=1e-9)
                assert dev.forward(0, a) + dev.forward(a, b) + dev.forward(b, n) == pytest.approx(fwd.sum())


# ---- data quirks: unprofiled and block-aggregated devices ------------------------------------------------


@pytest.mark.parametrize("name", ["resnet101_mnist", "vgg19_mnist"])
@pytest.mark.parametrize("device", ["jetson-cpu", "jetson-gpu"])
def test_all_zero_devices_are_not_profiled(name, device):
    prof = load_profile(name)
    assert not prof.devices[device].profiled
    with pytest.raises(ProfileError, match="not profiled") as err:
        prof.device(device)
    assert device in str(err.value)
    with pytest.raises(ProfileError, match="not profiled"):
        prof.check_cut(device, 2, 10)


@pytest.mark.parametrize("name", ["resnet101_cifar10", "vgg19_cifar10"])
def test_jetsons_are_profiled_in_the_cifar_files(name):
    prof = load_profile(name)
    for device in ("jetson-cpu", "jetson-gpu"):
        assert prof.devices[device].profiled
        assert prof.device(device).forward(0, prof.num_layers) > 0


def test_unknown_device_lists_the_known_ones():
    prof = load_profile("resnet101_cifar10")
    with pytest.raises(ProfileError, match="not in profile") as err:
        prof.device("rpi5")
    assert "laptop" in str(err.value) and "jetson-gpu" in str(err.value)


@pytest.mark.parametrize("name", BUNDLED_PROFILES)
def test_d2_is_aggregated_and_the_measured_devices_are_not(name):
    prof = load_profile(name)
    assert prof.devices["d2"].aggregated is True
    for device in ("VM", "laptop", "d1"):
        assert prof.devices[device].aggregated is False
        assert prof.devices[device].safe_cuts() == list(range(1, prof.num_layers))


def test_d2_cut_checks_resnet_cifar():
    # non-zero d2 rows 0, 1, 2, 4, 6, 9, 33, 34, 35 (SOURCE.md): totals sit on a block's first row
    prof = load_profile("resnet101_cifar10")
    d2 = prof.devices["d2"]
    assert d2.safe_cuts() == [1, 2, 4, 6, 9, 33, 34, 35]
    prof.check_cut("d2", 4, 33)
    prof.check_cut("d2", 1, 35)
    with pytest.raises(ProfileError, match="aggregated block") as err:
        prof.check_cut("d2", 5, 33)
    assert "cut 5" in str(err.value) and "[1, 2, 4, 6, 9, 33, 34, 35]" in str(err.value)
    with pytest.raises(ProfileError, match="cut 10"):
        prof.check_cut("d2", 4, 10)
    prof.check_cut("VM", 5, 10)  # the same cut is fine on a device measured per layer


def test_d2_cut_checks_vgg_mnist():
    # non-zero d2 rows 4, 6, 24 with a zero first row: totals sit on a block's last row
    prof = load_profile("vgg19_mnist")
    assert prof.devices["d2"].safe_cuts() == [5, 7]
    prof.check_cut("d2", 5, 7)
    with pytest.raises(ProfileError, match="aggregated block"):
        prof.check_cut("d2", 4, 7)


def test_aggregated_safe_cuts_on_hand_made_rows(tmp_path):
    def profile(fwd):
        rows = [("x", n, f, f, 0.0, 1.0, 1.0) for n, f in enumerate(fwd)]
        return load_profile(write_csv(tmp_path, pd.DataFrame(rows, columns=list(COLUMNS))))

    last_row = profile([0.0, 0.0, 5.0, 0.0, 0.0, 7.0]).devices["x"]  # totals on each block's last row
    assert last_row.aggregated and last_row.safe_cuts() == [3]
    first_row = profile([5.0, 0.0, 0.0, 7.0, 0.0, 0.0]).devices["x"]  # totals on each block's first row
    assert first_row.aggregated and first_row.safe_cuts() == [3]
    dense = profile([1.0, 0.0, 2.0, 3.0, 0.0, 4.0]).devices["x"]  # two zero rows of six: not aggregated
    assert not dense.aggregated and dense.safe_cuts() == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("a, b", [(0, 5), (5, 5), (7, 5), (5, 37), (-1, 5)])
def test_cut_points_out_of_range(a, b):
    prof = load_profile("resnet101_cifar10")
    with pytest.raises(ProfileError, match="0 < a < b < 37"):
        prof.check_cut("VM", a, b)


# ---- the importer for the anchor's spreadsheet layout ----------------------------------------------------


def write_workbook(path, devices: dict[str, list[tuple]], memory: list[tuple] | None) -> None:
    """A workbook in the anchor's layout: one sheet per device and a ``memory`` sheet (left out when None)."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    sheets = dict(devices) if memory is None else {**devices, "memory": memory}
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.save(path)


def test_import_tiny_workbook_roundtrips(tmp_path):
    frame = tiny_frame()
    devices = {
        d: list(rows[["fwd_ms", "bwd_ms", "update_ms"]].itertuples(index=False, name=None))
        for d, rows in frame.groupby("device", sort=False)
    }
    memory = list(
        frame[frame.device == "srv"][["activation_kb", "weights_kb"]].itertuples(index=False, name=None)
    )
    book = tmp_path / "tiny.xlsx"
    write_workbook(book, devices, memory)
    out = tmp_path / "tiny.csv"
    got = import_workbook(book, out)
    assert list(got.columns) == list(COLUMNS)
    assert out.is_file() and not (tmp_path / "tiny.csv.tmp").exists()
    written = pd.read_csv(out)
    assert list(written.columns) == list(COLUMNS)
    pd.testing.assert_frame_equal(written, frame, check_dtype=False)
    prof = load_profile(out)
    assert prof.name == "tiny" and set(prof.devices) == {"srv", "pi"}
    assert prof.device("pi").backward(2, 4) == pytest.approx(62.0 + 83.0)


def test_import_reproduces_a_bundled_csv(tmp_path):
    """The bundled CSVs are a reshape of the anchor workbooks: rebuilding the layout and importing is lossless."""
    raw = pd.read_csv(bundled_path("vgg19_mnist"))
    devices = {
        d: list(rows.sort_values("layer_index")[["fwd_ms", "bwd_ms", "update_ms"]].itertuples(False, None))
        for d, rows in raw.groupby("device", sort=False)
    }
    first = raw[raw.device == raw.device.iloc[0]].sort_values("layer_index")
    memory = list(first[["activation_kb", "weights_kb"]].itertuples(index=False, name=None))
    book = tmp_path / "vgg19_MNIST.xlsx"
    write_workbook(book, devices, memory)
    out = tmp_path / "vgg19_mnist.csv"
    import_workbook(book, out)
    again = pd.read_csv(out)
    pd.testing.assert_frame_equal(again, raw, check_dtype=False, atol=1e-6)
    assert not load_profile(out).devices["jetson-gpu"].profiled


def test_import_without_output_only_returns_the_frame(tmp_path):
    book = tmp_path / "b.xlsx"
    write_workbook(book, {"VM": [(1.0, 2.0, 0.0), (3.0, 4.0, 0.5)]}, [(8.0, 1.0), (4.0, 2.0)])
    frame = import_workbook(book)
    assert list(frame.device) == ["VM", "VM"] and list(frame.layer_index) == [0, 1]
    assert list(tmp_path.iterdir()) == [book]


@pytest.mark.parametrize(
    "devices, memory, needle",
    [
        ({"VM": [(1.0, 2.0, 0.0)]}, None, "no 'memory' sheet"),
        ({}, [(1.0, 1.0)], "no device sheets"),
        ({"VM": [(1.0, 2.0)]}, [(1.0, 1.0)], "sheet 'VM' needs 3 columns"),
        ({"VM": [(1.0, 2.0, 0.0), (1.0, 2.0, 0.0)]}, [(1.0, 1.0)], "has 2 rows, 'memory' has 1"),
        ({"VM": [(1.0, 2.0, 0.0)]}, [(1.0,)], "'memory' needs 2 columns"),
        ({"VM": [(1.0, -2.0, 0.0)]}, [(1.0, 1.0)], "column bwd_ms"),
    ],
)
def test_import_bad_workbooks(tmp_path, devices, memory, needle):
    book = tmp_path / "bad.xlsx"
    write_workbook(book, devices, memory)
    out = tmp_path / "bad.csv"
    with pytest.raises(ProfileError, match=needle):
        import_workbook(book, out)
    assert not out.exists()


def test_import_missing_or_unreadable_workbook(tmp_path):
    with pytest.raises(ProfileError, match="no such file"):
        import_workbook(tmp_path / "absent.xlsx")
    junk = tmp_path / "junk.xlsx"
    junk.write_text("plain text")
    with pytest.raises(ProfileError, match="not a readable .xlsx"):
        import_workbook(junk)


# ---- bad CSVs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", list(COLUMNS))
def test_missing_column_is_named(tmp_path, column):
    path = write_csv(tmp_path, tiny_frame().drop(columns=[column]))
    with pytest.raises(ProfileError, match="missing column") as err:
        load_profile(path)
    assert repr(column) in str(err.value)


@pytest.mark.parametrize("column", ["fwd_ms", "bwd_ms", "update_ms", "activation_kb", "weights_kb"])
@pytest.mark.parametrize("bad", [-1.0, np.nan, "fast", np.inf])
def test_bad_value_names_the_column(tmp_path, column, bad):
    frame = tiny_frame().astype({column: object})
    frame.loc[2, column] = bad
    with pytest.raises(ProfileError, match=f"column {column} row 4 must be a number in \\[0, "):
        load_profile(write_csv(tmp_path, frame))


def test_other_bad_csvs(tmp_path):
    cases = {
        "unknown column": tiny_frame().assign(colour="red"),
        "one row per layer": tiny_frame().drop(index=5),
        "differ between devices": tiny_frame().assign(
            weights_kb=lambda f: np.where(f.device == "pi", f.weights_kb + 1, f.weights_kb)
        ),
        "layer_index must be integers": tiny_frame().assign(layer_index=lambda f: f.layer_index + 0.5),
        "no rows": tiny_frame().iloc[0:0],
    }
    for needle, frame in cases.items():
        with pytest.raises(ProfileError, match=needle):
            load_profile(write_csv(tmp_path, frame))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ProfileError, match="not a readable CSV"):
        load_profile(empty)
