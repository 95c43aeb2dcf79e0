"""The cuts a planner may choose (``cuts: auto`` or ``{allowed: [...]}``) and a testbed at one chosen cut.

A candidate cut (a, b) must be meaningful for every client device it applies to (``ModelProfile.check_cut``),
and its head + tail (weights and the activations of one profile batch) must fit each such group's ``memory_mb``.
One cut is chosen for every client group whose cut is not fixed: a group with a fixed ``cut:`` keeps it.
"""

from __future__ import annotations

from pslsched.base.errors import InfeasibleInput, InputError
from pslsched.core.testbed.schema import Cut, CutSet, Testbed
from pslsched.profiles import ModelProfile, ProfileError


def client_memory_mb(profile: ModelProfile, a: int, b: int) -> float:
    """What a client holds at cuts (a, b): head and tail weights and activations, in MB."""
    kb = profile.activation_kb[:a].sum() + profile.weights_kb[:a].sum()
    kb += profile.activation_kb[b:].sum() + profile.weights_kb[b:].sum()
    return float(kb) / 1024.0


def _allowed(spec, profile: ModelProfile, field: str) -> list[tuple[int, int]]:
    n = profile.num_layers
    if spec == "auto":
        return [(a, b) for a in range(1, n - 1) for b in range(a + 1, n)]
    assert isinstance(spec, CutSet)
    out = []
    for k, cut in enumerate(spec.allowed):
        if not (0 < cut.a < cut.b < n):
            raise InputError(f"{field}.allowed[{k}]", f"(a={cut.a}, b={cut.b}) must satisfy 0 < a < b < {n}")
        out.append((cut.a, cut.b))
    return out


def candidate_cuts(testbed: Testbed, profile: ModelProfile | None = None) -> list[tuple[int, int]]:
    """The cuts allowed for every client group whose cut is chosen, meaningful for its device and within its
    memory; an ``InfeasibleInput`` (exit 3) naming the group and the reason when there is none."""
    profile = profile or testbed.model.load()
    common: set[tuple[int, int]] | None = None
    for g, group in enumerate(testbed.clients):
        spec = group.cut or testbed.cuts
        if isinstance(spec, Cut):
            continue
        field = f"clients[{g}].cut" if group.cut is not None else "cuts"
        mine = []
        for a, b in _allowed(spec, profile, field):
            try:
                profile.check_cut(group.device, a, b)
            except ProfileError:
                if spec != "auto":
                    raise InputError(
                        field, f"cut (a={a}, b={b}) is not meaningful for {group.device!r}"
                    ) from None
                continue
            mine.append((a, b))
        if group.memory_mb is not None:
            fits = [c for c in mine if client_memory_mb(profile, *c) <= group.memory_mb]
            if mine and not fits:
                least = min(client_memory_mb(profile, *c) for c in mine)
                raise InfeasibleInput(
                    f"clients[{g}].memory_mb",
                    f"client group {group.name!r} holds {group.memory_mb:g} MB, below every allowed head + tail "
                    f"(the smallest needs {least:.1f} MB)",
                )
            mine = fits
        if not mine:
            raise InfeasibleInput(
                field, f"no allowed cut is meaningful for client group {group.name!r} ({group.device})"
            )
        common = set(mine) if common is None else common & set(mine)
        if not common:
            raise InfeasibleInput(
                field, f"no cut is allowed for client group {group.name!r} and the groups before it together"
            )
    return sorted(common or [])


def with_cut(testbed: Testbed, cut: tuple[int, int]) -> Testbed:
    """The testbed with ``cut`` for every client group whose cut is chosen."""
    chosen = Cut(a=cut[0], b=cut[1])
    clients = [
        g
        if isinstance(g.cut, Cut) or (g.cut is None and isinstance(testbed.cuts, Cut))
        else g.model_copy(update={"cut": chosen})
        for g in testbed.clients
    ]
    cuts = testbed.cuts if isinstance(testbed.cuts, Cut) else chosen
    return testbed.model_copy(update={"cuts": cuts, "clients": clients})


def with_client_cuts(testbed: Testbed, cuts: dict[str, tuple[int, int]]) -> Testbed:
    """The testbed with each named client member at its own cut (the most common one as the groups' cut, the
    others in ``client_cuts``)."""
    values = list(cuts.values())
    common = max(set(values), key=lambda c: (values.count(c), c))
    fixed = with_cut(testbed, common)
    own = {m: Cut(a=c[0], b=c[1]) for m, c in cuts.items() if c != common}
    return fixed.model_copy(update={"client_cuts": {**(testbed.client_cuts or {}), **own} or None})
