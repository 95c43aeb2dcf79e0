"""A model's blocks by name, for measuring: an anchor architecture or a model of the split-model zoo.

The zoo (:mod:`pslsched.models.zoo`) imports torch, so it is imported here lazily, when a model is resolved: the one
place the profiles room reaches it (``import pslsched.profiles`` stays torch-free).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pslsched.models.anchors import ANCHOR_ARCHITECTURES
from pslsched.profiles.profile import ProfileError


def one_line(text: object) -> str:
    """A message on one line (torch errors often span several)."""
    return " ".join(str(text).split())


def resolve_blocks(name: str, input_shape: Sequence[int], num_classes: int = 10, seed: int = 0) -> list:
    """The blocks of model ``name``: an anchor architecture (``resnet101``, ``vgg19``) or a model of the split-model
    zoo (``pslsched.models.zoo``).

    Parameters come from a forked torch RNG seeded with ``seed`` (the caller's RNG state is left alone).
    Raises ``ProfileError`` with the model's own error on one line.
    """
    import torch

    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int | np.integer) and d >= 1 for d in shape):
        raise ProfileError(f"input shape must be three positive whole numbers C,H,W, got {input_shape!r}")
    anchors = ", ".join(ANCHOR_ARCHITECTURES.names())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name in ANCHOR_ARCHITECTURES:
            try:
                return list(ANCHOR_ARCHITECTURES.get(name)(tuple(int(d) for d in shape), int(num_classes)))
            except Exception as exc:
                raise ProfileError(
                    f"model {name!r} on input {shape}: {type(exc).__name__}: {one_line(exc)}"
                ) from None
        try:
            from pslsched.models import zoo
        except ModuleNotFoundError:
            raise ProfileError(
                f"unknown model {name!r} (known: {anchors}; the split-model registry is not installed)"
            ) from None
        if name not in zoo.MODELS:
            known = ", ".join(zoo.MODELS.names())
            raise ProfileError(f"unknown model {name!r} (known: {known}; anchor architectures: {anchors})")
        try:
            return list(zoo.build_blocks(name, tuple(int(d) for d in shape), int(num_classes)))
        except ValueError as exc:  # InputError("--model", ...): keep the model's own message
            raise ProfileError(one_line(str(exc).removeprefix("--model: "))) from None


def known_models() -> list[str]:
    """Names ``resolve_blocks`` accepts (zoo models when the zoo is importable, then the anchor architectures)."""
    names = ANCHOR_ARCHITECTURES.names()
    try:
        from pslsched.models import zoo

        names = zoo.MODELS.names() + names
    except ModuleNotFoundError:
        pass
    return names
