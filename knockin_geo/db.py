"""Write a :class:`~knockin_geo.plan.TurfPlan` into PostGIS, in one transaction.

:func:`write_postgis` stores the four layers of ``plan.gpkg`` (``doors``, ``turfs``, ``routes``,
``precincts``: same columns, same millimetre-rounded geometries, same metric CRS as SRID) in the
tables ``{prefix}doors``, ``{prefix}turfs``, ``{prefix}routes`` and ``{prefix}precincts``, each
with two extra columns: ``plan_id`` (which plan the row belongs to) and ``fid`` (the row's
1-based position in the GeoPackage layer). Writing a plan replaces the rows of the same
``plan_id`` and keeps every other plan. Everything happens in one transaction: on any error the
database keeps the previous rows whole. :func:`read_postgis_plan` reads a plan back.

The database libraries (SQLAlchemy, GeoAlchemy2, psycopg 3) are optional: ``pip install
"knockin_geo[db]"``. See ``docs/database.md``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import shapely
from pyproj import CRS

from knockin_geo import schema
from knockin_geo._errors import CRSError, InputError, MissingDependencyError
from knockin_geo.plan import (
    TurfPlan,
    doors_layer,
    precincts_layer,
    report_json,
    routes_layer,
    turfs_layer,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine

logger = logging.getLogger(__name__)

#: Layers written, in this order, with the column that identifies a row within a plan.
LAYERS: dict[str, str] = {
    "doors": schema.ADDRESS_ID,
    "turfs": schema.TURF_ID,
    "routes": schema.TURF_ID,
    "precincts": schema.PRECINCT_ID,
}
#: PostGIS geometry type of each layer's ``geom`` column (``GEOMETRY``: any type).
GEOMETRY_TYPES: dict[str, str] = {
    "doors": "POINT",
    "turfs": "GEOMETRY",
    "routes": "GEOMETRY",
    "precincts": "GEOMETRY",
}
#: Name of the geometry column in every table.
GEOM_COLUMN = "geom"
#: Grid the geometries are rounded to, as in ``plan.gpkg`` (metres).
PRECISION_M = 0.001
#: Seconds to wait for the server before giving up.
CONNECT_TIMEOUT_S = 10

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_INSTALL = 'pip install "knockin_geo[db]"'
_CHECK = (
    "check the host, port, database name, user and password in the URL, that the server is "
    "running and accepts connections from this machine (listen_addresses, pg_hba.conf, "
    "firewall), and that the URL has the form "
    "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
)


def _require() -> tuple[Any, Any, Any]:
    """Import SQLAlchemy, GeoAlchemy2 and psycopg, or explain how to install them."""
    try:
        import geoalchemy2
        import psycopg
        import sqlalchemy
    except ImportError as exc:
        msg = (
            f"writing to PostGIS needs SQLAlchemy, GeoAlchemy2 and psycopg 3 "
            f"({exc.name or exc} is missing): {_INSTALL}"
        )
        raise MissingDependencyError(msg) from None
    return sqlalchemy, geoalchemy2, psycopg


# --------------------------------------------------------------------------------------------
# URL and connection
# --------------------------------------------------------------------------------------------


def mask_url(url: object) -> str:
    """Return a database URL with its password replaced by ``***``.

    Parameters
    ----------
    url
        A URL string or a SQLAlchemy ``URL``; unparsable strings are masked with a pattern.

    Returns
    -------
    str
        The URL, safe to print or log.
    """
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url) if isinstance(url, str) else url
        if not hasattr(parsed, "render_as_string"):
            parsed = make_url(str(url))
        return str(parsed.render_as_string(hide_password=True))
    except Exception:
        return re.sub(r"(://[^/@:]*:)[^@]*@", r"\1***@", str(url))


def _parse_url(url: str) -> URL:
    """Parse ``url`` and point PostgreSQL URLs at the psycopg 3 driver."""
    sa, _, _ = _require()
    if not isinstance(url, str) or not url.strip():
        msg = f"the database URL is empty; {_CHECK}"
        raise InputError(msg)
    text = url.strip()
    if text.startswith("postgres://"):  # Heroku / libpq style alias
        text = "postgresql://" + text[len("postgres://"):]
    try:
        parsed = sa.engine.make_url(text)
    except Exception:
        # Not echoed: an unparsable value may hold a password in an unexpected place.
        msg = f"not a database URL (the value given cannot be parsed); {_CHECK}"
        raise InputError(msg) from None
    if parsed.get_backend_name() != "postgresql":
        msg = (
            f"not a PostgreSQL URL: {mask_url(parsed)} (backend {parsed.get_backend_name()!r}); "
            "PostGIS export needs postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        )
        raise InputError(msg)
    if parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.database:
        msg = f"the database URL names no database: {mask_url(parsed)}; {_CHECK}"
        raise InputError(msg)
    return parsed


def _scrub(text: str, url: URL) -> str:
    """Remove the password from a driver message (defensive: libpq does not print it)."""
    if url.password:
        text = text.replace(str(url.password), "***")
    return text


@contextmanager
def _connect(url: str) -> Iterator[tuple[Engine, Connection, URL]]:
    """Open one connection (no pool); bad URLs and unreachable servers raise InputError."""
    sa, _, _ = _require()
    parsed = _parse_url(url)
    args: dict[str, Any] = {"application_name": "knockin_geo"}
    if "connect_timeout" not in parsed.query:
        args["connect_timeout"] = CONNECT_TIMEOUT_S
    engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool, connect_args=args,
                              hide_parameters=True)
    try:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            reason = _scrub(str(exc.orig).strip().splitlines()[0] if exc.orig else "", parsed)
            msg = f"cannot connect to the database {mask_url(parsed)}: {reason}; {_CHECK}"
            raise InputError(msg) from None
        with conn:
            try:
                yield engine, conn, parsed
            except Exception as exc:  # SQLAlchemy's and psycopg's own (COPY) errors
                _raise_if_environment(exc, parsed)
                raise
    finally:
        engine.dispose()


def _check_postgis(conn: Connection, url: URL) -> str:
    """Return the PostGIS version, or raise InputError when the extension is not enabled."""
    from sqlalchemy import text

    version = conn.execute(
        text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
    ).scalar()
    if version is None:
        msg = (
            f"PostGIS is not enabled in the database {mask_url(url)}: run "
            "'CREATE EXTENSION postgis;' in it as a superuser (or the database owner), "
            "or point the URL at a database that has it"
        )
        raise InputError(msg)
    return str(version)


def _check_names(db_schema: str, prefix: str) -> None:
    problems = []
    if not _NAME.match(db_schema) or len(db_schema) > 63:
        problems.append(f"schema {db_schema!r}: use lower-case letters, digits and _ "
                        "(not starting with a digit), at most 63 characters")
    if prefix and (not _NAME.match(prefix) or len(prefix) > 40):
        problems.append(f"prefix {prefix!r}: use lower-case letters, digits and _ "
                        "(not starting with a digit), at most 40 characters")
    if problems:
        msg = "bad PostGIS table names"
        raise InputError(msg, problems)


# --------------------------------------------------------------------------------------------
# Layers and plan id
# --------------------------------------------------------------------------------------------


def plan_layers(plan: TurfPlan) -> dict[str, gpd.GeoDataFrame]:
    """Return the four layers of the output contract, as written to ``plan.gpkg``.

    Parameters
    ----------
    plan
        A plan.

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        ``doors``, ``turfs``, ``routes``, ``precincts`` (empty when the plan has none).
    """
    return {
        "doors": doors_layer(plan),
        "turfs": turfs_layer(plan),
        "routes": routes_layer(plan),
        "precincts": precincts_layer(plan),
    }


def default_plan_id(plan: TurfPlan) -> str:
    """Return a stable id for a plan: same inputs and parameters, same id.

    The id is ``{addresses file stem}-{12 hex digits}``; the digits hash the report's
    ``inputs`` (file names and the street network's SHA-256 when the CLI made the plan), the
    turf and route parameters, the universe, the CRS and the address ids. Re-cutting the same
    inputs with the same parameters therefore replaces the previous rows; changing the seed, the
    turf size or the universe makes a new plan next to it.

    Parameters
    ----------
    plan
        A plan.

    Returns
    -------
    str
        For example ``adresses_nantes_commune_2013-3f0c2a9d81b4``.
    """
    rep = plan.report
    inputs = rep.get("inputs") or {}
    basis = {
        "inputs": inputs,
        "params": rep.get("params"),
        "route_params": rep.get("route_params"),
        "universe": rep.get("universe"),
        "crs": rep.get("crs"),
    }
    h = hashlib.sha256(report_json(basis).encode("utf-8"))
    for aid in plan.doors.index.astype(str):
        h.update(aid.encode("utf-8"))
        h.update(b"\n")
    name = inputs.get("addresses") if isinstance(inputs, dict) else None
    stem = re.sub(r"[^a-z0-9_]+", "_", PurePath(str(name)).name.split(".")[0].lower()) if name \
        else ""
    stem = stem.strip("_")[:40] or "plan"
    return f"{stem}-{h.hexdigest()[:12]}"


def _srid(crs: CRS | None) -> int:
    epsg = crs.to_epsg() if crs is not None else None
    if epsg is None:
        msg = (
            f"the plan's CRS has no EPSG code, so PostGIS cannot store it as an SRID: "
            f"{crs.to_string() if crs is not None else 'no CRS'}"
        )
        raise CRSError(msg)
    return int(epsg)


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _sql_type(dtype: Any) -> Any:
    """SQLAlchemy type of a pandas column."""
    from sqlalchemy import BigInteger, Boolean, Double, Text

    if pd.api.types.is_bool_dtype(dtype):
        return Boolean()
    if pd.api.types.is_integer_dtype(dtype):
        return BigInteger()
    if pd.api.types.is_float_dtype(dtype):
        return Double()
    return Text()


def _family(sql_type: Any) -> str:
    """Coarse family of a SQL type, to compare a table's columns with a layer's."""
    from sqlalchemy import Boolean, Float, Integer, Numeric, String

    if isinstance(sql_type, Boolean):
        return "bool"
    if isinstance(sql_type, Integer):
        return "int"
    if isinstance(sql_type, Float | Numeric):
        return "float"
    if isinstance(sql_type, String):
        return "text"
    return type(sql_type).__name__.lower()


def _table(name: str, layer: str, frame: gpd.GeoDataFrame, srid: int, db_schema: str) -> Any:
    """Build the SQLAlchemy table of one layer: plan_id, fid, the layer's columns, geom."""
    import sqlalchemy as sa
    from geoalchemy2 import Geometry

    key = LAYERS[layer]
    cols: list[sa.Column] = [
        sa.Column("plan_id", sa.Text(), nullable=False),
        sa.Column("fid", sa.Integer(), nullable=False),
    ]
    for c in frame.columns:
        if c == frame.geometry.name:
            continue
        cols.append(sa.Column(str(c), _sql_type(frame[c].dtype), nullable=c != key))
    cols.append(sa.Column(GEOM_COLUMN, Geometry(GEOMETRY_TYPES[layer], srid=srid,
                                                spatial_index=False)))
    table = sa.Table(
        name, sa.MetaData(schema=db_schema), *cols,
        sa.PrimaryKeyConstraint("plan_id", key, name=f"{name}_pkey"),
    )
    # The primary key (plan_id, key) is the plan_id index; a separate one would duplicate it.
    sa.Index(f"{name}_geom_gist", table.c[GEOM_COLUMN], postgresql_using="gist")
    return table


def _ensure_table(conn: Connection, table: Any, srid: int) -> None:
    """Create the table if missing; otherwise add missing columns and check types and SRID."""
    import sqlalchemy as sa

    insp = sa.inspect(conn)
    where = f"{table.schema}.{table.name}"
    if not insp.has_table(table.name, schema=table.schema):
        table.create(conn)
        logger.info("created table %s (SRID %d)", where, srid)
        return
    existing = {c["name"]: c["type"] for c in insp.get_columns(table.name, schema=table.schema)}
    problems = []
    for col in table.columns:
        if col.name not in existing:
            if col.name in ("plan_id", "fid", GEOM_COLUMN):
                problems.append(f"{where} has no column {col.name!r}")
                continue
            ddl = col.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(
                f'ALTER TABLE "{table.schema}"."{table.name}" ADD COLUMN "{col.name}" {ddl}'
            ))
            logger.info("added column %s.%s (%s)", where, col.name, ddl)
            continue
        if col.name == GEOM_COLUMN:
            continue
        want, have = _family(col.type), _family(existing[col.name])
        if want != have and not (want == "int" and have == "float"):
            problems.append(f"{where}.{col.name} is {existing[col.name]}, the plan has {want}")
    if GEOM_COLUMN in existing:
        have_srid = conn.execute(
            sa.text("SELECT Find_SRID(:s, :t, :g)"),
            {"s": table.schema, "t": table.name, "g": GEOM_COLUMN},
        ).scalar()
        if have_srid is not None and int(have_srid) != srid:
            problems.append(
                f"{where}.{GEOM_COLUMN} has SRID {have_srid}, the plan is in EPSG:{srid}"
            )
    if problems:
        msg = (
            f"the existing table {where} does not fit this plan; write it with another "
            "prefix or schema, or drop the old tables"
        )
        raise InputError(msg, problems)


