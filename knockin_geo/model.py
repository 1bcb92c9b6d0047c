"""The plan as data: :class:`TurfPlan`, what every stage after the cut and every writer reads.

It sits below the stages and the writers (``docs/architecture.md``): writers take a
``TurfPlan`` without importing the orchestrator (:mod:`knockin_geo.plan`) that makes it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely

from knockin_geo import schema

if TYPE_CHECKING:
    import geopandas as gpd
    from pyproj import CRS

    from knockin_geo.streets import StreetNetwork
    from knockin_geo.turfs import TurfParams

__all__ = ["TurfPlan"]


@dataclasses.dataclass(frozen=True)
class TurfPlan:
    """A cut (and later routed) canvassing plan.

    Attributes
    ----------
    doors
        One row per input address (index ``address_id``, metric CRS): ``precinct_id``,
        ``turf_id`` (missing when unassigned), ``seq``, ``status`` (``assigned`` or the reason),
        the address fields and the snapping result.
    turfs
        One row per turf (index ``turf_id``) with its figures and footprint polygon.
    routes
        One row per routed turf (index ``turf_id``): ``length_m`` and the walking line. Empty
        until routing runs.
    precincts
        The precincts used (metric CRS), or None.
    report
        The quality report (JSON-ready dict, see :mod:`knockin_geo.metrics`).
    params
        The turf parameters.
    network
        The street network.
    timings
        Seconds spent in each stage of :func:`plan_turfs` (``prepare``, ``barriers``, ``snap``,
        ``cut``, ``route``, ``report``), in the order they ran. Not part of the plan's content
        (left out of comparisons); written to ``timings.json``, never to ``report.json``.
    """

    doors: gpd.GeoDataFrame
    turfs: gpd.GeoDataFrame
    routes: gpd.GeoDataFrame
    precincts: gpd.GeoDataFrame | None
    report: dict[str, Any]
    params: TurfParams
    network: StreetNetwork
    timings: dict[str, float] = dataclasses.field(default_factory=dict, compare=False,
                                                  repr=False)

    @property
    def crs(self) -> CRS:
        """The metric CRS of every layer."""
        return self.network.crs

    def turf_doors(self, turf_id: str) -> gpd.GeoDataFrame:
        """Return the doors of one turf (rows of ``doors`` in their order; none when unknown).

        The rows of every turf are found in one pass over the doors, the first time a turf is
        asked for: the per-turf writers then cost one pass in all, not one per turf (which
        made them quadratic in the plan's size).
        """
        rows = self._turf_rows.get(str(turf_id))
        return self.doors.iloc[rows] if rows is not None else self.doors.iloc[:0]

    def walk_rows(self, turf_id: str) -> np.ndarray:
        """Return the positions in ``doors`` of one turf's doors in walk order.

        Ordered by ``seq`` (doors without one last, in row order), as a stable sort of
        :meth:`turf_doors` by ``seq`` gives them; found for every turf in one pass.
        """
        return self._walk_rows.get(str(turf_id), np.zeros(0, dtype=np.int64))

    def walk_doors(self, turf_id: str) -> gpd.GeoDataFrame:
        """Return the doors of one turf in walk order (see :meth:`walk_rows`)."""
        return self.doors.iloc[self.walk_rows(turf_id)]

    @functools.cached_property
    def lonlat(self) -> np.ndarray:
        """The doors' positions in EPSG:4326, ``(lon, lat)`` per row of ``doors``.

        Reprojected once for the plan: the per-turf writers read their rows from it (the same
        numbers as reprojecting each turf's doors on its own).
        """
        pts = self.doors.geometry.to_crs(4326).to_numpy()
        return np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])

    @functools.cached_property
    def _walk_rows(self) -> dict[str, np.ndarray]:
        seq = (pd.to_numeric(self.doors[schema.SEQ], errors="coerce").to_numpy(
            dtype=float, na_value=np.nan) if schema.SEQ in self.doors
            else np.full(len(self.doors), np.nan))
        out = {}
        for t, found in self._turf_rows.items():
            rows = np.asarray(found, dtype=np.int64)
            out[t] = rows[np.argsort(seq[rows], kind="stable")]  # NaN last, in row order
        return out

    @functools.cached_property
    def _turf_rows(self) -> dict[str, Any]:
        turf = self.doors[schema.TURF_ID]
        return {str(k): v for k, v in turf.groupby(turf.to_numpy(dtype=object), sort=False,
                                                   dropna=True).indices.items()}
