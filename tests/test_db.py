"""PostGIS export: round trip against plan.gpkg, replace-not-append, one transaction, errors.

The database tests need a PostGIS database in ``KNOCKIN_TEST_DB`` (``.ci/start-postgis.sh``
starts a throwaway one and prints the line to export). Without it they are skipped locally and
fail in CI (``CI`` set), so that CI cannot silently stop testing the export.
"""

from __future__ import annotations

import os
import sys
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from knockin_geo import db, io, streets
from knockin_geo._errors import InputError, MissingDependencyError
from knockin_geo.plan import TurfPlan, plan_turfs, precincts_layer, write_plan
from knockin_geo.turfs import TurfParams

NANTES = Path(__file__).resolve().parents[1] / "data" / "nantes"
LAYERS = ("doors", "turfs", "routes", "precincts")
SECRET = "s3cr3t-Pa55word"


def _deps_or_skip() -> None:
    for mod in ("sqlalchemy", "geoalchemy2", "psycopg"):
        try:
            __import__(mod)
        except ImportError:
            if os.environ.get("CI"):
                pytest.fail(f"{mod} missing in CI: install the db extra (knockin_geo[db])")
            pytest.skip(f"{mod} not installed (pip install knockin_geo[db])")


@pytest.fixture(scope="module")
def db_url() -> str:
    _deps_or_skip()
    url = os.environ.get("KNOCKIN_TEST_DB")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("KNOCKIN_TEST_DB is not set: CI must start PostGIS "
                        '(eval "$(bash .ci/start-postgis.sh)")')
        pytest.skip("KNOCKIN_TEST_DB not set (start one: eval \"$(bash .ci/start-postgis.sh)\")")
    return url


@pytest.fixture(scope="module")
def engine(db_url: str) -> Iterator[Any]:
    import sqlalchemy as sa

    eng = sa.create_engine(db._parse_url(db_url), poolclass=sa.pool.NullPool)
    yield eng
    eng.dispose()


@pytest.fixture
def prefix(engine: Any) -> Iterator[str]:
    """A fresh table prefix per test; its tables are dropped afterwards."""
    import sqlalchemy as sa

    p = f"t{uuid.uuid4().hex[:8]}_"
    yield p
    with engine.begin() as conn:
        for layer in LAYERS:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS public."{p}{layer}"'))


