"""Balance on routed minutes (knockin_geo.rebalance) and the estimate before routing (estimate.py).

Small street networks built in code show what each rule does; the bundled Nantes data shows the
whole thing: the report's within-tolerance count is recomputed here from the files the cut
writes (per-turf routed minutes in ``plan.gpkg``), not through the library.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_network
from test_turfs import DoorMaker, Layout, grid_neighbourhood, river_town

from knockin_geo import io, schema, streets
from knockin_geo.estimate import reach_m, second_walk_m
from knockin_geo.metrics import turf_pieces
from knockin_geo.plan import covered_precincts, plan_turfs, report_json, write_plan
from knockin_geo.routing import RouteParams
from knockin_geo.snap import snap_doors
from knockin_geo.turfs import TurfParams

NANTES = Path(__file__).resolve().parents[1] / "data" / "nantes"


def routed_deviation(turfs: pd.DataFrame) -> pd.Series:
    """Routed minutes' deviation from the precinct's mean routed turf, recomputed here."""
    area = turfs[schema.PRECINCT_ID].astype("string").fillna("")
    target = turfs["est_minutes"].groupby(area.to_numpy()).transform("mean")
    return (turfs["est_minutes"] - target) / target


def slow_walkers() -> RouteParams:
    """Routes that walk at 1 km/h while the cut estimated 4 km/h: walking weighs 4x more."""
    return RouteParams(walk_speed_kmh=1.0)


# ------------------------------------------------------------------------------------------------
# small cases
# ------------------------------------------------------------------------------------------------
def test_rebalance_evens_out_routed_minutes_on_a_grid() -> None:
    """The border streets (doors on one side) walk more per door than the inner ones: routed at
    a slow pace, the cut's turfs come out uneven; the pass evens them out, one piece each."""
    net, doors, pr = grid_neighbourhood()
    base = TurfParams(doors_per_turf=None, minutes_per_turf=60)
    off = plan_turfs(doors, net, precincts=pr, route_params=slow_walkers(),
                     params=TurfParams(doors_per_turf=None, minutes_per_turf=60,
                                       rebalance_rounds=0))
    on = plan_turfs(doors, net, precincts=pr, route_params=slow_walkers(), params=base)
    dev_off, dev_on = routed_deviation(off.turfs), routed_deviation(on.turfs)
    assert (dev_off.abs() > 0.10).any()  # the case needs the pass
    assert dev_on.abs().max() < dev_off.abs().max()
    assert (dev_on.abs() <= 0.10 + 1e-9).sum() > (dev_off.abs() <= 0.10 + 1e-9).sum()
    assert on.report["rebalance"]["moves"] > 0
    # nothing lost, one turf per door, every turf in one piece, the routes are the turfs' own
    assigned = on.doors[on.doors[schema.STATUS] == schema.STATUS_ASSIGNED]
    assert len(assigned) == len(doors) and assigned[schema.TURF_ID].notna().all()
    assert (turf_pieces(on.doors, net) == 1).all()
    for tid, g in assigned.groupby(schema.TURF_ID):
        assert sorted(g[schema.SEQ].astype(int)) == list(range(1, len(g) + 1))
        assert on.routes.loc[tid, "doors"] == len(g)
    # the report reads balance on routed minutes, the estimate kept apart
    t = on.turfs
    np.testing.assert_allclose(t["deviation"], dev_on, atol=1e-3)
    assert on.report["summary"]["turfs_within_tolerance"] == int((dev_on.abs() <= 0.1).sum())
    assert on.report["summary"]["balance_measured_on"] == "routed minutes"
    w = on.doors.groupby(schema.TURF_ID)["weight"].sum()
    np.testing.assert_allclose(t["est_minutes_precut"], w.reindex(t.index), atol=0.06)


