"""The canvass-results loop on the bundled Nantes sample: import, progress, opt-outs, re-cut,
calibration, and the phone map used as a canvassing app in headless Chromium (offline)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import open_offline

from knockin_geo import canvass, io, schema, streets
from knockin_geo._errors import InputError
from knockin_geo.canvass import (
    RESULT_CODES,
    calibrate,
    calibrated_params,
    current_state,
    merge_results,
    normalize_code,
    opt_outs_from_results,
    progress,
    read_results,
)
from knockin_geo.plan import TurfPlan, plan_turfs
from knockin_geo.privacy import apply_opt_outs, pseudonymize
from knockin_geo.recut import recut

NANTES = Path(__file__).resolve().parents[1] / "data" / "nantes"
UNIVERSE = ["0101", "0301", "0319"]
SECRET = b"a-campaign-secret-of-enough-length"
#: spellings written into the generated files, and the code each one means
SPELLINGS = [
    ("Not Home", "not_home"), ("contact", "contacted"), ("Refus", "refused"),
    ("NH", "not_home"), ("Contacted", "contacted"), ("Déménagé", "moved"),
    ("Absent", "not_home"), ("Repasser", "come_back"), ("Ne pas contacter", "do_not_contact"),
    ("Inaccessible", "inaccessible"), ("Refused", "refused"), ("Contact", "contacted"),
]


@pytest.fixture(scope="module")
def inputs():
    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(NANTES / "addresses" / "adresses_nantes_commune_2013.csv")
    net = streets.load_network(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf", cache=False)
    return precincts, doors, net


@pytest.fixture(scope="module")
def plan(inputs) -> TurfPlan:
    precincts, doors, net = inputs
    return plan_turfs(doors, net, precincts=precincts, universe=UNIVERSE)


def _turf_doors(plan: TurfPlan) -> dict[str, list[str]]:
    d = plan.doors[plan.doors[schema.TURF_ID].notna()].sort_values(
        [schema.TURF_ID, schema.SEQ])
    return {str(t): g.index.astype(str).tolist() for t, g in d.groupby(schema.TURF_ID)}


def _write(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def generated(plan: TurfPlan, tmp_path_factory: pytest.TempPathFactory):
    """Turf i gets i*10 % of its doors knocked (fixed rng), codes mixed, some doors twice."""
    rng = np.random.default_rng(42)
    rows: list[list[str]] = []
    expected: dict[str, Counter] = {}
    knocked: dict[str, int] = {}
    t0 = pd.Timestamp("2024-06-01T08:00:00Z")
    k = 0
    for i, (tid, ids) in enumerate(sorted(_turf_doors(plan).items())):
        n = round(len(ids) * ((i * 10) % 100) / 100)
        chosen = sorted(rng.choice(ids, size=n, replace=False).tolist())
        knocked[tid] = n
        expected[tid] = Counter()
        who = "alice" if i % 2 == 0 else "bob"
        for j, aid in enumerate(chosen):
            spelling, code = SPELLINGS[(i + j) % len(SPELLINGS)]
            ts = t0 + pd.Timedelta(minutes=3 * k)
            k += 1
            if j < 3:  # an earlier visit: nobody home (naive time, taken as UTC)
                early = (ts - pd.Timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
                rows.append([aid, tid, "absent", early, who, ""])
            stamp = ts.isoformat() if j % 2 else ts.tz_convert("Europe/Paris").isoformat()
            rows.append([aid, tid, spelling, stamp, who, f"note {j}" if j % 5 == 0 else ""])
            expected[tid][code] += 1
    path = _write(tmp_path_factory.mktemp("results") / "results.csv",
                  ["Address_ID", "Turf_ID", "Result", "Timestamp", "Canvasser", "Note"],
                  rows, delimiter=";")
    return path, expected, knocked, len(rows)


def test_result_code_spellings() -> None:
    from knockin_geo.maps import VOLUNTEER_LABELS

    for spelling, code in SPELLINGS:
        assert normalize_code(spelling) == code
    for code in RESULT_CODES:
        assert normalize_code(code) == code
        assert normalize_code(code.upper().replace("_", " ")) == code
        for lang in ("fr", "en"):  # what the phone map shows reads back
            assert normalize_code(VOLUNTEER_LABELS[lang]["codes"][code]) == code
    assert normalize_code("DNC") == "do_not_contact"
    assert normalize_code("  come-back ") == "come_back"
    assert normalize_code("A repasser") == "come_back"
    assert normalize_code("maybe") is None
    assert normalize_code("") is None


def test_progress_counts_match_the_generated_results(plan: TurfPlan, generated) -> None:
    path, expected, knocked, n_rows = generated
    imp = read_results(path, plan)
    assert imp.problems == [] and len(imp.rejected) == 0
    assert len(imp.results) == n_rows
    assert str(imp.results["timestamp"].dt.tz) == "UTC"
    merged, dup = merge_results(None, imp.results)
    assert dup == 0
    pg = progress(plan, merged)
    turf = pg["turf"]
    assert list(turf.index) == sorted(map(str, plan.turfs.index))
    for tid, row in turf.iterrows():
        n_doors = int((plan.doors[schema.TURF_ID] == tid).sum())
        exp = expected[tid]
        assert row["doors"] == n_doors
        assert row["knocked"] == knocked[tid]
        assert row["coverage"] == pytest.approx(knocked[tid] / n_doors, abs=0)
        assert row["contacted"] == exp["contacted"]
        assert row["refused"] == exp["refused"]
        assert row["do_not_contact"] == exp["do_not_contact"]
        assert row["not_home"] == exp["not_home"]
        assert row["come_back"] == exp["come_back"]
        if knocked[tid]:
            assert row["contact_rate"] == pytest.approx(exp["contacted"] / knocked[tid], abs=0)
        else:
            assert np.isnan(row["contact_rate"])
        assert row["to_do"] == n_doors - knocked[tid] + exp["not_home"] + exp["come_back"]
    assert turf["knocked"].iloc[0] == 0  # turf 0: 0 %
    # precincts and the total add up
    assert pg["precinct"]["knocked"].sum() == sum(knocked.values())
    assert pg["total"].loc["all", "doors"] == int(plan.doors[schema.TURF_ID].notna().sum())
    assert pg["total"].loc["all", "knocked"] == sum(knocked.values())
    for pid, row in pg["precinct"].iterrows():
        mine = [t for t in turf.index if t.startswith(f"{pid}-")]
        assert row["knocked"] == turf.loc[mine, "knocked"].sum()
    # canvassers: alice has the even turfs
    names = sorted(expected)
    alice = [t for i, t in enumerate(names) if i % 2 == 0 and knocked[t]]
    assert pg["canvasser"].loc["alice", "knocked"] == sum(knocked[t] for t in alice)
    assert pg["canvasser"].loc["alice", "turfs"] == len(alice)


def test_bad_rows_are_reported_not_dropped(plan: TurfPlan, tmp_path: Path) -> None:
    ids = _turf_doors(plan)
    tid, other = sorted(ids)[:2]
    a, b, c = ids[tid][:3]
    path = _write(tmp_path / "r.csv", ["id", "turf_id", "result", "timestamp", "note"], [
        [a, tid, "contacted", "2024-06-01T10:00:00Z", "ok"],
        ["no-such-door", tid, "contacted", "2024-06-01T10:01:00Z", ""],
        [b, tid, "maybe later?", "2024-06-01T10:02:00Z", ""],
        [c, other, "refused", "2024-06-01T10:03:00Z", ""],
        [b, tid, "refused", "yesterday", ""],
        [c, "NOPE-01", "refused", "2024-06-01T10:04:00Z", ""],
        ["", tid, "", "", ""],
        [c, "", "Ne pas contacter", "2024-06-01T10:05:00", "'=HYPERLINK(1)"],
    ])
    imp = read_results(path, plan)
    assert imp.results[schema.ADDRESS_ID].tolist() == [a, c]
    assert imp.results["note"].tolist() == ["ok", "=HYPERLINK(1)"]
    assert imp.results[schema.TURF_ID].tolist() == [tid, tid]  # the plan's turf
    assert imp.rejected["row"].tolist() == [2, 3, 4, 5, 6, 7]
    reasons = imp.rejected["reason"].tolist()
    assert "unknown id 'no-such-door'" in reasons[0]
    assert "unknown result code 'maybe later?'" in reasons[1]
    assert "turf mismatch" in reasons[2] and tid in reasons[2]
    assert "not ISO 8601" in reasons[3]
    assert "unknown turf 'NOPE-01'" in reasons[4]
    assert "empty id" in reasons[5] and "empty result code" in reasons[5]
    assert imp.problems[0].startswith("row 2: unknown id")
    assert any("pseudonymous" in p for p in imp.problems)  # a hint: maybe a secret is missing


def test_whole_file_problems_raise(plan: TurfPlan, tmp_path: Path) -> None:
    path = _write(tmp_path / "noid.csv", ["who", "result", "timestamp"], [["x", "NH", "2024"]])
    with pytest.raises(InputError, match=r"noid\.csv.*id column"):
        read_results(path, plan)
    path = _write(tmp_path / "nocode.csv", ["address_id", "timestamp"], [["x", "2024"]])
    with pytest.raises(InputError, match="result column"):
        read_results(path, plan)
    path = _write(tmp_path / "pseudo.csv", ["pseudo_id", "result", "timestamp"], [])
    with pytest.raises(InputError, match="campaign secret"):
        read_results(path, plan)
    with pytest.raises(InputError, match="not found"):
        read_results(tmp_path / "missing.csv", plan)


def test_second_import_of_the_same_file_is_detected(plan: TurfPlan, generated) -> None:
    path, _, knocked, n_rows = generated
    first, _ = merge_results(None, read_results(path, plan).results)
    again, dup = merge_results(first, read_results(path, plan).results)
    assert dup == n_rows
    assert len(again) == len(first)
    pd.testing.assert_frame_equal(progress(plan, again)["turf"], progress(plan, first)["turf"])
    assert progress(plan, again)["total"].loc["all", "knocked"] == sum(knocked.values())


def test_results_file_round_trips(plan: TurfPlan, generated, tmp_path: Path) -> None:
    path, *_ = generated
    merged, _ = merge_results(None, read_results(path, plan).results)
    out = canvass.write_results(merged, tmp_path / "store.csv")
    back = read_results(out, plan)
    assert back.problems == []
    again, dup = merge_results(merged, back.results)
    assert dup == len(merged) and len(again) == len(merged)


def test_pseudonymous_ids_round_trip_with_the_secret(plan: TurfPlan, tmp_path: Path) -> None:
    ids = _turf_doors(plan)
    tid = sorted(ids)[1]
    real = ids[tid][:5]
    pseudo = pseudonymize(real, SECRET).tolist()
    rows = [[p, tid, "contacted", f"2024-06-01T10:0{i}:00Z"] for i, p in enumerate(pseudo)]
    for column in ("pseudo_id", "id"):
        path = _write(tmp_path / f"{column}.csv", [column, "turf_id", "result", "timestamp"],
                      rows)
        imp = read_results(path, plan, secret=SECRET)
        assert imp.problems == []
        assert imp.results[schema.ADDRESS_ID].tolist() == real
        assert imp.ids["pseudo_id"] == 5
    # another secret does not map them
    imp = read_results(tmp_path / "id.csv", plan, secret=b"another-secret-of-enough-length")
    assert len(imp.results) == 0 and len(imp.rejected) == 5


def test_latest_result_is_the_state_and_do_not_contact_sticks() -> None:
    r = pd.DataFrame({
        "address_id": ["a", "a", "b", "b", "c"],
        "result": ["not_home", "contacted", "do_not_contact", "not_home", "refused"],
        "timestamp": pd.to_datetime(["2024-06-01T10:00Z", "2024-06-02T10:00Z",
                                     "2024-06-01T10:00Z", "2024-06-03T10:00Z",
                                     "2024-06-01T10:00Z"], utc=True),
    })
    st = current_state(r)
    assert st["result"].to_dict() == {"a": "contacted", "b": "do_not_contact", "c": "refused"}
    assert st["visits"].to_dict() == {"a": 2, "b": 2, "c": 1}
    assert list(opt_outs_from_results(r)["address_id"]) == ["b"]


def test_do_not_contact_results_feed_the_opt_out_list(plan: TurfPlan, inputs) -> None:
    precincts, doors, net = inputs
    ids = _turf_doors(plan)
    dnc = [ids[t][2] for t in sorted(ids)[:4]]
    r = pd.DataFrame({"address_id": [*dnc, ids[sorted(ids)[0]][5]],
                      "result": ["do_not_contact"] * 4 + ["contacted"],
                      "timestamp": pd.Timestamp("2024-06-01T10:00Z")})
    opt = opt_outs_from_results(r)
    assert sorted(opt["address_id"]) == sorted(dnc)
    marked, n = apply_opt_outs(plan.doors, opt)
    assert n == 4 and (marked.loc[dnc, schema.STATUS] == "opted_out").all()
    again = plan_turfs(doors, net, precincts=precincts, universe=UNIVERSE, opt_outs=opt,
                       route=False)
    assert (again.doors.loc[dnc, schema.STATUS] == "opted_out").all()
    assert again.doors.loc[dnc, schema.TURF_ID].isna().all()
    assert again.report["opted_out"] == 4


def _knock(plan: TurfPlan, share: float, seed: int, codes=("contacted", "refused", "moved")):
    rng = np.random.default_rng(seed)
    a = plan.doors[plan.doors[schema.TURF_ID].notna()]
    pick = np.sort(rng.choice(len(a), size=round(share * len(a)), replace=False))
    return pd.DataFrame({
        "address_id": a.index[pick].astype(str),
        "turf_id": a[schema.TURF_ID].to_numpy()[pick],
        "result": [codes[i % len(codes)] for i in range(len(pick))],
        "timestamp": pd.Timestamp("2024-06-01T10:00Z") + pd.to_timedelta(
            np.arange(len(pick)), unit="min"),
    })


def _check_recut(plan: TurfPlan, res: pd.DataFrame, rc) -> None:
    diff = rc.diff
    before = plan.doors[schema.TURF_ID].notna()
    done = set(current_state(res).index) & set(plan.doors.index[before].astype(str))
    assert diff["doors_removed"] == len(done)
    assert diff["doors_remaining"] == int(before.sum()) - len(done)
    assert diff["doors_kept_in_turf"] + diff["doors_moved"] == diff["doors_remaining"]
    d = rc.doors
    assigned = d[d[schema.TURF_ID].notna()]
    assert len(assigned) == diff["doors_remaining"]  # every remaining door in exactly one turf
    assert set(assigned.index.astype(str)).isdisjoint(done)
    assert (d.loc[sorted(done), schema.STATUS].isin(["canvassed", "opted_out"])).all()
    for tid, g in assigned.groupby(schema.TURF_ID):
        assert sorted(g[schema.SEQ].tolist()) == list(range(1, len(g) + 1)), tid
    assert set(rc.turfs.index) == set(assigned[schema.TURF_ID])
    assert int(rc.turfs["doors"].sum()) == len(assigned)
    assert set(diff["turfs_new"]).isdisjoint(map(str, plan.turfs.index))  # fresh ids
    assert sorted(diff["turfs_kept"] + diff["turfs_new"]) == sorted(map(str, rc.turfs.index))
    moved = rc.moves["moved"]
    assert int(moved.sum()) == diff["doors_moved"]
    # every turf within tolerance, or the report says why
    for t, row in rc.turfs.iterrows():
        if not row["within_tolerance"]:
            probs = [p for p in rc.plan.report["problems"]
                     if p[schema.TURF_ID] == t and p["problem"] == "size outside tolerance"]
            assert probs and probs[0]["why"], t


def test_recut_after_ten_percent_keeps_turfs(plan: TurfPlan) -> None:
    doors_before = plan.doors.copy()
    res = _knock(plan, 0.10, seed=7)
    rc = recut(plan, res)
    _check_recut(plan, res, rc)
    assert rc.diff["share_kept"] >= 0.9
    assert rc.diff["turfs_retired"] == [] or rc.diff["explanations"]
    assert rc.plan.report["recut"]["doors_moved"] == rc.diff["doors_moved"]
    pd.testing.assert_frame_equal(plan.doors, doors_before)  # the input is untouched
    again = recut(plan, res)
    assert again.diff == rc.diff  # deterministic
    assert again.doors[schema.SEQ].equals(rc.doors[schema.SEQ])


def test_recut_retires_an_almost_finished_turf(plan: TurfPlan) -> None:
    ids = _turf_doors(plan)
    tid = "0301-01"
    done = ids[tid][: len(ids[tid]) - 6]
    res = pd.DataFrame({"address_id": done, "result": "contacted",
                        "timestamp": pd.Timestamp("2024-06-01T10:00Z")})
    rc = recut(plan, res)
    _check_recut(plan, res, rc)
    assert tid in rc.diff["turfs_retired"]
    assert rc.diff["attached"] and rc.diff["attached"][0]["from"] == tid
    assert rc.diff["doors_moved"] == 6
    assert any(tid in e for e in rc.diff["explanations"])
    # not_home doors stay in the plan; any=True removes them too
    nh = res.assign(result="not_home")
    assert recut(plan, nh).diff["doors_removed"] == 0
    assert recut(plan, nh, remove="any").diff["doors_removed"] == len(done)


def test_recut_after_thirty_percent_keeps_every_turf(plan: TurfPlan) -> None:
    """Every turf was worked and shrank alike: none is retired or re-cut; they stay balanced
    among themselves (or the report says why)."""
    res = _knock(plan, 0.30, seed=3)
    rc = recut(plan, res)
    _check_recut(plan, res, rc)
    assert rc.diff["turfs_retired"] == [] and rc.diff["turfs_new"] == []
    assert rc.diff["share_kept"] >= 0.95
    assert {t["state"] for t in rc.diff["turfs"]} == {"in progress"}


def test_leftovers_of_a_finished_precinct_are_cut_again_with_fresh_ids(plan: TurfPlan) -> None:
    """Three doors left in every turf of 0101: too few for a turf each and no turf of 0101 left
    to join, so they are cut again into one turf with a fresh id; other precincts untouched."""
    ids = _turf_doors(plan)
    done = [a for t, doors in ids.items() if t.startswith("0101-") for a in doors[:-3]]
    res = pd.DataFrame({"address_id": done, "result": "contacted",
                        "timestamp": pd.Timestamp("2024-06-01T10:00Z")})
    rc = recut(plan, res)
    _check_recut(plan, res, rc)
    old_0101 = [t for t in ids if t.startswith("0101-")]
    assert rc.diff["turfs_new"] == [f"0101-{len(old_0101) + 1:02d}"]
    assert sorted(rc.diff["turfs_retired"]) == old_0101
    others = [t for t in ids if not t.startswith("0101-")]
    assert sorted(rc.diff["turfs_kept"]) == others
    assert rc.diff["doors_moved"] == 3 * len(old_0101)


def test_calibrate_doors_per_hour(plan: TurfPlan) -> None:
    ids = _turf_doors(plan)
    rows = []
    for i, tid in enumerate(sorted(ids)[:3]):
        t0 = pd.Timestamp("2024-06-01T09:00Z") + pd.Timedelta(hours=4 * i)
        for j, aid in enumerate(ids[tid][:21]):
            gap = pd.Timedelta(minutes=2.5 * j) + (pd.Timedelta(minutes=45) if j > 10 else
                                                   pd.Timedelta(0))  # a 45-minute break
            rows.append({"address_id": aid, "turf_id": tid, "canvasser": f"v{i}",
                         "result": "contacted" if j % 4 == 0 else "not_home",
                         "timestamp": t0 + gap})
    cal = calibrate(pd.DataFrame(rows), plan)
    allr = cal.loc["all"]
    assert allr["intervals"] == 3 * 19  # 20 gaps per turf, the break ignored
    assert allr["doors_per_hour"] == pytest.approx(24.0)
    assert allr["minutes_per_door"] == pytest.approx(2.5)
    assert allr["contact_rate"] == pytest.approx(3 * 6 / 63)
    assert 0 < allr["walk_minutes_per_door"] < 2.5
    assert set(cal.index) <= {"dense", "suburban", "rural", "all"}
    params = calibrated_params(cal, plan.params)
    assert 0 < params.minutes_per_door < 2.5
    assert params.doors_per_turf == plan.params.doors_per_turf
    with pytest.raises(InputError):
        calibrated_params(cal, area_type="rural")


def test_calibration_loop_fits_the_pace_and_feeds_the_next_cut(
        plan: TurfPlan, tmp_path: Path) -> None:
    """Results timed as a 3 km/h walk plus 1 minute per household: calibrate finds both, the
    table written by `progress --calibrate --out` feeds `cut --calibration`."""
    from knockin_geo.cli.main import main

    from knockin_geo.canvass import read_calibration
    from knockin_geo.sheets import frame_csv

    ids = _turf_doors(plan)
    hh = plan.doors[schema.HOUSEHOLDS].astype(float)
    hh.index = hh.index.astype(str)
    t = plan.turfs
    walk_pd = t["walk_m"] / t["doors"]  # metres a door, from the plan
    rows = []
    for i, tid in enumerate(sorted(ids)):
        knocked = ids[tid][:21]
        gap = walk_pd[tid] / 50.0 + 1.0 * hh.reindex(knocked).mean()  # 50 m/min = 3 km/h
        t0 = pd.Timestamp("2024-06-01T09:00Z") + pd.Timedelta(hours=4 * i)
        for j, aid in enumerate(knocked):
            rows.append({"address_id": aid, "turf_id": tid, "canvasser": f"v{i}",
                         "result": "not_home", "timestamp": t0 + pd.Timedelta(minutes=gap * j)})
    cal = calibrate(pd.DataFrame(rows), plan)
    assert cal.loc["all", "walk_speed_kmh"] == pytest.approx(3.0, rel=0.02)
    assert cal.loc["all", "fitted_minutes_per_household"] == pytest.approx(1.0, rel=0.02)
    path = tmp_path / "progress_calibration.csv"
    path.write_text(frame_csv(cal), encoding="utf-8")
    assert read_calibration(path) == {"walk_speed_kmh": 3.0, "minutes_per_door": 1.0}
    out = tmp_path / "cut"
    addresses = str(NANTES / "addresses" / "adresses_nantes_commune_2013.csv")
    network = str(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf")
    precincts = str(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    code = main(["cut", "--precincts", precincts,
                 "--addresses", addresses, "--network", network, "--universe", "0101",
                 "--minutes-per-turf", "60", "--no-route",
                 "--calibration", str(path), "--out", str(out)])
    assert code == 0
    params = json.loads((out / "report.json").read_text(encoding="utf-8"))["params"]
    assert params["walk_speed_kmh"] == 3.0 and params["minutes_per_door"] == 1.0
    # a table without the measured column is refused with exit code 2, naming the flag
    bad = tmp_path / "bad.csv"
    bad.write_text("area_type,doors\nall,3\n", encoding="utf-8")
    assert main(["cut", "--addresses", addresses, "--network", network,
                 "--calibration", str(bad), "--out", str(tmp_path / "bad")]) == 2


# ----------------------------------------------------------------------------------------------
# the phone map as a canvassing app
# ----------------------------------------------------------------------------------------------
def _lonely_door(plan: TurfPlan, tid: str) -> int:
    """Index (walk order) of a door with no other door within 25 m: its marker is tappable."""
    d = plan.doors[plan.doors[schema.TURF_ID] == tid].sort_values(schema.SEQ)
    xy = np.column_stack([d.geometry.x, d.geometry.y])
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    np.fill_diagonal(dist, np.inf)
    return int(np.flatnonzero(dist.min(axis=1) > 25)[0])


def test_phone_map_records_results_offline_and_exports_them(
    browser, plan: TurfPlan, tmp_path: Path
) -> None:
    from knockin_geo.maps import volunteer_page

    tid = sorted(map(str, plan.turfs.index))[1]
    d = plan.doors[plan.doors[schema.TURF_ID] == tid].sort_values(schema.SEQ)
    ids = d.index.astype(str).tolist()
    pseudo = dict(zip(ids, pseudonymize(ids, SECRET).tolist(), strict=True))
    page_path = tmp_path / f"{tid}.html"
    page_path.write_text(volunteer_page(plan, tid, lang="en", door_ids=pseudo), encoding="utf-8")
    html = page_path.read_text(encoding="utf-8")
    assert not any(f'"{a}"' in html for a in ids[:20])  # only pseudonyms in the file

    context, page, errors, requests = open_offline(
        browser, page_path, 390, 760, is_mobile=True, has_touch=True, accept_downloads=True
    )

    # 1. tap a marker, write a note, tap "Contacted"
    i = _lonely_door(plan, tid)
    page.evaluate(
        "([lat, lon]) => { const m = Object.values(window).find(v => v instanceof L.Map);"
        " m.setView([lat, lon], 18, {animate: false}); }",
        [float(d.to_crs(4326).geometry.iloc[i].y), float(d.to_crs(4326).geometry.iloc[i].x)],
    )
    page.locator(f'.leaflet-marker-icon.kg-door[title^="{i + 1}. "]').tap()
    assert page.locator("#sheet.open").count() == 1
    page.fill("#note", "dog, ring twice")
    page.locator('#codes button[data-code="contacted"]').tap()
    assert page.locator("#sheet.open").count() == 1  # open until closed
    page.click("#sheet-close")
    assert page.locator("#sheet.open").count() == 0
    # 2. and 3. from the list (a row opens the form and closes the list)
    others = [j for j in range(len(ids)) if j != i][:2]
    for j, code in zip(others, ("not_home", "do_not_contact"), strict=True):
        page.click("#list")
        page.locator(f'#panel li[data-door="{pseudo[ids[j]]}"]').tap()
        page.locator(f'#codes button[data-code="{code}"]').tap()
        page.click("#sheet-close")
    assert page.locator("#done").inner_text() == "3"

    page.reload(wait_until="load")
    assert page.locator("#done").inner_text() == "3"
    # every door has a marker, shown or grouped under a nearer one ("+k"), in its state
    shown = page.evaluate(
        "() => [...document.querySelectorAll('.leaflet-marker-icon.kg-door')].map("
        "e => 1 + Number((e.querySelector('i') || {textContent: '0'}).textContent))")
    assert sum(shown) == len(ids)
    states = page.evaluate("() => markers.map(m => m.options.icon.options.className)")
    for k, code in zip([i, *others], ("contacted", "not_home", "do_not_contact"), strict=True):
        assert f"kg-r-{code}" in states[k].split()
    assert sum("kg-r-" in c for c in states) == 3
    assert page.locator(f'#panel li[data-door="{pseudo[ids[i]]}"]').get_attribute(
        "data-result") == "contacted"
    assert page.locator('#panel li[data-result="not_home"] .kg-state').inner_text() == "Not home"
    # the note is still there when the door is opened again
    page.click("#list")
    page.locator(f'#panel li[data-door="{pseudo[ids[i]]}"]').tap()
    assert page.input_value("#note") == "dog, ring twice"
    page.click("#sheet-close")

    page.click("#list")  # the counter and the export button head the list
    assert page.locator("#done").inner_text() == "3"
    with page.expect_download() as info:
        page.click("#export")
    saved = tmp_path / "export.csv"
    info.value.save_as(saved)
    context.close()
    assert errors == []
    assert requests == []

    text = saved.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "id,turf_id,result,timestamp,canvasser,note"
    imp = read_results(saved, plan, secret=SECRET)
    assert imp.problems == []
    assert sorted(imp.results[schema.ADDRESS_ID]) == sorted([ids[i], *(ids[j] for j in others)])
    assert imp.results.set_index(schema.ADDRESS_ID).loc[ids[i], "note"] == "dog, ring twice"
    assert (imp.results["timestamp"] > pd.Timestamp("2024-01-01", tz="UTC")).all()
    pg = progress(plan, imp.results)["turf"]
    assert pg.loc[tid, "knocked"] == 3
    assert pg.loc[tid, "contacted"] == 1 and pg.loc[tid, "do_not_contact"] == 1
    assert pg["knocked"].sum() == 3


def test_written_plan_is_read_back_and_re_cut_again(plan: TurfPlan, tmp_path: Path) -> None:
    from knockin_geo.plan import write_plan

    first = recut(plan, _knock(plan, 0.30, seed=3))
    write_plan(first.plan, tmp_path / "gen1", walk_lists=False, maps=False, exports=False)
    tables = canvass.read_plan_tables(tmp_path / "gen1")
    assert set(tables.turfs.index) == set(first.turfs.index)
    res = _knock(first.plan, 0.10, seed=5)
    pd.testing.assert_frame_equal(progress(tables, res)["turf"], progress(first.plan, res)["turf"])
    restored = canvass.restore_plan(plan, tmp_path / "gen1")
    assert restored.doors[schema.TURF_ID].equals(first.doors[schema.TURF_ID])
    second = recut(restored, res)
    _check_recut(restored, res, second)
    # the director's store, recorded on the first plan, reads back against the re-cut one
    store = canvass.write_results(_knock(plan, 0.05, seed=9), tmp_path / "store.csv")
    assert read_results(store, first.plan).rejected["reason"].str.contains("turf").any()
    back = read_results(store, first.plan, check_turf=False)
    assert back.problems == [] and len(back.results) == round(
        0.05 * int(plan.doors[schema.TURF_ID].notna().sum()))
    assert set(back.results[schema.TURF_ID]) <= set(map(str, plan.turfs.index))
    used = set(first.diff["turf_ids_used"])
    assert not set(second.diff["turfs_new"]) & used  # ids of every earlier turf stay retired
