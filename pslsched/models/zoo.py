"""Split models: each model is an ordered list of blocks that split learning cuts into head, body and tail.

With cut points ``a < b`` the client holds the head ``blocks[:a]`` and the tail ``blocks[b:]`` (the tail ends in
the logits; the loss is computed on the client) and a helper holds the body ``blocks[a:b]``. Cut points index
blocks exactly as the rows of a per-layer cost profile do, so ``1 <= a < b <= len(blocks) - 1``.

Bundled models (``MODELS.names()``): ``cnn`` (small CNN for grey images such as 8x8 digits or 28x28 MNIST),
``resnet`` (small GroupNorm ResNet for 32x32 colour images) and ``mlp`` (flatten + linear layers, for the
smallest tests). All of them adapt to any input shape ``(C, H, W)`` with ``H, W >= 1``.

Parameters are initialised from the torch global RNG, so ``torch.manual_seed(s)`` before ``build_blocks`` gives
the same weights for the same seed. Models must be stateless and deterministic: no BatchNorm (its running
statistics would be shared across clients) and no dropout; ``build_blocks`` rejects both.

Register your own model from Python (before the CLI or the trainer looks it up)::

    from torch import nn
    from pslsched.models.zoo import block, register_model

    @register_model("mynet", "my net", default_cuts=(1, 3))
    def mynet(input_shape, num_classes):
        c, h, w = input_shape
        return [
            block("conv", nn.Conv2d(c, 8, 3, padding=1), nn.ReLU()),
            block("pool", nn.AdaptiveAvgPool2d(2), nn.Flatten()),
            block("fc1", nn.Linear(32, 32), nn.ReLU()),
            block("fc2", nn.Linear(32, num_classes)),
        ]

A builder takes ``(input_shape, num_classes)`` and returns the blocks (any ``nn.Module``; ``block`` only adds a
readable name). ``build_blocks`` checks the result with a dry forward pass and turns failures into an
``InputError`` on ``--model``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pslsched.base.errors import InputError
from pslsched.base.registry import Registry

Builder = Callable[[tuple[int, int, int], int], list[nn.Module]]

# Modules that keep state across forward passes or draw random numbers: they break the split/centralised
# equivalence (and determinism) the simulator relies on.
_FORBIDDEN = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: a builder ``(input_shape (C, H, W), num_classes) -> blocks`` and its default cuts."""

    name: str
    summary: str
    build: Builder
    default_cuts: tuple[int, int]


MODELS: Registry[ModelSpec] = Registry("model")


@dataclass
class SplitParts:
    """The three parts of a split model; their modules are shared with the block list, not copied."""

    head: nn.Sequential
    body: nn.Sequential
    tail: nn.Sequential


def _is_int(value: object) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def block(name: str, *modules: nn.Module) -> nn.Sequential:
    """One block: ``modules`` in sequence, labelled ``name`` (see ``block_names``)."""
    seq = nn.Sequential(*modules)
    seq.block_name = name
    return seq


def block_names(blocks: Sequence[nn.Module]) -> list[str]:
    """A readable name per block (the ``block`` label, else the lower-case class name)."""
    return [getattr(b, "block_name", None) or type(b).__name__.lower() for b in blocks]


def register_model(
    name: str, summary: str, default_cuts: tuple[int, int], *, replace: bool = False
) -> Callable[[Builder], Builder]:
    """Decorator: register a builder ``fn(input_shape, num_classes) -> list[nn.Module]`` as model ``name``.

    ``default_cuts`` is the ``(a, b)`` used when the user gives none; registering a taken name raises
    ``ValueError`` unless ``replace=True``.
    """
    if (
        not isinstance(default_cuts, tuple | list)
        or len(default_cuts) != 2
        or not all(_is_int(c) for c in default_cuts)
        or not 1 <= default_cuts[0] < default_cuts[1]
    ):
        raise ValueError(f"model {name!r}: default_cuts must be two ints 1 <= a < b, got {default_cuts!r}")
    cuts = (int(default_cuts[0]), int(default_cuts[1]))

    def deco(fn: Builder) -> Builder:
        MODELS.register(name, summary, replace=replace)(ModelSpec(name, summary, fn, cuts))
        return fn

    return deco


