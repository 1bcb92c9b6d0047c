"""The plan file: everything a :class:`~knockin_geo.model.TurfPlan` holds, so it can be read back.

``plan.gpkg`` keeps its four map layers (``doors``, ``turfs``, ``routes``, ``precincts``: the
output contract, ``docs/exports.md``) and carries three more tables that make it complete
(``docs/canvass.md``, "Plans on disk"):

* ``plan_doors`` (no geometry): every column of ``TurfPlan.doors`` (the snapping: ``edge``,
  ``offset_m``, ``side``, ``snap_x``/``snap_y``, ``snap_dist_m``; the cut: ``face``, ``region``,
  ``chain``, ``weight``; the address fields) and the door's exact coordinates ``x``/``y``;
* ``plan_turfs`` (no geometry): every column of ``TurfPlan.turfs`` (``target``, ``weight``,
  ``within_tolerance``...); the footprints are the ``turfs`` layer's;
* ``plan_meta`` (``key``/``value`` text rows): ``format`` (:data:`PLAN_FORMAT`), ``config``
  (the parameters: a versioned JSON block, :func:`config_block`), ``network`` (the street file's
  name, path, SHA-256, profile, CRS and a fingerprint of its graph), ``report`` (the quality
  report, full precision) and ``frames`` (column order and dtypes of every table).

:func:`read_plan` gives back the plan that was written: the same frames (door points exact,
footprints, routes and precincts to the millimetre the GeoPackage keeps), parameters and report,
with the street network re-loaded from the file it was built from (checked by hash).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from pyproj import CRS

from knockin_geo._errors import InputError
from knockin_geo.model import TurfPlan
from knockin_geo.routing import RouteParams
from knockin_geo.streets import StreetNetwork, load_network
from knockin_geo.turfs import TurfParams

__all__ = [
    "META_LAYERS",
    "PLAN_FORMAT",
    "config_block",
    "is_complete",
    "network_fingerprint",
    "params_from_config",
    "plan_tables",
    "read_plan",
    "route_params_from_config",
]

logger = logging.getLogger(__name__)

#: Version of the plan file's extra tables (``plan_meta`` row ``format``).
PLAN_FORMAT = "knockin_geo.plan/1"
#: The tables that make ``plan.gpkg`` a complete plan, in the order they are written.
META_LAYERS = ("plan_doors", "plan_turfs", "plan_meta")
#: Version of the parameters block (``plan_meta`` row ``config``).
CONFIG_VERSION = 1


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------
def config_block(plan: TurfPlan) -> dict[str, Any]:
    """Return the plan's parameters as a versioned, JSON-ready block.

    ``turf`` holds :class:`~knockin_geo.turfs.TurfParams`, ``route`` the route parameters the
    plan was routed with (None when it was not), ``max_snap_m`` the snapping distance.
    """
    stored = plan.report.get("params") or {}
    return {
        "version": CONFIG_VERSION,
        "turf": _plain(dataclasses.asdict(plan.params)),
        "route": _plain(plan.report.get("route_params")),
        "max_snap_m": _plain(stored.get("max_snap_m")),
    }


def network_fingerprint(network: StreetNetwork) -> str:
    """Return a SHA-256 of the network's graph (node ids and places, edges and lengths).

    Two networks with the same fingerprint number their edges alike, so a door's ``edge`` and
    ``offset_m`` mean the same street point on both.
    """
    h = hashlib.sha256()
    nodes = network.nodes
    edges = network.edges
    for arr in (nodes.index.to_numpy(dtype=np.int64), nodes["x"].to_numpy(dtype=float),
                nodes["y"].to_numpy(dtype=float), edges["u"].to_numpy(dtype=np.int64),
                edges["v"].to_numpy(dtype=np.int64), edges["length"].to_numpy(dtype=float)):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(str(len(network.barriers)).encode())
    return h.hexdigest()


def plan_tables(plan: TurfPlan) -> list[tuple[str, pd.DataFrame]]:
    """Return the tables that make ``plan.gpkg`` complete (:data:`META_LAYERS`), to write.

    Parameters
    ----------
    plan
        The plan being written.

    Returns
    -------
    list of (name, pandas.DataFrame)
        ``plan_doors``, ``plan_turfs`` and ``plan_meta`` (attribute tables, no geometry).
    """
    doors = _attributes(plan.doors)
    xy = plan.doors.geometry.to_numpy()
    doors["x"] = shapely.get_x(xy)
    doors["y"] = shapely.get_y(xy)
    turfs = _attributes(plan.turfs)
    net = plan.network
    network = {
        "source": net.source, "sha256": net.source_sha256, "path": net.path,
        "profile": net.profile, "crs": net.crs.to_wkt(), "fingerprint": network_fingerprint(net),
    }
    frames = {name: _frame_schema(frame) for name, frame in (
        ("doors", plan.doors), ("turfs", plan.turfs), ("routes", plan.routes),
        ("precincts", plan.precincts))}
    meta = {
        "format": PLAN_FORMAT,
        "config": config_block(plan),
        "network": network,
        "report": _plain(plan.report),
        "frames": frames,
    }
    rows = pd.DataFrame({"key": list(meta),
                         "value": [json.dumps(v, sort_keys=True, ensure_ascii=False)
                                   for v in meta.values()]})
    return [("plan_doors", doors), ("plan_turfs", turfs), ("plan_meta", rows)]


def _attributes(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Return the frame's columns but the geometry, with its index as the first column."""
    out = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    name = frame.index.name or "index"
    out.insert(0, name, frame.index.to_numpy())
    return out.reset_index(drop=True)


