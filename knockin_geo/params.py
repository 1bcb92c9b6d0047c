"""Parameters one stage derives from the cut's (:class:`~knockin_geo.turfs.TurfParams`).

Used by the orchestrator (:mod:`knockin_geo.plan`) and by ``recut`` (:mod:`knockin_geo.canvass`),
so that both route and check a plan with the same settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from knockin_geo import schema
from knockin_geo.checks import RuleParams
from knockin_geo.routing import RouteParams

if TYPE_CHECKING:
    import geopandas as gpd

    from knockin_geo.turfs import TurfParams

__all__ = ["default_route_params", "pace_route_params", "rule_params", "size_unit"]


def rule_params(params: TurfParams) -> RuleParams:
    """Return the independent barrier rule for the classes a cut was asked to respect."""
    return RuleParams(highways=tuple(params.barrier_highways),
                      railways=params.railways_are_barriers,
                      waterways=params.waterways_are_barriers)


def size_unit(params: TurfParams) -> str:
    """Word for what a turf's size counts (for the report's reasons)."""
    if params.mode == "minutes":
        return "minutes"
    if params.weight_column:
        return str(params.weight_column)
    return "households" if params.use_households else "doors"


def default_route_params(doors: gpd.GeoDataFrame, params: TurfParams) -> RouteParams:
    """Route parameters matching the turf parameters; open routes start near the doors' centre."""
    assigned = doors[doors[schema.TURF_ID].notna()]
    hint = None
    if len(assigned):
        hint = (
            float(np.mean(shapely.get_x(assigned.geometry.to_numpy()))),
            float(np.mean(shapely.get_y(assigned.geometry.to_numpy()))),
        )
    return pace_route_params(params, start_hint=hint)


def pace_route_params(params: TurfParams, **route: Any) -> RouteParams:
    """Route parameters walking at the cut's pace (the one place the pace is carried over)."""
    return RouteParams(walk_speed_kmh=params.walk_speed_kmh,
                       minutes_per_door=params.minutes_per_door, **route)
