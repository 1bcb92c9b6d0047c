"""Cut doors into balanced turfs that are contiguous on the street network and respect barriers.

The algorithm (why it was chosen: ``docs/turf-cutting.md``)
-----------------------------------------------------------
1. **Street-side graph** (:mod:`knockin_geo.sidegraph`). Every snapped door is a vertex. The doors
   on one segment of a street edge (one side of it on a barrier road) are chained in order along
   the edge, and the chain's ends are joined to the segment's end vertices: street nodes, split
   into their *local sides* where a barrier line passes (:func:`knockin_geo.barriers.local_sides`),
   or the two sides of a point where the edge crosses a barrier. On a quiet street both sides are
   one chain (a canvasser zig-zags). Streets with a side free of doors are free connectors. Each
   precinct is cut on its own graph (its doors, and door-free streets within
   ``connector_buffer_m`` of it). Crossings (a node's local sides, a crossing point, a walk from
   one geometric side of the precinct's barriers to another) are bridges, not links.
2. **Regions and turf counts.** The connected parts of that graph without bridges are *regions*:
   pieces of the precinct that barriers (or missing streets) separate. With
   ``k = max(1, round(W / N))`` turfs for a precinct of weight ``W``, each region receives a
   number of turfs so that its mean turf stays within ``tolerance`` of ``W / k``. A region that
   cannot (too small for a turf of its own, or between two whole numbers of turfs) is merged with
   its neighbour across the barrier (never with ``barriers="strict"``); that crossing is then
   *unavoidable* and reported.
3. **Recursive spanning-tree bisection.** Each region is split in two by cutting one edge of a
   random spanning tree of its graph (as GerryChain's ``bipartition_tree``): both sides of a tree
   cut are connected by construction. Among all tree edges of several random trees, the cut whose
   sides best fit a whole number of turfs within tolerance is taken, ties broken by the smallest
   moment of inertia of the doors (the most compact split). Sides are split again until every part
   is one turf. Doors are vertices, so a long street can be divided between two turfs at the right
   door and balance is reached at door granularity.
4. **Repairs.** A turf still out of tolerance loses or gains doors next to it, then is re-cut with
   its neighbours (ReCom-style); after the refinement (:mod:`knockin_geo.refine`), a turf still
   out of tolerance is re-cut once more on a graph whose quiet streets have their two sides
   apart, so that two turfs may take one side each (``docs/turf-cutting.md``, step 5).

Everything runs on numpy/scipy arrays (minimum spanning trees and searches in
:mod:`scipy.sparse.csgraph`); randomness comes from ``numpy.random.default_rng`` seeded with
``seed`` and the precinct id, so results do not depend on processing order.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from knockin_geo import refine, schema, sidegraph
from knockin_geo._errors import InputError
from knockin_geo._pool import per_turf
from knockin_geo.barriers import (
    BARRIER_HIGHWAYS,
    TAG_BOTH,
    LocalSides,
    area_sides,
    barrier_lines,
    local_sides,
)
from knockin_geo.estimate import reach_m, second_walk_m
from knockin_geo.streets import StreetNetwork

logger = logging.getLogger(__name__)

ALL_AREA = "all"


@dataclass(frozen=True)
class TurfParams:
    """Parameters of the turf cutter.

    Parameters
    ----------
    doors_per_turf
        Target doors (households when ``use_households``) per turf. Exclusive with
        ``minutes_per_turf``.
    minutes_per_turf
        Target work time per turf: walking the turf's street sides at ``walk_speed_kmh`` plus
        ``minutes_per_door`` per door.
    tolerance
        Largest relative deviation of a turf's size from its precinct's mean ``W / k``.
    cross_precincts
        Cut all doors as one area instead of precinct by precinct.
    seed
        Seed of the random spanning trees.
    walk_speed_kmh
        Walking speed used for minutes (default 4 km/h: a canvassing pace between doors).
    minutes_per_door
        Minutes spent per door (knock, wait, short talk; default 1.5).
    weight_column
        A column of the doors that gives each door's size instead of its households, e.g.
        ``voters`` (voters per door from a voter file): turfs are then balanced on voters.
    use_households
        Weight doors by their ``households`` column (a building with 12 flats counts 12).
    barrier_highways
        Road classes that are barriers.
    railways_are_barriers, waterways_are_barriers
        Whether railways and rivers/canals are barriers.
    connector_buffer_m
        Door-free streets this far outside a precinct may link its doors.
    trees
        Random spanning trees tried per bisection (more: better cuts, slower).
    barriers
        ``default``: a turf crosses a barrier only where its precinct's side of it cannot hold a
        whole number of balanced turfs; ``strict``: never (such a side becomes a turf of its own,
        off-size, and the report says so).
    refine
        Local moves after the bisection (:mod:`knockin_geo.refine`): ``fix`` joins stray pieces
        of a turf to a neighbour on the same street side, evens out turfs beyond the tolerance
        and makes two turfs rounder where their door hulls overlap (more than
        :data:`knockin_geo.refine.UNTANGLE_SHARE` of either); ``compact`` makes every turf
        rounder (slower); ``none`` keeps the bisection's turfs.
    rebalance_rounds
        Minutes mode, when routed: most rounds of balancing on the routed minutes
        (:mod:`knockin_geo.rebalance`); 0 turns it off (``--no-rebalance``).
    """

    doors_per_turf: float | None = 80.0
    minutes_per_turf: float | None = None
    tolerance: float = 0.10
    cross_precincts: bool = False
    seed: int = 0
    walk_speed_kmh: float = schema.WALK_SPEED_KMH
    minutes_per_door: float = schema.MINUTES_PER_DOOR
    use_households: bool = True
    weight_column: str | None = None
    barrier_highways: tuple[str, ...] = BARRIER_HIGHWAYS
    railways_are_barriers: bool = True
    waterways_are_barriers: bool = True
    connector_buffer_m: float = 150.0
    trees: int = 8
    barriers: Literal["default", "strict"] = "default"
    refine: Literal["none", "fix", "compact"] = "fix"
    rebalance_rounds: int = 10

    def __post_init__(self) -> None:
        # 80 and 80.0 are the same target: store floats so reports do not depend on the spelling
        for name in ("doors_per_turf", "minutes_per_turf", "tolerance", "walk_speed_kmh",
                     "minutes_per_door", "connector_buffer_m"):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))
        problems = [*self._size_problems(), *self._value_problems()]
        if problems:
            msg = "invalid turf parameters"
            raise InputError(msg, problems)

    def _size_problems(self) -> list[str]:
        """Return what is wrong with the turf size (one of doors or minutes, positive)."""
        problems = []
        if (self.doors_per_turf is None) == (self.minutes_per_turf is None):
            both = ", not both" if self.minutes_per_turf is not None else ""
            problems.append("give doors_per_turf (--doors-per-turf) or minutes_per_turf "
                            f"(--minutes-per-turf){both}")
        for name in ("doors_per_turf", "minutes_per_turf"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                problems.append(f"{name} must be a positive number, got {value!r}")
        return problems

    def _value_problems(self) -> list[str]:
        """Return what is wrong with the other parameters."""
        checks = [
            (0 < self.tolerance < 1, f"tolerance must be between 0 and 1, got {self.tolerance!r}"),
            (self.walk_speed_kmh > 0,
             f"walk_speed_kmh must be positive, got {self.walk_speed_kmh!r}"),
            (self.minutes_per_door >= 0,
             f"minutes_per_door must be >= 0, got {self.minutes_per_door!r}"),
            (self.barriers in ("default", "strict"),
             f"barriers must be default or strict, got {self.barriers!r}"),
            (self.refine in ("none", "fix", "compact"),
             f"refine must be none, fix or compact, got {self.refine!r}"),
            (self.trees >= 1, f"trees must be >= 1, got {self.trees!r}"),
            (self.rebalance_rounds >= 0,
             f"rebalance_rounds must be >= 0, got {self.rebalance_rounds!r}"),
        ]
        return [msg for ok, msg in checks if not ok]

    @property
    def mode(self) -> Literal["doors", "minutes"]:
        """``doors`` or ``minutes``: what a turf's size counts."""
        return "doors" if self.doors_per_turf is not None else "minutes"

    @property
    def size(self) -> float:
        """The target size per turf, in doors or minutes."""
        value = self.doors_per_turf if self.doors_per_turf is not None else self.minutes_per_turf
        return float(value)  # type: ignore[arg-type]

    @property
    def metres_per_minute(self) -> float:
        """Walking speed in metres per minute."""
        return self.walk_speed_kmh * 1000.0 / 60.0


@dataclass(frozen=True)
class TurfCut:
    """Result of :func:`cut_turfs`.

    Attributes
    ----------
    doors
        Copy of the input doors with ``turf_id`` (or missing), ``face``, ``chain`` (doors on one
        edge, in one face and one area: walked together), ``weight`` and ``status`` (``assigned``
        for doors in a turf).
    turfs
        One row per turf, indexed by ``turf_id``: ``precinct_id``, ``doors``, ``households``,
        ``weight``, ``target``, ``deviation``, ``street_m``, ``est_minutes``, ``faces``, ``note``,
        footprint polygon.
    params
        The parameters used.
    """

    doors: gpd.GeoDataFrame
    turfs: gpd.GeoDataFrame
    params: TurfParams
    notes: dict[str, list[str]] = field(default_factory=dict)