@pytest.fixture(scope="module")
def plan() -> TurfPlan:
    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(NANTES / "addresses" / "adresses_nantes_commune_2013.csv")
    net = streets.load_network(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf", cache=False)
    return plan_turfs(doors, net, precincts=precincts, universe=["0101", "0319"])


def _count(engine: Any, table: str, plan_id: str | None = None) -> int:
    import sqlalchemy as sa

    sql = f'SELECT count(*) FROM public."{table}"'
    with engine.connect() as conn:
        if plan_id is None:
            return int(conn.execute(sa.text(sql)).scalar())
        return int(conn.execute(sa.text(sql + " WHERE plan_id = :p"), {"p": plan_id}).scalar())


def _table_exists(engine: Any, table: str) -> bool:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return bool(sa.inspect(conn).has_table(table, schema="public"))


def _values(frame: gpd.GeoDataFrame) -> list[list[Any]]:
    """Attribute values as plain Python objects, missing values as None."""
    plain = frame.drop(columns=frame.geometry.name)
    cols = [plain[c].astype(object).where(plain[c].notna(), None) for c in plain.columns]
    return [list(row) for row in zip(*cols, strict=True)] if cols else [[]] * len(frame)


def _assert_same_layer(got: gpd.GeoDataFrame, want: gpd.GeoDataFrame, name: str) -> None:
    assert list(got.columns.drop(got.geometry.name)) == list(
        want.columns.drop(want.geometry.name)), name
    assert len(got) == len(want), name
    assert got.crs == want.crs, name
    assert _values(got) == _values(want), name
    g, w = got.geometry.to_numpy(), want.geometry.to_numpy()
    assert (shapely.is_missing(g) == shapely.is_missing(w)).all(), name
    both = ~shapely.is_missing(g)
    assert (shapely.get_type_id(g[both]) == shapely.get_type_id(w[both])).all(), name
    assert shapely.equals_exact(g[both], w[both], tolerance=0.001).all(), name


# ---- database tests ----------------------------------------------------------------------------


def test_round_trip_equals_geopackage(plan: TurfPlan, db_url: str, prefix: str, engine: Any,
                                      tmp_path: Path) -> None:
    import sqlalchemy as sa

    write_plan(plan, tmp_path, walk_lists=False, maps=False, exports=False)
    gpkg = tmp_path / "plan.gpkg"
    counts = db.write_postgis(plan, db_url, prefix=prefix, plan_id="nantes")
    back = db.read_postgis_plan(db_url, prefix=prefix)
    assert back["doors"].attrs["plan_id"] == "nantes"
    for layer in LAYERS:
        want = gpd.read_file(gpkg, layer=layer)
        assert counts[f"{prefix}{layer}"] == len(want) > 0
        _assert_same_layer(back[layer], want, layer)
    srid = plan.crs.to_epsg()
    with engine.connect() as conn:
        for layer in LAYERS:
            found = conn.execute(sa.text("SELECT Find_SRID('public', :t, 'geom')"),
                                 {"t": f"{prefix}{layer}"}).scalar()
            assert found == srid == 32630
            indexes = conn.execute(
                sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"),
                {"t": f"{prefix}{layer}"},
            ).scalars().all()
            assert any("USING gist (geom)" in i for i in indexes), indexes
            assert any("(plan_id," in i for i in indexes), indexes


def test_same_plan_twice_replaces(plan: TurfPlan, db_url: str, prefix: str,
                                  engine: Any) -> None:
    first = db.write_postgis(plan, db_url, prefix=prefix)
    second = db.write_postgis(plan, db_url, prefix=prefix)
    assert first == second
    pid = db.default_plan_id(plan)
    assert db.list_plan_ids(db_url, prefix=prefix) == [pid]
    for layer in LAYERS:
        table = f"{prefix}{layer}"
        assert _count(engine, table) == _count(engine, table, pid) == first[table]
    assert first[f"{prefix}doors"] == len(plan.doors)


def test_two_plan_ids_coexist(plan: TurfPlan, db_url: str, prefix: str, engine: Any) -> None:
    a = db.write_postgis(plan, db_url, prefix=prefix, plan_id="week-1")
    b = db.write_postgis(plan, db_url, prefix=prefix, plan_id="week-2")
    assert db.list_plan_ids(db_url, prefix=prefix) == ["week-1", "week-2"]
    for layer in LAYERS:
        table = f"{prefix}{layer}"
        assert _count(engine, table, "week-1") == a[table]
        assert _count(engine, table, "week-2") == b[table]
        assert _count(engine, table) == a[table] + b[table]
    with pytest.raises(InputError, match="2 plans"):
        db.read_postgis_plan(db_url, prefix=prefix)
    one = db.read_postgis_plan(db_url, prefix=prefix, plan_id="week-2")
    assert len(one["doors"]) == a[f"{prefix}doors"]


def test_failure_midway_keeps_previous_plan(plan: TurfPlan, db_url: str, prefix: str,
                                            engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    before = db.write_postgis(plan, db_url, prefix=prefix, plan_id="p")
    real = db._insert_rows
    calls: list[str] = []

    def flaky(conn: Any, table: Any, columns: list[str], rows: list[tuple]) -> int:
        calls.append(table.name)
        if len(calls) == 3:
            raise RuntimeError("disk full (simulated)")
        return real(conn, table, columns, rows)

    monkeypatch.setattr(db, "_insert_rows", flaky)
    with pytest.raises(RuntimeError, match="simulated"):
        db.write_postgis(plan, db_url, prefix=prefix, plan_id="p")
    assert calls == [f"{prefix}doors", f"{prefix}turfs", f"{prefix}routes"]
    # The deletes of all four tables ran before the failing insert: all rolled back.
    for layer in LAYERS:
        table = f"{prefix}{layer}"
        assert _count(engine, table, "p") == _count(engine, table) == before[table]
    back = db.read_postgis_plan(db_url, prefix=prefix, plan_id="p")
    assert len(back["routes"]) == before[f"{prefix}routes"] > 0

    # A failing first write leaves no tables behind (the DDL is in the transaction too).
    calls.clear()
    other = f"{prefix}x_"
    try:
        with pytest.raises(RuntimeError, match="simulated"):
            db.write_postgis(plan, db_url, prefix=other)
        assert not any(_table_exists(engine, f"{other}{layer}") for layer in LAYERS)
    finally:
        import sqlalchemy as sa

        with engine.begin() as conn:
            for layer in LAYERS:
                conn.execute(sa.text(f'DROP TABLE IF EXISTS public."{other}{layer}"'))


def test_existing_table_with_other_srid_is_refused(plan: TurfPlan, db_url: str, prefix: str,
                                                   engine: Any) -> None:
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text(
            f'CREATE TABLE public."{prefix}doors" (plan_id text NOT NULL, fid integer NOT NULL, '
            "address_id text NOT NULL, geom geometry(Point, 4326))"
        ))
    with pytest.raises(InputError, match="does not fit") as info:
        db.write_postgis(plan, db_url, prefix=prefix)
    assert "SRID 4326" in str(info.value)
    with engine.connect() as conn:
        cols = [c["name"] for c in sa.inspect(conn).get_columns(f"{prefix}doors")]
    assert cols == ["plan_id", "fid", "address_id", "geom"]  # the ALTERs were rolled back
    assert not _table_exists(engine, f"{prefix}turfs")


def test_unknown_database_is_input_error(db_url: str) -> None:
    from sqlalchemy.engine import make_url

    assert db.check_database(db_url).startswith("3.")
    url = make_url(db_url).set(database="no_such_db_knockin", password=SECRET)
    for call in (db.check_database, db.read_postgis_plan, db.list_plan_ids):
        with pytest.raises(InputError, match="no_such_db_knockin") as info:
            call(url.render_as_string(hide_password=False))
        assert SECRET not in str(info.value)


# ---- no database needed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://canvass:{SECRET}@127.0.0.1:1/campaign", "127.0.0.1:1/campaign"),
        (f"postgresql+psycopg://canvass:{SECRET}@256.1.1.1:5432/campaign", "256.1.1.1"),
        (f"postgres://canvass:{SECRET}@127.0.0.1:1/campaign", "127.0.0.1:1"),
        (f"mysql://canvass:{SECRET}@127.0.0.1/campaign", "not a PostgreSQL URL"),
        (f"not a url {SECRET}", "not a database URL"),
        (f"postgresql://canvass:{SECRET}@127.0.0.1:1", "names no database"),
    ],
)
def test_bad_url_is_input_error_without_password(plan: TurfPlan, url: str, shown: str) -> None:
    _deps_or_skip()
    with pytest.raises(InputError) as info:
        db.write_postgis(plan, url)
    exc = info.value
    text = str(exc)
    assert shown in text
    assert SECRET not in text
    assert "Traceback" not in text
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__
    assert SECRET not in "".join(traceback.format_exception(exc))
    if "://" in url and "canvass:" in url:
        assert "canvass:***@" in text


