"""Barriers the old face model missed, built in code: the cut must keep turfs to one side.

Each town is an 8 x 6 grid of 100 m blocks (x 0..700, y 0..500) with 4 doors on each side of
every street (656 doors, 8 turfs of 82), and one barrier that does NOT close a face:

* a primary road that ends inside the precinct at both ends (x 100..500), and one that turns
  into a secondary road;
* a railway that ends in a yard inside the precinct and leaves the street data on the other;
* a primary road with a gap where it crosses a stream on a bridge;
* a primary road (from x = 100) that ends at a roundabout.

A balanced cut with no turf across the barrier exists in every town (cut along the barrier,
then across the rest). Spans are measured by the independent rule (:mod:`knockin_geo.checks`:
hull of a turf's doors minus the buffered barrier lines), not by the cutter's graph.
"""

from __future__ import annotations

import pandas as pd
import pytest
import shapely
from conftest import make_network, precinct_box
from test_turfs import DoorMaker, Layout, check_plan

from knockin_geo import checks, schema
from knockin_geo.plan import TurfPlan, plan_turfs
from knockin_geo.turfs import TurfParams

ROW_Y = 300.0


def town(case: str):
    """Build one of the towns above: network, doors, precinct."""
    lay = Layout()
    _ids, es = lay.add_grid(8, 6)
    road_from = 100.0 if case in ("ends_inside", "roundabout") else 0.0
    road_to = {"ends_inside": 500.0, "becomes_secondary": 400.0, "bridge_gap": 700.0,
               "roundabout": 400.0}.get(case)
    if road_to is not None:  # the barrier road is a street of the grid (row 3)
        for i, (u, v, _, name) in enumerate(lay.edges):
            (x0, y0), (x1, y1) = lay.nodes[u], lay.nodes[v]
            if y0 == y1 == ROW_Y:
                hw = "primary" if road_from <= min(x0, x1) and max(x0, x1) <= road_to else (
                    "secondary" if case == "becomes_secondary" else "residential")
                lay.edges[i] = (u, v, hw, name)
    barriers: list[tuple[str, str, shapely.Geometry]] = []
    bridge_rows: list[int] = []
    if case in ("ends_inside", "becomes_secondary"):
        barriers.append(("road", "primary", shapely.LineString([(road_from, ROW_Y),
                                                                (road_to, ROW_Y)])))
    elif case == "bridge_gap":
        barriers += [
            ("road", "primary", shapely.LineString([(0, ROW_Y), (340, ROW_Y)])),
            ("road", "primary", shapely.LineString([(340, ROW_Y), (360, ROW_Y)])),  # bridge
            ("road", "primary", shapely.LineString([(360, ROW_Y), (700, ROW_Y)])),
        ]
        bridge_rows = [1]
    elif case == "roundabout":
        barriers += [
            ("road", "primary", shapely.LineString([(100, ROW_Y), (392, ROW_Y)])),
            ("road", "primary", shapely.Point(400, ROW_Y).buffer(8.0, quad_segs=8).exterior),
        ]
    elif case == "railway":
        # from a yard at x = 350 west out of the street data (the extract ends at x = 0)
        barriers.append(("railway", "rail", shapely.LineString([(350, 250), (-300, 250)])))
    net = make_network(lay.nodes, lay.edges, barriers)
    if bridge_rows:
        net.barriers.loc[bridge_rows, "bridge"] = True
    mk = DoorMaker(net)
    for e in es:
        mk.along(e, 4, "both")
    return net, mk.doors(), precinct_box("P1", -50, -50, 750, 550)


CASES = ["ends_inside", "becomes_secondary", "railway", "bridge_gap", "roundabout"]


def spanning(plan: TurfPlan) -> set[str]:
    lines = checks.rule_lines(plan.network.barriers, checks.RuleParams())
    spans = checks.barrier_spans(plan.doors, lines)
    return set(spans.index[spans["spans"]])


@pytest.mark.parametrize("case", CASES)
def test_no_turf_spans_a_barrier_that_does_not_close_a_face(case: str) -> None:
    net, doors, pr = town(case)
    plan = plan_turfs(doors, net, precincts=pr, params=TurfParams(doors_per_turf=80),
                      route=False)
    turfs = check_plan(plan, doors)
    assert len(turfs) == 8
    assert turfs["within_tolerance"].all()
    assert spanning(plan) == set()
    assert plan.report["summary"]["turfs_spanning_barriers"] == 0


@pytest.mark.parametrize("case", CASES)
def test_strict_barriers_never_span(case: str) -> None:
    net, doors, pr = town(case)
    plan = plan_turfs(doors, net, precincts=pr,
                      params=TurfParams(doors_per_turf=80, barriers="strict"), route=False)
    assert spanning(plan) == set()


def test_strict_keeps_a_small_side_on_its_own_and_says_so() -> None:
    """The one-turf river precinct: by default one turf crosses the footbridge; strict keeps
    the 15 doors east of the river as a small turf of their own, flagged in the report."""
    from test_turfs import small_river_precinct

    net, doors, pr, _west = small_river_precinct()
    default = plan_turfs(doors, net, precincts=pr, params=TurfParams(doors_per_turf=80),
                         route=False)
    assert len(spanning(default)) == 1
    plan = plan_turfs(doors, net, precincts=pr,
                      params=TurfParams(doors_per_turf=80, barriers="strict"), route=False)
    assert spanning(plan) == set()
    sizes = sorted(plan.turfs["doors"].tolist())
    assert sizes == [15, 70]
    small = plan.turfs[plan.turfs["doors"] == 15].index[0]
    assert "--barriers strict" in str(plan.turfs.loc[small, "note"])
    flagged = {p["turf_id"] for p in plan.report["problems"]}
    assert small in flagged


def test_bad_barriers_value_is_refused() -> None:
    from knockin_geo._errors import InputError

    with pytest.raises(InputError, match="barriers must be default or strict"):
        TurfParams(barriers="sometimes")  # type: ignore[arg-type]


def test_report_and_recut_agree_with_the_cut() -> None:
    """Cut, re-check with the report, recut with no results: the same turfs and the same figures
    (the report and recut measure with the same rules as the cut, not rules of their own)."""
    from knockin_geo.canvass import empty_results
    from knockin_geo.recut import recut

    net, doors, pr = town("bridge_gap")
    plan = plan_turfs(doors, net, precincts=pr, params=TurfParams(doors_per_turf=80))
    rc = recut(plan, empty_results())
    before = plan.doors[schema.TURF_ID]
    after = rc.plan.doors[schema.TURF_ID].reindex(before.index)
    pd.testing.assert_series_equal(after, before, check_names=False)
    keys = ("turfs", "turfs_within_tolerance", "turfs_connected", "turfs_one_piece_strict",
            "turfs_spanning_barriers", "unplaceable_sides", "mean_polsby_popper",
            "hull_overlap", "max_abs_deviation")
    s0, s1 = plan.report["summary"], rc.plan.report["summary"]
    assert {k: s1[k] for k in keys} == {k: s0[k] for k in keys}
    cols = ["doors", "deviation", "pieces", "strict_pieces", "barrier_sides", "polsby_popper"]
    pd.testing.assert_frame_equal(pd.DataFrame(rc.plan.turfs[cols]),
                                  pd.DataFrame(plan.turfs[cols]), check_dtype=False)
