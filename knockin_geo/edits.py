"""Hand edits: the director's corrections to a plan after the automatic cut (``docs/edits.md``).

An edits file (``edits.json``, format ``knockin-geo-edits`` version 1) lists operations applied in
order: ``move_doors``, ``move_street``, ``merge``, ``split``, ``lock`` and ``exclude_street``.
:func:`read_edits` reads and checks it; :func:`apply_edits` (or :meth:`Edits.apply`) applies it to
a :class:`~knockin_geo.model.TurfPlan`:

1. every edit is first played on the plan's door labels only (no routing): a refused edit (unknown
   turf or door, a move into or out of a locked turf...) raises :class:`InputError` naming the
   edit by its number and op, before anything is built; with ``strict=False`` (what
   ``cut --edits`` and ``recut --edits`` use) it is recorded as *no longer possible* instead;
2. only the turfs whose doors changed (and the turfs whose route walked a street just excluded)
   are routed again; every other turf keeps its row, route and walk order exactly, so its
   volunteer files come out byte-identical;
3. the quality report is computed again, with an ``edits`` section: what each edit did and, for
   each turf it touched, its figures before and after.

``TurfPlan`` (in :mod:`knockin_geo.model`, at the ground of the layers) has no ``apply`` method:
it would import this module, which imports the model. :meth:`Edits.apply` is the method form.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from knockin_geo import schema
from knockin_geo._errors import InputError
from knockin_geo.metrics import quality_report
from knockin_geo.model import TurfPlan
from knockin_geo.params import rule_params, size_unit
from knockin_geo.rebalance import routed_figures
from knockin_geo.recut import cut_doors, id_maker, plan_route_params, plan_weights
from knockin_geo.routing import route_turfs, street_edges, street_key
from knockin_geo.turfs import ALL_AREA, turf_count, turf_table

__all__ = ["FORMAT", "OPS", "Edit", "EditResult", "Edits", "apply_edits", "holding_locks",
           "locked_turfs", "parse_edits", "read_edits"]

logger = logging.getLogger(__name__)

#: The ``format`` of an edits file, and the version this module reads.
FORMAT = "knockin-geo-edits"
VERSION = 1
#: Per op: (required keys, optional keys), besides ``op`` and ``note``.
OPS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "move_doors": (frozenset({"doors", "to"}), frozenset()),
    "move_street": (frozenset({"street", "side", "to"}), frozenset({"numbers", "from"})),
    "merge": (frozenset({"turfs", "into"}), frozenset()),
    "split": (frozenset({"turf"}), frozenset({"doors", "new_turf"})),
    "lock": (frozenset({"turf", "doors"}), frozenset()),
    "exclude_street": (frozenset({"street"}), frozenset({"numbers"})),
}
_TOP_KEYS = frozenset({"format", "version", "edits", "plan", "made_with"})
_SIDES = ("odd", "even", "both")
#: What the report's ``edits`` section says of each edit.
APPLIED, ALREADY, NO_LONGER = "applied", "already holds", "no longer possible"
#: Report keys the quality report computes (dropped from the plan's report before it runs again).
_COMPUTED = ("summary", "unassigned", "turfs", "problems", "minutes_by_precinct", "edits")
#: Report key listing the streets routes avoid (kept by later edits and re-cuts).
AVOIDED = schema.AVOIDED_STREETS
#: Turf column marking the turfs the director locked (only in plans with hand edits).
LOCKED = schema.LOCKED
_LEADING_INT = re.compile(r"^\s*(\d+)")
#: A route runs along an excluded street when it shares more than this with it (metres).
_ALONG_M = 2.0


# ----------------------------------------------------------------------------------------------
# the file
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Edit:
    """One hand edit (the keys of the file; ``number`` is its 1-based place in the file).

    ``from_turf`` is the file's ``from`` key (``move_street``); keys an op does not use stay
    empty.
    """

    number: int
    op: str
    doors: tuple[str, ...] = ()
    to: str | None = None
    street: str | None = None
    side: str | None = None
    numbers: tuple[int, int] | None = None
    from_turf: str | None = None
    turfs: tuple[str, ...] = ()
    into: str | None = None
    turf: str | None = None
    new_turf: str | None = None
    note: str | None = None

    @property
    def label(self) -> str:
        """``edit 3 (move_street)``: how messages name this edit."""
        return f"edit {self.number} ({self.op})"

    def to_json(self) -> dict[str, Any]:
        """Return the edit as the file writes it (only the keys it has)."""
        out: dict[str, Any] = {"op": self.op}
        keys = {"doors": list(self.doors), "to": self.to, "street": self.street,
                "side": self.side, "numbers": list(self.numbers) if self.numbers else None,
                "from": self.from_turf, "turfs": list(self.turfs), "into": self.into,
                "turf": self.turf, "new_turf": self.new_turf, "note": self.note}
        allowed = OPS[self.op][0] | OPS[self.op][1] | {"note"}
        out.update({k: v for k, v in keys.items() if k in allowed and v not in (None, [])})
        return out


@dataclass(frozen=True)
class Edits:
    """An edits file: its version and its edits, in order.

    ``plan`` and ``made_with`` are the file's informative keys.
    """

    edits: tuple[Edit, ...]
    version: int = VERSION
    plan: str | None = None
    made_with: str | None = None

    def apply(self, plan: TurfPlan, *, strict: bool = True, around_locks: bool = False,
              workers: int | None = None) -> EditResult:
        """Apply these edits to ``plan`` (:func:`apply_edits`)."""
        return apply_edits(plan, self, strict=strict, around_locks=around_locks,
                           workers=workers)

    def to_json(self) -> str:
        """Return the file's text (sorted keys, one edit a line: stable bytes)."""
        head: dict[str, Any] = {"format": FORMAT, "version": self.version}
        if self.plan is not None:
            head["plan"] = self.plan
        if self.made_with is not None:
            head["made_with"] = self.made_with
        lines = [json.dumps(e.to_json(), sort_keys=True, ensure_ascii=False) for e in self.edits]
        body = json.dumps(head, sort_keys=True, ensure_ascii=False)[:-1]
        return body + ', "edits": [\n' + ",\n".join(lines) + "\n]}\n"

    @property
    def locks(self) -> dict[str, tuple[str, ...]]:
        """The turfs these edits lock, with their doors (the last lock of a turf wins)."""
        return {str(e.turf): e.doors for e in self.edits if e.op == "lock"}


