"""Datasets (bundled, local MNIST/CIFAR-10 files, synthetic) and partitions of a training set over clients."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from pslsched.base.errors import InputError
from pslsched.training import DATASETS, PARTITIONS, Dataset, load_dataset, make_partition

torch.set_num_threads(1)


def _check_dataset(d: Dataset, shape: tuple[int, int, int], classes: int) -> None:
    assert d.input_shape == shape
    assert d.num_classes == classes
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert tuple(x.shape) == (len(y), *shape)
        assert int(y.min()) >= 0 and int(y.max()) < classes
        assert torch.isfinite(x).all()
    # standardised with the training statistics
    assert abs(float(d.x_train.mean())) < 0.05
    assert abs(float(d.x_train.std()) - 1.0) < 0.05


def _row_set(x: torch.Tensor) -> set[bytes]:
    return {row.tobytes() for row in x.reshape(len(x), -1).numpy()}


# ---------------------------------------------------------------------------------------------------- bundled


@pytest.mark.parametrize(
    ("name", "total", "shape"), [("digits", 1797, (1, 8, 8)), ("mnist5k", 5000, (1, 28, 28))]
)
def test_bundled_datasets(name: str, total: int, shape: tuple[int, int, int]) -> None:
    d = load_dataset(name, seed=0)
    _check_dataset(d, shape, 10)
    assert len(d.y_train) + len(d.y_test) == total
    assert abs(len(d.y_test) - 0.2 * total) <= 10
    # stratified: every class keeps ~20 % of its samples in the test set
    tr = np.bincount(d.y_train.numpy(), minlength=10)
    te = np.bincount(d.y_test.numpy(), minlength=10)
    assert np.all(np.abs(te / (tr + te) - 0.2) < 0.02)
    # disjoint: no training image appears in the test set (sklearn's digits holds a few duplicate images,
    # an overlapping split would share hundreds)
    shared = _row_set(d.x_train) & _row_set(d.x_test)
    assert len(shared) <= (5 if name == "digits" else 0)
    # seeded: same seed, same split; another seed, another split
    again = load_dataset(name, seed=0)
    assert torch.equal(again.y_test, d.y_test) and torch.equal(again.x_test, d.x_test)
    other = load_dataset(name, seed=1)
    assert not torch.equal(other.x_test, d.x_test)
    # fresh tensors: mutating one result does not leak into the next
    d.x_train.zero_()
    assert torch.equal(load_dataset(name, seed=0).x_train, again.x_train)


# ---------------------------------------------------------------------------------------------------- synthetic


def test_synthetic_deterministic() -> None:
    a = load_dataset("synthetic", seed=3)
    b = load_dataset("synthetic", seed=3)
    _check_dataset(a, (1, 8, 8), 10)
    assert len(a.y_train) == 512 and len(a.y_test) == 256
    for t in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, t), getattr(b, t))
    c = load_dataset("synthetic", seed=4)
    assert not torch.equal(a.x_train, c.x_train)
    assert np.bincount(a.y_train.numpy()).tolist() == [52] * 2 + [51] * 8  # balanced


def test_synthetic_options_and_learnable() -> None:
    d = load_dataset("synthetic:n=300,test=90,classes=3,size=6,channels=2,noise=0.5", seed=1)
    _check_dataset(d, (2, 6, 6), 3)
    assert len(d.y_train) == 300 and len(d.y_test) == 90
    # the training set does not depend on the test size
    e = load_dataset("synthetic:n=300,test=10,classes=3,size=6,channels=2,noise=0.5", seed=1)
    assert torch.equal(d.y_train, e.y_train)
    # learnable: nearest class mean of the training set classifies the test set well above chance
    means = torch.stack([d.x_train[d.y_train == k].mean(0) for k in range(3)]).flatten(1)
    pred = torch.cdist(d.x_test.flatten(1), means).argmin(1)
    assert float((pred == d.y_test).float().mean()) > 0.8


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("nosuch", "nosuch"),
        ("synthetic:bogus=1", "bogus"),
        ("digits:n=10", "'n'"),
        ("mnist5k:x=1", "'x'"),
        ("synthetic:n=abc", "n"),
        ("synthetic:classes=0", "classes"),
        ("synthetic:5", "key=value"),
        ("", "name"),
    ],
)
def test_bad_dataset_specs(spec: str, needle: str) -> None:
    with pytest.raises(InputError) as err:
        load_dataset(spec)
    assert err.value.field == "--dataset"
    assert needle in str(err.value)


def test_registry_names() -> None:
    assert set(DATASETS.names()) == {"digits", "mnist5k", "mnist", "cifar10", "synthetic"}
    assert set(PARTITIONS.names()) == {"iid", "dirichlet", "classes", "quantity"}
    assert all(e.summary for e in DATASETS.entries() + PARTITIONS.entries())


# ---------------------------------------------------------------------------------------------------- MNIST IDX


def _idx(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(
    folder: Path, gz: bool, n_train: int = 12, n_test: int = 6, side: int = 5
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side)),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) * 3) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        data = _idx(arr, 2051 if "images" in name else 2049)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx(tmp_path: Path, gz: bool) -> None:
    arrays = _write_mnist(tmp_path, gz)
    d = load_dataset("mnist", data_dir=tmp_path)
    _check_dataset(d, (1, 5, 5), 10)
    assert d.y_train.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert d.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    # the pixel order survives: standardisation is an increasing affine map of the raw bytes
    raw = arrays["train-images-idx3-ubyte"].reshape(-1)
    got = d.x_train.reshape(-1).numpy()
    assert np.array_equal(np.argsort(raw, kind="stable"), np.argsort(got, kind="stable"))


def test_mnist_torchvision_layout(tmp_path: Path) -> None:
    _write_mnist(tmp_path / "MNIST" / "raw", gz=True)
    assert len(load_dataset("mnist", data_dir=tmp_path).y_train) == 12


def test_mnist_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_dataset("mnist")
    assert err.value.field == "--data-dir" and "train-images-idx3-ubyte" in str(err.value)
    with pytest.raises(InputError, match="not a directory"):
        load_dataset("mnist", data_dir=tmp_path / "absent")

    _write_mnist(tmp_path, gz=False)
    labels = tmp_path / "train-labels-idx1-ubyte"
    good = labels.read_bytes()
    labels.write_bytes((2051).to_bytes(4, "big") + good[4:])  # wrong magic
    with pytest.raises(InputError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    assert err.value.field == "--data-dir"
    assert "train-labels-idx1-ubyte" in str(err.value) and "2049" in str(err.value)

    labels.write_bytes(good[:-1])  # truncated
    with pytest.raises(InputError, match="train-labels-idx1-ubyte"):
        load_dataset("mnist", data_dir=tmp_path)

    labels.write_bytes(good)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()  # missing
    with pytest.raises(InputError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    assert "t10k-images-idx3-ubyte" in str(err.value)

    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")  # corrupt .gz
    with pytest.raises(InputError, match="t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist", data_dir=tmp_path)


# ---------------------------------------------------------------------------------------------------- CIFAR-10


def _cifar_batches(n: int = 4) -> list[tuple[np.ndarray, list[int]]]:
    rng = np.random.default_rng(1)
    return [
        (rng.integers(0, 256, (n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)])
        for _ in range(6)
    ]


_BIN_NAMES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
_PY_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _write_cifar_bin(folder: Path, batches: list[tuple[np.ndarray, list[int]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in zip(_BIN_NAMES, batches):
        records = np.concatenate([np.array(labels, dtype=np.uint8)[:, None], data], axis=1)
        (folder / name).write_bytes(records.tobytes())


def _write_cifar_py(folder: Path, batches: list[tuple[np.ndarray, list[int]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in zip(_PY_NAMES, batches):
        blob = {
            b"batch_label": b"batch",
            b"data": data,
            b"labels": labels,
            b"filenames": [b"a.png"] * len(labels),
        }
        (folder / name).write_bytes(pickle.dumps(blob, protocol=2))


def _check_cifar(d: Dataset, batches: list[tuple[np.ndarray, list[int]]]) -> None:
    _check_dataset(d, (3, 32, 32), 10)
    assert len(d.y_train) == 20 and len(d.y_test) == 4
    assert d.y_train.tolist() == [v for _, labels in batches[:5] for v in labels]
    assert d.y_test.tolist() == batches[5][1]
    # per-channel standardisation
    means = d.x_train.mean(dim=(0, 2, 3))
    assert torch.allclose(means, torch.zeros(3), atol=1e-4)
    # layout: first sample's red plane is the first 1024 bytes, in row-major order
    raw_red = batches[0][0][0, :1024].astype(np.int64)
    red = d.x_train[0, 0].reshape(-1).numpy()
    assert np.array_equal(np.argsort(raw_red, kind="stable"), np.argsort(red, kind="stable"))


@pytest.mark.parametrize(
    ("fmt", "sub"), [("bin", ""), ("bin", "cifar-10-batches-bin"), ("py", ""), ("py", "cifar-10-batches-py")]
)
def test_cifar10_formats(tmp_path: Path, fmt: str, sub: str) -> None:
    batches = _cifar_batches()
    (_write_cifar_bin if fmt == "bin" else _write_cifar_py)(tmp_path / sub if sub else tmp_path, batches)
    _check_cifar(load_dataset("cifar10", data_dir=tmp_path), batches)


def test_cifar10_python_batch_from_numpy1(tmp_path: Path) -> None:
    """Batches pickled by numpy 1.x name ``numpy.core.multiarray._reconstruct``: accepted too."""
    batches = _cifar_batches()
    _write_cifar_py(tmp_path, batches)
    for name in _PY_NAMES:
        path = tmp_path / name
        blob = path.read_bytes()
        assert b"numpy._core.multiarray" in blob
        path.write_bytes(blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    _check_cifar(load_dataset("cifar10", data_dir=tmp_path), batches)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvilCall:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("evil", [_Evil, _EvilCall])
def test_cifar10_malicious_pickle_is_not_executed(tmp_path: Path, evil: type) -> None:
    batches = _cifar_batches()
    _write_cifar_py(tmp_path, batches)
    marker = tmp_path / "pwned"
    payload = {b"data": batches[0][0], b"labels": batches[0][1], b"x": evil(marker)}
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(InputError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert err.value.field == "--data-dir" and "data_batch_3" in str(err.value)
    assert not marker.exists()


def test_cifar10_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--data-dir"):
        load_dataset("cifar10")
    with pytest.raises(InputError, match="data_batch_1.bin"):
        load_dataset("cifar10", data_dir=tmp_path)  # empty directory
    batches = _cifar_batches()
    _write_cifar_bin(tmp_path, batches)
    (tmp_path / "data_batch_4.bin").unlink()
    with pytest.raises(InputError, match="data_batch_4.bin"):
        load_dataset("cifar10", data_dir=tmp_path)
    (tmp_path / "data_batch_4.bin").write_bytes(b"\x00" * 3072)  # not a whole record
    with pytest.raises(InputError, match="data_batch_4.bin"):
        load_dataset("cifar10", data_dir=tmp_path)
    py = tmp_path / "py"
    _write_cifar_py(py, batches)
    (py / "test_batch").write_bytes(
        pickle.dumps({b"data": batches[0][0].astype(np.float32), b"labels": [1]}, protocol=2)
    )
    with pytest.raises(InputError, match="test_batch"):
        load_dataset("cifar10", data_dir=py)
    (py / "test_batch").write_bytes(b"garbage")
    with pytest.raises(InputError, match="test_batch"):
        load_dataset("cifar10", data_dir=py)


# ---------------------------------------------------------------------------------------------------- partitions


def _labels(n: int = 1000, classes: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % classes)


def _check_partition(parts: list[np.ndarray], n: int, clients: int) -> None:
    assert len(parts) == clients
    every = np.concatenate(parts)
    assert every.dtype == np.int64
    assert len(np.unique(every)) == len(every)  # disjoint
    assert every.min() >= 0 and every.max() < n
    assert all(len(p) > 0 and np.all(np.diff(p) > 0) for p in parts)  # non-empty, sorted


def _mean_entropy(parts: list[np.ndarray], labels: np.ndarray) -> float:
    out = []
    for p in parts:
        freq = np.bincount(labels[p], minlength=10) / len(p)
        freq = freq[freq > 0]
        out.append(float(-(freq * np.log(freq)).sum()))
    return float(np.mean(out))


@pytest.mark.parametrize(
    "spec", ["iid", "dirichlet:0.5", "dirichlet:alpha=0.1", "classes:2", "classes:3,beta=1", "quantity:1"]
)
def test_partitions_disjoint_and_deterministic(spec: str) -> None:
    labels = _labels()
    parts = make_partition(spec, labels, 8, np.random.default_rng(5))
    _check_partition(parts, len(labels), 8)
    again = make_partition(spec, labels, 8, np.random.default_rng(5))
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = make_partition(spec, labels, 8, np.random.default_rng(6))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other))


def test_iid_near_equal() -> None:
    labels = _labels(1003)
    parts = make_partition("iid", labels, 10, np.random.default_rng(0))
    _check_partition(parts, 1003, 10)
    sizes = [len(p) for p in parts]
    assert sum(sizes) == 1003 and max(sizes) - min(sizes) <= 1


def test_dirichlet_skew_grows_as_alpha_shrinks() -> None:
    labels = _labels(2000)
    skewed = _mean_entropy(make_partition("dirichlet:0.1", labels, 10, np.random.default_rng(0)), labels)
    mild = _mean_entropy(make_partition("dirichlet:100", labels, 10, np.random.default_rng(0)), labels)
    iid = _mean_entropy(make_partition("iid", labels, 10, np.random.default_rng(0)), labels)
    assert skewed < mild - 0.5
    assert mild > np.log(10) - 0.05 and iid > np.log(10) - 0.05


def test_classes_per_client() -> None:
    labels = _labels()
    parts = make_partition("classes:2", labels, 10, np.random.default_rng(1))
    _check_partition(parts, len(labels), 10)
    held = [set(labels[p].tolist()) for p in parts]
    assert all(len(h) <= 2 for h in held)
    assert set().union(*held) == set(range(10))  # every class is used
    parts = make_partition("classes:1", labels, 10, np.random.default_rng(1))
    assert all(len(set(labels[p].tolist())) == 1 for p in parts)
    # 10 clients x 1 class over 10 classes: every sample of every class is used exactly once
    assert sum(len(p) for p in parts) == len(labels)


def test_quantity_skew() -> None:
    labels = _labels(2000)
    parts = make_partition("quantity:0.3", labels, 10, np.random.default_rng(2))
    _check_partition(parts, len(labels), 10)
    sizes = np.array([len(p) for p in parts])
    assert sizes.sum() == 2000 and sizes.max() > 3 * sizes.min()
    # labels stay roughly IID on the larger clients
    big = parts[int(sizes.argmax())]
    assert len(np.unique(labels[big])) == 10
    # even with a tiny alpha every client keeps at least one sample
    tiny = make_partition("quantity:0.001", labels[:30], 30, np.random.default_rng(0))
    assert [len(p) for p in tiny] == [1] * 30


@pytest.mark.parametrize(
    ("spec", "n", "clients", "field"),
    [
        ("iid", 20, 50, "--clients"),  # more clients than samples
        ("dirichlet:0.5", 20, 50, "--clients"),
        ("iid", 20, 0, "--clients"),
        ("dirichlet:0.001", 300, 100, "--partition"),
    ],
)
def test_empty_clients_rejected(spec: str, n: int, clients: int, field: str) -> None:
    labels = _labels(n)
    with pytest.raises(InputError) as err:
        make_partition(spec, labels, clients, np.random.default_rng(0))
    assert err.value.field == field
    if field == "--partition":
        assert "client" in str(err.value) and "fewer clients" in str(err.value)


def test_classes_pathological_client_is_named() -> None:
    """Classes 0-8 have one sample each, 20 clients x 1 class: a client beyond the first ten draws one of them
    with odds 9/10, so nearly every draw gives some one-sample class two holders, one of them empty."""
    labels = np.concatenate([np.arange(9), np.full(100, 9)])
    with pytest.raises(InputError) as err:
        make_partition("classes:1", labels, 20, np.random.default_rng(0))
    assert err.value.field == "--partition"
    assert "classes:1" in str(err.value) and "leaves client" in str(err.value)
    # the same labels over 10 clients (one holder per class) are fine
    _check_partition(make_partition("classes:1", labels, 10, np.random.default_rng(0)), len(labels), 10)


@pytest.mark.parametrize(("c", "ring_sets"), [(2, 5), (5, 2)])
def test_classes_are_drawn_at_random_per_client(c: int, ring_sets: int) -> None:
    """32 clients: a ring over the 10 classes would give only ``ring_sets`` distinct class sets (classes:5: two
    disjoint halves); a random draw gives many, still covers every class, and repeats with its seed."""
    labels = _labels(3000)
    parts = make_partition(f"classes:{c}", labels, 32, np.random.default_rng(3))
    held = [frozenset(labels[p].tolist()) for p in parts]
    assert all(len(h) <= c for h in held) and sum(len(h) == c for h in held) >= 30
    assert set().union(*held) == set(range(10))
    assert len(set(held)) > 3 * ring_sets
    again = make_partition(f"classes:{c}", labels, 32, np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("dirichlet:-1", "> 0"),
        ("dirichlet:0", "> 0"),
        ("dirichlet:abc", "abc"),
        ("dirichlet", "alpha"),
        ("classes:0", ">= 1"),
        ("classes:11", "<= 10"),
        ("classes:2,beta=0", "beta"),
        ("quantity:nan", "finite"),
        ("unknown", "unknown"),
        ("iid:3", "iid"),
        ("dirichlet:alpha=1,gamma=2", "gamma"),
    ],
)
def test_bad_partition_specs(spec: str, needle: str) -> None:
    with pytest.raises(InputError) as err:
        make_partition(spec, _labels(), 5, np.random.default_rng(0))
    assert err.value.field == "--partition"
    assert needle in str(err.value)
