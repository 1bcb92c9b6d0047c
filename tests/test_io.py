"""Tests of knockin_geo.io: precinct and address readers, on small built files and real data."""

from __future__ import annotations

import bz2
import gzip
import logging
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import CRS

from knockin_geo import CRSError, InputError, schema
from knockin_geo.io import load_column_map, read_addresses, read_precincts
from knockin_geo.validate import validate_addresses, validate_precincts

DATA = Path(__file__).resolve().parents[1] / "data"
NANTES_PRECINCTS = DATA / "nantes" / "precincts" / "bureaux_vote_nantes_2014.geojson"
NANTES_COMMUNE = DATA / "nantes" / "addresses" / "adresses_nantes_commune_2013.csv"
NANTES_RAW = DATA / "nantes" / "addresses" / "raw_address_france_nantes_2013.csv.bz2"
LIECHTENSTEIN = DATA / "liechtenstein" / "osm_addresses_liechtenstein_2024.csv"

pytestmark = pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _precincts(ids=("01", "02", "03"), crs="EPSG:4326") -> gpd.GeoDataFrame:
    geoms = [shapely.box(i * 0.01, 47.0, (i + 1) * 0.01, 47.01) for i in range(len(ids))]
    return gpd.GeoDataFrame(
        {"code_bv": list(ids), "nom": [f"Bureau {i}" for i in ids]}, geometry=geoms, crs=crs
    )


def _write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


CSV_BASIC = """id,lon,lat,housenumber,street,unit
a1,-1.55,47.21,1,Rue A,
a2,-1.56,47.22,2,Rue B,
a3,-1.57,47.23,3,Rue C,
"""


# ------------------------------------------------------------------------------------------
# precincts
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "driver"),
    [("geojson", "GeoJSON"), ("gpkg", "GPKG"), ("shp", "ESRI Shapefile"), ("fgb", "FlatGeobuf")],
)
def test_precincts_round_trip_formats(tmp_path, ext, driver):
    src = _precincts(ids=("0101", "0102", "0203"))
    path = tmp_path / f"p.{ext}"
    src.to_file(path, driver=driver)
    out = read_precincts(path).sort_index()  # FlatGeobuf reorders features (spatial index)
    assert list(out.index) == ["0101", "0102", "0203"]
    assert out.index.name == schema.PRECINCT_ID
    assert list(out[schema.NAME]) == ["Bureau 0101", "Bureau 0102", "Bureau 0203"]
    assert CRS.from_user_input(out.crs) == CRS.from_epsg(4326)
    assert out.attrs["repaired"] == []
    validate_precincts(out)


def test_precincts_zipped_shapefile(tmp_path):
    _precincts().to_file(tmp_path / "p.shp")
    zpath = tmp_path / "p.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in tmp_path.glob("p.*"):
            if f.suffix != ".zip":
                zf.write(f, f.name)
    assert list(read_precincts(zpath).index) == ["01", "02", "03"]


def test_precincts_numeric_ids_have_no_float_suffix(tmp_path):
    gdf = _precincts().drop(columns="code_bv")
    gdf["GEOID20"] = [101.0, 102.0, 103.0]
    path = tmp_path / "p.gpkg"
    gdf.to_file(path)
    out = read_precincts(path)
    assert list(out.index) == ["101", "102", "103"]
    assert out.attrs["id_column"] == "GEOID20"


def test_precincts_id_column_case_insensitive_and_explicit(tmp_path):
    gdf = _precincts().rename(columns={"code_bv": "PRECINCT"})
    gdf["other"] = ["x", "y", "z"]
    path = tmp_path / "p.geojson"
    gdf.to_file(path)
    assert list(read_precincts(path).index) == ["01", "02", "03"]
    assert list(read_precincts(path, id_column="other").index) == ["x", "y", "z"]


def test_precincts_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_precincts(tmp_path / "nope.geojson")


