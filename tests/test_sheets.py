"""Spreadsheet formula injection: every CSV for people is neutralised, machine files stay raw.

Cells starting with ``= + - @ TAB CR`` are planted in every text column of real Nantes inputs
(addresses, precinct ids and names, canvassers, results with notes), then ``cut``, ``import``,
``progress`` and ``target`` run; every CSV meant for a spreadsheet must hold no cell that a
spreadsheet would evaluate, while GeoJSON/JSON/GeoPackage keep the raw text and ``import``
reads its own ``results.csv`` back as it was typed. The phone map's export goes through the same
round trip in Chromium.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from conftest import NANTES, nantes_within, open_offline
from hypothesis import given
from hypothesis import strategies as st
from knockin_geo.cli.main import main

from knockin_geo import schema
from knockin_geo.canvass import read_plan_tables, read_results
from knockin_geo.sheets import (
    TRIGGERS,
    Number,
    frame_csv,
    neutralize_cell,
    restore_cell,
    sheet_csv,
)

PBF = NANTES / "osm" / "nantes_centre_2014-09.osm.pbf"
RESULTS = NANTES / "results" / "municipales2014_t1_par_bureau.csv"

#: The planted cells (OWASP's examples of every trigger).
FORMULAS = ("=1+1", "+1", "-1+1", "@SUM(1)", "\t=1+1", "=HYPERLINK(\"http://x\",\"y\")")
#: The precinct id planted (it becomes every turf id of the plan).
PRECINCT = "=1+1"


def _evaluated(cell: str) -> bool:
    """Would a spreadsheet evaluate this cell (a formula, not a plain number)?"""
    rest = cell.lstrip(" ")
    if not rest or rest[0] not in TRIGGERS:
        return False
    try:
        float(rest)
    except ValueError:
        return True
    return False


# ----------------------------------------------------------------------------------------------
# the rule itself
# ----------------------------------------------------------------------------------------------
@given(st.text())
def test_neutralised_text_is_never_a_formula_and_restores_exactly(s: str) -> None:
    n = neutralize_cell(s)
    rest = n.lstrip(" ")
    assert not rest or rest[0] not in TRIGGERS
    assert restore_cell(n) == s


@given(st.sampled_from([*FORMULAS, "'=1+1", "''-5", " =1"]), st.text())
def test_every_trigger_is_neutralised(head: str, tail: str) -> None:
    assert neutralize_cell(head + tail) == "'" + head + tail


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()))
def test_numbers_stay_numbers(x: object) -> None:
    assert neutralize_cell(x) is x
    if isinstance(x, float):
        assert neutralize_cell(Number(f"{x:.7f}")) == f"{x:.7f}"


def test_plain_text_and_real_apostrophes_are_kept() -> None:
    for s in ("Rue de l'Arche", "'hello", "12 bis", "", "O'Neil", "a=1"):
        assert neutralize_cell(s) == s
    # a real leading apostrophe before a formula stays distinguishable from the guard
    assert neutralize_cell("'=1") == "''=1"
    assert restore_cell("''=1") == "'=1"
    assert sheet_csv(["a", "=b"], [[-1.5, "-1.5", None]]) == "a,'=b\n-1.5,'-1.5,\n"


def test_frames_without_formulas_are_written_as_pandas_writes_them() -> None:
    t = pd.DataFrame({"doors": [218, 3], "coverage": [0.0045871559633027525, float("nan")],
                      "name": ["Rue de l'Arche", "-"], "ok": [True, False]},
                     index=pd.Index(["all", "x"], name="turf_id"))
    assert frame_csv(t.iloc[:, [0, 1, 3]]) == t.iloc[:, [0, 1, 3]].to_csv()
    assert frame_csv(t.rename_axis(None).iloc[:1]) == t.rename_axis(None).iloc[:1].to_csv()
    assert frame_csv(t, index=False).splitlines()[2] == "3,,'-,False"  # only the text cell


# ----------------------------------------------------------------------------------------------
# every CSV for people, on real data
# ----------------------------------------------------------------------------------------------
def _inputs(folder: Path) -> dict[str, Path]:
    pr, a = nantes_within(["0101"])
    pr["code_bv"] = PRECINCT
    pr["nom"] = "@SUM(1)"
    precincts = folder / "precincts.geojson"
    pr.to_file(precincts, driver="GeoJSON")

    n = len(a)
    f = [FORMULAS[i % len(FORMULAS)] for i in range(n)]
    rows = pd.DataFrame({
        "address_id": [f"{f[i]}#{x}" if i % 5 == 0 else x for i, x in enumerate(a["addr_id"])],
        "housenumber": [f[i] if i % 2 else x for i, x in enumerate(a["numero"])],
        "street": [f"{f[i]} {x}" for i, x in enumerate(a["adresse"].str.split(" ", n=1).str[1])],
        "lon": a["lon"],
        "lat": a["lat"],
    })
    lost = pd.DataFrame({"address_id": ["lost1", "lost2"], "housenumber": ["-1+1", "+1"],
                         "street": ["=1+1", "@SUM(1)"], "lon": ["", ""], "lat": ["", ""]})
    addresses = folder / "addresses.csv"
    pd.concat([rows, lost]).to_csv(addresses, index=False)

    canvassers = folder / "canvassers.csv"
    pd.DataFrame({"canvasser_id": ["@SUM(1)", "-1+1"], "name": ["=1+1", "+1"],
                  "capacity": [9, 9]}).to_csv(canvassers, index=False)

    res = pd.read_csv(RESULTS, dtype={"code_bv": str})
    res = res[res["code_bv"] == "0101"].assign(code_bv=PRECINCT)
    results = folder / "results.csv"
    res.to_csv(results, index=False)
    return {"precincts": precincts, "addresses": addresses, "canvassers": canvassers,
            "results": results}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """cut (with canvassers), import (planted notes and canvassers), progress and target."""
    root = tmp_path_factory.mktemp("sheets")
    mp = pytest.MonkeyPatch()
    mp.setenv("KNOCKIN_GEO_CACHE", str(root / "cache"))
    try:
        files = _inputs(root)
        plan_dir = root / "plan"
        assert main(["-q", "cut", "--precincts", str(files["precincts"]),
                     "--addresses", str(files["addresses"]), "--network", str(PBF),
                     "--canvassers", str(files["canvassers"]), "--out", str(plan_dir)]) == 0
        doors = pyogrio.read_dataframe(plan_dir / "plan.gpkg", layer="doors")
        done = doors[doors["status"] == "assigned"].sort_values(["turf_id", "seq"]).head(12)
        with (root / "phone.csv").open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["address_id", "turf_id", "result", "timestamp", "canvasser", "note"])
            for i, (_, r) in enumerate(done.iterrows()):
                w.writerow([r["address_id"], r["turf_id"], "contacted",
                            f"2026-11-21T10:{i:02d}:00Z", FORMULAS[i % 4],
                            FORMULAS[(i + 1) % len(FORMULAS)] + " formule"])
        assert main(["-q", "import", str(root / "phone.csv"), "--plan", str(plan_dir)]) == 0
        assert main(["-q", "progress", "--plan", str(plan_dir),
                     "--out", str(root / "progress")]) == 0
        assert main(["-q", "target", "--precincts", str(files["precincts"]),
                     "--results", str(files["results"]), "--score", "mobilisation",
                     "--support", "rolland", "--top", "1", "--out", str(root / "target")]) == 0
    finally:
        mp.undo()
    return {**files, "root": root, "plan": plan_dir}


def _people_csvs(run: dict[str, Path]) -> dict[str, Path]:
    root, plan = run["root"], run["plan"]
    files = {
        "assignments.csv": plan / "exports" / "assignments.csv",
        "unassigned.csv": plan / "exports" / "unassigned.csv",
        "results.csv": plan / "results.csv",
        "ranking.csv": root / "target" / "ranking.csv",
    }
    files.update({p.name: p for p in sorted((root / "progress").glob("progress_*.csv"))})
    return files


def test_no_csv_for_people_holds_a_live_formula(run: dict[str, Path]) -> None:
    files = _people_csvs(run)
    assert {"progress_turf.csv", "progress_canvasser.csv"} <= set(files)
    live, guarded = {}, {}
    for name, path in files.items():
        with path.open(encoding="utf-8", newline="") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        live[name] = [c for c in cells if _evaluated(c)]
        guarded[name] = any(c.startswith("'") and _evaluated(c[1:]) for c in cells)
    assert live == {name: [] for name in files}
    # the planted values reached every file that holds text (neutralised): not vacuous
    assert guarded == {n: n != "progress_total.csv" for n in files}


def test_numbers_stay_numbers_in_csvs_for_people(run: dict[str, Path]) -> None:
    a = pd.read_csv(run["plan"] / "exports" / "assignments.csv", dtype=str)
    assert a["lon"].str.fullmatch(r"-1\.\d{7}").all()  # Nantes: negative longitudes
    assert not a["seq"].str.startswith("'").any()


def test_machine_files_keep_the_raw_values(run: dict[str, Path]) -> None:
    exports = run["plan"] / "exports"
    streets = {f["properties"]["street"] for f in
               json.loads((exports / "doors.geojson").read_text(encoding="utf-8"))["features"]}
    assert any(s.startswith("=1+1 ") for s in streets)
    assert not any(s.startswith("'") for s in streets)
    app = json.loads((exports / "app" / "turfs.json").read_text(encoding="utf-8"))
    assert app["turfs"][0]["turf_id"].startswith(PRECINCT)
    assert {t.get("canvasser_id") for t in app["turfs"]} <= {"@SUM(1)", "-1+1", None}
    doors = pyogrio.read_dataframe(run["plan"] / "plan.gpkg", layer="doors")
    assert doors["street"].str.startswith("@SUM(1) ").any()


def test_results_csv_reads_back_as_typed(run: dict[str, Path]) -> None:
    plan = read_plan_tables(run["plan"])
    phone = read_results(run["root"] / "phone.csv", plan).results
    store = read_results(run["plan"] / "results.csv", plan, check_turf=False).results
    cols = [schema.ADDRESS_ID, "canvasser", "note"]
    assert phone[cols].sort_values(cols).to_numpy().tolist() == \
        store[cols].sort_values(cols).to_numpy().tolist()
    assert (phone["note"] == "=1+1 formule").any()
    # the raw file holds the neutralised text, not the formula
    text = (run["plan"] / "results.csv").read_text(encoding="utf-8")
    assert ",'=1+1 formule" in text
    assert ",=1+1 formule" not in text


# ----------------------------------------------------------------------------------------------
# phone -> import -> results.csv
# ----------------------------------------------------------------------------------------------
def test_phone_note_round_trip(browser, run: dict[str, Path], tmp_path: Path) -> None:
    """A note typed on the phone keeps its text in the data and is never a live formula."""
    plan_dir = run["plan"]
    page_path = sorted((plan_dir / "maps").glob("*.html"))[0]
    context, page, errors, _ = open_offline(browser, page_path, 390, 844, is_mobile=True,
                                            has_touch=True, accept_downloads=True)
    notes = ["=1+1 formule", "'=2+2 typed with an apostrophe", "-3 dogs", "@chat"]
    rows = page.locator("#panel li[data-door]")
    ids = [rows.nth(i).get_attribute("data-door") for i in range(len(notes))]
    for door, note in zip(ids, notes, strict=True):
        page.evaluate("id => document.querySelector(`#panel li[data-door=\"${id}\"]`).click()",
                      door)
        page.fill("#note", note)
        page.locator('#codes button[data-code="contacted"]').click()
        if page.locator("#sheet.open").count():
            page.locator("#sheet-close").click()
    # the phone's guard is the same rule as knockin_geo.sheets (every cell of its export)
    samples = [*FORMULAS, "'=1", "''-5", "'hello", " =x", "plain", "-5", "a,b", 'q"uote']
    cells = page.evaluate("xs => xs.map(x => cell(x))", samples)
    assert [next(csv.reader([c])) for c in cells] == [[neutralize_cell(x)] for x in samples]
    with page.expect_download() as info:
        page.evaluate("() => document.getElementById('export').click()")
    saved = tmp_path / "phone-export.csv"
    info.value.save_as(saved)
    context.close()
    assert errors == []
    with saved.open(encoding="utf-8", newline="") as fh:
        exported = [c for row in csv.reader(fh) for c in row]
    assert not any(_evaluated(c) for c in exported)
    assert "'=1+1 formule" in exported and "''=2+2 typed with an apostrophe" in exported

    store = tmp_path / "results.csv"
    assert main(["-q", "import", str(saved), "--plan", str(plan_dir), "--store", str(store)]) == 0
    with store.open(encoding="utf-8", newline="") as fh:
        written = [c for row in csv.reader(fh) for c in row]
    assert not any(_evaluated(c) for c in written)
    back = read_results(store, read_plan_tables(plan_dir), check_turf=False).results
    assert sorted(back["note"]) == sorted(notes)  # the raw text, apostrophe included
    # importing again changes nothing (same text, no second apostrophe)
    before = store.read_bytes()
    assert main(["-q", "import", str(saved), "--plan", str(plan_dir), "--store", str(store)]) == 0
    assert store.read_bytes() == before