def _rows(frame: gpd.GeoDataFrame, plan_id: str, srid: int) -> tuple[list[str], list[tuple]]:
    """Column names and COPY rows (Python values, hex EWKB geometry) of one layer."""
    geom_name = frame.geometry.name
    names = [str(c) for c in frame.columns if c != geom_name]
    columns: list[list[Any]] = []
    for c in names:
        s = frame[c]
        values = s.astype(object).where(s.notna(), None).tolist()
        columns.append(values)
    geoms = shapely.set_precision(frame.geometry.to_numpy(), PRECISION_M)
    geoms = shapely.set_srid(geoms, srid)
    wkb = shapely.to_wkb(geoms, hex=True, include_srid=True)
    n = len(frame)
    fids = range(1, n + 1)
    rows = list(zip([plan_id] * n, fids, *columns, wkb.tolist(), strict=True))
    return ["plan_id", "fid", *names, GEOM_COLUMN], rows


def _insert_rows(conn: Connection, table: Any, columns: list[str], rows: list[tuple]) -> int:
    """Insert rows with COPY on the transaction's own psycopg connection; return the count."""
    from psycopg import sql

    raw = conn.connection.driver_connection
    if raw is None:  # the transaction's connection was closed under us
        msg = "the database connection closed during the write"
        raise RuntimeError(msg)
    stmt = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
        sql.Identifier(table.schema), sql.Identifier(table.name),
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
    )
    with raw.cursor() as cur, cur.copy(stmt) as copy:
        for row in rows:
            copy.write_row(row)
    return len(rows)