def test_bad_names_are_input_errors(plan: TurfPlan) -> None:
    _deps_or_skip()
    with pytest.raises(InputError, match="prefix"):
        db.write_postgis(plan, "postgresql://u@127.0.0.1:1/d", prefix='x"; DROP TABLE y; --')
    with pytest.raises(InputError, match="schema"):
        db.write_postgis(plan, "postgresql://u@127.0.0.1:1/d", db_schema="Campaign 2026")


def test_missing_dependency_message(plan: TurfPlan, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingDependencyError, match=r"knockin_geo\[db\]"):
        db.write_postgis(plan, "postgresql://u@127.0.0.1/d")


def test_default_plan_id_is_stable(plan: TurfPlan) -> None:
    pid = db.default_plan_id(plan)
    assert pid == db.default_plan_id(plan)
    assert pid.startswith("plan-") and len(pid) == len("plan-") + 12
    other = TurfPlan(plan.doors, plan.turfs, plan.routes, plan.precincts,
                     {**plan.report, "params": {**plan.report["params"], "seed": 1}},
                     TurfParams(seed=1), plan.network)
    assert db.default_plan_id(other) != pid
    named = TurfPlan(plan.doors, plan.turfs, plan.routes, plan.precincts,
                     {**plan.report, "inputs": {"addresses": "Adresses Nantes.csv.bz2"}},
                     plan.params, plan.network)
    assert db.default_plan_id(named).startswith("adresses_nantes-")


