"""Partitions of a training set over clients: IID, label skew (Dirichlet, C classes per client), quantity skew.

``make_partition(spec, labels, num_clients, rng)`` returns client ``k``'s sample indices (sorted int64 arrays into
the training set); no sample is given to two clients. Specs read ``name``, ``name:VALUE`` or
``name:key=value`` (``PARTITIONS.names()``):

* ``iid``: a seeded permutation cut into near-equal parts;
* ``dirichlet:ALPHA``: label skew as in NIID-Bench (Li et al., 2022): per class, the shares of the clients are
  drawn from Dirichlet(ALPHA), clients already above the mean size get no more; small ALPHA = strong skew;
* ``classes:C[,beta=B]``: every client holds C distinct classes drawn at random (seeded; every class is used when
  ``num_clients * C >= classes``); each class is spread over its holders by Dirichlet(B), B = 3;
* ``quantity:ALPHA``: quantity skew, IID labels: client sizes are 1 + Dirichlet(ALPHA) shares of the rest.

The random schemes redraw (from the same ``rng``, at most ``MAX_DRAWS`` times, as NIID-Bench does) until every
client has a sample and raise ``InputError("--partition", ...)`` if none of the draws manages it. Register your
own scheme ``fn(labels, num_clients, rng, *values)`` returning one index array per client with
``@PARTITIONS.register("name", "spec: one-line summary")``; values arrive as strings from the command line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from pslsched.base.errors import InputError
from pslsched.base.registry import Registry, as_number, parse_spec

Scheme = Callable[..., list[np.ndarray]]

PARTITIONS: Registry[Scheme] = Registry("partition")

MAX_DRAWS = 100
_FIELD = "--partition"


def make_partition(
    spec: str, labels: np.ndarray, num_clients: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Client k's sample indices (sorted int64 arrays into the training set), every sample used at most once.

    ``spec`` is ``name[:VALUE][,key=value]`` (e.g. ``iid``, ``dirichlet:0.3``, ``classes:2,beta=3``); the result
    depends only on (spec, labels, num_clients, rng state). Raises ``InputError("--partition", ...)`` for a bad
    spec or when a client would get no samples (naming the client and suggesting fewer clients or a larger
    alpha), ``InputError("--clients", ...)`` unless ``1 <= num_clients <= len(labels)``.
    """
    name, args, kwargs = parse_spec(spec, _FIELD)
    scheme = PARTITIONS.get(name)
    labels = _check_labels(labels)
    if isinstance(num_clients, bool) or not isinstance(num_clients, int | np.integer) or num_clients < 1:
        raise InputError("--clients", f"must be a whole number >= 1, got {num_clients!r}")
    num_clients = int(num_clients)
    if num_clients > len(labels):
        raise InputError(
            "--clients",
            f"{num_clients} clients but only {len(labels)} training samples: every client needs at least one, "
            "use fewer clients",
        )
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    values = _bind(name, scheme, args, kwargs)
    parts = scheme(labels, num_clients, rng, **values)
    return _check_parts(spec, parts, labels, num_clients)


# ---------------------------------------------------------------------------------------------------- helpers


def _check_labels(labels: Any) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu":
        raise ValueError(f"labels must be a non-empty 1-D integer array, got {arr.dtype} {arr.shape}")
    return arr


def _bind(name: str, scheme: Scheme, args: list[str], kwargs: dict[str, str]) -> dict[str, Any]:
    """Map the spec's positional values and key=value pairs onto the scheme's parameters after (labels, n, rng)."""
    params = list(inspect.signature(scheme).parameters.values())[3:]
    names = [p.name for p in params]
    usage = f"{name}" + "".join(
        f"[,{p.name}=...]" if p.default is not p.empty else f":{p.name.upper()}" for p in params
    )
    if len(args) > len(params):
        raise InputError(_FIELD, f"{name} takes {len(params)} value(s) ({usage}), got {', '.join(args)}")
    values: dict[str, Any] = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names:
            known = ", ".join(names) if names else "none"
            raise InputError(
                _FIELD, f"unknown option {key!r} for partition {name!r} (known: {known}; {usage})"
            )
        if key in values:
            raise InputError(_FIELD, f"{name}: {key} given twice")
        values[key] = value
    missing = [p.name for p in params if p.default is p.empty and p.name not in values]
    if missing:
        raise InputError(_FIELD, f"{name} needs a value for {missing[0]}: {usage}")
    return values


