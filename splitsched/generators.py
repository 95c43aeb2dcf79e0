"""Seeded instance generators for the two published benchmark families.

* ``tirana1`` / ``tirana2``: Tirana et al. (INFOCOM 2024) scenario 1 (measured devices) and scenario 2 (high
  heterogeneity);
* ``ganian1`` .. ``ganian4``: the heterogeneity levels of Ganian et al. (INFOCOM 2026).

They reproduce the intent of the published generators, not their bugs (see docs/generators.md): transfer times use
the correct units (no 10x error), helper memory binds (it is sized from the demand instead of being vacuous), and
no head-backward time is zeroed. Every family is deterministic per seed.
"""

from __future__ import annotations

import zlib

import numpy as np

from profiles import ModelProfile, ProfileError, load_profile
from splitsched.errors import InputError
from splitsched.instance import Instance
from splitsched.workload import Workload, instance_times

FAMILIES = ("tirana1", "tirana2", "ganian1", "ganian2", "ganian3", "ganian4")
CLIENT_DEVICES = ("d1", "d2", "jetson-cpu", "jetson-gpu")
HELPER_DEVICES = ("VM", "laptop")
DEFAULT_CUTS = {
    "resnet101_cifar10": (2, 35),
    "resnet101_mnist": (3, 34),
    "vgg19_cifar10": (3, 20),
    "vgg19_mnist": (5, 20),
}
# Uplink rate classes of Ganian et al.: share, low, high (Mbit/s).
RATE_CLASSES = ((0.11, 2.0, 4.0), (0.39, 4.0, 10.0), (0.20, 10.0, 15.0), (0.30, 15.0, 45.0))
# Helper memory is sized so that all helpers together hold this many times the total demand: it binds.
MEMORY_SLACK = 1.3
HELPER_MEMORY_WEIGHT = {"VM": 1.5, "laptop": 1.0}


def generate(family: str, clients: int, helpers: int, seed: int = 0, model: str | None = None) -> Instance:
    """A generated instance of ``family`` with ``clients`` x ``helpers``, deterministic per ``seed``."""
    return generate_workload(family, clients, helpers, seed, model)[0]