def test_layers_match_write_plan(plan: TurfPlan, tmp_path: Path) -> None:
    """The precincts layer read back from plan.gpkg is precincts_layer(plan)."""
    write_plan(plan, tmp_path, walk_lists=False, maps=False, exports=False)
    want = gpd.read_file(tmp_path / "plan.gpkg", layer="precincts")
    got = precincts_layer(plan)
    got = got.set_geometry(shapely.set_precision(got.geometry.to_numpy(), 0.001))
    _assert_same_layer(got, want, "precincts")
    assert isinstance(got, pd.DataFrame)


def test_connection_lost_mid_write_is_input_error_and_keeps_previous_rows(
    plan: TurfPlan, db_url: str, prefix: str, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    before = db.write_postgis(plan, db_url, prefix=prefix, plan_id="p")
    real = db._insert_rows

    def dropped(conn: Any, table: Any, columns: list[str], rows: list[tuple]) -> int:
        if table.name.endswith("routes"):  # the server ends our session mid-transaction
            conn.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return real(conn, table, columns, rows)

    monkeypatch.setattr(db, "_insert_rows", dropped)
    url = make_url(db_url).set(password=SECRET).render_as_string(hide_password=False)
    with pytest.raises(InputError, match="nothing was changed") as info:
        db.write_postgis(plan, url, prefix=prefix, plan_id="p")
    assert SECRET not in str(info.value)
    assert ":***@" in str(info.value)
    for layer in LAYERS:
        assert _count(engine, f"{prefix}{layer}", "p") == before[f"{prefix}{layer}"]


def test_read_only_database_is_input_error(plan: TurfPlan, db_url: str, prefix: str,
                                           engine: Any) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(db_url).set(password=SECRET).update_query_dict(
        {"options": "-c default_transaction_read_only=on"})
    with pytest.raises(InputError, match="read-only transaction") as info:
        db.write_postgis(plan, url.render_as_string(hide_password=False), prefix=prefix)
    assert SECRET not in str(info.value)
    assert not any(_table_exists(engine, f"{prefix}{layer}") for layer in LAYERS)


def test_cli_database_errors_exit_2_with_the_password_masked(
    db_url: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from knockin_geo.cli.main import main
    from sqlalchemy.engine import make_url

    good = make_url(db_url).set(password=SECRET)
    urls = {
        "refused": f"postgresql://canvass:{SECRET}@127.0.0.1:1/campaign",
        "garbled": f"postgresql://canvass:{SECRET}@127.0.0.1:port/campaign",
        "no database": good.set(database="no_such_db_knockin").render_as_string(
            hide_password=False),
        "read-only": good.update_query_dict(
            {"options": "-c default_transaction_read_only=on"}).render_as_string(
            hide_password=False),
    }
    for case, url in urls.items():
        code = main(["-q", "cut",
                     "--precincts", str(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson"),
                     "--addresses", str(NANTES / "addresses" / "adresses_nantes_commune_2013.csv"),
                     "--network", str(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf"),
                     "--universe", "0101", "--no-route", "--out", str(tmp_path / case),
                     "--db", url, "--db-prefix", prefix])
        err = capsys.readouterr().err
        assert code == 2, (case, err)
        assert err.startswith("knockin-geo: error: "), (case, err)
        assert "internal error" not in err and "Traceback" not in err, (case, err)
        assert SECRET not in err, case
