"""The round-end exchange (problem.md §1, "The round"): what a round costs after its last task, and the round time.

A strategy that federates the clients' parts (SplitFed V1/V2, LocSplitFed, LocFedMix) ends its round with each
client uploading its head + tail weights to the aggregator as soon as its chain is done, the aggregator averaging
(``aggregate_ms``) once every upload is in, and every client downloading the average. The round time is therefore

    R = max_j (C_j + up[j, h(j)]) + aggregate_ms + max_j down[j, h(j)]

with C_j client j's completion and h(j) its helper (``local_up``/``local_down`` for a client that trains locally).
Without an exchange R is the makespan. With one batch per round the upload is a second tail after T5, so the
*folded* instance (tail + up, local + local_up) has makespan max_j (C_j + up_j) and every solver and bound of the
published model plans the round exactly; the download term is added after.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_MS


@dataclass(frozen=True, eq=False)
class Exchange:
    """The round-end exchange of an instance: K x H upload and download times in ms (NaN where unreachable), the
    same per client for local training (None: no exchange for local clients) and the aggregator's averaging time."""

    up: np.ndarray
    down: np.ndarray
    aggregate_ms: float = 0.0
    local_up: np.ndarray | None = None
    local_down: np.ndarray | None = None
    # each helper's body to the aggregator after its last task, and the average back (H; None: not charged),
    # where the round used two helpers or more (problem.md §1, "The round")
    helper_up: np.ndarray | None = None
    helper_down: np.ndarray | None = None

    def check(self, k: int, h: int, source: str = "exchange") -> Exchange:
        """The exchange with frozen float arrays, checked against K clients and H helpers."""
        out = {}
        shapes = {"up": (k, h), "down": (k, h), "local_up": (k,), "local_down": (k,)}
        shapes.update(helper_up=(h,), helper_down=(h,))
        for name, shape in shapes.items():
            value = getattr(self, name)
            if value is None:
                out[name] = None
                continue
            arr = np.array(value, dtype=float)
            if arr.shape != shape:
                raise InputError(f"{source}.{name}", f"must have shape {shape}, got {arr.shape}")
            bad = np.isinf(arr) | (arr < 0) | (arr > MAX_MS)
            if name.startswith("helper_"):
                bad |= np.isnan(arr)
            if bad.any():
                idx = "".join(f"[{int(i)}]" for i in np.argwhere(bad)[0])
                what = "" if name.startswith("helper_") else " or null"
                raise InputError(f"{source}.{name}{idx}", f"must be a number in [0, {MAX_MS:g}]{what}")
            arr.setflags(write=False)
            out[name] = arr
        if (out["helper_up"] is None) != (out["helper_down"] is None):
            raise InputError(f"{source}.helper_up", "helper_up and helper_down go together")
        a = self.aggregate_ms
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not (0 <= float(a) <= MAX_MS):
            raise InputError(f"{source}.aggregate_ms", f"must be a number in [0, {MAX_MS:g}], got {a!r}")
        return Exchange(aggregate_ms=float(a), **out)

    def to_dict(self) -> dict:
        out: dict = {"aggregate_ms": self.aggregate_ms}
        for name in ("up", "down", "local_up", "local_down", "helper_up", "helper_down"):
            value = getattr(self, name)
            if value is not None:
                out[name] = _nulls(value)
        return out

    @classmethod
    def from_dict(cls, data, source: str = "exchange") -> Exchange:
        """Parse the ``exchange`` object of an instance JSON (shapes are checked by ``check``)."""
        if not isinstance(data, dict):
            raise InputError(source, f"must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - {
            "up",
            "down",
            "aggregate_ms",
            "local_up",
            "local_down",
            "helper_up",
            "helper_down",
        }
        if unknown:
            raise InputError(f"{source}.{sorted(unknown)[0]}", "unknown key")
        for key in ("up", "down"):
            if key not in data:
                raise InputError(f"{source}.{key}", "missing")

        def arr(key):
            value = data.get(key)
            if value is None:
                return None
            try:
                return np.array(value, dtype=float)  # null -> NaN
            except (TypeError, ValueError):
                raise InputError(f"{source}.{key}", "must be a list (of lists) of numbers or null") from None

        return cls(
            up=arr("up"),
            down=arr("down"),
            aggregate_ms=data.get("aggregate_ms", 0.0),
            local_up=arr("local_up"),
            local_down=arr("local_down"),
            helper_up=arr("helper_up"),
            helper_down=arr("helper_down"),
        )


def _nulls(arr: np.ndarray) -> list:
    if arr.ndim == 1:
        return [None if math.isnan(v) else float(v) for v in arr]
    return [_nulls(row) for row in arr]


