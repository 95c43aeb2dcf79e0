"""Samplers: how many samples each client gives to each step's global batch (Kohankhaki et al., algorithms.md B4).

A sampler turns the clients' data sizes ``N_k`` and a global batch ``B`` into an **epoch**: a steps x clients matrix
of counts (0 = the client sits the step out: no tasks, its helper does not wait for it). Clients then draw that many
of their own samples without replacement (each client reads its data as a stream of seeded passes over it). Only
counts cross the network: the server learns ``N_k`` (all four samplers) and, for ``lds``, the clients' delays,
which it observes anyway; no sample or label leaves a client.

- ``fls``: fixed local batches ``b_k = max(1, round(B / K))``; a client that runs out of data sits out the rest of
  the epoch, which lasts until every client has run out.
- ``fpls``: fixed, proportional: ``b_k = max(1, round(B N_k / N))``; same epoch rule.
- ``ugs``: uniform global sampling: each epoch the list holding client id ``k`` ``N_k`` times is shuffled and cut
  into ``ceil(N / B)`` chunks of ``B`` (the last ``N mod B``); client k's count in step t is its count in chunk t.
  Every global batch is distributed like a centralised batch of size B whatever K; every sample is used once.
- ``lds``: Latent Dirichlet Sampling: ``ceil(N / B)`` steps of ``B`` samples; each step's shares are drawn from
  Dirichlet(``alpha``), ``alpha_k = c Z N_k / N exp(-tilt z_k)`` with ``Z = B (N - 1) / (N - B) - 1`` (so that with
  ``c = 1``, ``tilt = 0`` the shares have UGS's mean and variance) and ``z_k`` the z-score of client k's observed
  time per sample (its own compute and transfers, as the simulator has seen them so far; before any round, the
  profile's). Counts are ``B x shares`` rounded by largest remainders. A slow client (z > 0) is asked for fewer
  samples; what it is not asked for waits in its stream (it is not forced into the epoch's last steps).

The ``SamplingPlanner`` is the engine's plan function: round r is the next ``steps_per_round`` steps of the epochs
(default: one epoch per round), and epoch e is drawn from a stream seeded by (seed, e) with the delays observed
before the round it starts in, so any round can be re-planned from the earlier rounds' results (``--resume``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pslsched.base.errors import InputError
from pslsched.base.registry import Registry, as_number, parse_spec
from pslsched.simulator import RoundPlan

FIELD = "--sampler"

EpochFn = Callable[[np.ndarray, int, np.random.Generator, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Sampler:
    """A registered sampler with its options bound: ``epoch(sizes, B, rng, delays) -> steps x K counts``."""

    name: str
    options: dict
    epoch: EpochFn
    fixed_steps: bool  # the epoch length is ceil(N / B) whatever the draws (ugs, lds)

    def epoch_steps(self, sizes: np.ndarray, batch: int) -> int:
        """Steps of one epoch (the same for every epoch: it depends only on the sizes and B)."""
        if self.fixed_steps:
            return int(-(-int(sizes.sum()) // batch))
        b = self.options["local"](sizes, batch)
        return int(max(-(-sizes // b)))


SAMPLERS: Registry[Callable[..., Sampler]] = Registry("sampler", FIELD)


def make_sampler(spec: str) -> Sampler:
    """``name[:key=value,...]`` -> a Sampler (errors name the option)."""
    name, args, kwargs = parse_spec(spec, FIELD)
    factory = SAMPLERS.get(name)
    if args:
        raise InputError(FIELD, f"{name!r} takes key=value options, got {args[0]!r}")
    return factory(**kwargs)


def _no_options(name: str, kwargs: dict) -> None:
    if kwargs:
        raise InputError(f"{FIELD}.{next(iter(kwargs))}", f"unknown option of {name!r}")


def _fixed_epoch(local: Callable[[np.ndarray, int], np.ndarray]) -> EpochFn:
    def epoch(sizes, batch, rng, delays):
        b = local(sizes, batch)
        steps = int(max(-(-sizes // b)))
        t = np.arange(steps)[:, None]
        return np.clip(sizes[None, :] - t * b[None, :], 0, b[None, :]).astype(np.int64)

    return epoch


def _fls_local(sizes: np.ndarray, batch: int) -> np.ndarray:
    return np.full(len(sizes), max(1, int(round(batch / len(sizes)))), dtype=np.int64)


def _fpls_local(sizes: np.ndarray, batch: int) -> np.ndarray:
    return np.maximum(1, np.round(batch * sizes / sizes.sum())).astype(np.int64)


@SAMPLERS.register("fls", "fixed local batches round(B/K) (>= 1); exhausted clients sit out the epoch's rest")
def fls(**options: str) -> Sampler:
    _no_options("fls", options)
    return Sampler("fls", {"local": _fls_local}, _fixed_epoch(_fls_local), fixed_steps=False)


@SAMPLERS.register("fpls", "fixed local batches proportional to the client's data, round(B N_k / N) (>= 1)")
def fpls(**options: str) -> Sampler:
    _no_options("fpls", options)
    return Sampler("fpls", {"local": _fpls_local}, _fixed_epoch(_fpls_local), fixed_steps=False)


def _ugs_epoch(sizes, batch, rng, delays):
    pool = np.repeat(np.arange(len(sizes)), sizes)
    rng.shuffle(pool)
    steps = -(-len(pool) // batch)
    counts = np.zeros((steps, len(sizes)), dtype=np.int64)
    for t in range(steps):
        counts[t] = np.bincount(pool[t * batch : (t + 1) * batch], minlength=len(sizes))
    return counts


@SAMPLERS.register(
    "ugs", "uniform global sampling: each global batch distributed like a centralised batch of B"
)
def ugs(**options: str) -> Sampler:
    _no_options("ugs", options)
    return Sampler("ugs", {}, _ugs_epoch, fixed_steps=True)


def largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``total`` closest to ``total * shares`` (Hamilton's method, ties by index)."""
    exact = total * shares / shares.sum()
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


