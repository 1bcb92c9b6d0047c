"""Barriers a canvasser should not cross inside a turf, read as local sides of the streets.

A barrier is a busy road (motorway, trunk, primary and their links by default), a railway or a
river/canal, as read by :mod:`knockin_geo.streets`. Tunnels and bridges are not barriers: people
walk over a tunnel and under a bridge. A barrier separates two doors when the walk between them
crosses it, whether or not its line closes a polygon: :func:`local_sides` tells the sides apart
where the street network meets the lines (street nodes on a line, barrier roads' own edges,
crossing points inside edges), and :func:`area_sides` reads a precinct's sides geometrically.
The turf cutter keeps each turf on one side unless that side cannot hold whole turfs (it then
says so in the report). Why not faces: ``docs/turf-cutting.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
import shapely

from knockin_geo.streets import StreetNetwork

logger = logging.getLogger(__name__)

#: Road classes that are barriers by default (the two sides of such a road are different units).
BARRIER_HIGHWAYS: tuple[str, ...] = (
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
)


def barrier_lines(
    network: StreetNetwork,
    *,
    highways: tuple[str, ...] = BARRIER_HIGHWAYS,
    railways: bool = True,
    waterways: bool = True,
    bridges: bool = False,
) -> shapely.Geometry:
    """Return the barrier lines of a network as one noded (Multi)LineString.

    Parameters
    ----------
    network
        The street network with its ``barriers`` layer.
    highways
        Road classes that act as barriers. Empty to ignore roads.
    railways, waterways
        Whether railways and rivers/canals are barriers.
    bridges
        Return instead the bridge segments of the barrier roads and railways (a main road
        still has two sides where it crosses a stream on a bridge).

    Returns
    -------
    shapely.Geometry
        The union of the barrier lines (polygon barriers contribute their boundary), in the
        network CRS; an empty geometry when there are none.
    """
    bar = network.barriers
    if len(bar) == 0:
        return shapely.GeometryCollection()
    keep = np.zeros(len(bar), dtype=bool)
    kind = bar["kind"].to_numpy(dtype=object)
    subtype = bar["subtype"].to_numpy(dtype=object)
    keep |= (kind == "road") & np.isin(subtype, list(highways))
    if railways:
        keep |= kind == "railway"
    if waterways:
        keep |= kind == "waterway"
    is_bridge = bar["bridge"].to_numpy(dtype=bool)
    keep &= ~bar["tunnel"].to_numpy(dtype=bool)
    keep &= (is_bridge & (kind != "waterway")) if bridges else ~is_bridge
    geoms = bar.geometry.to_numpy()[keep]
    if len(geoms) == 0:
        return shapely.GeometryCollection()
    polys = shapely.get_type_id(geoms) >= 3  # Polygon, MultiPolygon
    geoms = np.where(polys, shapely.boundary(geoms), geoms)
    return shapely.unary_union(geoms)


#: A street node closer than this to a barrier line stands on it (its sides are told apart).
ON_LINE_M = 1.0
#: Radius of the disc around a street node within which its local sides are read.
LOCAL_R_M = 12.0
#: How far along an edge (and, for a barrier road, to which side) a node's side is probed.
PROBE_ALONG_M = 6.0
PROBE_ASIDE_M = 3.0
#: A loose barrier end this close to the street data's edge leaves the extract (it carries on).
FRAME_M = 25.0
#: How far such an end is prolonged.
EXTEND_M = 100.0
#: Side tags of a street edge's doors: both sides walked together, or one side of a barrier road.
TAG_BOTH, TAG_LEFT, TAG_RIGHT = 0, 1, 2


@dataclass(frozen=True)
class LocalSides:
    """Barriers as local sides of the street network (see ``docs/turf-cutting.md``).

    Attributes
    ----------
    on_barrier
        Per edge: the edge runs along a barrier line (a busy road's own carriageway, a quay
        on the water's edge): its left and right doors are on different sides.
    cut_ptr, cut_off, cut_xy
        CSR layout of the points where an edge crosses a barrier line away from its end nodes
        (a footbridge over a river, a street under a railway): ``cut_off[cut_ptr[e]:cut_ptr[e+1]]``
        are the offsets from ``u`` (sorted), ``cut_xy`` their coordinates.
    end_key
        ``(n_edges, 2, 3)``: the node-side id reached from edge ``e`` at its ``u`` (0) or ``v``
        (1) end, walking side tag 0 (both), 1 (left) or 2 (right). A street node away from
        barriers has one id (its position); a node on a barrier has one id per local side.
    key_node
        Street node position of every node-side id.
    """

    on_barrier: np.ndarray
    cut_ptr: np.ndarray
    cut_off: np.ndarray
    cut_xy: np.ndarray
    end_key: np.ndarray
    key_node: np.ndarray

    def n_cuts(self, edges: np.ndarray) -> np.ndarray:
        """Return the number of barrier crossings inside each of ``edges``."""
        return self.cut_ptr[edges + 1] - self.cut_ptr[edges]


def local_sides(
    network: StreetNetwork, lines: shapely.Geometry, bridges: shapely.Geometry | None = None
) -> LocalSides:
    """Tell apart the sides of every barrier line *locally*, where the street network meets it.

    A barrier separates two doors when the walk between them crosses it, whether or not the
    line closes a face: a primary road that ends, turns into a secondary road or has a gap at a
    bridge still has two sides where it runs. So instead of global faces, three local facts:

    * a street node on a barrier line is split into its local sides: the disc of
      :data:`LOCAL_R_M` around it, cut by the barrier lines, falls into parts, and each edge
      leaving the node is on the part its first metres lie in (a barrier road's own edge: on
      the part just to its left or right, for the doors on that side). Where the line ends at
      the node, the disc is one part: the volunteer walks round the end;
    * an edge running along a barrier line keeps its two sides apart;
    * an edge that crosses a barrier line between its nodes is cut there.

    Parameters
    ----------
    network
        The street network.
    lines
        Barrier lines from :func:`barrier_lines` (tunnels and bridges already left out).
    bridges
        Bridge segments of the barrier roads and railways: they keep the road's two sides apart
        at its street nodes (no gap in a main road where it crosses a stream), but a street
        passing under them is no crossing.

    Returns
    -------
    LocalSides
        Arrays over the network's edges and node-side ids.
    """
    edges = network.edges
    n_edges = len(edges)
    node_pos = pd.Index(network.nodes.index)
    eu = node_pos.get_indexer(edges["u"].to_numpy())
    ev = node_pos.get_indexer(edges["v"].to_numpy())
    n_nodes = len(node_pos)
    end_key = np.empty((n_edges, 2, 3), dtype=np.int64)
    end_key[:, 0, :] = eu[:, None]
    end_key[:, 1, :] = ev[:, None]
    key_node = np.arange(n_nodes, dtype=np.int64)
    empty = LocalSides(np.zeros(n_edges, dtype=bool), np.zeros(n_edges + 1, dtype=np.int64),
                       np.array([]), np.zeros((0, 2)), end_key, key_node)
    if lines is None or shapely.is_empty(lines) or n_edges == 0:
        return empty
    frame = shapely.box(*network.nodes.total_bounds)
    parts = _segments(_extend_at_frame(shapely.get_parts(lines), frame))
    cut_parts, cut_tree = parts, shapely.STRtree(parts)
    if bridges is not None and not shapely.is_empty(bridges):
        both = shapely.unary_union([lines, bridges])
        parts = _segments(_extend_at_frame(shapely.get_parts(both), frame))
    tree = shapely.STRtree(parts)
    geom = edges.geometry.to_numpy()
    length = shapely.length(geom)
    # an edge runs along a barrier when at least two of its quarter points lie on one (an edge
    # that merely crosses a line has one point on it at most)
    near = np.zeros(n_edges, dtype=np.int64)
    for frac in (0.25, 0.5, 0.75):
        at = shapely.line_interpolate_point(geom, frac, normalized=True)
        near[np.unique(tree.query(at, predicate="dwithin", distance=ON_LINE_M)[0])] += 1
    on_barrier = near >= 2
    cut_ptr, cut_off, cut_xy = _edge_cuts(geom, length, on_barrier, cut_parts, cut_tree)
    node_pts = network.nodes.geometry.to_numpy()
    on_node = np.unique(tree.query(node_pts, predicate="dwithin", distance=ON_LINE_M)[0])
    if len(on_node) == 0:
        return LocalSides(on_barrier, cut_ptr, cut_off, cut_xy, end_key, key_node)
    ids, key_node = _node_sides(node_pts, on_node, eu, ev, geom, length, on_barrier, parts,
                                tree, n_nodes)
    end_key = np.where(ids >= 0, ids, end_key)
    return LocalSides(on_barrier, cut_ptr, cut_off, cut_xy, end_key, key_node)


def _segments(lines: np.ndarray) -> np.ndarray:
    """Split lines into their two-point segments (small envelopes: fast, exact tree queries)."""
    lines = lines[shapely.get_type_id(lines) == 1]
    xy, idx = shapely.get_coordinates(lines, return_index=True)
    same = idx[1:] == idx[:-1]
    pairs = np.stack([xy[:-1][same], xy[1:][same]], axis=1)
    segs = np.asarray(shapely.linestrings(pairs)) if len(pairs) else np.array([], dtype=object)
    return segs[shapely.length(segs) > 0] if len(segs) else segs


def _extend_at_frame(parts: np.ndarray, frame: shapely.Geometry) -> np.ndarray:
    """Carry on the lines that leave the street data's extent (a railway leaving the extract).

    A barrier line whose loose end lies within :data:`FRAME_M` of the extent's edge (or outside
    it) continues in reality: it is prolonged straight by :data:`EXTEND_M`, so that the streets
    at the edge of the data do not lead round its end.
    """
    lines = parts[shapely.get_type_id(parts) == 1]
    if len(lines) == 0:
        return parts
    first = shapely.get_coordinates(shapely.get_point(lines, 0))
    last = shapely.get_coordinates(shapely.get_point(lines, -1))
    second = shapely.get_coordinates(shapely.get_point(lines, 1))
    before = shapely.get_coordinates(shapely.get_point(lines, -2))
    ends = np.vstack([first, last])
    toward = np.vstack([second, before])
    key = np.round(ends, 2)
    _, inv, count = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    loose = count[inv.ravel()] == 1
    edge_dist = shapely.distance(shapely.points(ends), shapely.boundary(frame))
    outside = ~shapely.contains_xy(frame, ends[:, 0], ends[:, 1])
    grow = loose & ((edge_dist <= FRAME_M) | outside)
    if not grow.any():
        return parts
    vec = ends[grow] - toward[grow]
    unit = vec / np.maximum(np.hypot(vec[:, 0], vec[:, 1]), 1e-9)[:, None]
    ext = shapely.linestrings(np.stack([ends[grow], ends[grow] + unit * EXTEND_M], axis=1))
    return np.concatenate([parts, ext])


def _edge_cuts(
    geom: np.ndarray, length: np.ndarray, on_barrier: np.ndarray, parts: np.ndarray,
    tree: shapely.STRtree,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets where edges cross barrier lines at least :data:`ON_LINE_M` from their ends."""
    e_i, l_i = tree.query(geom, predicate="intersects")
    keep = ~on_barrier[e_i]
    e_i, l_i = e_i[keep], l_i[keep]
    offs: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    if len(e_i):
        inter = shapely.intersection(geom[e_i], parts[l_i])
        pts, which = shapely.get_parts(inter, return_index=True)
        point = shapely.get_type_id(pts) == 0  # a crossing, not a stretch along the line
        pts, which = pts[point], which[point]
        e_of = e_i[which]
        off = shapely.line_locate_point(geom[e_of], pts)
        ok = (off > ON_LINE_M) & (off < length[e_of] - ON_LINE_M)
        offs.append(off[ok])
        owner.append(e_of[ok])
    off = np.concatenate(offs) if offs else np.array([])
    own = np.concatenate(owner) if owner else np.array([], dtype=np.int64)
    order = np.lexsort((off, own))
    off, own = off[order], own[order]
    # one crossing per line crossed: drop repeats closer than a metre along the same edge
    dup = np.zeros(len(off), dtype=bool)
    dup[1:] = (own[1:] == own[:-1]) & (np.diff(off) < 1.0)
    off, own = off[~dup], own[~dup]
    ptr = np.zeros(len(geom) + 1, dtype=np.int64)
    np.add.at(ptr, own + 1, 1)
    ptr = np.cumsum(ptr)
    xy = shapely.get_coordinates(shapely.line_interpolate_point(geom[own], off)) if len(
        own) else np.zeros((0, 2))
    return ptr, off, xy


