"""The canvass-results loop: read what volunteers recorded, measure progress, re-cut what is left.

Volunteers record one result per door knocked (on the phone map, :mod:`knockin_geo.maps`, or in
any canvassing app) and hand back a CSV. This module:

* :func:`read_results` reads such a file against a plan: ids (address ids, or pseudonymous ids
  mapped back with the campaign secret), result codes in many spellings (:data:`RESULT_CODES`,
  :func:`normalize_code`), turfs and timestamps are checked row by row; bad rows are kept aside
  with the reason, never dropped silently;
* :func:`merge_results` accumulates imports and counts exact duplicates (same door, code and
  time) instead of counting them twice; :func:`current_state` gives every door its state;
* :func:`progress` counts doors, knocked doors, coverage, contacts, refusals... per turf, precinct
  and canvasser;
* :func:`opt_outs_from_results` turns ``do_not_contact`` results into an opt-out list
  (:func:`knockin_geo.privacy.apply_opt_outs`);
* re-cutting what is left is :func:`knockin_geo.recut.recut`;
* :func:`calibrate` measures doors per hour and contact rates by area type from the timestamps,
  and :func:`calibrated_params` turns that into :class:`~knockin_geo.turfs.TurfParams`.

Canvass results are personal data (political opinions, GDPR art. 9): they stay with the
director. Notes are free text and are never written to a volunteer file. See
``docs/canvass.md``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io as _io
import json
import logging
import math
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from scipy.optimize import nnls

from knockin_geo import schema
from knockin_geo._atomic import write_text_atomic
from knockin_geo._errors import InputError
from knockin_geo.io import decode_text, read_raw, sniff_delimiter
from knockin_geo.privacy import pseudonymize
from knockin_geo.schema import (
    COME_BACK,
    CONTACTED,
    DO_NOT_CONTACT,
    INACCESSIBLE,
    MOVED,
    NOT_HOME,
    REFUSED,
    RESULT_CODES,
)
from knockin_geo.sheets import restore_cell, sheet_csv
from knockin_geo.turfs import TurfParams

if TYPE_CHECKING:
    from knockin_geo.model import TurfPlan

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------
# result codes
# ----------------------------------------------------------------------------------------------
# the codes themselves (NOT_HOME … RESULT_CODES) live in knockin_geo.schema

#: What each code means (``docs/canvass.md``).
RESULT_MEANINGS: dict[str, str] = {
    NOT_HOME: "nobody answered; knock again another time",
    CONTACTED: "someone answered and we talked",
    REFUSED: "someone answered and refused to talk",
    COME_BACK: "someone answered and asked us to come back later",
    MOVED: "the people we looked for no longer live here",
    INACCESSIBLE: "the door cannot be reached (entry code, gate, building site)",
    DO_NOT_CONTACT: "the people asked never to be contacted again (goes to the opt-out list)",
}

#: Results after which a door still needs a visit.
REVISIT_CODES: frozenset[str] = frozenset({NOT_HOME, COME_BACK})

#: Other spellings of every code (FR/EN, VAN-style labels, abbreviations), compared after
#: :func:`normalize_code` (case, accents, punctuation and spaces ignored).
RESULT_ALIASES: dict[str, tuple[str, ...]] = {
    NOT_HOME: (
        "not home", "nothome", "not at home", "nh", "absent", "absente", "absents", "absence",
        "pas la", "personne", "nobody home", "no one home", "no answer", "no response",
        "pas de reponse", "ne repond pas",
    ),
    CONTACTED: (
        "contacted", "contact", "contacte", "contactee", "contact etabli", "canvassed",
        "talked", "spoke", "spoken", "reached", "conversation", "discussion", "echange",
        "ouvert", "porte ouverte", "answered",
    ),
    REFUSED: (
        "refused", "refusal", "refuse", "refusee", "refus", "ref", "declined", "not interested",
        "pas interesse", "pas interessee",
    ),
    COME_BACK: (
        "come back", "comeback", "come back later", "call back", "callback", "later",
        "repasser", "a repasser", "revenir", "a revenir", "plus tard", "cb",
    ),
    MOVED: (
        "moved", "moved out", "mv", "demenage", "demenagee", "demenages", "a demenage",
        "parti", "partie", "n habite plus ici", "no longer lives here",
    ),
    INACCESSIBLE: (
        "inaccessible", "inacc", "no access", "not accessible", "access denied", "locked",
        "gated", "acces impossible", "pas d acces", "digicode", "interphone",
    ),
    DO_NOT_CONTACT: (
        "do not contact", "dnc", "do not knock", "dnk", "do not call", "opt out", "optout",
        "ne pas contacter", "ne plus contacter", "ne pas deranger", "opposition",
        "ne pas frapper", "stop",
    ),
}


def normalize_code(value: object) -> str | None:
    """Return the canonical result code of a spelling, or None when it is not one.

    Parameters
    ----------
    value
        A result as written in a file: ``"Not Home"``, ``"NH"``, ``"Absent"``, ``"Refus"``,
        ``"Déménagé"``, ``"do_not_contact"``... Case, accents, punctuation and spaces are
        ignored.

    Returns
    -------
    str or None
        One of :data:`RESULT_CODES`.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return _ALIAS_INDEX.get(_norm_text(str(value)))


def _norm_text(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for code in RESULT_CODES:
        for spelling in (code, *RESULT_ALIASES[code]):
            key = _norm_text(spelling)
            if index.get(key, code) != code:  # pragma: no cover - guarded by the tests
                msg = f"result spelling {spelling!r} is given to two codes"
                raise RuntimeError(msg)
            index[key] = code
    return index


_ALIAS_INDEX = _alias_index()

# ----------------------------------------------------------------------------------------------
# reading results
# ----------------------------------------------------------------------------------------------
#: Columns of a results table (:attr:`ResultsImport.results`, :func:`merge_results`).
RESULT_COLUMNS: tuple[str, ...] = (
    schema.ADDRESS_ID, schema.TURF_ID, "result", "timestamp", "canvasser", "note", "source",
    "row",
)

#: Accepted names of each column (compared case-insensitively, spaces and dashes as ``_``).
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "address_id": ("address_id", "addressid"),
    "pseudo_id": ("pseudo_id", "pseudoid", "pseudonym"),
    "id": ("id", "door_id", "doorid", "door"),
    "turf_id": ("turf_id", "turfid", "turf", "secteur"),
    "result": ("result", "result_code", "code", "resultat", "status", "outcome"),
    "timestamp": ("timestamp", "time", "datetime", "date_time", "date", "when", "horodatage"),
    "canvasser": ("canvasser", "canvasser_id", "volunteer", "militant", "benevole"),
    "note": ("note", "notes", "comment", "comments", "commentaire"),
}