def turf_count(weight: float, size: float) -> int:
    """Return the number of turfs of an area: ``max(1, round(weight / size))``, halves up.

    Parameters
    ----------
    weight
        The area's total size (doors, households or minutes).
    size
        The target size of one turf.

    Returns
    -------
    int
        At least 1.
    """
    return max(1, math.floor(weight / size + 0.5))


def door_weights(doors: pd.DataFrame, edge_length: np.ndarray, params: TurfParams) -> np.ndarray:
    """Return the size of each snapped door in the unit of the turf target.

    Parameters
    ----------
    doors
        Snapped doors with ``households``, ``edge`` and ``chain`` columns.
    edge_length
        Length of every network edge, indexed by edge number.
    params
        Turf parameters.

    Returns
    -------
    numpy.ndarray
        Doors mode: households (or 1). Minutes mode: ``minutes_per_door`` per household plus the
        door's share of walking its street side (edge length / doors on that chain / speed) plus
        the walk from the street to the door and back (``2 * snap_dist_m / speed``, when known).
    """
    if params.weight_column is not None:
        if params.weight_column not in doors:
            msg = f"the doors have no column {params.weight_column!r} to weight turfs by"
            raise InputError(msg)
        hh = np.nan_to_num(pd.to_numeric(doors[params.weight_column], errors="coerce")
                           .to_numpy(dtype=float)).clip(min=0)
    else:
        hh = (
            doors[schema.HOUSEHOLDS].to_numpy(dtype=float)
            if params.use_households and schema.HOUSEHOLDS in doors
            else np.ones(len(doors))
        )
    if params.mode == "doors":
        return hh
    per_chain = doors.groupby("chain", sort=False)["chain"].transform("size").to_numpy()
    walk = edge_length[doors["edge"].to_numpy()] / per_chain
    if "snap_dist_m" in doors:
        walk = walk + 2.0 * np.nan_to_num(doors["snap_dist_m"].to_numpy(dtype=float))
    return params.minutes_per_door * hh + walk / params.metres_per_minute


def cut_turfs(
    doors: gpd.GeoDataFrame,
    network: StreetNetwork,
    *,
    precincts: gpd.GeoDataFrame | None = None,
    params: TurfParams | None = None,
    workers: int | None = 1,
) -> TurfCut:
    """Partition snapped doors into turfs.

    Parameters
    ----------
    doors
        Doors from :func:`knockin_geo.snap.snap_doors` (metric CRS, index ``address_id``), with
        ``precinct_id`` unless ``params.cross_precincts``. Only doors with status ``ok`` are cut;
        the others keep their status.
    network
        The walking network the doors were snapped to.
    precincts
        Precinct polygons (metric CRS, index ``precinct_id``), used to find connector streets.
    params
        Turf parameters (defaults: 80 doors per turf, 10 % tolerance).
    workers
        Processes that cut the areas (precincts), the largest first; None: one per core. Each
        area draws its own random trees (seeded by the seed and the area's id), so the cut is
        the same whatever the number.

    Returns
    -------
    TurfCut
        Labelled doors, turf table and notes. The input is not modified.
    """
    params = params or TurfParams()
    out = doors.copy()
    out[schema.TURF_ID] = pd.array([pd.NA] * len(out), dtype="string")
    out["face"] = np.int64(-1)
    out["region"] = np.int64(-1)
    out["weight"] = np.nan
    out["chain"] = np.int64(-1)
    ids, per_precinct = _usable(out, params)
    if len(ids) == 0:
        logger.warning("no usable doors to cut")
        return TurfCut(out, _empty_turfs(out.crs), params)
    prep = _prepare(out, ids, network, precincts, params, per_precinct=per_precinct)
    labels = np.full(len(ids), -1, dtype=np.int64)
    region = np.full(len(ids), -1, dtype=np.int64)
    table = _TurfList()
    area_groups = pd.Series(np.arange(len(ids))).groupby(prep.area, sort=True).indices
    areas = sorted(map(str, area_groups))
    members_of = {a: np.sort(np.asarray(area_groups[a])) for a in areas}
    cuts = _cut_areas(prep, members_of, precincts, params, workers)
    tag = prep.tag.copy()
    for a in areas:
        members = members_of[a]
        part, part_notes, target, door_reg, tag[members] = cuts[a]
        region[members] = door_reg + (region.max() + 1)
        labels[members] = table.add(a, part, prep.xy[members], target, part_notes)
    face, chain = _faces_and_chains(prep.area, prep.edge, prep.seg, tag)

    tid_arr = np.array(table.ids, dtype=object)
    for col, values in ((schema.TURF_ID, tid_arr[labels]), ("face", face),
                        ("region", region), ("weight", prep.weight), ("chain", chain)):
        out.iloc[ids, out.columns.get_loc(col)] = values
    status = out[schema.STATUS].to_numpy(dtype=object).copy()
    status[ids] = schema.STATUS_ASSIGNED
    out[schema.STATUS] = status

    turfs = _turf_table(out.iloc[ids], tid_arr, labels, np.array(table.area, dtype=object),
                        np.array(table.target), region, prep.edge, chain,
                        prep.ed.length, prep.weight, params, table.notes, out.crs)
    logger.info(
        "cut %d doors into %d turfs in %d areas", len(ids), len(turfs), len(area_groups)
    )
    return TurfCut(out, turfs, params, table.notes)


def _cut_areas(
    prep: _Prepared, members_of: dict[str, np.ndarray], precincts: gpd.GeoDataFrame | None,
    params: TurfParams, workers: int | None,
) -> dict[str, _AreaCut]:
    """Cut every area (:func:`_cut_one_area`), in up to ``workers`` forked processes.

    The largest areas go first, so that the last to finish is a small one; the results are
    returned by area, and the caller takes them in its own order.
    """
    order = sorted(members_of, key=lambda a: (-len(members_of[a]), a))

    def cut(p: _Prepared, a: str) -> _AreaCut:
        return _cut_one_area(p, a, members_of[a], precincts, params)

    return dict(zip(order, per_turf(cut, prep, order, workers), strict=True))


def _usable(out: gpd.GeoDataFrame, params: TurfParams) -> tuple[np.ndarray, bool]:
    """Rows to cut (status ok, snapped, in a precinct when cutting per precinct)."""
    usable = (out[schema.STATUS] == schema.STATUS_OK).to_numpy() & (out["edge"].to_numpy() >= 0)
    per_precinct = (
        not params.cross_precincts
        and schema.PRECINCT_ID in out.columns
        and bool(out[schema.PRECINCT_ID].notna().any())
    )
    if per_precinct:
        usable &= out[schema.PRECINCT_ID].notna().to_numpy()
    return np.flatnonzero(usable), per_precinct


@dataclasses.dataclass(frozen=True)
class _Prepared:
    """Everything the areas' cuts share (arrays per usable door unless said)."""

    area: np.ndarray
    pts: np.ndarray
    xy: np.ndarray
    addr: np.ndarray
    edge: np.ndarray
    offsets: np.ndarray
    seg: np.ndarray
    tag: np.ndarray
    split_tag: np.ndarray  # each door's own side, on every street
    weight: np.ndarray
    rows: np.ndarray  # positions in the cut's frame
    lines: shapely.Geometry
    ed: sidegraph.EdgeData
    strict: sidegraph.StrictChains
    split_strict: sidegraph.StrictChains  # each side of every street a chain (the report's rule)
    is_conn: np.ndarray  # per street edge
    zone_edges: dict[str, np.ndarray] | None  # per area; None: every edge
    own_edges: dict[str, np.ndarray]


def _prepare(
    out: gpd.GeoDataFrame, ids: np.ndarray, network: StreetNetwork,
    precincts: gpd.GeoDataFrame | None, params: TurfParams, *, per_precinct: bool,
) -> _Prepared:
    d = out.iloc[ids]
    pts = d.geometry.to_numpy()
    lines, sides = _barrier_sides(network, params)
    area = (
        d[schema.PRECINCT_ID].astype(str).to_numpy(dtype=object)
        if per_precinct
        else np.full(len(d), ALL_AREA, dtype=object)
    )
    edge = d["edge"].to_numpy(dtype=np.int64)
    offsets = d["offset_m"].to_numpy(dtype=float)
    seg = sidegraph.door_segments(sides, edge, offsets)
    side_names = d["side"].astype(str).to_numpy(dtype=object)
    tag = sidegraph.door_tags(sides, edge, side_names)
    _, chain = _faces_and_chains(area, edge, seg, tag)
    edges = network.edges
    edge_len = edges["length"].to_numpy(dtype=float)
    frame_d = _weight_frame(d, edge, chain, params)
    weight = door_weights(frame_d, edge_len, params)
    if params.mode == "minutes":
        # the walk a route adds (streets walked twice, the reach to lone streets): estimate.py
        frame_d["side"] = d["side"].astype(str).to_numpy()
        extra_m = second_walk_m(frame_d, network) + reach_m(frame_d, network, area)
        weight = weight + extra_m / params.metres_per_minute
    all_edge = out["edge"].to_numpy(dtype=np.int64)
    all_side = out["side"].astype(str).to_numpy(dtype=object)
    chain_args = (sides, all_edge, all_side, out["offset_m"].to_numpy(dtype=float),
                  edges["u"].to_numpy(), edges["v"].to_numpy())
    strict = sidegraph.strict_chains(*chain_args)
    split_strict = sidegraph.strict_chains(*chain_args, split=True)
    zone_edges = None
    if per_precinct:
        zone_ids, zone = _area_zones(d, area, precincts, params.connector_buffer_m)
        z_i, z_e = shapely.STRtree(edges.geometry.to_numpy()).query(zone, predicate="intersects")
        by_zone = pd.Series(z_i).groupby(zone_ids[z_i]).indices
        zone_edges = {str(key): np.unique(z_e[np.asarray(rows)]) for key, rows in by_zone.items()}
    return _Prepared(
        area, pts, np.column_stack([shapely.get_x(pts), shapely.get_y(pts)]),
        d.index.to_numpy(dtype=object), edge, offsets, seg, tag,
        sidegraph.door_tags(sides, edge, side_names, split=True), weight, ids,
        lines, sidegraph.EdgeData(edge_len, network.nodes[["x", "y"]].to_numpy(dtype=float),
                                  sides),
        strict, split_strict, _connectors(all_edge, all_side, len(edges)), zone_edges,
        {str(k): np.asarray(v)
         for k, v in pd.Series(edge).groupby(area).unique().to_dict().items()},
    )


