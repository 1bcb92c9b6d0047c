"""The independent checks (knockin_geo.checks) on cases built by hand, where the answer is known.

Doors and barrier lines are written down directly (no cutter involved): each case states which
turfs span a barrier, how many strict pieces a turf has, how much two hulls overlap and which
precinct sides cannot hold whole turfs.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from knockin_geo import checks, schema

CRS = "EPSG:32630"


def doors_frame(rows: list[tuple]) -> gpd.GeoDataFrame:
    """Doors from ``(turf_id, x, y[, edge, offset_m, side[, precinct_id, weight]])`` rows."""
    recs = []
    for i, r in enumerate(rows):
        tid, x, y, *rest = r
        edge, off, side = (rest[:3] if len(rest) >= 3 else (-1, np.nan, ""))
        pid, w = (rest[3:5] if len(rest) >= 5 else ("P1", 1.0))
        recs.append({schema.ADDRESS_ID: f"a{i:03d}", schema.TURF_ID: tid, "edge": edge,
                     "offset_m": off, "side": side, schema.PRECINCT_ID: pid, "weight": w,
                     "geometry": shapely.Point(x, y)})
    gdf = gpd.GeoDataFrame(recs, geometry="geometry", crs=CRS).set_index(schema.ADDRESS_ID)
    gdf[schema.TURF_ID] = gdf[schema.TURF_ID].astype("string")
    return gdf


def barrier_frame(rows: list[tuple[str, str, shapely.Geometry, bool, bool]]) -> gpd.GeoDataFrame:
    """Barrier layer from ``(kind, subtype, geometry, tunnel, bridge)`` rows."""
    return gpd.GeoDataFrame(
        {"kind": [r[0] for r in rows], "subtype": [r[1] for r in rows], "name": "",
         "tunnel": [r[3] for r in rows], "bridge": [r[4] for r in rows]},
        geometry=[r[2] for r in rows], crs=CRS,
    )


def square(tid: str, x0: float, y0: float, size: float = 40.0) -> list[tuple]:
    return [(tid, x0, y0), (tid, x0 + size, y0), (tid, x0, y0 + size), (tid, x0 + size, y0 + size)]


ROAD = shapely.LineString([(-100, 50), (300, 50)])


@pytest.mark.parametrize(
    ("kind", "subtype", "tunnel", "bridge", "spans"),
    [
        ("road", "primary", False, False, True),
        ("road", "primary_link", False, False, True),
        ("road", "secondary", False, False, False),  # not a barrier class
        ("road", "primary", True, False, False),  # people walk over a tunnel
        ("road", "primary", False, True, False),  # and under a bridge
        ("railway", "rail", False, False, True),
        ("waterway", "river", False, False, True),
    ],
)
def test_a_turf_across_a_line_spans_it_by_class(kind, subtype, tunnel, bridge, spans) -> None:
    doors = doors_frame(square("T1", 0, 0, 100))  # y = 0 and y = 100: both sides of y = 50
    lines = checks.rule_lines(barrier_frame([(kind, subtype, ROAD, tunnel, bridge)]),
                              checks.RuleParams())
    out = checks.barrier_spans(doors, lines)
    assert bool(out.loc["T1", "spans"]) is spans
    assert out.loc["T1", "sides"] == (2 if spans else 1)
    if spans:  # the crossing point lies on the road, inside the hull
        assert out.loc["T1", "cross_y"] == pytest.approx(50.0)
        assert 0 <= out.loc["T1", "cross_x"] <= 100


def test_a_line_ending_inside_the_hull_separates_nothing() -> None:
    """A primary road that ends (or becomes secondary) inside the doors' hull: one part."""
    doors = doors_frame(square("T1", 0, 0, 100))
    dead_end = shapely.LineString([(-100, 50), (60, 50)])
    lines = checks.rule_lines(barrier_frame([("road", "primary", dead_end, False, False)]),
                              checks.RuleParams())
    assert not checks.barrier_spans(doors, lines).loc["T1", "spans"]


def test_a_line_that_does_not_close_a_face_still_splits_the_turf() -> None:
    """No polygon is closed (the line stops short of everything else), yet both sides hold doors."""
    doors = doors_frame(square("T1", 0, 0, 100) + square("T2", 500, 0, 100))
    short = shapely.LineString([(-5, 50), (105, 50)])  # only across T1
    lines = checks.rule_lines(barrier_frame([("railway", "rail", short, False, False)]),
                              checks.RuleParams())
    out = checks.barrier_spans(doors, lines)
    assert out["spans"].to_dict() == {"T1": True, "T2": False}


def test_doors_on_the_barrier_itself_belong_to_no_side() -> None:
    doors = doors_frame([("T1", 0, 0), ("T1", 100, 0), ("T1", 50, 51)])  # third door on the road
    lines = checks.rule_lines(barrier_frame([("road", "primary", ROAD, False, False)]),
                              checks.RuleParams())
    assert not checks.barrier_spans(doors, lines).loc["T1", "spans"]


def test_river_areas_count_by_their_outline() -> None:
    river = shapely.box(-100, 40, 300, 60)
    doors = doors_frame(square("T1", 0, 0, 100))
    lines = checks.rule_lines(barrier_frame([("waterway", "riverbank", river, False, False)]),
                              checks.RuleParams())
    assert checks.barrier_spans(doors, lines).loc["T1", "sides"] == 2


