"""Profiles of real models: measuring blocks here, calibration against the anchor devices, scaling, the cache,
the `measure:` testbed model, the shipped digits profile and the CLI's bad-input lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from pslsched.base.errors import InputError
from pslsched.cli import main
from pslsched.core.testbed import build, load_testbed, parse_testbed
from pslsched.core.validate import validate
from pslsched.models.anchors import ANCHOR_ARCHITECTURES, ANCHOR_MODELS, resnet101_blocks, vgg19_blocks
from pslsched.models.zoo import MODELS, build_blocks, register_model
from pslsched.profiles import ModelProfile, ProfileError, load_profile
from pslsched.profiles.calibrate import (
    Calibration,
    Factors,
    calibrate,
    calibration_error,
    scale_profile,
    write_calibration,
)
from pslsched.profiles.measure import measure_blocks
from pslsched.profiles.profile import bundled_path, profile_from_frame
from pslsched.profiles.store import read_meta, sidecar_path, write_profile
from pslsched.solvers import solve

ROOT = Path(__file__).resolve().parents[1]
FAST = {"repeats": 2, "warmup": 1, "threads": 1}


def tiny_blocks() -> list[nn.Module]:
    torch.manual_seed(0)
    return [
        nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),  # buffers too
        nn.Flatten(),  # no parameters
        nn.Sequential(nn.Linear(4 * 4 * 4, 10)),
    ]


def make_testbed(model: dict, cuts=(1, 2)) -> dict:
    return {
        "name": "measured",
        "model": model,
        "cuts": {"a": cuts[0], "b": cuts[1]},
        "helpers": [{"name": "h", "device": "here", "memory_mb": 64}],
        "clients": [{"name": "c", "count": 2, "device": "here", "uplink_mbps": 10}],
    }


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


# ---- measuring -------------------------------------------------------------------------------------------


def test_tiny_model_one_row_per_block_positive_times_exact_sizes(tmp_path):
    blocks = tiny_blocks()
    threads_before = torch.get_num_threads()
    rng_before = torch.get_rng_state()
    meas = measure_blocks(blocks, (1, 4, 4), 3, model_name="tiny", optimizer="sgd", **FAST)
    assert torch.get_num_threads() == threads_before
    assert torch.equal(torch.get_rng_state(), rng_before)
    frame = meas.frame
    assert list(frame["layer_index"]) == [0, 1, 2] and set(frame["device"]) == {"here"}
    assert (frame["fwd_ms"] > 0).all() and (frame["bwd_ms"] > 0).all()
    assert frame["update_ms"][0] > 0 and frame["update_ms"][2] > 0
    assert frame["update_ms"][1] == 0  # Flatten has nothing to update
    x = torch.zeros(3, 1, 4, 4)
    for i, blk in enumerate(blocks):
        x = blk(x)
        assert frame["activation_kb"][i] * 1024 == x.numel() * x.element_size()
        state = sum(t.numel() * t.element_size() for t in blk.state_dict().values())
        assert frame["weights_kb"][i] * 1024 == state
    assert frame["weights_kb"][0] * 1024 == (4 * 9 + 4 + 4 + 4 + 4 + 4) * 4 + 8  # conv, BN params, BN buffers
    meta = meas.meta
    assert meta["batch"] == 3 and meta["threads"] == 1 and meta["repeats"] == 2 and meta["warmup"] == 1
    assert meta["torch"] == torch.__version__ and meta["machine"]["cpu_count"]

    csv, side = write_profile(frame, meta, tmp_path / "tiny.csv")
    assert side == sidecar_path(csv) == tmp_path / "tiny.meta.json"
    prof = load_profile(csv)
    assert prof.num_layers == 3 and np.array_equal(prof.activation_kb, frame["activation_kb"].to_numpy())
    assert read_meta(csv)["batch"] == 3
    built = build(parse_testbed(make_testbed({"profile": str(csv), "batch": 3})))
    inst = built.instance
    assert inst.meta["profile_batch"] == 3 and inst.num_clients == 2
    assert np.isclose(inst.fwd[0, 0], prof.devices["here"].forward(1, 2))
    res = solve(inst, "greedy")
    assert validate(inst, res.schedule) == []


def test_measure_cli_registered_model_and_show(tmp_path, capsys):
    out = tmp_path / "mlp.csv"
    args = ["profile", "measure", "--model", "mlp", "--input-shape", "1,4,4", "--batch", "4"]
    assert main([*args, "--repeats", "2", "--warmup", "1", "--threads", "1", "-o", str(out)]) == 0
    prof = load_profile(out)
    assert prof.num_layers == len(build_blocks("mlp", (1, 4, 4), 10)) and list(prof.devices) == ["here"]
    meta = json.loads((tmp_path / "mlp.meta.json").read_text())
    assert meta["model"] == "mlp" and meta["input_shape"] == [1, 4, 4] and meta["optimizer"] == "adam"
    assert meta["blocks"] == ["fc1", "fc2", "fc3", "out"]
    capsys.readouterr()
    assert main(["profile", "show", str(out), "--layers"]) == 0
    shown = capsys.readouterr().out
    assert "measured  model mlp on 1x4x4, batch 4" in shown and "fc3" in shown and "per layer" in shown


@pytest.fixture
def fixed_input_model():
    """A user model that only takes 1x4x4 inputs (registered from Python, removed afterwards)."""

    @register_model("fixed4x4", "takes 1x4x4 only", default_cuts=(1, 2), replace=True)
    def fixed(input_shape, num_classes):
        return [nn.Flatten(), nn.Linear(16, 8), nn.Linear(8, num_classes)]

    yield "fixed4x4"
    MODELS._entries.pop("fixed4x4", None)


@pytest.mark.parametrize(
    "extra, field, text",
    [
        (["--model", "nosuch"], "--model", "unknown model 'nosuch'"),
        (["--model", "fixed4x4", "--input-shape", "1,5,5"], "--model", "cannot take this input"),
        (["--model", "mlp", "--batch", "0"], "--batch", "whole number >= 1"),
        (["--model", "mlp", "--batch", "two"], "--batch", "whole number >= 1"),
        (["--model", "mlp", "--input-shape", "1,4"], "--input-shape", "C,H,W"),
        (["--model", "mlp", "--repeats", "0"], "--repeats", ">= 1"),
    ],
)
def test_measure_bad_input_one_line_exit_2(tmp_path, capsys, fixed_input_model, extra, field, text):
    out = tmp_path / "p.csv"
    rc = main(["profile", "measure", "--warmup", "0", "--threads", "1", *extra, "-o", str(out)])
    assert rc == 2
    err = one_error_line(capsys)
    assert err.startswith(f"sched: error: {field}:") and text in err
    assert not out.exists() and not sidecar_path(out).exists()


def test_measure_fixed_model_on_its_shape_works(tmp_path, fixed_input_model):
    out = tmp_path / "f.csv"
    cmd = [
        "profile",
        "measure",
        "--model",
        "fixed4x4",
        "--input-shape",
        "1,4,4",
        "--batch",
        "2",
        "-o",
        str(out),
    ]
    assert main([*cmd, "--repeats", "1", "--warmup", "0", "--threads", "1"]) == 0
    assert load_profile(out).num_layers == 3


# ---- calibration ------------------------------------------------------------------------------------------


def synthetic(devices: dict[str, np.ndarray], sizes: np.ndarray) -> pd.DataFrame:
    """A profile frame: devices -> (3, L) array of fwd, bwd, update rows."""
    rows = []
    for name, (f, b, u) in devices.items():
        for i in range(len(f)):
            rows.append((name, i, f[i], b[i], u[i], sizes[i], sizes[i] / 2))
    return pd.DataFrame(
        rows,
        columns=["device", "layer_index", "fwd_ms", "bwd_ms", "update_ms", "activation_kb", "weights_kb"],
    )


def here_times(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 5.0, size=(3, n))


KNOWN = {"fast": Factors(0.25, 0.5), "slow": Factors(8.0, 20.0), "rpi": Factors(30.0, 45.0)}


def anchor_for(here: np.ndarray, measured_batch: float, anchor_batch: float = 128.0) -> dict[str, np.ndarray]:
    """Anchor sheets whose per-sample times are exactly KNOWN times this machine's (one aggregated, one empty)."""
    ratio = anchor_batch / measured_batch
    devs = {}
    for name, f in KNOWN.items():
        devs[name] = np.vstack([here[0] * f.fwd, here[1] * f.bwd, here[2] * f.bwd]) * ratio
    n = here.shape[1]
    starts = np.arange(0, n, 4)  # block-aggregated: each block's total on its first row, the rest zero
    agg = np.zeros_like(devs["rpi"])
    agg[:, starts] = np.add.reduceat(devs["rpi"], starts, axis=1)
    devs["rpi"] = agg
    devs["unmeasured"] = np.zeros_like(here)
    return devs


