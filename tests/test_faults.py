"""Faults found by an outside audit (issue 13): each through the command line, on real data.

recut on results with no valid row, one-column lists, and the exit codes of bad plan folders,
of ``--out`` naming a file and of an import whose every row is rejected.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from knockin_geo.cli.main import main

from knockin_geo import canvass
from knockin_geo.export import read_canvassers
from knockin_geo.privacy import read_opt_outs, read_voter_file

ROOT = Path(__file__).resolve().parents[1]
LI = ROOT / "data" / "liechtenstein"
PLANKEN = "1155954"  # the smallest municipality: about 200 doors, 3 turfs
CUT = ["--precincts", str(LI / "municipalities.geojson"), "--precinct-id", "municipality_id",
       "--addresses", str(LI / "osm_addresses_liechtenstein_2024.csv"),
       "--network", str(LI / "liechtenstein-2024-03-03.osm.pbf"), "--universe", PLANKEN]


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KNOCKIN_GEO_CACHE", str(tmp_path_factory.getbasetemp() / "faults-cache"))
        mp.setenv("COLUMNS", "200")
        yield


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "plan"
    assert main(["-q", "cut", *CUT, "--out", str(out)]) == 0
    return out


def doors_of(folder: Path) -> pd.DataFrame:
    d = pyogrio.read_dataframe(folder / "plan.gpkg", layer="doors", read_geometry=False)
    return d.set_index("address_id")[["turf_id", "seq", "status"]].sort_index()


def assigned_ids(folder: Path, n: int) -> list[str]:
    d = doors_of(folder)
    return sorted(d.index[d["status"] == "assigned"])[:n]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# ---- recut with no valid result (item 4) --------------------------------------------------
def test_recut_of_a_header_only_results_file_keeps_the_plan(
    plan_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = canvass.write_results(canvass.empty_results(), tmp_path / "results.csv")
    assert len(results.read_text(encoding="utf-8").splitlines()) == 1  # the header only
    code, out, err = run(["-q", "recut", *CUT, "--results", str(results),
                          "--out", str(tmp_path / "recut")], capsys)
    assert code == 0, err
    assert "Traceback" not in err
    assert "0 doors done" in out
    assert "no result recorded" in out and "the plan is unchanged" in out
    # the volunteers' turfs and walk orders are those handed out
    pd.testing.assert_frame_equal(doors_of(tmp_path / "recut"), doors_of(plan_dir))


def test_recut_when_no_result_takes_a_door_out(
    plan_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Results only for doors still to do (not home), or for doors of another plan."""
    ids = assigned_ids(plan_dir, 3)
    rows = ["address_id,result,timestamp"]
    rows += [f"{i},not home,2026-11-21T10:0{k}:00Z" for k, i in enumerate(ids)]
    results = tmp_path / "weekend.csv"
    results.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = run(["-q", "recut", *CUT, "--results", str(results),
                          "--out", str(tmp_path / "recut")], capsys)
    assert code == 0, err
    assert "no door is done (3 results" in out and "the plan is unchanged" in out
    pd.testing.assert_frame_equal(doors_of(tmp_path / "recut"), doors_of(plan_dir))


# ---- one-column lists (item 5) ------------------------------------------------------------
ONE_COLUMN = {
    "header": "address_id\n{ids}\n",
    "no header": "{ids}\n",
    "header, CRLF, BOM": "\ufeffaddress_id\r\n{ids_crlf}\r\n",
    "no header, CRLF, BOM": "\ufeff{ids_crlf}\r\n",
    "header in capitals, blank lines": "\nAddress_ID\n\n{ids}\n\n",
    "quoted": '"address_id"\n{quoted}\n',
}


@pytest.mark.parametrize("layout", sorted(ONE_COLUMN))
def test_one_column_opt_out_lists(layout: str, plan_dir: Path, tmp_path: Path) -> None:
    ids = assigned_ids(plan_dir, 4)
    text = ONE_COLUMN[layout].format(ids="\n".join(ids), ids_crlf="\r\n".join(ids),
                                     quoted="\n".join(f'"{i}"' for i in ids))
    path = tmp_path / "optouts.csv"
    path.write_bytes(text.encode("utf-8"))
    got = read_opt_outs(path)
    assert got["address_id"].tolist() == ids


