"""Readers for the two inputs of the pipeline: precinct polygons and address points (doors).

Both readers return GeoDataFrames that follow the contracts in :mod:`knockin_geo.schema`:
precincts indexed by ``precinct_id`` and addresses indexed by ``address_id``. They keep the CRS of
the file (the pipeline reprojects), collect every problem of a file into one
:class:`~knockin_geo.InputError`, and never change a value silently: rows with unusable coordinates
are kept with a status, repaired polygons are listed.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import difflib
import gzip
import hashlib
import io
import logging
import lzma
import os
import re
import tomllib
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

import charset_normalizer
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS, Transformer

from knockin_geo import schema
from knockin_geo._errors import CRSError, InputError

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

__all__ = [
    "ADDRESS_ROLES",
    "load_column_map",
    "read_addresses",
    "read_precincts",
    "read_text",
    "sniff_delimiter",
]

# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

MISSING_COORDINATES: Final = "missing_coordinates"
BAD_COORDINATES: Final = "bad_coordinates"
DUPLICATE: Final = "duplicate"
for _status in (MISSING_COORDINATES, BAD_COORDINATES, DUPLICATE):
    assert _status in schema.ADDRESS_STATUSES, _status

#: Candidate id columns of a precinct layer, in order of preference (matched case-insensitively).
PRECINCT_ID_CANDIDATES: Final = (
    "precinct_id",
    "code_bv",
    "codeBureauVote",
    "id_bv",
    "GEOID20",
    "GEOID10",
    "GEOID",
    "VTDST20",
    "VTDST",
    "PRECINCT",
    "precinct",
    "bureau",
    "code_bureau",
    "numero_bv",
    "id",
    # areas that are not precincts: communes, municipalities
    "municipality_id",
    "municipality",
    "codeCommune",
    "code_commune",
    "code_insee",
)
#: Candidate name columns of a precinct layer.
PRECINCT_NAME_CANDIDATES: Final = ("name", "nom", "NAME20", "NAMELSAD20", "libelle")

#: Roles an address column can play, and the column names recognised for each (lower case,
#: in order of preference). ``address`` is a full address line ("12 bis Rue X") from which the
#: street (and the house number, if there is no number column) is derived.
_ADDRESS_SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
    "id": ("address_id", "addr_id", "id_adresse", "id", "uid"),
    "lon": ("lon", "lng", "long", "longitude", "x_wgs84", "long_wgs84", "lon_wgs84"),
    "lat": ("lat", "latitude", "lat_wgs84", "y_wgs84"),
    "x": ("x", "easting", "coord_x"),
    "y": ("y", "northing", "coord_y"),
    "housenumber": ("housenumber", "house_number", "number", "numero", "num", "addr:housenumber"),
    "rep": ("rep", "suffixe", "indice_repetition"),
    "street": ("street", "street_name", "nom_voie", "voie", "addr:street", "rue"),
    "address": ("adresse", "address", "full_address", "adresse_complete"),
    "unit": ("unit", "apt", "apartment", "addr:unit"),
    "households": ("households", "menages", "nb_logements", "units"),
    "city": ("city", "nom_commune", "commune", "nomcom", "ville", "town", "addr:city"),
    "postcode": ("postcode", "code_postal", "postal_code", "zip", "zipcode", "addr:postcode"),
}
#: Every role accepted in a column map.
ADDRESS_ROLES: Final = tuple(_ADDRESS_SYNONYMS)
_COORD_ROLES: Final = frozenset({"lon", "lat", "x", "y"})

_OGR_SUFFIXES: Final = frozenset(
    {
        ".geojson",
        ".json",
        ".geojsonl",
        ".geojsons",
        ".gpkg",
        ".shp",
        ".fgb",
        ".gml",
        ".kml",
        ".sqlite",
    }
)
_DELIMITERS: Final = (",", ";", "\t", "|")
_MAX_HOUSEHOLDS: Final = 1_000_000
#: Leading house number of an address line: "12", "12B", "12 bis", "15 A B C D", "3, ".
_LEADING_NUMBER: Final = r"(?i)^\s*(\d+(?:\s?(?:bis|ter|quater|quinquies|[a-z])\b)*)[\s,]+"
_LATIN_FAMILY: Final = frozenset(
    {
        "ascii",
        "latin_1",
        "iso8859_1",
        "iso8859_2",
        "iso8859_3",
        "iso8859_4",
        "iso8859_9",
        "iso8859_10",
        "iso8859_13",
        "iso8859_14",
        "iso8859_15",
        "iso8859_16",
        "cp1250",
        "cp1252",
        "cp1254",
        "cp1257",
        "cp437",
        "cp775",
        "cp850",
        "cp852",
        "cp857",
        "cp858",
        "mac_roman",
        "mac_latin2",
        "mac_iceland",
        "hp_roman8",
    }
)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def existing_file(path: PathLike, what: str) -> Path:
    """Return ``path`` if it is a file; else an ``InputError`` naming ``what`` and the path."""
    p = Path(path)
    if not p.exists():
        msg = f"{what} file not found: {p}"
        raise InputError(msg, path=str(p))
    if p.is_dir() and p.suffix.lower() != ".gdb":
        msg = f"{what} path is a folder, not a file: {p}"
        raise InputError(msg, path=str(p))
    if p.is_file() and p.stat().st_size == 0:
        msg = f"{what} file is empty (0 bytes): {p}"
        raise InputError(msg, path=str(p))
    return p


def close_matches(name: str, columns: Sequence[str]) -> str:
    """Return " (did you mean ...?)" with the columns closest to ``name``, or ""."""
    lower = {c.lower(): c for c in columns}
    hits = difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)
    if not hits:
        return ""
    return " (did you mean " + " or ".join(repr(lower[h]) for h in hits) + "?)"


def list_columns(columns: Sequence[str]) -> str:
    """Return the columns quoted and comma-separated, for messages."""
    return ", ".join(repr(c) for c in columns) if len(columns) else "(none)"


def series_to_str(s: pd.Series) -> pd.Series:
    """Return a string column: numbers without a spurious ".0", missing values as ""."""
    if pd.api.types.is_bool_dtype(s):
        out = s.astype(object).where(s.notna(), "").astype(str)
    elif pd.api.types.is_integer_dtype(s):
        out = s.astype("Int64").astype(str).where(s.notna(), "")
    elif pd.api.types.is_float_dtype(s):
        values = s.to_numpy(dtype=float, na_value=np.nan)
        integral = np.isfinite(values) & (np.abs(values) < 2**53)
        integral &= np.floor(np.where(integral, values, 0.0)) == np.where(integral, values, 0.0)
        text = pd.Series(values, index=s.index).astype(str)
        as_int = pd.Series(np.where(integral, values, 0.0), index=s.index).astype(np.int64)
        out = text.where(~integral, as_int.astype(str)).where(~np.isnan(values), "")
    else:
        obj = s.astype(object)
        # pandas-stubs type Series.ne's operand as a scalar value; a type object compares fine
        not_text = obj.map(type).ne(str).any()  # type: ignore[arg-type]
        out = obj.where(obj.notna(), "").map(_scalar_to_str) if not_text else obj
        out = out.astype(str)
    return out.str.strip().astype(str)


def _scalar_to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _normalise_space(s: pd.Series) -> pd.Series:
    s = s.str.strip()
    runs = s.str.contains(r"\s\s|[^\S ]", regex=True)
    if runs.any():
        s = s.where(~runs, s.str.replace(r"\s+", " ", regex=True))
    return s


# --------------------------------------------------------------------------------------------
# Precincts
# --------------------------------------------------------------------------------------------


def _read_ogr(p: Path, layer: str | int | None, what: str) -> gpd.GeoDataFrame:
    try:
        return pyogrio.read_dataframe(p, layer=layer)
    except Exception as exc:  # any failure of the reader means the file is unreadable
        detail = str(exc).split("; It might help")[0]
        msg = f"cannot read {what} file {p}: {detail}"
        raise InputError(msg, path=str(p)) from exc


def _pick_column(
    columns: Sequence[str], wanted: str | None, candidates: Sequence[str]
) -> str | None:
    lower = {c.lower(): c for c in reversed(list(columns))}
    if wanted is not None:
        if wanted in columns:
            return wanted
        return lower.get(wanted.lower())
    for cand in candidates:
        if cand.lower() in lower:
            return lower[cand.lower()]
    return None


_CRS_EXAMPLES = (
    "give an EPSG code such as EPSG:4326 (longitude/latitude) or EPSG:2154 (Lambert-93)"
)
#: How each reader's ``crs=`` is spelled on the command line and in a campaign file.
_CRS_FLAGS = {
    "precincts": "--precincts-crs (crs= in Python, precincts_crs in a campaign file)",
    "addresses": "--crs (crs= in Python and in a campaign file)",
}


def _resolve_layer_crs(
    gdf: gpd.GeoDataFrame, crs: Any, p: Path, problems: list[str], what: str
) -> CRS | None:
    """Return the CRS to give the layer; append a problem (and return None) when there is none.

    ``what`` (``precincts`` or ``addresses``) picks the flag the messages name.
    """
    how = _CRS_FLAGS[what]
    flag = how.split(" ", 1)[0]
    file_crs = CRS.from_user_input(gdf.crs) if gdf.crs is not None else None
    given = None
    if crs is not None:
        try:
            given = CRS.from_user_input(crs)
        except Exception as exc:  # pyproj raises its own CRSError for unknown strings
            msg = f"unknown CRS {crs!r} for {p} ({flag}): {_CRS_EXAMPLES}"
            raise CRSError(msg, path=str(p)) from exc
    geoms = gdf.geometry.to_numpy()
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    out_of_range = False
    example = ""
    if present.any():
        minx, miny, maxx, maxy = shapely.total_bounds(geoms[present])
        out_of_range = bool(max(abs(minx), abs(maxx)) > 180 or max(abs(miny), abs(maxy)) > 90)
        example = f"({minx:.6g}, {miny:.6g})"
    if file_crs is None:
        if given is None:
            problems.append(
                f"the file has no CRS (a Shapefile without its .prj?): give one with {how}, "
                f"for example {flag} EPSG:4326 for longitude/latitude or {flag} EPSG:2154 for "
                f"Lambert-93; coordinates look like {example}"
            )
            return None
        return given
    if file_crs.is_geographic and out_of_range:
        if given is not None and not given.is_geographic:
            logger.warning(
                "%s: declares %s but holds projected coordinates %s; using crs=%s",
                p,
                file_crs.to_string(),
                example,
                given.to_string(),
            )
            return given
        problems.append(
            f"the file says {file_crs.to_string()} (longitude/latitude) but holds coordinates "
            f"like {example}, outside -180..180 / -90..90: give the real CRS with {how} "
            f"(for example {flag} EPSG:2154 for Lambert-93)"
        )
        return None
    if given is not None and given != file_crs:
        problems.append(
            f"the file declares {file_crs.to_string()} but {flag} {given.to_string()} was given: "
            f"drop {flag} (it is only for files without a CRS) or fix the file"
        )
        return None
    return file_crs


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Repair geometries with make_valid and keep only their polygonal parts."""
    fixed = shapely.make_valid(geoms, method="structure", keep_collapsed=False)
    out = fixed.copy()
    for i, geom in enumerate(fixed):  # only the few repaired polygons go through here
        if geom is None or shapely.get_type_id(geom) in (3, 6):
            continue
        parts = shapely.get_parts(geom)
        polys = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
        out[i] = shapely.union_all(polys) if len(polys) else shapely.Polygon()
    return out


