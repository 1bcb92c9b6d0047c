"""Reproducible GeoPackage writing: fixed GDAL timestamp, millimetre precision, one call a layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import pyogrio
import shapely
from pyproj import CRS

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import pandas as pd

__all__ = ["GPKG_DATE", "write_gpkg"]

#: Fixed timestamp GDAL writes into GeoPackage metadata, so that outputs are byte-identical.
GPKG_DATE = "2000-01-01T00:00:00Z"
#: GDAL options while writing: the fixed date, and no fsync by SQLite after each transaction
#: (the same bytes, less waiting on the disk; the file is written in a temporary folder moved
#: into place only once complete, like every other output, none of which is fsynced).
_WRITE_OPTIONS = {"OGR_CURRENT_DATE": GPKG_DATE, "OGR_SQLITE_SYNCHRONOUS": "OFF"}


def write_gpkg(path: Path, layers: Sequence[tuple[str, pd.DataFrame]]) -> Path:
    """Write layers into one GeoPackage reproducibly (fixed GDAL timestamp, no RTree noise).

    Parameters
    ----------
    path
        Target file (overwritten).
    layers
        ``(layer name, frame)`` pairs, written in this order: a GeoDataFrame is a map layer, a
        plain DataFrame an attribute table (no geometry).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if path.exists():
        path.unlink()
    old = {k: pyogrio.get_gdal_config_option(k) for k in _WRITE_OPTIONS}
    pyogrio.set_gdal_config_options(_WRITE_OPTIONS)
    try:
        for name, gdf in layers:
            frame = gdf.copy()
            if not isinstance(frame, gpd.GeoDataFrame):
                pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG",
                                        append=path.exists())
                continue
            # a millimetre: 0.001 in a metric CRS, 1e-8 degree in a geographic one
            grid = 1e-8 if frame.crs is not None and CRS.from_user_input(frame.crs).is_geographic \
                else 0.001
            frame.geometry = shapely.set_precision(frame.geometry.to_numpy(), grid)
            kind = "LineString" if name == "routes" and len(frame) == 0 else None
            pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG",
                                    append=path.exists(), geometry_type=kind)
    finally:
        pyogrio.set_gdal_config_options(old)
    return path