#: SQLSTATE classes of failures that come from the server's state, not from our SQL: connection
#: (08), transaction rollback (40: serialization, deadlock), insufficient resources (53: disk
#: full, out of memory, too many connections), operator intervention (57: shutdown, cancelled
#: statement), plus a read-only transaction (25006) and a lock not available (55P03).
_ENVIRONMENT_SQLSTATES = ("08", "40", "53", "57", "25006", "55P03")


def _raise_if_environment(exc: BaseException, url: URL) -> None:
    """Raise InputError for failures the user can fix (privileges, server state, connection).

    Other database errors (a syntax error, an undefined column: our bugs) are left as they are.
    Inside a transaction nothing was written: the transaction is rolled back.
    """
    import psycopg
    import sqlalchemy as sa

    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    reason = _scrub(str(orig).strip().splitlines()[0] if str(orig).strip() else
                    type(orig).__name__, url)
    if isinstance(orig, psycopg.errors.InsufficientPrivilege):
        msg = (
            f"the database user of {mask_url(url)} may not do this: {reason}; grant it "
            "CREATE on the schema (or create the tables once as the owner) and "
            "INSERT, DELETE, SELECT on the tables"
        )
        raise InputError(msg) from None
    state = str(getattr(orig, "sqlstate", None) or "")
    if isinstance(orig, psycopg.OperationalError) or (
        state and state.startswith(_ENVIRONMENT_SQLSTATES)
    ):
        msg = (
            f"the database {mask_url(url)} failed: {reason}; nothing was changed (the "
            "transaction was rolled back): check that the server is up, writable and has room, "
            "then run the command again"
        )
        raise InputError(msg) from None


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def write_postgis(
    plan: TurfPlan,
    url: str,
    *,
    db_schema: str = "public",
    prefix: str = "knockin_",
    plan_id: str | None = None,
) -> dict[str, int]:
    """Write the plan's four layers into PostGIS, replacing the rows of the same plan.

    In one transaction: take an advisory lock on the table set (concurrent writers wait), create
    the schema and the tables if missing (GiST index on ``geom``; primary key
    ``(plan_id, <row id>)``, which also indexes ``plan_id``), add columns that newer layers
    have, delete the rows of ``plan_id`` from the four tables, then COPY the new rows. On any
    error the transaction is rolled back and the database keeps the previous rows whole.

    Parameters
    ----------
    plan
        The plan (its metric CRS becomes the tables' SRID).
    url
        SQLAlchemy / libpq URL, ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE`` (any
        PostgreSQL driver name is replaced by ``psycopg``; ``?sslmode=require`` and other libpq
        parameters pass through). The database must have the ``postgis`` extension.
    db_schema
        Schema of the tables (created if missing).
    prefix
        Table name prefix: tables ``{prefix}doors``, ``{prefix}turfs``, ``{prefix}routes``,
        ``{prefix}precincts``.
    plan_id
        Id of this plan in the tables; default :func:`default_plan_id`.

    Returns
    -------
    dict of str to int
        Rows written per table, keyed by table name (e.g. ``{"knockin_doors": 4092, ...}``).

    Raises
    ------
    InputError
        Bad URL, unreachable server, no PostGIS, bad names, existing tables that do not fit,
        missing privileges. The message masks the password.
    MissingDependencyError
        SQLAlchemy, GeoAlchemy2 or psycopg is not installed.
    """
    sa, _, _ = _require()
    _check_names(db_schema, prefix)
    pid = default_plan_id(plan) if plan_id is None else str(plan_id)
    if not pid.strip():
        msg = "plan_id is empty: give a non-empty id or leave it out"
        raise InputError(msg)
    srid = _srid(plan.crs)
    layers = plan_layers(plan)
    start = time.perf_counter()
    counts: dict[str, int] = {}
    with _connect(url) as (_engine, conn, parsed), conn.begin():
        version = _check_postgis(conn, parsed)
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                     {"k": f"knockin_geo:{db_schema}.{prefix}"})
        if not sa.inspect(conn).has_schema(db_schema):
            conn.execute(sa.text(f'CREATE SCHEMA "{db_schema}"'))
            logger.info("created schema %s", db_schema)
        tables = {}
        for layer, frame in layers.items():
            table = _table(f"{prefix}{layer}", layer, frame, srid, db_schema)
            _ensure_table(conn, table, srid)
            tables[layer] = table
        for table in tables.values():
            deleted = conn.execute(table.delete().where(table.c.plan_id == pid)).rowcount
            if deleted:
                logger.info("%s: deleted %d rows of plan %s", table.name, deleted, pid)
        for layer, table in tables.items():
            columns, rows = _rows(layers[layer], pid, srid)
            counts[table.name] = _insert_rows(conn, table, columns, rows)
    logger.info(
        "wrote plan %s to %s (schema %s, PostGIS %s, SRID %d) in %.1f s: %s",
        pid, mask_url(parsed), db_schema, version, srid, time.perf_counter() - start,
        ", ".join(f"{k} {v}" for k, v in counts.items()),
    )
    return counts


