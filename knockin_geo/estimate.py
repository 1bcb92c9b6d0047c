"""The walk a turf's route adds to walking its street sides once: the cutter's deadhead estimate.

In minutes mode the cutter weighs a door by its time at the door, its share of walking its
street side once, and the walk to the door and back (:func:`knockin_geo.turfs.door_weights`).
A route walks some streets more than once, and this module counts the part that can be known
per street before turfs exist (``docs/turf-cutting.md``, *The estimate before routing*):

* **dead ends**: a street side on an edge with a dead-end node (degree 1) is walked in and back
  out: its length is walked twice;
* **busy streets with doors on both sides**: the route walks one side, crosses at a corner and
  walks the other (:data:`knockin_geo.routing.BUSY_HIGHWAYS`, as routing does), so the street
  is walked twice; on a barrier road the two sides are already two chains, counted apart.

and the walk that joins a street to the rest:

* **reach**: a street whose two end nodes touch no other street carrying the same area's doors
  (a lone lane, a hamlet, a house up a track) is reached along door-free streets: the shortest
  walk from its ends to the nearest node of another such street (capped at
  :data:`REACH_CAP_M`) is added once, shared by its doors. A turf's route has to walk at least
  that to join it to its other streets (the minimum spanning tree of its streets); streets that
  meet at a corner add nothing.

Each term is a walk the route cannot avoid, counted once with a factor of one: no constant is
fitted to a sample.
``benchmarks/bench_minutes.py`` shows the estimate against the routed minutes before and after.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import csgraph

from knockin_geo.routing import BUSY_HIGHWAYS
from knockin_geo.streets import StreetNetwork

__all__ = ["REACH_CAP_M", "reach_m", "second_walk_m"]

#: Longest walk counted to reach a street no other street of the area's doors touches, metres.
REACH_CAP_M = 5000.0


def second_walk_m(doors: pd.DataFrame, network: StreetNetwork) -> np.ndarray:
    """Return each door's share of the streets its route walks a second time, in metres.

    Parameters
    ----------
    doors
        Snapped doors with ``edge``, ``side`` and ``chain`` (the cutter's chains: one per edge
        segment, and per side on a barrier road).
    network
        The street network.

    Returns
    -------
    numpy.ndarray
        Metres per door: its chain's edge length over the chain's doors when the edge has a
        dead end, or is a busy street whose chain holds doors on both sides; else 0.
    """
    edges = network.edges
    node_pos = pd.Index(network.nodes.index)
    eu = node_pos.get_indexer(edges["u"].to_numpy())
    ev = node_pos.get_indexer(edges["v"].to_numpy())
    loops = eu == ev
    degree = np.bincount(np.concatenate([eu[~loops], ev[~loops]]), minlength=len(node_pos))
    dead_end = (degree[eu] == 1) | (degree[ev] == 1)
    busy = np.isin(edges["highway"].astype(str).to_numpy(dtype=object), list(BUSY_HIGHWAYS))
    e = doors["edge"].to_numpy(dtype=np.int64)
    chain = doors["chain"].to_numpy()
    frame = pd.DataFrame({"chain": chain, "side": doors["side"].astype(str).to_numpy()})
    both_sides = frame.groupby("chain")["side"].transform("nunique").to_numpy() > 1
    per_chain = frame.groupby("chain")["chain"].transform("size").to_numpy(dtype=float)
    twice = dead_end[e] | (busy[e] & both_sides)
    length = edges["length"].to_numpy(dtype=float)[e]
    return np.where(twice, length / per_chain, 0.0)


def reach_m(doors: pd.DataFrame, network: StreetNetwork, area: np.ndarray) -> np.ndarray:
    """Return each door's share of the walk that joins its street to the area's other streets.

    Parameters
    ----------
    doors
        Snapped doors with ``edge``.
    network
        The street network.
    area
        Area (precinct) of each door: streets join streets of their own area.

    Returns
    -------
    numpy.ndarray
        Metres per door: for a street whose end nodes touch no other street with doors of the
        area, the shortest walk from either end to a node of such a street (at most
        :data:`REACH_CAP_M`), over the doors of the area on that street; else 0.
    """
    mat, node_ids = network.csr()
    edges = network.edges
    eu = np.searchsorted(node_ids, edges["u"].to_numpy(dtype=np.int64))
    ev = np.searchsorted(node_ids, edges["v"].to_numpy(dtype=np.int64))
    e = doors["edge"].to_numpy(dtype=np.int64)
    out = np.zeros(len(e))
    for key in sorted(set(area.tolist())):
        rows = np.flatnonzero(area == key)
        used, per_edge = np.unique(e[rows], return_counts=True)
        ends = np.concatenate([eu[used], ev[used]])
        touching = np.bincount(ends, minlength=len(node_ids))
        alone = np.flatnonzero((touching[eu[used]] == 1) & (touching[ev[used]] == 1)
                               & (eu[used] != ev[used]))
        if len(alone) == 0 or len(used) < 2:
            continue
        gap = np.full(len(used), 0.0)
        for i in alone:
            x = used[i]
            dist = csgraph.dijkstra(mat, directed=False, indices=[eu[x], ev[x]],
                                    limit=REACH_CAP_M).min(axis=0)
            others = np.setdiff1d(ends, [eu[x], ev[x]])
            gap[i] = min(float(dist[others].min()), REACH_CAP_M)
        share = gap / per_edge
        out[rows] = share[np.searchsorted(used, e[rows])]
    return out
