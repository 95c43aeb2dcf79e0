"""Codecs: exact payload sizes, reconstruction bounds, the seed's arithmetic, compressed clocks, bad specs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pslsched.cli import main
from pslsched.core.codecs import Compression, compressed_bytes, parse_codec
from pslsched.core.testbed import build, default_testbed_path, load_testbed
from pslsched.core.validate import validate
from pslsched.simulator import SimConfig
from pslsched.solvers import solve
from pslsched.training import TrainConfig, roundtrip, run_training

torch.set_num_threads(1)

SPECS = [
    "none",
    "fp16",
    "quant:bits=3",
    "topk:r=0.2",
    "randtopk:r=0.2,alpha=0.1",
    "ms:r=0.2,bits=2",
    "ms:r=0.05,bits=3",
]


def formula(spec: str, d: int) -> int:
    """Bits of one sample of d entries, written out independently of the implementation."""
    c = parse_codec(spec)
    k = min(d, max(1, math.ceil(c.options.get("r", 1.0) * d - 1e-9)))
    return {
        "none": 32 * d,
        "fp16": 16 * d,
        "quant": int(c.options.get("bits", 0)) * d + 64,
        "topk": k * (32 + max(1, math.ceil(math.log2(d)))),
        "randtopk": k * (32 + max(1, math.ceil(math.log2(d)))),
        "ms": 32 * k + int(c.options.get("bits", 0)) * d,
    }[c.name]


@settings(max_examples=60, deadline=None)
@given(
    spec=st.sampled_from(SPECS),
    n=st.integers(1, 4),
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    zeros=st.floats(0.0, 0.9),
    signed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_roundtrip_shape_dtype_and_exact_size(spec, n, shape, zeros, signed, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *shape), generator=gen)
    x = x if signed else x.abs()
    x[torch.rand(x.shape, generator=gen) < zeros] = 0.0
    codec = parse_codec(spec)
    pay = codec.encode(x, torch.Generator().manual_seed(seed))
    y = codec.decode(pay)
    d = int(np.prod(shape))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert pay.bits == n * formula(spec, d) == n * codec.payload_bits(d)
    flat_x, flat_y = x.reshape(n, -1), y.reshape(n, -1)
    if codec.name == "none":
        assert torch.equal(y, x)
    if codec.name == "quant":
        span = flat_x.max(1, keepdim=True).values - flat_x.min(1, keepdim=True).values
        bound = span / (2 * (2 ** int(codec.options["bits"]) - 1))
        assert ((flat_y - flat_x).abs() <= bound + 1e-5).all()
    if codec.name == "ms":
        bits = int(codec.options["bits"])
        levels = 2 ** (bits - 1 if signed and (x < 0).any() else bits) - 1
        k = codec.kept(d)
        v = flat_x.abs().topk(k, dim=1).values[:, -1:]
        assert ((flat_y - flat_x).abs() <= v / levels + 1e-5).all()  # dropped entries within v / L
    if codec.name in ("topk", "ms"):
        k = codec.kept(d)
        top = flat_x.abs().topk(k, dim=1).values[:, -1:]
        kept = flat_x.abs() > top  # strictly above the threshold: certainly kept, in full
        assert torch.equal(flat_y[kept], flat_x[kept])


def test_the_seeds_arithmetic():
    ms = parse_codec("ms:r=0.25,bits=2")
    assert ms.payload_bits(16) / 8 == 20  # a 4x4 fp32 map (64 B), k = 4, b = 2 -> 20 B
    x = torch.relu(torch.randn(1, 4, 4))
    assert roundtrip(ms, x)[1] == 160
    assert 1 - parse_codec("ms:r=0.01,bits=2").payload_bits(10_000) / (32 * 10_000) == pytest.approx(0.9275)


def test_ms_beats_topk_at_the_same_budget_on_post_relu_data():
    gen = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(64, 512, generator=gen))
    ms, top = parse_codec("ms:r=0.02,bits=2"), parse_codec("topk:r=0.065")
    assert ms.bits_per_entry(512) <= top.bits_per_entry(512)
    err = {c.name: float((roundtrip(c, x)[0] - x).norm() / x.norm()) for c in (ms, top)}
    assert err["ms"] < 0.5 * err["topk"]


def test_compressed_workload_has_the_payload_sizes_and_the_solver_sees_them():
    testbed = load_testbed(default_testbed_path())
    plain = build(testbed)
    codec = parse_codec("ms:r=0.01,bits=2")
    comp = build(testbed, Compression(codec))
    a = plain.workload.cut_a_bytes
    d = np.round(a / 4 / 128).astype(int)
    expect = np.array([128 * codec.payload_bits(int(x)) / 8 for x in d])
    assert np.allclose(comp.workload.cut_a_bytes, expect)
    assert np.array_equal(comp.workload.grad_a, a)  # gradients are not compressed unless asked
    upload = comp.instance.release - comp.workload.head_fwd_ms[:, None]
    assert (upload < plain.instance.release - plain.workload.head_fwd_ms[:, None]).all()  # smaller payloads
    # the encoding is charged to the client: on a slow CPU it can cost more than the upload it saves
    assert (comp.workload.head_fwd_ms > plain.workload.head_fwd_ms).all()
    both = build(testbed, Compression(codec, cut_b=True, grads=True)).workload
    assert np.allclose(both.grad_a, compressed_bytes(codec, a, 128))
    res = solve(comp.instance, "greedy", time_limit=5)
    assert validate(comp.instance, res.schedule) == []


def test_training_bytes_follow_the_payloads_and_none_is_bit_identical():
    testbed = load_testbed(default_testbed_path())
    sim = SimConfig(rounds=1, seed=0)
    cfg = TrainConfig(dataset="synthetic:n=80,test=32", model="mlp", batch_size=4)
    codec = Compression(parse_codec("topk:r=0.05"))
    built = build(testbed, codec)
    schedule = solve(built.instance, "greedy", time_limit=5).schedule
    assert validate(built.instance, schedule) == []
    res = run_training(built.instance, built.workload, schedule, sim, cfg, compression=codec)
    w = built.workload
    samples = res.rounds["samples"].iloc[0]
    per_sample = (w.cut_a_bytes + w.cut_b_bytes + w.grad_b + w.grad_a) / 128  # every client has 4 samples
    expect = float(per_sample.sum() / len(per_sample) * samples + 2 * w.client_weights_bytes.sum())
    assert res.rounds["bytes_sent"].iloc[0] == pytest.approx(expect, rel=1e-9)
    # the codec really runs in training: the model differs from the uncompressed one
    plain = build(testbed)
    schedule = solve(plain.instance, "greedy", time_limit=5).schedule
    assert validate(plain.instance, schedule) == []
    a = run_training(plain.instance, plain.workload, schedule, sim, cfg)
    b = run_training(plain.instance, plain.workload, schedule, sim, cfg, compression=Compression())
    assert a.metrics["test_loss"].tolist() == b.metrics["test_loss"].tolist()
    pd.testing.assert_frame_equal(a.record.timeline, b.record.timeline)
    assert res.metrics["test_loss"].iloc[0] != a.metrics["test_loss"].iloc[0]


def test_cli_codecs_table(tmp_path, capsys):
    out = tmp_path / "c"
    code = main(["codecs", "--samples", "32", "--warmup-steps", "2", "--budget", "3", "--out", str(out)])
    assert code == 0
    table = pd.read_csv(out / "codecs.csv")
    assert {"codec", "bits_per_entry", "saved_pct", "rel_l2_error", "grad_cosine"} <= set(table.columns)
    assert table.loc[table.codec == "none", "rel_l2_error"].iloc[0] == 0.0
    assert "smashed data" in capsys.readouterr().out


@pytest.mark.parametrize(
    "cmd, spec, field",
    [
        ("solve", "ms:r=0,bits=2", "--codec.r"),
        ("solve", "ms:r=1.5", "--codec.r"),
        ("simulate", "quant:bits=0", "--codec.bits"),
        ("train", "zip", "--codec"),
        ("train", "topk", "--codec.r"),
        ("solve", "topk:r=0.1,bits=2", "--codec.bits"),
    ],
)
def test_bad_codec_specs_one_line_exit_2(capsys, cmd, spec, field):
    assert main([cmd, "--codec", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0]


def test_codec_with_an_instance_json_is_an_input_error(tmp_path, capsys):
    inst = tmp_path / "i.json"
    assert main(["generate", "--family", "tirana1", "--clients", "4", "--helpers", "2", "-o", str(inst)]) == 0
    assert main(["solve", "--instance", str(inst), "--codec", "fp16"]) == 2
    assert "--codec" in capsys.readouterr().err


def test_batched_training_refuses_a_codec(capsys):
    code = main(
        [
            "train",
            "--dataset",
            "synthetic:n=64,test=16",
            "--model",
            "mlp",
            "--rounds",
            "1",
            "--strategy",
            "splitfed1:batched=true",
            "--codec",
            "topk:r=0.1",
        ]
    )
    assert code == 2 and "--strategy.batched" in capsys.readouterr().err


def test_one_class_per_codec_owns_its_size_and_its_spec():
    from pslsched.core.codecs import CODECS, Codec

    assert set(CODECS.names()) == {"none", "fp16", "quant", "topk", "randtopk", "ms"}
    for spec in SPECS:
        codec = parse_codec(spec)
        assert isinstance(codec, Codec) and CODECS.get(codec.name) is type(codec)
        assert parse_codec(codec.spec) == codec  # the spec it prints reads back as the same codec
    assert parse_codec(None) == parse_codec("none") and not Compression().active


def test_planning_with_a_codec_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; from pslsched.core.codecs import parse_codec; c = parse_codec('ms:r=0.01,bits=2'); "
        "assert c.payload_bits(10000) == 23200; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
