"""Routing (networkx): each (client, helper) pair's bottleneck rate, latency and the resources its transfers cross.

Without a ``topology:`` a pair's link is the client's access link (and the helper's ``nic_mbps``, if any). With
one, a client attaches to a node, a helper sits on a node, and a transfer takes the route with the smallest
transfer time of a reference size; the route's links are shared resources of the simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from pslsched.base.errors import InputError
from pslsched.core.testbed.members import Clients, Helpers
from pslsched.core.testbed.schema import Testbed, Topology
from pslsched.core.workload import transfer_ms

# Routes are chosen for a reference transfer of 1 MB: the best route trades bandwidth against latency.
ROUTE_REFERENCE_BYTES = 1_000_000.0

Routes = tuple[tuple[tuple[str, ...], ...], ...]  # [client][helper] -> resource names


@dataclass(frozen=True)
class PairLinks:
    """K x H rates (Mbit/s) and latencies (ms), NaN where no route exists; routes and resource capacities."""

    uplink_mbps: np.ndarray
    downlink_mbps: np.ndarray
    latency_ms: np.ndarray
    up_routes: Routes
    down_routes: Routes
    resources: dict[str, float]


def pair_links(testbed: Testbed, clients: Clients, helpers: Helpers) -> PairLinks:
    """Per-pair bottleneck rates, latencies and the resources each transfer crosses."""
    up, down, lat = clients.up, clients.down, clients.latency
    h = len(helpers.names)
    rates_up = np.repeat(up[:, None], h, axis=1).astype(float)
    rates_down = np.repeat(down[:, None], h, axis=1).astype(float)
    latency = np.repeat(lat[:, None], h, axis=1).astype(float)
    res: dict[str, float] = {}
    paths: dict[tuple[str, str], tuple[list[str], float, float] | None] = {}
    if testbed.topology is not None:
        graph = topology_graph(testbed.topology)
        _check_nodes(testbed, graph)
        for link in testbed.topology.links:
            res[link_id(link.a, link.b)] = link.mbps
    up_routes, down_routes = [], []
    for j, client in enumerate(clients.names):
        res[f"access-up:{client}"] = float(up[j])
        res[f"access-down:{client}"] = float(down[j])
        row_up, row_down = [], []
        for i, helper in enumerate(helpers.names):
            hops: list[str] = []
            if testbed.topology is not None:
                key = (clients.groups[j].attach, helpers.nodes[i])
                if key not in paths:
                    paths[key] = best_route(graph, *key)
                route = paths[key]
                if route is None:
                    rates_up[j, i] = rates_down[j, i] = latency[j, i] = np.nan
                    row_up.append(())
                    row_down.append(())
                    continue
                hops, bottleneck, path_latency = route
                rates_up[j, i] = min(rates_up[j, i], bottleneck)
                rates_down[j, i] = min(rates_down[j, i], bottleneck)
                latency[j, i] += path_latency
            nic = helpers.nic[i]
            if nic is not None:
                rates_up[j, i] = min(rates_up[j, i], nic)
                rates_down[j, i] = min(rates_down[j, i], nic)
                res[f"nic-in:{helper}"] = nic
                res[f"nic-out:{helper}"] = nic
                row_up.append((f"access-up:{client}", *hops, f"nic-in:{helper}"))
                row_down.append((f"nic-out:{helper}", *hops, f"access-down:{client}"))
            else:
                row_up.append((f"access-up:{client}", *hops))
                row_down.append((*hops, f"access-down:{client}"))
        up_routes.append(tuple(row_up))
        down_routes.append(tuple(row_down))
    return PairLinks(rates_up, rates_down, latency, tuple(up_routes), tuple(down_routes), res)


def _check_nodes(testbed: Testbed, graph: nx.Graph) -> None:
    """Every client group attaches to a node of the topology and every helper sits on one."""
    for g, group in enumerate(testbed.clients):
        if group.attach is None:
            raise InputError(
                f"clients[{g}].attach", "required with a topology (the node the client connects to)"
            )
        if group.attach not in graph:
            raise InputError(f"clients[{g}].attach", f"node {group.attach!r} is not in the topology")
    for g, hg in enumerate(testbed.helpers):
        node = hg.node or hg.name
        if hg.count > 1 and hg.node is None:
            raise InputError(f"helpers[{g}].node", "required with a topology for a group (count > 1)")
        if node not in graph:
            raise InputError(f"helpers[{g}].node", f"node {node!r} is not in the topology")


def link_id(a: str, b: str) -> str:
    """The resource name of the (undirected) topology link between nodes a and b."""
    return "link:" + "~".join(sorted((a, b)))


def topology_graph(topology: Topology) -> nx.Graph:
    """The topology as a graph with ``mbps`` and ``latency_ms`` on its edges; loops and repeated links are errors."""
    graph = nx.Graph()
    for n, link in enumerate(topology.links):
        if link.a == link.b:
            raise InputError(
                f"topology.links[{n}]", f"a link joins two different nodes, got {link.a!r} twice"
            )
        if graph.has_edge(link.a, link.b):
            raise InputError(f"topology.links[{n}]", f"duplicate link {link.a!r} - {link.b!r}")
        graph.add_edge(link.a, link.b, mbps=link.mbps, latency_ms=link.latency_ms)
    return graph


def best_route(graph: nx.Graph, src: str, dst: str) -> tuple[list[str], float, float] | None:
    """The route with the smallest transfer time for the reference size: (link ids, bottleneck Mbit/s, latency).

    For every candidate bottleneck rate c, the lowest-latency path using only links of rate >= c is optimal among
    paths with that bottleneck; the best over all c is the exact optimum of ``size/bottleneck + latency``.
    """
    if src == dst:
        return [], math.inf, 0.0
    best = None
    for cap in sorted({d["mbps"] for _, _, d in graph.edges(data=True)}):
        sub = nx.subgraph_view(graph, filter_edge=lambda u, v, c=cap: graph[u][v]["mbps"] >= c)
        try:
            length, path = nx.single_source_dijkstra(sub, src, dst, weight="latency_ms")
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            continue
        edges = list(zip(path, path[1:]))
        bottleneck = min(graph[u][v]["mbps"] for u, v in edges)
        t = float(transfer_ms(ROUTE_REFERENCE_BYTES, bottleneck, length))
        if best is None or t < best[0]:
            best = (t, [link_id(u, v) for u, v in edges], bottleneck, float(length))
    return None if best is None else (best[1], best[2], best[3])
