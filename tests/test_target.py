"""Tests of knockin_geo.target: results readers, join, indicators, scores, universe, doors, map.

The French ministry files (2024 and 2017–2022 layouts) and the US files are built here from the
Nantes round-1 numbers or toy values, with the exact published headers.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from knockin_geo import InputError, schema
from knockin_geo.io import read_precincts
from knockin_geo.target import (
    add_registered,
    change,
    check_formula,
    choropleth_png,
    classify,
    count_voters,
    evaluate_formula,
    indicators,
    join_results,
    pick_universe,
    read_registered,
    read_results,
    score,
    slugify,
    spread_voters,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "nantes"
T1 = DATA / "results" / "municipales2014_t1_par_bureau.csv"
T2 = DATA / "results" / "municipales2014_t2_par_bureau.csv"
PRECINCTS = DATA / "precincts" / "bureaux_vote_nantes_2014.geojson"
T1_CHOICES = [
    "gobet",
    "kongolo",
    "bouchet",
    "defrance",
    "rolland",
    "bruckert",
    "chiron",
    "garnier",
    "van_goethem",
    "croupy",
]
NUANCES = ["LEXG", "LEXG", "LFG", "LDIV", "LUG", "LDVD", "LUD", "LVEC", "LMDM", "LFN"]


@pytest.fixture(scope="module")
def precincts() -> gpd.GeoDataFrame:
    return read_precincts(PRECINCTS)


@pytest.fixture(scope="module")
def t1_raw() -> pd.DataFrame:
    return pd.read_csv(T1, dtype={"code_bv": str})


@pytest.fixture(scope="module")
def round1() -> pd.DataFrame:
    return read_results(T1)


@pytest.fixture(scope="module")
def joined1(precincts, round1):
    return join_results(precincts, round1)


# ------------------------------------------------------------------------------------------
# Nantes
# ------------------------------------------------------------------------------------------


def test_nantes_read_long_table(round1, t1_raw):
    assert round1.attrs["layout"] == "nantes"
    assert round1.attrs["source"] == str(T1)
    assert round1.attrs["election"] == "municipales2014_t1_par_bureau"
    assert list(round1.columns[:8]) == [
        "precinct_key",
        "registered",
        "voters",
        "blank",
        "null",
        "expressed",
        "choice",
        "votes",
    ]
    assert len(round1) == 209 * 10
    assert list(round1["choice"].iloc[:10]) == T1_CHOICES
    first = round1[round1["precinct_key"] == "0101"].set_index("choice")
    assert first.loc["rolland", "votes"] == 153
    assert first["registered"].iloc[0] == 1054
    assert first["blank"].isna().all()  # the Nantes file has no blank column
    assert round1["votes"].sum() == t1_raw[T1_CHOICES].to_numpy().sum()


def test_nantes_join_all_209(joined1, t1_raw):
    joined, report = joined1
    assert report["matched"] == 209
    assert report["unmatched_precincts"] == []
    assert report["unmatched_results"] == []
    assert len(joined) == 209
    raw = t1_raw.set_index("code_bv").loc[joined.index]
    # exact float equality: turnout is votants / inscrits, nothing else
    expected = raw["votants"].to_numpy(dtype=float) / raw["inscrits"].to_numpy(dtype=float)
    assert np.array_equal(joined["turnout"].to_numpy(), expected)
    assert np.array_equal(joined["abstainers"].to_numpy(), (raw["inscrits"] - raw["votants"]))
    shares = raw["rolland"].to_numpy(dtype=float) / raw["exprimes"].to_numpy(dtype=float)
    assert np.array_equal(joined["share_rolland"].to_numpy(), shares)
    assert joined.attrs["join_report"] == report
    assert joined["results_key"].tolist() == list(joined.index)


def test_nantes_round_change(round1):
    round2 = read_results(T2)
    delta = change(round1, round2)
    i1, i2 = indicators(round1), indicators(round2)
    assert len(delta) == 209
    assert np.allclose(delta["turnout_change"], i2["turnout"] - i1["turnout"], rtol=0, atol=0)
    # 0101: 457/1054 - 453/1054
    assert delta.loc["0101", "turnout_change"] == pytest.approx(457 / 1054 - 453 / 1054)
    assert delta.loc["0101", "voters_change"] == 4
    assert {"share_rolland_change", "share_garnier_change"} <= set(delta.columns)
    assert "share_gobet_change" not in delta.columns
    assert "share_gobet" in delta.attrs["only_in_a"]
    assert delta.attrs["formulas"]["turnout_change"] == "turnout(b) - turnout(a)"


def test_change_needs_same_precincts(round1):
    fewer = round1[round1["precinct_key"] != "0101"]
    with pytest.raises(InputError, match="same precincts") as err:
        change(round1, fewer)
    assert "0101" in str(err.value)


def test_top10_mobilisation(joined1):
    joined, _ = joined1
    scored = score(joined, "mobilisation", support="rolland")
    assert scored.attrs["formulas"]["score"] == "abstainers * share_rolland"
    expected = joined["abstainers"] * joined["share_rolland"]
    assert np.allclose(scored["score"], expected)
    top = pick_universe(scored, top=10)
    assert len(top) == 10
    values = scored.loc[top, "score"].to_numpy()
    assert np.all(np.diff(values) <= 0)
    assert values[-1] >= scored["score"].drop(index=top).max()
    assert scored.loc[top, "rank"].tolist() == list(range(1, 11))
    assert sorted(scored["rank"]) == list(range(1, 210))
    # 0101 by hand: (1054 - 453) abstainers * 153 / 443 Rolland share
    assert scored.loc["0101", "score"] == pytest.approx((1054 - 453) * 153 / 443, rel=1e-12)
    assert joined.columns.equals(joined1[0].columns)  # the input was not modified
    assert "score" not in joined.columns


def test_mobilisation_with_several_support_choices(joined1):
    joined, _ = joined1
    scored = score(joined, "mobilization", support=["rolland", "share_bouchet"], name="gauche")
    assert scored.attrs["formulas"]["gauche"] == "abstainers * (share_rolland + share_bouchet)"
    assert scored.loc["0101", "gauche"] == pytest.approx(601 * (153 + 25) / 443, rel=1e-12)


def test_formula_by_hand_on_three_bureaux(joined1):
    joined, _ = joined1
    formula = "abstainers * share_rolland / sqrt(registered) + max(share_garnier, share_chiron)"
    scored = score(joined, "formula", formula=formula)
    assert scored.attrs["formulas"]["score"] == formula
    # From the CSV: code_bv, inscrits, votants, exprimes, rolland, chiron, garnier
    rows = {
        "0101": (1054, 453, 443, 153, 71, 104),
        "0102": (1220, 689, 663, 217, 106, 146),
        "0103": (781, 470, 456, 101, 103, 131),
    }
    for bv, (ins, vot, exp, rol, chi, gar) in rows.items():
        expected = (ins - vot) * (rol / exp) / math.sqrt(ins) + max(gar / exp, chi / exp)
        assert scored.loc[bv, "score"] == pytest.approx(expected, rel=1e-12)


def test_persuasion_top_two_and_named(joined1):
    joined, _ = joined1
    top2 = score(joined, "persuasion")
    # 0101: top two are rolland 153 and garnier 104 of 443 expressed
    assert top2.loc["0101", "score"] == pytest.approx(1 - (153 - 104) / 443)
    named = score(joined, "persuasion", choices=["garnier", "rolland"], by_voters=True)
    assert named.loc["0102", "score"] == pytest.approx((1 - abs(146 - 217) / 663) * 689)
    assert named.attrs["formulas"]["score"] == "(1 - abs(share_garnier - share_rolland)) * voters"


def test_rank_ties_broken_by_precinct_id():
    frame = pd.DataFrame(
        {"abstainers": [10.0, 10.0, 4.0, np.nan], "share_a": [0.5, 0.5, 1.0, 0.5]},
        index=pd.Index(["03", "01", "02", "04"], name="precinct_id"),
    )
    scored = score(frame, "mobilisation", support="a")
    assert scored["rank"].tolist() == [2, 1, 3, 0]
    assert pick_universe(scored, top=3) == ["01", "03", "02"]
    assert pick_universe(scored, threshold=4.0) == ["01", "03", "02"]
    assert pick_universe(scored, threshold=4.5) == ["01", "03"]
    assert pick_universe(scored, top=10) == ["01", "03", "02"]  # NaN scores are never picked


def test_score_argument_errors(joined1):
    joined, _ = joined1
    with pytest.raises(InputError, match="needs support"):
        score(joined, "mobilisation")
    with pytest.raises(InputError, match="unknown choice 'rollan'"):
        score(joined, "mobilisation", support="rollan")
    with pytest.raises(InputError, match="does not take formula"):
        score(joined, "mobilisation", support="rolland", formula="turnout")
    with pytest.raises(InputError, match="unknown score kind"):
        score(joined, "turnout")
    with pytest.raises(InputError, match="unknown column"):
        score(joined, "formula", formula="turnot * 2")


def test_pick_universe_errors(joined1):
    joined, _ = joined1
    scored = score(joined, "formula", formula="turnout")
    with pytest.raises(InputError, match="exactly one"):
        pick_universe(scored)
    with pytest.raises(InputError, match="exactly one"):
        pick_universe(scored, top=3, threshold=0.5)
    with pytest.raises(InputError, match="not in the precincts") as err:
        pick_universe(scored, ids=["0101", "9999", "abc"])
    assert "'9999'" in str(err.value) and "'abc'" in str(err.value)
    assert pick_universe(scored, ids=["0102", "0101"]) == ["0102", "0101"]
    with pytest.raises(InputError, match="at least 1"):
        pick_universe(scored, top=0)


# ------------------------------------------------------------------------------------------
# French ministry layouts, built from the Nantes round-1 numbers
# ------------------------------------------------------------------------------------------

FR2024_BASE = (
    "Code département;Libellé département;Code commune;Libellé commune;Code BV;Inscrits;"
    "Votants;% Votants;Abstentions;% Abstentions;Exprimés;% Exprimés/inscrits;"
    "% Exprimés/votants;Blancs;% Blancs/inscrits;% Blancs/votants;Nuls;% Nuls/inscrits;"
    "% Nuls/votants"
)
FR2024_CANDIDATE = (
    "Numéro de panneau {i};Nuance candidat {i};Nom candidat {i};Prénom candidat {i};"
    "Sexe candidat {i};Voix {i};% Voix/inscrits {i};% Voix/exprimés {i};Elu {i}"
)
FR2017_BASE = (
    "Code du département;Libellé du département;Code de la circonscription;"
    "Libellé de la circonscription;Code de la commune;Libellé de la commune;{bv};Inscrits;"
    "Abstentions;% Abs/Ins;Votants;% Vot/Ins;Blancs;% Blancs/Ins;% Blancs/Vot;Nuls;% Nuls/Ins;"
    "% Nuls/Vot;Exprimés;% Exp/Ins;% Exp/Vot"
)
FR2017_BLOCK = "N°Panneau;Sexe;Nom;Prénom;Nuance;Voix;% Voix/Ins;% Voix/Exp"


def _pct(a: float, b: float) -> str:
    return f"{100 * a / b:.2f}".replace(".", ",")


def _fr2024_text(raw: pd.DataFrame) -> str:
    header = FR2024_BASE + ";" + ";".join(FR2024_CANDIDATE.format(i=i) for i in range(1, 11))
    lines = [header]
    for r in raw.itertuples(index=False):
        ins, vot, exp, nul = r.inscrits, r.votants, r.exprimes, r.nuls
        cells = [
            "44",
            "Loire-Atlantique",
            "44109",
            "Nantes",
            str(int(r.code_bv)),  # 101, not 0101: tests the zero padding
            str(ins),
            str(vot),
            _pct(vot, ins),
            str(ins - vot),
            _pct(ins - vot, ins),
            str(exp),
            _pct(exp, ins),
            _pct(exp, vot),
            "0",
            "0,00",
            "0,00",
            str(nul),
            _pct(nul, ins),
            _pct(nul, vot),
        ]
        for i, (name, nuance) in enumerate(zip(T1_CHOICES, NUANCES, strict=True), start=1):
            v = getattr(r, name)
            cells += [
                str(i),
                nuance,
                name.upper().replace("_", " "),
                "Élodie",
                "F",
                str(v),
                _pct(v, ins),
                _pct(v, exp),
                "",
            ]
        lines.append(";".join(cells))
    return "\r\n".join(lines) + "\r\n"


def _fr2017_text(raw: pd.DataFrame, bv_header: str = "Code du b.vote") -> str:
    lines = [FR2017_BASE.format(bv=bv_header) + ";" + FR2017_BLOCK]
    for r in raw.itertuples(index=False):
        ins, vot, exp, nul = r.inscrits, r.votants, r.exprimes, r.nuls
        cells = [
            "44",
            "Loire-Atlantique",
            "1",
            "1ère circonscription",
            "109",
            "Nantes",
            str(int(r.code_bv)),
            str(ins),
            str(ins - vot),
            _pct(ins - vot, ins),
            str(vot),
            _pct(vot, ins),
            "0",
            "0,00",
            "0,00",
            str(nul),
            _pct(nul, ins),
            _pct(nul, vot),
            str(exp),
            _pct(exp, ins),
            _pct(exp, vot),
        ]
        for i, (name, nuance) in enumerate(zip(T1_CHOICES, NUANCES, strict=True), start=1):
            v = getattr(r, name)
            cells += [
                str(i),
                "M",
                name.upper().replace("_", " "),
                "Jérôme",
                nuance,
                str(v),
                _pct(v, ins),
                _pct(v, exp),
            ]
        lines.append(";".join(cells))
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str, encoding: str) -> Path:
    if encoding == "utf-8-sig":
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    else:
        path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8-sig"])
@pytest.mark.parametrize("layout", ["fr2024", "fr2017"])
def test_ministry_layouts_match_nantes(tmp_path, t1_raw, precincts, joined1, layout, encoding):
    text = _fr2024_text(t1_raw) if layout == "fr2024" else _fr2017_text(t1_raw)
    path = _write(tmp_path / f"{layout}.csv", text, encoding)
    res = read_results(path)
    assert res.attrs["layout"] == layout
    assert res.attrs["delimiter"] == ";"
    assert res["precinct_key"].iloc[0] == "44109_0101"
    assert res["choice"].iloc[4] == "LUG ROLLAND"
    assert res["choice"].nunique() == 10
    assert (res["blank"] == 0).all()
    joined, report = join_results(precincts, res)
    assert report["matched"] == 209
    assert report["commune"] == "44109"
    assert report["unmatched_precincts"] == [] and report["unmatched_results"] == []
    nantes = joined1[0]
    assert np.array_equal(joined["turnout"].to_numpy(), nantes["turnout"].to_numpy())
    assert np.array_equal(
        joined["share_lug_rolland"].to_numpy(), nantes["share_rolland"].to_numpy()
    )
    assert joined.loc["0101", "results_key"] == "44109_0101"


def test_fr2017_alternative_bureau_header(tmp_path, t1_raw):
    path = _write(tmp_path / "r.csv", _fr2017_text(t1_raw.head(3), "Code B.Vote"), "latin-1")
    res = read_results(path, layout="fr2017", election="leg2017t1")
    assert res.attrs["election"] == "leg2017t1"
    assert res["precinct_key"].unique().tolist() == ["44109_0101", "44109_0102", "44109_0103"]


def test_fr2024_fewer_candidates_in_some_bureaux(tmp_path, t1_raw):
    text = _fr2024_text(t1_raw.head(2)).splitlines()
    # second bureau: empty 10th candidate block (no candidate in that slot)
    cells = text[2].split(";")
    cells[-9:] = [""] * 9
    text[2] = ";".join(cells)
    res = read_results(_write(tmp_path / "r.csv", "\n".join(text), "utf-8"))
    assert (res["precinct_key"] == "44109_0101").sum() == 10
    assert (res["precinct_key"] == "44109_0102").sum() == 9


def test_commune_prefix_needs_commune_when_several(tmp_path, t1_raw, precincts):
    text = _fr2024_text(t1_raw.head(3)).splitlines()
    other = text[1].replace("44;Loire-Atlantique;44109;Nantes", "44;Loire-Atlantique;44020;X")
    path = _write(tmp_path / "r.csv", "\n".join([*text, other]), "utf-8")
    res = read_results(path)
    with pytest.raises(InputError, match="commune="):
        join_results(precincts, res)
    joined, report = join_results(precincts, res, commune="44109")
    assert report["matched"] == 3
    assert report["other_communes"] == 1
    assert len(report["unmatched_precincts"]) == 206
    assert report["unmatched_results"] == []
    assert joined.loc["0104", "turnout"] != joined.loc["0104", "turnout"]  # NaN


# ------------------------------------------------------------------------------------------
# US layouts
# ------------------------------------------------------------------------------------------

US_IDS = ["06001400100", "06001400200", "06001400300"]
US_VOTES = {
    "G20PREDBID": [500, 320, 41],
    "G20PRERTRU": [300, 410, 12],
    "G20PRELJOR": [20, 15, 3],
}
US_REG = [1200, 1000, 90]
US_BALLOTS = [830, 750, 58]


def _us_wide(tmp_path: Path) -> Path:
    frame = pd.DataFrame(
        {"GEOID20": US_IDS, "registered": US_REG, "ballots": US_BALLOTS} | US_VOTES
    )
    path = tmp_path / "us_wide.csv"
    frame.to_csv(path, index=False)
    return path


def _us_long(tmp_path: Path) -> Path:
    rows = [
        {
            "precinct": pid,
            "office": "President",
            "candidate": cand,
            "votes": US_VOTES[cand][i],
            "registered": US_REG[i],
            "ballots": US_BALLOTS[i],
        }
        for i, pid in enumerate(US_IDS)
        for cand in US_VOTES
    ]
    path = tmp_path / "us_long.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_us_wide_and_long_give_same_indicators(tmp_path):
    wide = read_results(_us_wide(tmp_path))
    long = read_results(_us_long(tmp_path))
    assert wide.attrs["layout"] == "us_wide" and wide.attrs["contest"] == "G20PRE"
    assert long.attrs["layout"] == "us_long" and long.attrs["contest"] == "President"
    iw, il = indicators(wide), indicators(long)
    pd.testing.assert_frame_equal(iw, il)
    assert iw.index.tolist() == US_IDS
    assert iw["expressed"].isna().all()
    # no expressed column: shares are of the ballots (voters)
    assert iw.loc[US_IDS[0], "share_g20predbid"] == 500 / 830
    assert iw.loc[US_IDS[0], "turnout"] == 830 / 1200
    assert il.attrs["share_basis"] == {"expressed": 0, "voters": 3, "sum_of_votes": 0}
    boxes = [shapely.box(i, 0, i + 1, 1) for i in range(3)]
    prec = gpd.GeoDataFrame(
        geometry=boxes, index=pd.Index(US_IDS, name="precinct_id"), crs="EPSG:3857"
    )
    joined, report = join_results(prec, long)
    assert report["matched"] == 3
    assert joined["share_g20prertru"].tolist() == il["share_g20prertru"].tolist()


def test_us_wide_several_contests_need_contest(tmp_path):
    frame = pd.DataFrame({"GEOID20": US_IDS, "G20PREDBID": [1, 2, 3], "G20USSDSMI": [1, 1, 1]})
    path = tmp_path / "w.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match="2 contests"):
        read_results(path)
    res = read_results(path, contest="G20USS")
    assert res["choice"].unique().tolist() == ["G20USSDSMI"]
    # no voters, no expressed: shares are of the sum of the votes
    assert indicators(res)["share_g20ussdsmi"].tolist() == [1.0, 1.0, 1.0]


def test_us_long_summed_vote_modes(tmp_path, caplog):
    path = tmp_path / "l.csv"
    path.write_text(
        "precinct,candidate,mode,votes\nP1,A,day,10\nP1,A,mail,5\nP1,B,day,7\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING, logger="knockin_geo.target"):
        res = read_results(path)
    assert "summed" in caplog.text
    assert res.set_index("choice")["votes"].to_dict() == {"A": 15.0, "B": 7.0}


# ------------------------------------------------------------------------------------------
# Unmatched ids
# ------------------------------------------------------------------------------------------


def test_unmatched_ids_reported_on_both_sides(tmp_path, precincts, caplog):
    text = T1.read_text(encoding="utf-8").rstrip("\n")
    bogus = "9999,1,100,50,0.5,48,2,,1,1,1,1,40,1,1,1,1,0"
    path = tmp_path / "t1.csv"
    path.write_text(text + "\n" + bogus + "\n", encoding="utf-8")
    res = read_results(path)
    fewer = precincts.drop(index="0205")
    with caplog.at_level(logging.WARNING, logger="knockin_geo.target"):
        joined, report = join_results(fewer, res)
    assert report["matched"] == 208
    assert report["unmatched_results"] == ["0205", "9999"]
    assert report["unmatched_precincts"] == []
    assert len(joined) == 208
    assert "9999" in caplog.text
    # and the other way round: a precinct without results keeps NaN indicators
    joined2, report2 = join_results(precincts, res[res["precinct_key"] != "0101"])
    assert report2["unmatched_precincts"] == ["0101"]
    assert report2["unmatched_results"] == ["9999"]
    assert len(joined2) == 209
    assert np.isnan(joined2.loc["0101", "turnout"])
    assert joined2.loc["0101", "results_key"] is pd.NA


def test_join_normalises_padding_and_separators():
    prec = gpd.GeoDataFrame(
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
        index=pd.Index(["0101", " 12-a "], name="precinct_id"),
        crs="EPSG:3857",
    )
    res = pd.DataFrame(
        {
            "precinct_key": ["101", "012_A"],
            "registered": [10.0, 20.0],
            "voters": [5.0, 10.0],
            "blank": np.nan,
            "null": np.nan,
            "expressed": [5.0, 10.0],
            "choice": ["x", "x"],
            "votes": [5.0, 10.0],
        }
    )
    joined, report = join_results(prec, res)
    assert report["matched"] == 2
    assert joined["turnout"].tolist() == [0.5, 0.5]


# ------------------------------------------------------------------------------------------
# Bad inputs
# ------------------------------------------------------------------------------------------

HEADER = "code_bv,tour,inscrits,votants,participation,exprimes,nuls,procurations,a,b\n"


def _bad(tmp_path: Path, body: str, header: str = HEADER) -> InputError:
    path = tmp_path / "bad.csv"
    path.write_text(header + body, encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_results(path)
    assert err.value.path == str(path)
    return err.value


def test_bad_non_numeric_votes(tmp_path):
    err = _bad(tmp_path, "0101,1,100,50,0.5,48,2,,20,28\n0102,1,100,50,0.5,48,2,,abc,28\n")
    assert "row 2, column 'a': 'abc' is not a number" in str(err)


def test_bad_negative(tmp_path):
    err = _bad(tmp_path, "0101,1,100,50,0.5,48,2,,-3,28\n")
    assert "row 1, column 'a': negative value -3" in str(err)


def test_bad_votes_above_registered(tmp_path):
    err = _bad(tmp_path, "0101,1,100,50,0.5,48,2,,20,28\n0102,1,100,50,0.5,48,2,,20,150\n")
    assert "row 2, column 'b': 150 votes for 'b' but only 100 registered" in str(err)


def test_bad_voters_above_registered(tmp_path):
    err = _bad(tmp_path, "0101,1,100,150,0.5,48,2,,20,28\n")
    assert "row 1, column 'votants': 150 voters but only 100 registered" in str(err)


def test_bad_missing_id_column(tmp_path):
    path = tmp_path / "noid.csv"
    path.write_text("inscrits,votants,a\n100,50,20\n", encoding="utf-8")
    with pytest.raises(InputError, match="precinct id column") as err:
        read_results(path, layout="csv")
    assert "'inscrits'" in str(err.value)


def test_bad_duplicate_precinct(tmp_path):
    err = _bad(tmp_path, "0101,1,100,50,0.5,48,2,,20,28\n0101,1,100,50,0.5,48,2,,20,28\n")
    assert "precinct '0101' (column 'code_bv') appears 2 times, in rows 1, 2" in str(err)


def test_bad_no_rows_unknown_layout_missing_file(tmp_path):
    err = _bad(tmp_path, "")
    assert "no data rows" in str(err)
    path = tmp_path / "x.csv"
    path.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="cannot detect the layout"):
        read_results(path)
    with pytest.raises(InputError, match="unknown results layout"):
        read_results(path, layout="fr2019")
    with pytest.raises(InputError, match="not found"):
        read_results(tmp_path / "missing.csv")


def test_bad_french_file_names_row_and_column(tmp_path, t1_raw):
    lines = _fr2024_text(t1_raw.head(3)).splitlines()
    cells = lines[2].split(";")
    voix3 = FR2024_BASE.count(";") + 1 + 2 * 9 + 5
    cells[voix3] = "12a"
    lines[2] = ";".join(cells)
    path = _write(tmp_path / "r.csv", "\n".join(lines), "latin-1")
    with pytest.raises(InputError) as err:
        read_results(path)
    assert "row 2, column 'Voix 3': '12a' is not a number" in str(err.value)
    lines = _fr2017_text(t1_raw.head(3)).splitlines()
    cells = lines[1].split(";")
    cells[FR2017_BASE.count(";") + 1 + 2 * 8 + 5] = "-4"
    lines[1] = ";".join(cells)
    path = _write(tmp_path / "r17.csv", "\n".join(lines), "utf-8-sig")
    with pytest.raises(InputError) as err:
        read_results(path)
    assert "row 1, column 'Voix (candidate block 3, column 43)': negative value -4" in str(
        err.value
    )


def test_comma_decimals_and_columns_map(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(
        "bureau;nb inscrits;nb votants;taux;Liste A;Liste B\n1;100;50;50,0;20,5;29,5\n",
        encoding="utf-8",
    )
    res = read_results(
        path, columns={"registered": "nb inscrits", "voters": "nb votants"}, layout="csv"
    )
    assert res["votes"].tolist() == [20.5, 29.5]
    assert res["choice"].tolist() == ["Liste A", "Liste B"]
    assert res["registered"].tolist() == [100.0, 100.0]
    assert slugify("Liste A") == "liste_a"
    with pytest.raises(InputError, match="no column 'inscritz'"):
        read_results(path, columns={"registered": "inscritz"})


# ------------------------------------------------------------------------------------------
# Safe formulas
# ------------------------------------------------------------------------------------------


def test_formula_values():
    frame = pd.DataFrame({"a": [1.0, 4.0], "b": [2.0, 3.0], "c": [0.0, np.nan]})
    cases = {
        "a + b * 2": [5.0, 10.0],
        "-a ** 2": [-1.0, -16.0],
        "(a + b) / 2": [1.5, 3.5],
        "max(a, b) / min(a, b)": [2.0, 4 / 3],
        "sqrt(a) + abs(-b) + log(a)": [1 + 2 + 0.0, 2 + 3 + math.log(4)],
        "clip(a, 2, 3)": [2.0, 3.0],
        "max(a, b, 3.5)": [3.5, 4.0],
        "2": [2.0, 2.0],
        "a / c": [np.nan, np.nan],  # division by zero and missing values give NaN
        "+a - 1e0": [0.0, 3.0],
    }
    for formula, expected in cases.items():
        got = evaluate_formula(frame, formula)
        np.testing.assert_allclose(got, expected, rtol=1e-15, err_msg=formula)
    assert check_formula("a * b + a")[1] == ["a", "b"]


@pytest.mark.parametrize(
    ("formula", "token"),
    [
        ("__import__('os')", "'__import__'"),
        ("a.b", "'a.b'"),
        ("x[0]", "'x[0]'"),
        ("open('f')", "'open'"),
        ('"s"', "'s'"),
        ("lambda: 1", "lambda"),
        ("a if b else 1", "conditional"),
        ("a < b", "comparison"),
        ("a // b", "'//'"),
        ("max(a, b=1)", "keyword"),
        ("[a for a in b]", "comprehension"),
        ("True", "True"),
        ("sqrt(a, b)", "sqrt() with 2"),
        ("(a).__class__", "__class__"),
        ("a +", "not a valid expression"),
    ],
)
def test_formula_rejected(formula, token):
    frame = pd.DataFrame({"a": [1.0], "b": [2.0], "x": [3.0]})
    with pytest.raises(InputError) as err:
        evaluate_formula(frame, formula)
    assert token in str(err.value)


# ------------------------------------------------------------------------------------------
# Voters per door
# ------------------------------------------------------------------------------------------


def _doors() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 60
    pid = np.array(["0101"] * 25 + ["0102"] * 30 + ["0103"] * 3 + [None] * 2, dtype=object)
    status = np.array(["ok"] * n, dtype=object)
    status[[3, 30]] = "no_street_nearby"
    status[[4, 31]] = schema.STATUS_ASSIGNED
    return pd.DataFrame(
        {
            schema.PRECINCT_ID: pid,
            schema.STATUS: status,
            schema.HOUSEHOLDS: rng.integers(1, 9, n),
        },
        index=pd.Index([f"d{i:03d}" for i in range(n)], name=schema.ADDRESS_ID),
    )


def test_spread_voters(joined1):
    joined, _ = joined1
    doors = _doors()
    before = doors.copy()
    est = spread_voters(doors, joined.drop(index="0103").pipe(lambda f: f))
    pd.testing.assert_frame_equal(doors, before)
    assert est.dtype == "Int64"
    assert est.index.equals(doors.index)
    usable = doors[schema.STATUS].isin(["ok", "assigned"]) & doors[schema.PRECINCT_ID].notna()
    assert est[~usable].isna().all()
    assert est[doors[schema.PRECINCT_ID] == "0103"].isna().all()  # no results for 0103
    assert est.attrs["no_results"] == ["0103"]
    for pid, registered in (("0101", 1054), ("0102", 1220)):
        mine = usable & (doors[schema.PRECINCT_ID] == pid)
        assert int(est[mine].sum()) == registered
        hh = doors.loc[mine, schema.HOUSEHOLDS]
        exact = registered * hh / hh.sum()
        assert (np.abs(est[mine].astype(float) - exact) < 1).all()
    assert "0104" in est.attrs["unplaced"]


def test_spread_voters_ties_are_deterministic():
    doors = pd.DataFrame(
        {schema.PRECINCT_ID: ["p"] * 3},
        index=pd.Index(["c", "a", "b"], name=schema.ADDRESS_ID),
    )
    prec = pd.DataFrame({"registered": [4.0]}, index=pd.Index(["p"], name="precinct_id"))
    est = spread_voters(doors, prec)
    assert est.to_dict() == {"c": 1, "a": 2, "b": 1}


def test_count_voters(caplog):
    doors = pd.DataFrame(index=pd.Index(["a1", "a2", "a3"], name=schema.ADDRESS_ID))
    voters = pd.DataFrame(
        {"address_id": ["a1", "a1", "a3", "zz", ""], "nom": ["X", "Y", "Z", "W", "V"]}
    )
    with caplog.at_level(logging.WARNING, logger="knockin_geo.target"):
        counts = count_voters(doors, voters)
    assert counts.tolist() == [2, 0, 1]
    assert counts.attrs["unknown_keys"] == ["zz"]
    assert counts.attrs["missing_keys"] == 1
    assert "zz" in caplog.text
    with pytest.raises(InputError, match="no column 'door'"):
        count_voters(doors, voters, key="door")


# ------------------------------------------------------------------------------------------
# Static map
# ------------------------------------------------------------------------------------------


def test_choropleth_png(tmp_path, joined1):
    joined, _ = joined1
    scored = score(joined, "mobilisation", support="rolland")
    q = classify(scored["score"], "quantiles", 5)
    nb = classify(scored["score"], "natural_breaks", 5)
    assert len(q.bins) == 5 and len(nb.bins) == 5
    assert not np.allclose(q.bins, nb.bins)
    assert np.array_equal(nb.bins, classify(scored["score"], "natural_breaks", 5).bins)
    scored.loc["0101", "score"] = np.nan  # drawn as "no data"
    for scheme in ("quantiles", "natural_breaks"):
        out = choropleth_png(
            scored, "score", tmp_path / f"map_{scheme}.png", scheme=scheme, k=5, title="Rolland"
        )
        data = out.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "map_natural_breaks.png",
        "map_quantiles.png",
    ]
    with pytest.raises(InputError, match="cannot map column"):
        choropleth_png(scored, "nope", tmp_path / "x.png")
    with pytest.raises(InputError, match="unknown classification scheme"):
        classify([1, 2, 3], "jenks")


# ------------------------------------------------------------------------------------------
# Results published as percentages (issue 19)
# ------------------------------------------------------------------------------------------

PCT_ROWS = {"0101": (52.61, 47.39), "0102": (40.0, 60.0), "0103": (66.66, 33.34)}


def _pct_file(tmp_path, rows, *, sep=",", suffix="", comma=False, name="pct.csv"):
    """A city-style file: ``code_bv,tour,<A>,<B>`` with one row of percentages per bureau."""
    lines = [sep.join(["code_bv", "tour", "Garnier", "Rolland"])]
    for key, values in rows.items():
        cells = [f"{v:.2f}".replace(".", ",") if comma else f"{v:g}" for v in values]
        cells = [f'"{c}{suffix}"' if comma and sep == "," else f"{c}{suffix}" for c in cells]
        lines.append(sep.join([key, "2", *cells]))
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("sep", "suffix", "comma"),
    [(",", "", False), (",", "%", False), (";", " %", True), (",", "", True), ("\t", "%", False)],
    ids=["plain", "percent-sign", "semicolon-decimal-comma", "quoted-decimal-comma", "tab"],
)
def test_percentages_are_read_as_shares(tmp_path, sep, suffix, comma):
    res = read_results(_pct_file(tmp_path, PCT_ROWS, sep=sep, suffix=suffix, comma=comma))
    assert res.attrs["values"] == "shares" and res.attrs["share_scale"] == 100
    assert res["votes"].isna().all()  # a share is never a count
    got = res.set_index(["precinct_key", "choice"])["share"]
    for key, (a, b) in PCT_ROWS.items():
        assert got[(key, "Garnier")] == pytest.approx(a / 100)
        assert got[(key, "Rolland")] == pytest.approx(b / 100)
    ind = indicators(res)
    assert not any(c.startswith("votes_") for c in ind.columns)
    assert ind["registered"].isna().all() and ind["turnout"].isna().all()
    assert ind.loc["0101", "share_garnier"] == pytest.approx(0.5261)
    assert ind.attrs["values"] == "shares"


def test_fractions_and_rounded_rows_are_shares(tmp_path):
    rows = {"0101": (0.5261, 0.4739), "0102": (0.4, 0.6)}
    res = read_results(_pct_file(tmp_path, rows))
    assert res.attrs["share_scale"] == 1
    assert res["share"].tolist() == pytest.approx([0.5261, 0.4739, 0.4, 0.6])
    # rows summing to 99.9 and 100.1 (rounding in the publication) are still shares
    rounded = {"0101": (52.6, 47.3), "0102": (40.1, 60.0), "0103": (50.0, 50.0)}
    res = read_results(_pct_file(tmp_path, rounded, name="r.csv"))
    assert res.attrs["values"] == "shares"
    assert res.set_index(["precinct_key", "choice"])["share"][("0101", "Rolland")] == 0.473


def test_counts_stay_counts(tmp_path):
    # whole numbers that do not sum to 100: counts, as before
    res = read_results(_pct_file(tmp_path, {"0101": (180, 264), "0102": (50, 49)}))
    assert res.attrs["values"] == "counts" and res["share"].isna().all()
    assert res["votes"].tolist() == [180, 264, 50, 49]
    # and a real file of counts (with inscrits, votants) is not mistaken for shares
    assert read_results(T1).attrs["values"] == "counts"
    # values="counts" reads decimals summing to 100 as (fractional) counts
    res = read_results(_pct_file(tmp_path, PCT_ROWS, name="c.csv"), values="counts")
    assert res["votes"].sum() == pytest.approx(300.0)


def test_mixed_counts_and_percentages_refused_with_rows(tmp_path):
    rows = {"0101": (52.61, 47.39), "0102": (180, 264), "0103": (40.5, 59.5), "0104": (7, 9)}
    with pytest.raises(InputError, match="mixes rows of percentages and rows of counts") as err:
        read_results(_pct_file(tmp_path, rows))
    text = str(err.value)
    assert "row 1 (precinct '0101')" in text and "row 3 (precinct '0103')" in text
    assert "row 2 (precinct '0102'): sum 444: counts" in text
    assert "row 4 (precinct '0104')" in text
    assert "values='shares'" in text  # the way out, in Python words here


def test_percent_signs_that_do_not_add_up(tmp_path):
    rows = {"0101": (52.61, 27.39), "0102": (40.0, 60.0)}
    with pytest.raises(InputError, match="do not add up") as err:
        read_results(_pct_file(tmp_path, rows, suffix="%"))
    assert "row 1 (precinct '0101'): sum 80" in str(err.value)
    with pytest.raises(InputError, match="a percentage, not a count"):
        bad = tmp_path / "b.csv"
        bad.write_text("code_bv,inscrits,votants,a,b\n0101,100%,50,20,30\n", encoding="utf-8")
        read_results(bad)


def test_scores_on_shares(tmp_path, precincts):
    keys = list(precincts.index[:3])
    rows = dict(zip(keys, PCT_ROWS.values(), strict=True))
    ind = indicators(read_results(_pct_file(tmp_path, rows)))
    joined, _ = join_results(precincts, ind)
    per = score(joined, "persuasion", choices=["garnier", "rolland"])
    assert per.loc[keys[0], "score"] == pytest.approx(1 - abs(0.5261 - 0.4739))
    form = score(joined, "formula", formula="share_rolland - share_garnier")
    assert form.loc[keys[1], "score"] == pytest.approx(0.2)
    with pytest.raises(InputError, match="needs the abstainers") as err:
        score(joined, "mobilisation", support="rolland")
    assert "no registered voters column" in str(err.value)
    assert "kind='persuasion'" in str(err.value) and "add_registered()" in str(err.value)
    with pytest.raises(InputError, match="needs the voters"):
        score(joined, "persuasion", by_voters=True)
    with pytest.raises(InputError, match="'abstainers', which no precinct has"):
        score(joined, "formula", formula="abstainers * share_rolland")


def test_registered_file_gives_mobilisation(tmp_path, precincts):
    ind = indicators(read_results(_pct_file(tmp_path, PCT_ROWS)))
    reg_path = tmp_path / "inscrits.csv"
    reg_path.write_text("code_bv;inscrits\n101;1000\n0102;2000\n0999;50\n", encoding="utf-8")
    withreg, report = add_registered(ind, read_registered(reg_path))
    assert report["matched"] == 2
    assert report["results_without_registered"] == ["0103"]
    assert report["registered_without_results"] == ["0999"]
    joined, _ = join_results(precincts, withreg)
    scored = score(joined, "mobilisation", support="rolland")
    # turnout unknown: registered x share (same ranking as abstainers x share at equal turnout)
    assert scored.loc["0101", "score"] == pytest.approx(1000 * 0.4739)
    assert scored.loc["0102", "score"] == pytest.approx(2000 * 0.60)
    assert np.isnan(scored.loc["0103", "score"])
    assert "turnout unknown" in scored.attrs["formulas"]["score"]
    # with the voters too, abstainers are exact
    reg_path.write_text("code_bv,inscrits,votants\n0101,1000,600\n0102,2000,500\n", "utf-8")
    withreg, _ = add_registered(ind, read_registered(reg_path))
    assert withreg.loc["0101", "abstainers"] == 400
    assert withreg.loc["0102", "turnout"] == 0.25
    scored = score(join_results(precincts, withreg)[0], "mobilisation", support="rolland")
    assert scored.loc["0102", "score"] == pytest.approx(1500 * 0.60)
    assert scored.attrs["formulas"]["score"] == "abstainers * share_rolland"
    reg_path.write_text("code_bv,inscrits,votants\n0101,100,600\n", "utf-8")
    with pytest.raises(InputError, match="600 voters but only 100 registered"):
        read_registered(reg_path)


def test_openelections_precinct_ids_repeated_across_counties(tmp_path):
    path = tmp_path / "state.csv"
    path.write_text(
        "county,precinct,office,district,party,candidate,votes\n"
        "Adams,1,President,,REP,A,10\nAdams,1,President,,DEM,B,12\n"
        "Brown,1,President,,REP,A,30\nBrown,1,President,,DEM,B,5\n"
        "Brown,2,President,,REP,A,3\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="appear in several counties") as err:
        read_results(path)
    assert "'1'" in str(err.value)
    one = tmp_path / "one.csv"
    one.write_text("\n".join(path.read_text(encoding="utf-8").splitlines()[:3]) + "\n", "utf-8")
    res = read_results(one)
    assert res["votes"].tolist() == [10.0, 12.0]
    assert res.attrs["parties"] == {"A": ["REP"], "B": ["DEM"]}


def test_values_shares_reads_a_file_that_leaves_candidates_out(tmp_path):
    # the paper printed only the two leading lists: rows sum to less than 100
    rows = {"0101": (41.2, 30.5), "0102": (38.0, 35.25)}
    path = _pct_file(tmp_path, rows, suffix="%")
    with pytest.raises(InputError, match="do not add up"):
        read_results(path)
    res = read_results(path, values="shares")
    assert res["share"].tolist() == pytest.approx([0.412, 0.305, 0.38, 0.3525])
    assert res["votes"].isna().all()
    over = _pct_file(tmp_path, {"0101": (71.2, 50.5)}, name="over.csv")
    with pytest.raises(InputError, match="more than 100 %"):
        read_results(over, values="shares")
    with pytest.raises(InputError, match="values='percent'"):
        read_results(path, values="percent")
