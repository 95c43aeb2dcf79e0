"""The scheduling instance of problem.md §1-2: T1..T5 per (client, helper), memory, batches, local training."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_BATCHES, MAX_MB, MAX_MS
from pslsched.core.exchange import Exchange
from pslsched.core.json_io import check_keys, load_json, write_json

MATRICES = ("release", "fwd", "delay", "bwd", "tail")
_KEYS = {
    "name",
    "unit",
    "clients",
    "helpers",
    *MATRICES,
    "demand",
    "capacity",
    "batches",
    "local",
    "sequential",
    "local_head",
    "gated",
    "step_barrier",
    "exchange",
    "body_memory",
}


@dataclass(frozen=True, eq=False)
class Instance:
    """Immutable instance. Matrices are K x H float arrays in ms; NaN marks an unreachable pair.

    ``local[j]`` (NaN = no local option) is the time in ms for client j to train one batch on its own device.
    ``sequential`` (problem.md §1, SplitFed V2 as published): a helper serves one client step at a time, its
    forward and then its backward, before it starts another forward.
    ``local_head`` (problem.md §1, LocSplitFed): no cut-a gradient comes back; ``tail`` is the client's local head
    update, after which its next batch starts without waiting for the helper's backward.
    ``gated`` (SGLR): helper i's clients get a step's cut-a gradient once all of them are through its backward.
    ``step_barrier`` (synchronous PSL, SGLR, LocFedMix-SL): nobody starts step b + 1 before everyone is done with b.
    ``exchange`` (problem.md §1, "The round"): the round-end weight exchange; the planned quantity is then the
    round time (``pslsched.core.exchange.round_time``), not the makespan alone.
    ``body_memory[i]`` (problem.md §1, "Memory"; None = a body per client, SplitFed V1's model): helper i keeps one
    shared body of that many MB while it serves anyone, and ``demand[j]`` is then client j's activations only.
    """

    name: str
    clients: tuple[str, ...]
    helpers: tuple[str, ...]
    release: np.ndarray
    fwd: np.ndarray
    delay: np.ndarray
    bwd: np.ndarray
    tail: np.ndarray
    demand: np.ndarray
    capacity: np.ndarray
    batches: int = 1
    local: np.ndarray | None = None
    sequential: bool = False
    local_head: bool = False
    gated: bool = False
    step_barrier: bool = False
    exchange: Exchange | None = None
    body_memory: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        k, h = len(self.clients), len(self.helpers)
        if k == 0:
            raise InputError("clients", "at least one client is needed")
        if h == 0 and (self.local is None or np.isnan(np.asarray(self.local, dtype=float)).any()):
            raise InputError("helpers", "at least one helper is needed")
        check_unique("clients", self.clients)
        check_unique("helpers", self.helpers)
        for name in MATRICES:
            arr = np.array(getattr(self, name), dtype=float)
            if arr.shape != (k, h):
                raise InputError(name, f"must be {k} x {h} (clients x helpers), got shape {arr.shape}")
            _check_nonneg(name, arr, allow_nan=True)
            object.__setattr__(self, name, _frozen(arr))
        mask = np.zeros((k, h), dtype=bool)
        for name in MATRICES:
            mask |= np.isnan(getattr(self, name))
        if mask.any():  # a pair is reachable only where all five entries are numbers
            for name in MATRICES:
                arr = np.array(getattr(self, name))
                arr[mask] = np.nan
                object.__setattr__(self, name, _frozen(arr))
        for name, n in (("demand", k), ("capacity", h)):
            arr = np.array(getattr(self, name), dtype=float)
            if arr.shape != (n,):
                raise InputError(name, f"must be a list of {n} numbers, got shape {arr.shape}")
            _check_nonneg(name, arr, allow_nan=False, high=MAX_MB)
            object.__setattr__(self, name, _frozen(arr))
        if (
            isinstance(self.batches, bool)
            or not isinstance(self.batches, (int, np.integer))
            or self.batches < 1
        ):
            raise InputError("batches", f"must be an integer >= 1, got {self.batches!r}")
        object.__setattr__(self, "batches", int(self.batches))
        if not isinstance(self.sequential, (bool, np.bool_)):
            raise InputError("sequential", f"must be true or false, got {self.sequential!r}")
        object.__setattr__(self, "sequential", bool(self.sequential))
        for flag in ("local_head", "gated", "step_barrier"):
            value = getattr(self, flag)
            if not isinstance(value, (bool, np.bool_)):
                raise InputError(flag, f"must be true or false, got {value!r}")
            object.__setattr__(self, flag, bool(value))
        if self.local_head and (self.sequential or self.gated or self.step_barrier):
            raise InputError(
                "local_head", "no gradient comes back: not with sequential, gated or step_barrier"
            )
        if self.gated and not self.step_barrier and self.batches > 1:
            raise InputError("gated", "with more than one step a gated helper's clients need a step_barrier")
        if self.sequential and (self.gated or self.step_barrier):
            raise InputError("sequential", "a sequential helper is not planned with gated or step_barrier")
        if self.local is not None:
            arr = np.array(self.local, dtype=float)
            if arr.shape != (k,):
                raise InputError("local", f"must be a list of {k} numbers or null, got shape {arr.shape}")
            _check_nonneg("local", arr, allow_nan=True)
            object.__setattr__(self, "local", _frozen(arr) if not np.isnan(arr).all() else None)
        if self.exchange is not None:
            if not isinstance(self.exchange, Exchange):
                raise InputError("exchange", f"must be an Exchange, got {type(self.exchange).__name__}")
            object.__setattr__(self, "exchange", self.exchange.check(k, h))
        if self.body_memory is not None:
            arr = np.array(self.body_memory, dtype=float)
            if arr.shape != (h,):
                raise InputError("body_memory", f"must be a list of {h} numbers, got shape {arr.shape}")
            _check_nonneg("body_memory", arr, allow_nan=False, high=MAX_MB)
            object.__setattr__(self, "body_memory", _frozen(arr))

    @property
    def num_clients(self) -> int:
        return len(self.clients)

    @property
    def num_helpers(self) -> int:
        return len(self.helpers)

    @cached_property
    def reachable(self) -> np.ndarray:
        """K x H bool: helper i may serve client j."""
        return _frozen(~np.isnan(self.fwd))

    @cached_property
    def free_capacity(self) -> np.ndarray:
        """H: the memory left for the clients' demands (the capacity less a shared body, if any)."""
        if self.body_memory is None:
            return self.capacity
        return _frozen(self.capacity - self.body_memory)

    @cached_property
    def fits(self) -> np.ndarray:
        """K x H bool: reachable and client j alone fits in helper i's memory."""
        return _frozen(self.reachable & (self.demand[:, None] <= self.free_capacity[None, :]))

    @cached_property
    def can_local(self) -> np.ndarray:
        """K bool: client j may train locally."""
        if self.local is None:
            return _frozen(np.zeros(self.num_clients, dtype=bool))
        return _frozen(~np.isnan(self.local))

    @cached_property
    def load(self) -> np.ndarray:
        """K x H: helper work of one batch, fwd + bwd (NaN where unreachable)."""
        return _frozen(self.fwd + self.bwd)

    @cached_property
    def instant_backward(self) -> bool:
        """Some reachable pair's backward has length 0 and follows its forward without delay."""
        return bool(np.any((self.bwd == 0) & (self.delay == 0)))

    @cached_property
    def chain(self) -> np.ndarray:
        """K x H: length of one batch's chain T1+...+T5 (NaN where unreachable)."""
        return _frozen(self.release + self.fwd + self.delay + self.bwd + self.tail)

    @cached_property
    def client_index(self) -> dict[str, int]:
        return {c: j for j, c in enumerate(self.clients)}

    @cached_property
    def helper_index(self) -> dict[str, int]:
        return {h: i for i, h in enumerate(self.helpers)}

    def to_dict(self) -> dict[str, Any]:
        """The problem.md §2 JSON object (NaN written as null)."""
        out: dict[str, Any] = {
            "name": self.name,
            "unit": "ms",
            "clients": list(self.clients),
            "helpers": list(self.helpers),
        }
        for name in MATRICES:
            out[name] = _json_rows(getattr(self, name))
        out["demand"] = self.demand.tolist()
        out["capacity"] = self.capacity.tolist()
        if self.batches != 1:
            out["batches"] = self.batches
        if self.local is not None:
            out["local"] = _json_rows(self.local[None, :])[0]
        if self.sequential:
            out["sequential"] = True
        for flag in ("local_head", "gated", "step_barrier"):
            if getattr(self, flag):
                out[flag] = True
        if self.exchange is not None:
            out["exchange"] = self.exchange.to_dict()
        if self.body_memory is not None:
            out["body_memory"] = self.body_memory.tolist()
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str = "instance") -> Instance:
        """Parse and check a problem.md §2 object; errors name the field and the value."""
        if not isinstance(data, dict):
            raise InputError(source, f"must be a JSON object, got {type(data).__name__}")
        check_keys(
            data, source, _KEYS, ("clients", "helpers", *MATRICES, "demand", "capacity"), list_allowed=True
        )
        if data.get("unit", "ms") != "ms":
            raise InputError(f"{source}.unit", f"must be 'ms', got {data['unit']!r}")
        clients = _names(f"{source}.clients", data["clients"])
        helpers = _names(f"{source}.helpers", data["helpers"])
        k, h = len(clients), len(helpers)
        mats = {m: _matrix(f"{source}.{m}", data[m], k, h) for m in MATRICES}
        demand = _vector(f"{source}.demand", data["demand"], k, allow_null=False)
        capacity = _vector(f"{source}.capacity", data["capacity"], h, allow_null=False)
        local = None
        if data.get("local") is not None:
            local = _vector(f"{source}.local", data["local"], k, allow_null=True)
        batches = data.get("batches", 1)
        if isinstance(batches, bool) or not isinstance(batches, int) or not 1 <= batches <= MAX_BATCHES:
            raise InputError(
                f"{source}.batches", f"must be an integer in [1, {MAX_BATCHES}], got {batches!r}"
            )
        name = data.get("name", "instance")
        if not isinstance(name, str):
            raise InputError(f"{source}.name", f"must be a string, got {name!r}")
        sequential = data.get("sequential", False)
        if not isinstance(sequential, bool):
            raise InputError(f"{source}.sequential", f"must be true or false, got {sequential!r}")
        flags = {}
        for flag in ("local_head", "gated", "step_barrier"):
            flags[flag] = data.get(flag, False)
            if not isinstance(flags[flag], bool):
                raise InputError(f"{source}.{flag}", f"must be true or false, got {flags[flag]!r}")
        exchange = None
        if data.get("exchange") is not None:
            exchange = Exchange.from_dict(data["exchange"], f"{source}.exchange").check(
                k, h, f"{source}.exchange"
            )
        body = None
        if data.get("body_memory") is not None:
            body = _vector(f"{source}.body_memory", data["body_memory"], h, allow_null=False)
        return cls(
            name=name,
            clients=clients,
            helpers=helpers,
            demand=demand,
            capacity=capacity,
            batches=batches,
            local=local,
            sequential=sequential,
            **flags,
            exchange=exchange,
            body_memory=body,
            **mats,
        )


