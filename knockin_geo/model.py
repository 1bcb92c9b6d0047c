"""The plan as data: :class:`TurfPlan`, what every stage after the cut and every writer reads.

It sits below the stages and the writers (``docs/architecture.md``): writers take a
``TurfPlan`` without importing the orchestrator (:mod:`knockin_geo.plan`) that makes it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

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
