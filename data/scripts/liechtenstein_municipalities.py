"""Derive the 11 municipalities of Liechtenstein from the bundled OSM extract.

Writes ``data/liechtenstein/municipalities.geojson`` (EPSG:4326; columns ``municipality_id``,
``name``): the ``boundary=administrative`` + ``admin_level=8`` multipolygons assembled by
pyosmium from relations (closed ways with the same tags are small unnamed
exclave fragments and are left out). Derived from OpenStreetMap data, ODbL 1.0,
© OpenStreetMap contributors.

Run from the repository root::

    .venv/bin/python data/scripts/liechtenstein_municipalities.py
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import osmium
import shapely

ROOT = Path(__file__).resolve().parents[2]
PBF = ROOT / "data" / "liechtenstein" / "liechtenstein-2024-03-03.osm.pbf"
OUT = ROOT / "data" / "liechtenstein" / "municipalities.geojson"


def main() -> None:
    """Assemble the admin_level 8 areas and write them."""
    rows = []
    fp = (
        osmium.FileProcessor(str(PBF)).with_areas().with_filter(osmium.filter.KeyFilter("boundary"))
    )
    wkb = osmium.geom.WKBFactory()
    for obj in fp:
        if not obj.is_area() or obj.from_way():
            continue
        tags = obj.tags
        if tags.get("boundary") != "administrative" or tags.get("admin_level") != "8":
            continue
        if not tags.get("name"):
            continue
        geom = shapely.from_wkb(wkb.create_multipolygon(obj))
        ref = tags.get("ref:LI") or tags.get("ref") or str(obj.orig_id())
        rows.append({"municipality_id": ref, "name": tags.get("name", ""), "geometry": geom})
    gdf = gpd.GeoDataFrame(rows, crs=4326).sort_values("municipality_id").reset_index(drop=True)
    gdf.geometry = shapely.set_precision(gdf.geometry.to_numpy(), 1e-7)
    gdf.to_file(OUT, driver="GeoJSON")
    print(f"wrote {len(gdf)} municipalities to {OUT}")


if __name__ == "__main__":
    main()
