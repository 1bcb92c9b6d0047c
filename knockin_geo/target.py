"""Electoral targeting: read results per precinct, join them to the map, score and pick precincts.

The stages, each a pure function (inputs are never modified):

1. :func:`read_results` reads a results file (Nantes open data, French ministry 2024 or
   2017–2022 layouts, US wide or long precinct files, any CSV) into one tidy **long** table, one
   row per (precinct, choice).
2. :func:`indicators` turns it into one row per precinct: turnout, abstention, abstainers,
   ``votes_<choice>`` and ``share_<choice>``; :func:`change` compares two elections or rounds.
3. :func:`join_results` attaches the indicators to the precinct polygons, normalising the ids on
   both sides, and reports what did not match.
4. :func:`score` computes a mobilisation, persuasion or user-formula score and a rank;
   :func:`pick_universe` turns it into the precinct ids that
   :func:`knockin_geo.plan.plan_turfs` takes as ``universe=``.
5. :func:`spread_voters` and :func:`count_voters` estimate the voters behind each door;
   :func:`choropleth_png` draws a static classed map.

Results per bureau de vote are public aggregate data; nothing here needs personal data
(:func:`count_voters` keeps only counts per door).
"""

from __future__ import annotations

import ast
import io
import json
import logging
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from knockin_geo import schema
from knockin_geo._atomic import atomic_path, move_into_place
from knockin_geo._errors import InputError, MissingDependencyError, kw
from knockin_geo.classes import FISHER_JENKS_MAX, check_classes, classify
from knockin_geo.crs import local_metric_crs, to_crs
from knockin_geo.gpkg import write_gpkg
from knockin_geo.io import (
    close_matches,
    decode_text,
    existing_file,
    list_columns,
    read_raw,
    series_to_str,
    sniff_delimiter,
)
from knockin_geo.maps import choropleth_map, save_map
from knockin_geo.sheets import frame_csv

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

__all__ = [
    "COUNT_FIELDS",
    "FISHER_JENKS_MAX",
    "FORMULA_FUNCTIONS",
    "LAYOUTS",
    "RESULT_COLUMNS",
    "SHARES_NOTE",
    "VALUE_KINDS",
    "add_registered",
    "change",
    "check_formula",
    "choropleth_png",
    "classify",
    "count_voters",
    "evaluate_formula",
    "indicators",
    "join_results",
    "pick_universe",
    "read_registered",
    "read_results",
    "score",
    "slugify",
    "spread_voters",
]

#: Layouts :func:`read_results` understands (plus ``"auto"``).
LAYOUTS: Final = ("nantes", "fr2024", "fr2017", "us_wide", "us_long", "csv")
#: Per-precinct counts of the long results table (NaN where the source lacks them).
COUNT_FIELDS: Final = ("registered", "voters", "blank", "null", "expressed")
#: Columns of the long results table, in order (``source_row`` follows them).
RESULT_COLUMNS: Final = ("precinct_key", *COUNT_FIELDS, "choice", "votes", "share")
#: How :func:`read_results` takes the choice columns: detected, or said by the user.
VALUE_KINDS: Final = ("auto", "counts", "shares")
#: What a file of percentages cannot tell (in ``targeting.json`` and the CLI output).
SHARES_NOTE: Final = "results as percentages: counts, turnout and abstention unknown"
#: Functions allowed in a user formula.
FORMULA_FUNCTIONS: Final = ("min", "max", "abs", "sqrt", "log", "clip")

#: Score kinds accepted by :func:`score` (with the US spelling of mobilisation).
SCORE_KINDS: Final = ("mobilisation", "mobilization", "persuasion", "formula")

_MAX_FORMULA_CHARS: Final = 2000
_OK_STATUSES: Final = (schema.STATUS_OK, schema.STATUS_ASSIGNED)

#: Header synonyms of each role, in canonical form (see :func:`_canon`), by preference.
_ROLE_SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
    "precinct": (
        "precinct id",
        "precinct key",
        "code bv",
        "geoid20",
        "geoid10",
        "geoid",
        "vtdst20",
        "vtdst10",
        "vtdst",
        "unique id",
        "precinct",
        "precinct code",
        "precinct name",
        "pct",
        "id bv",
        "bureau",
        "code bureau",
        "numero bv",
        "id",
    ),
    "commune": ("code commune", "commune", "insee", "code insee", "code commune insee"),
    "registered": (
        "registered",
        "registered voters",
        "reg voters",
        "total registered",
        "inscrits",
        "reg",
    ),
    "voters": (
        "voters",
        "ballots",
        "ballots cast",
        "total ballots",
        "total voters",
        "ballots cast total",
        "votants",
    ),
    "blank": ("blank", "blanks", "blank ballots", "blancs"),
    "null": ("null", "nuls", "spoiled", "invalid", "invalid ballots", "rejected", "void"),
    "expressed": ("expressed", "exprimes", "valid votes", "valid", "valid ballots"),
    "choice": ("candidate", "choice", "candidat", "option", "party", "liste", "list", "nuance"),
    "votes": ("votes", "voix", "vote count", "nb voix", "candidate votes"),
    "contest": ("office", "contest", "race", "contest name"),
    "party": ("party", "party name", "party detailed", "party simplified", "parti"),
    "district": ("district", "district name"),
    "county": ("county", "county name", "parish"),
}
_ROLES: Final = (*_ROLE_SYNONYMS, "choices")

#: Columns of a Nantes-style file that are neither counts nor choices.
_NANTES_META: Final = frozenset(
    {
        "tour",
        "round",
        "participation",
        "procurations",
        "abstentions",
        "abstention",
        "nom",
        "name",
        "libelle",
        "commune",
        "code commune",
        "turnout",
    }
)
#: Column names of a generic CSV that are rates or labels, never choices.
_RATE_NAME: Final = re.compile(r"^(pct|percent|pourcentage|taux|rate|share|turnout)\b|%")
#: Contest-party-candidate columns of US precinct files (RDH/VEST naming, e.g. G20PREDBID).
_US_CHOICE: Final = re.compile(r"^[A-Z]\d{2}[A-Z0-9]{3}[A-Z][A-Z0-9]{3}$")
#: An INSEE commune code (Corsica 2A/2B included) in front of a bureau number.
_COMMUNE_PREFIX: Final = r"^(\d[\dAB]\d{3})_(.+)$"


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _canon(text: Any) -> str:
    """Lower-case ASCII words separated by one space ("Code du b.vote" -> "code du b vote")."""
    t = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", " ", t.lower()).strip()


def slugify(label: Any) -> str:
    """Return a column-name slug of a choice label: lower-case ASCII words joined by ``_``.

    Parameters
    ----------
    label
        A candidate, list or party label (``"LREM DUPONT"``, ``"Van Goethem"``).

    Returns
    -------
    str
        ``"lrem_dupont"``, ``"van_goethem"``; ``"choice"`` when nothing is left.
    """
    return _canon(label).replace(" ", "_") or "choice"


def _zfill_digits(s: pd.Series, width: int) -> pd.Series:
    """Zero-pad the values made only of digits; leave the others as they are."""
    s = s.str.strip()
    digits = s.str.fullmatch(r"\d+")
    return s.where(~digits, s.str.zfill(width))


def _fmt(v: float) -> str:
    return f"{v:.10g}"


def _parse_numbers(
    raw: pd.Series,
    label: str,
    rows: np.ndarray,
    problems: list[str],
    *,
    decimal_comma: bool,
    percent: bool = False,
) -> np.ndarray:
    """Parse a string column of numbers; NaN where empty; bad or negative values are problems.

    With ``decimal_comma`` every ``12,5`` is a decimal; without it ``1,054`` is a thousands
    group and other commas (``52,61``, ``0,527``) are decimals. With ``percent`` a ``%`` sign
    before or after the number is dropped (the caller reads the cells as shares).
    """
    text = raw.astype(str).str.strip().str.replace(r"[\s\u00a0\u202f]", "", regex=True)
    if percent:
        text = text.str.replace(r"^%|%$", "", regex=True)
    if not decimal_comma:
        thousands = text.str.fullmatch(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
        text = text.where(~thousands, text.str.replace(",", "", regex=False))
    text = text.str.replace(r"^([+-]?\d*),(\d+)$", r"\1.\2", regex=True)
    values = np.array(pd.to_numeric(text, errors="coerce"), dtype=float)
    empty = text.eq("").to_numpy()
    bad = ~empty & ~np.isfinite(values)
    original = raw.to_numpy(dtype=object)
    problems += [
        f"row {r}, column {label!r}: {str(v)!r} is "
        + ("a percentage, not a count" if "%" in str(v) else "not a number")
        for r, v in zip(rows[bad], original[bad], strict=True)
    ]
    negative = np.isfinite(values) & (values < 0)
    problems += [
        f"row {r}, column {label!r}: negative value {_fmt(v)}"
        for r, v in zip(rows[negative], values[negative], strict=True)
    ]
    values[bad | negative] = np.nan
    return values


# --------------------------------------------------------------------------------------------
# Reading results
# --------------------------------------------------------------------------------------------


class _Table:
    """A parsed CSV: raw header cells, string body with positional columns, row numbers."""

    def __init__(
        self, header: list[str], body: pd.DataFrame, rows: np.ndarray, p: Path, delim: str
    ) -> None:
        self.header = header
        self.body = body
        self.rows = rows
        self.path = p
        self.delimiter = delim
        self.canon = [_canon(h) for h in header]

    def label(self, i: int) -> str:
        return self.header[i] if self.header[i] else f"column {i + 1}"

    def col(self, i: int) -> pd.Series:
        if i >= self.body.shape[1]:
            return pd.Series([""] * len(self.body), index=self.body.index, dtype=str)
        return self.body.iloc[:, i]

    def find(self, names: Iterable[str], taken: Iterable[int] = ()) -> int | None:
        taken = set(taken)
        for name in names:
            for i, c in enumerate(self.canon):
                if c == name and i not in taken:
                    return i
        return None


def _read_table(p: Path, encoding: str | None, delimiter: str | None) -> tuple[_Table, str]:
    """Decode and parse a delimited file whose rows may be longer than the header."""
    text, enc = decode_text(read_raw(p), encoding, p)
    if not text.strip():
        msg = f"results file {p} is empty: no data rows"
        raise InputError(msg, path=str(p))
    delim = delimiter if delimiter else sniff_delimiter(text)
    if len(delim) != 1:
        msg = f"the delimiter must be one character, not {delim!r}"
        raise InputError(msg, path=str(p))
    # Ministry files name only the first candidate block: size the table on the longest line.
    width = max(line.count(delim) for line in text.splitlines()) + 1
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            sep=delim,
            header=None,
            names=list(range(width)),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            quotechar='"',
            doublequote=True,
            skip_blank_lines=True,
            engine="c",
        )
    except (ValueError, OverflowError) as exc:  # pandas.errors.ParserError is a ValueError
        msg = f"cannot parse results file {p}: {exc}"
        raise InputError(msg, path=str(p)) from exc
    raw = raw.fillna("").astype(str)
    header = [str(h).strip().lstrip("\ufeff").strip() for h in raw.iloc[0]]
    body = raw.iloc[1:].reset_index(drop=True)
    body = body.apply(lambda c: c.str.strip())
    keep = len(header)
    while keep > 1 and header[keep - 1] == "" and body[keep - 1].eq("").all():
        keep -= 1
    header = header[:keep]
    body = body.iloc[:, :keep]
    rows = np.arange(1, len(body) + 1)
    blank = body.eq("").all(axis=1).to_numpy()
    if blank.any():
        body = body.loc[~blank].reset_index(drop=True)
        rows = rows[~blank]
    if len(body) == 0:
        msg = f"results file {p} has a header but no data rows"
        raise InputError(msg, path=str(p))
    return _Table(header, body, rows, p, delim), enc


def _detect_layout(t: _Table) -> str | None:
    c = set(t.canon)
    raw_lower = {h.lower() for h in t.header}
    if {"code commune", "code bv", "inscrits"} <= c:
        return "fr2024"
    if "code de la commune" in c and c & {"code du b vote", "code b vote", "code bv"}:
        return "fr2017"
    if {"code_bv", "inscrits", "votants"} <= raw_lower:
        return "nantes"
    has_id = t.find(_ROLE_SYNONYMS["precinct"]) is not None
    has_votes = t.find(_ROLE_SYNONYMS["votes"]) is not None
    if has_id and has_votes and t.find(_ROLE_SYNONYMS["choice"]) is not None:
        return "us_long"
    if has_id and any(_US_CHOICE.match(h) for h in t.header):
        return "us_wide"
    if has_id and len(t.header) > 1:
        return "csv"
    return None


def _resolve_roles(
    t: _Table,
    columns: Mapping[str, str | Sequence[str]] | None,
    wanted: Sequence[str],
) -> tuple[dict[str, int], list[int] | None]:
    """Map roles to column positions: the user's ``columns`` first, then header synonyms."""
    found, choices = _mapped_roles(t, columns)
    for role in wanted:
        if role in found:
            continue
        i = t.find(_ROLE_SYNONYMS[role], taken=found.values())
        if i is not None:
            found[role] = i
    return found, choices


def _locate(t: _Table, name: str) -> int | None:
    """Find a column by its exact, lower-case or canonical name."""
    if name in t.header:
        return t.header.index(name)
    lower = [h.lower() for h in t.header]
    if name.lower() in lower:
        return lower.index(name.lower())
    if _canon(name) and _canon(name) in t.canon:
        return t.canon.index(_canon(name))
    return None


def _mapped_roles(
    t: _Table, columns: Mapping[str, str | Sequence[str]] | None
) -> tuple[dict[str, int], list[int] | None]:
    """Check the user's column map; return the roles' and the choices' column positions."""
    found: dict[str, int] = {}
    choices: list[int] | None = None
    problems: list[str] = []
    for role, value in (columns or {}).items():
        if role not in _ROLES:
            problems.append(
                f"unknown role {role!r}{close_matches(role, _ROLES)}; roles are: "
                f"{', '.join(_ROLES)}"
            )
            continue
        names = [value] if isinstance(value, str) else list(value)
        if role != "choices" and len(names) != 1:
            problems.append(f"role {role!r} takes one column name, not {value!r}")
            continue
        pos = []
        for name in names:
            i = _locate(t, str(name))
            if i is None:
                problems.append(
                    f"{role}: the file has no column {name!r}{close_matches(str(name), t.header)}"
                )
            else:
                pos.append(i)
        if role == "choices":
            choices = pos
        elif pos:
            found[role] = pos[0]
    if problems:
        msg = (
            f"the {kw('columns')} map does not match {t.path}; the file's columns are: "
            f"{list_columns(t.header)}"
        )
        raise InputError(msg, problems, path=str(t.path))
    return found, choices


