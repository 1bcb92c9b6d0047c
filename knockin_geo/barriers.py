"""Barriers a canvasser should not cross inside a turf, and the faces they cut the map into.

A barrier is a busy road (motorway, trunk, primary and their links by default), a railway or a
river/canal, as read by :mod:`knockin_geo.streets`. Tunnels and bridges are not barriers: people
walk over a tunnel and under a bridge. The barrier lines, closed by a frame around the study area,
are polygonised into *faces*: two doors in different faces can only reach each other by crossing a
barrier. The turf cutter keeps each turf inside one face unless a face is too small to hold a turf
of its own (it then says so in the report).
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
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
    keep &= ~bar["tunnel"].to_numpy(dtype=bool) & ~bar["bridge"].to_numpy(dtype=bool)
    geoms = bar.geometry.to_numpy()[keep]
    if len(geoms) == 0:
        return shapely.GeometryCollection()
    polys = shapely.get_type_id(geoms) >= 3  # Polygon, MultiPolygon
    geoms = np.where(polys, shapely.boundary(geoms), geoms)
    return shapely.unary_union(geoms)


def barrier_faces(lines: shapely.Geometry, frame: shapely.Geometry) -> np.ndarray:
    """Polygonise barrier lines inside a frame into faces.

    Parameters
    ----------
    lines
        Barrier lines, as returned by :func:`barrier_lines`.
    frame
        A polygon around the study area; its boundary closes the faces.

    Returns
    -------
    numpy.ndarray
        Polygons covering ``frame``, in a deterministic order (by area, largest first, then by
        position).
    """
    ring = shapely.boundary(frame)
    if lines is None or shapely.is_empty(lines):
        return np.array([frame])
    clipped = shapely.intersection(lines, frame)
    noded = shapely.unary_union([ring, clipped])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if len(faces) == 0:
        return np.array([frame])
    area = shapely.area(faces)
    cx = shapely.get_x(shapely.centroid(faces))
    cy = shapely.get_y(shapely.centroid(faces))
    order = np.lexsort((cx, cy, -np.round(area, 3)))
    return faces[order]


def face_index(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Return the index of the face holding each point (nearest face for points on a line).

    Parameters
    ----------
    points
        Shapely points.
    faces
        Face polygons from :func:`barrier_faces`.

    Returns
    -------
    numpy.ndarray
        ``int64`` face index per point (-1 for missing points).
    """
    out = np.full(len(points), -1, dtype=np.int64)
    valid = ~shapely.is_missing(points) & ~shapely.is_empty(points)
    if not valid.any():
        return out
    tree = shapely.STRtree(faces)
    vidx = np.flatnonzero(valid)
    pt, fc = tree.query(points[vidx], predicate="within")
    # a point inside a face is within exactly one; keep the lowest face for determinism
    order = np.lexsort((fc, pt))
    pt, fc = pt[order], fc[order]
    first = np.unique(pt, return_index=True)[1]
    out[vidx[pt[first]]] = fc[first]
    missing = vidx[out[vidx] < 0]
    if len(missing):
        near = tree.query_nearest(points[missing], all_matches=False)
        order = np.lexsort((near[1], near[0]))
        first = np.unique(near[0][order], return_index=True)[1]
        out[missing[near[0][order][first]]] = near[1][order][first]
    return out


def faces_frame(faces: np.ndarray, crs: object) -> gpd.GeoDataFrame:
    """Return faces as a GeoDataFrame indexed by ``face`` (for maps and debugging).

    Parameters
    ----------
    faces
        Face polygons.
    crs
        Their CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per face.
    """
    gdf = gpd.GeoDataFrame({"area_m2": shapely.area(faces)}, geometry=faces, crs=crs)
    gdf.index.name = "face"
    return gdf
