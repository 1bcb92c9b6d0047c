"""The director map's edit mode (issue 17), clicked through as a director would: headless Chromium.

On the Nantes demo plan: open ``map.html`` offline, switch on "Edit turfs", move one door by
clicking it ("this door"), move one side of a street, lock the target turf, save, and compare the
downloaded ``edits.json`` with the edits written here by hand from the plan's data. A lasso is
drawn too, its doors checked against a point-in-polygon test in Python. Once
``knockin_geo.edits`` exists, the saved file is applied with the CLI and the same edits in
Python, and the two plans written must have the same bytes.

With ``KNOCKIN_DOCS_IMG=1`` the screenshots of ``docs/guide/editing.md`` are refreshed.
"""

from __future__ import annotations

import dataclasses
import filecmp
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import open_offline, screenshot
from knockin_geo.cli.main import main

from knockin_geo import schema
from knockin_geo.mapedit import edit_data
from knockin_geo.maps import director_map, save_map
from knockin_geo.model import TurfPlan
from knockin_geo.plan import write_plan
from knockin_geo.planfile import read_plan

#: The map's door layer, and the pixel (in the page) of its door ``i`` after centring on it.
CENTRE_JS = """([i, zoom]) => {
  const m = Object.values(window).find(v => v instanceof L.Map);
  let lay; m.eachLayer(l => { if (l.kgKind === 'door') lay = l; });
  m.setView(lay.kgLatLng(i), zoom, {animate: false});
}"""
WHERE_JS = """(i) => {
  const m = Object.values(window).find(v => v instanceof L.Map);
  let lay; m.eachLayer(l => { if (l.kgKind === 'door') lay = l; });
  const p = m.latLngToContainerPoint(lay.kgLatLng(i)), r = m.getContainer().getBoundingClientRect();
  return {x: p.x + r.left, y: p.y + r.top, ids: lay._d.ids, s: lay._d.s};
}"""
#: The geographic position of page pixels (to test the lasso's doors in Python).
LATLNG_JS = """(pts) => {
  const m = Object.values(window).find(v => v instanceof L.Map);
  const r = m.getContainer().getBoundingClientRect();
  return pts.map(p => { const ll = m.containerPointToLatLng([p[0] - r.left, p[1] - r.top]);
                        return [ll.lng, ll.lat]; });
}"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "plan"
    assert main(["demo", "--out", str(out), "--lang", "en"]) == 0
    return out


@pytest.fixture(scope="module")
def plan(demo: Path) -> TurfPlan:
    return read_plan(demo)


def _norm(street: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", street)).strip().casefold()


def _parity(number: Any) -> str | None:
    m = re.match(r"\s*(\d+)", str(number))
    return None if m is None else ("odd" if int(m.group(1)) % 2 else "even")


def _alone(assigned: gpd.GeoDataFrame, gap_m: float = 4.0) -> np.ndarray:
    """Doors with no other door within ``gap_m`` (a click at zoom 19 picks them alone)."""
    xy = shapely.get_coordinates(assigned.geometry.to_numpy())
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1) > gap_m


def _pick(plan: TurfPlan) -> dict[str, Any]:
    """Choose the edits: door A of turf X to Y ("this door"), then B's side of its street in X
    to Y (a side of two doors or more), then lock Y; X and Y neighbours in one precinct."""
    a = plan.doors[plan.doors[schema.TURF_ID].notna()]
    alone = _alone(a)
    tid = a[schema.TURF_ID].astype(str).to_numpy()
    keys = a[schema.STREET].astype(str).map(_norm).to_numpy()
    par = np.array([_parity(x) for x in a[schema.HOUSENUMBER]], dtype=object)
    turfs = plan.turfs
    for x in sorted(turfs.index.astype(str)):
        pr = turfs.loc[x, schema.PRECINCT_ID]
        others = [t for t in turfs.index[turfs[schema.PRECINCT_ID] == pr].astype(str) if t != x]
        if not others:
            continue
        in_x = np.flatnonzero((tid == x) & alone)
        for b in in_x:
            side = (tid == x) & (keys == keys[b]) & (par == par[b])
            if par[b] is None or side.sum() < 2:
                continue
            rest = [i for i in in_x if not side[i]]
            if rest:
                return {"x": x, "y": sorted(others)[0], "a": int(rest[0]), "b": int(b),
                        "side": np.flatnonzero(side).tolist(), "ids": a.index.astype(str)}
    raise AssertionError("no turf with a door and a street side to move")


def _click_door(page, i: int, zoom: int = 19) -> dict[str, Any]:
    page.evaluate(CENTRE_JS, [i, zoom])
    page.wait_for_timeout(150)
    where = page.evaluate(WHERE_JS, i)
    page.mouse.click(where["x"], where["y"])
    page.wait_for_timeout(150)
    return where


def _expected(plan: TurfPlan, pick: dict[str, Any]) -> dict[str, Any]:
    """The edits file the clicks must give, written from the plan's data."""
    a = plan.doors[plan.doors[schema.TURF_ID].notna()]
    ids = pick["ids"]
    b = a.iloc[pick["b"]]
    y_after = (set(ids[a[schema.TURF_ID].astype(str).to_numpy() == pick["y"]])
               | {ids[pick["a"]]} | set(ids[pick["side"]]))
    return {
        "format": "knockin-geo-edits",
        "version": 1,
        "made_with": "map.html",
        "edits": [
            {"op": "move_doors", "doors": [ids[pick["a"]]], "to": pick["y"]},
            {"op": "move_street", "street": str(b[schema.STREET]),
             "side": _parity(b[schema.HOUSENUMBER]), "from": pick["x"], "to": pick["y"]},
            {"op": "lock", "turf": pick["y"], "doors": sorted(y_after)},
        ],
    }


