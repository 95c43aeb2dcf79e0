"""What crosses a cut in training: the tensor the receiver rebuilds under the run's compression.

A codec (``pslsched.core.codecs``) encodes and decodes; here ``roundtrip`` runs both ends of one transfer and
``received`` decides, from the run's ``Compression``, whether a tensor crossing a cut is compressed at all (the
cut-a activations always, the cut-b activations and the gradients on request). Gradients pass straight through
otherwise.
"""

from __future__ import annotations

from typing import Literal

import torch

from pslsched.core.codecs import Codec, Compression

Crossing = Literal["a", "b", "grad"]  # cut-a activations, cut-b activations, a gradient


def roundtrip(
    codec: Codec, x: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, int]:
    """``codec.decode(codec.encode(x))`` and the payload's bits (``n x codec.payload_bits(d)``)."""
    payload = codec.encode(x, generator)
    return codec.decode(payload), payload.bits


def draws_random(codec: Codec) -> bool:
    """Whether ``codec``'s encoding draws from its generator (probed once on a small random batch)."""
    probe = torch.Generator().manual_seed(0)
    before = probe.get_state()
    codec.encode(torch.randn(4, 64, generator=torch.Generator().manual_seed(1)), probe)
    return not torch.equal(before, probe.get_state())


def received(
    compression: Compression | None, x: torch.Tensor, what: Crossing, generator: torch.Generator | None = None
) -> torch.Tensor:
    """What the receiver gets of ``x`` (detached): decode(encode(x)) when ``what`` is compressed."""
    x = x.detach()
    c = compression
    if (
        c is not None
        and c.active
        and (what == "a" or (what == "b" and c.cut_b) or (what == "grad" and c.grads))
    ):
        x = roundtrip(c.codec, x, generator)[0]
    return x
