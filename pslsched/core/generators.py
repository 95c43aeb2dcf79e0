"""Seeded instance generators for the two published benchmark families.

* ``tirana1`` / ``tirana2``: Tirana et al. (INFOCOM 2024) scenario 1 (measured devices) and scenario 2 (high
  heterogeneity);
* ``ganian1`` .. ``ganian4``: the heterogeneity levels of Ganian et al. (INFOCOM 2026).

They reproduce the intent of the published generators, not their bugs (see docs/generators.md): transfer times use
the correct units (no 10x error), helper memory binds (it is sized from the demand instead of being vacuous), and
no head-backward time is zeroed. Every family is deterministic per seed, and T1..T5 are composed by the same
``Workload`` -> ``instance_times`` path as testbed.yaml (problem.md §1).
"""

from __future__ import annotations

import functools
import zlib
from typing import Any

import numpy as np

from pslsched.base.errors import InputError
from pslsched.base.registry import Registry
from pslsched.core.instance import Instance
from pslsched.core.rate_classes import RATE_CLASSES, TIRANA_RATE_CLASSES, class_rates
from pslsched.core.workload import Workload, instance_times
from pslsched.profiles import BUNDLED_PROFILES, DeviceProfile, ModelProfile, ProfileError, load_profile

# the families, in their papers' order (each is a GENERATOR_FAMILIES entry: generate with that family)
FAMILY_SUMMARIES = {
    "tirana1": "Tirana et al. scenario 1: measured client devices and helpers, fixed cut, rate classes",
    "tirana2": "Tirana et al. scenario 2: measured profiles scaled per client/helper, wide random link rates",
    "ganian1": "Ganian et al. level 1: all clients on one device (d1), fixed cut",
    "ganian2": "Ganian et al. level 2: random client devices, fixed cut",
    "ganian3": "Ganian et al. level 3: random client devices and random cut points per client",
    "ganian4": "Ganian et al. level 4: synthetic per-layer times, random cuts, helper memory 4-15 GB",
}
FAMILIES = tuple(FAMILY_SUMMARIES)
GENERATOR_FAMILIES: Registry = Registry("family", "--family", plural="generator families")
DEFAULT_MODEL = "resnet101_cifar10"
CLIENT_DEVICES = ("d1", "d2", "jetson-cpu", "jetson-gpu")
HELPER_DEVICES = ("VM", "laptop")
# Fixed cut per bundled model: meaningful for every profiled client device that can serve it (problem.md §1).
DEFAULT_CUTS = {
    "resnet101_cifar10": (2, 35),
    "resnet101_mnist": (3, 34),
    "vgg19_cifar10": (3, 20),
    "vgg19_mnist": (5, 20),
}
# Ganian et al.'s per-client cut ranges (levels 3-4), inclusive: a after the first blocks, b near the classifier.
CUT_RANGES = {"resnet101": ((2, 9), (27, 35)), "vgg19": ((2, 9), (20, 24))}
TIRANA2_RATE_RANGE = (1.0, 100.0)  # Mbit/s, log-uniform
# log-uniform factor on a client's forward, and independently backward, compute
TIRANA2_CLIENT_SCALE = (0.25, 4.0)
TIRANA2_HELPER_SCALE = (1 / 3, 3.0)  # the same for a helper's body compute
TIRANA2_MEMORY_SCALE = (0.5, 2.0)  # log-uniform factor on a helper's share of the memory
# "scaled" memory: the helpers together hold MEMORY_SLACK x the total body demand, a VM 1.5x a laptop's share.
MEMORY_SLACK = 1.3
HELPER_MEMORY_WEIGHT = {"VM": 1.5, "laptop": 1.0}
GANIAN4_MEMORY_GB = (4, 15)  # published: a whole number of GB, uniform in 4..15, per helper
MEMORY_MODES = ("scaled", "published")
LINK_MODES = ("client", "pair")
# Independent random streams, one per aspect, so that an option changing one aspect leaves the others alone.
_STREAMS = ("client_devices", "helper_devices", "cuts", "rates", "compute", "memory")


def generate(family: str, clients: int, helpers: int, seed: int = 0, **options: Any) -> Instance:
    """A generated instance of ``family`` with ``clients`` x ``helpers``, deterministic per ``seed``.

    Options (as ``generate_workload``): ``model`` (a bundled profile), ``cut=(a, b)`` (fixed-cut families),
    ``memory`` (``"scaled"``, ``"published"`` or a capacity in MB for every helper), ``memory_slack`` (scaled
    memory: total capacity / total demand), ``links`` (``"client"``: one rate per client; ``"pair"``: one per
    client-helper pair). See docs/generators.md.
    """
    return generate_workload(family, clients, helpers, seed, **options)[0]


