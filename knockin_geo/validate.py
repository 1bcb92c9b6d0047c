"""Contract checks and the address-to-precinct join.

:func:`prepare_inputs` puts both layers in one local metric CRS, :func:`join_precincts` gives
each door its precinct (vectorised point-in-polygon on an STRtree), and
:func:`validate_addresses` / :func:`validate_precincts` check the contracts of
:mod:`knockin_geo.schema`, listing every problem in one :class:`~knockin_geo.InputError`.
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from knockin_geo import schema
from knockin_geo._errors import CRSError, InputError
from knockin_geo.crs import local_metric_crs, to_crs

logger = logging.getLogger(__name__)

__all__ = [
    "join_precincts",
    "prepare_inputs",
    "status_counts",
    "validate_addresses",
    "validate_precincts",
]

OUTSIDE_PRECINCTS = "outside_precincts"
assert OUTSIDE_PRECINCTS in schema.ADDRESS_STATUSES

_ADDRESS_COLUMNS = (
    schema.HOUSENUMBER,
    schema.STREET,
    schema.UNIT,
    schema.HOUSEHOLDS,
    schema.SOURCE_ROW,
    schema.STATUS,
)


def prepare_inputs(
    precincts: gpd.GeoDataFrame, addresses: gpd.GeoDataFrame, crs: Any = None
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, CRS]:
    """Reproject precincts and addresses to one local metric CRS.

    Parameters
    ----------
    precincts, addresses
        Layers with a CRS (not modified).
    crs
        Target CRS; by default the UTM zone of the layers' common centre
        (:func:`knockin_geo.crs.local_metric_crs`).

    Returns
    -------
    tuple
        ``(precincts, addresses, crs)``: reprojected copies and the CRS used.

    Raises
    ------
    CRSError
        A layer has no CRS, or ``crs`` is not a valid CRS.
    """
    for name, frame in (("precincts", precincts), ("addresses", addresses)):
        if frame.crs is None:
            msg = f"the {name} layer has no CRS: give one (for example --crs EPSG:4326)"
            raise CRSError(msg)
    if crs is None:
        target = local_metric_crs(precincts, addresses)
    else:
        try:
            target = CRS.from_user_input(crs)
        except Exception as exc:  # pyproj raises its own CRSError for unknown strings
            msg = f"unknown CRS {crs!r}: {exc}"
            raise CRSError(msg) from exc
    return to_crs(precincts, target), to_crs(addresses, target), target


def join_precincts(addresses: gpd.GeoDataFrame, precincts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Give each address the precinct that contains it.

    Parameters
    ----------
    addresses
        Addresses (doors) following the contract of :mod:`knockin_geo.schema`.
    precincts
        Precinct polygons indexed by ``precinct_id``, in the same CRS as ``addresses``.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``addresses`` with a ``precinct_id`` column (``string`` dtype, ``<NA>`` when
        the point lies in no precinct or has no geometry). Rows whose status was ``ok`` and that
        lie in no precinct get status ``outside_precincts``; other statuses are kept. A point in
        several precincts (overlap or shared boundary) gets the smallest id; the number of such
        points is in ``attrs["multi_precinct"]``.

    Raises
    ------
    CRSError
        The two layers have no CRS or different CRSs (reproject with :func:`prepare_inputs`).
    """
    if addresses.crs is None or precincts.crs is None:
        msg = "addresses and precincts need a CRS before the join"
        raise CRSError(msg)
    if CRS.from_user_input(addresses.crs) != CRS.from_user_input(precincts.crs):
        msg = (
            f"addresses ({CRS.from_user_input(addresses.crs).to_string()}) and precincts "
            f"({CRS.from_user_input(precincts.crs).to_string()}) are in different CRSs: "
            "reproject them first (knockin_geo.validate.prepare_inputs)"
        )
        raise CRSError(msg)

    out = addresses.copy()
    points = out.geometry.to_numpy()
    has_point = ~(shapely.is_missing(points) | shapely.is_empty(points))
    point_idx = np.flatnonzero(has_point)

    poly = precincts.geometry.to_numpy()
    pids = precincts.index.to_numpy().astype(str)
    tree = shapely.STRtree(poly)
    hits = tree.query(points[point_idx], predicate="intersects")  # (2, k): point, polygon
    assigned = np.full(len(out), None, dtype=object)
    n_multi = 0
    if hits.shape[1]:
        pt = point_idx[hits[0]]
        pid = pids[hits[1]]
        order = np.lexsort((pid, pt))  # by point, then by precinct id
        pt, pid = pt[order], pid[order]
        first = np.ones(len(pt), dtype=bool)
        first[1:] = pt[1:] != pt[:-1]
        assigned[pt[first]] = pid[first]
        n_multi = len(np.unique(pt[~first]))
    out[schema.PRECINCT_ID] = pd.array(assigned, dtype="string")

    status = out[schema.STATUS].to_numpy(dtype=object).copy()
    outside = (status == schema.STATUS_OK) & pd.isna(assigned)
    status[outside] = OUTSIDE_PRECINCTS
    out[schema.STATUS] = pd.Series(status, index=out.index, dtype=str)
    out.attrs = {**addresses.attrs, "multi_precinct": n_multi}
    logger.info(
        "joined %d addresses to %d precincts: %d outside, %d in several precincts",
        len(out),
        len(precincts),
        int(outside.sum()),
        n_multi,
    )
    if n_multi:
        logger.warning(
            "%d address(es) lie in more than one precinct (overlap or shared boundary): "
            "each was given the smallest precinct id",
            n_multi,
        )
    return out


