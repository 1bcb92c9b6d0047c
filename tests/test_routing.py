"""Walking routes (:mod:`knockin_geo.routing`): properties on real data, street-sweep rules on
small networks built in code.

Real data: the 22 Nantes bureaux the 2014 extract covers, and four small Liechtenstein
municipalities (Schellenberg, Gamprin, Planken, Ruggell), cut and routed by ``plan_turfs``.

Small networks: ``conftest.make_network`` / ``doors_along``; the doors are snapped with
``snap_doors`` and put in one turf by hand, so the router alone is tested (``plan_turfs`` would
split the sides of a primary road into different turfs, as it should).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import ORIGIN, concat_doors, doors_along, make_network

from knockin_geo import io, schema, streets
from knockin_geo._errors import InputError
from knockin_geo.plan import TurfPlan, covered_precincts, plan_turfs, write_plan
from knockin_geo.routing import RouteParams, _Context, _Stops, route_turfs
from knockin_geo.snap import snap_doors
from knockin_geo.streets import StreetNetwork
from knockin_geo.turfs import TurfParams

DATA = Path(__file__).resolve().parents[1] / "data"
NANTES = DATA / "nantes"
LI = DATA / "liechtenstein"
#: Schellenberg, Gamprin, Planken, Ruggell: about 1,900 doors, 25 turfs.
LI_UNIVERSE = ("1155946", "1155947", "1155954", "1155950")


# ------------------------------------------------------------------------------------------------
# real data
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nantes_plan() -> TurfPlan:
    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(NANTES / "addresses" / "adresses_nantes_commune_2013.csv")
    net = streets.load_network(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf", cache=False)
    universe = covered_precincts(precincts, net)
    assert len(universe) == 22
    return plan_turfs(doors, net, precincts=precincts, universe=universe,
                      params=TurfParams(doors_per_turf=80))


@pytest.fixture(scope="module")
def li_plan() -> TurfPlan:
    doors = io.read_addresses(LI / "osm_addresses_liechtenstein_2024.csv")
    net = streets.load_network(LI / "liechtenstein-2024-03-03.osm.pbf", cache=False)
    munis = io.read_precincts(LI / "municipalities.geojson", id_column="municipality_id")
    return plan_turfs(doors, net, precincts=munis, universe=LI_UNIVERSE,
                      params=TurfParams(doors_per_turf=80))


@pytest.fixture(params=["nantes", "liechtenstein"])
def plan(request: pytest.FixtureRequest) -> TurfPlan:
    return request.getfixturevalue("nantes_plan" if request.param == "nantes" else "li_plan")


def _route_params(plan: TurfPlan) -> RouteParams:
    """The route parameters the plan used (recorded in its report)."""
    rp = dict(plan.report["route_params"])
    for k in ("busy_highways", "start", "start_hint"):
        if isinstance(rp.get(k), list):
            rp[k] = tuple(rp[k])
    return RouteParams(**rp)


def _assigned(plan: TurfPlan) -> gpd.GeoDataFrame:
    d = plan.doors
    return d[d[schema.TURF_ID].notna()]


def test_real_every_door_once_in_its_route(plan: TurfPlan) -> None:
    """Each turf's doors are numbered 1..n exactly once; unassigned doors have no seq."""
    d = plan.doors
    assert len(plan.turfs) > 10
    a = _assigned(plan)
    assert a[schema.SEQ].notna().all()
    assert d.loc[d[schema.TURF_ID].isna(), schema.SEQ].isna().all()
    for tid, g in a.groupby(schema.TURF_ID):
        assert sorted(g[schema.SEQ].astype(int).tolist()) == list(range(1, len(g) + 1)), tid
        assert plan.routes.loc[tid, "doors"] == len(g)


