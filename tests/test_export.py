"""Exports (CSV, GeoJSON, GPX, KML, app JSON, manifest), canvasser assignment and packets."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import gpxpy
import jsonschema
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from knockin_geo import export, io, schema, streets
from knockin_geo._errors import InputError
from knockin_geo._json import compact
from knockin_geo.export import (
    ASSIGNMENT_COLUMNS,
    UNASSIGNED_COLUMNS,
    assign_canvassers,
    read_canvassers,
    write_exports,
    write_packets,
)
from knockin_geo.plan import TurfPlan, plan_turfs

ROOT = Path(__file__).resolve().parents[1]
NANTES = ROOT / "data" / "nantes"
APP_SCHEMA = ROOT / "docs" / "app-turfs.schema.json"
GPX = "{http://www.topografix.com/GPX/1/1}"

#: Personal values planted in the doors: none may appear in any exported byte.
SECRETS = {
    "first_name": "Zyxwvut",
    "last_name": "Qwertyuiopov",
    "phone": "+33 6 12 34 56 78",
    "email": "zyx@example.org",
}


@pytest.fixture(scope="module")
def inputs() -> tuple:
    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(NANTES / "addresses" / "adresses_nantes_commune_2013.csv")
    net = streets.load_network(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf", cache=False)
    return precincts, doors, net


@pytest.fixture(scope="module")
def plan(inputs: tuple) -> TurfPlan:
    precincts, doors, net = inputs
    return plan_turfs(doors, net, precincts=precincts, universe=["0101", "0319"])


@pytest.fixture(scope="module")
def exports(plan: TurfPlan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exports")
    write_exports(plan, out)
    return out / "exports"


def _assigned(plan: TurfPlan) -> pd.DataFrame:
    return plan.doors[plan.doors[schema.TURF_ID].notna()]


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _lonlat_of(plan: TurfPlan, x: float, y: float) -> tuple[float, float]:
    tr = Transformer.from_crs(plan.crs, 4326, always_xy=True)
    lon, lat = tr.transform(x, y)
    return float(lon), float(lat)


# ---------------------------------------------------------------------------------------------
# files and CSV
# ---------------------------------------------------------------------------------------------


def test_every_file_is_written(plan: TurfPlan, exports: Path) -> None:
    names = {p.relative_to(exports).as_posix() for p in _all_files(exports)}
    expected = {
        "assignments.csv", "unassigned.csv", "doors.geojson", "turfs.geojson", "routes.geojson",
        "turfs.kml", "app/turfs.json", "manifest.json",
    } | {f"gpx/{t}.gpx" for t in plan.turfs.index}
    assert names == expected
    # nothing left over from the temporary build folder
    assert [p.name for p in exports.parent.iterdir() if p.name.startswith(".")] == []


def test_assignments_csv(plan: TurfPlan, exports: Path) -> None:
    header, rows = _read_csv(exports / "assignments.csv")
    assert header == list(ASSIGNMENT_COLUMNS)
    assigned = _assigned(plan)
    assert len(rows) == len(assigned)
    assert sorted(r["address_id"] for r in rows) == sorted(assigned.index.astype(str))
    keys = [(r["turf_id"], int(r["seq"])) for r in rows]
    assert keys == sorted(keys)
    for tid, n in assigned.groupby(schema.TURF_ID).size().items():
        assert [int(r["seq"]) for r in rows if r["turf_id"] == tid] == list(range(1, n + 1))
    for r in rows[:50]:
        door = assigned.loc[r["address_id"]]
        assert r["turf_id"] == door[schema.TURF_ID]
        assert r["precinct_id"] == door[schema.PRECINCT_ID]
        assert r["housenumber"] == door[schema.HOUSENUMBER]
        assert r["street"] == door[schema.STREET]
        assert r["side"] == door[schema.SIDE]
        assert int(r["seq"]) == door[schema.SEQ]
        assert re.fullmatch(r"-?\d+\.\d{7}", r["lon"]) and re.fullmatch(r"-?\d+\.\d{7}", r["lat"])
        lon, lat = _lonlat_of(plan, door.geometry.x, door.geometry.y)
        assert abs(float(r["lon"]) - lon) < 1e-6 and abs(float(r["lat"]) - lat) < 1e-6
    raw = (exports / "assignments.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw


def test_unassigned_csv(plan: TurfPlan, exports: Path) -> None:
    header, rows = _read_csv(exports / "unassigned.csv")
    assert header == list(UNASSIGNED_COLUMNS)
    assert len(rows) == int(plan.doors[schema.TURF_ID].isna().sum())
    statuses = {r["status"] for r in rows}
    assert "not_in_universe" in statuses and "assigned" not in statuses
    for r in rows:
        assert r["reason"] == schema.ADDRESS_STATUSES[r["status"]]


# ---------------------------------------------------------------------------------------------
# GeoJSON and KML
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "count"),
    [("doors.geojson", "Point", "doors"), ("turfs.geojson", "Polygon", "turfs"),
     ("routes.geojson", "LineString", "turfs")],
)
def test_geojson_opens_in_gdal(
    plan: TurfPlan, exports: Path, name: str, kind: str, count: str
) -> None:
    gdf = pyogrio.read_dataframe(exports / name)
    n = len(_assigned(plan)) if count == "doors" else len(plan.turfs)
    assert len(gdf) == n
    assert gdf.crs.to_epsg() == 4326
    assert set(gdf.geom_type) <= {kind, f"Multi{kind}"}
    doc = json.loads((exports / name).read_text(encoding="utf-8"))
    assert "crs" not in doc  # RFC 7946: WGS 84 lon/lat only, no crs member
    text = (exports / name).read_text(encoding="utf-8")
    assert not re.search(r"\d\.\d{8,}", text)  # coordinates (and figures) at most 7 decimals
    if name == "doors.geojson":
        assert list(gdf.columns[:-1]) == list(export.DOOR_PROPERTIES)
        assert set(gdf[schema.TURF_ID]) == set(plan.turfs.index)
    if name == "turfs.geojson":
        assert gdf[schema.TURF_ID].tolist() == sorted(plan.turfs.index)
        shells = [p.exterior for g in gdf.geometry for p in getattr(g, "geoms", [g])]
        assert all(shapely.is_ccw(s) for s in shells)  # RFC 7946 winding
        assert gdf["doors"].tolist() == plan.turfs.loc[sorted(plan.turfs.index), "doors"].tolist()
    if name == "routes.geojson":
        assert list(gdf.columns[:-1]) == [schema.TURF_ID, "length_m", "walk_m", "est_minutes"]


def test_kml_opens_in_gdal_with_one_folder_per_turf(plan: TurfPlan, exports: Path) -> None:
    path = exports / "turfs.kml"
    layers = pyogrio.list_layers(path)
    assert sorted(layers[:, 0]) == sorted(plan.turfs.index)
    sizes = _assigned(plan).groupby(schema.TURF_ID).size()
    for tid in plan.turfs.index:
        gdf = pyogrio.read_dataframe(path, layer=tid)
        assert gdf.crs.to_epsg() == 4326
        kinds = gdf.geom_type.value_counts().to_dict()
        assert kinds.get("Point", 0) == sizes[tid]
        assert kinds.get("Polygon", 0) + kinds.get("MultiPolygon", 0) == 1
        assert kinds.get("LineString", 0) == 1
        names = gdf.loc[gdf.geom_type == "Point", "Name"].tolist()
        assert [int(n.split(".")[0]) for n in names] == list(range(1, sizes[tid] + 1))
    doors = _assigned(plan).sort_values([schema.TURF_ID, schema.SEQ])
    first = doors.iloc[0]
    label = f"1. {first[schema.HOUSENUMBER]} {first[schema.STREET]}"
    assert f"<name>{label}</name>" in path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# GPX
# ---------------------------------------------------------------------------------------------

#: Child element order of the GPX 1.1 XSD types used (http://www.topografix.com/GPX/1/1).
GPX_ORDER = {
    "gpx": ["metadata", "wpt", "rte", "trk", "extensions"],
    "metadata": ["name", "desc", "author", "copyright", "link", "time", "keywords", "bounds",
                 "extensions"],
    "wpt": ["ele", "time", "magvar", "geoidheight", "name", "cmt", "desc", "src", "link", "sym",
            "type", "fix", "sat", "hdop", "vdop", "pdop", "ageofdgpsdata", "dgpsid",
            "extensions"],
    "trk": ["name", "cmt", "desc", "src", "link", "number", "type", "extensions", "trkseg"],
    "trkseg": ["trkpt", "extensions"],
    "copyright": ["year", "license"],
}


def _check_gpx_order(el: ET.Element) -> None:
    tag = el.tag.removeprefix(GPX)
    order = GPX_ORDER.get(tag)
    if order is None:
        return
    ranks = []
    for child in el:
        assert child.tag.startswith(GPX), child.tag  # every element in the GPX 1.1 namespace
        name = child.tag.removeprefix(GPX)
        assert name in order, f"<{name}> not allowed in <{tag}>"
        ranks.append(order.index(name))
        _check_gpx_order(child)
    assert ranks == sorted(ranks), f"children of <{tag}> out of schema order"
    singles = [n for n in order if n not in ("wpt", "rte", "trk", "trkseg", "trkpt", "link")]
    for n in singles:
        assert len(el.findall(GPX + n)) <= 1


def test_gpx_per_turf_is_valid_gpx_11(plan: TurfPlan, exports: Path) -> None:
    assigned = _assigned(plan)
    for tid in plan.turfs.index:
        path = exports / "gpx" / f"{tid}.gpx"
        raw = path.read_bytes()
        assert b"<time" not in raw
        root = ET.fromstring(raw)
        assert root.tag == GPX + "gpx"
        assert root.get("version") == "1.1" and root.get("creator") == "knockin_geo"
        _check_gpx_order(root)
        for pt in root.iter(GPX + "wpt"):
            assert -90 <= float(pt.get("lat")) <= 90 and -180 <= float(pt.get("lon")) <= 180
        gpx = gpxpy.parse(raw.decode("utf-8"))
        assert gpx.version == "1.1"
        assert len(gpx.tracks) == 1 and gpx.tracks[0].name == tid
        route = plan.routes.geometry.loc[tid]
        points = [p for s in gpx.tracks[0].segments for p in s.points]
        assert len(points) == len(shapely.get_coordinates(route))
        doors = assigned[assigned[schema.TURF_ID] == tid].sort_values(schema.SEQ)
        assert len(gpx.waypoints) == len(doors)
        expected = [
            f"{s}. {h} {st}" for s, h, st in zip(
                doors[schema.SEQ], doors[schema.HOUSENUMBER], doors[schema.STREET], strict=True)
        ]
        assert [w.name for w in gpx.waypoints] == expected
        assert all(w.description.startswith("households: ") for w in gpx.waypoints)
        meta = root.find(GPX + "metadata")
        assert meta is not None and meta.findtext(GPX + "name") == f"Turf {tid}"
        assert "© OpenStreetMap contributors" in meta.findtext(GPX + "desc")
        assert gpx.copyright_author == "OpenStreetMap contributors"


# ---------------------------------------------------------------------------------------------
# app JSON, manifest, determinism, atomicity
# ---------------------------------------------------------------------------------------------


def test_app_json_validates_against_its_schema(plan: TurfPlan, exports: Path) -> None:
    doc = json.loads((exports / "app" / "turfs.json").read_text(encoding="utf-8"))
    spec = json.loads(APP_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(spec)
    jsonschema.Draft202012Validator(spec).validate(doc)
    assert doc["schema_version"] == 1 and doc["crs"] == "EPSG:4326"
    assert doc["generated_by"].startswith("knockin_geo ")
    assert [t["turf_id"] for t in doc["turfs"]] == sorted(plan.turfs.index)
    for t in doc["turfs"]:
        assert [d["seq"] for d in t["doors_list"]] == list(range(1, t["doors"] + 1))
        assert t["doors"] == int(plan.turfs.loc[t["turf_id"], "doors"])
        assert len(t["route"]) >= 2
        assert "canvasser_id" not in t
    # a broken document is rejected (the schema is not vacuous)
    bad = json.loads(json.dumps(doc))
    bad["turfs"][0]["doors_list"][0]["phone"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, spec, cls=jsonschema.Draft202012Validator)


def test_manifest_lists_every_file_with_size_and_hash(exports: Path) -> None:
    manifest = json.loads((exports / "manifest.json").read_text(encoding="utf-8"))
    entries = manifest["files"]
    paths = [e["path"] for e in entries]
    assert paths == sorted(paths)
    on_disk = {p.relative_to(exports).as_posix() for p in _all_files(exports)}
    assert set(paths) == on_disk - {"manifest.json"}
    for e in entries:
        data = (exports / e["path"]).read_bytes()
        assert e["bytes"] == len(data)
        assert e["sha256"] == hashlib.sha256(data).hexdigest()


def test_exports_are_deterministic_and_replace_the_folder(
    plan: TurfPlan, exports: Path, tmp_path: Path
) -> None:
    out = tmp_path / "again"
    write_exports(plan, out)
    (out / "exports" / "stale.txt").write_text("old", encoding="utf-8")
    files = write_exports(plan, out)
    again = out / "exports"
    assert sorted(files) == _all_files(again)  # the stale file went with the old folder
    for p in _all_files(exports):
        rel = p.relative_to(exports)
        assert (again / rel).read_bytes() == p.read_bytes(), rel
    assert [p.name for p in out.iterdir()] == ["exports"]


def test_failed_export_leaves_the_previous_one(
    plan: TurfPlan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_exports(plan, tmp_path)
    before = {p: p.read_bytes() for p in _all_files(tmp_path / "exports")}

    def boom(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_kml", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_exports(plan, tmp_path)
    assert {p: p.read_bytes() for p in _all_files(tmp_path / "exports")} == before
    assert [p.name for p in tmp_path.iterdir()] == ["exports"]


def test_unrouted_plan_exports_without_routes(inputs: tuple, tmp_path: Path) -> None:
    precincts, doors, net = inputs
    bare = plan_turfs(doors, net, precincts=precincts, universe=["0101"], route=False)
    write_exports(bare, tmp_path)
    ex = tmp_path / "exports"
    assert pyogrio.read_info(ex / "routes.geojson")["features"] == 0
    doc = json.loads((ex / "app" / "turfs.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, json.loads(APP_SCHEMA.read_text(encoding="utf-8")))
    gpx = gpxpy.parse((ex / "gpx" / f"{bare.turfs.index[0]}.gpx").read_text(encoding="utf-8"))
    assert gpx.tracks == [] and len(gpx.waypoints) == int(bare.turfs["doors"].iloc[0])


# ---------------------------------------------------------------------------------------------
# canvassers
# ---------------------------------------------------------------------------------------------


def _route_start(plan: TurfPlan, tid: str) -> tuple[float, float]:
    x, y = shapely.get_coordinates(plan.routes.geometry.loc[tid])[0]
    return _lonlat_of(plan, x, y)


@pytest.fixture(scope="module")
def crew_file(plan: TurfPlan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    near_a = _route_start(plan, "0319-03")
    near_b = _route_start(plan, "0101-02")
    path = tmp_path_factory.mktemp("crew") / "canvassers.csv"
    path.write_text(
        "id;name;team;lon;lat;capacity;phone\n"
        f"vol-b;Bea;north;{near_b[0]:.7f};{near_b[1]:.7f};2;+33 7 99 88 77 66\n"
        f"vol-a;Ali;south;{near_a[0]:.7f};{near_a[1]:.7f};1;+33 7 99 88 77 66\n"
        "vol-c;Cyd;south;;;;+33 7 99 88 77 66\n",
        encoding="utf-8",
    )
    return path


def test_read_canvassers(crew_file: Path) -> None:
    crew = read_canvassers(crew_file)
    assert crew.index.tolist() == ["vol-a", "vol-b", "vol-c"]
    assert crew.index.name == "canvasser_id"
    assert list(crew.columns) == ["name", "team", "lon", "lat", "capacity"]
    assert crew["capacity"].tolist() == [1, 2, 1]
    assert np.isnan(crew.loc["vol-c", "lon"]) and not np.isnan(crew.loc["vol-a", "lon"])
    assert "phone" not in crew.columns


def test_assignment_is_near_home_and_balanced(plan: TurfPlan, crew_file: Path) -> None:
    crew = read_canvassers(crew_file)
    a = assign_canvassers(plan, crew)
    assert a.index.tolist() == sorted(plan.turfs.index)
    counts = a.value_counts()
    assert counts.to_dict() == {"vol-b": 2, "vol-a": 1, "vol-c": 1}
    assert a["0319-03"] == "vol-a"  # the turf starting at Ali's door
    assert a["0101-02"] == "vol-b"
    assert int(a.isna().sum()) == len(plan.turfs) - 4  # 4 slots for 8 turfs
    assert a.equals(assign_canvassers(plan, crew))  # deterministic
    # plenty of capacity: everyone gets a turf before anyone gets another, even when two
    # canvassers live next to the same turfs
    big = crew.assign(capacity=8)
    big.loc["vol-a", ["lon", "lat"]] = big.loc["vol-b", ["lon", "lat"]].to_numpy()
    counts = assign_canvassers(plan, big).value_counts()
    assert counts.sum() == len(plan.turfs)
    assert counts.min() >= 2 and counts.max() - counts.min() <= 1
    assert crew["capacity"].tolist() == [1, 2, 1]  # input untouched


def test_exports_with_canvassers(plan: TurfPlan, crew_file: Path, tmp_path: Path) -> None:
    crew = read_canvassers(crew_file)
    a = assign_canvassers(plan, crew)
    write_exports(plan, tmp_path, canvassers=crew)
    header, rows = _read_csv(tmp_path / "exports" / "assignments.csv")
    assert header == [*ASSIGNMENT_COLUMNS, "canvasser_id"]
    for r in rows:
        assert r["canvasser_id"] == ("" if pd.isna(a[r["turf_id"]]) else a[r["turf_id"]])
    doc = json.loads((tmp_path / "exports" / "app" / "turfs.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, json.loads(APP_SCHEMA.read_text(encoding="utf-8")))
    got = {t["turf_id"]: t.get("canvasser_id") for t in doc["turfs"]}
    assert got == {t: (None if pd.isna(c) else c) for t, c in a.items()}


def test_packets_hold_only_their_turfs(plan: TurfPlan, crew_file: Path, tmp_path: Path) -> None:
    crew = read_canvassers(crew_file)
    a = assign_canvassers(plan, crew)
    files = write_packets(plan, tmp_path, a, crew, lang="en",
                          extra_files=lambda tid: {f"{tid}-map.txt": tid.encode()})
    root = tmp_path / "packets"
    assert sorted(p.name for p in root.iterdir()) == ["vol-a", "vol-b", "vol-c"]
    assert sorted(files) == _all_files(root)
    all_turfs = set(plan.turfs.index)
    for cid in crew.index:
        mine = sorted(a.index[a == cid])
        names = sorted(p.name for p in (root / cid).iterdir())
        assert names == sorted(
            [f"{t}.html" for t in mine] + [f"{t}.gpx" for t in mine]
            + [f"{t}-map.txt" for t in mine] + ["README.txt"]
        )
        readme = (root / cid / "README.txt").read_text(encoding="utf-8")
        for t in mine:
            assert t in readme
            html = (root / cid / f"{t}.html").read_text(encoding="utf-8")
            assert f"{t}" in html
        for p in (root / cid).iterdir():
            text = p.read_text(encoding="utf-8")
            for other in all_turfs - set(mine):
                assert not re.search(rf"(?<![\d.]){re.escape(other)}(?!\d)", text), (p, other)
    # rewriting replaces the packets whole
    write_packets(plan, tmp_path, a.where(a != "vol-c"), crew)
    assert sorted(p.name for p in (root / "vol-c").iterdir()) == ["README.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_packet_gpx_matches_the_export(
    plan: TurfPlan, exports: Path, crew_file: Path, tmp_path: Path
) -> None:
    crew = read_canvassers(crew_file)
    a = assign_canvassers(plan, crew)
    write_packets(plan, tmp_path, a, crew)
    for tid, cid in a.dropna().items():
        assert (tmp_path / "packets" / cid / f"{tid}.gpx").read_bytes() == (
            exports / "gpx" / f"{tid}.gpx"
        ).read_bytes()


def test_exports_and_packets_same_bytes_with_one_or_two_workers(
    plan: TurfPlan, crew_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Exports and packets built by a pool of two processes: the same files, byte for byte."""
    crew = read_canvassers(crew_file)
    a = assign_canvassers(plan, crew)
    trees = []
    for workers in (1, 2):
        out = tmp_path / str(workers)
        caplog.clear()
        with caplog.at_level("DEBUG", logger="knockin_geo._pool"):
            write_exports(plan, out, canvassers=crew, workers=workers)
            write_packets(plan, out, a, crew, lang="en", workers=workers,
                          extra_files=lambda tid: {f"{tid}-map.txt": tid.encode()})
        pooled = [r for r in caplog.records if "processes" in r.getMessage()]
        # the whole-plan exports (KML, app JSON, GeoJSON, CSV), the GPX and the packets:
        # each on a pool
        assert len(pooled) == (3 if workers > 1 else 0)
        trees.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*"))
                      if p.is_file()})
    one, two = trees
    assert len([p for p in one if p.suffix == ".gpx"]) == len(plan.turfs) + int(a.notna().sum())
    assert one.keys() == two.keys()
    assert [str(p) for p in one if one[p] != two[p]] == []


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("name\nAli\n", r"column 'canvasser_id' \(or 'id'\)"),
        ("canvasser_id,name\nv1,Ali\n,Bea\n", r"row 2, column 'canvasser_id': empty"),
        ("canvasser_id,name\nv1,Ali\nv1,Bea\n", r"row 2, column 'canvasser_id': duplicate"),
        ("id,capacity\nv1,2\nv2,two\n", r"row 2, column 'capacity'"),
        ("id,capacity\nv1,-1\n", r"row 1, column 'capacity'"),
        ("id,capacity\nv1,1.5\n", r"row 1, column 'capacity'"),
        ("id,lon,lat\nv1,-1.55,47.2\nv2,abc,47.2\n", r"row 2, column 'lon'"),
        ("id,lon,lat\nv1,-1.55,97.2\n", r"row 1, column 'lat'"),
        ("id,lon,lat\nv1,-1.55,\n", r"row 1, column 'lat': empty"),
        ("id,name\n", r"lists no canvasser"),
    ],
)
def test_bad_canvasser_files(tmp_path: Path, body: str, where: str) -> None:
    path = tmp_path / "crew.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=where) as err:
        read_canvassers(path)
    assert str(path) in str(err.value)