def read_precincts(
    path: PathLike,
    *,
    id_column: str | None = None,
    name_column: str | None = None,
    crs: Any = None,
    layer: str | int | None = None,
) -> gpd.GeoDataFrame:
    """Read precinct polygons from any OGR vector file.

    Parameters
    ----------
    path
        GeoJSON, GeoPackage, Shapefile (also zipped), FlatGeobuf or any other format GDAL reads.
    id_column
        Column holding the precinct id. Detected when omitted (``precinct_id``, ``code_bv``,
        ``GEOID20``, ``PRECINCT``, ``bureau``, ... ``id``; case-insensitive).
    name_column
        Column holding a display name, kept as ``name``. Detected when omitted (``name``,
        ``nom``, ``NAME20``, ``NAMELSAD20``, ``libelle``).
    crs
        CRS of the coordinates when the file has none (anything pyproj accepts).
    layer
        Layer name or index for multi-layer files.

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by ``precinct_id`` (str), (Multi)Polygon geometry in the file's CRS, the ``name``
        column when found and the file's other attribute columns. ``attrs`` holds ``source``,
        ``id_column``, ``name_column`` and ``repaired`` (ids of invalid polygons repaired with
        :func:`shapely.make_valid`).

    Raises
    ------
    InputError
        Missing, empty or unreadable file, no usable id column, null or duplicate ids, null, empty
        or non-polygon geometries. Every problem of the file is listed at once.
    CRSError
        The file has no CRS (or an implausible one) and ``crs`` was not given.
    """
    p = existing_file(path, "precincts")
    gdf = _precinct_layer(p, layer)
    geom_col = gdf.geometry.name
    attr_cols = [c for c in gdf.columns if c != geom_col]
    id_col, name_col = _precinct_columns(attr_cols, id_column, name_column, p)
    ids = series_to_str(gdf[id_col])
    rows = np.arange(1, len(gdf) + 1)
    null_id = (gdf[id_col].isna() | ids.eq("")).to_numpy()
    problems = _precinct_id_problems(ids, null_id, rows, id_col)
    label = np.where(
        null_id,
        np.char.add("feature ", rows.astype(str)),
        np.char.add("precinct ", ids.to_numpy(str)),
    )
    geoms, repaired = _precinct_geometries(gdf.geometry.to_numpy(), label, ids, problems, p)

    out_crs = _resolve_layer_crs(gdf, crs, p, problems, "precincts")
    if problems:
        only_crs = out_crs is None and len(problems) == 1
        cls = CRSError if only_crs else InputError
        msg = f"precincts file {p} has {len(problems)} problem(s)"
        raise cls(msg, problems, path=str(p))

    other = [c for c in attr_cols if c not in (id_col, name_col, schema.NAME, schema.PRECINCT_ID)]
    data: dict[str, Any] = {}
    if name_col is not None:
        data[schema.NAME] = series_to_str(gdf[name_col]).to_numpy()
    for col in other:
        data[col] = gdf[col].to_numpy()
    index = pd.Index(ids.to_numpy(), name=schema.PRECINCT_ID, dtype=str)
    out = gpd.GeoDataFrame(data, geometry=geoms, crs=out_crs, index=index)
    out.attrs = {"source": str(p), "id_column": id_col, "name_column": name_col,
                 "repaired": repaired}
    logger.info("read %d precincts from %s (id column %r)", len(out), p, id_col)
    return out


def _precinct_layer(p: Path, layer: str | int | None) -> gpd.GeoDataFrame:
    """Read the precincts layer; refused without features or without a geometry column."""
    gdf = _read_ogr(p, layer, "precincts")
    if len(gdf) == 0:
        msg = f"precincts file {p} has no features"
        raise InputError(msg, path=str(p))
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        msg = f"precincts file {p} has no geometry column"
        raise InputError(msg, path=str(p))
    return gdf


