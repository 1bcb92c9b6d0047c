"""knockin_geo: plan door-to-door election canvassing on the street map.

The pipeline, one module per stage: :mod:`knockin_geo.io` (read precincts, addresses, results),
:mod:`knockin_geo.validate` (checks and the address-to-precinct join), :mod:`knockin_geo.streets`
(walking network and barriers from OSM files), then snapping, turf cutting, routing and exports.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from knockin_geo._errors import (
    CRSError,
    InfeasibleError,
    InputError,
    KnockinGeoError,
    NetworkError,
)

try:
    __version__ = version("knockin_geo")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0+unknown"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CRSError",
    "InfeasibleError",
    "InputError",
    "KnockinGeoError",
    "NetworkError",
    "__version__",
]
