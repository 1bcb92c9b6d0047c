"""Hand edits (issue 17): the edits file, applying it, and edits that survive a cut and a re-cut.

A Nantes plan (precincts 0101 and 0301) is cut and written once with every file; the edits are
made on it as a director would (two moves, a lock, an excluded street), and the written folders
are compared file by file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from knockin_geo.cli.main import main

from knockin_geo import io, schema, streets
from knockin_geo._errors import InputError
from knockin_geo.edits import apply_edits, parse_edits, read_edits
from knockin_geo.plan import plan_turfs, report_json, write_plan
from knockin_geo.planfile import read_plan
from knockin_geo.routing import route_turfs, street_edges
from knockin_geo.turfs import TurfParams

NANTES = Path(__file__).resolve().parents[1] / "data" / "nantes"
PRECINCTS = NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson"
ADDRESSES = NANTES / "addresses" / "adresses_nantes_commune_2013.csv"
PBF = NANTES / "osm" / "nantes_centre_2014-09.osm.pbf"
UNIVERSE = ["0101", "0301"]
HEAD = {"format": "knockin-geo-edits", "version": 1}


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory):
    """A Nantes plan with every file written (walk lists, maps, exports)."""
    plan = plan_turfs(io.read_addresses(ADDRESSES), streets.load_network(PBF),
                      precincts=io.read_precincts(PRECINCTS), universe=UNIVERSE)
    folder = tmp_path_factory.mktemp("edits") / "cut"
    write_plan(plan, folder)
    return read_plan(folder), folder


def _doors(plan, turf: str) -> list[str]:
    d = plan.doors
    mine = d[d[schema.TURF_ID] == turf].sort_values(schema.SEQ)
    return mine.index.astype(str).tolist()


def _director_edits(plan) -> dict:
    """Two moves, a lock, an excluded street: what a director does after the first cut."""
    d = plan.doors
    t1, t2 = _doors(plan, "0301-01"), _doors(plan, "0301-02")
    street = str(d.loc[t2, schema.STREET].value_counts().index[0])
    return {**HEAD, "made_with": "test", "edits": [
        {"op": "move_doors", "doors": sorted(t1[:3]), "to": "0301-02"},
        {"op": "move_doors", "doors": sorted(_doors(plan, "0101-02")[:4]), "to": "0101-01"},
        {"op": "lock", "turf": "0101-01",
         "doors": sorted(set(_doors(plan, "0101-01")) | set(_doors(plan, "0101-02")[:4]))},
        {"op": "exclude_street", "street": street, "note": "unlit <b>after dark</b>"},
    ]}


def _write(tmp: Path, doc: dict, name: str = "edits.json") -> Path:
    path = tmp / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _turf_files(folder: Path, turf: str) -> dict[str, bytes]:
    """A turf's volunteer files: phone map, walk list, GPX."""
    paths = [folder / "maps" / f"{turf}.html", folder / "walklists" / f"{turf}.html",
             folder / "exports" / "gpx" / f"{turf}.gpx"]
    return {str(p.relative_to(folder)): p.read_bytes() for p in paths}


def _all_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in ("timings.json", "audit.jsonl")}


