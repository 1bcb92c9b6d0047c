"""Hostile input: script payloads in every text column never run in any HTML we write.

Address files come from open data and OpenStreetMap, which anyone can edit; precinct files,
results files and canvasser files pass through many hands. The payloads below are planted in
every text column of real Nantes inputs (two precincts), then ``cut`` (with canvassers),
``target`` and ``batch`` run on them, and every HTML file written is opened in headless
Chromium: every door, turf, precinct and route is hovered and clicked (tooltips and popups
rendered), the phone maps' doors are tapped, and the page must never have run a payload
(``window.__pwned`` stays undefined, no dialog opened), while the payload text is shown as text.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from conftest import NANTES, nantes_within, open_offline
from knockin_geo.cli.main import main

PBF = NANTES / "osm" / "nantes_centre_2014-09.osm.pbf"
RESULTS = NANTES / "results" / "municipales2014_t1_par_bureau.csv"

#: One payload per way of breaking out: element, script, attribute, JS template literal.
PAYLOADS = (
    "<img src=x onerror=window.__pwned=1>",
    "<script>window.__pwned=2</script>",
    '"><svg onload=window.__pwned=3>',
    "'><img src=y onerror=window.__pwned=4>",
    "`${window.__pwned=5}`",
    "</script><script>window.__pwned=6</script>",
    # folium (branca) compiles each element's text as a Jinja template again: this would read
    # "42kgjinja42" in a page had it run as template code (Python code, at build time)
    "{{ 6*7 }}kgjinja{{ 6*7 }}{# c #}",
)
#: Precinct ids (they become turf ids, file names and tooltip text).
PRECINCT_IDS = {"0101": "0101" + PAYLOADS[0], "0102": "0102" + PAYLOADS[2]}


def _payload(i: int) -> str:
    return PAYLOADS[i % len(PAYLOADS)]


def _hostile_inputs(folder: Path) -> dict[str, Path]:
    """Write hostile precinct, address, canvasser, results and campaign files into ``folder``."""
    pr, a = nantes_within(PRECINCT_IDS)
    pr["nom"] = [f"{n} {_payload(i + 1)}" for i, n in enumerate(pr["nom"])]
    pr["code_bv"] = pr["code_bv"].map(PRECINCT_IDS)
    precincts = folder / "precincts.geojson"
    pr.to_file(precincts, driver="GeoJSON")

    n = len(a)
    addresses = pd.DataFrame({
        "address_id": [f"{x}{_payload(i) if i % 7 == 0 else ''}" for i, x in
                       enumerate(a["addr_id"])],
        "housenumber": [f"{x}{_payload(i + 1) if i % 3 == 0 else ''}" for i, x in
                        enumerate(a["numero"])],
        "street": [f"{x} {_payload(i)}" for i, x in enumerate(a["adresse"].str.split(" ", n=1)
                                                             .str[1])],
        "unit": [_payload(i + 2) if i % 4 == 0 else "" for i in range(n)],
        "city": [f"NANTES {_payload(i + 3)}" for i in range(n)],
        "postcode": [f"44000{_payload(i + 4)}" if i % 5 == 0 else "44000" for i in range(n)],
        "lon": a["lon"],
        "lat": a["lat"],
    })
    addr = folder / "addresses.csv"
    addresses.to_csv(addr, index=False)

    canvassers = folder / "canvassers.csv"
    pd.DataFrame({
        "canvasser_id": [f"V{i}{p}" for i, p in enumerate(PAYLOADS[:3])],
        "name": [f"Bénévole {p}" for p in PAYLOADS[3:6]],
        "team": list(PAYLOADS[:3]),
        "capacity": [3, 3, 3],
    }).to_csv(canvassers, index=False)

    res = pd.read_csv(RESULTS, dtype={"code_bv": str})
    res = res[res["code_bv"].isin(PRECINCT_IDS)].copy()
    res["code_bv"] = res["code_bv"].map(PRECINCT_IDS)
    res = res.rename(columns={"gobet": "gobet" + PAYLOADS[0], "chiron": PAYLOADS[2]})
    results = folder / "results.csv"
    res.to_csv(results, index=False)

    campaign = folder / "campaign.toml"
    campaign.write_text(
        "[[areas]]\n"
        'name = "hostile"\n'
        f"precincts = {json.dumps(str(precincts))}\n"
        f"addresses = {json.dumps(str(addr))}\n"
        f"network = {json.dumps(str(PBF))}\n"
        "doors_per_turf = 60\n",
        encoding="utf-8",
    )
    return {"precincts": precincts, "addresses": addr, "canvassers": canvassers,
            "results": results, "campaign": campaign}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run cut, target and batch on the hostile inputs; return the input and output folders."""
    root = tmp_path_factory.mktemp("hostile")
    mp = pytest.MonkeyPatch()
    mp.setenv("KNOCKIN_GEO_CACHE", str(root / "cache"))
    try:
        files = _hostile_inputs(root)
        cut = root / "cut"
        assert main(["-q", "cut", "--precincts", str(files["precincts"]),
                     "--addresses", str(files["addresses"]), "--network", str(PBF),
                     "--doors-per-turf", "60", "--canvassers", str(files["canvassers"]),
                     "--out", str(cut)]) == 0
        target = root / "target"
        assert main(["-q", "target", "--precincts", str(files["precincts"]),
                     "--results", str(files["results"]), "--score", "mobilisation",
                     "--support", "rolland", "--top", "2", "--out", str(target)]) == 0
        batch = root / "batch"
        assert main(["-q", "batch", str(files["campaign"]), "--out", str(batch)]) == 0
    finally:
        mp.undo()
    return {**files, "cut": cut, "target": target, "batch": batch}


