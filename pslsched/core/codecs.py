"""Codecs for the smashed data: one class per codec, owning its exact payload size and its encode/decode.

Every codec compresses **one sample's** tensor of ``d`` entries (a batch is ``n`` independent payloads), so a batch's
size is ``n x payload_bits(d)`` and sizes scale with the samples exactly as the simulator's clock does. Sizes are
exact and include every header; ``encode(x)`` returns a ``Payload`` whose ``bits`` are ``n x payload_bits(d)`` and
``decode(payload)`` a tensor of x's shape and dtype. Per codec, with ``k = min(d, max(1, ceil(r d)))`` kept entries:

| codec | bits per sample | header |
|---|---|---|
| ``none`` | ``32 d`` | none |
| ``fp16`` | ``16 d`` | none |
| ``quant:bits=B`` | ``B d + 64`` | min and max as fp32 (uniform min-max quantisation) |
| ``topk:r=R`` | ``k (32 + ceil(log2 d))`` | none (k follows from r and d): values + indices |
| ``randtopk:r=R,alpha=A`` | ``k (32 + ceil(log2 d))`` | as topk (Zheng et al. 2023: k entries drawn, top-k ones with probability (1-A)/k each, the others A/(d-k)) |
| ``ms:r=R,bits=B`` | ``32 k + B d`` | none: the k kept values in index order and a B-bit code per entry; the threshold v is the smallest kept magnitude, which the receiver reads off the values (Zhou et al. 2024) |

MS: with ``L = 2^B - 1`` (``2^(B-1) - 1`` for signed features, one bit being the sign), a kept entry gets code L ("a full
value goes here"), any other ``min(round(|x| L / v), L - 1)``; decode ``code v / L`` (with the sign). Error per
dropped entry at most ``v / L`` (``v / (2L)`` below the clamp). Signed features need B >= 2. The 4x4 fp32 map of the
paper (64 B) with k = 4, B = 2 is ``4 x 32 + 2 x 16 = 160`` bits = 20 B; ``r = 0.01, B = 2`` is 2.32 bits per
entry, 92.75% less than fp32.

Planning needs only the sizes, so this module does not import torch: encode/decode import it when they run.

Encode/decode time is modelled per element (``ns_per_element``, this machine's order of magnitude, documented in
docs/compression.md) and charged to the device that runs it, scaled by that device's speed relative to the
profile's fastest device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from pslsched.base.errors import InputError
from pslsched.base.registry import Registry, parse_spec

if TYPE_CHECKING:
    import torch

FIELD = "--codec"


@dataclass
class Payload:
    """What a sender transmits for a batch: the codec's tensors (``parts``) and their exact size in bits."""

    codec: Codec
    shape: tuple[int, ...]
    dtype: torch.dtype
    bits: int
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Codec:
    """A codec with its options bound; ``payload_bits(d)`` is one sample's exact size in bits.

    A subclass sets ``name`` and ``ns_per_element``, declares its options as dataclass fields (``OPTIONS`` lists the
    spec keys, ``from_options`` validates them) and implements ``sample_bits``, ``encode_rows`` and ``decode_rows``
    on the ``n x d`` rows of a batch; it registers itself with ``@CODECS.register(name, summary)``.
    """

    name: ClassVar[str] = ""
    ns_per_element: ClassVar[float] = (
        0.0  # modelled encode (and again decode) cost per element, reference device
    )
    OPTIONS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_options(cls, raw: dict[str, str]) -> Codec:
        """The codec from a spec's ``key=value`` strings (keys already checked against ``OPTIONS``)."""
        return cls()

    @property
    def options(self) -> dict[str, Any]:
        """The codec's options by name, in spec order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def spec(self) -> str:
        opts = ",".join(f"{k}={v:g}" for k, v in self.options.items())
        return self.name + (f":{opts}" if opts else "")

    def payload_bits(self, d: int) -> int:
        """The exact bits of one sample of ``d`` entries (0 for an empty tensor)."""
        d = int(d)
        return self.sample_bits(d) if d > 0 else 0

    def bits_per_entry(self, d: int) -> float:
        return self.payload_bits(d) / d

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Payload:
        """The payload of ``x`` (n samples, compressed one by one); randomised codecs draw from ``generator``."""
        x = x.detach()
        n = x.shape[0]
        flat = x.reshape(n, -1).float()
        d = flat.shape[1]
        return Payload(
            self, tuple(x.shape), x.dtype, n * self.payload_bits(d), self.encode_rows(flat, generator)
        )

    def decode(self, payload: Payload) -> torch.Tensor:
        """The tensor the receiver rebuilds from ``payload`` (the sent tensor's shape and dtype)."""
        n = payload.shape[0]
        d = math.prod(payload.shape[1:])
        return self.decode_rows(payload.parts, n, d).reshape(payload.shape).to(payload.dtype)

    # --- what a codec implements ------------------------------------------------------------------------------
    def sample_bits(self, d: int) -> int:
        raise NotImplementedError

    def encode_rows(self, flat: torch.Tensor, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def decode_rows(self, parts: dict[str, torch.Tensor], n: int, d: int) -> torch.Tensor:
        raise NotImplementedError


CODECS: Registry[type[Codec]] = Registry("codec", FIELD)


def _spec_number(key: str, value, *, low: float, high: float | None = None, low_open: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{FIELD}.{key}", f"must be a number, got {value!r}") from None
    if not math.isfinite(x) or (x <= low if low_open else x < low) or (high is not None and x > high):
        rng = f"({low}, {high}]" if low_open else f"[{low}, {high if high is not None else 'inf'}]"
        raise InputError(f"{FIELD}.{key}", f"must be in {rng}, got {value!r}")
    return x


def _bits_option(value) -> int:
    b = _spec_number("bits", value, low=1, high=16)
    if b != int(b):
        raise InputError(f"{FIELD}.bits", f"must be a whole number of bits, got {value!r}")
    return int(b)


def _kept_fraction(name: str, raw: dict[str, str]) -> float:
    if "r" not in raw:
        raise InputError(f"{FIELD}.r", f"{name} needs r, the kept fraction in (0, 1] (e.g. {name}:r=0.01)")
    return _spec_number("r", raw["r"], low=0.0, high=1.0, low_open=True)


@CODECS.register("none", "no compression: 32 bits per entry")
@dataclass(frozen=True)
class Uncompressed(Codec):
    """fp32 as it is."""

    name: ClassVar[str] = "none"

    def sample_bits(self, d: int) -> int:
        return 32 * d

    def encode_rows(self, flat, generator):
        return {"x": flat}

    def decode_rows(self, parts, n, d):
        return parts["x"].float()


@CODECS.register("fp16", "half precision: 16 bits per entry")
@dataclass(frozen=True)
class HalfPrecision(Codec):
    """Every entry as fp16."""

    name: ClassVar[str] = "fp16"
    ns_per_element: ClassVar[float] = 0.5

    def sample_bits(self, d: int) -> int:
        return 16 * d

    def encode_rows(self, flat, generator):
        return {"x": flat.half()}

    def decode_rows(self, parts, n, d):
        return parts["x"].float()


@CODECS.register("quant", "quant:bits=B: uniform min-max quantisation, B bits per entry + 64-bit header")
@dataclass(frozen=True)
class Quantisation(Codec):
    """Uniform min-max quantisation of each sample to ``bits`` bits per entry (min and max sent as fp32)."""

    bits: int = 8
    name: ClassVar[str] = "quant"
    ns_per_element: ClassVar[float] = 2.0
    OPTIONS: ClassVar[tuple[str, ...]] = ("bits",)

    @classmethod
    def from_options(cls, raw):
        return cls(_bits_option(raw.get("bits", "8")))

    def sample_bits(self, d: int) -> int:
        return int(self.bits) * d + 64

    def encode_rows(self, flat, generator):
        import torch

        levels = 2 ** int(self.bits) - 1
        lo = flat.min(dim=1, keepdim=True).values
        hi = flat.max(dim=1, keepdim=True).values
        span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        return {"q": torch.round((flat - lo) / span * levels), "lo": lo, "span": span}

    def decode_rows(self, parts, n, d):
        levels = 2 ** int(self.bits) - 1
        return parts["q"] / levels * parts["span"] + parts["lo"]


@dataclass(frozen=True)
class Sparsifying(Codec):
    """A codec that keeps ``k = min(d, max(1, ceil(r d)))`` entries of each sample in full."""

    r: float

    def kept(self, d: int) -> int:
        return min(d, max(1, math.ceil(self.r * d - 1e-9)))


@CODECS.register("topk", "topk:r=R: the k = ceil(rd) largest magnitudes, values + ceil(log2 d)-bit indices")
@dataclass(frozen=True)
class TopK(Sparsifying):
    """The k largest magnitudes: their values and indices."""

    name: ClassVar[str] = "topk"
    ns_per_element: ClassVar[float] = 8.0
    OPTIONS: ClassVar[tuple[str, ...]] = ("r",)

    @classmethod
    def from_options(cls, raw):
        return cls(_kept_fraction(cls.name, raw))

    def sample_bits(self, d: int) -> int:
        return self.kept(d) * (32 + max(1, math.ceil(math.log2(d))))

    def indices(self, flat: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
        """The k indices per row that are sent."""
        return flat.abs().topk(k, dim=1).indices

    def encode_rows(self, flat, generator):
        idx = self.indices(flat, self.kept(flat.shape[1]), generator)
        return {"idx": idx, "values": flat.gather(1, idx)}

    def decode_rows(self, parts, n, d):
        import torch

        values = parts["values"]
        flat = torch.zeros(n, d, dtype=values.dtype, device=values.device)
        flat.scatter_(1, parts["idx"], values)
        return flat


@CODECS.register("randtopk", "randtopk:r=R,alpha=A: randomised top-k (Zheng et al. 2023), sized as topk")
@dataclass(frozen=True)
class RandomisedTopK(TopK):
    """k indices per row drawn without replacement: each top-k entry with weight (1-alpha)/k, the rest alpha/(d-k)."""

    alpha: float = 0.1
    name: ClassVar[str] = "randtopk"
    ns_per_element: ClassVar[float] = 12.0
    OPTIONS: ClassVar[tuple[str, ...]] = ("r", "alpha")

    @classmethod
    def from_options(cls, raw):
        r = _kept_fraction(cls.name, raw)
        return cls(r, _spec_number("alpha", raw.get("alpha", "0.1"), low=0.0, high=1.0))

    def indices(self, flat, k, generator):
        import torch

        n, d = flat.shape
        if k >= d:
            return torch.arange(d, device=flat.device).expand(n, d).clone()
        top = flat.abs().topk(k, dim=1).indices
        weights = torch.full((n, d), self.alpha / (d - k), device=flat.device)
        weights.scatter_(1, top, (1 - self.alpha) / k)
        if self.alpha == 0:
            return top
        return torch.multinomial(weights, k, replacement=False, generator=generator)


@CODECS.register(
    "ms", "ms:r=R,bits=B: mask-encoded sparsification (Zhou et al. 2024), 32r + B bits per entry"
)
@dataclass(frozen=True)
class MaskEncoded(Sparsifying):
    """Mask-encoded sparsification: the k largest magnitudes in full, a ``bits``-bit code for every entry."""

    bits: int = 2
    name: ClassVar[str] = "ms"
    ns_per_element: ClassVar[float] = 10.0
    OPTIONS: ClassVar[tuple[str, ...]] = ("r", "bits")

    @classmethod
    def from_options(cls, raw):
        r = _kept_fraction(cls.name, raw)
        return cls(r, _bits_option(raw.get("bits", "2")))

    def sample_bits(self, d: int) -> int:
        return 32 * self.kept(d) + int(self.bits) * d

    def _levels(self, signed: bool) -> int:
        return 2 ** (int(self.bits) - 1 if signed else int(self.bits)) - 1

    def encode_rows(self, flat, generator):
        import torch

        k = self.kept(flat.shape[1])
        signed = bool((flat < 0).any())
        if signed and self.bits < 2:
            raise ValueError("ms: signed features need bits >= 2 (one bit is the sign)")
        levels = self._levels(signed)
        mag = flat.abs()
        top = mag.topk(k, dim=1)
        v = top.values[:, -1:]  # the smallest kept magnitude
        keep = torch.zeros_like(flat, dtype=torch.bool)
        keep.scatter_(1, top.indices, True)
        safe_v = torch.where(v > 0, v, torch.ones_like(v))
        code = torch.clamp(torch.round(mag * levels / safe_v), max=levels - 1)
        code = torch.where(keep, torch.full_like(code, levels), code)
        order = keep.nonzero()  # row-major: the kept values in index order, as sent
        values = flat[order[:, 0], order[:, 1]].reshape(flat.shape[0], k)
        return {"code": code, "sign": torch.sign(flat), "values": values, "signed": torch.tensor(signed)}

    def decode_rows(self, parts, n, d):
        import torch

        signed = bool(parts["signed"])
        levels = self._levels(signed)
        code, values = parts["code"], parts["values"]
        v = values.abs().min(dim=1, keepdim=True).values  # the receiver reads the threshold off the values
        sign = parts["sign"] if signed else torch.ones_like(code)
        flat = code * v / levels * sign
        keep = code == levels
        flat[keep] = values.reshape(-1)
        return flat


def parse_codec(spec: str | None) -> Codec:
    """``none``, ``fp16``, ``quant:bits=B``, ``topk:r=R``, ``randtopk:r=R[,alpha=A]``, ``ms:r=R[,bits=B]``."""
    if spec is None:
        return Uncompressed()
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(FIELD, f"expected a codec name, got {spec!r}")
    name, args, raw = parse_spec(spec, FIELD)
    cls = CODECS.get(name)
    if args:
        raise InputError(FIELD, f"expected key=value, got {args[0]!r} (e.g. ms:r=0.01,bits=2)")
    for key in raw:
        if key not in cls.OPTIONS:
            raise InputError(
                f"{FIELD}.{key}", f"unknown option of {name!r} (options: {', '.join(cls.OPTIONS) or 'none'})"
            )
    return cls.from_options(raw)


@dataclass(frozen=True)
class Compression:
    """What is compressed: the cut-a activations always, the cut-b activations and the gradients on request."""

    codec: Codec = field(default_factory=Uncompressed)
    cut_b: bool = False
    grads: bool = False

    @property
    def active(self) -> bool:
        return self.codec.name != "none"


def compressed_bytes(codec: Codec, batch_bytes: np.ndarray, batch: float) -> np.ndarray:
    """The bytes of a batch of ``batch`` samples whose fp32 activations take ``batch_bytes``, once compressed."""
    out = np.zeros_like(np.asarray(batch_bytes, dtype=float))
    for idx, b in np.ndenumerate(np.asarray(batch_bytes, dtype=float)):
        d = int(round(b / 4.0 / batch))  # entries per sample
        out[idx] = batch * codec.payload_bits(d) / 8.0 if d > 0 else 0.0
    return out


def codec_ms(codec: Codec, batch_bytes: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """Modelled encode (or decode) time of a batch's activations on devices of relative slowness ``speed``."""
    elements = np.asarray(batch_bytes, dtype=float) / 4.0
    return elements * codec.ns_per_element * 1e-6 * np.asarray(speed, dtype=float)