def _node_sides(
    node_pts: np.ndarray,
    on_node: np.ndarray,
    eu: np.ndarray,
    ev: np.ndarray,
    geom: np.ndarray,
    length: np.ndarray,
    on_barrier: np.ndarray,
    parts: np.ndarray,
    tree: shapely.STRtree,
    n_nodes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Node-side ids of every (edge, end, tag) at a node on a barrier (-1 elsewhere)."""
    discs = shapely.buffer(node_pts[on_node], LOCAL_R_M, quad_segs=4)
    # lines are clipped a little beyond the disc so that they cross its ring (noded by the union)
    # rather than end on it (a dangle polygonize would drop)
    wider = shapely.buffer(node_pts[on_node], LOCAL_R_M + 2.0, quad_segs=4)
    d_i, l_i = tree.query(discs, predicate="intersects")
    clipped = shapely.intersection(parts[l_i], wider[d_i])
    local = np.empty(len(on_node), dtype=object)
    local[:] = None
    for d, rows in pd.Series(np.arange(len(d_i))).groupby(d_i).indices.items():
        local[cast(int, d)] = shapely.union_all(clipped[rows])
    ring = shapely.boundary(discs)
    has = np.array([g is not None for g in local])
    linework = np.where(has, shapely.union(ring, np.where(has, local, ring)), ring)
    faces, face_of = shapely.get_parts(shapely.polygonize(linework[:, None]), return_index=True)
    # probes: (edge, end, tag) for edges at a node on a barrier
    is_on = np.zeros(n_nodes, dtype=bool)
    is_on[on_node] = True
    where = np.full(n_nodes, -1, dtype=np.int64)
    where[on_node] = np.arange(len(on_node))
    rows_e, rows_end, rows_tag = [], [], []
    for end, node in ((0, eu), (1, ev)):
        sel = np.flatnonzero(is_on[node])
        for tag in (TAG_BOTH, TAG_LEFT, TAG_RIGHT):
            rows_e.append(sel)
            rows_end.append(np.full(len(sel), end))
            rows_tag.append(np.full(len(sel), tag))
    pe, pend, ptag = (np.concatenate(x) for x in (rows_e, rows_end, rows_tag))
    probes = _probes(geom[pe], length[pe], pend, ptag, on_barrier[pe])
    pnode = np.where(pend == 0, eu[pe], ev[pe])
    pdisc = where[pnode]
    p_i, f_i = shapely.STRtree(faces).query(probes, predicate="intersects")
    ok = face_of[f_i] == pdisc[p_i]
    p_i, f_i = p_i[ok], f_i[ok]
    order = np.lexsort((f_i, p_i))
    first = np.unique(p_i[order], return_index=True)[1]
    pface = np.full(len(pe), -1, dtype=np.int64)
    pface[p_i[order][first]] = f_i[order][first]
    # one id per (node, local face); a node's first face keeps the node's own id
    key = pd.DataFrame({"node": pnode, "face": pface})
    uniq = key[key["face"] >= 0].drop_duplicates().sort_values(["node", "face"])
    first_face = ~uniq["node"].duplicated().to_numpy()
    new_ids = n_nodes + np.cumsum(~first_face) - 1
    ids_u = np.where(first_face, uniq["node"].to_numpy(), new_ids)
    lookup = pd.Series(ids_u, index=pd.MultiIndex.from_frame(uniq))
    pid = lookup.reindex(pd.MultiIndex.from_frame(key)).to_numpy()
    pid = np.where(np.isnan(pid), pnode, pid).astype(np.int64)
    out = np.full((len(geom), 2, 3), -1, dtype=np.int64)
    out[pe, pend, ptag] = pid
    key_node = np.concatenate([np.arange(n_nodes), uniq["node"].to_numpy()[~first_face]])
    return out, key_node.astype(np.int64)


def _probes(
    geom: np.ndarray, length: np.ndarray, end: np.ndarray, tag: np.ndarray, aside: np.ndarray
) -> np.ndarray:
    """Points a few metres along each edge from the given end, to the tagged side if ``aside``."""
    along = np.minimum(PROBE_ALONG_M, length / 2)
    at = np.where(end == 0, along, length - along)
    step = np.minimum(1.0, length / 4)
    a = shapely.line_interpolate_point(geom, np.clip(at - step, 0, length))
    b = shapely.line_interpolate_point(geom, np.clip(at + step, 0, length))
    p = shapely.line_interpolate_point(geom, at)
    dx = shapely.get_x(b) - shapely.get_x(a)
    dy = shapely.get_y(b) - shapely.get_y(a)
    norm = np.maximum(np.hypot(dx, dy), 1e-9)
    sign = np.where(tag == TAG_LEFT, 1.0, np.where(tag == TAG_RIGHT, -1.0, 0.0)) * aside
    # the left normal of (dx, dy) is (-dy, dx)
    ox = -dy / norm * PROBE_ASIDE_M * sign
    oy = dx / norm * PROBE_ASIDE_M * sign
    return shapely.points(shapely.get_x(p) + ox, shapely.get_y(p) + oy)


#: Half-width of a barrier line when an area is cut into its sides.
SIDE_BUFFER_M = 3.0


def area_sides(area: shapely.Geometry, xy: np.ndarray, lines: shapely.Geometry) -> np.ndarray:
    """Return which side of the barriers within ``area`` each point lies on.

    The area (a precinct polygon) minus the barrier lines buffered by :data:`SIDE_BUFFER_M`
    falls into parts; a point gets the part it lies in, the nearest part when it lies outside the
    area, and -1 when it stands on a barrier (it belongs to both sides). Unlike faces, this is
    read inside the area only: a line that crosses the precinct separates its two sides even
    when it ends just outside.

    Parameters
    ----------
    area
        The area's polygon.
    xy
        ``(n, 2)`` point coordinates.
    lines
        Barrier lines (:func:`barrier_lines`).

    Returns
    -------
    numpy.ndarray
        ``int64`` part number per point, -1 on a barrier (all 0 when no barrier crosses the
        area).
    """
    out = np.zeros(len(xy), dtype=np.int64)
    if lines is None or shapely.is_empty(lines) or len(xy) == 0:
        return out
    clip = shapely.intersection(lines, shapely.buffer(area, 2 * SIDE_BUFFER_M))
    if shapely.is_empty(clip):
        return out
    cut = shapely.buffer(clip, SIDE_BUFFER_M, quad_segs=4)
    parts = shapely.get_parts(shapely.difference(area, cut))
    if len(parts) <= 1:
        return out
    # deterministic part numbers: largest first
    parts = parts[np.lexsort((shapely.get_x(shapely.centroid(parts)), -shapely.area(parts)))]
    pts = np.asarray(shapely.points(xy))
    out[:] = -2
    # points inside a part (the parts, prepared once each, are the queries)
    part_i, pt_i = shapely.STRtree(pts).query(parts, predicate="contains")
    out[pt_i] = part_i
    rest = np.flatnonzero(out == -2)
    if len(rest):
        # on a barrier: either side (a street node on the line serves both of its local sides)
        shapely.prepare(cut)
        on_line = shapely.intersects(cut, pts[rest])
        out[rest[on_line]] = -1
        far = rest[~on_line]
        if len(far):  # outside the area: the nearest part
            found, near = shapely.STRtree(parts).query_nearest(pts[far], all_matches=False)
            out[far[found]] = near
    return out