def test_real_route_passes_through_every_door(plan: TurfPlan) -> None:
    """The route line runs through each door's snapped point (the street in front of it)."""
    a = _assigned(plan)
    worst = 0.0
    for tid, g in a.groupby(schema.TURF_ID):
        line = plan.routes.geometry.loc[tid]
        assert isinstance(line, shapely.LineString) and not line.is_empty
        pts = shapely.points(g["snap_x"].to_numpy(float), g["snap_y"].to_numpy(float))
        dist = shapely.distance(line, pts)
        assert dist.max() < 30.0, tid
        worst = max(worst, float(dist.max()))
    assert worst < 1e-3


def test_real_routes_layer_figures(plan: TurfPlan) -> None:
    """One row per turf; length_m is the line's length; walk_m and est_minutes recomputed.

    ``length_m`` is rounded to 0.1 m, so it matches the line to 0.05 m (+ 1e-6 relative).
    """
    r = plan.routes
    rp = _route_params(plan)
    a = _assigned(plan)
    assert r.index.is_unique
    assert set(r.index) == set(plan.turfs.index) == set(a[schema.TURF_ID])
    lengths = shapely.length(r.geometry.to_numpy())
    assert np.all(np.abs(r["length_m"].to_numpy() - lengths) <= 0.05 + 1e-6 * lengths)
    assert (r["walk_m"] >= r["length_m"]).all()
    hh = a.groupby(schema.TURF_ID)[schema.HOUSEHOLDS].sum().reindex(r.index).astype(float)
    est = r["walk_m"] / rp.metres_per_minute + hh * rp.minutes_per_door
    assert np.allclose(est, r["est_minutes"], atol=0.06)
    assert (r["crossings"] >= 0).all()
    # the turf table carries the route's figures
    assert np.allclose(plan.turfs["route_m"].reindex(r.index), r["length_m"])
    assert np.allclose(plan.turfs["walk_m"].reindex(r.index), r["walk_m"])


def test_real_route_starts_at_first_door(plan: TurfPlan) -> None:
    """``start_address_id`` is the door with seq 1 and the line starts at its snapped point."""
    a = _assigned(plan)
    for tid, g in a.groupby(schema.TURF_ID):
        first = g.index[g[schema.SEQ] == 1]
        assert len(first) == 1
        assert plan.routes.loc[tid, "start_address_id"] == first[0]
        x, y = shapely.get_coordinates(plan.routes.geometry.loc[tid])[0]
        assert np.hypot(x - g.loc[first[0], "snap_x"], y - g.loc[first[0], "snap_y"]) < 1e-6


def test_real_route_length_is_the_modelled_walk(plan: TurfPlan) -> None:
    """The drawn line is the walk the cost model priced: along the walk order, the sum of the
    door-to-door costs, minus ``crossing_m`` per counted crossing, is the line length.

    Steps between pieces no street links (drawn straight, priced with a penalty) are skipped.
    """
    rp = _route_params(plan)
    ctx = _Context(plan.network, rp)
    a = _assigned(plan)
    checked = 0
    for tid, turf in a.groupby(schema.TURF_ID):
        g = turf.sort_values(schema.SEQ)
        e = g["edge"].to_numpy(np.int64)
        stops = _Stops(edge=e, offset=g["offset_m"].to_numpy(float),
                       side=g["side"].astype(str).to_numpy(dtype=object), busy=ctx.busy[e],
                       xy=g[["snap_x", "snap_y"]].to_numpy(float), name=ctx.name[e],
                       direction=ctx.direction[e])
        cost, via, _ = ctx._cost_matrix(stops, ctx._local_paths(stops))
        i = np.arange(len(g) - 1)
        if (via[i, i + 1] == -2).any():
            continue
        modelled = cost[i, i + 1].sum() - rp.crossing_m * plan.routes.loc[tid, "crossings"]
        assert modelled == pytest.approx(plan.routes.loc[tid, "length_m"], abs=0.06), tid
        checked += 1
    assert checked >= 0.9 * len(plan.routes)