def _number(name: str, key: str, value: Any, **limits: Any) -> float | int:
    """``as_number`` on a partition value, the error naming the scheme and the parameter."""
    try:
        return as_number(_FIELD, value, **limits)
    except InputError as exc:
        raise InputError(_FIELD, f"{name} {key}: {str(exc)[len(exc.field) + 2 :]}") from None


def _check_parts(
    spec: str, parts: list[np.ndarray], labels: np.ndarray, num_clients: int
) -> list[np.ndarray]:
    """Sorted int64 copies; checks count, range and disjointness; InputError naming the first empty client."""
    if len(parts) != num_clients:
        raise ValueError(f"partition {spec!r} returned {len(parts)} parts for {num_clients} clients")
    out = [np.sort(np.asarray(p, dtype=np.int64).ravel()) for p in parts]
    every = np.concatenate(out)
    if every.size and (every.min() < 0 or every.max() >= len(labels)):
        raise ValueError(f"partition {spec!r} returned indices outside 0..{len(labels) - 1}")
    if np.unique(every).size != every.size:
        raise ValueError(f"partition {spec!r} gave a sample to two clients")
    for k, part in enumerate(out):
        if part.size == 0:
            raise _empty(spec, k, len(labels), num_clients)
    return out


def _empty(spec: str, client: int, samples: int, num_clients: int) -> InputError:
    return InputError(
        _FIELD,
        f"{spec!r} leaves client {client} with no samples ({samples} samples over {num_clients} clients; "
        f"random schemes redraw up to {MAX_DRAWS} times): use fewer clients or a larger alpha/beta (weaker skew)",
    )


