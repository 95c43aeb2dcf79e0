"""Codecs on real smashed data: bits per entry, bytes saved, reconstruction error and gradient agreement.

``codec_table`` takes a registered split model on a dataset, optionally trains it briefly (activations of a
trained network are what a deployment sends), cuts it at ``a`` and measures, for each codec setting, on a batch of
test samples: bits per entry (exact payload), % of fp32 saved, the relative L2 error of the decoded activations
``||x - x'|| / ||x||`` (over the batch), and the cosine between the client's head gradient with and without the
codec (the gradient flows back straight-through, so the codec biases it through the body and tail's forward pass).
"""

from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from pslsched.core.codecs import Codec, parse_codec
from pslsched.models.zoo import MODELS, build_blocks, check_cuts, default_model_for
from pslsched.training.datasets import load_dataset
from pslsched.training.transfer import roundtrip

DEFAULT_SETTINGS = [
    "none",
    "fp16",
    "quant:bits=8",
    "quant:bits=4",
    "quant:bits=2",
    "topk:r=0.1",
    "topk:r=0.05",
    "topk:r=0.01",
    "randtopk:r=0.1,alpha=0.1",
    "randtopk:r=0.05,alpha=0.1",
    "ms:r=0.1,bits=2",
    "ms:r=0.05,bits=2",
    "ms:r=0.01,bits=2",
    "ms:r=0.01,bits=4",
]


def budget_settings(bits: float, d: int) -> list[str]:
    """One setting per codec at about ``bits`` bits per entry for tensors of ``d`` entries."""
    index = max(1, math.ceil(math.log2(d)))
    out = ["none", "fp16"]
    out.append(f"quant:bits={max(1, min(16, round(bits)))}")
    r_top = min(1.0, bits / (32 + index))
    out += [f"topk:r={r_top:.6g}", f"randtopk:r={r_top:.6g},alpha=0.1"]
    if bits > 2:
        out.append(f"ms:r={min(1.0, (bits - 2) / 32):.6g},bits=2")
    elif bits > 1:
        out.append(f"ms:r={min(1.0, (bits - 1) / 32):.6g},bits=1")
    return out


def _grads(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


def codec_table(
    dataset: str = "digits",
    model: str | None = None,
    cut: int | None = None,
    settings: list[str] | None = None,
    budget: float | None = None,
    samples: int = 256,
    warmup_steps: int = 100,
    seed: int = 0,
    data_dir: str | None = None,
) -> tuple[pd.DataFrame, dict]:
    """The table (one row per codec setting) and what it was measured on (model, cut, entries per sample)."""
    torch.manual_seed(seed)
    data = load_dataset(dataset, data_dir, seed=seed)
    name = model or default_model_for(data.input_shape)
    blocks = build_blocks(name, data.input_shape, data.num_classes)
    a = cut if cut is not None else MODELS.get(name).default_cuts[0]
    check_cuts(len(blocks), a, len(blocks) - 1, "--cut")
    net = nn.Sequential(*blocks)
    if warmup_steps:
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(warmup_steps):
            sel = torch.randint(0, len(data.y_train), (64,), generator=gen)
            opt.zero_grad()
            F.cross_entropy(net(data.x_train[sel]), data.y_train[sel]).backward()
            opt.step()
    head, rest = nn.Sequential(*blocks[:a]), nn.Sequential(*blocks[a:])
    x, y = data.x_test[:samples], data.y_test[:samples]
    smashed = head(x)
    d = int(smashed[0].numel())
    reference = smashed.detach()
    net.zero_grad()
    F.cross_entropy(rest(smashed), y).backward()
    g_ref = _grads(head)
    rows = []
    for spec in settings or (budget_settings(budget, d) if budget is not None else DEFAULT_SETTINGS):
        codec: Codec = parse_codec(spec)
        net.zero_grad()
        out = head(x)
        decoded, bits = roundtrip(codec, out.detach(), torch.Generator().manual_seed(seed))
        err = float((decoded - reference).norm() / reference.norm()) if reference.norm() > 0 else 0.0
        sent = decoded.clone().requires_grad_(True)
        F.cross_entropy(rest(sent), y).backward()
        out.backward(
            sent.grad
        )  # straight-through: the client applies the gradient of what the helper received
        g = _grads(head)
        bpe = bits / (len(x) * d)
        rows.append(
            {
                "codec": codec.spec,
                "bits_per_entry": bpe,
                "saved_pct": 100.0 * (1.0 - bpe / 32.0),
                "rel_l2_error": err,
                "grad_cosine": float(F.cosine_similarity(g, g_ref, dim=0)),
            }
        )
    info = {
        "dataset": dataset,
        "model": name,
        "cut": a,
        "entries_per_sample": d,
        "samples": len(x),
        "warmup_steps": warmup_steps,
        "relu_features": bool((reference >= 0).all()),
    }
    return pd.DataFrame(rows), info