def _frame_schema(frame: gpd.GeoDataFrame | None) -> dict[str, Any] | None:
    if frame is None:
        return None
    return {
        "index": frame.index.name,
        "index_dtype": str(frame.index.dtype),
        "columns": [str(c) for c in frame.columns],
        "dtypes": {str(c): str(t) for c, t in frame.dtypes.items()},
        "geometry": frame.geometry.name,
    }


def _plain(obj: Any) -> Any:
    """JSON-ready copy at full precision (numpy scalars to Python, NaN to None)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if obj is pd.NA:
        return None
    return obj


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------
def params_from_config(config: Mapping[str, Any]) -> TurfParams:
    """Return the turf parameters of a ``config`` block (:func:`config_block`)."""
    return TurfParams(**_fields_of(TurfParams, config.get("turf") or {}))


def route_params_from_config(config: Mapping[str, Any]) -> RouteParams | None:
    """Return the route parameters of a ``config`` block, or None when the plan was not routed."""
    stored = config.get("route")
    if not isinstance(stored, Mapping):
        return None
    return RouteParams(**_fields_of(RouteParams, stored))


def _fields_of(cls: type, stored: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in names}


def is_complete(gpkg: str | os.PathLike[str]) -> bool:
    """Return whether a ``plan.gpkg`` holds the tables :func:`read_plan` needs."""
    try:
        layers = {str(name) for name, _ in pyogrio.list_layers(gpkg)}
    except (pyogrio.errors.DataSourceError, OSError):
        return False
    return set(META_LAYERS) <= layers


def read_plan(
    path: str | os.PathLike[str],
    *,
    network: StreetNetwork | None = None,
    network_path: str | os.PathLike[str] | None = None,
    cache: bool = True,
) -> TurfPlan:
    """Read a plan written by :func:`knockin_geo.plan.write_plan` back into a ``TurfPlan``.

    Parameters
    ----------
    path
        The plan folder (``knockin-geo cut --out``, or a re-cut's) or its ``plan.gpkg``.
    network
        The street network, when already loaded; checked against the plan's fingerprint.
    network_path
        The street file to load instead of the one the plan records (moved, or on another
        machine); its SHA-256 must be the recorded one.
    cache
        Use the street-network cache (:func:`knockin_geo.streets.load_network`).

    Returns
    -------
    TurfPlan
        The plan as written: doors (every column, exact points), turfs, routes, precincts,
        report, parameters and the street network.

    Raises
    ------
    InputError
        The file is missing, is not a plan ``cut`` wrote, was written before plan files were
        complete (cut again), or its street file is missing or changed: the message names the
        file and what to do.
    """
    gpkg = Path(path)
    if gpkg.is_dir():
        gpkg = gpkg / "plan.gpkg"
    meta = _read_meta(gpkg)
    frames = meta["frames"]
    crs = meta["network"]["crs"]
    doors = _read_doors(gpkg, frames["doors"], crs)
    turfs = _with_geometry(_read_table(gpkg, "plan_turfs", frames["turfs"]),
                           _layer(gpkg, "turfs"), frames["turfs"], crs)
    routes = _read_routes(gpkg, frames["routes"], crs)
    precincts = (_read_precincts(gpkg, frames["precincts"], crs)
                 if frames.get("precincts") is not None else None)
    net = _plan_network(gpkg, meta["network"], network, network_path, cache)
    params = params_from_config(meta["config"])
    return TurfPlan(doors, turfs, routes, precincts, meta["report"], params, net)


def _read_meta(gpkg: Path) -> dict[str, Any]:
    again = "give the output folder of knockin-geo cut, or cut again"
    if not gpkg.is_file():
        msg = f"{gpkg} not found: {again}"
        raise InputError(msg, path=str(gpkg))
    try:
        layers = {str(name) for name, _ in pyogrio.list_layers(gpkg)}
    except pyogrio.errors.DataSourceError as exc:
        msg = f"cannot read the plan {gpkg}: it is not a GeoPackage (damaged or replaced?); {again}"
        raise InputError(msg, path=str(gpkg)) from exc
    if not set(META_LAYERS) <= layers:
        msg = (f"the plan {gpkg} does not hold the snapping and parameters a re-cut needs (it was "
               "written by an older knockin-geo): cut again with the same inputs, or give the "
               "inputs of its first cut (--addresses, --network...)")
        raise InputError(msg, path=str(gpkg))
    rows = pyogrio.read_dataframe(gpkg, layer="plan_meta", read_geometry=False)
    try:
        meta = {str(k): json.loads(v) for k, v in zip(rows["key"], rows["value"], strict=True)}
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"the plan {gpkg} has a damaged plan_meta table ({exc}); {again}"
        raise InputError(msg, path=str(gpkg)) from exc
    if meta.get("format") != PLAN_FORMAT:
        msg = (f"the plan {gpkg} is in format {meta.get('format')!r}; this knockin-geo reads "
               f"{PLAN_FORMAT!r}: cut again")
        raise InputError(msg, path=str(gpkg))
    return meta


def _layer(gpkg: Path, name: str) -> pd.DataFrame:
    return pyogrio.read_dataframe(gpkg, layer=name)


def _read_table(gpkg: Path, name: str, schema_: Mapping[str, Any]) -> pd.DataFrame:
    """Read an attribute table and give it back its index, column order and dtypes."""
    frame = pyogrio.read_dataframe(gpkg, layer=name, read_geometry=False)
    index_name = schema_["index"] or "index"
    index = _cast(frame.pop(index_name), schema_["index_dtype"])
    frame.index = pd.Index(index, name=schema_["index"])
    geometry = schema_["geometry"]
    for col in schema_["columns"]:
        if col != geometry:
            frame[col] = _cast(frame[col], schema_["dtypes"][col])
    return frame


def _cast(values: pd.Series, dtype: str) -> pd.Series:
    if dtype in ("object", "geometry"):
        return values.astype(object).where(values.notna(), None)
    return values.astype(dtype)


def _with_geometry(frame: pd.DataFrame, geo: gpd.GeoDataFrame, schema_: Mapping[str, Any],
                   crs: str) -> gpd.GeoDataFrame:
    """Put a layer's geometries (matched by id) onto a table read back; column order restored."""
    key = schema_["index"] or "index"
    by_id = pd.Series(geo.geometry.to_numpy(), index=geo[key].astype(str).to_numpy())
    geoms = by_id.reindex(frame.index.astype(str)).to_numpy()
    out = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index, crs=crs),
                           crs=crs)
    out = out.rename_geometry(schema_["geometry"]) if schema_["geometry"] != "geometry" else out
    return out[schema_["columns"]]


