"""The volunteer's phone: the phone map played as a volunteer's evening, offline, at 390x844.

Headless Chromium (Debian's) driven by Playwright. The plan is written as ``cut`` writes it and
the phone map used is the file a volunteer gets; the results go back through ``import``.
Screenshots land in ``tests/artifacts/`` (and ``docs/img/`` with ``KNOCKIN_DOCS_IMG=1``).
"""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely
from conftest import open_offline, screenshot

from knockin_geo import io, schema, streets
from knockin_geo.plan import TurfPlan, plan_turfs, write_plan

NANTES = Path(__file__).resolve().parents[1] / "data" / "nantes"
PHONE = {"width": 390, "height": 844}
ZONE = "Europe/Paris"
MAP_JS = "Object.values(window).find(v => v instanceof L.Map)"

#: Boxes of the door markers shown on the map, in page pixels.
MARKERS_JS = """() => [...document.querySelectorAll('.leaflet-marker-icon.kg-door')].map(e => {
  const r = e.getBoundingClientRect();
  return {seq: e.querySelector('span').textContent, cls: e.className,
          x: r.left, y: r.top, w: r.width, h: r.height};
})"""


@pytest.fixture(scope="module")
def plan() -> TurfPlan:
    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(NANTES / "addresses" / "adresses_nantes_commune_2013.csv")
    net = streets.load_network(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf", cache=False)
    return plan_turfs(doors, net, precincts=precincts, universe=["0101"])


@pytest.fixture(scope="module")
def folder(plan: TurfPlan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plan")
    write_plan(plan, out, exports=False, lang="fr")
    return out


def _turf(plan: TurfPlan) -> str:
    """The turf with the most doors (the densest phone map)."""
    return str(plan.turfs["doors"].idxmax())


def _doors_wgs84(plan: TurfPlan, tid: str):
    d = plan.doors[plan.doors[schema.TURF_ID] == tid].sort_values(schema.SEQ)
    return d, d.to_crs(4326)


def _overlaps(boxes: list[dict]) -> list[tuple[str, str]]:
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                    and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]):
                out.append((a["seq"], b["seq"]))
    return out


def _phone(browser, path: Path, **extra):
    return open_offline(browser, path, PHONE["width"], PHONE["height"], is_mobile=True,
                        has_touch=True, timezone_id=ZONE, locale="fr-FR", **extra)


def _local_hhmm(iso_utc: str) -> str:
    return datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone(
        ZoneInfo(ZONE)).strftime("%H:%M")


def _stored(page) -> dict:
    return page.evaluate(
        "() => { const k = Object.keys(localStorage).find(k => k.startsWith('knockin_geo:'));"
        " return JSON.parse(localStorage.getItem(k)).doors; }")


