"""Column names, status codes and other contracts shared by every stage.

Data contracts
--------------
precincts
    GeoDataFrame indexed by ``precinct_id`` (str), (Multi)Polygon geometry, optional ``name``.
addresses (doors)
    GeoDataFrame indexed by ``address_id`` (str, stable across runs), Point geometry (empty for rows
    whose coordinates are unusable), columns ``housenumber`` (str), ``street`` (str),
    ``unit`` (str), ``households`` (int >= 1), ``source_row`` (1-based data row in the input
    file) and ``status`` (one of :data:`ADDRESS_STATUSES`). After the join: ``precinct_id``
    (str or missing).
street network
    See :class:`knockin_geo.streets.StreetNetwork`.
"""

from __future__ import annotations

from typing import Final

#: Canvassing pace between doors (km/h), shared by the cutter's minutes and the routes.
WALK_SPEED_KMH: Final = 4.0
#: Minutes spent per door (knock, wait, short talk), shared by the cutter and the routes.
MINUTES_PER_DOOR: Final = 1.5

PRECINCT_ID: Final = "precinct_id"
ADDRESS_ID: Final = "address_id"
TURF_ID: Final = "turf_id"
SEQ: Final = "seq"
SIDE: Final = "side"
STATUS: Final = "status"
HOUSENUMBER: Final = "housenumber"
STREET: Final = "street"
UNIT: Final = "unit"
HOUSEHOLDS: Final = "households"
SOURCE_ROW: Final = "source_row"
CITY: Final = "city"
POSTCODE: Final = "postcode"
NAME: Final = "name"

#: Status of a door that can be used by the later stages.
STATUS_OK: Final = "ok"
#: Status of a door that ended in a turf.
STATUS_ASSIGNED: Final = "assigned"

#: Every status a door can carry, with the reason shown to users.
ADDRESS_STATUSES: Final[dict[str, str]] = {
    STATUS_OK: "usable",
    STATUS_ASSIGNED: "in a turf",
    "missing_coordinates": "the row has an empty longitude/latitude (or x/y)",
    "bad_coordinates": "the coordinate is not a number, or is outside the valid range",
    "duplicate": "same id, or same number, street and position as an earlier row",
    "outside_precincts": "the point lies in no precinct",
    "outside_network": "the point lies outside the street network's extent",
    "no_street_nearby": "no walkable street within max_snap_m",
    "opted_out": "on the do-not-knock list",
    "not_in_universe": "its precinct was not selected",
    "canvassed": "already canvassed; left out by a re-cut",
    "no_voters": "no voter of the voter file lives here",
    "excluded_by_director": "on a street the director took out of the plan (hand edits)",
}

#: Status of a door on a street the director excluded (``exclude_street``, ``docs/edits.md``).
STATUS_EXCLUDED: Final = "excluded_by_director"

#: Turf column marking the turfs the director locked (plans with hand edits, ``docs/edits.md``).
LOCKED: Final = "locked"
#: Report key listing the streets the director excluded, that routes avoid (``docs/edits.md``).
AVOIDED_STREETS: Final = "avoided_streets"

#: Columns of an address table that may leave the machine in volunteer-facing files.
VOLUNTEER_ALLOWED_FIELDS: Final = (
    ADDRESS_ID,
    HOUSENUMBER,
    STREET,
    UNIT,
    HOUSEHOLDS,
    SEQ,
    SIDE,
    TURF_ID,
    PRECINCT_ID,
)

# result codes of a canvass (``docs/canvass.md``)
NOT_HOME = "not_home"
CONTACTED = "contacted"
REFUSED = "refused"
MOVED = "moved"
INACCESSIBLE = "inaccessible"
COME_BACK = "come_back"
DO_NOT_CONTACT = "do_not_contact"

#: The canonical result codes, in the order the phone map shows them.
RESULT_CODES: tuple[str, ...] = (
    NOT_HOME, CONTACTED, REFUSED, COME_BACK, MOVED, INACCESSIBLE, DO_NOT_CONTACT,
)