# ----------------------------------------------------------------------------------------------
# the file
# ----------------------------------------------------------------------------------------------
def test_a_malformed_file_is_refused_naming_each_edit_and_key() -> None:
    doc = {**HEAD, "extra": 1, "edits": [
        {"op": "move_doors", "doors": [], "to": "A"},
        {"op": "move_street", "street": "Rue X", "side": "left", "to": "A", "numbers": [9, 1]},
        {"op": "merge", "turfs": ["A", "B"], "into": "C"},
        {"op": "teleport"},
        {"op": "lock", "turf": "A", "doors": ["1"], "colour": "red"},
        {"op": "split", "turf": "A", "note": "ok"},
    ]}
    with pytest.raises(InputError) as err:
        parse_edits(doc)
    text = str(err.value)
    assert "unknown top-level key 'extra'" in text
    assert "edit 1 (move_doors): doors must be a non-empty list" in text
    assert "edit 2 (move_street): numbers must be [lo, hi]" in text
    assert "edit 2 (move_street): side must be one of odd, even, both" in text
    assert "edit 3 (merge): into 'C' must be one of turfs" in text
    assert "edit 4: unknown op 'teleport'" in text
    assert "edit 5 (lock): unknown key 'colour'" in text
    assert "edit 6" not in text
    good = parse_edits({**HEAD, "edits": doc["edits"][5:]})
    assert good.edits[0].op == "split" and good.edits[0].note == "ok"
    # written back: the same edits, stable bytes
    assert parse_edits(json.loads(good.to_json())) == good


def test_read_edits_names_a_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no edits file"):
        read_edits(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="is not a JSON edits file"):
        read_edits(tmp_path / "bad.json")
    with pytest.raises(InputError, match="version must be 1"):
        parse_edits({"format": "knockin-geo-edits", "version": 2, "edits": []})


