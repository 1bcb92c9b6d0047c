"""Tests of knockin_geo.validate: the precinct join and the contract checks."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS

from knockin_geo import CRSError, InputError, schema
from knockin_geo.io import read_addresses, read_precincts
from knockin_geo.validate import (
    join_precincts,
    prepare_inputs,
    status_counts,
    validate_addresses,
    validate_precincts,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "nantes"


def _addresses(points, statuses=None, crs="EPSG:4326") -> gpd.GeoDataFrame:
    n = len(points)
    return gpd.GeoDataFrame(
        {
            schema.HOUSENUMBER: [str(i) for i in range(n)],
            schema.STREET: ["Rue A"] * n,
            schema.UNIT: [""] * n,
            schema.HOUSEHOLDS: np.ones(n, dtype=np.int64),
            schema.SOURCE_ROW: np.arange(1, n + 1),
            schema.STATUS: statuses or ["ok"] * n,
        },
        geometry=[None if p is None else shapely.Point(p) for p in points],
        index=pd.Index([f"a{i}" for i in range(n)], name=schema.ADDRESS_ID),
        crs=crs,
    )


def _precincts(boxes: dict[str, tuple[float, float, float, float]], crs="EPSG:4326"):
    return gpd.GeoDataFrame(
        geometry=[shapely.box(*b) for b in boxes.values()],
        index=pd.Index(list(boxes), name=schema.PRECINCT_ID),
        crs=crs,
    )


def test_join_basic_statuses_and_no_mutation():
    precincts = _precincts({"B": (0, 0, 1, 1), "A": (1, 0, 2, 1)})
    addresses = _addresses(
        [(0.5, 0.5), (1.5, 0.5), (5, 5), None, (5, 5)],
        statuses=["ok", "duplicate", "ok", "missing_coordinates", "bad_coordinates"],
    )
    before_a, before_p = addresses.copy(), precincts.copy()
    out = join_precincts(addresses, precincts)
    assert addresses.equals(before_a) and precincts.equals(before_p)
    assert schema.PRECINCT_ID not in addresses.columns
    assert out[schema.PRECINCT_ID].tolist()[:2] == ["B", "A"]
    assert out[schema.PRECINCT_ID].isna().tolist() == [False, False, True, True, True]
    assert out[schema.PRECINCT_ID].dtype == "string"
    assert out[schema.STATUS].tolist() == [
        "ok", "duplicate", "outside_precincts", "missing_coordinates", "bad_coordinates",
    ]  # fmt: skip
    assert out.attrs["multi_precinct"] == 0
    validate_addresses(out)


def test_join_overlap_gets_smallest_id():
    precincts = _precincts({"10": (0, 0, 2, 2), "02": (1, 1, 3, 3), "05": (1.5, 1.5, 4, 4)})
    addresses = _addresses([(1.6, 1.6), (0.5, 0.5), (1.2, 1.2), (3.5, 3.5)])
    out = join_precincts(addresses, precincts)
    assert out[schema.PRECINCT_ID].tolist() == ["02", "10", "02", "05"]
    assert out.attrs["multi_precinct"] == 2


def test_join_point_on_shared_boundary_is_deterministic():
    precincts = _precincts({"B": (0, 0, 1, 1), "A": (1, 0, 2, 1)})
    out = join_precincts(_addresses([(1.0, 0.5)]), precincts)
    assert out[schema.PRECINCT_ID].tolist() == ["A"]
    assert out.attrs["multi_precinct"] == 1


def test_join_requires_same_crs():
    precincts = _precincts({"A": (0, 0, 1, 1)}, crs="EPSG:3857")
    with pytest.raises(CRSError, match="different CRSs"):
        join_precincts(_addresses([(0.5, 0.5)]), precincts)
    with pytest.raises(CRSError, match="need a CRS"):
        join_precincts(_addresses([(0.5, 0.5)], crs=None), precincts)


def test_join_empty_addresses():
    out = join_precincts(_addresses([]), _precincts({"A": (0, 0, 1, 1)}))
    assert len(out) == 0
    assert schema.PRECINCT_ID in out.columns


def test_prepare_inputs_reprojects_copies():
    precincts = _precincts({"A": (-1.6, 47.2, -1.5, 47.3)})
    addresses = _addresses([(-1.55, 47.25)])
    p2, a2, crs = prepare_inputs(precincts, addresses)
    assert crs == CRS.from_epsg(32630)
    assert CRS.from_user_input(p2.crs) == crs and CRS.from_user_input(a2.crs) == crs
    assert CRS.from_user_input(addresses.crs) == CRS.from_epsg(4326)
    assert join_precincts(a2, p2)[schema.PRECINCT_ID].tolist() == ["A"]
    _, _, crs2 = prepare_inputs(precincts, addresses, crs="EPSG:2154")
    assert crs2 == CRS.from_epsg(2154)
    with pytest.raises(CRSError, match="no CRS"):
        prepare_inputs(precincts, _addresses([(0, 0)], crs=None))


def test_validate_addresses_lists_every_problem():
    bad = _addresses([(0, 0), (1, 1)], statuses=["ok", "weird"])
    bad.index = pd.Index(["x", "x"], name="id")
    bad = bad.drop(columns=[schema.UNIT])
    with pytest.raises(InputError) as info:
        validate_addresses(bad)
    text = str(info.value)
    assert "named 'address_id'" in text
    assert "duplicated address_id" in text
    assert "missing column(s): unit" in text
    assert "unknown status value(s): 'weird'" in text


def test_validate_precincts_problems():
    gdf = _precincts({"A": (0, 0, 1, 1), "B": (1, 0, 2, 1)}, crs=None)
    gdf.loc["B", "geometry"] = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    with pytest.raises(InputError) as info:
        validate_precincts(gdf)
    assert "invalid polygon(s): B" in str(info.value)
    assert "no CRS" in str(info.value)


def test_status_counts():
    gdf = _addresses([(0, 0)] * 4, statuses=["ok", "duplicate", "ok", "bad_coordinates"])
    assert status_counts(gdf) == {"ok": 2, "bad_coordinates": 1, "duplicate": 1}


# ------------------------------------------------------------------------------------------
# real data
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nantes_joined():
    precincts = read_precincts(DATA / "precincts" / "bureaux_vote_nantes_2014.geojson")
    addresses = read_addresses(
        DATA / "addresses" / "adresses_nantes_commune_2013.csv",
        reference_bounds=tuple(precincts.total_bounds),
    )
    p, a, crs = prepare_inputs(precincts, addresses)
    return precincts, addresses, join_precincts(a, p), crs


def test_real_nantes_join(nantes_joined):
    precincts, addresses, joined, crs = nantes_joined
    assert len(precincts) == 209
    assert len(addresses) == 53_197
    assert crs == CRS.from_epsg(32630)
    assert status_counts(joined) == {"ok": 53_182, "outside_precincts": 15}
    assert joined[schema.PRECINCT_ID].notna().sum() == 53_182
    assert joined.attrs["multi_precinct"] == 0
    per_precinct = joined[schema.PRECINCT_ID].value_counts()
    assert len(per_precinct) == 209  # every bureau has at least one address
    assert per_precinct.min() == 22 and per_precinct.max() == 662
    validate_addresses(joined)


def test_real_nantes_join_same_in_wgs84(nantes_joined):
    precincts, addresses, joined, _ = nantes_joined
    direct = join_precincts(addresses, precincts)
    assert direct[schema.PRECINCT_ID].equals(joined[schema.PRECINCT_ID])
