"""Marked crossing places: read from OSM (streets.py), preferred as a spanning turf's crossing
point (checks.py), reported (report.json) and said on the walk list and the phone map."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import ORIGIN, TEST_CRS, make_network, shift_geom
from geopandas.testing import assert_geodataframe_equal
from test_turfs import local_xy as turf_local_xy
from test_turfs import small_river_precinct

from knockin_geo import checks, schema
from knockin_geo.maps import volunteer_map_html
from knockin_geo.plan import plan_turfs
from knockin_geo.streets import StreetNetwork, load_network, network_from_osmnx
from knockin_geo.turfs import TurfParams
from knockin_geo.walklist import walk_list_html

DATA = Path(__file__).resolve().parents[1] / "data"
NANTES_PBF = DATA / "nantes" / "osm" / "nantes_centre_2014-09.osm.pbf"
LIECHTENSTEIN_PBF = DATA / "liechtenstein" / "liechtenstein-2024-03-03.osm.pbf"


def marks_frame(rows: list[tuple[str, float, float]]) -> gpd.GeoDataFrame:
    """A crossings layer from ``(kind, x, y)`` rows in local coordinates."""
    index = pd.RangeIndex(len(rows), name="crossing")
    return gpd.GeoDataFrame(
        {"kind": [r[0] for r in rows], "osmid": np.arange(len(rows), dtype=np.int64) + 1,
         "name": ""},
        geometry=[shift_geom(shapely.Point(r[1], r[2])) for r in rows], index=index,
        crs=TEST_CRS,
    )


# ------------------------------------------------------------------------------------------------
# the rule (checks.py) on a primary road built in code
# ------------------------------------------------------------------------------------------------
def road_case() -> tuple[StreetNetwork, gpd.GeoDataFrame, checks.BarrierLines]:
    """Doors around (0, 0) on both sides of a primary road (y = 0); a side street at x = 40.

    The side street crosses the road 40 m from the doors' centre (an unmarked junction).
    """
    nodes = {1: (-600, 0), 2: (600, 0), 3: (40, -300), 4: (40, 300)}
    road = shapely.LineString([(-600, 0), (600, 0)])
    net = make_network(nodes, [(1, 2, "primary", "Boulevard X"), (3, 4, "residential")],
                       [("road", "primary", road)])
    bar = net.barriers.assign(name=["Boulevard X"])
    xy = [(-20, -30), (20, -30), (-20, 30), (20, 30), (-20, -60), (20, 60)]
    doors = gpd.GeoDataFrame(
        {schema.TURF_ID: pd.array(["T1"] * len(xy), dtype="string")},
        geometry=[shift_geom(shapely.Point(p)) for p in xy], crs=TEST_CRS,
        index=pd.Index([f"a{i}" for i in range(len(xy))], name=schema.ADDRESS_ID),
    )
    return net, doors, checks.rule_lines(bar, checks.RuleParams())


def spans_with(marks: gpd.GeoDataFrame | None) -> pd.Series:
    net, doors, lines = road_case()
    out = checks.barrier_spans(doors, lines, streets=net.edges.geometry.to_numpy(), marks=marks)
    row = out.loc["T1"]
    assert row["spans"]
    return row


def at(row: pd.Series) -> tuple[float, float]:
    return (round(row["cross_x"] - ORIGIN[0], 3), round(row["cross_y"] - ORIGIN[1], 3))


def test_signals_120_m_away_beat_an_unmarked_junction_40_m_away() -> None:
    row = spans_with(marks_frame([("signals", 120, 0)]))
    assert (row["cross_kind"], at(row)) == ("signals", (120.0, 0.0))
    assert row["cross_on"] == "Boulevard X" and row["barrier"] == "primary 'Boulevard X'"
    assert checks.crossing_label("signals", row["cross_on"]) == "traffic signals on Boulevard X"


def test_without_marks_todays_rule_the_nearest_street_meeting_the_barrier() -> None:
    for marks in (None, marks_frame([])):
        row = spans_with(marks)
        assert (row["cross_kind"], at(row)) == ("street", (40.0, 0.0))


@pytest.mark.parametrize(
    ("marks", "expected"),
    [
        # off the barrier line (a zebra on the side street, 10 m from the road): not a crossing
        # of the road; beyond the reach (150 m past the hull): not offered
        ([("zebra", 40, 10), ("signals", 400, 0)], ("street", (40.0, 0.0))),
        # within a class, the nearest the doors' centre
        ([("zebra", -90, 0), ("marked", 60, 0), ("zebra", 100, 0)], ("marked", (60.0, 0.0))),
        # classes: signals > zebra/marked > footbridge/underpass > level crossing > unmarked
        ([("unmarked", 5, 0), ("level_crossing", 10, 0), ("footbridge", 100, 0),
          ("zebra", 130, 0)], ("zebra", (130.0, 0.0))),
        ([("unmarked", 5, 0), ("level_crossing", 10, 0), ("underpass", -120, 1.5)],
         ("underpass", (-120.0, 1.5))),
        ([("unmarked", 5, 0), ("level_crossing", 10, 0)], ("level_crossing", (10.0, 0.0))),
        # an unmarked crossing place still beats an unmapped junction; unknown kinds are ignored
        ([("unmarked", -70, 0), ("bus_stop", 0, 0)], ("unmarked", (-70.0, 0.0))),
    ],
)
def test_marked_crossing_classes_and_distances(
    marks: list[tuple[str, float, float]], expected: tuple[str, tuple[float, float]]
) -> None:
    row = spans_with(marks_frame(marks))
    assert (row["cross_kind"], at(row)) == expected


def test_a_turf_that_spans_nothing_has_no_crossing() -> None:
    net, doors, lines = road_case()
    north = doors[doors.geometry.y > ORIGIN[1]]
    out = checks.barrier_spans(north, lines, streets=net.edges.geometry.to_numpy(),
                               marks=marks_frame([("signals", 0, 0)]))
    assert not out.loc["T1", "spans"] and out.loc["T1", "cross_kind"] == ""


# ------------------------------------------------------------------------------------------------
# through the plan: report.json, walk list, phone map
# ------------------------------------------------------------------------------------------------
def boulevard_precinct(marks: list[tuple[str, float, float]]):
    """70 doors west of a primary road (x = 250), 15 east; one footbridge over it at y = 100.

    The river town of ``test_turfs`` with a boulevard for its river.
    """
    net, doors, pr, _ = small_river_precinct()
    road = shift_geom(shapely.LineString([(250, -5000), (250, 5000)]))
    bar = net.barriers.assign(kind=["road"], subtype=["primary"], name=["Boulevard X"],
                              geometry=[road])
    return dataclasses.replace(net, barriers=bar, crossings=marks_frame(marks)), doors, pr


def crossing_of(plan) -> dict:
    (prob,) = [p for p in plan.report["problems"] if "crossing" in p]
    assert prob[schema.TURF_ID] == "P1-01" and prob["unavoidable"]
    return prob["crossing"]


def test_the_plan_reports_and_says_the_signals() -> None:
    net, doors, pr = boulevard_precinct([("signals", 250, 220), ("zebra", 260, 100)])
    x, y = turf_local_xy(doors)
    centre = np.array([x.mean(), y.mean()])
    # the signals are farther from the doors' centre than the street across (250, 100)
    assert np.hypot(*(centre - (250, 220))) > np.hypot(*(centre - (250, 100)))
    plan = plan_turfs(doors, net, precincts=pr, params=TurfParams(doors_per_turf=80))
    got = crossing_of(plan)
    assert (got["kind"], got["on"], got["label"]) == (
        "signals", "Boulevard X", "traffic signals on Boulevard X")
    here = gpd.GeoSeries([shapely.Point(got["lon"], got["lat"])], crs=4326).to_crs(TEST_CRS)
    assert here.iloc[0].distance(shift_geom(shapely.Point(250, 220))) < 0.2
    en = "cross Boulevard X once, at the traffic lights"
    assert en in walk_list_html(plan, "P1-01", lang="en")
    assert "traverser Boulevard X une seule fois, aux feux" in walk_list_html(plan, "P1-01",
                                                                              lang="fr")
    assert en in volunteer_map_html(plan, "P1-01", lang="en")


def test_the_plan_without_marks_crosses_where_the_street_does() -> None:
    net, doors, pr = boulevard_precinct([])
    plan = plan_turfs(doors, net, precincts=pr, params=TurfParams(doors_per_turf=80))
    got = crossing_of(plan)
    assert got["kind"] == "street" and got["label"] == "where a street meets Boulevard X"
    here = gpd.GeoSeries([shapely.Point(got["lon"], got["lat"])], crs=4326).to_crs(TEST_CRS)
    assert here.iloc[0].distance(shift_geom(shapely.Point(250, 100))) < 0.2
    assert "cross Boulevard X once, at this point" in walk_list_html(plan, "P1-01", lang="en")


def test_a_plan_written_before_kinds_still_says_where_to_cross() -> None:
    net, doors, pr = boulevard_precinct([])
    plan = plan_turfs(doors, net, precincts=pr, params=TurfParams(doors_per_turf=80))
    for prob in plan.report["problems"]:
        if "crossing" in prob:
            prob["crossing"] = {k: prob["crossing"][k] for k in ("lat", "lon")}
    page = walk_list_html(plan, "P1-01", lang="en")
    assert "cross primary &#39;Boulevard X&#39; once, at this point" in page


# ------------------------------------------------------------------------------------------------
# reading them (streets.py): an OSM XML file written here, an osmnx graph, the bundled extracts
# ------------------------------------------------------------------------------------------------
LON, LAT = 9.5, 47.1

#: (node id, lon offset, lat offset, tags)
XML_NODES: list[tuple[int, float, float, dict[str, str]]] = [
    (1, 0.000, 0, {}),
    (2, 0.001, 0, {"highway": "traffic_signals"}),
    (3, 0.002, 0, {"highway": "crossing", "crossing": "zebra"}),
    (4, 0.003, 0, {"highway": "crossing", "crossing": "uncontrolled"}),
    (5, 0.004, 0, {"highway": "crossing", "crossing": "unmarked"}),
    (6, 0.005, 0, {"highway": "crossing"}),  # marking not tagged: unmarked
    (7, 0.006, 0, {"highway": "crossing", "crossing": "no"}),  # no crossing here
    (8, 0.007, 0, {"highway": "traffic_signals", "crossing": "no"}),
    (9, 0.008, 0, {"highway": "crossing", "crossing_ref": "pelican"}),
    (10, 0.009, 0, {"highway": "crossing", "crossing": "marked", "crossing_ref": "zebra"}),
    (11, 0.0095, 0, {"highway": "street_lamp"}),
    (12, 0.0098, 0, {}),
    (20, 0.002, -0.001, {}),
    (21, 0.002, 0.001, {}),
    (30, 0.012, -0.005, {}),
    (31, 0.012, 0, {"railway": "level_crossing"}),
    (32, 0.012, 0.005, {}),
    (33, 0.012, -0.003, {"railway": "crossing"}),
    (40, 0.0005, -0.0005, {}),
    (41, 0.0005, 0.0005, {}),
    (50, 0.0115, 0.002, {}),
    (51, 0.0125, 0.002, {}),
    (60, 0.020, -0.005, {}),
    (61, 0.020, 0.005, {}),
    (62, 0.0195, 0.001, {}),
    (63, 0.0205, 0.001, {}),
    (70, 0.030, 0.003, {}),
    (71, 0.031, 0.003, {}),
    (80, 0.0035, -0.0005, {}),
    (81, 0.0035, 0.0005, {}),
]
XML_WAYS: list[tuple[int, list[int], dict[str, str]]] = [
    (101, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
     {"highway": "primary", "name": "Boulevard X"}),
    (102, [20, 3, 21], {"highway": "residential", "name": "Rue A"}),
    (103, [30, 33, 31, 32], {"railway": "rail"}),
    (104, [40, 41], {"highway": "footway", "bridge": "yes"}),  # over the boulevard
    (105, [50, 51], {"highway": "footway", "tunnel": "yes"}),  # under the railway
    (106, [60, 61], {"waterway": "river", "name": "Rhein"}),
    (107, [62, 63], {"highway": "cycleway", "bridge": "yes", "name": "Passerelle"}),
    (108, [70, 71], {"highway": "footway", "bridge": "yes"}),  # over no barrier
    (109, [80, 81], {"highway": "steps", "layer": "-1"}),  # under the boulevard
]


def write_osm(path: Path) -> Path:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for nid, dx, dy, tags in XML_NODES:
        lines.append(f'  <node id="{nid}" version="1" lat="{LAT + dy}" lon="{LON + dx}">')
        lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("  </node>")
    for wid, refs, tags in XML_WAYS:
        lines.append(f'  <way id="{wid}" version="1">')
        lines += [f'    <nd ref="{r}"/>' for r in refs]
        lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("  </way>")
    lines.append("</osm>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_an_osm_file_gives_the_crossing_kinds(tmp_path: Path) -> None:
    net = load_network(write_osm(tmp_path / "x.osm"), cache=False)
    c = net.crossings
    assert c.index.name == "crossing" and c.crs == net.crs
    assert list(zip(c["osmid"], c["kind"], strict=True)) == [
        (2, "signals"), (3, "zebra"), (4, "marked"), (5, "unmarked"), (6, "unmarked"),
        (9, "signals"), (10, "zebra"), (31, "level_crossing"), (33, "level_crossing"),
        (104, "footbridge"), (105, "underpass"), (107, "footbridge"), (109, "underpass"),
    ]
    assert c.loc[c["osmid"] == 107, "name"].item() == "Passerelle"
    # a footbridge's place is where it passes over the barrier line
    bar = net.barriers.set_index("osmid").geometry
    for way, over in ((104, 101), (105, 103), (107, 106), (109, 101)):
        assert c.loc[c["osmid"] == way].geometry.item().distance(bar.loc[over]) < 0.01
    # a crossing node stands at its own place
    nodes = {2: (LON + 0.001, LAT), 31: (LON + 0.012, LAT)}
    back = c.set_index("osmid").geometry.to_crs(4326)
    for nid, (lon, lat) in nodes.items():
        assert back.loc[nid].distance(shapely.Point(lon, lat)) < 1e-7
    assert net.summary()["crossings"] == {"footbridge": 2, "level_crossing": 2, "marked": 1,
                                          "signals": 2, "underpass": 2, "unmarked": 2,
                                          "zebra": 2}
    # the cache and another CRS keep them
    cdir = tmp_path / "cache"
    first = load_network(tmp_path / "x.osm", cache_dir=cdir)
    again = load_network(tmp_path / "x.osm", cache_dir=cdir)
    assert again.from_cache
    assert_geodataframe_equal(first.crossings, again.crossings)
    assert_geodataframe_equal(first.crossings, c)
    other = net.to_crs("EPSG:2056")
    assert len(other.crossings) == len(c) and other.crossings.crs == other.crs


def test_an_osmnx_graph_gives_its_crossing_nodes_and_footbridges() -> None:
    G = nx.MultiGraph(crs="EPSG:4326")
    nodes = {1: (0.0, {}), 2: (0.001, {"highway": "traffic_signals"}),
             3: (0.002, {"highway": "crossing"}),
             4: (0.003, {"highway": "crossing", "crossing": "zebra"}),
             5: (0.004, {"railway": "level_crossing"})}
    for n, (dx, tags) in nodes.items():
        G.add_node(n, x=LON + dx, y=LAT, **tags)
    G.add_node(10, x=LON + 0.0005, y=LAT - 0.0005)
    G.add_node(11, x=LON + 0.0005, y=LAT + 0.0005)
    for a, b in ((1, 2), (2, 3), (3, 4), (4, 5)):
        G.add_edge(a, b, osmid=1, highway="residential")
    G.add_edge(10, 11, osmid=7, highway="footway", bridge="yes", name="Steg")
    road = shapely.LineString([(LON - 0.01, LAT), (LON + 0.01, LAT)])
    barriers = gpd.GeoDataFrame(
        {"kind": ["road"], "subtype": ["primary"], "osmid": [9], "name": ["B"],
         "bridge": [False], "tunnel": [False]}, geometry=[road], crs=4326)
    net = network_from_osmnx(G, barriers=barriers)
    c = net.crossings
    assert list(zip(c["osmid"], c["kind"], c["name"], strict=True)) == [
        (2, "signals", ""), (3, "unmarked", ""), (4, "zebra", ""), (5, "level_crossing", ""),
        (7, "footbridge", "Steg")]
    assert c.geometry.iloc[-1].distance(net.barriers.geometry.iloc[0]) < 0.01
    # without barriers a footbridge passes over nothing
    assert "footbridge" not in set(network_from_osmnx(G).crossings["kind"])


def test_the_bundled_extracts_marked_crossing_places() -> None:
    """Fixed files, fixed figures (reported in docs/turf-cutting.md)."""
    nantes = load_network(NANTES_PBF, cache=False).summary()["crossings"]
    assert nantes == {"footbridge": 11, "level_crossing": 174, "marked": 568, "signals": 284,
                      "underpass": 2, "unmarked": 80, "zebra": 8}
    li = load_network(LIECHTENSTEIN_PBF, cache=False).summary()["crossings"]
    assert li == {"footbridge": 35, "level_crossing": 21, "marked": 266, "signals": 40,
                  "underpass": 6, "unmarked": 57, "zebra": 270}