@pytest.fixture(scope="module")
def edited(browser, demo: Path, plan: TurfPlan, tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, Any]:
    """Click through two moves and a lock on the demo's map.html, save; return what happened."""
    pick = _pick(plan)
    context, page, errors, requests = open_offline(browser, demo / "map.html", 1300, 900)
    shown_before = page.locator(".kg-edit-panel").is_visible()
    page.get_by_text("Edit turfs").click()
    where = _click_door(page, pick["a"])
    screenshot(page, "edit-1-door.png")
    what = page.locator(".kg-edit-what").text_content()
    page.locator(".kg-edit-sel select").select_option(pick["y"])
    page.get_by_role("button", name="Move", exact=True).click()
    _click_door(page, pick["b"], 18)
    page.get_by_label(re.compile("this side of the street")).check()
    page.locator(".kg-edit-sel select").select_option(pick["y"])
    screenshot(page, "edit-2-side.png")
    page.get_by_role("button", name="Move", exact=True).click()
    _click_door(page, pick["a"], 17)
    page.get_by_role("button", name=f"Lock turf {pick['y']}").click()
    live = page.locator(".kg-edit-live").inner_text()
    screenshot(page, "edit-3-locked.png")
    with page.expect_download() as dl:
        page.get_by_role("button", name=re.compile("Save edits")).click()
    saved = tmp_path_factory.mktemp("saved") / "edits.json"
    dl.value.save_as(saved)
    after = page.evaluate(WHERE_JS, pick["a"])
    context.close()
    return {"pick": pick, "errors": errors, "requests": requests, "what": what, "live": live,
            "ids": where["ids"], "s_before": where["s"], "s_after": after["s"],
            "saved": saved, "filename": dl.value.suggested_filename,
            "shown_before": shown_before}


def test_two_moves_and_a_lock_save_the_hand_written_edits(edited: dict[str, Any],
                                                          plan: TurfPlan) -> None:
    pick = edited["pick"]
    assert edited["errors"] == []
    assert edited["requests"] == []  # offline: nothing fetched
    assert not edited["shown_before"]  # edit mode off until asked for
    a = plan.doors[plan.doors[schema.TURF_ID].notna()]
    assert edited["ids"] == a.index.astype(str).tolist()  # the layer's doors, in plan order
    door = a.iloc[pick["a"]]
    assert edited["what"] == (f"{door[schema.HOUSENUMBER]} {door[schema.STREET]} \u00b7 turf "
                              f"{pick['x']}")
    expected = _expected(plan, pick)
    text = edited["saved"].read_text(encoding="utf-8")
    assert edited["filename"] == "edits.json"
    assert json.loads(text) == expected
    # keys in a fixed order, ids sorted: the file is the JSON of the dict above, 2-space indent
    assert text == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    # the moved doors are drawn in their new turf's colour (style index = turf index)
    turfs = sorted(set(a[schema.TURF_ID].astype(str)))
    moved = [pick["a"], *pick["side"]]
    assert {edited["s_after"][i] for i in moved} == {turfs.index(pick["y"])}
    assert all(edited["s_before"][i] == turfs.index(pick["x"]) for i in moved)
    # the live panel: the touched turfs' doors before -> after
    n_x, n_y = (int((a[schema.TURF_ID] == t).sum()) for t in (pick["x"], pick["y"]))
    assert f"{n_x} \u2192 {n_x - len(moved)}" in edited["live"]
    assert f"{n_y} \u2192 {n_y + len(moved)}" in edited["live"]