def test_real_routes_deterministic(li_plan: TurfPlan) -> None:
    """Same doors, same network, same parameters: same walk order, same lines."""
    routes, seq = route_turfs(li_plan.doors, li_plan.network, _route_params(li_plan))
    pd.testing.assert_series_equal(seq, li_plan.doors[schema.SEQ], check_names=False)
    assert routes.index.equals(li_plan.routes.index)
    for a, b in zip(routes.geometry, li_plan.routes.geometry, strict=True):
        assert a.equals_exact(b, 0.0)
    pd.testing.assert_frame_equal(routes.drop(columns="geometry"),
                                  li_plan.routes.drop(columns="geometry"))


#: Six central Nantes bureaux: about 1,100 doors, 14 turfs (enough for two routing processes).
NANTES_SIX = ("0101", "0102", "0103", "0301", "0302", "0319")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_one_or_two_routing_processes_same_bytes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real cut routed in this process and in two worker processes: byte-identical files."""
    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(NANTES / "addresses" / "adresses_nantes_centre_2013_osmbbox.csv")
    net = streets.load_network(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf", cache=False)
    outs = {}
    for workers in (1, 2):
        caplog.clear()
        with caplog.at_level("DEBUG", logger="knockin_geo.routing"):
            plan = plan_turfs(doors, net, precincts=precincts, universe=NANTES_SIX,
                              params=TurfParams(doors_per_turf=80), route_workers=workers)
        pooled = [r for r in caplog.records if "processes" in r.getMessage()]
        assert bool(pooled) == (workers > 1)  # two workers really ran
        assert len(plan.routes) >= 8
        write_plan(plan, tmp_path / str(workers))
        outs[workers] = _files(tmp_path / str(workers))
    assert outs[1].keys() == outs[2].keys()
    assert {"plan.gpkg", "report.json", "exports/turfs.kml"} <= outs[1].keys()
    differ = [k for k in outs[1] if outs[1][k] != outs[2][k]]
    assert not differ


# ------------------------------------------------------------------------------------------------
# small networks built in code
# ------------------------------------------------------------------------------------------------
def route_one_turf(
    net: StreetNetwork, doors: gpd.GeoDataFrame, params: RouteParams | None = None
) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """Snap ``doors``, put them all in turf ``T1``, route it.

    Returns the snapped doors in walk order (with ``seq``) and the turf's routes row.
    """
    snapped = snap_doors(doors, net)
    assert (snapped["edge"] >= 0).all()
    snapped[schema.TURF_ID] = pd.array(["T1"] * len(snapped), dtype="string")
    routes, seq = route_turfs(snapped, net, params or RouteParams())
    snapped[schema.SEQ] = seq
    assert sorted(seq.astype(int).tolist()) == list(range(1, len(snapped) + 1))
    assert list(routes.index) == ["T1"]
    walk = snapped.sort_values(schema.SEQ)
    row = routes.iloc[0]
    line = row.geometry
    assert isinstance(line, shapely.LineString) and not line.is_empty
    assert row["start_address_id"] == walk.index[0]
    pts = shapely.points(walk["snap_x"].to_numpy(float), walk["snap_y"].to_numpy(float))
    assert shapely.distance(line, pts).max() < 1e-3
    return walk, row


def main_street(highway: str, length: float = 600.0) -> StreetNetwork:
    """One street W->E (edge 0) with a side street going N and S at each end (not dead ends)."""
    return make_network(
        {1: (0, 0), 2: (length, 0), 3: (0, 100), 4: (0, -100), 5: (length, 100),
         6: (length, -100)},
        [(1, 2, highway, "Main Street"), (3, 1, "residential"), (1, 4, "residential"),
         (5, 2, "residential"), (2, 6, "residential")],
    )


def side_changes(walk: gpd.GeoDataFrame) -> int:
    s = walk[schema.SIDE].astype(str).to_numpy()
    return int((s[1:] != s[:-1]).sum())


def local(x: float, y: float) -> tuple[float, float]:
    return (ORIGIN[0] + x, ORIGIN[1] + y)


@pytest.mark.parametrize("highway", ["primary", "secondary"])
def test_busy_road_walked_one_side_at_a_time(highway: str) -> None:
    """A 600 m main road with 10 houses on each side: canvassers do one side, cross once at the
    end of the block, and come back on the other side; they never zig-zag across traffic."""
    net = main_street(highway)
    walk, row = route_one_turf(net, doors_along(net, 0, 10, side="both"))
    assert side_changes(walk) == 1
    assert row["crossings"] == 1
    # one side out, one side back: about twice the street, not 20 crossings
    assert row["length_m"] == pytest.approx(2 * 540 + 2 * 30, abs=1.0)


def test_quiet_street_swept_in_one_pass() -> None:
    """The same 600 m street, residential: both sides in one pass, zig-zagging across, in order
    along the street; no walking back."""
    net = main_street("residential")
    walk, row = route_one_turf(net, doors_along(net, 0, 10, side="both"))
    off = walk["offset_m"].to_numpy()
    d = np.diff(off)
    assert (d >= -1e-9).all() or (d <= 1e-9).all(), off
    assert side_changes(walk) > 5  # sides interleaved
    assert row["crossings"] == 0
    assert row["length_m"] < 1.3 * 600
    assert row["length_m"] == pytest.approx(540, abs=1.0)


def _numbers_in_walk_order(walk: gpd.GeoDataFrame) -> tuple[list[int], list[int]]:
    nums = walk[schema.HOUSENUMBER].astype(int).to_numpy()
    return [int(n) for n in nums if n % 2 == 1], [int(n) for n in nums if n % 2 == 0]


def _monotone(xs: list[int]) -> bool:
    d = np.diff(xs)
    return bool((d > 0).all() or (d < 0).all())


@pytest.mark.parametrize("highway", ["primary", "secondary"])
def test_odd_then_even_along_a_long_busy_street(highway: str) -> None:
    """A 1 km busy street, 15 houses on each side (odd numbers on the left, even on the right):
    the walk gives all odd numbers in order, then all even numbers in order (or even first)."""
    net = main_street(highway, length=1000.0)
    walk, row = route_one_turf(net, doors_along(net, 0, 15, side="both"))
    odd_first = int(walk[schema.HOUSENUMBER].iloc[0]) % 2 == 1
    parity = walk[schema.HOUSENUMBER].astype(int).to_numpy() % 2
    assert (parity[:15] == (1 if odd_first else 0)).all()
    odd, even = _numbers_in_walk_order(walk)
    assert _monotone(odd) and _monotone(even)
    assert row["crossings"] == 1


def multi_block_street(highway: str, blocks: int, per_side: int = 5, block_m: float = 300.0):
    """A busy street of ``blocks`` blocks W->E with a cross street at every junction; house
    numbers run along the whole street (odd on the left, even on the right)."""
    nodes = {i: (i * block_m, 0.0) for i in range(blocks + 1)}
    edges: list[tuple] = [(i, i + 1, highway, "High Street") for i in range(blocks)]
    for i in range(blocks + 1):
        nodes[100 + i] = (i * block_m, 150.0)
        nodes[200 + i] = (i * block_m, -150.0)
        edges += [(100 + i, i, "residential"), (i, 200 + i, "residential")]
    net = make_network(nodes, edges)
    frames = []
    for b in range(blocks):
        d = doors_along(net, b, per_side, side="both", start_id=100 * b)
        k = b * per_side + np.arange(per_side)
        d[schema.HOUSENUMBER] = pd.array([str(1 + 2 * i) for i in k] + [str(2 + 2 * i) for i in k],
                                         dtype="string")
        frames.append(d)
    return net, concat_doors(frames)


def test_odd_then_even_along_a_multi_block_busy_street() -> None:
    """A busy high street of 4 blocks with cross streets: still one side, then the other, and
    every change of side is a counted crossing."""
    net, doors = multi_block_street("secondary", 4)
    walk, row = route_one_turf(net, doors)
    assert side_changes(walk) == row["crossings"]
    assert side_changes(walk) == 1
    odd, even = _numbers_in_walk_order(walk)
    assert _monotone(odd) and _monotone(even)


def ring_street() -> StreetNetwork:
    """A 150 m x 150 m block (4 residential edges, 600 m) with one access street to the west."""
    return make_network(
        {1: (0, 0), 2: (150, 0), 3: (150, 150), 4: (0, 150), 5: (-100, 0)},
        [(1, 2, "residential"), (2, 3, "residential"), (3, 4, "residential"),
         (4, 1, "residential"), (5, 1, "residential")],
    )


def cul_de_sac() -> StreetNetwork:
    """A 300 m cul-de-sac (edge 2) off a through street."""
    return make_network(
        {1: (0, 0), 2: (300, 0), 3: (0, -200), 4: (0, 200)},
        [(3, 1, "residential"), (1, 4, "residential"), (1, 2, "residential")],
    )


def test_loop_street_not_walked_twice() -> None:
    """Houses all around a block (both sides of its 4 streets): the route goes round once and
    stops short of its start; no doubling back. In a true cul-de-sac, coming back is
    unavoidable for a loop and the open route walks it once."""
    net = ring_street()
    doors = concat_doors(
        doors_along(net, e, 5, side="both", start_id=100 * e) for e in range(4)
    )
    _, row = route_one_turf(net, doors)
    ring = 600.0
    # doors sit 15 m from each corner: the open route skips the 30 m between first and last
    assert row["length_m"] <= ring
    assert row["length_m"] == pytest.approx(ring - 30, abs=1.0)

    net = cul_de_sac()
    doors = doors_along(net, 2, 10, side="both")
    span = 300 - 2 * 15  # first to last door
    _, open_row = route_one_turf(net, doors)
    assert open_row["length_m"] >= span - 1e-6
    assert open_row["length_m"] == pytest.approx(span, abs=1.0)


def test_loop_in_a_cul_de_sac_comes_back() -> None:
    """A loop route in a cul-de-sac must come back out: about twice the doors' span."""
    net = cul_de_sac()
    doors = doors_along(net, 2, 10, side="both")
    _, row = route_one_turf(net, doors, RouteParams(loop=True))
    c = shapely.get_coordinates(row.geometry)
    assert np.hypot(*(c[0] - c[-1])) < 1e-6
    assert row["length_m"] == pytest.approx(2 * (300 - 30), abs=1.0)


