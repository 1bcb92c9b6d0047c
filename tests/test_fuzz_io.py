"""Property test: read_addresses either returns a contract-abiding table or raises InputError."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knockin_geo import InputError, schema
from knockin_geo.io import read_addresses
from knockin_geo.validate import validate_addresses

HEADER_WORDS = [
    "id", "address_id", "addr_id", "uid", "lon", "lng", "long", "longitude", "x_wgs84",
    "LONG_WGS84", "lat", "latitude", "LAT_WGS84", "x", "y", "easting", "northing", "coord_x",
    "coord_y", "housenumber", "number", "numero", "num", "addr:housenumber", "rep", "street",
    "nom_voie", "voie", "rue", "adresse", "address", "unit", "apt", "households", "menages",
    "nb_logements", "units", "city", "commune", "postcode", "code_postal", "HASH", "junk",
    "Spalte 1", "", " lon ", "LAT", "a,b", 'q"uote', "ünïcødé",
]  # fmt: skip

coordinate_text = st.one_of(
    st.floats(-180, 180, allow_nan=False).map(lambda v: f"{v:.6f}"),
    st.floats(-90, 90, allow_nan=False).map(lambda v: f"{v:.7g}"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e400", "47,21", "-1,5", "1.2.3", "0x10"]),
)
_TEXT = st.text(alphabet=st.characters(exclude_characters="\x00"), max_size=12)
cell_text = st.one_of(
    coordinate_text,
    _TEXT,
    _TEXT,
    st.text(max_size=3),  # may hold NUL characters: the file is then refused
    st.text(alphabet=st.sampled_from(",;|\t\"' \n\rAé1"), max_size=8),
)

# mostly valid values in the coordinate columns of plausible files, so the success path is
# exercised too (bad values are still drawn about one time in seven)
_LON_CELL = st.one_of(*[st.floats(-10, 10, allow_nan=False).map(lambda v: f"{v:.6f}")] * 6,
                      coordinate_text)  # fmt: skip
_LAT_CELL = st.one_of(*[st.floats(40, 50, allow_nan=False).map(lambda v: f"{v:.7g}")] * 6,
                      coordinate_text)  # fmt: skip


@st.composite
def csv_files(draw):
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    n_cols = draw(st.integers(1, 7))
    name = st.one_of(st.sampled_from(HEADER_WORDS), st.text(max_size=6))
    if draw(st.booleans()):  # often a plausible file: lon/lat first, then anything
        header = ["lon", "lat", *draw(st.lists(name, max_size=n_cols))]
    else:  # any header at all
        header = draw(st.lists(name, min_size=1, max_size=n_cols))
    n_rows = draw(st.integers(1, 12))
    column_cells = [
        _LON_CELL if h == "lon" else _LAT_CELL if h == "lat" else cell_text for h in header
    ]
    rows = [[draw(cells) for cells in column_cells] for _ in range(n_rows)]
    buf = io.StringIO()
    # "\r\n" so that fields holding a bare \r or \n are quoted (a bare \r ends a record)
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig"]))
    return buf.getvalue().encode(encoding, "surrogatepass"), n_rows, delimiter


def _check_contract(out, n_rows):
    assert len(out) == n_rows
    validate_addresses(out)
    assert out.index.is_unique
    assert all(isinstance(v, str) for v in out.index)
    assert out[schema.SOURCE_ROW].tolist() == list(range(1, n_rows + 1))
    assert (out[schema.HOUSEHOLDS] >= 1).all()
    usable = out[schema.STATUS].isin(["ok", "duplicate"]).to_numpy()
    has_geom = out.geometry.notna().to_numpy()
    assert np.array_equal(usable, has_geom)
    if out.crs is not None and out.crs.is_geographic and has_geom.any():
        xs = out.geometry[has_geom].x.to_numpy()
        ys = out.geometry[has_geom].y.to_numpy()
        assert np.all(np.abs(xs) <= 180) and np.all(np.abs(ys) <= 90)
    for col in (schema.HOUSENUMBER, schema.STREET, schema.UNIT, schema.CITY, schema.POSTCODE):
        assert out[col].map(type).eq(str).all()


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=csv_files(), strict=st.sampled_from([False, False, False, True]))
def test_read_addresses_never_crashes(tmp_path, data, strict):
    payload, n_rows, _ = data
    path = tmp_path / "fuzz.csv"
    path.write_bytes(payload)
    try:
        out = read_addresses(path, strict=strict)
    except InputError:
        return
    _check_contract(out, n_rows)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    lons=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=20),
    junk=st.lists(st.text(max_size=10), min_size=1, max_size=20),
)
def test_valid_coordinates_always_load(tmp_path_factory, lons, junk):
    rows = [(f"{v:.7f}", f"{45 + v / 10:.7f}", junk[i % len(junk)]) for i, v in enumerate(lons)]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([("lon", "lat", "street"), *rows])
    path = tmp_path_factory.mktemp("fuzz") / "ok.csv"
    path.write_bytes(buf.getvalue().encode("utf-8"))
    try:
        out = read_addresses(path)
    except InputError as exc:  # only NUL characters in the junk may be refused
        assert any("\x00" in j for j in junk), exc
        return
    _check_contract(out, len(rows))
    assert out[schema.STATUS].isin(["ok", "duplicate"]).all()


def test_fuzz_strategy_produces_loadable_files(tmp_path):
    # guard against a strategy that only ever produces rejected files
    payload = b"lon;lat;street\n-1,5;47,2;Rue A\n"
    path = tmp_path / "x.csv"
    path.write_bytes(payload)
    assert len(read_addresses(path)) == 1


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