def test_rebalance_never_moves_doors_across_a_barrier() -> None:
    """Two grids either side of a river: no move gives a turf doors on a side it did not hold."""
    net, doors, pr, _ = river_town(left_per_side=4, right_per_side=2)
    params = TurfParams(doors_per_turf=None, minutes_per_turf=45)
    off = plan_turfs(doors, net, precincts=pr, route_params=slow_walkers(),
                     params=TurfParams(doors_per_turf=None, minutes_per_turf=45,
                                       rebalance_rounds=0))
    on = plan_turfs(doors, net, precincts=pr, route_params=slow_walkers(), params=params)
    assert on.report["rebalance"]["moves"] > 0

    def sides(plan) -> dict[str, set[bool]]:
        a = plan.doors[plan.doors[schema.TURF_ID].notna()]
        east = (a.geometry.x - a.geometry.x.min()) > 350  # the river's side, from the doors
        return {str(t): set(g) for t, g in east.groupby(a[schema.TURF_ID])}

    before, after = sides(off), sides(on)
    assert before.keys() == after.keys()
    assert all(after[t] <= before[t] for t in after)


def test_rebalance_off_and_doors_mode_leave_the_cut_alone() -> None:
    net, doors, pr = grid_neighbourhood()
    off = plan_turfs(doors, net, precincts=pr, route_params=slow_walkers(),
                     params=TurfParams(doors_per_turf=None, minutes_per_turf=60,
                                       rebalance_rounds=0))
    cut_only = plan_turfs(doors, net, precincts=pr, route=False,
                          params=TurfParams(doors_per_turf=None, minutes_per_turf=60))
    pd.testing.assert_series_equal(off.doors[schema.TURF_ID], cut_only.doors[schema.TURF_ID])
    assert "rebalance" not in off.report
    # doors mode: balance stays on doors; each turf's routed minutes and the precinct's spread
    # are reported
    dm = plan_turfs(doors, net, precincts=pr, params=TurfParams(doors_per_turf=80))
    assert "rebalance" not in dm.report
    assert dm.report["summary"]["balance_measured_on"] == "households"
    spread = dm.report["minutes_by_precinct"]["P1"]
    m = dm.turfs["est_minutes"]
    assert spread == {"turfs": len(m), "min_minutes": round(float(m.min()), 1),
                      "max_minutes": round(float(m.max()), 1),
                      "ratio": round(float(m.max() / m.min()), 3)}
    assert all(r["est_minutes"] == pytest.approx(dm.routes.loc[r[schema.TURF_ID], "est_minutes"])
               for r in dm.report["turfs"])


def test_estimate_walks_dead_ends_and_busy_streets_twice_and_reaches_lone_lanes() -> None:
    """A cul-de-sac and a busy street with doors on both sides count twice; a lane 300 m away
    along a door-free road counts the walk to it once."""
    lay = Layout()
    ids, grid = lay.add_grid(3, 2)  # 2x1 blocks of 100 m
    lay.nodes[50] = (100.0, 180.0)  # a cul-de-sac north of the middle node
    lay.edges.append((ids[(1, 1)], 50, "residential", "Impasse"))
    lay.nodes[60], lay.nodes[61] = (200.0, 400.0), (300.0, 400.0)  # a lone lane, 300 m away
    lay.edges.append((ids[(2, 1)], 60, "unclassified", "Road"))
    lay.edges.append((60, 61, "residential", "Lane"))
    lay.edges[grid[0]] = (*lay.edges[grid[0]][:2], "secondary", "High Street")
    net = make_network(lay.nodes, lay.edges)
    mk = DoorMaker(net)
    for e in grid:
        mk.along(e, 2, "both")
    mk.along(len(lay.edges) - 3, 2, "both")  # cul-de-sac
    mk.along(len(lay.edges) - 1, 2, "left")  # lane
    snapped = snap_doors(mk.doors(), net)
    frame = pd.DataFrame({"edge": snapped["edge"].to_numpy(), "chain": snapped["edge"].to_numpy(),
                          "side": snapped["side"].to_numpy()})
    length = net.edges["length"].to_numpy()[frame["edge"]]
    twice = second_walk_m(frame, net)
    dead = frame["edge"] == len(lay.edges) - 3
    busy = frame["edge"] == grid[0]
    lane = frame["edge"] == len(lay.edges) - 1
    np.testing.assert_allclose(twice[dead | busy], length[dead | busy] / 4)
    np.testing.assert_allclose(twice[~(dead | busy | lane)], 0.0)
    reach = reach_m(frame, net, np.full(len(frame), "P", dtype=object))
    np.testing.assert_allclose(reach[lane], 300.0 / 2)  # the road to it, shared by its 2 doors
    np.testing.assert_allclose(reach[~lane], 0.0)


