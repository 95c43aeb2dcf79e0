"""The synthetic dataset's arrays: seeded smooth class prototypes plus gaussian pixel noise (no files)."""

from __future__ import annotations

import numpy as np

_GRID = 4  # prototype knots per side: smooth enough for a CNN that pools to 2x2 to tell classes apart


def _interpolation_matrix(size: int, grid: int) -> np.ndarray:
    """``(size, grid)`` linear-interpolation weights from ``grid`` evenly spaced knots to ``size`` pixels."""
    if grid == 1:
        return np.ones((size, 1))
    pos = np.linspace(0.0, grid - 1.0, size)
    low = np.minimum(np.floor(pos).astype(int), grid - 2)
    frac = pos - low
    m = np.zeros((size, grid))
    m[np.arange(size), low] = 1.0 - frac
    m[np.arange(size), low + 1] = frac
    return m


def smooth_prototypes(rng: np.random.Generator, classes: int, channels: int, size: int) -> np.ndarray:
    """One image per class: gaussian knots on a coarse grid, bilinearly upsampled, scaled to unit pixel std."""
    grid = max(1, min(size, _GRID))
    knots = rng.standard_normal((classes, channels, grid, grid))
    m = _interpolation_matrix(size, grid)
    protos = np.einsum("hi,kcij,wj->kchw", m, knots, m)
    std = float(protos.std())
    return protos / std if std > 1e-8 else protos


def synthetic_arrays(
    seed: int, n: int, n_test: int, classes: int, size: int, channels: int, noise: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train, y_train, x_test, y_test``: each sample its class prototype plus gaussian noise of std ``noise``,
    float32 ``(count, channels, size, size)``; labels balanced (``i mod classes``, shuffled). Bit-identical per
    seed and options; the prototypes and the training set do not depend on ``n_test``."""
    proto_rng, train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    protos = smooth_prototypes(proto_rng, classes, channels, size)

    def draw(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(count, dtype=np.int64) % classes)
        x = protos[y] + noise * rng.standard_normal((count, channels, size, size))
        return x.astype(np.float32), y

    x_train, y_train = draw(train_rng, n)
    x_test, y_test = draw(test_rng, n_test)
    return x_train, y_train, x_test, y_test