def _precinct_columns(
    attr_cols: list[str], id_column: str | None, name_column: str | None, p: Path
) -> tuple[str, str | None]:
    """Find the precinct id column (required) and the name column."""
    id_col = _pick_column(attr_cols, id_column, PRECINCT_ID_CANDIDATES)
    if id_col is None:
        if id_column is not None:
            msg = (
                f"precincts file {p} has no column {id_column!r}"
                f"{close_matches(id_column, attr_cols)}; the columns are: "
                f"{list_columns(attr_cols)}. Choose one with --precinct-id COL"
            )
        else:
            msg = (
                f"cannot find the precinct id column in {p}; the columns are: "
                f"{list_columns(attr_cols)}. Choose one with --precinct-id COL"
            )
        raise InputError(msg, path=str(p))
    name_col = _pick_column(attr_cols, name_column, PRECINCT_NAME_CANDIDATES)
    if name_col is None and name_column is not None:
        msg = (
            f"precincts file {p} has no column {name_column!r}"
            f"{close_matches(name_column, attr_cols)}; the columns are: {list_columns(attr_cols)}"
        )
        raise InputError(msg, path=str(p))
    return id_col, name_col


def _precinct_id_problems(
    ids: pd.Series, null_id: np.ndarray, rows: np.ndarray, id_col: str
) -> list[str]:
    """List the empty and the repeated precinct ids."""
    problems = [f"feature {r}: empty precinct id (column {id_col!r})" for r in rows[null_id]]
    dup_mask = ids.duplicated(keep=False).to_numpy() & ~null_id
    if dup_mask.any():
        groups = pd.Series(rows[dup_mask]).groupby(ids.to_numpy()[dup_mask], sort=True)
        problems += [
            f"precinct id {pid!r} appears {len(r)} times, in features {', '.join(map(str, r))}"
            for pid, r in groups
        ]
    return problems


def _precinct_geometries(
    geoms: np.ndarray, label: np.ndarray, ids: pd.Series, problems: list[str], p: Path
) -> tuple[np.ndarray, list[str]]:
    """Check the polygons (problems appended) and repair invalid ones; return the repaired ids."""
    missing = shapely.is_missing(geoms)
    problems += [f"{lab}: no geometry" for lab in label[missing]]
    type_ids = shapely.get_type_id(geoms)
    not_poly = ~missing & ~np.isin(type_ids, (3, 6))
    problems += [
        f"{lab}: geometry is a {g.geom_type}, not a polygon"
        for lab, g in zip(label[not_poly], geoms[not_poly], strict=True)
    ]
    empty = ~missing & ~not_poly & shapely.is_empty(geoms)
    problems += [f"{lab}: empty geometry" for lab in label[empty]]

    usable = ~missing & ~not_poly & ~empty
    invalid = usable & ~shapely.is_valid(geoms)
    repaired: list[str] = []
    if invalid.any():
        geoms = geoms.copy()
        fixed = _polygonal(geoms[invalid])
        still_empty = shapely.is_empty(fixed)
        geoms[invalid] = fixed
        problems += [
            f"{lab}: invalid polygon that cannot be repaired" for lab in label[invalid][still_empty]
        ]
        repaired = [str(i) for i in ids.to_numpy()[invalid][~still_empty]]
        if repaired:
            logger.warning(
                "%s: repaired %d invalid polygon(s) with make_valid: %s",
                p,
                len(repaired),
                ", ".join(repaired[:20]) + (" ..." if len(repaired) > 20 else ""),
            )
    return geoms, repaired


# --------------------------------------------------------------------------------------------
# Column maps
# --------------------------------------------------------------------------------------------


def load_column_map(path: PathLike) -> dict[str, str]:
    """Read a column map from a TOML file.

    The file holds an ``[addresses]`` table (or top-level keys) of ``role = "source column"``,
    for example ``lon = "LONG_WGS84"``. Roles are those of :data:`ADDRESS_ROLES`.

    Parameters
    ----------
    path
        The TOML file.

    Returns
    -------
    dict
        Role -> source column name.

    Raises
    ------
    InputError
        Missing or unparsable file, unknown roles or non-string values.
    """
    p = existing_file(path, "column map")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"cannot parse column map {p}: {exc}"
        raise InputError(msg, path=str(p)) from exc
    table = doc.get("addresses", doc)
    if not isinstance(table, dict):
        msg = f'column map {p}: [addresses] must be a table of role = "column"'
        raise InputError(msg, path=str(p))
    problems = []
    for role, col in table.items():
        if role not in ADDRESS_ROLES:
            problems.append(
                f"unknown role {role!r}{close_matches(role, ADDRESS_ROLES)}; "
                f"roles are: {', '.join(ADDRESS_ROLES)}"
            )
        elif not isinstance(col, str):
            problems.append(f"{role}: the column name must be a string, got {col!r}")
    if problems:
        msg = f"column map {p} is not valid"
        raise InputError(msg, problems, path=str(p))
    return {str(k): str(v) for k, v in table.items()}


# --------------------------------------------------------------------------------------------
# Address files: bytes, text, table
# --------------------------------------------------------------------------------------------


def _is_ogr_source(p: Path) -> bool:
    suffix = p.suffix.lower()
    if suffix in _OGR_SUFFIXES or p.is_dir():
        return True
    if suffix == ".zip":
        try:
            with zipfile.ZipFile(p) as zf:
                names = [n.lower() for n in zf.namelist()]
        except (zipfile.BadZipFile, OSError) as exc:
            msg = f"cannot open zip file {p}: {exc}"
            raise InputError(msg, path=str(p)) from exc
        return any(Path(n).suffix in _OGR_SUFFIXES for n in names)
    return False


def read_raw(p: Path) -> bytes:
    """Return the bytes of a file, decompressed by its suffix (gz, bz2, xz, zip)."""
    suffix = p.suffix.lower()
    try:
        raw = p.read_bytes()
        if suffix == ".gz":
            return gzip.decompress(raw)
        if suffix == ".bz2":
            return bz2.decompress(raw)
        if suffix in (".xz", ".lzma"):
            return lzma.decompress(raw)
        if suffix == ".zip":
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                members = [i for i in zf.infolist() if not i.is_dir()]
                texts = [
                    i
                    for i in members
                    if Path(i.filename).suffix.lower() in (".csv", ".txt", ".tsv", ".psv")
                ]
                chosen = texts if texts else members
                if len(chosen) != 1:
                    msg = (
                        f"zip file {p} holds {len(chosen)} candidate files "
                        f"({', '.join(i.filename for i in chosen[:10])}): "
                        "zip exactly one CSV file"
                    )
                    raise InputError(msg, path=str(p))
                return zf.read(chosen[0])
        return raw
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as exc:
        msg = f"cannot read or decompress {p}: {exc}"
        raise InputError(msg, path=str(p)) from exc


def _latin_choice(data: bytes) -> str:
    """Pick between the two Western-European 8-bit encodings seen in address files."""
    has_c1 = re.search(rb"[\x80-\x9f]", data) is not None
    if has_c1:
        try:
            data.decode("cp1252")
        except UnicodeDecodeError:
            return "latin_1"
        return "cp1252"
    return "iso8859_15"


def _guess_encodings(data: bytes) -> list[str]:
    sample = data[: 1 << 20]
    matches = charset_normalizer.from_bytes(sample)
    names = [m.encoding for m in matches]
    if not names:
        return []
    if names[0] in _LATIN_FAMILY or any(n in ("cp1252", "iso8859_15") for n in names[:5]):
        first = _latin_choice(data)
        return [first] + [n for n in names if n != first]
    return names