def _read_doors(gpkg: Path, schema_: Mapping[str, Any], crs: str) -> gpd.GeoDataFrame:
    frame = _read_table(gpkg, "plan_doors", schema_)
    x = frame.pop("x").to_numpy(dtype=float)
    y = frame.pop("y").to_numpy(dtype=float)
    pts = shapely.points(x, y)
    pts[np.isnan(x) | np.isnan(y)] = None
    out = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(pts, index=frame.index, crs=crs),
                           crs=crs)
    return out[schema_["columns"]]


def _read_routes(gpkg: Path, schema_: Mapping[str, Any], crs: str) -> gpd.GeoDataFrame:
    layer = _layer(gpkg, "routes")
    return _from_layer(layer, schema_, crs)


def _read_precincts(gpkg: Path, schema_: Mapping[str, Any], crs: str) -> gpd.GeoDataFrame:
    return _from_layer(_layer(gpkg, "precincts"), schema_, crs)


def _from_layer(layer: gpd.GeoDataFrame, schema_: Mapping[str, Any],
                crs: str) -> gpd.GeoDataFrame:
    """Return a map layer as the plan's frame: id as the index, dtypes and column order."""
    key = schema_["index"] or "index"
    index = pd.Index(_cast(layer.pop(key), schema_["index_dtype"]), name=schema_["index"])
    layer.index = index
    layer = layer.set_crs(crs, allow_override=True)
    if schema_["geometry"] != layer.geometry.name:
        layer = layer.rename_geometry(schema_["geometry"])
    for col in schema_["columns"]:
        if col != schema_["geometry"]:
            layer[col] = _cast(layer[col], schema_["dtypes"][col])
    return layer[schema_["columns"]]


