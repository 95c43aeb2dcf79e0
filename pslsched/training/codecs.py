"""Encode and decode smashed data with a codec (``pslsched.core.codecs``): what the helper really receives.

``encode(codec, x)`` returns a ``Payload`` (the tensors a real sender would transmit and their exact size in bits,
equal to ``n x codec.payload_bits(d)`` for n samples of d entries); ``decode(payload)`` rebuilds a tensor of x's
shape and dtype. Every codec works per sample (the first dimension). Gradients pass straight through unless the
caller encodes them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from pslsched.core.codecs import Codec


@dataclass
class Payload:
    codec: Codec
    shape: tuple[int, ...]
    dtype: torch.dtype
    bits: int
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


def encode(codec: Codec, x: torch.Tensor, generator: torch.Generator | None = None) -> Payload:
    """The payload of ``x`` (n samples) under ``codec``."""
    x = x.detach()
    n = x.shape[0]
    flat = x.reshape(n, -1).float()
    d = flat.shape[1]
    pay = Payload(codec, tuple(x.shape), x.dtype, n * codec.payload_bits(d))
    name = codec.name
    if name == "none":
        pay.parts["x"] = flat
    elif name == "fp16":
        pay.parts["x"] = flat.half()
    elif name == "quant":
        levels = 2 ** int(codec.options["bits"]) - 1
        lo = flat.min(dim=1, keepdim=True).values
        hi = flat.max(dim=1, keepdim=True).values
        span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        pay.parts.update(q=torch.round((flat - lo) / span * levels), lo=lo, span=span)
    elif name in ("topk", "randtopk"):
        k = codec.kept(d)
        if name == "topk":
            idx = flat.abs().topk(k, dim=1).indices
        else:
            idx = _random_topk(flat, k, codec.options["alpha"], generator)
        pay.parts.update(idx=idx, values=flat.gather(1, idx))
    elif name == "ms":
        pay.parts.update(_ms_encode(flat, codec.kept(d), int(codec.options["bits"])))
    else:  # pragma: no cover - parse_codec admits only the names above
        raise ValueError(name)
    return pay


def decode(pay: Payload) -> torch.Tensor:
    """The tensor the receiver rebuilds from ``pay``."""
    name, p = pay.codec.name, pay.parts
    n = pay.shape[0]
    if name in ("none", "fp16"):
        flat = p["x"].float()
    elif name == "quant":
        levels = 2 ** int(pay.codec.options["bits"]) - 1
        flat = p["q"] / levels * p["span"] + p["lo"]
    elif name in ("topk", "randtopk"):
        d = _entries(pay.shape)
        flat = torch.zeros(n, d, dtype=p["values"].dtype, device=p["values"].device)
        flat.scatter_(1, p["idx"], p["values"])
    else:
        flat = _ms_decode(p, int(pay.codec.options["bits"]))
    return flat.reshape(pay.shape).to(pay.dtype)


def roundtrip(
    codec: Codec, x: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, int]:
    """``decode(encode(x))`` and the payload's bits."""
    pay = encode(codec, x, generator)
    return decode(pay), pay.bits


def _entries(shape: tuple[int, ...]) -> int:
    d = 1
    for s in shape[1:]:
        d *= s
    return d


def _random_topk(flat: torch.Tensor, k: int, alpha: float, generator) -> torch.Tensor:
    """k indices per row drawn without replacement: each top-k entry with weight (1-alpha)/k, the rest alpha/(d-k)."""
    n, d = flat.shape
    if k >= d:
        return torch.arange(d, device=flat.device).expand(n, d).clone()
    top = flat.abs().topk(k, dim=1).indices
    weights = torch.full((n, d), alpha / (d - k), device=flat.device)
    weights.scatter_(1, top, (1 - alpha) / k)
    if alpha == 0:
        return top
    return torch.multinomial(weights, k, replacement=False, generator=generator)


def _ms_encode(flat: torch.Tensor, k: int, bits: int) -> dict[str, torch.Tensor]:
    """Mask-encoded sparsification: the k largest magnitudes in full, a ``bits``-bit code for every entry."""
    signed = bool((flat < 0).any())
    if signed and bits < 2:
        raise ValueError("ms: signed features need bits >= 2 (one bit is the sign)")
    levels = 2 ** (bits - 1 if signed else bits) - 1
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


def _ms_decode(p: dict[str, torch.Tensor], bits: int) -> torch.Tensor:
    signed = bool(p["signed"])
    levels = 2 ** (bits - 1 if signed else bits) - 1
    code, values = p["code"], p["values"]
    v = values.abs().min(dim=1, keepdim=True).values  # the receiver reads the threshold off the values
    sign = p["sign"] if signed else torch.ones_like(code)
    flat = code * v / levels * sign
    keep = code == levels
    flat[keep] = values.reshape(-1)
    return flat