def test_calibration_recovers_known_factors_and_predicts_with_zero_error():
    n, batch = 12, 16
    here = here_times(n, 1)
    sizes = np.arange(1, n + 1, dtype=float)
    measured = profile_from_frame(synthetic({"here": here}, sizes), "measured")
    anchor = profile_from_frame(synthetic(anchor_for(here, batch), sizes), "anchor")
    assert anchor.devices["rpi"].aggregated
    cal = calibrate(measured, anchor, batch)
    assert set(cal.factors) == set(KNOWN) and cal.not_profiled == ["unmeasured"]
    for name, f in KNOWN.items():
        assert cal.factors[name].fwd == pytest.approx(f.fwd, rel=1e-12)
        assert cal.factors[name].bwd == pytest.approx(f.bwd, rel=1e-12)
    # another model, other batch, made with the same factors: predicted exactly
    other_here = here_times(7, 2)
    other_measured = profile_from_frame(synthetic({"here": other_here}, np.ones(7)), "other")
    other_anchor = profile_from_frame(synthetic(anchor_for(other_here, 8), np.ones(7)), "other_anchor")
    table = calibration_error(cal, other_measured, other_anchor, 8)
    assert list(table["device"]) == list(KNOWN)
    errors = table[["fwd_err", "bwd_err", "seg_median_abs_err", "seg_p90_abs_err"]].to_numpy()
    assert np.allclose(
        errors, 0, atol=1e-12
    )  # the aggregated device is compared at its block boundaries only
    assert (
        table.set_index("device").loc["rpi", "segments"] < table.set_index("device").loc["fast", "segments"]
    )


