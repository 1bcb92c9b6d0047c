"""Walk lists: one printable page per turf, doors in walk order, only allowed fields."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from test_turfs import small_river_precinct

from knockin_geo import io, schema, streets
from knockin_geo.maps import volunteer_map_html
from knockin_geo.plan import TurfPlan, plan_turfs, write_plan
from knockin_geo.turfs import TurfParams
from knockin_geo.walklist import house_parity, start_door, walk_list_html

NANTES = Path(__file__).resolve().parents[1] / "data" / "nantes"


class _Rows(HTMLParser):
    """Collect the text of table rows and whether the page loads anything from outside."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.external: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value and re.match(r"^(https?:)?//", value):
                self.external.append(value)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def plan() -> TurfPlan:
    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(NANTES / "addresses" / "adresses_nantes_commune_2013.csv")
    net = streets.load_network(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf", cache=False)
    return plan_turfs(doors, net, precincts=precincts, universe=["0101", "0319"])


def test_house_parity() -> None:
    assert house_parity("12") == "even"
    assert house_parity("7B") == "odd"
    assert house_parity(" 15 bis") == "odd"
    assert house_parity("") is None
    assert house_parity("A") is None


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_walk_list_lists_every_door_once_in_walk_order(plan: TurfPlan, lang: str) -> None:
    for tid in plan.turfs.index:
        parser = _Rows()
        parser.feed(walk_list_html(plan, tid, lang=lang))
        door_rows = [r for r in parser.rows if r and r[0].isdigit()]
        doors = plan.doors[plan.doors[schema.TURF_ID] == tid].sort_values(schema.SEQ)
        assert [int(r[0]) for r in door_rows] == list(range(1, len(doors) + 1))
        assert [r[1] for r in door_rows] == doors[schema.HOUSENUMBER].astype(str).tolist()
        assert parser.external == []  # nothing to fetch: prints and opens offline
    html = walk_list_html(plan, plan.turfs.index[0], lang=lang)
    labels = ("Absent", "Refus", "Déménagé") if lang == "fr" else ("Not home", "Refused", "Moved")
    for label in labels:
        assert label in html
    assert "<svg" in html
    assert 'name="viewport"' in html


def test_walk_order_and_lonlat_found_once_equal_the_per_turf_way(plan: TurfPlan) -> None:
    # the per-turf writers read each turf's rows in walk order and the doors' EPSG:4326
    # positions from the plan; they must be what sorting and reprojecting one turf gives
    doors = plan.doors.copy()
    first = plan.turfs.index[0]
    rows = np.flatnonzero((doors[schema.TURF_ID] == first).fillna(False).to_numpy(dtype=bool))
    doors.iloc[rows[:3], doors.columns.get_loc(schema.SEQ)] = np.nan  # no walk order: last
    p = dataclasses.replace(plan, doors=doors)
    for tid in p.turfs.index:
        by_hand = p.turf_doors(tid).sort_values(schema.SEQ, kind="stable", na_position="last")
        assert p.walk_doors(tid).index.tolist() == by_hand.index.tolist()
        wgs = by_hand.to_crs(4326).geometry
        got = p.lonlat[p.walk_rows(tid)]
        np.testing.assert_array_equal(got[:, 0], wgs.x.to_numpy())
        np.testing.assert_array_equal(got[:, 1], wgs.y.to_numpy())
    assert p.walk_doors(first).index[-3:].tolist() == p.turf_doors(first).index[:3].tolist()
    assert len(p.walk_rows("no such turf")) == 0


def test_walk_list_street_groups_follow_the_walk(plan: TurfPlan) -> None:
    tid = plan.turfs.index[0]
    parser = _Rows()
    parser.feed(walk_list_html(plan, tid, lang="en"))
    headers = [r[0] for r in parser.rows if len(r) == 1]
    doors = plan.doors[plan.doors[schema.TURF_ID] == tid].sort_values(schema.SEQ)
    streets_in_order = doors[schema.STREET].tolist()
    # each header names the street of the doors under it
    first_street = headers[0].split(" —")[0].strip()
    assert first_street == streets_in_order[0]
    assert all(" — " in h or "—" in h for h in headers)


def test_walk_list_carries_no_personal_or_internal_fields(plan: TurfPlan) -> None:
    tid = plan.turfs.index[0]
    html = walk_list_html(plan, tid)
    doors = plan.doors[plan.doors[schema.TURF_ID] == tid]
    # no address ids, source rows or coordinates leak into the page text
    for aid in doors.index[:20]:
        assert f">{aid}<" not in html
    assert "source_row" not in html
    assert "snap_dist" not in html


def test_unknown_turf_and_language(plan: TurfPlan) -> None:
    with pytest.raises(KeyError, match="no turf"):
        walk_list_html(plan, "9999-99")
    with pytest.raises(KeyError, match="no turf"):
        start_door(plan, "9999-99")
    with pytest.raises(ValueError, match="language"):
        walk_list_html(plan, plan.turfs.index[0], lang="de")


def test_write_plan_writes_walk_lists_and_index(plan: TurfPlan, tmp_path: Path) -> None:
    files = write_plan(plan, tmp_path / "out", lang="en")
    lists = tmp_path / "out" / "walklists"
    names = sorted(p.name for p in lists.iterdir())
    assert names == sorted([f"{t}.html" for t in plan.turfs.index] + ["index.html"])
    assert (lists / "index.html") in files
    index = (lists / "index.html").read_text(encoding="utf-8")
    for t in plan.turfs.index:
        assert f'href="{t}.html"' in index
    # rewriting replaces the folder whole, leaving no temporary files behind
    write_plan(plan, tmp_path / "out", lang="fr")
    assert sorted(p.name for p in lists.iterdir()) == names
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []


def test_a_turf_across_a_river_says_where_to_cross() -> None:
    """The walk list and the phone map of a turf that must cross a river say where, once."""
    net, doors, pr, _ = small_river_precinct()
    plan = plan_turfs(doors, net, precincts=pr, params=TurfParams(doors_per_turf=80))
    (prob,) = [p for p in plan.report["problems"] if "crossing" in p]
    assert prob["barrier"] == "river"
    lat, lon = prob["crossing"]["lat"], prob["crossing"]["lon"]
    geo = f"geo:{lat:.6f},{lon:.6f}"
    page = walk_list_html(plan, "P1-01", lang="en")
    assert page.count(geo) == 1 and "cross river once, at this point" in page
    phone = volunteer_map_html(plan, "P1-01", lang="en")
    assert phone.count(geo) == 1 and "Open the crossing point" in phone
    # the point lies on the river (x = 250 in the town's local frame)
    here = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(plan.crs).iloc[0]
    river = net.barriers.to_crs(plan.crs).geometry.iloc[0]
    assert here.distance(river) < 1.0
    # a turf that crosses nothing says nothing about crossing
    quiet = plan_turfs(doors[doors.index.isin(plan.doors.index[:3])], net, precincts=pr,
                       params=TurfParams(doors_per_turf=80))
    assert "cross river" not in walk_list_html(quiet, "P1-01", lang="en")
