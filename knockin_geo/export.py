"""Exports of a plan for the campaign's other tools, and packets for each canvasser.

:func:`write_exports` writes ``out_dir/exports/``:

* ``assignments.csv`` and ``unassigned.csv`` for the director's spreadsheet (cells that would
  start a formula are neutralised, :mod:`knockin_geo.sheets`; ``doors.geojson`` has the same
  doors with the raw values, for the contact database);
* ``doors.geojson``, ``turfs.geojson``, ``routes.geojson`` (RFC 7946, EPSG:4326) for web maps;
* ``gpx/<turf>.gpx`` (GPX 1.1: the route as a track, the doors as numbered waypoints) for
  phone navigation apps (OsmAnd, Organic Maps, ...);
* ``turfs.kml`` (one folder per turf: footprint, route, doors) for Google My Maps / Earth;
* ``app/turfs.json`` for the canvasser app (JSON Schema: ``docs/app-turfs.schema.json``);
* ``manifest.json``: every file with its size and SHA-256.

The folder is built in a temporary folder inside ``out_dir`` and swapped in with one rename, so
an interrupted run never leaves half-written files. Same plan, same bytes: there are no
timestamps, and every number is formatted at a fixed precision.

:func:`read_canvassers` reads the volunteers, :func:`assign_canvassers` gives each one turfs near
home (balanced: everyone gets one before anyone gets two) and :func:`write_packets` writes one
folder per canvasser with only their walk lists and GPX files.

Privacy: the volunteer-facing files (GPX, KML, app JSON, packets) carry only the fields of
:data:`knockin_geo.schema.VOLUNTEER_ALLOWED_FIELDS`, coordinates, ids and counts; the CSV files
carry only their listed columns. No other input column is ever written, whatever the address
table holds.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy.optimize import linear_sum_assignment

from knockin_geo import __version__, schema
from knockin_geo._errors import InputError
from knockin_geo._json import compact, parse
from knockin_geo._pool import per_turf
from knockin_geo.crs import to_lonlat
from knockin_geo.io import sniff_delimiter
from knockin_geo.sheets import Number, sheet_csv
from knockin_geo.timing import stage
from knockin_geo.walklist import turf_file_names, walk_list_html

if TYPE_CHECKING:
    from knockin_geo.model import TurfPlan

logger = logging.getLogger(__name__)

#: Name of the exports folder inside the output folder.
EXPORTS_DIR = "exports"
#: Name of the packets folder inside the output folder.
PACKETS_DIR = "packets"
#: Decimal places of every longitude/latitude written (about 1 cm).
COORD_DECIMALS = 7
#: Version of ``app/turfs.json``; bump on any incompatible change of its schema.
APP_SCHEMA_VERSION = 1
#: Attribution required by the OpenStreetMap licence for the street-derived routes.
OSM_ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"
OSM_LICENSE_URL = "https://opendatacommons.org/licenses/odbl/1-0/"

GPX_NS = "http://www.topografix.com/GPX/1/1"
GPX_XSD = "http://www.topografix.com/GPX/1/1/gpx.xsd"
KML_NS = "http://www.opengis.net/kml/2.2"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

#: Columns of ``assignments.csv`` (``canvasser_id`` is appended when canvassers are given).
ASSIGNMENT_COLUMNS: tuple[str, ...] = (
    schema.ADDRESS_ID,
    schema.TURF_ID,
    schema.PRECINCT_ID,
    schema.SEQ,
    schema.SIDE,
    schema.HOUSENUMBER,
    schema.STREET,
    "lon",
    "lat",
)
#: Columns of ``unassigned.csv``.
UNASSIGNED_COLUMNS: tuple[str, ...] = (
    schema.ADDRESS_ID,
    schema.PRECINCT_ID,
    schema.STATUS,
    "reason",
    schema.HOUSENUMBER,
    schema.STREET,
    "lon",
    "lat",
)
#: Properties of the features of ``doors.geojson``.
DOOR_PROPERTIES: tuple[str, ...] = (
    schema.ADDRESS_ID,
    schema.TURF_ID,
    schema.PRECINCT_ID,
    schema.SEQ,
    schema.SIDE,
    schema.HOUSENUMBER,
    schema.STREET,
)
#: Properties of the features of ``turfs.geojson`` (those present in the plan).
TURF_PROPERTIES: tuple[str, ...] = (
    schema.TURF_ID,
    schema.PRECINCT_ID,
    "doors",
    "households",
    "walk_m",
    "route_m",
    "est_minutes",
    "deviation",
    "pieces",
    "barrier_crossings",
    "polsby_popper",
    "note",
)
#: Properties of the features of ``routes.geojson``.
ROUTE_PROPERTIES: tuple[str, ...] = (schema.TURF_ID, "length_m", "walk_m", "est_minutes")
#: Canvasser id column.
CANVASSER_ID = "canvasser_id"
#: Columns of the frame returned by :func:`read_canvassers` (index ``canvasser_id``).
CANVASSER_COLUMNS: tuple[str, ...] = ("name", "team", "lon", "lat", "capacity")
#: Extra cost of a canvasser's second, third, ... slot (metres), at least; see
#: :func:`assign_canvassers`.
SLOT_PENALTY_M = 1e6

#: Characters not allowed in XML 1.0 documents (control characters but tab/newline/return).
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")

_README = {
    "fr": {
        "title": "Dossier de porte-à-porte",
        "for": "Pour",
        "team": "Équipe",
        "turfs": "Vos secteurs",
        "none": "Aucun secteur ne vous est attribué pour cette fois.",
        "doors": "portes",
        "households": "foyers",
        "minutes": "min",
        "files": "Fichiers",
        "html": "liste de porte-à-porte à imprimer ou ouvrir sur le téléphone",
        "gpx": "parcours et portes pour une application GPS (OsmAnd, Organic Maps...)",
        "map": "carte du secteur pour le téléphone (fonctionne sans réseau)",
        "total": "Total",
    },
    "en": {
        "title": "Canvassing packet",
        "for": "For",
        "team": "Team",
        "turfs": "Your turfs",
        "none": "No turf is assigned to you this time.",
        "doors": "doors",
        "households": "households",
        "minutes": "min",
        "files": "Files",
        "html": "walk list to print or open on your phone",
        "gpx": "route and doors for a GPS app (OsmAnd, Organic Maps...)",
        "map": "phone map of the turf (works offline)",
        "total": "Total",
    },
}


# ---------------------------------------------------------------------------------------------
# write_exports
# ---------------------------------------------------------------------------------------------


def write_exports(
    plan: TurfPlan,
    out_dir: str | os.PathLike[str],
    *,
    canvassers: pd.DataFrame | None = None,
    assignment: pd.Series | None = None,
    pseudonyms: Mapping[str, str] | None = None,
    timings: dict[str, float] | None = None,
    workers: int | None = 1,
) -> list[Path]:
    """Write every export of a plan into ``out_dir/exports/``, atomically and reproducibly.

    The files are built in a temporary folder inside ``out_dir``, then the whole folder replaces
    ``out_dir/exports`` (the previous exports, if any, are removed): an interrupted run leaves the
    previous exports or nothing, never half-written files. The same plan gives byte-identical
    files (no timestamps; fixed number formats).

    Parameters
    ----------
    plan
        A routed plan (an unrouted plan is exported without walk order or route lines).
    out_dir
        Output folder (created if needed).
    canvassers
        Canvassers (:func:`read_canvassers`). When given, turfs are assigned with
        :func:`assign_canvassers` and ``canvasser_id`` is added to ``assignments.csv`` and
        ``app/turfs.json``.
    assignment
        A ready ``turf_id -> canvasser_id`` assignment to use instead of computing one (e.g.
        edited by hand); needs ``canvassers`` only for checking the ids.
    pseudonyms
        ``address_id -> pseudonymous id`` (:func:`knockin_geo.privacy.pseudonymize`). When
        given, the volunteer-facing files (GPX, KML, ``app/turfs.json``) carry the pseudonym in
        place of the address id, and ``assignments.csv`` (director-facing) gets a ``pseudo_id``
        column: the mapping stays with the director.
    timings
        When given, the seconds spent on each kind of file are added to it (``exports.csv``,
        ``exports.geojson``, ``exports.gpx``, ``exports.kml``, ``exports.app``).
    workers
        Processes that build the whole-plan files side by side, then the per-turf GPX files
        (:func:`knockin_geo._pool.per_turf`); None: one per core. The bytes are the same
        whatever the number.

    Returns
    -------
    list of pathlib.Path
        The files written (final paths), sorted, ``manifest.json`` included.

    Raises
    ------
    InputError
        The assignment names unknown turfs or canvassers.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if assignment is None and canvassers is not None:
        assignment = assign_canvassers(plan, canvassers)
    if assignment is not None:
        assignment = _check_assignment(plan, assignment, canvassers)
    tmp = Path(tempfile.mkdtemp(prefix=".knockin-exports-", dir=out))
    try:
        build = tmp / EXPORTS_DIR
        files = _build_exports(plan, build, assignment, pseudonyms, timings, workers)
        relative = sorted(p.relative_to(build).as_posix() for p in files)
        (build / "manifest.json").write_bytes(_manifest(build, relative))
        relative = sorted([*relative, "manifest.json"])
        target = out / EXPORTS_DIR
        if target.exists():
            os.replace(target, tmp / f"{EXPORTS_DIR}.old")
        os.replace(build, target)
        logger.info("wrote %d export files into %s", len(relative), target)
        return [target / r for r in relative]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _build_exports(
    plan: TurfPlan,
    build: Path,
    assignment: pd.Series | None,
    pseudonyms: Mapping[str, str] | None = None,
    timings: dict[str, float] | None = None,
    workers: int | None = 1,
) -> list[Path]:
    """Write every export file (but the manifest) into ``build``; return their paths.

    The whole-plan files (KML, app JSON, GeoJSON, CSV) are built side by side by up to
    ``workers`` processes and written here as each kind comes, then the GPX files turf by turf.
    ``timings["exports.<kind>"]``: the seconds each kind took where it was built.
    """
    build.mkdir(parents=True)
    doors = _door_table(plan)
    assigned = _assigned(doors)
    volunteer = assigned
    if pseudonyms is not None:
        pseudo = assigned[schema.ADDRESS_ID].map(pseudonyms)
        if pseudo.isna().any():
            msg = "some assigned doors have no pseudonymous id"
            raise InputError(msg)
        volunteer = assigned.assign(**{schema.ADDRESS_ID: pseudo.to_numpy(dtype=object)})
    routes = _route_table(plan)
    if not len(plan.routes) and len(plan.turfs):
        logger.warning("the plan is not routed: exports carry no walk order and no route lines")
    by_turf = _by_turf(volunteer)
    kinds: dict[str, Callable[[], list[tuple[str, bytes]]]] = {
        "kml": lambda: [("turfs.kml", _kml(plan, by_turf, routes))],
        "app": lambda: [("app/turfs.json", _app_json(plan, by_turf, routes, assignment))],
        "geojson": lambda: [
            ("doors.geojson", _feature_collection(_door_features(assigned))),
            ("turfs.geojson", _feature_collection(_turf_features(plan))),
            ("routes.geojson", _feature_collection(_route_features(plan, routes))),
        ],
        "csv": lambda: [
            ("assignments.csv", _assignments_csv(assignment, assigned, pseudonyms)),
            ("unassigned.csv", _unassigned_csv(doors)),
        ],
    }

    def whole(_: TurfPlan, kind: str) -> tuple[list[tuple[str, bytes]], float]:
        seconds: dict[str, float] = {}
        with stage(seconds, kind):
            files = kinds[kind]()
        return files, seconds[kind]

    written: list[Path] = []

    def put(rel: str, data: bytes) -> None:
        path = build / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)

    # each kind's files are written as they come (a million doors make files of hundreds of
    # MB: they are not all held at once); the seconds go into ``timings`` in the usual order
    order = list(kinds)  # the slowest first
    took: dict[str, float] = {}
    for kind, (files, seconds) in zip(order, per_turf(whole, plan, order, workers),
                                      strict=True):
        for rel, data in files:
            put(rel, data)
        took[kind] = seconds
    _add_seconds(timings, took, ("csv", "geojson"))
    names = gpx_file_names(plan.turfs.index.astype(str))
    with stage(timings, "exports.gpx"):
        tids = sorted(names)

        def gpx(p: TurfPlan, tid: str) -> bytes:
            return _gpx(p, tid, by_turf.get(tid, volunteer.iloc[:0]), routes)

        for tid, data in zip(tids, per_turf(gpx, plan, tids, workers), strict=True):
            put(f"gpx/{names[tid]}", data)
    _add_seconds(timings, took, ("kml", "app"))
    return written