def test_volunteer_evening_offline(browser, plan: TurfPlan, folder: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from knockin_geo.cli.main import main

    tid = _turf(plan)
    d, dw = _doors_wgs84(plan, tid)
    third = dw.geometry.iloc[2]  # the volunteer stands at the third door, the next one then
    context, page, errors, requests = _phone(
        browser, folder / "maps" / f"{tid}.html", accept_downloads=True,
        geolocation={"latitude": third.y, "longitude": third.x, "accuracy": 15},
        permissions=["geolocation"],
    )
    # 1. the map opens on the whole turf: markers are touch targets that do not overlap, the
    #    next door (the start) has its marker, the three after it stand out
    screenshot(page, "phone-1-open.png")
    zoom = page.evaluate(f"() => {MAP_JS}.getZoom()")
    boxes = page.evaluate(MARKERS_JS)
    assert len(boxes) >= 5
    assert all(b["w"] >= 44 and b["h"] >= 44 for b in boxes)
    assert _overlaps(boxes) == []
    nxt = page.locator(".leaflet-marker-icon.kg-next")
    assert nxt.count() == 1 and nxt.locator("span").inner_text() == "1"
    soon = page.evaluate(
        "() => [1, 2, 3].map(i => dots[i].options.fillColor)")  # next doors, even as dots
    assert soon == ["#ffd600"] * 3
    # the next door's marker is what a finger at its centre touches (nothing covers it)
    box = nxt.bounding_box()
    hit = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('.kg-next') !== null",
                        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
    assert hit

    # 2. tap it at the opening zoom, type a note, tap "Contact": the form stays open, the door
    #    stays in sight above it, the time is the volunteer's
    assert page.evaluate(f"() => {MAP_JS}.getZoom()") == zoom  # no zooming to reach it
    nxt.tap()
    assert page.locator("#sheet.open").count() == 1
    assert page.locator("#sheet-title").inner_text().startswith("1. ")
    page.fill("#note", "chien, sonner deux fois")
    page.locator('#codes button[data-code="contacted"]').tap()
    assert page.locator("#sheet.open").count() == 1
    stamp = _stored(page)[d.index[0]][-1]["t"]
    assert stamp.endswith("Z")
    assert _local_hhmm(stamp) in page.locator("#hint").inner_text()
    door = page.locator(".leaflet-marker-icon.kg-open").bounding_box()
    sheet_top = page.locator("#sheet").bounding_box()["y"]
    assert door["y"] >= 48 and door["y"] + door["height"] <= sheet_top
    screenshot(page, "phone-2-form.png")

    # 3. "next door" opens door 2; nobody home; close the form
    page.locator("#next").tap()
    assert page.locator("#sheet-title").inner_text().startswith("2. ")
    door = page.locator(".leaflet-marker-icon.kg-open").bounding_box()
    assert door["y"] + door["height"] <= page.locator("#sheet").bounding_box()["y"]
    page.locator('#codes button[data-code="not_home"]').tap()
    page.locator("#sheet-close").tap()
    assert page.locator("#sheet.open").count() == 0
    send = page.locator("#send")
    assert send.get_attribute("data-new") == "2"
    assert "2 nouveaux" in send.inner_text()
    screenshot(page, "phone-3-main.png")

    # 4. send from the main screen: downloaded here (no share sheet), confirmed with the name
    with page.expect_download() as info:
        send.tap()
    download = info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    toast = page.locator("#toast").inner_text()
    assert download.suggested_filename in toast and "2 résultats" in toast
    assert re.fullmatch(rf"results-{tid}-\d{{4}}-\d\d-\d\d-\d{{4}}\.csv",
                        download.suggested_filename)
    assert send.get_attribute("data-new") == "0"
    screenshot(page, "phone-4-sent.png")
    page.locator("#toast-close").tap()

    # 5. "where am I": the position dot is drawn above the door markers
    page.locator("#locate").tap()
    page.wait_for_timeout(300)
    panes = page.evaluate(
        f"() => {{ const m = {MAP_JS}; return [getComputedStyle(m.getPane('kg-me')).zIndex,"
        " getComputedStyle(m.getPane('markerPane')).zIndex,"
        " m.getPane('kg-me').querySelectorAll('path').length]; }")
    assert int(panes[0]) > int(panes[1]) and panes[2] == 1
    screenshot(page, "phone-5-where.png")
    page.locator("#list").tap()  # the list: where to start, the walk, the doors in order
    assert page.locator("#start-geo").get_attribute("href").startswith("geo:")
    screenshot(page, "phone-6-list.png")

    # the sent state survives a reload; a new result counts as new again
    page.reload(wait_until="load")
    assert page.locator("#send").get_attribute("data-new") == "0"
    assert page.locator("#done-foot").inner_text() == "2"
    context.close()
    assert errors == []
    assert requests == []

    # 6. the field director imports the file
    code = main(["-q", "import", "--plan", str(folder), str(saved)])
    assert code == 0, capsys.readouterr().err
    with (folder / "results.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    got = {r[schema.ADDRESS_ID]: r for r in rows}
    assert set(got) == {str(d.index[0]), str(d.index[1])}
    assert got[str(d.index[0])]["result"] == "contacted"
    assert got[str(d.index[0])]["note"] == "chien, sonner deux fois"
    assert got[str(d.index[1])]["result"] == "not_home"


def test_results_go_through_the_share_sheet_when_the_phone_has_one(
    browser, plan: TurfPlan, folder: Path
) -> None:
    tid = _turf(plan)
    context, page, errors, _ = _phone(browser, folder / "maps" / f"{tid}.html")
    page.add_init_script("""
      window.__shared = null;
      navigator.canShare = d => !!(d && d.files && d.files.length);
      navigator.share = d => d.files[0].text().then(t => {
        window.__shared = {name: d.files[0].name, type: d.files[0].type, text: t}; });
    """)
    page.reload(wait_until="load")
    page.locator(".leaflet-marker-icon.kg-next").tap()
    page.locator('#codes button[data-code="refused"]').tap()
    page.locator("#sheet-close").tap()
    page.locator("#send").tap()
    page.wait_for_function("() => window.__shared !== null")
    shared = page.evaluate("() => window.__shared")
    toast = page.locator("#toast").inner_text()
    # a sent result cannot be cleared on the phone (the director has it), only replaced
    page.locator("#toast-close").tap()
    page.locator("#list").tap()
    page.locator('#panel li[data-result="refused"]').tap()
    assert "envoyé" in page.locator("#hint").inner_text()
    page.locator("#clear").tap()
    kept = page.locator("#toast").inner_text()
    assert page.locator('#panel li[data-result="refused"]').count() == 1
    context.close()
    assert "déjà envoyé" in kept
    assert errors == []
    assert shared["type"] == "text/csv"
    assert shared["name"] in toast and "partagé" in toast
    lines = shared["text"].splitlines()
    assert lines[0] == "id,turf_id,result,timestamp,canvasser,note"
    assert len(lines) == 2 and ",refused," in lines[1]


def test_phone_route_stays_visible_and_numbers_do_not_collide_on_every_turf(
    browser, plan: TurfPlan, folder: Path
) -> None:
    for tid in map(str, plan.turfs.index):
        context, page, errors, _ = _phone(browser, folder / "maps" / f"{tid}.html")
        boxes = page.evaluate(MARKERS_JS)
        # share of the route line on screen left uncovered by the markers' discs (every 4 px)
        free = page.evaluate("""() => {
          const boxes = [...document.querySelectorAll('.leaflet-marker-icon.kg-door > span')]
            .map(e => e.getBoundingClientRect());
          const map = document.getElementById('map').getBoundingClientRect();
          let n = 0, seen = 0;
          route.eachLayer(l => { const p = l._path, len = p.getTotalLength(),
                                       m = p.getScreenCTM();
            for (let s = 0; s < len; s += 4) {
              const q = p.getPointAtLength(s).matrixTransform(m);
              if (q.x < map.left || q.x > map.right || q.y < map.top || q.y > map.bottom) continue;
              n++;
              if (!boxes.some(b => q.x >= b.left && q.x <= b.right && q.y >= b.top &&
                                   q.y <= b.bottom)) seen++;
            } });
          return seen / n; }""")
        context.close()
        assert errors == []
        assert _overlaps(boxes) == [], tid
        assert all(b["w"] >= 44 for b in boxes)
        print(tid, f"route visible: {free:.0%}")
        assert free > 0.5, (tid, free)


def test_distances_are_labelled_alike_on_the_phone_and_the_walk_list(
    plan: TurfPlan, folder: Path
) -> None:
    from knockin_geo.maps import volunteer_map_html
    from knockin_geo.walklist import walk_list_html

    for tid in map(str, plan.turfs.index):
        t = plan.turfs.loc[tid]
        d = plan.doors[plan.doors[schema.TURF_ID] == tid]
        street_m = float(plan.routes.loc[tid, "length_m"])
        # what the walk means, re-measured: the route plus each door to the street and back
        door_xy = np.column_stack([d.geometry.x, d.geometry.y])
        access = 2 * np.hypot(*(door_xy - d[["snap_x", "snap_y"]].to_numpy(float)).T).sum()
        assert float(t["walk_m"]) == pytest.approx(street_m + access, abs=1.0)
        walk = f"Walk {float(t['walk_m']) / 1000:.1f} km including going to each door"
        along = f"of which {street_m / 1000:.1f} km along the streets (blue line)"
        phone = volunteer_map_html(plan, tid, lang="en")
        paper = walk_list_html(plan, tid, lang="en")
        for page in (phone, paper):
            assert walk in page and along in page
        assert f"walk {float(t['walk_m']) / 1000:.1f} km" in phone  # the bar's short form
    index = (folder / "walklists" / "index.html").read_text(encoding="utf-8")
    assert "Marche (km, portes comprises)" in index


def test_volunteer_files_say_where_to_start(plan: TurfPlan) -> None:
    from knockin_geo.maps import volunteer_map_html
    from knockin_geo.walklist import walk_list_html

    tid = _turf(plan)
    d, dw = _doors_wgs84(plan, tid)
    first = d.index[0]
    hostile = plan.doors.copy()
    hostile.loc[first, schema.STREET] = 'Rue <b>"du" & (Port)</b>'
    p2 = TurfPlan(hostile, plan.turfs, plan.routes, plan.precincts, plan.report, plan.params,
                  plan.network)
    lat, lon = f"{dw.geometry.iloc[0].y:.6f}", f"{dw.geometry.iloc[0].x:.6f}"
    number = str(d[schema.HOUSENUMBER].iloc[0])
    for page in (volunteer_map_html(p2, tid, lang="fr"), walk_list_html(p2, tid, lang="fr")):
        m = re.search(r'href="(geo:[^"]+)"', page)
        assert m is not None
        uri = m.group(1).replace("&amp;", "&")
        assert uri.startswith(f"geo:{lat},{lon}?q={lat},{lon}(")
        label = uri[uri.index("(") + 1:-1]
        assert re.fullmatch(r"[A-Za-z0-9%._~-]+", label)  # percent-encoded, one pair of ()
        assert f"{number} Rue &lt;b&gt;" in page  # the address, escaped
        assert "<b>\"du\"" not in page
    paper = walk_list_html(plan, tid, lang="fr")
    svg_label = re.search(r'<text class="start-label"[^>]*>([^<]+)</text>', paper)
    assert svg_label is not None and svg_label.group(1).startswith(number)
    start = shapely.Point(float(d["snap_x"].iloc[0]), float(d["snap_y"].iloc[0]))
    assert start.distance(d.geometry.iloc[0]) < 200  # the start door is near its street


def test_walk_list_fits_a_phone_and_prints_unchanged(browser, plan: TurfPlan,
                                                     folder: Path) -> None:
    tid = _turf(plan)
    path = folder / "walklists" / f"{tid}.html"
    context, page, errors, _ = open_offline(browser, path, 360, 740, is_mobile=True,
                                            has_touch=True)
    fit = page.evaluate("""() => ({
      page: document.documentElement.scrollWidth,
      heads: [...document.querySelectorAll('thead th')].map(e => {
        const r = e.getBoundingClientRect(); return [e.textContent, r.left, r.right]; }),
    })""")
    screenshot(page, "walklist-phone-top.png")
    page.evaluate("document.querySelector('table').scrollIntoView()")
    screenshot(page, "walklist-phone.png")
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    modes = page.evaluate(
        "() => [...document.querySelectorAll('thead th')].map(e => getComputedStyle(e)"
        ".writingMode)")
    link_on_paper = page.evaluate("getComputedStyle(document.querySelector('a.geo')).display")
    context.close()
    assert link_on_paper == "none"  # paper keeps the address, not a link
    assert errors == []
    assert fit["page"] <= 360
    names = [h[0] for h in fit["heads"]]
    for name in ("Déménagé", "Repasser", "Notes"):
        assert name in names
    assert all(right <= 360 for _, _, right in fit["heads"]), fit["heads"]
    notes = next(h for h in fit["heads"] if h[0] == "Notes")
    assert notes[2] - notes[1] >= 40  # room to write
    assert set(modes) == {"horizontal-tb"}  # print keeps its A4 layout


def test_volunteer_files_are_the_same_bytes_twice(plan: TurfPlan) -> None:
    from knockin_geo.maps import volunteer_page
    from knockin_geo.walklist import walk_list_html

    tid = _turf(plan)
    for lang in ("fr", "en"):
        assert volunteer_page(plan, tid, lang=lang) == volunteer_page(plan, tid, lang=lang)
        assert walk_list_html(plan, tid, lang=lang) == walk_list_html(plan, tid, lang=lang)