@dataclass(frozen=True)
class ResultsImport:
    """What :func:`read_results` found in one file.

    Attributes
    ----------
    results
        The valid rows (columns :data:`RESULT_COLUMNS`): ``address_id`` (the plan's id, also
        when the file held pseudonyms), ``turf_id`` (the door's turf in the plan), ``result``
        (canonical code), ``timestamp`` (UTC), ``canvasser`` and ``note`` (strings, may be
        empty), ``source`` (file name) and ``row`` (1 = first row after the header).
    rejected
        The invalid rows as read (strings) with ``row`` and ``reason``.
    problems
        One message per rejected row (``"row 12: unknown id '...'"``), then general remarks.
    path
        The file read.
    id_column
        The id column used and what it held (``address_id``, ``pseudo_id`` or ``id``).
    """

    results: pd.DataFrame
    rejected: pd.DataFrame
    problems: list[str]
    path: str
    id_column: str
    rows: int = 0
    ids: dict[str, int] = field(default_factory=dict)


def empty_results() -> pd.DataFrame:
    """Return an empty results table with the right columns and dtypes."""
    return pd.DataFrame(
        {
            schema.ADDRESS_ID: pd.Series([], dtype="string"),
            schema.TURF_ID: pd.Series([], dtype="string"),
            "result": pd.Series([], dtype="string"),
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            "canvasser": pd.Series([], dtype="string"),
            "note": pd.Series([], dtype="string"),
            "source": pd.Series([], dtype="string"),
            "row": pd.Series([], dtype="int64"),
        }
    )


def _find_column(columns: list[str], role: str) -> str | None:
    norm = {re.sub(r"[\s\-]+", "_", c.strip().lower()): c for c in columns}
    for name in COLUMN_NAMES[role]:
        if name in norm:
            return norm[name]
    return None


def _read_table(p: Path) -> pd.DataFrame:
    if not p.is_file():
        msg = f"results file not found: {p}"
        raise InputError(msg, path=str(p))
    text, _ = decode_text(read_raw(p), None, p)
    if not text.strip():
        msg = f"results file {p} is empty: it needs a header row (id, turf_id, result, timestamp)"
        raise InputError(msg, path=str(p))
    delimiter = sniff_delimiter(text)
    try:
        frame = pd.read_csv(_io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                            na_filter=False, skip_blank_lines=True, engine="python")
    except (ValueError, csv.Error) as exc:  # pandas' ParserError is a ValueError
        msg = f"cannot parse the results file {p}: {exc}"
        raise InputError(msg, path=str(p)) from exc
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    return frame.astype(str)


def _parse_timestamp(value: str, tz: str) -> pd.Timestamp:
    s = value.strip()
    if not s:
        msg = "empty timestamp"
        raise ValueError(msg)
    if len(s) > 10 and s[10] == " ":
        s = s[:10] + "T" + s[11:]
    try:
        parsed = dt.datetime.fromisoformat(s)
    except ValueError as exc:
        msg = f"timestamp {value!r} is not ISO 8601 (2024-06-01T10:15:00Z)"
        raise ValueError(msg) from exc
    if not 1990 <= parsed.year <= 2100:
        msg = f"timestamp {value!r} is out of range"
        raise ValueError(msg)
    ts = pd.Timestamp(parsed)
    if ts.tzinfo is None:
        try:
            ts = ts.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except Exception as exc:
            msg = f"timestamp {value!r} does not exist or is ambiguous in {tz}"
            raise ValueError(msg) from exc
    return ts.tz_convert("UTC")


def read_results(
    path: str | os.PathLike[str],
    plan: TurfPlan,
    *,
    secret: bytes | None = None,
    naive_tz: str = "UTC",
    check_turf: bool = True,
) -> ResultsImport:
    """Read a canvass-results CSV against a plan.

    Parameters
    ----------
    path
        CSV (any delimiter and common encoding; ``.gz``/``.bz2``/``.zip`` too) with an id
        column (``address_id``; ``pseudo_id``; or ``id``/``door_id`` holding either kind),
        ``result`` and ``timestamp``, and optionally ``turf_id``, ``canvasser`` and ``note``.
        Column names are matched case-insensitively (:data:`COLUMN_NAMES`); other columns are
        ignored. The phone map's export and :func:`write_results` files are read as they are.
    plan
        The plan the results belong to (anything with a ``doors`` table indexed by
        ``address_id`` with ``turf_id``).
    secret
        The campaign secret the plan's volunteer files were written with: pseudonymous ids are
        mapped back to address ids (``pseudonymize(plan.doors.index, secret)``).
    naive_tz
        Time zone of timestamps written without one (default UTC; ``"Europe/Paris"`` for local
        wall-clock times). Timestamps with an offset (``Z``, ``+02:00``) are used as they are.
    check_turf
        Reject rows whose ``turf_id`` is not the door's turf in ``plan``. False for the
        director's accumulated results (:func:`write_results`) read against a re-cut plan: the
        rows then keep the turf they were recorded in.

    Returns
    -------
    ResultsImport
        Valid rows in ``results``, the others in ``rejected`` with the reason, and the
        ``problems`` list. A row is rejected for an unknown id, an unknown or empty result code,
        a turf that is not the door's turf in the plan, or a bad timestamp.

    Raises
    ------
    InputError
        The file is missing, unreadable, or lacks a needed column (the message names the file
        and the column).
    """
    p = Path(path)
    frame = _read_table(p)
    cols, id_role = _results_columns(p, frame, secret)
    doors = _plan_doors(plan, secret, id_role)
    raw = {role: _cells(frame, cols[role])
           for role in ("result", "timestamp", "turf_id", "canvasser", "note")}
    raw["id"] = _cells(frame, cols[id_role])
    rows = _check_rows(raw, doors, naive_tz=naive_tz, check_turf=check_turf, source=p.name)

    problems = rows.problems
    unknown_ids = sum("unknown id" in r for r in rows.reasons)
    if unknown_ids and secret is None and id_role == "id":
        problems.append(
            f"{unknown_ids} ids match no address id: if the maps were written with "
            "pseudonymous ids, give the campaign secret"
        )
    good = rows.good
    results = empty_results() if not good[schema.ADDRESS_ID] else _typed_results(good)
    rejected = frame.iloc[rows.bad].copy()
    rejected.insert(0, "row", np.asarray(rows.bad, dtype=np.int64) + 1)
    rejected["reason"] = rows.reasons
    rejected = rejected.reset_index(drop=True)
    logger.info("%s: %d results read, %d rows rejected", p, len(results), len(rejected))
    if len(rejected):
        logger.warning("%s: %d rows rejected (see the problems list)", p, len(rejected))
    return ResultsImport(results, rejected, problems, str(p), cols[id_role] or id_role,
                         rows=len(frame), ids=rows.kinds)


