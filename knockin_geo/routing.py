"""Walking routes through each turf: an order of its doors and the path along the streets.

The cost model (what makes a route one a volunteer can follow)
--------------------------------------------------------------
Every door sits on a street edge at an offset from the edge's ``u`` end, on the ``left`` or
``right`` side. The cost of walking from door *a* to door *b* is:

* same edge, and the street is quiet (or both doors are on the same side): the distance along the
  street, ``|offset_a - offset_b|``. Quiet streets are swept in one pass, zig-zagging between sides,
  so house numbers come in order along the street;
* same edge, a busy street (``busy_highways``: trunk, primary, secondary by default), opposite
  sides: walk to the nearer end of the block, cross there (``crossing_m`` is added), come back on
  the other side. This is what makes a route sweep one side of a busy street (odd numbers) and then
  the other (even numbers);
* different edges: the shortest walk along the network between the two doors' positions
  (Dijkstra in :mod:`scipy.sparse.csgraph`, on the turf's neighbourhood only).

An open route (default) or a loop (``loop=True``) through all doors minimising that cost is found
with LKH (through ``elkai``), which measured best on these matrices
(``benchmarks/bench_routes.py``).
The route line runs along the streets through every door's snapped point. ``length_m`` is the
street length of the route; ``walk_m`` adds the walk from the street to each door and back;
``est_minutes = walk_m / speed + households * minutes_per_door``.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import math
import multiprocessing as mp
import os
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from elkai import _elkai  # the solver behind elkai.DistanceMatrix (any LKH parameter)
from scipy import sparse
from scipy.sparse import csgraph
from shapely.ops import substring

from knockin_geo import schema
from knockin_geo._errors import InputError
from knockin_geo.streets import StreetNetwork

logger = logging.getLogger(__name__)

#: Road classes walked one side at a time by default.
BUSY_HIGHWAYS: tuple[str, ...] = (
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
)


#: Largest cost handed to LKH, in metres (LKH works in 32-bit integers).
_MAX_COST_M = 2.0e5
#: Fixed extra cost of a jump between pieces no street links, in metres.
_GAP_M = 2000.0
#: LKH trials per run (tuned with benchmarks/bench_routes.py: the smallest budget whose mean gap
#: to the best tour stays <= 1 % on every set, 0.24-0.63 %; 15 trials gave 0.45 % overall).
LKH_TRIALS = 8
#: LKH's candidate edges come from the plain minimum 1-tree (``SUBGRADIENT = NO``), not from its
#: subgradient ascent, which took about half of an 80-door turf's solve. The open path's dummy
#: stop is put at the largest cost from every door (see ``_Context._solve``), not at 0: a dummy
#: at 0 sits next to every stop in the 1-tree and leaves its alpha-values meaningless, which is
#: why the ascent was needed. POPMUSIC candidates were tried too and left out: their tours
#: depended on what the same process had solved before (1 and 2 routing processes differed).
#: LKH's move on a turf whose doors streets link: sequential 3-opt (LKH's default is 5-opt). On
#: the 210 turfs of Nantes and Liechtenstein (benchmarks/README.md, routes) it took a third off
#: the solve time (with the ascent then used), the mean gap to the best known tour near 0.2 %.
LKH_MOVE_TYPE = 3
#: LKH's move on a turf with pieces no street links: the jumps between them cost thousands of
#: metres (``_GAP_M``), and 3-opt then leaves tours that jump back to a piece already walked.
LKH_GAP_MOVE_TYPE = 5
#: LKH's random seed: fixed, so the same turf always gets the same route.
_LKH_SEED = 1
#: Extra cost, in metres, of walking an edge the director excluded (``route_turfs(avoid=...)``):
#: the route takes another way when one exists that is less than this much longer.
AVOID_PENALTY_M = 1000.0


@dataclass(frozen=True)
class RouteParams:
    """Parameters of the walking routes.

    Parameters
    ----------
    busy_highways
        Road classes whose two sides are walked separately, crossing only at intersections.
    crossing_m
        Extra cost, in metres of walking, of crossing a busy street at an intersection (waiting
        for the lights). Default 30 m (about 30 s).
    loop
        Return to the start at the end.
    start
        ``(x, y)`` of a fixed start (campaign office, transit stop) in the plan's CRS; by default
        the route starts at the end nearest to ``start_hint``.
    start_hint
        ``(x, y)`` used to orient open routes when there is no ``start`` (the plan uses the centre
        of all its doors, where volunteers usually gather).
    walk_speed_kmh
        Walking speed (default 4 km/h).
    minutes_per_door
        Minutes per household (default 1.5).
    margin_m
        Streets farther than this from a turf's doors are not used by its route.
    runs
        LKH runs per turf (more: rarely better, slower).
    trials
        LKH trials per run (its ``MAX_TRIALS``; LKH's own default is one per stop). The default
        is the budget tuned on ``benchmarks/bench_routes.py``: the mean gap to the best tour
        found stays under 1 % (``benchmarks/README.md``). LKH always starts from the same seed,
        so a turf gets the same route every time.
    """

    busy_highways: tuple[str, ...] = BUSY_HIGHWAYS
    crossing_m: float = 30.0
    loop: bool = False
    start: tuple[float, float] | None = None
    start_hint: tuple[float, float] | None = None
    walk_speed_kmh: float = schema.WALK_SPEED_KMH
    minutes_per_door: float = schema.MINUTES_PER_DOOR
    margin_m: float = 300.0
    runs: int = 1
    trials: int = LKH_TRIALS

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.crossing_m) and self.crossing_m >= 0):
            problems.append(f"crossing_m must be >= 0, got {self.crossing_m!r}")
        if not self.walk_speed_kmh > 0:
            problems.append(f"walk_speed_kmh must be positive, got {self.walk_speed_kmh!r}")
        if not self.minutes_per_door >= 0:
            problems.append(f"minutes_per_door must be >= 0, got {self.minutes_per_door!r}")
        if self.runs < 1:
            problems.append(f"runs must be >= 1, got {self.runs!r}")
        if self.trials < 1:
            problems.append(f"trials must be >= 1, got {self.trials!r}")
        if problems:
            msg = "invalid route parameters"
            raise InputError(msg, problems)

    @property
    def metres_per_minute(self) -> float:
        """Walking speed in metres per minute."""
        return self.walk_speed_kmh * 1000.0 / 60.0


@dataclass(frozen=True)
class _Paths:
    """Shortest paths from the end nodes of a turf's edges (``ends``, global positions).

    ``nodes``: global positions of the local window's nodes; ``src``: column of each end node in
    it; ``dist`` / ``pred``: Dijkstra results, one row per end node, one column per local node.
    """

    nodes: np.ndarray
    ends: np.ndarray
    src: np.ndarray
    dist: np.ndarray
    pred: np.ndarray

    def row(self, node: np.ndarray) -> np.ndarray:
        """Rows of ``dist`` for global end nodes."""
        return np.searchsorted(self.ends, node)


@dataclass(frozen=True)
class _Stops:
    """Positions of the stops of one turf on the network (doors, then an optional start)."""

    edge: np.ndarray
    offset: np.ndarray
    side: np.ndarray
    busy: np.ndarray
    xy: np.ndarray
    name: np.ndarray | None = None
    direction: np.ndarray | None = None


def route_turfs(
    doors: gpd.GeoDataFrame,
    network: StreetNetwork,
    params: RouteParams | None = None,
    *,
    workers: int | None = None,
    avoid: np.ndarray | None = None,
) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """Route every turf, on several processes when there are enough turfs.

    Parameters
    ----------
    doors
        Cut doors (``turf_id``, ``edge``, ``offset_m``, ``side``, ``snap_x``, ``snap_y``,
        ``snap_dist_m``, ``households``), metric CRS, index ``address_id``.
    network
        The street network the doors were snapped to.
    params
        Route parameters.
    workers
        Processes that route turfs (one turf never waits for another): None for one per core,
        1 to stay in this process. The result is the same whatever the number: every turf is
        solved on its own with LKH's fixed seed and the results are put back in turf order.
    avoid
        Positions of edges (in ``network.edges``) no one should walk (a street the director
        excluded, :func:`street_edges`): each costs :data:`AVOID_PENALTY_M` more, so routes
        take another way where one exists. None or empty: the routes are unchanged.

    Returns
    -------
    routes : geopandas.GeoDataFrame
        Index ``turf_id``: ``length_m``, ``walk_m``, ``est_minutes``, ``doors``, ``crossings``
        (busy-street crossings), ``start_address_id`` and the route LineString.
    seq : pandas.Series
        Walk order (1..n within each turf) per ``address_id``; missing for unassigned doors.
    """
    params = params or RouteParams()
    assigned = doors[doors[schema.TURF_ID].notna() & (doors["edge"].to_numpy() >= 0)]
    seq = pd.Series(pd.array([pd.NA] * len(doors), dtype="Int64"), index=doors.index, name="seq")
    if len(assigned) == 0:
        return empty_routes(doors.crs), seq
    ctx = _Context(network, params, avoid)
    # only the columns read below, so that each group is a small plain frame
    keep = [*_ROUTE_COLUMNS, "snap_dist_m",
            *([schema.HOUSEHOLDS] if schema.HOUSEHOLDS in assigned else []), schema.TURF_ID]
    groups = list(pd.DataFrame(assigned[keep]).groupby(schema.TURF_ID, sort=True))
    solved = _route_all(ctx, [turf[list(_ROUTE_COLUMNS)] for _, turf in groups], workers)
    rows: list[dict[str, Any]] = []
    geoms = []
    order_all: dict[str, int] = {}
    for (tid, turf), (order, line, info) in zip(groups, solved, strict=True):
        for pos, aid in enumerate(turf.index.to_numpy()[order]):
            order_all[aid] = pos + 1
        hh = turf[schema.HOUSEHOLDS].to_numpy(dtype=float) if schema.HOUSEHOLDS in turf else None
        households = float(hh.sum()) if hh is not None else float(len(turf))
        access = 2.0 * float(np.nansum(turf["snap_dist_m"].to_numpy(dtype=float)))
        walk = info["length_m"] + access
        rows.append(
            {
                schema.TURF_ID: str(tid),
                "doors": len(turf),
                "length_m": round(info["length_m"], 1),
                "walk_m": round(walk, 1),
                "est_minutes": round(
                    walk / params.metres_per_minute + households * params.minutes_per_door, 1
                ),
                "crossings": int(info["crossings"]),
                "start_address_id": str(turf.index[order[0]]),
            }
        )
        geoms.append(line)
    routes = gpd.GeoDataFrame(rows, geometry=geoms, crs=doors.crs).set_index(schema.TURF_ID)
    routes.index = routes.index.astype("string")
    ids = pd.Index(list(order_all))
    seq.loc[ids] = np.array(list(order_all.values()), dtype=np.int64)
    return routes, seq


#: Door columns a turf's route needs (what the routing processes receive).
_ROUTE_COLUMNS = ("edge", "offset_m", "side", "snap_x", "snap_y")
#: Fewest turfs per routing process: below that, starting the processes costs more than it saves.
_MIN_TURFS_PER_WORKER = 4

_Solved = tuple[np.ndarray, shapely.LineString, dict]
#: The routing context of a worker process (set by ``_init_worker``).
_WORKER_CTX: _Context | None = None


def street_key(name: object) -> str:
    """Return a street name as compared: Unicode NFC, whitespace collapsed, casefolded."""
    text = unicodedata.normalize("NFC", "" if name is None else str(name))
    return " ".join(text.split()).casefold()


def street_edges(network: StreetNetwork, names: Iterable[str]) -> np.ndarray:
    """Return the positions of the network's edges named one of ``names`` (:func:`street_key`).

    An edge carrying several names (``"Rue A;Rue B"``) matches any of them.
    """
    keys = {street_key(n) for n in names}
    if not keys:
        return np.zeros(0, dtype=np.int64)
    edge_names = network.edges["name"].fillna("").astype(str).to_numpy(dtype=object)
    hit = [any(street_key(part) in keys for part in str(n).split(";")) if n else False
           for n in edge_names]
    return np.flatnonzero(np.asarray(hit, dtype=bool))


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _route_all(ctx: _Context, turfs: list[pd.DataFrame], workers: int | None) -> list[_Solved]:
    """Route turfs in order, in ``workers`` processes when it pays off."""
    n = workers if workers is not None else available_cores()
    if n < 1:
        msg = f"routing workers must be >= 1, got {n!r}"
        raise InputError(msg)
    n = min(n, len(turfs) // _MIN_TURFS_PER_WORKER)
    if n <= 1:
        return [ctx.route(t) for t in turfs]
    # fork shares the network with the workers for free; elsewhere, spawn and send it once each
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    chunk = max(1, math.ceil(len(turfs) / (4 * n)))
    logger.debug("routing %d turfs in %d processes", len(turfs), n)
    with cf.ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context(method),
                                initializer=_init_worker, initargs=(ctx,)) as pool:
        return list(pool.map(_route_in_worker, turfs, chunksize=chunk))


def _init_worker(ctx: _Context) -> None:
    global _WORKER_CTX  # noqa: PLW0603 - one context per worker process
    _WORKER_CTX = ctx


def _route_in_worker(turf: pd.DataFrame) -> _Solved:
    assert _WORKER_CTX is not None
    return _WORKER_CTX.route(turf)


def empty_routes(crs: object) -> gpd.GeoDataFrame:
    """Return the routes layer of a plan without routes (its columns, no rows)."""
    gdf = gpd.GeoDataFrame(
        {
            "doors": pd.Series([], dtype="int64"),
            "length_m": pd.Series([], dtype="float64"),
            "walk_m": pd.Series([], dtype="float64"),
            "est_minutes": pd.Series([], dtype="float64"),
            "crossings": pd.Series([], dtype="int64"),
            "start_address_id": pd.Series([], dtype="string"),
        },
        geometry=gpd.GeoSeries([], crs=crs),
        crs=crs,
    )
    gdf.index = pd.Index([], dtype="string", name=schema.TURF_ID)
    return gdf


class _Context:
    """Network arrays shared by all turfs of a plan."""

    def __init__(self, network: StreetNetwork, params: RouteParams,
                 avoid: np.ndarray | None = None) -> None:
        self.params = params
        self.mat, node_ids = network.csr()
        self.node_xy = network.nodes[["x", "y"]].to_numpy(dtype=float)
        self.node_ids = node_ids
        edges = network.edges
        self.eu = np.searchsorted(node_ids, edges["u"].to_numpy(dtype=np.int64))
        self.ev = np.searchsorted(node_ids, edges["v"].to_numpy(dtype=np.int64))
        self.length = edges["length"].to_numpy(dtype=float)
        self.geom = edges.geometry.to_numpy()
        self.vertices: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}  # see _piece
        self.busy = np.isin(edges["highway"].to_numpy(dtype=object), list(params.busy_highways))
        self.name = edges["name"].fillna("").astype(str).to_numpy(dtype=object)
        start = self.node_xy_of(self.eu)
        vec = self.node_xy_of(self.ev) - start
        norm = np.maximum(np.hypot(vec[:, 0], vec[:, 1]), 1e-9)
        self.direction = vec / norm[:, None]
        # cheapest edge between two nodes, to draw node-to-node steps (avoided edges cost more)
        cost = self.length
        if avoid is not None and len(avoid):
            cost = self.length + AVOID_PENALTY_M * np.isin(np.arange(len(cost)), avoid)
        a = np.minimum(self.eu, self.ev)
        b = np.maximum(self.eu, self.ev)
        order = np.lexsort((cost, b, a))
        first = np.ones(len(order), dtype=bool)
        first[1:] = (a[order][1:] != a[order][:-1]) | (b[order][1:] != b[order][:-1])
        keep = order[first]
        self.pair_edge = dict(zip(zip(a[keep].tolist(), b[keep].tolist(), strict=True),
                                  keep.tolist(), strict=True))
        if cost is not self.length:
            keep = keep[a[keep] != b[keep]]
            w = np.maximum(cost[keep], 1e-9)
            self.mat = sparse.csr_array(
                (np.concatenate([w, w]), (np.concatenate([a[keep], b[keep]]),
                                          np.concatenate([b[keep], a[keep]]))),
                shape=self.mat.shape)

    def node_xy_of(self, pos: np.ndarray) -> np.ndarray:
        """Coordinates of nodes given by position."""
        return self.node_xy[pos]

    # -- one turf -------------------------------------------------------------------------
    def route(self, turf: gpd.GeoDataFrame) -> tuple[np.ndarray, shapely.LineString, dict]:
        """Order and path of one turf's doors."""
        p = self.params
        edge = turf["edge"].to_numpy(dtype=np.int64)
        stops = _Stops(
            edge=edge,
            offset=turf["offset_m"].to_numpy(dtype=float),
            side=turf["side"].astype(str).to_numpy(dtype=object),
            busy=self.busy[edge],
            xy=np.column_stack([turf["snap_x"].to_numpy(float), turf["snap_y"].to_numpy(float)]),
            name=self.name[edge],
            direction=self.direction[edge],
        )
        n = len(turf)
        start_stop = None
        if p.start is not None:
            stops, start_stop = self._with_start(stops, p.start)
        paths = self._local_paths(stops)
        cost, via, side_change = self._cost_matrix(stops, paths)
        order = self._solve(cost, fixed_start=start_stop)
        if start_stop is None and not p.loop and p.start_hint is not None and len(order) > 1:
            hint = np.asarray(p.start_hint, dtype=float)
            first, last = stops.xy[order[0]], stops.xy[order[-1]]
            if np.hypot(*(last - hint)) < np.hypot(*(first - hint)):
                order = order[::-1]
        line, length, crossings = self._draw(stops, order, paths, via, side_change)
        door_order = np.array([o for o in order if o < n], dtype=np.int64)
        return door_order, line, {"length_m": length, "crossings": crossings}

    def _with_start(
        self, stops: _Stops, start: tuple[float, float]
    ) -> tuple[_Stops, int]:
        pt = shapely.Point(start)
        tree = shapely.STRtree(self.geom)
        e = int(tree.query_nearest(pt, all_matches=False)[0])
        off = float(shapely.line_locate_point(self.geom[e], pt))
        snap = shapely.line_interpolate_point(self.geom[e], off)
        assert stops.name is not None and stops.direction is not None  # set by _stops
        stops = _Stops(
            edge=np.append(stops.edge, e),
            offset=np.append(stops.offset, off),
            side=np.append(stops.side, "start"),
            busy=np.append(stops.busy, False),
            xy=np.vstack([stops.xy, [snap.x, snap.y]]),
            name=np.append(stops.name, ""),
            direction=np.vstack([stops.direction, self.direction[e]]),
        )
        return stops, len(stops.edge) - 1

    def _local_paths(self, stops: _Stops) -> _Paths:
        """Shortest paths from the end nodes of the stops' edges, on the local window."""
        m = self.params.margin_m
        lo = stops.xy.min(axis=0) - m
        hi = stops.xy.max(axis=0) + m
        inside = np.flatnonzero(((self.node_xy >= lo) & (self.node_xy <= hi)).all(axis=1))
        ends = np.unique(np.concatenate([self.eu[stops.edge], self.ev[stops.edge]]))
        nodes = np.union1d(inside, ends)
        sub = self.mat[nodes][:, nodes]
        src = np.searchsorted(nodes, ends)
        dist, pred = csgraph.dijkstra(sub, directed=False, indices=src, return_predecessors=True)
        return _Paths(nodes=nodes, ends=ends, src=src, dist=dist, pred=pred)

    def _cost_matrix(
        self, stops: _Stops, paths: _Paths
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Door-to-door walking cost, the end nodes each step goes by, and side changes.

        A side change is a move between the two sides of one busy street: on the same block, or
        on two blocks of the same named street (sides compared along the street's direction).
        It costs ``crossing_m`` more and is counted as a crossing.
        """
        e = stops.edge
        length = self.length[e]
        end_nodes = np.stack([self.eu[e], self.ev[e]], axis=1)  # (n, 2) global node positions
        to_end = np.stack([stops.offset, length - stops.offset], axis=1)  # (n, 2)
        rows = paths.row(end_nodes)  # (n, 2) rows in dist
        cols = paths.src[rows]  # column of each end node in the local window
        dist = paths.dist
        n = len(e)
        # d[i, a, j, b] = to_end[i, a] + dist(end a of i -> end b of j) + to_end[j, b]
        combo = np.full((n, n, 4), np.inf)
        for a in range(2):
            for b in range(2):
                dd = dist[rows[:, a]][:, cols[:, b]]
                combo[:, :, 2 * a + b] = to_end[:, a][:, None] + dd + to_end[:, b][None, :]
        via = np.argmin(combo, axis=2)
        cost = np.min(combo, axis=2)
        same_edge = e[:, None] == e[None, :]
        busy = stops.busy[:, None] & stops.busy[None, :]
        opposite = stops.side[:, None] != stops.side[None, :]
        along = same_edge & ~(busy & opposite)
        cost = np.where(along, np.abs(stops.offset[:, None] - stops.offset[None, :]), cost)
        via = np.where(along, -1, via)
        # crossing a busy street between its two sides: same block, or two blocks of the same
        # street (left of one block is left of the next when they run the same way)
        names = stops.name if stops.name is not None else np.full(n, "", dtype=object)
        dirs = stops.direction if stops.direction is not None else np.zeros((n, 2))
        same_street = (names[:, None] == names[None, :]) & (names[:, None] != "")
        aligned = (dirs @ dirs.T) >= 0
        flipped = (stops.side[:, None] != stops.side[None, :]) ^ ~aligned
        side_change = busy & ((same_edge & opposite) | (~same_edge & same_street & flipped))
        np.fill_diagonal(side_change, False)
        cost = np.where(side_change, cost + self.params.crossing_m, cost)
        np.fill_diagonal(cost, 0.0)
        np.fill_diagonal(via, -1)
        # pieces no street links (within the window): a straight jump, made expensive so the
        # route makes as few as it must; drawn as a straight segment and counted as a gap
        gap = ~np.isfinite(cost)
        if gap.any():
            straight = np.hypot(*(stops.xy[:, None, :] - stops.xy[None, :, :]).transpose(2, 0, 1))
            cost = np.where(gap, 3.0 * straight + _GAP_M, cost)
            via = np.where(gap, -2, via)
        return cost, via, side_change

    def _solve(self, cost: np.ndarray, *, fixed_start: int | None) -> np.ndarray:
        """Order of the stops: LKH on the cost matrix (open path through a dummy stop)."""
        n = len(cost)
        if n == 1:
            return np.zeros(1, dtype=np.int64)
        p = self.params
        top = float(cost.max())
        # any constant larger than the spread of costs keeps the fixed start at one end
        big = min(_MAX_COST_M / 2, 10.0 * top + 1.0)
        if p.loop:
            m = cost
            dummy = None
        else:
            # a dummy stop at the same cost from every stop (or only from the fixed start) turns
            # the tour into an open path: every path pays it twice. That cost is the largest of
            # the matrix, so that the dummy is no one's nearest stop when LKH picks candidates.
            m = np.full((n + 1, n + 1), top)
            m[:n, :n] = cost
            m[n, n] = 0.0
            if fixed_start is not None:
                m[n, :n] = big
                m[:n, n] = big
                m[n, fixed_start] = top
                m[fixed_start, n] = top
            dummy = n
        # any cost of _GAP_M or more (a jump between pieces, or a very long walk): 5-opt
        order = _lkh(m, p.runs, p.trials,
                     LKH_GAP_MOVE_TYPE if cost.max() >= _GAP_M else LKH_MOVE_TYPE)
        if dummy is not None:
            k = int(np.flatnonzero(order == dummy)[0])
            order = np.concatenate([order[k + 1 :], order[:k]])
            if fixed_start is not None and order[0] != fixed_start:
                order = order[::-1]
        elif fixed_start is not None:
            k = int(np.flatnonzero(order == fixed_start)[0])
            order = np.concatenate([order[k:], order[:k]])
        else:
            # a loop with no fixed start begins after its costliest step, which becomes the walk
            # back to the first door (a jump between pieces no street links, when there is one)
            k = int(np.argmax(cost[order, np.roll(order, -1)])) + 1
            order = np.concatenate([order[k:], order[:k]])
        return order.astype(np.int64)

    def _draw(
        self,
        stops: _Stops,
        order: np.ndarray,
        paths: _Paths,
        via: np.ndarray,
        side_change: np.ndarray,
    ) -> tuple[shapely.LineString, float, int]:
        """Draw the route line along the streets; return it, its length and its crossings."""
        parts: list[np.ndarray | _Span] = [stops.xy[order[0]][None, :]]
        crossings = 0
        gaps = 0
        steps = order.tolist()
        if self.params.loop and len(steps) > 1:
            steps.append(steps[0])  # the way back to the start
        for i, j in itertools.pairwise(steps):
            crossings += int(side_change[i, j])
            ei, ej = int(stops.edge[i]), int(stops.edge[j])
            v = int(via[i, j])
            if v == -2:
                gaps += 1
                parts.append(stops.xy[j][None, :])
                continue
            if v < 0:
                if ei == ej and i != j:
                    parts.append((ei, float(stops.offset[i]), float(stops.offset[j])))
                continue
            a, b = divmod(v, 2)
            na = int(self.eu[ei] if a == 0 else self.ev[ei])
            nb = int(self.eu[ej] if b == 0 else self.ev[ej])
            end_a = 0.0 if a == 0 else float(self.length[ei])
            end_b = 0.0 if b == 0 else float(self.length[ej])
            parts.append((ei, float(stops.offset[i]), end_a))
            ra = int(paths.row(np.array([na]))[0])
            rb = int(paths.row(np.array([nb]))[0])
            path = _node_path(paths.pred[ra], int(paths.src[rb]), paths.nodes)
            for x, y in itertools.pairwise(path):
                parts.append(self._step(x, y))
            parts.append((ej, end_b, float(stops.offset[j])))
        coords = self._spans(parts)
        pts = np.vstack(coords)
        keep = np.ones(len(pts), dtype=bool)
        keep[1:] = np.any(np.abs(np.diff(pts, axis=0)) > 1e-6, axis=1)
        pts = pts[keep]
        if len(pts) < 2:
            # a single stop: a short piece of its street, so the line stays a valid geometry
            e = int(stops.edge[order[0]])
            off = float(stops.offset[order[0]])
            pts = self._spans([(e, max(off - 1.0, 0.0), min(off + 1.0, float(self.length[e])))])[0]
            if len(pts) < 2:  # pragma: no cover - zero-length edge
                pts = np.vstack([pts[:1], pts[:1] + np.array([0.01, 0.0])])
            line = shapely.LineString(pts)
            return line, 0.0, crossings
        line = shapely.LineString(pts)
        if gaps:
            logger.info("a route jumps %d time(s) between pieces no street links", gaps)
        return line, float(line.length), crossings

    def _vertices(self, e: int) -> tuple[np.ndarray, np.ndarray, float]:
        """:func:`_vertex_distances` of edge ``e``, computed once per edge."""
        got = self.vertices.get(e)
        if got is None:
            got = self.vertices[e] = _vertex_distances(self.geom[e])
        return got

    def _spans(self, parts: list[np.ndarray | _Span]) -> list[np.ndarray]:
        """Coordinates of a route's parts, each span as :func:`_piece` draws it.

        The ends of all spans are interpolated in one GEOS call (a call per span was most of
        the drawing's time); the points are the same, as each is the same interpolation.
        """
        spans = [p for p in parts if isinstance(p, tuple)]
        if not spans:
            return [p for p in parts if not isinstance(p, tuple)]
        edge = np.array([e for e, _, _ in spans], dtype=np.int64)
        start = np.array([a for _, a, _ in spans], dtype=float)
        end = np.array([b for _, _, b in spans], dtype=float)
        point = np.abs(end - start) < 1e-9
        lo, hi = np.minimum(start, end), np.maximum(start, end)
        at = np.column_stack([np.where(point, start, lo), hi]).ravel()
        ends = shapely.get_coordinates(shapely.line_interpolate_point(
            np.repeat(self.geom[edge], 2), at)).reshape(-1, 2, 2)
        out: list[np.ndarray] = []
        k = 0
        for p in parts:
            if not isinstance(p, tuple):
                out.append(p)
                continue
            e, a, b = p
            out.append(ends[k, :1] if point[k] else self._span(e, a, b, ends[k]))
            k += 1
        return out

    def _span(self, e: int, start: float, end: float, ends: np.ndarray) -> np.ndarray:
        """:func:`_piece` of edge ``e`` between two offsets, its two end points given."""
        xy, along, length = self._vertices(e)
        lo, hi = (start, end) if start <= end else (end, start)
        if not 0 <= lo < length:
            return _piece(self.geom[e], start, end)
        inner = xy[:-1][(along > lo) & (along < hi)]
        pts = np.vstack([ends[:1], inner, ends[1:]])
        return pts if start <= end else pts[::-1]

    def _step(self, x: int, y: int) -> np.ndarray:
        """Coordinates of the shortest edge from node x to node y (global positions)."""
        e = self.pair_edge[(min(x, y), max(x, y))]
        c = shapely.get_coordinates(self.geom[e])
        return c if self.eu[e] == x else c[::-1]


#: A span of a route along one street: the edge and two offsets along it (metres).
_Span = tuple[int, float, float]


def _node_path(pred_row: np.ndarray, target: int, local_nodes: np.ndarray) -> list[int]:
    """Global node positions from the Dijkstra source to ``target`` (local column)."""
    path = [target]
    while pred_row[path[-1]] >= 0:
        path.append(int(pred_row[path[-1]]))
    return [int(local_nodes[k]) for k in reversed(path)]


def _vertex_distances(line: shapely.LineString) -> tuple[np.ndarray, np.ndarray, float]:
    """Return a line's vertices, the distance along it at each segment's start, its length.

    The distances are summed as ``shapely.ops.substring`` sums them (same operations, same
    order), so that :func:`_piece` picks the same vertices.
    """
    xy = shapely.get_coordinates(line)
    along = []
    current = 0.0
    for (x1, y1), (x2, y2) in itertools.pairwise(xy.tolist()):
        along.append(current)
        current += ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
    return xy, np.array(along, dtype=float), float(shapely.length(line))


def _piece(line: shapely.LineString, start: float, end: float,
           vertices: tuple[np.ndarray, np.ndarray, float] | None = None) -> np.ndarray:
    """Coordinates of a line between two offsets (reversed when end < start).

    ``vertices`` (:func:`_vertex_distances` of ``line``) gives the coordinates of
    ``shapely.ops.substring`` without its per-call Python loop, when both offsets are within
    the line: its two end points (the same GEOS interpolation) and the vertices strictly
    between them.
    """
    if abs(end - start) < 1e-9:
        return shapely.get_coordinates(shapely.line_interpolate_point(line, start))
    lo, hi = (start, end) if start <= end else (end, start)
    if vertices is not None and 0 <= lo < vertices[2]:
        xy, along, _ = vertices
        ends = shapely.get_coordinates(shapely.line_interpolate_point(line, np.array([lo, hi])))
        inner = xy[:-1][(along > lo) & (along < hi)]
        pts = np.vstack([ends[:1], inner, ends[1:]])
        return pts if start <= end else pts[::-1]
    if start <= end:
        return shapely.get_coordinates(substring(line, start, end))
    return shapely.get_coordinates(substring(line, end, start))[::-1]


def _lkh(m: np.ndarray, runs: int, trials: int, move_type: int = LKH_GAP_MOVE_TYPE) -> np.ndarray:
    """Solve a TSP on a cost matrix with LKH (elkai); return the tour without the closing stop.

    elkai's ``DistanceMatrix.solve_tsp`` sets only ``RUNS``; its solver takes any LKH parameter
    file, so the trial budget, the ascent's candidates, the move and the seed are passed to it.
    """
    n = len(m)
    if n <= 3:
        return np.arange(n)
    # LKH multiplies costs by its precision (100) in 32-bit ints: keep decimetres under 2e6
    scaled = np.rint(np.minimum(m, _MAX_COST_M) * 10).astype(np.int64)
    kind = "TSP" if np.array_equal(scaled, scaled.T) else "ATSP"
    params = (f"RUNS = {runs}\nMAX_TRIALS = {trials}\nSEED = {_LKH_SEED}\n"
              f"SUBGRADIENT = NO\nMOVE_TYPE = {move_type}\n"
              "PROBLEM_FILE = :stdin:\n")
    row_text = " ".join(["%d"] * n)  # one % per row: half the time of a str() per number
    rows = "\n".join([row_text % tuple(row) for row in scaled.tolist()])
    problem = (f"TYPE : {kind}\nDIMENSION : {n}\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
               f"EDGE_WEIGHT_FORMAT : FULL_MATRIX\nEDGE_WEIGHT_SECTION\n{rows}\n")
    tour = _elkai.solve_problem(params, problem)  # 1-based, without the closing stop
    return np.asarray(tour, dtype=np.int64) - 1
