"""What a new user reads when an input or a flag is wrong (issue 18): the message names the flag
they typed and the file, suggests what they meant, and nothing is replaced without a word."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import geopandas as gpd
import pytest
from knockin_geo.cli import main as cli
from knockin_geo.cli import outdir
from knockin_geo.cli.main import build_parser, main

from knockin_geo import io as kio
from knockin_geo.config import PlanConfig

ROOT = Path(__file__).resolve().parents[1]
NANTES = ROOT / "data" / "nantes"
PRECINCTS = NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson"
CENTRE = NANTES / "addresses" / "adresses_nantes_centre_2013_osmbbox.csv"
COMMUNE = NANTES / "addresses" / "adresses_nantes_commune_2013.csv"
PBF = NANTES / "osm" / "nantes_centre_2014-09.osm.pbf"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KNOCKIN_GEO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("COLUMNS", "200")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and stderr of ``knockin-geo argv`` (argparse errors included)."""
    try:
        code = main(["-q", *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


# ---- 18.1 a precinct file without a CRS names --precincts-crs -------------------------------
def test_shapefile_without_prj_names_precincts_crs(tmp_path: Path, capsys) -> None:
    shp = tmp_path / "bureaux.shp"
    gpd.read_file(PRECINCTS).head(5).to_file(shp)
    shp.with_suffix(".prj").unlink()
    args = ["inspect", "--precincts", str(shp), "--addresses", str(CENTRE)]
    code, err = _run(args, capsys)
    assert code == 2
    assert str(shp) in err
    assert "--precincts-crs" in err
    assert not re.search(r"--crs\b", err)  # the address flag would repeat the error forever
    # following the advice works
    code, err = _run([*args, "--precincts-crs", "EPSG:4326"], capsys)
    assert code == 0, err


def test_unknown_crs_names_the_flag(capsys) -> None:
    code, err = _run(["inspect", "--addresses", str(CENTRE), "--crs", "EPSG:nope"], capsys)
    assert code == 2 and "--crs" in err and str(CENTRE) in err


# ---- 18.2 --address-id: suggestions are ids; a column of repeats is refused ------------------
def test_wrong_address_id_suggests_only_id_columns(capsys) -> None:
    code, err = _run(["inspect", "--addresses", str(CENTRE), "--address-id", "id_adresse"],
                     capsys)
    assert code == 2
    hint = err.split("id_adresse", 1)[1]
    assert "'addr_id'" in hint
    assert "'adresse'" not in hint  # the full-address column is not an id


def test_id_like_columns_are_short_unique_tokens() -> None:
    table = kio.pd.read_csv(CENTRE, dtype=str, keep_default_na=False)
    assert kio._id_like_columns(table) == ["addr_id"]  # not adresse, rivoli, lon, lat...


def test_id_column_with_many_repeats_is_refused(capsys) -> None:
    code, err = _run(["inspect", "--addresses", str(CENTRE), "--address-id", "rivoli"], capsys)
    assert code == 2
    table = kio.pd.read_csv(CENTRE, dtype=str, keep_default_na=False)
    n_dup = int(table["rivoli"].duplicated().sum())
    top = table["rivoli"].value_counts().index[0]
    assert "'rivoli'" in err and f"{n_dup:,} duplicate rows" in err and repr(top) in err
    assert "--address-id" in err


def test_id_column_does_not_hide_the_streets() -> None:
    # the full address as id (2 repeats: kept, marked duplicate) still gives the street names
    out = kio.read_addresses(CENTRE, columns={"id": "adresse"})
    assert (out["street"] != "").all()
    assert out["street"].equals(kio.read_addresses(CENTRE)["street"].set_axis(out.index))


# ---- 18.3 --out holding an earlier plan ---------------------------------------------------
def _small_cut(out: Path) -> list[str]:
    return ["cut", "--precincts", str(PRECINCTS), "--addresses", str(CENTRE), "--network",
            str(PBF), "--universe", "0101", "--no-route", "--out", str(out)]


def test_out_with_an_earlier_plan_is_refused_without_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "plan"
    assert _run(_small_cut(out), capsys)[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, err = _run([*_small_cut(out), "--seed", "4"], capsys)
    assert code == 2
    assert "plan.gpkg" in err and "report.json" in err and "--overwrite" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    code, err = _run([*_small_cut(out), "--seed", "4", "--overwrite"], capsys)
    assert code == 0, err


def test_a_folder_without_a_plan_is_used(tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    assert _run(_small_cut(out), capsys)[0] == 0
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_demo_replaces_its_own_folder_only(tmp_path: Path, capsys) -> None:
    plan = tmp_path / "someone"
    plan.mkdir()
    (plan / "plan.gpkg").write_bytes(b"x")
    code, err = _run(["demo", "--out", str(plan)], capsys)
    assert code == 2 and "--overwrite" in err
    assert (plan / "plan.gpkg").read_bytes() == b"x"
    own = tmp_path / "demo-out"
    (own / "targeting").mkdir(parents=True)
    (own / "targeting" / "universe.txt").write_text("0101\n", encoding="utf-8")
    (own / "plan.gpkg").write_bytes(b"x")
    outdir.check_out(own, overwrite=False, demo=True)  # an earlier demo: replaced
    with pytest.raises(kio.InputError, match="--overwrite"):
        outdir.check_out(own, overwrite=False)


def test_batch_out_with_an_earlier_campaign(tmp_path: Path, capsys) -> None:
    out = tmp_path / "campaign"
    (out / "nantes").mkdir(parents=True)
    (out / "nantes" / "plan.gpkg").write_bytes(b"x")
    code, err = _run(["batch", str(ROOT / "data" / "campaign_example.toml"), "--out", str(out)],
                     capsys)
    assert code == 2 and "--resume" in err and "--overwrite" in err
    # resume reuses the folder on purpose
    outdir.check_out(out, overwrite=True, campaign=True)


# ---- 18.4 every parameter message names the flag typed ------------------------------------
_CUT = ["--addresses", str(CENTRE), "--network", str(PBF), "--out", "never-written"]
_FLAG_CASES = [
    (["cut", *_CUT], "--doors-per-turf", "-5"),
    (["cut", *_CUT], "--doors-per-turf", "nan"),
    (["cut", *_CUT], "--minutes-per-turf", "0"),
    (["cut", *_CUT], "--tolerance", "1.5"),
    (["cut", *_CUT], "--walk-speed-kmh", "0"),
    (["cut", *_CUT], "--minutes-per-door", "-1"),
    (["cut", *_CUT], "--max-snap-m", "-3"),
    (["cut", *_CUT], "--crossing-m", "-1"),
    (["cut", *_CUT], "--seed", "-1"),
    (["cut", *_CUT], "--seed", "1.5"),
    (["cut", *_CUT], "--network-profile", "bike"),
    (["cut", *_CUT], "--start", "a,b"),
    (["cut", *_CUT], "--balance-on", "voters"),
    (["cut", *_CUT], "--pseudonymize", None),
    (["recut", *_CUT, "--results", "r.csv"], "--min-fill", "2"),
    (["recut", *_CUT, "--results", "r.csv"], "--tolerance", "0"),
    (["inspect", "--addresses", str(CENTRE)], "--addr-column", "lon"),
    (["inspect", "--addresses", str(CENTRE)], "--crs", "EPSG:nope"),
    (["inspect", "--addresses", str(CENTRE), "--precincts", str(PRECINCTS)], "--precinct-id",
     "bureau_id"),
    (["inspect", "--addresses", str(CENTRE)], "--address-id", "nope"),
    (["batch", str(ROOT / "data" / "campaign_example.toml"), "--out", "never-written"],
     "--workers", "0"),
    (["import", "r.csv", "--plan", "p"], "--naive-tz", "Mars/Olympus"),
    (["demo", "--out", "never-written"], "--top", "0"),
    (["demo", "--out", "never-written"], "--doors-per-turf", "0"),
]


#: The flag a message must name when it is not the flag typed (the fix is another flag).
_NAMED = {"--pseudonymize": "--secret-file"}


@pytest.mark.parametrize(("argv", "flag", "value"), _FLAG_CASES)
def test_parameter_messages_name_the_flag(
    argv: list[str], flag: str, value: str | None, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KNOCKIN_GEO_SECRET", raising=False)
    code, err = _run([*argv, flag] + ([value] if value is not None else []), capsys)
    assert code == 2
    named = _NAMED.get(flag, flag)
    assert named in err
    # never the Python parameter: no doors_per_turf, no key_file= (beyond "x= in Python" notes)
    text = re.sub(r"\([^()]*in Python[^()]*\)", "", err.split("\n", 1)[-1] if "usage:" in err
                  else err)
    python_name = named.lstrip("-").replace("-", "_")
    if "_" in python_name:  # one-word names (seed, crs) are ordinary words too
        assert python_name not in text, err
    assert not re.search(r"\b[a-z]+_[a-z_]+=", text), err
    assert not (tmp_path / "never-written").exists()


def test_voter_and_field_flags_are_named(tmp_path: Path, capsys) -> None:
    ids = kio.read_addresses(CENTRE).index[:50]
    voters = tmp_path / "voters.csv"
    voters.write_text("address_id,priority\n" + "".join(f"{i},oui\n" for i in ids),
                      encoding="utf-8")
    base = [*_small_cut(tmp_path / "o"), "--voters", str(voters)]
    code, err = _run([*base, "--voters-flag", "prioritee"], capsys)
    assert code == 2 and "--voters-flag" in err and "'priority'" in err
    code, err = _run([*base, "--volunteer-field", "flag_prio"], capsys)
    assert code == 2 and "--volunteer-field" in err and "'flag_prio'" in err
    assert not (tmp_path / "o" / "plan.gpkg").exists()


def test_progress_and_import_name_the_plan_folder(tmp_path: Path, capsys) -> None:
    for argv in (["progress", "--plan", str(tmp_path)],
                 ["import", "r.csv", "--plan", str(tmp_path)]):
        code, err = _run(argv, capsys)
        assert code == 2 and str(tmp_path) in err and "knockin-geo cut" in err


# ---- 18.5 --universe 101 suggests 0101 ----------------------------------------------------
def test_universe_suggests_zero_padded_and_close_ids(tmp_path: Path, capsys) -> None:
    argv = ["cut", "--precincts", str(PRECINCTS), "--addresses", str(CENTRE), "--network",
            str(PBF), "--no-route", "--out", str(tmp_path / "o"), "--universe"]
    code, err = _run([*argv, "101,0301"], capsys)
    assert code == 2
    assert "'101'" in err and "did you mean '0101'?" in err
    code, err = _run([*argv, "01O1"], capsys)  # letter O for a zero
    assert code == 2 and "'0101'" in err
    assert not (tmp_path / "o").exists()


# ---- 18.11 the network profile is a flag ----------------------------------------------------
def test_network_profile_flag(tmp_path: Path, capsys) -> None:
    base = _small_cut(tmp_path / "x")
    args = build_parser().parse_args(base)
    assert PlanConfig.from_flags(args).inputs.network_profile == "canvass"  # the default
    reports = {}
    for profile in ("canvass", "walk"):
        out = tmp_path / profile
        code, err = _run([*_small_cut(out), "--network-profile", profile], capsys)
        assert code == 0, err
        reports[profile] = kio.pd.read_json(out / "report.json", typ="series")
    # the private ways only add streets: no door is farther from its street
    assert (reports["canvass"]["summary"]["doors_assigned"]
            >= reports["walk"]["summary"]["doors_assigned"])


# ---- 18.13 cut --help: grouped flags and two examples that parse ---------------------------
def test_cut_help_groups_and_examples(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["cut", "--help"])
    text = capsys.readouterr().out
    for group in ("inputs:", "turf size:", "barriers:", "routes:", "outputs:", "privacy:",
                  "examples:"):
        assert f"\n{group}" in text, group
    commands = [c for c in cli.CUT_EXAMPLES.replace("\\\n", " ").splitlines()
                if c.strip().startswith("knockin-geo")]
    assert len(commands) == 2
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(shlex.split(command)[1:])
        assert args.func is cli.cmd_cut


def test_top_level_help_lists_the_commands_the_walkthrough_names(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    listed = re.search(r"\{([a-z,]+)\}", text).group(1).split(",")
    guide = (ROOT / "docs" / "guide" / "walkthrough.md").read_text(encoding="utf-8")
    assert f"lists {len(listed)} commands" in guide or f"{len(listed)} commands" in guide
    for command in listed:
        assert f"`{command}`" in guide
