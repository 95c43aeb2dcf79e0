"""A testbed turned into numbers: T1..T5, memory and the workload of every (client, helper) pair."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pslsched.core.codecs import Compression, codec_ms, compressed_bytes
from pslsched.core.instance import Instance
from pslsched.core.testbed.members import expand_clients, expand_helpers
from pslsched.core.testbed.schema import Testbed
from pslsched.core.testbed.topology import pair_links
from pslsched.core.workload import Workload, instance_times
from pslsched.profiles import ModelProfile


@dataclass(frozen=True)
class Built:
    """A testbed turned into numbers: the instance and the cost breakdown behind it."""

    testbed: Testbed
    instance: Instance
    workload: Workload


def build(testbed: Testbed, compression: Compression | None = None) -> Built:
    """Compute T1..T5, memory and the workload of every (client, helper) pair.

    ``compression`` (default: the testbed's ``compression:``) shrinks the transfers to the codec's exact payload
    sizes and charges its modelled encode/decode time to the devices that run them (docs/compression.md)."""
    profile = testbed.model.load()
    helpers = expand_helpers(testbed, profile)
    clients = expand_clients(testbed, profile, helpers.names)
    k, h = len(clients.names), len(helpers.names)
    head_f, head_b, tail_f, tail_b = (np.zeros(k) for _ in range(4))
    body_f, body_b = np.zeros((k, h)), np.zeros((k, h))
    act_a, act_b, weights, demand, local = (np.zeros(k) for _ in range(5))
    body_weights, body_acts = np.zeros(k), np.zeros(k)
    n_layers = profile.num_layers
    body_rows: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for j, (dev_name, (a, b)) in enumerate(zip(clients.devices, clients.cuts)):
        dev = profile.device(dev_name)
        head_f[j], head_b[j] = dev.forward(0, a), dev.backward(0, a)
        tail_f[j], tail_b[j] = dev.forward(b, n_layers), dev.backward(b, n_layers)
        act_a[j], act_b[j] = profile.segment_bytes(a - 1), profile.segment_bytes(b - 1)
        weights[j] = float(profile.weights_kb[:a].sum() + profile.weights_kb[b:].sum()) * 1024.0
        demand[j] = profile.body_memory_mb(a, b)
        body_weights[j] = float(profile.weights_kb[a:b].sum()) / 1024.0
        body_acts[j] = demand[j] - body_weights[j]
        local[j] = dev.forward(0, n_layers) + dev.backward(0, n_layers) if clients.can_local[j] else math.nan
        key = (a, b)
        if key not in body_rows:  # one row per distinct cut: a 10,000-client testbed has a handful
            body_rows[key] = (
                np.array([profile.devices[hdev].forward(a, b) for hdev in helpers.devices]),
                np.array([profile.devices[hdev].backward(a, b) for hdev in helpers.devices]),
            )
        body_f[j], body_b[j] = body_rows[key]
    links = pair_links(testbed, clients, helpers)
    rates_up, rates_down, latency = links.uplink_mbps, links.downlink_mbps, links.latency_ms
    unreachable = ~clients.allowed | np.isnan(rates_up)
    for arr in (rates_up, rates_down, latency, body_f, body_b):
        arr[unreachable] = np.nan
    grad_a = grad_b = None
    comp = compression or (testbed.compression.compression() if testbed.compression else None)
    if comp is not None and comp.active:
        codec, unit = comp.codec, testbed.model.batch
        speed = _relative_speed(profile, clients.devices, helpers.devices)
        c_speed, h_speed = speed[:k], speed[k:]

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
        client_devices=tuple(clients.devices),
        helper_devices=tuple(helpers.devices),
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
        up_routes=links.up_routes,
        down_routes=links.down_routes,
        resources=links.resources,
        body_weights_mb=body_weights,
        body_activations_mb=np.maximum(body_acts, 0.0),
    )
    instance = Instance(
        name=testbed.name,
        clients=tuple(clients.names),
        helpers=tuple(helpers.names),
        demand=demand,
        capacity=np.asarray(helpers.capacity, dtype=float),
        batches=testbed.batches,
        local=local if clients.can_local.any() else None,
        meta={"profile_batch": testbed.model.batch},
        **instance_times(workload),
    )
    return Built(testbed=testbed, instance=instance, workload=workload)


def build_instance(testbed: Testbed) -> Instance:
    """The scheduling instance of a testbed."""
    return build(testbed).instance


def _relative_speed(profile: ModelProfile, client_devices, helper_devices) -> np.ndarray:
    """Each client's then each helper's slowness: its whole-model forward time over the fastest such device's."""
    devices = list(client_devices) + list(helper_devices)
    total = {d: profile.device(d).forward(0, profile.num_layers) for d in set(devices)}
    fastest = min(t for t in total.values() if t > 0) if any(t > 0 for t in total.values()) else 1.0
    return np.array([total[d] / fastest if total[d] > 0 else 1.0 for d in devices])
