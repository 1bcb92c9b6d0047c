"""Stage durations (:mod:`knockin_geo.timing`): ``timings.json`` beside ``report.json``, ``-v``.

Real data: three central Nantes bureaux cut by the CLI. Durations are not checked against any
figure (the machine is shared): only that every stage is there, once, in the order it ran, and
that nothing reproducible carries a duration.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from knockin_geo.cli.main import main

from knockin_geo.timing import TIMINGS_JSON, stage, timings_doc

NANTES = Path(__file__).resolve().parents[1] / "data" / "nantes"
ARGS = [
    "cut",
    "--precincts", str(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson"),
    "--addresses", str(NANTES / "addresses" / "adresses_nantes_centre_2013_osmbbox.csv"),
    "--network", str(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf"),
    "--universe", "0101,0301,0319",
    "--no-cache",
]


def test_cut_writes_timings_beside_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-v``: the table is printed; ``timings.json`` holds every stage, report.json none."""
    assert main(["-v", *ARGS, "--workers", "1", "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((tmp_path / "a" / TIMINGS_JSON).read_text(encoding="utf-8"))
    stages = doc["stages"]
    expected = ["load", "prepare", "barriers", "snap", "cut", "route", "report", "gpkg",
                "report_json", "walk_lists", "maps", "exports"]
    assert [s for s in stages if s in expected] == expected  # in the order they ran
    assert {"exports.csv", "exports.gpx", "exports.kml", "exports.geojson", "exports.app"} \
        <= stages.keys()
    assert all(v >= 0 for v in stages.values())
    whole = sum(v for k, v in stages.items() if "." not in k)
    assert doc["total_s"] == pytest.approx(whole, abs=0.01)
    assert stages["exports.kml"] <= stages["exports"] + 0.002  # a part, not a stage of its own
    assert "Seconds per stage" in printed
    for name in ("load", "route", "exports"):
        assert name in printed
    report = (tmp_path / "a" / "report.json").read_text(encoding="utf-8")
    assert "timings" not in json.loads(report)
    assert "seconds" not in report
    # without -v: the file is still written, nothing is printed
    assert main(["-q", *ARGS, "--out", str(tmp_path / "b")]) == 0
    assert "Seconds per stage" not in capsys.readouterr().out
    assert (tmp_path / "b" / TIMINGS_JSON).is_file()
    assert (tmp_path / "b" / "report.json").read_text(encoding="utf-8") == report


def test_bad_workers_flag_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:  # argparse refuses it, naming the flag
        main([*ARGS, "--workers", "0", "--out", str(tmp_path / "c")])
    assert exit_.value.code == 2
    assert "--workers: must be a whole number >= 1" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_stage_adds_up_and_total_leaves_parts_out() -> None:
    timings: dict[str, float] = {}
    for _ in range(2):
        with stage(timings, "a"):
            pass
    with pytest.raises(RuntimeError), stage(timings, "b"):
        raise RuntimeError  # a failed stage is still timed
    assert set(timings) == {"a", "b"}
    with stage(None, "c"):  # no record asked for
        pass
    doc = json.loads(timings_doc({"a": 1.0, "a.part": 0.5, "b": 2.0}))
    assert doc["total_s"] == 3.0
    assert list(doc["stages"]) == ["a", "a.part", "b"]
