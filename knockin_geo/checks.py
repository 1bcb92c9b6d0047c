"""Independent checks of a turf cut: barrier spans, strict contiguity, compactness, overlap.

Every figure here is computed from the cut's *output* (doors with their turf, their point and the
street edge and offset they were snapped to) and the *input* street data (edge end nodes, barrier
lines), with shapely and scipy alone. Nothing is imported from the cutter (:mod:`knockin_geo.turfs`,
:mod:`knockin_geo.barriers`, :mod:`knockin_geo.sidegraph`), so a check cannot agree with the cutter
by sharing its mistakes. Definitions (also in ``docs/report.md``):

spans a barrier
    The convex hull of a turf's doors, minus the barrier lines buffered by ``buffer_m`` (3 m),
    falls into two or more parts that hold doors. Barrier lines: the road classes asked for
    (motorway, trunk, primary and their links by default), railways and rivers/canals (the
    outline of river areas), tunnel and bridge segments excepted. A door inside the buffer (on
    the barrier itself) belongs to no part.
strict pieces
    Doors of a turf linked along street sides: on each side of each street edge the volunteer
    walks from the edge's end node past the doors of that side in order to the other end node,
    and may not pass a door that is not the turf's (another turf's, or one outside the cut).
    Only streets without any door link their end nodes freely: the empty side of a street whose
    other side holds doors does not (walking it passes those doors across the street). Strict
    pieces are the connected parts of the turf's doors in that graph (1 = one piece).
Polsby-Popper
    ``4 pi A / P**2`` of the convex hull of a turf's doors (1 = a disc).
hull overlap
    Per precinct: ``(sum of the turfs' hull areas - area of their union) / sum of hull areas``,
    the share of hull area claimed twice or more. Overall: the same sums over all precincts.
bound (unavoidable spans)
    The precinct polygon (or, without precincts, the hull of the area's doors buffered by 50 m)
    minus the buffered barrier lines falls into *sides*. A side whose weight ``N`` (doors,
    households or minutes, the cut's unit) is no whole number of turfs of the precinct's mean
    ``T`` within the tolerance (no integer ``m >= 1`` with ``(1 - tol) m T <= N <= (1 + tol) m T``)
    must share a turf with a neighbouring side: it is *unplaceable*. A spanning turf holding doors
    of an unplaceable side is unavoidable (``side holds N doors, target T``); a precinct should
    have no more spanning turfs than unplaceable sides.
crossing point
    Where a spanning turf should cross. The *separating lines* are the barrier lines meeting
    the turf's hull; the search reaches :data:`CROSSING_REACH_M` beyond the hull. First choice,
    a marked crossing place (the street network's ``crossings`` layer, an input like the
    streets) standing on a separating line (within ``buffer_m``, the barrier's half-width: a
    crossing node is a vertex of the road or railway, a footbridge's place is on the line):
    traffic signals, then zebra or marked crossings, then footbridges or underpasses, then
    level crossings, then unmarked crossings (:data:`MARK_RANK`), the one nearest the doors'
    centre within the best class. Else the point where a street meets a separating line
    (``street``), nearest the doors' centre; else the point of a separating line nearest that
    centre (``barrier``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from knockin_geo import schema

#: Half-width of a barrier line when cutting a hull or a precinct into sides, in metres.
BUFFER_M = 3.0
#: How far beyond a spanning turf's hull a crossing is offered (a marked crossing place, or a
#: street meeting the barrier): about two minutes' walk, so that a crossing just past the last
#: doors still counts.
CROSSING_REACH_M = 150.0
#: Preference between the kinds of marked crossing places (lower first): lights stop the
#: traffic, a marked crossing gives way to walkers, a footbridge or underpass is safe but may be
#: a detour by steps, a level crossing is safe when open, an unmarked crossing only names a place.
MARK_RANK: dict[str, int] = {
    "signals": 0, "zebra": 1, "marked": 1, "footbridge": 2, "underpass": 2,
    "level_crossing": 3, "unmarked": 4,
}
#: How the report names each kind of crossing point (``{on}``: the barrier's name or class).
CROSSING_TEXT: dict[str, str] = {
    "signals": "traffic signals on {on}", "zebra": "zebra crossing on {on}",
    "marked": "marked crossing on {on}", "unmarked": "unmarked crossing on {on}",
    "level_crossing": "level crossing on {on}", "footbridge": "footbridge over {on}",
    "underpass": "underpass under {on}", "street": "where a street meets {on}",
    "barrier": "the point of {on} nearest the doors",
}
#: Buffer of the doors' hull standing for the precinct polygon when cutting without precincts.
NO_PRECINCT_BUFFER_M = 50.0
#: Road classes that are barriers by default (also the cutter's default, defined apart on purpose).
RULE_HIGHWAYS: tuple[str, ...] = (
    "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
)


@dataclass(frozen=True)
class RuleParams:
    """Which barrier lines the rule uses and how wide they are.

    Parameters
    ----------
    highways
        Road classes that are barriers (``subtype`` of ``kind == "road"``).
    railways, waterways
        Whether railways and rivers/canals are barriers.
    buffer_m
        Half-width of a barrier line.
    """

    highways: tuple[str, ...] = RULE_HIGHWAYS
    railways: bool = True
    waterways: bool = True
    buffer_m: float = BUFFER_M


@dataclass(frozen=True)
class BarrierLines:
    """Barrier lines for the rule: geometries (lines), labels for reports, names for walkers.

    ``names`` (optional): the name a walker knows each line by (``""``: use its label).
    """

    geoms: np.ndarray
    labels: np.ndarray
    names: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tree", shapely.STRtree(self.geoms))

    def name(self, i: int) -> str:
        """Return the name of line ``i`` (its label when it has none)."""
        name = "" if self.names is None else str(self.names[i])
        return name or str(self.labels[i])

    def near(self, geom: shapely.Geometry, distance: float) -> np.ndarray:
        """Return the indices of the lines within ``distance`` of ``geom``."""
        if len(self.geoms) == 0:
            return np.array([], dtype=np.int64)
        return np.sort(self.tree.query(geom, predicate="dwithin", distance=distance))  # type: ignore[attr-defined]


def rule_lines(barriers: gpd.GeoDataFrame, params: RuleParams) -> BarrierLines:
    """Select the barrier lines of the rule from a street network's ``barriers`` layer.

    Parameters
    ----------
    barriers
        Layer with ``kind`` (road/railway/waterway), ``subtype``, ``name``, ``tunnel``, ``bridge``
        and a LineString or Polygon geometry (as :attr:`StreetNetwork.barriers`).
    params
        Barrier classes.

    Returns
    -------
    BarrierLines
        Lines (polygons contribute their outline); tunnels and bridges left out.
    """
    if len(barriers) == 0:
        return BarrierLines(np.array([], dtype=object), np.array([], dtype=object))
    kind = barriers["kind"].astype(str).to_numpy(dtype=object)
    sub = barriers["subtype"].astype(str).to_numpy(dtype=object)
    keep = (kind == "road") & np.isin(sub, list(params.highways))
    keep |= (kind == "railway") & params.railways
    keep |= (kind == "waterway") & params.waterways
    for flag in ("tunnel", "bridge"):
        if flag in barriers:
            keep &= ~barriers[flag].fillna(False).to_numpy(dtype=bool)
    geoms = barriers.geometry.to_numpy()[keep]
    area = shapely.get_type_id(geoms) >= 3
    geoms = np.where(area, shapely.boundary(geoms), geoms)
    names = barriers["name"].fillna("").astype(str).to_numpy(dtype=object)[keep] if (
        "name" in barriers) else np.full(int(keep.sum()), "", dtype=object)
    labels = np.array(
        [f"{s} {n!r}" if n else str(s) for s, n in zip(sub[keep], names, strict=True)],
        dtype=object,
    )
    ok = ~shapely.is_empty(geoms) & ~shapely.is_missing(geoms)
    return BarrierLines(geoms[ok], labels[ok], names[ok])


def _parts_holding(
    area: shapely.Geometry, pts: np.ndarray, lines: BarrierLines, buffer_m: float
) -> np.ndarray:
    """Which part of ``area`` minus the buffered barriers holds each point (-1: in a buffer)."""
    near = lines.near(area, buffer_m)
    if len(near) == 0:
        return np.zeros(len(pts), dtype=np.int64)
    clip = shapely.intersection(lines.geoms[near], shapely.buffer(area, 2 * buffer_m))
    cut = shapely.unary_union(shapely.buffer(clip, buffer_m, quad_segs=4))
    parts = shapely.get_parts(shapely.difference(area, cut))
    out = np.full(len(pts), -1, dtype=np.int64)
    if len(parts) == 0:
        return out
    # each part (prepared once) finds the points it covers; the few left (a rounding off an
    # edge) take the parts within a micrometre
    part_i, p_i = shapely.STRtree(pts).query(parts, predicate="intersects")
    rest = np.setdiff1d(np.arange(len(pts)), p_i)
    if len(rest):
        q, r = shapely.STRtree(parts).query(pts[rest], predicate="dwithin", distance=1e-6)
        p_i, part_i = np.concatenate([p_i, rest[q]]), np.concatenate([part_i, r])
    order = np.lexsort((part_i, p_i))
    first = np.unique(p_i[order], return_index=True)[1]
    out[p_i[order][first]] = part_i[order][first]
    return out


def _assigned(doors: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    tid = doors[schema.TURF_ID]
    return doors[tid.notna().to_numpy()]


def _by_turf(d: pd.DataFrame) -> dict[str, np.ndarray]:
    groups = d.groupby(d[schema.TURF_ID].astype(str), sort=True).indices
    return {str(k): np.asarray(v) for k, v in groups.items()}


def barrier_spans(
    doors: gpd.GeoDataFrame, lines: BarrierLines, *, buffer_m: float = BUFFER_M,
    streets: np.ndarray | None = None, marks: gpd.GeoDataFrame | None = None,
) -> pd.DataFrame:
    """Apply the barrier rule to every turf.

    Parameters
    ----------
    doors
        Doors with ``turf_id`` (missing when not in a turf) and point geometry, metric CRS.
    lines
        Barrier lines from :func:`rule_lines`.
    buffer_m
        Half-width of a barrier line.
    streets
        Street lines (the walking network's edges, same CRS), optional: where a street meets
        a separating barrier line (an at-grade crossing, a footbridge, a level crossing, an
        underpass), a volunteer can cross.
    marks
        Marked crossing places, optional: ``kind`` (a key of :data:`MARK_RANK`) and a Point
        geometry, same CRS (the street network's ``crossings`` layer).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``turf_id``: ``sides`` (hull parts holding doors), ``spans`` (sides >= 2),
        ``cross_x``/``cross_y`` (where to cross, the module docstring's crossing point; NaN
        when the turf does not span), ``cross_kind`` (the kind of a marked crossing place,
        ``street`` or ``barrier``; ``""`` when the turf does not span), ``barrier`` (the label
        of the line crossed) and ``cross_on`` (its name, else its label).
    """
    d = _assigned(doors)
    pts_all = d.geometry.to_numpy()
    street_tree = shapely.STRtree(streets) if streets is not None and len(streets) else None
    places = _Places.of(marks)
    rows = []
    for tid, idx in _by_turf(d).items():
        pts = pts_all[idx]
        hull = shapely.convex_hull(shapely.multipoints(pts))
        part = _parts_holding(hull, pts, lines, buffer_m)
        held = np.unique(part[part >= 0])
        cx = cy = math.nan
        label = kind = on = ""
        if len(held) >= 2:
            cx, cy, line, kind = _crossing(hull, pts, lines, buffer_m, (street_tree, streets),
                                           places)
            label, on = str(lines.labels[line]), lines.name(line)
        rows.append((tid, len(held), len(held) >= 2, cx, cy, kind, label, on))
    out = pd.DataFrame(rows, columns=[schema.TURF_ID, "sides", "spans", "cross_x", "cross_y",
                                      "cross_kind", "barrier", "cross_on"])
    return out.set_index(schema.TURF_ID)


def crossing_label(kind: str, on: str) -> str:
    """Name a crossing point for the report: ``traffic signals on Boulevard X``."""
    return CROSSING_TEXT.get(kind, CROSSING_TEXT["barrier"]).format(on=on)


@dataclass(frozen=True)
class _Places:
    """Marked crossing places (points and kinds) with their spatial index."""

    geoms: np.ndarray
    kinds: np.ndarray
    tree: shapely.STRtree

    @staticmethod
    def of(marks: gpd.GeoDataFrame | None) -> _Places | None:
        if marks is None or len(marks) == 0:
            return None
        kinds = marks["kind"].astype(str).to_numpy(dtype=object)
        geoms = marks.geometry.to_numpy()
        ok = np.isin(kinds, list(MARK_RANK)) & (shapely.get_type_id(geoms) == 0)
        if not ok.any():
            return None
        return _Places(geoms[ok], kinds[ok], shapely.STRtree(geoms[ok]))


def _crossing(
    hull: shapely.Geometry, pts: np.ndarray, lines: BarrierLines, buffer_m: float,
    streets: tuple[shapely.STRtree | None, np.ndarray | None], places: _Places | None,
) -> tuple[float, float, int, str]:
    """Where a spanning turf should cross (x, y, line crossed, kind): see the module docstring."""
    centre = shapely.points(shapely.get_coordinates(pts).mean(axis=0))
    near = lines.near(hull, buffer_m)
    clip = shapely.intersection(lines.geoms[near], hull)
    crossing = near[~shapely.is_empty(clip)]
    if len(crossing):
        reach = shapely.buffer(hull, CROSSING_REACH_M)
        bar = shapely.intersection(lines.geoms[crossing], reach)
        found = (_marked_place(bar, reach, centre, places, buffer_m)
                 or _street_meets(bar, centre, *streets))
        if found is not None:
            x, y, j, kind = found
            return x, y, int(crossing[j]), kind
    dist = np.where(shapely.is_empty(clip), np.inf, shapely.distance(clip, centre))
    best = int(np.argmin(dist))
    at = shapely.get_coordinates(shapely.shortest_line(clip[best], centre))[0]
    return float(at[0]), float(at[1]), int(near[best]), "barrier"


def _marked_place(
    bar: np.ndarray, reach: shapely.Geometry, centre: shapely.Geometry, places: _Places | None,
    buffer_m: float,
) -> tuple[float, float, int, str] | None:
    """Return the best marked crossing place within reach on a separating line (``bar``), if any."""
    if places is None:
        return None
    within = np.sort(places.tree.query(reach, predicate="intersects"))
    if len(within) == 0:
        return None
    p_i, b_i = shapely.STRtree(bar).query(places.geoms[within], predicate="dwithin",
                                         distance=buffer_m)
    if len(p_i) == 0:
        return None
    # the line each place stands on: the nearest (then the first) of the lines it is near
    gap = np.round(shapely.distance(places.geoms[within[p_i]], bar[b_i]), 3)
    order = np.lexsort((b_i, gap, p_i))
    first = order[np.unique(p_i[order], return_index=True)[1]]
    cand, line = within[p_i[first]], b_i[first]
    rank = np.array([MARK_RANK[k] for k in places.kinds[cand]])
    dist = np.round(shapely.distance(places.geoms[cand], centre), 3)
    j = int(np.lexsort((cand, dist, rank))[0])
    at = shapely.get_coordinates(places.geoms[cand[j]])[0]
    return float(at[0]), float(at[1]), int(line[j]), str(places.kinds[cand[j]])


def _street_meets(
    bar: np.ndarray, centre: shapely.Geometry, street_tree: shapely.STRtree | None,
    streets: np.ndarray | None,
) -> tuple[float, float, int, str] | None:
    """Return where a street meets a separating line (``bar``) nearest the centre, if any."""
    if street_tree is None or streets is None:
        return None
    s_idx = street_tree.query(shapely.union_all(bar), predicate="intersects")
    if len(s_idx) == 0:
        return None
    b_i, s_i = np.meshgrid(np.arange(len(bar)), np.sort(s_idx), indexing="ij")
    meet = shapely.intersection(bar[b_i.ravel()], streets[s_i.ravel()])
    # points only: a street running along the barrier (the busy road itself) is no crossing
    ok = ~shapely.is_empty(meet) & np.isin(shapely.get_type_id(meet), (0, 4))
    if not ok.any():
        return None
    dist = shapely.distance(meet[ok], centre)
    j = int(np.lexsort((np.flatnonzero(ok), np.round(dist, 3)))[0])
    at = shapely.get_coordinates(shapely.shortest_line(meet[ok][j], centre))[0]
    return float(at[0]), float(at[1]), int(b_i.ravel()[ok][j]), "street"


def strict_pieces(doors: pd.DataFrame, edge_u: np.ndarray, edge_v: np.ndarray) -> pd.Series:
    """Count each turf's strict pieces on the street sides (see the module docstring).

    Parameters
    ----------
    doors
        Every door, with ``turf_id``, ``edge`` (-1 when not snapped), ``offset_m`` and ``side``.
        Snapped doors outside any turf block the street sides they stand on.
    edge_u, edge_v
        End node of every street edge (any hashable ids), indexed by edge number.

    Returns
    -------
    pandas.Series
        Pieces per ``turf_id``.
    """
    labels = strict_labels(doors, edge_u, edge_v)
    tid = doors[schema.TURF_ID].astype("string").fillna("").to_numpy(dtype=object)
    got = labels >= 0
    s = pd.Series(labels[got]).groupby(tid[got]).nunique().astype("int64")
    s.name = "strict_pieces"
    s.index.name = schema.TURF_ID
    return s.sort_index()


def strict_labels(doors: pd.DataFrame, edge_u: np.ndarray, edge_v: np.ndarray) -> np.ndarray:
    """Label each door with its strict piece (unique over all turfs; -1: no turf or not snapped)."""
    nodes, inv = np.unique(np.concatenate([edge_u, edge_v]).astype(str), return_inverse=True)
    n_edges = len(edge_u)
    eu, ev = inv[:n_edges], inv[n_edges:]
    n_nodes = len(nodes)
    rows = np.flatnonzero(doors["edge"].to_numpy(dtype=np.int64) >= 0)
    snapped = doors.iloc[rows]
    e = snapped["edge"].to_numpy(dtype=np.int64)
    side = snapped["side"].astype(str).to_numpy(dtype=object)
    off = snapped["offset_m"].to_numpy(dtype=float)
    tid = snapped[schema.TURF_ID].astype("string").fillna("").to_numpy(dtype=object)
    n = len(snapped)
    # doors in walking order on each side of each edge: (edge, side, offset)
    order = np.lexsort((off, side, e))
    se, ss = e[order], side[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (se[1:] != se[:-1]) | (ss[1:] != ss[:-1])
    last = np.ones(n, dtype=bool)
    last[:-1] = first[1:]
    dv = n_nodes + order
    free = np.ones(n_edges, dtype=bool)
    free[e] = False  # an edge without doors links its end nodes
    a = np.concatenate([dv[np.flatnonzero(~first) - 1], eu[se[first]], dv[last], eu[free]])
    b = np.concatenate([dv[~first], dv[first], ev[se[last]], ev[free]])
    base_keep = (a < n_nodes) & (b < n_nodes)
    m0 = sparse.coo_array((np.ones(int(base_keep.sum())), (a[base_keep], b[base_keep])),
                          shape=(n_nodes, n_nodes)).tocsr()
    _, comp = csgraph.connected_components(m0, directed=False)
    n_comp = int(comp.max()) + 1 if n_nodes else 0
    vt = np.concatenate([np.full(n_nodes, ""), tid]).astype(object)
    door_links = ~base_keep
    la, lb = a[door_links], b[door_links]
    owner = np.where(la >= n_nodes, vt[la], vt[lb])
    by_owner = pd.Series(np.arange(len(la))).groupby(owner).indices
    members = pd.Series(np.arange(n)).groupby(tid).indices
    out = np.full(len(doors), -1, dtype=np.int64)
    next_label = 0
    for t, t_rows in members.items():
        drows = np.asarray(t_rows)
        if t == "":
            continue
        links = by_owner.get(t, np.array([], dtype=np.int64))
        xa, xb = la[links], lb[links]
        ok = ((xa < n_nodes) | (vt[xa] == t)) & ((xb < n_nodes) | (vt[xb] == t))
        xa, xb = xa[ok], xb[ok]
        # vertices: node components, then this turf's doors
        local = {int(v): n_comp + i for i, v in enumerate(n_nodes + drows)}
        ma = np.array([comp[v] if v < n_nodes else local[int(v)] for v in xa], dtype=np.int64)
        mb = np.array([comp[v] if v < n_nodes else local[int(v)] for v in xb], dtype=np.int64)
        size = n_comp + len(drows)
        g = sparse.coo_array((np.ones(len(ma)), (ma, mb)), shape=(size, size)).tocsr()
        _, lab = csgraph.connected_components(g, directed=False)
        _, piece = np.unique(lab[n_comp:], return_inverse=True)
        out[rows[drows]] = next_label + piece
        next_label += int(piece.max()) + 1
    return out


def strict_bound(
    doors: pd.DataFrame, edge_u: np.ndarray, edge_v: np.ndarray, *, tolerance: float
) -> pd.DataFrame:
    """Per area: how many turfs must be in more than one strict piece, whatever the cut.

    ``doors`` as for :func:`strict_pieces`, with ``weight`` (the cut's unit; 1 per door when
    missing) and ``precinct_id`` (optional). The area's doors taken as one turf fall into strict
    pieces (another area's doors block a
    street side as much as another turf's). A piece whose weight ``N`` is no whole number of the
    area's mean turfs ``T`` within the tolerance must share a turf with another piece, so the
    area has at least one turf in several pieces (more are possible; the bound is one).

    Returns
    -------
    pandas.DataFrame
        Indexed by area: ``turfs``, ``pieces`` (the area's strict pieces), ``unplaceable``
        (pieces that are no whole number of turfs) and ``must_split`` (0 or 1).
    """
    d = doors.copy()
    got = d[schema.TURF_ID].notna().to_numpy()
    area = _area_keys(d)
    turf = d[schema.TURF_ID].astype("string").fillna("").to_numpy(dtype=object)
    one_turf = area.astype(object)
    one_turf[~got] = None
    d[schema.TURF_ID] = pd.array(one_turf, dtype="string")
    labels = strict_labels(d, edge_u, edge_v)
    w = (pd.to_numeric(d["weight"], errors="coerce").fillna(1.0).to_numpy(dtype=float)
         if "weight" in d else np.ones(len(d)))
    out = []
    for key, a_rows in pd.Series(np.arange(len(d))).groupby(area, sort=True).indices.items():
        rows = np.asarray(a_rows)
        idx = rows[got[rows]]
        if len(idx) == 0:
            continue
        k = len(set(turf[idx].tolist()))
        target = float(w[idx].sum()) / k
        piece_w = pd.Series(w[idx]).groupby(labels[idx]).sum()
        bad = sum(not _placeable(float(x), target, tolerance) for x in piece_w.to_numpy())
        out.append((key, k, len(piece_w), bad, int(bad > 0)))
    return pd.DataFrame(out, columns=["area", "turfs", "pieces", "unplaceable", "must_split"]
                        ).set_index("area")


def hull_polsby_popper(doors: gpd.GeoDataFrame) -> pd.Series:
    """Polsby-Popper ``4 pi A / P**2`` of each turf's door hull (NaN without area)."""
    d = _assigned(doors)
    pts = d.geometry.to_numpy()
    groups = _by_turf(d)
    hulls = np.array([shapely.convex_hull(shapely.multipoints(pts[i])) for i in groups.values()],
                     dtype=object)
    area = shapely.area(hulls) if len(hulls) else np.array([])
    perim = shapely.length(shapely.boundary(hulls)) if len(hulls) else np.array([])
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(area > 0, 4 * math.pi * area / perim**2, np.nan)
    s = pd.Series(pp, index=pd.Index(list(groups), name=schema.TURF_ID), name="polsby_popper")
    return s


def hull_overlap(doors: gpd.GeoDataFrame) -> tuple[pd.DataFrame, float]:
    """Share of door-hull area claimed by two or more turfs of the same precinct.

    Returns
    -------
    per_precinct : pandas.DataFrame
        ``hull_m2`` (sum of the turfs' hull areas), ``union_m2`` and ``overlap``.
    overall : float
        ``(sum hull_m2 - sum union_m2) / sum hull_m2`` (0 when no hull has an area).
    """
    d = _assigned(doors)
    pts = d.geometry.to_numpy()
    area_key = _area_keys(d)
    rows = []
    for key, idx in pd.Series(np.arange(len(d))).groupby(area_key, sort=True).indices.items():
        sub = d.iloc[idx]
        hulls = [shapely.convex_hull(shapely.multipoints(pts[idx][i]))
                 for i in _by_turf(sub).values()]
        total = float(np.sum(shapely.area(hulls)))
        union = float(shapely.area(shapely.unary_union(hulls)))
        rows.append((key, total, union, (total - union) / total if total > 0 else 0.0))
    per = pd.DataFrame(rows, columns=["area", "hull_m2", "union_m2", "overlap"]).set_index("area")
    tot = float(per["hull_m2"].sum())
    overall = (tot - float(per["union_m2"].sum())) / tot if tot > 0 else 0.0
    return per, overall


def _area_keys(d: pd.DataFrame) -> np.ndarray:
    if schema.PRECINCT_ID in d:
        return d[schema.PRECINCT_ID].astype("string").fillna("all").to_numpy(dtype=object)
    return np.full(len(d), "all", dtype=object)


def precinct_sides(
    doors: gpd.GeoDataFrame,
    lines: BarrierLines,
    *,
    tolerance: float,
    precincts: gpd.GeoDataFrame | None = None,
    buffer_m: float = BUFFER_M,
) -> tuple[pd.DataFrame, pd.Series]:
    """Cut every precinct into barrier sides and say which cannot hold whole turfs.

    Parameters
    ----------
    doors
        Doors with ``turf_id``, ``precinct_id`` (optional) and ``weight`` (the cut's unit; doors
        count 1 when absent), metric CRS.
    lines
        Barrier lines.
    tolerance
        The cut's balance tolerance.
    precincts
        Precinct polygons indexed by ``precinct_id`` (same CRS); without them each area is the
        hull of its doors buffered by :data:`NO_PRECINCT_BUFFER_M`.
    buffer_m
        Half-width of a barrier line.

    Returns
    -------
    sides : pandas.DataFrame
        One row per side holding doors: ``area``, ``side``, ``weight``, ``doors``, ``target``,
        ``placeable``.
    door_side : pandas.Series
        ``"area/side"`` key of each assigned door (index as ``doors``; doors on a barrier take the
        nearest side).
    """
    d = _assigned(doors)
    w = (pd.to_numeric(d["weight"], errors="coerce").fillna(1.0).to_numpy(dtype=float)
         if "weight" in d else np.ones(len(d)))
    key = _area_keys(d)
    pts = d.geometry.to_numpy()
    polys = {}
    if precincts is not None and len(precincts):
        polys = dict(zip(precincts.index.astype(str), precincts.geometry.to_numpy(), strict=True))
    tid = d[schema.TURF_ID].astype(str).to_numpy(dtype=object)
    rows = []
    door_side = np.full(len(d), "", dtype=object)
    for a, idx in pd.Series(np.arange(len(d))).groupby(key, sort=True).indices.items():
        poly = polys.get(a)
        hull = shapely.buffer(shapely.convex_hull(shapely.multipoints(pts[idx])),
                              NO_PRECINCT_BUFFER_M)
        area = hull if poly is None else shapely.union(poly, hull) if not shapely.covers(
            poly, shapely.multipoints(pts[idx])) else poly
        part = _parts_holding(area, pts[idx], lines, buffer_m)
        part = _nearest_part(part, pts[idx])
        k = len(np.unique(tid[idx]))
        target = float(w[idx].sum()) / k
        for p in np.unique(part):
            sel = part == p
            n_w = float(w[idx][sel].sum())
            rows.append((a, int(p), n_w, int(sel.sum()), target,
                         _placeable(n_w, target, tolerance)))
        door_side[idx] = [f"{a}/{p}" for p in part]
    sides = pd.DataFrame(rows, columns=["area", "side", "weight", "doors", "target", "placeable"])
    return sides, pd.Series(door_side, index=d.index, name="side_key")


def _nearest_part(part: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Give doors standing in a barrier's buffer the part of their nearest placed door."""
    lost = np.flatnonzero(part < 0)
    placed = np.flatnonzero(part >= 0)
    if len(lost) == 0:
        return part
    if len(placed) == 0:
        return np.zeros(len(part), dtype=np.int64)
    xy = shapely.get_coordinates(pts)
    d2 = ((xy[lost, None, :] - xy[None, placed, :]) ** 2).sum(axis=2)
    out = part.copy()
    out[lost] = part[placed[np.argmin(d2, axis=1)]]
    return out


def _placeable(weight: float, target: float, tol: float) -> bool:
    """Whether ``weight`` is a whole number of turfs of mean ``target`` within ``tol``."""
    if weight <= 0 or target <= 0:
        return True
    lo = math.ceil(weight / ((1 + tol) * target) - 1e-9)
    hi = math.floor(weight / ((1 - tol) * target) + 1e-9)
    return max(lo, 1) <= hi


def explain_spans(
    spans: pd.DataFrame, sides: pd.DataFrame, door_side: pd.Series, doors: pd.DataFrame,
    unit: str = "doors",
) -> pd.DataFrame:
    """Attach to each spanning turf its reason, and say per area whether the bound holds.

    Parameters
    ----------
    spans
        From :func:`barrier_spans`.
    sides, door_side
        From :func:`precinct_sides`.
    doors
        The doors (for the turfs' areas).
    unit
        Word for the cut's unit in the reasons (``doors``, ``households``, ``minutes``).

    Returns
    -------
    pandas.DataFrame
        ``spans`` with ``area``, ``unavoidable`` (holds doors of an unplaceable side) and
        ``why`` added.
    """
    d = _assigned(doors)
    keys = pd.Series(door_side.reindex(d.index).to_numpy(), index=d[schema.TURF_ID].astype(str))
    side_idx = sides.assign(key=sides["area"].astype(str) + "/" + sides["side"].astype(str))
    side_idx = side_idx.set_index("key")
    area_of = pd.Series(_area_keys(d), index=d[schema.TURF_ID].astype(str))
    area_of = area_of[~area_of.index.duplicated()]
    out = spans.copy()
    out["area"] = area_of.reindex(out.index).to_numpy()
    unavoidable = np.zeros(len(out), dtype=bool)
    why = np.full(len(out), "", dtype=object)
    for i, (tid, row) in enumerate(out.iterrows()):
        if not row["spans"]:
            continue
        held = side_idx.reindex(np.unique(keys.loc[[str(tid)]].to_numpy().astype(str)))
        bad = held[~held["placeable"].fillna(True).astype(bool)]
        where = f" ({row['barrier']})" if row["barrier"] else ""
        if len(bad):
            s = bad.iloc[0]
            unavoidable[i] = True
            why[i] = (f"unavoidable: side holds {s['weight']:.0f} {unit}, "
                      f"target {s['target']:.0f}{where}")
        else:
            why[i] = f"avoidable: every side it touches holds whole turfs{where}"
    out["unavoidable"] = unavoidable
    out["why"] = why
    return out
