"""Coordinate reference systems: one local metric CRS for all computations.

Inside the library every layer is in one projected, metric CRS (UTM zone of the data's centre);
web outputs are reprojected to EPSG:4326 only at the export and map edges.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer

from knockin_geo._errors import CRSError

logger = logging.getLogger(__name__)

WGS84: CRS = CRS.from_epsg(4326)


def utm_crs_for(lon: float, lat: float) -> CRS:
    """Return the WGS 84 / UTM CRS whose zone contains a point.

    Parameters
    ----------
    lon, lat
        Geographic coordinates in degrees.

    Returns
    -------
    pyproj.CRS
        The UTM CRS (EPSG:326xx north, 327xx south).
    """
    if not (np.isfinite(lon) and np.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        msg = f"cannot choose a local CRS for lon={lon}, lat={lat}"
        raise CRSError(msg)
    zone = 32600 if lat >= 0 else 32700
    zone += int((lon + 180) // 6) % 60 + 1
    return CRS.from_epsg(zone)


def local_metric_crs(*frames: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
    """Choose one metric CRS for several layers: the UTM zone of their common centre.

    Parameters
    ----------
    *frames
        Layers with a CRS. Empty geometries are ignored.

    Returns
    -------
    pyproj.CRS
        A projected CRS in metres.
    """
    xs: list[float] = []
    ys: list[float] = []
    for frame in frames:
        if frame is None or len(frame) == 0:
            continue
        if frame.crs is None:
            msg = "a layer has no CRS: give one (for example --crs EPSG:4326)"
            raise CRSError(msg)
        geoms = frame.geometry if isinstance(frame, gpd.GeoDataFrame) else frame
        geoms = geoms[~geoms.is_empty & geoms.notna()]
        if len(geoms) == 0:
            continue
        minx, miny, maxx, maxy = geoms.to_crs(WGS84).total_bounds
        xs += [minx, maxx]
        ys += [miny, maxy]
    if not xs:
        msg = "cannot choose a local CRS: every layer is empty"
        raise CRSError(msg)
    lon = (min(xs) + max(xs)) / 2
    lat = (min(ys) + max(ys)) / 2
    crs = utm_crs_for(lon, lat)
    logger.debug("local metric CRS: %s", crs.to_string())
    return crs


def to_crs(frame: gpd.GeoDataFrame, crs: CRS) -> gpd.GeoDataFrame:
    """Return a copy of ``frame`` in ``crs`` (no copy of the data when it already is).

    Parameters
    ----------
    frame
        A layer with a CRS.
    crs
        Target CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        The reprojected layer (a new object; the input is not modified).
    """
    if frame.crs is None:
        msg = "a layer has no CRS: give one (for example --crs EPSG:4326)"
        raise CRSError(msg)
    if CRS.from_user_input(frame.crs) == crs:
        return frame.copy()
    return frame.to_crs(crs)


@functools.lru_cache(maxsize=8)
def _lonlat_transformer(crs: CRS) -> Transformer:
    return Transformer.from_crs(crs, WGS84, always_xy=True)


def to_lonlat(geoms: np.ndarray, crs: CRS | Any) -> np.ndarray:
    """Reproject an array of geometries to EPSG:4326 (lon, lat), as ``GeoSeries.to_crs`` does.

    The same transformation, coordinate by coordinate (the same numbers as ``to_crs``), without
    building a frame; the transformer is made once per CRS.

    Parameters
    ----------
    geoms
        Geometries (2D), missing and empty ones kept as they are.
    crs
        Their CRS (anything :meth:`pyproj.CRS.from_user_input` takes).

    Returns
    -------
    numpy.ndarray
        The geometries in EPSG:4326.
    """
    tr = _lonlat_transformer(CRS.from_user_input(crs))

    def f(xy: np.ndarray) -> np.ndarray:
        if not len(xy):
            return xy
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return np.asarray(shapely.transform(np.asarray(geoms, dtype=object), f), dtype=object)
