"""The cost breakdown behind T1..T5: compute per device and transfers per link, kept for the simulator.

``instance_times`` turns a Workload into the five K x H matrices of problem.md §1, so the instance and a simulator
that replays the components agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def transfer_ms(size_bytes, mbps, latency_ms):
    """problem.md §1: ``bytes * 8 / (mbps * 1e6) * 1e3 + latency_ms`` (works on arrays)."""
    return np.asarray(size_bytes) * 8.0 / (np.asarray(mbps) * 1e6) * 1e3 + np.asarray(latency_ms)


@dataclass(frozen=True, eq=False)
class Workload:
    """Per-client compute, per-pair body compute, transfer sizes and per-pair routes.

    Arrays of shape (K,) are per client, (K, H) per (client, helper) with NaN where unreachable. ``up_routes[j][i]``
    and ``down_routes[j][i]`` name the resources (links) a transfer between client j and helper i crosses;
    ``resources`` gives each one's capacity in Mbit/s (what a shared-link simulation divides among transfers).
    """

    client_devices: tuple[str, ...]
    helper_devices: tuple[str, ...]
    head_fwd_ms: np.ndarray
    head_bwd_ms: np.ndarray
    tail_fwd_ms: np.ndarray
    tail_bwd_ms: np.ndarray
    body_fwd_ms: np.ndarray
    body_bwd_ms: np.ndarray
    cut_a_bytes: np.ndarray
    cut_b_bytes: np.ndarray
    uplink_mbps: np.ndarray
    downlink_mbps: np.ndarray
    latency_ms: np.ndarray
    client_weights_bytes: np.ndarray
    # the gradients' sizes at the cuts (None: as the activations; a codec may compress one and not the other)
    grad_a_bytes: np.ndarray | None = None
    grad_b_bytes: np.ndarray | None = None
    up_routes: tuple[tuple[tuple[str, ...], ...], ...] = ()
    down_routes: tuple[tuple[tuple[str, ...], ...], ...] = ()
    resources: dict[str, float] = field(default_factory=dict)
    # what client j's body holds on a helper, in MB: its weights and its activations (None: not known)
    body_weights_mb: np.ndarray | None = None
    body_activations_mb: np.ndarray | None = None

    @property
    def grad_a(self) -> np.ndarray:
        """Bytes of the cut-a gradient (downloaded to the client)."""
        return self.cut_a_bytes if self.grad_a_bytes is None else self.grad_a_bytes

    @property
    def grad_b(self) -> np.ndarray:
        """Bytes of the cut-b gradient (uploaded to the helper)."""
        return self.cut_b_bytes if self.grad_b_bytes is None else self.grad_b_bytes

    def up_ms(self, j: int, i: int, size_bytes: float) -> float:
        """Dedicated-link time of an upload of ``size_bytes`` from client j to helper i."""
        return float(transfer_ms(size_bytes, self.uplink_mbps[j, i], self.latency_ms[j, i]))

    def exchange_hop(self, j: int, helper: int, aggregator: int) -> int | None:
        """The helper whose link client j's round-end weights cross (``helper`` = its own, -1 = local): the
        aggregator's, else its own helper's, else the first it reaches (None: a client with no link at all)."""
        if not np.isnan(self.uplink_mbps[j, aggregator]):
            return aggregator
        if helper >= 0:
            return helper
        reachable = np.flatnonzero(~np.isnan(self.uplink_mbps[j]))
        return int(reachable[0]) if len(reachable) else None

    def down_ms(self, j: int, i: int, size_bytes: float) -> float:
        """Dedicated-link time of a download of ``size_bytes`` from helper i to client j."""
        return float(transfer_ms(size_bytes, self.downlink_mbps[j, i], self.latency_ms[j, i]))


def instance_times(w: Workload) -> dict[str, np.ndarray]:
    """T1..T5 (release, fwd, delay, bwd, tail) as K x H arrays, exactly as problem.md §1 composes them."""
    up_a = transfer_ms(w.cut_a_bytes[:, None], w.uplink_mbps, w.latency_ms)
    down_a = transfer_ms(w.grad_a[:, None], w.downlink_mbps, w.latency_ms)
    up_b = transfer_ms(w.grad_b[:, None], w.uplink_mbps, w.latency_ms)
    down_b = transfer_ms(w.cut_b_bytes[:, None], w.downlink_mbps, w.latency_ms)
    return {
        "release": w.head_fwd_ms[:, None] + up_a,
        "fwd": np.array(w.body_fwd_ms, dtype=float),
        "delay": down_b + (w.tail_fwd_ms + w.tail_bwd_ms)[:, None] + up_b,
        "bwd": np.array(w.body_bwd_ms, dtype=float),
        "tail": down_a + w.head_bwd_ms[:, None],
    }
