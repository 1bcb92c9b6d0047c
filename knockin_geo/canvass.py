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
* :func:`recut` takes the doors already done out of the plan and re-cuts what is left, keeping
  the turfs that are still balanced and moving as few doors as it can;
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
import shapely

from knockin_geo import schema
from knockin_geo._atomic import write_text_atomic
from knockin_geo._errors import InputError
from knockin_geo.params import default_route_params, rule_params, size_unit
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
from knockin_geo.turfs import ALL_AREA, TurfParams, door_weights, turf_count

if TYPE_CHECKING:
    from knockin_geo.model import TurfPlan
    from knockin_geo.routing import RouteParams

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
    from knockin_geo.io import _decode, _read_bytes, _sniff_delimiter

    if not p.is_file():
        msg = f"results file not found: {p}"
        raise InputError(msg, path=str(p))
    text, _ = _decode(_read_bytes(p), None, p)
    if not text.strip():
        msg = f"results file {p} is empty: it needs a header row (id, turf_id, result, timestamp)"
        raise InputError(msg, path=str(p))
    delimiter = _sniff_delimiter(text)
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

    doors = plan.doors
    plan_ids = doors.index.astype(str)
    plan_turf = pd.Series(doors[schema.TURF_ID].astype("string").to_numpy(), index=plan_ids)
    known_turfs = set(plan_turf.dropna().astype(str))
    by_pseudo: dict[str, str] = {}
    if secret is not None and id_role in ("pseudo_id", "id"):
        from knockin_geo.privacy import pseudonymize

        by_pseudo = dict(zip(pseudonymize(plan_ids, secret).tolist(), plan_ids.tolist(),
                             strict=True))
    id_set = set(plan_ids.tolist()) if id_role != "pseudo_id" else set()

    def column(role: str) -> list[str]:
        # cells neutralised for spreadsheets (by the phone map or write_results) are restored
        if cols[role] is None:
            return [""] * len(frame)
        return [restore_cell(v).strip() for v in frame[cols[role]].tolist()]

    raw_ids = column(id_role)
    raw_codes = column("result")
    raw_ts = column("timestamp")
    raw_turf = column("turf_id")
    raw_canv = column("canvasser")
    raw_note = column("note")

    good: dict[str, list[Any]] = {c: [] for c in RESULT_COLUMNS}
    bad_rows: list[int] = []
    reasons: list[str] = []
    problems: list[str] = []
    kinds = {"address_id": 0, "pseudo_id": 0}
    for i in range(len(frame)):
        row = i + 1
        why: list[str] = []
        rid = raw_ids[i]
        aid: str | None = None
        if not rid:
            why.append("empty id")
        elif rid in id_set:
            aid = rid
            kinds["address_id"] += 1
        elif rid in by_pseudo:
            aid = by_pseudo[rid]
            kinds["pseudo_id"] += 1
        else:
            why.append(f"unknown id {rid!r}")
        code = normalize_code(raw_codes[i])
        if code is None:
            shown = raw_codes[i].strip()
            why.append(f"unknown result code {shown!r}" if shown else "empty result code")
        ts = None
        try:
            ts = _parse_timestamp(raw_ts[i], naive_tz)
        except ValueError as exc:
            why.append(str(exc))
        turf = raw_turf[i]
        door_turf = plan_turf.get(aid) if aid is not None else None
        door_turf = None if door_turf is None or pd.isna(door_turf) else str(door_turf)
        if check_turf and turf and turf not in known_turfs:
            why.append(f"unknown turf {turf!r}")
        elif check_turf and turf and aid is not None and door_turf != turf:
            where = f"turf {door_turf!r}" if door_turf else "no turf"
            why.append(f"turf mismatch: the row says {turf!r}, the plan has this door in {where}")
        if why:
            bad_rows.append(i)
            reasons.append("; ".join(why))
            problems.append(f"row {row}: {'; '.join(why)}")
            continue
        note = raw_note[i]
        good[schema.ADDRESS_ID].append(aid)
        good[schema.TURF_ID].append(door_turf if check_turf or not turf else turf)
        good["result"].append(code)
        good["timestamp"].append(ts)
        good["canvasser"].append(raw_canv[i])
        good["note"].append(note)
        good["source"].append(p.name)
        good["row"].append(row)

    unknown_ids = sum("unknown id" in r for r in reasons)
    if unknown_ids and secret is None and id_role == "id":
        problems.append(
            f"{unknown_ids} ids match no address id: if the maps were written with "
            "pseudonymous ids, give the campaign secret"
        )
    results = empty_results() if not good[schema.ADDRESS_ID] else _typed_results(good)
    rejected = frame.iloc[bad_rows].copy()
    rejected.insert(0, "row", np.asarray(bad_rows, dtype=np.int64) + 1)
    rejected["reason"] = reasons
    rejected = rejected.reset_index(drop=True)
    logger.info("%s: %d results read, %d rows rejected", p, len(results), len(rejected))
    if len(rejected):
        logger.warning("%s: %d rows rejected (see the problems list)", p, len(rejected))
    return ResultsImport(results, rejected, problems, str(p), cols[id_role] or id_role,
                         rows=len(frame), ids=kinds)


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