def test_calibration_rejects_mismatched_rows():
    here = profile_from_frame(synthetic({"here": here_times(5, 0)}, np.ones(5)), "m")
    with pytest.raises(ProfileError, match="37"):
        calibrate(here, load_profile("resnet101_cifar10"), 16)


def test_calibrate_cli_from_csv_with_check(tmp_path, capsys):
    res, vgg = load_profile("resnet101_cifar10"), load_profile("vgg19_cifar10")
    m_res = tmp_path / "res.csv"
    m_vgg = tmp_path / "vgg.csv"
    write_profile(
        synthetic({"here": here_times(res.num_layers, 3)}, res.activation_kb),
        {"kind": "measured", "batch": 16},
        m_res,
    )
    write_profile(
        synthetic({"here": here_times(vgg.num_layers, 4)}, vgg.activation_kb),
        {"kind": "measured", "batch": 8},
        m_vgg,
    )
    out = tmp_path / "cal.json"
    cmd = ["profile", "calibrate", "--anchor", "resnet101_cifar10", "--from", str(m_res)]
    assert main([*cmd, "--check", "vgg19_cifar10", "--check-from", str(m_vgg), "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    here = load_profile(m_res).devices["here"]
    for name, dev in res.devices.items():
        expect = (dev.forward(0, 37) / 128) / (here.forward(0, 37) / 16)
        assert data["factors"][name]["fwd"] == pytest.approx(expect)
    assert data["check"]["anchor"] == "vgg19_cifar10" and len(data["check"]["rows"]) == 6
    assert "error predicting vgg19_cifar10" in capsys.readouterr().out
    assert main(["profile", "calibrate", "--anchor", "nosuch", "-o", str(tmp_path / "x.json")]) == 2
    assert "--anchor" in one_error_line(capsys)
    assert main([*cmd[:4], "--from", str(m_vgg), "-o", str(tmp_path / "y.json")]) == 2
    assert "--from" in one_error_line(capsys)
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "y.json").exists()


def test_scale_then_show_round_trips(tmp_path, capsys):
    n = 6
    here = here_times(n, 5)
    m = tmp_path / "m.csv"
    write_profile(
        synthetic({"here": here}, np.arange(n, dtype=float)),
        {"kind": "measured", "batch": 16, "model": "x", "blocks": list("abcdef")},
        m,
    )
    cal = Calibration(anchor="synthetic", factors=dict(KNOWN), measured_batch=16)
    write_calibration(cal, tmp_path / "cal.json")
    out = tmp_path / "scaled.csv"
    assert main(["profile", "scale", str(m), "--factors", str(tmp_path / "cal.json"), "-o", str(out)]) == 0
    scaled = load_profile(out)
    assert list(scaled.devices) == list(KNOWN)
    for name, f in KNOWN.items():
        dev = scaled.devices[name]
        assert np.allclose(dev.fwd_ms, here[0] * f.fwd) and np.allclose(dev.bwd_ms, here[1] * f.bwd)
        assert np.allclose(dev.update_ms, here[2] * f.bwd)
    assert np.array_equal(scaled.activation_kb, np.arange(n, dtype=float))
    assert read_meta(out)["kind"] == "scaled" and read_meta(out)["batch"] == 16
    capsys.readouterr()
    assert main(["profile", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "scaled    to the anchor devices with factors from synthetic" in shown
    for name, f in KNOWN.items():
        line = next(ln for ln in shown.splitlines() if ln.startswith(name))
        total_f = here[0].sum() * f.fwd
        total_b = (here[1].sum() + here[2].sum()) * f.bwd
        assert line.split()[1:3] == [f"{total_f:.1f}", f"{total_b:.1f}"]
    assert np.allclose(scale_profile(load_profile(m), cal, devices=["slow"])["fwd_ms"], here[0] * 8.0)
    # bad input: one line, exit 2, nothing written
    bad = tmp_path / "bad.json"
    bad.write_text('{"factors": {"VM": {"fwd": -1, "bwd": 2}}}')
    for extra, field in [
        (["--factors", str(bad)], "--factors"),
        (["--factors", str(tmp_path / "cal.json"), "--devices", "tpu"], "--devices"),
    ]:
        assert main(["profile", "scale", str(m), *extra, "-o", str(tmp_path / "no.csv")]) == 2
        assert one_error_line(capsys).startswith(f"sched: error: {field}:")
    assert not (tmp_path / "no.csv").exists()


# ---- anchor architectures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("anchor", ANCHOR_MODELS.names())
def test_anchor_architectures_have_the_sheet_rows(anchor):
    spec = ANCHOR_MODELS.get(anchor)
    sheet = load_profile(anchor)
    builder = resnet101_blocks if spec.architecture == "resnet101" else vgg19_blocks
    assert ANCHOR_ARCHITECTURES.get(spec.architecture) is builder and spec.profile == anchor
    with torch.device("meta"):  # structure only: no memory, no arithmetic
        blocks = builder(spec.input_shape, spec.num_classes)
        x = torch.zeros(128, *spec.input_shape)
        kb = []
        for blk in blocks:
            x = blk(x)
            kb.append(x.numel() * 4 / 1024)
    assert len(blocks) == spec.rows == sheet.num_layers
    assert tuple(x.shape) == (128, 10)
    if anchor == "vgg19_cifar10":  # the sheet's sizes (batch 128 + ~1.57 KB each) up to the classifier
        assert np.allclose(np.array(kb[:23]), sheet.activation_kb[:23] - 1.568359, atol=1e-3)
    if anchor == "resnet101_cifar10":  # conv1, maxpool; bottleneck rows record the inner width (SOURCE.md)
        assert np.allclose(kb[:2], sheet.activation_kb[:2] - 1.568359, atol=1e-3)
        assert np.allclose(np.array(kb[2:35]) / 4, sheet.activation_kb[2:35] - 1.568359, atol=1e-3)


def test_unknown_anchor_names_the_known_ones():
    assert ANCHOR_MODELS.names() == ["resnet101_cifar10", "resnet101_mnist", "vgg19_cifar10", "vgg19_mnist"]
    with pytest.raises(InputError, match=r"^--anchor: unknown anchor 'nosuch' \(known: resnet101_cifar10, "):
        ANCHOR_MODELS.get("nosuch")
    with pytest.raises(
        InputError, match=r"^--model: unknown anchor architecture 'nosuch' \(known: resnet101, vgg19\)"
    ):
        ANCHOR_ARCHITECTURES.get("nosuch")


# ---- testbed: measure on first use, cached -----------------------------------------------------------------


def test_testbed_measure_is_cached(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PSL_SCHED_CACHE", str(tmp_path / "cache"))
    data = make_testbed({"measure": "mlp", "batch": 4, "input_shape": [1, 4, 4]}, cuts=(1, 3))
    inst = build(parse_testbed(data)).instance
    files = sorted((tmp_path / "cache" / "profiles").glob("*.csv"))
    assert len(files) == 1 and files[0].name.startswith("mlp-b4-1x4x4-c10-")
    assert inst.meta["profile_batch"] == 4
    assert "measuring 'mlp'" in capsys.readouterr().err

    def boom(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr("pslsched.profiles.measure.measure_blocks", boom)
    again = build(parse_testbed(data)).instance
    assert np.array_equal(again.fwd, inst.fwd)
    other = make_testbed({"measure": "mlp", "batch": 5, "input_shape": [1, 4, 4]}, cuts=(1, 3))
    with pytest.raises(AssertionError, match="measured again"):  # another batch is another key
        build(parse_testbed(other))


@pytest.mark.parametrize(
    "model, text",
    [
        ({"measure": "mlp", "profile": "resnet101_cifar10"}, "exactly one of profile"),
        ({"batch": 16}, "exactly one of profile"),
        ({"profile": "resnet101_cifar10", "input_shape": [1, 4, 4]}, "measure only"),
        ({"measure": "mlp", "batch": 2.5}, "whole number"),
        ({"measure": "mlp", "input_shape": [1, 4]}, "[C, H, W]"),
    ],
)
def test_testbed_model_field_errors(model, text):
    with pytest.raises(InputError, match="model") as err:
        parse_testbed(make_testbed(model))
    assert text in str(err.value)


@pytest.mark.parametrize(
    "model",
    [
        {"profile": "resnet101_cifar10"},
        {"measure": "mlp", "batch": 4, "input_shape": [1, 4, 4], "num_classes": 3},
    ],
)
def test_testbed_model_dump_round_trips(model):  # sched train --resume reads the dumped testbed back
    tb = parse_testbed(make_testbed(model))
    again = parse_testbed(json.loads(json.dumps(tb.model_dump(mode="json"))))
    assert again.model == tb.model


def test_testbed_measure_unknown_model_names_the_field(tmp_path, monkeypatch):
    monkeypatch.setenv("PSL_SCHED_CACHE", str(tmp_path))
    with pytest.raises(InputError, match=r"^model.measure: unknown model 'nosuch'"):
        build(parse_testbed(make_testbed({"measure": "nosuch", "batch": 2})))


# ---- the shipped training testbed --------------------------------------------------------------------------


def test_shipped_digits_profile_is_the_trained_models():
    tb = load_testbed(ROOT / "pslsched" / "profiles" / "examples" / "train_digits.yaml")
    assert tb.model.profile == "cnn_digits"
    prof: ModelProfile = load_profile("cnn_digits")
    meta = read_meta(bundled_path("cnn_digits"))
    assert meta["kind"] == "scaled" and meta["measured"]["model"] == "cnn"
    assert meta["measured"]["input_shape"] == [1, 8, 8] and meta["batch"] == tb.model.batch
    blocks = build_blocks(tb.training["model"], (1, 8, 8), 10)
    assert tb.training["dataset"] == "digits" and prof.num_layers == len(blocks)
    assert (tb.cuts.a, tb.cuts.b) == (tb.training["cuts"]["a"], tb.training["cuts"]["b"])
    x = torch.zeros(int(tb.model.batch), 1, 8, 8)
    for i, blk in enumerate(blocks):
        x = blk(x)
        assert prof.activation_kb[i] * 1024 == x.numel() * x.element_size()
    assert {"VM", "laptop", "d1", "jetson-gpu"} <= set(prof.devices)
    inst = build(tb).instance
    res = solve(inst, "greedy")
    assert validate(inst, res.schedule) == []


def test_import_profiles_stays_torch_free():
    code = (
        "import sys, pslsched.profiles, pslsched.profiles.measure, pslsched.profiles.calibrate, pslsched.models.anchors\n"
        "import pslsched.profiles.model_blocks, pslsched.profiles.store, pslsched.profiles.machine\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
