"""Snap doors onto the nearest walkable street side.

Each usable door (status ``ok``) is attached to the nearest edge of the walking network, with the
position along that edge (``offset_m``, from the edge's ``u`` end), the side of the street
(``left``/``right`` looking from ``u`` to ``v``) and the distance. A door farther than
``max_snap_m`` from every street keeps its row with status ``no_street_nearby``.

Doors do not snap across a barrier: when the straight line from a door to its nearest street
crosses a railway, a river or a busy road (see :mod:`knockin_geo.barriers`), the nearest street
reachable without crossing one is taken instead, if there is one within ``max_snap_m``.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from knockin_geo import schema
from knockin_geo._errors import CRSError
from knockin_geo.streets import StreetNetwork

logger = logging.getLogger(__name__)

#: Default largest door-to-street distance, in metres.
MAX_SNAP_M = 100.0
#: Default smallest street network piece (total length, metres) that doors may snap to.
MIN_COMPONENT_M = 250.0
#: Default extra distance a door may snap to reach a street of its own name.
NAME_SLACK_M = 40.0

SNAP_COLUMNS = ("edge", "offset_m", "side", "snap_dist_m", "snap_x", "snap_y")


def snap_doors(
    doors: gpd.GeoDataFrame,
    network: StreetNetwork,
    *,
    max_snap_m: float = MAX_SNAP_M,
    barrier_lines: shapely.Geometry | None = None,
    min_component_m: float = MIN_COMPONENT_M,
    name_slack_m: float = NAME_SLACK_M,
) -> gpd.GeoDataFrame:
    """Attach every usable door to the nearest walkable street side.

    Parameters
    ----------
    doors
        Addresses indexed by ``address_id`` with a ``status`` column, in the network's CRS.
    network
        The walking network.
    max_snap_m
        Doors farther than this from every street get status ``no_street_nearby``.
    barrier_lines
        Optional barrier lines (a shapely geometry in the network CRS). A door does not snap across
        them when a street on its own side is within ``max_snap_m``.
    min_component_m
        Streets in a network piece shorter than this in total (an isolated stair, a footway
        fragment cut by the extract's edge) are ignored: a door snapped there could not be
        reached from the rest of the turf. The largest piece is always kept.
    name_slack_m
        A door whose ``street`` matches the name of a street at most this much farther than the
        nearest one snaps to its own street (a corner house of "Rue A" is canvassed in Rue A).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``doors`` with columns ``edge`` (int, -1 when not snapped), ``offset_m``,
        ``side`` (``left``/``right``/""), ``snap_dist_m``, ``snap_x``, ``snap_y``; ``status``
        updated. The input is not modified.
    """
    if doors.crs is None or not network.crs.equals(doors.crs):
        msg = (
            f"doors are in {doors.crs} but the network is in {network.crs.to_string()}: "
            "reproject them first (knockin_geo.crs.to_crs)"
        )
        raise CRSError(msg)
    out = doors.copy()
    snap = _unsnapped(len(out))
    status = out[schema.STATUS].to_numpy(dtype=object)
    geoms = out.geometry.to_numpy()
    usable = (status == schema.STATUS_OK) & ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    idx = np.flatnonzero(usable)
    eligible = _eligible_edges(network, min_component_m)
    lines = network.edges.geometry.to_numpy()[eligible]
    if len(idx) and len(lines):
        door_names = (
            normalize_name(out[schema.STREET].to_numpy(dtype=object)[idx])
            if schema.STREET in out.columns
            else np.full(len(idx), "", dtype=object)
        )
        edge_names = normalize_name(network.edges["name"].to_numpy(dtype=object)[eligible])
        found = _snap_usable(
            geoms[idx], idx, lines, eligible, door_names, edge_names, barrier_lines,
            max_snap_m, name_slack_m, snap,
        )
        far = idx[found < 0]
        status[far] = "no_street_nearby"
        if len(far):
            logger.info("%d doors have no walkable street within %.0f m", len(far), max_snap_m)
    out["edge"] = snap["edge"]
    out["offset_m"] = snap["offset_m"]
    out["side"] = pd.array(snap["side"], dtype="string")
    out["snap_dist_m"] = snap["snap_dist_m"]
    out["snap_x"] = snap["snap_x"]
    out["snap_y"] = snap["snap_y"]
    out[schema.STATUS] = status
    return out


def _unsnapped(n: int) -> dict[str, np.ndarray]:
    """Return the snap columns of ``n`` doors not snapped (yet): no edge, no side, NaN."""
    return {
        "edge": np.full(n, -1, dtype=np.int64),
        "offset_m": np.full(n, np.nan),
        "side": np.full(n, "", dtype=object),
        "snap_dist_m": np.full(n, np.nan),
        "snap_x": np.full(n, np.nan),
        "snap_y": np.full(n, np.nan),
    }


def _snap_usable(
    pts: np.ndarray,
    idx: np.ndarray,
    lines: np.ndarray,
    eligible: np.ndarray,
    door_names: np.ndarray,
    edge_names: np.ndarray,
    barrier_lines: shapely.Geometry | None,
    max_snap_m: float,
    name_slack_m: float,
    snap: dict[str, np.ndarray],
) -> np.ndarray:
    """Snap the usable doors (rows ``idx``) into the ``snap`` columns; return the chosen lines.

    -1 marks a door with no street within ``max_snap_m``.
    """
    tree = shapely.STRtree(lines)
    found, fdist = _choose_edges(
        pts, lines, tree, door_names, edge_names, barrier_lines, max_snap_m, name_slack_m
    )
    ok = found >= 0
    sel = idx[ok]
    line = lines[found[ok]]
    p = pts[ok]
    off = shapely.line_locate_point(line, p)
    proj = shapely.line_interpolate_point(line, off)
    snap["edge"][sel] = eligible[found[ok]]
    snap["offset_m"][sel] = off
    snap["snap_dist_m"][sel] = fdist[ok]
    snap["snap_x"][sel] = shapely.get_x(proj)
    snap["snap_y"][sel] = shapely.get_y(proj)
    snap["side"][sel] = _side_of(line, off, p)
    return found


def _eligible_edges(network: StreetNetwork, min_component_m: float) -> np.ndarray:
    """Edge numbers in network pieces of at least ``min_component_m`` (and the largest)."""
    comp = network.component_labels()
    edges = network.edges
    edge_comp = comp.reindex(edges["u"].to_numpy()).to_numpy()
    total = pd.Series(edges["length"].to_numpy()).groupby(edge_comp).sum()
    keep = set(total.index[total.to_numpy() >= min_component_m].tolist()) | {0}
    return np.flatnonzero(np.isin(edge_comp, list(keep)))


def _side_of(lines: np.ndarray, offset: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Return ``left``/``right`` for points relative to lines at the given offsets."""
    length = shapely.length(lines)
    step = np.minimum(1.0, length / 2)
    a = shapely.line_interpolate_point(lines, np.clip(offset - step, 0, length))
    b = shapely.line_interpolate_point(lines, np.clip(offset + step, 0, length))
    ax, ay = shapely.get_x(a), shapely.get_y(a)
    dx, dy = shapely.get_x(b) - ax, shapely.get_y(b) - ay
    px, py = shapely.get_x(points) - ax, shapely.get_y(points) - ay
    cross = dx * py - dy * px
    return np.where(cross >= 0, "left", "right").astype(object)


def _choose_edges(
    pts: np.ndarray,
    lines: np.ndarray,
    tree: shapely.STRtree,
    door_names: np.ndarray,
    edge_names: np.ndarray,
    barrier_lines: shapely.Geometry | None,
    max_snap_m: float,
    name_slack_m: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick each door's street among the candidates within ``max_snap_m``.

    Order of preference: a street reached without crossing a barrier; then the door's own street
    (same normalised name) if it is at most ``name_slack_m`` farther than the nearest; then the
    nearest (ties: the lowest edge number).
    """
    found = np.full(len(pts), -1, dtype=np.int64)
    fdist = np.full(len(pts), np.nan)
    pi, li = tree.query(pts, predicate="dwithin", distance=max_snap_m)
    if len(pi) == 0:
        return found, fdist
    d = shapely.distance(pts[pi], lines[li])
    nearest = pd.Series(d).groupby(pi).transform("min").to_numpy()
    same_name = (door_names[pi] != "") & (door_names[pi] == edge_names[li])
    named = same_name & (d <= nearest + name_slack_m)
    far = d > nearest + max(name_slack_m, 1.0)
    crosses = np.zeros(len(pi), dtype=bool)
    if barrier_lines is not None and not shapely.is_empty(barrier_lines):
        crosses = _crossings(pts, lines, pi, li, (far, ~named, d), barrier_lines)
    frame = pd.DataFrame(
        {"pt": pi, "line": li, "d": d, "cross": crosses, "far": far, "unnamed": ~named}
    )
    frame = frame.sort_values(["pt", "cross", "far", "unnamed", "d", "line"], kind="stable")
    first = frame.drop_duplicates("pt")
    found[first["pt"].to_numpy()] = first["line"].to_numpy()
    fdist[first["pt"].to_numpy()] = first["d"].to_numpy()
    logger.debug(
        "snapped %d doors, %d of them on a street of their own name",
        len(first),
        int((~first["unnamed"]).sum()),
    )
    return found, fdist


def _crossings(
    pts: np.ndarray,
    lines: np.ndarray,
    pi: np.ndarray,
    li: np.ndarray,
    keys: tuple[np.ndarray, np.ndarray, np.ndarray],
    barrier_lines: shapely.Geometry,
) -> np.ndarray:
    """Which candidate links (door ``pi``, line ``li``) cross a barrier, where it matters.

    A door whose best candidate without barriers (by ``keys`` = far, unnamed, distance, then
    line) crosses none keeps it whatever its other links cross: only the links of the other
    doors are tested (most doors' are not), the rest stay False. The chosen streets are those
    of testing every link. A door with no street on its own side keeps its nearest street,
    crossing or not (all its links False).
    """
    shapely.prepare(barrier_lines)
    order = np.lexsort((li, *reversed(keys), pi))
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = pi[order][1:] != pi[order][:-1]
    best = order[starts]
    best_crosses = shapely.intersects(barrier_lines, _links(pts[pi[best]], lines[li[best]]))
    test = np.flatnonzero(np.isin(pi, pi[best[best_crosses]]))
    crosses = np.zeros(len(pi), dtype=bool)
    crosses[test] = shapely.intersects(barrier_lines, _links(pts[pi[test]], lines[li[test]]))
    any_clear = pd.Series(~crosses[test]).groupby(pi[test]).transform("any").to_numpy()
    crosses[test] &= any_clear
    return crosses


def normalize_name(names: np.ndarray) -> np.ndarray:
    """Normalise street names for matching: lower case, no accents, hyphens and quotes as spaces.

    Parameters
    ----------
    names
        Street names (any objects; missing values become ``""``).

    Returns
    -------
    numpy.ndarray
        Normalised names (object dtype).
    """
    codes, uniques = pd.factorize(pd.Series(names, dtype="object").fillna("").astype(str))
    s = pd.Series(uniques, dtype="object")  # each distinct name once (a street has many doors)
    s = s.str.normalize("NFKD").str.encode("ascii", "ignore").str.decode("ascii")
    s = s.str.lower().str.replace(r"[-'’`.,]", " ", regex=True)
    s = s.str.replace(r"\s+", " ", regex=True).str.strip()
    return s.to_numpy(dtype=object)[codes]


def _links(points: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Straight links from points to their projection on lines, stopping 0.5 m short.

    Stopping short keeps a barrier road from counting as "crossed" by a door that snaps onto it.
    """
    proj = shapely.line_interpolate_point(lines, shapely.line_locate_point(lines, points))
    p = shapely.get_coordinates(points)
    q = shapely.get_coordinates(proj)
    vec = q - p
    length = np.hypot(vec[:, 0], vec[:, 1])
    scale = np.where(length > 0.5, (length - 0.5) / np.maximum(length, 1e-9), 0.0)
    end = p + vec * scale[:, None]
    coords = np.stack([p, end], axis=1)
    return np.asarray(shapely.linestrings(coords))