@pytest.mark.parametrize(
    ("layout", "side"),
    [("ring", "both"), ("busy", "both"), ("quiet", "left")],
)
def test_loop_closed_on_other_layouts(layout: str, side: str) -> None:
    """``loop=True`` round a block, along a busy street and along a quiet one: the line is
    closed and not shorter than the open route."""
    if layout == "ring":
        net = ring_street()
        doors = concat_doors(
            doors_along(net, e, 5, side="both", start_id=100 * e) for e in range(4)
        )
    else:
        net = main_street("primary" if layout == "busy" else "residential")
        doors = doors_along(net, 0, 10, side="both")
    _, open_row = route_one_turf(net, doors)
    _, loop_row = route_one_turf(net, doors, RouteParams(loop=True))
    c = shapely.get_coordinates(loop_row.geometry)
    assert np.hypot(*(c[0] - c[-1])) < 1e-6
    assert loop_row["length_m"] >= open_row["length_m"] - 1e-6


def test_loop_returns_to_start() -> None:
    """``loop=True``: the line's first and last points coincide and it is at least as long as
    the open route (here: out along one side of a street and back)."""
    net = main_street("residential")
    doors = doors_along(net, 0, 10, side="left")
    _, open_row = route_one_turf(net, doors)
    _, loop_row = route_one_turf(net, doors, RouteParams(loop=True))
    c = shapely.get_coordinates(loop_row.geometry)
    assert np.hypot(*(c[0] - c[-1])) < 1e-6
    assert loop_row["length_m"] >= open_row["length_m"] - 1e-6
    assert loop_row["length_m"] == pytest.approx(2 * 540, abs=1.0)


