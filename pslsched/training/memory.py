"""What a training run's per-client model copies need at least, checked against the machine before they exist.

A strategy that gives each client its own copy of a model part (SplitFed V1's head, body and tail, LocFedMix's
head, tail and decoder) holds ``clients x parts`` copies, each with its optimizer state. At 10,000 clients and a
large model that is more memory than a machine has; the run must say so before allocating, not be killed by the
kernel minutes later. The estimate counts only what is certainly allocated (parameters, optimizer state, a
module's bookkeeping), so it never refuses a run that fits.
"""

from __future__ import annotations

import os
import resource

from torch import nn

from pslsched.base.errors import InputError
from pslsched.base.limits import human_bytes

# the parts each client holds its own copy of, per strategy; psl and sglr share one client model
CLIENT_PARTS = {
    "splitfed1": ("head", "body", "tail"),
    "locsplitfed": ("head", "body", "tail", "aux"),
    "splitfed2": ("head", "tail"),
    "locfedmix": ("head", "tail", "decoder"),
    "psl": (),
    "sglr": (),
}
MODULE_BYTES = 8_000  # a module copy's Python objects, at least (measured ~14.6 kB for a small conv head)
ROWS = {
    "locfedmix"
}  # clients' parts as stacked rows: no module per copy, gradients only for a step's participants
STATE_COPIES = {"sgd": 0, "sgd+momentum": 1, "adam": 2}  # optimizer state per parameter, in parameter sizes


def parameter_bytes(module: nn.Module) -> int:
    """The bytes of ``module``'s parameters and buffers."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def copies_need(
    strategy: str, parts: dict[str, nn.Module], clients: int, optimizer: str, momentum: float = 0.0
) -> tuple[int, str]:
    """The bytes ``clients`` clients' own copies of ``strategy``'s client parts need at least, and what they are
    (``"10,000 clients x head + body + tail"``); ``(0, "")`` for a strategy with no per-client copies. Parts not
    in ``parts`` (an auxiliary classifier made at set-up) are not counted."""
    held = [p for p in CLIENT_PARTS.get(strategy, ()) if p in parts]
    if not held or clients <= 0:
        return 0, ""
    key = "sgd+momentum" if optimizer == "sgd" and momentum > 0 else optimizer
    state = STATE_COPIES.get(key, 0)
    # a parameter, its gradient once stepped (a module copy's), the optimizer's state and a module's objects
    copy_bytes = (1 + state, 0) if strategy in ROWS else (2 + state, MODULE_BYTES)
    per_client = sum(parameter_bytes(parts[p]) * copy_bytes[0] + copy_bytes[1] for p in held)
    return clients * per_client, f"{clients:,} clients x {' + '.join(held)}"


def available_bytes() -> int | None:
    """Memory this process can still take: the kernel's ``MemAvailable`` and, if set, the address-space limit
    (None where neither is known)."""
    limits = []
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        try:
            with open(f"/proc/{os.getpid()}/statm", encoding="ascii") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            used = 0
        limits.append(max(0, soft - used))
    return min(limits) if limits else None


def check_copies_fit(
    strategy: str, parts: dict[str, nn.Module], clients: int, optimizer: str, momentum: float = 0.0
) -> None:
    """Refuse (exit 2, naming ``--clients``) a run whose per-client copies cannot fit in the memory available."""
    need, what = copies_need(strategy, parts, clients, optimizer, momentum)
    have = available_bytes()
    if need == 0 or have is None or need <= have:
        return
    hint = (
        "; psl and sglr share one client model"
        if strategy in ("splitfed1", "locsplitfed", "splitfed2")
        else ""
    )
    raise InputError(
        "--clients",
        f"{strategy} keeps {what} of the model ({optimizer}): that would need at least ~{human_bytes(need)}, "
        f"and this machine has ~{human_bytes(have)} available; use fewer clients, a smaller model or "
        f"other cuts{hint}",
    )