def decode_text(data: bytes, encoding: str | None, p: Path) -> tuple[str, str]:
    """Return the text and the encoding used (``encoding``, or UTF-8, or detected)."""
    if encoding is not None:
        try:
            name = codecs.lookup(encoding).name
        except LookupError as exc:
            msg = f"unknown encoding {encoding!r} for {p}"
            raise InputError(msg, path=str(p)) from exc
        codec = "utf-8-sig" if name == "utf-8" else name
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            guesses = _guess_encodings(data)
            hint = f" It looks like {guesses[0]}." if guesses else ""
            msg = (
                f"{p} is not valid {encoding}: byte 0x{data[exc.start]:02x} on line {line} "
                f"cannot be decoded.{hint} Set the encoding (encoding='cp1252' / "
                "--encoding cp1252, for example) or leave it out to detect it"
            )
            raise InputError(msg, path=str(p)) from exc
        used = name
    else:
        text, used = "", ""
        if b"\x00" not in data:
            with contextlib.suppress(UnicodeDecodeError):
                text, used = data.decode("utf-8-sig"), "utf-8"
        if not used:
            for cand in _guess_encodings(data):
                try:
                    text, used = data.decode(cand), cand
                    break
                except (UnicodeDecodeError, LookupError):
                    continue
            if not used:
                msg = (
                    f"cannot detect the text encoding of {p}: is it a CSV file? "
                    "Set the encoding with encoding= / --encoding"
                )
                raise InputError(msg, path=str(p))
            logger.info("%s: not UTF-8, decoded as %s", p, used)
    if "\x00" in text:
        msg = f"{p} contains NUL characters: it is not a text CSV file (or set --encoding)"
        raise InputError(msg, path=str(p))
    return text, used


def sniff_delimiter(text: str) -> str:
    """Return the delimiter of a CSV text: the most frequent of ``, ; TAB |`` on its first line.

    Only those four are candidates (never a letter, as ``csv.Sniffer`` may pick: it splits a
    one-column header ``address_id`` on "d"); a line with none of them is one column: ``,``.
    """
    first = text.lstrip("\r\n").split("\n", 1)[0]
    unquoted = re.sub(r'"[^"]*"', "", first)
    counts = [unquoted.count(d) for d in _DELIMITERS]
    best = int(np.argmax(counts))
    return _DELIMITERS[best] if counts[best] > 0 else ","


def read_text(path: PathLike, what: str, encoding: str | None = None) -> tuple[Path, str]:
    """Read a text file for a reader of another module (opt-outs, voter files).

    Parameters
    ----------
    path
        The file, plain or compressed (``.gz``, ``.bz2``, ``.xz``, ``.zip``).
    what
        What the file is, for messages (``"opt-out"`` gives "opt-out file not found: ...").
    encoding
        Text encoding; detected when omitted (UTF-8 first, then charset detection).

    Returns
    -------
    tuple of (pathlib.Path, str)
        The path and the decoded text.

    Raises
    ------
    InputError
        Missing, empty, unreadable or undecodable file.
    """
    p = existing_file(path, what)
    text, _encoding = decode_text(read_raw(p), encoding, p)
    return p, text


def _parse_csv(text: str, delimiter: str, p: Path) -> pd.DataFrame:
    if not text.strip():
        msg = f"addresses file {p} is empty: no data rows"
        raise InputError(msg, path=str(p))
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            quotechar='"',
            doublequote=True,
            skip_blank_lines=True,
            engine="c",
            low_memory=False,
        )
    except pd.errors.EmptyDataError as exc:
        msg = f"addresses file {p} is empty: no data rows"
        raise InputError(msg, path=str(p)) from exc
    except (ValueError, OverflowError) as exc:  # pandas.errors.ParserError is a ValueError
        detail = str(exc)
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", detail)
        if m:
            detail = (
                f"line {m.group(2)} has {m.group(3)} fields but the header has {m.group(1)} "
                f"(delimiter {delimiter!r}; set delimiter= / --delimiter if it is wrong, "
                "and quote values that contain it)"
            )
        msg = f"cannot parse CSV file {p}: {detail}"
        raise InputError(msg, path=str(p)) from exc
    header = [str(h).strip().lstrip("\ufeff").strip() for h in raw.iloc[0].fillna("")]
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        name = h or f"column_{i + 1}"
        base = name
        while name in seen:
            seen[base] += 1
            name = f"{base}.{seen[base]}"
        seen.setdefault(name, 0)
        names.append(name)
    table = raw.iloc[1:].reset_index(drop=True)
    table.columns = names
    if table.isna().to_numpy().any():
        table = table.fillna("")
    return table.astype(str)


def _detect_format(columns: Sequence[str]) -> str:
    lower = {c.lower() for c in columns}
    if {"numero", "nom_voie"} <= lower and ("id_fantoir" in lower or "rep" in lower):
        return "ban"
    if {"lon", "lat", "number", "street", "hash"} <= lower:
        return "openaddresses"
    if {"adresse", "mot_directeur"} <= lower:
        return "nantes_metropole"
    if {"osm_type", "osm_id"} <= lower:
        return "osm_csv"
    return "csv"


#: An id column holds one short token per door: how unique, and how short, its values must be
#: to be offered as an id (a full address line is unique too, but has spaces).
_ID_MIN_DISTINCT: Final = 0.95
_ID_MAX_MEDIAN_CHARS: Final = 40
#: An id column repeating more than this share of its values identifies something else
#: (a street, a building, a commune): it is refused.
_ID_MAX_DUPLICATE_SHARE: Final = 0.05
_ID_MIN_DUPLICATES_REFUSED: Final = 3
_DECIMAL = r"^[+-]?\d*[.,]\d+$"


def _id_like_columns(table: pd.DataFrame) -> list[str]:
    """Columns whose values could be door ids: mostly filled, unique, short, one token each.

    Coordinates (decimal numbers) are unique too but are not offered.
    """
    out = []
    for c in table.columns:
        v = table[c].str.strip()
        v = v[v.ne("")]
        if len(v) == 0 or len(v) * 2 < len(table):
            continue
        if v.nunique() < _ID_MIN_DISTINCT * len(v):
            continue
        if v.str.len().median() > _ID_MAX_MEDIAN_CHARS:
            continue
        if v.str.contains(r"\s", regex=True).mean() > 1 - _ID_MIN_DISTINCT:
            continue
        if v.str.match(_DECIMAL).mean() > 0.5:
            continue
        out.append(c)
    return out


def _id_suggestion(col: str, table: pd.DataFrame | None) -> str:
    """" (did you mean ...)" among the columns that could be ids, else the list of them."""
    if table is None:
        return ""
    ids = _id_like_columns(table)
    close = close_matches(col, ids)
    if close:
        return close
    if ids:
        return f"; columns that could be ids: {list_columns(ids)}"
    return (
        "; no column looks like an id (mostly unique, one short value per row): drop "
        "--address-id and doors get ids from their content"
    )


def _check_id_duplicates(raw_id: pd.Series, column: str, rows: np.ndarray, p: Path) -> None:
    """Refuse an id column that repeats many of its values: it does not identify doors."""
    filled = raw_id.ne("").to_numpy()
    dup = raw_id.duplicated(keep="first").to_numpy() & filled
    n_dup = int(dup.sum())
    if n_dup < _ID_MIN_DUPLICATES_REFUSED or n_dup <= _ID_MAX_DUPLICATE_SHARE * filled.sum():
        return
    counts = raw_id[filled].value_counts()
    examples = ", ".join(f"{v!r} x{k}" for v, k in counts.head(3).items())
    first = int(rows[dup][0])
    msg = (
        f"addresses file {p}: the id column {column!r} has {n_dup:,} duplicate rows out of "
        f"{int(filled.sum()):,} (first at row {first}; most repeated: {examples}): it does "
        "not identify doors. Choose a column with one value per door with --address-id COL "
        "(or --addr-column id=COL), or give --addr-column id= to number doors from their content"
    )
    raise InputError(msg, path=str(p))


