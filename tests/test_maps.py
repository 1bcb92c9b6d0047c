"""The director map and the volunteer maps, opened as a person would: headless Chromium, offline.

Chromium comes from Debian (``apt-get install chromium``, done by ``.ci/run``) and is driven by
Playwright. Screenshots land in ``tests/artifacts/`` for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import open_offline, screenshot

from knockin_geo import io, schema, streets
from knockin_geo.maps import director_map, turf_colors, volunteer_map_html, write_maps
from knockin_geo.plan import TurfPlan, covered_precincts, plan_turfs

NANTES = Path(__file__).resolve().parents[1] / "data" / "nantes"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

COUNT_JS = """() => {
  const m = Object.values(window).find(v => v instanceof L.Map);
  let turfs = 0, doors = 0, unassigned = 0, routes = 0;
  m.eachLayer(l => {
    if (l.kgKind === 'door') doors += l.kgCount;
    if (l.kgKind === 'unassigned') unassigned += l.kgCount;
    const p = l.feature && l.feature.properties;
    if (!p) return;
    if (l instanceof L.Polygon && p.turf_id && 'doors' in p) turfs++;
    else if (l instanceof L.Polyline && !(l instanceof L.Polygon) && 'length_m' in p) routes++;
  });
  return {turfs, doors, unassigned, routes};
}"""


@pytest.fixture(scope="module")
def plan() -> TurfPlan:
    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(NANTES / "addresses" / "adresses_nantes_commune_2013.csv")
    # personal data that must never reach a map
    doors = doors.assign(first_name="Zyxwvut", phone="+33 6 98 76 54 32", email="zyx@example.org")
    net = streets.load_network(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf", cache=False)
    return plan_turfs(doors, net, precincts=precincts, universe=covered_precincts(precincts, net))


@pytest.fixture(scope="module")
def written(plan: TurfPlan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("maps")
    write_maps(plan, out, lang="fr")
    return out


def test_turf_colours_differ_between_neighbours(plan: TurfPlan) -> None:
    colors = turf_colors(plan.turfs)
    t = plan.turfs
    geoms = t.geometry.buffer(15)
    for i, a in enumerate(t.index):
        for j in range(i + 1, len(t)):
            if geoms.iloc[i].intersects(geoms.iloc[j]):
                assert colors[a] != colors[t.index[j]], (a, t.index[j])


def test_director_map_offline(browser, plan: TurfPlan, written: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    context, page, errors, requests = open_offline(browser, written / "map.html", 1300, 900)
    counts = page.evaluate(COUNT_JS)
    screenshot(page, "director-map.png")
    context.close()
    assert errors == []
    assert requests == []  # nothing fetched: no CDN, tiles off by default
    assigned = plan.doors[schema.TURF_ID].notna()
    assert counts["turfs"] == len(plan.turfs)
    assert counts["doors"] == int(assigned.sum())
    assert counts["routes"] == len(plan.routes)
    shown_unassigned = (~assigned & (plan.doors[schema.STATUS] != "not_in_universe")).sum()
    assert counts["unassigned"] == int(shown_unassigned)
    html = (written / "map.html").read_text(encoding="utf-8")
    assert "leaflet-control-scale" in html or "control_scale" in html or "L.control.scale" in html


def test_volunteer_map_offline_on_a_phone(browser, plan: TurfPlan, written: Path) -> None:
    tid = plan.turfs.index[0]
    n = int((plan.doors[schema.TURF_ID] == tid).sum())
    context, page, errors, requests = open_offline(
        browser, written / "maps" / f"{tid}.html", 390, 760,
        geolocation={"latitude": 47.2125, "longitude": -1.5600}, permissions=["geolocation"],
        is_mobile=True, has_touch=True,
    )
    grouped = page.evaluate(
        "() => [...document.querySelectorAll('.leaflet-marker-icon.kg-door')].map("
        "e => 1 + Number((e.querySelector('i') || {textContent: '0'}).textContent))")
    assert sum(grouped) == n  # every door: its own marker or in a nearer one's "+k"
    page.screenshot(path=str(ARTIFACTS / "volunteer_map.png"))
    page.click("#list")
    rows = page.locator("#panel li:not(.street)")
    assert rows.count() == n
    assert rows.first.locator("b").inner_text() == "1"
    page.screenshot(path=str(ARTIFACTS / "volunteer_map_list.png"))
    page.click("#list")
    page.click("#locate")
    page.wait_for_timeout(300)
    located = page.evaluate(
        "() => { let k = 0; const m = Object.values(window).find(v => v instanceof L.Map);"
        " m.eachLayer(l => { if (l instanceof L.Circle) k++; }); return k; }"
    )
    context.close()
    assert located == 1
    assert errors == []
    assert requests == []
    # touch targets: the buttons are at least 44 px
    html = (written / "maps" / f"{tid}.html").read_text(encoding="utf-8")
    assert "min-height: 44px" in html


def test_maps_carry_no_personal_data(plan: TurfPlan, written: Path) -> None:
    for path in [written / "map.html", *sorted((written / "maps").iterdir())]:
        data = path.read_bytes()
        for secret in (b"Zyxwvut", b"98 76 54 32", b"zyx@example.org"):
            assert secret not in data, path.name


def test_volunteer_map_holds_only_its_turf(plan: TurfPlan) -> None:
    tid, other = plan.turfs.index[:2]
    html = volunteer_map_html(plan, tid)
    mine = plan.doors[plan.doors[schema.TURF_ID] == tid]
    others = plan.doors[plan.doors[schema.TURF_ID] == other]
    assert f'"{tid}' not in html or tid in html
    only_other = set(others[schema.STREET]) - set(mine[schema.STREET])
    for street in list(only_other)[:5]:
        assert f'"street":"{street}"' not in html


def test_director_map_is_deterministic(plan: TurfPlan, tmp_path: Path) -> None:
    from knockin_geo.maps import save_map

    a = save_map(director_map(plan), tmp_path / "a.html").read_bytes()
    b = save_map(director_map(plan), tmp_path / "b.html").read_bytes()
    assert a == b


def test_director_map_labels_each_distance(plan: TurfPlan, tmp_path: Path) -> None:
    # one figure per meaning: the turf popup's walk and the route's line are named, not "km"/"m"
    from knockin_geo.maps import save_map

    html = save_map(director_map(plan), tmp_path / "m.html").read_text(encoding="utf-8")
    assert "walk km (incl. going to each door)" in html
    assert "route line along the streets (m)" in html
    assert '"turf", "m"' not in html and '"turf","m"' not in html


def test_choropleth_offline(browser, tmp_path: Path) -> None:
    from knockin_geo import target
    from knockin_geo.maps import choropleth_map, save_map

    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    ind = target.indicators(
        target.read_results(NANTES / "results" / "municipales2014_t1_par_bureau.csv")
    )
    joined, _ = target.join_results(precincts, ind)
    scored = target.score(joined, "mobilisation", support="rolland")
    path = save_map(
        choropleth_map(scored, "score", scheme="natural_breaks", tooltip_fields=("rank",)),
        tmp_path / "choropleth.html",
    )
    ARTIFACTS.mkdir(exist_ok=True)
    context, page, errors, requests = open_offline(browser, path, 1100, 900)
    n = page.evaluate(
        "() => { const m = Object.values(window).find(v => v instanceof L.Map); let k = 0;"
        " m.eachLayer(l => { if (l instanceof L.Polygon && l.feature) k++; }); return k; }"
    )
    page.screenshot(path=str(ARTIFACTS / "choropleth.png"))
    context.close()
    assert errors == []
    assert requests == []
    assert n == 209


LABELS_JS = """() => [...document.querySelectorAll('.kg-turf-label')].map(e => {
  const r = e.getBoundingClientRect();
  return {id: e.textContent, shown: getComputedStyle(e).visibility !== 'hidden',
          x: r.left, y: r.top, w: r.width, h: r.height};
})"""


def _set_zoom(page, z: float) -> None:
    page.evaluate("z => { Object.values(window).find(v => v instanceof L.Map)"
                  ".setZoom(z, {animate: false}); }", z)
    page.wait_for_timeout(100)


def test_director_map_turf_labels_never_collide(browser, written: Path) -> None:
    context, page, errors, _ = open_offline(browser, written / "map.html", 1300, 900)
    seen = {}
    for z in (12, 13, 14, 15, 16):
        _set_zoom(page, z)
        labels = page.evaluate(LABELS_JS)
        shown = [b for b in labels if b["shown"]]
        for i, a in enumerate(shown):
            for b in shown[i + 1:]:
                apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                         or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
                assert apart, (z, a["id"], b["id"])
        seen[z] = len(shown)
    context.close()
    assert errors == []
    n = len(labels)
    assert seen[12] < n  # zoomed out, some labels give way...
    assert seen[16] > seen[12]  # ...and come back when there is room
    counts = list(seen.values())
    assert counts == sorted(counts)


def test_priority_legend_shows_only_with_its_layer(browser, plan: TurfPlan,
                                                   tmp_path: Path) -> None:
    import dataclasses

    from knockin_geo import target
    from knockin_geo.maps import save_map

    ind = target.indicators(
        target.read_results(NANTES / "results" / "municipales2014_t1_par_bureau.csv"))
    joined, _ = target.join_results(plan.precincts, ind)
    scored = target.score(joined, "mobilisation", support="rolland")
    path = save_map(director_map(dataclasses.replace(plan, precincts=scored)),
                    tmp_path / "map.html")
    context, page, errors, _ = open_offline(browser, path, 1300, 900)
    legend = page.locator(".kg-legend")
    box = page.locator(".leaflet-control-layers-overlays label", has_text="Priority score")
    states = [legend.is_visible()]
    box.locator("input").check()
    states.append(legend.is_visible())
    box.locator("input").uncheck()
    states.append(legend.is_visible())
    context.close()
    assert errors == []
    assert states == [False, True, False]


TIP_JS = """([kind, i]) => {
  const m = Object.values(window).find(v => v instanceof L.Map);
  let layer = null;
  m.eachLayer(l => { if (l.kgKind === kind) layer = l; });
  const ll = layer.kgLatLng(i), p = m.latLngToContainerPoint(ll);
  const box = m.getContainer().getBoundingClientRect();
  return {lat: ll.lat, lon: ll.lng, x: box.left + p.x, y: box.top + p.y};
}"""

SHOWN_TIP_JS = """() => {
  const tips = document.querySelectorAll('.kg-point-tip');
  if (tips.length !== 1) return {count: tips.length};
  const rows = [...tips[0].querySelectorAll('tr')].map(r => [r.cells[0].textContent,
                                                             r.cells[1].textContent]);
  return {count: 1, rows, tags: tips[0].querySelectorAll('img,script').length};
}"""


def test_barrier_span_tooltips_show_input_text_as_text(browser, plan: TurfPlan,
                                                       tmp_path: Path) -> None:
    # barrier names come from OpenStreetMap: folium puts tooltip text in a JS template literal,
    # so a backtick or ${...} in a name must not run either
    import copy
    import dataclasses

    from knockin_geo.maps import save_map

    x, y = plan.doors.to_crs(4326).geometry.iloc[0].coords[0]
    report = copy.deepcopy(plan.report)
    report["problems"] = [{schema.TURF_ID: "T1", "crossing": {"lat": y, "lon": x},
                           "problem": "spans a barrier (primary '`${window.kgPwned=1}`')",
                           "why": '<img src=x onerror="window.kgPwned=2">', "unavoidable": True}]
    path = save_map(director_map(dataclasses.replace(plan, report=report)), tmp_path / "m.html")
    context, page, errors, _ = open_offline(browser, path, 1300, 900)
    page.evaluate("""() => { for (const k in window) { const o = window[k];
        if (o && o.openTooltip && o.getTooltip && o.getTooltip()) o.openTooltip(); } }""")
    text = page.evaluate("() => [...document.querySelectorAll('.leaflet-tooltip')]"
                         ".map(t => t.textContent).join('|')")
    assert page.evaluate("() => window.kgPwned") is None
    assert "${window.kgPwned=1}" in text and "onerror" in text
    assert not errors
    context.close()


def test_director_map_door_tooltips_show_input_text_as_text(browser, plan: TurfPlan,
                                                           tmp_path: Path) -> None:
    import dataclasses

    from knockin_geo.maps import save_map

    hostile = '<img src=x onerror="window.kgPwned=1">Rue & "Cie"'
    doors = plan.doors.copy()
    assigned = doors.index[doors[schema.TURF_ID].notna()]
    left_out = doors.index[doors[schema.TURF_ID].isna()
                           & (doors[schema.STATUS] != "not_in_universe")]
    doors.loc[[assigned[5], left_out[0]], schema.STREET] = hostile
    path = save_map(director_map(dataclasses.replace(plan, doors=doors)), tmp_path / "map.html")
    context, page, errors, _ = open_offline(browser, path, 1300, 900)
    # the layers' points are in the order of the plan's doors; the mouse over a door shows its
    # tooltip (the door is drawn alone in the middle of the map, zoomed in)
    tips = {}
    for kind, i in (("door", 5), ("unassigned", 0)):
        page.evaluate("""([kind, i]) => {
          const m = Object.values(window).find(v => v instanceof L.Map);
          m.eachLayer(l => { if (l.kgKind === kind) m.setView(l.kgLatLng(i), 20,
                                                             {animate: false}); });
        }""", [kind, i])
        page.wait_for_timeout(200)
        where = page.evaluate(TIP_JS, [kind, i])
        page.mouse.move(where["x"], where["y"])
        page.wait_for_timeout(200)
        tips[kind] = {**where, **page.evaluate(SHOWN_TIP_JS)}
        page.mouse.move(5, 5)
        page.wait_for_timeout(100)
    pwned = page.evaluate("() => window.kgPwned === undefined")
    context.close()
    assert errors == []
    assert pwned
    row = doors.loc[assigned[5]]
    door = tips["door"]
    assert door["count"] == 1
    assert door["tags"] == 0
    assert dict(door["rows"]) == {
        "turf": str(row[schema.TURF_ID]), "order": str(int(row[schema.SEQ])),
        "no.": str(row[schema.HOUSENUMBER]), "street": hostile,
    }
    pt = gpd_point_wgs84(doors.loc[[assigned[5]]])
    assert abs(door["lon"] - pt[0]) < 2e-6 and abs(door["lat"] - pt[1]) < 2e-6
    out = dict(tips["unassigned"]["rows"])
    status = doors.loc[left_out[0], schema.STATUS]
    assert out["status"] == status
    assert out["why"] == schema.ADDRESS_STATUSES[status]
    assert out["street"] == hostile
    assert tips["unassigned"]["tags"] == 0


def gpd_point_wgs84(frame) -> tuple[float, float]:
    g = frame.to_crs(4326).geometry.iloc[0]
    return g.x, g.y


def test_volunteer_files_same_bytes_with_one_or_two_workers(plan: TurfPlan,
                                                            tmp_path: Path) -> None:
    from knockin_geo.walklist import walk_lists

    trees = []
    for workers in (1, 2):
        out = tmp_path / f"workers{workers}"
        write_maps(plan, out, lang="en", workers=workers)
        walk_lists(plan, out / "walklists", lang="en", workers=workers)
        trees.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.html"))})
    one, two = trees
    assert len(one) == 2 * len(plan.turfs) + 2  # phone maps, walk lists, map.html, index.html
    assert one.keys() == two.keys()
    assert [p for p in one if one[p] != two[p]] == []


def test_turf_pages_compile_no_template_and_build_no_index_per_turf(
    plan: TurfPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jinja2
    import shapely

    from knockin_geo.walklist import walk_list_html

    tids = [str(t) for t in plan.turfs.index[:4]]
    volunteer_map_html(plan, tids[0])  # the first page may compile and index
    walk_list_html(plan, tids[0])
    counts = {"compile": 0, "tree": 0}
    compile_ = jinja2.Environment._compile

    def counted_compile(self, *args, **kwargs):
        counts["compile"] += 1
        return compile_(self, *args, **kwargs)

    class CountedTree(shapely.STRtree):
        def __init__(self, *args, **kwargs) -> None:
            counts["tree"] += 1
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "_compile", counted_compile)
    monkeypatch.setattr(shapely, "STRtree", CountedTree)
    pages = [(volunteer_map_html(plan, t), walk_list_html(plan, t)) for t in tids[1:]]
    assert counts == {"compile": 0, "tree": 0}
    assert all(f"{t}" in phone and f"{t}" in paper for t, (phone, paper) in zip(tids[1:], pages,
                                                                                  strict=True))


def test_cut_writes_the_same_files_with_one_or_two_workers(tmp_path: Path) -> None:
    """Routing, walk lists and phone maps on a pool: every file the same bytes (but the run's
    durations and audit time)."""
    from knockin_geo.cli.main import main

    args = ["-q", "cut",
            "--precincts", str(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson"),
            "--addresses", str(NANTES / "addresses" / "adresses_nantes_centre_2013_osmbbox.csv"),
            "--network", str(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf"),
            "--universe", "0101,0301,0319", "--doors-per-turf", "40"]
    trees = []
    for workers in ("1", "2"):
        out = tmp_path / workers
        assert main([*args, "--workers", workers, "--out", str(out)]) == 0
        trees.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*"))
                      if p.is_file() and p.name not in ("timings.json", "audit.jsonl")})
    one, two = trees
    assert len([p for p in one if p.parts[0] == "maps"]) >= 10  # enough turfs for a pool
    assert one.keys() == two.keys()
    assert [str(p) for p in one if one[p] != two[p]] == []


def test_geojson_layer_writes_the_page_folium_writes_without_compiling_its_data() -> None:
    """``GeoJsonLayer`` only skips branca's second Jinja pass over the layer's script.

    The same layer (style, tooltip, popup, one feature per geometry type) gives the same page
    as ``folium.GeoJson``; text that Jinja would run (``{{ 6*7 }}``: Python at build time) is
    written as it is, where folium's second pass runs it.
    """
    import folium

    from knockin_geo.maps import GeoJsonLayer, page_html

    def page(layer_class: type, text: str, marker: bool = False) -> str:
        data = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": text, "color": "#123456"},
             "geometry": geometry}
            for geometry in (
                {"type": "Point", "coordinates": [1.5, 47.2]},
                {"type": "LineString", "coordinates": [[1.5, 47.2], [1.6, 47.3]]},
                {"type": "Polygon", "coordinates": [[[1, 47], [2, 47], [2, 48], [1, 47]]]},
            )
        ]}
        m = folium.Map(location=[47.2, 1.5], tiles=None)
        layer_class(
            data, name="Layer",
            style_function=lambda f: {"color": f["properties"]["color"], "weight": 2},
            tooltip=folium.GeoJsonTooltip(["name"]),
            popup=folium.GeoJsonPopup(["name"]),
            **({"marker": folium.CircleMarker(radius=2, fill=True)} if marker else {}),
        ).add_to(m)
        folium.LayerControl().add_to(m)
        return page_html(m)

    assert page(GeoJsonLayer, "Rue de la Paix") == page(folium.GeoJson, "Rue de la Paix")
    # points drawn as circle markers (the campaign map's doors): the marker's script too
    assert (page(GeoJsonLayer, "Rue", marker=True)
            == page(folium.GeoJson, "Rue", marker=True))
    assert "{{ 6*7 }}kg" in page(GeoJsonLayer, "{{ 6*7 }}kg")
    assert "42kg" in page(folium.GeoJson, "{{ 6*7 }}kg")  # what the second pass did


def test_director_map_keeps_address_ids_that_look_like_element_ids(plan: TurfPlan,
                                                                    tmp_path: Path) -> None:
    """Address ids made of 32 hex digits (an MD5 sum, a UUID without dashes) reach the map as
    they are: only folium's own element ids are renumbered, not data that looks like one."""
    import dataclasses

    from knockin_geo.maps import save_map

    doors = plan.doors
    first = doors.index[doors[schema.TURF_ID].notna()][0]
    hex_id = "0123456789abcdef0123456789abcdef"
    doors = doors.rename(index={first: hex_id})
    html = save_map(director_map(dataclasses.replace(plan, doors=doors)),
                    tmp_path / "map.html").read_text(encoding="utf-8")
    assert hex_id in html
    assert "var map_00000000000000000000000000000000" in html  # folium's ids still renumbered
