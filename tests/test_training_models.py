"""Split models: block lists, head/body/tail splits, cut checks, seeding, the registry and a quick learning check."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from pslsched.base.errors import InputError
from pslsched.models.zoo import (
    MODELS,
    SplitParts,
    block,
    block_names,
    build_blocks,
    check_cuts,
    default_model_for,
    register_model,
    split,
)

torch.set_num_threads(1)

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
BUNDLED = ["cnn", "resnet", "mlp"]


def forward(blocks: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for b in blocks:
        x = b(x)
    return x


@pytest.fixture
def scratch_names() -> Iterator[list[str]]:
    """Names registered by a test, removed from the registry afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        MODELS._entries.pop(name, None)


def test_bundled_models_are_registered() -> None:
    assert set(BUNDLED) <= set(MODELS.names())
    for entry in MODELS.entries():
        assert entry.summary and entry.fn.name == entry.name


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", BUNDLED)
def test_blocks_give_logits_and_split_composes_exactly(name: str, shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    blocks = build_blocks(name, shape, 7)
    n = len(blocks)
    assert 3 <= n <= 8
    assert len(set(block_names(blocks))) == n
    a, b = MODELS.get(name).default_cuts
    check_cuts(n, a, b)
    x = torch.randn(3, *shape)
    with torch.no_grad():
        full = forward(blocks, x)
        assert full.shape == (3, 7)
        assert torch.isfinite(full).all()
        for a, b in itertools.combinations(range(1, n), 2):
            parts = split(blocks, a, b)
            assert isinstance(parts, SplitParts)
            assert (len(parts.head), len(parts.body), len(parts.tail)) == (a, b - a, n - b)
            out = parts.tail(parts.body(parts.head(x)))
            assert torch.equal(out, full), (a, b)
    # the parts share the blocks' modules (training a part trains the model)
    parts = split(blocks, 1, n - 1)
    assert parts.head[0] is blocks[0] and parts.body[0] is blocks[1] and parts.tail[-1] is blocks[-1]


@pytest.mark.parametrize("name", BUNDLED)
def test_same_seed_same_weights_other_seed_different(name: str) -> None:
    def params(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return [p.detach().clone() for b in build_blocks(name, (1, 8, 8), 10) for p in b.parameters()]

    first, again, other = params(3), params(3), params(4)
    assert len(first) == len(again) == len(other) > 0
    assert all(torch.equal(p, q) for p, q in zip(first, again))
    assert not all(torch.equal(p, q) for p, q in zip(first, other))
    random = [
        (p, q) for p, q in zip(first, other) if p.unique().numel() > 1
    ]  # not the constant GN/bias inits
    assert len(random) >= 3 and not any(torch.equal(p, q) for p, q in random)


@pytest.mark.parametrize("name", BUNDLED)
def test_no_batchnorm_or_dropout_and_gradients_reach_every_block(name: str) -> None:
    torch.manual_seed(0)
    blocks = build_blocks(name, (3, 32, 32), 5)
    for b in blocks:
        for m in b.modules():
            assert not isinstance(m, nn.modules.batchnorm._BatchNorm | nn.modules.dropout._DropoutNd)
    loss = nn.functional.cross_entropy(forward(blocks, torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for i, b in enumerate(blocks):
        grads = [p.grad for p in b.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), i
        if grads:
            assert any(g.abs().sum() > 0 for g in grads), i


@pytest.mark.parametrize(
    ("a", "b"),
    [(0, 3), (1, 6), (2, 7), (3, 3), (4, 2), (-1, 2), (1, 1), (1.0, 3)],
)
def test_check_cuts_rejects_outside_blocks(a: int, b: int) -> None:
    with pytest.raises(InputError) as err:
        check_cuts(6, a, b)
    assert err.value.field == "--cuts"
    assert "1 <= a < b <= 5" in str(err.value) and str(err.value).startswith("--cuts:")
    with pytest.raises(InputError) as err:
        check_cuts(6, a, b, field="--split")
    assert err.value.field == "--split" and "1 <= a < b <= 5" in str(err.value)


def test_check_cuts_accepts_every_valid_pair_and_split_checks() -> None:
    for a, b in itertools.combinations(range(1, 6), 2):
        check_cuts(6, a, b)
    with pytest.raises(InputError, match="at least 3"):
        check_cuts(2, 1, 2)
    torch.manual_seed(0)
    blocks = build_blocks("mlp", (1, 8, 8), 3)
    with pytest.raises(InputError, match=rf"1 <= a < b <= {len(blocks) - 1}"):
        split(blocks, 0, 2)
    with pytest.raises(InputError):
        split(blocks, 1, len(blocks))


def test_unknown_model_is_an_input_error() -> None:
    with pytest.raises(InputError) as err:
        build_blocks("nosuchnet", (1, 8, 8), 10)
    assert err.value.field == "--model"
    assert "nosuchnet" in str(err.value) and "cnn" in str(err.value)


@pytest.mark.parametrize(
    ("shape", "classes"),
    [((8, 8), 10), ((1, 0, 8), 10), ((1, 8, 8), 0), ((1, 8, 8.0), 10), ((1, 8, 8), True)],
)
def test_bad_shape_or_classes_is_an_input_error(shape: tuple, classes: int) -> None:
    with pytest.raises(InputError) as err:
        build_blocks("cnn", shape, classes)  # type: ignore[arg-type]
    assert err.value.field == "--model"


def test_user_registered_model_works_through_build_blocks(scratch_names: list[str]) -> None:
    @register_model("test_tiny", "a tiny user net", default_cuts=(1, 3))
    def tiny(input_shape: tuple[int, int, int], num_classes: int) -> list[nn.Module]:
        c, _, _ = input_shape
        return [
            block("conv", nn.Conv2d(c, 4, 3, padding=1), nn.ReLU()),
            block("pool", nn.AdaptiveAvgPool2d(2), nn.Flatten()),
            nn.Sequential(nn.Linear(16, 8), nn.ReLU()),
            block("out", nn.Linear(8, num_classes)),
        ]

    scratch_names.append("test_tiny")
    assert "test_tiny" in MODELS.names() and MODELS.get("test_tiny").default_cuts == (1, 3)
    assert MODELS.get("test_tiny").build is tiny
    torch.manual_seed(0)
    blocks = build_blocks("test_tiny", (2, 9, 11), 4)
    assert block_names(blocks) == ["conv", "pool", "sequential", "out"]
    x = torch.randn(5, 2, 9, 11)
    parts = split(blocks, *MODELS.get("test_tiny").default_cuts)
    with torch.no_grad():
        assert torch.equal(parts.tail(parts.body(parts.head(x))), forward(blocks, x))
        assert forward(blocks, x).shape == (5, 4)


def test_registering_a_duplicate_name_raises(scratch_names: list[str]) -> None:
    def builder(input_shape: tuple[int, int, int], num_classes: int) -> list[nn.Module]:
        return [
            nn.Flatten(),
            nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], 4),
            nn.Linear(4, num_classes),
        ]

    with pytest.raises(ValueError, match="registered twice"):
        register_model("cnn", "again", default_cuts=(1, 2))(builder)
    assert MODELS.get("cnn").build is not builder
    register_model("test_dup", "first", default_cuts=(1, 2))(builder)
    scratch_names.append("test_dup")
    with pytest.raises(ValueError, match="registered twice"):
        register_model("test_dup", "second", default_cuts=(1, 2))(builder)
    register_model("test_dup", "second", default_cuts=(1, 2), replace=True)(builder)
    assert MODELS.get("test_dup").summary == "second"
    with pytest.raises(ValueError, match="default_cuts"):
        register_model("test_badcuts", "x", default_cuts=(2, 2))


def test_build_blocks_explains_models_that_cannot_take_the_input(scratch_names: list[str]) -> None:
    @register_model("test_fixed", "needs 1x8x8", default_cuts=(1, 2))
    def fixed(input_shape: tuple[int, int, int], num_classes: int) -> list[nn.Module]:
        return [nn.Flatten(), nn.Linear(64, 8), nn.Linear(8, num_classes)]

    @register_model("test_bn", "uses BatchNorm", default_cuts=(1, 2))
    def with_bn(input_shape: tuple[int, int, int], num_classes: int) -> list[nn.Module]:
        return [
            nn.Sequential(nn.Conv2d(input_shape[0], 4, 1), nn.BatchNorm2d(4)),
            nn.Flatten(),
            nn.LazyLinear(num_classes),
        ]

    @register_model("test_short", "two blocks", default_cuts=(1, 2))
    def short(input_shape: tuple[int, int, int], num_classes: int) -> list[nn.Module]:
        return [nn.Flatten(), nn.LazyLinear(num_classes)]

    @register_model("test_cuts", "default cuts too far", default_cuts=(1, 5))
    def far(input_shape: tuple[int, int, int], num_classes: int) -> list[nn.Module]:
        return [nn.Flatten(), nn.LazyLinear(4), nn.Linear(4, num_classes)]

    scratch_names.extend(["test_fixed", "test_bn", "test_short", "test_cuts"])
    assert build_blocks("test_fixed", (1, 8, 8), 3)[-1].out_features == 3
    with pytest.raises(InputError, match=r"test_fixed.*\(1, 28, 28\).*cannot take this input") as err:
        build_blocks("test_fixed", (1, 28, 28), 3)
    assert err.value.field == "--model"
    with pytest.raises(InputError, match="BatchNorm2d"):
        build_blocks("test_bn", (1, 8, 8), 3)
    with pytest.raises(InputError, match="at least 3"):
        build_blocks("test_short", (1, 8, 8), 3)
    with pytest.raises(InputError, match=r"default cuts \(1, 5\)"):
        build_blocks("test_cuts", (1, 8, 8), 3)


def test_default_model_for() -> None:
    assert default_model_for((1, 8, 8)) == "cnn"
    assert default_model_for((1, 28, 28)) == "cnn"
    assert default_model_for((3, 32, 32)) == "resnet"
    for shape in [(1, 8, 8), (3, 32, 32), (3, 8, 8), (4, 16, 16)]:
        assert default_model_for(shape) in MODELS


def test_cnn_learns_a_small_synthetic_problem() -> None:
    """Two classes of noisy 8x8 images, a horizontal vs a vertical bar at a random position: >= 90% in 40 steps."""
    gen = torch.Generator().manual_seed(0)
    n = 256
    labels = torch.arange(n) % 2
    images = 0.3 * torch.rand(n, 1, 8, 8, generator=gen)
    where = torch.randint(1, 7, (n,), generator=gen)
    for i in range(n):
        if labels[i] == 0:
            images[i, 0, where[i], 1:7] += 1.0
        else:
            images[i, 0, 1:7, where[i]] += 1.0
    torch.manual_seed(0)
    model = nn.Sequential(*build_blocks("cnn", (1, 8, 8), 2))
    with torch.no_grad():
        before = (model(images).argmax(1) == labels).float().mean().item()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(40):
        idx = torch.randint(0, n, (32,), generator=gen)
        loss = nn.functional.cross_entropy(model(images[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = (model(images).argmax(1) == labels).float().mean().item()
    assert after >= 0.9, (before, after)