@pytest.mark.parametrize("end", ["west", "east"])
@pytest.mark.parametrize("side", ["left", "both"])
def test_fixed_start_first_door_is_nearest(end: str, side: str) -> None:
    """The volunteers gather at a fixed point (a bus stop near one end of the street): the first
    door is the one nearest that point, and the line starts at the point."""
    net = main_street("residential")
    doors = doors_along(net, 0, 10, side=side)
    start = local(5.0, 3.0) if end == "west" else local(595.0, -3.0)
    walk, row = route_one_turf(net, doors, RouteParams(start=start))
    # along the street from the start's own snapped point (5 m or 595 m)
    along = np.abs(walk["offset_m"].to_numpy() - (5.0 if end == "west" else 595.0))
    assert along[0] == pytest.approx(along.min())
    assert along[0] == pytest.approx(25.0)
    first = shapely.get_coordinates(row.geometry)[0]
    assert np.hypot(*(first - np.array(local(5.0 if end == "west" else 595.0, 0.0)))) < 1e-6
    # the walk then goes straight down the street
    off = walk["offset_m"].to_numpy()
    assert (np.diff(off) >= -1e-9).all() if end == "west" else (np.diff(off) <= 1e-9).all()
    assert row["length_m"] == pytest.approx(565.0, abs=1.0)