def test_precincts_empty_file(tmp_path):
    path = _write(tmp_path, "p.geojson", "")
    with pytest.raises(InputError, match="empty"):
        read_precincts(path)


def test_precincts_no_features(tmp_path):
    path = _write(tmp_path, "p.geojson", '{"type": "FeatureCollection", "features": []}')
    with pytest.raises(InputError, match="no features"):
        read_precincts(path)


def test_precincts_unreadable(tmp_path):
    path = _write(tmp_path, "p.geojson", "this is not json")
    with pytest.raises(InputError, match=r"cannot read precincts file .*p\.geojson"):
        read_precincts(path)


def test_precincts_unknown_id_column(tmp_path):
    path = tmp_path / "p.geojson"
    _precincts().to_file(path)
    with pytest.raises(
        InputError, match=r"no column 'code_b'.*did you mean 'code_bv'.*--precinct-id"
    ):
        read_precincts(path, id_column="code_b")


def test_precincts_no_detectable_id(tmp_path):
    gdf = _precincts().rename(columns={"code_bv": "foo"})
    path = tmp_path / "p.geojson"
    gdf.to_file(path)
    with pytest.raises(
        InputError, match=r"cannot find the precinct id column.*'foo'.*--precinct-id"
    ):
        read_precincts(path)


def test_precincts_duplicate_and_null_ids_listed_together(tmp_path):
    gdf = _precincts(ids=("01", "02", "01", "03", None))
    path = tmp_path / "p.gpkg"
    gdf.to_file(path)
    with pytest.raises(InputError) as info:
        read_precincts(path)
    text = str(info.value)
    assert "'01' appears 2 times, in features 1, 3" in text
    assert "feature 5: empty precinct id" in text
    assert info.value.path == str(path)


def test_precincts_non_polygon_and_empty_geometries(tmp_path):
    gdf = _precincts(ids=("01", "02", "03", "04"))
    gdf.loc[1, "geometry"] = shapely.LineString([(0, 47), (0.01, 47.01)])
    gdf.loc[2, "geometry"] = None
    path = tmp_path / "p.gpkg"
    gdf.to_file(path)
    with pytest.raises(InputError) as info:
        read_precincts(path)
    text = str(info.value)
    assert "precinct 02: geometry is a LineString, not a polygon" in text
    assert "precinct 03: no geometry" in text


def test_precincts_bow_tie_repaired_and_listed(tmp_path, caplog):
    gdf = _precincts(ids=("01", "02"))
    bow_tie = shapely.Polygon([(0, 47), (0.01, 47.01), (0.01, 47), (0, 47.01)])
    assert not bow_tie.is_valid
    gdf.loc[1, "geometry"] = bow_tie
    path = tmp_path / "p.gpkg"
    gdf.to_file(path)
    with caplog.at_level(logging.WARNING, logger="knockin_geo.io"):
        out = read_precincts(path)
    assert out.attrs["repaired"] == ["02"]
    assert "02" in caplog.text and "repaired" in caplog.text
    assert out.geometry.is_valid.all()
    assert out.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert out.loc["02"].geometry.area == pytest.approx(0.01 * 0.01 / 2)


@pytest.mark.parametrize("ext", ["gpkg", "fgb", "shp"])
def test_precincts_without_crs(tmp_path, ext):
    path = tmp_path / f"p.{ext}"
    _precincts(crs=None).to_file(path)
    with pytest.raises(CRSError, match=r"no CRS.*--precincts-crs \(crs= in Python") as err:
        read_precincts(path)
    assert str(path) in str(err.value)  # the message names the file
    out = read_precincts(path, crs="EPSG:4326")
    assert CRS.from_user_input(out.crs) == CRS.from_epsg(4326)