#: Hover and click every feature of every Leaflet map of the page (tooltips and popups render
#: their content then); returns how many features were triggered.
_TRIGGER_ALL = """() => {
  let n = 0;
  const maps = Object.keys(window).map(k => window[k]).filter(v => v instanceof L.Map);
  for (const m of maps) {
    const visit = layer => {
      if (layer.eachLayer) { layer.eachLayer(visit); }
      let ll = null;
      if (layer.getLatLng) { ll = layer.getLatLng(); }
      else if (layer.getBounds) { ll = layer.getBounds().getCenter(); }
      if (ll === null) { return; }
      const ev = {latlng: ll, layerPoint: m.latLngToLayerPoint(ll),
                  containerPoint: m.latLngToContainerPoint(ll)};
      layer.fire("mouseover", ev, true);
      layer.fire("click", ev, true);
      n += 1;
    };
    m.eachLayer(visit);
  }
  return n;
}"""

#: Where the first door of the director map is, in page pixels (for a real mouse hover).
_FIRST_DOOR = """() => {
  const m = Object.keys(window).map(k => window[k]).find(v => v instanceof L.Map);
  let doors = null;
  m.eachLayer(l => { if (l.kgKind === "door" && l.kgCount > 0) { doors = l; } });
  if (!doors) { return null; }
  m.setView(doors.kgLatLng(0), 18, {animate: false});
  const p = m.latLngToContainerPoint(doors.kgLatLng(0));
  const r = m.getContainer().getBoundingClientRect();
  return [r.left + p.x, r.top + p.y];
}"""


def _html_files(hostile: dict[str, Path]) -> list[Path]:
    files = sorted(hostile["cut"].rglob("*.html")) + sorted(hostile["target"].rglob("*.html"))
    files += [hostile["batch"] / "campaign_map.html", hostile["batch"] / "hostile" / "map.html"]
    return files


def _open_and_poke(browser, path: Path) -> tuple[object, int, str, list[str]]:
    """Open a page offline, trigger everything; return (__pwned, features, text, dialogs)."""
    dialogs: list[str] = []
    context, page, _errors, _ = open_offline(browser, path)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        n = 0
        if page.evaluate("() => typeof L !== 'undefined'"):
            n = page.evaluate(_TRIGGER_ALL)
        for sel in (".kg-door", "#list", "#panel li[data-door]"):  # phone map: doors, list
            loc = page.locator(sel)
            for i in range(min(loc.count(), 5)):  # a tap, wherever the map has panned to
                loc.nth(i).evaluate("e => e.click()")
        page.wait_for_timeout(400)  # image errors and onload handlers run asynchronously
        pwned = page.evaluate("() => window.__pwned")
        text = page.evaluate("() => document.body ? document.body.innerText : ''")
    finally:
        context.close()
    return pwned, n, text, dialogs


def test_payloads_reach_every_kind_of_output(hostile: dict[str, Path]) -> None:
    """The test is meaningful: the payloads made it through reading and cutting."""
    doors = gpd.read_file(hostile["cut"] / "plan.gpkg", layer="doors")
    assert (doors["status"] == "assigned").sum() > 100
    assert doors["street"].str.contains("onerror", regex=False).any()
    assert doors["street"].str.contains("kgjinja", regex=False).any()
    assert set(doors["precinct_id"].dropna()) == set(PRECINCT_IDS.values())
    names = {p.name for p in _html_files(hostile)}
    assert {"map.html", "index.html", "choropleth.html", "campaign_map.html"} <= names
    assert len(list((hostile["cut"] / "maps").glob("*.html"))) >= 2
    assert len(list((hostile["cut"] / "packets").rglob("*.html"))) >= 2


def test_no_payload_runs_in_any_html(browser, hostile: dict[str, Path]) -> None:
    ran, silent = {}, []
    for path in _html_files(hostile):
        pwned, n, text, dialogs = _open_and_poke(browser, path)
        name = str(path.relative_to(path.parents[1]))
        if pwned is not None or dialogs:
            ran[name] = (pwned, dialogs)
        assert "42kgjinja" not in path.read_text(encoding="utf-8"), path
        if path.name in ("map.html", "campaign_map.html", "choropleth.html"):
            assert n > 0, path  # every feature was hovered and clicked
        # every page shows the payloads as text (walk lists, phone maps, tooltips, popups)
        if not ("onerror=window.__pwned" in text or "onload=window.__pwned" in text):
            silent.append(name)
    assert ran == {}
    assert silent == []


def test_hovering_a_door_shows_its_street_as_text(browser, hostile: dict[str, Path]) -> None:
    """A real mouse hover over a door of the director map (canvas hit-testing, as a person)."""
    context, page, _errors, _ = open_offline(browser, hostile["cut"] / "map.html")
    try:
        xy = page.evaluate(_FIRST_DOOR)
        assert xy is not None
        page.wait_for_timeout(300)
        for dx in (12, 6, 2, 0):  # approach the door as a mouse does
            page.mouse.move(xy[0] + dx, xy[1])
            page.wait_for_timeout(100)
        page.wait_for_selector(".leaflet-tooltip", timeout=5000)
        page.wait_for_timeout(300)
        tip = page.locator(".leaflet-tooltip").first.inner_text()
        assert any(p in tip for p in PAYLOADS), tip
        assert page.evaluate("() => window.__pwned") is None
    finally:
        context.close()