def test_a_one_column_opt_out_list_through_cut(
    plan_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = assigned_ids(plan_dir, 5)
    path = tmp_path / "do-not-knock.csv"
    path.write_bytes(("\ufeffaddress_id\r\n" + "\r\n".join(ids) + "\r\n").encode("utf-8"))
    code, _out, err = run(["-q", "cut", *CUT, "--opt-outs", str(path),
                           "--out", str(tmp_path / "cut")], capsys)
    assert code == 0, err
    doors = doors_of(tmp_path / "cut")
    assert (doors.loc[ids, "status"] == "opted_out").all()
    assert doors.loc[ids, "turf_id"].isna().all()
    assert (doors["status"] == "opted_out").sum() == len(ids)


def test_other_lists_with_one_column_or_pipes(tmp_path: Path) -> None:
    """The same delimiter detection everywhere: canvassers and voter files."""
    one = tmp_path / "canvassers.csv"
    one.write_text("\ufeffcanvasser_id\r\nanne\r\nbruno\r\n", encoding="utf-8")
    assert read_canvassers(one).index.tolist() == ["anne", "bruno"]
    piped = tmp_path / "canvassers_pipe.csv"
    piped.write_text("canvasser_id|name|capacity\nanne|Anne|2\nbruno|Bruno|1\n", encoding="utf-8")
    assert read_canvassers(piped)["capacity"].tolist() == [2, 1]
    voters = tmp_path / "voters.csv"
    voters.write_text("address_id\nLI000187\nLI000187\n", encoding="utf-8")
    assert read_voter_file(voters)["address_id"].tolist() == ["LI000187", "LI000187"]


@pytest.mark.parametrize("text", ["id;reason\nLI000187;moved\n", "adresse\n12 Rue X\n"])
def test_a_list_without_a_known_header_is_refused(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several columns, or one column whose header names something else: never read as ids."""
    path = tmp_path / "optouts.csv"
    path.write_text(text, encoding="utf-8")
    code, _out, err = run(["-q", "cut", *CUT, "--opt-outs", str(path),
                           "--out", str(tmp_path / "cut")], capsys)
    assert code == 2
    assert str(path) in err and "address_id" in err and "Traceback" not in err


# ---- exit codes (item 6) ------------------------------------------------------------------
def corrupt(plan_dir: Path, folder: Path, how: str) -> Path:
    shutil.copytree(plan_dir, folder)
    gpkg = folder / "plan.gpkg"
    if how == "garbage":
        gpkg.write_bytes(b"not a geopackage\n" * 100)
    elif how == "empty":
        gpkg.write_bytes(b"")
    elif how == "truncated":
        gpkg.write_bytes((plan_dir / "plan.gpkg").read_bytes()[:20_000])
    elif how == "other layers":
        gpkg.unlink()
        frame = pyogrio.read_dataframe(LI / "municipalities.geojson")
        pyogrio.write_dataframe(frame, gpkg, layer="doors")
    elif how == "bad report":
        (folder / "report.json").write_text("{not json", encoding="utf-8")
    return folder


@pytest.mark.parametrize("how", ["garbage", "empty", "truncated", "other layers", "bad report"])
@pytest.mark.parametrize("command", ["import", "progress"])
def test_a_corrupt_plan_folder_is_bad_input(
    how: str, command: str, plan_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = corrupt(plan_dir, tmp_path / "plan", how)
    results = tmp_path / "r.csv"
    results.write_text("address_id,result,timestamp\n", encoding="utf-8")
    argv = (["-q", "import", str(results), "--plan", str(folder)] if command == "import"
            else ["-q", "progress", "--plan", str(folder)])
    code, _out, err = run(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err
    named = folder / ("report.json" if how == "bad report" else "plan.gpkg")
    assert str(named) in err
    assert not (folder / "results.csv").exists()


@pytest.mark.parametrize("command", ["cut", "batch", "progress"])
def test_out_naming_an_existing_file_is_bad_input(
    command: str, plan_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "plan.txt"
    target.write_text("keep me", encoding="utf-8")
    argv = {
        "cut": ["-q", "cut", *CUT, "--out", str(target)],
        "batch": ["-q", "batch", str(ROOT / "data" / "campaign_example.toml"),
                  "--out", str(target / "inside")],
        "progress": ["-q", "progress", "--plan", str(plan_dir), "--out", str(target)],
    }[command]
    code, _out, err = run(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err
    assert f"--out {argv[-1]}" in err and "not a folder" in err
    assert target.read_text(encoding="utf-8") == "keep me"


def test_an_import_with_every_row_rejected_is_bad_input(
    plan_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "plan"
    shutil.copytree(plan_dir, folder)
    results = tmp_path / "other-plan.csv"
    results.write_text("address_id,result,timestamp\n"
                       "FR44109_0001,contacted,2026-11-21T10:00:00Z\n"
                       f"{assigned_ids(plan_dir, 1)[0]},maybe,2026-11-21T10:01:00Z\n",
                       encoding="utf-8")
    code, _out, err = run(["-q", "import", str(results), "--plan", str(folder)], capsys)
    assert code == 2
    assert "Traceback" not in err
    assert str(results) in err and "every row" in err and "nothing was imported" in err
    assert "row 1: unknown id 'FR44109_0001'" in err and "row 2:" in err
    assert not (folder / "results.csv").exists()  # no header-only store left behind
    # a file with some valid rows still imports them (exit 0) and lists the rejects
    ok = tmp_path / "weekend.csv"
    ok.write_text("address_id,result,timestamp\n"
                  f"{assigned_ids(plan_dir, 1)[0]},contacted,2026-11-21T10:00:00Z\n"
                  "nope,contacted,2026-11-21T10:00:00Z\n", encoding="utf-8")
    code, out, err = run(["-q", "import", str(ok), "--plan", str(folder)], capsys)
    assert code == 0, err
    assert "1 results" in out and "1 rows rejected" in out


def test_input_text_that_looks_like_console_markup_is_printed_as_is(
    plan_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a rejected id "[/b]nope" used to end in rich's MarkupError (exit 1) once the import was done
    folder = tmp_path / "plan"
    shutil.copytree(plan_dir, folder)
    results = tmp_path / "weekend.csv"
    results.write_text("address_id,result,timestamp\n"
                       f"{assigned_ids(plan_dir, 1)[0]},contacted,2026-11-21T10:00:00Z\n"
                       "[/b]nope,contacted,2026-11-21T10:00:00Z\n"
                       "[bold]x,contacted,2026-11-21T10:00:00Z\n", encoding="utf-8")
    code, out, err = run(["-q", "import", str(results), "--plan", str(folder)], capsys)
    assert code == 0, err
    assert "'[/b]nope'" in out and "'[bold]x'" in out


def test_moving_outputs_in_keeps_unchanged_files_and_replaces_the_rest(tmp_path: Path) -> None:
    """Same bytes: the old file stays (same inode); new bytes, or a file where a folder goes,
    are replaced; files the new run did not write are gone."""
    from knockin_geo._atomic import move_into_place

    out = tmp_path / "out"
    (out / "maps").mkdir(parents=True)
    (out / "maps" / "a.html").write_text("same", encoding="utf-8")
    (out / "maps" / "b.html").write_text("old", encoding="utf-8")
    (out / "maps" / "retired.html").write_text("gone", encoding="utf-8")
    (out / "report.json").write_text("{}", encoding="utf-8")
    (out / "walklists").write_text("a file where a folder goes", encoding="utf-8")
    ino = {p: (out / p).stat().st_ino for p in ("maps/a.html", "maps/b.html", "report.json")}
    tmp = out / ".build"
    (tmp / "maps").mkdir(parents=True)
    (tmp / "maps" / "a.html").write_text("same", encoding="utf-8")
    (tmp / "maps" / "b.html").write_text("new", encoding="utf-8")
    (tmp / "walklists").mkdir()
    (tmp / "walklists" / "index.html").write_text("list", encoding="utf-8")
    (tmp / "report.json").write_text("{}", encoding="utf-8")
    written = move_into_place(tmp, out)
    assert sorted(p.relative_to(out).as_posix() for p in written) == [
        "maps/a.html", "maps/b.html", "report.json", "walklists/index.html"]
    assert (out / "maps" / "a.html").stat().st_ino == ino["maps/a.html"]
    assert (out / "report.json").stat().st_ino == ino["report.json"]
    assert (out / "maps" / "b.html").read_text(encoding="utf-8") == "new"
    assert not (out / "maps" / "retired.html").exists()
    assert (out / "walklists" / "index.html").read_text(encoding="utf-8") == "list"