def test_precincts_geojson_with_projected_coordinates_and_no_crs(tmp_path):
    # GeoJSON without a "crs" member is WGS84 by definition; Lambert-93 numbers are caught
    gdf = _precincts(crs=None)
    gdf["geometry"] = [
        shapely.box(355000 + i * 100, 6690000, 355100 + i * 100, 6690100) for i in range(3)
    ]
    path = tmp_path / "p.geojson"
    gdf.to_file(path, driver="GeoJSON")
    with pytest.raises(CRSError, match=r"outside -180\.\.180.*--precincts-crs"):
        read_precincts(path)
    out = read_precincts(path, crs="EPSG:2154")
    assert CRS.from_user_input(out.crs) == CRS.from_epsg(2154)


def test_precincts_crs_conflict(tmp_path):
    path = tmp_path / "p.gpkg"
    _precincts().to_file(path)
    with pytest.raises(CRSError, match="declares EPSG:4326"):
        read_precincts(path, crs="EPSG:3857")


def test_precincts_input_gdf_unchanged_by_read(tmp_path):
    src = _precincts()
    before = src.copy()
    path = tmp_path / "p.gpkg"
    src.to_file(path)
    read_precincts(path)
    assert src.equals(before)


# ------------------------------------------------------------------------------------------
# addresses: errors
# ------------------------------------------------------------------------------------------


def test_addresses_missing_file(tmp_path):
    with pytest.raises(InputError, match="addresses file not found"):
        read_addresses(tmp_path / "nope.csv")


def test_addresses_empty_file(tmp_path):
    with pytest.raises(InputError, match="empty"):
        read_addresses(_write(tmp_path, "a.csv", ""))
    with pytest.raises(InputError, match="no data rows"):
        read_addresses(_write(tmp_path, "b.csv", "\n\n  \n"))


def test_addresses_header_only(tmp_path):
    with pytest.raises(InputError, match="no data rows"):
        read_addresses(_write(tmp_path, "a.csv", "id,lon,lat\n"))


def test_addresses_no_coordinate_columns(tmp_path):
    with pytest.raises(InputError, match=r"no coordinate columns.*'street'"):
        read_addresses(_write(tmp_path, "a.csv", "id,street\n1,Rue A\n"))


def test_addresses_one_coordinate_column_missing(tmp_path):
    with pytest.raises(InputError, match=r"lon column \('lon'\) but no lat column"):
        read_addresses(_write(tmp_path, "a.csv", "id,lon,street\n1,2.3,Rue A\n"))


def test_addresses_projected_xy_without_crs(tmp_path):
    path = _write(tmp_path, "a.csv", "id,x,y\n1,355000,6690000\n2,355100,6690100\n")
    with pytest.raises(CRSError, match=r"give --crs \(for example EPSG:2154"):
        read_addresses(path)
    out = read_addresses(path, crs="EPSG:2154")
    assert CRS.from_user_input(out.crs) == CRS.from_epsg(2154)
    assert (out[schema.STATUS] == "ok").all()


def test_addresses_xy_within_lonlat_range_taken_as_wgs84(tmp_path):
    out = read_addresses(_write(tmp_path, "a.csv", "id,x,y\n1,-1.55,47.2\n"))
    assert CRS.from_user_input(out.crs) == CRS.from_epsg(4326)


def test_addresses_swapped_by_range(tmp_path):
    text = "id,lon,lat\n1,37.77,-122.41\n2,37.78,-122.42\n3,37.79,-122.43\n"
    with pytest.raises(
        InputError, match=r"look swapped in .*a\.csv: lat column 'lat' holds values like -122"
    ):
        read_addresses(_write(tmp_path, "a.csv", text))


def test_addresses_swapped_by_reference_bounds(tmp_path):
    text = "id,LON,LAT\n1,48.85,2.35\n2,48.86,2.36\n3,48.87,2.34\n"
    path = _write(tmp_path, "a.csv", text)
    paris = (2.2, 48.8, 2.5, 48.95)
    with pytest.raises(InputError, match=r"look swapped.*columns=\{'lon': 'LAT', 'lat': 'LON'\}"):
        read_addresses(path, reference_bounds=paris)
    out = read_addresses(path, columns={"lon": "LAT", "lat": "LON"}, reference_bounds=paris)
    assert out.geometry.x.between(2.2, 2.5).all()
    # without bounds nothing can be told: the rows are kept as they are
    assert len(read_addresses(path)) == 3