def generate_workload(
    family: str,
    clients: int,
    helpers: int,
    seed: int = 0,
    model: str | None = None,
    *,
    cut: tuple[int, int] | None = None,
    memory: str | float | None = None,
    memory_slack: float = MEMORY_SLACK,
    links: str | None = None,
) -> tuple[Instance, Workload]:
    """Like ``generate``, also returning the cost breakdown (for the simulator)."""
    _check_args(family, clients, helpers, seed, memory_slack)
    profile = _load_model(model)
    memory = memory if memory is not None else ("published" if family == "ganian4" else "scaled")
    links = links if links is not None else ("pair" if family == "tirana2" else "client")
    if links not in LINK_MODES:
        raise InputError("--links", f"must be one of {', '.join(LINK_MODES)}, got {links!r}")
    streams = dict(
        zip(_STREAMS, np.random.SeedSequence([seed, zlib.crc32(family.encode())]).spawn(len(_STREAMS)))
    )
    rng = {name: np.random.default_rng(ss) for name, ss in streams.items()}
    random_cuts = family in ("ganian3", "ganian4")
    if random_cuts and cut is not None:
        raise InputError("--cut", f"{family} draws cut points per client; it takes no fixed cut")
    fixed = _check_fixed_cut(profile, cut)
    synthetic = family == "ganian4"
    pool = _client_pool(profile, None if synthetic else fixed)
    if family == "ganian1":
        client_dev = np.full(clients, "d1" if "d1" in pool else pool[0], dtype=object)
    else:
        client_dev = np.array(pool, dtype=object)[rng["client_devices"].integers(len(pool), size=clients)]
    helper_dev = np.array(HELPER_DEVICES, dtype=object)[rng["helper_devices"].integers(2, size=helpers)]
    if random_cuts:
        a, b = _random_cuts(profile, client_dev, fixed, rng["cuts"], restrict=not synthetic)
    else:
        a, b = np.full(clients, fixed[0]), np.full(clients, fixed[1])
    cf, cb, hf, hb = _layer_tables(profile, client_dev, helper_dev, synthetic, rng["compute"])
    if family == "tirana2":
        cf, cb, hf, hb = _tirana2_scaling(cf, cb, hf, hb, rng["compute"])
    uplink = _rates(family, links, clients, helpers, rng["rates"])
    workload = _workload(profile, client_dev, helper_dev, a, b, cf, cb, hf, hb, uplink)
    demand = _body_memory(profile, a, b)
    capacity, witness = _capacity(family, memory, memory_slack, helper_dev, demand, rng["memory"])
    suffix = "" if profile.name == DEFAULT_MODEL else f"-{profile.name}"
    instance = Instance(
        name=f"{family}-K{clients}-H{helpers}-s{seed}{suffix}",
        clients=tuple(f"c{j}" for j in range(clients)),
        helpers=tuple(f"h{i}" for i in range(helpers)),
        demand=demand,
        capacity=capacity,
        meta={
            "family": family,
            "model": profile.name,
            "seed": seed,
            "synthetic_times": synthetic,
            "memory": memory,
            "links": links,
            "cuts": np.stack([a, b], axis=1),
            "memory_witness": witness,
        },
        **instance_times(workload),
    )
    return instance, workload