def test_strict_pieces_block_at_another_turfs_door_on_the_same_side() -> None:
    # edge 0: node 1 (0,0) -> node 2 (100,0); edge 1: node 2 -> node 3 (200, 0)
    u, v = np.array([1, 2]), np.array([2, 3])
    rows = [
        ("A", 10, 5, 0, 10.0, "left"),
        ("B", 50, 5, 0, 50.0, "left"),  # between A's two left doors
        ("A", 90, 5, 0, 90.0, "left"),
        ("C", 30, -5, 0, 30.0, "right"),  # other side: walking the left side does not pass it
    ]
    s = checks.strict_pieces(doors_frame(rows), u, v)
    # A's doors reach node 1 and node 2 along the left side, but the left side is blocked at B:
    # A at 10 reaches node 1, A at 90 reaches node 2; nodes 1 and 2 are linked only by edge 0,
    # whose right side is blocked at C, so A is in two pieces.
    assert s.to_dict() == {"A": 2, "B": 1, "C": 1}
    # a parallel street without doors links nodes 1 and 2: A is one piece
    u2, v2 = np.array([1, 2, 1]), np.array([2, 3, 2])  # a parallel street without doors
    s2 = checks.strict_pieces(doors_frame(rows), u2, v2)
    assert s2["A"] == 1


def test_strict_pieces_doors_outside_the_cut_block_too() -> None:
    u, v = np.array([1]), np.array([2])
    rows = [("A", 10, 5, 0, 10.0, "left"), (None, 50, 5, 0, 50.0, "left"),
            ("A", 90, 5, 0, 90.0, "left")]
    assert checks.strict_pieces(doors_frame(rows), u, v)["A"] == 2
    rows[1] = ("A", 50, 5, 0, 50.0, "left")
    assert checks.strict_pieces(doors_frame(rows), u, v)["A"] == 1


def test_hull_overlap_and_polsby_popper() -> None:
    doors = doors_frame(square("A", 0, 0, 100) + square("B", 50, 0, 100))
    per, overall = checks.hull_overlap(doors)
    # two 100 x 100 squares overlapping on 50 x 100: (20000 - 15000) / 20000
    assert overall == pytest.approx(0.25)
    assert per.loc["P1", "overlap"] == pytest.approx(0.25)
    pp = checks.hull_polsby_popper(doors)
    assert pp["A"] == pytest.approx(np.pi / 4)  # square: 4 pi s^2 / (4 s)^2


def test_the_bound_names_sides_that_cannot_hold_whole_turfs() -> None:
    """A river cuts a precinct into 130 doors north and 30 south; 2 turfs of 80 (tolerance 10 %):
    the south side holds no whole number of turfs, so one turf must span the river."""
    rng = np.random.default_rng(0)
    north = [("P1-01" if i < 80 else "P1-02", x, y, -1, np.nan, "", "P1", 1.0)
             for i, (x, y) in enumerate(rng.uniform([0, 100], [400, 400], size=(130, 2)))]
    south = [("P1-02", x, y, -1, np.nan, "", "P1", 1.0)
             for x, y in rng.uniform([0, 0], [400, 40], size=(30, 2))]
    doors = doors_frame(north + south)
    river = shapely.LineString([(-50, 60), (450, 60)])
    lines = checks.rule_lines(barrier_frame([("waterway", "river", river, False, False)]),
                              checks.RuleParams())
    prec = gpd.GeoDataFrame({schema.PRECINCT_ID: ["P1"]},
                            geometry=[shapely.box(-20, -20, 420, 420)], crs=CRS)
    prec = prec.set_index(schema.PRECINCT_ID)
    sides, door_side = checks.precinct_sides(doors, lines, tolerance=0.1, precincts=prec)
    assert sorted(sides["doors"]) == [30, 130]
    assert sides.set_index("doors").loc[30, "placeable"] == False  # noqa: E712
    assert sides.set_index("doors").loc[130, "placeable"] == False  # 130/2 = 65 < 72  # noqa: E712
    spans = checks.explain_spans(checks.barrier_spans(doors, lines), sides, door_side, doors)
    assert spans["spans"].to_dict() == {"P1-01": False, "P1-02": True}
    assert spans.loc["P1-02", "why"].startswith("unavoidable: side holds")
    assert "target 80" in spans.loc["P1-02", "why"]


@pytest.mark.parametrize(("weight", "placeable"),
                         [(80, True), (72, True), (71, False), (88, True), (89, False),
                          (150, True), (160, True), (30, False), (0, True)])
def test_placeable_is_a_whole_number_of_turfs_within_tolerance(weight, placeable) -> None:
    assert checks._placeable(weight, 80.0, 0.10) is placeable


def test_no_barriers_no_spans() -> None:
    doors = doors_frame(square("A", 0, 0))
    lines = checks.rule_lines(barrier_frame([]).iloc[:0], checks.RuleParams())
    assert not checks.barrier_spans(doors, lines)["spans"].any()
    assert pd.api.types.is_bool_dtype(checks.barrier_spans(doors, lines)["spans"])


def test_a_spanning_turf_crosses_where_a_street_meets_the_barrier() -> None:
    # doors at x 0-40 both sides of the road (y = 50); the only street across is at x = 120
    doors = doors_frame(square("T1", 0, 20) + square("T1", 0, 60))
    lines = checks.rule_lines(barrier_frame([("road", "primary", ROAD, False, False)]),
                              checks.RuleParams())
    across = shapely.LineString([(120, -100), (120, 200)])
    along = shapely.LineString([(-100, 50), (300, 50)])  # the busy road is a street too
    far = shapely.LineString([(290, -100), (290, 200)])  # beyond the reach: not offered
    streets = np.array([along, across, far], dtype=object)
    out = checks.barrier_spans(doors, lines, streets=streets)
    assert out.loc["T1", "spans"]
    assert (out.loc["T1", "cross_x"], out.loc["T1", "cross_y"]) == (120.0, 50.0)
    # without streets: the point of the road nearest the doors' centre
    plain = checks.barrier_spans(doors, lines)
    assert (plain.loc["T1", "cross_x"], plain.loc["T1", "cross_y"]) == (20.0, 50.0)