def test_addresses_non_numeric_coordinate_strict_and_lenient(tmp_path):
    text = "id,lon,lat\n1,-1.55,47.21\n2,-1.56,abc\n3,-1.57,47.23\n4,,47.24\n5,-1.5,47.2\n"
    path = _write(tmp_path, "a.csv", text)
    with pytest.raises(InputError, match=r"row 2, column 'lat': 'abc' is not a valid") as info:
        read_addresses(path, strict=True)
    assert "row 4, column 'lon': empty" in str(info.value)
    out = read_addresses(path)
    assert out.loc["2", schema.STATUS] == "bad_coordinates"
    assert out.loc["4", schema.STATUS] == "missing_coordinates"
    assert out.loc["2"].geometry is None and out.loc["4"].geometry is None
    assert out.loc["1", schema.STATUS] == "ok"
    assert list(out[schema.SOURCE_ROW]) == [1, 2, 3, 4, 5]
    validate_addresses(out)


def test_addresses_strict_error_lists_first_20(tmp_path):
    rows = "\n".join(f"{i},-1.5,{'x' if i % 3 == 0 else 47.2}" for i in range(1, 91))
    path = _write(tmp_path, "a.csv", "id,lon,lat\n" + rows + "\n")
    with pytest.raises(InputError, match=r"and 10 more"):
        read_addresses(path, strict=True)


def test_addresses_out_of_range_and_inf(tmp_path):
    text = (
        "id,lon,lat\n1,-1.5,47.2\n2,-1.5,95\n3,inf,47\n4,-1.5,nan\n5,-1.5,47.3\n6,-1.5,47\n7,1,2\n"
    )
    out = read_addresses(_write(tmp_path, "a.csv", text))
    assert list(out[schema.STATUS]) == ["ok"] + ["bad_coordinates"] * 3 + ["ok"] * 3


def test_addresses_mostly_bad_coordinates(tmp_path):
    text = "id,lon,lat\n1,-1.5,Rue A\n2,-1.5,Rue B\n3,-1.5,47.2\n"
    with pytest.raises(InputError, match=r"is column 'lat' really a coordinate"):
        read_addresses(_write(tmp_path, "a.csv", text))


def test_addresses_unknown_column_in_map(tmp_path):
    path = _write(tmp_path, "a.csv", CSV_BASIC)
    with pytest.raises(InputError, match=r"the file has no column 'latt'.*did you mean 'lat'") as e:
        read_addresses(path, columns={"lon": "lon", "lat": "latt"})
    assert "'housenumber'" in str(e.value)  # the file's columns are listed
    with pytest.raises(InputError, match="unknown role 'latitude'"):
        read_addresses(path, columns={"latitude": "lat"})


def test_addresses_wrong_encoding_forced(tmp_path):
    text = "id,lon,lat,street\n1,-1.5,47.2,Rue de Gévaudan\n"
    path = _write(tmp_path, "a.csv", text, encoding="latin-1")
    with pytest.raises(InputError, match=r"not valid utf-8.*line 2.*Set the encoding"):
        read_addresses(path, encoding="utf-8")
    with pytest.raises(InputError, match="unknown encoding"):
        read_addresses(path, encoding="no-such-codec")


def test_addresses_iso_8859_15_detected(tmp_path):
    text = "id;lon;lat;street\n1;-1,5;47,2;Rue de Gévaudan\n2;-1,6;47,3;Place du Cœur\n"
    out = read_addresses(_write(tmp_path, "a.csv", text, encoding="iso-8859-15"))
    assert out.attrs["encoding"] == "iso8859_15"
    assert list(out[schema.STREET]) == ["Rue de Gévaudan", "Place du Cœur"]
    assert out.geometry.x.tolist() == [-1.5, -1.6]  # decimal commas