def read_instance(path: str | Path) -> Instance:
    """Read an instance JSON file (problem.md §2)."""
    path = Path(path)
    data = load_json(path)
    return Instance.from_dict(data, source=path.name)


def write_instance(instance: Instance, path: str | Path) -> None:
    """Write an instance JSON file atomically."""
    write_json(instance.to_dict(), path)


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr)
    arr.setflags(write=False)
    return arr


def _json_rows(arr: np.ndarray) -> list[list[float | None]]:
    """A float matrix as lists of Python floats, NaN as None (``tolist`` in C; only rows with a NaN revisited)."""
    rows = arr.tolist()
    for j in np.flatnonzero(np.isnan(arr).any(axis=1)).tolist():
        rows[j] = [None if math.isnan(v) else v for v in rows[j]]
    return rows


def check_unique(field_name: str, names: Sequence[str]) -> None:
    """An InputError on ``field_name`` naming the first repeated name."""
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise InputError(field_name, f"duplicate name {n!r}")
        seen.add(n)


def _check_nonneg(field_name: str, arr: np.ndarray, allow_nan: bool, high: float = MAX_MS) -> None:
    bad = np.isinf(arr) | (arr < 0) | (arr > high)
    if not allow_nan:
        bad |= np.isnan(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = "".join(f"[{i}]" for i in idx)
        raise InputError(f"{field_name}{where}", f"must be a number in [0, {high:g}], got {arr[idx]}")


def _names(field_name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InputError(field_name, "must be a list of non-empty strings")
    return tuple(value)


def _number(field_name: str, value: Any, allow_null: bool) -> float:
    if value is None and allow_null:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(field_name, f"must be a number{' or null' if allow_null else ''}, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise InputError(field_name, f"must be a finite number >= 0, got {value!r}")
    return v


def _vector(field_name: str, value: Any, n: int, allow_null: bool) -> np.ndarray:
    if not isinstance(value, list) or len(value) != n:
        got = len(value) if isinstance(value, list) else type(value).__name__
        raise InputError(field_name, f"must be a list of {n} numbers, got {got}")
    fast = _fast_numbers([value], allow_null)
    if fast is not None:
        return fast.reshape(n)
    return np.array([_number(f"{field_name}[{i}]", v, allow_null) for i, v in enumerate(value)], dtype=float)


def _matrix(field_name: str, value: Any, k: int, h: int) -> np.ndarray:
    if not isinstance(value, list) or len(value) != k:
        got = len(value) if isinstance(value, list) else type(value).__name__
        raise InputError(field_name, f"must have {k} rows (one per client), got {got}")
    if all(type(row) is list and len(row) == h for row in value):
        fast = _fast_numbers(value, allow_null=True)
        if fast is not None:
            return fast.reshape(k, h)
    rows = []
    for j, row in enumerate(value):
        if not isinstance(row, list) or len(row) != h:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise InputError(f"{field_name}[{j}]", f"must have {h} entries (one per helper), got {got}")
        rows.append([_number(f"{field_name}[{j}][{i}]", v, allow_null=True) for i, v in enumerate(row)])
    return np.array(rows, dtype=float).reshape(k, h)


_NUMBER_TYPES = {float, int}


def _fast_numbers(rows: list[list[Any]], allow_null: bool) -> np.ndarray | None:
    """Rows of JSON numbers (and nulls, if allowed) as one float array in a few numpy calls, or None where any
    entry is not a finite number >= 0 (or null) -- the entry-by-entry check then names it. The same floats as
    ``float(v)`` per entry: a large instance's matrices are read in a fraction of a second."""
    types: set[type] = set()
    for row in rows:
        types.update(map(type, row))
    allowed = _NUMBER_TYPES | ({type(None)} if allow_null else set())
    if not types <= allowed:
        return None
    try:
        arr = np.array(rows, dtype=float)
    except (OverflowError, ValueError, TypeError):
        return None
    nulls = sum(row.count(None) for row in rows) if type(None) in types else 0
    nan = np.isnan(arr)
    if int(nan.sum()) != nulls or np.isinf(arr).any() or (arr[~nan] < 0).any():
        return None  # a NaN or Infinity token, or a negative number: reported entry by entry
    return arr
