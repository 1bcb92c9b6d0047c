"""The plan file: everything a :class:`~knockin_geo.model.TurfPlan` holds, so it can be read back.

``plan.gpkg`` keeps its four map layers (``doors``, ``turfs``, ``routes``, ``precincts``: the
output contract, ``docs/exports.md``) and carries five more tables that make it complete
(``docs/canvass.md``, "Plans on disk"):

* ``plan_doors``: every column of ``TurfPlan.doors`` (the snapping: ``edge``, ``offset_m``,
  ``side``, ``snap_x``/``snap_y``, ``snap_dist_m``; the cut: ``face``, ``region``, ``chain``,
  ``weight``; the address fields);
* ``plan_turfs``, ``plan_routes``, ``plan_precincts``: every column of those frames
  (``target``, ``weight``, ``within_tolerance``... that the map layers leave out);
* ``plan_meta`` (``key``/``value`` text rows): ``format`` (:data:`PLAN_FORMAT`), ``config``
  (the parameters: a versioned JSON block, :func:`config_block`), ``inputs`` (name, path and
  SHA-256 of each input file), ``network`` (the street file's
  name, path, SHA-256, profile, CRS and a fingerprint of its graph), ``report`` (the quality
  report, full precision) and ``frames`` (column order and dtypes of every table).

:func:`read_plan` gives back the plan that was written: the same frames (door points exact,
every geometry exact: the tables keep it as hexadecimal WKB in ``geometry_wkb``, not rounded to
the millimetre as the map layers are), parameters and report, with the street network re-loaded
from the file it was built from (checked by hash).
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
from knockin_geo.privacy import personal_columns
from knockin_geo.routing import RouteParams
from knockin_geo.streets import StreetNetwork, file_sha256, load_network
from knockin_geo.turfs import TurfParams

__all__ = [
    "META_LAYERS",
    "PLAN_FORMAT",
    "config_block",
    "is_complete",
    "json_ready",
    "network_fingerprint",
    "params_from_config",
    "plan_tables",
    "read_plan",
    "route_params_from_config",
]

logger = logging.getLogger(__name__)

#: Version of the plan file's extra tables (``plan_meta`` row ``format``).
PLAN_FORMAT = "knockin_geo.plan/1"
#: The tables that make ``plan.gpkg`` a complete plan (and ``plan_precincts`` when the plan has
#: precincts).
META_LAYERS = ("plan_doors", "plan_turfs", "plan_routes", "plan_meta")
#: Column of every plan table holding the row's geometry (exact, hexadecimal WKB).
WKB = "geometry_wkb"
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
        "turf": json_ready(dataclasses.asdict(plan.params)),
        "route": json_ready(plan.report.get("route_params")),
        "max_snap_m": json_ready(stored.get("max_snap_m")),
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


def plan_tables(
    plan: TurfPlan, input_files: Mapping[str, str | os.PathLike[str] | None] | None = None,
    lang: str | None = None, base: str | os.PathLike[str] | None = None,
) -> list[tuple[str, pd.DataFrame]]:
    """Return the tables that make ``plan.gpkg`` complete (:data:`META_LAYERS`), to write.

    Parameters
    ----------
    plan
        The plan being written.
    input_files
        The files the plan was made from, by role (``addresses``, ``precincts``, ``network``,
        ``voters``, ``opt_outs``; ``plan`` and ``results`` for a re-cut): their name, absolute
        path and SHA-256 go to ``plan_meta`` row ``inputs``; a file inside ``base``, the plan
        folder (the demo's scored precincts), by its path in the folder, which moves with it.

    Returns
    -------
    list of (name, pandas.DataFrame)
        ``plan_doors``, ``plan_turfs``, ``plan_routes``, ``plan_precincts`` (when the plan has
        precincts) and ``plan_meta``: attribute tables (no geometry column; each frame's
        geometry as exact hexadecimal WKB in ``geometry_wkb``).
    """
    # personal columns (names, phones, e-mails, dates of birth carried from a voter file) never
    # go to disk: the plan file is a file like the others (docs/privacy.md)
    personal = personal_columns(plan.doors)
    if personal:
        logger.info("plan file: %d personal columns left out (%s)", len(personal),
                    ", ".join(sorted(personal)))
    frames = {"doors": plan.doors.drop(columns=list(personal)), "turfs": plan.turfs,
              "routes": plan.routes, "precincts": plan.precincts}
    net = plan.network
    network = {
        "source": net.source, "sha256": net.source_sha256, "path": net.path,
        "profile": net.profile, "crs": net.crs.to_wkt(), "fingerprint": network_fingerprint(net),
    }
    meta = {
        "format": PLAN_FORMAT,
        "config": config_block(plan),
        "inputs": _input_hashes(input_files or {}, base),
        "network": network,
        "report": json_ready(plan.report),
        "frames": {name: _frame_schema(frame) for name, frame in frames.items()},
    }
    if lang is not None:
        meta["outputs"] = {"lang": lang}
    rows = pd.DataFrame({"key": list(meta),
                         "value": [json.dumps(v, sort_keys=True, ensure_ascii=False)
                                   for v in meta.values()]})
    tables = [(f"plan_{name}", _attributes(frame)) for name, frame in frames.items()
              if frame is not None]
    return [*tables, ("plan_meta", rows)]


def _input_hashes(
    files: Mapping[str, str | os.PathLike[str] | None],
    base: str | os.PathLike[str] | None = None,
) -> dict[str, dict[str, str]]:
    out = {}
    inside = Path(base).resolve() if base is not None else None
    for role, name in sorted(files.items()):
        if name is None or not Path(name).is_file():
            continue
        p = Path(name).resolve()
        shown = (p.relative_to(inside).as_posix() if inside is not None
                 and p.is_relative_to(inside) else str(p))
        out[role] = {"name": Path(name).name, "path": shown, "sha256": file_sha256(p)}
    return out


def _attributes(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Return the frame as an attribute table: index first, geometry as exact hex WKB last."""
    out = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    for col in [c for c in out.columns if pd.api.types.is_object_dtype(out[c])]:  # as text
        out[col] = [v if type(v) is str else None if _missing(v) else str(v)
                    for v in out[col].tolist()]
    out.insert(0, frame.index.name or "index", frame.index.to_numpy())
    out[WKB] = shapely.to_wkb(frame.geometry.to_numpy(), hex=True)
    return out.reset_index(drop=True)


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


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


def json_ready(obj: Any, digits: int | None = None) -> Any:
    """Return a JSON-ready copy: numpy scalars to Python, NaN and NA to None, tuples to lists.

    Floats are kept at full precision, or rounded to ``digits`` decimals (``report.json``).
    """
    if isinstance(obj, Mapping):
        return {str(k): json_ready(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v, digits) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        if not math.isfinite(float(obj)):
            return None
        return float(obj) if digits is None else round(float(obj), digits)
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


def recorded_lang(path: str | os.PathLike[str]) -> str | None:
    """Return the language a complete plan's volunteer files were written in (None: unknown).

    ``path``: the plan folder or its ``plan.gpkg``.
    """
    gpkg = Path(path)
    gpkg = gpkg / "plan.gpkg" if gpkg.is_dir() else gpkg
    if not is_complete(gpkg):
        return None
    lang = (_read_meta(gpkg).get("outputs") or {}).get("lang")
    return str(lang) if lang else None


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
        The plan as written: doors (every column), turfs, routes, precincts (exact
        geometries), report, parameters and the street network.

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
    frames, crs = meta["frames"], meta["network"]["crs"]
    doors, turfs, routes = (_read_frame(gpkg, name, frames[name], crs)
                            for name in ("doors", "turfs", "routes"))
    precincts = (_read_frame(gpkg, "precincts", frames["precincts"], crs)
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


def _read_frame(gpkg: Path, name: str, schema_: Mapping[str, Any],
                crs: str) -> gpd.GeoDataFrame:
    """Read ``plan_<name>`` back: its index, column order, dtypes and exact geometries."""
    frame = pyogrio.read_dataframe(gpkg, layer=f"plan_{name}", read_geometry=False)
    index_name = schema_["index"] or "index"
    index = pd.Index(_cast(frame.pop(index_name), schema_["index_dtype"]),
                     name=schema_["index"])
    wkb = frame.pop(WKB).to_numpy(dtype=object)
    geoms = shapely.from_wkb(np.where(pd.isna(wkb), None, wkb))
    frame.index = index
    geometry = schema_["geometry"]
    out = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=index, crs=crs), crs=crs)
    if geometry != "geometry":
        out = out.rename_geometry(geometry)
    for col in schema_["columns"]:
        if col != geometry:
            out[col] = _cast(out[col], schema_["dtypes"][col])
    return out[schema_["columns"]]


def _cast(values: pd.Series, dtype: str) -> pd.Series:
    if dtype in ("object", "geometry"):
        return values.astype(object).where(values.notna(), None)
    return values.astype(pd.api.types.pandas_dtype(dtype))


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