def test_addresses_cp1252_detected(tmp_path):
    text = "id,lon,lat,street\n1,-1.5,47.2,Rue de l’Église\n"
    out = read_addresses(_write(tmp_path, "a.csv", text, encoding="cp1252"))
    assert out.attrs["encoding"] == "cp1252"
    assert out[schema.STREET].iloc[0] == "Rue de l’Église"


def test_addresses_utf8_bom(tmp_path):
    out = read_addresses(_write(tmp_path, "a.csv", "\ufeff" + CSV_BASIC))
    assert out.attrs["columns_used"]["id"] == "id"
    assert list(out.index) == ["a1", "a2", "a3"]


def test_addresses_ragged_row(tmp_path):
    text = "id,lon,lat\n1,-1.5,47.2\n2,-1.5,47.2,extra\n"
    with pytest.raises(InputError, match=r"line 3 has 4 fields but the header has 3"):
        read_addresses(_write(tmp_path, "a.csv", text))


# ------------------------------------------------------------------------------------------
# addresses: values, ids, duplicates
# ------------------------------------------------------------------------------------------


def test_addresses_contract_and_attrs(tmp_path):
    out = read_addresses(_write(tmp_path, "a.csv", CSV_BASIC))
    validate_addresses(out)
    assert out.index.name == schema.ADDRESS_ID
    assert list(out.columns) == [
        schema.HOUSENUMBER, schema.STREET, schema.UNIT, schema.HOUSEHOLDS, schema.CITY,
        schema.POSTCODE, schema.SOURCE_ROW, schema.STATUS, "geometry",
    ]  # fmt: skip
    assert out[schema.HOUSEHOLDS].tolist() == [1, 1, 1]
    assert out.attrs["format"] == "csv"
    assert out.attrs["columns_used"]["lon"] == "lon"
    assert out.attrs["source"] == str(tmp_path / "a.csv")
    assert CRS.from_user_input(out.crs) == CRS.from_epsg(4326)


def test_addresses_keep_leading_zeros(tmp_path):
    text = "id,lon,lat,postcode,housenumber\n007,-1.5,47.2,01000,0012\n"
    out = read_addresses(_write(tmp_path, "a.csv", text))
    assert out.index[0] == "007"
    assert out[schema.POSTCODE].iloc[0] == "01000"
    assert out[schema.HOUSENUMBER].iloc[0] == "0012"


def test_addresses_duplicate_ids(tmp_path):
    text = "id,lon,lat\na,-1.5,47.2\nb,-1.5,47.2\na,-1.6,47.3\na,-1.7,47.4\na~2,-1.8,47.5\n"
    out = read_addresses(_write(tmp_path, "a.csv", text))
    assert list(out.index) == ["a", "b", "a~3", "a~4", "a~2"]
    assert list(out[schema.STATUS]) == ["ok", "ok", "duplicate", "duplicate", "ok"]
    assert out.index.is_unique


def test_addresses_content_hash_ids_and_duplicates(tmp_path):
    text = (
        "number,street,unit,lon,lat\n"
        "1,Rue A,,-1.5,47.2\n"
        "1,Rue A,,-1.5,47.2\n"
        "1,Rue A,B,-1.5,47.2\n"
        "2,Rue A,,-1.5,47.2\n"
    )
    out = read_addresses(_write(tmp_path, "a.csv", text))
    assert list(out[schema.STATUS]) == ["ok", "duplicate", "ok", "ok"]
    assert len(out.index[0]) == 16
    assert out.index[1] == out.index[0] + "~2"
    # stable: same content gives the same id whatever the row order
    lines = text.splitlines()
    reordered = "\n".join([lines[0], lines[4], lines[3], lines[1]]) + "\n"
    out2 = read_addresses(_write(tmp_path, "b.csv", reordered))
    assert set(out2.index) == {out.index[0], out.index[2], out.index[3]}