def get_model(name: str) -> ModelSpec:
    """The spec registered as ``name``; ``InputError("--model", ...)`` listing the known models otherwise."""
    return MODELS.get(name)


def _check_shape(input_shape: object, num_classes: object) -> tuple[tuple[int, int, int], int]:
    try:
        shape = tuple(input_shape)  # type: ignore[call-overload]
    except TypeError:
        shape = ()
    if len(shape) != 3 or not all(_is_int(d) and d >= 1 for d in shape):
        raise InputError("--model", f"input shape must be three positive ints (C, H, W), got {input_shape!r}")
    if not _is_int(num_classes) or num_classes < 1:
        raise InputError("--model", f"number of classes must be a positive int, got {num_classes!r}")
    return (int(shape[0]), int(shape[1]), int(shape[2])), int(num_classes)


def build_blocks(name: str, input_shape: tuple[int, int, int], num_classes: int) -> list[nn.Module]:
    """Build model ``name`` for inputs ``(C, H, W)`` and ``num_classes`` outputs, as an ordered block list.

    Raises ``InputError("--model", ...)`` for an unknown name, a bad shape, a model that cannot take this input
    (its dry forward pass on one zero sample fails or does not give ``(1, num_classes)`` logits), fewer than 3
    blocks, default cuts outside the blocks, or BatchNorm/dropout modules. Parameters come from the torch global
    RNG (seed it with ``torch.manual_seed`` first); the dry pass draws no random numbers.
    """
    spec = get_model(name)
    shape, classes = _check_shape(input_shape, num_classes)
    what = f"model {name!r} on input {shape} with {classes} classes"
    try:
        blocks = list(spec.build(shape, classes))
    except InputError:
        raise
    except Exception as exc:  # a user builder that cannot handle this shape
        raise InputError("--model", f"{what}: building failed: {type(exc).__name__}: {exc}") from exc
    bad = [i for i, b in enumerate(blocks) if not isinstance(b, nn.Module)]
    if bad:
        raise InputError("--model", f"{what}: blocks {bad} are not torch.nn.Module instances")
    if len(blocks) < 3:
        raise InputError(
            "--model", f"{what}: has {len(blocks)} blocks; a split needs at least 3 (head, body, tail)"
        )
    for i, b in enumerate(blocks):
        for sub in b.modules():
            if isinstance(sub, _FORBIDDEN):
                raise InputError(
                    "--model",
                    f"{what}: block {i} contains {type(sub).__name__}; BatchNorm (state shared across clients) "
                    "and dropout (randomness) are not supported, use GroupNorm/LayerNorm and no dropout",
                )
    try:
        with torch.no_grad():
            x = torch.zeros((1, *shape))
            for b in blocks:
                x = b(x)
    except Exception as exc:
        raise InputError("--model", f"{what}: cannot take this input: {type(exc).__name__}: {exc}") from exc
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != (1, classes):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(
            "--model", f"{what}: gives output {got} for one sample, expected (1, {classes}) logits"
        )
    a, b = spec.default_cuts
    if b > len(blocks) - 1:
        raise InputError(
            "--model", f"{what}: default cuts {spec.default_cuts} need 1 <= a < b <= {len(blocks) - 1}"
        )
    return blocks


def check_cuts(num_blocks: int, a: int, b: int, field: str = "--cuts") -> None:
    """``InputError(field, ...)`` naming the valid range unless ``1 <= a < b <= num_blocks - 1``."""
    if num_blocks < 3:
        raise InputError(
            field, f"the model has {num_blocks} blocks; a split needs at least 3 (head, body, tail)"
        )
    ok = _is_int(a) and _is_int(b) and 1 <= a < b <= num_blocks - 1
    if not ok:
        raise InputError(
            field,
            f"cuts must satisfy 1 <= a < b <= {num_blocks - 1} for a model of {num_blocks} blocks "
            f"(head blocks[:a], body blocks[a:b], tail blocks[b:] all non-empty), got a={a!r}, b={b!r}",
        )