def test_fixed_start_on_a_busy_street_still_one_side_at_a_time() -> None:
    """Fixed start at the west end of a primary road with houses both sides: start there, do one
    side, cross once at the far end, come back."""
    net = main_street("primary")
    walk, row = route_one_turf(net, doors_along(net, 0, 10, side="both"),
                               RouteParams(start=local(-5.0, 0.0)))
    assert walk["offset_m"].iloc[0] == pytest.approx(30.0)
    assert side_changes(walk) == 1
    assert row["crossings"] == 1


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize(
    "params",
    [RouteParams(), RouteParams(loop=True), RouteParams(start=local(590, 5))],
    ids=["open", "loop", "start"],
)
def test_tiny_turfs(n: int, params: RouteParams) -> None:
    """Turfs of one, two or three doors (a farm, a pair of houses): seq 1..n and a line."""
    net = main_street("residential")
    walk, row = route_one_turf(net, doors_along(net, 0, 10, side="left").iloc[:n], params)
    assert walk[schema.SEQ].tolist() == list(range(1, n + 1))
    assert row["doors"] == n
    if params.start is not None:  # from the start (590 m) to the farthest door (30 m)
        assert row["length_m"] == pytest.approx(560.0, abs=0.1)
    elif not params.loop:
        assert row["length_m"] == pytest.approx(60.0 * (n - 1), abs=0.1)
    if n >= 2:
        assert shapely.is_valid(row.geometry)


def test_one_door_route_is_a_valid_line() -> None:
    """A one-door turf's route line is a valid geometry that survives writing."""
    net = main_street("residential")
    _, row = route_one_turf(net, doors_along(net, 0, 1, side="left"))
    assert shapely.is_valid(row.geometry)
    assert not shapely.set_precision(row.geometry, 0.001).is_empty
    assert row["length_m"] == 0.0


