"""Data files and sizes bounded before allocation (issue 24, item 1): every reader checks what a file declares
against what it holds and the documented caps, every size option against its documented maximum, and a refusal is
one line on stderr naming the field (exit 2). Each malicious file is tiny; nothing here allocates more than a few MB.
"""

from __future__ import annotations

import gzip
import os
import pickle
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from cli_checks import refused as refuse

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_DATA_FILE_BYTES
from pslsched.training import file_formats
from pslsched.training.file_formats import read_bytes, read_idx

pytestmark = pytest.mark.filterwarnings("error")  # a warning before the error is a failure too

MNIST = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_PY = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def refused(capsys, argv: list[str], field: str, *needles: str) -> str:
    """Run ``sched ARGV``: exit 2, nothing on stdout, one line on stderr naming ``field`` (and the needles)."""
    return refuse(capsys, argv, field, *needles, stdout_empty=True)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


def refused_limited(argv: list[str], field: str, *needles: str, timeout: float = 120) -> str:
    """``refused`` in a fresh process limited to 6 GB of address space and ``timeout`` seconds: where the check
    were missing, the command would fail on its own (MemoryError, timeout), never take the machine's memory."""
    done = subprocess.run(
        [sys.executable, "-m", "pslsched.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit_memory,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith(f"sched: error: {field}") and not done.stdout, done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def train(data_dir: Path, dataset: str = "mnist") -> list[str]:
    return ["train", "--dataset", dataset, "--data-dir", str(data_dir), "--rounds", "1", "--threads", "1"]


def idx(dims: list[int], magic: int, data: bytes = b"") -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + data


def write_mnist(folder: Path, images: np.ndarray | None = None, labels: np.ndarray | None = None) -> None:
    """Four small IDX files (6 train, 3 test 4x4 images) with ``images`` / ``labels`` as the training set's."""
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 256, (6, 4, 4)) if images is None else images
    train_y = np.arange(len(train_x)) % 10 if labels is None else labels
    test_x = rng.integers(0, 256, (3, *train_x.shape[1:]))
    arrays = (train_x, train_y, test_x, np.arange(3) % 10)
    for name, arr in zip(MNIST, arrays):
        magic = 2051 if "images" in name else 2049
        (folder / name).write_bytes(idx(list(arr.shape), magic, arr.astype(np.uint8).tobytes()))


# ---------------------------------------------------------------------------------------------------- CIFAR pickles


class _View:
    """Pickles as ``numpy.ndarray(shape, "u1", b"\\0", 0, strides)``: a zero-stride view of one byte."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def __reduce__(self):
        return np.ndarray, (self.shape, "u1", b"\0", 0, (0,) * len(self.shape))


class _Empty:
    """Pickles as numpy's ``_reconstruct(ndarray, shape, "b")``: an uninitialised array of ``shape``."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return _reconstruct, (np.ndarray, self.shape, b"b")


def write_cifar(folder: Path, batch: dict) -> None:
    blob = pickle.dumps(batch, protocol=2)
    for name in CIFAR_PY:
        (folder / name).write_bytes(blob)


@pytest.mark.parametrize("gb", [10, 1000])
def test_a_tiny_cifar_batch_declaring_a_huge_array_is_refused(tmp_path: Path, capsys, gb: int) -> None:
    n = gb * 10**9 // 3072
    write_cifar(tmp_path, {b"data": _View((n, 3072)), b"labels": _View((n,))})
    assert (tmp_path / "data_batch_1").stat().st_size < 200
    refused(capsys, train(tmp_path, "cifar10"), "--data-dir", "data_batch_1", "declares", "bytes")


def test_a_cifar_batch_rebuilding_a_huge_empty_array_is_refused(tmp_path: Path, capsys) -> None:
    write_cifar(tmp_path, {b"data": _Empty((10**10 // 3072, 3072)), b"labels": [0]})
    refused(capsys, train(tmp_path, "cifar10"), "--data-dir", "data_batch_1", "declares")


def test_a_cifar_batch_of_millions_of_small_objects_is_refused_before_building_them(
    tmp_path: Path, capsys
) -> None:
    # 2 M labels pickle to ~4 MB but would be ~70 MB of Python ints (a 1 GiB file: ~20 GB): counted, not built
    write_cifar(tmp_path, {b"data": np.zeros((1, 3072), np.uint8), b"labels": [7] * 2_000_000})
    refused(
        capsys,
        train(tmp_path, "cifar10"),
        "--data-dir",
        "data_batch_1",
        "more than 1,000,000 pickle operations",
    )


def test_a_realistic_cifar_batch_is_within_the_operation_limit(tmp_path: Path) -> None:
    from pslsched.training.file_formats import read_cifar_python_batch

    n = 10_000  # a real batch: labels, file names and the data
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [i % 10 for i in range(n)],
        b"data": np.zeros((n, 3072), np.uint8),
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(n)],
    }
    (tmp_path / "b").write_bytes(pickle.dumps(batch, protocol=2))
    x, y = read_cifar_python_batch(tmp_path / "b")
    assert x.shape == (n, 3, 32, 32) and y[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_a_genuine_cifar_python_batch_still_loads(tmp_path: Path) -> None:
    from pslsched.training.file_formats import read_cifar_python_batch

    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    (tmp_path / "b").write_bytes(pickle.dumps({b"data": data, b"labels": [3, 4]}, protocol=2))
    x, y = read_cifar_python_batch(tmp_path / "b")
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [3, 4] and x.reshape(2, -1).tolist() == data.tolist()


# ---------------------------------------------------------------------------------------------------- IDX and .gz


def test_idx_dims_are_multiplied_without_overflow(tmp_path: Path, capsys) -> None:
    write_mnist(tmp_path)
    (tmp_path / MNIST[0]).write_bytes(idx([2**31, 2**31, 4], 2051))  # np.prod of these overflows to 0
    refused(capsys, train(tmp_path), "--data-dir", MNIST[0], "declares dims [2147483648, 2147483648, 4]")


def test_a_gz_declaring_more_than_the_cap_is_refused_before_decompressing(tmp_path: Path, capsys) -> None:
    write_mnist(tmp_path)
    (tmp_path / MNIST[0]).unlink()
    (tmp_path / f"{MNIST[0]}.gz").write_bytes(gzip.compress(idx([1, 65536, 65536], 2051)))  # 4 GiB declared
    refused(capsys, train(tmp_path), "--data-dir", f"{MNIST[0]}.gz", "the limit for one data file is 1.0 GiB")


def test_a_gz_expanding_past_its_header_is_read_only_as_far_as_the_header_says(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb") as fh:  # 10 28x28 images declared, 32 MiB of zeros behind them
        fh.write(idx([10, 28, 28], 2051))
        for _ in range(32):
            fh.write(bytes(1 << 20))
    assert path.stat().st_size < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="more than 7840 data bytes"):
            read_idx(path, 2051)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"decompressed {peak:,} bytes into memory"


def test_read_bytes_streams_a_gz_with_a_limit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(file_formats, "MAX_DATA_FILE_BYTES", 1 << 20)
    bomb = tmp_path / "x.gz"
    bomb.write_bytes(gzip.compress(bytes(32 << 20)))
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="decompresses to more than 1.0 MB"):
            read_bytes(bomb, "test")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"decompressed {peak:,} bytes into memory"  # the limit and a chunk, not 32 MiB
    plain = tmp_path / "data_batch_1.bin"
    plain.write_bytes(bytes((1 << 20) + 1))
    with pytest.raises(InputError, match="holds 1.0 MB; the limit for one data file"):
        read_bytes(plain, "test")
    assert MAX_DATA_FILE_BYTES == 2**30  # the documented cap (docs/training.md, Data)


def test_mnist_labels_beyond_the_class_count_are_refused(tmp_path: Path, capsys) -> None:
    write_mnist(tmp_path, labels=np.array([0, 1, 2, 255, 4, 5]))
    refused(capsys, train(tmp_path), "--data-dir", MNIST[1], "label 255 at index 3", "0..9")


def test_an_mnist_of_0x0_images_is_one_error_naming_the_file(tmp_path: Path, capsys) -> None:
    write_mnist(tmp_path, images=np.zeros((6, 0, 0), dtype=np.uint8))
    refused(capsys, train(tmp_path), "--data-dir", MNIST[0], "0x0 images")


# ---------------------------------------------------------------------------------------------------- sizes


def test_a_synthetic_set_past_the_cap_is_refused_with_the_estimate() -> None:
    argv = ["train", "--dataset", "synthetic:size=1024,n=2000", "--rounds", "1", "--threads", "1"]
    refused_limited(argv, "--dataset", "synthetic:", "would need ~18.9 GB", "the limit is 268,435,456 values")


def test_generate_refuses_more_clients_or_pairs_than_documented(tmp_path: Path) -> None:
    out = str(tmp_path / "inst.json")
    base = ["generate", "--family", "tirana1", "-o", out]
    refused_limited([*base, "--clients", "100000000", "--helpers", "5"], "--clients", "at most 100,000")
    refused_limited(
        [*base, "--clients", "100000", "--helpers", "50"], "--clients", "2,000,000 pairs", "~5.5 GB"
    )


def test_generate_refuses_helpers_and_seeds_out_of_range(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "inst.json")
    base = ["generate", "--family", "tirana1", "-o", out]
    refused(capsys, [*base, "--clients", "5", "--helpers", "100001"], "--helpers", "at most 100,000")
    refused(capsys, [*base, "--clients", "5", "--helpers", "2", "--seed", str(2**63)], "--seed", "2^63")
    assert not Path(out).exists()


@pytest.mark.parametrize(
    "argv, field, needles",
    [
        (
            ["train", "--batches-per-round", "1000000"],
            "--batches-per-round",
            ("less than or equal to 10000",),
        ),
        (
            ["train", "--batches-per-round", "10000", "--clients", "200"],
            "--batches-per-round",
            ("2,000,000 client-batches", "1,000,000 client-batches"),
        ),
        (["simulate", "--batches", "1000000"], "--batches", ("10000",)),
        (["simulate", "--batches", "5000", "--clients", "1000"], "--batches", ("5,000,000 client-batches",)),
    ],
)
def test_batches_per_round_have_a_documented_maximum(argv: list[str], field: str, needles: tuple) -> None:
    extra = ["--rounds", "1"] + (["--threads", "1"] if argv[0] == "train" else [])
    refused_limited([*argv, *extra], field, *needles, timeout=60)
