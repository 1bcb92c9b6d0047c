"""The director map says where a spanning turf crosses its barrier (issue 14), escaped.

A town built in code: a 5 x 5 grid west of a primary road (Boulevard X, x = 500), and 50 doors
east of it on a loop reached by two streets across the road (Rue Sud at y = 100, Rue Nord at
y = 300). The east side cannot hold a turf of its own (50 doors for turfs of 75), so one turf
crosses; the report (``checks.py``) names the marked crossing place, and the map shows it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import shapely
from conftest import make_network, precinct_box
from test_crossings import marks_frame
from test_turfs import DoorMaker, Layout

from knockin_geo import schema
from knockin_geo.maps import director_map, save_map
from knockin_geo.plan import TurfPlan, plan_turfs
from knockin_geo.turfs import TurfParams

ROAD_X = 500.0
#: The two streets across the road (their y).
SUD, NORD = 100.0, 300.0


def boulevard_town(marks: list[tuple[str, float, float]]):
    """Build the town above with these marked crossing places: network, doors, precinct."""
    lay = Layout()
    ids, grid = lay.add_grid(5, 5, tag="West ")
    for j in range(5):
        lay.nodes[1000 + j] = (ROAD_X, 100.0 * j)
    lay.edges += [(1000 + j, 1001 + j, "primary", "Boulevard X") for j in range(4)]
    links = list(range(len(lay.edges), len(lay.edges) + 5))
    lay.edges += [(ids[(4, j)], 1000 + j, "residential", f"West Row {j}") for j in range(5)]
    lay.nodes[2001], lay.nodes[2003] = (600.0, SUD), (600.0, NORD)
    east = list(range(len(lay.edges), len(lay.edges) + 3))
    lay.edges += [(1001, 2001, "residential", "Rue Sud"), (1003, 2003, "residential", "Rue Nord"),
                  (2001, 2003, "residential", "Rue Est")]
    line = shapely.LineString([(ROAD_X, -1000), (ROAD_X, 1500)])
    net = make_network(lay.nodes, lay.edges, [("road", "primary", line)])
    net = dataclasses.replace(net, barriers=net.barriers.assign(name=["Boulevard X"]),
                              crossings=marks_frame(marks))
    mk = DoorMaker(net)
    for e in grid + links:
        mk.along(e, 3)
    for e in east:
        mk.along(e, 5)
    return net, mk.doors(), precinct_box("P1", -50, -50, 750, 450)


def cut(marks: list[tuple[str, float, float]], seed: int = 0, *, route: bool = False) -> TurfPlan:
    net, doors, pr = boulevard_town(marks)
    return plan_turfs(doors, net, precincts=pr, route=route,
                      params=TurfParams(doors_per_turf=80, seed=seed))


def spanning_turf(plan: TurfPlan) -> tuple[str, dict]:
    (prob,) = [p for p in plan.report["problems"] if "crossing" in p]
    assert prob["unavoidable"]
    return str(prob[schema.TURF_ID]), prob["crossing"]


def test_the_director_map_says_where_to_cross_escaped(tmp_path: Path) -> None:
    def save_html(m) -> str:
        return save_map(m, tmp_path / "map.html").read_text(encoding="utf-8")

    plan = cut([("signals", ROAD_X, 112.0)])
    html = save_html(director_map(plan))
    assert "Cross at: traffic signals on Boulevard X" in html
    net, doors, pr = boulevard_town([("signals", ROAD_X, 112.0)])
    evil = "<img src=x onerror=alert(1)>{{ 7*7 }}"
    net = dataclasses.replace(net, barriers=net.barriers.assign(name=[evil]))
    plan = plan_turfs(doors, net, precincts=pr, route=False, params=TurfParams(doors_per_turf=80))
    assert spanning_turf(plan)[1]["label"] == f"traffic signals on {evil}"
    html = save_html(director_map(plan))
    assert "Cross at: traffic signals on &lt;img" in html
    assert "<img src=x" not in html and "{{ 7*7 }}" not in html