def check_database(url: str) -> str:
    """Connect once and check PostGIS, so a command can fail before any work is done.

    Parameters
    ----------
    url
        Database URL (see :func:`write_postgis`).

    Returns
    -------
    str
        The PostGIS version.

    Raises
    ------
    InputError
        Bad URL, unreachable server or no PostGIS (the message masks the password).
    """
    _require()
    with _connect(url) as (_engine, conn, parsed):
        return _check_postgis(conn, parsed)


def list_plan_ids(url: str, *, db_schema: str = "public", prefix: str = "knockin_") -> list[str]:
    """Return the plan ids stored in ``{prefix}doors``, sorted.

    Parameters
    ----------
    url
        Database URL (see :func:`write_postgis`).
    db_schema
        Schema of the tables.
    prefix
        Table name prefix.

    Returns
    -------
    list of str
        Plan ids; empty when the table does not exist.
    """
    _require()
    _check_names(db_schema, prefix)
    with _connect(url) as (_engine, conn, _parsed):
        return _plan_ids(conn, db_schema, prefix)


def _plan_ids(conn: Connection, db_schema: str, prefix: str) -> list[str]:
    import sqlalchemy as sa

    if not sa.inspect(conn).has_table(f"{prefix}doors", schema=db_schema):
        return []
    rows = conn.execute(sa.text(
        f'SELECT DISTINCT plan_id FROM "{db_schema}"."{prefix}doors" ORDER BY plan_id'
    ))
    return [str(r[0]) for r in rows]


