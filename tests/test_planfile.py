"""The plan file: plan.gpkg holds the whole plan, and read_plan gives it back."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest
import shapely

from knockin_geo import io, streets
from knockin_geo._errors import InputError
from knockin_geo.edits import apply_edits, locked_turfs, parse_edits
from knockin_geo.plan import plan_turfs, report_json, write_plan
from knockin_geo.planfile import read_plan
from knockin_geo.turfs import TurfParams

NANTES = Path(__file__).resolve().parents[1] / "data" / "nantes"
PBF = NANTES / "osm" / "nantes_centre_2014-09.osm.pbf"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(NANTES / "addresses" / "adresses_nantes_commune_2013.csv")
    net = streets.load_network(PBF)
    params = TurfParams(doors_per_turf=60, tolerance=0.12, seed=3)
    plan = plan_turfs(doors, net, precincts=precincts, universe=["0101", "0301"], params=params)
    folder = tmp_path_factory.mktemp("planfile") / "cut"
    write_plan(plan, folder, walk_lists=False, maps=False, exports=False)
    return plan, folder


def test_read_plan_gives_back_the_plan_written(written) -> None:
    plan, folder = written
    back = read_plan(folder)
    # every column (snapping, cut, address fields, turf figures), exact geometries
    for name in ("doors", "turfs", "routes", "precincts"):
        a, b = getattr(plan, name), getattr(back, name)
        pd.testing.assert_frame_equal(pd.DataFrame(b.drop(columns="geometry")),
                                      pd.DataFrame(a.drop(columns="geometry")))
        ga, gb = a.geometry.to_numpy(), b.geometry.to_numpy()
        assert (shapely.equals_exact(ga, gb, tolerance=0) | (shapely.is_missing(ga)
                                                             & shapely.is_missing(gb))).all()
        assert b.crs == a.crs
    # written again, the same bytes
    write_plan(back, folder.parent / "again", walk_lists=False, maps=False, exports=False)
    assert (folder.parent / "again" / "plan.gpkg").read_bytes() == \
        (folder / "plan.gpkg").read_bytes()
    assert back.params == plan.params
    assert report_json(back.report) == report_json(plan.report)
    assert back.network.source_sha256 == plan.network.source_sha256
    assert back.network.edges[["u", "v", "length"]].equals(plan.network.edges[["u", "v", "length"]])


def test_read_plan_gives_back_hand_edits_locks_and_avoided_streets(written, tmp_path: Path) -> None:
    plan, _ = written
    turf = str(plan.turfs.index[0])
    doors = sorted(plan.doors.index[plan.doors["turf_id"] == turf].astype(str))
    street = str(plan.doors.loc[plan.doors["turf_id"] == str(plan.turfs.index[-1]),
                                "street"].iloc[0])
    edits = parse_edits({"format": "knockin-geo-edits", "version": 1, "edits": [
        {"op": "lock", "turf": turf, "doors": doors},
        {"op": "exclude_street", "street": street}]})
    edited = apply_edits(plan, edits).plan
    write_plan(edited, tmp_path / "edited", walk_lists=False, maps=False, exports=False)
    back = read_plan(tmp_path / "edited")
    pd.testing.assert_frame_equal(pd.DataFrame(back.turfs.drop(columns="geometry")),
                                  pd.DataFrame(edited.turfs.drop(columns="geometry")))
    assert locked_turfs(back) == [turf]
    assert back.report["avoided_streets"] == [{"street": street, "numbers": None}]
    assert report_json(back.report) == report_json(edited.report)


def test_a_changed_or_missing_street_file_is_named(written, tmp_path: Path) -> None:
    plan, folder = written
    moved = tmp_path / "streets.osm.pbf"
    shutil.copy(PBF, moved)
    assert read_plan(folder, network_path=moved).network.source_sha256 == \
        plan.network.source_sha256
    moved.write_bytes(moved.read_bytes() + b"\0")
    with pytest.raises(InputError, match="changed since the plan"):
        read_plan(folder, network_path=moved)
    with pytest.raises(InputError, match="not at"):
        read_plan(folder, network_path=tmp_path / "gone.osm.pbf")
    other = dataclasses.replace(plan.network, source_sha256="0" * 64)
    with pytest.raises(InputError, match="changed since the plan"):
        read_plan(folder, network=other)


def test_an_input_inside_the_plan_folder_is_recorded_by_its_place_in_it(
        written, tmp_path: Path) -> None:
    """The demo's scored precincts live in its own folder: no machine's folder in the bytes."""
    import json

    import pyogrio

    plan, _folder = written
    gpkgs = []
    for where in (tmp_path / "a", tmp_path / "b" / "deeper"):
        (where / "targeting").mkdir(parents=True)
        (where / "targeting" / "precincts.geojson").write_text("{}", encoding="utf-8")
        write_plan(plan, where, walk_lists=False, maps=False, exports=False,
                   input_files={"precincts": where / "targeting" / "precincts.geojson",
                                "network": PBF})
        gpkgs.append((where / "plan.gpkg").read_bytes())
        meta = pyogrio.read_dataframe(where / "plan.gpkg", layer="plan_meta",
                                      read_geometry=False)
        inputs = json.loads(dict(zip(meta["key"], meta["value"], strict=True))["inputs"])
        assert inputs["precincts"]["path"] == "targeting/precincts.geojson"
        assert inputs["network"]["path"] == str(PBF.resolve())  # outside: absolute
    assert gpkgs[0] == gpkgs[1]


def test_a_plan_without_the_plan_tables_is_refused_with_what_to_do(written,
                                                                   tmp_path: Path) -> None:
    import pyogrio

    _plan, folder = written
    old = tmp_path / "old" / "plan.gpkg"
    old.parent.mkdir()
    for layer in ("doors", "turfs", "routes"):
        frame = pyogrio.read_dataframe(folder / "plan.gpkg", layer=layer)
        pyogrio.write_dataframe(frame, old, layer=layer, append=old.exists())
    with pytest.raises(InputError, match="cut again"):
        read_plan(old.parent)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "plan.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(InputError, match="not a GeoPackage"):
        read_plan(tmp_path / "bad")