def test_addresses_distinct_ids_same_point_are_ok(tmp_path):
    text = "id,lon,lat,housenumber,street\n1,-1.5,47.2,3,Rue A\n2,-1.5,47.2,3,Rue A\n"
    out = read_addresses(_write(tmp_path, "a.csv", text))
    assert list(out[schema.STATUS]) == ["ok", "ok"]


def test_addresses_households(tmp_path, caplog):
    text = "id,lon,lat,menages\n1,-1.5,47.2,3\n2,-1.5,47.2,\n3,-1.5,47.2,zero\n4,-1.5,47.2,0\n"
    path = _write(tmp_path, "a.csv", text)
    with caplog.at_level(logging.WARNING, logger="knockin_geo.io"):
        out = read_addresses(path)
    assert out[schema.HOUSEHOLDS].tolist() == [3, 1, 1, 1]
    warnings = [r for r in caplog.records if "households" in r.getMessage()]
    assert len(warnings) == 1
    assert "3 row(s)" in warnings[0].getMessage()
    with pytest.raises(InputError, match=r"'menages' must hold whole numbers >= 1"):
        read_addresses(path, strict=True)


def test_addresses_column_map_toml(tmp_path):
    toml = tmp_path / "map.toml"
    toml.write_text('[addresses]\nlon = "E"\nlat = "N"\nstreet = "voie_nom"\n', encoding="utf-8")
    assert load_column_map(toml) == {"lon": "E", "lat": "N", "street": "voie_nom"}
    top = tmp_path / "top.toml"
    top.write_text('lon = "E"\nlat = "N"\n', encoding="utf-8")
    assert load_column_map(top) == {"lon": "E", "lat": "N"}
    path = _write(tmp_path, "a.csv", "E,N,voie_nom\n-1.5,47.2,Rue A\n")
    out = read_addresses(path, columns=load_column_map(toml))
    assert out[schema.STREET].iloc[0] == "Rue A"
    bad = tmp_path / "bad.toml"
    bad.write_text('[addresses]\nlongitude = "E"\nlat = 3\n', encoding="utf-8")
    with pytest.raises(InputError, match="unknown role 'longitude'") as info:
        load_column_map(bad)
    assert "must be a string" in str(info.value)
    broken = tmp_path / "broken.toml"
    broken.write_text("[addresses\n", encoding="utf-8")
    with pytest.raises(InputError, match="cannot parse column map"):
        load_column_map(broken)


def test_addresses_delimiters_and_compression(tmp_path):
    for delim in (";", "\t", "|"):
        out = read_addresses(_write(tmp_path, "a.csv", CSV_BASIC.replace(",", delim)))
        assert list(out.index) == ["a1", "a2", "a3"], delim
        assert out.attrs["delimiter"] == delim
    data = CSV_BASIC.encode()
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(data))
    (tmp_path / "a.csv.bz2").write_bytes(bz2.compress(data))
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("inner/a.csv", data)
    for name in ("a.csv.gz", "a.csv.bz2", "a.zip"):
        assert list(read_addresses(tmp_path / name).index) == ["a1", "a2", "a3"], name


# ------------------------------------------------------------------------------------------
# addresses: formats
# ------------------------------------------------------------------------------------------

BAN_HEADER = (
    "id;id_fantoir;numero;rep;nom_voie;code_postal;code_insee;nom_commune;"
    "code_insee_ancienne_commune;nom_ancienne_commune;x;y;lon;lat;type_position;alias;nom_ld;"
    "libelle_acheminement;nom_afnor;source_position;source_nom_voie;certification_commune;"
    "cad_parcelles"
)
BAN_ROWS = [
    "44109_0288_00019;44109_0288;19;;Boulevard des Anglais;44100;44109;Nantes;;;351234.5;"
    "6690123.4;-1.573975;47.229169;entrée;;;NANTES;BOULEVARD DES ANGLAIS;commune;commune;1;",
    "44109_0288_00019_bis;44109_0288;19;bis;Boulevard des Anglais;44100;44109;Nantes;;;"
    "351240.1;6690130.2;-1.573900;47.229230;entrée;;;NANTES;BOULEVARD DES ANGLAIS;commune;"
    "commune;1;",
]