_READ_DTYPES = {"int": "Int64", "float": "float64", "text": "string", "bool": "boolean"}


def read_postgis_plan(
    url: str,
    *,
    db_schema: str = "public",
    prefix: str = "knockin_",
    plan_id: str | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Read one plan's layers back from PostGIS (round-trip checks, notebooks).

    Parameters
    ----------
    url
        Database URL (see :func:`write_postgis`).
    db_schema
        Schema of the tables.
    prefix
        Table name prefix.
    plan_id
        The plan to read; by default the only plan in the tables (InputError when there are
        several: the message lists them).

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        ``doors``, ``turfs``, ``routes``, ``precincts``: the layers' columns in table order
        (without ``plan_id`` and ``fid``), rows in GeoPackage order, geometry column
        ``geometry`` in the tables' SRID. Text columns are ``string``, integers ``Int64``.
        ``attrs["plan_id"]`` holds the plan id. A missing table gives an empty frame.
    """
    sa, _, _ = _require()
    _check_names(db_schema, prefix)
    out: dict[str, gpd.GeoDataFrame] = {}
    with _connect(url) as (_engine, conn, parsed):
        ids = _plan_ids(conn, db_schema, prefix)
        if plan_id is None:
            if len(ids) != 1:
                where = f"{db_schema}.{prefix}doors"
                msg = (
                    f"{where} in {mask_url(parsed)} holds no plan" if not ids else
                    f"{where} in {mask_url(parsed)} holds {len(ids)} plans: give plan_id"
                )
                raise InputError(msg, [f"plan_id {i!r}" for i in ids])
            plan_id = ids[0]
        elif plan_id not in ids:
            msg = f"no plan {plan_id!r} in {db_schema}.{prefix}doors of {mask_url(parsed)}"
            raise InputError(msg, [f"plan_id {i!r}" for i in ids])
        insp = sa.inspect(conn)
        for layer in LAYERS:
            name = f"{prefix}{layer}"
            if not insp.has_table(name, schema=db_schema):
                out[layer] = gpd.GeoDataFrame(geometry=gpd.GeoSeries([]))
                continue
            cols = [c for c in insp.get_columns(name, schema=db_schema)
                    if c["name"] not in ("plan_id", "fid", GEOM_COLUMN)]
            srid = conn.execute(sa.text("SELECT Find_SRID(:s, :t, :g)"),
                                {"s": db_schema, "t": name, "g": GEOM_COLUMN}).scalar()
            select = ", ".join(f'"{c["name"]}"' for c in cols)
            query = sa.text(
                f'SELECT {select}{", " if cols else ""}ST_AsBinary("{GEOM_COLUMN}") AS geometry '
                f'FROM "{db_schema}"."{name}" WHERE plan_id = :pid ORDER BY fid'
            )
            crs = CRS.from_epsg(int(srid)) if srid else None
            frame = gpd.read_postgis(query, conn, geom_col="geometry", crs=crs,
                                     params={"pid": plan_id})
            for c in cols:
                dtype = _READ_DTYPES.get(_family(c["type"]))
                if dtype is not None:
                    frame[c["name"]] = frame[c["name"]].astype(dtype)
            frame = frame.reset_index(drop=True)
            frame.attrs["plan_id"] = plan_id
            out[layer] = frame
    return out