def _faces_and_chains(
    area: np.ndarray, edge: np.ndarray, seg: np.ndarray, tag: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the side of its edge each door is walked from, and its chain.

    A chain is the doors on one segment of one edge (one side of it where the sides are walked
    apart), in one area.
    """
    face = seg * 3 + tag
    chain_key = pd.DataFrame({"edge": edge, "side": face, "area": area})
    return face, chain_key.groupby(["area", "edge", "side"], sort=True).ngroup().to_numpy()


def _weight_frame(
    d: gpd.GeoDataFrame, edge: np.ndarray, chain: np.ndarray, params: TurfParams
) -> pd.DataFrame:
    """Return the columns :func:`door_weights` reads, for the usable doors."""
    return pd.DataFrame(
        {
            "edge": edge,
            "chain": chain,
            schema.HOUSEHOLDS: (
                d[schema.HOUSEHOLDS].to_numpy() if schema.HOUSEHOLDS in d else np.ones(len(d))
            ),
            "snap_dist_m": d["snap_dist_m"].to_numpy(dtype=float),
            **(
                {params.weight_column: d[params.weight_column].to_numpy()}
                if params.weight_column is not None and params.weight_column in d
                else {}
            ),
        }
    )


def _connectors(all_edge: np.ndarray, all_side: np.ndarray, n_edges: int) -> np.ndarray:
    """Edges with at least one side free of doors.

    Every snapped door counts, in the universe or not (they belong to other turfs, now or
    later).
    """
    snapped_any = all_edge >= 0
    left = np.zeros(n_edges, dtype=bool)
    right = np.zeros(n_edges, dtype=bool)
    left[all_edge[snapped_any & (all_side == "left")]] = True
    right[all_edge[snapped_any & (all_side == "right")]] = True
    return ~(left & right)


def _cut_one_area(
    prep: _Prepared, a: str, members: np.ndarray, precincts: gpd.GeoDataFrame | None,
    params: TurfParams,
) -> _AreaCut:
    """Build one area's side graph, cut it and refine the cut."""
    rng = np.random.default_rng([params.seed, zlib.crc32(str(a).encode("utf-8"))])
    polygon = _area_polygon(a, prep.pts[members], precincts)
    graph = _area_graph(prep, a, members, prep.tag[members], polygon)
    part, part_notes, target, door_reg = _cut_area(graph, prep.weight[members], params, rng)
    if params.refine != "none":
        part = _refine(part, prep.rows[members], prep.strict, prep.weight[members],
                       prep.xy[members], door_reg, target, prep.lines, params)
    # last: the refinement walks both sides of a quiet street as one and would undo a side split
    recut = _recut_by_sides(prep, a, members, polygon, part, target, params, rng)
    return recut, part_notes, target, door_reg, _walked_tags(prep, members, part, recut)


def _walked_tags(
    prep: _Prepared, members: np.ndarray, before: np.ndarray, after: np.ndarray
) -> np.ndarray:
    """Each door's side tag as its turf walks it.

    A quiet street's two sides are one chain, except where the side re-cut
    (:func:`_recut_by_sides`) moved doors of a street that now holds several turfs: each side
    is then a chain of its own, as the re-cut's graph had it.
    """
    tag = prep.tag[members].copy()
    if np.array_equal(before, after):
        return tag
    key = pd.DataFrame({"e": prep.edge[members], "s": prep.seg[members], "t": after,
                        "moved": before != after})[tag == TAG_BOTH]
    per_street = key.groupby(["e", "s"]).agg(turfs=("t", "nunique"), moved=("moved", "any"))
    apart = per_street[(per_street["turfs"] > 1) & per_street["moved"]].index
    rows = key.index[pd.MultiIndex.from_frame(key[["e", "s"]]).isin(apart)].to_numpy()
    tag[rows] = prep.split_tag[members][rows]
    return tag


def _area_graph(
    prep: _Prepared, a: str, members: np.ndarray, tag: np.ndarray, polygon: shapely.Geometry
) -> sidegraph.SideGraph:
    """Build the side graph of one area's doors, walked on the sides ``tag`` gives them."""
    z = (np.arange(len(prep.is_conn)) if prep.zone_edges is None
         else prep.zone_edges.get(a, np.array([], dtype=np.int64)))
    own = prep.own_edges[a]
    m_order = np.lexsort((prep.addr[members].astype(str), prep.offsets[members],
                          tag, prep.seg[members], prep.edge[members]))
    graph = sidegraph.build(
        prep.ed, prep.edge[members], prep.seg[members], tag,
        prep.offsets[members], m_order, z[prep.is_conn[z]],
        z[~prep.is_conn[z] & ~np.isin(z, own)], prep.xy[members],
    )
    return _split_sides(graph, polygon, prep.lines)


def _recut_by_sides(
    prep: _Prepared, a: str, members: np.ndarray, polygon: shapely.Geometry,
    part: np.ndarray, target: float, params: TurfParams, rng: np.random.Generator,
) -> np.ndarray:
    """Re-cut turfs still out of tolerance on a graph whose quiet streets have two sides.

    On a quiet street both sides are one chain, so two turfs cannot both walk it: where a
    precinct's streets meet at one crossroads, no cut of that graph may be balanced. As a last
    resort (only when a turf is still out of tolerance), the turf and its neighbours are cut
    again (:func:`_recombine`) on a graph where every street's sides are apart, so that two
    turfs may take one side each. Only the strong links are used: a turf that needed a
    crossing is left as it is.
    """
    w = prep.weight[members]
    pw = np.bincount(part, weights=w)
    if (np.abs(pw / target - 1) <= params.tolerance + 1e-12).all():
        return part
    graph = _area_graph(prep, a, members, prep.split_tag[members], polygon)
    n = graph.n_doors
    v_w = np.zeros(graph.n_vert)
    v_w[:n] = w
    is_door = np.arange(graph.n_vert) < n
    lab = np.zeros(graph.n_vert, dtype=np.int64)
    lab[:n] = part
    adj = _sym(graph.a, graph.b, graph.length, graph.n_vert)
    rows = prep.rows[members]

    def no_more_pieces(doors: np.ndarray, old: np.ndarray, new: np.ndarray) -> bool:
        _, old_t = np.unique(old, return_inverse=True)
        _, new_t = np.unique(new, return_inverse=True)
        count = functools.partial(sidegraph.piece_counts, prep.split_strict, rows[doors])
        return bool(count(new_t).sum() <= count(old_t).sum())

    rules = dataclasses.replace(_SIDE_RECOM, accept=no_more_pieces)
    return _recombine(adj, v_w, graph.v_xy, is_door, lab, target, params, rng, rules)[:n]


#: One area's cut: turf per door, notes per turf, target, region per door, walked side tags.
_AreaCut = tuple[np.ndarray, dict[int, list[str]], float, np.ndarray, np.ndarray]


@dataclasses.dataclass
class _TurfList:
    """Turf ids, areas, targets and notes, in the order the areas are cut."""

    ids: list[str] = dataclasses.field(default_factory=list)
    area: list[str] = dataclasses.field(default_factory=list)
    target: list[float] = dataclasses.field(default_factory=list)
    notes: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def add(self, a: str, part: np.ndarray, xy: np.ndarray, target: float,
            part_notes: dict[int, list[str]]) -> np.ndarray:
        """Give an area's turfs ids, north to south then west to east; return door labels."""
        n_parts = int(part.max()) + 1
        cx = np.bincount(part, weights=xy[:, 0], minlength=n_parts)
        cy = np.bincount(part, weights=xy[:, 1], minlength=n_parts)
        cnt = np.bincount(part, minlength=n_parts)
        rank = np.empty(n_parts, dtype=np.int64)
        rank[np.lexsort((cx / cnt, -cy / cnt))] = np.arange(n_parts)
        base = len(self.ids)
        width = max(2, len(str(n_parts)))
        for r in range(n_parts):
            tid = f"{a}-{r + 1:0{width}d}" if a != ALL_AREA else f"T{r + 1:0{max(3, width)}d}"
            self.ids.append(tid)
            self.area.append(a)
            self.target.append(target)
        for p, msgs in part_notes.items():
            self.notes.setdefault(self.ids[base + rank[p]], []).extend(msgs)
        return base + rank[part]


def _barrier_sides(network: StreetNetwork, params: TurfParams) -> tuple[shapely.Geometry,
                                                                        LocalSides]:
    """Return the barrier lines of the cut's classes and the local sides they give."""
    lines, bridges = (
        barrier_lines(network, highways=params.barrier_highways,
                      railways=params.railways_are_barriers,
                      waterways=params.waterways_are_barriers, bridges=b)
        for b in (False, True)
    )
    return lines, local_sides(network, lines, bridges)


def refine_labels(
    doors: gpd.GeoDataFrame,
    network: StreetNetwork,
    members: np.ndarray,
    labels: np.ndarray,
    weight: np.ndarray,
    target: float,
    params: TurfParams,
) -> np.ndarray:
    """Refine the turfs of some doors of one area on the cutter's strict chains (for ``recut``).

    Parameters
    ----------
    doors
        Every door that still blocks a street side (``edge``, ``offset_m``, ``side`` and the
        cutter's ``region``), in the network's CRS.
    members
        Positions in ``doors`` of the doors whose turfs may change.
    labels, weight
        Their turf numbers (``0..k-1``) and weights.
    target
        The turfs' target weight; ``params.tolerance`` and ``params.refine`` apply.
    """
    lines, sides = _barrier_sides(network, params)
    edges = network.edges
    strict = sidegraph.strict_chains(
        sides, doors["edge"].to_numpy(dtype=np.int64),
        doors["side"].astype(str).to_numpy(dtype=object),
        doors["offset_m"].to_numpy(dtype=float), edges["u"].to_numpy(), edges["v"].to_numpy(),
    )
    sub = doors.iloc[members]
    pts = sub.geometry.to_numpy()
    xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])
    region = (pd.factorize(sub["region"].to_numpy())[0] if "region" in sub
              else np.zeros(len(sub), dtype=np.int64))
    return _refine(labels, members, strict, weight, xy, region, target, lines, params)


