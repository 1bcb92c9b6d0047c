"""The street-side graph of one area (a precinct, or everything): what a volunteer can walk.

Vertices are the area's doors and the *node sides* of the street network: a street node away from
barriers is one vertex, a node on a barrier line is one vertex per local side of it
(:func:`knockin_geo.barriers.local_sides`), and the point where an edge crosses a barrier line
between its nodes gives two vertices, one each side. Links:

* **strong** (walkable without crossing a barrier or passing another area's doors): along a
  *chain* (the area's doors on one segment of one edge, on one side of it when the edge runs
  along a barrier, in order of offset) and from its ends to the segment's end vertices; and every
  segment of a street with a side free of doors (a connector), per side on a barrier road;
* **weak** bridges: streets carrying other areas' doors on both sides (heavy);
* **crossing** bridges: the local sides of one street node, and the two sides of a crossing point
  inside an edge (heavier).

The connected parts of the strong links are the area's *regions*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from knockin_geo.barriers import TAG_BOTH, TAG_LEFT, TAG_RIGHT, LocalSides

#: Extra length of a link through another area's street (spanning trees avoid it).
WEAK_M = 1.0e4
#: Length of a barrier crossing link (spanning trees avoid it even more).
CROSS_M = 1.0e5


@dataclass(frozen=True)
class SideGraph:
    """An area's street-side graph (door vertices first, ``0..n_doors-1``).

    Attributes
    ----------
    n_doors, n_vert
        Door vertices and all vertices.
    a, b, length
        Strong links and their lengths (metres).
    bridges
        ``{"weak": (a, b, length), "cross": (a, b, length)}``.
    v_xy
        Vertex coordinates.
    """

    n_doors: int
    n_vert: int
    a: np.ndarray
    b: np.ndarray
    length: np.ndarray
    bridges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    v_xy: np.ndarray


@dataclass(frozen=True)
class EdgeData:
    """The street network's edges as the side graph needs them."""

    length: np.ndarray
    node_xy: np.ndarray
    sides: LocalSides


def door_segments(sides: LocalSides, edge: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Return the segment of its edge each door lies on (0 unless the edge crosses a barrier)."""
    seg = np.zeros(len(edge), dtype=np.int64)
    nc = sides.n_cuts(edge)
    for i in np.flatnonzero(nc > 0):
        lo, hi = sides.cut_ptr[edge[i]], sides.cut_ptr[edge[i] + 1]
        seg[i] = int(np.searchsorted(sides.cut_off[lo:hi], offset[i]))
    return seg


def door_tags(
    sides: LocalSides, edge: np.ndarray, side: np.ndarray, *, split: bool = False
) -> np.ndarray:
    """Return each door's side tag: both sides together, or its side of a barrier road.

    With ``split``, every street's two sides are tagged apart (a graph in which two turfs may
    share a quiet street, one side each).
    """
    tag = np.where(side == "left", TAG_LEFT, TAG_RIGHT)
    if split:
        return tag.astype(np.int64)
    return np.where(sides.on_barrier[edge], tag, TAG_BOTH).astype(np.int64)


def _seg_keys(
    ed: EdgeData, e: np.ndarray, s: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Start/end vertex keys and offsets of segments ``s`` of edges ``e`` walked on side ``t``."""
    sd = ed.sides
    ns = len(sd.key_node)
    nc = sd.n_cuts(e)
    ptr = sd.cut_ptr[e]
    pad = np.append(sd.cut_off, 0.0)
    i_start = np.clip(ptr + s - 1, 0, len(sd.cut_off))
    i_end = np.clip(ptr + s, 0, len(sd.cut_off))
    k_start = np.where(s == 0, sd.end_key[e, 0, t], ns + 2 * i_start + 1)
    k_end = np.where(s == nc, sd.end_key[e, 1, t], ns + 2 * i_end)
    o_start = np.where(s == 0, 0.0, pad[i_start])
    o_end = np.where(s == nc, ed.length[e], pad[i_end])
    return k_start, k_end, o_start, o_end


