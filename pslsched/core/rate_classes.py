"""Link-rate classes of the published benchmark families: each class a share of the clients, uniform inside."""

from __future__ import annotations

import numpy as np

# Rate classes as (share, low, high) in Mbit/s. Ganian et al. (Akamai report, Germany): uplinks of their model.
RATE_CLASSES = ((0.11, 2.0, 4.0), (0.39, 4.0, 10.0), (0.20, 10.0, 15.0), (0.30, 15.0, 45.0))
# Tirana et al.'s classes (their code: 30%, 42%, 12%, 28%, which sum to 112%), normalised to sum to 1.
TIRANA_RATE_CLASSES = tuple(
    (share / 1.12, low, high)
    for share, low, high in ((0.30, 1.0, 4.0), (0.42, 4.0, 10.0), (0.12, 10.0, 15.0), (0.28, 15.0, 20.0))
)


def class_rates(
    rng: np.random.Generator, size: int, classes: tuple[tuple[float, float, float], ...] = RATE_CLASSES
) -> np.ndarray:
    """``size`` rates from rate classes (share, low, high): class sizes are the shares of ``size`` (largest
    remainder rounding, as the published generators fix the counts), members shuffled, uniform inside a class."""
    shares = np.array([c[0] for c in classes], dtype=float)
    exact = shares / shares.sum() * size
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: size - counts.sum()]] += 1
    idx = rng.permutation(np.repeat(np.arange(len(classes)), counts))
    low = np.array([c[1] for c in classes])[idx]
    high = np.array([c[2] for c in classes])[idx]
    return rng.uniform(low, high)