def _resolve_roles(
    columns: Sequence[str],
    mapping: Mapping[str, str | None] | None,
    p: Path,
    table: pd.DataFrame | None = None,
) -> dict[str, str]:
    lower: dict[str, str] = {}
    for c in columns:
        lower.setdefault(c.lower(), c)
    used, disabled = _mapped_roles(columns, lower, mapping, p, table)
    explicit_coords = bool(_COORD_ROLES & (set(used) | disabled))
    # an id column may also be read as a text role: choosing it as id must not hide the street
    taken = {c for r, c in used.items() if r != "id"}
    for role, synonyms in _ADDRESS_SYNONYMS.items():
        if role in used or role in disabled or (explicit_coords and role in _COORD_ROLES):
            continue
        for syn in synonyms:
            col = lower.get(syn)
            if col is not None and col not in taken:
                used[role] = col
                taken.add(col)
                break
    return used


def _mapped_roles(
    columns: Sequence[str],
    lower: Mapping[str, str],
    mapping: Mapping[str, str | None] | None,
    p: Path,
    table: pd.DataFrame | None,
) -> tuple[dict[str, str], set[str]]:
    """Check the user's column map: the roles it maps to a column and the ones it turns off."""
    used: dict[str, str] = {}
    disabled: set[str] = set()
    problems: list[str] = []
    for role, col in (mapping or {}).items():
        if role not in ADDRESS_ROLES:
            problems.append(
                f"unknown role {role!r}{close_matches(role, ADDRESS_ROLES)}; roles are: "
                f"{', '.join(ADDRESS_ROLES)}"
            )
        elif col is None or col == "":
            disabled.add(role)
        elif col in columns:
            used[role] = col
        elif str(col).lower() in lower:
            used[role] = lower[str(col).lower()]
        elif role == "id":
            problems.append(
                f"id (--address-id): the file has no column {col!r}"
                f"{_id_suggestion(str(col), table)}"
            )
        else:
            problems.append(
                f"{role} (--addr-column {role}=COL): the file has no column {col!r}"
                f"{close_matches(str(col), columns)}"
            )
    if problems:
        msg = f"the column map does not match {p}; the file's columns are: {list_columns(columns)}"
        raise InputError(msg, problems, path=str(p))
    return used, disabled


# --------------------------------------------------------------------------------------------
# Address files: values
# --------------------------------------------------------------------------------------------


def _parse_numbers(s: pd.Series, decimal_comma: bool) -> tuple[np.ndarray, np.ndarray]:
    """Return (float values, empty mask) of a string column; non-numbers become NaN."""
    text = s.str.strip()
    empty = text.eq("").to_numpy()
    if decimal_comma:
        text = text.str.replace(r"^([+-]?\d*),(\d+)$", r"\1.\2", regex=True)
    values = pd.to_numeric(text, errors="coerce")
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError, OverflowError):
        arr = np.array([_to_float(v) for v in values], dtype=float)
    return arr, empty


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return float("nan")


def _strip_leading_number(address: pd.Series, housenumber: pd.Series | None) -> pd.Series:
    """Street of a full address line: the text after its leading house number."""
    street = address.str.replace(_LEADING_NUMBER, "", regex=True)
    if housenumber is not None:
        # numbers without digits ("A Route de ...") are only stripped when they equal the row's
        # house number; few rows, so a comprehension over them is fine
        todo = (street == address).to_numpy() & housenumber.ne("").to_numpy()
        if todo.any():
            addr = address.to_numpy()[todo]
            hn = housenumber.to_numpy()[todo]
            fixed = [
                a[len(h) :].lstrip(" ,") if a.startswith(h + " ") else a
                for a, h in zip(addr, hn, strict=True)
            ]
            street = street.copy()
            # pandas-stubs accept one str or a Series here; a list of the same length is valid
            street.iloc[np.flatnonzero(todo)] = fixed  # type: ignore[call-overload]
    return street.str.strip()


def _looks_like_address_lines(street: pd.Series, housenumber: pd.Series) -> pd.Series:
    """Mask of rows whose street value starts with the row's own house number."""
    prefix = street.str.extract(_LEADING_NUMBER, expand=False).fillna("")
    norm_prefix = prefix.str.replace(r"\s+", "", regex=True).str.lower()
    norm_hn = housenumber.str.replace(r"\s+", "", regex=True).str.lower()
    return norm_prefix.ne("") & norm_prefix.eq(norm_hn)


def _content_ids(
    housenumber: pd.Series,
    street: pd.Series,
    unit: pd.Series,
    x: np.ndarray,
    y: np.ndarray,
    x_raw: pd.Series,
    y_raw: pd.Series,
) -> np.ndarray:
    """Stable ids: sha1 of "housenumber|street|unit|x|y" (coordinates with 7 decimals)."""
    xs = [
        f"{v:.7f}" if np.isfinite(v) else r for v, r in zip(x.tolist(), x_raw.tolist(), strict=True)
    ]
    ys = [
        f"{v:.7f}" if np.isfinite(v) else r for v, r in zip(y.tolist(), y_raw.tolist(), strict=True)
    ]
    parts = zip(housenumber.tolist(), street.tolist(), unit.tolist(), xs, ys, strict=True)
    return np.array(
        [
            hashlib.sha1("|".join(k).encode("utf-8", "surrogatepass")).hexdigest()[:16]
            for k in parts
        ],
        dtype=object,
    )


