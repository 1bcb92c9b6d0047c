"""Balance turfs on their routed minutes: move street sides between neighbours, re-route, repeat.

The cutter balances an estimate made before routing (``docs/turf-cutting.md``); the routes then
give every turf the minutes a volunteer will walk. This pass, run in minutes mode after the first
routing, evens those out within each precinct (``docs/turf-cutting.md``, *Balance on routed
minutes*):

1. a precinct's *routed target* is its turfs' mean routed minutes (moving doors between its
   turfs keeps their total, so that is the size a turf can reach);
2. each round, every turf off that target by more than the tolerance (worst first) is paired
   with one of the :data:`PARTNERS` nearest turfs of its precinct that lies on the other side of
   it (the furthest first); from the heavier turf of the pair a *unit* moves to the lighter: a
   run of doors at one end of one of its street sides (a chain), the whole side, and with it
   any dead-end branch that would otherwise be cut off; its size brings the heavier turf within
   half the tolerance above the target as far as the lighter one stays within half the
   tolerance below it, read on the cutter's per-door estimate scaled by the heavier turf's
   routed-over-estimate ratio;
3. a unit is allowed only when neither turf gets more pieces on the street network (the
   report's walking rule, and the strict rule that never walks along a street carrying another
   turf's doors) and every door of the unit is on a barrier side (the cutter's *region*) that the
   receiving turf already holds: no move adds a barrier crossing;
4. the two turfs are routed again (only the turfs touched: all giving turfs of a round in one
   call to the routing processes, then the receiving turfs of the moves that can still help);
   the move is kept when it lowers ``1000 * excess + deviation**2`` of the pair (the cutter's
   repair objective, on routed minutes), else it is undone and the next unit is tried;
5. rounds repeat while a move is proposed, at most ``TurfParams.rebalance_rounds`` times; a
   turf whose moves the routes refused :data:`MAX_FAILS` times is no longer proposed (a merge of
   far parts that no street side can fix).

Everything is ordered by turf and door ids, so the result is the same for the same inputs and
seed, with 1 or N routing processes (each turf is routed on its own, with LKH's fixed seed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from knockin_geo import schema
from knockin_geo.routing import RouteParams, route_turfs
from knockin_geo.streets import StreetNetwork
from knockin_geo.turfs import TurfParams, turf_footprints

logger = logging.getLogger(__name__)

#: Streets farther than this from a precinct's doors are not used to link its turfs' doors.
MARGIN_M = 300.0
#: Nearest turfs (by door centroid) tried as partners of a turf off its target.
PARTNERS = 6
#: Link kinds of an area's graph: walked by both rules, by the pass-through rule, by the strict.
BOTH, PASS_ONLY, STRICT_ONLY = 0, 1, 2
#: Objective weight of the excess over the tolerance (as in the cutter's balance repair).
EXCESS_WEIGHT = 1000.0
#: A move aims both turfs of a pair at most this share of the tolerance away from the target.
HALF_ROOM = 0.5
#: Moves of a turf that the routes refused before it is no longer proposed.
MAX_FAILS = 8


@dataclass(frozen=True)
class Rebalanced:
    """Result of :func:`rebalance_routed`.

    Attributes
    ----------
    labels
        New ``turf_id`` per door of the input frame (missing where it was missing).
    routes, seq
        Routes and walk order, with the touched turfs routed again.
    moves
        Moves kept, ``(from turf, to turf, doors)``, in the order they were made.
    rounds
        Rounds run.
    """

    labels: pd.Series
    routes: gpd.GeoDataFrame
    seq: pd.Series
    moves: list[tuple[str, str, int]] = field(default_factory=list)
    rounds: int = 0


@dataclass
class _Area:
    """One precinct's doors and the street graph that links them (local vertex numbering).

    Vertices ``0..n_nodes-1`` are street nodes, then the area's doors in ``doors`` order.
    ``a, b`` are links; ``kind`` says which rule walks them: :data:`BOTH` (streets without any
    door), :data:`PASS_ONLY` (the report's pass-through rule: the cutter's chains, streets with
    a side free of assigned doors) or :data:`STRICT_ONLY` (each street side on its own, never
    past a door that is not the turf's).
    """

    doors: np.ndarray
    n_nodes: int
    a: np.ndarray
    b: np.ndarray
    kind: np.ndarray
    node_xy: np.ndarray

    def around(self, member: np.ndarray, door_xy: np.ndarray) -> _Area:
        """Return the graph of the doors in ``member`` and the streets near them only."""
        lo, hi = door_xy[member].min(axis=0) - MARGIN_M, door_xy[member].max(axis=0) + MARGIN_M
        keep = np.concatenate([((self.node_xy >= lo) & (self.node_xy <= hi)).all(axis=1),
                               member])
        door_link = (self.a >= self.n_nodes) & keep[self.a] & (self.b < self.n_nodes)
        keep[self.b[door_link]] = True
        new_id = np.cumsum(keep) - 1
        link = keep[self.a] & keep[self.b]
        n_nodes = int(keep[: self.n_nodes].sum())
        return _Area(self.doors[member], n_nodes, new_id[self.a[link]], new_id[self.b[link]],
                     self.kind[link], self.node_xy[keep[: self.n_nodes]])

    def pieces(self, member: np.ndarray, *, strict: bool) -> int:
        """Count the connected pieces of the doors where ``member`` (over ``doors``) is True."""
        if not member.any():
            return 0
        allowed = np.concatenate([np.ones(self.n_nodes, dtype=bool), member])
        usable = self.kind != (PASS_ONLY if strict else STRICT_ONLY)
        keep = allowed[self.a] & allowed[self.b] & usable
        n = self.n_nodes + len(self.doors)
        m = sparse.coo_array((np.ones(int(keep.sum())), (self.a[keep], self.b[keep])),
                             shape=(n, n))
        _, comp = csgraph.connected_components(m.tocsr(), directed=False)
        return len(np.unique(comp[self.n_nodes:][member]))

    def reach(self, member: np.ndarray) -> np.ndarray:
        """Return the vertices in the pieces (pass-through rule) that hold ``member``'s doors."""
        comp = self._components(member)
        return np.isin(comp, comp[self.n_nodes:][member])

    def touches(self, run: np.ndarray, reach: np.ndarray) -> bool:
        """Return whether a door of ``run`` (local door indices) links to a vertex of ``reach``."""
        v = np.zeros(self.n_nodes + len(self.doors), dtype=bool)
        v[self.n_nodes + run] = True
        return bool((v[self.a] & reach[self.b]).any() or (v[self.b] & reach[self.a]).any())

    def _components(self, member: np.ndarray) -> np.ndarray:
        allowed = np.concatenate([np.ones(self.n_nodes, dtype=bool), member])
        keep = allowed[self.a] & allowed[self.b] & (self.kind != STRICT_ONLY)
        n = self.n_nodes + len(self.doors)
        m = sparse.coo_array((np.ones(int(keep.sum())), (self.a[keep], self.b[keep])),
                             shape=(n, n))
        return csgraph.connected_components(m.tocsr(), directed=False)[1]

    def split(self, member: np.ndarray) -> np.ndarray:
        """Return each door's piece (pass-through rule) among the doors in ``member``."""
        return self._components(member)[self.n_nodes:]


@dataclass
class _State:
    """Door arrays of the assigned doors (positions ``0..n-1``) and the routed minutes per turf."""

    lab: np.ndarray
    weight: np.ndarray
    region: np.ndarray
    chain: np.ndarray
    offset: np.ndarray
    xy: np.ndarray
    turf_names: np.ndarray
    routed: np.ndarray
    tried: set[tuple[int, int, tuple[int, ...]]] = field(default_factory=set)
    failed: dict[int, int] = field(default_factory=dict)


def rebalance_routed(
    doors: gpd.GeoDataFrame,
    routes: gpd.GeoDataFrame,
    seq: pd.Series,
    network: StreetNetwork,
    route_params: RouteParams,
    *,
    tolerance: float,
    rounds: int,
    by_precinct: bool = True,
    workers: int | None = None,
) -> Rebalanced:
    """Even out routed minutes between neighbouring turfs of each precinct.

    Parameters
    ----------
    doors
        Cut doors (``turf_id``, ``precinct_id``, ``edge``, ``offset_m``, ``side``, ``chain``,
        ``region``, ``weight`` = the cutter's per-door minutes), metric CRS.
    routes, seq
        The first routing (:func:`knockin_geo.routing.route_turfs`) of those doors.
    network
        The street network the doors were snapped to.
    route_params
        The parameters the routes were made with (the touched turfs are routed with them again).
    tolerance
        Largest relative deviation of a turf's routed minutes from its precinct's routed target.
    rounds
        Most rounds (0: nothing is moved).
    by_precinct
        Balance within each precinct (False: all turfs form one area, as cut with
        ``cross_precincts``).
    workers
        Routing processes (:func:`knockin_geo.routing.route_turfs`).

    Returns
    -------
    Rebalanced
        New labels, routes and walk order; the inputs are not modified.
    """
    lab_out = doors[schema.TURF_ID].astype("string").copy()
    routes, seq = routes.copy(), seq.copy()
    live = (doors[schema.TURF_ID].notna() & (doors["edge"].to_numpy() >= 0)).to_numpy()
    if rounds < 1 or not live.any() or len(routes) == 0:
        return Rebalanced(lab_out, routes, seq)
    d = doors[live]
    st = _state(d, routes)
    areas = _areas(doors, live, network, by_precinct=by_precinct)
    moves: list[tuple[str, str, int]] = []
    fresh: dict[str, gpd.GeoDataFrame] = {}
    done = 0
    for _ in range(rounds):
        proposals = [m for area in areas for m in _propose(area, st, tolerance)]
        if not proposals:
            break
        done += 1
        kept = _try_moves(proposals, d, st, network, route_params, fresh, seq, tolerance, workers)
        logger.debug("round %d: %d moves tried, %d kept", done, len(proposals), len(kept))
        moves.extend(kept)
    lab_out[live] = st.turf_names[st.lab]
    if fresh:
        routes = pd.concat([routes.drop(index=pd.Index(sorted(fresh), dtype="string")),
                            *(fresh[k] for k in sorted(fresh))]).sort_index()
    logger.info("rebalanced routed minutes: %d moves in %d rounds", len(moves), done)
    return Rebalanced(lab_out, routes, seq, moves, done)


def _state(d: gpd.GeoDataFrame, routes: gpd.GeoDataFrame) -> _State:
    """Return the door arrays and routed minutes of the live doors."""
    codes, names = pd.factorize(d[schema.TURF_ID].astype(str), sort=True)
    routed = routes["est_minutes"].reindex(pd.Index(names, dtype="string")).to_numpy(
        dtype=float, copy=True)
    pts = d.geometry.to_numpy()
    return _State(
        lab=codes.astype(np.int64),
        weight=d["weight"].to_numpy(dtype=float),
        region=d["region"].to_numpy(dtype=np.int64),
        chain=d["chain"].to_numpy(dtype=np.int64),
        offset=d["offset_m"].to_numpy(dtype=float),
        xy=np.column_stack([shapely.get_x(pts), shapely.get_y(pts)]),
        turf_names=np.asarray(names, dtype=object),
        routed=routed,
    )


def _areas(
    doors: gpd.GeoDataFrame, live: np.ndarray, network: StreetNetwork, *, by_precinct: bool
) -> list[_Area]:
    """Return one :class:`_Area` per precinct (or one for all doors).

    ``doors`` is every door, ``live`` marks the assigned ones (the doors moved). Every snapped
    door, assigned or not, blocks the strict rule's walk along its street side.
    """
    d = doors[live]
    nodes_xy = network.nodes[["x", "y"]].to_numpy(dtype=float)
    node_pos = pd.Index(network.nodes.index)
    edges = network.edges
    eu = node_pos.get_indexer(edges["u"].to_numpy())
    ev = node_pos.get_indexer(edges["v"].to_numpy())
    e = d["edge"].to_numpy(dtype=np.int64)
    side = d["side"].astype(str).to_numpy(dtype=object)
    left = np.bincount(e[side == "left"], minlength=len(edges)) > 0
    right = np.bincount(e[side == "right"], minlength=len(edges)) > 0
    snapped = doors["edge"].to_numpy() >= 0
    rule = np.full(len(edges), -1, dtype=np.int8)  # connector rule per edge (-1: none)
    rule[~(left & right)] = PASS_ONLY
    rule[np.bincount(doors["edge"].to_numpy()[snapped], minlength=len(edges)) == 0] = BOTH
    sides = _side_chains(doors, snapped, live)
    area = (d[schema.PRECINCT_ID].astype("string").fillna("").to_numpy(dtype=object)
            if by_precinct and schema.PRECINCT_ID in d else np.full(len(d), "", dtype=object))
    out = []
    for key in sorted(set(area.tolist())):
        rows = np.flatnonzero(area == key)
        out.append(_area(rows, d, e, (eu, ev), nodes_xy, rule, sides))
    return out


def _side_chains(
    doors: gpd.GeoDataFrame, snapped: np.ndarray, live: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every snapped door in walking order along its street side (strict rule).

    Returns the doors' live positions (-1 when not assigned), edges, and whether each is the
    first or the last of its side, and continues the previous door's side.
    """
    live_pos = np.full(len(doors), -1, dtype=np.int64)
    live_pos[live] = np.arange(int(live.sum()))
    idx = np.flatnonzero(snapped)
    e = doors["edge"].to_numpy()[idx].astype(np.int64)
    sd = doors["side"].astype(str).to_numpy(dtype=object)[idx]
    off = doors["offset_m"].to_numpy(dtype=float)[idx]
    order = np.lexsort((doors.index.to_numpy(dtype=object)[idx].astype(str), off, sd, e))
    e, sd = e[order], sd[order]
    first = np.ones(len(e), dtype=bool)
    first[1:] = (e[1:] != e[:-1]) | (sd[1:] != sd[:-1])
    last = np.ones(len(e), dtype=bool)
    last[:-1] = first[1:]
    return live_pos[idx[order]], e, first, last, ~first


def _area(
    rows: np.ndarray,
    d: gpd.GeoDataFrame,
    e: np.ndarray,
    ends: tuple[np.ndarray, np.ndarray],
    nodes_xy: np.ndarray,
    rule: np.ndarray,
    sides: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> _Area:
    """Build one precinct's local street graph (doors chained along their street sides)."""
    eu, ev = ends
    pts = d.geometry.to_numpy()[rows]
    xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])
    lo, hi = xy.min(axis=0) - MARGIN_M, xy.max(axis=0) + MARGIN_M
    local = np.flatnonzero(((nodes_xy >= lo) & (nodes_xy <= hi)).all(axis=1))
    local = np.union1d(local, np.concatenate([eu[e[rows]], ev[e[rows]]]))
    nl = len(local)
    # the report's walking rule: the cutter's chains (both sides of a quiet street together)
    chain = d["chain"].to_numpy(dtype=np.int64)[rows]
    off = d["offset_m"].to_numpy(dtype=float)[rows]
    order = np.lexsort((d.index.to_numpy(dtype=object)[rows].astype(str), off, chain))
    new = np.ones(len(rows), dtype=bool)
    new[1:] = chain[order][1:] != chain[order][:-1]
    end = np.ones(len(rows), dtype=bool)
    end[:-1] = new[1:]
    cont = np.flatnonzero(~new)
    dv = nl + order
    eo = e[rows][order]
    a_pass = np.concatenate([dv[cont - 1], dv[new], dv[end]])
    b_pass = np.concatenate([dv[cont], np.searchsorted(local, eu[eo[new]]),
                             np.searchsorted(local, ev[eo[end]])])
    # the strict rule: each street side on its own, every snapped door in the way
    a_st, b_st = _strict_links(rows, nl, local, (eu, ev), sides)
    conn = np.flatnonzero((rule >= 0) & np.isin(eu, local) & np.isin(ev, local))
    a = np.concatenate([a_pass, a_st, np.searchsorted(local, eu[conn])])
    b = np.concatenate([b_pass, b_st, np.searchsorted(local, ev[conn])])
    kind = np.concatenate([np.full(len(a_pass), PASS_ONLY, dtype=np.int8),
                           np.full(len(a_st), STRICT_ONLY, dtype=np.int8), rule[conn]])
    return _Area(rows, nl, a, b, kind, nodes_xy[local])


