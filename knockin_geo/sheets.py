"""Spreadsheet-safe CSV cells: neutralise formula injection, and undo it when reading back.

A spreadsheet (Excel, LibreOffice, Google Sheets) evaluates a cell that starts with ``=``,
``+``, ``-`` or ``@`` as a formula, also after a leading tab or carriage return, and after
leading spaces in some programs. Street names from open data, notes typed on a phone or names
in a canvasser file are input from anyone, so every CSV written *for people* passes its cells
through :func:`neutralize_cell` (OWASP's advice: prefix such a cell with ``'``, which makes it
text). Machine-readable files (GeoJSON, JSON, GeoPackage, PostGIS, the opt-out list) keep the
raw value. ``docs/exports.md`` lists which file is which.

The rule, for a cell's text ``s``:

* ``s`` is *triggered* when its first character after leading spaces is one of
  ``= + - @ TAB CR`` (:data:`TRIGGERS`);
* a triggered text cell gets a ``'`` in front, whatever follows (``-1+1``, ``+33 6...``, even
  ``-5``: OWASP's rule, with no guessing of what is "only a number");
* numbers are never changed: Python numbers (``int``, ``float``) and numbers the writer
  formatted itself, marked with :class:`Number` (``Number(f"{lon:.7f}")``), stay as they are,
  so a negative longitude or count stays a number in the spreadsheet. Text columns (street,
  house number, names, notes, ids) are text even when they look like a number;
* a cell that already starts with ``'`` followed by a triggered text (``'=1``, ``''-5``) also
  gets one more ``'``, so that a real leading apostrophe stays distinguishable from the guard.

:func:`restore_cell` removes exactly one ``'`` from a cell of the form ``'`` + apostrophes +
triggered text, so ``restore_cell(neutralize_cell(s)) == s`` for every string ``s`` (tested),
and a cell the phone map neutralised (it prefixes every triggered note, numbers included) reads
back as what the volunteer typed.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

#: Characters that make a spreadsheet evaluate a cell (OWASP "CSV injection").
TRIGGERS = frozenset("=+-@\t\r")

#: First characters of the only texts :func:`neutralize_cell` may change: a trigger, a space
#: (a trigger may follow) or an apostrophe (the guarded form). Any other text stays as it is.
_SUSPECT = TRIGGERS | {" ", "'"}


class Number(str):
    """A number the writer formatted itself (fixed decimals): never neutralised."""

    __slots__ = ()


def _triggered(text: str) -> bool:
    rest = text.lstrip(" ")
    return bool(rest) and rest[0] in TRIGGERS


def _guarded_form(text: str) -> bool:
    """``'`` then any apostrophes then a triggered text: what :func:`restore_cell` undoes."""
    return text.startswith("'") and _triggered(text.lstrip("'"))


def neutralize_cell(value: Any) -> Any:
    """Return a value safe to put in a CSV cell that a spreadsheet opens.

    Parameters
    ----------
    value
        A cell. Only strings are changed; numbers, :class:`Number`, booleans and None are
        returned as they are (a number is never a formula).

    Returns
    -------
    Any
        ``"'" + value`` when the string would start a formula (see the module docstring),
        else ``value``.
    """
    if not isinstance(value, str):
        return value
    if isinstance(value, Number):
        return value
    return "'" + value if _guarded_form(value) or _triggered(value) else value


def restore_cell(text: str) -> str:
    """Undo :func:`neutralize_cell` (and the phone map's guard) on a cell read from a CSV.

    Parameters
    ----------
    text
        The cell as read.

    Returns
    -------
    str
        ``text`` without its first ``'`` when it has the neutralised form, else ``text``.
    """
    return text[1:] if _guarded_form(text) else text


def neutralize_row(values: Iterable[Any]) -> list[Any]:
    """Return a row with every cell passed through :func:`neutralize_cell`."""
    return [neutralize_cell(v) for v in values]


def sheet_csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """Return a CSV text for people: header and rows, every cell neutralised.

    Parameters
    ----------
    header
        Column names (neutralised too: they may come from input).
    rows
        Rows of cells; missing values (None, NaN, NA) become empty cells.

    Returns
    -------
    str
        Comma-separated, newline line ends, quoted where needed.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(neutralize_row(header))
    w.writerows(map(_safe_row, rows))
    return buf.getvalue()


def _safe_row(row: Iterable[Any]) -> list[Any]:
    """``neutralize_row`` of the row with missing values blanked, in one pass.

    A plain text whose first character is not in :data:`_SUSPECT`, and a :class:`Number`, stay
    as they are without a call (most cells): the others go through :func:`_safe_cell`.
    """
    return [
        v if (t := type(v)) is Number or (t is str and v[:1] not in _SUSPECT) else _safe_cell(v)
        for v in row
    ]


def _safe_cell(v: Any) -> Any:
    return neutralize_cell(_blank_nan(v))


def _blank_nan(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return ""
    return v


def frame_csv(frame: pd.DataFrame, *, index: bool = True) -> str:
    """Return a pandas DataFrame as a CSV text for people (every text cell neutralised).

    Parameters
    ----------
    frame
        A DataFrame.
    index
        Write the index as the first column(s), named as pandas names them.

    Returns
    -------
    str
        What ``frame.to_csv()`` would write, with text cells neutralised.
    """
    header = [str(c) for c in frame.columns]
    if not index:
        rows = ([_plain(v) for v in rec] for rec in frame.itertuples(index=False, name=None))
        return sheet_csv(header, rows)
    names = ["" if n is None else str(n) for n in frame.index.names]  # as pandas names them
    rows = (
        [_plain(v) for v in (*(i if isinstance(i, tuple) else (i,)), *rest)]
        for i, *rest in frame.itertuples(index=True, name=None)
    )
    return sheet_csv([*names, *header], rows)


def _plain(v: Any) -> Any:
    """Return numpy numbers as Python ones (numbers stay numbers; text stays text)."""
    return v.item() if isinstance(v, np.integer | np.floating | np.bool_) else v