def _plan_network(
    gpkg: Path,
    recorded: Mapping[str, Any],
    network: StreetNetwork | None,
    network_path: str | os.PathLike[str] | None,
    cache: bool,
) -> StreetNetwork:
    """Return the plan's street network: given, or loaded again from its file (checked)."""
    if network is None:
        where = Path(network_path) if network_path is not None else (
            Path(recorded["path"]) if recorded.get("path") else None)
        if where is None:
            msg = (f"the plan {gpkg} was cut on a street network without a file "
                   f"({recorded.get('source')!r}): give the street file (--network FILE)")
            raise InputError(msg, path=str(gpkg))
        if not where.is_file():
            msg = (f"the street file the plan {gpkg} was cut on is not at {where}: give it with "
                   f"--network FILE (the same {recorded.get('source')!r}, sha256 "
                   f"{str(recorded.get('sha256'))[:12]}...)")
            raise InputError(msg, path=str(where))
        network = _load_same_network(where, recorded, cache)
    if network.source_sha256 != recorded.get("sha256"):
        msg = (f"the street file {network.path or network.source} changed since the plan {gpkg} "
               f"was cut (sha256 {network.source_sha256[:12]}..., the plan has "
               f"{str(recorded.get('sha256'))[:12]}...): give the file the plan was cut with")
        raise InputError(msg, path=str(network.path or network.source))
    if network_fingerprint(network) != recorded.get("fingerprint"):
        msg = (f"the street network loaded from {network.path or network.source} is not the one "
               f"the plan {gpkg} was cut on (other profile, CRS or knockin-geo version): cut again")
        raise InputError(msg, path=str(gpkg))
    return network


def _load_same_network(where: Path, recorded: Mapping[str, Any], cache: bool) -> StreetNetwork:
    profile = str(recorded.get("profile") or "canvass")
    net = load_network(where, cache=cache, profile=profile)
    crs = CRS.from_wkt(recorded["crs"])
    if not net.crs.equals(crs):
        net = load_network(where, cache=cache, profile=profile, crs=crs)
    return net