def _unique_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make ids unique with "~2", "~3" suffixes in file order; return (ids, duplicate mask)."""
    s = pd.Series(ids, dtype=object)
    dup = s.duplicated(keep="first").to_numpy()
    if not dup.any():
        return ids, dup
    out = ids.copy()
    used = set(s[~dup])
    occurrence = (s.groupby(s, sort=False).cumcount() + 1).to_numpy()
    for i in np.flatnonzero(dup):  # only the duplicate rows
        k = int(occurrence[i])
        cand = f"{ids[i]}~{k}"
        while cand in used:
            k += 1
            cand = f"{ids[i]}~{k}"
        used.add(cand)
        out[i] = cand
    return out, dup


def _describe_rows(rows: np.ndarray, values: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(
        f"row {r} ({str(v)!r})" for r, v in zip(rows[:limit], values[:limit], strict=True)
    )
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return shown + more


def _is_geographic(crs: CRS) -> bool:
    return bool(crs.is_geographic)


def _swap_hint(xcol: str, ycol: str) -> str:
    return (
        f"swap them with columns={{'lon': {ycol!r}, 'lat': {xcol!r}}} / "
        f"--addr-column lon={ycol} --addr-column lat={xcol}"
    )


def _check_swapped(
    x: np.ndarray,
    y: np.ndarray,
    finite: np.ndarray,
    crs: CRS,
    xcol: str,
    ycol: str,
    reference_bounds: Sequence[float] | None,
    p: Path,
) -> None:
    if not finite.any():
        return
    fx, fy = x[finite], y[finite]
    if _is_geographic(crs):
        lat_big = np.mean(np.abs(fy) > 90)
        lon_small = np.mean(np.abs(fx) <= 90)
        if lat_big > 0.5 and lon_small > 0.5:
            example = ", ".join(f"{v:.6g}" for v in fy[np.abs(fy) > 90][:3])
            msg = (
                f"columns look swapped in {p}: lat column {ycol!r} holds values like {example} "
                f"(beyond ±90) while lon column {xcol!r} stays within ±90; {_swap_hint(xcol, ycol)}"
            )
            raise InputError(msg, path=str(p))
    if reference_bounds is None:
        return
    minx, miny, maxx, maxy = (float(v) for v in reference_bounds)
    pad = 0.05
    if _is_geographic(crs):
        lon, lat, slon, slat = fx, fy, fy, fx
    else:
        tr = Transformer.from_crs(crs, 4326, always_xy=True)
        with np.errstate(all="ignore"):
            lon, lat = tr.transform(fx, fy, errcheck=False)
            slon, slat = tr.transform(fy, fx, errcheck=False)
    inside = np.mean(
        (lon >= minx - pad) & (lon <= maxx + pad) & (lat >= miny - pad) & (lat <= maxy + pad)
    )
    inside_swapped = np.mean(
        (slon >= minx - pad) & (slon <= maxx + pad) & (slat >= miny - pad) & (slat <= maxy + pad)
    )
    if inside < 0.05 and inside_swapped > 0.5:
        msg = (
            f"columns look swapped in {p}: only {inside:.0%} of the points fall within the "
            f"precincts' extent ({minx:.4f}, {miny:.4f}, {maxx:.4f}, {maxy:.4f}) but "
            f"{inside_swapped:.0%} would after swapping {xcol!r} and {ycol!r}; "
            f"{_swap_hint(xcol, ycol)}"
        )
        raise InputError(msg, path=str(p))


def _load_ogr_points(
    p: Path, layer: str | int | None, crs: Any
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, CRS]:
    gdf = _read_ogr(p, layer, "addresses")
    if len(gdf) == 0:
        msg = f"addresses file {p} has no features: no data rows"
        raise InputError(msg, path=str(p))
    if not isinstance(gdf, gpd.GeoDataFrame):
        msg = f"addresses file {p} has no geometry: use a CSV with coordinate columns"
        raise InputError(msg, path=str(p))
    geom_col = gdf.geometry.name
    table = pd.DataFrame(
        {c: series_to_str(gdf[c]).to_numpy() for c in gdf.columns if c != geom_col}
    )
    geoms = gdf.geometry.to_numpy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    types = shapely.get_type_id(geoms)
    multi = ~missing & (types == 4)
    if multi.any():
        counts = shapely.get_num_geometries(geoms[multi])
        single = counts == 1
        geoms = geoms.copy()
        idx = np.flatnonzero(multi)
        geoms[idx[single]] = shapely.get_geometry(geoms[idx[single]], 0)
        types = shapely.get_type_id(geoms)
    not_point = ~missing & (types != 0)
    if not_point.any():
        rows = np.flatnonzero(not_point) + 1
        kinds = [g.geom_type for g in geoms[not_point][:5]]
        msg = (
            f"addresses file {p} is not a point layer: "
            f"{_describe_rows(rows, np.array(kinds, dtype=object))} are not points"
        )
        raise InputError(msg, path=str(p))
    problems: list[str] = []
    out_crs = _resolve_layer_crs(gdf, crs, p, problems, "addresses")
    if out_crs is None:
        msg = f"addresses file {p}: {problems[0]}"
        raise CRSError(msg, path=str(p))
    x = np.full(len(gdf), np.nan)
    y = np.full(len(gdf), np.nan)
    x[~missing] = shapely.get_x(geoms[~missing])
    y[~missing] = shapely.get_y(geoms[~missing])
    return table, x, y, missing, out_crs


def read_addresses(
    path: PathLike, *, columns: Mapping[str, str] | None = None, crs: Any = None,
    encoding: str | None = None, delimiter: str | None = None, strict: bool = False,
    reference_bounds: Sequence[float] | None = None, layer: str | int | None = None,
) -> gpd.GeoDataFrame:
    r"""Read address points (doors) from a CSV file or an OGR point layer.

    Parameters
    ----------
    path
        A CSV file (plain or ``.gz``/``.bz2``/``.xz``/``.zip``; BAN, OpenAddresses, Nantes
        Métropole, OSM extracts, any CSV with coordinate columns) or an OGR point layer
        (``.geojson``, ``.gpkg``, ``.shp``, ``.fgb``; the geometry gives the position).
    columns
        Role -> source column, overriding detection. Roles: :data:`ADDRESS_ROLES` (``id``,
        ``lon``, ``lat``, ``x``, ``y``, ``housenumber``, ``rep``, ``street``, ``address`` (a full
        address line the street is derived from), ``unit``, ``households``, ``city``,
        ``postcode``). A role mapped to ``""`` or ``None`` is not used.
    crs
        CRS of projected ``x``/``y`` columns (required unless the values are plausible
        longitudes/latitudes), or of an OGR layer without one.
    encoding
        Text encoding; detected when omitted (UTF-8 first, then charset detection).
    delimiter
        CSV delimiter; sniffed among ``, ; \t |`` when omitted.
    strict
        Raise on any missing or bad coordinate or households value instead of marking the rows.
    reference_bounds
        ``(minx, miny, maxx, maxy)`` in EPSG:4326, typically the precincts' extent, used to
        catch swapped coordinate columns.
    layer
        Layer of a multi-layer OGR file.

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by ``address_id`` (str, unique) with columns ``housenumber``, ``street``,
        ``unit``, ``households``, ``city``, ``postcode``, ``source_row`` (1-based data row; the
        header is row 0; blank lines are not counted), ``status`` and Point geometry (None when the
        coordinates are unusable), in the CRS of the coordinates (EPSG:4326 for lon/lat).
        ``attrs``: ``columns_used``, ``source``, ``encoding``, ``format``, ``delimiter``.

    Raises
    ------
    InputError
        Missing, empty or undecodable file, unknown mapped column, no coordinate columns,
        swapped coordinate columns, more than half of the rows with bad coordinates, and (with
        ``strict``) any bad or missing value.
    CRSError
        Projected coordinates without ``crs``.
    """
    p = existing_file(path, "addresses")
    src = _address_source(p, layer, crs, encoding, delimiter)
    table, fmt = src.table, src.fmt
    n = len(table)
    roles = _resolve_roles(list(table.columns), columns, p, table)
    rows = np.arange(1, n + 1)
    coords = (_layer_coordinates(src.ogr_points, roles) if src.ogr_points is not None
              else _csv_coordinates(table, roles, crs, fmt, src.delimiter != ",", p))
    bad_x, bad_y = _bad_coordinates(coords, rows, strict, reference_bounds, p)
    bad = bad_x | bad_y
    usable = ~coords.missing & ~bad

    texts = _address_texts(table, roles, p)
    households = _households(texts.column("households"), rows, roles.get("households"), strict, p)
    ids, dup = _address_ids(table, roles, texts, coords, rows, p)

    status = _address_status(coords.missing, bad, dup & usable)
    geoms = np.full(n, None, dtype=object)
    geoms[usable] = shapely.points(coords.x[usable], coords.y[usable])
    out = _address_frame(texts, households, rows, status, ids, geoms, coords.crs)
    out.attrs = {"columns_used": dict(roles), "source": str(p), "encoding": src.encoding,
                 "format": fmt, "delimiter": src.delimiter}
    _log_address_problems(p, int(coords.missing.sum()), int(bad.sum()), int((dup & usable).sum()))
    logger.info("read %d addresses from %s (format %s)", n, p, fmt)
    return out


class _AddressSource(NamedTuple):
    """The table of an addresses file, how it was read, and an OGR layer's points."""

    table: pd.DataFrame
    fmt: str
    encoding: str | None
    delimiter: str | None
    ogr_points: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, CRS] | None


