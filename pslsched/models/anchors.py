"""The anchor testbed's architectures as block lists, one block per row of the anchor sheets (for calibration).

``sched profile calibrate`` measures these here and compares them with the anchor's per-device sheets, so a block
must be exactly one sheet row (``anchor_testbed/SOURCE.md``):

- **ResNet-101** (37 rows): conv1 (7x7/2 conv + BatchNorm + ReLU), maxpool (3x3/2), 33 bottleneck blocks
  (3 + 4 + 23 + 3, torchvision's layout, expansion 4), avgpool (global average + flatten), fc. On 32x32 inputs the
  sizes match the anchor's CIFAR sheet (conv1 64x16x16, maxpool 64x8x8).
- **VGG-19** (25 rows): 16 conv (3x3 + ReLU) and 5 max pools in network order, pool (adaptive 7x7 average +
  flatten, 25088 features), fc 4096, fc 4096, fc (classes). The max pools are 2x2/2 with padding 1, which is what
  the anchor's activation sizes show (32 -> 17 -> 9 -> 5 -> 3 -> 2 on CIFAR).

The anchor's own code is not public; these are the standard architectures with the block boundaries of the sheets.
BatchNorm and dropout are kept (these models are only timed, never trained here). torch is imported inside the
functions so that ``import pslsched.profiles`` stays torch-free.

Two registries (:class:`pslsched.base.registry.Registry`): ``ANCHOR_ARCHITECTURES`` holds the block builders by
architecture (``resnet101``, ``vgg19``; ``sched profile measure --model`` accepts these names too) and
``ANCHOR_MODELS`` the anchor profiles' architectures by profile (``resnet101_cifar10``, ...), as ``AnchorModel``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pslsched.base.registry import Registry

RESNET101_LAYERS = (3, 4, 23, 3)
VGG19_CONFIG = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)


@dataclass(frozen=True)
class AnchorModel:
    """An anchor profile's architecture: which builder, on which input, with how many rows."""

    profile: str
    architecture: str
    input_shape: tuple[int, int, int]
    num_classes: int
    rows: int


Builder = Callable[[tuple[int, int, int], int], list]  # (input shape (C, H, W), classes) -> blocks

ANCHOR_ARCHITECTURES: Registry[Builder] = Registry("anchor architecture", "--model")
ANCHOR_MODELS: Registry[AnchorModel] = Registry("anchor", "--anchor", plural="anchor models")


def _register_anchor(
    profile: str, architecture: str, dataset: str, input_shape: tuple[int, int, int], rows: int
) -> None:
    """Register anchor profile ``profile``: ``architecture`` on ``dataset`` inputs, 10 classes, ``rows`` sheet rows."""
    shape = "x".join(map(str, input_shape))
    summary = f"{architecture} on {dataset} ({shape}, 10 classes), {rows} sheet rows"
    ANCHOR_MODELS.register(profile, summary)(AnchorModel(profile, architecture, input_shape, 10, rows))


_register_anchor("resnet101_cifar10", "resnet101", "CIFAR-10", (3, 32, 32), 37)
_register_anchor("resnet101_mnist", "resnet101", "MNIST", (1, 28, 28), 37)
_register_anchor("vgg19_cifar10", "vgg19", "CIFAR-10", (3, 32, 32), 25)
_register_anchor("vgg19_mnist", "vgg19", "MNIST", (1, 28, 28), 25)


def _named(name: str, *modules):
    from torch import nn

    seq = nn.Sequential(*modules)
    seq.block_name = name
    return seq


@ANCHOR_ARCHITECTURES.register(
    "resnet101", "ResNet-101 as 37 blocks: conv1, maxpool, 33 bottlenecks, avgpool, fc"
)
def resnet101_blocks(input_shape: tuple[int, int, int], num_classes: int) -> list:
    """ResNet-101 as 37 blocks (conv1, maxpool, 33 bottlenecks, avgpool, fc) for inputs ``(C, H, W)``."""
    from torch import nn

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, cin: int, width: int, stride: int):
            super().__init__()
            cout = width * self.expansion
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + identity)

    c = input_shape[0]
    blocks = [
        _named("conv1", nn.Conv2d(c, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU()),
        _named("maxpool", nn.MaxPool2d(3, stride=2, padding=1)),
    ]
    cin = 64
    for stage, (count, width) in enumerate(zip(RESNET101_LAYERS, (64, 128, 256, 512)), start=1):
        for k in range(count):
            blk = Bottleneck(cin, width, 2 if (k == 0 and stage > 1) else 1)
            blk.block_name = f"layer{stage}.{k}"
            blocks.append(blk)
            cin = width * Bottleneck.expansion
    blocks.append(_named("avgpool", nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    blocks.append(_named("fc", nn.Linear(cin, num_classes)))
    return blocks


@ANCHOR_ARCHITECTURES.register("vgg19", "VGG-19 as 25 blocks: 16 conv, 5 max pools, pool/flatten, 3 fc")
def vgg19_blocks(input_shape: tuple[int, int, int], num_classes: int) -> list:
    """VGG-19 as 25 blocks (16 conv + 5 max pool, pool/flatten, 3 fc) for inputs ``(C, H, W)``."""
    from torch import nn

    blocks = []
    cin, conv, pool = input_shape[0], 0, 0
    for v in VGG19_CONFIG:
        if v == "M":
            pool += 1
            blocks.append(_named(f"maxpool{pool}", nn.MaxPool2d(2, stride=2, padding=1)))
        else:
            conv += 1
            blocks.append(_named(f"conv{conv}", nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)))
            cin = v
    blocks.append(_named("pool", nn.AdaptiveAvgPool2d(7), nn.Flatten()))
    blocks.append(_named("fc1", nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout()))
    blocks.append(_named("fc2", nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout()))
    blocks.append(_named("fc3", nn.Linear(4096, num_classes)))
    return blocks
