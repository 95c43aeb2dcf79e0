"""The testbed.yaml schema (pydantic): model and cuts, helper and client groups, topology, compression.

See the README for the format. Every client or helper entry may stand for a group (``count``); its members are
named ``<name>-<k>`` (k from 0). Link rates and latencies are ``Rate``-s (``pslsched.core.testbed.rates``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_BATCHES, MAX_GROUP
from pslsched.core.codecs import Compression, parse_codec
from pslsched.core.testbed.fields import LatencyMs, MemoryMB, PositiveFloat, RateMbps, Strict
from pslsched.core.testbed.rates import Number, Rate
from pslsched.profiles import ModelProfile, ProfileError, load_profile
from pslsched.profiles.measure import measured_profile


class Cut(Strict):
    a: int = Field(ge=1)
    b: int = Field(ge=2)

    @model_validator(mode="after")
    def _order(self):
        if self.a >= self.b:
            raise ValueError(f"a ({self.a}) must be < b ({self.b})")
        return self


class CutSet(Strict):
    """``cuts: {allowed: [{a, b}, ...]}``: the cuts the planner may choose among."""

    allowed: list[Cut] = Field(min_length=1)


# a fixed cut, a set to choose from, or ``auto``: every cut the profile makes meaningful (docs/solvers.md)
CutSpec = Cut | CutSet | Literal["auto"]


class Model(Strict):
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
            shape = tuple(self.input_shape or (3, 32, 32))
            return load_profile(measured_profile(self.measure, int(self.batch), shape, self.num_classes))
        except ProfileError as exc:
            raise InputError("model.profile" if self.profile else "model.measure", str(exc)) from None


class CompressionSection(Strict):
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


class HelperGroup(Strict):
    name: str = Field(min_length=1)
    count: int = Field(default=1, ge=1, le=MAX_GROUP)
    device: str = Field(min_length=1)
    memory_mb: MemoryMB
    node: str | None = None  # where the helper sits in the topology (default: its own name)
    nic_mbps: RateMbps | None = None  # helper network interface capacity, shared by its transfers


class ClientGroup(Strict):
    name: str = Field(min_length=1)
    count: int = Field(default=1, ge=1, le=MAX_GROUP)
    device: str = Field(min_length=1)
    uplink_mbps: Rate
    downlink_mbps: Rate | None = None  # default: the drawn uplink rate
    latency_ms: Rate = Number(0.0)
    cut: CutSpec | None = None
    memory_mb: MemoryMB | None = None  # what a client device can hold (head + tail); default unbounded
    local: bool = False  # may train the whole model on its own device (hybrid split/federated)
    attach: str | None = None  # topology node the client's access link connects to
    helpers: list[str] | None = None  # restrict to these helpers (member or group names)

    @field_validator("uplink_mbps", "downlink_mbps")
    @classmethod
    def _positive_rate(cls, v):
        if isinstance(v, Number) and v.value <= 0:
            raise ValueError(f"a rate must be > 0 Mbit/s, got {v.value}")
        return v


class Link(Strict):
    a: str
    b: str
    mbps: RateMbps
    latency_ms: LatencyMs = 0.0


class Topology(Strict):
    links: list[Link] = Field(min_length=1)


class Testbed(Strict):
    name: str = "testbed"
    seed: int = 0
    model: Model
    cuts: CutSpec | None = None
    # a cut per client member (``rpi-3: {a, b}``), over its group's: what the planner writes when it chooses the
    # cut per client (docs/problem.md §1)
    client_cuts: dict[str, Cut] | None = None
    batches: int = Field(default=1, ge=1, le=MAX_BATCHES)
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

    @property
    def chooses_cuts(self) -> bool:
        """Some client group's cut is to be chosen (``auto`` or a set of allowed cuts)."""
        return any(not isinstance(g.cut or self.cuts, Cut) for g in self.clients)
