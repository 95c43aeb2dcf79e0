"""A testbed's groups as members: names, devices, cuts and drawn link rates, checked against the profile.

Link rates are drawn with the testbed's ``seed``, one independent stream per client group, so editing one group
does not change the draws of another; ``scale_clients`` resizes the groups and keeps those streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pslsched.base.errors import InfeasibleInput, InputError
from pslsched.base.limits import MAX_GROUP, MAX_MBPS, MAX_MS, MIN_MBPS
from pslsched.core.instance import check_unique
from pslsched.core.testbed.cut_choice import client_memory_mb
from pslsched.core.testbed.schema import ClientGroup, Cut, Testbed
from pslsched.profiles import ModelProfile, ProfileError


@dataclass(frozen=True)
class Helpers:
    """The helper members, in testbed order."""

    names: list[str]
    devices: list[str]
    capacity: list[float]
    nodes: list[str]  # where each sits in the topology
    nic: list[float | None]  # its network interface capacity in Mbit/s (None: unlimited)


@dataclass(frozen=True)
class Clients:
    """The client members, in testbed order, with their drawn access-link rates and latencies."""

    names: list[str]
    devices: list[str]
    cuts: list[tuple[int, int]]
    groups: list[ClientGroup]  # the group each member comes from
    up: np.ndarray
    down: np.ndarray
    latency: np.ndarray
    can_local: np.ndarray  # K bool
    allowed: np.ndarray  # K x H bool: the helpers the member may use


def _check_client_memory(profile: ModelProfile, field: str, group: ClientGroup, cut: Cut) -> None:
    """A client group's ``memory_mb`` holds its head + tail at ``cut`` (InfeasibleInput, exit 3, otherwise)."""
    if group.memory_mb is None:
        return
    need = client_memory_mb(profile, cut.a, cut.b)
    if need > group.memory_mb:
        raise InfeasibleInput(
            f"{field}.memory_mb",
            f"client group {group.name!r} holds {group.memory_mb:g} MB, its head + tail at cuts "
            f"(a={cut.a}, b={cut.b}) need {need:.1f} MB",
        )


def members(name: str, count: int) -> list[str]:
    """The member names of a group: the group's name alone, or ``name-0 .. name-(count-1)``."""
    return [name] if count == 1 else [f"{name}-{k}" for k in range(count)]


def expand_helpers(testbed: Testbed, profile: ModelProfile) -> Helpers:
    """Every helper member; devices must be in the profile, names unique."""
    names, devices, capacity, nodes, nic = [], [], [], [], []
    for g, group in enumerate(testbed.helpers):
        _check_device(profile, f"helpers[{g}].device", group.device)
        for member in members(group.name, group.count):
            names.append(member)
            devices.append(group.device)
            capacity.append(group.memory_mb)
            nodes.append(group.node or member)
            nic.append(group.nic_mbps)
    check_unique("helpers", names)
    return Helpers(names, devices, capacity, nodes, nic)


def expand_clients(testbed: Testbed, profile: ModelProfile, helpers: list[str]) -> Clients:
    """Every client member with its cut and drawn rates; cuts, helper restrictions and draws are checked."""
    names, devices, cuts, groups, up, down, lat, can_local, allowed_rows = ([] for _ in range(9))
    seeds = np.random.SeedSequence(testbed.seed).spawn(len(testbed.clients))
    helper_groups = {g.name: members(g.name, g.count) for g in testbed.helpers}
    for g, (group, ss) in enumerate(zip(testbed.clients, seeds)):
        field = f"clients[{g}]"
        _check_device(profile, f"{field}.device", group.device)
        cut = group.cut or testbed.cuts
        if not isinstance(cut, Cut):
            raise InputError(
                f"{field}.cut" if group.cut else "cuts",
                "is chosen by the planner: run sched solve/simulate/train/compare on this testbed "
                "(or give --cuts A,B)",
            )
        try:
            profile.check_cut(group.device, cut.a, cut.b)
        except ProfileError as exc:
            raise InputError(f"{field}.cut" if group.cut else "cuts", str(exc)) from None
        for hname in group.helpers or []:
            if hname not in helper_groups and hname not in helpers:
                raise InputError(f"{field}.helpers", f"unknown helper {hname!r}")
        allowed = np.ones(len(helpers), dtype=bool)
        if group.helpers is not None:
            chosen = {m for hname in group.helpers for m in helper_groups.get(hname, [hname])}
            allowed = np.array([h in chosen for h in helpers])
        rng = np.random.default_rng(ss)
        n = group.count
        ups = group.uplink_mbps.draw(n, rng)
        downs = ups if group.downlink_mbps is None else group.downlink_mbps.draw(n, rng)
        lats = group.latency_ms.draw(n, rng)
        for name, what in (("uplink_mbps", ups), ("downlink_mbps", downs)):
            if (what < MIN_MBPS).any() or (what > MAX_MBPS).any():
                raise InputError(
                    f"{field}.{name}",
                    f"drawn rates must lie in [{MIN_MBPS:g}, {MAX_MBPS:g}] Mbit/s (check the distribution)",
                )
        if (lats > MAX_MS).any():
            raise InputError(f"{field}.latency_ms", f"drawn latencies must be at most {MAX_MS:g} ms")
        for k, member in enumerate(members(group.name, n)):
            own = (testbed.client_cuts or {}).get(member, cut)
            if own is not cut:
                try:
                    profile.check_cut(group.device, own.a, own.b)
                except ProfileError as exc:
                    raise InputError(f"client_cuts.{member}", str(exc)) from None
            _check_client_memory(profile, field, group, own)
            names.append(member)
            devices.append(group.device)
            cuts.append((own.a, own.b))
            groups.append(group)
            up.append(ups[k])
            down.append(downs[k])
            lat.append(lats[k])
            can_local.append(group.local)
            allowed_rows.append(allowed)
    check_unique("clients", names)
    unknown = sorted(set(testbed.client_cuts or {}) - set(names))
    if unknown:
        raise InputError(f"client_cuts.{unknown[0]}", "is not a client member of this testbed")
    overlap = set(names) & set(helpers)
    if overlap:
        raise InputError("clients", f"name {sorted(overlap)[0]!r} is used by a helper too")
    return Clients(
        names=names,
        devices=devices,
        cuts=cuts,
        groups=groups,
        up=np.array(up),
        down=np.array(down),
        latency=np.array(lat),
        can_local=np.array(can_local),
        allowed=np.array(allowed_rows).reshape(len(names), len(helpers)),
    )


def scale_clients(testbed: Testbed, total: int) -> Testbed:
    """The testbed with its client groups scaled to ``total`` clients in proportion (largest remainders; a group
    may drop to zero and is then left out). Link draws stay per group, so a group's members keep their streams."""
    if total < 1 or total > MAX_GROUP:
        raise InputError("--clients", f"must be in [1, {MAX_GROUP}], got {total}")
    counts = np.array([g.count for g in testbed.clients], dtype=float)
    exact = counts / counts.sum() * total
    new = np.floor(exact).astype(int)
    for g in np.argsort(-(exact - new), kind="stable")[: total - int(new.sum())]:
        new[g] += 1
    groups = [g.model_copy(update={"count": int(n)}) for g, n in zip(testbed.clients, new) if n > 0]
    return testbed.model_copy(update={"clients": groups})


def _check_device(profile: ModelProfile, field: str, name: str) -> None:
    try:
        profile.device(name)
    except ProfileError as exc:
        raise InputError(field, str(exc)) from None
