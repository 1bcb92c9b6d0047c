"""PlanConfig: one set of settings for cut, batch and notebooks (knockin_geo.config)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from knockin_geo.cli.main import build_parser

from knockin_geo import batch, config
from knockin_geo._errors import render
from knockin_geo.config import ConfigError, PlanConfig
from knockin_geo.params import default_route_params, pace_route_params
from knockin_geo.routing import RouteParams
from knockin_geo.turfs import TurfParams

ROOT = Path(__file__).resolve().parents[1]

#: Flags of ``cut`` that are not settings of a plan: where and how this run writes and works.
RUN_FLAGS = {"--out", "--overwrite", "--workers", "--db", "--db-schema", "--db-prefix",
             "--plan-id", "--help",
             # read by the command into the pace settings (walk_speed_kmh, minutes_per_door)
             "--calibration",
             # the hand edits applied after the cut (docs/edits.md), not a setting of the cut
             "--edits"}


def _every_key_changed(tmp_path: Path) -> PlanConfig:
    universe = tmp_path / "universe.txt"
    universe.write_text("# chosen\n0101\n0301\n", encoding="utf-8")
    return PlanConfig.from_flat({
        "precincts": "p.geojson", "addresses": "a.csv", "network": "n.osm.pbf",
        "network_profile": "walk", "precinct_id": "code", "address_id": "id",
        "address_columns": {"lon": "X", "lat": 'Y "quoted"'}, "columns_config": "cols.toml",
        "crs": 2154, "precincts_crs": "EPSG:4326", "encoding": "latin-1", "strict": True,
        "cache": False, "universe": f"@{universe}", "max_snap_m": 55.5,
        "minutes_per_turf": 45, "balance_on": "voters", "tolerance": 0.2, "seed": 7,
        "cross_precincts": True, "refine": "compact", "rebalance": False, "barriers": "strict",
        "crossing_m": 12.0,
        "walk_speed_kmh": 3.2, "minutes_per_door": 2.0, "route": False, "loop": True,
        "start": [-1.55, 47.21], "lang": "en", "walk_lists": False, "maps": False,
        "exports": False, "canvassers": "c.csv", "volunteer_field": ["voters"],
        "voters": "v.csv", "voters_key": "door", "voters_flag": ["priority"],
        "opt_outs": "o.csv", "pseudonymize": True, "secret_file": "s.key",
        "lock_maps": True, "allow_personal_field": ["phone"],
    })


def test_every_key_round_trips_through_toml(tmp_path: Path) -> None:
    cfg = _every_key_changed(tmp_path)
    defaults = PlanConfig().flat()
    # all changed but the two exclusive with keys set (network, minutes_per_turf)
    assert [k for k, v in cfg.flat().items() if v == defaults[k]] == ["download",
                                                                      "doors_per_turf"]
    assert cfg.snap.universe == ("0101", "0301")  # read from @FILE, comments skipped
    assert cfg.inputs.crs == "EPSG:2154"
    text = cfg.to_toml()
    assert PlanConfig.from_toml(text) == cfg
    assert PlanConfig.from_toml(text).to_toml() == text
    assert PlanConfig.from_toml(PlanConfig().to_toml()) == PlanConfig()


def test_a_toml_file_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "cut.toml"
    path.write_text('[inputs]\naddresses = "a.csv"\n[cut]\ndoors_per_turf = 60\n',
                    encoding="utf-8")
    cfg = PlanConfig.from_toml(path)
    assert cfg.inputs.addresses == str(tmp_path / "a.csv")
    assert cfg.turf_params().doors_per_turf == 60.0


def test_errors_name_every_bad_key() -> None:
    with pytest.raises(ConfigError) as exc:
        PlanConfig.from_flat({"tolerance": 1.5, "seed": "zero", "lang": "de", "sede": 1,
                              "start": "a,b"})
    assert sorted(k for k, _ in exc.value.items) == ["lang", "sede", "seed", "start",
                                                     "tolerance"]
    flags = {k: config.flag(k) for k in config.key_names()}
    text = exc.value.render(flags)
    assert "--tolerance 1.5: must be between 0 and 1" in text
    assert "--start a,b: expected LON,LAT" in text
    assert "tolerance=1.5" in str(exc.value)  # from Python: the keyword
    with pytest.raises(ConfigError) as exc:
        PlanConfig.from_flat({"doors_per_turf": 80, "minutes_per_turf": 45,
                              "balance_on": "voters"})
    lines = exc.value.lines("area 'x'")
    assert "area 'x': key 'minutes_per_turf': give 'doors_per_turf' or 'minutes_per_turf', " \
           "not both" in lines
    assert "area 'x': key 'balance_on': needs a voter file ('voters')" in lines
    assert "--balance-on voters: needs a voter file (--voters)" in exc.value.render(flags)


def test_bad_toml_tables_and_keys_are_named() -> None:
    with pytest.raises(Exception, match=r"\[cutt\]") as exc:
        PlanConfig.from_toml("[cutt]\nseed = 1\n[cut]\nsede = 1\n")
    assert "[cut]: unknown key 'sede'" in str(exc.value)


def test_every_setting_is_a_cut_flag_and_back() -> None:
    cut = next(a for a in build_parser()._actions if a.dest == "command").choices["cut"]
    flags = {o for a in cut._actions for o in a.option_strings if o.startswith("--")}
    settings = {config.flag(k) for k in config.key_names()}
    assert settings - flags == set()  # every setting can be typed
    assert flags - settings == RUN_FLAGS  # and every other flag is about the run
    # batch keys are the same names, generated, not a second list
    assert set(batch.PARAM_KEYS) == set(config.key_names()) - {"download"}


def test_from_flags_equals_from_flat() -> None:
    args = build_parser().parse_args([
        "cut", "--addresses", "a.csv", "--network", "n.pbf", "--out", "o",
        "--minutes-per-turf", "45", "--no-route", "--addr-column", "lon=X", "--start=1,2",
        "--universe", "b,a", "--volunteer-field", "voters", "--no-cache"])
    assert PlanConfig.from_flags(args) == PlanConfig.from_flat({
        "addresses": "a.csv", "network": "n.pbf", "minutes_per_turf": 45.0, "route": False,
        "address_columns": {"lon": "X"}, "start": [1, 2], "universe": ["a", "b"],
        "volunteer_field": ["voters"], "cache": False})


def test_defaults_live_in_the_stages_parameters() -> None:
    cfg = PlanConfig()
    assert cfg.turf_params() == TurfParams()  # 80 doors per turf: TurfParams' default only
    assert cfg.route_params("EPSG:2154") is None  # the plan's own default route
    fast = cfg.replace(walk_speed_kmh=5.5, minutes_per_door=0.5, loop=True)
    rp = fast.route_params("EPSG:2154")
    assert rp is not None and rp.loop
    assert (rp.walk_speed_kmh, rp.minutes_per_door) == (5.5, 0.5)  # the cut's pace, routed
    assert dataclasses.replace(rp, loop=False) == pace_route_params(fast.turf_params())
    assert cfg.barriers.crossing_m == RouteParams.crossing_m
    doors = gpd.GeoDataFrame({"turf_id": pd.array(["t"], dtype="string")},
                             geometry=[shapely.Point(1, 2)], crs=2154)
    assert default_route_params(doors, fast.turf_params()).walk_speed_kmh == 5.5


def test_errors_render_in_toml_words() -> None:
    with pytest.raises(ConfigError) as exc:
        PlanConfig.from_flat({"universe": "covered"})
    assert exc.value.lines("[defaults]") == [
        "[defaults]: key 'universe': needs precincts ('precincts')"]
    assert render(exc.value.template, None).startswith("invalid settings")