def client_transfers(exchange: Exchange, assign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each client's upload and download time given its helper index (-1 = local)."""
    k = len(assign)
    up, down = np.zeros(k), np.zeros(k)
    for j, i in enumerate(assign):
        if i >= 0:
            up[j], down[j] = exchange.up[j, i], exchange.down[j, i]
        else:
            up[j] = 0.0 if exchange.local_up is None else exchange.local_up[j]
            down[j] = 0.0 if exchange.local_down is None else exchange.local_down[j]
    return np.nan_to_num(up), np.nan_to_num(down)


def last_task_ends(instance, tasks) -> np.ndarray:
    """When each helper's last task ends (NaN: it ran none)."""
    ends = np.full(instance.num_helpers, np.nan)
    for t in tasks:
        i = instance.helper_index[t.helper]
        ends[i] = np.fmax(ends[i], t.end)
    return ends


def bodies_move(exchange: Exchange, assign: np.ndarray) -> np.ndarray:
    """The helpers whose bodies travel at the round's end: those used, where two or more are (else none)."""
    if exchange.helper_up is None:
        return np.zeros(0, dtype=int)
    used = np.unique(np.asarray(assign)[np.asarray(assign) >= 0])
    return used if len(used) >= 2 else np.zeros(0, dtype=int)


def round_time(instance, assign: np.ndarray, completion: np.ndarray, tasks=None) -> float:
    """The round time R of problem.md §1 for helper indices ``assign``, completions ``completion`` and (where
    bodies travel) the timed ``tasks``."""
    done = np.asarray(completion, dtype=float)
    ex = instance.exchange
    if ex is None:
        return float(np.nanmax(done))
    up, down = client_transfers(ex, np.asarray(assign))
    late, back = float(np.nanmax(done + up)), float(down.max())
    bodies = bodies_move(ex, assign)
    if len(bodies):
        if tasks is None:
            raise ValueError("round_time: the tasks are needed where bodies travel")
        ends = last_task_ends(instance, tasks)[bodies]
        late = max(late, float(np.nanmax(ends + ex.helper_up[bodies])))
        back = max(back, float(ex.helper_down[bodies].max()))
    return float(late + ex.aggregate_ms + back)


def folded(instance):
    """The instance whose makespan is the round's ``max_j (C_j + up_j)`` (one batch per round: the upload as a
    second tail), without an exchange; more batches per round: the instance without its exchange (the makespan
    is planned and the exchange added)."""
    ex = instance.exchange
    if ex is None:
        return instance
    if instance.batches != 1:
        return dataclasses.replace(instance, exchange=None)
    local = instance.local
    if local is not None and ex.local_up is not None:
        local = local + np.nan_to_num(ex.local_up)
    return dataclasses.replace(instance, tail=instance.tail + ex.up, local=local, exchange=None)


def folds_exactly(instance) -> bool:
    """Whether the folded instance's optimum is the round's: one batch per round and each client's download
    the same on every option it has (true when the aggregator reaches every client)."""
    ex = instance.exchange
    if ex is None:
        return True
    if instance.batches != 1 or (ex.helper_up is not None and (ex.helper_up.any() or ex.helper_down.any())):
        return False  # (the bodies' trip is not in the folded instance)
    down = np.where(instance.reachable, ex.down, np.nan)
    if instance.local is not None:
        loc = np.zeros(instance.num_clients) if ex.local_down is None else np.nan_to_num(ex.local_down)
        down = np.column_stack([down, np.where(instance.can_local, loc, np.nan)])
    spread = np.nanmax(down, axis=1) - np.nanmin(down, axis=1) if down.shape[1] else np.zeros(1)
    return bool(np.all(np.nan_to_num(spread) <= 1e-9 * np.nan_to_num(np.nanmax(down, axis=1)) + 1e-12))


def round_bound(instance, bound_of_solved: float) -> float:
    """A lower bound on the round time from a valid bound on the solved (folded) instance's makespan."""
    ex = instance.exchange
    if ex is None:
        return bound_of_solved
    down = np.where(instance.reachable, ex.down, np.inf)
    if instance.local is not None:
        loc = np.where(
            instance.can_local, 0.0 if ex.local_down is None else np.nan_to_num(ex.local_down), np.inf
        )
        down = np.column_stack([down, loc])
    least_down = np.min(down, axis=1) if down.shape[1] else np.zeros(instance.num_clients)
    least_down = np.where(np.isfinite(least_down), least_down, 0.0)
    return float(bound_of_solved + ex.aggregate_ms + np.nan_to_num(least_down).max())
