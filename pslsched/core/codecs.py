"""Codecs for the smashed data: their exact payload sizes, for planning (numpy only; the torch encode/decode is in
``pslsched.training.codecs``).

Every codec compresses **one sample's** tensor of ``d`` entries (a batch is ``n`` independent payloads), so a batch's
size is ``n x payload_bits(d)`` and sizes scale with the samples exactly as the simulator's clock does. Sizes are
exact and include every header; ``decode(encode(x))`` returns a tensor of x's shape and dtype. Per codec, with
``k = min(d, max(1, ceil(r d)))`` kept entries:

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

Encode/decode time is modelled per element (``ns_per_element``, this machine's order of magnitude, documented in
docs/compression.md) and charged to the device that runs it, scaled by that device's speed relative to the
profile's fastest device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pslsched.base.errors import InputError

FIELD = "--codec"


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


@dataclass(frozen=True)
class Codec:
    """A codec with its options; ``payload_bits(d)`` is one sample's exact size."""

    name: str = "none"
    options: dict = field(default_factory=dict)
    ns_per_element: float = 0.0  # modelled encode (and again decode) cost per element on the reference device

    @property
    def spec(self) -> str:
        opts = ",".join(f"{k}={v:g}" for k, v in self.options.items())
        return self.name + (f":{opts}" if opts else "")

    def kept(self, d: int) -> int:
        return min(d, max(1, math.ceil(self.options["r"] * d - 1e-9)))

    def payload_bits(self, d: int) -> int:
        d = int(d)
        if d <= 0:
            return 0
        if self.name == "none":
            return 32 * d
        if self.name == "fp16":
            return 16 * d
        if self.name == "quant":
            return int(self.options["bits"]) * d + 64
        k = self.kept(d)
        if self.name in ("topk", "randtopk"):
            return k * (32 + max(1, math.ceil(math.log2(d))))
        if self.name == "ms":
            return 32 * k + int(self.options["bits"]) * d
        raise AssertionError(self.name)

    def bits_per_entry(self, d: int) -> float:
        return self.payload_bits(d) / d


CODECS: dict[str, tuple[str, float]] = {
    "none": ("no compression: 32 bits per entry", 0.0),
    "fp16": ("half precision: 16 bits per entry", 0.5),
    "quant": ("quant:bits=B: uniform min-max quantisation, B bits per entry + 64-bit header", 2.0),
    "topk": ("topk:r=R: the k = ceil(rd) largest magnitudes, values + ceil(log2 d)-bit indices", 8.0),
    "randtopk": ("randtopk:r=R,alpha=A: randomised top-k (Zheng et al. 2023), sized as topk", 12.0),
    "ms": ("ms:r=R,bits=B: mask-encoded sparsification (Zhou et al. 2024), 32r + B bits per entry", 10.0),
}


def parse_codec(spec: str | None) -> Codec:
    """``none``, ``fp16``, ``quant:bits=B``, ``topk:r=R``, ``randtopk:r=R[,alpha=A]``, ``ms:r=R[,bits=B]``."""
    if spec is None:
        return Codec()
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(FIELD, f"expected a codec name, got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    if name not in CODECS:
        raise InputError(FIELD, f"unknown codec {name!r} (known: {', '.join(CODECS)})")
    raw: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        if "=" not in item:
            raise InputError(FIELD, f"expected key=value, got {item!r} (e.g. ms:r=0.01,bits=2)")
        key, value = (s.strip() for s in item.split("=", 1))
        raw[key] = value
    allowed = {"none": (), "fp16": (), "quant": ("bits",), "topk": ("r",), "randtopk": ("r", "alpha"),
               "ms": ("r", "bits")}[name]  # fmt: skip
    for key in raw:
        if key not in allowed:
            raise InputError(
                f"{FIELD}.{key}", f"unknown option of {name!r} (options: {', '.join(allowed) or 'none'})"
            )
    options: dict[str, float] = {}
    if "r" in allowed:
        if "r" not in raw:
            raise InputError(
                f"{FIELD}.r", f"{name} needs r, the kept fraction in (0, 1] (e.g. {name}:r=0.01)"
            )
        options["r"] = _spec_number("r", raw["r"], low=0.0, high=1.0, low_open=True)
    if name == "randtopk":
        options["alpha"] = _spec_number("alpha", raw.get("alpha", "0.1"), low=0.0, high=1.0)
    if "bits" in allowed:
        options["bits"] = _bits_option(raw.get("bits", "2" if name == "ms" else "8"))
    return Codec(name, options, CODECS[name][1])


@dataclass(frozen=True)
class Compression:
    """What is compressed: the cut-a activations always, the cut-b activations and the gradients on request."""

    codec: Codec = field(default_factory=Codec)
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