def _refine(
    part: np.ndarray,
    rows: np.ndarray,
    strict: sidegraph.StrictChains,
    weight: np.ndarray,
    xy: np.ndarray,
    region: np.ndarray,
    target: float,
    lines: shapely.Geometry,
    params: TurfParams,
) -> np.ndarray:
    """Refine one area's turfs (:mod:`knockin_geo.refine`) on strict street sides."""
    lo, hi = xy.min(axis=0) - _REFINE_MARGIN_M, xy.max(axis=0) + _REFINE_MARGIN_M
    near = shapely.clip_by_rect(lines, lo[0], lo[1], hi[0], hi[1])
    barrier = None if shapely.is_empty(near) else near
    doors = refine.AreaDoors(strict.chain[rows], strict.pos[rows], weight, xy, region)
    return refine.refine_area(part, doors, strict, target, params.tolerance, barrier,
                              buffer_m=_SPAN_BUFFER_M, compact=params.refine == "compact",
                              untangle=refine.UNTANGLE_SHARE if params.refine == "fix" else None)


def _area_polygon(
    key: str, pts: np.ndarray, precincts: gpd.GeoDataFrame | None
) -> shapely.Geometry:
    """Return the area whose barrier sides keep turfs apart: the precinct, or doors' hull + 50 m."""
    doors = shapely.multipoints(pts)
    if precincts is not None and len(precincts) and key != ALL_AREA:
        match = precincts.index.astype(str) == key
        if match.any():
            poly = precincts.geometry.to_numpy()[match][0]
            if shapely.covers(poly, doors):
                return cast(shapely.Geometry, poly)
            return cast(shapely.Geometry,
                        shapely.union(poly, shapely.buffer(shapely.convex_hull(doors), 10.0)))
    return cast(shapely.Geometry, shapely.buffer(shapely.convex_hull(doors), 50.0))


def _split_sides(
    graph: sidegraph.SideGraph, area: shapely.Geometry, lines: shapely.Geometry
) -> sidegraph.SideGraph:
    """Make every strong link between two sides of the area's barriers a crossing.

    The local sides of the street graph miss one thing: a barrier that ends (or has a gap)
    lets the walk go round it, however far. Inside the area (the precinct), the sides of its
    barriers are read geometrically (:func:`knockin_geo.barriers.area_sides`) and a walk from
    one to the other counts as a crossing, so a turf keeps to one side unless that side cannot
    hold whole turfs.
    """
    side = area_sides(area, graph.v_xy, lines)
    sa, sb = side[graph.a], side[graph.b]
    across = (sa >= 0) & (sb >= 0) & (sa != sb)
    if not across.any():
        return graph
    side_links = (graph.a[across], graph.b[across], graph.length[across] + sidegraph.CROSS_M)
    return dataclasses.replace(
        graph, a=graph.a[~across], b=graph.b[~across], length=graph.length[~across],
        bridges={**graph.bridges, "side": side_links},
    )