def _check_args(family: str, clients: Any, helpers: Any, seed: Any, memory_slack: Any) -> None:
    GENERATOR_FAMILIES.check(family)
    for name, value in (("--clients", clients), ("--helpers", helpers)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(name, f"must be an integer >= 1, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError("--seed", f"must be an integer >= 0, got {seed!r}")
    if (
        isinstance(memory_slack, bool)
        or not isinstance(memory_slack, (int, float))
        or not 1 <= memory_slack < 1e6
    ):
        raise InputError("--memory-slack", f"must be a number >= 1, got {memory_slack!r}")


def _load_model(model: str | None) -> ModelProfile:
    name = model or DEFAULT_MODEL
    if name not in BUNDLED_PROFILES:
        raise InputError(
            "--model",
            f"unknown model {name!r}: the families are defined on the anchor testbed ({', '.join(BUNDLED_PROFILES)})",
        )
    try:
        return load_profile(name)
    except ProfileError as exc:
        raise InputError("--model", str(exc)) from None


def _check_fixed_cut(profile: ModelProfile, cut: Any) -> tuple[int, int]:
    if cut is None:
        return DEFAULT_CUTS[profile.name]
    try:
        a, b = (int(c) for c in cut)
    except (TypeError, ValueError):
        raise InputError("--cut", f"must be two integers a,b, got {cut!r}") from None
    if not 0 < a < b < profile.num_layers:
        raise InputError(
            "--cut", f"must satisfy 0 < a < b < {profile.num_layers} for {profile.name}, got ({a}, {b})"
        )
    return a, b


def _client_pool(profile: ModelProfile, cut: tuple[int, int] | None) -> list[str]:
    """Client devices that may be drawn: profiled, and (with a cut) whose profile is meaningful at that cut."""
    usable = []
    for d in CLIENT_DEVICES:
        try:
            if cut is None:
                profile.device(d)
            else:
                profile.check_cut(d, *cut)
        except ProfileError:
            continue  # not profiled in this model (jetson-* in MNIST) or the cut splits an aggregated block (d2)
        usable.append(d)
    if not usable:
        raise InputError("--cut", f"no client device of {profile.name} has a meaningful profile at cut {cut}")
    return usable


def _random_cuts(
    profile: ModelProfile,
    client_dev: np.ndarray,
    fallback: tuple[int, int],
    rng: np.random.Generator,
    restrict: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-client (a, b), uniform over Ganian et al.'s ranges; with ``restrict`` only cuts where the client's
    device profile is meaningful (d2's aggregated blocks), else the fixed cut where the device offers none."""
    n = profile.num_layers
    (a_lo, a_hi), (b_lo, b_hi) = CUT_RANGES.get(
        profile.name.split("_")[0], ((1, max(1, n // 6)), (n - n // 4, n - 1))
    )
    a = np.empty(len(client_dev), dtype=int)
    b = np.empty(len(client_dev), dtype=int)
    u = rng.random((len(client_dev), 2))
    for d in sorted(set(client_dev)):
        rows = client_dev == d
        safe = set(profile.devices[d].safe_cuts()) if restrict else set(range(1, n))
        heads = np.array([c for c in range(a_lo, a_hi + 1) if c in safe], dtype=int)
        tails = np.array([c for c in range(b_lo, b_hi + 1) if c in safe], dtype=int)
        if len(heads) and len(tails):
            a[rows] = heads[(u[rows, 0] * len(heads)).astype(int)]
            b[rows] = tails[(u[rows, 1] * len(tails)).astype(int)]
        else:
            a[rows], b[rows] = fallback
    return a, b


def _per_layer(dev: DeviceProfile) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer forward and backward(+update) times; a block-aggregated device's block totals are spread evenly
    over the layers of the block (its safe cuts are the block boundaries)."""
    fwd, back = dev.fwd_ms.astype(float), (dev.bwd_ms + dev.update_ms).astype(float)
    if not dev.aggregated:
        return fwd, back
    n = len(fwd)
    bounds = [0, *dev.safe_cuts(), n]
    out_f, out_b = np.zeros(n), np.zeros(n)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi > lo:
            out_f[lo:hi] = fwd[lo:hi].sum() / (hi - lo)
            out_b[lo:hi] = back[lo:hi].sum() / (hi - lo)
    return out_f, out_b


def _layer_tables(
    profile: ModelProfile,
    client_dev: np.ndarray,
    helper_dev: np.ndarray,
    synthetic: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-layer forward/backward times of every client (K x L) and helper (H x L).

    Measured: the device's rows. Synthetic (ganian4): every layer of every client and helper drawn uniformly
    between the smallest and largest positive per-layer time its device has in the profile.
    """
    tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for d in sorted(set(client_dev) | set(helper_dev)):
        tables[d] = _per_layer(profile.device(d))
    n = profile.num_layers

    def build(devs: np.ndarray, side: int) -> np.ndarray:
        out = np.empty((len(devs), n))
        for d in sorted(set(devs)):
            rows = devs == d
            values = tables[d][side]
            if synthetic:
                pos = values[values > 0]
                out[rows] = rng.uniform(pos.min(), pos.max(), (int(rows.sum()), n))
            else:
                out[rows] = values
        return out

    return build(client_dev, 0), build(client_dev, 1), build(helper_dev, 0), build(helper_dev, 1)


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float], size: Any) -> np.ndarray:
    return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), size))


def _tirana2_scaling(cf, cb, hf, hb, rng: np.random.Generator):
    """Scenario 2: independent log-uniform factors on each client's forward and backward compute and on each
    helper's forward and backward body compute."""
    k, h = cf.shape[0], hf.shape[0]
    cs = _log_uniform(rng, TIRANA2_CLIENT_SCALE, (k, 2))
    hs = _log_uniform(rng, TIRANA2_HELPER_SCALE, (h, 2))
    return cf * cs[:, :1], cb * cs[:, 1:], hf * hs[:, :1], hb * hs[:, 1:]


def _rates(family: str, links: str, k: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """K x H link rates in Mbit/s (the same both ways; the published models have no latency)."""
    n = k if links == "client" else k * h
    if family == "tirana2":
        rates = _log_uniform(rng, TIRANA2_RATE_RANGE, n)
    else:
        rates = class_rates(rng, n, TIRANA_RATE_CLASSES if family == "tirana1" else RATE_CLASSES)
    return np.repeat(rates[:, None], h, axis=1) if links == "client" else rates.reshape(k, h)


def _prefix(table: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((table.shape[0], 1)), np.cumsum(table, axis=1)], axis=1)


def _workload(profile, client_dev, helper_dev, a, b, cf, cb, hf, hb, rates) -> Workload:
    n = profile.num_layers
    k, h = len(client_dev), len(helper_dev)
    rows = np.arange(k)
    pcf, pcb, phf, phb = _prefix(cf), _prefix(cb), _prefix(hf), _prefix(hb)
    weights = np.concatenate([[0.0], np.cumsum(profile.weights_kb)])
    return Workload(
        client_devices=tuple(str(d) for d in client_dev),
        helper_devices=tuple(str(d) for d in helper_dev),
        head_fwd_ms=pcf[rows, a],
        head_bwd_ms=pcb[rows, a],
        tail_fwd_ms=pcf[:, n] - pcf[rows, b],
        tail_bwd_ms=pcb[:, n] - pcb[rows, b],
        body_fwd_ms=(phf[:, b] - phf[:, a]).T.copy(),
        body_bwd_ms=(phb[:, b] - phb[:, a]).T.copy(),
        cut_a_bytes=profile.activation_kb[a - 1] * 1024.0,
        cut_b_bytes=profile.activation_kb[b - 1] * 1024.0,
        uplink_mbps=rates,
        downlink_mbps=rates.copy(),
        latency_ms=np.zeros((k, h)),
        client_weights_bytes=(weights[a] + weights[n] - weights[b]) * 1024.0,
    )


def _body_memory(profile: ModelProfile, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """problem.md §1: sum over the body of (activation_kb + weights_kb) / 1024, in MB."""
    per_layer = np.concatenate([[0.0], np.cumsum(profile.activation_kb + profile.weights_kb)])
    return (per_layer[b] - per_layer[a]) / 1024.0


def packs(demand: np.ndarray, capacity: np.ndarray) -> bool:
    """True if worst-fit decreasing places every demand (a witness that a memory-feasible assignment exists)."""
    free = np.array(capacity, dtype=float)
    for d in np.sort(demand)[::-1]:
        i = int(np.argmax(free))
        if free[i] < d:
            return False
        free[i] -= d
    return True


def _capacity(
    family: str,
    memory: Any,
    slack: float,
    helper_dev: np.ndarray,
    demand: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, bool]:
    """Helper memory in MB, and whether a packing of all clients is known to exist.

    ``scaled``: shares by device (VM 1.5, laptop 1; times a log-uniform 0.5-2 factor in tirana2) of ``slack`` x
    the total demand, each at least the largest body, raised by 2% steps until worst-fit decreasing packs every
    client: memory binds and the instance is feasible. ``published``: a whole number of GB uniform in 4..15
    (Ganian et al. level 4). A number: that many MB on every helper.
    """
    h = len(helper_dev)
    if memory == "published":
        lo, hi = GANIAN4_MEMORY_GB
        capacity = rng.integers(lo, hi + 1, size=h) * 1024.0
    elif memory == "scaled":
        weight = np.array([HELPER_MEMORY_WEIGHT[d] for d in helper_dev])
        if family == "tirana2":
            weight = weight * _log_uniform(rng, TIRANA2_MEMORY_SCALE, h)
        capacity = np.maximum(weight / weight.sum() * slack * demand.sum(), demand.max())
        for _ in range(200):
            if packs(demand, capacity):
                break
            capacity = capacity * 1.02
    elif isinstance(memory, (int, float)) and not isinstance(memory, bool) and 0 < memory < float("inf"):
        capacity = np.full(h, float(memory))
    else:
        raise InputError("--memory", f"must be 'scaled', 'published' or a capacity in MB > 0, got {memory!r}")
    return capacity, packs(demand, capacity)


for _family, _summary in FAMILY_SUMMARIES.items():
    GENERATOR_FAMILIES.register(_family, _summary)(functools.partial(generate, _family))