def test_lasso_selects_the_doors_inside_and_moves_them(browser, demo: Path,
                                                       plan: TurfPlan) -> None:
    a = plan.doors[plan.doors[schema.TURF_ID].notna()]
    tid = a[schema.TURF_ID].astype(str).to_numpy()
    start = int(np.flatnonzero(tid == sorted(set(tid))[0])[0])
    context, page, errors, _ = open_offline(browser, demo / "map.html", 1300, 900)
    page.get_by_text("Edit turfs").click()
    page.evaluate(CENTRE_JS, [start, 17])
    page.wait_for_timeout(150)
    c = page.evaluate(WHERE_JS, start)
    page.get_by_role("button", name="Lasso").click()
    ring = [(c["x"] + 90 * np.cos(t), c["y"] + 70 * np.sin(t))
            for t in np.linspace(0, 2 * np.pi, 40, endpoint=False)]
    page.mouse.move(*ring[0])
    page.mouse.down()
    for p in ring[1:]:
        page.mouse.move(*p)
    page.mouse.up()
    page.wait_for_timeout(150)
    screenshot(page, "edit-4-lasso.png")
    what = page.locator(".kg-edit-what").text_content()
    poly = shapely.Polygon(page.evaluate(LATLNG_JS, [list(p) for p in ring]))
    target = page.locator(".kg-edit-sel select").input_value()
    page.get_by_role("button", name="Move", exact=True).click()
    with page.expect_download() as dl:
        page.get_by_role("button", name=re.compile("Save edits")).click()
    saved = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    page.get_by_role("button", name="Undo last").click()
    undone = page.locator(".kg-edit-list li").count()
    # exclude the street of the first door, with a note
    _click_door(page, start, 19)
    page.get_by_placeholder("note (optional)").fill("unlit <b>after</b> dark")
    page.get_by_role("button", name="Exclude this street").click()
    with page.expect_download() as dl2:
        page.get_by_role("button", name=re.compile("Save edits")).click()
    excluded = json.loads(Path(dl2.value.path()).read_text(encoding="utf-8"))
    styles = page.evaluate(WHERE_JS, start)["s"]
    context.close()
    assert errors == []
    street = a[schema.STREET].astype(str).to_numpy()
    assert excluded["edits"] == [{"op": "exclude_street", "street": street[start],
                                  "note": "unlit <b>after</b> dark"}]
    gone = np.flatnonzero(np.array([_norm(x) for x in street]) == _norm(street[start]))
    excl_style = len(set(tid))  # the style after the turfs' ones: white
    assert {styles[i] for i in gone} == {excl_style}
    assert sum(s == excl_style for s in styles) == len(gone)
    pts = a.to_crs(4326).geometry.to_numpy()
    inside = shapely.contains_xy(poly, shapely.get_x(pts), shapely.get_y(pts))
    assert inside.sum() >= 2
    assert what.startswith(f"{int(inside.sum())} doors in the lasso")
    ids = a.index.astype(str).to_numpy()
    assert saved["edits"] == [{"op": "move_doors",
                               "doors": sorted(ids[inside & (tid != target)].tolist()),
                               "to": target}]
    assert undone == 0