def test_missing_canvasser_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_canvassers(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------------------------
# privacy
# ---------------------------------------------------------------------------------------------


def test_no_personal_field_leaves_the_machine(
    plan: TurfPlan, crew_file: Path, tmp_path: Path
) -> None:
    doors = plan.doors.copy()
    for col, value in SECRETS.items():
        doors[col] = value
    leaky = dataclasses.replace(plan, doors=doors)
    crew = read_canvassers(crew_file)
    write_exports(leaky, tmp_path, canvassers=crew)
    write_packets(leaky, tmp_path, assign_canvassers(leaky, crew), crew)
    files = _all_files(tmp_path)
    assert len(files) > 20
    needles = [v.encode("utf-8") for v in SECRETS.values()]
    needles += [b"first_name", b"last_name"]  # column names neither
    needles += [b"+33 7 99 88 77 66", b"source_row", b"snap_dist"]
    for p in files:
        data = p.read_bytes()
        for needle in needles:
            assert needle not in data, (p, needle)
    assert "first_name" not in plan.doors.columns  # the plan itself was not touched


#: JSON values as the writers hold them: text from input files (any character), whole numbers,
#: and floats such as rounded coordinates and minutes (1e-4 <= |x| < 1e15, or 0)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda x: x == 0 or 1e-4 <= abs(x) < 1e15),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_JSON_VALUES, st.booleans())
def test_compact_json_writes_what_json_dumps_writes(value: object, sort_keys: bool) -> None:
    # the phone maps, GeoJSON lines and app file keep their bytes with the faster encoder
    # (quotes, backslashes, control characters, non-ASCII text, key order)
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    assert compact(value, sort_keys=sort_keys) == expected


def test_compact_json_documented_differences() -> None:
    # tiny floats in plain decimal, non-finite numbers as null: both parse to the same values
    assert compact([5e-05, 1e-07]) == "[0.00005,1e-7]"
    assert json.loads(compact([5e-05])) == [5e-05]
    assert compact([float("nan"), float("inf")]) == "[null,null]"
    assert compact({"b": np.int64(2), "a": np.float64(0.5)}, sort_keys=True) == '{"a":0.5,"b":2}'


def _round_each(obj: object) -> object:
    """Every number of nested GeoJSON coordinates rounded on its own (the reference)."""
    if isinstance(obj, list | tuple):
        return [_round_each(v) for v in obj]
    return round(float(obj), export.COORD_DECIMALS)  # type: ignore[arg-type]


@pytest.mark.parametrize("geom", [
    shapely.LineString([(1.123456789, 47.000000049), (2, 48)]),
    shapely.LineString([(1.1, 2.2, 3.33333333), (4.4, 5.5, 6.6)]),  # 3D positions
    # two-point lines: a list of pairs that are not positions
    shapely.MultiLineString([[(0, 0), (1.00000005, 1)], [(2, 2), (3, 3.123456789)]]),
    shapely.Polygon([(0, 0), (1, 0), (1, 1.999999951)], [[(0.2, 0.2), (0.5, 0.2), (0.5, 0.5)]]),
    shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3.000000049, 3)]),
    shapely.Point(6.123456749, 47.98765435),
])
def test_geojson_coordinates_rounded_number_by_number(geom: shapely.Geometry) -> None:
    """The one-pass rounding of lines and rings gives each number as rounding it alone does."""
    coords = json.loads(shapely.to_geojson(geom))["coordinates"]
    assert export._round_coords(coords) == _round_each(coords)