def _area_zones(
    d: gpd.GeoDataFrame,
    area: np.ndarray,
    precincts: gpd.GeoDataFrame | None,
    buffer_m: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Polygons (buffered) within which door-free streets may link an area's doors."""
    keys = np.unique(area)
    hulls = {}
    if precincts is not None and len(precincts):
        pid = precincts.index.astype(str).to_numpy(dtype=object)
        hulls = dict(zip(pid, precincts.geometry.to_numpy(), strict=True))
    pts = d.geometry.to_numpy()
    zones = []
    for key in keys:
        doors_hull = shapely.convex_hull(shapely.multipoints(pts[area == key]))
        base = hulls.get(key)
        geom = doors_hull if base is None else shapely.union(base, doors_hull)
        zones.append(shapely.buffer(geom, buffer_m))
    return keys.astype(object), np.array(zones)


def _empty_turfs(crs: object) -> gpd.GeoDataFrame:
    cols = {
        schema.PRECINCT_ID: pd.Series([], dtype="string"),
        "doors": pd.Series([], dtype="int64"),
        "households": pd.Series([], dtype="int64"),
        "weight": pd.Series([], dtype="float64"),
        "target": pd.Series([], dtype="float64"),
        "deviation": pd.Series([], dtype="float64"),
        "street_m": pd.Series([], dtype="float64"),
        "est_minutes": pd.Series([], dtype="float64"),
        "faces": pd.Series([], dtype="int64"),
        "note": pd.Series([], dtype="string"),
    }
    gdf = gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    gdf.index = pd.Index([], dtype="string", name=schema.TURF_ID)
    return gdf


def _cut_area(
    graph: sidegraph.SideGraph,
    weight: np.ndarray,
    params: TurfParams,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[int, list[str]], float, np.ndarray]:
    """Cut one area's side graph; return part labels, notes, target and region per door."""
    n = graph.n_doors
    w_total = float(weight.sum())
    k = turf_count(w_total, params.size)
    target = w_total / k
    if n < 2:
        return np.zeros(n, dtype=np.int64), {}, target, np.zeros(n, dtype=np.int64)
    a, b, length, n_vert = graph.a, graph.b, graph.length, graph.n_vert
    bridges, v_xy = graph.bridges, graph.v_xy
    v_w = np.zeros(n_vert)
    v_w[:n] = weight

    # --- regions (connected parts of the strong graph) and the turfs each gets
    adj = _sym(a, b, length, n_vert)
    n_reg, reg = csgraph.connected_components(adj, directed=False)
    reg_w = np.bincount(reg, weights=v_w, minlength=n_reg)
    live = np.flatnonzero(reg_w > 0)
    groups, group_k, merge_notes = _allocate(
        live, reg, reg_w, k, target, params, bridges, v_xy, n
    )
    part = np.full(n_vert, -1, dtype=np.int64)
    notes: dict[int, list[str]] = {}
    next_part = 0
    door_reg = reg[:n]
    for g, regs in enumerate(groups):
        in_g = np.isin(reg, regs)
        verts = np.flatnonzero(in_g)
        keep = in_g[a]
        ga, gb, gl = [a[keep]], [b[keep]], [length[keep]]
        if len(regs) > 1:
            for ba, bb, bl in bridges.values():
                bk = in_g[ba] & in_g[bb]
                ga.append(ba[bk])
                gb.append(bb[bk])
                gl.append(bl[bk])
        local = np.full(n_vert, -1, dtype=np.int64)
        local[verts] = np.arange(len(verts))
        g_adj = _sym(local[np.concatenate(ga)], local[np.concatenate(gb)],
                     np.concatenate(gl), len(verts))
        g_adj = _join_pieces(g_adj, verts, v_xy, verts >= n)
        labels = _tree_partition(
            g_adj, v_w[verts], v_xy[verts], verts >= n, group_k[g], target, params, rng
        )
        labels = _repair_balance(
            g_adj, v_w[verts], v_xy[verts], verts < n, labels, target, params.tolerance
        )
        labels = _recombine(
            g_adj, v_w[verts], v_xy[verts], verts < n, labels, target, params, rng
        )
        part[verts] = labels + next_part
        if g in merge_notes:
            for p in range(group_k[g]):
                own = door_reg[part[:n] == next_part + p]
                if len(np.unique(own)) > 1 or len(regs) == 1:
                    notes[next_part + p] = merge_notes[g]
        next_part += group_k[g]
    door_part = part[:n]
    used, door_part = np.unique(door_part, return_inverse=True)
    notes = {int(np.searchsorted(used, p)): m for p, m in notes.items() if p in used}
    return door_part.astype(np.int64), notes, target, np.unique(door_reg, return_inverse=True)[1]


#: Barrier lines this far around an area's doors guard the refinement's moves (metres).
_REFINE_MARGIN_M = 200.0
#: Half-width of a barrier line for the refinement's hull test (the report's rule uses 3 m too).
_SPAN_BUFFER_M = 3.0
#: Length of a straight jump between pieces no street links (last resort).
_JUMP_M = 1.0e7
#: Street nodes a piece no street links is offered as attachment points.
_JUMP_FANOUT = 8
#: Most turfs re-cut together when one is still out of tolerance.
_RECOMBINE_MAX = 4


@dataclass(frozen=True)
class _ReComRules:
    """How :func:`_recombine` re-cuts turfs out of tolerance with their neighbours.

    attempts
        Re-cuts in all, kept or refused (a turf whose re-cut is refused is not tried again).
    margin_m
        Street nodes farther than this from the group's doors (box distance) are left out
        (None: every node of the graph).
    node_cuts_everywhere
        Look for a shared street node on every random tree drawn, not only the first
        ``TurfParams.trees``.
    accept
        ``accept(doors, old labels, new labels)``: a balanced re-cut is kept only if it says yes.
    """

    attempts: int = 12
    margin_m: float | None = None
    node_cuts_everywhere: bool = False
    accept: Callable[[np.ndarray, np.ndarray, np.ndarray], bool] | None = None


#: The side re-cut (:func:`_recut_by_sides`): a balanced cut there often needs one street node
#: shared by two turfs, which only some random trees offer; nodes within 250 m of the group.
_SIDE_RECOM = _ReComRules(attempts=24, margin_m=250.0, node_cuts_everywhere=True)


def _sym(a: np.ndarray, b: np.ndarray, length: np.ndarray, n: int) -> sparse.csr_array:
    """Symmetric adjacency with link lengths (zero-length links kept as a tiny length)."""
    keep = a != b
    a, b, length = a[keep], b[keep], np.maximum(length[keep], 1e-3)
    m = sparse.coo_array(
        (np.concatenate([length, length]), (np.concatenate([a, b]), np.concatenate([b, a]))),
        shape=(n, n),
    ).tocsr()
    m.sum_duplicates()
    return m


def _allocate(
    live: np.ndarray,
    reg: np.ndarray,
    reg_w: np.ndarray,
    k: int,
    target: float,
    params: TurfParams,
    bridges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    v_xy: np.ndarray,
    n_doors: int,
) -> tuple[list[np.ndarray], list[int], dict[int, list[str]]]:
    """Group regions and give each group a number of turfs within tolerance.

    A group whose mean turf would miss the tolerance is merged with a neighbouring group:
    preferably one reached through another area's street ("weak" bridge), else across a barrier
    (never with ``barriers="strict"``: the group then keeps its own, off-size turfs),
    else (no street at all) the nearest one.
    """
    tol = params.tolerance
    strict = params.barriers == "strict"
    kept: set[int] = set()
    groups: list[list[int]] = [[int(r)] for r in live]
    reasons: list[list[str]] = [[] for _ in groups]
    link_kind = _link_kinds(bridges, reg)
    reg_cent = _region_centres(live, reg[:n_doors], v_xy)
    while True:
        ws = np.array([float(reg_w[g].sum()) for g in groups])
        ks = _largest_remainder(ws, target, k)
        dev = np.abs(ws / np.maximum(ks, 1) - target) / target
        bad = np.flatnonzero((dev > tol + 1e-12)
                             & np.array([g[0] not in kept for g in groups], dtype=bool))
        if len(groups) == 1 or len(bad) == 0:
            break
        # the worst group first; on a tie, the smaller one (it is usually the cause)
        worst = int(bad[np.lexsort((bad, ws[bad], -np.round(dev[bad], 9)))[0]])
        why = (
            "too small for a turf of its own"
            if ws[worst] < (1 - tol) * target
            else "not a whole number of balanced turfs"
        )
        kinds = {j: _kind_between(link_kind, groups[worst], groups[j]) for j in range(len(groups))}
        cw = reg_cent[groups[worst][0]]

        def score(
            j: int, cw: np.ndarray = cw, ws: np.ndarray = ws, worst: int = worst,
            kinds: dict[int, str | None] = kinds,
        ) -> tuple[int, float, float, int]:
            # a crossing that stays on the area's side of its barriers (round a line's end)
            # before one that lands on its other side
            rank = {"weak": 0, "cross": 1, "side": 2, None: 3}
            merged = ws[worst] + ws[j]
            km = turf_count(merged, target)
            dist = float(np.hypot(*(reg_cent[groups[j][0]] - cw)))
            return (rank[kinds[j]], abs(merged / km - target) / target, dist, j)

        best = min((j for j in range(len(groups)) if j != worst), key=score)
        if strict and kinds[best] != "weak":
            kept.add(groups[worst][0])
            reasons[worst] = [*reasons[worst], (
                f"a side of a barrier with {ws[worst]:.0f} (target {target:.0f}) kept on its own "
                "(--barriers strict)")]
            continue
        reason = _merge_reason(kinds[best], why)
        lo, hi = sorted((worst, best))
        groups[lo] = sorted(groups[lo] + groups[hi])
        reasons[lo] = [*reasons[lo], *reasons[hi], reason]
        del groups[hi]
        del reasons[hi]
    ws = np.array([float(reg_w[g].sum()) for g in groups])
    ks = _largest_remainder(ws, target, k)
    notes = {i: sorted(set(r)) for i, r in enumerate(reasons) if r}
    return [np.array(g) for g in groups], [int(x) for x in ks], notes


def _region_centres(
    live: np.ndarray, door_reg: np.ndarray, v_xy: np.ndarray
) -> dict[int, np.ndarray]:
    """Return the mean position of the doors of each live region."""
    reg_cent = {}
    for r in live.tolist():
        sel = np.flatnonzero(door_reg == r)
        reg_cent[r] = v_xy[sel].mean(axis=0)
    return reg_cent


def _kind_between(
    link_kind: dict[tuple[int, int], str], gi: list[int], gj: list[int]
) -> str | None:
    """Return the best link between two groups of regions: weak, cross, side or none."""
    kinds = {link_kind.get((min(x, y), max(x, y))) for x in gi for y in gj} - {None}
    for kind in ("weak", "cross", "side"):
        if kind in kinds:
            return kind
    return None


def _merge_reason(kind: str | None, why: str) -> str:
    """Return the note of a turf whose group was merged through a link of this kind."""
    if kind == "weak":
        return f"passes through another precinct's street to reach a part that is {why}"
    if kind in ("cross", "side"):
        return f"crosses a barrier to reach a part that is {why}"
    return f"includes a part no street links to the rest ({why})"


def _link_kinds(
    bridges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], reg: np.ndarray
) -> dict[tuple[int, int], str]:
    """Return how each pair of regions is linked: ``side``, ``cross`` or (winning) ``weak``."""
    link_kind: dict[tuple[int, int], str] = {}
    for kind in ("side", "cross", "weak"):  # weak last: it wins where both exist
        if kind not in bridges:
            continue
        ba, bb, _ = bridges[kind]
        for x, y in zip(reg[ba].tolist(), reg[bb].tolist(), strict=True):
            if x != y:
                link_kind[(min(x, y), max(x, y))] = kind
    return link_kind


def _largest_remainder(ws: np.ndarray, target: float, k: int) -> np.ndarray:
    """Whole numbers of turfs per group, at least 1 each, summing to ``k`` when possible."""
    q = ws / target
    base = np.maximum(np.floor(q), 1).astype(np.int64)
    rest = k - int(base.sum())
    frac = q - np.floor(q)
    if rest > 0:
        order = np.lexsort((np.arange(len(q)), -frac))
        for i in range(rest):
            base[order[i % len(q)]] += 1
    elif rest < 0:
        order = np.lexsort((np.arange(len(q)), frac))
        for i in order:
            if rest == 0:
                break
            if base[i] > 1:
                base[i] -= 1
                rest += 1
    return base


def _join_pieces(
    adj: sparse.csr_array, verts: np.ndarray, v_xy: np.ndarray, is_node: np.ndarray
) -> sparse.csr_array:
    """Link pieces no street joins by (very heavy) straight jumps to their nearest street nodes.

    A spanning tree keeps exactly one jump per piece; offering several nearby attachment nodes
    lets different random trees attach the piece at different places.
    """
    n_comp, comp = csgraph.connected_components(adj, directed=False)
    if n_comp == 1:
        return adj
    xy = v_xy[verts]
    extra_a, extra_b, extra_l = [], [], []
    joined = comp == comp[0]
    while not joined.all():
        inside = np.flatnonzero(joined & is_node) if (joined & is_node).any() else np.flatnonzero(
            joined
        )
        outside = np.flatnonzero(~joined & is_node)
        if len(outside) == 0:
            outside = np.flatnonzero(~joined)
        tree = cKDTree(xy[inside])
        dist, _near = tree.query(xy[outside])
        j = int(np.argmin(dist))
        # several jumps to the nearest street nodes: random spanning trees then attach the piece
        # at different places, which leaves the bisection room to balance
        k_near = min(_JUMP_FANOUT, len(inside))
        d_all, n_all = tree.query(xy[outside[j]], k=k_near)
        for dd, nn in zip(np.atleast_1d(d_all), np.atleast_1d(n_all), strict=True):
            extra_a.append(int(inside[nn]))
            extra_b.append(int(outside[j]))
            extra_l.append(_JUMP_M + float(dd))
        joined |= comp == comp[outside[j]]
    extra = _sym(np.array(extra_a), np.array(extra_b), np.array(extra_l), adj.shape[0])
    return (adj + extra).tocsr()


