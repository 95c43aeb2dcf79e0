"""Link models: dedicated (each transfer at its own rate) and shared (processor sharing of capacities).

In the shared model every transfer crosses a set of resources (a client's access link, topology links, a helper's
network interface); a resource's capacity is divided equally among the transfers crossing it, and a transfer moves
at the smallest share along its route, never faster than its dedicated rate. Rates are recomputed whenever a
transfer starts or ends. Latency is a fixed delay before the data moves.
"""

from __future__ import annotations

import itertools

import simpy

_EPS_BITS = 1e-6


class DedicatedLinks:
    """Every transfer takes ``size * 8 / rate + latency`` as if it had the link to itself."""

    def __init__(self, env: simpy.Environment):
        self.env = env

    def transfer(self, size_bytes: float, mbps: float, latency_ms: float, resources: tuple[str, ...]):
        return self.env.timeout(size_bytes * 8.0 / (mbps * 1e6) * 1e3 + latency_ms)


class SharedLinks:
    """Processor sharing over named resources with capacities in Mbit/s."""

    def __init__(self, env: simpy.Environment, capacity_mbps: dict[str, float]):
        self.env = env
        self.capacity = {k: v * 1e3 for k, v in capacity_mbps.items()}  # bits per ms
        self.active: dict[int, list] = {}  # id -> [remaining bits, resources, max rate, event, rate]
        self.last = 0.0
        self.version = 0
        self.ids = itertools.count()

    def transfer(self, size_bytes: float, mbps: float, latency_ms: float, resources: tuple[str, ...]):
        """An event that fires when the transfer is done; one crossing no shared resource runs as dedicated."""
        shared = tuple(r for r in resources if r in self.capacity)
        if not shared:
            return self.env.timeout(size_bytes * 8.0 / (mbps * 1e6) * 1e3 + latency_ms)
        return self.env.process(self._run(size_bytes * 8.0, mbps * 1e3, latency_ms, shared))

    def _run(self, bits: float, max_rate: float, latency_ms: float, resources: tuple[str, ...]):
        if latency_ms > 0:
            yield self.env.timeout(latency_ms)
        if bits <= 0:
            return
        done = self.env.event()
        self._advance()
        self.active[next(self.ids)] = [bits, resources, max_rate, done, 0.0]
        self._reschedule()
        yield done

    def _advance(self) -> None:
        dt = self.env.now - self.last
        if dt > 0:
            for entry in self.active.values():
                entry[0] -= entry[4] * dt
        self.last = self.env.now

    def _reschedule(self) -> None:
        users: dict[str, int] = {}
        for entry in self.active.values():
            for r in entry[1]:
                users[r] = users.get(r, 0) + 1
        soonest = None
        for entry in self.active.values():
            rate = entry[2]
            for r in entry[1]:
                rate = min(rate, self.capacity[r] / users[r])
            entry[4] = rate
            t = max(entry[0], 0.0) / rate
            soonest = t if soonest is None else min(soonest, t)
        self.version += 1
        if soonest is not None:
            self.env.process(self._wake(self.version, soonest))

    def _wake(self, version: int, delay: float):
        yield self.env.timeout(delay)
        if version != self.version:
            return
        self._advance()
        finished = [k for k, e in self.active.items() if e[0] <= _EPS_BITS * max(1.0, e[4])]
        if not finished:  # rounding left a sliver: finish the closest one
            finished = [min(self.active, key=lambda k: self.active[k][0] / self.active[k][4])]
        for k in finished:
            self.active.pop(k)[3].succeed()
        self._reschedule()