def status_counts(gdf: pd.DataFrame) -> dict[str, int]:
    """Count the rows of each status.

    Parameters
    ----------
    gdf
        A table with a ``status`` column.

    Returns
    -------
    dict
        Status -> number of rows, most frequent first (ties by name).
    """
    counts = gdf[schema.STATUS].value_counts()
    items = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    return {str(k): int(v) for k, v in items}


def _index_problems(frame: pd.DataFrame, name: str) -> list[str]:
    problems: list[str] = []
    idx = frame.index
    if idx.name != name:
        problems.append(f"the index must be named {name!r}, not {idx.name!r}")
    values = idx.to_numpy()
    nulls = pd.isna(values)
    if nulls.any():
        problems.append(f"{int(nulls.sum())} missing {name} value(s)")
    not_str = np.array([not isinstance(v, str) for v in values[~nulls]], dtype=bool)
    if not_str.any():
        problems.append(
            f"{int(not_str.sum())} {name} value(s) are not strings, "
            f"e.g. {values[~nulls][not_str][0]!r}"
        )
    dups = idx[idx.duplicated()].unique()
    if len(dups):
        shown = ", ".join(repr(v) for v in dups[:10])
        problems.append(f"{len(dups)} duplicated {name} value(s): {shown}")
    if getattr(frame, "crs", None) is None:
        problems.append("no CRS")
    return problems


def validate_addresses(gdf: gpd.GeoDataFrame) -> None:
    """Check the address contract of :mod:`knockin_geo.schema`.

    Parameters
    ----------
    gdf
        Addresses as returned by :func:`knockin_geo.io.read_addresses` (or after the join).

    Raises
    ------
    InputError
        Listing every problem: index name, uniqueness and type, missing columns, unknown
        statuses, households below 1, non-point geometries, missing CRS.
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        msg = "addresses must be a GeoDataFrame"
        raise InputError(msg)
    problems = _index_problems(gdf, schema.ADDRESS_ID)
    missing = [c for c in _ADDRESS_COLUMNS if c not in gdf.columns]
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if schema.STATUS in gdf.columns:
        unknown = sorted(set(gdf[schema.STATUS].astype(str)) - set(schema.ADDRESS_STATUSES))
        if unknown:
            problems.append(
                f"unknown status value(s): {', '.join(map(repr, unknown))}; allowed: "
                f"{', '.join(schema.ADDRESS_STATUSES)}"
            )
    if schema.HOUSEHOLDS in gdf.columns:
        hh = gdf[schema.HOUSEHOLDS]
        if not pd.api.types.is_integer_dtype(hh):
            problems.append(f"column {schema.HOUSEHOLDS!r} must be integers, not {hh.dtype}")
        elif (hh < 1).any():
            problems.append(f"{int((hh < 1).sum())} row(s) with {schema.HOUSEHOLDS} < 1")
    for col in (schema.HOUSENUMBER, schema.STREET, schema.UNIT):
        if col in gdf.columns and gdf[col].isna().any():
            problems.append(f"column {col!r} has missing values (use '' instead)")
    geoms = gdf.geometry.to_numpy()
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    not_point = present & (shapely.get_type_id(geoms) != 0)
    if not_point.any():
        problems.append(f"{int(not_point.sum())} geometry(ies) are not points")
    if problems:
        msg = "the addresses do not follow the contract"
        raise InputError(msg, problems)


def validate_precincts(gdf: gpd.GeoDataFrame) -> None:
    """Check the precinct contract of :mod:`knockin_geo.schema`.

    Parameters
    ----------
    gdf
        Precincts as returned by :func:`knockin_geo.io.read_precincts`.

    Raises
    ------
    InputError
        Listing every problem: index name, uniqueness and type, null, empty, invalid or
        non-polygon geometries, missing CRS.
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        msg = "precincts must be a GeoDataFrame"
        raise InputError(msg)
    problems = _index_problems(gdf, schema.PRECINCT_ID)
    geoms = gdf.geometry.to_numpy()
    missing = shapely.is_missing(geoms)
    if missing.any():
        problems.append(f"{int(missing.sum())} precinct(s) without geometry")
    not_poly = ~missing & ~np.isin(shapely.get_type_id(geoms), (3, 6))
    if not_poly.any():
        problems.append(f"{int(not_poly.sum())} geometry(ies) are not polygons")
    empty = ~missing & ~not_poly & shapely.is_empty(geoms)
    if empty.any():
        problems.append(f"{int(empty.sum())} empty geometry(ies)")
    invalid = ~missing & ~not_poly & ~empty & ~shapely.is_valid(geoms)
    if invalid.any():
        ids = ", ".join(map(str, gdf.index[invalid][:10]))
        problems.append(f"{int(invalid.sum())} invalid polygon(s): {ids}")
    if len(gdf) == 0:
        problems.append("no precincts")
    if problems:
        msg = "the precincts do not follow the contract"
        raise InputError(msg, problems)