def _repair_balance(
    adj: sparse.csr_array,
    w: np.ndarray,
    xy: np.ndarray,
    is_door: np.ndarray,
    labels: np.ndarray,
    target: float,
    tol: float,
) -> np.ndarray:
    """Move doors between neighbouring turfs until every turf is within tolerance.

    A local search run only when the bisection left a turf out of tolerance. A door may move to a
    turf it touches (same street chain, or a street node both reach) if its own turf stays in one
    piece. Each move must lower ``1000 * sum(excess) + sum(deviation**2)``, where excess is how
    far a turf lies outside the tolerance; it stops when no such move is left.
    """
    lab = labels.copy()
    doors = np.flatnonzero(is_door)
    parts = np.unique(lab[doors])
    k = int(parts.max()) + 1
    pw = np.bincount(lab[doors], weights=w[doors], minlength=k)

    def objective(dev: np.ndarray) -> np.ndarray:
        return 1000.0 * np.maximum(np.abs(dev) - tol, 0).sum(axis=-1) + (dev**2).sum(axis=-1)

    if (np.abs(pw[parts] - target) / target <= tol + 1e-12).all():
        return lab
    (ra, rb), (ta, tb) = _door_contacts(adj, is_door)
    for _ in range(len(doors)):
        src, dst = lab[ta], lab[tb]
        cand = src != dst
        ca, cs, cd = ta[cand], src[cand], dst[cand]
        if len(ca) == 0:
            break
        dev = (pw - target) / target
        base = objective(dev[None, :])[0]
        new_s = (pw[cs] - w[ca] - target) / target
        new_d = (pw[cd] + w[ca] - target) / target
        delta = (
            1000.0 * (np.maximum(np.abs(new_s) - tol, 0) + np.maximum(np.abs(new_d) - tol, 0)
                      - np.maximum(np.abs(dev[cs]) - tol, 0) - np.maximum(np.abs(dev[cd]) - tol, 0))
            + new_s**2 + new_d**2 - dev[cs] ** 2 - dev[cd] ** 2
        )
        out_of = np.abs(dev) > tol + 1e-12
        good = np.flatnonzero(out_of[cs] | out_of[cd])
        if len(good) == 0 or base <= 0:
            break
        moved = False
        tried: set[tuple[int, int]] = set()
        for i in good[np.lexsort((ca[good], delta[good]))]:
            d, s_part, d_part = int(ca[i]), int(cs[i]), int(cd[i])
            if (d, d_part) in tried:
                continue
            tried.add((d, d_part))
            if len(tried) > 60:
                break
            group = _move_set(ra, rb, is_door, lab, s_part, d, xy)
            gw = float(w[group].sum())
            new_dev = dev.copy()
            new_dev[s_part] -= gw / target
            new_dev[d_part] += gw / target
            if objective(new_dev[None, :])[0] < base - 1e-12:
                lab[group] = d_part
                pw[s_part] -= gw
                pw[d_part] += gw
                moved = True
                break
        if not moved:
            break
        if (np.abs(pw[parts] - target) / target <= tol + 1e-12).all():
            break
    return lab


