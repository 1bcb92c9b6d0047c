"""Re-cutting from the plan file alone, two weekends played on the bundled Nantes sample.

Weekend 1: half the turfs walked half-way. Weekend 2 (on the plan re-cut after weekend 1, read
back from its folder): each precinct's first turf walked completely. Results are mixed as on a
real doorstep (some nobody home, some to come back: those doors stay to knock). Each weekend,
the figures are measured again from the written files (``plan.gpkg`` layers, ``report.json``),
not taken from the code's own diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest

from knockin_geo import io, schema, streets
from knockin_geo.canvass import REVISIT_CODES, empty_results
from knockin_geo.model import TurfPlan
from knockin_geo.plan import plan_turfs, write_plan
from knockin_geo.planfile import read_plan
from knockin_geo.recut import recut

NANTES = Path(__file__).resolve().parents[1] / "data" / "nantes"
UNIVERSE = ["0101", "0301", "0319"]
#: a doorstep's results, in turn: 4 doors in 10 stay to knock (nobody home, come back)
MIX = ("contacted", "not_home", "contacted", "refused", "not_home", "moved", "contacted",
       "come_back", "not_home", "inaccessible")


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[TurfPlan, Path]:
    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(NANTES / "addresses" / "adresses_nantes_commune_2013.csv")
    net = streets.load_network(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf")
    plan = plan_turfs(doors, net, precincts=precincts, universe=UNIVERSE)
    folder = tmp_path_factory.mktemp("plans") / "cut"
    write_plan(plan, folder, walk_lists=False, maps=False, exports=False)
    return plan, folder


def _doors(folder: Path) -> pd.DataFrame:
    d = pyogrio.read_dataframe(folder / "plan.gpkg", layer="doors", read_geometry=False)
    return d.set_index("address_id")


def _walk(folder: Path, share: dict[str, float]) -> pd.DataFrame:
    """Results for the first ``share`` of each turf's doors in walk order, codes from MIX."""
    d = _doors(folder)
    d = d[d["turf_id"].notna()].sort_values(["turf_id", "seq"])
    ids: list[str] = []
    for tid, part in share.items():
        g = d[d["turf_id"] == tid]
        ids += g.index[: round(len(g) * part)].astype(str).tolist()
    return pd.DataFrame({"address_id": ids, "result": [MIX[i % len(MIX)] for i in range(len(ids))],
                         "timestamp": pd.Timestamp("2026-11-21T10:00Z")})


def _play(before: Path, results: pd.DataFrame, after: Path) -> dict[str, object]:
    """Re-cut the plan in ``before`` from its folder alone; measure the result from the files."""
    rc = recut(read_plan(before), results)
    write_plan(rc.plan, after, walk_lists=False, maps=False, exports=False)
    old, new = _doors(before), _doors(after)
    worked = set(results["address_id"])
    to_knock = old[old["turf_id"].notna()]
    to_knock = to_knock[~to_knock.index.isin(worked) | to_knock.index.isin(
        results.loc[results["result"].isin(REVISIT_CODES), "address_id"])]
    kept = (new.loc[to_knock.index, "turf_id"] == to_knock["turf_id"]).to_numpy()
    turfs = pyogrio.read_dataframe(after / "plan.gpkg", layer="turfs", read_geometry=False)
    report = json.loads((after / "report.json").read_text(encoding="utf-8"))
    reported = {p["turf_id"] for p in report["problems"]
                if p["problem"] == "size outside tolerance" and p["why"]}
    tol = report["params"]["tolerance"]
    outside = set(turfs.loc[turfs["deviation"].abs() > tol + 1e-9, "turf_id"])
    touched = set(old.loc[old.index.isin(worked), "turf_id"].dropna())
    untouched = set(old["turf_id"].dropna()) - touched
    return {"kept": float(kept.mean()), "outside": outside, "reported": reported,
            "untouched": untouched, "after": set(turfs["turf_id"]), "new": new,
            "notes": turfs["note"].fillna("").tolist(),
            "to_knock": to_knock, "diff": rc.diff}


