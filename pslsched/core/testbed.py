"""testbed.yaml -> Instance (+ Workload): devices, links, model profile and cut points, validated with pydantic.

See the README for the format. Every client or helper entry may stand for a group (``count``); members are named
``<name>-<k>`` (k from 0). Link rates are fixed numbers or distributions drawn with the testbed's ``seed``
(one independent stream per client group, so editing one group does not change the draws of another).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import networkx as nx
import numpy as np
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_GROUP, MAX_MB, MAX_MBPS, MAX_MS, MIN_MBPS
from pslsched.core.codecs import Compression, codec_ms, compressed_bytes, parse_codec
from pslsched.core.instance import Instance
from pslsched.core.workload import Workload, instance_times, transfer_ms
from pslsched.profiles import ModelProfile, ProfileError, load_profile

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# the documented ranges (pslsched.base.limits): memory, rates, latencies
MemoryMB = Annotated[float, Field(gt=0, le=MAX_MB, allow_inf_nan=False)]
RateMbps = Annotated[float, Field(ge=MIN_MBPS, le=MAX_MBPS, allow_inf_nan=False)]
LatencyMs = Annotated[float, Field(ge=0, le=MAX_MS, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Uniform(_Strict):
    dist: Literal["uniform"]
    low: NonNegFloat
    high: NonNegFloat

    @model_validator(mode="after")
    def _order(self):
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
        return self


class LogNormal(_Strict):
    dist: Literal["lognormal"]
    median: PositiveFloat
    sigma: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)]


class Choice(_Strict):
    dist: Literal["choice"]
    values: list[NonNegFloat] = Field(min_length=1)


class RateClass(_Strict):
    share: NonNegFloat
    low: NonNegFloat
    high: NonNegFloat


class Classes(_Strict):
    """Rate classes: pick a class with probability ``share``, then a uniform value inside it."""

    classes: list[RateClass] = Field(min_length=1)

    @model_validator(mode="after")
    def _shares(self):
        total = sum(c.share for c in self.classes)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"class shares must sum to 1, got {total}")
        for c in self.classes:
            if c.low > c.high:
                raise ValueError(f"class low ({c.low}) must be <= high ({c.high})")
        return self


_DISTS = {"uniform": Uniform, "lognormal": LogNormal, "choice": Choice}


def parse_spec(value: Any) -> float | Uniform | LogNormal | Choice | Classes:
    """A fixed number, ``{dist: uniform|lognormal|choice, ...}`` or ``{classes: [{share, low, high}, ...]}``."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number or a distribution, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0 or value > MAX_MS:
            raise ValueError(f"must be a number in [0, {MAX_MS:g}]")
        return float(value)
    if isinstance(value, dict):
        dist = value.get("dist")
        kind = (_DISTS.get(dist) if isinstance(dist, str) else None) if "dist" in value else None
        if "dist" not in value and "classes" in value:
            kind = Classes
        if kind is None:
            raise ValueError(
                f"unknown distribution {value.get('dist')!r} (use dist: uniform|lognormal|choice, or classes: [...])"
            )
        try:
            return kind.model_validate(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = _clean_loc(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            raise ValueError(f"{where + ': ' if where else ''}{msg}") from None
    raise ValueError(f"must be a number or a distribution mapping, got {value!r}")


Spec = Annotated[Any, BeforeValidator(parse_spec)]


def draw(spec: Spec, n: int, rng: np.random.Generator) -> np.ndarray:
    """n values of a rate/latency spec."""
    if isinstance(spec, float):
        return np.full(n, spec)
    if isinstance(spec, Uniform):
        return rng.uniform(spec.low, spec.high, n)
    if isinstance(spec, LogNormal):
        return spec.median * np.exp(rng.normal(0.0, spec.sigma, n))
    if isinstance(spec, Choice):
        return rng.choice(np.asarray(spec.values, dtype=float), n)
    shares = np.array([c.share for c in spec.classes])
    idx = rng.choice(len(spec.classes), n, p=shares / shares.sum())
    low = np.array([c.low for c in spec.classes])[idx]
    high = np.array([c.high for c in spec.classes])[idx]
    return rng.uniform(low, high)


class Cut(_Strict):
    a: int = Field(ge=1)
    b: int = Field(ge=2)

    @model_validator(mode="after")
    def _order(self):
        if self.a >= self.b:
            raise ValueError(f"a ({self.a}) must be < b ({self.b})")
        return self


class Model(_Strict):
    """``model:``: a profile (bundled name or CSV) or ``measure:`` a split model measured here (docs/profiles.md)."""

    profile: str | None = Field(default=None, min_length=1, description="bundled profile name or profile CSV")
    measure: str | None = Field(default=None, min_length=1, description="model measured here on first use")
    batch: PositiveFloat = (
        128.0  # the batch the profile was measured with (the anchor's activations match 128)
    )
    input_shape: tuple[Annotated[int, Field(ge=1)], ...] | None = None  # measure: (C, H, W), default 3,32,32
    num_classes: int = Field(default=10, ge=1)  # measure: the model's outputs

    @model_validator(mode="after")
    def _source(self):
        if (self.profile is None) == (self.measure is None):
            raise ValueError("give exactly one of profile (a bundled name or CSV) or measure (a model name)")
        if self.measure is None and (self.input_shape is not None or self.num_classes != 10):
            raise ValueError("input_shape and num_classes apply to measure only")
        if self.input_shape is not None and len(self.input_shape) != 3:
            raise ValueError(f"input_shape must be [C, H, W], got {list(self.input_shape)}")
        if self.measure is not None and self.batch != int(self.batch):
            raise ValueError(f"batch must be a whole number with measure, got {self.batch}")
        return self

    def load(self) -> ModelProfile:
        """The profile; for ``measure`` the cached profile of this machine (measured on first use, device ``here``)."""
        try:
            if self.profile is not None:
                return load_profile(self.profile)
            from pslsched.profiles.measure import measured_profile

            shape = tuple(self.input_shape or (3, 32, 32))
            return load_profile(measured_profile(self.measure, int(self.batch), shape, self.num_classes))
        except ProfileError as exc:
            raise InputError("model.profile" if self.profile else "model.measure", str(exc)) from None


class CompressionSection(_Strict):
    """``compression:``: a codec (pslsched.core.codecs) on the cut-a activations, optionally cut b and gradients."""

    codec: str = "none"
    cut_b: bool = False
    grads: bool = False

    @field_validator("codec")
    @classmethod
    def _codec(cls, v):
        try:
            parse_codec(v)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return v

    def compression(self) -> Compression:
        return Compression(parse_codec(self.codec), self.cut_b, self.grads)


class HelperGroup(_Strict):
    name: str = Field(min_length=1)
    count: int = Field(default=1, ge=1, le=MAX_GROUP)
    device: str = Field(min_length=1)
    memory_mb: MemoryMB
    node: str | None = None  # where the helper sits in the topology (default: its own name)
    nic_mbps: RateMbps | None = None  # helper network interface capacity, shared by its transfers


class ClientGroup(_Strict):
    name: str = Field(min_length=1)
    count: int = Field(default=1, ge=1, le=MAX_GROUP)
    device: str = Field(min_length=1)
    uplink_mbps: Spec
    downlink_mbps: Spec | None = None  # default: the drawn uplink rate
    latency_ms: Spec = 0.0
    cut: Cut | None = None
    local: bool = False  # may train the whole model on its own device (hybrid split/federated)
    attach: str | None = None  # topology node the client's access link connects to
    helpers: list[str] | None = None  # restrict to these helpers (member or group names)

    @field_validator("uplink_mbps", "downlink_mbps")
    @classmethod
    def _positive_rate(cls, v):
        if isinstance(v, float) and v <= 0:
            raise ValueError(f"a rate must be > 0 Mbit/s, got {v}")
        return v


class Link(_Strict):
    a: str
    b: str
    mbps: RateMbps
    latency_ms: LatencyMs = 0.0


class Topology(_Strict):
    links: list[Link] = Field(min_length=1)


class Testbed(_Strict):
    name: str = "testbed"
    seed: int = 0
    model: Model
    cuts: Cut | None = None
    batches: int = Field(default=1, ge=1)
    helpers: list[HelperGroup] = Field(min_length=1)
    clients: list[ClientGroup] = Field(min_length=1)
    topology: Topology | None = None
    compression: CompressionSection | None = None
    simulation: dict[str, Any] | None = None  # validated by the simulator
    training: dict[str, Any] | None = None  # validated by the training room (pslsched.training.config)

    @model_validator(mode="after")
    def _cuts(self):
        if self.cuts is None and any(c.cut is None for c in self.clients):
            raise ValueError("cuts: give global cut points (cuts: {a, b}) or a cut for every client group")
        return self


@dataclass(frozen=True)
class Built:
    """A testbed turned into numbers: the instance and the cost breakdown behind it."""

    testbed: Testbed
    instance: Instance
    workload: Workload


def default_testbed_path() -> Path:
    """The bundled default testbed (ResNet-101 / CIFAR-10, 20 clients, 3 helpers)."""
    return Path(str(resources.files("pslsched.profiles") / "testbed.yaml"))


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content; a missing, malformed or binary file is an InputError naming the file (and line)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise InputError(str(path), f"malformed YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise InputError(str(path), "not a text file") from None


def load_testbed(path: str | Path) -> Testbed:
    """Read and validate a testbed YAML file; errors name the field and the value."""
    return parse_testbed(read_yaml(path), source=Path(path).name)


def parse_testbed(data: Any, source: str = "testbed") -> Testbed:
    """Validate a testbed mapping (already parsed from YAML)."""
    if not isinstance(data, dict):
        raise InputError(source, "must be a YAML mapping")
    try:
        return Testbed.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = _clean_loc(err["loc"])
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if not isinstance(value, (dict, list)):
                msg += f" (got {value!r})"
        raise InputError(f"{source}: {loc}" if loc else source, msg) from None


def _clean_loc(loc: tuple) -> str:
    parts = []
    for p in loc:
        s = str(p)
        if "[" in s:
            continue
        parts.append(f"[{p}]" if isinstance(p, int) else s)
    return ".".join(parts).replace(".[", "[")


def build(testbed: Testbed, compression: Compression | None = None) -> Built:
    """Compute T1..T5, memory and the workload of every (client, helper) pair.

    ``compression`` (default: the testbed's ``compression:``) shrinks the transfers to the codec's exact payload
    sizes and charges its modelled encode/decode time to the devices that run them (docs/compression.md)."""
    profile = testbed.model.load()
    helpers, helper_devices, capacity, helper_nodes, nic = _expand_helpers(testbed, profile)
    (clients, client_devices, cuts, groups, up, down, lat, can_local, allowed) = _expand_clients(
        testbed, profile, helpers
    )
    k, h = len(clients), len(helpers)
    head_f, head_b, tail_f, tail_b = (np.zeros(k) for _ in range(4))
    body_f, body_b = np.zeros((k, h)), np.zeros((k, h))
    act_a, act_b, weights, demand, local = (np.zeros(k) for _ in range(5))
    n_layers = profile.num_layers
    for j, (dev_name, (a, b)) in enumerate(zip(client_devices, cuts)):
        dev = profile.device(dev_name)
        head_f[j], head_b[j] = dev.forward(0, a), dev.backward(0, a)
        tail_f[j], tail_b[j] = dev.forward(b, n_layers), dev.backward(b, n_layers)
        act_a[j], act_b[j] = profile.segment_bytes(a - 1), profile.segment_bytes(b - 1)
        weights[j] = float(profile.weights_kb[:a].sum() + profile.weights_kb[b:].sum()) * 1024.0
        demand[j] = profile.body_memory_mb(a, b)
        local[j] = dev.forward(0, n_layers) + dev.backward(0, n_layers) if can_local[j] else math.nan
        for i, hdev in enumerate(helper_devices):
            body_f[j, i] = profile.devices[hdev].forward(a, b)
            body_b[j, i] = profile.devices[hdev].backward(a, b)
    rates_up, rates_down, latency, up_routes, down_routes, res = _links(
        testbed, clients, groups, helpers, helper_nodes, nic, up, down, lat
    )
    unreachable = ~allowed | np.isnan(rates_up)
    for arr in (rates_up, rates_down, latency, body_f, body_b):
        arr[unreachable] = np.nan
    grad_a = grad_b = None
    comp = compression or (testbed.compression.compression() if testbed.compression else None)
    if comp is not None and comp.active:
        codec, unit = comp.codec, testbed.model.batch
        speed = _relative_speed(profile, client_devices, helper_devices)
        c_speed, h_speed = speed[: len(client_devices)], speed[len(client_devices) :]

        def client_ms(size):  # encode or decode on the client, per client
            return codec_ms(codec, size, c_speed)

        def helper_ms(size):  # encode or decode on the helper, per (client, helper)
            return codec_ms(codec, size[:, None], h_speed[None, :])

        head_f, body_f = head_f + client_ms(act_a), body_f + helper_ms(act_a)
        if comp.cut_b:
            body_f, tail_f = body_f + helper_ms(act_b), tail_f + client_ms(act_b)
        if comp.grads:
            tail_b, body_b = tail_b + client_ms(act_b), body_b + helper_ms(act_b) + helper_ms(act_a)
            head_b = head_b + client_ms(act_a)
            grad_a, grad_b = compressed_bytes(codec, act_a, unit), compressed_bytes(codec, act_b, unit)
        else:
            grad_a, grad_b = act_a.copy(), act_b.copy()
        act_a = compressed_bytes(codec, act_a, unit)
        if comp.cut_b:
            act_b = compressed_bytes(codec, act_b, unit)
    workload = Workload(
        client_devices=tuple(client_devices),
        helper_devices=tuple(helper_devices),
        head_fwd_ms=head_f,
        head_bwd_ms=head_b,
        tail_fwd_ms=tail_f,
        tail_bwd_ms=tail_b,
        body_fwd_ms=body_f,
        body_bwd_ms=body_b,
        cut_a_bytes=act_a,
        cut_b_bytes=act_b,
        uplink_mbps=rates_up,
        downlink_mbps=rates_down,
        latency_ms=latency,
        client_weights_bytes=weights,
        grad_a_bytes=grad_a,
        grad_b_bytes=grad_b,
        up_routes=up_routes,
        down_routes=down_routes,
        resources=res,
    )
    instance = Instance(
        name=testbed.name,
        clients=tuple(clients),
        helpers=tuple(helpers),
        demand=demand,
        capacity=np.asarray(capacity, dtype=float),
        batches=testbed.batches,
        local=local if can_local.any() else None,
        meta={"profile_batch": testbed.model.batch},
        **instance_times(workload),
    )
    return Built(testbed=testbed, instance=instance, workload=workload)


def scale_clients(testbed: Testbed, total: int) -> Testbed:
    """The testbed with its client groups scaled to ``total`` clients in proportion (largest remainders; a group
    may drop to zero and is then left out). Link draws stay per group, so a group's members keep their streams."""
    if total < 1 or total > MAX_GROUP:
        raise InputError("--clients", f"must be in [1, {MAX_GROUP}], got {total}")
    counts = np.array([g.count for g in testbed.clients], dtype=float)
    exact = counts / counts.sum() * total
    new = np.floor(exact).astype(int)
    for g in np.argsort(-(exact - new), kind="stable")[: total - int(new.sum())]:
        new[g] += 1
    groups = [g.model_copy(update={"count": int(n)}) for g, n in zip(testbed.clients, new) if n > 0]
    return testbed.model_copy(update={"clients": groups})


def _relative_speed(profile: ModelProfile, client_devices, helper_devices) -> np.ndarray:
    """Each client's then each helper's slowness: its whole-model forward time over the fastest such device's."""
    devices = list(client_devices) + list(helper_devices)
    total = {d: profile.device(d).forward(0, profile.num_layers) for d in set(devices)}
    fastest = min(t for t in total.values() if t > 0) if any(t > 0 for t in total.values()) else 1.0
    return np.array([total[d] / fastest if total[d] > 0 else 1.0 for d in devices])


def build_instance(testbed: Testbed) -> Instance:
    """The scheduling instance of a testbed."""
    return build(testbed).instance


def _members(name: str, count: int) -> list[str]:
    return [name] if count == 1 else [f"{name}-{k}" for k in range(count)]


def _device(profile: ModelProfile, field: str, name: str) -> None:
    try:
        profile.device(name)
    except ProfileError as exc:
        raise InputError(field, str(exc)) from None


def _expand_helpers(testbed: Testbed, profile: ModelProfile):
    names, devices, capacity, nodes, nic = [], [], [], [], []
    for g, group in enumerate(testbed.helpers):
        _device(profile, f"helpers[{g}].device", group.device)
        for member in _members(group.name, group.count):
            names.append(member)
            devices.append(group.device)
            capacity.append(group.memory_mb)
            nodes.append(group.node or member)
            nic.append(group.nic_mbps)
    _unique("helpers", names)
    return names, devices, capacity, nodes, nic


def _expand_clients(testbed: Testbed, profile: ModelProfile, helpers: list[str]):
    names, devices, cuts, groups, up, down, lat, can_local, allowed_rows = ([] for _ in range(9))
    seeds = np.random.SeedSequence(testbed.seed).spawn(len(testbed.clients))
    helper_groups = {g.name: _members(g.name, g.count) for g in testbed.helpers}
    for g, (group, ss) in enumerate(zip(testbed.clients, seeds)):
        field = f"clients[{g}]"
        _device(profile, f"{field}.device", group.device)
        cut = group.cut or testbed.cuts
        try:
            profile.check_cut(group.device, cut.a, cut.b)
        except ProfileError as exc:
            raise InputError(f"{field}.cut" if group.cut else "cuts", str(exc)) from None
        for hname in group.helpers or []:
            if hname not in helper_groups and hname not in helpers:
                raise InputError(f"{field}.helpers", f"unknown helper {hname!r}")
        allowed = np.ones(len(helpers), dtype=bool)
        if group.helpers is not None:
            chosen = {m for hname in group.helpers for m in helper_groups.get(hname, [hname])}
            allowed = np.array([h in chosen for h in helpers])
        rng = np.random.default_rng(ss)
        n = group.count
        ups = draw(group.uplink_mbps, n, rng)
        downs = ups if group.downlink_mbps is None else draw(group.downlink_mbps, n, rng)
        lats = draw(group.latency_ms, n, rng)
        for name, what in (("uplink_mbps", ups), ("downlink_mbps", downs)):
            if (what < MIN_MBPS).any() or (what > MAX_MBPS).any():
                raise InputError(
                    f"{field}.{name}",
                    f"drawn rates must lie in [{MIN_MBPS:g}, {MAX_MBPS:g}] Mbit/s (check the distribution)",
                )
        if (lats > MAX_MS).any():
            raise InputError(f"{field}.latency_ms", f"drawn latencies must be at most {MAX_MS:g} ms")
        for k, member in enumerate(_members(group.name, n)):
            names.append(member)
            devices.append(group.device)
            cuts.append((cut.a, cut.b))
            groups.append(group)
            up.append(ups[k])
            down.append(downs[k])
            lat.append(lats[k])
            can_local.append(group.local)
            allowed_rows.append(allowed)
    _unique("clients", names)
    overlap = set(names) & set(helpers)
    if overlap:
        raise InputError("clients", f"name {sorted(overlap)[0]!r} is used by a helper too")
    return (
        names,
        devices,
        cuts,
        groups,
        np.array(up),
        np.array(down),
        np.array(lat),
        np.array(can_local),
        np.array(allowed_rows).reshape(len(names), len(helpers)),
    )


def _unique(field: str, names: list[str]) -> None:
    seen = set()
    for n in names:
        if n in seen:
            raise InputError(field, f"duplicate name {n!r}")
        seen.add(n)


def _links(testbed, clients, groups, helpers, helper_nodes, nic, up, down, lat):
    """Per-pair bottleneck rates, latencies and the resources each transfer crosses."""
    h = len(helpers)
    rates_up = np.repeat(up[:, None], h, axis=1).astype(float)
    rates_down = np.repeat(down[:, None], h, axis=1).astype(float)
    latency = np.repeat(lat[:, None], h, axis=1).astype(float)
    res: dict[str, float] = {}
    paths: dict[tuple[str, str], tuple[list[str], float, float] | None] = {}
    if testbed.topology is not None:
        graph = _graph(testbed.topology)
        for g, group in enumerate(testbed.clients):
            if group.attach is None:
                raise InputError(
                    f"clients[{g}].attach", "required with a topology (the node the client connects to)"
                )
            if group.attach not in graph:
                raise InputError(f"clients[{g}].attach", f"node {group.attach!r} is not in the topology")
        for g, hg in enumerate(testbed.helpers):
            node = hg.node or hg.name
            if hg.count > 1 and hg.node is None:
                raise InputError(f"helpers[{g}].node", "required with a topology for a group (count > 1)")
            if node not in graph:
                raise InputError(f"helpers[{g}].node", f"node {node!r} is not in the topology")
        for link in testbed.topology.links:
            res[_link_id(link.a, link.b)] = link.mbps
    up_routes, down_routes = [], []
    for j, client in enumerate(clients):
        res[f"access-up:{client}"] = float(up[j])
        res[f"access-down:{client}"] = float(down[j])
        row_up, row_down = [], []
        for i, helper in enumerate(helpers):
            hops: list[str] = []
            if testbed.topology is not None:
                key = (groups[j].attach, helper_nodes[i])
                if key not in paths:
                    paths[key] = _best_route(graph, *key)
                route = paths[key]
                if route is None:
                    rates_up[j, i] = rates_down[j, i] = latency[j, i] = np.nan
                    row_up.append(())
                    row_down.append(())
                    continue
                hops, bottleneck, path_latency = route
                rates_up[j, i] = min(rates_up[j, i], bottleneck)
                rates_down[j, i] = min(rates_down[j, i], bottleneck)
                latency[j, i] += path_latency
            if nic[i] is not None:
                rates_up[j, i] = min(rates_up[j, i], nic[i])
                rates_down[j, i] = min(rates_down[j, i], nic[i])
                res[f"nic-in:{helper}"] = nic[i]
                res[f"nic-out:{helper}"] = nic[i]
                row_up.append((f"access-up:{client}", *hops, f"nic-in:{helper}"))
                row_down.append((f"nic-out:{helper}", *hops, f"access-down:{client}"))
            else:
                row_up.append((f"access-up:{client}", *hops))
                row_down.append((*hops, f"access-down:{client}"))
        up_routes.append(tuple(row_up))
        down_routes.append(tuple(row_down))
    return rates_up, rates_down, latency, tuple(up_routes), tuple(down_routes), res


def _link_id(a: str, b: str) -> str:
    return "link:" + "~".join(sorted((a, b)))


def _graph(topology: Topology) -> nx.Graph:
    graph = nx.Graph()
    for n, link in enumerate(topology.links):
        if link.a == link.b:
            raise InputError(
                f"topology.links[{n}]", f"a link joins two different nodes, got {link.a!r} twice"
            )
        if graph.has_edge(link.a, link.b):
            raise InputError(f"topology.links[{n}]", f"duplicate link {link.a!r} - {link.b!r}")
        graph.add_edge(link.a, link.b, mbps=link.mbps, latency_ms=link.latency_ms)
    return graph


# Routes are chosen for a reference transfer of 1 MB: the best route trades bandwidth against latency.
ROUTE_REFERENCE_BYTES = 1_000_000.0


def _best_route(graph: nx.Graph, src: str, dst: str) -> tuple[list[str], float, float] | None:
    """The route with the smallest transfer time for the reference size: (link ids, bottleneck Mbit/s, latency).

    For every candidate bottleneck rate c, the lowest-latency path using only links of rate >= c is optimal among
    paths with that bottleneck; the best over all c is the exact optimum of ``size/bottleneck + latency``.
    """
    if src == dst:
        return [], math.inf, 0.0
    best = None
    for cap in sorted({d["mbps"] for _, _, d in graph.edges(data=True)}):
        sub = nx.subgraph_view(graph, filter_edge=lambda u, v, c=cap: graph[u][v]["mbps"] >= c)
        try:
            length, path = nx.single_source_dijkstra(sub, src, dst, weight="latency_ms")
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            continue
        edges = list(zip(path, path[1:]))
        bottleneck = min(graph[u][v]["mbps"] for u, v in edges)
        t = float(transfer_ms(ROUTE_REFERENCE_BYTES, bottleneck, length))
        if best is None or t < best[0]:
            best = (t, [_link_id(u, v) for u, v in edges], bottleneck, float(length))
    return None if best is None else (best[1], best[2], best[3])