def _results_columns(
    p: Path, frame: pd.DataFrame, secret: bytes | None
) -> tuple[dict[str, str | None], str]:
    """Find the file's column for each role and the role of its id column (InputError if none)."""
    columns = list(frame.columns)
    cols = {role: _find_column(columns, role) for role in COLUMN_NAMES}
    id_role = next((r for r in ("address_id", "pseudo_id", "id") if cols[r] is not None), None)
    missing = []
    if id_role is None:
        missing.append("an id column (address_id, pseudo_id, id or door_id)")
    for role in ("result", "timestamp"):
        if cols[role] is None:
            missing.append(f"a {role} column")
    if missing:
        msg = (
            f"the results file {p} needs {' and '.join(missing)}; "
            f"it has {', '.join(repr(c) for c in columns) or 'no columns'}"
        )
        raise InputError(msg, path=str(p))
    assert id_role is not None
    if id_role == "pseudo_id" and secret is None:
        msg = (
            f"the results file {p} holds pseudonymous ids (column {cols['pseudo_id']!r}): give "
            "the campaign secret they were made with ($KNOCKIN_GEO_SECRET or --secret-file)"
        )
        raise InputError(msg, path=str(p))
    return cols, id_role


def _cells(frame: pd.DataFrame, column: str | None) -> list[str]:
    """Return a column's cells, stripped and restored if neutralised for spreadsheets.

    (The phone map and write_results neutralise cells.) Empty strings when there is no column.
    """
    if column is None:
        return [""] * len(frame)
    return [restore_cell(v).strip() for v in frame[column].tolist()]


@dataclass(frozen=True)
class _PlanDoors:
    """The plan's doors as :func:`read_results` looks a row up."""

    turf: pd.Series  # turf_id by address id (NA for a door in no turf)
    known_turfs: frozenset[str]
    by_pseudo: Mapping[str, str]  # address id by pseudonymous id (empty without a secret)
    ids: frozenset[str]  # address ids a row may give (empty for a pseudo_id column)


def _plan_doors(plan: TurfPlan, secret: bytes | None, id_role: str) -> _PlanDoors:
    doors = plan.doors
    plan_ids = doors.index.astype(str)
    plan_turf = pd.Series(doors[schema.TURF_ID].astype("string").to_numpy(), index=plan_ids)
    by_pseudo: dict[str, str] = {}
    if secret is not None and id_role in ("pseudo_id", "id"):
        by_pseudo = dict(zip(pseudonymize(plan_ids, secret).tolist(), plan_ids.tolist(),
                             strict=True))
    ids = frozenset(plan_ids.tolist()) if id_role != "pseudo_id" else frozenset()
    return _PlanDoors(plan_turf, frozenset(plan_turf.dropna().astype(str)), by_pseudo, ids)


def _door_id(rid: str, doors: _PlanDoors) -> tuple[str | None, str | None, str | None]:
    """(address id, kind of id given, problem) of a row's id cell."""
    if not rid:
        return None, None, "empty id"
    if rid in doors.ids:
        return rid, "address_id", None
    if rid in doors.by_pseudo:
        return doors.by_pseudo[rid], "pseudo_id", None
    return None, None, f"unknown id {rid!r}"


def _door_turf(aid: str | None, doors: _PlanDoors) -> str | None:
    turf = doors.turf.get(aid) if aid is not None else None
    return None if turf is None or pd.isna(turf) else str(turf)


def _turf_problem(
    turf: str, aid: str | None, door_turf: str | None, doors: _PlanDoors
) -> str | None:
    """Why a row's turf_id cell does not fit the plan, or None."""
    if turf and turf not in doors.known_turfs:
        return f"unknown turf {turf!r}"
    if turf and aid is not None and door_turf != turf:
        where = f"turf {door_turf!r}" if door_turf else "no turf"
        return f"turf mismatch: the row says {turf!r}, the plan has this door in {where}"
    return None


@dataclass
class _CheckedRows:
    """The rows of a results file, checked: the good ones by column, the others with why."""

    good: dict[str, list[Any]] = field(
        default_factory=lambda: {c: [] for c in RESULT_COLUMNS})
    bad: list[int] = field(default_factory=list)  # 0-based positions in the file's table
    reasons: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=lambda: {"address_id": 0, "pseudo_id": 0})


def _check_rows(
    raw: Mapping[str, list[str]], doors: _PlanDoors, *, naive_tz: str, check_turf: bool,
    source: str,
) -> _CheckedRows:
    """Check every row (its id, result code, timestamp and turf) against the plan."""
    out = _CheckedRows()
    for i in range(len(raw["id"])):
        aid, kind, id_problem = _door_id(raw["id"][i], doors)
        why = [id_problem] if id_problem else []
        if kind is not None:
            out.kinds[kind] += 1
        code = normalize_code(raw["result"][i])
        if code is None:
            shown = raw["result"][i].strip()
            why.append(f"unknown result code {shown!r}" if shown else "empty result code")
        ts = None
        try:
            ts = _parse_timestamp(raw["timestamp"][i], naive_tz)
        except ValueError as exc:
            why.append(str(exc))
        turf = raw["turf_id"][i]
        door_turf = _door_turf(aid, doors)
        turf_problem = _turf_problem(turf, aid, door_turf, doors) if check_turf else None
        if turf_problem:
            why.append(turf_problem)
        if why:
            out.bad.append(i)
            out.reasons.append("; ".join(why))
            out.problems.append(f"row {i + 1}: {'; '.join(why)}")
            continue
        for c, v in zip(RESULT_COLUMNS, (
                aid, door_turf if check_turf or not turf else turf, code, ts,
                raw["canvasser"][i], raw["note"][i], source, i + 1), strict=True):
            out.good[c].append(v)
    return out