def _door_contacts(
    adj: sparse.csr_array, is_door: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return the links a door may move along, and the pairs of doors in contact.

    Links: the precinct's own streets and the barrier crossings of a merged group. Contacts:
    two doors joined by such a link, or by two through a shared street node.
    """
    n = adj.shape[0]
    coo = adj.tocoo()
    # moves follow the precinct's own streets and the barrier crossings of a merged group, never
    # another precinct's streets or a straight jump (the turf would no longer be one piece)
    strong = (coo.data < sidegraph.WEAK_M) | (coo.data == sidegraph.CROSS_M)
    ra, rb = coo.row[strong], coo.col[strong]
    # door-to-door contacts: direct links, or two links through a shared street node
    dd = sparse.coo_array(
        (np.ones(len(ra)), (ra, rb)), shape=(n, n)
    ).tocsr()
    node_diag = sparse.diags_array((~is_door).astype(float))
    two_hop = (dd @ node_diag @ dd).tocsr()
    touch = (dd + two_hop).tocoo()
    ta, tb = touch.row, touch.col
    sel = is_door[ta] & is_door[tb] & (ta != tb)
    return (ra, rb), (ta[sel], tb[sel])


def _recombine(
    adj: sparse.csr_array,
    w: np.ndarray,
    xy: np.ndarray,
    is_door: np.ndarray,
    labels: np.ndarray,
    target: float,
    params: TurfParams,
    rng: np.random.Generator,
    rules: _ReComRules = _ReComRules(),
) -> np.ndarray:
    """Re-cut a turf still out of tolerance together with its neighbours (ReCom-style).

    The turf and the turfs its doors touch are merged and cut again into as many turfs by the
    spanning-tree bisection, with fresh random trees; the new cut is kept only if every one of
    those turfs is then within tolerance (and ``rules.accept`` says yes, when given). A turf
    whose re-cut is refused is not tried again, and the next one out of tolerance gets its turn
    (``rules.attempts`` re-cuts at most, refused or kept).
    """
    tol = params.tolerance
    doors = np.flatnonzero(is_door)
    lab = labels.copy()
    coo = adj.tocoo()
    # turfs meet where their doors reach the same street nodes, possibly through door-free
    # streets, barrier crossings or jumps: label the pieces of the node-only graph
    nn = ~is_door[coo.row] & ~is_door[coo.col]
    node_graph = sparse.coo_array(
        (np.ones(int(nn.sum())), (coo.row[nn], coo.col[nn])), shape=adj.shape
    ).tocsr()
    _, node_piece = csgraph.connected_components(node_graph, directed=False)
    dn = is_door[coo.row] & ~is_door[coo.col]
    door_v, node_v = coo.row[dn], coo.col[dn]
    dd = is_door[coo.row] & is_door[coo.col]
    refused: list[int] = []
    for _ in range(rules.attempts):
        pw = np.bincount(lab[doors], weights=w[doors], minlength=int(lab.max()) + 1)
        dev = np.abs(pw / target - 1)
        bad = np.flatnonzero((dev > tol + 1e-12) & (pw > 0))
        bad = bad[~np.isin(bad, refused)]
        if len(bad) == 0:
            break
        t = int(bad[np.argmax(dev[bad])])
        pieces = np.unique(node_piece[node_v[lab[door_v] == t]])
        touching = lab[door_v[np.isin(node_piece[node_v], pieces)]]
        direct = lab[coo.col[dd][lab[coo.row[dd]] == t]]
        group = np.union1d(np.unique(np.concatenate([touching, direct])), [t])
        if len(group) < 2:
            refused.append(t)
            continue
        if len(group) > _RECOMBINE_MAX:
            group = _nearest_of_group(lab[doors], xy[doors], group, t, len(pw))
        in_group = is_door & np.isin(lab, group)
        verts = np.flatnonzero(in_group | _nodes_near(xy, is_door, in_group, rules.margin_m))
        sub = adj[verts][:, verts]
        # the connected piece holding the group's doors (street nodes elsewhere are dropped)
        _, comp = csgraph.connected_components(sub, directed=False)
        door_comps = np.unique(comp[in_group[verts]])
        if len(door_comps) != 1:
            refused.append(t)
            continue
        keep = comp == door_comps[0]
        verts = verts[keep]
        sub = sub[keep][:, keep]
        new = _tree_partition(
            sub, w[verts], xy[verts], ~is_door[verts], len(group), target, params, rng,
            node_cuts_everywhere=rules.node_cuts_everywhere,
        )
        vd = is_door[verts]
        new_w = np.bincount(new[vd], weights=w[verts][vd], minlength=len(group))
        if not (np.abs(new_w / target - 1) <= tol + 1e-12).all() or (
                rules.accept is not None
                and not rules.accept(verts[vd], lab[verts[vd]], group[new[vd]])):
            refused.append(t)
            continue
        lab[verts[vd]] = group[new[vd]]
    return lab


def _nodes_near(
    xy: np.ndarray, is_door: np.ndarray, in_group: np.ndarray, margin_m: float | None
) -> np.ndarray:
    """Street-node vertices within ``margin_m`` of the box of the group's doors (all if None)."""
    if margin_m is None:
        return ~is_door
    lo = xy[in_group].min(axis=0) - margin_m
    hi = xy[in_group].max(axis=0) + margin_m
    return ~is_door & (xy >= lo).all(axis=1) & (xy <= hi).all(axis=1)


def _nearest_of_group(
    door_lab: np.ndarray, door_xy: np.ndarray, group: np.ndarray, t: int, n_parts: int
) -> np.ndarray:
    """Turf ``t`` and the ``_RECOMBINE_MAX - 1`` turfs of ``group`` nearest it (door centroids)."""
    cx = np.bincount(door_lab, weights=door_xy[:, 0], minlength=n_parts)
    cy = np.bincount(door_lab, weights=door_xy[:, 1], minlength=n_parts)
    cnt = np.maximum(np.bincount(door_lab, minlength=n_parts), 1)
    mx, my = cx / cnt, cy / cnt
    others = group[group != t]
    dist = np.hypot(mx[others] - mx[t], my[others] - my[t])
    others = others[np.lexsort((others, dist))][: _RECOMBINE_MAX - 1]
    return np.union1d(others, [t])


def _move_set(
    ra: np.ndarray,
    rb: np.ndarray,
    is_door: np.ndarray,
    lab: np.ndarray,
    part: int,
    d: int,
    xy: np.ndarray,
    margin_m: float = 500.0,
) -> np.ndarray:
    """Doors that must leave ``part`` with door ``d`` so that ``part`` does not break apart.

    When ``d`` is the only link of a dead-end street (or a whole branch) to the rest of its turf,
    that branch goes with it. Only the street graph within ``margin_m`` of the part is searched.
    """
    own = np.flatnonzero(is_door & (lab == part))
    lo = xy[own].min(axis=0) - margin_m
    hi = xy[own].max(axis=0) + margin_m
    near = (xy >= lo).all(axis=1) & (xy <= hi).all(axis=1)
    mask = near & (~is_door | (lab == part))
    link = mask[ra] & mask[rb]
    la, lb = ra[link], rb[link]
    n = len(xy)

    def components(keep: np.ndarray) -> np.ndarray:
        m = sparse.coo_array(
            (np.ones(int(keep.sum())), (la[keep], lb[keep])), shape=(n, n)
        ).tocsr()
        return csgraph.connected_components(m, directed=False)[1]

    before = components(np.ones(len(la), dtype=bool))
    after = components((la != d) & (lb != d))
    same = own[(before[own] == before[d]) & (own != d)]
    if len(same) == 0:
        return np.array([d])
    pieces, sizes = np.unique(after[same], return_counts=True)
    keep_piece = pieces[np.argmax(sizes)]
    leaving = same[after[same] != keep_piece]
    return np.concatenate([[d], leaving])


def _tree_partition(
    adj: sparse.csr_array,
    w: np.ndarray,
    xy: np.ndarray,
    is_node: np.ndarray,
    k: int,
    target: float,
    params: TurfParams,
    rng: np.random.Generator,
    *,
    node_cuts_everywhere: bool = False,
) -> np.ndarray:
    """Recursive spanning-tree bisection of a connected graph into ``k`` parts.

    Street-node vertices may end up on both sides of a cut (two turfs meet at a crossroads and
    both may walk through it); the label returned for such a vertex is one of them.
    ``node_cuts_everywhere``: see :class:`_ReComRules`.
    """
    labels = np.zeros(adj.shape[0], dtype=np.int64)
    stack = [(np.arange(adj.shape[0]), k, 0)]
    next_label = 1
    while stack:
        verts, kk, lab = stack.pop()
        if kk == 1:
            labels[verts] = lab
            continue
        sub = adj[verts][:, verts]
        in_a, in_b, k_a = _bisect(sub, w[verts], xy[verts], is_node[verts], kk, target, params,
                                  rng, node_cuts_everywhere=node_cuts_everywhere)
        stack.append((verts[in_b], kk - k_a, next_label))
        next_label += 1
        stack.append((verts[in_a], k_a, lab))
    return labels


def _bisect(
    adj: sparse.csr_array,
    w: np.ndarray,
    xy: np.ndarray,
    is_node: np.ndarray,
    k: int,
    target: float,
    params: TurfParams,
    rng: np.random.Generator,
    *,
    node_cuts_everywhere: bool = False,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Split a connected graph in two along random spanning trees.

    A cut is either a tree edge (both sides connected by construction) or a street node whose
    tree branches are shared out between the two sides (the node then belongs to both: two
    turfs meet at a crossroads). Cuts that give both sides a whole number of turfs within
    tolerance come first, then the most compact (smallest moment of inertia of the doors); when
    none is balanced, the most balanced. Node cuts are tried only when no edge cut is balanced.

    Returns
    -------
    in_a, in_b
        Vertex masks of the two sides (they overlap only on a shared street node).
    k_a
        Number of turfs side A is to hold.
    """
    n = adj.shape[0]
    # moments about the box's centre: about the CRS's origin (millions of metres away), the
    # inertia is a small difference of huge sums and its rounding would choose the cut
    xy = xy - (xy.min(axis=0) + xy.max(axis=0)) / 2
    stats = np.column_stack([w, w * xy[:, 0], w * xy[:, 1], w * (xy[:, 0] ** 2 + xy[:, 1] ** 2)])
    tot = stats.sum(axis=0)
    edges = _UpperEdges(sparse.triu(adj, k=1).tocoo(), n)
    trees = []
    best_key: tuple[float, float] | None = None
    best_spec: tuple = ()
    t_i = -1
    while True:
        t_i += 1
        # params.trees trees; up to 4x as many while no balanced edge cut has been found
        if t_i >= params.trees and (best_key is not None and (best_key[0] < 1 or
                                                              t_i >= 4 * params.trees)):
            break
        order, pred = _random_tree(edges, rng)
        sub = _subtree_sums(stats, pred)
        trees.append((order, pred, sub))
        cand = order[1:]
        imb, inertia, ka_arr = _score(sub[cand], tot - sub[cand], k, target, params.tolerance)
        i = int(np.lexsort((cand, inertia, imb))[0])
        key = (float(imb[i]), float(inertia[i]))
        if best_key is None or key < best_key:
            best_key, best_spec = key, ("edge", t_i, int(cand[i]), (), False, int(ka_arr[i]))
    if best_key is None:  # pragma: no cover - trees >= 1 and n >= 2
        msg = "internal error: no cut found"
        raise RuntimeError(msg)
    if best_key[0] >= 1:
        for t_i, (order, pred, sub) in enumerate(
                trees if node_cuts_everywhere else trees[: params.trees]):
            found = _best_node_cut(order, pred, sub, tot, is_node, k, target, params)
            if found is not None and found[0] < best_key:
                best_key = found[0]
                best_spec = ("node", t_i, found[1], found[2], found[3], found[4])
    kind, t_i, v, kids, parent_side, ka = best_spec
    _order, pred, _sub = trees[t_i]
    if best_key[0] >= 1:
        logger.debug("no balanced cut within tolerance (best imbalance %.3f)", best_key[0] - 1)
    if kind == "edge":
        in_a = _below(pred, [v])
        return in_a, ~in_a, ka
    in_a = _below(pred, list(kids))
    if parent_side:
        in_a |= ~_below(pred, [v])
    in_b = ~in_a
    in_a[v] = True
    in_b[v] = True
    return in_a, in_b, ka


class _UpperEdges:
    """The edges of a graph to bisect (upper triangle), laid out once for every tree drawn.

    ``coo_array(...).tocsr()`` gives the rows in order and the columns sorted within a row; the
    same layout is found here once, so that each tree only puts its weights in place.
    """

    def __init__(self, triu: sparse.coo_array, n: int) -> None:
        self.n = n
        self.data = triu.data
        self.perm = np.lexsort((triu.col, triu.row))
        self.indices = triu.col[self.perm]
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(triu.row, minlength=n))])

    def weighted(self, weights: np.ndarray) -> sparse.csr_array:
        """Return the matrix with ``weights`` (in the edges' order) on its edges."""
        return sparse.csr_array((weights[self.perm], self.indices, self.indptr),
                                shape=(self.n, self.n))


def _random_tree(
    edges: _UpperEdges, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a spanning tree (minimum over jittered edge weights) rooted at a random vertex.

    Returns its breadth-first order and the predecessors.
    """
    n = edges.n
    jitter = edges.data * rng.uniform(0.5, 1.5, size=len(edges.data)) + 1e-6
    # the weighted matrix is made for this call: scipy may work in it instead of a copy
    tree = csgraph.minimum_spanning_tree(edges.weighted(jitter), overwrite=True)
    root = int(rng.integers(n))
    # undirected: scipy follows the tree's edges both ways (the predecessors are the tree's,
    # whatever order the neighbours are visited in)
    order, pred = csgraph.breadth_first_order(
        tree, root, directed=False, return_predecessors=True
    )
    if len(order) != n:  # pragma: no cover - callers pass connected graphs
        msg = "internal error: graph to bisect is not connected"
        raise RuntimeError(msg)
    return order, pred


def _best_node_cut(
    order: np.ndarray,
    pred: np.ndarray,
    sub: np.ndarray,
    tot: np.ndarray,
    is_node: np.ndarray,
    k: int,
    target: float,
    params: TurfParams,
) -> tuple[tuple[float, float], int, tuple[int, ...], bool, int] | None:
    """Best way to share a street node's tree branches between two sides (or None).

    Vectorised over all street nodes with the same number of branches (3 to 8): every subset of
    branches is scored at once.
    """
    root = order[0]
    child = order[1:]
    parent = pred[child]
    srt = np.lexsort((child, parent))
    parent_s, child_s = parent[srt], child[srt]
    heads, first, count = np.unique(parent_s, return_index=True, return_counts=True)
    has_parent = heads != root
    m_all = count + has_parent.astype(np.int64)
    best: tuple[tuple[float, float], int, tuple[int, ...], bool, int] | None = None
    for m in range(3, 9):
        sel = np.flatnonzero(is_node[heads] & (m_all == m))
        if len(sel) == 0:
            continue
        hp = has_parent[sel]
        c = count[sel]
        # branch stats: children then (when present) the parent side, padded to m
        branches = np.zeros((len(sel), m, sub.shape[1]))
        kid_ids = np.full((len(sel), m), -1, dtype=np.int64)
        for j in range(m):
            has_kid = j < c
            rows = np.flatnonzero(has_kid)
            kid = child_s[first[sel[rows]] + j]
            branches[rows, j] = sub[kid]
            kid_ids[rows, j] = kid
        prow = np.flatnonzero(hp)
        branches[prow, c[prow]] = tot - sub[heads[sel[prow]]]
        masks = ((np.arange(1, 2**m - 1)[:, None] >> np.arange(m)) & 1).astype(float)
        side = np.einsum("sm,nmk->nsk", masks, branches)
        flat = side.reshape(-1, sub.shape[1])
        imb, inertia, ka = _score(flat, tot - flat, k, target, params.tolerance)
        i = int(np.lexsort((inertia, imb))[0])
        key = (float(imb[i]), float(inertia[i]))
        if best is None or key < best[0]:
            node_i, mask_i = divmod(i, len(masks))
            chosen = masks[mask_i].astype(bool)
            kids = kid_ids[node_i][chosen & (kid_ids[node_i] >= 0)]
            parent_chosen = bool(hp[node_i] and chosen[c[node_i]])
            best = (
                key,
                int(heads[sel[node_i]]),
                tuple(int(x) for x in kids),
                parent_chosen,
                int(ka[i]),
            )
    return best


def _score(
    s: np.ndarray, rest: np.ndarray, k: int, target: float, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Imbalance key, inertia and turf count of side A for candidate cuts.

    Side A of a cut gets the whole number of turfs nearest its weight (``round(s / mean)``,
    between 1 and ``k - 1``), so a valley can be cut between two villages into 37 + 41 turfs
    rather than forced into 39 + 39. A side holding ``k_s`` turfs is feasible when its weight lies
    within ``k_s`` times the turf window ``[(1 - tol) t, (1 + tol) t]``. Among feasible cuts,
    key 0 goes to those whose sides stay within a fifth of the tolerance of the current mean turf
    (room for the next splits), key 0.5 to the others; infeasible cuts get 1 + their distance to
    the window. The inertia is given as a share of the inertia of all the doors (a split keeps
    less), and both keys are rounded to 1e-9: the rounding of sums taken in another order never
    decides between two cuts (equal keys go to the lowest vertex).
    """
    lo, hi = (1 - tol) * target, (1 + tol) * target
    total = s[:, 0] + rest[:, 0]
    mean = total / k
    ka = np.clip(np.rint(s[:, 0] / np.maximum(mean, 1e-12)), 1, k - 1)
    kb = k - ka
    avg_a = s[:, 0] / ka
    avg_b = rest[:, 0] / kb
    out_a = np.maximum(lo - avg_a, avg_a - hi).clip(min=0) / target
    out_b = np.maximum(lo - avg_b, avg_b - hi).clip(min=0) / target
    feasible = (out_a == 0) & (out_b == 0) & (s[:, 0] > 0) & (rest[:, 0] > 0)
    soft_a = (ka == 1) | (np.abs(avg_a - mean) <= 0.2 * tol * target)
    soft_b = (kb == 1) | (np.abs(avg_b - mean) <= 0.2 * tol * target)
    imb = np.where(
        feasible,
        np.where(soft_a & soft_b, 0.0, 0.5),
        1.0 + np.maximum(out_a, out_b),
    )
    share = (_inertia(s) + _inertia(rest)) / np.maximum(_inertia(s + rest), 1e-12)
    return np.round(imb, _KEY_DECIMALS), np.round(share, _KEY_DECIMALS), ka.astype(np.int64)


#: Decimals the cut's keys are rounded to (see :func:`_score`).
_KEY_DECIMALS = 9


def _inertia(s: np.ndarray) -> np.ndarray:
    """Moment of inertia of weighted points from sums (w, wx, wy, w(x²+y²))."""
    wsum = np.maximum(s[:, 0], 1e-12)
    return s[:, 3] - (s[:, 1] ** 2 + s[:, 2] ** 2) / wsum


def _subtree_sums(stats: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Sum ``stats`` over every vertex's subtree, doubling how far below each vertex it reaches.

    After round ``r`` each vertex holds the sum over its descendants fewer than ``2**r`` steps
    below it (itself included); adding what the vertices exactly ``2**r`` steps below hold
    doubles that. ``ceil(log2(depth + 1))`` rounds of one ``bincount`` per column: on the
    trees of Liechtenstein's bisections (median 391 vertices, 101 layers), 2.7 times faster
    than a scatter-add per breadth-first layer.
    """
    n, m = stats.shape
    acc = stats.copy()
    anc = np.where(pred >= 0, pred, -1)  # scipy marks the root's predecessor with -9999
    below = np.flatnonzero(anc >= 0)
    while len(below):
        up = anc[below]
        for c in range(m):
            acc[:, c] += np.bincount(up, weights=acc[below, c], minlength=n)
        anc[below] = anc[up]  # the ancestor twice as far up (-1 past the root)
        below = below[anc[below] >= 0]
    return acc


def _below(pred: np.ndarray, tops: list[int]) -> np.ndarray:
    """Mask of the vertices in the subtrees of ``tops`` (themselves included).

    One breadth-first search down the tree from each top, in scipy (a tree of Liechtenstein's
    bisections has hundreds of layers: a numpy step per layer cost more than the search).
    """
    n = len(pred)
    child = np.flatnonzero(pred >= 0)
    down = sparse.csr_array((np.ones(len(child), dtype=np.int8), (pred[child], child)),
                            shape=(n, n))
    mask = np.zeros(n, dtype=bool)
    for v in tops:
        mask[csgraph.breadth_first_order(down, v, directed=True,
                                         return_predecessors=False)] = True
    return mask


def turf_footprints(doors: gpd.GeoDataFrame, labels: np.ndarray) -> list[shapely.Geometry]:
    """Return each turf's footprint: concave hull of its doors and snap points, buffered 15 m.

    Parameters
    ----------
    doors
        The turfs' doors (``snap_x``, ``snap_y`` and the door points).
    labels
        Turf number ``0..k-1`` of each door; every number has doors.

    Returns
    -------
    list of shapely.Geometry
        One polygon per turf number, in order.
    """
    pts = doors.geometry.to_numpy()
    snap = shapely.points(doors["snap_x"].to_numpy(), doors["snap_y"].to_numpy())
    both = np.concatenate([pts, snap])
    lab2 = np.concatenate([labels, labels])
    order = np.argsort(lab2, kind="stable")
    splits = np.split(both[order], np.flatnonzero(np.diff(lab2[order])) + 1)
    return [cast(shapely.Geometry,
                 shapely.buffer(shapely.concave_hull(shapely.multipoints(p), ratio=0.3), 15.0))
            for p in splits]


def _turf_table(
    d: gpd.GeoDataFrame,
    tid: np.ndarray,
    labels: np.ndarray,
    t_area: np.ndarray,
    t_target: np.ndarray,
    face: np.ndarray,
    edge: np.ndarray,
    chain: np.ndarray,
    edge_len: np.ndarray,
    weight: np.ndarray,
    params: TurfParams,
    notes: dict[str, list[str]],
    crs: object,
) -> gpd.GeoDataFrame:
    """Summarise turfs: sizes, balance, street length, minutes, footprint."""
    n_t = len(tid)
    doors = np.bincount(labels, minlength=n_t)
    hh_col = (
        d[schema.HOUSEHOLDS].to_numpy(dtype=float) if schema.HOUSEHOLDS in d else np.ones(len(d))
    )
    households = np.bincount(labels, weights=hh_col, minlength=n_t)
    wsum = np.bincount(labels, weights=weight, minlength=n_t)
    # street length carrying the turf's doors: each chain's edge length shared by door count
    per_chain = np.bincount(chain)
    share = edge_len[edge] / per_chain[chain]
    street_m = np.bincount(labels, weights=share, minlength=n_t)
    hh_for_time = hh_col if params.use_households else np.ones(len(d))
    access = np.bincount(
        labels, weights=2.0 * np.nan_to_num(d["snap_dist_m"].to_numpy(dtype=float)), minlength=n_t
    )
    minutes = (
        (street_m + access) / params.metres_per_minute
        + np.bincount(labels, weights=hh_for_time, minlength=n_t) * params.minutes_per_door
    )
    n_faces = (
        pd.DataFrame({"t": labels, "f": face}).groupby("t")["f"].nunique().reindex(
            range(n_t), fill_value=0
        ).to_numpy()
    )
    footprints = turf_footprints(d, labels)
    if params.mode == "minutes":
        minutes = wsum  # the cutter's estimate, with what estimate.py adds
    deviation = (wsum - t_target) / t_target
    gdf = gpd.GeoDataFrame(
        {
            schema.PRECINCT_ID: pd.array(
                [None if a == ALL_AREA else a for a in t_area], dtype="string"
            ),
            "doors": doors.astype(np.int64),
            "households": np.round(households).astype(np.int64),
            "weight": np.round(wsum, 3),
            "target": np.round(t_target, 3),
            "deviation": np.round(deviation, 4),
            "street_m": np.round(street_m, 1),
            "est_minutes": np.round(minutes, 1),
            "faces": n_faces.astype(np.int64),
            "note": pd.array(["; ".join(notes.get(t, [])) for t in tid], dtype="string"),
        },
        geometry=footprints,
        crs=crs,
    )
    gdf.index = pd.Index(tid.astype(str), dtype="string", name=schema.TURF_ID)
    return gdf.sort_index()


#: The turf table of a set of labelled doors (also what :mod:`knockin_geo.recut` builds).
turf_table = _turf_table