# ------------------------------------------------------------------------------------------------
# Nantes' covered bureaux, minutes mode at 120
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nantes() -> tuple:
    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(NANTES / "addresses" / "adresses_nantes_commune_2013.csv")
    net = streets.load_network(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf", cache=False)
    return precincts, doors, net, covered_precincts(precincts, net)


def minutes_plan(nantes: tuple, workers: int, **kw: object):
    precincts, doors, net, universe = nantes
    return plan_turfs(doors, net, precincts=precincts, universe=universe, route_workers=workers,
                      params=TurfParams(doors_per_turf=None, minutes_per_turf=120, **kw))


def test_nantes_within_tolerance_on_routed_minutes_from_the_files(
        nantes: tuple, tmp_path: Path) -> None:
    plan = minutes_plan(nantes, 2)
    write_plan(plan, tmp_path, walk_lists=False, maps=False, exports=False)
    with sqlite3.connect(tmp_path / "plan.gpkg") as con:
        turfs = pd.read_sql("SELECT turf_id, precinct_id, est_minutes FROM turfs", con)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    dev = routed_deviation(turfs)
    within = int((dev.abs() <= 0.10 + 1e-9).sum())
    assert report["summary"]["turfs_within_tolerance"] == within
    assert within >= 0.95 * len(turfs)
    by_turf = {r[schema.TURF_ID]: r for r in report["turfs"]}
    for tid, minutes in zip(turfs[schema.TURF_ID], turfs["est_minutes"], strict=True):
        assert by_turf[tid]["est_minutes"] == pytest.approx(minutes)
        assert by_turf[tid]["est_minutes_precut"] is not None
    # the pass keeps what the cut promised: no turf in more pieces, no new barrier span
    off = minutes_plan(nantes, 2, rebalance_rounds=0)
    s_on, s_off = report["summary"], off.report["summary"]
    assert s_on["turfs"] == s_off["turfs"]
    assert s_on["turfs_connected"] >= s_off["turfs_connected"]
    assert s_on["turfs_one_piece_strict"] >= s_off["turfs_one_piece_strict"]
    assert s_on["turfs_spanning_barriers"] <= s_off["turfs_spanning_barriers"]
    assert within > int((routed_deviation(off.turfs).abs() <= 0.10 + 1e-9).sum())


def test_nantes_rebalanced_plan_same_bytes_with_one_or_two_workers(nantes: tuple) -> None:
    one, two = minutes_plan(nantes, 1), minutes_plan(nantes, 2)
    assert one.report["rebalance"]["moves"] > 0
    assert report_json(one.report) == report_json(two.report)
    pd.testing.assert_frame_equal(one.doors.drop(columns="geometry"),
                                  two.doors.drop(columns="geometry"))


def test_director_map_says_the_minutes_are_routed(tmp_path: Path) -> None:
    from knockin_geo.maps import director_map, save_map

    net, doors, pr = grid_neighbourhood()
    params = TurfParams(doors_per_turf=None, minutes_per_turf=60)
    for route, label in ((True, "minutes (routed)"), (False, "minutes (estimate before routing)")):
        plan = plan_turfs(doors, net, precincts=pr, params=params, route=route)
        save_map(director_map(plan), tmp_path / "map.html")
        assert label in (tmp_path / "map.html").read_text(encoding="utf-8")
