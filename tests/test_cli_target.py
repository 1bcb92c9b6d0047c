"""``knockin-geo target`` on the results files people have: percentages only, US long files.

Every input here is built in code. Every run must end in exit 0 or 2 (never 1), and every
error message must name the flag the user typed, never the Python keyword.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from knockin_geo.cli.main import build_parser, main

import knockin_geo.target as target_module
from knockin_geo.target import SHARES_NOTE

ROOT = Path(__file__).resolve().parents[1]
NANTES = ROOT / "data" / "nantes"
PRECINCTS = NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson"
T2 = NANTES / "results" / "municipales2014_t2_par_bureau.csv"
#: The Python keywords of the targeting API that a CLI message must never show (a role of
#: ``--results-column ROLE=COLUMN`` is no keyword).
PY_KEYWORDS = re.compile(
    r"(?<!--results-column )\b(support|choices|contest|formula|columns|layout|commune|top"
    r"|threshold|ids|kind|by_voters|by_party|values|k|scheme|name|registered)="
)


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def shares_file(tmp_path: Path) -> Path:
    """The Nantes second round as a city publishes it: percentages per bureau, nothing else."""
    t2 = pd.read_csv(T2, dtype={"code_bv": str})
    pct = t2[["garnier", "rolland"]].div(t2["exprimes"], axis=0) * 100
    lines = ["code_bv,tour,Garnier,Rolland"] + [
        f"{k},2,{a:.2f}%,{b:.2f}%"
        for k, a, b in zip(t2["code_bv"], pct["garnier"], pct["rolland"], strict=True)
    ]
    path = tmp_path / "t2_pourcentages.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _target(tmp_path: Path, results: Path, *extra: str, out: str = "t") -> list[str]:
    return ["target", "--precincts", str(PRECINCTS), "--results", str(results), *extra,
            "--out", str(tmp_path / out)]


def test_shares_persuasion_and_formula_exit_0(tmp_path, shares_file, capsys):
    code = main(_target(tmp_path, shares_file, "--score", "persuasion",
                        "--choices", "garnier,rolland", "--top", "5"))
    out = capsys.readouterr().out
    assert code == 0
    assert "results as percentages: counts, turnout and abstention unknown" in out
    info = json.loads((tmp_path / "t" / "targeting.json").read_text(encoding="utf-8"))
    assert info["results"]["values"] == "shares"
    assert info["results"]["note"] == SHARES_NOTE
    ranking = pd.read_csv(tmp_path / "t" / "ranking.csv", dtype={"precinct_id": str})
    assert not any(c.startswith("votes_") for c in ranking.columns)
    assert ranking["registered"].isna().all()
    t2 = pd.read_csv(T2, dtype={"code_bv": str}).set_index("code_bv")
    r = ranking.set_index("precinct_id")
    exact = 1 - (t2["garnier"] - t2["rolland"]).abs() / t2["exprimes"]
    assert (r.loc[exact.index, "score"] - exact).abs().max() < 2e-4  # 2-decimal rounding
    code = main(_target(tmp_path, shares_file, "--formula", "share_rolland - share_garnier",
                        out="f"))
    assert code == 0
    assert "–" in capsys.readouterr().out  # turnout and registered shown as unknown


def test_shares_mobilisation_exits_2_and_registered_fixes_it(tmp_path, shares_file, capsys):
    for extra in (["--support", "rolland"], [], ["--score", "mobilisation"]):
        code = main(_target(tmp_path, shares_file, *extra))
        err = capsys.readouterr().err
        assert code == 2, extra
        assert "needs the abstainers" in err and "no registered voters column" in err
        assert "--score persuasion" in err and "--formula" in err and "--registered" in err
        assert not PY_KEYWORDS.search(err), err
    code = main(_target(tmp_path, shares_file, "--score", "persuasion", "--by-voters"))
    err = capsys.readouterr().err
    assert code == 2 and "--by-voters needs the voters" in err
    assert not (tmp_path / "t" / "ranking.csv").exists()
    # the liste électorale counts per bureau make mobilisation possible
    t2 = pd.read_csv(T2, dtype={"code_bv": str})
    reg = tmp_path / "inscrits.csv"
    t2[["code_bv", "inscrits"]].to_csv(reg, index=False)
    code = main(_target(tmp_path, shares_file, "--support", "rolland", "--registered", str(reg)))
    out = capsys.readouterr().out
    assert code == 0, capsys.readouterr().err
    assert "registered voters from" in out
    info = json.loads((tmp_path / "t" / "targeting.json").read_text(encoding="utf-8"))
    assert info["results"]["registered"]["matched"] == 209
    assert "turnout unknown" in info["formulas"]["score"]


# ------------------------------------------------------------------------------------------
# OpenElections long files (issue 18, item 6)
# ------------------------------------------------------------------------------------------

OE_PRECINCTS = ["101", "102", "103", "104"]
OE_OFF_MAP = ["201", "202"]  # in the results, not on the map
OE_PRESIDENT = {  # precinct: (REP, DEM, LIB)
    "101": (879, 271, 1), "102": (300, 420, 12), "103": (510, 505, 7), "104": (90, 310, 2),
    "201": (40, 44, 0), "202": (5, 9, 1),
}
OE_HOUSE = {"101": (1, 700, 420), "102": (1, 390, 330), "103": (2, 480, 520), "104": (2, 100, 280),
            "201": (2, 30, 50), "202": (2, 6, 8)}  # precinct: (district, REP, DEM)


def _openelections(tmp_path: Path) -> tuple[Path, Path]:
    """A county file in the OpenElections layout, and a map of 4 of its 6 precincts."""
    rows = ["county,precinct,office,district,party,candidate,votes,election_day,absentee"]
    for p in [*OE_PRECINCTS, *OE_OFF_MAP]:
        reg = 2000 + 100 * int(p[-1])
        rep, dem, lib = OE_PRESIDENT[p]
        rows += [
            f"Demo,{p},Registered Voters,,,,{reg},,",
            f"Demo,{p},Ballots Cast,,,,{rep + dem + lib + 5},,",
            f"Demo,{p},President,,REP,Donald J. Trump,{rep},{rep - 1},1",
            f"Demo,{p},President,,DEM,Kamala D. Harris,{dem},{dem},0",
            f"Demo,{p},President,,LIB,Chase Oliver,{lib},{lib},0",
            f"Demo,{p},President,,,Over Votes,3,3,0",
        ]
        district, hrep, hdem = OE_HOUSE[p]
        rows += [
            f"Demo,{p},U.S. House,{district},REP,Rep {district},{hrep},,",
            f"Demo,{p},U.S. House,{district},DEM,Dem {district},{hdem},,",
        ]
    results = tmp_path / "20241105__xx__general__demo__precinct.csv"
    results.write_text("\n".join(rows) + "\n", encoding="utf-8")
    prec = gpd.GeoDataFrame(
        {"precinct": OE_PRECINCTS},
        geometry=[shapely.box(i * 0.01, 0, (i + 1) * 0.01, 0.01) for i in range(4)],
        crs="EPSG:4326",
    )
    path = tmp_path / "precincts.geojson"
    prec.to_file(path, driver="GeoJSON")
    return results, path


def _oe_target(tmp_path, results, prec, *extra, out="oe"):
    return ["target", "--precincts", str(prec), "--results", str(results), *extra,
            "--out", str(tmp_path / out)]


def test_openelections_several_offices_needs_contest(tmp_path, capsys):
    results, prec = _openelections(tmp_path)
    code = main(_oe_target(tmp_path, results, prec, "--support", "DEM"))
    err = capsys.readouterr().err
    assert code == 2
    assert "2 contests" in err and "--contest President" in err and "'U.S. House'" in err
    assert not PY_KEYWORDS.search(err), err
    code = main(_oe_target(tmp_path, results, prec, "--contest", "Governor", "--support", "DEM"))
    err = capsys.readouterr().err
    assert code == 2 and "no row of contest 'Governor'" in err and "--contest" in err


def test_openelections_by_candidate_and_party(tmp_path, capsys):
    results, prec = _openelections(tmp_path)
    code = main(_oe_target(tmp_path, results, prec, "--contest", "President", "--support", "DEM",
                           "--top", "2"))
    out = capsys.readouterr().out
    assert code == 0, capsys.readouterr().err
    ranking = pd.read_csv(tmp_path / "oe" / "ranking.csv", dtype={"precinct_id": str})
    r = ranking.set_index("precinct_id")
    for p in OE_PRECINCTS:  # pseudo-offices give the counts; over-votes are not a choice
        rep, dem, lib = OE_PRESIDENT[p]
        assert r.loc[p, "registered"] == 2000 + 100 * int(p[-1])
        assert r.loc[p, "voters"] == rep + dem + lib + 5
        assert r.loc[p, "share_kamala_d_harris"] == pytest.approx(dem / (rep + dem + lib + 5))
        assert r.loc[p, "score"] == pytest.approx(
            (r.loc[p, "registered"] - r.loc[p, "voters"]) * r.loc[p, "share_kamala_d_harris"],
            rel=1e-5)
    assert "over_votes" not in " ".join(ranking.columns)
    # the precincts that are not on the map are reported, not dropped
    info = json.loads((tmp_path / "oe" / "targeting.json").read_text(encoding="utf-8"))
    assert info["join_report"]["unmatched_results"] == OE_OFF_MAP
    assert info["join_report"]["matched"] == 4
    assert "unmatched result rows: 2 (201, 202)" in out
    assert info["results"]["contest"] == "President"
    # by party: one share per party, across the districts of the House race
    code = main(_oe_target(tmp_path, results, prec, "--contest", "U.S. House", "--party",
                           "--score", "persuasion", "--choices", "DEM,REP", out="house"))
    assert code == 0, capsys.readouterr().err
    house = pd.read_csv(tmp_path / "house" / "ranking.csv", dtype={"precinct_id": str})
    h = house.set_index("precinct_id")
    for p in OE_PRECINCTS:
        _, hrep, hdem = OE_HOUSE[p]
        voters = sum(OE_PRESIDENT[p]) + 5
        assert h.loc[p, "share_dem"] == pytest.approx(hdem / voters)
        assert h.loc[p, "score"] == pytest.approx(1 - abs(hdem - hrep) / voters)
    # a party name also works without --party, for the candidates of that party
    code = main(_oe_target(tmp_path, results, prec, "--contest", "U.S. House", "--support",
                           "DEM", out="house2"))
    assert code == 0
    h2 = pd.read_csv(tmp_path / "house2" / "ranking.csv", dtype={"precinct_id": str})
    h2 = h2.set_index("precinct_id")
    assert h2.loc["103", "share_dem_2"] == pytest.approx(520 / (sum(OE_PRESIDENT["103"]) + 5))
    assert "share_dem_2" in json.loads(
        (tmp_path / "house2" / "targeting.json").read_text(encoding="utf-8"))["formulas"]["score"]


# ------------------------------------------------------------------------------------------
# Every error message of target names the flag, never the Python keyword
# ------------------------------------------------------------------------------------------


def _error_cases(tmp_path: Path, shares: Path) -> list[tuple[list[str], str]]:
    """(arguments, the flag the message must name) for each way ``target`` refuses input."""
    results, prec = _openelections(tmp_path)
    wide = tmp_path / "wide.csv"
    wide.write_text("GEOID20,G20PREDBID,G20USSDSMI\n101,1,2\n102,3,4\n", encoding="utf-8")
    noid = tmp_path / "noid.csv"
    noid.write_text("foo,bar\nx,1\n", encoding="utf-8")
    novotes = tmp_path / "novotes.csv"
    novotes.write_text("code_bv,nom\n0101,a\n", encoding="utf-8")
    offmap = tmp_path / "offmap.csv"
    offmap.write_text("code_bv,a,b\nX1,10,20\nX2,30,40\n", encoding="utf-8")
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("code_bv,a,b\n0101,52.5,47.5\n0102,180,264\n", encoding="utf-8")
    oe = [*_oe_target(tmp_path, results, prec)[:5]]
    t1 = NANTES / "results" / "municipales2014_t1_par_bureau.csv"
    base = _target(tmp_path, t1)[:5]
    out = ["--out", str(tmp_path / "never")]
    return [
        ([*oe, "--support", "DEM", *out], "--contest"),
        ([*oe, "--contest", "Mayor", *out], "--contest"),
        ([*_target(tmp_path, wide)[:5], *out], "--contest"),
        ([*_target(tmp_path, wide)[:5], "--contest", "G20GOV", *out], "--contest"),
        ([*_target(tmp_path, T2)[:5], "--party", *out], "--party"),
        ([*_target(tmp_path, T2)[:5], "--contest", "President", *out], "--contest"),
        ([*_target(tmp_path, noid)[:5], *out], "--layout"),
        ([*_target(tmp_path, noid)[:5], "--layout", "csv", *out], "--results-column"),
        ([*_target(tmp_path, novotes)[:5], "--layout", "csv", *out], "--results-column"),
        ([*base, "--results-column", "precint=code_bv", *out], "--results-column"),
        ([*base, "--results-column", "oops", *out], "--results-column"),
        ([*_target(tmp_path, mixed)[:5], *out], "--values"),
        ([*_target(tmp_path, shares)[:5], "--support", "rolland", *out], "--registered"),
        ([*_target(tmp_path, shares)[:5], "--score", "persuasion", "--by-voters", *out],
         "--by-voters"),
        ([*_target(tmp_path, shares)[:5], "--formula", "abstainers * 2", *out], "--formula"),
        ([*base, *out], "--support"),
        ([*base, "--support", "rollan", *out], "--support"),
        ([*base, "--support", "rolland", "--formula", "turnout", "--score", "mobilisation",
          *out], "--formula"),
        ([*base, "--support", "rolland", "--by-voters", *out], "--by-voters"),
        ([*base, "--score", "persuasion", "--support", "rolland", *out], "--support"),
        ([*base, "--score", "persuasion", "--choices", "rolland", *out], "--choices"),
        ([*base, "--score", "persuasion", "--choices", "rolland,dupont", *out], "--choices"),
        ([*base, "--score", "persuasion", "--choices", "rolland,rolland", *out], "--choices"),
        ([*base, "--score", "formula", *out], "--formula"),
        ([*base, "--formula", "turnot * 2", *out], "--formula"),
        ([*base, "--formula", "__import__('os')", *out], "--formula"),
        ([*base, "--formula", "(", *out], "--formula"),
        ([*base, "--support", "rolland", "--top", "0", *out], "--top"),
        ([*base, "--support", "rolland", "--top", "3", "--threshold", "1", *out], "--top"),
        ([*base, "--support", "rolland", "--ids", "0101,9999", *out], "--ids"),
        ([*base, "--support", "rolland", "--classes", "1", *out], "--classes"),
        ([*base, "--support", "rolland", "--registered", str(noid), *out], ""),
        ([*_target(tmp_path, shares)[:5], "--formula", "log(share_garnier - 1)", *out],
         "--formula"),
        ([*_target(tmp_path, offmap)[:5], "--score", "persuasion", *out], "--precinct-id"),
    ]


def test_every_target_error_names_the_flag(tmp_path, shares_file, capsys):
    for args, flag in _error_cases(tmp_path, shares_file):
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert "Traceback" not in err and "internal error" not in err, err
        assert not PY_KEYWORDS.search(err), (args, err)
        assert flag in err, (args, flag, err)
        assert not (tmp_path / "never").exists()


def test_every_keyword_target_messages_name_has_a_flag():
    """Each parameter ``target.py`` names in a message (``kw("...")``) maps to a flag."""
    tree = ast.parse(Path(target_module.__file__).read_text(encoding="utf-8"))
    named = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "kw"
        and node.args and isinstance(node.args[0], ast.Constant)
    }
    parser = build_parser()
    flags = parser.parse_args(["target", "--precincts", "p", "--results", "r", "--out", "o"]).flags
    # ``name=`` is the Python-only column name of score(); the command never passes it
    assert named - set(flags) == {"name"}, named - set(flags)
    option_strings = {o for a in parser._subparsers._group_actions[0].choices["target"]._actions
                      for o in a.option_strings}
    assert {flags[n] for n in named - {"name"}} <= option_strings


def test_a_marked_parameter_reads_as_python_or_as_the_flag():
    from knockin_geo._errors import InputError, keywords, kw

    err = InputError(
        f"{kw('kind', 'mobilisation')} needs {kw('support')}",
        [f"or {kw('contest', 'U.S. House')} with {kw('by_party', True, cli='')}"],
    )
    assert str(err) == (
        "kind='mobilisation' needs support=\n  - or contest='U.S. House' with by_party=True"
    )
    flags = {"kind": "--score", "support": "--support", "contest": "--contest",
             "by_party": "--party"}
    assert err.render(flags) == (
        "--score mobilisation needs --support\n  - or --contest 'U.S. House' with --party"
    )
    assert keywords(err.template) == ["kind", "support", "contest", "by_party"]
    # hostile text cannot forge or break a marker
    forged = InputError(f"file {'x' + chr(0) + 'support' + chr(31)} {kw('top')}")
    assert forged.render({"top": "--top"}).endswith("--top")


def test_input_text_that_looks_like_console_markup_is_printed_as_is(tmp_path, shares_file,
                                                                    capsys):
    # ids and names come from files anyone edits: "[/b]" is no markup error, "[bold]" no style
    text = shares_file.read_text(encoding="utf-8")
    text += "[/b]9999,2,50.00%,50.00%\n[bold]x,2,40.00%,60.00%\n"
    shares_file.write_text(text, encoding="utf-8")
    code = main(_target(tmp_path, shares_file, "--score", "persuasion",
                        "--choices", "garnier,rolland"))
    out = capsys.readouterr().out
    assert code == 0
    assert "[/b]9999" in out and "[bold]x" in out