def _typed_results(cols: Mapping[str, list[Any]]) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            schema.ADDRESS_ID: pd.array(cols[schema.ADDRESS_ID], dtype="string"),
            schema.TURF_ID: pd.array(cols[schema.TURF_ID], dtype="string"),
            "result": pd.array(cols["result"], dtype="string"),
            "timestamp": pd.to_datetime(pd.Series(cols["timestamp"], dtype=object), utc=True),
            "canvasser": pd.array(cols["canvasser"], dtype="string"),
            "note": pd.array(cols["note"], dtype="string"),
            "source": pd.array(cols["source"], dtype="string"),
            "row": np.asarray(cols["row"], dtype=np.int64),
        }
    )
    out["timestamp"] = out["timestamp"].astype("datetime64[ns, UTC]")
    return out


def conform_results(frame: pd.DataFrame | None) -> pd.DataFrame:
    """Return a results table with exactly :data:`RESULT_COLUMNS` and their dtypes."""
    base = empty_results()
    if frame is None or len(frame) == 0:
        return base
    missing = {schema.ADDRESS_ID, "result", "timestamp"} - set(frame.columns)
    if missing:
        msg = f"a results table needs the columns {sorted(missing)}"
        raise InputError(msg)
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for c in RESULT_COLUMNS:
        if c in frame.columns:
            out[c] = frame[c].to_numpy()
        else:
            out[c] = 0 if c == "row" else ""
    for c in RESULT_COLUMNS:
        if c == "timestamp":
            out[c] = pd.to_datetime(out[c], utc=True).astype("datetime64[ns, UTC]")
        elif c == "row":
            out[c] = pd.to_numeric(out[c], errors="coerce").fillna(0).astype(np.int64)
        else:
            out[c] = out[c].astype("string")
    for c in ("canvasser", "note", "source"):
        out[c] = out[c].fillna("")
    return out