# ----------------------------------------------------------------------------------------------
# applying
# ----------------------------------------------------------------------------------------------
def test_invalid_edits_are_refused_by_number_and_nothing_is_written(
        cut, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, folder = cut
    locked = _doors(plan, "0101-01")
    doc = {**HEAD, "edits": [
        {"op": "move_doors", "doors": ["no-such-door"], "to": "0301-02"},
        {"op": "move_doors", "doors": _doors(plan, "0301-01")[:1], "to": "0301-99"},
        {"op": "lock", "turf": "0101-01", "doors": sorted(locked)},
        {"op": "move_doors", "doors": locked[:1], "to": "0101-02"},
        {"op": "move_street", "street": "Rue du Marais", "side": "both", "to": "0101-01"},
        {"op": "move_doors", "doors": locked, "to": "0101-03"},
        {"op": "lock", "turf": "0101-02", "doors": _doors(plan, "0101-02")[1:]},
        {"op": "move_street", "street": "Rue Leon Blum", "side": "odd", "to": "0301-02"},
    ]}
    out = tmp_path / "out"
    code = main(["-q", "edit", "--plan", str(folder), "--edits", str(_write(tmp_path, doc)),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert not out.exists()
    assert "edit 1 (move_doors): unknown address id 'no-such-door'" in err
    assert "edit 2 (move_doors): unknown turf '0301-99'" in err
    assert "edit 3" not in err
    assert "edit 4 (move_doors): turf 0101-01 is locked" in err
    assert "edit 5 (move_street): turf 0101-01 is locked: doors cannot be moved into it" in err
    assert "edit 6 (move_doors): turf 0101-01 is locked" in err  # would empty it
    assert "edit 7 (lock): the lock lists" in err
    assert "did you mean 'Rue Léon Blum'?" in err
    with pytest.raises(InputError, match=r"edit 1 \(move_doors\)"):
        apply_edits(plan, parse_edits(doc))


def test_edit_touches_only_its_turfs_and_accounts_for_every_door(
        cut, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, folder = cut
    path = _write(tmp_path, _director_edits(plan))
    out = tmp_path / "edited"
    assert main(["edit", "--plan", str(folder), "--edits", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "edit 1 (move_doors): 3 doors moved; turfs touched: 0301-01, 0301-02" in printed
    assert "edit 3 (lock): turf 0101-01 locked" in printed
    assert (out / "edits.json").read_bytes() == path.read_bytes()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    rows = report["edits"]
    assert [r["status"] for r in rows] == ["applied"] * 4
    assert rows[3]["note"] == "unlit <b>after dark</b>"
    assert rows[3]["doors_moved"] > 0
    touched = {t["turf_id"] for r in rows for t in r["turfs"]}
    after = read_plan(out)
    # untouched turfs: the same volunteer files, byte for byte
    for turf in sorted(set(map(str, plan.turfs.index)) - touched):
        assert _turf_files(out, turf) == _turf_files(folder, turf), turf
    assert _turf_files(out, "0301-01") != _turf_files(folder, "0301-01")
    # the lock is in the plan file, read back
    assert after.turfs["locked"].to_dict() == {t: t == "0101-01" for t in after.turfs.index}
    # every door: in one turf, or out of every turf with its reason
    d = after.doors
    in_turf = d[schema.TURF_ID].notna()
    assert (d.loc[in_turf, schema.STATUS] == schema.STATUS_ASSIGNED).all()
    assert (d.loc[~in_turf, schema.STATUS] != schema.STATUS_ASSIGNED).all()
    assert d[schema.STATUS].isin(list(schema.ADDRESS_STATUSES)).all()
    assert int(after.turfs["doors"].sum()) == int(in_turf.sum())
    assert len(d) == len(plan.doors)
    excluded = d[schema.STATUS] == schema.STATUS_EXCLUDED
    assert int(excluded.sum()) == rows[3]["doors_moved"]
    assert report["unassigned"][schema.STATUS_EXCLUDED] == rows[3]["doors_moved"]
    # before/after figures of each touched turf
    t = next(t for t in rows[0]["turfs"] if t["turf_id"] == "0301-01")
    assert t["before"]["doors"] == int(plan.turfs.loc["0301-01", "doors"])
    assert t["after"]["doors"] == int(after.turfs.loc["0301-01", "doors"])
    assert set(t["after"]) == {"doors", "minutes", "within_tolerance", "strict_pieces",
                               "spans_barrier"}


def test_edit_in_place_leaves_the_untouched_turfs_files_as_they_were(
        cut, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In place, a file whose bytes did not change is not replaced (same inode, same date)."""
    plan, folder = cut
    here = tmp_path / "plan"
    shutil.copytree(folder, here)
    path = _write(tmp_path, _director_edits(plan))
    before = {p.relative_to(here): p.stat().st_ino for p in here.rglob("*") if p.is_file()}
    assert main(["edit", "--plan", str(here), "--edits", str(path), "--overwrite"]) == 0
    printed = capsys.readouterr().out
    rows = json.loads((here / "report.json").read_text(encoding="utf-8"))["edits"]
    touched = {t["turf_id"] for r in rows for t in r["turfs"]}
    assert f"volunteer files changed: {', '.join(sorted(touched))}" in printed
    for turf in sorted(set(map(str, plan.turfs.index))):
        for rel in _turf_files(here, turf):
            same = (here / rel).stat().st_ino == before[Path(rel)]
            assert same == (turf not in touched), (rel, same)
    assert (here / "report.json").stat().st_ino != before[Path("report.json")]


def test_python_apply_writes_what_the_cli_writes_and_twice_the_same(cut, tmp_path: Path) -> None:
    plan, folder = cut
    path = _write(tmp_path, _director_edits(plan))
    assert main(["-q", "edit", "--plan", str(folder), "--edits", str(path),
                 "--out", str(tmp_path / "cli")]) == 0
    edits = read_edits(path)
    first, second = edits.apply(plan), apply_edits(plan, edits)
    assert report_json(first.plan.report) == report_json(second.plan.report)
    pd.testing.assert_frame_equal(first.plan.doors, second.plan.doors)
    inputs = {"plan": str(folder / "plan.gpkg"), "edits": str(path)}
    write_plan(first.plan, tmp_path / "py", input_files=inputs,
               extra_files={"edits.json": path.read_bytes()})
    assert _all_files(tmp_path / "py") == _all_files(tmp_path / "cli")


def test_split_merge_and_move_street(cut) -> None:
    plan, _ = cut
    n = int(plan.turfs.loc["0101-02", "doors"])
    street = str(plan.doors.loc[_doors(plan, "0301-02"), schema.STREET].value_counts().index[0])
    doc = {**HEAD, "edits": [
        {"op": "split", "turf": "0101-02"},
        {"op": "merge", "turfs": ["0301-01", "0301-02"], "into": "0301-01"},
        {"op": "split", "turf": "0301-01", "doors": _doors(plan, "0301-02")[:5],
         "new_turf": "0301-50"},
        {"op": "move_street", "street": street, "side": "both", "to": "0301-50"},
    ]}
    r = apply_edits(plan, parse_edits(doc))
    t = r.plan.turfs
    assert "0301-02" not in t.index  # retired by the merge
    # split in two halves by the cutter; the new id is the precinct's next free one
    halves = t.loc[["0101-02", "0101-04"], "doors"].tolist()
    assert sum(halves) == n and min(halves) >= 0.3 * n
    assert r.effects[0]["turfs"][1]["turf_id"] == "0101-04"
    assert set(_doors(r.plan, "0301-50")) >= set(_doors(plan, "0301-02")[:5])
    assert (r.plan.doors.loc[r.plan.doors[schema.STREET] == street, schema.TURF_ID]
            .dropna() == "0301-50").all()
    assert r.plan.routes.index.tolist() == sorted(t.index.astype(str))


def test_routes_avoid_an_excluded_street_and_are_unchanged_without_one(cut) -> None:
    plan, _ = cut
    routes, seq = route_turfs(plan.doors, plan.network, avoid=np.zeros(0, dtype=np.int64))
    again, seq2 = route_turfs(plan.doors, plan.network)
    assert routes.to_wkb().equals(again.to_wkb()) and seq.equals(seq2)
    # a street excluded: its doors leave, and the routes no longer walk it where another way
    # exists (routed without the penalty, the same doors walk it more)
    avoided = street_edges(plan.network, ["Rue Jeanne d'Arc"])
    assert len(avoided) and (street_edges(plan.network, ["RUE  jeanne d'ARC"]) == avoided).all()
    doc = {**HEAD, "edits": [{"op": "exclude_street", "street": "rue jeanne  D'arc"}]}
    r = apply_edits(plan, parse_edits(doc))
    plain, _ = route_turfs(r.plan.doors, plan.network)
    zone = plan.network.edges.geometry.iloc[avoided].union_all().buffer(0.5)
    assert r.plan.routes.geometry.intersection(zone).length.sum() < \
        plain.geometry.intersection(zone).length.sum()
    assert r.plan.report["avoided_streets"] == [{"street": "rue jeanne  D'arc", "numbers": None}]


# ----------------------------------------------------------------------------------------------
# edits that survive a re-cut and a new cut
# ----------------------------------------------------------------------------------------------
def test_recut_with_edits_keeps_the_locked_turf_byte_for_byte(
        cut, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, folder = cut
    doc = _director_edits(plan)
    path = _write(tmp_path, doc)
    edited = tmp_path / "edited"
    assert main(["-q", "edit", "--plan", str(folder), "--edits", str(path),
                 "--out", str(edited)]) == 0
    capsys.readouterr()
    after = read_plan(edited)
    # done: 10 doors of the locked turf, 40 of another, and a door the first edit moved
    done = (_doors(after, "0101-01")[:10] + _doors(after, "0101-03")[:40]
            + doc["edits"][0]["doors"][:1])
    results = tmp_path / "results.csv"
    pd.DataFrame({"address_id": done, "result": "contacted",
                  "timestamp": "2026-11-21T10:00Z"}).to_csv(results, index=False)
    out = tmp_path / "recut"
    assert main(["recut", "--plan", str(edited), "--results", str(results), "--edits",
                 str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "edit 1 (move_doors): no longer possible: door" in printed  # a moved door is done
    assert "edit 3 (lock): already holds" in printed
    # the locked turf: its doors (done ones too), route and walk order; its files the same
    assert _turf_files(out, "0101-01") == _turf_files(edited, "0101-01")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [r["status"] for r in report["edits"]] == [
        "no longer possible", "already holds", "already holds", "already holds"]
    assert "reason" in report["edits"][0]
    assert {t["turf_id"]: t["state"] for t in report["recut"]["turfs"]}["0101-01"] == "locked"


def test_cut_with_edits_cuts_around_the_locked_turf(
        cut, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, folder = cut
    path = _write(tmp_path, _director_edits(plan))
    edited = tmp_path / "edited"
    assert main(["-q", "edit", "--plan", str(folder), "--edits", str(path),
                 "--out", str(edited)]) == 0
    capsys.readouterr()
    out = tmp_path / "cut"
    assert main(["cut", "--precincts", str(PRECINCTS), "--addresses", str(ADDRESSES),
                 "--network", str(PBF), "--universe", ",".join(UNIVERSE), "--out", str(out),
                 "--edits", str(path)]) == 0
    assert "locked turfs kept; their precincts cut again" in capsys.readouterr().out
    assert _turf_files(out, "0101-01") == _turf_files(edited, "0101-01")
    again = read_plan(out)
    assert _doors(again, "0101-01") == _doors(read_plan(edited), "0101-01")
    assert again.turfs.index.is_unique
    assert sorted(again.turfs.index[again.turfs["locked"]]) == ["0101-01"]


# ----------------------------------------------------------------------------------------------
# a small case built in code: a street grid cut without precincts (turf ids T001...)
# ----------------------------------------------------------------------------------------------
def test_edits_on_a_grid_cut_without_precincts() -> None:
    from conftest import concat_doors, doors_along, make_network

    nodes = {10 * r + c: (150.0 * c, 150.0 * r) for r in range(3) for c in range(3)}
    edges = [(10 * r + c, 10 * r + c + 1, "residential", f"Rue {r}") for r in range(3)
             for c in range(2)]
    edges += [(10 * r + c, 10 * (r + 1) + c, "residential", f"Allée {c}") for r in range(2)
              for c in range(3)]
    net = make_network(nodes, edges)
    doors = concat_doors(doors_along(net, e, 6, side="both", start_id=100 * e)
                         for e in range(len(edges)))
    plan = plan_turfs(doors, net, params=TurfParams(doors_per_turf=36, seed=1))
    ids = sorted(map(str, plan.turfs.index))
    assert ids[0].startswith("T") and len(ids) >= 3
    doc = {**HEAD, "edits": [
        {"op": "split", "turf": ids[0]},
        {"op": "move_street", "street": "rue  0", "side": "odd", "numbers": [1, 5],
         "to": ids[1]},
        {"op": "exclude_street", "street": "Allée 1", "numbers": [2, 8]},
    ]}
    r = apply_edits(plan, parse_edits(doc))
    new = f"T{len(ids) + 1:03d}"
    assert new in r.plan.turfs.index  # the next free id
    d = r.plan.doors
    odd = d[(d[schema.STREET] == "Rue 0") & d[schema.HOUSENUMBER].isin(["1", "3", "5"])]
    assert (odd[schema.TURF_ID] == ids[1]).all() and len(odd) == 6
    out = d[d[schema.STATUS] == schema.STATUS_EXCLUDED]
    assert set(out[schema.STREET]) == {"Allée 1"} and len(out) == 2 * 7  # 2..8, on 2 blocks
    assert out[schema.TURF_ID].isna().all() and out[schema.SEQ].isna().all()
    assert r.plan.turfs["doors"].sum() == d[schema.TURF_ID].notna().sum() == len(d) - len(out)
    # the seq of every turf is 1..n again
    for tid, g in d.dropna(subset=[schema.TURF_ID]).groupby(schema.TURF_ID):
        assert sorted(g[schema.SEQ].astype(int)) == list(range(1, len(g) + 1)), tid