def _conform(frame: pd.DataFrame | None) -> pd.DataFrame:
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
    old = _conform(existing)
    add = _conform(new)
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
    r = _conform(results)
    r = r.sort_values(["timestamp", schema.ADDRESS_ID, "result", "source", "row"],
                      kind="stable")
    rows = (
        [rec.address_id, "" if pd.isna(rec.turf_id) else str(rec.turf_id), rec.result,
         rec.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"), rec.canvasser, rec.note]
        for rec in r.itertuples(index=False)
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
    r = _conform(results)
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
    r = _conform(results)
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
    r = _conform(results)
    ids = sorted(set(r.loc[r["result"] == DO_NOT_CONTACT, schema.ADDRESS_ID].astype(str)))
    return pd.DataFrame({"address_id": pd.Series(ids, dtype=object),
                         "address_key": pd.Series([""] * len(ids), dtype=object)})


# ----------------------------------------------------------------------------------------------
# re-cutting what is left
# ----------------------------------------------------------------------------------------------
#: Which results take a door out of the plan, per ``recut(remove=...)`` rule.
#: ``do_not_contact`` is always removed, whatever the rule.
REMOVE_RULES: dict[str, frozenset[str]] = {
    "knocked": frozenset(RESULT_CODES) - REVISIT_CODES,
    "contacted": frozenset({CONTACTED, REFUSED, DO_NOT_CONTACT}),
    "any": frozenset(RESULT_CODES),
}

#: Status of a door taken out of the plan because its canvassing is done.
STATUS_CANVASSED = "canvassed"


@dataclass(frozen=True)
class RecutResult:
    """Result of :func:`recut`.

    Attributes
    ----------
    plan
        The new plan (a :class:`~knockin_geo.plan.TurfPlan`): doors done have status
        ``canvassed`` (``opted_out`` for ``do_not_contact``) and no turf; the others have their
        (possibly new) ``turf_id`` and a fresh walk order ``seq``; turfs, routes and report are
        recomputed (the report holds the diff under ``recut``).
    diff
        What changed (JSON-ready): see :func:`recut`.
    moves
        One row per remaining door (index ``address_id``): ``old_turf_id``, ``new_turf_id``,
        ``moved``.
    """

    plan: TurfPlan
    diff: dict[str, Any]
    moves: pd.DataFrame

    @property
    def doors(self) -> gpd.GeoDataFrame:
        """The new plan's doors."""
        return self.plan.doors

    @property
    def turfs(self) -> gpd.GeoDataFrame:
        """The new plan's turfs."""
        return self.plan.turfs


def _remove_codes(remove: str | Iterable[str]) -> frozenset[str]:
    if isinstance(remove, str):
        if remove in REMOVE_RULES:
            return REMOVE_RULES[remove] | {DO_NOT_CONTACT}
        remove = [remove]
    codes = set()
    for item in remove:
        code = normalize_code(item)
        if code is None:
            msg = (f"unknown result code or rule {item!r} in remove=: use one of "
                   f"{sorted(REMOVE_RULES)} or result codes {list(RESULT_CODES)}")
            raise InputError(msg)
        codes.add(code)
    return frozenset(codes | {DO_NOT_CONTACT})


def _unchanged(plan: TurfPlan, remove: str | Iterable[str], codes: frozenset[str],
               min_fill: float | None, *, n_results: int) -> RecutResult:
    """Return the :func:`recut` of a plan where no door is done: the same plan, and why.

    No turf is re-cut or re-routed (even one outside the tolerance): with nothing done, the
    volunteers' turfs and walk orders stay as handed out.
    """
    tid = plan.doors[schema.TURF_ID].astype("string")
    in_turf = tid.notna().to_numpy()
    counts = tid[in_turf].value_counts()
    old_ids = sorted(map(str, plan.turfs.index))
    if n_results == 0:
        why = "no result recorded for a door of this plan, nothing to take out"
    else:
        why = (f"no door is done ({n_results} results for doors of this plan, none of them "
               f"{', '.join(sorted(codes))})")
    history = plan.report.get("recut", {})
    used = history.get("turf_ids_used", []) if isinstance(history, Mapping) else []
    n = int(in_turf.sum())
    diff: dict[str, Any] = {
        "remove": remove if isinstance(remove, str) else sorted(codes),
        "removed_codes": sorted(codes),
        "min_fill": min_fill,
        "doors_in_turfs_before": n,
        "doors_removed": 0,
        "removed_by_result": {},
        "doors_remaining": n,
        "doors_kept_in_turf": n,
        "doors_moved": 0,
        "share_kept": 1.0,
        "turfs_before": len(old_ids),
        "turfs_after": len(old_ids),
        "turfs_kept": old_ids,
        "turfs_new": [],
        "turfs_retired": [],
        "attached": [],
        "precincts": [],
        "turfs": [{schema.TURF_ID: t, "change": "kept", "doors_before": int(counts.get(t, 0)),
                   "doors_done": 0, "doors_remaining": int(counts.get(t, 0)),
                   "doors_after": int(counts.get(t, 0)), "to": {}, "from": {}}
                  for t in old_ids],
        "explanations": [f"{why}: the plan is unchanged"],
        "turf_ids_used": sorted({*map(str, used), *old_ids}),
    }
    moves = pd.DataFrame(
        {"old_turf_id": tid[in_turf].array, "new_turf_id": tid[in_turf].array},
        index=pd.Index(plan.doors.index[in_turf].astype(str), name=schema.ADDRESS_ID),
    )
    moves["moved"] = np.zeros(n, dtype=bool)
    logger.info("recut: %s; the plan is unchanged", why)
    report = {**plan.report, "recut": diff}
    return RecutResult(dataclasses.replace(plan, report=report), diff, moves)


_TRAILING_NUMBER = re.compile(r"^(.*?)(\d+)$")


def _id_maker(area: str, used: Iterable[str]) -> Any:
    """Return a function giving fresh turf ids of an area, continuing its numbering."""
    prefix = "T" if area == ALL_AREA else f"{area}-"
    numbers = [0]
    widths = [3 if area == ALL_AREA else 2]
    for tid in used:
        m = _TRAILING_NUMBER.match(str(tid))
        if m and m.group(1) == prefix:
            numbers.append(int(m.group(2)))
            widths.append(len(m.group(2)))
    state = {"n": max(numbers), "w": max(widths)}

    def fresh() -> str:
        state["n"] += 1
        return f"{prefix}{state['n']:0{state['w']}d}"

    return fresh


def _choose_count(
    w: dict[str, float], n: dict[str, int], size: float, tol: float, min_fill: float | None
) -> tuple[int, list[str], bool]:
    """Pick the turf count of an area and the turfs kept: the most doors kept in place."""
    live = sorted(t for t in w if n[t] > 0)
    total = float(sum(w[t] for t in live))
    k_round = turf_count(total, size)
    cands = {k_round}
    if min_fill is not None:
        cands |= {k for k in range(1, len(live) + 1) if total / k >= min_fill * size}
        cands = {k for k in cands if min(k_round, len(live)) <= k <= max(k_round, len(live))}
    best: tuple[Any, ...] | None = None
    for k in sorted(cands):
        target = total / k
        qual = [t for t in live if abs(w[t] - target) <= tol * target + 1e-9]
        qual.sort(key=lambda t: (-n[t], t))
        kept = sorted(qual[:k])
        rest_w = total - sum(w[t] for t in kept)
        k_sub = k - len(kept)
        if k_sub > 0:
            balanced = abs(rest_w / k_sub - target) <= tol * target + 1e-9
        else:
            room = sum(max(0.0, (1 + tol) * target - w[t]) for t in kept)
            balanced = rest_w <= room + 1e-9
        kept_doors = sum(n[t] for t in kept)
        key = (balanced, kept_doors, -abs(target - size), -k)
        if best is None or key > best[0]:
            best = (key, k, kept, balanced)
    assert best is not None
    return best[1], best[2], best[3]


def _rebalance(
    doors: pd.DataFrame,
    labels: np.ndarray,
    weight: np.ndarray,
    target: float,
    tol: float,
    network: Any,
    *,
    max_moves: int | None = None,
) -> np.ndarray | None:
    """Move a few doors between touching turfs until every turf is within tolerance.

    Only a door at the end of its turf's run along a street side may move, to a turf it touches
    (the next door along the street side, or a door at the same street corner); a move must lower
    ``1000 * sum(excess) + sum(deviation**2)`` (as the cutter's repair) and must not split either
    turf on the street graph (doors, street corners and streets without doors). Returns the new
    labels, or None when the turfs cannot all be brought within tolerance this way.
    """
    from scipy import sparse
    from scipy.sparse import csgraph

    n = len(doors)
    if n == 0:
        return labels.copy()
    lab = labels.astype(object).copy()
    ids = doors.index.astype(str).to_numpy(dtype=object)
    chain = doors["chain"].to_numpy(dtype=np.int64)
    off = doors["offset_m"].to_numpy(dtype=float)
    edge = doors["edge"].to_numpy(dtype=np.int64)
    order = np.lexsort((ids, off, chain))
    prev = np.full(n, -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    same = chain[order][1:] == chain[order][:-1]
    prev[order[1:][same]] = order[:-1][same]
    nxt[order[:-1][same]] = order[1:][same]
    edges = network.edges
    e_u = edges["u"].to_numpy()
    e_v = edges["v"].to_numpy()
    # street corners near the doors, and the door-free streets between them
    xy = network.nodes[["x", "y"]].to_numpy(dtype=float)
    lo = np.array([doors["snap_x"].min(), doors["snap_y"].min()]) - 300.0
    hi = np.array([doors["snap_x"].max(), doors["snap_y"].max()]) + 300.0
    near_nodes = network.nodes.index.to_numpy()[((xy >= lo) & (xy <= hi)).all(axis=1)]
    node_pos = {int(v): n + i for i, v in enumerate(near_nodes.tolist())}
    first = np.flatnonzero(prev < 0)
    last = np.flatnonzero(nxt < 0)
    at_node: dict[int, list[int]] = {}
    a_list = [order[:-1][same], ]
    b_list = [order[1:][same], ]
    for doors_at, ends in ((first, e_u), (last, e_v)):
        for x in doors_at.tolist():
            node = int(ends[edge[x]])
            at_node.setdefault(node, []).append(x)
            if node in node_pos:
                a_list.append(np.array([x]))
                b_list.append(np.array([node_pos[node]]))
    with_doors = np.zeros(len(edges), dtype=bool)
    with_doors[edge] = True
    free = np.flatnonzero(~with_doors)
    fu = np.array([node_pos.get(int(x), -1) for x in e_u[free]], dtype=np.int64)
    fv = np.array([node_pos.get(int(x), -1) for x in e_v[free]], dtype=np.int64)
    ok = (fu >= 0) & (fv >= 0)
    a_list.append(fu[ok])
    b_list.append(fv[ok])
    a = np.concatenate(a_list).astype(np.int64)
    b = np.concatenate(b_list).astype(np.int64)
    n_vert = n + len(node_pos)
    is_node = np.zeros(n_vert, dtype=bool)
    is_node[n:] = True

    def pieces(turf: object, lab_: np.ndarray) -> int:
        member = np.concatenate([lab_ == turf, np.zeros(len(node_pos), dtype=bool)]) | is_node
        keep = member[a] & member[b]
        m = sparse.coo_array((np.ones(int(keep.sum())), (a[keep], b[keep])),
                             shape=(n_vert, n_vert)).tocsr()
        comp = csgraph.connected_components(m, directed=False)[1]
        return len(np.unique(comp[:n][lab_ == turf]))

    turfs = sorted(set(lab.tolist()))
    pw = {t: float(weight[lab == t].sum()) for t in turfs}
    base = {t: pieces(t, lab) for t in turfs}

    def excess(v: float) -> float:
        dev = (v - target) / target
        return 1000.0 * max(abs(dev) - tol, 0.0) + dev * dev

    limit = max_moves if max_moves is not None else max(10, n // 4)
    for _ in range(limit):
        out = {t: abs(pw[t] - target) > tol * target + 1e-9 for t in turfs}
        if not any(out.values()):
            return lab
        cands = []
        for x in range(n):
            d_t = lab[x]
            inner = prev[x] >= 0 and nxt[x] >= 0 and lab[prev[x]] == d_t and lab[nxt[x]] == d_t
            if inner:
                continue
            touch = {lab[y] for y in (prev[x], nxt[x]) if y >= 0}
            if prev[x] < 0:
                touch |= {lab[y] for y in at_node.get(int(e_u[edge[x]]), [])}
            if nxt[x] < 0:
                touch |= {lab[y] for y in at_node.get(int(e_v[edge[x]]), [])}
            for r_t in sorted(touch - {d_t}):
                if not (out[d_t] or out[r_t]):
                    continue
                wx = float(weight[x])
                delta = (excess(pw[d_t] - wx) + excess(pw[r_t] + wx)
                         - excess(pw[d_t]) - excess(pw[r_t]))
                if delta < -1e-12:
                    cands.append((round(delta, 12), ids[x], x, r_t))
        cands.sort()
        for _delta, _aid, x, r_t in cands[:40]:
            d_t = lab[x]
            trial = lab.copy()
            trial[x] = r_t
            if pieces(d_t, trial) <= base[d_t] and pieces(r_t, trial) <= base[r_t]:
                lab = trial
                pw[d_t] -= float(weight[x])
                pw[r_t] += float(weight[x])
                break
        else:
            return None
    ok_all = all(abs(pw[t] - target) <= tol * target + 1e-9 for t in turfs)
    return lab if ok_all else None


def _route_params(plan: TurfPlan) -> RouteParams:
    from knockin_geo.routing import RouteParams

    stored = plan.report.get("route_params")
    if isinstance(stored, Mapping):
        names = {f.name for f in dataclasses.fields(RouteParams)}
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()
                  if k in names}
        try:
            return RouteParams(**kwargs)
        except (TypeError, ValueError):
            logger.warning("the plan's route parameters cannot be reused; using the defaults")
    return default_route_params(plan.doors, plan.params)


def recut(
    plan: TurfPlan,
    results: pd.DataFrame,
    *,
    remove: str | Iterable[str] = "knocked",
    min_fill: float | None = 0.75,
    attach_m: float = 300.0,
    route_params: RouteParams | None = None,
) -> RecutResult:
    """Take the doors already done out of a plan and re-cut what is left, moving few doors.

    Per precinct (or for the whole area when the plan was cut without precincts):

    1. The remaining weight ``W'`` (doors or minutes, as the plan was cut) gives the turf count
       ``k'``: ``turf_count(W', size)``, or more turfs, up to the current number of turfs still
       holding doors, while the mean ``W' / k'`` stays at least ``min_fill`` x the turf size;
       among those counts the one keeping the most doors in place (and balanced) wins.
    2. Every turf whose remaining weight is within the plan's tolerance of ``t' = W' / k'`` is
       **kept** as it is (when more qualify than ``k'``, those with the most remaining doors).
    3. The remaining doors of the other turfs are re-cut into ``k'`` minus the kept turfs with
       the plan's cutter (:func:`knockin_geo.turfs.cut_turfs`, on those doors only), and the new
       turfs get fresh ids that continue the precinct's numbering (a new turf that holds exactly
       the remaining doors of one old turf keeps that turf's id). When no turf is left to cut
       them into (too few doors for a turf of their own), each old turf's remaining doors join
       the lightest kept turf within ``attach_m`` (else the nearest), and the diff says so.
    4. Every turf is routed again (fresh ``seq``) and the quality report recomputed.

    Parameters
    ----------
    plan
        The plan the results were recorded on (a full :class:`~knockin_geo.plan.TurfPlan`,
        with its network).
    results
        Results (:func:`merge_results`).
    remove
        Which doors leave the plan: ``"knocked"`` (default: every result but ``not_home`` and
        ``come_back``), ``"contacted"`` (``contacted``, ``refused``, ``do_not_contact``),
        ``"any"`` (every door with a result), or a list of result codes. ``do_not_contact``
        doors always leave. A door's state is its latest result (:func:`current_state`).
    min_fill
        Keep more turfs than ``round(W' / size)`` while their mean is at least this share of
        the turf size (fewer doors move; turfs get shorter). None: always ``round(W' / size)``.
    attach_m
        Distance within which a kept turf counts as a neighbour of doors that must join one.
    route_params
        Route parameters (default: those the plan was routed with).

    Returns
    -------
    RecutResult
        The new plan, the per-door moves and the diff: ``doors_remaining``,
        ``doors_kept_in_turf``, ``doors_moved`` (kept + moved = remaining), ``share_kept``,
        ``doors_removed`` (and ``removed_by_result``), ``turfs_kept``, ``turfs_new``,
        ``turfs_retired``, ``attached``, per-precinct choices (``precincts``), per-turf details
        (``turfs``) and ``explanations``. The inputs are not modified.
    """
    from knockin_geo.metrics import quality_report
    from knockin_geo.routing import route_turfs
    from knockin_geo.turfs import _turf_table, cut_turfs

    params: TurfParams = plan.params
    tol = params.tolerance
    codes = _remove_codes(remove)
    doors = plan.doors
    ids = doors.index.astype(str)
    in_turf = doors[schema.TURF_ID].notna().to_numpy()
    r = _conform(results)
    r = r[r[schema.ADDRESS_ID].isin(ids)]
    # "" for doors without a result (an all-<NA> object array cannot be compared with ==)
    state = current_state(r)["result"].reindex(ids).fillna("").to_numpy(dtype=object)
    done = in_turf & pd.Series(state).isin(codes).to_numpy()
    if not done.any():
        return _unchanged(plan, remove, codes, min_fill, n_results=len(r))
    remaining = in_turf & ~done
    old_tid = doors[schema.TURF_ID].astype("string").to_numpy(dtype=object)
    removed_by = pd.Series(state[done]).value_counts().sort_index()

    rem_pos = np.flatnonzero(remaining)
    rem = doors.iloc[rem_pos]
    edge_len = plan.network.edges["length"].to_numpy(dtype=float)

    def weights_of(d: pd.DataFrame) -> np.ndarray:
        if len(d) == 0:
            return np.zeros(0)
        f = pd.DataFrame({
            "edge": d["edge"].to_numpy(dtype=np.int64),
            "chain": d["chain"].to_numpy(dtype=np.int64),
            schema.HOUSEHOLDS: (d[schema.HOUSEHOLDS].to_numpy() if schema.HOUSEHOLDS in d
                                else np.ones(len(d))),
            "snap_dist_m": d["snap_dist_m"].to_numpy(dtype=float),
        })
        return door_weights(f, edge_len, params)

    w_rem = weights_of(rem)
    rem_tid = old_tid[rem_pos].astype(str)
    xy = np.column_stack([shapely.get_x(rem.geometry.to_numpy()),
                          shapely.get_y(rem.geometry.to_numpy())]) if len(rem) else np.zeros((0, 2))

    turf_prec = plan.turfs[schema.PRECINCT_ID].astype("string")
    area_of = {str(t): (ALL_AREA if pd.isna(p) else str(p)) for t, p in turf_prec.items()}
    history = list(plan.report.get("recut", {}).get("turf_ids_used", [])) if isinstance(
        plan.report.get("recut"), Mapping) else []
    used_ids = sorted({*map(str, plan.turfs.index), *map(str, history)})

    new_tid = rem_tid.copy().astype(object)
    targets: dict[str, float] = {}
    t_area: dict[str, str] = {}
    notes: dict[str, list[str]] = {}
    old_notes = plan.turfs["note"].astype("string").fillna("") if "note" in plan.turfs else None
    attached: list[dict[str, Any]] = []
    prec_rows: list[dict[str, Any]] = []
    explanations: list[str] = []
    turfs_new: list[str] = []

    areas = sorted(set(area_of.values()))
    for area in areas:
        a_turfs = sorted(t for t, a in area_of.items() if a == area)
        sel = np.isin(rem_tid, a_turfs)
        w_t = {t: float(w_rem[sel & (rem_tid == t)].sum()) for t in a_turfs}
        n_t = {t: int((sel & (rem_tid == t)).sum()) for t in a_turfs}
        live = [t for t in a_turfs if n_t[t] > 0]
        row: dict[str, Any] = {
            "area": area, "turfs_before": len(a_turfs), "doors_remaining": int(sel.sum()),
            "weight_remaining": round(float(sum(w_t.values())), 3),
        }
        if not live:
            row.update(turfs_after=0, target=None, kept=[], new=[], reason="every door is done")
            prec_rows.append(row)
            continue
        total = float(sum(w_t[t] for t in live))
        a_pos = np.flatnonzero(sel)
        k_round = turf_count(total, params.size)
        k_cur = len(live)
        same_count = k_cur == k_round or (
            min_fill is not None and k_cur > k_round and total / k_cur >= min_fill * params.size)
        if same_count and any(abs(w_t[t] - total / k_cur) > tol * total / k_cur + 1e-9
                              for t in live):
            # every turf stays: first try moving a few doors between touching turfs
            lab = _rebalance(rem.iloc[a_pos], rem_tid[a_pos], w_rem[a_pos], total / k_cur, tol,
                             plan.network)
            if lab is not None:
                n_moves = int((lab != rem_tid[a_pos]).sum())
                new_tid[a_pos] = lab
                for t in live:
                    targets[t] = total / k_cur
                    t_area[t] = area
                    if old_notes is not None and old_notes.get(t, ""):
                        notes[t] = [str(old_notes[t])]
                explanations.append(
                    f"{area}: {n_moves} doors moved between neighbouring turfs to keep every "
                    "turf within tolerance")
                row.update(turfs_after=k_cur, target=round(total / k_cur, 3), kept=live,
                           new=[], reason=f"turf count kept; {n_moves} doors rebalanced")
                prec_rows.append(row)
                continue
        k, kept, balanced = _choose_count(w_t, n_t, params.size, tol, min_fill)
        target = total / k
        rest = [t for t in live if t not in kept]
        k_sub = k - len(kept)
        fresh = _id_maker(area, used_ids)
        made: list[str] = []
        for t in kept:
            targets[t] = target
            t_area[t] = area
        if rest and k_sub > 0:
            sub_pos = np.flatnonzero(np.isin(rem_tid, rest))
            sub = rem.iloc[sub_pos].copy()
            sub[schema.STATUS] = schema.STATUS_OK
            sub = sub.drop(columns=[c for c in (schema.TURF_ID, "face", "weight", "chain",
                                                schema.SEQ) if c in sub.columns])
            sub_w = weights_of(rem.iloc[sub_pos].assign(
                chain=pd.factorize(rem["chain"].to_numpy()[sub_pos])[0]))
            size = float(sub_w.sum()) / k_sub
            sub_params = (dataclasses.replace(params, doors_per_turf=size, minutes_per_turf=None)
                          if params.mode == "doors"
                          else dataclasses.replace(params, doors_per_turf=None,
                                                   minutes_per_turf=size))
            prec = None
            if area != ALL_AREA and plan.precincts is not None and area in set(
                    plan.precincts.index.astype(str)):
                prec = plan.precincts[plan.precincts.index.astype(str) == area]
            if area == ALL_AREA and schema.PRECINCT_ID in sub:
                sub[schema.PRECINCT_ID] = pd.array([pd.NA] * len(sub), dtype="string")
                if not params.cross_precincts:
                    sub_params = dataclasses.replace(sub_params, cross_precincts=True)
            cut = cut_turfs(sub, plan.network, precincts=prec, params=sub_params)
            cut_tid = cut.doors[schema.TURF_ID].astype("string").to_numpy(dtype=object)
            cut_ids = sorted({str(x) for x in cut_tid if not pd.isna(x)})
            if any(pd.isna(x) for x in cut_tid):  # pragma: no cover - the cutter assigns all
                lost = int(sum(pd.isna(x) for x in cut_tid))
                msg = f"the cutter left {lost} doors of {area} out of every turf"
                raise RuntimeError(msg)
            before_sets = {t: frozenset(ids[rem_pos[np.flatnonzero(rem_tid == t)]]) for t in rest}
            sub_ids = ids[rem_pos[sub_pos]]
            for c in cut_ids:
                members = frozenset(sub_ids[cut_tid == c])
                same = [t for t, s in before_sets.items() if s == members]
                tid = same[0] if same else fresh()
                new_tid[sub_pos[cut_tid == c]] = tid
                targets[tid] = target
                t_area[tid] = area
                if same:
                    kept.append(tid)
                    if old_notes is not None and old_notes.get(tid, ""):
                        notes.setdefault(tid, []).append(str(old_notes[tid]))
                else:
                    made.append(tid)
                    cn = cut.turfs.loc[c, "note"] if c in cut.turfs.index else ""
                    if isinstance(cn, str) and cn:
                        notes.setdefault(tid, []).append(cn)
                    notes.setdefault(tid, []).append(
                        "re-cut from the remaining doors of " + ", ".join(rest))
            kept.sort()
        elif rest:
            # no turf left for them: street side by street side, the remaining doors join the
            # kept turf nearby that stays lightest (within tolerance if it can), else the nearest
            load = {t: w_t[t] for t in kept}
            cap = (1 + tol) * target
            k_xy = {t: xy[np.flatnonzero(new_tid == t)] for t in kept}
            rest_pos = np.flatnonzero(np.isin(rem_tid, rest))
            chains = rem["chain"].to_numpy()[rest_pos]
            groups = pd.Series(np.arange(len(rest_pos))).groupby(
                [rem_tid[rest_pos], chains], sort=True).indices
            joined: dict[tuple[str, str], list[float]] = {}
            for (t, _c), idx in sorted(groups.items()):
                pos = rest_pos[np.sort(idx)]
                gw = float(w_rem[pos].sum())
                dist = {}
                for kt in kept:
                    gap = xy[pos][:, None, :] - k_xy[kt][None, :, :]
                    dist[kt] = float(np.sqrt((gap**2).sum(axis=-1)).min())
                near = [kt for kt in kept if dist[kt] <= attach_m] or [min(kept, key=dist.get)]
                to = min(near, key=lambda kt, gw=gw, dist=dist: (
                    max(0.0, load[kt] + gw - cap), dist[kt], load[kt], kt))
                new_tid[pos] = to
                load[to] += gw
                k_xy[to] = np.vstack([k_xy[to], xy[pos]])
                acc = joined.setdefault((str(t), to), [0, 0.0])
                acc[0] += len(pos)
                acc[1] = max(acc[1], dist[to])
            for (t, to), (n_doors, far) in sorted(joined.items()):
                attached.append({"from": t, "to": to, "doors": int(n_doors),
                                 "distance_m": round(float(far), 1)})
                notes.setdefault(to, []).append(
                    f"took {int(n_doors)} remaining doors of turf {t} (too few for a turf of "
                    "their own)")
            lab = _rebalance(rem.iloc[a_pos], new_tid[a_pos], w_rem[a_pos], target, tol,
                             plan.network)
            if lab is not None and (lab != new_tid[a_pos]).any():
                explanations.append(
                    f"{area}: {int((lab != new_tid[a_pos]).sum())} doors then moved between "
                    "neighbouring turfs to keep every turf within tolerance")
                new_tid[a_pos] = lab
            for t in rest:
                dest = sorted(to for (f, to) in joined if f == t)
                explanations.append(
                    f"{t}: its {int(n_t[t])} remaining doors were too few for a turf of their "
                    f"own and joined {', '.join(dest)}")
        for t in kept:
            if old_notes is not None and old_notes.get(t, "") and t not in notes:
                notes[t] = [str(old_notes[t])]
        turfs_new += made
        used_ids = sorted({*used_ids, *made})
        if not balanced:
            explanations.append(
                f"{area}: no turf count keeps every turf within tolerance of the remaining "
                f"doors ({total:.0f} for turfs of {params.size:.0f})")
        row.update(turfs_after=k, target=round(target, 3), kept=sorted(kept), new=made,
                   reason=("turf count kept" if k == len(live) else
                           f"{len(live)} turfs hold doors; {k} needed for {total:.0f}"))
        prec_rows.append(row)

    # ------------------------------------------------------------------ the new plan
    out = doors.copy()
    tid_col = np.full(len(out), None, dtype=object)
    tid_col[rem_pos] = new_tid
    out[schema.TURF_ID] = pd.array(tid_col, dtype="string")
    status = out[schema.STATUS].to_numpy(dtype=object).copy()
    status[done] = STATUS_CANVASSED
    dnc = pd.Series(state, dtype="string").eq(DO_NOT_CONTACT).fillna(False)
    status[done & dnc.to_numpy(dtype=bool)] = "opted_out"
    out[schema.STATUS] = status
    weight = np.full(len(out), np.nan)
    weight[rem_pos] = w_rem
    out["weight"] = weight
    out[schema.SEQ] = pd.array([pd.NA] * len(out), dtype="Int64")

    final_ids = np.array(sorted(set(new_tid.tolist())), dtype=object)
    labels = np.searchsorted(final_ids, new_tid.astype(str)) if len(rem) else np.zeros(0, int)
    chain = pd.factorize(rem["chain"].to_numpy())[0] if len(rem) else np.zeros(0, int)
    turf_table = _turf_table(
        out.iloc[rem_pos], final_ids, labels,
        np.array([t_area[t] for t in final_ids], dtype=object),
        np.array([targets[t] for t in final_ids], dtype=float),
        rem["face"].to_numpy(dtype=np.int64), rem["edge"].to_numpy(dtype=np.int64), chain,
        edge_len, w_rem, params, {t: sorted(set(v), key=v.index) for t, v in notes.items()},
        out.crs,
    ) if len(rem) else plan.turfs.iloc[0:0].copy()
    turf_table["walk_m"] = turf_table["street_m"]
    rp = route_params or _route_params(plan)
    routes = plan.routes.iloc[0:0].copy()
    if len(turf_table):
        routes, seq = route_turfs(out, plan.network, rp)
        out[schema.SEQ] = seq
        turf_table["walk_m"] = routes["walk_m"].reindex(turf_table.index).to_numpy()
        turf_table["est_minutes"] = routes["est_minutes"].reindex(turf_table.index).to_numpy()
        turf_table["route_m"] = routes["length_m"].reindex(turf_table.index).to_numpy()

    # ------------------------------------------------------------------ the diff
    moves = pd.DataFrame(
        {"old_turf_id": pd.array(rem_tid, dtype="string"),
         "new_turf_id": pd.array(new_tid.astype(str), dtype="string")},
        index=pd.Index(ids[rem_pos], name=schema.ADDRESS_ID),
    )
    moves["moved"] = (moves["old_turf_id"] != moves["new_turf_id"]).to_numpy(dtype=bool)
    n_rem = len(moves)
    n_moved = int(moves["moved"].sum())
    old_ids = sorted(map(str, plan.turfs.index))
    new_set = set(final_ids.tolist())
    turfs_kept = sorted(t for t in old_ids if t in new_set)
    turfs_retired = sorted(t for t in old_ids if t not in new_set)
    per_turf: list[dict[str, Any]] = []
    before_n = pd.Series(old_tid[in_turf]).value_counts()
    removed_n = pd.Series(old_tid[done]).value_counts()
    for t in sorted(set(old_ids) | new_set):
        mine_old = moves[moves["old_turf_id"] == t]
        mine_new = moves[moves["new_turf_id"] == t]
        per_turf.append({
            schema.TURF_ID: t,
            "change": ("kept" if t in turfs_kept else "retired" if t in turfs_retired
                       else "new"),
            "doors_before": int(before_n.get(t, 0)),
            "doors_done": int(removed_n.get(t, 0)),
            "doors_remaining": len(mine_old),
            "doors_after": len(mine_new),
            "to": {str(k): int(v) for k, v in
                   mine_old.loc[mine_old["moved"], "new_turf_id"].value_counts().sort_index()
                   .items()},
            "from": {str(k): int(v) for k, v in
                     mine_new.loc[mine_new["moved"], "old_turf_id"].value_counts().sort_index()
                     .items()},
        })
    for t in turfs_retired:
        if not (moves["old_turf_id"] == t).any():
            explanations.append(f"{t}: every door is done")
    diff: dict[str, Any] = {
        "remove": remove if isinstance(remove, str) else sorted(codes),
        "removed_codes": sorted(codes),
        "min_fill": min_fill,
        "doors_in_turfs_before": int(in_turf.sum()),
        "doors_removed": int(done.sum()),
        "removed_by_result": {str(k): int(v) for k, v in removed_by.items()},
        "doors_remaining": n_rem,
        "doors_kept_in_turf": n_rem - n_moved,
        "doors_moved": n_moved,
        "share_kept": round((n_rem - n_moved) / n_rem, 6) if n_rem else 1.0,
        "turfs_before": len(old_ids),
        "turfs_after": len(final_ids),
        "turfs_kept": turfs_kept,
        "turfs_new": sorted(turfs_new),
        "turfs_retired": turfs_retired,
        "attached": attached,
        "precincts": prec_rows,
        "turfs": per_turf,
        "explanations": explanations,
        "turf_ids_used": sorted({*used_ids, *old_ids, *final_ids.tolist()}),
    }
    extra = {k: v for k, v in plan.report.items()
             if k not in ("summary", "unassigned", "turfs", "problems", "recut")}
    extra["recut"] = diff
    extra["route_params"] = dataclasses.asdict(rp)
    turfs_q, report = quality_report(
        out, turf_table, plan.network, tolerance=tol, extra=extra,
        precincts=None if params.cross_precincts else plan.precincts,
        rule=rule_params(params), unit=size_unit(params))
    new_plan = dataclasses.replace(plan, doors=out, turfs=turfs_q, routes=routes, report=report)
    logger.info(
        "recut: %d doors done, %d remain, %d kept in their turf (%.1f %%), %d turfs kept, "
        "%d new, %d retired", int(done.sum()), n_rem, n_rem - n_moved,
        100 * diff["share_kept"], len(turfs_kept), len(turfs_new), len(turfs_retired),
    )
    return RecutResult(new_plan, diff, moves)


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
        ``minutes_per_door``) and ``contact_rate`` (contacted / knocked doors).
    """
    kinds = area_types(plan)
    r = _conform(results)
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

    rows = []
    for (tid, _who), g in r.sort_values(["timestamp", "_pos"], kind="stable").groupby(
            [schema.TURF_ID, "canvasser"], sort=True):
        gaps = g["timestamp"].diff().dt.total_seconds().to_numpy()[1:] / 60.0
        ok = (gaps > 0) & (gaps <= max_gap_min)
        rows.append({schema.TURF_ID: str(tid), "intervals": int(ok.sum()),
                     "minutes": float(gaps[ok].sum())})
    work = pd.DataFrame(rows, columns=[schema.TURF_ID, "intervals", "minutes"])
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
        n_int = int(wk["intervals"].sum())
        minutes = float(wk["minutes"].sum())
        mpd = minutes / n_int if n_int else math.nan
        walk = (float(np.average(walk_per_door.reindex(wk[schema.TURF_ID]).to_numpy(),
                                 weights=wk["intervals"].to_numpy()))
                if n_int else math.nan)
        hpd = float(kn["households"].mean()) if len(kn) else math.nan
        per_hh = max(0.0, mpd - walk) / hpd if n_int and hpd > 0 else math.nan
        out_rows[kind] = {
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
        }
    out = pd.DataFrame.from_dict(out_rows, orient="index")
    out.index.name = "area_type"
    return out


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
    if area_type not in calibration.index or not np.isfinite(
            calibration.loc[area_type, "minutes_per_household"]):
        msg = (f"no calibration for area type {area_type!r}: results with timestamps at most "
               f"{MAX_GAP_MIN:.0f} minutes apart are needed")
        raise InputError(msg)
    value = round(float(calibration.loc[area_type, "minutes_per_household"]), 2)
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
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in names}
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
    import json

    import pyogrio.errors

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
    import pyogrio

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
