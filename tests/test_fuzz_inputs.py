"""Fuzz the other readers: precinct GeoJSON, column-map and campaign TOML, opt-out and results CSVs.

Each reader, fed generated garbage, either loads or raises knockin_geo's own ``InputError``, and
the command line answers bad files with exit code 2 and no traceback. Fixed example budget and
derandomised, so CI is reproducible.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from knockin_geo.cli.main import main

from knockin_geo._errors import InputError
from knockin_geo.batch import load_campaign
from knockin_geo.io import load_column_map, read_precincts
from knockin_geo.privacy import read_opt_outs

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.just(1e308),
)
coords = st.lists(st.lists(numbers, min_size=0, max_size=3), min_size=0, max_size=6)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)


@st.composite
def geojson_docs(draw: st.DrawFn) -> str:
    """Half-plausible GeoJSON: right keys with wrong values, absurd coordinates, junk."""
    if draw(st.booleans()):
        return json.dumps(draw(json_values), allow_nan=True)
    features = []
    for i in range(draw(st.integers(0, 4))):
        ring = draw(coords)
        geom_type = draw(st.sampled_from(["Polygon", "MultiPolygon", "Point", "LineString",
                                          "Nonsense", None]))
        props = {draw(st.sampled_from(["code_bv", "id", "name", "precinct_id", "x"])):
                 draw(st.one_of(st.text(max_size=6), st.integers(), st.none()))}
        features.append({
            "type": draw(st.sampled_from(["Feature", "feature", "Thing"])),
            "properties": props if draw(st.booleans()) else {"code_bv": str(i)},
            "geometry": {"type": geom_type, "coordinates": [ring]} if draw(st.booleans())
            else None,
        })
    return json.dumps({"type": "FeatureCollection", "features": features}, allow_nan=True)


@SETTINGS
@given(doc=geojson_docs())
def test_precinct_reader_loads_or_says_why(doc: str, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("gj") / "precincts.geojson"
    path.write_text(doc, encoding="utf-8")
    try:
        gdf = read_precincts(path)
    except InputError:
        return
    assert gdf.index.is_unique
    assert gdf.geometry.notna().all()


toml_keys = st.sampled_from(["lon", "lat", "x", "y", "id", "street", "housenumber", "nope",
                             "doors_per_turf", "tolerance", "name", "addresses", "network",
                             "precincts", "universe", "seed", "[", "ü"])
toml_values = st.one_of(
    st.text(max_size=12).map(json.dumps),
    st.integers(-5, 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["true", "[1, 2]", '["0101"]', "{a = 1}", "nan", "inf", "", "'''"]),
)


@st.composite
def toml_docs(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append(draw(st.sampled_from(["[addresses]", "[defaults]", "[[areas]]", "[x"])))
        else:
            lines.append(f"{draw(toml_keys)} = {draw(toml_values)}")
    return "\n".join(lines) + "\n"


@SETTINGS
@given(doc=toml_docs())
def test_column_map_and_campaign_load_or_say_why(doc: str, tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("toml")
    path = folder / "config.toml"
    path.write_text(doc, encoding="utf-8")
    try:
        cols = load_column_map(path)
        assert all(isinstance(k, str) for k in cols)
    except InputError:
        pass
    with contextlib.suppress(InputError):
        load_campaign(path)


@SETTINGS
@given(text=st.text(max_size=300))
def test_opt_out_reader_loads_or_says_why(text: str, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("opt") / "optouts.csv"
    path.write_text(text, encoding="utf-8")
    try:
        frame = read_opt_outs(path)
    except InputError:
        return
    assert list(frame.columns) == ["address_id", "address_key"]


@pytest.mark.parametrize(
    ("command", "content", "name"),
    [
        (["inspect", "--precincts", "{file}", "--addresses", "{data}"], "{\"type\": 3}",
         "p.geojson"),
        (["inspect", "--addresses", "{file}"], "\x00\x01\x02garbage", "a.csv"),
        (["batch", "{file}", "--out", "{out}"], "[[areas]]\nname = 1\n", "c.toml"),
        (["inspect", "--addresses", "{data}", "--columns-config", "{file}"], "lon = [", "m.toml"),
    ],
)
def test_cli_answers_garbage_with_exit_2_and_no_traceback(
    command: list[str], content: str, name: str, tmp_path: Path, capsys
) -> None:
    data = Path(__file__).resolve().parents[1] / "data" / "nantes" / "addresses"
    f = tmp_path / name
    f.write_bytes(content.encode("utf-8"))
    args = [a.format(file=f, out=tmp_path / "out",
                     data=data / "adresses_nantes_centre_2013_osmbbox.csv") for a in command]
    code = main(["-q", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert "error:" in err
