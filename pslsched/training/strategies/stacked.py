"""A module's forward over stacked parameters: ``stacked_call(module, params, x)``, one model copy per row.

``params[name]`` has a leading dimension ``G`` (one copy of ``module``'s parameter ``name`` per row) and ``x`` has
shape ``(G, n, *input)`` (``n`` samples per copy); the result is ``(G, n, *output)``, what
``torch.func.vmap(functional_call)`` computes, with cheaper kernels where vmap's are slow on a CPU. vmap turns a
convolution over ``G`` weight copies into one convolution with ``groups=G``, whose backward is slow for many small
groups (LocFedMix at K = 10,000: ~62 clients of one sample a step; the decoder's 16 -> 1 convolution's backward
took a third of the step). Here, walking the module:

* ``nn.Sequential``: its children in order;
* ``nn.Conv2d`` with one input channel (a first layer): im2col (``F.unfold``, cheap for one channel) and one
  batched matmul; with one output channel (a decoder's last layer): a depthwise convolution over the ``G x Cin``
  channels, summed over each copy's input channels; otherwise the grouped convolution vmap uses;
* ``nn.Linear``: one batched matmul;
* a module without parameters or buffers (activations, pooling, resizing, reshaping): applied to the ``G x n``
  samples at once;
* anything else (a module with buffers, a custom layer): ``vmap(functional_call)`` on that module.

The same arithmetic as vmap's up to the order of float sums inside the kernels (tested against per-client modules
in float64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

Params = dict[str, torch.Tensor]


def stacked_call(module: nn.Module, params: Params, x: torch.Tensor) -> torch.Tensor:
    """``module`` with its parameters ``params`` (each ``(G, *shape)``) on ``x`` (``(G, n, *input)``)."""
    return _walk(module, "", params, x)


def _own(params: Params, prefix: str, module: nn.Module) -> Params:
    return {n: params[prefix + n] for n, _ in module.named_parameters()}


def _walk(module: nn.Module, prefix: str, params: Params, x: torch.Tensor) -> torch.Tensor:
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            x = _walk(child, f"{prefix}{name}.", params, x)
        return x
    if type(module) is nn.Conv2d and _plain_conv(module):
        return _conv(module, params[prefix + "weight"], params.get(prefix + "bias"), x)
    if type(module) is nn.Linear:
        return _linear(params[prefix + "weight"], params.get(prefix + "bias"), x)
    if not any(True for _ in module.parameters()) and not any(True for _ in module.buffers()):
        g, n = x.shape[:2]
        out = module(x.reshape(g * n, *x.shape[2:]))
        return out.reshape(g, n, *out.shape[1:])
    own = _own(params, prefix, module)
    return vmap(lambda p, inp: functional_call(module, p, (inp,)))(own, x)


def _plain_conv(m: nn.Conv2d) -> bool:
    return m.groups == 1 and m.padding_mode == "zeros" and isinstance(m.padding, tuple)


def _conv(m: nn.Conv2d, w: torch.Tensor, b: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """A convolution with weight copies ``w`` (``(G, Cout, Cin, kh, kw)``) on ``x`` (``(G, n, Cin, H, W)``)."""
    g, n, cin, h, wd = x.shape
    cout = w.shape[1]
    kh, kw = m.kernel_size
    if cin == 1:  # im2col of one channel: (G*n, kh*kw, L), then each copy's (Cout, kh*kw) matrix
        cols = F.unfold(x.reshape(g * n, 1, h, wd), m.kernel_size, m.dilation, m.padding, m.stride)
        ho = (h + 2 * m.padding[0] - m.dilation[0] * (kh - 1) - 1) // m.stride[0] + 1
        wo = (wd + 2 * m.padding[1] - m.dilation[1] * (kw - 1) - 1) // m.stride[1] + 1
        out = w.reshape(g, 1, cout, kh * kw) @ cols.reshape(g, n, kh * kw, -1)
        if b is not None:
            out = out + b.reshape(g, 1, cout, 1)
        return out.reshape(g, n, cout, ho, wo)
    inp = x.transpose(0, 1).reshape(n, g * cin, h, wd)
    if cout == 1:  # depthwise over every copy's input channels, then each copy's sum over them
        out = F.conv2d(inp, w.reshape(g * cin, 1, kh, kw), None, m.stride, m.padding, m.dilation, g * cin)
        out = out.reshape(n, g, cin, *out.shape[2:]).sum(2, keepdim=True)
        if b is not None:
            out = out + b.reshape(1, g, 1, 1, 1)
        return out.transpose(0, 1)
    bias = None if b is None else b.reshape(g * cout)
    out = F.conv2d(inp, w.reshape(g * cout, cin, kh, kw), bias, m.stride, m.padding, m.dilation, g)
    return out.reshape(n, g, cout, *out.shape[2:]).transpose(0, 1)


def _linear(w: torch.Tensor, b: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """``x @ w.T + b`` per copy: ``w`` ``(G, out, in)``, ``x`` ``(G, n, ..., in)``."""
    g = x.shape[0]
    flat = x.reshape(g, -1, x.shape[-1])
    out = flat @ w.transpose(1, 2)
    if b is not None:
        out = out + b.unsqueeze(1)
    return out.reshape(*x.shape[:-1], w.shape[1])