def merge_results(
    existing: pd.DataFrame | None, new: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """Accumulate results across imports, without counting a result twice.

    Parameters
    ----------
    existing
        Results imported so far (or None).
    new
        Newly read results (:attr:`ResultsImport.results`).

    Returns
    -------
    merged : pandas.DataFrame
        Every distinct result, sorted by time (then address id, code, source and row). Rows
        with the same door, code and timestamp are one result: the first one seen is kept
        (the existing one), so re-importing a file changes nothing.
    duplicates : int
        How many rows of ``new`` were exact duplicates (of ``existing`` or within ``new``).
    """
    old = conform_results(existing)
    add = conform_results(new)
    both = pd.concat([old, add], ignore_index=True)
    if len(both) == 0:
        return empty_results(), 0
    dup = both.duplicated(subset=[schema.ADDRESS_ID, "result", "timestamp"], keep="first")
    n_dup = int(dup.to_numpy()[len(old):].sum())
    merged = both[~dup.to_numpy()]
    merged = merged.sort_values(
        ["timestamp", schema.ADDRESS_ID, "result", "source", "row"], kind="stable"
    ).reset_index(drop=True)
    if n_dup:
        logger.info("%d duplicate results ignored", n_dup)
    return merged, n_dup


def write_results(results: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write accumulated results to a CSV that :func:`read_results` reads back (atomically).

    The file is for the director: it holds address ids and notes (personal data). Timestamps
    are written in UTC (ISO 8601 with ``Z``); rows sorted as :func:`merge_results` sorts them.
    It opens in a spreadsheet: a cell that would start a formula (a note ``=1+1``) gets a
    leading ``'`` (:func:`knockin_geo.sheets.neutralize_cell`), which :func:`read_results`
    removes again, so the data keep the text as typed.

    Parameters
    ----------
    results
        A results table.
    path
        Target file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    r = conform_results(results)
    r = r.sort_values(["timestamp", schema.ADDRESS_ID, "result", "source", "row"],
                      kind="stable")
    records: Iterable[Any] = r.itertuples(index=False)  # namedtuples of RESULT_COLUMNS
    rows = (
        [rec.address_id, "" if pd.isna(rec.turf_id) else str(rec.turf_id), rec.result,
         rec.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"), rec.canvasser, rec.note]
        for rec in records
    )
    header = [schema.ADDRESS_ID, schema.TURF_ID, "result", "timestamp", "canvasser", "note"]
    return write_text_atomic(path, sheet_csv(header, rows))


def current_state(results: pd.DataFrame) -> pd.DataFrame:
    """Return every door's current state from its results.

    The state is the latest result (by timestamp; on a tie, the one later in ``results``),
    except that ``do_not_contact`` sticks: once asked, a door stays ``do_not_contact``.

    Parameters
    ----------
    results
        A results table (:func:`merge_results`).

    Returns
    -------
    pandas.DataFrame
        Index ``address_id``: ``result`` (the state), ``timestamp`` and ``canvasser`` of the
        latest result, ``turf_id``, ``visits`` (results recorded) and ``ever_contacted``.
    """
    r = conform_results(results)
    if len(r) == 0:
        out = pd.DataFrame({
            "result": pd.Series([], dtype="string"),
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            "canvasser": pd.Series([], dtype="string"),
            schema.TURF_ID: pd.Series([], dtype="string"),
            "visits": pd.Series([], dtype="int64"),
            "ever_contacted": pd.Series([], dtype=bool),
        })
        out.index = pd.Index([], dtype="string", name=schema.ADDRESS_ID)
        return out
    r = r.assign(_pos=np.arange(len(r)))
    r = r.sort_values(["timestamp", "_pos"], kind="stable")
    g = r.groupby(schema.ADDRESS_ID, sort=True)
    last = g.tail(1).set_index(schema.ADDRESS_ID).sort_index()
    state = last["result"].astype("string")
    dnc = g["result"].apply(lambda s: bool((s == DO_NOT_CONTACT).any()))
    state = state.where(~dnc.reindex(state.index).to_numpy(), DO_NOT_CONTACT)
    out = pd.DataFrame(
        {
            "result": state,
            "timestamp": last["timestamp"],
            "canvasser": last["canvasser"].astype("string"),
            schema.TURF_ID: last[schema.TURF_ID].astype("string"),
            "visits": g.size().reindex(state.index).astype(np.int64),
            "ever_contacted": g["result"].apply(lambda s: bool((s == CONTACTED).any()))
            .reindex(state.index).astype(bool),
        }
    )
    out.index = pd.Index(state.index.astype(str), dtype="string", name=schema.ADDRESS_ID)
    return out


# ----------------------------------------------------------------------------------------------
# progress
# ----------------------------------------------------------------------------------------------
#: Columns of every :func:`progress` table.
PROGRESS_COLUMNS: tuple[str, ...] = (
    "doors", "knocked", "coverage", "contacted", "contact_rate", "refused", "do_not_contact",
    "not_home", "come_back", "moved", "inaccessible", "to_do",
)


def _count_states(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Progress figures per ``key`` from a frame of doors with their ``state``."""
    st = frame["state"]
    cols = {
        "doors": np.ones(len(frame), dtype=np.int64),
        "knocked": st.notna().to_numpy().astype(np.int64),
    }
    for code in (CONTACTED, REFUSED, DO_NOT_CONTACT, NOT_HOME, COME_BACK, MOVED, INACCESSIBLE):
        cols[code] = (st == code).fillna(False).to_numpy().astype(np.int64)
    flags = pd.DataFrame(cols, index=frame.index)
    flags[key] = frame[key].to_numpy()
    out = flags.groupby(key, sort=True).sum()
    out["coverage"] = out["knocked"] / out["doors"].where(out["doors"] > 0)
    out["contact_rate"] = out[CONTACTED] / out["knocked"].where(out["knocked"] > 0)
    out["to_do"] = out["doors"] - out["knocked"] + out[NOT_HOME] + out[COME_BACK]
    out = out[list(PROGRESS_COLUMNS)]
    out.index = out.index.astype(str)
    out.index.name = key
    return out


def progress(plan: TurfPlan, results: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Count what has been done, per turf, per precinct, per canvasser and overall.

    Parameters
    ----------
    plan
        The plan (its turfs are the doors to knock).
    results
        Results (:func:`merge_results`); results for doors outside the plan's turfs are
        ignored.

    Returns
    -------
    dict of pandas.DataFrame
        ``turf`` (every turf of the plan), ``precinct``, ``canvasser`` and ``total`` (one row,
        ``all``), with :data:`PROGRESS_COLUMNS`: ``doors`` in the turfs, ``knocked`` (doors
        with at least one result), ``coverage`` = knocked / doors, ``contacted``,
        ``contact_rate`` = contacted / knocked, ``refused``, ``do_not_contact``, ``not_home``,
        ``come_back``, ``moved``, ``inaccessible`` (doors by their current state,
        :func:`current_state`), and ``to_do`` (doors not knocked yet, or whose state is
        ``not_home`` or ``come_back``). The canvasser table counts, for each canvasser, the
        doors of the turfs they worked in and the doors they knocked, by their own latest
        result at each door; it also has ``results`` (rows recorded) and ``turfs``.
    """
    doors = plan.doors[plan.doors[schema.TURF_ID].notna()]
    ids = doors.index.astype(str)
    base = pd.DataFrame(
        {
            schema.TURF_ID: doors[schema.TURF_ID].astype(str).to_numpy(),
            schema.PRECINCT_ID: (
                doors[schema.PRECINCT_ID].astype("string").fillna("").to_numpy()
                if schema.PRECINCT_ID in doors else np.full(len(doors), "", dtype=object)
            ),
        },
        index=pd.Index(ids, name=schema.ADDRESS_ID),
    )
    r = conform_results(results)
    r = r[r[schema.ADDRESS_ID].isin(ids)]
    state = current_state(r)
    base["state"] = state["result"].reindex(base.index).to_numpy()
    turf = _count_states(base, schema.TURF_ID)
    precinct = _count_states(base, schema.PRECINCT_ID)
    total = _count_states(base.assign(total="all"), "total")
    total.index.name = None

    rows = []
    canv = r.assign(canvasser=r["canvasser"].fillna(""))
    for name, own in canv.groupby("canvasser", sort=True):
        st = current_state(own)
        turfs = sorted(base.loc[own[schema.ADDRESS_ID].unique(), schema.TURF_ID].unique())
        mine = base[base[schema.TURF_ID].isin(turfs)].drop(columns="state")
        mine = mine.assign(state=st["result"].reindex(mine.index).to_numpy(),
                           canvasser=name or "(blank)")
        row = _count_states(mine, "canvasser")
        row["results"] = len(own)
        row["turfs"] = len(turfs)
        rows.append(row)
    if rows:
        canvasser = pd.concat(rows)
    else:
        canvasser = pd.DataFrame(columns=[*PROGRESS_COLUMNS, "results", "turfs"])
        canvasser.index.name = "canvasser"
    return {"turf": turf, "precinct": precinct, "canvasser": canvasser, "total": total}


def opt_outs_from_results(results: pd.DataFrame) -> pd.DataFrame:
    """Return the ``do_not_contact`` doors as an opt-out list.

    Parameters
    ----------
    results
        Results (any import or :func:`merge_results`).

    Returns
    -------
    pandas.DataFrame
        Columns ``address_id`` and ``address_key`` (empty), as
        :func:`knockin_geo.privacy.read_opt_outs` returns: pass it to
        :func:`knockin_geo.privacy.apply_opt_outs` or ``plan_turfs(opt_outs=...)``. One row per
        door that ever got a ``do_not_contact`` result, sorted.
    """
    r = conform_results(results)
    ids = sorted(set(r.loc[r["result"] == DO_NOT_CONTACT, schema.ADDRESS_ID].astype(str)))
    return pd.DataFrame({"address_id": pd.Series(ids, dtype=object),
                         "address_key": pd.Series([""] * len(ids), dtype=object)})


# ----------------------------------------------------------------------------------------------
# calibration
# ----------------------------------------------------------------------------------------------
#: Door density (address points per km² of the turf footprint) at or above which a turf is
#: ``dense``; below ``RURAL_BELOW`` it is ``rural``; in between ``suburban``.
DENSE_FROM = 1000.0
RURAL_BELOW = 150.0
#: Gaps between two consecutive results longer than this (minutes) are breaks, not work.
MAX_GAP_MIN = 30.0
AREA_TYPES: tuple[str, ...] = ("dense", "suburban", "rural")


def area_types(plan: TurfPlan) -> pd.DataFrame:
    """Classify every turf as dense, suburban or rural by its door density.

    Parameters
    ----------
    plan
        A plan.

    Returns
    -------
    pandas.DataFrame
        Index ``turf_id``: ``doors``, ``area_km2`` (of the turf footprint), ``density``
        (doors per km²) and ``area_type`` (``dense`` from :data:`DENSE_FROM`, ``rural`` below
        :data:`RURAL_BELOW`, ``suburban`` in between).
    """
    t = plan.turfs
    area = shapely.area(t.geometry.to_numpy()) / 1e6
    doors = t["doors"].to_numpy(dtype=float)
    density = np.where(area > 0, doors / np.where(area > 0, area, 1.0), np.inf)
    kind = np.where(density >= DENSE_FROM, "dense",
                    np.where(density < RURAL_BELOW, "rural", "suburban"))
    out = pd.DataFrame({"doors": doors.astype(np.int64), "area_km2": np.round(area, 4),
                        "density": np.round(density, 1), "area_type": kind},
                       index=pd.Index(t.index.astype(str), name=schema.TURF_ID))
    return out


def calibrate(
    results: pd.DataFrame, plan: TurfPlan, *, max_gap_min: float = MAX_GAP_MIN
) -> pd.DataFrame:
    """Measure doors per hour and contact rates by area type from the results' timestamps.

    The results of one canvasser in one turf (a blank canvasser counts as one person per turf)
    are put in time order; each gap between two consecutive results of more than 0 and at most
    ``max_gap_min`` minutes is one door's work (walking to it included). Longer gaps are breaks.

    Parameters
    ----------
    results
        Results (:func:`merge_results`) recorded on ``plan``.
    plan
        The plan (its turfs give the area types, :func:`area_types`, and walking lengths).
    max_gap_min
        Longest gap counted as work, in minutes.

    Returns
    -------
    pandas.DataFrame
        Index ``area_type`` (the types present, then ``all``): ``turfs``, ``doors_knocked``,
        ``intervals`` (gaps counted), ``hours``, ``doors_per_hour``, ``minutes_per_door``
        (observed, walking included), ``walk_minutes_per_door`` (the plan's walking time per
        door in those turfs), ``households_per_door``, ``minutes_per_household`` (observed
        minus walking, per household: what :class:`~knockin_geo.turfs.TurfParams` calls
        ``minutes_per_door``), ``contact_rate`` (contacted / knocked doors) and
        ``walk_speed_kmh`` and ``fitted_minutes_per_household`` (the walking pace and the
        time per household fitted together over turfs that differ in walking per door,
        :func:`_fit_pace`; NaN when they cannot tell them apart).
    """
    kinds = area_types(plan)
    r = conform_results(results)
    door_turf = plan.doors[schema.TURF_ID].astype("string")
    door_turf.index = door_turf.index.astype(str)
    turf = r[schema.TURF_ID].where(r[schema.TURF_ID].notna() & (r[schema.TURF_ID] != ""),
                                   door_turf.reindex(r[schema.ADDRESS_ID]).to_numpy())
    r = r.assign(**{schema.TURF_ID: turf.to_numpy()})
    r = r[r[schema.TURF_ID].notna() & r[schema.TURF_ID].isin(kinds.index)]
    r = r.assign(canvasser=r["canvasser"].fillna(""), _pos=np.arange(len(r)))
    hh = (plan.doors[schema.HOUSEHOLDS] if schema.HOUSEHOLDS in plan.doors
          else pd.Series(1, index=plan.doors.index))
    hh.index = hh.index.astype(str)
    speed = plan.params.metres_per_minute
    t = plan.turfs
    walk_pd = (t["walk_m"].to_numpy(dtype=float) / np.maximum(t["doors"].to_numpy(dtype=float), 1)
               / speed)
    walk_per_door = pd.Series(walk_pd, index=t.index.astype(str))

    work = _work_intervals(r, max_gap_min)
    state = current_state(r)
    knocked = pd.DataFrame({
        schema.TURF_ID: door_turf.reindex(state.index.astype(str)).to_numpy(),
        "contacted": (state["result"] == CONTACTED).to_numpy(dtype=bool),
        "households": hh.reindex(state.index.astype(str)).to_numpy(dtype=float),
    })
    knocked = knocked[knocked[schema.TURF_ID].notna()]

    out_rows = {}
    present = [k for k in AREA_TYPES if k in set(kinds.loc[
        sorted(set(work[schema.TURF_ID]) | set(knocked[schema.TURF_ID].astype(str))),
        "area_type"])]
    for kind in [*present, "all"]:
        tids = set(kinds.index) if kind == "all" else set(kinds.index[kinds["area_type"] == kind])
        wk = work[work[schema.TURF_ID].isin(tids)]
        kn = knocked[knocked[schema.TURF_ID].astype(str).isin(tids)]
        out_rows[kind] = _calibration_row(wk, kn, walk_per_door, speed)
    out = pd.DataFrame.from_dict(out_rows, orient="index")
    out.index.name = "area_type"
    return out


def _work_intervals(r: pd.DataFrame, max_gap_min: float) -> pd.DataFrame:
    """Gaps counted as work and their minutes, per turf and canvasser (one row each).

    A gap between two results in time order (ties in file order) counts when it is more than 0
    and at most ``max_gap_min`` minutes.
    """
    rows = []
    for (tid, _who), g in r.sort_values(["timestamp", "_pos"], kind="stable").groupby(
            [schema.TURF_ID, "canvasser"], sort=True):
        gaps = g["timestamp"].diff().dt.total_seconds().to_numpy()[1:] / 60.0
        ok = (gaps > 0) & (gaps <= max_gap_min)
        rows.append({schema.TURF_ID: str(tid), "intervals": int(ok.sum()),
                     "minutes": float(gaps[ok].sum())})
    return pd.DataFrame(rows, columns=[schema.TURF_ID, "intervals", "minutes"])


def _calibration_row(
    wk: pd.DataFrame, kn: pd.DataFrame, walk_per_door: pd.Series, speed: float
) -> dict[str, Any]:
    """One row of :func:`calibrate` from the work intervals and knocked doors of some turfs."""
    n_int = int(wk["intervals"].sum())
    minutes = float(wk["minutes"].sum())
    mpd = minutes / n_int if n_int else math.nan
    walk = (float(np.average(walk_per_door.reindex(wk[schema.TURF_ID]).to_numpy(),
                             weights=wk["intervals"].to_numpy()))
            if n_int else math.nan)
    hpd = float(kn["households"].mean()) if len(kn) else math.nan
    per_hh = max(0.0, mpd - walk) / hpd if n_int and hpd > 0 else math.nan
    return {
        "turfs": len(set(wk[schema.TURF_ID]) | set(kn[schema.TURF_ID].astype(str))),
        "doors_knocked": len(kn),
        "intervals": n_int,
        "hours": round(minutes / 60.0, 4),
        "doors_per_hour": round(60.0 / mpd, 4) if n_int and mpd > 0 else math.nan,
        "minutes_per_door": round(mpd, 4) if n_int else math.nan,
        "walk_minutes_per_door": round(walk, 4) if n_int else math.nan,
        "households_per_door": round(hpd, 4) if len(kn) else math.nan,
        "minutes_per_household": round(per_hh, 4) if n_int else math.nan,
        "contact_rate": round(float(kn["contacted"].mean()), 6) if len(kn) else math.nan,
        **_fit_pace(wk, kn, walk_per_door * speed),
    }


#: Walking paces a fit may give (km/h); outside, the turfs did not tell walking from talking.
PACE_KMH = (0.5, 8.0)


def _fit_pace(
    work: pd.DataFrame, knocked: pd.DataFrame, walk_m_per_door: pd.Series
) -> dict[str, float]:
    """Fit the walking pace and the time per household from turfs that differ in walking.

    Each turf's observed minutes per door ``y`` is modelled as ``walk_m / v + households * t``
    (its walk per door from the plan, its households per door); ``1 / v`` and ``t`` are the
    non-negative least squares over the turfs, weighted by their intervals. Needs two turfs or
    more, and a pace within :data:`PACE_KMH`; else both are NaN.

    Returns
    -------
    dict
        ``walk_speed_kmh`` (``v``) and ``fitted_minutes_per_household`` (``t``).
    """
    none = {"walk_speed_kmh": math.nan, "fitted_minutes_per_household": math.nan}
    per = work.groupby(schema.TURF_ID)[["intervals", "minutes"]].sum()
    per = per[per["intervals"] > 0]
    if len(per) < 2:
        return none
    hh = knocked.assign(t=knocked[schema.TURF_ID].astype(str)).groupby("t")["households"].mean()
    x = np.column_stack([walk_m_per_door.reindex(per.index).to_numpy(dtype=float),
                         hh.reindex(per.index).to_numpy(dtype=float)])
    y = (per["minutes"] / per["intervals"]).to_numpy(dtype=float)
    ok = np.isfinite(x).all(axis=1)
    if ok.sum() < 2:
        return none
    w = np.sqrt(per["intervals"].to_numpy(dtype=float)[ok])
    (inv_v, t), _ = nnls(x[ok] * w[:, None], y[ok] * w)
    kmh = 60.0 / inv_v / 1000.0 if inv_v > 0 else math.inf
    if not PACE_KMH[0] <= kmh <= PACE_KMH[1]:
        return none
    return {"walk_speed_kmh": round(kmh, 3), "fitted_minutes_per_household": round(float(t), 4)}


def read_calibration(path: str | os.PathLike[str], area_type: str = "all") -> dict[str, float]:
    """Read the calibration table written by ``knockin-geo progress --calibrate --out DIR``.

    Parameters
    ----------
    path
        ``progress_calibration.csv`` (columns ``area_type``, ``minutes_per_household`` and,
        when the results could tell it, ``walk_speed_kmh``).
    area_type
        Which row to use.

    Returns
    -------
    dict
        The :class:`~knockin_geo.turfs.TurfParams` fields to set: when the pace was fitted,
        ``walk_speed_kmh`` and ``minutes_per_door`` = ``fitted_minutes_per_household`` (the
        two go together); else ``minutes_per_door`` = ``minutes_per_household`` (observed
        minutes per door less the plan's walking, per household).

    Raises
    ------
    InputError
        The file cannot be read, or has no usable row or column (the message names them).
    """
    where = str(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        msg = f"cannot read the calibration file (--calibration): {err}"
        raise InputError(msg, path=where) from err
    missing = [c for c in ("area_type", "minutes_per_household") if c not in table.columns]
    if missing:
        msg = (f"the calibration file (--calibration) has no column {', '.join(missing)}: "
               "write it with "
               "knockin-geo progress --calibrate --out DIR (progress_calibration.csv)")
        raise InputError(msg, path=where)
    rows = table[table["area_type"].str.strip() == area_type]
    value = pd.to_numeric(rows["minutes_per_household"], errors="coerce")
    if rows.empty or not np.isfinite(value.iloc[0]) or value.iloc[0] < 0:
        msg = (f"the calibration file (--calibration) has no measured minutes_per_household in its "
               f"{area_type!r} row: import results with timestamps at most "
               f"{MAX_GAP_MIN:.0f} minutes apart first")
        raise InputError(msg, path=where)
    fit = {c: float(pd.to_numeric(rows[c], errors="coerce").iloc[0]) if c in rows else math.nan
           for c in ("walk_speed_kmh", "fitted_minutes_per_household")}
    if all(np.isfinite(v) and v >= 0 for v in fit.values()) and fit["walk_speed_kmh"] > 0:
        return {"walk_speed_kmh": round(fit["walk_speed_kmh"], 2),
                "minutes_per_door": round(fit["fitted_minutes_per_household"], 2)}
    return {"minutes_per_door": round(float(value.iloc[0]), 2)}


def calibrated_params(
    calibration: pd.DataFrame, params: TurfParams | None = None, *, area_type: str = "all"
) -> TurfParams:
    """Return turf parameters with ``minutes_per_door`` measured by :func:`calibrate`.

    Parameters
    ----------
    calibration
        From :func:`calibrate`.
    params
        The parameters to update (default :class:`~knockin_geo.turfs.TurfParams()`).
    area_type
        Which row to use (``dense``, ``suburban``, ``rural`` or ``all``).

    Returns
    -------
    TurfParams
        A copy with ``minutes_per_door`` = the observed time per household at the door
        (``minutes_per_household``: the observed minutes per door less the plan's walking time
        per door, divided by households per door), rounded to 0.01. Cut with
        ``minutes_per_turf`` to use it for the turf sizes.

    Raises
    ------
    InputError
        No measurement for that area type.
    """
    params = params or TurfParams()
    per_household = calibration["minutes_per_household"].astype(float)
    measured = float(per_household[area_type]) if area_type in per_household.index else math.nan
    if not np.isfinite(measured):
        msg = (f"no calibration for area type {area_type!r}: results with timestamps at most "
               f"{MAX_GAP_MIN:.0f} minutes apart are needed")
        raise InputError(msg)
    value = round(measured, 2)
    return dataclasses.replace(params, minutes_per_door=value)


# ----------------------------------------------------------------------------------------------
# plans written to disk (for the command line)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanTables:
    """The tables of a plan written by :func:`knockin_geo.plan.write_plan`, read back.

    Enough for :func:`read_results`, :func:`progress` and :func:`calibrate` (not for
    :func:`recut`, which needs the street network: see :func:`restore_plan`).

    Attributes
    ----------
    doors
        The ``doors`` layer, indexed by ``address_id``.
    turfs
        The ``turfs`` layer, indexed by ``turf_id``.
    routes
        The ``routes`` layer, indexed by ``turf_id``.
    report
        ``report.json``.
    params
        The turf parameters recorded in the report.
    """

    doors: gpd.GeoDataFrame
    turfs: gpd.GeoDataFrame
    routes: gpd.GeoDataFrame
    report: dict[str, Any]
    params: TurfParams


def _params_from_report(report: Mapping[str, Any]) -> TurfParams:
    stored = report.get("params") or {}
    names = {f.name for f in dataclasses.fields(TurfParams)}
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                              for k, v in stored.items() if k in names}
    try:
        return TurfParams(**kwargs)
    except (TypeError, InputError):
        logger.warning("the report's turf parameters cannot be read back; using the defaults")
        return TurfParams()


def read_plan_tables(plan_dir: str | os.PathLike[str]) -> PlanTables:
    """Read ``plan.gpkg`` and ``report.json`` from a folder written by ``write_plan``.

    Parameters
    ----------
    plan_dir
        The output folder of ``knockin-geo cut`` (or of a re-cut).

    Returns
    -------
    PlanTables
        Doors, turfs, routes, report and parameters.

    Raises
    ------
    InputError
        ``plan.gpkg`` or ``report.json`` is missing, or is not what ``cut`` writes (another
        file, damaged, truncated): the message names the file.
    """
    folder = Path(plan_dir)
    gpkg, rep = folder / "plan.gpkg", folder / "report.json"
    for f in (gpkg, rep):
        if not f.is_file():
            msg = f"{f} not found: give the output folder of knockin-geo cut"
            raise InputError(msg, path=str(f))
    again = "give the output folder of knockin-geo cut, or cut again"
    try:
        doors, turfs, routes = _plan_layers(gpkg)
    except pyogrio.errors.DataSourceError as exc:
        msg = (f"cannot read the plan {gpkg}: it is not a GeoPackage (damaged, truncated or "
               f"replaced by another file?); {again}")
        raise InputError(msg, path=str(gpkg)) from exc
    except (pyogrio.errors.DataLayerError, KeyError, ValueError) as exc:
        msg = (f"cannot read the plan {gpkg}: {type(exc).__name__}: {exc}; it does not hold the "
               f"layers doors, turfs and routes that knockin-geo cut writes; {again}")
        raise InputError(msg, path=str(gpkg)) from exc
    try:
        report = json.loads(rep.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        msg = f"cannot read {rep}: {exc}; it is not the report.json knockin-geo cut writes; {again}"
        raise InputError(msg, path=str(rep)) from exc
    if not isinstance(report, dict):
        msg = f"{rep} holds no JSON object: it is not the report.json knockin-geo cut writes"
        raise InputError(msg, path=str(rep))
    return PlanTables(doors, turfs, routes, report, _params_from_report(report))


def _plan_layers(gpkg: Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Read the doors, turfs and routes layers of a plan's GeoPackage, indexed by id."""
    doors = pyogrio.read_dataframe(gpkg, layer="doors")
    doors[schema.ADDRESS_ID] = doors[schema.ADDRESS_ID].astype(str)
    doors = doors.set_index(schema.ADDRESS_ID)
    for c in (schema.TURF_ID, schema.PRECINCT_ID, schema.STATUS):
        doors[c] = doors[c].astype("string")
    turfs = pyogrio.read_dataframe(gpkg, layer="turfs")
    turfs = turfs.set_index(pd.Index(turfs.pop(schema.TURF_ID).astype(str), dtype="string",
                                     name=schema.TURF_ID))
    routes = pyogrio.read_dataframe(gpkg, layer="routes")
    if len(routes):
        routes = routes.set_index(pd.Index(routes.pop(schema.TURF_ID).astype(str),
                                           dtype="string", name=schema.TURF_ID))
    return doors, turfs, routes


def restore_plan(base: TurfPlan, plan_dir: str | os.PathLike[str]) -> TurfPlan:
    """Put a written plan's turfs back onto a freshly computed plan, to re-cut it again.

    ``knockin-geo cut`` is reproducible: the same inputs, parameters and seed give ``base``, the
    plan as first cut. After a :func:`recut`, the plan in ``plan_dir`` differs from it; this
    copies its doors' ``turf_id``, ``seq`` and ``status``, its turfs, routes and report onto
    ``base`` (which carries the street network and the snapping that :func:`recut` needs).

    Parameters
    ----------
    base
        The plan recomputed from the original inputs (``plan_turfs`` with the same arguments).
    plan_dir
        The folder of the plan the results were recorded on.

    Returns
    -------
    TurfPlan
        ``base`` with the written plan's turfs.

    Raises
    ------
    InputError
        The written plan's doors are not ``base``'s (other inputs or universe).
    """
    tables = read_plan_tables(plan_dir)
    d = tables.doors
    ids = base.doors.index.astype(str)
    if set(d.index) != set(ids):
        msg = (f"the plan in {plan_dir} was not made from the same addresses: give the inputs "
               "and parameters of its first cut")
        raise InputError(msg)
    d = d.reindex(ids)
    written_turfs = set(d[schema.TURF_ID].dropna().astype(str))
    base_chain = base.doors["chain"].to_numpy() if "chain" in base.doors else None
    in_turf = d[schema.TURF_ID].notna().to_numpy()
    if base_chain is None or (base_chain[in_turf] < 0).any():
        msg = (f"the plan in {plan_dir} has doors in turfs that the first cut left out: give "
               "the inputs, universe and parameters of its first cut")
        raise InputError(msg)
    doors = base.doors.copy()
    doors[schema.TURF_ID] = pd.array(d[schema.TURF_ID].to_numpy(dtype=object), dtype="string")
    doors[schema.SEQ] = pd.array(d[schema.SEQ].to_numpy(dtype=object), dtype="Int64")
    doors[schema.STATUS] = d[schema.STATUS].astype(str).to_numpy(dtype=object)
    turfs = tables.turfs.set_crs(base.crs, allow_override=True) if tables.turfs.crs is None \
        else tables.turfs.to_crs(base.crs)
    if set(turfs.index.astype(str)) != written_turfs:
        msg = f"the turfs and doors layers of {plan_dir} do not match"
        raise InputError(msg)
    routes = tables.routes if len(tables.routes) else base.routes.iloc[0:0].copy()
    if len(routes):
        routes = routes.to_crs(base.crs)
    return dataclasses.replace(base, doors=doors, turfs=turfs, routes=routes,
                               report=tables.report)