def lds_alpha(sizes: np.ndarray, batch: int, delays: np.ndarray, c: float, tilt: float) -> np.ndarray:
    """LDS's Dirichlet concentration: UGS's variance (``c = 1``) tilted away from slow clients."""
    n_total = float(sizes.sum())
    if batch >= n_total:
        z_conc = float(batch)  # one step holds everything: any large concentration (no sampling noise)
    else:
        z_conc = batch * (n_total - 1) / (n_total - batch) - 1
    alpha = c * max(z_conc, 1e-9) * sizes / n_total
    d = np.asarray(delays, dtype=float)
    spread = d.std()
    z = (d - d.mean()) / spread if spread > 0 else np.zeros_like(d)
    return alpha * np.exp(-tilt * z)


def _lds_epoch(c: float, tilt: float) -> EpochFn:
    def epoch(sizes, batch, rng, delays):
        n_total = int(sizes.sum())
        steps = -(-n_total // batch)
        alpha = lds_alpha(sizes, batch, delays, c, tilt)
        alpha = np.maximum(alpha, 1e-12)  # a client with no data has alpha 0: keep Dirichlet defined
        counts = np.zeros((steps, len(sizes)), dtype=np.int64)
        for t in range(steps):
            shares = rng.dirichlet(alpha)
            shares[sizes == 0] = 0.0
            counts[t] = largest_remainder(batch, shares if shares.sum() > 0 else sizes.astype(float))
        return counts

    return epoch


@SAMPLERS.register(
    "lds", "Latent Dirichlet Sampling: UGS-like Dirichlet shares tilted away from slow clients (tilt, c)"
)
def lds(tilt: str = "1.0", c: str = "1.0", **options: str) -> Sampler:
    _no_options("lds", options)
    t = float(as_number(f"{FIELD}.tilt", tilt, low=0.0))
    cc = float(as_number(f"{FIELD}.c", c, low=0.0, low_open=True))
    return Sampler("lds", {"tilt": t, "c": cc}, _lds_epoch(cc, t), fixed_steps=True)


class SamplingPlanner:
    """The engine's plan function for a sampler: rounds are runs of ``steps_per_round`` steps over the epochs.

    ``prior_delay[j]`` is client j's expected time per sample before anything is observed (from the profile).
    """

    def __init__(
        self,
        sampler: Sampler,
        sizes: np.ndarray,
        global_batch: int,
        unit: float,
        sync: bool,
        seed: int,
        prior_delay: np.ndarray,
        steps_per_round: int | None = None,
    ):
        self.sampler = sampler
        self.sizes = np.asarray(sizes, dtype=np.int64)
        n = int(self.sizes.sum())
        if global_batch > n:
            raise InputError(
                "--global-batch", f"must be at most the training samples ({n}), got {global_batch}"
            )
        self.batch = int(global_batch)
        self.unit, self.sync, self.seed = unit, sync, seed
        self.prior = np.asarray(prior_delay, dtype=float)
        self.epoch_len = sampler.epoch_steps(self.sizes, self.batch)
        self.per_round = steps_per_round or self.epoch_len
        self.epochs: dict[int, np.ndarray] = {}

    def delays(self, results: list) -> np.ndarray:
        """Observed time per sample of each client over ``results`` (the prior where nothing was observed)."""
        own = np.zeros(len(self.sizes))
        samples = np.zeros(len(self.sizes))
        for res in results:
            if res.client_ms is None or res.plan is None:
                continue
            done = ~np.isnan(res.completion)
            own[done] += res.client_ms[done]
            samples[done] += res.plan.samples[:, done].sum(axis=0)
        out = self.prior.copy()
        seen = samples > 0
        out[seen] = own[seen] / samples[seen]
        return out

    def _epoch(self, e: int, results: list) -> np.ndarray:
        if e not in self.epochs:
            first_round = (e * self.epoch_len) // self.per_round
            rng = np.random.default_rng([self.seed, e, 23])
            counts = self.sampler.epoch(self.sizes, self.batch, rng, self.delays(results[:first_round]))
            self.epochs[e] = counts
        return self.epochs[e]

    def __call__(self, r: int, results: list) -> RoundPlan:
        start, stop = r * self.per_round, (r + 1) * self.per_round
        rows = []
        for e in range(start // self.epoch_len, -(-stop // self.epoch_len)):
            epoch = self._epoch(e, results)
            lo = max(start - e * self.epoch_len, 0)
            hi = min(stop - e * self.epoch_len, self.epoch_len)
            rows.append(epoch[lo:hi])
        return RoundPlan(samples=np.vstack(rows), unit=self.unit, sync=self.sync)