def _add_seconds(timings: dict[str, float] | None, took: Mapping[str, float],
                 kinds: Iterable[str]) -> None:
    """Add each kind's seconds to ``timings["exports.<kind>"]`` (nothing without timings)."""
    if timings is not None:
        for kind in kinds:
            timings[f"exports.{kind}"] = timings.get(f"exports.{kind}", 0.0) + took[kind]


def _manifest(build: Path, relative: Iterable[str]) -> bytes:
    entries = []
    for rel in sorted(relative):
        data = (build / rel).read_bytes()
        entries.append(
            {"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )
    doc = {"generated_by": f"knockin_geo {__version__}", "files": entries}
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def gpx_file_names(turf_ids: Iterable[str]) -> dict[str, str]:
    """Map turf ids to GPX file names (the walk list name with ``.gpx``).

    Parameters
    ----------
    turf_ids
        Turf ids.

    Returns
    -------
    dict
        ``turf_id -> file name``.
    """
    return {t: Path(n).stem + ".gpx" for t, n in turf_file_names(turf_ids).items()}


# ---------------------------------------------------------------------------------------------
# tables: only the allowed columns are ever copied out of the plan
# ---------------------------------------------------------------------------------------------


def _str_col(frame: pd.DataFrame, col: str) -> np.ndarray:
    """Return a column as an object array of str ('' for missing; all '' when absent)."""
    if col not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    values = frame[col].to_numpy(dtype=object)
    return np.array([v if type(v) is str else _text(v) for v in values], dtype=object)


def _door_table(plan: TurfPlan) -> pd.DataFrame:
    """Every door with only the exportable columns, lon/lat in EPSG:4326, in plan order."""
    d = plan.doors
    geoms = d.geometry.to_numpy()
    lon = np.full(len(d), np.nan)
    lat = np.full(len(d), np.nan)
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if usable.any():
        at = to_lonlat(geoms[usable], d.crs)
        lon[usable], lat[usable] = shapely.get_x(at), shapely.get_y(at)
    seq = (
        pd.array(d[schema.SEQ].to_numpy(dtype=object), dtype="Int64")
        if schema.SEQ in d.columns
        else pd.array([pd.NA] * len(d), dtype="Int64")
    )
    households = (
        pd.array(d[schema.HOUSEHOLDS].to_numpy(dtype=object), dtype="Int64")
        if schema.HOUSEHOLDS in d.columns
        else pd.array([1] * len(d), dtype="Int64")
    )
    turf = d[schema.TURF_ID] if schema.TURF_ID in d.columns else pd.Series(pd.NA, index=d.index)
    turf_values = turf.to_numpy(dtype=object)
    return pd.DataFrame(
        {
            schema.ADDRESS_ID: d.index.astype(str).to_numpy(dtype=object),
            schema.TURF_ID: np.array(
                [None if na else str(t)
                 for t, na in zip(turf_values, pd.isna(turf_values).tolist(), strict=True)],
                dtype=object,
            ),
            schema.PRECINCT_ID: _str_col(d, schema.PRECINCT_ID),
            schema.SEQ: seq,
            schema.STATUS: _str_col(d, schema.STATUS),
            schema.SIDE: _str_col(d, schema.SIDE),
            schema.HOUSENUMBER: _str_col(d, schema.HOUSENUMBER),
            schema.STREET: _str_col(d, schema.STREET),
            schema.UNIT: _str_col(d, schema.UNIT),
            schema.HOUSEHOLDS: households,
            "lon": lon,
            "lat": lat,
        }
    )


def _assigned(doors: pd.DataFrame) -> pd.DataFrame:
    """Return the doors in a turf, sorted by turf id, then walk order (then address id)."""
    a = doors[doors[schema.TURF_ID].notna()]
    return a.sort_values(
        [schema.TURF_ID, schema.SEQ, schema.ADDRESS_ID], kind="stable", na_position="last"
    ).reset_index(drop=True)


def _route_table(plan: TurfPlan) -> dict[str, shapely.Geometry]:
    """``turf_id -> route line in EPSG:4326`` for the routed turfs."""
    r = plan.routes
    if not len(r):
        return {}
    lines = to_lonlat(r.geometry.to_numpy(), r.crs)
    return {
        str(t): g
        for t, g in zip(r.index.astype(str), lines, strict=True)
        if g is not None and not shapely.is_empty(g)
    }


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------


def _csv_bytes(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> bytes:
    """Return a CSV for people: every text cell neutralised (:mod:`knockin_geo.sheets`)."""
    return sheet_csv(header, rows).encode("utf-8")


def _coord_text(x: float) -> str:
    return "" if not math.isfinite(x) else Number(f"{x:.{COORD_DECIMALS}f}")


def _coord_texts(values: np.ndarray) -> list[str]:
    """Each value with :data:`COORD_DECIMALS` decimals ("" when not finite).

    Formatted in one ``%`` operation for all: a ``format`` call per value took most of the GPX
    and KML time.
    """
    x = np.asarray(values, dtype=float)
    finite = np.isfinite(x)
    texts = (f"%.{COORD_DECIMALS}f\n" * len(x)) % tuple(np.where(finite, x, 0.0).tolist())
    out = texts.split("\n")[:-1]
    for i in np.flatnonzero(~finite).tolist():
        out[i] = ""
    return out


def _coord_numbers(values: pd.Series) -> list[str]:
    """``_coord_text`` of every value of a column (numbers for the spreadsheet writer)."""
    return [Number(t) if t else t for t in _coord_texts(values.to_numpy(dtype=float))]


def _assignments_csv(
    assignment: pd.Series | None, a: pd.DataFrame, pseudonyms: Mapping[str, str] | None = None
) -> bytes:
    """``assignments.csv``: built column by column (the rows are those of ``a``, in order)."""
    header = list(ASSIGNMENT_COLUMNS)
    ids = a[schema.ADDRESS_ID].tolist()
    turf_ids = a[schema.TURF_ID].tolist()
    columns: list[list[Any]] = [
        ids,
        turf_ids,
        a[schema.PRECINCT_ID].tolist(),
        [Number(_text(v)) for v in a[schema.SEQ].tolist()],
        *(a[c].tolist() for c in (schema.SIDE, schema.HOUSENUMBER, schema.STREET)),
        _coord_numbers(a["lon"]),
        _coord_numbers(a["lat"]),
    ]
    if assignment is not None:
        header.append(CANVASSER_ID)
        who = cast(Mapping[str, Any], assignment.to_dict())
        columns.append([_text(who.get(t)) for t in turf_ids])
    if pseudonyms is not None:
        header.append("pseudo_id")
        columns.append([pseudonyms[i] for i in ids])
    return _csv_bytes(header, zip(*columns, strict=True))


def _unassigned_csv(doors: pd.DataFrame) -> bytes:
    """``unassigned.csv``: built column by column (the doors in no turf, in plan order)."""
    u = doors[doors[schema.TURF_ID].isna()]
    status = u[schema.STATUS].tolist()
    columns = [
        u[schema.ADDRESS_ID].tolist(),
        u[schema.PRECINCT_ID].tolist(),
        status,
        [schema.ADDRESS_STATUSES.get(v, "") for v in status],
        u[schema.HOUSENUMBER].tolist(),
        u[schema.STREET].tolist(),
        _coord_numbers(u["lon"]),
        _coord_numbers(u["lat"]),
    ]
    return _csv_bytes(UNASSIGNED_COLUMNS, zip(*columns, strict=True))


# ---------------------------------------------------------------------------------------------
# GeoJSON (RFC 7946)
# ---------------------------------------------------------------------------------------------


def _round_coords(obj: Any) -> Any:
    """GeoJSON coordinates (a number, a position or nested lists of them), each number rounded."""
    if isinstance(obj, list | tuple):
        try:  # a position (numbers): rounded in one pass
            return [round(float(v), COORD_DECIMALS) for v in obj]
        except TypeError:  # a list of positions, rings or polygons
            if all(isinstance(p, list | tuple) and len(p) == 2 for p in obj):
                try:  # a line or ring of 2D positions: one pass for all
                    return [[round(float(x), COORD_DECIMALS), round(float(y), COORD_DECIMALS)]
                            for x, y in obj]
                except TypeError:  # a list of pairs of lines or rings
                    pass
            return [_round_coords(v) for v in obj]
    return round(float(obj), COORD_DECIMALS)


def _geojson_geometry(g: shapely.Geometry | None) -> dict[str, Any] | None:
    """GeoJSON geometry of a lon/lat geometry: counter-clockwise shells, 7 decimals."""
    if g is None or shapely.is_empty(g):
        return None
    g = shapely.orient_polygons(g)
    geo = parse(shapely.to_geojson(g))
    if "coordinates" in geo:
        geo["coordinates"] = _round_coords(geo["coordinates"])
    return geo


def _json_value(v: Any, decimals: int = 3) -> Any:
    """Return a JSON-ready scalar: None for missing/non-finite, ints, rounded floats."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return round(float(v), decimals) if math.isfinite(v) else None
    if pd.isna(v):
        return None
    return str(v)


def _feature(props: dict[str, Any], geometry: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def _feature_collection(features: list[dict[str, Any]]) -> bytes:
    """One feature per line, so that diffs between plans stay readable."""
    lines = [compact(f) for f in features]
    body = ",\n".join(lines)
    text = '{"type":"FeatureCollection","features":[\n' + body + ("\n" if lines else "") + "]}\n"
    return text.encode("utf-8")


#: The properties of a door in ``doors.geojson``, in order.
_DOOR_PROPERTIES = (schema.ADDRESS_ID, schema.TURF_ID, schema.PRECINCT_ID, schema.SEQ,
                    schema.SIDE, schema.HOUSENUMBER, schema.STREET)


def _door_features(a: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the assigned doors as GeoJSON features, in order (built column by column)."""
    lon = a["lon"].to_numpy(float)
    lat = a["lat"].to_numpy(float)
    located = (np.isfinite(lon) & np.isfinite(lat)).tolist()
    columns = (
        a[schema.ADDRESS_ID].tolist(),
        a[schema.TURF_ID].tolist(),
        [v or None for v in a[schema.PRECINCT_ID].tolist()],
        [_json_value(v) for v in a[schema.SEQ].tolist()],
        [v or None for v in a[schema.SIDE].tolist()],
        a[schema.HOUSENUMBER].tolist(),
        a[schema.STREET].tolist(),
    )
    geoms = [{"type": "Point", "coordinates": _round_coords([x, y])} if ok else None
             for x, y, ok in zip(lon.tolist(), lat.tolist(), located, strict=True)]
    return [_feature(dict(zip(_DOOR_PROPERTIES, row, strict=True)), geom)
            for row, geom in zip(zip(*columns, strict=True), geoms, strict=True)]


def _turf_features(plan: TurfPlan) -> list[dict[str, Any]]:
    t = plan.turfs
    ids = t.index.astype(str)
    order = np.argsort(ids.to_numpy(dtype=str), kind="stable")
    shapes = to_lonlat(t.geometry.to_numpy(), t.crs) if len(t) else np.array([], dtype=object)
    feats = []
    for i in order:
        row = t.iloc[i]
        props: dict[str, Any] = {schema.TURF_ID: str(ids[i])}
        for c in TURF_PROPERTIES[1:]:
            if c in t.columns:
                props[c] = _json_value(row[c], 4 if c in ("deviation", "polsby_popper") else 1)
        feats.append(_feature(props, _geojson_geometry(shapes[i])))
    return feats


def _route_features(plan: TurfPlan, routes: dict[str, shapely.Geometry]) -> list[dict[str, Any]]:
    r = plan.routes
    feats = []
    for tid in sorted(routes):
        row = r.loc[tid]
        props: dict[str, Any] = {schema.TURF_ID: tid}
        for c in ROUTE_PROPERTIES[1:]:
            if c in r.columns:
                props[c] = _json_value(row[c], 1)
        feats.append(_feature(props, _geojson_geometry(routes[tid])))
    return feats


# ---------------------------------------------------------------------------------------------
# GPX 1.1 and KML 2.2: written as strings, line by line (exact element order, no timestamps).
# The layout is ElementTree's (``ET.indent`` with one space, ``<empty />``, the same escaping):
# the bytes are those the element-by-element writer made, for a fraction of its time.
# ---------------------------------------------------------------------------------------------

_XML_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"


def _xml_text(value: Any) -> str:
    """Text safe for XML 1.0 (control characters dropped)."""
    return _XML_BAD.sub("", _text(value))


def _escape(text: str) -> str:
    """Escape character data (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(text: str) -> str:
    """Escape an attribute value (also quotes and the line breaks and tabs it must keep)."""
    return (_escape(text).replace('"', "&quot;").replace("\r", "&#13;")
            .replace("\n", "&#10;").replace("\t", "&#09;"))


def _attrs(attrs: Iterable[tuple[str, str]]) -> str:
    return "".join(f' {k}="{_escape_attr(_XML_BAD.sub("", v))}"' for k, v in attrs)


def _el(tag: str, text: Any = None, attrs: Iterable[tuple[str, str]] = ()) -> str:
    """One element on one line: ``<tag a="v">text</tag>``, or ``<tag a="v" />`` when empty."""
    body = "" if text is None else _xml_text(text)
    if not body:
        return f"<{tag}{_attrs(attrs)} />"
    return f"<{tag}{_attrs(attrs)}>{_escape(body)}</{tag}>"


def _line(depth: int, text: str) -> str:
    return " " * depth + text + "\n"


def _coord_pairs(first: np.ndarray, second: np.ndarray, pattern: str) -> list[str]:
    """``pattern`` filled with pairs of coordinates, formatted as ``_coord_text`` does."""
    return [pattern.format(x, y) for x, y in zip(_coord_texts(first), _coord_texts(second),
                                                 strict=True)]


def door_label(seq: Any, housenumber: Any, street: Any) -> str:
    """Return the label of a door on maps and GPS apps: ``"seq. housenumber street"``.

    Parameters
    ----------
    seq
        Walk order (missing when the plan is not routed).
    housenumber, street
        Address fields.

    Returns
    -------
    str
        For example ``"12. 7 bis Rue de la Paix"``.
    """
    address = " ".join(x for x in (_text(housenumber), _text(street)) if x)
    s = _text(seq)
    return f"{s}. {address}" if s else address


def _door_desc(households: Any, unit: Any) -> str:
    hh = _text(households) or "1"
    desc = f"households: {hh}"
    if _text(unit):
        desc += f"; unit: {_text(unit)}"
    return desc


def _turf_summary(plan: TurfPlan, tid: str, n_doors: int) -> str:
    t = plan.turfs.loc[tid]
    parts = [f"turf {tid}"]
    if _text(t.get(schema.PRECINCT_ID)):
        parts.append(f"precinct {_text(t.get(schema.PRECINCT_ID))}")
    parts.append(f"{n_doors} doors")
    if "households" in t.index:
        parts.append(f"{_text(t['households'])} households")
    minutes = t.get("est_minutes", np.nan)
    if pd.notna(minutes):
        parts.append(f"about {float(minutes):.0f} min")
    return ", ".join(parts)


def _gpx(
    plan: TurfPlan, tid: str, doors: pd.DataFrame, routes: dict[str, shapely.Geometry]
) -> bytes:
    """One turf as GPX 1.1: metadata, doors as waypoints in walk order, the route as a track."""
    route = routes.get(tid)
    root = _attrs([("xmlns", GPX_NS), ("xmlns:xsi", XSI_NS),
                   ("xsi:schemaLocation", f"{GPX_NS} {GPX_XSD}"), ("version", "1.1"),
                   ("creator", "knockin_geo")])
    out = [_XML_DECLARATION, f"<gpx{root}>\n", _line(1, "<metadata>"),
           _line(2, _el("name", f"Turf {tid}")),
           _line(2, _el("desc", f"{_turf_summary(plan, tid, len(doors))}. "
                                f"Streets: {OSM_ATTRIBUTION}")),
           _line(2, f'<copyright{_attrs([("author", "OpenStreetMap contributors")])}>'),
           _line(3, _el("license", OSM_LICENSE_URL)), _line(2, "</copyright>")]
    lon = doors["lon"].to_numpy(float)
    lat = doors["lat"].to_numpy(float)
    xy = [np.column_stack([lon, lat])]
    if route is not None:
        xy.append(shapely.get_coordinates(route))
    allxy = np.vstack(xy)
    allxy = allxy[np.isfinite(allxy).all(axis=1)]
    if len(allxy):
        lo, hi = allxy.min(axis=0), allxy.max(axis=0)
        out.append(_line(2, _el("bounds", attrs=[
            ("minlat", _coord_text(lo[1])), ("minlon", _coord_text(lo[0])),
            ("maxlat", _coord_text(hi[1])), ("maxlon", _coord_text(hi[0]))])))
    out.append(_line(1, "</metadata>"))
    ok = np.isfinite(lon) & np.isfinite(lat)
    heads = _coord_pairs(lat[ok], lon[ok], ' <wpt lat="{}" lon="{}">')
    names, descs = _door_names(_door_texts(doors[ok]), "desc")
    out += [f"{head}{name}{desc}<type>door</type></wpt>\n"
            for head, name, desc in zip(heads, names, descs, strict=True)]
    if route is not None:
        out += [_line(1, "<trk>"), _line(2, _el("name", tid)),
                _line(2, _el("desc", f"Route of turf {tid}"))]
        for part in shapely.get_parts(route):
            c = shapely.get_coordinates(part)
            if not len(c):
                out.append(_line(2, "<trkseg />"))
                continue
            out.append(_line(2, "<trkseg>"))
            out += _coord_pairs(c[:, 1], c[:, 0], '   <trkpt lat="{}" lon="{}" />\n')
            out.append(_line(2, "</trkseg>"))
        out.append(_line(1, "</trk>"))
    out.append("</gpx>\n")
    return "".join(out).encode("utf-8")


def _kml_coords(xy: np.ndarray) -> str:
    if not len(xy):
        return ""
    return " ".join(_coord_pairs(xy[:, 0], xy[:, 1], "{},{}"))


def _kml_geometry(g: shapely.Geometry) -> str:
    """Write a geometry as one line of KML."""
    kind = shapely.get_type_id(g)
    if kind == 0:  # Point
        return f"<Point>{_el('coordinates', _kml_coords(shapely.get_coordinates(g)))}</Point>"
    if kind == 1:  # LineString
        coords = _el("coordinates", _kml_coords(shapely.get_coordinates(g)))
        return f"<LineString><tessellate>1</tessellate>{coords}</LineString>"
    if kind == 3:  # Polygon
        poly: Any = shapely.orient_polygons(g)
        rings = []
        for i, ring in enumerate([poly.exterior, *poly.interiors]):
            tag = "outerBoundaryIs" if i == 0 else "innerBoundaryIs"
            coords = _el("coordinates", _kml_coords(shapely.get_coordinates(ring)))
            rings.append(f"<{tag}><LinearRing>{coords}</LinearRing></{tag}>")
        return f"<Polygon>{''.join(rings)}</Polygon>"
    parts = "".join(_kml_geometry(part) for part in shapely.get_parts(g))
    return f"<MultiGeometry>{parts}</MultiGeometry>" if parts else "<MultiGeometry />"


def _kml_data(values: dict[str, Any]) -> str:
    data = "".join(f'<Data{_attrs([("name", k)])}>{_el("value", _text(v))}</Data>'
                   for k, v in values.items())
    return f"<ExtendedData>{data}</ExtendedData>" if data else "<ExtendedData />"


def _kml_style(sid: str, kind: str, color: str, width: str = "3") -> list[str]:
    if kind == "poly":
        body = [(1, "<LineStyle>"), (2, _el("color", color)), (2, _el("width", "2")),
                (1, "</LineStyle>"), (1, "<PolyStyle>"), (2, _el("color", "33" + color[2:])),
                (1, "</PolyStyle>")]
    elif kind == "line":
        body = [(1, "<LineStyle>"), (2, _el("color", color)), (2, _el("width", width)),
                (1, "</LineStyle>")]
    else:
        body = [(1, "<IconStyle>"), (2, _el("color", color)), (2, _el("scale", "0.8")),
                (1, "</IconStyle>")]
    return [_line(2, f'<Style{_attrs([("id", sid)])}>'),
            *(_line(2 + d, text) for d, text in body), _line(2, "</Style>")]


def _kml_placemark(*parts: str) -> str:
    return _line(3, f"<Placemark>{''.join(parts)}</Placemark>")


#: The door columns a door's KML ExtendedData carries (after ``turf_id``), in order.
_KML_DOOR_DATA = (schema.SEQ, schema.ADDRESS_ID, schema.HOUSENUMBER, schema.STREET,
                  schema.UNIT, schema.HOUSEHOLDS)


def _door_texts(doors: pd.DataFrame) -> dict[str, list[str]]:
    """``_text`` of every value of the door columns GPX and KML write, column by column."""
    return {c: [v if type(v) is str else _text(v) for v in doors[c].tolist()]
            for c in _KML_DOOR_DATA}


def _door_names(texts: dict[str, list[str]], desc_tag: str) -> tuple[list[str], list[str]]:
    """Each door's ``<name>`` (:func:`door_label`) and description element (``desc_tag``)."""
    names = [_el("name", door_label(*z)) for z in
             zip(texts[schema.SEQ], texts[schema.HOUSENUMBER], texts[schema.STREET], strict=True)]
    descs = [_el(desc_tag, _door_desc(*z)) for z in
             zip(texts[schema.HOUSEHOLDS], texts[schema.UNIT], strict=True)]
    return names, descs


def _kml_data_rows(columns: dict[str, list[str]]) -> list[str]:
    """``_kml_data`` of each row of text columns (``name -> texts``), column by column.

    A value's element is built once per distinct text (streets, units, households repeat).
    """
    cache: dict[str, str] = {}

    def value(text: str) -> str:
        el = cache.get(text)
        if el is None:
            el = cache[text] = _el("value", text)
        return el

    parts = []
    for name, texts in columns.items():
        head = f'<Data{_attrs([("name", name)])}>'
        parts.append([f"{head}{value(t)}</Data>" for t in texts])
    return [f"<ExtendedData>{''.join(row)}</ExtendedData>" for row in zip(*parts, strict=True)]


def _kml_doors(tid: str, doors: pd.DataFrame) -> list[str]:
    """Write the Placemarks of a turf's doors, in walk order (built column by column)."""
    lon = doors["lon"].to_numpy(float)
    lat = doors["lat"].to_numpy(float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    points = _coord_pairs(lon[ok], lat[ok], "<Point><coordinates>{},{}</coordinates></Point>")
    texts = _door_texts(doors[ok])
    names, descs = _door_names(texts, "description")
    data = _kml_data_rows({schema.TURF_ID: [_text(tid)] * len(points), **texts})
    return [_kml_placemark(name, desc, "<styleUrl>#door</styleUrl>", extended, point)
            for name, desc, extended, point in zip(names, descs, data, points, strict=True)]


def _by_turf(doors: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Return each turf's doors, by turf id (in turf order)."""
    return {str(k): v for k, v in doors.groupby(schema.TURF_ID, sort=True)}


def _kml(
    plan: TurfPlan, by_turf: dict[str, pd.DataFrame], routes: dict[str, shapely.Geometry]
) -> bytes:
    """All turfs as KML 2.2: one Folder per turf with its footprint, route and doors."""
    out = [_XML_DECLARATION, f"<kml{_attrs([('xmlns', KML_NS)])}>\n", _line(1, "<Document>"),
           _line(2, _el("name", "Canvassing turfs")),
           _line(2, _el("description", f"knockin_geo {__version__}. Streets: {OSM_ATTRIBUTION}")),
           *_kml_style("turf", "poly", "ff7f3f00"),
           *_kml_style("route", "line", "ffbf5f1f"),
           *_kml_style("door", "point", "ff2b39c0")]
    t = plan.turfs
    ids = t.index.astype(str)
    shapes = to_lonlat(t.geometry.to_numpy(), t.crs) if len(t) else np.array([], dtype=object)
    shape_of = dict(zip(ids, shapes, strict=True))
    for tid in sorted(ids):
        row = t.loc[tid]
        doors = by_turf.get(tid)
        n = 0 if doors is None else len(doors)
        summary = _turf_summary(plan, tid, n)
        out += [_line(2, "<Folder>"), _line(3, _el("name", tid)),
                _line(3, _el("description", summary))]
        shape = shape_of[tid]
        if shape is not None and not shapely.is_empty(shape):
            out.append(_kml_placemark(
                _el("name", f"Turf {tid}"), _el("description", summary),
                "<styleUrl>#turf</styleUrl>",
                _kml_data({
                    schema.TURF_ID: tid,
                    schema.PRECINCT_ID: row.get(schema.PRECINCT_ID),
                    "doors": n,
                    "households": row.get("households"),
                    "est_minutes": _text(_json_value(row.get("est_minutes"), 0)),
                }),
                _kml_geometry(shape),
            ))
        if tid in routes:
            out.append(_kml_placemark(
                _el("name", f"Route {tid}"), "<styleUrl>#route</styleUrl>",
                _kml_data({schema.TURF_ID: tid}), _kml_geometry(routes[tid]),
            ))
        if doors is not None:
            out += _kml_doors(tid, doors)
        out.append(_line(2, "</Folder>"))
    out += [_line(1, "</Document>"), "</kml>\n"]
    return "".join(out).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# app JSON
# ---------------------------------------------------------------------------------------------


#: The keys of a door in ``app/turfs.json``, in order.
_APP_DOOR_KEYS = (schema.SEQ, schema.ADDRESS_ID, schema.HOUSENUMBER, schema.STREET, schema.UNIT,
                  schema.HOUSEHOLDS, schema.SIDE, "lon", "lat")


def _app_doors(doors: pd.DataFrame) -> list[dict[str, Any]]:
    """Return a turf's located doors for ``app/turfs.json``, in walk order, column by column."""
    lon = doors["lon"].to_numpy(float)
    lat = doors["lat"].to_numpy(float)
    d = doors[np.isfinite(lon) & np.isfinite(lat)]
    columns = (
        [_json_value(v) for v in d[schema.SEQ].tolist()],
        *(d[c].tolist() for c in (schema.ADDRESS_ID, schema.HOUSENUMBER, schema.STREET,
                                  schema.UNIT)),
        [_json_value(v) or 1 for v in d[schema.HOUSEHOLDS].tolist()],
        d[schema.SIDE].tolist(),
        [round(float(v), COORD_DECIMALS) for v in d["lon"].tolist()],
        [round(float(v), COORD_DECIMALS) for v in d["lat"].tolist()],
    )
    return [dict(zip(_APP_DOOR_KEYS, row, strict=True)) for row in zip(*columns, strict=True)]


def _app_json(
    plan: TurfPlan,
    by_turf: dict[str, pd.DataFrame],
    routes: dict[str, shapely.Geometry],
    assignment: pd.Series | None,
) -> bytes:
    t = plan.turfs
    who = assignment.to_dict() if assignment is not None else {}
    turfs = []
    for tid in sorted(t.index.astype(str)):
        row = t.loc[tid]
        doors = by_turf.get(tid)
        route = routes.get(tid)
        coords = (
            _round_coords(shapely.get_coordinates(route).tolist()) if route is not None else []
        )
        doors_list = _app_doors(doors) if doors is not None else []
        item: dict[str, Any] = {
            schema.TURF_ID: tid,
            schema.PRECINCT_ID: _text(row.get(schema.PRECINCT_ID)) or None,
            "doors": len(doors_list),
            "households": int(sum(d[schema.HOUSEHOLDS] for d in doors_list)),
            "walk_m": _json_value(row.get("walk_m"), 1),
            "est_minutes": _json_value(row.get("est_minutes"), 1),
            "route": coords,
            "doors_list": doors_list,
        }
        cid = who.get(tid)
        if cid is not None and not pd.isna(cid):
            item[CANVASSER_ID] = str(cid)
        turfs.append(item)
    doc = {
        "schema_version": APP_SCHEMA_VERSION,
        "generated_by": f"knockin_geo {__version__}",
        "crs": "EPSG:4326",
        "attribution": OSM_ATTRIBUTION,
        "turfs": turfs,
    }
    return (compact(doc) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------
# canvassers
# ---------------------------------------------------------------------------------------------


def read_canvassers(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the canvassers from a CSV file.

    Columns (case-insensitive; other columns are ignored and never copied): ``canvasser_id``
    (or ``id``, required), ``name`` (display name), ``team``, ``lon`` and ``lat`` (home, WGS 84
    degrees, optional, both or neither) and ``capacity`` (turfs they can take, whole number
    >= 0, default 1). The delimiter (``,``, ``;``, tab or ``|``) is detected; the file is UTF-8
    (with or without BOM) or, failing that, Windows-1252.

    Parameters
    ----------
    path
        The CSV file.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``canvasser_id`` (str, sorted), columns ``name``, ``team`` (str, '' when
        absent), ``lon``, ``lat`` (float, NaN without a home) and ``capacity`` (int).

    Raises
    ------
    InputError
        Missing or unreadable file, no id column, and, naming the row (1-based data row, the
        header is row 0) and column: empty or duplicate ids, bad capacity, bad or half-given
        coordinates.
    """
    p = Path(path)
    header, body = _canvasser_rows(p)
    id_col = _canvasser_id_column(header, p)
    pos = {h: i for i, h in reversed(list(enumerate(header)))}

    def cell(row: list[str], col: str) -> str:
        i = pos.get(col)
        return row[i].strip() if i is not None and i < len(row) else ""

    problems: list[str] = []
    has_home = "lon" in pos or "lat" in pos
    seen: dict[str, int] = {}
    out: dict[str, list[Any]] = {c: [] for c in (CANVASSER_ID, *CANVASSER_COLUMNS)}
    for k, row in enumerate(body, start=1):
        cid = cell(row, id_col)
        if not cid:
            problems.append(f"row {k}, column {id_col!r}: empty id")
            continue
        if cid in seen:
            problems.append(
                f"row {k}, column {id_col!r}: duplicate id {cid!r} (first in row {seen[cid]})"
            )
            continue
        seen[cid] = k
        row_problems: list[str] = []
        capacity = _capacity(cell(row, "capacity"), k, row_problems)
        lon, lat = (
            _home(cell(row, "lon"), cell(row, "lat"), k, row_problems)
            if has_home and not row_problems
            else (math.nan, math.nan)
        )
        if row_problems:
            problems += row_problems
            continue
        out[CANVASSER_ID].append(cid)
        out["name"].append(cell(row, "name"))
        out["team"].append(cell(row, "team"))
        out["lon"].append(lon)
        out["lat"].append(lat)
        out["capacity"].append(capacity)
    if problems:
        msg = f"canvassers file {p}: {len(problems)} problem(s)"
        raise InputError(msg, problems, path=str(p))
    if not out[CANVASSER_ID]:
        msg = f"canvassers file {p} lists no canvasser"
        raise InputError(msg, path=str(p))
    return _canvasser_frame(out)


def _canvasser_id_column(header: list[str], p: Path) -> str:
    """Return the id column of a canvassers file: ``canvasser_id``, else ``id``, else refuse."""
    if CANVASSER_ID in header:
        return CANVASSER_ID
    if "id" in header:
        return "id"
    msg = (
        f"canvassers file {p}: no column 'canvasser_id' (or 'id'); "
        f"columns are {', '.join(repr(h) for h in header)}"
    )
    raise InputError(msg, path=str(p))


def _canvasser_frame(out: Mapping[str, list[Any]]) -> pd.DataFrame:
    """Return the canvassers read, as columns by name, indexed and sorted by id."""
    frame = pd.DataFrame(
        {
            "name": pd.array(out["name"], dtype="string"),
            "team": pd.array(out["team"], dtype="string"),
            "lon": np.asarray(out["lon"], dtype=float),
            "lat": np.asarray(out["lat"], dtype=float),
            "capacity": np.asarray(out["capacity"], dtype=np.int64),
        },
        index=pd.Index(out[CANVASSER_ID], dtype="string", name=CANVASSER_ID),
    )
    return frame.sort_index()


def _canvasser_rows(p: Path) -> tuple[list[str], list[list[str]]]:
    """Read the canvassers CSV (UTF-8, else cp1252; delimiter sniffed): lower-case header, rows."""
    if not p.is_file():
        msg = f"canvassers file {p} does not exist or is not a file"
        raise InputError(msg, path=str(p))
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        msg = f"canvassers file {p} is empty"
        raise InputError(msg, path=str(p))
    records = list(csv.reader(lines, delimiter=sniff_delimiter(lines[0])))
    return [h.strip().lower() for h in records[0]], records[1:]


def _capacity(cap_raw: str, k: int, problems: list[str]) -> int:
    """Read a capacity cell (1 when empty); a bad one adds a problem."""
    if not cap_raw:
        return 1
    try:
        value = float(cap_raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0 and value.is_integer()):
        problems.append(f"row {k}, column 'capacity': {cap_raw!r} is not a whole number >= 0")
        return 1
    return int(value)


def _home(lon_raw: str, lat_raw: str, k: int, problems: list[str]) -> tuple[float, float]:
    """Read a home position (NaN when both cells are empty); bad cells add problems."""
    if bool(lon_raw) != bool(lat_raw):
        missing = "lon" if not lon_raw else "lat"
        problems.append(
            f"row {k}, column {missing!r}: empty while "
            f"{'lat' if missing == 'lon' else 'lon'!r} is given (give both or neither)"
        )
        return math.nan, math.nan
    if not lon_raw:
        return math.nan, math.nan
    lon, lat = _float(lon_raw), _float(lat_raw)
    problems += [
        f"row {k}, column {c!r}: {v!r} is not a valid coordinate"
        for c, v, x, lim in (("lon", lon_raw, lon, 180), ("lat", lat_raw, lat, 90))
        if not (math.isfinite(x) and -lim <= x <= lim)
    ]
    return lon, lat


def _float(text: str) -> float:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return math.nan


def _normalise_canvassers(canvassers: pd.DataFrame) -> pd.DataFrame:
    """Accept a frame indexed by id, or with a ``canvasser_id``/``id`` column; check it."""
    c = canvassers
    for col in (CANVASSER_ID, "id"):
        if col in c.columns:
            c = c.set_index(col)
            break
    ids = [str(i) for i in c.index]
    if any(not i or i == "<NA>" for i in ids) or len(set(ids)) != len(ids):
        msg = "canvassers: ids must be non-empty and unique"
        raise InputError(msg)
    n = len(c)
    cap_in = c["capacity"] if "capacity" in c.columns else pd.Series(1, index=c.index)
    cap = pd.to_numeric(cap_in, errors="coerce").fillna(1).to_numpy(float)
    if (cap < 0).any() or not np.all(np.floor(cap) == cap):
        msg = "canvassers: capacity must hold whole numbers >= 0"
        raise InputError(msg)
    lon = pd.to_numeric(c["lon"], errors="coerce") if "lon" in c.columns else np.full(n, np.nan)
    lat = pd.to_numeric(c["lat"], errors="coerce") if "lat" in c.columns else np.full(n, np.nan)
    out = pd.DataFrame(
        {
            "name": [_text(v) for v in c["name"]] if "name" in c.columns else [""] * n,
            "team": [_text(v) for v in c["team"]] if "team" in c.columns else [""] * n,
            "lon": np.asarray(lon, dtype=float),
            "lat": np.asarray(lat, dtype=float),
            "capacity": cap.astype(np.int64),
        },
        index=pd.Index(ids, dtype="string", name=CANVASSER_ID),
    )
    return out.sort_index()


def _turf_starts(plan: TurfPlan, ids: list[str]) -> np.ndarray:
    """Where each turf starts, in the plan CRS: the route's first point, else its centroid."""
    xy = np.full((len(ids), 2), np.nan)
    r = plan.routes
    for k, tid in enumerate(ids):
        g = r.geometry.get(tid) if len(r) else None
        if g is not None and not shapely.is_empty(g):
            xy[k] = shapely.get_coordinates(g)[0]
            continue
        shape = plan.turfs.geometry.loc[tid]
        if shape is not None and not shapely.is_empty(shape):
            c = shapely.centroid(shape)
            xy[k] = (shapely.get_x(c), shapely.get_y(c))
    return xy


def assign_canvassers(plan: TurfPlan, canvassers: pd.DataFrame) -> pd.Series:
    """Give each turf a canvasser: near their home, and balanced.

    Each canvasser is expanded into ``capacity`` slots (at most one per turf). The cost of a slot
    for a turf is the straight-line distance in metres from the canvasser's home to where the turf
    starts (the route's first point, else the footprint's centroid); for a canvasser without a
    home it is a constant, the same for every turf (the largest home distance), so those turfs
    are filled by balance only. The ``k``-th slot (from 0) costs ``k`` times a penalty larger than
    any sum of distances, so that everyone gets one turf before anyone gets two. The assignment
    minimising the total cost is found with :func:`scipy.optimize.linear_sum_assignment`;
    canvassers and turfs are sorted by id first, so the result is deterministic. Turfs beyond the
    total capacity stay unassigned (logged).

    Parameters
    ----------
    plan
        A plan.
    canvassers
        From :func:`read_canvassers` (or a frame with ``canvasser_id``/``id`` as index or
        column, optional ``lon``, ``lat`` (WGS 84) and ``capacity``). Not modified.

    Returns
    -------
    pandas.Series
        ``turf_id -> canvasser_id`` for every turf (sorted by turf id), ``<NA>`` when unassigned;
        string dtype, named ``canvasser_id``.

    Raises
    ------
    InputError
        Empty or duplicate canvasser ids, bad capacity.
    """
    c = _normalise_canvassers(canvassers)
    turf_ids = sorted(plan.turfs.index.astype(str))
    result = pd.Series(
        pd.array([pd.NA] * len(turf_ids), dtype="string"),
        index=pd.Index(turf_ids, dtype="string", name=schema.TURF_ID),
        name=CANVASSER_ID,
    )
    if not turf_ids:
        return result
    n_turfs = len(turf_ids)
    starts = _turf_starts(plan, turf_ids)
    home = np.isfinite(c["lon"].to_numpy()) & np.isfinite(c["lat"].to_numpy())
    dist = np.zeros((len(c), n_turfs))
    if home.any():
        tr = Transformer.from_crs(CRS.from_epsg(4326), plan.crs, always_xy=True)
        hx, hy = tr.transform(c["lon"].to_numpy()[home], c["lat"].to_numpy()[home])
        d = np.hypot(hx[:, None] - starts[None, :, 0], hy[:, None] - starts[None, :, 1])
        finite = np.isfinite(d)
        fallback = float(d[finite].max()) if finite.any() else 0.0
        dist[home] = np.where(finite, d, fallback)
        dist[~home] = fallback
    penalty = max(SLOT_PENALTY_M, (float(dist.max()) + 1.0) * (n_turfs + 1))
    rows: list[int] = []
    slot: list[int] = []
    for i, cap in enumerate(c["capacity"].to_numpy()):
        for k in range(min(int(cap), n_turfs)):
            rows.append(i)
            slot.append(k)
    if not rows:
        logger.warning("no canvasser has any capacity: all %d turfs stay unassigned", n_turfs)
        return result
    cost = dist[np.asarray(rows)] + penalty * np.asarray(slot, dtype=float)[:, None]
    r_idx, t_idx = linear_sum_assignment(cost)
    ids = c.index.to_numpy(dtype=object)
    for r, t in zip(r_idx, t_idx, strict=True):
        result.iloc[t] = str(ids[rows[r]])
    left = result.index[result.isna()].tolist()
    if left:
        logger.warning(
            "%d turf(s) stay unassigned: the canvassers' capacity (%d) is smaller than the "
            "number of turfs (%d): %s",
            len(left), len(rows), n_turfs, ", ".join(left),
        )
    return result


def _check_assignment(
    plan: TurfPlan, assignment: pd.Series, canvassers: pd.DataFrame | None
) -> pd.Series:
    """Return the assignment as ``turf_id -> canvasser_id`` strings; check its ids."""
    a = pd.Series(
        pd.array([_text(v) or pd.NA for v in assignment.to_numpy(dtype=object)],
                 dtype="string"),
        index=pd.Index([str(i) for i in assignment.index], dtype="string", name=schema.TURF_ID),
        name=CANVASSER_ID,
    )
    unknown_turfs = sorted(set(a.index) - set(plan.turfs.index.astype(str)))
    problems = [f"unknown turf id {t!r}" for t in unknown_turfs]
    if canvassers is not None:
        known = set(_normalise_canvassers(canvassers).index)
        problems += [
            f"turf {t!r}: unknown canvasser id {v!r}"
            for t, v in a.dropna().items()
            if v not in known
        ]
    if problems:
        msg = "the assignment does not match the plan or the canvassers"
        raise InputError(msg, problems)
    return a


# ---------------------------------------------------------------------------------------------
# packets
# ---------------------------------------------------------------------------------------------


def safe_folder_name(name: str) -> str:
    """Return a file-system-safe folder name for an id (no separators, no leading dot).

    Parameters
    ----------
    name
        An id, e.g. a canvasser id.

    Returns
    -------
    str
        Letters, digits, ``_``, ``.`` and ``-`` only; never empty, ``.`` or ``..``.
    """
    safe = _SAFE.sub("_", name)
    if not safe or safe.startswith("."):
        safe = "_" + safe
    return safe


def write_packets(
    plan: TurfPlan, out_dir: str | os.PathLike[str], assignment: pd.Series,
    canvassers: pd.DataFrame, *, lang: str = "fr",
    extra_files: Callable[[str], Mapping[str, bytes]] | None = None, workers: int | None = 1,
) -> list[Path]:
    """Write one packet folder per canvasser, ``out_dir/packets/<canvasser_id>/``.

    A packet holds only that canvasser's turfs: for each, the walk list
    (:func:`knockin_geo.walklist.walk_list_html`, ``<turf>.html``) and the GPX file
    (``<turf>.gpx``, as in the exports), plus a ``README.txt`` listing the turfs, doors and
    minutes. Every canvasser gets a folder (its README says when no turf is assigned). The
    ``packets`` folder is built in a temporary folder and swapped in whole.

    Parameters
    ----------
    plan
        A routed plan.
    out_dir
        Output folder (created if needed).
    assignment
        ``turf_id -> canvasser_id`` (:func:`assign_canvassers`); missing values are skipped.
    canvassers
        The canvassers (:func:`read_canvassers`); their ``name`` and ``team`` head the README.
    lang
        Language of the walk lists and README (``fr`` or ``en``).
    extra_files
        Hook for more per-turf files (e.g. volunteer maps): called with a turf id, returns
        ``{file name: bytes}`` to add to the packet of that turf's canvasser. Names must be
        plain file names that do not clash with the other files of the packet.
    workers
        Processes that build the turfs' files (:func:`knockin_geo._pool.per_turf`; the hook
        runs in them too); None: one per core. The bytes are the same whatever the number.

    Returns
    -------
    list of pathlib.Path
        The files written (final paths), sorted.

    Raises
    ------
    InputError
        The assignment names unknown turfs or canvassers.
    ValueError
        Unknown language, two canvasser ids with the same folder name, or a bad extra file name.
    """
    if lang not in _README:
        msg = f"unknown language {lang!r}: use one of {sorted(_README)}"
        raise ValueError(msg)
    c = _normalise_canvassers(canvassers)
    a = _check_assignment(plan, assignment, c)
    folders = _packet_folders(c)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    built = _turf_files(plan, sorted(a.dropna().index.astype(str)), lang, extra_files, workers)
    packets = {cid: _packet_files(plan, a, cid, c.loc[cid], built, lang) for cid in c.index}
    tmp = Path(tempfile.mkdtemp(prefix=".knockin-packets-", dir=out))
    try:
        build = tmp / PACKETS_DIR
        build.mkdir()
        relative: list[str] = []
        for cid, files in packets.items():
            folder = build / folders[cid]
            folder.mkdir()
            for name in sorted(files):
                (folder / name).write_bytes(files[name])
                relative.append(f"{folders[cid]}/{name}")
        target = out / PACKETS_DIR
        if target.exists():
            os.replace(target, tmp / f"{PACKETS_DIR}.old")
        os.replace(build, target)
        logger.info("wrote %d packets into %s", len(c), target)
        return [target / r for r in sorted(relative)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _packet_folders(c: pd.DataFrame) -> dict[str, str]:
    """Return each canvasser's packet folder name; refuse two ids that map to the same one."""
    folders = {cid: safe_folder_name(cid) for cid in c.index}
    if len(set(folders.values())) != len(folders):
        msg = "two canvasser ids map to the same packet folder name; make the ids distinct"
        raise ValueError(msg)
    return folders


class _TurfFiles(NamedTuple):
    """The packet files of each assigned turf, with the doors and names their README lists."""

    files: dict[str, list[tuple[str, bytes]]]
    by_turf: dict[str, pd.DataFrame]
    html_names: dict[str, str]
    gpx_names: dict[str, str]


def _turf_files(
    plan: TurfPlan, given: list[str], lang: str,
    extra_files: Callable[[str], Mapping[str, bytes]] | None, workers: int | None,
) -> _TurfFiles:
    """Build the walk list, GPX and extra files of the ``given`` turfs, ``workers`` at once."""
    doors = _assigned(_door_table(plan))
    by_turf = _by_turf(doors)
    routes = _route_table(plan)
    html_names = turf_file_names(plan.turfs.index.astype(str))
    gpx_names = gpx_file_names(plan.turfs.index.astype(str))

    def turf_files(p: TurfPlan, tid: str) -> list[tuple[str, bytes]]:
        d = by_turf.get(tid, doors.iloc[:0])
        extra = extra_files(tid) if extra_files is not None else {}
        return [(html_names[tid], walk_list_html(p, tid, lang=lang).encode("utf-8")),
                (gpx_names[tid], _gpx(p, tid, d, routes)),
                *((name, bytes(data)) for name, data in extra.items())]

    built = dict(zip(given, per_turf(turf_files, plan, given, workers), strict=True))
    return _TurfFiles(built, by_turf, html_names, gpx_names)


def _packet_files(
    plan: TurfPlan, a: pd.Series, cid: str, who: pd.Series, built: _TurfFiles, lang: str
) -> dict[str, bytes]:
    """Return the files of canvasser ``cid``'s packet: its turfs' files and the README.

    An extra file name that is a path, hidden, ``README.txt`` or already taken is refused.
    """
    turfs = sorted(a.index[(a == cid).fillna(False).to_numpy(bool)].tolist())
    files: dict[str, bytes] = {}
    for tid in turfs:
        html, gpx, *extra = built.files[tid]
        files.update([html, gpx])
        for name, data in extra:
            if name != Path(name).name or name in files or name == "README.txt" \
                    or name.startswith("."):
                msg = f"extra file name {name!r} for turf {tid!r} is not usable"
                raise ValueError(msg)
            files[name] = data
    files["README.txt"] = _readme(plan, cid, who, turfs, built.by_turf, built.html_names,
                                  built.gpx_names, lang, extra=sorted(files))
    return files


def _readme(
    plan: TurfPlan,
    cid: str,
    who: pd.Series,
    turfs: list[str],
    by_turf: dict[str, pd.DataFrame],
    html_names: dict[str, str],
    gpx_names: dict[str, str],
    lang: str,
    extra: list[str] | None = None,
) -> bytes:
    L = _README[lang]
    listed = {*html_names.values(), *gpx_names.values()}
    name = _text(who.get("name"))
    lines = [L["title"], "=" * len(L["title"]), ""]
    lines.append(f"{L['for']}: {name} ({cid})" if name else f"{L['for']}: {cid}")
    if _text(who.get("team")):
        lines.append(f"{L['team']}: {_text(who.get('team'))}")
    lines.append("")
    if not turfs:
        lines.append(L["none"])
    else:
        lines.append(f"{L['turfs']}:")
        total_doors = total_hh = 0
        total_min = 0.0
        for tid in turfs:
            t = plan.turfs.loc[tid]
            d = by_turf.get(tid)
            n = 0 if d is None else len(d)
            hh = 0 if d is None else int(pd.to_numeric(d[schema.HOUSEHOLDS]).fillna(1).sum())
            minutes = float(t.get("est_minutes", np.nan))
            total_doors += n
            total_hh += hh
            total_min += minutes if math.isfinite(minutes) else 0.0
            mtext = f"{minutes:.0f}" if math.isfinite(minutes) else "?"
            lines.append(
                f"  - {tid}: {n} {L['doors']}, {hh} {L['households']}, {mtext} {L['minutes']}"
            )
        lines.append(
            f"  {L['total']}: {total_doors} {L['doors']}, {total_hh} {L['households']}, "
            f"{total_min:.0f} {L['minutes']}"
        )
        lines += ["", f"{L['files']}:"]
        for tid in turfs:
            lines.append(f"  - {html_names[tid]}: {L['html']}")
            lines.append(f"  - {gpx_names[tid]}: {L['gpx']}")
        for name in extra or []:
            if name not in listed:
                what = L["map"] if name.endswith("-map.html") else ""
                lines.append(f"  - {name}" + (f": {what}" if what else ""))
    lines += ["", OSM_ATTRIBUTION, ""]
    return "\n".join(lines).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """Return a value as text: '' for missing, integers without a decimal point."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
        return str(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)