def test_two_weekends_keep_the_turfs_volunteers_hold(first, tmp_path: Path) -> None:
    plan, cut = first
    turfs = sorted(map(str, plan.turfs.index))
    # weekend 1: half the turfs walked half-way
    w1 = _play(cut, _walk(cut, {t: 0.5 for t in turfs[::2]}), tmp_path / "w1")
    # weekend 2: each precinct's first turf walked completely, on the plan re-cut after weekend 1
    after1 = _doors(tmp_path / "w1")
    firsts = sorted(after1.dropna(subset=["turf_id"]).groupby("precinct_id")["turf_id"].min())
    w2 = _play(tmp_path / "w1", _walk(tmp_path / "w1", dict.fromkeys(firsts, 1.0)),
               tmp_path / "w2")
    for w in (w1, w2):
        assert w["kept"] >= 0.95, w["diff"]["explanations"]
        assert w["outside"] <= w["reported"]  # every turf within tolerance, or reported
        assert w["untouched"] <= w["after"]  # a turf nobody worked is never retired
        new, to_knock = w["new"], w["to_knock"]
        assert new.loc[to_knock.index, "turf_id"].notna().all()  # nothing lost
        assert all(n.count("in progress:") <= 1 for n in w["notes"])  # this weekend's only
    # finished turfs are closed, and the figures in the diff are the files' figures
    assert w2["diff"]["share_kept"] == pytest.approx(w2["kept"], abs=1e-6)


def test_recut_with_no_results_from_the_plan_file_gives_the_same_turfs_and_figures(
        first) -> None:
    """Cut, re-check with the report, re-cut with no results: the same turfs, the same figures."""
    plan, cut = first
    rc = recut(read_plan(cut), empty_results())
    pd.testing.assert_series_equal(rc.plan.doors[schema.TURF_ID], plan.doors[schema.TURF_ID])
    pd.testing.assert_series_equal(rc.plan.doors[schema.SEQ], plan.doors[schema.SEQ])
    assert rc.plan.report["summary"] == plan.report["summary"]
    cols = ["doors", "weight", "deviation", "pieces", "strict_pieces", "barrier_sides",
            "polsby_popper", "walk_m", "est_minutes"]
    pd.testing.assert_frame_equal(pd.DataFrame(rc.plan.turfs[cols]),
                                  pd.DataFrame(plan.turfs[cols]))


def test_recut_from_the_plan_file_equals_recut_in_memory(first) -> None:
    """The documented case (a random 10 % knocked): the plan read back re-cuts exactly as the
    plan in memory, and keeps at least 99 % of the doors left in their turf."""
    plan, cut = first
    a = plan.doors[plan.doors[schema.TURF_ID].notna()]
    rng = np.random.default_rng(7)
    pick = np.sort(rng.choice(len(a), size=round(0.1 * len(a)), replace=False))
    res = pd.DataFrame({"address_id": a.index[pick].astype(str), "result": "contacted",
                        "timestamp": pd.Timestamp("2024-06-01T10:00Z")})
    mem, disk = recut(plan, res), recut(read_plan(cut), res)
    assert mem.diff == disk.diff
    pd.testing.assert_frame_equal(pd.DataFrame(mem.plan.doors), pd.DataFrame(disk.plan.doors))
    assert disk.diff["share_kept"] >= 0.99 and disk.diff["turfs_retired"] == []


def test_a_finished_turf_is_closed_and_its_neighbours_untouched(first) -> None:
    """Each precinct's first turf done (every door contacted): those turfs are closed, every
    other turf keeps its doors and its walk order, whatever the doors left per turf."""
    plan, cut = first
    d = plan.doors[plan.doors[schema.TURF_ID].notna()]
    firsts = sorted(d.groupby(schema.PRECINCT_ID)[schema.TURF_ID].min().astype(str))
    done = d.index[d[schema.TURF_ID].isin(firsts)].astype(str)
    res = pd.DataFrame({"address_id": done, "result": "contacted",
                        "timestamp": pd.Timestamp("2026-11-21T10:00Z")})
    rc = recut(read_plan(cut), res)
    states = {t["turf_id"]: t["state"] for t in rc.diff["turfs"]}
    assert {t for t, s in states.items() if s == "closed"} == set(firsts)
    assert {s for t, s in states.items() if t not in firsts} == {"untouched"}
    assert rc.diff["turfs_retired"] == firsts and rc.diff["doors_moved"] == 0
    left = d.index[~d[schema.TURF_ID].isin(firsts)]
    pd.testing.assert_series_equal(rc.plan.doors.loc[left, schema.SEQ],
                                   plan.doors.loc[left, schema.SEQ])