def read_edits(path: str | os.PathLike[str]) -> Edits:
    """Read and check an edits file.

    Parameters
    ----------
    path
        A JSON file in the ``knockin-geo-edits`` format (``docs/edits.md``).

    Returns
    -------
    Edits
        The edits, in file order.

    Raises
    ------
    InputError
        The file is missing or not JSON, or an edit is malformed: each problem names the edit by
        its number and op, and the key.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        msg = f"no edits file {p}"
        raise InputError(msg, path=str(p)) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{p} is not a JSON edits file (UTF-8): {exc}"
        raise InputError(msg, path=str(p)) from exc
    return parse_edits(doc, source=str(p))


def parse_edits(doc: Any, source: str = "the edits") -> Edits:
    """Check an edits document (the file's JSON, as Python objects) and return its edits.

    Raises
    ------
    InputError
        Every problem found, each naming the edit by number and op, and the key.
    """
    if not isinstance(doc, Mapping):
        msg = f"{source}: an edits file is a JSON object with format, version and edits"
        raise InputError(msg, path=source)
    problems = [f"unknown top-level key {k!r} (allowed: {', '.join(sorted(_TOP_KEYS))})"
                for k in sorted(map(str, doc)) if k not in _TOP_KEYS]
    if doc.get("format") != FORMAT:
        problems.append(f"format must be {FORMAT!r}, got {doc.get('format')!r}")
    if doc.get("version") != VERSION:
        problems.append(f"version must be {VERSION}, got {doc.get('version')!r} (this "
                        "knockin-geo reads version 1)")
    raw = doc.get("edits")
    if not isinstance(raw, list):
        problems.append("edits must be a list of edits")
        raw = []
    edits = []
    for i, item in enumerate(raw, start=1):
        edit, found = _parse_edit(i, item)
        problems += found
        if edit is not None:
            edits.append(edit)
    for key in ("plan", "made_with"):
        if key in doc and not isinstance(doc[key], str):
            problems.append(f"{key} must be text")
    if problems:
        msg = f"{source}: the edits cannot be read"
        raise InputError(msg, problems, path=source)
    return Edits(tuple(edits), VERSION, doc.get("plan"), doc.get("made_with"))


def _parse_edit(number: int, item: Any) -> tuple[Edit | None, list[str]]:
    """Return one edit (None when malformed) and its problems."""
    if not isinstance(item, Mapping):
        return None, [f"edit {number}: an edit is a JSON object with an op"]
    op = item.get("op")
    if op not in OPS:
        return None, [f"edit {number}: unknown op {op!r} (one of {', '.join(OPS)})"]
    where = f"edit {number} ({op})"
    required, optional = OPS[op]
    problems = [f"{where}: unknown key {k!r} (allowed: {', '.join(sorted(required | optional))}"
                ", note)" for k in sorted(map(str, item))
                if k not in required | optional | {"op", "note"}]
    problems += [f"{where}: missing key {k!r}" for k in sorted(required) if k not in item]
    values: dict[str, Any] = {}
    for key in sorted((required | optional | {"note"}) & set(item)):
        value, problem = _CHECKS[key](item[key])
        if problem:
            problems.append(f"{where}: {key} {problem}")
        values[key] = value
    problems += _cross_checks(where, op, values)
    if problems:
        return None, problems
    values["from_turf"] = values.pop("from", None)
    return Edit(number=number, op=op, **values), []


def _cross_checks(where: str, op: str, v: Mapping[str, Any]) -> list[str]:
    if op == "merge" and v.get("turfs") and v.get("into") is not None \
            and v["into"] not in v["turfs"]:
        return [f"{where}: into {v['into']!r} must be one of turfs {list(v['turfs'])}"]
    if op == "merge" and v.get("turfs") and len(set(v["turfs"])) < 2:
        return [f"{where}: turfs must list at least two different turfs"]
    if op == "split" and v.get("doors") == ():
        return [f"{where}: doors, when given, must not be empty"]
    return []


def _text(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, str) and value.strip():
        return value, None
    return None, f"must be non-empty text, got {value!r}"


def _ids(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, list) and value and all(isinstance(x, str | int) and not
                                                 isinstance(x, bool) for x in value):
        return tuple(str(x) for x in value), None
    return None, "must be a non-empty list of ids (text)"


def _numbers(value: Any) -> tuple[Any, str | None]:
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in value)
            and value[0] <= value[1]):
        return (int(value[0]), int(value[1])), None
    return None, f"must be [lo, hi], two integers with lo <= hi, got {value!r}"


def _side(value: Any) -> tuple[Any, str | None]:
    if value in _SIDES:
        return value, None
    return None, f"must be one of {', '.join(_SIDES)}, got {value!r}"


def _note(value: Any) -> tuple[Any, str | None]:
    return (value, None) if isinstance(value, str) else (None, "must be text")


def _turf_list(value: Any) -> tuple[Any, str | None]:
    found, problem = _ids(value)
    if problem is None and len(found) < 2:
        return None, "must list at least two turfs"
    return found, problem


_CHECKS: dict[str, Callable[[Any], tuple[Any, str | None]]] = {
    "doors": _ids, "to": _text, "street": _text, "side": _side, "numbers": _numbers,
    "from": _text, "turfs": _turf_list, "into": _text, "turf": _text, "new_turf": _text,
    "note": _note,
}


# ----------------------------------------------------------------------------------------------
# playing the edits on the labels
# ----------------------------------------------------------------------------------------------
class _RefusedError(Exception):
    """An edit that cannot apply to the plan as it stands (the reason)."""


class _HoldsError(Exception):
    """An edit that changes nothing: the plan already is as it asks."""


@dataclass
class _State:
    """The doors' turfs and statuses as the edits leave them (no routing yet)."""

    plan: TurfPlan
    strict: bool
    fresh: bool
    ids: np.ndarray
    tid: np.ndarray
    status: np.ndarray
    street: np.ndarray
    number: np.ndarray
    area: dict[str, str]
    locked: set[str]
    used: set[str]
    new_from: dict[str, str] = field(default_factory=dict)
    avoided: list[dict[str, Any]] = field(default_factory=list)
    by_id: dict[str, int] = field(default_factory=dict)

    def turfs(self) -> set[str]:
        return {str(t) for t in self.tid if t is not None}

    def pos(self, doors: Iterable[str]) -> np.ndarray:
        """Return the positions of these doors (each once); refuse an unknown id."""
        wanted = list(dict.fromkeys(doors))
        unknown = [d for d in wanted if d not in self.by_id]
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise _RefusedError(f"unknown address id {unknown[0]!r}{more}")
        return np.array([self.by_id[d] for d in wanted], dtype=np.int64)

    def turf(self, tid: str, what: str = "turf") -> str:
        if tid not in self.turfs():
            close = difflib.get_close_matches(tid, sorted(self.turfs()), n=2)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise _RefusedError(f"unknown {what} {tid!r}{hint}")
        return tid

    def unlocked(self, turfs: Iterable[str], verb: str) -> None:
        hit = sorted(set(turfs) & self.locked)
        if hit:
            raise _RefusedError(f"turf {hit[0]} is locked: doors cannot be moved {verb} it")

    def move(self, pos: np.ndarray, to: str) -> set[str]:
        """Give these doors to ``to``; return the turfs touched."""
        touched = {str(t) for t in self.tid[pos]} | {to}
        self.tid[pos] = to
        return touched


def _start(plan: TurfPlan, strict: bool, fresh: bool) -> _State:
    d = plan.doors
    ids = d.index.astype(str).to_numpy(dtype=object)
    tid = _labels(d[schema.TURF_ID])
    street = np.array([street_key(s) for s in d[schema.STREET].astype("string").fillna("")],
                      dtype=object) if schema.STREET in d else np.full(len(d), "", dtype=object)
    hn = d[schema.HOUSENUMBER].astype("string").fillna("") if schema.HOUSENUMBER in d \
        else pd.Series([""] * len(d))
    number = np.array([int(m.group(1)) if (m := _LEADING_INT.match(str(h))) else -1 for h in hn],
                      dtype=np.int64)
    area = {str(t): (ALL_AREA if pd.isna(p) else str(p))
            for t, p in plan.turfs[schema.PRECINCT_ID].astype("string").items()}
    locked = set(locked_turfs(plan))
    history = plan.report.get("recut")
    used = {*area, *(history.get("turf_ids_used", []) if isinstance(history, Mapping) else [])}
    avoided = [dict(a) for a in plan.report.get(AVOIDED, []) if isinstance(a, Mapping)]
    status = d[schema.STATUS].to_numpy(dtype=object).copy()
    return _State(plan, strict, fresh, ids, tid, status, street,
                  number, area, locked, set(map(str, used)), avoided=avoided,
                  by_id={str(a): i for i, a in enumerate(ids)})


def _labels(turf_ids: pd.Series) -> np.ndarray:
    """Return turf ids as an object array, None for doors in no turf."""
    return np.array([None if pd.isna(t) else str(t) for t in turf_ids.astype(object)],
                    dtype=object)


def holding_locks(plan: TurfPlan, edits: Edits) -> list[str]:
    """Return the turfs the edits lock that hold, in ``plan``, exactly the doors locked."""
    tid = plan.doors[schema.TURF_ID].astype("string")
    out = []
    for turf, doors in sorted(edits.locks.items()):
        mine = sorted(plan.doors.index[(tid == turf).fillna(False).to_numpy(dtype=bool)]
                      .astype(str))
        if mine and mine == sorted(set(doors)):
            out.append(turf)
    return out


def locked_turfs(plan: TurfPlan) -> list[str]:
    """Return the plan's locked turfs (its turf table's ``locked`` column), sorted."""
    if LOCKED not in plan.turfs:
        return []
    flags = plan.turfs[LOCKED].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return sorted(map(str, plan.turfs.index[flags]))


def _assigned(st: _State, pos: np.ndarray) -> None:
    out = [i for i in pos if st.tid[i] is None]
    if out:
        i = out[0]
        raise _RefusedError(f"door {st.ids[i]} is in no turf (status {st.status[i]}): only "
                            "doors in a turf can be moved")


def _move_doors(st: _State, e: Edit) -> tuple[int, set[str]]:
    pos = st.pos(e.doors)
    _assigned(st, pos)
    return _move_to(st, pos, st.turf(str(e.to)))


def _move_to(st: _State, pos: np.ndarray, to: str) -> tuple[int, set[str]]:
    """Move doors to ``to`` (unless a locked turf refuses); re-applied, skip doors already in."""
    if not st.strict:
        pos = pos[st.tid[pos] != to]
        if not len(pos):
            raise _HoldsError
    st.unlocked({str(t) for t in st.tid[pos]}, "out of")
    st.unlocked([to], "into")
    return len(pos), st.move(pos, to)


def _street_doors(st: _State, street: str, numbers: tuple[int, int] | None,
                  side: str = "both") -> np.ndarray:
    """Return the positions of a street's doors (side, range), whatever their status."""
    key = street_key(street)
    hit = st.street == key
    if not hit.any():
        known = sorted({s for s in st.plan.doors[schema.STREET].astype("string").dropna()})
        close = difflib.get_close_matches(street, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _RefusedError(f"no door on {street!r}{hint}")
    if numbers is not None:
        hit &= (st.number >= numbers[0]) & (st.number <= numbers[1])
    if side != "both":
        hit &= (st.number >= 0) & (st.number % 2 == (1 if side == "odd" else 0))
    return np.flatnonzero(hit)


def _move_street(st: _State, e: Edit) -> tuple[int, set[str]]:
    pos = _street_doors(st, str(e.street), e.numbers, str(e.side))
    to = st.turf(str(e.to))
    if e.from_turf is not None:
        st.turf(e.from_turf, "from turf")
    pos = pos[[st.tid[i] is not None and (e.from_turf is None or st.tid[i] == e.from_turf)
               for i in pos]] if len(pos) else pos
    if not len(pos):
        raise _RefusedError(f"no door of {e.street!r} in a turf matches (side {e.side}"
                            + (f", numbers {list(e.numbers)}" if e.numbers else "")
                            + (f", from {e.from_turf}" if e.from_turf else "") + ")")
    return _move_to(st, pos, to)


def _merge(st: _State, e: Edit) -> tuple[int, set[str]]:
    for t in e.turfs:
        st.turf(t)
    hit = sorted(set(e.turfs) & st.locked)
    if hit:
        raise _RefusedError(f"turf {hit[0]} is locked: it cannot be merged")
    into = str(e.into)
    pos = np.flatnonzero(np.isin(st.tid, [t for t in e.turfs if t != into]))
    return len(pos), st.move(pos, into)


def _split(st: _State, e: Edit) -> tuple[int, set[str]]:
    if not st.strict and e.new_turf and e.new_turf in st.turfs():
        raise _HoldsError
    if not st.strict and not e.new_turf and not st.fresh:
        raise _RefusedError("a split without new_turf is applied once: give new_turf to apply "
                            "it again after a re-cut")
    turf = st.turf(str(e.turf))
    if turf in st.locked:
        raise _RefusedError(f"turf {turf} is locked: it cannot be split")
    mine = np.flatnonzero(st.tid == turf)
    new = e.new_turf or id_maker(st.area[turf], st.used)()
    if new in st.turfs() or (e.new_turf and new in st.used):
        raise _RefusedError(f"new_turf {new!r} is already a turf id of this plan")
    if e.doors:
        pos = st.pos(e.doors)
        stray = [st.ids[i] for i in pos if st.tid[i] != turf]
        if stray:
            raise _RefusedError(f"door {stray[0]} is not in turf {turf}")
        if len(set(pos.tolist())) == len(mine):
            raise _RefusedError(f"the lasso takes every door of {turf}: nothing would be left")
    else:
        if len(mine) < 2:
            raise _RefusedError(f"turf {turf} has {len(mine)} door: it cannot be cut in two")
        labels = cut_doors(st.plan, st.plan.doors.iloc[mine], st.area[turf], 2)
        halves = sorted({str(x) for x in labels})
        if len(halves) < 2:
            raise _RefusedError(f"the cutter found no balanced cut of {turf} in two")
        pos = mine[labels != halves[0]]
    st.area[new] = st.area[turf]
    st.used.add(new)
    st.new_from[new] = turf
    return len(pos), st.move(pos, new)


def _lock(st: _State, e: Edit) -> tuple[int, set[str]]:
    turf = st.turf(str(e.turf))
    have = sorted(str(a) for a in st.ids[st.tid == turf])
    want = sorted(set(e.doors))
    if have != want:
        extra, missing = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        parts = ([f"{len(extra)} listed doors are not in it (first {extra[0]})"] if extra else [])
        parts += [f"{len(missing)} of its doors are not listed (first {missing[0]})"
                  if missing else ""]
        raise _RefusedError(f"the lock lists {len(want)} doors, turf {turf} holds {len(have)}: "
                       + "; ".join(p for p in parts if p))
    if turf in st.locked:
        raise _HoldsError
    st.locked.add(turf)
    return 0, {turf}


def _exclude_street(st: _State, e: Edit) -> tuple[int, set[str]]:
    pos = _street_doors(st, str(e.street), e.numbers)
    pos = pos[[st.tid[i] is not None or st.status[i] == schema.STATUS_EXCLUDED for i in pos]] \
        if len(pos) else pos
    if not len(pos):
        raise _RefusedError(f"no door of {e.street!r}"
                       + (f" numbered {e.numbers[0]}-{e.numbers[1]}" if e.numbers else "")
                       + " is in a turf")
    st.unlocked({str(t) for t in st.tid[pos] if t is not None}, "out of")
    inside = pos[[st.tid[i] is not None for i in pos]]
    touched = {str(t) for t in st.tid[inside]}
    st.tid[inside] = None
    st.status[inside] = schema.STATUS_EXCLUDED
    entry = {"street": str(e.street), "numbers": list(e.numbers) if e.numbers else None}
    if entry in st.avoided and not len(inside):
        raise _HoldsError
    if entry not in st.avoided:
        st.avoided.append(entry)
    return len(inside), touched


def _cut_around_locks(st: _State, locks: Mapping[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    """Put the locked turfs back in a fresh cut; cut the rest of their precincts around them.

    Returns one row for the ``edits`` section (number 0, op ``cut_around_locks``) when a
    precinct was cut again, and a row per lock whose doors are no longer all in a turf.
    """
    rows: list[dict[str, Any]] = []
    held: dict[str, list[int]] = {}
    for turf, doors in sorted(locks.items()):
        pos = [st.by_id.get(d, -1) for d in doors]
        if -1 in pos or any(st.tid[i] is None for i in pos):
            rows.append({"number": 0, "op": "cut_around_locks", "note": None, "doors_moved": 0,
                         "status": NO_LONGER, "touched": [],
                         "reason": f"turf {turf}: some of its locked doors are in no turf now"})
            continue
        held[turf] = pos
    areas: dict[str, list[str]] = {}
    for turf, pos in held.items():
        a = st.area.get(str(st.tid[pos[0]]), ALL_AREA)
        areas.setdefault(a, []).append(turf)
    touched: set[str] = set()
    moved = 0
    for a, turfs in sorted(areas.items()):
        n, t = _recut_area_around(st, a, {x: held[x] for x in turfs})
        moved += n
        touched |= t
    st.locked |= set(held)
    if held:
        rows.append({"number": 0, "op": "cut_around_locks", "note": None, "doors_moved": moved,
                     "status": APPLIED, "touched": sorted(touched)})
    return rows


def _recut_area_around(st: _State, area: str,
                       held: Mapping[str, list[int]]) -> tuple[int, set[str]]:
    """Give ``held`` doors their locked turfs; cut the area's other doors again around them."""
    before = st.tid.copy()
    old_turfs = sorted(t for t, a in st.area.items() if a == area and t in st.turfs())
    template = old_turfs[0]
    mine = np.flatnonzero(np.isin(st.tid, old_turfs))
    for turf, pos in held.items():
        st.tid[pos] = turf
        st.area[turf] = area
        if turf not in old_turfs:
            st.new_from.setdefault(turf, template)
    taken = np.zeros(len(st.tid), dtype=bool)
    taken[[i for pos in held.values() for i in pos]] = True
    rest = mine[~taken[mine]]
    if len(rest):
        size = st.plan.params.size
        weight = float(plan_weights(st.plan, st.plan.doors.iloc[rest]).sum())
        labels = cut_doors(st.plan, st.plan.doors.iloc[rest], area, turf_count(weight, size))
        names = _free_ids(area, set(held), len(set(labels.tolist())))
        for name, c in zip(names, sorted({str(x) for x in labels}), strict=True):
            st.tid[rest[labels == c]] = name
            st.area[name] = area
            if name not in old_turfs:
                st.new_from[name] = template
    st.used |= set(st.turfs())
    diff = before != st.tid
    return int(diff.sum()), {str(t) for t in np.concatenate([before[diff], st.tid[diff]])
                             if t is not None}


def _free_ids(area: str, taken: set[str], n: int) -> list[str]:
    """Return the first ``n`` ids of an area (``{area}-01``..., ``T001``...) not in ``taken``."""
    prefix, width = ("T", 3) if area == ALL_AREA else (f"{area}-", 2)
    out: list[str] = []
    k = 0
    while len(out) < n:
        k += 1
        name = f"{prefix}{k:0{width}d}"
        if name not in taken:
            out.append(name)
    return out


_APPLY: dict[str, Callable[[_State, Edit], tuple[int, set[str]]]] = {
    "move_doors": _move_doors, "move_street": _move_street, "merge": _merge, "split": _split,
    "lock": _lock, "exclude_street": _exclude_street,
}


def _play(st: _State, edits: Edits) -> list[dict[str, Any]]:
    """Play every edit on the labels; refuse them all at once (strict) or record them."""
    rows: list[dict[str, Any]] = []
    refused: list[str] = []
    for e in edits.edits:
        row: dict[str, Any] = {"number": e.number, "op": e.op, "note": e.note,
                               "doors_moved": 0, "status": APPLIED, "touched": []}
        try:
            n, touched = _APPLY[e.op](st, e)
            row.update(doors_moved=int(n), touched=sorted(touched))
        except _HoldsError:
            row["status"] = ALREADY
        except _RefusedError as exc:
            refused.append(f"{e.label}: {exc}")
            row.update(status=NO_LONGER, reason=str(exc))
        rows.append(row)
    if refused and st.strict:
        msg = "the edits cannot be applied to this plan (nothing was written)"
        raise InputError(msg, refused)
    return rows


# ----------------------------------------------------------------------------------------------
# the new plan
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EditResult:
    """Result of :func:`apply_edits`.

    Attributes
    ----------
    plan
        The edited plan (its report holds the ``edits`` section).
    effects
        The report's ``edits`` section: one row per edit (``docs/edits.md``).
    touched
        The turfs whose doors, route or walk order changed (retired ones included).
    """

    plan: TurfPlan
    effects: list[dict[str, Any]]
    touched: tuple[str, ...]

    def lines(self) -> list[str]:
        """One line per edit: what it did (what the CLI prints)."""
        return [_line(r) for r in self.effects]


def _line(r: Mapping[str, Any]) -> str:
    head = f"edit {r['number']} ({r['op']})"
    if r["status"] != APPLIED:
        return f"{head}: {r['status']}" + (f": {r['reason']}" if r.get("reason") else "")
    turfs = ", ".join(t[schema.TURF_ID] for t in r["turfs"])
    if r["op"] == "lock":
        return f"{head}: turf {turfs} locked"
    if r["op"] == "cut_around_locks":
        return (f"locked turfs kept; their precincts cut again around them: {r['doors_moved']} "
                f"doors moved; turfs touched: {turfs}")
    return f"{head}: {r['doors_moved']} doors moved; turfs touched: {turfs or 'none'}"


def apply_edits(plan: TurfPlan, edits: Edits | Iterable[Edit], *, strict: bool = True,
                around_locks: bool = False, workers: int | None = None) -> EditResult:
    """Apply hand edits to a plan, re-routing only the turfs they touch.

    Parameters
    ----------
    plan
        A routed (or unrouted) plan, e.g. from :func:`knockin_geo.planfile.read_plan`.
    edits
        The edits (:func:`read_edits`), in order.
    strict
        Refuse the whole file when one edit cannot apply (default). False: such an edit is
        reported as ``"no longer possible"`` (``cut --edits``, ``recut --edits``).
    around_locks
        The plan is a fresh cut (``cut --edits``): in each precinct holding doors of a turf the
        edits lock, those doors are put back in their locked turf and the precinct's other doors
        are cut again around them with the plan's cutter (new ids never take a locked id);
        the locked turfs are locked before the edits are played. Implies ``strict=False``.
    workers
        Processes that route the touched turfs (None: one per core; same plan whatever).

    Returns
    -------
    EditResult
        The new plan, what each edit did, the turfs touched. The input plan is not modified.

    Raises
    ------
    InputError
        (strict) An edit cannot apply: every such edit is named by number and op.
    """
    if not isinstance(edits, Edits):
        edits = Edits(tuple(edits))
    st = _start(plan, strict and not around_locks, around_locks)
    around = _cut_around_locks(st, edits.locks) if around_locks else []
    rows = around + _play(st, edits)
    old_tid = _labels(plan.doors[schema.TURF_ID])
    diff = old_tid != st.tid
    changed = {str(t) for t in np.concatenate([old_tid[diff], st.tid[diff]]) if t is not None}
    alive = st.turfs()
    avoid = street_edges(plan.network, sorted({a["street"] for a in st.avoided}))
    reroute = (changed & alive) | _along_excluded(st, edits, rows, alive - changed - st.locked)
    doors, table, routes = _rebuilt(st, rows, reroute, avoid, workers)
    new_plan = _reported(plan, st, doors, table, routes, rows)
    touched = tuple(sorted(reroute | (changed - alive)))
    logger.info("edits: %d applied, %d turfs touched", sum(r["status"] == APPLIED for r in rows),
                len(touched))
    return EditResult(new_plan, rows, touched)


def _along_excluded(st: _State, edits: Edits, rows: list[dict[str, Any]],
                    turfs: set[str]) -> set[str]:
    """Return the turfs whose route walks a street excluded now; add them to its edit's row."""
    streets = {e.number: str(e.street) for e in edits.edits if e.op == "exclude_street"}
    out: set[str] = set()
    for r in rows:
        if r["status"] == APPLIED and r["number"] in streets:
            hit = _runs_along(st.plan, street_edges(st.plan.network, [streets[r["number"]]]),
                              turfs)
            r["touched"] = sorted(set(r["touched"]) | hit)
            out |= hit
    return out


def _runs_along(plan: TurfPlan, avoid: np.ndarray, turfs: set[str]) -> set[str]:
    """Return the turfs (among ``turfs``) whose route runs along the avoided edges."""
    if not len(avoid) or not len(plan.routes) or not turfs:
        return set()
    zone = shapely.buffer(shapely.union_all(plan.network.edges.geometry.to_numpy()[avoid]), 0.5)
    r = plan.routes[plan.routes.index.astype(str).isin(sorted(turfs))]
    along = shapely.intersection(r.geometry.to_numpy(), zone)
    return {str(t) for t, x in zip(r.index, shapely.length(along), strict=True) if x > _ALONG_M}


def _rebuilt(st: _State, rows: list[dict[str, Any]], reroute: set[str], avoid: np.ndarray,
             workers: int | None) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Return the new doors, turf table and routes; only the ``reroute`` turfs built again."""
    plan = st.plan
    doors = plan.doors.copy()
    doors[schema.TURF_ID] = pd.array(st.tid, dtype="string")
    doors[schema.STATUS] = st.status
    alive = st.turfs()
    keep = sorted(t for t in map(str, plan.turfs.index) if t in alive and t not in reroute)
    again = sorted(reroute)
    touched_doors = doors[schema.TURF_ID].isin(again).fillna(False).to_numpy(dtype=bool)
    seq = doors[schema.SEQ].astype("Int64").copy()
    seq[touched_doors | doors[schema.TURF_ID].isna().to_numpy()] = pd.NA
    old = plan.turfs.loc[pd.Index(keep, dtype="string")]
    routed = len(plan.routes) > 0
    routes = plan.routes.loc[plan.routes.index.astype(str).isin(keep)]
    if not again:
        table = old.copy()
    elif routed:
        sub = doors.copy()
        sub[schema.TURF_ID] = sub[schema.TURF_ID].where(touched_doors)
        new_routes, new_seq = route_turfs(sub, plan.network, plan_route_params(plan),
                                          workers=workers, avoid=avoid)
        seq[touched_doors] = new_seq.to_numpy()[touched_doors]
        routes = pd.concat([routes, new_routes]).sort_index()
        table = _routed_table(plan, old, _fresh_rows(st, doors, again, rows), routes)
    else:
        fresh = _fresh_rows(st, doors, again, rows)
        fresh["walk_m"] = fresh["street_m"]
        table = _joined(old, fresh)
    doors[schema.SEQ] = seq
    table[LOCKED] = table.index.astype(str).isin(sorted(st.locked))
    return doors, table, routes


def _fresh_rows(st: _State, doors: gpd.GeoDataFrame, again: list[str],
                rows: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    """Return the cutter's rows of the turfs built again (their targets and precincts kept)."""
    plan = st.plan
    pos = np.flatnonzero(doors[schema.TURF_ID].isin(again).fillna(False).to_numpy(dtype=bool))
    d = doors.iloc[pos]
    ids = np.array(again, dtype=object)
    t = plan.turfs
    target_col = "target_precut" if "target_precut" in t else "target"
    targets = [float(t.loc[_origin(st, x), target_col]) for x in again]
    by_turf: dict[str, list[int]] = {}
    for r in rows:
        for x in r["touched"]:
            by_turf.setdefault(x, []).append(int(r["number"]))
    notes = {x: ["hand edit" + ("s " if len(n) > 1 else " ") + ", ".join(map(str, n))]
             for x, n in by_turf.items()}
    return turf_table(
        d, ids, np.searchsorted(ids, d[schema.TURF_ID].astype(str).to_numpy(dtype=object)),
        np.array([st.area[x] for x in again], dtype=object),
        np.array(targets, dtype=float), d["face"].to_numpy(dtype=np.int64),
        d["edge"].to_numpy(dtype=np.int64), pd.factorize(d["chain"].to_numpy())[0],
        plan.network.edges["length"].to_numpy(dtype=float),
        d["weight"].to_numpy(dtype=float), plan.params, notes, doors.crs)


def _origin(st: _State, turf: str) -> str:
    """Return the turf of the plan a new turf came from (through splits of splits)."""
    while turf in st.new_from and turf not in st.plan.turfs.index:
        turf = st.new_from[turf]
    return turf


def _joined(old: gpd.GeoDataFrame, fresh: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if not len(fresh):
        return old.copy()
    out = pd.concat([old, fresh[[c for c in fresh.columns if c in old.columns]]]) \
        if len(old) else fresh
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=fresh.crs).sort_index()
    out.index = out.index.astype("string").rename(schema.TURF_ID)
    return out


def _routed_table(plan: TurfPlan, old: gpd.GeoDataFrame, fresh: gpd.GeoDataFrame,
                  routes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Turf rows with the routes' figures (kept rows put back as the cutter left them first)."""
    before = old.copy()
    if "est_minutes_precut" in before:
        before["est_minutes"] = before["est_minutes_precut"]
    if plan.params.mode == "minutes" and "target_precut" in before:
        before["target"] = before["target_precut"]
        before["deviation"] = before["deviation_precut"]
    table = routed_figures(_joined(before, fresh), routes, plan.params)
    return table[[*[c for c in plan.turfs.columns if c in table.columns and c != LOCKED],
                  *[c for c in table.columns if c not in plan.turfs.columns]]]


def _figures(table: pd.DataFrame, tid: str) -> dict[str, Any] | None:
    if tid not in table.index:
        return None
    row = {str(k): v for k, v in table.loc[tid].to_dict().items()}
    minutes = row.get("est_minutes")
    return {"doors": int(row["doors"]),
            "minutes": None if pd.isna(minutes) else float(minutes),
            "within_tolerance": bool(row.get("within_tolerance", True)),
            "strict_pieces": int(row.get("strict_pieces", 1)),
            "spans_barrier": bool(row.get("barrier_crossings", 0) > 0)}


def _reported(plan: TurfPlan, st: _State, doors: gpd.GeoDataFrame, table: gpd.GeoDataFrame,
              routes: gpd.GeoDataFrame, effects: list[dict[str, Any]]) -> TurfPlan:
    """Run the quality report again, with the ``edits`` section; return the new plan."""
    params = plan.params
    extra = {k: v for k, v in plan.report.items() if k not in _COMPUTED}
    if st.avoided:
        extra[AVOIDED] = st.avoided
    turfs_q, report = quality_report(
        doors, table, plan.network, tolerance=params.tolerance, extra=extra,
        precincts=None if params.cross_precincts else plan.precincts,
        rule=rule_params(params), unit=size_unit(params), routed=len(routes) > 0)
    for r in effects:
        touched = r.pop("touched")
        r["turfs"] = [{schema.TURF_ID: t, "before": _figures(plan.turfs, t),
                       "after": _figures(turfs_q, t)} for t in touched]
        if r["note"] is None:
            del r["note"]
    report["edits"] = effects
    return dataclasses.replace(plan, doors=doors, turfs=turfs_q, routes=routes, report=report)