def test_addresses_ban_lonlat(tmp_path):
    path = _write(tmp_path, "adresses-44.csv", "\n".join([BAN_HEADER, *BAN_ROWS]) + "\n")
    out = read_addresses(path)
    assert out.attrs["format"] == "ban"
    assert list(out.index) == ["44109_0288_00019", "44109_0288_00019_bis"]
    assert list(out[schema.HOUSENUMBER]) == ["19", "19 bis"]
    assert out[schema.STREET].iloc[0] == "Boulevard des Anglais"
    assert out[schema.POSTCODE].iloc[0] == "44100"
    assert out[schema.CITY].iloc[0] == "Nantes"
    assert CRS.from_user_input(out.crs) == CRS.from_epsg(4326)
    assert out.geometry.x.iloc[0] == pytest.approx(-1.573975)
    assert out.attrs["columns_used"]["lon"] == "lon"


def test_addresses_ban_lambert93_only(tmp_path):
    header = BAN_HEADER.replace(";lon;lat", "")
    rows = [
        r.replace(";-1.573975;47.229169", "").replace(";-1.573900;47.229230", "") for r in BAN_ROWS
    ]
    path = _write(tmp_path, "ban.csv", "\n".join([header, *rows]) + "\n")
    out = read_addresses(path)
    assert CRS.from_user_input(out.crs) == CRS.from_epsg(2154)
    assert out.geometry.x.iloc[0] == pytest.approx(351234.5)
    assert out.attrs["columns_used"]["x"] == "x"


def test_addresses_openaddresses(tmp_path):
    text = (
        "HASH,LAT,LON,NUMBER,STREET,UNIT,CITY,DISTRICT,REGION,POSTCODE,ID\n"
        "h1,37.7749,-122.4194,100,Market St,Apt 2,San Francisco,,CA,94103,\n"
        "h2,37.7750,-122.4195,102,Market St,,San Francisco,,CA,94103,\n"
        "h3,37.7750,-122.4195,102,Market St,,San Francisco,,CA,94103,\n"
    )
    out = read_addresses(_write(tmp_path, "oa.csv", text))
    assert out.attrs["format"] == "openaddresses"
    assert "id" not in out.attrs["columns_used"]  # the ID column is empty: content hashes
    assert list(out[schema.UNIT]) == ["Apt 2", "", ""]
    assert list(out[schema.STATUS]) == ["ok", "ok", "duplicate"]
    assert out.geometry.x.iloc[0] == pytest.approx(-122.4194)


def test_addresses_geojson_point_layer(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"id": ["p1", "p2", "p3"], "housenumber": ["1", "2", None], "street": ["A", "B", "C"],
         "households": [2, 3, 1]},
        geometry=[shapely.Point(-1.5, 47.2), shapely.Point(-1.6, 47.3), None],
        crs="EPSG:4326",
    )  # fmt: skip
    path = tmp_path / "a.geojson"
    gdf.to_file(path)
    out = read_addresses(path)
    assert out.attrs["format"] == "ogr"
    assert list(out.index) == ["p1", "p2", "p3"]
    assert list(out[schema.STATUS]) == ["ok", "ok", "missing_coordinates"]
    assert list(out[schema.HOUSEHOLDS]) == [2, 3, 1]
    assert list(out[schema.HOUSENUMBER]) == ["1", "2", ""]
    assert out.geometry.iloc[2] is None
    validate_addresses(out)


def test_addresses_gpkg_point_layer_without_crs(tmp_path):
    gdf = gpd.GeoDataFrame({"id": [1, 2]}, geometry=[shapely.Point(355000, 6690000)] * 2)
    path = tmp_path / "a.gpkg"
    gdf.to_file(path)
    with pytest.raises(CRSError, match="--crs") as err:
        read_addresses(path)
    assert "--precincts-crs" not in str(err.value)
    out = read_addresses(path, crs="EPSG:2154")
    assert list(out.index) == ["1", "2"]