def generate_workload(
    family: str, clients: int, helpers: int, seed: int = 0, model: str | None = None
) -> tuple[Instance, Workload]:
    """Like ``generate``, also returning the cost breakdown (for the simulator)."""
    if family not in FAMILIES:
        raise InputError("--family", f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
    if isinstance(clients, bool) or not isinstance(clients, int) or clients < 1:
        raise InputError("--clients", f"must be an integer >= 1, got {clients!r}")
    if isinstance(helpers, bool) or not isinstance(helpers, int) or helpers < 1:
        raise InputError("--helpers", f"must be an integer >= 1, got {helpers!r}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(family.encode())])
    if family == "ganian4":
        if model is not None:
            raise InputError("--model", "ganian4 uses synthetic per-layer times; it takes no model profile")
        profile = _synthetic_profile(rng)
    else:
        name = model or "resnet101_cifar10"
        try:
            profile = load_profile(name)
        except ProfileError as exc:
            raise InputError("--model", str(exc)) from None
    cut = DEFAULT_CUTS.get(profile.name, (max(1, profile.num_layers // 10), profile.num_layers - 2))
    devices = _usable_client_devices(profile, cut)
    if family == "ganian1":
        client_dev = np.full(clients, devices[0] if "d1" not in devices else "d1", dtype=object)
    else:
        client_dev = rng.choice(np.array(devices, dtype=object), clients)
    helper_dev = rng.choice(np.array(HELPER_DEVICES, dtype=object), helpers)
    if family in ("ganian3", "ganian4"):
        cuts = _random_cuts(profile, client_dev, rng, cut)
    else:
        cuts = np.tile(np.array(cut), (clients, 1))
    if family == "tirana2":
        uplink = np.exp(rng.uniform(np.log(1.0), np.log(100.0), clients))
        client_scale = np.exp(rng.uniform(np.log(0.2), np.log(5.0), clients))
        helper_scale = np.exp(rng.uniform(np.log(0.25), np.log(4.0), helpers))
    else:
        uplink = _rate_classes(rng, clients)
        client_scale = np.ones(clients)
        helper_scale = np.ones(helpers)
    workload = _workload(profile, client_dev, helper_dev, cuts, uplink, client_scale, helper_scale)
    demand = np.array([profile.body_memory_mb(int(a), int(b)) for a, b in cuts])
    capacity = _capacity(rng, family, helper_dev, demand)
    instance = Instance(
        name=f"{family}-K{clients}-H{helpers}-s{seed}",
        clients=tuple(f"c{j}" for j in range(clients)),
        helpers=tuple(f"h{i}" for i in range(helpers)),
        demand=demand,
        capacity=capacity,
        meta={"family": family, "model": profile.name, "seed": seed},
        **instance_times(workload),
    )
    return instance, workload


def _usable_client_devices(profile: ModelProfile, cut: tuple[int, int]) -> list[str]:
    usable = []
    for d in CLIENT_DEVICES:
        try:
            profile.check_cut(d, *cut)
        except ProfileError:
            continue  # not profiled in this model (jetson-* in MNIST) or the cut splits an aggregated block
        usable.append(d)
    if not usable:
        raise InputError("--model", f"no client device of {profile.name!r} supports the cut {cut}")
    return usable


def _rate_classes(rng: np.random.Generator, n: int) -> np.ndarray:
    shares = np.array([c[0] for c in RATE_CLASSES])
    idx = rng.choice(len(RATE_CLASSES), n, p=shares / shares.sum())
    low = np.array([c[1] for c in RATE_CLASSES])[idx]
    high = np.array([c[2] for c in RATE_CLASSES])[idx]
    return rng.uniform(low, high)


def _random_cuts(profile: ModelProfile, client_dev, rng, default) -> np.ndarray:
    """Per-client cut points: a in the first sixth of the network, b in its last quarter, both meaningful for
    the client's device (the default cut when the device offers no such pair)."""
    n = profile.num_layers
    options: dict[str, tuple[list[int], list[int]]] = {}
    for d in set(client_dev):
        safe = profile.devices[d].safe_cuts()
        heads = [c for c in safe if 1 <= c <= max(1, n // 6)]
        tails = [c for c in safe if n - max(2, n // 4) <= c <= n - 1]
        options[d] = (heads, tails)
    cuts = np.empty((len(client_dev), 2), dtype=int)
    for j, d in enumerate(client_dev):
        heads, tails = options[d]
        if heads and tails:
            cuts[j] = (heads[rng.integers(len(heads))], tails[rng.integers(len(tails))])
        else:
            cuts[j] = default
    return cuts


def _prefix(arr: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(arr)])


def _workload(profile, client_dev, helper_dev, cuts, uplink, client_scale, helper_scale) -> Workload:
    n = profile.num_layers
    fwd = {d: _prefix(profile.devices[d].fwd_ms) for d in profile.devices}
    bwd = {d: _prefix(profile.devices[d].bwd_ms + profile.devices[d].update_ms) for d in profile.devices}
    a, b = cuts[:, 0], cuts[:, 1]
    k, h = len(client_dev), len(helper_dev)
    head_f, head_b, tail_f, tail_b = (np.empty(k) for _ in range(4))
    for j, d in enumerate(client_dev):
        head_f[j], head_b[j] = fwd[d][a[j]], bwd[d][a[j]]
        tail_f[j], tail_b[j] = fwd[d][n] - fwd[d][b[j]], bwd[d][n] - bwd[d][b[j]]
    body_f, body_b = np.empty((k, h)), np.empty((k, h))
    for i, d in enumerate(helper_dev):
        body_f[:, i] = (fwd[d][b] - fwd[d][a]) * helper_scale[i]
        body_b[:, i] = (bwd[d][b] - bwd[d][a]) * helper_scale[i]
    weights = _prefix(profile.weights_kb)
    rates = np.repeat(uplink[:, None], h, axis=1)
    return Workload(
        client_devices=tuple(client_dev),
        helper_devices=tuple(helper_dev),
        head_fwd_ms=head_f * client_scale,
        head_bwd_ms=head_b * client_scale,
        tail_fwd_ms=tail_f * client_scale,
        tail_bwd_ms=tail_b * client_scale,
        body_fwd_ms=body_f,
        body_bwd_ms=body_b,
        cut_a_bytes=profile.activation_kb[a - 1] * 1024.0,
        cut_b_bytes=profile.activation_kb[b - 1] * 1024.0,
        uplink_mbps=rates,
        downlink_mbps=rates.copy(),
        latency_ms=np.zeros((k, h)),
        client_weights_bytes=(weights[a] + weights[n] - weights[b]) * 1024.0,
    )


def _capacity(rng, family: str, helper_dev, demand: np.ndarray) -> np.ndarray:
    """Helper memory that binds: together the helpers hold MEMORY_SLACK x the total demand, and each at least
    the largest body. ganian4 draws 4-15 GB as published, then rescales the draw to that total."""
    if family == "ganian4":
        weight = rng.uniform(4 * 1024, 15 * 1024, len(helper_dev))
    else:
        weight = np.array([HELPER_MEMORY_WEIGHT[d] for d in helper_dev])
    capacity = weight / weight.sum() * MEMORY_SLACK * demand.sum()
    return np.maximum(capacity, demand.max() * 1.0001)


def _synthetic_profile(rng: np.random.Generator) -> ModelProfile:
    """ganian4's synthetic model: 20 layers with random per-layer times on each device class and random sizes.

    Client devices are 2x to 10x slower than the VM, the laptop 1x to 3x; backward passes cost 1.5x to 3x the
    forward pass (VM forward 5-50 ms per layer); activations 50 KB to 2 MB per batch, weights 10 KB to 20 MB per layer.
    """
    from profiles.profile import DeviceProfile

    n = 20
    base = rng.uniform(5.0, 50.0, n)
    back = base * rng.uniform(1.5, 3.0, n)
    slow = {"VM": 1.0, "laptop": rng.uniform(1.0, 3.0)}
    for d in CLIENT_DEVICES:
        slow[d] = float(np.exp(rng.uniform(np.log(2.0), np.log(10.0))))
    devices = {}
    for d, s in slow.items():
        jitter = rng.uniform(0.8, 1.25, n)
        devices[d] = DeviceProfile(d, base * s * jitter, back * s * jitter, np.zeros(n))
    return ModelProfile(
        name="synthetic20",
        devices=devices,
        activation_kb=rng.uniform(50.0, 2048.0, n),
        weights_kb=rng.uniform(10.0, 20480.0, n),
    )