def _strict_links(
    rows: np.ndarray,
    nl: int,
    local: np.ndarray,
    ends: tuple[np.ndarray, np.ndarray],
    sides: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Links of the area's doors along their street sides, and to the sides' end nodes."""
    eu, ev = ends
    pos, e, first, last, cont = sides
    where = np.full(max(int(pos.max()), int(rows.max())) + 1, -1, dtype=np.int64)
    where[rows] = np.arange(len(rows))
    mine = np.where(pos >= 0, where[np.maximum(pos, 0)], -1)
    i = np.flatnonzero(cont)
    pair = i[(mine[i] >= 0) & (mine[i - 1] >= 0)]
    f = np.flatnonzero(first & (mine >= 0))
    t = np.flatnonzero(last & (mine >= 0))
    a = np.concatenate([nl + mine[pair - 1], nl + mine[f], nl + mine[t]])
    b = np.concatenate([nl + mine[pair], np.searchsorted(local, eu[e[f]]),
                        np.searchsorted(local, ev[e[t]])])
    return a, b


def _targets(area: _Area, st: _State) -> tuple[np.ndarray, float]:
    """Return the area's turfs and its routed target (their mean routed minutes)."""
    turfs = np.unique(st.lab[area.doors])
    return turfs, float(st.routed[turfs].mean())


def _dev(st: _State, t: int, target: float) -> float:
    return float((st.routed[t] - target) / target)


_Move = tuple[int, int, np.ndarray, float, int]


def _propose(area: _Area, st: _State, tol: float) -> list[_Move]:
    """Return this round's moves, ``(from, to, doors, target, turf off target)``, one per pair."""
    turfs, target = _targets(area, st)
    if len(turfs) < 2 or target <= 0:
        return []
    dev = {int(t): _dev(st, int(t), target) for t in turfs}
    bad = sorted((t for t in dev if abs(dev[t]) > tol + 1e-9 and st.failed.get(t, 0) < MAX_FAILS),
                 key=lambda t: (-abs(dev[t]), t))
    used: set[int] = set()
    out = []
    for t in bad:
        if t in used:
            continue
        for u in _partners(area, st, t, turfs, dev, used):
            src, dst = (t, u) if dev[t] > dev[u] else (u, t)
            unit = _unit(area, st, src, dst, target, tol)
            if unit is not None:
                out.append((src, dst, unit, target, t))
                used.update((t, u))
                break
    return out


def _partners(
    area: _Area, st: _State, t: int, turfs: np.ndarray, dev: dict[int, float], used: set[int]
) -> list[int]:
    """Return the nearest turfs across the target from ``t`` (furthest from it first)."""
    mine = area.doors
    cx = {int(u): st.xy[mine[st.lab[mine] == u]].mean(axis=0) for u in turfs}
    over = dev[t] > 0
    others = [int(u) for u in turfs if int(u) != t and int(u) not in used
              and (dev[int(u)] < dev[t] if over else dev[int(u)] > dev[t])]
    near = sorted(others, key=lambda u: (float(np.hypot(*(cx[u] - cx[t]))), u))[:PARTNERS]
    return sorted(near, key=lambda u: (dev[u] if over else -dev[u], u))


def _unit(
    area: _Area, st: _State, src: int, dst: int, target: float, tol: float
) -> np.ndarray | None:
    """Return the best allowed set of doors (positions) to move from ``src`` to ``dst``, or None.

    The pair needs the heavier turf brought to within half the tolerance above the target, as
    far as the lighter one stays within half the tolerance below it.
    """
    room = HALF_ROOM * tol * target
    want = min(st.routed[src] - (target - room), (target + room) - st.routed[dst])
    if want <= 0:
        want = (st.routed[src] - st.routed[dst]) / 2.0
    pair = np.isin(st.lab[area.doors], [src, dst])
    area = area.around(pair, st.xy[area.doors])
    mine = area.doors
    in_src = st.lab[mine] == src
    in_dst = st.lab[mine] == dst
    est_src = float(st.weight[mine[in_src]].sum())
    ratio = st.routed[src] / est_src if est_src > 0 else 1.0
    want_est = want / max(ratio, 1e-9)
    dst_regions = set(st.region[mine[in_dst]].tolist())
    before: dict[tuple[bool, bool], int] = {}  # (source?, strict?) -> pieces, when first needed

    def no_worse(member: np.ndarray, source: bool, strict: bool) -> bool:
        if (source, strict) not in before:
            before[(source, strict)] = area.pieces(in_src if source else in_dst, strict=strict)
        return area.pieces(member, strict=strict) <= before[(source, strict)]

    reach = area.reach(in_dst)
    for run in _runs(area, st, in_src, want_est):
        key = (src, dst, tuple(int(x) for x in mine[run]))
        if key in st.tried or not area.touches(run, reach):
            continue
        st.tried.add(key)
        moved = _with_branches(area, in_src, run)
        if moved is None or not set(st.region[mine[moved]].tolist()) <= dst_regions:
            continue
        new_src = in_src.copy()
        new_src[moved] = False
        new_dst = in_dst.copy()
        new_dst[moved] = True
        if all(no_worse(new_dst, False, s) and no_worse(new_src, True, s) for s in (False, True)):
            return mine[moved]
    return None


def _runs(area: _Area, st: _State, in_src: np.ndarray, want_est: float) -> list[np.ndarray]:
    """Return candidate units (local door indices): end runs of street sides, best first.

    From each end of each chain the source holds, the run whose estimated minutes come nearest
    ``want_est`` (at least one door), and the whole chain.
    """
    mine = area.doors
    idx = np.flatnonzero(in_src)
    chain = st.chain[mine[idx]]
    order = np.lexsort((mine[idx], st.offset[mine[idx]], chain))
    idx, chain = idx[order], chain[order]
    cands: dict[tuple[int, ...], float] = {}
    for c in np.unique(chain):
        run = idx[chain == c]
        w = st.weight[mine[run]]
        for seq_ in (run, run[::-1]):
            cum = np.cumsum(w if seq_ is run else w[::-1])
            j = int(np.argmin(np.abs(cum - want_est)))
            for size in {j + 1, len(run)}:
                part = tuple(sorted(int(x) for x in seq_[:size]))
                cands[part] = abs(float(st.weight[mine[list(part)]].sum()) - want_est)
    ranked = sorted(cands, key=lambda p: (cands[p], p))
    return [np.array(p, dtype=np.int64) for p in ranked]


def _with_branches(area: _Area, in_src: np.ndarray, run: np.ndarray) -> np.ndarray | None:
    """Return the run plus the source's doors it would cut off (a dead-end branch behind it).

    None when the run is the whole source turf, or leaves it without a main piece.
    """
    rest = in_src.copy()
    rest[run] = False
    if not rest.any():
        return None
    comp = area.split(rest)
    labels, first = np.unique(comp[rest], return_index=True)
    if len(labels) == 1:
        return run
    sizes = np.bincount(np.searchsorted(labels, comp[rest]))
    main = labels[np.lexsort((first, -sizes))[0]]
    gone = np.flatnonzero(rest & (comp != main))
    return np.union1d(run, gone)


def _objective(devs: np.ndarray, tol: float) -> float:
    return float(EXCESS_WEIGHT * np.maximum(np.abs(devs) - tol, 0).sum() + (devs**2).sum())


def _route(
    turfs: list[int], d: gpd.GeoDataFrame, st: _State, network: StreetNetwork,
    route_params: RouteParams, workers: int | None,
) -> tuple[gpd.GeoDataFrame, pd.Series, np.ndarray]:
    """Route the given turfs as the labels stand; return routes, walk order, routed minutes."""
    rows = np.flatnonzero(np.isin(st.lab, turfs))
    sub = d.iloc[rows].copy()
    sub[schema.TURF_ID] = pd.array(st.turf_names[st.lab[rows]].astype(str), dtype="string")
    routes, seq = route_turfs(sub, network, route_params, workers=workers)
    names = pd.Index(st.turf_names[turfs].astype(str), dtype="string")
    return routes, seq, routes["est_minutes"].reindex(names).to_numpy(dtype=float)


def _try_moves(
    proposals: list[_Move],
    d: gpd.GeoDataFrame,
    st: _State,
    network: StreetNetwork,
    route_params: RouteParams,
    fresh: dict[str, gpd.GeoDataFrame],
    seq: pd.Series,
    tol: float,
    workers: int | None,
) -> list[tuple[str, str, int]]:
    """Apply the proposals, route the turfs touched, keep the moves that help.

    The turfs that give doors are routed first: a move whose pair could not improve even if
    the receiving turf reached its best (its routed minutes never fall when it gains doors) is
    undone without routing that turf. The new route of every turf a kept move touched goes to
    ``fresh``; its walk order to ``seq``.
    """
    for _src, dst, doors, _, _ in proposals:
        st.lab[doors] = dst
    src_routes, src_seq, src_min = _route([p[0] for p in proposals], d, st, network,
                                          route_params, workers)
    alive = []
    for i, (src, dst, doors, target, off) in enumerate(proposals):
        dev_dst = (st.routed[dst] - target) / target
        best = np.array([(src_min[i] - target) / target, max(dev_dst, 0.0)])
        devs_old = (st.routed[[src, dst]] - target) / target
        if _objective(best, tol) < _objective(devs_old, tol) - 1e-12:
            alive.append(i)
        else:
            st.lab[doors] = src
            st.failed[off] = st.failed.get(off, 0) + 1
    if not alive:
        return []
    dst_routes, dst_seq, dst_min = _route([proposals[i][1] for i in alive], d, st, network,
                                          route_params, workers)
    kept = []
    for j, i in enumerate(alive):
        src, dst, doors, target, off = proposals[i]
        pair = [src, dst]
        after = np.array([src_min[i], dst_min[j]])
        if _objective((after - target) / target, tol) < _objective(
                (st.routed[pair] - target) / target, tol) - 1e-12:
            st.routed[pair] = after
            names = st.turf_names[pair].astype(str)
            fresh[str(names[0])] = src_routes.loc[[names[0]]]
            fresh[str(names[1])] = dst_routes.loc[[names[1]]]
            for turf, order in ((src, src_seq), (dst, dst_seq)):
                members = d.index[st.lab == turf]
                seq.loc[members] = order.loc[members].to_numpy()
            kept.append((str(names[0]), str(names[1]), len(doors)))
        else:
            st.lab[doors] = src
            st.failed[off] = st.failed.get(off, 0) + 1
    return kept


def refresh_turfs(
    turfs: gpd.GeoDataFrame, doors: gpd.GeoDataFrame, changed: set[str], edge_len: np.ndarray
) -> gpd.GeoDataFrame:
    """Recount the turf table after moves (sizes, estimate, street length, sides, footprints).

    Parameters
    ----------
    turfs
        The cutter's turf table (index ``turf_id``).
    doors
        The doors with their new ``turf_id``.
    changed
        Turfs whose doors changed (their footprints are drawn again).
    edge_len
        Length of every street edge.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with ``doors``, ``households``, ``weight``, ``street_m``, ``faces`` recounted.
    """
    out = turfs.copy()
    d = doors[doors[schema.TURF_ID].notna()]
    tid = d[schema.TURF_ID].astype(str)
    hh = (d[schema.HOUSEHOLDS].to_numpy(dtype=float) if schema.HOUSEHOLDS in d
          else np.ones(len(d)))
    per_chain = d.groupby("chain")["chain"].transform("size").to_numpy(dtype=float)
    share = edge_len[d["edge"].to_numpy(dtype=np.int64)] / per_chain
    frame = pd.DataFrame({"t": tid.to_numpy(), "hh": hh, "w": d["weight"].to_numpy(dtype=float),
                          "s": share, "f": d["face"].to_numpy()})
    g = frame.groupby("t")
    idx = out.index.astype(str)
    out["doors"] = g.size().reindex(idx).to_numpy(dtype=np.int64)
    out["households"] = np.round(g["hh"].sum().reindex(idx).to_numpy()).astype(np.int64)
    out["weight"] = np.round(g["w"].sum().reindex(idx).to_numpy(), 3)
    out["street_m"] = np.round(g["s"].sum().reindex(idx).to_numpy(), 1)
    out["faces"] = g["f"].nunique().reindex(idx).to_numpy(dtype=np.int64)
    names = sorted(changed)
    if names:
        sel = tid.isin(names).to_numpy()
        codes = np.searchsorted(np.array(names, dtype=object), tid.to_numpy(dtype=object)[sel])
        geoms = turf_footprints(d[sel], codes)
        out.loc[pd.Index(names, dtype="string"), "geometry"] = gpd.GeoSeries(
            geoms, index=pd.Index(names, dtype="string"), crs=out.crs)
    return out


def routed_figures(
    turfs: gpd.GeoDataFrame, routes: gpd.GeoDataFrame, params: TurfParams
) -> gpd.GeoDataFrame:
    """Put the routes' figures on the turf table; in minutes mode, balance is read on them.

    ``walk_m``, ``route_m`` and ``est_minutes`` come from the routes; the cutter's estimate is
    kept as ``est_minutes_precut``. In minutes mode ``target`` becomes the precinct's routed
    target (its turfs' mean routed minutes) and ``deviation`` the routed minutes' deviation from
    it; the cutter's are kept as ``target_precut`` and ``deviation_precut``.
    """
    out = turfs.copy()
    out["est_minutes_precut"] = (out["weight"] if params.mode == "minutes"
                                 else out["est_minutes"]).round(1)
    out["walk_m"] = routes["walk_m"].reindex(out.index).to_numpy()
    out["est_minutes"] = routes["est_minutes"].reindex(out.index).to_numpy()
    out["route_m"] = routes["length_m"].reindex(out.index).to_numpy()
    if params.mode != "minutes":
        return out
    out["target_precut"] = out["target"]
    out["deviation_precut"] = np.round((out["weight"] - out["target"]) / out["target"], 4)
    area = out[schema.PRECINCT_ID].astype("string").fillna("")
    target = out["est_minutes"].groupby(area.to_numpy()).transform("mean")
    out["target"] = np.round(target.to_numpy(dtype=float), 3)
    out["deviation"] = np.round((out["est_minutes"] - target) / target, 4).to_numpy()
    return out