def test_addresses_polygon_layer_refused(tmp_path):
    path = tmp_path / "p.geojson"
    _precincts().to_file(path)
    with pytest.raises(InputError, match="not a point layer"):
        read_addresses(path)


# ------------------------------------------------------------------------------------------
# real data
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nantes_commune():
    return read_addresses(NANTES_COMMUNE)


def test_real_precincts():
    out = read_precincts(NANTES_PRECINCTS)
    assert len(out) == 209
    assert out.index[0] == "0101"
    assert out.attrs["id_column"] == "code_bv"
    assert out.attrs["repaired"] == []
    validate_precincts(out)


def test_real_commune_addresses(nantes_commune):
    out = nantes_commune
    assert len(out) == 53_197
    assert out.attrs["format"] == "nantes_metropole"
    assert out.attrs["encoding"] == "utf-8"
    assert (out[schema.STATUS] == "ok").all()
    assert out.loc["44", schema.STREET] == "Boulevard des Anglais"
    assert out.loc["44", schema.HOUSENUMBER] == "19"
    assert out.loc["30814", schema.STREET] == "Rue Jenner"  # "15 A B C D Rue Jenner"
    assert out.loc["30814", schema.HOUSENUMBER] == "15 A B C D"
    assert out.loc["49341", schema.STREET] == "Rue des Pavillons"  # "79 BIS ..."
    assert out.loc["592", schema.STREET] == "Route de Sainte Luce"  # "A Route de Sainte Luce"
    assert not out[schema.STREET].str.match(r"^\d").any()
    validate_addresses(out)


@pytest.fixture(scope="module")
def nantes_raw():
    return read_addresses(
        NANTES_RAW,
        columns={
            "lon": "LONG_WGS84",
            "lat": "LAT_WGS84",
            "housenumber": "NUMERO",
            "address": "ADRESSE",
            "city": "NOMCOM",
            "postcode": "CODE_POSTAL",
        },
    )


def test_real_raw_metropole_with_column_map(nantes_raw):
    out = nantes_raw
    assert len(out) == 155_328
    assert out.attrs["encoding"] == "iso8859_15"
    assert out[schema.STREET].iloc[0] == "Rue de Gévaudan"
    assert out[schema.CITY].iloc[0] == "ST-SEBASTIEN"
    assert out.index.is_unique
    assert (out[schema.STATUS].isin(["ok", "duplicate"])).all()
    assert (out[schema.CITY] == "NANTES").sum() == 53_197
    validate_addresses(out)


def test_real_raw_street_mapped_to_full_address(nantes_raw):
    # mapping "street" to the full-address column also works: the number is stripped
    out = read_addresses(
        NANTES_RAW,
        columns={"lon": "LONG_WGS84", "lat": "LAT_WGS84", "housenumber": "NUMERO",
                 "street": "ADRESSE", "city": "NOMCOM"},
    )  # fmt: skip
    assert out[schema.STREET].iloc[0] == "Rue de Gévaudan"
    same = (out[schema.STREET].to_numpy() == nantes_raw[schema.STREET].to_numpy()).mean()
    assert same == 1.0


def test_real_raw_metropole_autodetected(nantes_raw):
    out = read_addresses(NANTES_RAW)
    assert out.attrs["columns_used"]["lon"] == "LONG_WGS84"
    assert out.attrs["columns_used"]["address"] == "ADRESSE"
    assert list(out.index) == list(nantes_raw.index)
    assert np.array_equal(out[schema.STREET].to_numpy(), nantes_raw[schema.STREET].to_numpy())


def test_real_liechtenstein():
    out = read_addresses(LIECHTENSTEIN)
    assert len(out) == 12_497
    assert out.index[0] == "LI000001"
    assert (out[schema.STATUS] == "ok").all()
    assert out.attrs["format"] == "osm_csv"