def _address_source(
    p: Path, layer: str | int | None, crs: Any, encoding: str | None, delimiter: str | None
) -> _AddressSource:
    """Read an OGR point layer (format ``ogr``) or decode, sniff and parse a CSV file.

    Refused when it has no data rows.
    """
    if _is_ogr_source(p):
        ogr_points = _load_ogr_points(p, layer, crs)
        src = _AddressSource(ogr_points[0], "ogr", None, None, ogr_points)
    else:
        text, enc = decode_text(read_raw(p), encoding, p)
        used_delim = delimiter if delimiter else sniff_delimiter(text)
        table = _parse_csv(text, used_delim, p)
        src = _AddressSource(table, _detect_format(list(table.columns)), enc, used_delim, None)
    if len(src.table) == 0:
        msg = f"addresses file {p} has a header but no data rows"
        raise InputError(msg, path=str(p))
    return src


def _address_status(missing: np.ndarray, bad: np.ndarray, duplicate: np.ndarray) -> np.ndarray:
    """Each row's status: ``ok``, else missing or bad coordinates, else duplicate (usable)."""
    status = np.full(len(missing), schema.STATUS_OK, dtype=object)
    status[missing] = MISSING_COORDINATES
    status[bad] = BAD_COORDINATES
    status[duplicate] = DUPLICATE
    return status


def _log_address_problems(p: Path, n_missing: int, n_bad: int, n_dup: int) -> None:
    """Warn about rows kept with a missing, bad or duplicate status."""
    if n_missing or n_bad:
        logger.warning(
            "%s: %d row(s) with missing and %d with bad coordinates (kept with their status)",
            p,
            n_missing,
            n_bad,
        )
    if n_dup:
        logger.warning("%s: %d duplicate row(s) (status 'duplicate')", p, n_dup)


@dataclass(frozen=True)
class _Coordinates:
    """Every row's parsed coordinates, the raw text they came from, and their CRS."""

    x: np.ndarray
    y: np.ndarray
    x_raw: pd.Series
    y_raw: pd.Series
    missing: np.ndarray
    xcol: str
    ycol: str
    crs: CRS


def _layer_coordinates(
    ogr_points: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, CRS],
    roles: dict[str, str],
) -> _Coordinates:
    """Coordinates of an OGR point layer: the geometry replaces any coordinate column."""
    table, gx, gy, gmissing, layer_crs = ogr_points
    for role in _COORD_ROLES:
        roles.pop(role, None)
    roles["geometry"] = "geometry"
    empty_col = pd.Series([""] * len(table), dtype=str)
    return _Coordinates(gx, gy, empty_col, empty_col, gmissing, "geometry", "geometry", layer_crs)


def _coordinate_columns(
    roles: dict[str, str], cols: list[str], crs: Any, p: Path
) -> tuple[str, str, CRS | None]:
    """Choose the x and y columns (lon/lat first, else x/y); the CRS when lon/lat fix it."""
    if "lon" in roles and "lat" in roles:
        roles.pop("x", None)
        roles.pop("y", None)
        out_crs = _user_crs(crs, p) if crs is not None else CRS.from_epsg(4326)
        return roles["lon"], roles["lat"], out_crs
    if "x" in roles and "y" in roles:
        roles.pop("lon", None)
        roles.pop("lat", None)
        return roles["x"], roles["y"], None
    have = [r for r in ("lon", "lat", "x", "y") if r in roles]
    if have:
        lacking = {"lon": "lat", "lat": "lon", "x": "y", "y": "x"}[have[0]]
        msg = (
            f"addresses file {p} has a {have[0]} column ({roles[have[0]]!r}) but no "
            f"{lacking} column; the columns are: {list_columns(cols)}. Map it with "
            f"columns={{'{lacking}': ...}} / --addr-column {lacking}=COL"
        )
    else:
        msg = (
            f"addresses file {p} has no coordinate columns (lon/lat or x/y); the "
            f"columns are: {list_columns(cols)}. Map them with "
            "columns={'lon': ..., 'lat': ...} / --addr-column lon=COL --addr-column lat=COL"
        )
    raise InputError(msg, path=str(p))


def _csv_coordinates(
    table: pd.DataFrame,
    roles: dict[str, str],
    crs: Any,
    fmt: str,
    decimal_comma: bool,
    p: Path,
) -> _Coordinates:
    """Parse the coordinate columns of a CSV; guess the CRS of x/y columns given without one."""
    xcol, ycol, out_crs = _coordinate_columns(roles, list(table.columns), crs, p)
    x_raw, y_raw = table[xcol], table[ycol]
    x, x_empty = _parse_numbers(x_raw, decimal_comma)
    y, y_empty = _parse_numbers(y_raw, decimal_comma)
    missing = x_empty | y_empty
    if out_crs is None:
        out_crs = _xy_crs(x, y, missing, crs, fmt, xcol, ycol, p)
    return _Coordinates(x, y, x_raw, y_raw, missing, xcol, ycol, out_crs)


def _xy_crs(
    x: np.ndarray,
    y: np.ndarray,
    missing: np.ndarray,
    crs: Any,
    fmt: str,
    xcol: str,
    ycol: str,
    p: Path,
) -> CRS:
    """Choose the CRS of x/y columns: the user's, Lambert-93 for BAN, lon/lat if plausible."""
    fin = np.isfinite(x) & np.isfinite(y) & ~missing
    if crs is not None:
        return _user_crs(crs, p)
    if fmt == "ban":
        logger.info("%s: BAN file with x/y only: Lambert-93 (EPSG:2154)", p)
        return CRS.from_epsg(2154)
    if fin.any() and np.all(np.abs(x[fin]) <= 180) and np.all(np.abs(y[fin]) <= 90):
        logger.warning(
            "%s: columns %r/%r hold longitude/latitude-like values: using EPSG:4326",
            p,
            xcol,
            ycol,
        )
        return CRS.from_epsg(4326)
    example = f" (values like {x[fin][0]:.6g}, {y[fin][0]:.6g})" if fin.any() else ""
    msg = (
        f"addresses file {p}: columns {xcol!r}/{ycol!r} hold projected coordinates"
        f"{example} but no CRS was given: give --crs (for example EPSG:2154 for "
        "Lambert-93)"
    )
    raise CRSError(msg, path=str(p))