def split(blocks: Sequence[nn.Module], a: int, b: int) -> SplitParts:
    """Head ``blocks[:a]``, body ``blocks[a:b]``, tail ``blocks[b:]`` (modules shared, not copied)."""
    check_cuts(len(blocks), a, b)
    return SplitParts(nn.Sequential(*blocks[:a]), nn.Sequential(*blocks[a:b]), nn.Sequential(*blocks[b:]))


def default_model_for(input_shape: Sequence[int]) -> str:
    """A sensible bundled model for inputs ``(C, H, W)``: ``resnet`` for colour images of 16x16 or more, else ``cnn``."""
    c, h, w = (tuple(input_shape) + (1, 1, 1))[:3]
    return "resnet" if c == 3 and min(h, w) >= 16 else "cnn"


# ---------------------------------------------------------------------------------------------- bundled models


def _relu_init(*layers: nn.Module) -> None:
    """He (Kaiming) uniform weights and zero biases for the conv/linear layers of ``layers`` (each before a ReLU).

    PyTorch's default init is too small for plain SGD on these short nets (the loss sits near log(classes) for
    epochs); this draws from the torch global RNG like the default does.
    """
    for layer in layers:
        for m in layer.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


@register_model(
    "cnn", "small CNN for grey images (8x8 digits, 28x28 MNIST); any C, H, W", default_cuts=(1, 5)
)
def cnn(input_shape: tuple[int, int, int], num_classes: int) -> list[nn.Module]:
    """6 blocks: conv1 (+ max pool 2), conv2, conv3, pool (adaptive 4x4 + flatten), fc1, fc2 (logits)."""
    c = input_shape[0]
    blocks = [
        block("conv1", nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)),
        block("conv2", nn.Conv2d(16, 32, 3, padding=1), nn.ReLU()),
        block("conv3", nn.Conv2d(32, 32, 3, padding=1), nn.ReLU()),
        block("pool", nn.AdaptiveAvgPool2d(4), nn.Flatten()),
        block("fc1", nn.Linear(32 * 4 * 4, 64), nn.ReLU()),
        block("fc2", nn.Linear(64, num_classes)),
    ]
    _relu_init(*blocks[:-1])
    return blocks


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class BasicBlock(nn.Module):
    """ResNet basic block with GroupNorm: relu(norm(conv(relu(norm(conv(x))))) + shortcut(x))."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.norm1 = _norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = _norm(cout)
        self.shortcut: nn.Module = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), _norm(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


@register_model("resnet", "small GroupNorm ResNet for 32x32 colour images; any C, H, W", default_cuts=(2, 6))
def resnet(input_shape: tuple[int, int, int], num_classes: int) -> list[nn.Module]:
    """7 blocks: stem (conv+GN+ReLU), res1 16, res2 32/2, res3 32, res4 64/2, pool (global avg + flatten), fc."""
    c = input_shape[0]
    blocks: list[nn.Module] = [
        block("stem", nn.Conv2d(c, 16, 3, padding=1, bias=False), _norm(16), nn.ReLU())
    ]
    for i, (cin, cout, stride) in enumerate([(16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2)], start=1):
        res = BasicBlock(cin, cout, stride)
        res.block_name = f"res{i}"
        blocks.append(res)
    blocks.append(block("pool", nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    blocks.append(block("fc", nn.Linear(64, num_classes)))
    for m in nn.ModuleList(blocks).modules():  # torchvision's ResNet init, from the torch global RNG
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return blocks


@register_model("mlp", "flatten + 3 linear layers; for the smallest tests", default_cuts=(1, 3))
def mlp(input_shape: tuple[int, int, int], num_classes: int) -> list[nn.Module]:
    """4 blocks: fc1 (flatten + linear 64 + ReLU), fc2 (64 + ReLU), fc3 (64 + ReLU), out (logits)."""
    c, h, w = input_shape
    blocks = [
        block("fc1", nn.Flatten(), nn.Linear(c * h * w, 64), nn.ReLU()),
        block("fc2", nn.Linear(64, 64), nn.ReLU()),
        block("fc3", nn.Linear(64, 64), nn.ReLU()),
        block("out", nn.Linear(64, num_classes)),
    ]
    _relu_init(*blocks[:-1])
    return blocks