def _missing_id(t: _Table, layout: str) -> InputError:
    msg = (
        f"results file {t.path} ({layout} layout) has no precinct id column; the columns are: "
        f"{list_columns(t.header)}. Name it with "
        f"{kw('columns', {'precinct': 'COL'}, cli='precinct=COL')}"
    )
    return InputError(msg, path=str(t.path))


def _keys(raw: pd.Series, label: str, rows: np.ndarray, problems: list[str]) -> np.ndarray:
    keys = raw.astype(str).str.strip()
    empty = keys.eq("").to_numpy()
    problems += [f"row {r}, column {label!r}: empty precinct id" for r in rows[empty]]
    return keys.to_numpy(dtype=object)


def _counts(
    t: _Table, roles: Mapping[str, int], problems: list[str], decimal_comma: bool
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    counts: dict[str, np.ndarray] = {}
    labels: dict[str, str] = {}
    for field in COUNT_FIELDS:
        i = roles.get(field)
        if i is None:
            counts[field] = np.full(len(t.body), np.nan)
            continue
        labels[field] = t.label(i)
        counts[field] = _parse_numbers(
            t.col(i), t.label(i), t.rows, problems, decimal_comma=decimal_comma
        )
    return counts, labels


class _Block(NamedTuple):
    """One choice column (or ministry candidate block) of a results file."""

    label: str  # column label, for messages
    choice: np.ndarray  # choice label on each row
    votes: np.ndarray  # the number read (a count, or a share when the file gives shares)
    present: np.ndarray  # rows that hold the choice
    pct: np.ndarray  # rows whose cell carries a % sign


def _block(
    t: _Table,
    votes_col: int,
    labels: np.ndarray,
    problems: list[str],
    decimal_comma: bool,
    *,
    optional: np.ndarray | None = None,
    label: str | None = None,
) -> _Block:
    """One choice column (or ministry candidate block): labels, votes and the rows that hold it.

    ``optional`` marks rows where an empty block means "no candidate in this slot".
    """
    raw = t.col(votes_col)
    label = label if label is not None else t.label(votes_col)
    votes = _parse_numbers(raw, label, t.rows, problems, decimal_comma=decimal_comma, percent=True)
    pct = raw.str.contains("%", regex=False).to_numpy()
    empty = raw.str.strip().eq("").to_numpy()
    present = ~empty
    if optional is not None:
        lost = empty & ~optional
        problems += [
            f"row {r}, column {label!r}: empty votes for {str(lab)!r}"
            for r, lab in zip(t.rows[lost], labels[lost], strict=True)
        ]
    return _Block(label, labels, votes, present, pct)


def _assemble(
    keys: np.ndarray,
    rows: np.ndarray,
    counts: Mapping[str, np.ndarray],
    blocks: Sequence[_Block],
) -> pd.DataFrame:
    parts = []
    for j, b in enumerate(blocks):
        idx = np.flatnonzero(b.present)
        parts.append(
            pd.DataFrame(
                {
                    "_pos": idx,
                    "_block": np.full(len(idx), j),
                    "choice": np.asarray(b.choice, dtype=object)[idx],
                    "votes": b.votes[idx],
                    "_column": b.label,
                    "_pct": b.pct[idx],
                }
            )
        )
    if parts:
        long = pd.concat(parts, ignore_index=True).sort_values(["_pos", "_block"], kind="stable")
    else:
        long = pd.DataFrame(
            {"_pos": [], "_block": [], "choice": [], "votes": [], "_column": [], "_pct": []}
        )
    pos = long["_pos"].to_numpy(dtype=np.int64)
    out = pd.DataFrame({"precinct_key": keys[pos]})
    for field in COUNT_FIELDS:
        out[field] = counts[field][pos]
    out["choice"] = long["choice"].to_numpy(dtype=object)
    out["votes"] = long["votes"].to_numpy(dtype=float)
    out["share"] = np.nan
    out["source_row"] = rows[pos].astype(np.int64)
    out["_column"] = long["_column"].to_numpy(dtype=object)
    out["_pct"] = long["_pct"].to_numpy(dtype=bool)
    return out


def _wide(
    t: _Table,
    layout: str,
    columns: Mapping[str, str | Sequence[str]] | None,
    contest: str | None,
    problems: list[str],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Nantes, US wide and generic CSV files: one row per precinct, one column per choice."""
    decimal_comma = t.delimiter != ","
    roles, choices = _resolve_roles(t, columns, ("precinct", *COUNT_FIELDS))
    if "precinct" not in roles:
        raise _missing_id(t, layout)
    chosen_contest = None
    if choices is None:
        used = set(roles.values())
        rest = [i for i in range(len(t.header)) if i not in used]
        if layout == "us_wide":
            choices, chosen_contest = _us_wide_choices(t, rest, contest)
        elif layout == "nantes":
            choices = [i for i in rest if t.canon[i] not in _NANTES_META and t.header[i]]
        else:
            choices = _numeric_choices(t, rest, decimal_comma)
    if not choices:
        msg = (
            f"results file {t.path} ({layout} layout) has no vote columns; the columns are: "
            f"{list_columns(t.header)}. Name them with "
            f"{kw('columns', {'choices': ['A', 'B']}, cli='choices=A,B')}"
        )
        raise InputError(msg, path=str(t.path))
    keys = _keys(t.col(roles["precinct"]), t.label(roles["precinct"]), t.rows, problems)
    counts, count_labels = _counts(t, roles, problems, decimal_comma)
    blocks = []
    n = len(t.body)
    for i in choices:
        blocks.append(_block(t, i, np.full(n, t.header[i], dtype=object), problems, decimal_comma))
    empty_cells = sum(int((~b.present).sum()) for b in blocks)
    if empty_cells:
        logger.info(
            "%s: %d empty vote cell(s) read as 'not on the ballot in that precinct'",
            t.path,
            empty_cells,
        )
    long = _assemble(keys, t.rows, counts, blocks)
    _check_duplicate_keys(keys, t.rows, t.label(roles["precinct"]), problems)
    info = {
        "columns_used": {r: t.label(i) for r, i in roles.items()}
        | {"choices": [t.label(i) for i in choices]},
        "count_labels": count_labels,
        "contest": chosen_contest,
    }
    return long, info


def _us_wide_choices(
    t: _Table, rest: list[int], contest: str | None
) -> tuple[list[int], str | None]:
    """Find the vote columns of a US wide file (``G20PREDBID``...) for one contest."""
    choices = [i for i in rest if _US_CHOICE.match(t.header[i])]
    contests = sorted({t.header[i][:6] for i in choices})
    if contest is not None:
        choices = [i for i in choices if t.header[i][:6].upper() == contest.upper()]
        if not choices:
            msg = (
                f"results file {t.path}: no column of contest {contest!r} "
                f"({kw('contest')}); the contests are: {', '.join(contests)}"
            )
            raise InputError(msg, path=str(t.path))
        return choices, contest.upper()
    if len(contests) > 1:
        msg = (
            f"results file {t.path} holds {len(contests)} contests "
            f"({', '.join(contests)}): choose one with {kw('contest', contests[0])}"
        )
        raise InputError(msg, path=str(t.path))
    return choices, contests[0] if contests else None


def _numeric_choices(t: _Table, rest: list[int], decimal_comma: bool) -> list[int]:
    """Find the vote columns of a generic file: every numeric column that is not a rate."""
    choices = []
    skipped = []
    for i in rest:
        if _RATE_NAME.search(t.canon[i]) or t.canon[i] in _NANTES_META or not t.header[i]:
            skipped.append(t.label(i))
            continue
        scratch: list[str] = []
        _parse_numbers(
            t.col(i), t.label(i), t.rows, scratch, decimal_comma=decimal_comma, percent=True
        )
        if scratch:
            skipped.append(t.label(i))
        else:
            choices.append(i)
    if skipped:
        logger.info(
            "%s: columns not read as choices (rates or non-numbers): %s",
            t.path,
            ", ".join(skipped),
        )
    return choices


def _check_duplicate_keys(
    keys: np.ndarray, rows: np.ndarray, label: str, problems: list[str]
) -> None:
    s = pd.Series(keys)
    dup = s.duplicated(keep=False).to_numpy() & s.ne("").to_numpy()
    if dup.any():
        groups = pd.Series(rows[dup]).groupby(keys[dup], sort=True)
        problems += [
            f"precinct {k!r} (column {label!r}) appears {len(r)} times, in rows "
            f"{', '.join(map(str, r))}"
            for k, r in groups
        ]


#: Pseudo-offices of OpenElections long files: a precinct count, not a contest.
_COUNT_OFFICES: Final = {
    "registered voters": "registered",
    "registered": "registered",
    "ballots cast": "voters",
    "total ballots cast": "voters",
    "ballots cast total": "voters",
    "total ballots": "voters",
}
#: Candidate labels of long files that are not choices (over- and under-votes).
_NOT_CHOICES: Final = re.compile(r"^(over|under)\s?votes?$|^(over under|under over)( votes)?$")


def _subset(t: _Table, keep: np.ndarray) -> _Table:
    if keep.all():
        return t
    return _Table(
        t.header, t.body.loc[keep].reset_index(drop=True), t.rows[keep], t.path, t.delimiter
    )


def _count_offices(
    t: _Table, roles: Mapping[str, int], problems: list[str], decimal_comma: bool
) -> tuple[np.ndarray, dict[str, pd.Series]]:
    """Rows of pseudo-offices (``Registered Voters``, ``Ballots Cast``) and their counts by key."""
    if "contest" not in roles:
        return np.zeros(len(t.body), dtype=bool), {}
    kind = t.col(roles["contest"]).map(lambda o: _COUNT_OFFICES.get(_canon(o)))
    rows = kind.notna().to_numpy()
    found: dict[str, pd.Series] = {}
    for field in ("registered", "voters"):
        mine = (kind == field).to_numpy()
        if not mine.any() or field in roles:
            continue
        sub = _subset(t, mine)
        keys = sub.col(roles["precinct"]).str.strip()
        label = f"{t.label(roles['votes'])} ({field})"
        vals = pd.Series(
            _parse_numbers(sub.col(roles["votes"]), label, sub.rows, problems,
                           decimal_comma=decimal_comma),
            index=keys.to_numpy(),
        )
        spread = vals.groupby(level=0, sort=False).nunique()
        problems += [
            f"precinct {k!r}: {n} different {field} counts in the rows of office "
            f"{t.col(roles['contest'])[mine].iloc[0]!r}"
            for k, n in spread[spread > 1].items()
        ]
        found[field] = vals.groupby(level=0, sort=False).first()
    return rows, found


def _pick_contest(
    t: _Table, roles: Mapping[str, int], contest: str | None
) -> tuple[np.ndarray, str | None]:
    """Rows of the chosen contest: an office (all its districts) or ``office district``."""
    if "contest" not in roles:
        return np.ones(len(t.body), dtype=bool), None
    offices = t.col(roles["contest"]).str.strip()
    values = list(pd.unique(offices))
    where = f"in column {t.label(roles['contest'])!r}"
    if contest is None:
        if len(values) > 1:
            msg = (
                f"results file {t.path} holds {len(values)} contests {where}: choose one with "
                f"{kw('contest', values[0])} (an office, or an office and its district)"
            )
            raise InputError(msg, [f"contest {v!r}" for v in values], path=str(t.path))
        return np.ones(len(t.body), dtype=bool), values[0] if values else None
    want = _canon(contest)
    keep = (offices.map(_canon) == want).to_numpy()
    if not keep.any() and "district" in roles:
        both = offices + " " + t.col(roles["district"]).str.strip()
        keep = (both.map(_canon) == want).to_numpy()
    if not keep.any():
        msg = (
            f"results file {t.path}: no row of contest {contest!r} {where}"
            f"{close_matches(contest, values)} ({kw('contest')})"
        )
        raise InputError(msg, [f"contest {v!r}" for v in values], path=str(t.path))
    return keep, contest


def _long_choices(
    t: _Table, roles: dict[str, int], by_party: bool, problems: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the choice of each row (candidate, or party with ``by_party``), rows to keep."""
    if by_party:
        if "party" not in roles and _canon(t.header[roles["choice"]]) not in _ROLE_SYNONYMS[
            "party"
        ]:
            msg = (
                f"results file {t.path} has no party column for {kw('by_party', True, cli='')}; "
                f"the columns are: {list_columns(t.header)}"
            )
            raise InputError(msg, path=str(t.path))
        roles["choice"] = roles.pop("party", roles["choice"])
    choice = t.col(roles["choice"]).str.strip().to_numpy(dtype=object)
    if by_party:
        choice = np.where(choice == "", "no party", choice)
    not_choice = np.array([bool(_NOT_CHOICES.match(_canon(c))) for c in choice], dtype=bool)
    if not_choice.any():
        logger.info("%s: %d over/under-vote rows are not choices", t.path, int(not_choice.sum()))
    no_choice = (choice == "") & ~not_choice
    problems += [
        f"row {r}, column {t.label(roles['choice'])!r}: empty choice" for r in t.rows[no_choice]
    ]
    return choice, ~not_choice


def _parties(t: _Table, roles: Mapping[str, int], choice: np.ndarray) -> dict[str, list[str]]:
    """Choice label -> the parties it stands for (a candidate may run for several)."""
    if "party" not in roles or roles["party"] == roles["choice"]:
        return {}
    party = t.col(roles["party"]).str.strip().to_numpy(dtype=object)
    out: dict[str, list[str]] = {}
    for c, p in zip(choice, party, strict=True):
        if p and p not in out.setdefault(str(c), []):
            out[str(c)].append(str(p))
    return out


def _us_long(
    t: _Table,
    columns: Mapping[str, str | Sequence[str]] | None,
    contest: str | None,
    problems: list[str],
    *,
    by_party: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per precinct × candidate (OpenElections: several offices, pseudo-offices)."""
    decimal_comma = t.delimiter != ","
    wanted = ("precinct", "choice", "votes", "contest", "party", "district", "county",
              *COUNT_FIELDS)
    roles, _ = _resolve_roles(t, columns, wanted)
    if "precinct" not in roles:
        raise _missing_id(t, "us_long")
    for role in ("choice", "votes"):
        if role not in roles:
            msg = (
                f"results file {t.path} (us_long layout) has no {role} column; the columns are: "
                f"{list_columns(t.header)}. Name it with "
                f"{kw('columns', {role: 'COL'}, cli=f'{role}=COL')}"
            )
            raise InputError(msg, path=str(t.path))
    count_rows, office_counts = _count_offices(t, roles, problems, decimal_comma)
    t = _subset(t, ~count_rows)
    keep, chosen_contest = _pick_contest(t, roles, contest)
    t = _subset(t, keep)
    choice, is_choice = _long_choices(t, roles, by_party, problems)
    parties = _parties(t, roles, choice)
    t, choice = _subset(t, is_choice), choice[is_choice]
    keys = _keys(t.col(roles["precinct"]), t.label(roles["precinct"]), t.rows, problems)
    _check_counties(t, roles, keys, problems)
    counts, count_labels = _counts(t, roles, problems, decimal_comma)
    for field, per_key in office_counts.items():
        counts[field] = per_key.reindex(pd.Index(keys).str.strip()).to_numpy(dtype=float)
        count_labels[field] = f"office {field}"
    b = _block(t, roles["votes"], choice, problems, decimal_comma)
    problems += [f"row {r}, column {b.label!r}: empty votes" for r in t.rows[~b.present]]
    long = _assemble(keys, t.rows, counts, [b._replace(present=np.ones(len(t.body), bool))])
    _check_repeated_counts(long, count_labels, problems)
    long = _sum_vote_modes(long, t.path)
    info = {
        "columns_used": {r: t.label(i) for r, i in roles.items()}
        | {f: f"office rows ({f})" for f in office_counts},
        "count_labels": count_labels,
        "contest": chosen_contest,
        "parties": parties,
    }
    return long, info


def _check_counties(
    t: _Table, roles: Mapping[str, int], keys: np.ndarray, problems: list[str]
) -> None:
    """Precinct ids that repeat across counties would be summed together: refuse them."""
    if "county" not in roles:
        return
    county = pd.Series(t.col(roles["county"]).str.strip().to_numpy())
    per = county.groupby(keys, sort=False).nunique()
    shared = per[per > 1]
    if len(shared):
        problems.append(
            f"{len(shared)} precinct id(s) of column {t.label(roles['precinct'])!r} appear in "
            f"several counties (column {t.label(roles['county'])!r}), e.g. "
            f"{', '.join(map(repr, shared.index[:5]))}: keep the rows of one county, or give "
            "ids that include the county"
        )


def _check_repeated_counts(
    long: pd.DataFrame, count_labels: Mapping[str, str], problems: list[str]
) -> None:
    """Per-precinct counts are repeated on every row of a long file: they must agree."""
    for field, lab in count_labels.items():
        per = long.groupby("precinct_key", sort=False)[field].nunique(dropna=True)
        for key in per.index[per.to_numpy() > 1]:
            vals = sorted(set(long.loc[long["precinct_key"] == key, field].dropna()))
            problems.append(
                f"precinct {key!r}: column {lab!r} differs between its rows "
                f"({', '.join(_fmt(v) for v in vals[:5])})"
            )


def _sum_vote_modes(long: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Sum the rows that repeat a (precinct, choice) pair: one row per vote mode, or party."""
    dup = long.duplicated(["precinct_key", "choice"], keep=False)
    if not dup.any():
        return long
    logger.warning(
        "%s: %d rows repeat a (precinct, choice) pair (vote modes, or a candidate of several "
        "parties): their votes are summed",
        path,
        int(dup.sum()),
    )
    agg: dict[str, Any] = dict.fromkeys(COUNT_FIELDS, "first")
    agg |= {
        "votes": lambda v: v.sum(min_count=1),
        "share": "first",
        "source_row": "first",
        "_column": "first",
        "_pct": "any",
    }
    long = long.groupby(["precinct_key", "choice"], sort=False, as_index=False).agg(agg)
    return long[[*RESULT_COLUMNS, "source_row", "_column", "_pct"]]


def _ministry_counts(t: _Table, problems: list[str]) -> tuple[dict[str, np.ndarray], dict]:
    roles = {}
    for field, names in (
        ("registered", ("inscrits",)),
        ("voters", ("votants",)),
        ("blank", ("blancs",)),
        ("null", ("nuls", "blancs et nuls")),
        ("expressed", ("exprimes",)),
    ):
        i = t.find(names)
        if i is not None:
            roles[field] = i
    return _counts(t, roles, problems, decimal_comma=True)


def _ministry_label(nuance: pd.Series, name: pd.Series) -> np.ndarray:
    label = (nuance.str.strip() + " " + name.str.strip()).str.strip()
    return label.str.replace(r"\s+", " ", regex=True).to_numpy(dtype=object)


def _fr2024(t: _Table, problems: list[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Ministry layout of 2024: ``Code commune`` (INSEE), ``Code BV``, numbered candidate blocks."""
    commune_i = t.find(("code commune",))
    bv_i = t.find(("code bv", "code b vote", "code du b vote"))
    if commune_i is None or bv_i is None:
        raise _missing_id(t, "fr2024")
    commune = _zfill_digits(t.col(commune_i), 5)
    bv = _zfill_digits(t.col(bv_i), 4)
    keys = (commune + "_" + bv).to_numpy(dtype=object)
    empty = (t.col(commune_i).eq("") | t.col(bv_i).eq("")).to_numpy()
    problems += [
        f"row {r}, columns {t.label(commune_i)!r}/{t.label(bv_i)!r}: empty precinct id"
        for r in t.rows[empty]
    ]
    counts, count_labels = _ministry_counts(t, problems)
    slots: dict[int, dict[str, int]] = {}
    for i, c in enumerate(t.canon):
        m = re.fullmatch(
            r"(voix|nuance candidat|nuance liste|nuance|nom candidat|libelle abrege de liste|"
            r"libelle de liste|nom tete de liste) (\d+)",
            c,
        )
        if m:
            slot = slots.setdefault(int(m.group(2)), {})
            part = (
                "votes"
                if m.group(1) == "voix"
                else "nuance"
                if m.group(1).startswith("nuance")
                else "name"
            )
            slot.setdefault(part, i)
    blocks = []
    for k in sorted(slots):
        slot = slots[k]
        if "votes" not in slot:
            continue
        nuance = t.col(slot["nuance"]) if "nuance" in slot else t.col(len(t.header) + 1)
        name = t.col(slot["name"]) if "name" in slot else t.col(len(t.header) + 1)
        labels = _ministry_label(nuance, name)
        labels = np.where(labels == "", f"candidate {k}", labels)
        no_candidate = (nuance.eq("") & name.eq("")).to_numpy()
        blocks.append(_block(t, slot["votes"], labels, problems, True, optional=no_candidate))
    if not blocks:
        msg = f"results file {t.path} (fr2024 layout) has no 'Voix 1' ... columns"
        raise InputError(msg, path=str(t.path))
    _check_duplicate_keys(keys, t.rows, "Code commune + Code BV", problems)
    info = {
        "columns_used": {"commune": t.label(commune_i), "precinct": t.label(bv_i)},
        "count_labels": count_labels,
        "contest": None,
    }
    return _assemble(keys, t.rows, counts, blocks), info


def _fr2017(t: _Table, problems: list[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Ministry layout of 2017–2022: unnamed repeating candidate blocks after the counts."""
    dept_i = t.find(("code du departement", "code departement"))
    commune_i = t.find(("code de la commune",))
    bv_i = t.find(("code du b vote", "code b vote", "code bv"))
    if commune_i is None or bv_i is None or dept_i is None:
        raise _missing_id(t, "fr2017")
    commune = t.col(commune_i).str.strip()
    short = commune.str.len() < 5
    dept = _zfill_digits(t.col(dept_i), 2)
    insee = commune.where(~short, dept + _zfill_digits(commune, 3))
    keys = (insee + "_" + _zfill_digits(t.col(bv_i), 4)).to_numpy(dtype=object)
    empty = (commune.eq("") | t.col(bv_i).eq("")).to_numpy()
    problems += [
        f"row {r}, columns {t.label(commune_i)!r}/{t.label(bv_i)!r}: empty precinct id"
        for r in t.rows[empty]
    ]
    counts, count_labels = _ministry_counts(t, problems)
    firsts = ("n panneau", "npanneau", "n pan", "numero de panneau", "panneau")
    start = t.find(firsts)
    if start is None:
        cands = [t.find((n,)) for n in ("sexe", "code nuance", "nuance", "nom")]
        known = [i for i in cands if i is not None and i > bv_i]
        start = min(known) if known else None
    if start is None:
        msg = f"results file {t.path} (fr2017 layout): cannot find the first candidate block"
        raise InputError(msg, path=str(t.path))
    first = t.canon[start]
    end = start + 1
    while end < len(t.header):
        c = t.canon[end]
        if not c or c == first or re.fullmatch(rf"{re.escape(first)} \d+|unnamed \d+", c):
            break
        end += 1
    names = t.canon[start:end]

    def offset(*cands: str) -> int | None:
        for c in cands:
            if c in names:
                return names.index(c)
        return None

    o_votes = offset("voix")
    o_name = offset("nom", "liste", "libelle abrege liste", "libelle de liste")
    o_nuance = offset("nuance", "code nuance")
    if o_votes is None:
        msg = (
            f"results file {t.path} (fr2017 layout): the candidate block "
            f"({', '.join(t.header[start:end])}) has no 'Voix' column"
        )
        raise InputError(msg, path=str(t.path))
    width = end - start
    n_blocks = -(-(t.body.shape[1] - start) // width)
    blocks = []
    for b in range(n_blocks):
        base = start + b * width
        nuance = t.col(base + o_nuance) if o_nuance is not None else t.col(t.body.shape[1])
        name = t.col(base + o_name) if o_name is not None else t.col(t.body.shape[1])
        labels = _ministry_label(nuance, name)
        labels = np.where(labels == "", f"candidate {b + 1}", labels)
        no_candidate = (nuance.eq("") & name.eq("")).to_numpy()
        label = f"Voix (candidate block {b + 1}, column {base + o_votes + 1})"
        blocks.append(
            _block(t, base + o_votes, labels, problems, True, optional=no_candidate, label=label)
        )
    _check_duplicate_keys(keys, t.rows, "Code de la commune + Code du b.vote", problems)
    info = {
        "columns_used": {
            "department": t.label(dept_i),
            "commune": t.label(commune_i),
            "precinct": t.label(bv_i),
        },
        "count_labels": count_labels,
        "contest": None,
        "block_width": width,
    }
    return _assemble(keys, t.rows, counts, blocks), info


def _decimals(v: np.ndarray) -> np.ndarray:
    """Decimals each value was published with (0 to 6)."""
    d = np.full(len(v), 6, dtype=np.int64)
    for k in range(6, -1, -1):
        scaled = v * 10.0**k
        d = np.where(np.abs(scaled - np.round(scaled)) < 1e-6 * max(1.0, 10.0**k), k, d)
    return d


def _row_sums(long: pd.DataFrame) -> pd.DataFrame:
    """Per precinct: sum, largest value, rounding tolerance, % signs and fractions of its cells."""
    v = long["votes"].to_numpy(dtype=float)
    cells = pd.DataFrame(
        {
            "key": long["precinct_key"].to_numpy(),
            "v": v,
            "d": np.where(np.isfinite(v), _decimals(np.nan_to_num(v)), 0),
            "frac": np.isfinite(v) & (np.abs(v - np.round(v)) > 1e-9),
            "pct": long["_pct"].to_numpy(dtype=bool),
            "row": long["source_row"].to_numpy(),
        }
    )
    g = cells.groupby("key", sort=False)
    per = pd.DataFrame(
        {
            "total": g["v"].sum(min_count=1),
            "top": g["v"].max(),
            "n": g["v"].count(),
            "d": g["d"].max(),
            "frac": g["frac"].any(),
            "pct": g["pct"].any(),
            "row": g["row"].first(),
        }
    )
    # published with d decimals, each of the n shares is off by at most half a unit of the last
    # digit; 0.15 points at least (rows that sum to 99.9 or 100.1)
    tol = np.maximum(0.15, per["n"] * 0.5 * 10.0 ** -per["d"].astype(float))
    per["near100"] = (per["total"] - 100).abs() <= tol
    per["near1"] = ((per["total"] - 1).abs() <= tol / 100) & (per["top"] <= 1)
    return per


def _where(per: pd.DataFrame, mask: pd.Series) -> list[str]:
    return [
        f"row {r} (precinct {k!r}): sum {_fmt(round(t, 6))}"
        for k, r, t in zip(per.index[mask], per["row"][mask], per["total"][mask], strict=True)
    ]


def _share_scale(
    long: pd.DataFrame, values: str, has_counts: bool, problems: list[str], path: Path
) -> float | None:
    """Whether the choice cells are shares: ``100`` (percent), ``1`` (fractions) or ``None``.

    A row of shares sums to 100 (or 1) up to the rounding of its cells; a row carrying ``%``
    signs or fractions that sums so is a share row for sure; a row summing to anything else is a
    count row. A file that has both is refused with the rows named. Rows of whole numbers that
    all sum to 100 are read as percentages when the file has no count column.
    """
    if values == "counts" or len(long) == 0:
        return None
    per = _row_sums(long)
    share_like = per["near100"] | per["near1"]
    sure = share_like & (per["pct"] | per["frac"])
    counts = per["total"].gt(0) & ~share_like
    bad_pct = per["pct"] & ~share_like
    if values == "shares":
        over = per["total"] > np.where(per["top"] <= 1, 1.0, 100.0) * 1.0015 + 0.15
        problems += [f"{w}: shares sum to more than 100 %" for w in _where(per, over)]
        return 1.0 if bool((per["top"].fillna(0) <= 1).all()) else 100.0
    if bad_pct.any():
        problems += [f"{w}, not 100: the percentages do not add up" for w in _where(per, bad_pct)]
        return None
    if sure.any() and counts.any():
        msg = (
            f"results file {path} mixes rows of percentages and rows of counts: each row must "
            f"be one or the other (or say which they all are: {kw('values', 'shares')} or "
            f"{kw('values', 'counts')})"
        )
        raise InputError(
            msg,
            [f"{w}: percentages" for w in _where(per, sure)]
            + [f"{w}: counts" for w in _where(per, counts)],
            path=str(path),
        )
    whole = share_like.all() and per["near100"].all() and len(per) > 1 and not has_counts
    if not (sure.any() or whole):
        return None
    scale100, scale1 = per["near100"] & share_like, per["near1"] & ~per["near100"]
    if scale100.any() and scale1.any():
        msg = f"results file {path} mixes percentages (sum 100) and fractions (sum 1)"
        raise InputError(
            msg,
            [f"{w}: percent" for w in _where(per, scale100)]
            + [f"{w}: fractions" for w in _where(per, scale1)],
            path=str(path),
        )
    return 1.0 if scale1.any() else 100.0


def _check_counts(long: pd.DataFrame, labels: Mapping[str, str], problems: list[str]) -> None:
    """Votes and counts must fit inside the registered voters (and the voters)."""
    reg = long["registered"].to_numpy(dtype=float)
    votes = long["votes"].to_numpy(dtype=float)
    over = votes > reg
    problems += [
        f"row {r}, column {col!r}: {_fmt(v)} votes for {str(c)!r} but only {_fmt(g)} registered"
        for r, col, c, v, g in zip(
            long["source_row"].to_numpy()[over],
            long["_column"].to_numpy()[over],
            long["choice"].to_numpy()[over],
            votes[over],
            reg[over],
            strict=True,
        )
    ]
    per = long.drop_duplicates("precinct_key")
    rows = per["source_row"].to_numpy()
    for field, bound in (
        ("voters", "registered"),
        ("expressed", "voters"),
        ("blank", "voters"),
        ("null", "voters"),
        ("expressed", "registered"),
    ):
        a = per[field].to_numpy(dtype=float)
        b = per[bound].to_numpy(dtype=float)
        bad = a > b
        problems += [
            f"row {r}, column {labels.get(field, field)!r}: {_fmt(x)} {field} but only "
            f"{_fmt(y)} {bound}"
            for r, x, y in zip(rows[bad], a[bad], b[bad], strict=True)
        ]


def read_results(
    path: PathLike, *, layout: str = "auto",
    columns: Mapping[str, str | Sequence[str]] | None = None, encoding: str | None = None,
    delimiter: str | None = None, election: str | None = None, contest: str | None = None,
    by_party: bool = False, values: str = "auto",
) -> pd.DataFrame:
    r"""Read election results per precinct into a tidy long table.

    Parameters
    ----------
    path
        A delimited text file (plain or ``.gz``/``.bz2``/``.xz``/``.zip``).
    layout
        ``"auto"`` (detected from the header), ``"nantes"`` (``code_bv, inscrits, votants,
        exprimes, nuls`` then one column per list), ``"fr2024"`` (ministry, ``Code commune;
        Code BV; ...; Voix 1; ...``), ``"fr2017"`` (ministry 2017–2022, unnamed repeating
        candidate blocks ``N°Panneau;Sexe;Nom;Prénom;Nuance;Voix;...``), ``"us_wide"`` (one
        column per contest-party-candidate such as ``G20PREDBID``), ``"us_long"`` (one row per
        precinct × candidate) or ``"csv"`` (an id column and one numeric column per choice).
    columns
        Role -> column name, overriding detection (layouts nantes, us_wide, us_long, csv):
        ``precinct``, ``registered``, ``voters``, ``blank``, ``null``, ``expressed``,
        ``choice`` and ``votes`` (long), ``contest`` (long: office column), ``party``,
        ``district`` and ``county`` (long) and ``choices`` (a list of vote columns, wide
        layouts).
    encoding
        Text encoding; detected when omitted (UTF-8 with or without BOM, else Latin-1 family).
    delimiter
        Field delimiter; sniffed among ``, ; \t |`` when omitted. With any delimiter other than
        ``,`` a decimal comma is accepted (``45,12``); with ``,`` a thousands comma
        (``"1,054"``) is.
    election
        Label of the election, kept in ``attrs["election"]`` (default: the file name stem).
    contest
        The contest to keep when the file holds several: the 6-character prefix of US wide
        columns (``"G20PRE"``) or a value of the office column of a long file (all its
        districts), or an office and its district (``"State House 70"``).
    by_party
        Long files: the choices are the parties (votes of a party's candidates summed), not the
        candidates.
    values
        ``"auto"`` (detected), ``"counts"`` or ``"shares"``: whether the choice cells are vote
        counts or shares of the vote. Detected shares: every row sums to 100 (or 1) up to the
        rounding of its cells, with ``%`` signs or decimals (or, in a file without count
        columns, whole numbers summing to 100 in every row). They go to ``share`` (0–1) and
        ``votes`` stays NaN: a share is never read as a count.

    Returns
    -------
    pandas.DataFrame
        One row per (precinct, choice), in file order, with columns :data:`RESULT_COLUMNS`
        (``precinct_key`` str; ``registered``, ``voters``, ``blank``, ``null``, ``expressed``
        float, NaN where the source does not have them; ``choice`` str; ``votes`` float) and
        ``source_row`` (1-based data row; the header is row 0). Ministry keys are
        ``zfill(commune, 5) + "_" + zfill(bureau, 4)`` (``44109_0101``); other keys are kept as
        found (trimmed). An empty vote cell of a wide file means "not on the ballot there"
        and gives no row. ``share`` is the published share (0–1) in a file of shares, NaN in a
        file of counts. ``attrs``: ``layout``, ``source``, ``election``, ``encoding``,
        ``delimiter``, ``columns_used``, ``contest``, ``values`` (``"counts"`` or
        ``"shares"``), ``share_scale`` (100, 1 or None), ``parties`` (long files with a party
        column: choice label -> its parties).

    Raises
    ------
    InputError
        Missing, empty or undecodable file, unknown or undetectable layout, no id column, no
        data rows, and every bad value at once (each naming row and column): non-numbers,
        negative numbers, votes above the registered voters, voters above registered,
        expressed above voters, duplicate precincts, long files whose repeated counts differ,
        percentages that do not add up to 100, files mixing rows of counts and rows of
        percentages (each listed).
    """
    p = existing_file(path, "results")
    _check_read_options(p, layout, values)
    t, enc = _read_table(p, encoding, delimiter)
    chosen = _chosen_layout(t, layout, p)
    long, info, scale = _read_votes(t, chosen, columns, contest, by_party, values, p)
    source = {"election": election if election is not None else p.name.split(".")[0],
              "encoding": enc, "delimiter": t.delimiter}
    return _results_frame(long, info, scale, chosen, p, source)


def _check_read_options(p: Path, layout: str, values: str) -> None:
    """Refuse an unknown ``layout`` or ``values`` of :func:`read_results`."""
    if layout != "auto" and layout not in LAYOUTS:
        msg = f"unknown results layout {layout!r}{close_matches(layout, LAYOUTS)} ({kw('layout')})"
        raise InputError(msg, [f"layouts: auto, {', '.join(LAYOUTS)}"], path=str(p))
    if values not in VALUE_KINDS:
        msg = f"{kw('values', values)}: not one of {', '.join(VALUE_KINDS)}"
        raise InputError(msg, path=str(p))


def _chosen_layout(t: _Table, layout: str, p: Path) -> str:
    """Return the layout given, or the one detected from the header; refuse when undetectable."""
    chosen = layout if layout != "auto" else _detect_layout(t)
    if chosen is None:
        msg = (
            f"cannot detect the layout of results file {p}; the columns are: "
            f"{list_columns(t.header)}. Give {kw('layout')} ({', '.join(LAYOUTS)}) and "
            f"{kw('columns')}"
        )
        raise InputError(msg, path=str(p))
    return chosen


def _read_votes(
    t: _Table, chosen: str, columns: Mapping[str, str | Sequence[str]] | None,
    contest: str | None, by_party: bool, values: str, p: Path,
) -> tuple[pd.DataFrame, dict[str, Any], float | None]:
    """Read the long votes table, its layout's info and share scale; refuse every bad value.

    In a file of shares the cells move to ``share`` (divided by the scale) and ``votes`` is NaN.
    """
    problems: list[str] = []
    long, info = _read_layout(t, chosen, columns, contest, by_party, problems)
    scale = _share_scale(long, values, bool(info["count_labels"]), problems, p)
    if scale is not None:
        long["share"] = long["votes"] / scale
        long["votes"] = np.nan
        logger.info("%s: %s", p, SHARES_NOTE)
    _check_counts(long, info["count_labels"], problems)
    if problems:
        msg = f"results file {p} ({chosen} layout): {len(problems)} problem(s)"
        raise InputError(msg, problems, path=str(p))
    if len(long) == 0:
        msg = f"results file {p} ({chosen} layout) holds no votes"
        raise InputError(msg, path=str(p))
    return long, info, scale


def _results_frame(
    long: pd.DataFrame,
    info: Mapping[str, Any],
    scale: float | None,
    chosen: str,
    p: Path,
    source: Mapping[str, Any],
) -> pd.DataFrame:
    """Build the table :func:`read_results` returns, with its ``attrs``.

    ``source`` holds the election label, the encoding and the delimiter of the file.
    """
    out = long[[*RESULT_COLUMNS, "source_row"]].reset_index(drop=True)
    out["precinct_key"] = out["precinct_key"].astype(str)
    out["choice"] = out["choice"].astype(str)
    out.attrs = {
        "layout": chosen,
        "source": str(p),
        "election": source["election"],
        "encoding": source["encoding"],
        "delimiter": source["delimiter"],
        "columns_used": info["columns_used"],
        "contest": info["contest"],
        "values": "shares" if scale is not None else "counts",
        "share_scale": scale,
        "parties": info.get("parties", {}),
    }
    n_prec = out["precinct_key"].nunique()
    logger.info(
        "read %d precincts and %d choices from %s (layout %s)",
        n_prec,
        out["choice"].nunique(),
        p,
        chosen,
    )
    return out


# --------------------------------------------------------------------------------------------
# Indicators
# --------------------------------------------------------------------------------------------

_INDICATOR_FORMULAS: Final = {
    "turnout": "voters / registered",
    "abstention": "1 - turnout",
    "abstainers": "registered - voters",
    "share_<choice>": (
        "votes_<choice> / expressed; votes_<choice> / voters when expressed is missing; "
        "votes_<choice> / (sum of the votes) when both are missing"
    ),
}


def _read_layout(
    t: _Table,
    chosen: str,
    columns: Mapping[str, str | Sequence[str]] | None,
    contest: str | None,
    by_party: bool,
    problems: list[str],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the table with the reader of its layout; refuse options the layout cannot honour."""
    p = t.path
    if chosen == "fr2024":
        long, info = _fr2024(t, problems)
    elif chosen == "fr2017":
        long, info = _fr2017(t, problems)
    elif chosen == "us_long":
        long, info = _us_long(t, columns, contest, problems, by_party=by_party)
    else:
        long, info = _wide(t, chosen, columns, contest, problems)
    if by_party and chosen != "us_long":
        msg = f"{kw('by_party', True, cli='')} reads long files (one row per candidate) only"
        raise InputError(msg, path=str(p))
    if contest is not None and info["contest"] is None:
        msg = (
            f"results file {p} ({chosen} layout) has no contests to choose from (no office "
            f"column, no contest prefix): leave out {kw('contest', contest)}"
        )
        raise InputError(msg, path=str(p))
    return long, info


def _check_long(results: pd.DataFrame) -> None:
    missing = [c for c in RESULT_COLUMNS if c not in results.columns and c != "share"]
    if missing:
        msg = (
            "not a results table (see read_results): missing column(s) "
            f"{', '.join(map(repr, missing))}"
        )
        raise InputError(msg)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    out[~np.isfinite(out)] = np.nan
    return out


def _choice_slugs(labels: Iterable[str]) -> list[str]:
    """Column-name slugs of the choice labels; a clash gets ``_2``, ``_3``..."""
    slugs: list[str] = []
    seen: dict[str, int] = {}
    for lab in labels:
        base = slugify(lab)
        slug = base
        while slug in seen:
            seen[base] += 1
            slug = f"{base}_{seen[base]}"
        seen.setdefault(slug, 1)
        if slug != base:
            logger.warning(
                "choice %r and another share the column name %r: using %r", lab, base, slug
            )
        slugs.append(slug)
    return slugs


def _count_indicators(reg: np.ndarray, voters: np.ndarray) -> dict[str, np.ndarray]:
    turnout = _safe_div(voters, reg)
    return {
        "registered": reg,
        "voters": voters,
        "turnout": turnout,
        "abstention": 1.0 - turnout,
        "abstainers": reg - voters,
    }


def _published_shares(results: pd.DataFrame) -> bool:
    return results.attrs.get("values") == "shares" or (
        "share" in results.columns and bool(results["share"].notna().any())
    )


def indicators(results: pd.DataFrame) -> pd.DataFrame:
    """Compute the indicators of each precinct from a long results table.

    Parameters
    ----------
    results
        The output of :func:`read_results` (not modified).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``precinct_key`` (file order), with ``registered``, ``voters``,
        ``turnout = voters / registered``, ``abstention = 1 - turnout``,
        ``abstainers = registered - voters``, ``blank``, ``null``, ``expressed``, then
        ``votes_<choice>`` and ``share_<choice>`` for every choice (names from
        :func:`slugify`; a clash gets ``_2``, ``_3``...). The share is
        ``votes / expressed``; where ``expressed`` is missing it is ``votes / voters`` (a
        share of all ballots, blank and null included, so lower), and where both are missing
        ``votes / sum of the votes``. A file of shares (``attrs["values"] == "shares"``) gives
        its published shares and no ``votes_<choice>`` column at all. A choice not on the
        ballot in a precinct has NaN votes and share; a zero denominator gives NaN.
        ``attrs``: ``choices`` (slug -> label), ``choice_parties`` (slug -> parties),
        ``share_basis`` (number of precincts per denominator), ``formulas``, ``values`` and
        the results' ``layout``, ``source``, ``election``, ``contest``.

    Raises
    ------
    InputError
        ``results`` is not a long results table.
    """
    _check_long(results)
    keys = results["precinct_key"].astype(str)
    order = pd.unique(keys)
    per = results[list(COUNT_FIELDS)].groupby(keys.to_numpy(), sort=False).first()
    per = per.reindex(order)
    labels = pd.unique(results["choice"].astype(str))
    shares_given = _published_shares(results)
    v = _choice_matrix(results, keys, order, labels, shares_given)
    slugs = _choice_slugs(labels)
    reg = per["registered"].to_numpy(dtype=float)
    voters = per["voters"].to_numpy(dtype=float)
    expressed = per["expressed"].to_numpy(dtype=float)
    data = _count_indicators(reg, voters) | {
        "blank": per["blank"].to_numpy(dtype=float),
        "null": per["null"].to_numpy(dtype=float),
        "expressed": expressed,
    }
    formulas = dict(_INDICATOR_FORMULAS)
    if shares_given:
        shares = v
        basis = {"published": len(order)}
        formulas["share_<choice>"] = "the share the file gives (percent / 100)"
    else:
        data |= {f"votes_{slug}": v[:, j] for j, slug in enumerate(slugs)}
        shares, basis = _count_shares(v, voters, expressed)
    for j, slug in enumerate(slugs):
        data[f"share_{slug}"] = shares[:, j]
    out = pd.DataFrame(data, index=pd.Index(order.astype(str), name="precinct_key", dtype=str))
    parties = results.attrs.get("parties", {})
    out.attrs = {
        "choices": dict(zip(slugs, map(str, labels), strict=True)),
        "choice_parties": {
            s: list(parties.get(str(lab), [])) for s, lab in zip(slugs, labels, strict=True)
        },
        "share_basis": basis,
        "formulas": formulas,
        "values": "shares" if shares_given else "counts",
    } | {
        k: results.attrs[k]
        for k in ("layout", "source", "election", "contest")
        if k in results.attrs
    }
    return out


#: What ``pd.unique`` returns.
_Unique = np.ndarray | pd.api.extensions.ExtensionArray


def _choice_matrix(
    results: pd.DataFrame, keys: pd.Series, order: _Unique, labels: _Unique, shares_given: bool,
) -> np.ndarray:
    """Votes (or published shares) per precinct (rows, ``order``) and choice (``labels``)."""
    table = (
        results.assign(_k=keys.to_numpy(), _c=results["choice"].astype(str).to_numpy())
        .groupby(["_k", "_c"], sort=False)["share" if shares_given else "votes"]
        .sum(min_count=1)
        .unstack("_c")
        .reindex(index=order, columns=labels)
    )
    return table.to_numpy(dtype=float)


def _count_shares(
    v: np.ndarray, voters: np.ndarray, expressed: np.ndarray
) -> tuple[np.ndarray, dict[str, int]]:
    """Shares of vote counts ``v`` and how many precincts used each denominator.

    The denominator is ``expressed``, else ``voters``, else the sum of the row's votes.
    """
    with np.errstate(invalid="ignore"):
        total = np.where(np.isnan(v).all(axis=1), np.nan, np.nansum(v, axis=1))
    use_exp = np.isfinite(expressed) & (expressed > 0)
    use_vot = ~use_exp & np.isfinite(voters) & (voters > 0)
    use_sum = ~use_exp & ~use_vot
    denom = np.where(use_exp, expressed, np.where(use_vot, voters, total))
    shares = _safe_div(v, denom[:, None])
    basis = {
        "expressed": int(use_exp.sum()),
        "voters": int(use_vot.sum()),
        "sum_of_votes": int(use_sum.sum()),
    }
    if basis["voters"] or basis["sum_of_votes"]:
        logger.info("shares computed on: %s", basis)
    return shares, basis


def _as_indicators(frame: pd.DataFrame) -> pd.DataFrame:
    return indicators(frame) if "choice" in frame.columns and "votes" in frame.columns else frame


def change(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Return ``b - a`` for every indicator the two elections (or rounds) share.

    Parameters
    ----------
    a, b
        Indicators of the earlier (``a``) and later (``b``) election: outputs of
        :func:`indicators` or :func:`join_results`, or long results tables (their indicators
        are computed). They must cover the same precincts (same index).

    Returns
    -------
    pandas.DataFrame
        Same index as ``b``, one ``<column>_change`` per numeric column present in both
        (``turnout_change``, ``abstainers_change``, ``share_rolland_change``...; choices on only
        one side are left out and listed in ``attrs["only_in_a"]`` / ``attrs["only_in_b"]``).
        ``attrs["formulas"]`` holds ``<column>_change = <column>(b) - <column>(a)``.

    Raises
    ------
    InputError
        The two tables do not cover the same precincts.
    """
    ia, ib = _as_indicators(a), _as_indicators(b)
    ka = ia.index.astype(str)
    kb = ib.index.astype(str)
    if set(ka) != set(kb):
        only_a = sorted(set(ka) - set(kb))
        only_b = sorted(set(kb) - set(ka))
        msg = "change() needs the same precincts in both elections"
        raise InputError(
            msg,
            [f"only in the first: {x!r}" for x in only_a]
            + [f"only in the second: {x!r}" for x in only_b],
        )
    base = [
        "registered",
        "voters",
        "turnout",
        "abstention",
        "abstainers",
        "blank",
        "null",
        "expressed",
    ]
    cols_a = {c for c in ia.columns if pd.api.types.is_numeric_dtype(ia[c])}
    cols_b = [c for c in ib.columns if pd.api.types.is_numeric_dtype(ib[c])]
    common = [
        c for c in cols_b if c in cols_a and (c in base or c.startswith(("share_", "votes_")))
    ]
    ra = ia.set_axis(ka)
    rb = ib.set_axis(kb)
    diff = rb[common].to_numpy(dtype=float) - ra.loc[kb, common].to_numpy(dtype=float)
    out = pd.DataFrame(diff, index=ib.index, columns=[f"{c}_change" for c in common])
    choices_a = {c for c in cols_a if c.startswith("share_")}
    choices_b = {c for c in cols_b if c.startswith("share_")}
    out.attrs = {
        "formulas": {f"{c}_change": f"{c}(b) - {c}(a)" for c in common},
        "only_in_a": sorted(choices_a - choices_b),
        "only_in_b": sorted(choices_b - choices_a),
        "elections": [ia.attrs.get("election"), ib.attrs.get("election")],
    }
    return out


# --------------------------------------------------------------------------------------------
# Joining results to precincts
# --------------------------------------------------------------------------------------------


def _precinct_ids(precincts: pd.DataFrame) -> pd.Series:
    if schema.PRECINCT_ID in precincts.columns and precincts.index.name != schema.PRECINCT_ID:
        return series_to_str(precincts[schema.PRECINCT_ID].reset_index(drop=True))
    return series_to_str(pd.Series(precincts.index, dtype=object))


def _sep(ids: pd.Series) -> pd.Series:
    return ids.astype(str).str.strip().str.upper().str.replace(r"[\s\-./]+", "_", regex=True)


def _strip_zeros(ids: pd.Series) -> pd.Series:
    return ids.str.replace(r"\d+", lambda m: m.group(0).lstrip("0") or "0", regex=True)


def _split_prefix(ids: pd.Series) -> tuple[pd.Series, pd.Series]:
    parts = ids.str.extract(_COMMUNE_PREFIX)
    return parts[0], parts[1]


def _match_keys(
    left: pd.Series, right: pd.Series, commune: str | int | None, sides: tuple[str, str]
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Match two id series after normalisation (see :func:`join_results`).

    Returns the position in ``right`` of each ``left`` id (NaN: none), the ``right`` ids of
    other communes, and the commune chosen.
    """
    p_norm, r_norm = _sep(left), _sep(right)
    p_pre, p_rest = _split_prefix(p_norm)
    r_pre, r_rest = _split_prefix(r_norm)
    p_prefixed = bool(p_pre.notna().all()) and len(p_pre) > 0
    r_prefixed = bool(r_pre.notna().all()) and len(r_pre) > 0
    wanted = str(commune).strip().upper().zfill(5) if commune is not None else None
    other = np.zeros(len(right), dtype=bool)
    chosen: str | None = wanted
    if r_prefixed and not p_prefixed:
        communes = list(pd.unique(r_pre))
        if wanted is None:
            if len(communes) > 1:
                counts = r_pre.value_counts()
                msg = (
                    f"the {sides[1]} cover {len(communes)} communes and the {sides[0]} ids "
                    f"have no commune prefix: give {kw('commune')} (the INSEE code of the "
                    f"{sides[0]}s' commune)"
                )
                raise InputError(msg, [f"{c}: {n} bureaux" for c, n in counts.head(10).items()])
            chosen = communes[0]
        other = (r_pre != chosen).to_numpy()
        r_norm = r_rest.where(~other, r_norm)
    elif p_prefixed and not r_prefixed:
        communes = list(pd.unique(p_pre))
        if wanted is None and len(communes) > 1:
            msg = (
                f"the {sides[0]} ids carry {len(communes)} commune prefixes but the {sides[1]} "
                f"keys have none: give {kw('commune')} or prefix the {sides[1]} keys"
            )
            raise InputError(msg)
        chosen = wanted or communes[0]
        mine = (p_pre == chosen).to_numpy()
        p_norm = p_rest.where(mine, p_norm)
    elif wanted is not None and r_prefixed:
        other = (r_pre != wanted).to_numpy()
    p_can, r_can = _strip_zeros(p_norm), _strip_zeros(r_norm)
    for side, can, raw in ((sides[0], p_can, left), (sides[1], r_can, right)):
        dup = can.duplicated(keep=False).to_numpy()
        if side == sides[1]:
            dup = dup & ~other
        if dup.any():
            groups = raw[dup].groupby(can[dup].to_numpy(), sort=True)
            msg = f"{side} ids that are the same after normalisation (zero padding, case)"
            raise InputError(msg, [", ".join(map(repr, g)) for _, g in groups])
    lookup = pd.Series(np.arange(len(right)), index=r_can.to_numpy())[~other]
    return lookup.reindex(p_can.to_numpy()).to_numpy(dtype=float), other, chosen


def join_results(
    precincts: gpd.GeoDataFrame,
    results: pd.DataFrame,
    *,
    commune: str | int | None = None,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Attach the indicators of each precinct to the precinct polygons.

    Ids are compared after normalisation on both sides: trimmed, upper-cased, separators
    (space ``-`` ``.`` ``/``) read as ``_`` and leading zeros of every number ignored
    (``101`` = ``0101``). When one side carries a commune prefix (``44109_0101``) and the other
    does not (``0101``), the prefix is dropped for the commune ``commune`` or, when not given,
    for the only commune present.

    Parameters
    ----------
    precincts
        Precinct polygons indexed by ``precinct_id`` (:func:`knockin_geo.io.read_precincts`);
        not modified.
    results
        A long results table (:func:`read_results`) or indicators (:func:`indicators`).
    commune
        INSEE code of the commune of the precincts (``"44109"``), needed when the results
        cover several communes and the precinct ids have no prefix.

    Returns
    -------
    tuple of (geopandas.GeoDataFrame, dict)
        A copy of ``precincts`` (same rows, order and index) with the indicator columns
        (NaN for precincts without results) and ``results_key`` (the matched results key, or
        missing); and the report ``{"matched": n, "unmatched_precincts": [...],
        "unmatched_results": [...], "other_communes": n, "commune": code or None}``. Results of
        other communes are counted in ``other_communes`` (and logged), not listed. The
        report is also in ``attrs["join_report"]``; the indicators' ``attrs`` (``choices``,
        ``formulas``...) are carried over.

    Raises
    ------
    InputError
        The results cover several communes and ``commune`` was not given; two ids on one side
        are the same after normalisation.
    """
    ind = _as_indicators(results)
    pid = _precinct_ids(precincts)
    rkey = pd.Series(ind.index.astype(str), dtype=object)
    pos, other, chosen = _match_keys(pid, rkey, commune, ("precinct", "results"))
    matched = ~np.isnan(pos)
    src = pos[matched].astype(np.int64)
    used = np.zeros(len(rkey), dtype=bool)
    used[src] = True

    out = precincts.copy()
    clash = [c for c in ind.columns if c in out.columns]
    if clash:
        logger.warning("join_results replaces the precinct columns %s", ", ".join(clash))
        out = out.drop(columns=clash)
    values = ind.reset_index(drop=True)
    for c in ind.columns:
        col = np.full(len(out), np.nan)
        if pd.api.types.is_numeric_dtype(values[c]):
            col[matched] = values[c].to_numpy(dtype=float)[src]
            out[c] = col
    key_col = pd.array([pd.NA] * len(out), dtype="string")
    key_col[matched] = rkey.to_numpy()[src].astype(str)
    out["results_key"] = key_col
    report: dict[str, Any] = {
        "matched": int(matched.sum()),
        "unmatched_precincts": [str(x) for x in pid.to_numpy()[~matched]],
        "unmatched_results": [str(x) for x in rkey.to_numpy()[~used & ~other]],
        "other_communes": int(other.sum()),
        "commune": chosen,
    }
    _log_unmatched(report)
    formulas = dict(precincts.attrs.get("formulas", {})) | dict(ind.attrs.get("formulas", {}))
    out.attrs = (
        dict(precincts.attrs) | dict(ind.attrs) | {"formulas": formulas, "join_report": report}
    )
    logger.info("results join: %d of %d precincts matched", report["matched"], len(out))
    return out, report


def _log_unmatched(report: Mapping[str, Any]) -> None:
    """Log the precincts and results rows a join left unmatched, and other communes' bureaux."""
    if report["unmatched_precincts"] or report["unmatched_results"]:
        logger.warning(
            "results join: %d matched, %d precinct(s) without results (%s), %d results row(s) "
            "without a precinct (%s)",
            report["matched"],
            len(report["unmatched_precincts"]),
            ", ".join(report["unmatched_precincts"][:10]),
            len(report["unmatched_results"]),
            ", ".join(report["unmatched_results"][:10]),
        )
    if report["other_communes"]:
        logger.info(
            "results join: %d bureaux of other communes than %s left aside",
            report["other_communes"],
            report["commune"],
        )


def read_registered(
    path: PathLike,
    *,
    columns: Mapping[str, str] | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> pd.DataFrame:
    """Read the registered voters per precinct (the counts of the *liste électorale*).

    Parameters
    ----------
    path
        A delimited file with a precinct id column (the names :func:`read_results` knows:
        ``code_bv``, ``precinct``...), a registered-voters column (``inscrits``,
        ``registered``...) and optionally a voters column (``votants``, ``ballots cast``...).
    columns
        Role -> column name (``precinct``, ``registered``, ``voters``), overriding detection.
    encoding, delimiter
        As in :func:`read_results`.

    Returns
    -------
    pandas.DataFrame
        Indexed by the precinct id as found (str), with ``registered`` and ``voters`` (float,
        NaN where missing). ``attrs["source"]`` is the file.

    Raises
    ------
    InputError
        Missing file, no id or registered column, bad or negative numbers, duplicate ids.
    """
    p = existing_file(path, "registered voters")
    t, _ = _read_table(p, encoding, delimiter)
    roles, _ = _resolve_roles(t, columns, ("precinct", "registered", "voters"))
    for role in ("precinct", "registered"):
        if role not in roles:
            msg = (
                f"registered voters file {p} has no {role} column; the columns are: "
                f"{list_columns(t.header)}. It needs a precinct id and the registered voters "
                "(inscrits)"
            )
            raise InputError(msg, path=str(p))
    problems: list[str] = []
    keys = _keys(t.col(roles["precinct"]), t.label(roles["precinct"]), t.rows, problems)
    counts, _ = _counts(t, roles, problems, decimal_comma=t.delimiter != ",")
    _check_duplicate_keys(keys, t.rows, t.label(roles["precinct"]), problems)
    over = counts["voters"] > counts["registered"]
    problems += [
        f"row {r}: {_fmt(v)} voters but only {_fmt(g)} registered"
        for r, v, g in zip(t.rows[over], counts["voters"][over], counts["registered"][over],
                           strict=True)
    ]
    if problems:
        msg = f"registered voters file {p}: {len(problems)} problem(s)"
        raise InputError(msg, problems, path=str(p))
    out = pd.DataFrame(
        {"registered": counts["registered"], "voters": counts["voters"]},
        index=pd.Index(keys.astype(str), name="precinct_key", dtype=str),
    )
    out.attrs = {"source": str(p)}
    return out


def add_registered(
    results: pd.DataFrame, registered: pd.DataFrame, *, commune: str | int | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Give the indicators the registered voters (and voters) of another file.

    For results published as percentages, which have no counts: with the registered voters,
    the mobilisation score can be computed (see :func:`score`); with the voters too, turnout,
    abstention and abstainers are exact. Ids are matched as in :func:`join_results`. Counts the
    results already have are kept (a different value in the file is logged).

    Parameters
    ----------
    results
        Indicators (:func:`indicators`) or a long results table; not modified.
    registered
        Output of :func:`read_registered`.
    commune
        As in :func:`join_results`.

    Returns
    -------
    tuple of (pandas.DataFrame, dict)
        The indicators with ``registered`` / ``voters`` filled and ``turnout``,
        ``abstention`` and ``abstainers`` recomputed; and the report ``{"source", "matched",
        "results_without_registered": [...], "registered_without_results": [...]}`` (also in
        ``attrs["registered_report"]``).
    """
    ind = _as_indicators(results)
    rkey = pd.Series(ind.index.astype(str), dtype=object)
    gkey = pd.Series(registered.index.astype(str), dtype=object)
    pos, other, _ = _match_keys(rkey, gkey, commune, ("results", "registered voters"))
    matched = ~np.isnan(pos)
    src = pos[matched].astype(np.int64)
    filled = {}
    for field in ("registered", "voters"):
        have = ind[field].to_numpy(dtype=float)
        given = np.full(len(ind), np.nan)
        given[matched] = registered[field].to_numpy(dtype=float)[src]
        differ = np.isfinite(have) & np.isfinite(given) & (have != given)
        if differ.any():
            logger.warning(
                "%d precinct(s) have %s in the results and a different count in %s: the "
                "results' are kept", int(differ.sum()), field, registered.attrs.get("source"))
        filled[field] = np.where(np.isfinite(have), have, given)
    out = ind.copy()
    for c, v in _count_indicators(filled["registered"], filled["voters"]).items():
        out[c] = v
    used = np.zeros(len(gkey), dtype=bool)
    used[src] = True
    report: dict[str, Any] = {
        "source": registered.attrs.get("source"),
        "matched": int(matched.sum()),
        "results_without_registered": [str(x) for x in rkey.to_numpy()[~matched]],
        "registered_without_results": [str(x) for x in gkey.to_numpy()[~used & ~other]],
    }
    if report["results_without_registered"]:
        logger.warning(
            "%d results precinct(s) have no registered voters in %s: %s",
            len(report["results_without_registered"]),
            report["source"],
            ", ".join(report["results_without_registered"][:10]),
        )
    out.attrs = dict(ind.attrs) | {"registered_report": report}
    return out, report


# --------------------------------------------------------------------------------------------
# Safe formulas

# --------------------------------------------------------------------------------------------

_BINOPS: Final[dict[type, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
}
_OP_SYMBOLS: Final = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.Not: "not",
    ast.Invert: "~",
}
_ARITY: Final = {
    "min": (2, None),
    "max": (2, None),
    "abs": (1, 1),
    "sqrt": (1, 1),
    "log": (1, 1),
    "clip": (3, 3),
}


def _reject(formula: str, node: ast.AST, what: str | None = None) -> InputError:
    seg = ast.get_source_segment(formula, node) or type(node).__name__
    if what is None:
        kind = {
            ast.Attribute: "attribute access",
            ast.Subscript: "subscript",
            ast.Lambda: "lambda",
            ast.Call: "call",
            ast.Compare: "comparison",
            ast.BoolOp: "boolean operator",
            ast.IfExp: "conditional expression",
            ast.ListComp: "comprehension",
            ast.SetComp: "comprehension",
            ast.DictComp: "comprehension",
            ast.GeneratorExp: "comprehension",
            ast.NamedExpr: "assignment",
            ast.Starred: "starred expression",
        }.get(type(node), type(node).__name__)
        what = f"{kind} {seg!r}"
    col = getattr(node, "col_offset", None)
    where = f" at character {col + 1}" if col is not None else ""
    msg = (
        f"{kw('formula', formula)}: {what}{where} is not allowed; a formula may use numbers, "
        f"column names, + - * / **, unary minus, parentheses and the functions "
        f"{', '.join(FORMULA_FUNCTIONS)}"
    )
    return InputError(msg)


def check_formula(formula: str) -> tuple[ast.Expression, list[str]]:
    """Parse a user formula and check that it only uses the allowed syntax.

    Parameters
    ----------
    formula
        An arithmetic expression over column names, e.g.
        ``"abstainers * share_rolland"`` or ``"clip(turnout - 0.5, 0, 1) * sqrt(registered)"``.

    Returns
    -------
    tuple of (ast.Expression, list of str)
        The checked tree and the column names it uses (in order of first use).

    Raises
    ------
    InputError
        Syntax error, or anything other than numbers, names, ``+ - * / **``, unary ``-``/``+``,
        parentheses and calls of :data:`FORMULA_FUNCTIONS` (attributes, subscripts, strings,
        lambdas, comprehensions, comparisons, keyword arguments, other calls...): the message
        names the offending token.
    """
    tree = _parse_formula(formula)
    names: list[str] = []
    try:
        _check_node(tree, formula.strip(), names)
    except RecursionError as exc:
        msg = f"{kw('formula', formula)} is nested too deeply"
        raise InputError(msg) from exc
    return tree, names


def _parse_formula(formula: str) -> ast.Expression:
    """Parse a formula of bounded length; a syntax error names the character."""
    if not isinstance(formula, str) or not formula.strip():
        msg = f"the formula is empty ({kw('formula')})"
        raise InputError(msg)
    if len(formula) > _MAX_FORMULA_CHARS:
        msg = (
            f"the formula ({kw('formula')}) is too long ({len(formula)} characters, at most "
            f"{_MAX_FORMULA_CHARS})"
        )
        raise InputError(msg)
    try:
        return ast.parse(formula.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        detail = getattr(exc, "msg", str(exc))
        offset = getattr(exc, "offset", None)
        where = f" at character {offset}" if offset else ""
        msg = f"{kw('formula', formula)} is not a valid expression: {detail}{where}"
        raise InputError(msg) from exc


def _check_node(node: ast.AST, text: str, names: list[str]) -> None:
    """Refuse any node but numbers, names, allowed operators and calls; collect the names."""
    if isinstance(node, ast.Expression):
        _check_node(node.body, text, names)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise _reject(text, node, f"constant {node.value!r}")
    elif isinstance(node, ast.Name):
        if node.id not in names:
            names.append(node.id)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise _reject(text, node, f"operator {_OP_SYMBOLS.get(type(node.op), '?')!r}")
        _check_node(node.left, text, names)
        _check_node(node.right, text, names)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise _reject(text, node, f"operator {_OP_SYMBOLS.get(type(node.op), '?')!r}")
        _check_node(node.operand, text, names)
    elif isinstance(node, ast.Call):
        _check_call(node, text)
        for arg in node.args:
            _check_node(arg, text, names)
    else:
        raise _reject(text, node)


def _check_call(node: ast.Call, text: str) -> None:
    """Refuse a call of anything but :data:`FORMULA_FUNCTIONS` with their number of arguments."""
    if not isinstance(node.func, ast.Name):
        raise _reject(text, node.func, f"call of {ast.get_source_segment(text, node.func)!r}")
    fname = node.func.id
    if fname not in FORMULA_FUNCTIONS:
        raise _reject(text, node.func, f"function {fname!r}")
    if node.keywords:
        raise _reject(text, node, f"keyword argument in {fname}()")
    lo, hi = _ARITY[fname]
    if len(node.args) < lo or (hi is not None and len(node.args) > hi):
        want = f"{lo}" if lo == hi else f"at least {lo}"
        raise _reject(text, node, f"{fname}() with {len(node.args)} argument(s) (takes {want})")


def evaluate_formula(frame: pd.DataFrame, formula: str) -> np.ndarray:
    """Evaluate a checked formula on the columns of ``frame``, vectorised.

    Parameters
    ----------
    frame
        A table with the numeric columns the formula names (not modified).
    formula
        See :func:`check_formula`.

    Returns
    -------
    numpy.ndarray
        One float per row; NaN where an input is missing or the result is not finite
        (division by zero, log of a non-positive number).

    Raises
    ------
    InputError
        Bad formula (see :func:`check_formula`), unknown or non-numeric column.
    """
    tree, names = check_formula(formula)
    unknown = [n for n in names if n not in frame.columns]
    if unknown:
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        msg = f"{kw('formula', formula)} names unknown column(s)"
        raise InputError(
            msg,
            [f"{n!r}{close_matches(n, [str(c) for c in numeric])}" for n in unknown]
            + [f"available: {', '.join(map(str, numeric))}"],
        )
    cols: dict[str, np.ndarray] = {}
    for n in names:
        try:
            cols[n] = pd.to_numeric(frame[n]).to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            msg = f"{kw('formula', formula)}: column {n!r} is not numeric"
            raise InputError(msg) from exc
    n_rows = len(frame)
    funcs: dict[str, Callable[..., np.ndarray]] = {
        "min": lambda *a: np.minimum.reduce(np.broadcast_arrays(*a)),
        "max": lambda *a: np.maximum.reduce(np.broadcast_arrays(*a)),
        "abs": np.abs,
        "sqrt": np.sqrt,
        "log": np.log,
        "clip": np.clip,
    }

    def ev(node: ast.AST) -> np.ndarray:
        if isinstance(node, ast.Constant):
            return np.asarray(float(cast(float, node.value)))  # a number: check_formula
        if isinstance(node, ast.Name):
            return cols[node.id]
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return funcs[node.func.id](*(ev(a) for a in node.args))
        raise AssertionError(type(node))  # check_formula let nothing else through

    with np.errstate(all="ignore"):
        out = np.broadcast_to(ev(tree.body), (n_rows,)).astype(float)
    out[~np.isfinite(out)] = np.nan
    return out


# --------------------------------------------------------------------------------------------
# Scores and universe
# --------------------------------------------------------------------------------------------


def _choice_slug(frame: pd.DataFrame, ref: str, param: str = "support") -> list[str]:
    """Resolve a choice reference (label, slug, ``share_x``, ``votes_x`` or a party) to slugs.

    A party name stands for every choice of that party (long files with a party column).
    """
    labels = frame.attrs.get("choices", {})
    text = str(ref)
    for cand in (text, slugify(text)):
        for prefix in ("share_", "votes_"):
            if cand.startswith(prefix) and f"share_{cand[len(prefix) :]}" in frame.columns:
                return [cand[len(prefix) :]]
        if f"share_{cand}" in frame.columns:
            return [cand]
    by_label = {slugify(lab): slug for slug, lab in labels.items()}
    if slugify(text) in by_label:
        return [by_label[slugify(text)]]
    parties = frame.attrs.get("choice_parties", {})
    of_party = [
        s
        for s, ps in parties.items()
        if f"share_{s}" in frame.columns and any(_canon(p) == _canon(text) for p in ps)
    ]
    if of_party:
        return of_party
    available = [c[len("share_") :] for c in frame.columns if str(c).startswith("share_")]
    party_names = sorted({p for ps in parties.values() for p in ps})
    msg = (
        f"unknown choice {ref!r} in {kw(param)}"
        f"{close_matches(slugify(text), available + party_names)}"
    )
    raise InputError(
        msg,
        [f"choices: {', '.join(available) or '(none)'}"]
        + ([f"parties: {', '.join(party_names)}"] if party_names else []),
    )


def _needs(frame: pd.DataFrame, cols: Iterable[str], what: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        msg = (
            f"{what} needs the indicator column(s) {', '.join(map(repr, missing))}: join the "
            "results first (join_results)"
        )
        raise InputError(msg)


def _known(frame: pd.DataFrame, col: str) -> bool:
    """Whether some precinct has a value in ``col``."""
    return col in frame.columns and bool(np.isfinite(frame[col].to_numpy(dtype=float)).any())


def _shares_note(frame: pd.DataFrame) -> str:
    return f" ({SHARES_NOTE})" if frame.attrs.get("values") == "shares" else ""


def _share_example(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns if str(c).startswith("share_")]
    return cols[0] if cols else "share_a"


def _check_score_args(k: str, given: Mapping[str, Any], by_voters: bool) -> None:
    need = {"mobilisation": None, "persuasion": None, "formula": "formula"}[k]  # support: later
    allowed = {"mobilisation": {"support"}, "persuasion": {"choices"}, "formula": {"formula"}}[k]
    extra = [kw(a) for a, v in given.items() if v is not None and a not in allowed]
    if by_voters and k != "persuasion":
        extra.append(kw("by_voters", True, cli=""))
    if extra:
        msg = f"{kw('kind', k)} does not take {', '.join(extra)}"
        raise InputError(msg)
    if need is not None and given[need] is None:
        msg = f"{kw('kind', k)} needs {kw(need)}"
        raise InputError(msg)


def _summed_share(frame: pd.DataFrame, refs: Sequence[str], param: str) -> tuple[np.ndarray, str]:
    """Sum the shares of the choices ``refs`` name (NaN where all are missing); and its text."""
    slugs = list(dict.fromkeys(s for r in refs for s in _choice_slug(frame, r, param)))
    shares = frame[[f"share_{s}" for s in slugs]].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        total = np.where(np.isnan(shares).all(axis=1), np.nan, np.nansum(shares, axis=1))
    terms = " + ".join(f"share_{s}" for s in slugs)
    return total, f"({terms})" if len(slugs) > 1 else terms


def _mobilisation(
    frame: pd.DataFrame, support: str | Sequence[str] | None
) -> tuple[np.ndarray, str]:
    _needs(frame, ["abstainers"], "the mobilisation score")
    if not (_known(frame, "abstainers") or _known(frame, "registered")):
        _no_abstainers(frame)
    if support is None:
        msg = (
            f"{kw('kind', 'mobilisation')} needs {kw('support')}: the choice(s) whose share "
            "measures support"
        )
        raise InputError(msg)
    refs = [support] if isinstance(support, str) else list(support)
    if not refs:
        msg = f"{kw('support')} names no choice"
        raise InputError(msg)
    share, terms = _summed_share(frame, refs, "support")
    if _known(frame, "abstainers"):
        return frame["abstainers"].to_numpy(dtype=float) * share, f"abstainers * {terms}"
    text = (
        f"registered * {terms} (turnout unknown: taken as the same in every precinct, "
        f"which ranks the precincts as abstainers * {terms} would)"
    )
    return frame["registered"].to_numpy(dtype=float) * share, text


def _no_abstainers(frame: pd.DataFrame) -> None:
    msg = (
        f"{kw('kind', 'mobilisation')} needs the abstainers (registered - voters), and the "
        f"results have no registered voters column{_shares_note(frame)}. Use "
        f"{kw('kind', 'persuasion')}, or {kw('kind', 'formula')} with a "
        f"{kw('formula', _share_example(frame))} over the shares, or give the registered "
        f"voters per precinct with {kw('registered', python='add_registered()')}"
    )
    raise InputError(msg)


def _persuasion(
    frame: pd.DataFrame, choices: Sequence[str] | None, by_voters: bool
) -> tuple[np.ndarray, str]:
    if choices is not None:
        if len(list(choices)) != 2:
            msg = f"{kw('choices')} must name exactly two choices, not {list(choices)!r}"
            raise InputError(msg)
        a, ta = _summed_share(frame, [choices[0]], "choices")
        b, tb = _summed_share(frame, [choices[1]], "choices")
        if ta == tb:
            msg = f"{kw('choices')} names the same choice twice ({list(choices)!r})"
            raise InputError(msg)
        with np.errstate(invalid="ignore"):
            values = 1.0 - np.abs(a - b)
        text = f"1 - abs({ta} - {tb})"
    else:
        cols = [c for c in frame.columns if str(c).startswith("share_")]
        if len(cols) < 2:
            msg = "the persuasion score needs at least two share_ columns: join results first"
            raise InputError(msg)
        s = frame[cols].to_numpy(dtype=float)
        top = -np.sort(-np.where(np.isnan(s), -np.inf, s), axis=1)[:, :2]
        with np.errstate(invalid="ignore"):
            values = 1.0 - (top[:, 0] - top[:, 1])
        text = "1 - abs(share_first - share_second) (the two largest shares of the precinct)"
    values[~np.isfinite(values)] = np.nan
    if not by_voters:
        return values, text
    _needs(frame, ["voters"], "by_voters")
    if not _known(frame, "voters"):
        alt = (
            f", or weight by the registered voters with {kw('kind', 'formula')} and a "
            f"{kw('formula', '(1 - abs(share_a - share_b)) * registered')}"
            if _known(frame, "registered")
            else ""
        )
        msg = (
            f"{kw('by_voters', True, cli='')} needs the voters (ballots cast), and the results "
            f"have none{_shares_note(frame)}: leave it out{alt}"
        )
        raise InputError(msg)
    values = values * frame["voters"].to_numpy(dtype=float)
    return values, f"({text}) * voters" if choices is not None else f"{text} * voters"


def _formula_score(frame: pd.DataFrame, formula: str) -> tuple[np.ndarray, str]:
    text = formula.strip()
    values = evaluate_formula(frame, text)
    _, names = check_formula(text)
    empty = [n for n in names if len(frame) and not _known(frame, n)]
    if empty:
        msg = (
            f"{kw('formula', text)} uses {', '.join(map(repr, empty))}, which no precinct "
            f"has{_shares_note(frame)}"
        )
        raise InputError(msg)
    return values, text


def _ranks(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """1 = highest; ties broken by id (ascending); NaN last without a rank (0)."""
    nan = np.isnan(values)
    id_order = np.argsort(ids.astype(str), kind="stable")
    id_rank = np.empty(len(ids), dtype=np.int64)
    id_rank[id_order] = np.arange(len(ids))
    order = np.lexsort((id_rank, -np.where(nan, 0.0, values), nan))
    ranks = np.zeros(len(values), dtype=np.int64)
    ranks[order] = np.arange(1, len(values) + 1)
    ranks[nan] = 0
    return ranks


def _score_kind(kind: str) -> str:
    """Return the score kind, lower case and spelt ``mobilisation``; refuse an unknown one."""
    k = str(kind).lower()
    if k not in SCORE_KINDS:
        msg = f"unknown score kind {kind!r} ({kw('kind')}){close_matches(k, SCORE_KINDS)}"
        raise InputError(msg, [f"kinds: {', '.join(SCORE_KINDS)}"])
    return "mobilisation" if k == "mobilization" else k


def _score_values(
    frame: pd.DataFrame, k: str, support: str | Sequence[str] | None,
    choices: Sequence[str] | None, formula: str | None, by_voters: bool,
) -> tuple[np.ndarray, str]:
    """Score every precinct by kind ``k``: the values and the formula text.

    Refused when no precinct gets a finite score.
    """
    if k == "mobilisation":
        values, text = _mobilisation(frame, support)
    elif k == "persuasion":
        values, text = _persuasion(frame, choices, by_voters)
    else:
        assert formula is not None
        values, text = _formula_score(frame, formula)
    if len(values) and not np.isfinite(values).any():
        what = kw("formula", text) if k == "formula" else f"{kw('kind', k)} ({text})"
        msg = (
            f"{what} gives no precinct a score: its inputs are missing everywhere, or it "
            "divides by zero or takes the log of a non-positive number"
        )
        raise InputError(msg)
    return values, text


def score(
    precincts_with_indicators: pd.DataFrame, kind: str, *,
    support: str | Sequence[str] | None = None, choices: Sequence[str] | None = None,
    formula: str | None = None, name: str | None = None, by_voters: bool = False,
) -> gpd.GeoDataFrame:
    """Score and rank the precincts.

    Kinds and formulas (also in ``attrs["formulas"]["score"]`` of the result, written out with
    the actual column names):

    * ``"mobilisation"`` (or ``"mobilization"``): ``abstainers * support_share``, where
      ``support_share = share_<s1> + share_<s2> + ...`` for the ``support`` choices (a share
      missing in a precinct counts as 0; all missing gives NaN). Pass the indicators of the
      *previous* election: they estimate how many abstainers lean your way.
    * ``"persuasion"``: ``1 - abs(share_A - share_B)``, the closeness of the race between the
      two ``choices`` or, by default, the two largest shares of each precinct; times
      ``voters`` when ``by_voters``.
    * ``"formula"``: a safe arithmetic ``formula`` over column names (see
      :func:`check_formula`).

    Parameters
    ----------
    precincts_with_indicators
        Output of :func:`join_results` (or :func:`indicators`); not modified.
    kind
        ``"mobilisation"``, ``"persuasion"`` or ``"formula"``.
    support
        Mobilisation: one choice or several (labels, slugs or ``share_`` columns).
    choices
        Persuasion: the two choices to compare (default: the top two of each precinct).
    formula
        Formula kind: the expression.
    name
        Also store the score in a column of this name (and its formula under this name).
    by_voters
        Persuasion: multiply the closeness by ``voters``.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with ``score`` (float, NaN where it cannot be computed) and ``rank`` (int,
        1 = highest, ties broken by ascending precinct id, 0 for NaN scores).
        ``attrs["formulas"]["score"]`` holds the formula text; ``attrs["score_kind"]`` the
        kind.

    Raises
    ------
    InputError
        Unknown kind, missing or unexpected argument, unknown choice or column, bad formula,
        a column the score needs that no precinct has (mobilisation on results in
        percentages without registered voters...), no precinct scored at all.
    """
    frame = precincts_with_indicators
    k = _score_kind(kind)
    _check_score_args(k, {"support": support, "choices": choices, "formula": formula}, by_voters)
    values, text = _score_values(frame, k, support, choices, formula, by_voters)

    out = frame.copy()
    if not isinstance(out, gpd.GeoDataFrame) and "geometry" in out.columns:
        out = gpd.GeoDataFrame(out, geometry="geometry")
    out["score"] = values
    ids = _precinct_ids(frame).to_numpy(dtype=str)
    out["rank"] = _ranks(values, ids)
    formulas = dict(frame.attrs.get("formulas", {}))
    formulas["score"] = text
    if name is not None:
        if name in ("score", "rank") or (name in frame.columns and name not in formulas):
            msg = f"{kw('name', name)} would overwrite an existing column"
            raise InputError(msg)
        out[name] = values
        formulas[name] = text
    out.attrs = dict(frame.attrs) | {"formulas": formulas, "score_kind": k, "score_name": name or k}
    n_ok = int(np.isfinite(values).sum())
    logger.info("score %s = %s: %d of %d precincts scored", name or k, text, n_ok, len(values))
    return out


def pick_universe(
    scored: pd.DataFrame,
    *,
    top: int | None = None,
    threshold: float | None = None,
    ids: Iterable[str] | None = None,
) -> list[str]:
    """Choose the precincts to canvass (the ``universe=`` of :func:`knockin_geo.plan.plan_turfs`).

    Exactly one of ``top``, ``threshold`` and ``ids`` is given.

    Parameters
    ----------
    scored
        Output of :func:`score` (for ``top`` and ``threshold``) or any precinct table (``ids``).
    top
        Keep the ``top`` best-ranked precincts.
    threshold
        Keep the precincts whose score is at least ``threshold``.
    ids
        Keep exactly these precinct ids.

    Returns
    -------
    list of str
        Precinct ids, best rank first (``top``/``threshold``) or in the given order (``ids``).
        Precincts with a NaN score are never picked by ``top`` or ``threshold``.

    Raises
    ------
    InputError
        Not exactly one criterion, ``top < 1``, no ``score`` column, unknown ids (listed).
    """
    chosen = [n for n, v in (("top", top), ("threshold", threshold), ("ids", ids)) if v is not None]
    if len(chosen) != 1:
        msg = (
            f"give exactly one of {kw('top')}, {kw('threshold')}, {kw('ids')} (got "
            f"{', '.join(kw(c) for c in chosen) or 'none'})"
        )
        raise InputError(msg)
    all_ids = _precinct_ids(scored)
    if ids is not None:
        wanted = [str(i).strip() for i in ([ids] if isinstance(ids, str) else ids)]
        known = set(all_ids)
        unknown = [i for i in wanted if i not in known]
        if unknown:
            msg = f"{len(unknown)} precinct id(s) of {kw('ids')} are not in the precincts"
            raise InputError(msg, [f"unknown precinct id {u!r}" for u in unknown])
        return list(dict.fromkeys(wanted))
    _needs(scored, ["score"], "pick_universe(top=/threshold=)")
    values = scored["score"].to_numpy(dtype=float)
    ranks = (
        scored["rank"].to_numpy(dtype=np.int64)
        if "rank" in scored.columns
        else _ranks(values, all_ids.to_numpy(dtype=str))
    )
    ok = np.isfinite(values)
    order = np.flatnonzero(ok)[np.argsort(ranks[ok], kind="stable")]
    if top is not None:
        if int(top) < 1:
            msg = f"{kw('top')} must be at least 1, not {top}"
            raise InputError(msg)
        if int(top) > len(order):
            logger.warning("top=%d but only %d precincts have a score", top, len(order))
        order = order[: int(top)]
    else:
        assert threshold is not None
        order = order[values[order] >= float(threshold)]
        if len(order) == 0:
            logger.warning("no precinct has a score >= %s", threshold)
    return [str(x) for x in all_ids.to_numpy()[order]]


# --------------------------------------------------------------------------------------------
# Voters per door
# --------------------------------------------------------------------------------------------


def _usable_doors(doors: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each door's precinct id (str), whether voters may be spread on it, and its households.

    Usable: a precinct id and, when there is a status, ``ok`` or ``assigned``. Households are
    rounded, 1 when missing, negative or not a number.
    """
    pid = doors[schema.PRECINCT_ID]
    has_pid = pid.notna().to_numpy()
    pid_str = series_to_str(pid.reset_index(drop=True)).to_numpy(dtype=object)
    has_pid = has_pid & (pid_str != "")
    if schema.STATUS in doors.columns:
        usable = doors[schema.STATUS].isin(_OK_STATUSES).to_numpy() & has_pid
    else:
        usable = has_pid
    if schema.HOUSEHOLDS in doors.columns:
        hh = pd.to_numeric(doors[schema.HOUSEHOLDS], errors="coerce").to_numpy(dtype=float)
        hh = np.where(np.isfinite(hh) & (hh >= 0), np.round(hh), 1.0).astype(np.int64)
    else:
        hh = np.ones(len(doors), dtype=np.int64)
    return pid_str, usable, hh


def spread_voters(doors: pd.DataFrame, precincts_with_indicators: pd.DataFrame) -> pd.Series:
    """Estimate the registered voters behind each door.

    Each precinct's ``registered`` is spread over its usable doors (status ``ok`` or
    ``assigned``, with a ``precinct_id``) in proportion to ``households`` (1 when the column is
    missing), and rounded by the largest-remainder method, so that the integers of a precinct
    sum exactly to its ``registered`` (rounded to an integer). Equal remainders go to the
    smallest ``address_id`` first.

    Parameters
    ----------
    doors
        Doors with ``precinct_id`` (see :func:`knockin_geo.validate.join_precincts`) and
        optionally ``status`` and ``households``; not modified.
    precincts_with_indicators
        Indexed by precinct id with a ``registered`` column (:func:`join_results`).

    Returns
    -------
    pandas.Series
        ``Int64``, same index as ``doors``, name ``registered_est``; ``<NA>`` for unusable
        doors and for doors of precincts without results. ``attrs["unplaced"]``: precinct id
        -> registered voters of precincts with results but no usable door (not spread);
        ``attrs["no_results"]``: precincts with doors but no results.

    Raises
    ------
    InputError
        ``doors`` has no ``precinct_id`` column or the precincts no ``registered`` column.
    """
    if schema.PRECINCT_ID not in doors.columns:
        msg = "spread_voters needs doors with a precinct_id column (join them to the precincts)"
        raise InputError(msg)
    _needs(precincts_with_indicators, ["registered"], "spread_voters")
    n = len(doors)
    pid_str, usable, hh = _usable_doors(doors)
    reg_by_pid = pd.Series(
        precincts_with_indicators["registered"].to_numpy(dtype=float),
        index=_precinct_ids(precincts_with_indicators).to_numpy(),
    )
    reg = np.where(usable, reg_by_pid.reindex(pid_str).to_numpy(dtype=float), np.nan)
    active = usable & np.isfinite(reg)
    out = pd.array(np.zeros(n, dtype=np.int64), dtype="Int64")
    out[~active] = pd.NA

    idx = np.flatnonzero(active)
    if len(idx):
        out[idx] = _largest_remainders(
            pid_str[idx], hh[idx], reg[idx], doors.index.to_numpy()[idx].astype(str)
        )

    known = set(reg_by_pid.index[np.isfinite(reg_by_pid.to_numpy())])
    with_doors = set(pid_str[usable])
    unplaced = {
        str(p): float(reg_by_pid[p]) for p in sorted(known - with_doors) if p in reg_by_pid.index
    }
    no_results = sorted(with_doors - known)
    if unplaced:
        logger.warning(
            "%d precinct(s) with results have no usable door: their registered voters are not "
            "spread (%s)",
            len(unplaced),
            ", ".join(list(unplaced)[:10]),
        )
    if no_results:
        logger.warning("%d precinct(s) with doors have no results", len(no_results))
    series = pd.Series(out, index=doors.index, name="registered_est")
    series.attrs = {"unplaced": unplaced, "no_results": no_results}
    return series


def _largest_remainders(
    pid: np.ndarray, hh: np.ndarray, reg: np.ndarray, ids: np.ndarray
) -> np.ndarray:
    """Share each precinct's registered voters among its doors by households, in whole voters.

    Largest remainders: every door gets the floor of its share; the voters left go one each to
    the doors with the largest remainders (ties by door id). A precinct whose doors all have 0
    households counts each door as 1.
    """
    groups, g = np.unique(pid, return_inverse=True)
    h = hh
    total_h = np.bincount(g, weights=h).astype(np.int64)
    r_int = np.round(reg).astype(np.int64)
    r_group = np.zeros(len(groups), dtype=np.int64)
    r_group[g] = r_int
    zero_h = total_h[g] == 0  # every door of the precinct has 0 households: count them as 1
    h = np.where(zero_h, 1, h)
    total_h = np.bincount(g, weights=h).astype(np.int64)
    num = r_int * h
    base = num // total_h[g]
    rem = num % total_h[g]
    short = r_group - np.bincount(g, weights=base, minlength=len(groups)).astype(np.int64)
    id_order = np.argsort(ids, kind="stable")
    id_rank = np.empty(len(ids), dtype=np.int64)
    id_rank[id_order] = np.arange(len(ids))
    order = np.lexsort((id_rank, -rem, g))
    sorted_g = g[order]
    first = np.searchsorted(sorted_g, sorted_g, side="left")
    within = np.arange(len(order)) - first
    extra = np.zeros(len(ids), dtype=np.int64)
    extra[order] = (within < short[sorted_g]).astype(np.int64)
    return base + extra


def count_voters(
    doors: pd.DataFrame, voter_file: pd.DataFrame, key: str = schema.ADDRESS_ID
) -> pd.Series:
    """Count the rows of a voter file at each door.

    Only the counts leave this function: names and other personal data of the voter file are
    not copied (GDPR).

    Parameters
    ----------
    doors
        Doors indexed by ``address_id``; not modified.
    voter_file
        One row per voter with a column ``key`` holding the door's id; not modified.
    key
        The column of ``voter_file`` naming the door.

    Returns
    -------
    pandas.Series
        ``int64``, same index as ``doors``, name ``voters``: voter rows per door (0 for none).
        ``attrs["unknown_keys"]``: sorted keys that match no door (also logged);
        ``attrs["missing_keys"]``: number of voter rows with an empty key.

    Raises
    ------
    InputError
        ``voter_file`` has no column ``key``.
    """
    if key not in voter_file.columns:
        names = [str(c) for c in voter_file.columns]
        msg = f"the voter file has no column {key!r}{close_matches(key, names)}"
        raise InputError(msg, [f"columns: {list_columns(names)}"])
    keys = series_to_str(voter_file[key].reset_index(drop=True))
    missing = int(keys.eq("").sum())
    keys = keys[keys.ne("")]
    counts = keys.value_counts()
    door_ids = pd.Index(series_to_str(pd.Series(doors.index, dtype=object)).to_numpy())
    unknown = sorted(set(counts.index) - set(door_ids))
    out = pd.Series(
        counts.reindex(door_ids).fillna(0).to_numpy(dtype=np.int64),
        index=doors.index,
        name="voters",
    )
    if unknown:
        logger.warning(
            "%d voter row(s) name %d door id(s) not in the doors: %s",
            int(counts.loc[unknown].sum()),
            len(unknown),
            ", ".join(unknown[:10]),
        )
    if missing:
        logger.warning("%d voter row(s) have an empty %r", missing, key)
    out.attrs = {"unknown_keys": unknown, "missing_keys": missing}
    return out


# --------------------------------------------------------------------------------------------
# Static choropleth
# --------------------------------------------------------------------------------------------

def _bound(v: float) -> str:
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:.1f}"
    return f"{v:.3f}"


def _polygon_path(geom: shapely.Geometry) -> Any:
    from matplotlib.path import Path as MplPath

    paths = []
    for poly in shapely.get_parts(geom):
        if shapely.get_type_id(poly) != 3 or poly.is_empty:
            continue
        for ring in (poly.exterior, *poly.interiors):
            paths.append(MplPath(np.asarray(ring.coords)[:, :2], closed=True))
    return MplPath.make_compound_path(*paths) if paths else None


def choropleth_png(
    scored: gpd.GeoDataFrame,
    column: str,
    path: PathLike,
    *,
    scheme: str = "quantiles",
    k: int = 5,
    title: str | None = None,
    cmap: str = "YlOrRd",
    dpi: int = 150,
) -> Path:
    """Draw a classed choropleth of one column to a PNG file.

    Parameters
    ----------
    scored
        Precinct polygons with the column (any CRS; drawn in a local metric CRS); not modified.
    column
        The numeric column to map (``score``, ``turnout``, ``share_rolland``...).
    path
        Output PNG file, written atomically.
    scheme
        ``"quantiles"`` or ``"natural_breaks"`` (see :func:`classify`).
    k
        Number of classes.
    title
        Map title (default: the column and the scheme).
    cmap
        Matplotlib colour map name.
    dpi
        Resolution.

    Returns
    -------
    pathlib.Path
        The written file. The legend lists the class bounds; precincts with no value are grey
        and outlined like the others.

    Raises
    ------
    InputError
        Unknown column, non-numeric column, unknown scheme, no value to map.
    MissingDependencyError
        matplotlib or mapclassify is not installed.
    """
    try:
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        msg = "choropleth_png needs matplotlib: pip install matplotlib"
        raise MissingDependencyError(msg) from exc
    values = _numeric_column(scored, column)
    classes = classify(values, scheme, k)
    frame = scored
    if frame.crs is not None and frame.crs.is_geographic:
        frame = to_crs(frame, local_metric_crs(frame))
    geoms = frame.geometry.to_numpy()
    finite = np.isfinite(values)
    cls = np.full(len(values), -1, dtype=np.int64)
    cls[finite] = np.asarray(classes.yb, dtype=np.int64)
    n_classes = len(classes.bins)
    cm = colormaps[cmap].resampled(n_classes)
    palette = [cm(i) for i in range(n_classes)]

    fig = Figure(figsize=(10, 8), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    _draw_polygons(ax, geoms, cls, palette)
    labels = _class_labels(values, classes.bins, cls)
    _draw_legend(ax, column, palette, labels, int((~finite).sum()))
    default_title = f"{column} ({scheme.replace('_', ' ')}, {n_classes} classes)"
    ax.set_title(title if title is not None else default_title)
    fig.tight_layout()
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    logger.info("wrote choropleth of %s (%s, %d classes) to %s", column, scheme, n_classes, target)
    return target


def _class_labels(values: np.ndarray, bins: Sequence[float], cls: np.ndarray) -> list[str]:
    """Legend label of each class: its bounds and how many precincts it holds."""
    lows = [float(np.nanmin(values))] + [float(b) for b in bins[:-1]]
    counts = np.bincount(cls[cls >= 0], minlength=len(bins))
    return [
        f"{_bound(lo)} – {_bound(float(hi))} ({counts[i]})"
        for i, (lo, hi) in enumerate(zip(lows, bins, strict=True))
    ]


_NODATA_RGBA: Final = (0.85, 0.85, 0.85, 1.0)


def _numeric_column(scored: pd.DataFrame, column: str) -> np.ndarray:
    """Return the column to map as floats (NaN where empty); refuse a missing or text column."""
    if column not in scored.columns:
        msg = (
            f"cannot map column {column!r}{close_matches(column, list(map(str, scored.columns)))}"
        )
        raise InputError(msg)
    try:
        return pd.to_numeric(scored[column]).to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        msg = f"cannot map column {column!r}: it is not numeric"
        raise InputError(msg) from exc


def _draw_polygons(ax: Any, geoms: np.ndarray, cls: np.ndarray, palette: list[Any]) -> None:
    """Draw one patch per polygon in its class colour (grey without a value); frame them."""
    from matplotlib.patches import PathPatch

    for geom, c in zip(geoms, cls, strict=True):  # one patch per polygon
        if geom is None or geom.is_empty:
            continue
        mpath = _polygon_path(geom)
        if mpath is None:
            continue
        ax.add_patch(
            PathPatch(
                mpath,
                facecolor=palette[c] if c >= 0 else _NODATA_RGBA,
                edgecolor="#444444",
                linewidth=0.4,
            )
        )
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    if np.all(np.isfinite([minx, miny, maxx, maxy])):
        pad = 0.02 * max(maxx - minx, maxy - miny, 1e-9)
        ax.set_xlim(minx - pad, maxx + pad)
        ax.set_ylim(miny - pad, maxy + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _draw_legend(
    ax: Any, column: str, palette: list[Any], labels: list[str], n_nodata: int
) -> None:
    """Draw the legend: one entry per class with its bounds and count, then the empty ones."""
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=palette[i], edgecolor="#444444", label=label)
        for i, label in enumerate(labels)
    ]
    if n_nodata:
        handles.append(
            Patch(facecolor=_NODATA_RGBA, edgecolor="#444444", label=f"no data ({n_nodata})")
        )
    ax.legend(
        handles=handles,
        title=column,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        title_fontsize=9,
        frameon=False,
    )


def _results_info(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Describe the results for ``targeting.json``: counts or shares, and what is unknown."""
    info = {k: attrs[k] for k in ("source", "layout", "election", "contest", "values",
                                   "share_basis") if k in attrs}
    if attrs.get("values") == "shares":
        info["note"] = SHARES_NOTE
    if "registered_report" in attrs:
        info["registered"] = dict(attrs["registered_report"])
    return info


def write_targeting(
    scored: gpd.GeoDataFrame,
    out_dir: PathLike,
    *,
    universe: Sequence[str],
    join_report: Mapping[str, Any] | None = None,
    scheme: str = "quantiles",
    k: int = 5,
) -> list[Path]:
    """Write the targeting outputs into ``out_dir``, atomically.

    Files: ``ranking.csv`` (one row per precinct by rank: id, name, rank, score and the
    indicators), ``precincts_scored.gpkg`` (layer ``precincts``: the precincts with their
    indicators and score, ready for ``knockin-geo cut --precincts``), ``choropleth.html``
    (offline map of the score), ``choropleth.png`` (for reports), ``universe.txt`` (the chosen
    precinct ids, one per line: ``knockin-geo cut --universe @universe.txt``) and
    ``targeting.json`` (formulas, what the results were (counts or percentages, the registered
    voters file), join report, universe).

    Parameters
    ----------
    scored
        Output of :func:`score`.
    out_dir
        Output folder.
    universe
        The chosen precinct ids (:func:`pick_universe`).
    join_report
        The report of :func:`join_results`.
    scheme, k
        Choropleth classification.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    check_classes(scheme, k)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".knockin-target-", dir=out))
    try:
        frame = scored.copy()
        frame.index = frame.index.astype(str)
        frame.index.name = schema.PRECINCT_ID
        ordered = frame.assign(_r=frame["rank"].replace(0, np.iinfo(np.int64).max)).sort_values(
            ["_r"], kind="stable").drop(columns="_r")
        table = pd.DataFrame(ordered.drop(columns="geometry"))
        table.insert(0, schema.PRECINCT_ID, table.index)
        # for people (spreadsheets): text cells that would start a formula are neutralised
        (tmp / "ranking.csv").write_text(frame_csv(table.round(6), index=False),
                                         encoding="utf-8")
        layer = gpd.GeoDataFrame(
            pd.DataFrame(ordered.drop(columns="geometry")).reset_index(),
            geometry=ordered.geometry.to_numpy(),
            crs=ordered.crs,
        )
        write_gpkg(tmp / "precincts_scored.gpkg", [("precincts", layer)])
        fields = tuple(c for c in ("name", "rank", "turnout", "abstainers") if c in frame)
        save_map(choropleth_map(frame, "score", scheme=scheme, k=k, tooltip_fields=fields,
                                title="priority score"), tmp / "choropleth.html")
        choropleth_png(frame, "score", tmp / "choropleth.png", scheme=scheme, k=k,
                       title="priority score")
        (tmp / "universe.txt").write_text("".join(f"{u}\n" for u in universe), encoding="utf-8")
        info = {
            "formulas": dict(scored.attrs.get("formulas", {})),
            "results": _results_info(scored.attrs),
            "join_report": dict(join_report or {}),
            "universe": list(universe),
            "classification": {"scheme": scheme, "k": k},
        }
        (tmp / "targeting.json").write_text(
            json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n",
            encoding="utf-8",
        )
        return move_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