def test_edit_mode_shows_hostile_street_names_as_text(browser, plan: TurfPlan,
                                                      tmp_path: Path) -> None:
    hostile = '<img src=x onerror="window.kgPwned=1">{{ 7*7 }}{% if 1 %}x{% endif %}'
    doors = plan.doors.copy()
    a = doors.index[doors[schema.TURF_ID].notna()]
    doors.loc[a[3], schema.STREET] = hostile
    path = save_map(director_map(dataclasses.replace(plan, doors=doors)), tmp_path / "map.html")
    context, page, errors, _ = open_offline(browser, path, 1300, 900)
    page.get_by_text("Edit turfs").click()
    _click_door(page, 3, 20)
    what = page.locator(".kg-edit-what").text_content()
    pwned = page.evaluate("() => window.kgPwned === undefined")
    context.close()
    assert errors == []
    assert pwned
    assert hostile in what


def test_saved_edits_apply_like_the_same_edits_in_python(edited: dict[str, Any], demo: Path,
                                                         plan: TurfPlan, tmp_path: Path) -> None:
    edits = pytest.importorskip("knockin_geo.edits")
    # the map's file applied by the CLI; then the same edits written by hand (at the same
    # place: plan.gpkg records its input files by path and hash) applied in Python
    hand = json.dumps(_expected(plan, edited["pick"]), indent=2, ensure_ascii=False) + "\n"
    edits_file = tmp_path / "edits.json"
    edits_file.write_bytes(edited["saved"].read_bytes())
    cli_out, py_out = tmp_path / "cli", tmp_path / "py"
    assert main(["edit", "--plan", str(demo), "--edits", str(edits_file),
                 "--out", str(cli_out)]) == 0
    edits_file.write_text(hand, encoding="utf-8")
    result = edits.read_edits(edits_file).apply(plan)
    # the demo is in English: edit writes in the plan's language unless told otherwise
    assert 'lang="en"' in (cli_out / "walklists" / "index.html").read_text(encoding="utf-8")
    write_plan(result.plan, py_out, extra_files={"edits.json": hand.encode("utf-8")},
               input_files={"plan": demo / "plan.gpkg", "edits": edits_file}, lang="en")
    files = {p.relative_to(cli_out) for p in cli_out.rglob("*") if p.is_file()}
    # wall-clock seconds, and who exported when (the audit log): never the same twice
    run_files = {Path("timings.json"), Path("audit.jsonl")}
    files -= run_files
    assert files == {p.relative_to(py_out) for p in py_out.rglob("*") if p.is_file()} - run_files
    differ = [f for f in sorted(files) if not filecmp.cmp(cli_out / f, py_out / f, shallow=False)]
    assert differ == []


def test_edit_data_figures_and_locks(plan: TurfPlan) -> None:
    data = edit_data(plan)
    a = plan.doors[plan.doors[schema.TURF_ID].notna()]
    turfs = sorted(set(a[schema.TURF_ID].astype(str)))
    assert data["turfs"] == turfs  # the door layer's style order
    assert data["doors"] == [int((a[schema.TURF_ID] == t).sum()) for t in turfs]
    t = plan.turfs.loc[turfs]
    assert data["minutes"] == pytest.approx(t["est_minutes"].astype(float).tolist(), abs=1e-3)
    assert data["tolerance"] == plan.report["params"]["tolerance"]
    assert data["locked"] == []
    # the balance target gives back each turf's deviation, hence its within_tolerance
    dev = np.array(data["measure"]) / np.array(data["target"]) - 1
    assert dev == pytest.approx(t["deviation"].astype(float).to_numpy(), abs=1e-3)
    assert ((np.abs(dev) <= data["tolerance"] + 1e-9) == t["within_tolerance"].astype(bool)).all()
    locked = plan.turfs.assign(locked=[i in (1, 3) for i in range(len(plan.turfs))])
    assert edit_data(dataclasses.replace(plan, turfs=locked))["locked"] == sorted(
        plan.turfs.index.astype(str)[[1, 3]].tolist())
    # outside the edit mode too, the director map says which turfs are locked
    html = director_map(dataclasses.replace(plan, turfs=locked)).get_root().render()
    names = plan.turfs.index.astype(str)
    assert f"{names[1]} (locked)" in html and f"{names[3]} (locked)" in html
    assert f"{names[0]} (locked)" not in html
    assert "locked by hand edits" in html
    assert f"{names[1]} (locked)" not in director_map(plan).get_root().render()