def _split_by_shares(idx: np.ndarray, shares: np.ndarray) -> list[np.ndarray]:
    """Cut ``idx`` into ``len(shares)`` consecutive pieces proportional to ``shares`` (floor of the cumsum)."""
    shares = np.nan_to_num(np.asarray(shares, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    total = shares.sum()
    shares = shares / total if total > 0 else np.full(len(shares), 1.0 / len(shares))
    cuts = (np.cumsum(shares) * len(idx)).astype(np.int64)[:-1]
    return np.split(idx, np.clip(cuts, 0, len(idx)))


def _redraw(draw: Callable[[], list[np.ndarray]]) -> list[np.ndarray]:
    """``draw()`` until no client is empty, at most ``MAX_DRAWS`` times (the last draw is checked by the caller)."""
    parts: list[np.ndarray] = []
    for _ in range(MAX_DRAWS):
        parts = draw()
        if all(len(p) for p in parts):
            break
    return parts


# ---------------------------------------------------------------------------------------------------- schemes


@PARTITIONS.register("iid", "iid: a seeded permutation cut into near-equal parts (sizes differ by at most 1)")
def iid(labels: np.ndarray, num_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A seeded permutation of all samples split into ``num_clients`` near-equal parts (``np.array_split``)."""
    return list(np.array_split(rng.permutation(len(labels)), num_clients))


@PARTITIONS.register(
    "dirichlet",
    "dirichlet:ALPHA: label skew, per-class client shares ~ Dirichlet(ALPHA) (NIID-Bench); small = skewed",
)
def dirichlet(labels: np.ndarray, num_clients: int, rng: np.random.Generator, alpha: Any) -> list[np.ndarray]:
    """NIID-Bench label skew: for each class, client shares ~ Dirichlet(alpha), zeroed for clients already holding
    more than ``len(labels) / num_clients`` samples; the class's shuffled samples are cut by those shares."""
    a = float(_number("dirichlet", "alpha", alpha, low=0, low_open=True))
    classes = np.unique(labels)
    mean_size = len(labels) / num_clients

    def draw() -> list[np.ndarray]:
        buckets: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        sizes = np.zeros(num_clients, dtype=np.int64)
        for cls in classes:
            idx = rng.permutation(np.flatnonzero(labels == cls))
            shares = rng.dirichlet(np.full(num_clients, a)) * (sizes < mean_size)
            for k, piece in enumerate(_split_by_shares(idx, shares)):
                buckets[k].append(piece)
                sizes[k] += len(piece)
        return [np.concatenate(b) for b in buckets]

    return _redraw(draw)


@PARTITIONS.register(
    "classes",
    "classes:C[,beta=3]: each client holds C distinct classes, each class spread by Dirichlet(beta)",
)
def classes(
    labels: np.ndarray, num_clients: int, rng: np.random.Generator, c: Any, beta: Any = 3.0
) -> list[np.ndarray]:
    """Each client holds ``c`` distinct classes drawn at random (seeded), every class used once
    ``num_clients * c >= classes``: the classes, in a random order, are dealt first to clients in a random order
    (one each while a client has room), then every client fills its other places with classes drawn at random
    among those it lacks. Each class's samples are spread over its holders by Dirichlet(beta) shares."""
    present = np.unique(labels)
    per_client = int(_number("classes", "C", c, integer=True, low=1, high=len(present)))
    b = float(_number("classes", "beta", beta, low=0, low_open=True))

    def draw() -> list[np.ndarray]:
        held = [[] for _ in range(num_clients)]
        dealt = rng.permutation(present)[: num_clients * per_client]
        takers = rng.permutation(num_clients)
        for n, cls in enumerate(dealt):  # coverage: class n goes to the (n mod K)-th taker
            held[int(takers[n % num_clients])].append(int(cls))
        for k in range(num_clients):
            missing = per_client - len(held[k])
            if missing > 0:
                others = np.setdiff1d(present, held[k])
                held[k] += [int(v) for v in rng.choice(others, size=missing, replace=False)]
        holders: dict[int, list[int]] = {int(cls): [] for cls in present}
        for k, own in enumerate(held):
            for cls in own:
                holders[cls].append(k)
        buckets: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for cls in present:
            owners = holders[int(cls)]
            if not owners:
                continue
            idx = rng.permutation(np.flatnonzero(labels == cls))
            for k, piece in zip(owners, _split_by_shares(idx, rng.dirichlet(np.full(len(owners), b)))):
                buckets[k].append(piece)
        return [np.concatenate(bk) if bk else np.zeros(0, dtype=np.int64) for bk in buckets]

    return _redraw(draw)


@PARTITIONS.register(
    "quantity",
    "quantity:ALPHA: quantity skew, IID labels, client sizes 1 + Dirichlet(ALPHA) shares of the rest",
)
def quantity(labels: np.ndarray, num_clients: int, rng: np.random.Generator, alpha: Any) -> list[np.ndarray]:
    """Quantity skew: a seeded permutation cut into pieces of 1 + Dirichlet(alpha) shares of the remaining
    ``len(labels) - num_clients`` samples, so every client has at least one sample and labels stay IID."""
    a = float(_number("quantity", "alpha", alpha, low=0, low_open=True))
    perm = rng.permutation(len(labels))
    rest = len(labels) - num_clients
    pieces = _split_by_shares(np.arange(rest), rng.dirichlet(np.full(num_clients, a)))
    sizes = 1 + np.array([len(p) for p in pieces], dtype=np.int64)
    return list(np.split(perm, np.cumsum(sizes)[:-1]))