def _all_segments(ed: EdgeData, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (edge, segment, tag) of ``edges``: two tags on a barrier road, else one."""
    nseg = ed.sides.n_cuts(edges) + 1
    e = np.repeat(edges, nseg)
    first = np.repeat(np.cumsum(nseg) - nseg, nseg)
    s = np.arange(len(e)) - first
    bar = ed.sides.on_barrier[e]
    e2 = np.concatenate([e, e[bar]])
    s2 = np.concatenate([s, s[bar]])
    t2 = np.concatenate([np.where(bar, TAG_LEFT, TAG_BOTH), np.full(int(bar.sum()), TAG_RIGHT)])
    return e2, s2, t2.astype(np.int64)


def build(
    ed: EdgeData,
    edge: np.ndarray,
    seg: np.ndarray,
    tag: np.ndarray,
    offset: np.ndarray,
    order: np.ndarray,
    conn_edges: np.ndarray,
    weak_edges: np.ndarray,
    door_xy: np.ndarray,
) -> SideGraph:
    """Build an area's side graph.

    Parameters
    ----------
    ed
        Edge lengths, node coordinates and local sides.
    edge, seg, tag, offset
        Per door of the area: edge, segment, side tag and offset from ``u``.
    order
        Door order along chains (sorted by edge, segment, tag, offset).
    conn_edges, weak_edges
        Connector edges (a side free of doors) and other areas' streets the area may use.
    door_xy
        Door coordinates.
    """
    n = len(edge)
    s_edge, s_seg, s_tag, s_off = edge[order], seg[order], tag[order], offset[order]
    new_chain = np.ones(n, dtype=bool)
    new_chain[1:] = ((s_edge[1:] != s_edge[:-1]) | (s_seg[1:] != s_seg[:-1])
                     | (s_tag[1:] != s_tag[:-1]))
    end_chain = np.ones(n, dtype=bool)
    end_chain[:-1] = new_chain[1:]
    cont = np.flatnonzero(~new_chain)
    starts = np.flatnonzero(new_chain)
    ends = np.flatnonzero(end_chain)
    ks, _, os_, _ = _seg_keys(ed, s_edge[starts], s_seg[starts], s_tag[starts])
    _, ke, _, oe = _seg_keys(ed, s_edge[ends], s_seg[ends], s_tag[ends])
    ce, cs, ct = _all_segments(ed, conn_edges)
    c_start, c_end, c_os, c_oe = _seg_keys(ed, ce, cs, ct)
    we, ws, wt = _all_segments(ed, weak_edges)
    w_start, w_end, w_os, w_oe = _seg_keys(ed, we, ws, wt)
    # crossing points inside the edges the area touches: two keys each, one per side
    touched = np.unique(np.concatenate([edge, conn_edges, weak_edges]))
    sd = ed.sides
    cuts = np.concatenate([np.arange(sd.cut_ptr[e], sd.cut_ptr[e + 1])
                           for e in touched[sd.n_cuts(touched) > 0]] or [np.array([], int)])
    ns = len(sd.key_node)
    x_a, x_b = ns + 2 * cuts, ns + 2 * cuts + 1
    keys = np.concatenate([ks, ke, c_start, c_end, w_start, w_end, x_a, x_b]).astype(np.int64)
    uniq, inv = np.unique(keys, return_inverse=True)
    vid = n + inv
    cut_at = np.cumsum([len(ks), len(ke), len(c_start), len(c_end), len(w_start), len(w_end),
                        len(x_a)])
    v_s, v_e, v_cs, v_ce, v_ws, v_we, v_xa, v_xb = np.split(vid, cut_at)
    a = np.concatenate([order[cont - 1], order[starts], order[ends], v_cs])
    b = np.concatenate([order[cont], v_s, v_e, v_ce])
    length = np.concatenate([
        np.maximum(s_off[cont] - s_off[cont - 1], 0.0),
        np.maximum(s_off[starts] - os_, 0.0),
        np.maximum(oe - s_off[ends], 0.0),
        np.maximum(c_oe - c_os, 0.0),
    ])
    is_node = uniq < ns
    v_node = np.where(is_node, sd.key_node[np.minimum(uniq, ns - 1)], -1 - uniq)
    cut_xy = sd.cut_xy[np.clip((uniq - ns) // 2, 0, max(len(sd.cut_xy) - 1, 0))] if len(
        sd.cut_xy) else np.zeros((len(uniq), 2))
    v_xy = np.vstack([door_xy, np.where(is_node[:, None], ed.node_xy[np.maximum(v_node, 0)],
                                        cut_xy)])
    na, nb = _node_crossings(v_node, n)
    cross_a = np.concatenate([na, v_xa])
    cross_b = np.concatenate([nb, v_xb])
    bridges = {
        "weak": (v_ws, v_we, np.maximum(w_oe - w_os, 0.0) + WEAK_M),
        "cross": (cross_a, cross_b, np.full(len(cross_a), CROSS_M)),
    }
    return SideGraph(n, n + len(uniq), a, b, length, bridges, v_xy)


def _node_crossings(v_node: np.ndarray, n_doors: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of vertices on the same street node (its local sides): barrier crossings."""
    if len(v_node) == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    srt = np.argsort(v_node, kind="stable")
    sn = v_node[srt]
    same = np.flatnonzero(sn[1:] == sn[:-1])
    return srt[same] + n_doors, srt[same + 1] + n_doors


@dataclass(frozen=True)
class StrictChains:
    """Every snapped door on its chain, as a volunteer walks it without passing a stranger.

    A *chain* is what the cutter walks as one: the doors of one segment of one street edge in
    order of offset from ``u`` (both sides together on a quiet street, each side apart along a
    barrier road; see :func:`door_tags`). A *junction* is a set of street nodes joined by streets
    that carry no door at all (walking them passes nobody). A volunteer reaches a door from a
    junction only along the chain, past doors of their own turf: the first door touches the
    junction of the segment's start, the last one that of its end. Doors of other turfs (or
    outside the cut) block. A segment that ends at a barrier crossing ends at a junction of its
    own. Per street side this is at least as strict as the report's rule
    (:func:`knockin_geo.checks.strict_pieces`): a turf's consecutive doors on a chain are
    consecutive on each side too.

    Attributes (per door of the frame, -1 when not snapped)
    ----------
    chain, pos
        Chain number and position along it.
    chain_len, chain_ju, chain_jv
        Per chain: doors on it, and the junctions of its two ends.
    """

    chain: np.ndarray
    pos: np.ndarray
    chain_len: np.ndarray
    chain_ju: np.ndarray
    chain_jv: np.ndarray


def strict_chains(
    sides: LocalSides,
    edge: np.ndarray,
    side: np.ndarray,
    offset: np.ndarray,
    edge_u: np.ndarray,
    edge_v: np.ndarray,
    *,
    split: bool = False,
) -> StrictChains:
    """Chains and junctions of every snapped door (``edge >= 0``), in the frame's row order.

    With ``split``, each side of every street is a chain of its own (as the report's rule walks
    them: :func:`knockin_geo.checks.strict_pieces`).
    """
    n = len(edge)
    snapped = np.flatnonzero(edge >= 0)
    e = edge[snapped]
    seg = door_segments(sides, e, offset[snapped])
    lane = seg * 3 + door_tags(sides, e, side[snapped], split=split)
    order = np.lexsort((offset[snapped], lane, e))
    oe, ol, os_ = e[order], lane[order], seg[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (oe[1:] != oe[:-1]) | (ol[1:] != ol[:-1])
    cid = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    chain = np.full(n, -1, dtype=np.int64)
    pos = np.full(n, -1, dtype=np.int64)
    chain[snapped[order]] = cid
    pos[snapped[order]] = np.arange(len(order)) - starts[cid]
    chain_len = np.diff(np.append(starts, len(order)))
    nodes, inv = np.unique(np.concatenate([edge_u, edge_v]), return_inverse=True)
    n_edges = len(edge_u)
    eu, ev = inv[:n_edges], inv[n_edges:]
    free = np.ones(n_edges, dtype=bool)
    free[e] = False
    m = sparse.coo_array((np.ones(int(free.sum())), (eu[free], ev[free])),
                         shape=(len(nodes), len(nodes))).tocsr()
    n_j, junction = csgraph.connected_components(m, directed=False)
    c_edge, c_seg = oe[starts], os_[starts]
    own = n_j + 2 * np.arange(len(starts))  # junctions of their own at barrier crossings
    ju = np.where(c_seg == 0, junction[eu[c_edge]], own)
    jv = np.where(c_seg == sides.n_cuts(c_edge), junction[ev[c_edge]], own + 1)
    return StrictChains(chain, pos, chain_len, ju, jv)


def piece_counts(chains: StrictChains, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Strict pieces of each turf ``0..labels.max()`` whose doors are the frame rows ``rows``.

    A door links to the next door of its chain when both are the turf's, and the first and last
    doors of a chain to the junctions at its ends; any other door on a chain blocks. Junctions
    are counted per turf, so two turfs meeting at one do not join.
    """
    k = int(labels.max()) + 1 if len(labels) else 0
    c, p = chains.chain[rows], chains.pos[rows]
    order = np.lexsort((p, c))
    sc, sp, sl = c[order], p[order], labels[order]
    nxt = (sc[1:] == sc[:-1]) & (sp[1:] == sp[:-1] + 1) & (sl[1:] == sl[:-1])
    n = len(rows)
    first, last = sp == 0, sp == chains.chain_len[sc] - 1
    j_lab = np.concatenate([sl[first], sl[last]])
    j_id = np.concatenate([chains.chain_ju[sc[first]], chains.chain_jv[sc[last]]])
    _, j_vert = np.unique(np.column_stack([j_lab, j_id]), axis=0, return_inverse=True)
    j_vert = j_vert.ravel() + n
    a = np.concatenate([np.flatnonzero(nxt), np.flatnonzero(first), np.flatnonzero(last)])
    b = np.concatenate([np.flatnonzero(nxt) + 1, j_vert])
    size = n + (int(j_vert.max()) - n + 1 if len(j_vert) else 0)
    m = sparse.coo_array((np.ones(len(a)), (a, b)), shape=(size, size)).tocsr()
    comp = csgraph.connected_components(m, directed=False)[1][:n]
    pieces = np.unique(np.column_stack([sl, comp]), axis=0)[:, 0]
    return np.bincount(pieces, minlength=k)