def _bad_coordinates(
    c: _Coordinates,
    rows: np.ndarray,
    strict: bool,
    reference_bounds: Sequence[float] | None,
    p: Path,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose x and y values are unusable; refuse swapped columns and mostly-bad files."""
    x, y, missing = c.x, c.y, c.missing
    n = len(x)
    finite = np.isfinite(x) & np.isfinite(y) & ~missing
    _check_swapped(x, y, finite, c.crs, c.xcol, c.ycol, reference_bounds, p)
    bad_x = ~missing & ~np.isfinite(x)
    bad_y = ~missing & ~np.isfinite(y)
    if _is_geographic(c.crs):
        bad_x |= ~missing & np.isfinite(x) & (np.abs(x) > 180)
        bad_y |= ~missing & np.isfinite(y) & (np.abs(y) > 90)
    bad = bad_x | bad_y
    if bad.sum() * 2 > n:
        worst, wmask, wraw = (
            (c.xcol, bad_x, c.x_raw) if bad_x.sum() >= bad_y.sum() else (c.ycol, bad_y, c.y_raw)
        )
        examples = _describe_rows(rows[wmask], wraw.to_numpy()[wmask], 3)
        msg = (
            f"addresses file {p}: {int(bad.sum())} of {n} rows have unusable coordinates in "
            f"column {worst!r} ({examples}): is column {worst!r} really a coordinate? Map the "
            "right columns with columns={'lon': ..., 'lat': ...} / --addr-column"
        )
        raise InputError(msg, path=str(p))
    if strict and (bad.any() or missing.any()):
        problems = _coordinate_problems(
            rows, missing, bad_x, bad_y, c.x_raw, c.y_raw, c.xcol, c.ycol
        )
        msg = f"addresses file {p}: {len(problems)} unusable coordinate value(s)"
        raise InputError(msg, problems, path=str(p))
    return bad_x, bad_y


def _role_column(table: pd.DataFrame, roles: Mapping[str, str], role: str) -> pd.Series | None:
    name = roles.get(role)
    return None if name is None else table[name].str.strip()


@dataclass(frozen=True)
class _AddressTexts:
    """The text columns of the address table, stripped; empty where the role is not mapped."""

    table: pd.DataFrame
    roles: dict[str, str]
    housenumber: pd.Series
    street: pd.Series

    def column(self, role: str) -> pd.Series | None:
        """Return the stripped column mapped to ``role``, or None."""
        return _role_column(self.table, self.roles, role)

    def text(self, role: str) -> pd.Series:
        """Return the stripped column mapped to ``role``, or empty strings."""
        found = self.column(role) if role in self.roles else None
        return found if found is not None else pd.Series([""] * len(self.table), dtype=str)


def _address_texts(table: pd.DataFrame, roles: dict[str, str], p: Path) -> _AddressTexts:
    """Read the house number (with its repetition suffix) and the street.

    The street is derived from a full address line when the file has no street column or its
    street column holds full addresses.
    """
    hn = _role_column(table, roles, "housenumber")
    rep = _role_column(table, roles, "rep")
    if hn is not None:
        hn = _normalise_space(hn)
        if rep is not None:
            hn = hn.where(rep.eq("") | hn.eq(""), hn + " " + rep.str.lower())
    street = _role_column(table, roles, "street")
    address = _role_column(table, roles, "address")
    if street is None and address is not None:
        street = _strip_leading_number(address, hn)
        if hn is None:
            hn = _normalise_space(address.str.extract(_LEADING_NUMBER, expand=False).fillna(""))
    elif street is not None and hn is not None:
        starts = _looks_like_address_lines(street, hn)
        if starts.sum() * 2 > street.ne("").sum():
            logger.info(
                "%s: street column %r holds full addresses; the street is the text after the "
                "house number",
                p,
                roles["street"],
            )
            street = _strip_leading_number(street, hn)
    if street is None:
        roles.pop("address", None)
    empty_col = pd.Series([""] * len(table), dtype=str)
    return _AddressTexts(
        table,
        roles,
        hn if hn is not None else empty_col,
        street if street is not None else empty_col,
    )


def _address_ids(
    table: pd.DataFrame,
    roles: dict[str, str],
    texts: _AddressTexts,
    c: _Coordinates,
    rows: np.ndarray,
    p: Path,
) -> tuple[np.ndarray, np.ndarray]:
    """Give unique ids (the id column where filled, else a content hash); flag duplicates."""
    n = len(table)
    raw_id = texts.column("id")
    if raw_id is not None and raw_id.eq("").all():
        logger.info("%s: id column %r is empty: using content hashes", p, roles["id"])
        roles.pop("id")
        raw_id = None
    if raw_id is not None:
        _check_id_duplicates(raw_id, roles["id"], rows, p)
        if not _id_like_columns(table[[roles["id"]]]):
            logger.warning(
                "%s: the id column %r does not look like an id (long values or values with "
                "spaces); choose another with --address-id if the walk lists look wrong",
                p,
                roles["id"],
            )
    need_hash = np.ones(n, dtype=bool) if raw_id is None else raw_id.eq("").to_numpy()
    ids = np.empty(n, dtype=object)
    if raw_id is not None:
        ids[:] = raw_id.to_numpy(dtype=object)
    if need_hash.any():
        sel = need_hash
        ids[sel] = _content_ids(
            texts.housenumber[sel],
            texts.street[sel],
            texts.text("unit")[sel],
            c.x[sel],
            c.y[sel],
            c.x_raw[sel],
            c.y_raw[sel],
        )
    return _unique_ids(ids)


def _address_frame(
    texts: _AddressTexts,
    households: np.ndarray,
    rows: np.ndarray,
    status: np.ndarray,
    ids: np.ndarray,
    geoms: np.ndarray,
    crs: CRS,
) -> gpd.GeoDataFrame:
    """Build the doors table of the data contract (str text columns, index ``address_id``)."""
    data = {
        schema.HOUSENUMBER: texts.housenumber.to_numpy(str),
        schema.STREET: texts.street.to_numpy(str),
        schema.UNIT: texts.text("unit").to_numpy(str),
        schema.HOUSEHOLDS: households,
        schema.CITY: texts.text("city").to_numpy(str),
        schema.POSTCODE: texts.text("postcode").to_numpy(str),
        schema.SOURCE_ROW: rows.astype(np.int64),
        schema.STATUS: status.astype(str),
    }
    index = pd.Index(ids.astype(str), name=schema.ADDRESS_ID, dtype=str)
    out = gpd.GeoDataFrame(data, geometry=geoms, crs=crs, index=index)
    for name in (
        schema.HOUSENUMBER,
        schema.STREET,
        schema.UNIT,
        schema.CITY,
        schema.POSTCODE,
        schema.STATUS,
    ):
        out[name] = out[name].astype(str)
    return out


def _user_crs(crs: Any, p: Path) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises its own CRSError for unknown strings
        msg = f"unknown CRS {crs!r} for {p} (--crs): {_CRS_EXAMPLES}"
        raise CRSError(msg, path=str(p)) from exc


def _coordinate_problems(
    rows: np.ndarray,
    missing: np.ndarray,
    bad_x: np.ndarray,
    bad_y: np.ndarray,
    x_raw: pd.Series,
    y_raw: pd.Series,
    xcol: str,
    ycol: str,
) -> list[str]:
    xs = x_raw.to_numpy(str)
    ys = y_raw.to_numpy(str)
    x_empty = np.char.str_len(np.char.strip(xs.astype(str))) == 0
    y_empty = np.char.str_len(np.char.strip(ys.astype(str))) == 0
    problems: list[str] = []
    for i in np.flatnonzero(missing | bad_x | bad_y):  # error path: one message per bad row
        for column, raw, is_empty, is_bad in (
            (xcol, xs[i], x_empty[i], bad_x[i]),
            (ycol, ys[i], y_empty[i], bad_y[i]),
        ):
            if missing[i] and is_empty:
                problems.append(f"row {rows[i]}, column {column!r}: empty")
            elif is_bad:
                problems.append(
                    f"row {rows[i]}, column {column!r}: {str(raw)!r} is not a valid coordinate"
                )
    return problems


def _households(
    raw: pd.Series | None, rows: np.ndarray, column: str | None, strict: bool, p: Path
) -> np.ndarray:
    n = len(rows)
    if raw is None:
        return np.ones(n, dtype=np.int64)
    values, _ = _parse_numbers(raw, decimal_comma=False)
    ok = np.isfinite(values) & (values >= 1) & (values <= _MAX_HOUSEHOLDS)
    ok &= np.floor(np.where(ok, values, 1.0)) == np.where(ok, values, 1.0)
    out = np.where(ok, values, 1.0).astype(np.int64)
    if not ok.all():
        where = _describe_rows(rows[~ok], raw.to_numpy()[~ok])
        if strict:
            msg = (
                f"addresses file {p}: column {column!r} must hold whole numbers >= 1; "
                f"{int((~ok).sum())} row(s) do not: {where}"
            )
            raise InputError(msg, path=str(p))
        logger.warning(
            "%s: %d row(s) with an empty or invalid households value in column %r, counted as "
            "1: %s",
            p,
            int((~ok).sum()),
            column,
            where,
        )
    return out