def test_doors_on_unconnected_street_pieces() -> None:
    """A turf whose doors are on two streets no street links (the extract misses the link, or
    a footpath is not mapped): every door still gets a seq, one piece is finished before the
    other, and the line jumps once."""
    net = make_network(
        {1: (0, 0), 2: (300, 0), 3: (0, 400), 4: (300, 400)},
        [(1, 2, "residential"), (3, 4, "residential")],
    )
    doors = concat_doors([doors_along(net, 0, 5, side="both"),
                          doors_along(net, 1, 5, side="both", start_id=50)])
    for params in (RouteParams(), RouteParams(loop=True), RouteParams(start=local(-5, 400))):
        walk, row = route_one_turf(net, doors, params)
        edges = walk["edge"].to_numpy()
        assert int((edges[1:] != edges[:-1]).sum()) == 1
        assert shapely.is_valid(row.geometry)
        assert row["length_m"] > 0
    assert walk["edge"].iloc[0] == 1  # the start is on the northern street


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"crossing_m": -1}, "crossing_m"),
        ({"crossing_m": float("nan")}, "crossing_m"),
        ({"walk_speed_kmh": 0}, "walk_speed_kmh"),
        ({"walk_speed_kmh": -4}, "walk_speed_kmh"),
        ({"runs": 0}, "runs"),
        ({"trials": 0}, "trials"),
        ({"minutes_per_door": -1}, "minutes_per_door"),
    ],
)
def test_bad_route_params(kwargs: dict, name: str) -> None:
    """Bad parameters are refused with an InputError that names the parameter."""
    with pytest.raises(InputError) as err:
        RouteParams(**kwargs)
    assert name in str(err.value)
    assert isinstance(err.value, ValueError)


def _best_by_enumeration(cost: np.ndarray, *, loop: bool, start: int | None) -> float:
    """Cheapest open path (or loop) through every stop, by trying every order."""
    n = len(cost)
    best = np.inf
    for perm in itertools.permutations(range(n)):
        if start is not None and perm[0] != start:
            continue
        steps = list(zip(perm, perm[1:] + (perm[:1] if loop else ()), strict=False))
        best = min(best, sum(cost[i, j] for i, j in steps))
    return float(best)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("mode", ["open", "loop", "start"])
def test_solver_finds_the_best_order_on_small_turfs(seed: int, mode: str) -> None:
    """The solver's order costs what the best of all orders costs (7 stops, tried one by one),
    for an open path, a loop and a fixed start; some cases have two pieces no street links
    (a 2 km jump), so the dummy stop of the open path must not decide where the path jumps."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 400, size=(7, 2))
    cost = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    if seed % 3 == 0:  # two pieces: every step between them pays the gap
        piece = np.arange(7) < 3
        cost = np.where(piece[:, None] != piece[None, :], cost * 3 + 2000.0, cost)
    cost = np.rint(cost * 10) / 10  # LKH works in decimetres
    ctx = _Context.__new__(_Context)
    ctx.params = RouteParams(loop=mode == "loop")
    start = 4 if mode == "start" else None
    order = ctx._solve(cost, fixed_start=start)
    assert sorted(order.tolist()) == list(range(7))
    if start is not None:
        assert order[0] == start
    steps = list(itertools.pairwise(order.tolist()))
    if mode == "loop":
        steps.append((order[-1], order[0]))
    got = float(sum(cost[i, j] for i, j in steps))
    assert got == pytest.approx(_best_by_enumeration(cost, loop=mode == "loop", start=start),
                                abs=1e-6)


def test_a_one_door_turf_gets_a_short_line_on_its_street() -> None:
    # a route of one stop has no walk: it is drawn as 2 m of its street around the door (a
    # valid line for every writer), its length 0
    net = main_street("residential")
    walk, row = route_one_turf(net, doors_along(net, 0, 1, side="left"))
    assert len(walk) == 1
    assert row["length_m"] == 0.0
    line = row.geometry
    assert line.length == pytest.approx(2.0, abs=1e-6)
    street = net.edges.geometry.iloc[0]
    assert shapely.distance(street, shapely.points(shapely.get_coordinates(line))).max() < 1e-6
