"""Re-cut what is left after a canvassing session, keeping every turf a volunteer still works.

:func:`recut` takes the doors already done out of a plan (:func:`knockin_geo.planfile.read_plan`
reads it from its folder) and decides, turf by turf (``docs/canvass.md``, "Re-cutting what is
left"):

* a turf with no door left is **closed** (never re-balanced);
* a turf nobody worked is **kept as it is**: its size did not change, so it is never retired,
  drawn from or re-sized because another turf was finished;
* a turf in progress keeps its remaining doors. When several turfs of an area are in progress
  and one falls out of tolerance of their mean, single doors move between touching turfs in
  progress (never from a turf nobody worked) to bring them back;
* a turf in progress whose remaining doors are so few that they fit in a neighbour's tolerance
  (at most ``tolerance x`` the area's target) is **dissolved**: its doors join the kept turf
  nearby that stays lightest; when the area has no kept turf, they are cut again with the
  plan's cutter.

Every turf is routed again and the quality report recomputed; the diff says what moved and why.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from knockin_geo import schema
from knockin_geo._errors import InputError
from knockin_geo.canvass import REVISIT_CODES, conform_results, current_state, normalize_code
from knockin_geo.metrics import quality_report
from knockin_geo.model import TurfPlan
from knockin_geo.params import default_route_params, rule_params, size_unit
from knockin_geo.rebalance import routed_figures
from knockin_geo.routing import RouteParams, route_turfs, street_edges
from knockin_geo.schema import DO_NOT_CONTACT, RESULT_CODES
from knockin_geo.turfs import (
    ALL_AREA,
    TurfParams,
    cut_turfs,
    door_weights,
    refine_labels,
    turf_count,
    turf_table,
)

__all__ = ["REMOVE_RULES", "STATUS_CANVASSED", "RecutResult", "recut"]

logger = logging.getLogger(__name__)

#: Which results take a door out of the plan, per ``recut(remove=...)`` rule.
#: ``do_not_contact`` is always removed, whatever the rule.
REMOVE_RULES: dict[str, frozenset[str]] = {
    "knocked": frozenset(RESULT_CODES) - REVISIT_CODES,
    "contacted": frozenset({"contacted", "refused", DO_NOT_CONTACT}),
    "any": frozenset(RESULT_CODES),
}

#: Status of a door taken out of the plan because its canvassing is done.
STATUS_CANVASSED = "canvassed"

#: What happened to each turf of the plan (the diff's ``turfs[].state``).
CLOSED, UNTOUCHED, IN_PROGRESS, DISSOLVED, NEW, LOCKED = (
    "closed", "untouched", "in progress", "dissolved", "new", "locked")

_EPS = 1e-9
#: How a turf's note starts when it is in progress.
_PROGRESS = "in progress:"


@dataclass(frozen=True)
class RecutResult:
    """Result of :func:`recut`.

    Attributes
    ----------
    plan
        The new plan: doors done have status ``canvassed`` (``opted_out`` for
        ``do_not_contact``) and no turf; the others have their (possibly new) ``turf_id`` and a
        fresh walk order ``seq``; turfs, routes and report are recomputed (the report holds the
        diff under ``recut``).
    diff
        What changed (JSON-ready): see ``docs/canvass.md``.
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


@dataclass
class _Work:
    """The state of one re-cut: the remaining doors, their turfs, and what was decided."""

    plan: TurfPlan
    codes: frozenset[str]
    state: np.ndarray  # each door's current result ("" when none)
    done: np.ndarray  # doors taken out (bool, all doors)
    rem_pos: np.ndarray  # positions of the remaining doors in plan.doors
    weight: np.ndarray  # per remaining door
    old_tid: np.ndarray  # per remaining door: its turf before
    new_tid: np.ndarray  # per remaining door: its turf after
    used_ids: list[str]
    targets: dict[str, float] = field(default_factory=dict)
    area_of: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    turf_state: dict[str, str] = field(default_factory=dict)
    attached: list[dict[str, Any]] = field(default_factory=list)
    areas: list[dict[str, Any]] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)
    turfs_new: list[str] = field(default_factory=list)
    locked: frozenset[str] = frozenset()

    @property
    def params(self) -> TurfParams:
        return self.plan.params

    @property
    def rem(self) -> gpd.GeoDataFrame:
        return self.plan.doors.iloc[self.rem_pos]

    @property
    def xy(self) -> np.ndarray:
        pts = self.rem.geometry.to_numpy()
        return np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])

    def keep(self, turf: str, area: str, target: float, note: str | None = None) -> None:
        """Keep ``turf`` in the new plan with this size target (and the old turf's note)."""
        self.targets[turf] = target
        self.area_of[turf] = area
        # the note of an earlier re-cut's progress is replaced by this one's
        old = [part for part in _old_notes(self.plan).get(turf, "").split("; ")
               if part and not part.startswith(_PROGRESS)]
        self.notes.setdefault(turf, []).extend(old)
        if note:
            self.notes.setdefault(turf, []).append(note)


# ----------------------------------------------------------------------------------------------
# the entry point
# ----------------------------------------------------------------------------------------------
def recut(
    plan: TurfPlan,
    results: pd.DataFrame,
    *,
    remove: str | Iterable[str] = "knocked",
    min_fill: float | None = 0.75,
    attach_m: float = 300.0,
    route_params: RouteParams | None = None,
    locked: Iterable[str] = (),
) -> RecutResult:
    """Take the doors already done out of a plan and re-cut what is left, moving few doors.

    Parameters
    ----------
    plan
        The plan the results were recorded on, with its street network and snapping
        (:func:`knockin_geo.planfile.read_plan` reads it from its folder).
    results
        Results (:func:`knockin_geo.canvass.merge_results`).
    remove
        Which doors leave the plan: ``"knocked"`` (default: every result but ``not_home`` and
        ``come_back``), ``"contacted"`` (``contacted``, ``refused``, ``do_not_contact``),
        ``"any"`` (every door with a result), or a list of result codes. ``do_not_contact``
        doors always leave. A door's state is its latest result.
    min_fill
        Turfs in progress of an area are re-balanced among themselves while their mean remaining
        size is at least this share of the area's target (below, each is left for its
        volunteer to finish, and reported). None: always.
    attach_m
        Distance within which a kept turf counts as a neighbour of doors that must join one.
    route_params
        Route parameters (default: those the plan was routed with).
    locked
        Turfs the director locked (``docs/edits.md``), besides those the plan marks in its
        ``locked`` turf column: a locked turf is never retired, re-balanced, given or taken
        doors; it keeps its whole list, doors done included, its route and its walk order
        (its volunteer files stay the same).

    Returns
    -------
    RecutResult
        The new plan, the per-door moves and the diff (``docs/canvass.md``). The inputs are not
        modified.
    """
    codes = _remove_codes(remove)
    locks = _locks(plan, locked)
    work = _start(plan, results, codes, locks)
    if work is None:
        n_results = int(conform_results(results)[schema.ADDRESS_ID].isin(
            plan.doors.index.astype(str)).sum())
        return _unchanged(plan, remove, codes, min_fill, n_results=n_results)
    for area, turfs in _turfs_by_area(plan).items():
        for t in (t for t in turfs if t in locks):
            work.turf_state[t] = LOCKED
            work.keep(t, area, _turf_target(plan, t, _area_target(plan, turfs)))
        free = [t for t in turfs if t not in locks]
        if free:
            _recut_area(work, area, free, min_fill=min_fill, attach_m=attach_m)
    rp = route_params or plan_route_params(plan)
    doors, turfs, routes = _routed_plan(work, rp)
    moves = _moves(work)
    diff = _diff(work, remove, min_fill, moves)
    extra = {k: v for k, v in plan.report.items()
             if k not in ("summary", "unassigned", "turfs", "problems", "recut", "rebalance",
                          "minutes_by_precinct", "edits")}
    extra["recut"] = diff
    extra["route_params"] = dataclasses.asdict(rp)
    params = plan.params
    turfs_q, report = quality_report(
        doors, turfs, plan.network, tolerance=params.tolerance, extra=extra,
        precincts=None if params.cross_precincts else plan.precincts,
        rule=rule_params(params), unit=size_unit(params), routed=len(routes) > 0)
    new_plan = dataclasses.replace(plan, doors=doors, turfs=turfs_q, routes=routes, report=report)
    logger.info(
        "recut: %d doors done, %d remain, %d kept in their turf (%.1f %%), %d turfs kept, "
        "%d new, %d retired", diff["doors_removed"], diff["doors_remaining"],
        diff["doors_kept_in_turf"], 100 * diff["share_kept"], len(diff["turfs_kept"]),
        len(diff["turfs_new"]), len(diff["turfs_retired"]))
    return RecutResult(new_plan, diff, moves)


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


def _locks(plan: TurfPlan, locked: Iterable[str]) -> frozenset[str]:
    """Return the locked turfs of the plan (its ``locked`` column) and ``locked``."""
    ids = set(map(str, plan.turfs.index))
    marked = set()
    if schema.LOCKED in plan.turfs:
        flags = plan.turfs[schema.LOCKED].astype("boolean").fillna(False).to_numpy(dtype=bool)
        marked = set(map(str, plan.turfs.index[flags]))
    return frozenset((marked | set(map(str, locked))) & ids)


def _start(plan: TurfPlan, results: pd.DataFrame, codes: frozenset[str],
           locks: frozenset[str] = frozenset()) -> _Work | None:
    """Return the doors done and the remaining doors with their weights (None: none done).

    The doors of a locked turf stay, done or not.
    """
    doors = plan.doors
    ids = doors.index.astype(str)
    held = doors[schema.TURF_ID].isin(sorted(locks)).fillna(False).to_numpy(dtype=bool)
    in_turf = doors[schema.TURF_ID].notna().to_numpy() & ~held
    r = conform_results(results)
    r = r[r[schema.ADDRESS_ID].isin(ids)]
    # "" for doors without a result (an all-<NA> object array cannot be compared with ==)
    state = current_state(r)["result"].reindex(ids).fillna("").to_numpy(dtype=object)
    done = in_turf & pd.Series(state).isin(codes).to_numpy()
    if not done.any():
        return None
    in_turf |= held
    rem_pos = np.flatnonzero(in_turf & ~done)
    old_tid = doors[schema.TURF_ID].astype("string").to_numpy(dtype=object)[rem_pos].astype(str)
    history = plan.report.get("recut")
    earlier = history.get("turf_ids_used", []) if isinstance(history, Mapping) else []
    used = sorted({*map(str, plan.turfs.index), *map(str, earlier)})
    return _Work(plan, codes, state, done, rem_pos, plan_weights(plan, doors.iloc[rem_pos]),
                 old_tid, old_tid.copy().astype(object), used, locked=locks)


def plan_weights(plan: TurfPlan, d: pd.DataFrame) -> np.ndarray:
    """Each door's weight as the plan was cut (doors, households, voters or minutes)."""
    if len(d) == 0:
        return np.zeros(0)
    f = pd.DataFrame({
        "edge": d["edge"].to_numpy(dtype=np.int64),
        "chain": d["chain"].to_numpy(dtype=np.int64),
        schema.HOUSEHOLDS: (d[schema.HOUSEHOLDS].to_numpy() if schema.HOUSEHOLDS in d
                            else np.ones(len(d))),
        "snap_dist_m": d["snap_dist_m"].to_numpy(dtype=float),
    })
    if plan.params.weight_column is not None and plan.params.weight_column in d:
        f[plan.params.weight_column] = d[plan.params.weight_column].to_numpy()
    return door_weights(f, plan.network.edges["length"].to_numpy(dtype=float), plan.params)


def _turfs_by_area(plan: TurfPlan) -> dict[str, list[str]]:
    """Return the plan's turfs per precinct (or one area when cut without precincts)."""
    out: dict[str, list[str]] = {}
    for t, p in plan.turfs[schema.PRECINCT_ID].astype("string").items():
        out.setdefault(ALL_AREA if pd.isna(p) else str(p), []).append(str(t))
    return {a: sorted(ts) for a, ts in sorted(out.items())}


def _old_notes(plan: TurfPlan) -> dict[str, str]:
    if "note" not in plan.turfs:
        return {}
    notes = plan.turfs["note"].astype("string").fillna("")
    return {str(t): str(n) for t, n in notes.items() if n}


# ----------------------------------------------------------------------------------------------
# one area
# ----------------------------------------------------------------------------------------------
def _recut_area(work: _Work, area: str, turfs: list[str], *, min_fill: float | None,
                attach_m: float) -> None:
    """Close, keep, re-balance or dissolve the turfs of one area (see the module docstring)."""
    plan, tol = work.plan, work.params.tolerance
    sel = np.isin(work.old_tid, turfs)
    w = {t: float(work.weight[sel & (work.old_tid == t)].sum()) for t in turfs}
    left = {t: int((sel & (work.old_tid == t)).sum()) for t in turfs}
    done = _done_per_turf(work)
    target = _area_target(plan, turfs)
    row: dict[str, Any] = {"area": area, "turfs_before": len(turfs),
                           "doors_remaining": int(sel.sum()),
                           "weight_remaining": round(float(sum(w.values())), 3),
                           "target": round(target, 3)}
    closed = [t for t in turfs if left[t] == 0]
    untouched = [t for t in turfs if left[t] > 0 and done.get(t, 0) == 0]
    going = [t for t in turfs if left[t] > 0 and done.get(t, 0) > 0]
    small = [t for t in going if w[t] <= tol * target + _EPS]
    going = [t for t in going if t not in small]
    for t in closed:
        work.turf_state[t] = CLOSED
        work.explanations.append(f"{t}: every door is done; the turf is closed")
    for t in untouched:
        work.turf_state[t] = UNTOUCHED
        work.keep(t, area, _turf_target(plan, t, target))
    _keep_in_progress(work, area, going, w, done, left, target, min_fill)
    if small:
        _dissolve(work, area, small, untouched + going, w, target, attach_m)
    row.update(turfs_after=len(untouched) + len(going) + sum(
        1 for t in work.turfs_new if work.area_of.get(t) == area),
        closed=closed, untouched=untouched, in_progress=going, dissolved=small,
        new=[t for t in work.turfs_new if work.area_of.get(t) == area])
    work.areas.append(row)


def _done_per_turf(work: _Work) -> dict[str, int]:
    tid = work.plan.doors[schema.TURF_ID].astype("string").to_numpy(dtype=object)
    counts = pd.Series(tid[work.done]).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def _area_target(plan: TurfPlan, turfs: list[str]) -> float:
    """Return the area's size target as cut (its turfs' mean target; never the doors left)."""
    t = plan.turfs
    if "target" in t and t.loc[turfs, "target"].notna().all():
        return float(t.loc[turfs, "target"].astype(float).mean())
    # a plan restored from a folder's map layers: the mean weight of its turfs
    d = plan.doors[plan.doors[schema.TURF_ID].isin(turfs).fillna(False).to_numpy(dtype=bool)]
    return float(plan_weights(plan, d).sum()) / len(turfs)


def _turf_target(plan: TurfPlan, turf: str, default: float) -> float:
    t = plan.turfs
    if "target" in t and pd.notna(t.loc[turf, "target"]):
        return float(t.loc[turf, "target"])
    return default


def _keep_in_progress(
    work: _Work, area: str, going: list[str], w: dict[str, float], done: dict[str, int],
    left: dict[str, int], target: float, min_fill: float | None,
) -> None:
    """Keep the turfs in progress; re-balance them among themselves when one is out of tolerance.

    Their target is their mean remaining size: they shrank together, so they are measured
    against each other, never against (or with doors of) the turfs nobody worked.
    """
    if not going:
        return
    tol = work.params.tolerance
    mean = float(sum(w[t] for t in going)) / len(going)
    for t in going:
        work.turf_state[t] = IN_PROGRESS
        work.keep(t, area, mean, note=f"{_PROGRESS} {done[t]} doors done, {left[t]} left")
    out = [t for t in going if abs(w[t] - mean) > tol * mean + _EPS]
    if not out:
        return
    if min_fill is not None and mean < min_fill * target:
        work.explanations.append(
            f"{area}: turfs in progress hold {mean:.0f} on average, under {min_fill:.0%} of the "
            f"target {target:.0f}; {', '.join(out)} left as they are for their volunteers")
        return
    pos = np.flatnonzero(np.isin(work.old_tid, going))
    lab = _rebalance(work, pos, mean, tol)
    if lab is None:
        work.explanations.append(
            f"{area}: {', '.join(out)} out of tolerance of the turfs in progress "
            f"({mean:.0f}); no door at a shared street end evens them out, left as they are")
        return
    n_moves = int((lab != work.old_tid[pos]).sum())
    work.new_tid[pos] = lab
    work.explanations.append(
        f"{area}: {n_moves} doors moved between neighbouring turfs in progress to keep every "
        "turf within tolerance")


# ----------------------------------------------------------------------------------------------
# leftovers too small for a turf
# ----------------------------------------------------------------------------------------------
def _dissolve(work: _Work, area: str, small: list[str], kept: list[str], w: dict[str, float],
              target: float, attach_m: float) -> None:
    """Give the doors left in ``small`` turfs to kept turfs nearby, or cut them again."""
    for t in small:
        work.turf_state[t] = DISSOLVED
    if kept:
        _attach(work, small, kept, target, attach_m)
        return
    total = float(sum(w[t] for t in small))
    _cut_again(work, area, small, turf_count(total, target), target)


def _attach(work: _Work, small: list[str], kept: list[str], target: float,
            attach_m: float) -> None:
    """Street side by street side, doors join the kept turf nearby that stays lightest."""
    tol = work.params.tolerance
    xy = work.xy
    load = {t: float(work.weight[work.new_tid == t].sum()) for t in kept}
    cap = {t: (1 + tol) * work.targets.get(t, target) for t in kept}
    k_xy = {t: xy[np.flatnonzero(work.new_tid == t)] for t in kept}
    pos_all = np.flatnonzero(np.isin(work.old_tid, small))
    chains = work.rem["chain"].to_numpy()[pos_all]
    groups: dict[Any, Any] = pd.Series(np.arange(len(pos_all))).groupby(
        [work.old_tid[pos_all], chains], sort=True).indices
    joined: dict[tuple[str, str], list[float]] = {}
    for key, idx in sorted(groups.items()):
        t = str(key[0])
        pos = pos_all[np.sort(idx)]
        gw = float(work.weight[pos].sum())
        dist = {kt: float(np.sqrt(((xy[pos][:, None, :] - k_xy[kt][None, :, :]) ** 2)
                                  .sum(axis=-1)).min()) for kt in kept}
        near = [kt for kt in kept if dist[kt] <= attach_m] or [min(kept, key=dist.__getitem__)]

        def rank(kt: str, gw: float = gw, dist: dict[str, float] = dist) -> tuple[Any, ...]:
            # over the cap as little as possible, then nearest, then lightest
            return (max(0.0, load[kt] + gw - cap[kt]), dist[kt], load[kt], kt)

        to = min(near, key=rank)
        work.new_tid[pos] = to
        load[to] += gw
        k_xy[to] = np.vstack([k_xy[to], xy[pos]])
        acc = joined.setdefault((t, to), [0, 0.0])
        acc[0] += len(pos)
        acc[1] = max(acc[1], dist[to])
    for (t, to), (n_doors, far) in sorted(joined.items()):
        work.attached.append({"from": t, "to": to, "doors": int(n_doors),
                              "distance_m": round(float(far), 1)})
        work.notes.setdefault(to, []).append(
            f"took {int(n_doors)} remaining doors of turf {t} (too few for a turf of their own)")
    for t in small:
        dest = sorted(to for (f, to) in joined if f == t)
        work.explanations.append(
            f"{t}: its remaining doors were too few for a turf of their own (at most "
            f"{tol:.0%} of the target) and joined {', '.join(dest)}")


def _cut_again(work: _Work, area: str, rest: list[str], k: int, target: float) -> None:
    """Cut the doors left in ``rest`` into ``k`` turfs with the plan's cutter (fresh ids)."""
    sub_pos = np.flatnonzero(np.isin(work.old_tid, rest))
    cut_tid = cut_doors(work.plan, work.rem.iloc[sub_pos], area, k)
    fresh = id_maker(area, work.used_ids)
    for c in sorted({str(x) for x in cut_tid}):
        tid = fresh()
        work.new_tid[sub_pos[cut_tid == c]] = tid
        work.keep(tid, area, target,
                  note="re-cut from the remaining doors of " + ", ".join(rest))
        work.turf_state[tid] = NEW
        work.turfs_new.append(tid)
        work.used_ids = sorted({*work.used_ids, tid})
    work.explanations.append(
        f"{area}: no turf of this area is kept; the doors left in {', '.join(rest)} were cut "
        f"again into {k} turf(s)")


def cut_doors(plan: TurfPlan, doors: gpd.GeoDataFrame, area: str, k: int) -> np.ndarray:
    """Cut some doors of a plan's area into ``k`` turfs with the plan's own cutter.

    Parameters
    ----------
    plan
        The plan (its network, precincts and turf parameters).
    doors
        Rows of ``plan.doors`` (snapped, with ``chain``), all of one area.
    area
        Their precinct id (:data:`knockin_geo.turfs.ALL_AREA` for a plan cut without precincts).
    k
        The number of turfs wanted (the turf size is their weight over ``k``).

    Returns
    -------
    numpy.ndarray
        The cutter's turf id of each door (object array, in the doors' order).
    """
    params = plan.params
    sub = doors.copy()
    sub[schema.STATUS] = schema.STATUS_OK
    sub = sub.drop(columns=[c for c in (schema.TURF_ID, "face", "weight", "chain", schema.SEQ)
                            if c in sub.columns])
    sub_w = plan_weights(plan, doors.assign(chain=pd.factorize(doors["chain"].to_numpy())[0]))
    size = float(sub_w.sum()) / k
    sub_params = (dataclasses.replace(params, doors_per_turf=size, minutes_per_turf=None)
                  if params.mode == "doors"
                  else dataclasses.replace(params, doors_per_turf=None, minutes_per_turf=size))
    prec = None
    if area != ALL_AREA and plan.precincts is not None:
        prec = plan.precincts[plan.precincts.index.astype(str) == area]
        prec = prec if len(prec) else None
    if area == ALL_AREA and schema.PRECINCT_ID in sub:
        sub[schema.PRECINCT_ID] = pd.array([pd.NA] * len(sub), dtype="string")
        sub_params = dataclasses.replace(sub_params, cross_precincts=True)
    cut = cut_turfs(sub, plan.network, precincts=prec, params=sub_params)
    cut_tid = cut.doors[schema.TURF_ID].astype("string").to_numpy(dtype=object)
    if any(pd.isna(x) for x in cut_tid):  # pragma: no cover - the cutter assigns every door
        msg = f"the cutter left doors of {area} out of every turf"
        raise RuntimeError(msg)
    return cut_tid


_TRAILING_NUMBER = re.compile(r"^(.*?)(\d+)$")


def id_maker(area: str, used: Iterable[str]) -> Callable[[], str]:
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


# ----------------------------------------------------------------------------------------------
# evening out turfs in progress, on the cutter's strict chains
# ----------------------------------------------------------------------------------------------
def _rebalance(work: _Work, pos: np.ndarray, target: float, tol: float) -> np.ndarray | None:
    """Move doors between touching turfs in progress until every one is within tolerance.

    The moves are the cutter's refinement (:func:`knockin_geo.turfs.refine_labels`: boundary
    doors and runs on strict street-side chains, never splitting a turf, never adding a barrier
    span); the doors still to knock block the streets they stand on, doors already done do not.
    Returns the new turf ids, or None when the turfs cannot all be brought within tolerance.
    """
    old = work.old_tid[pos]
    names, lab = np.unique(old.astype(str), return_inverse=True)
    params = dataclasses.replace(work.plan.params, tolerance=tol, refine="fix")
    weight = work.weight[pos]
    new = refine_labels(work.rem, work.plan.network, pos, lab, weight, target, params)
    sums = np.bincount(new, weights=weight, minlength=len(names))
    if (np.abs(sums - target) > tol * target + _EPS).any():
        return None
    return names[new].astype(object)


# ----------------------------------------------------------------------------------------------
# the new plan and the diff
# ----------------------------------------------------------------------------------------------
def plan_route_params(plan: TurfPlan) -> RouteParams:
    """Return the route parameters the plan was routed with (stored in its report)."""
    stored = plan.report.get("route_params")
    if isinstance(stored, Mapping):
        names = {f.name for f in dataclasses.fields(RouteParams)}
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in stored.items() if k in names}
        try:
            return RouteParams(**kwargs)
        except (TypeError, ValueError):
            logger.warning("the plan's route parameters cannot be reused; using the defaults")
    return default_route_params(plan.doors, plan.params)


def _routed_plan(work: _Work, rp: RouteParams) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame,
                                                        gpd.GeoDataFrame]:
    """Return the new doors (status, turf, weight, walk order), turf table and routes."""
    plan, rem_pos, new_tid = work.plan, work.rem_pos, work.new_tid
    out = plan.doors.copy()
    tid_col = np.full(len(out), None, dtype=object)
    tid_col[rem_pos] = new_tid
    out[schema.TURF_ID] = pd.array(tid_col, dtype="string")
    status = out[schema.STATUS].to_numpy(dtype=object).copy()
    status[work.done] = STATUS_CANVASSED
    dnc = pd.Series(work.state, dtype="string").eq(DO_NOT_CONTACT).fillna(False)
    status[work.done & dnc.to_numpy(dtype=bool)] = "opted_out"
    out[schema.STATUS] = status
    weight = np.full(len(out), np.nan)
    weight[rem_pos] = work.weight
    out["weight"] = weight
    out[schema.SEQ] = pd.array([pd.NA] * len(out), dtype="Int64")
    rem = plan.doors.iloc[rem_pos]
    if not len(rem):
        return out, plan.turfs.iloc[0:0].copy(), plan.routes.iloc[0:0].copy()
    final_ids = np.array(sorted(set(new_tid.tolist())), dtype=object)
    notes = {t: sorted(set(v), key=v.index) for t, v in work.notes.items()}
    table = turf_table(
        out.iloc[rem_pos], final_ids, np.searchsorted(final_ids, new_tid.astype(str)),
        np.array([work.area_of[t] for t in final_ids], dtype=object),
        np.array([work.targets[t] for t in final_ids], dtype=float),
        rem["face"].to_numpy(dtype=np.int64), rem["edge"].to_numpy(dtype=np.int64),
        pd.factorize(rem["chain"].to_numpy())[0],
        plan.network.edges["length"].to_numpy(dtype=float), work.weight, plan.params, notes,
        out.crs)
    routes, seq = _routes_around_locks(work, out, rp)
    out[schema.SEQ] = seq
    table = routed_figures(table, routes, plan.params)
    if work.locked or schema.LOCKED in plan.turfs:
        table[schema.LOCKED] = table.index.astype(str).isin(sorted(work.locked))
    return out, table, routes


def _routes_around_locks(work: _Work, out: gpd.GeoDataFrame,
                         rp: RouteParams) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """Route every turf but the locked ones, which keep their route and walk order.

    Routes avoid the streets the director excluded (the report's ``avoided_streets``).
    """
    plan = work.plan
    held = out[schema.TURF_ID].isin(sorted(work.locked)).fillna(False).to_numpy(dtype=bool)
    free = out.copy()
    free[schema.TURF_ID] = free[schema.TURF_ID].mask(held)
    avoided = [str(a.get("street")) for a in plan.report.get(schema.AVOIDED_STREETS, [])
               if isinstance(a, Mapping)]
    routes, seq = route_turfs(free, plan.network, rp, avoid=street_edges(plan.network, avoided))
    if not held.any():
        return routes, seq
    kept = plan.routes[plan.routes.index.astype(str).isin(sorted(work.locked))]
    routes = pd.concat([routes, kept]).sort_index() if len(routes) else kept.copy()
    seq[held] = plan.doors[schema.SEQ].astype("Int64").to_numpy()[held]
    return routes, seq


def _moves(work: _Work) -> pd.DataFrame:
    ids = work.plan.doors.index.astype(str).to_numpy()[work.rem_pos]
    moves = pd.DataFrame(
        {"old_turf_id": pd.array(work.old_tid, dtype="string"),
         "new_turf_id": pd.array(work.new_tid.astype(str), dtype="string")},
        index=pd.Index(ids, name=schema.ADDRESS_ID),
    )
    moves["moved"] = (moves["old_turf_id"] != moves["new_turf_id"]).to_numpy(dtype=bool)
    return moves


def _diff(work: _Work, remove: str | Iterable[str], min_fill: float | None,
          moves: pd.DataFrame) -> dict[str, Any]:
    """Return what changed, JSON-ready (``docs/canvass.md``)."""
    plan = work.plan
    tid = plan.doors[schema.TURF_ID].astype("string").to_numpy(dtype=object)
    in_turf = plan.doors[schema.TURF_ID].notna().to_numpy()
    n_rem, n_moved = len(moves), int(moves["moved"].sum())
    old_ids = sorted(map(str, plan.turfs.index))
    final = sorted(set(work.new_tid.tolist()))
    removed_by = pd.Series(work.state[work.done]).value_counts().sort_index()
    return {
        "remove": remove if isinstance(remove, str) else sorted(work.codes),
        "removed_codes": sorted(work.codes),
        "min_fill": min_fill,
        "doors_in_turfs_before": int(in_turf.sum()),
        "doors_removed": int(work.done.sum()),
        "removed_by_result": {str(k): int(v) for k, v in removed_by.items()},
        "doors_remaining": n_rem,
        "doors_kept_in_turf": n_rem - n_moved,
        "doors_moved": n_moved,
        "share_kept": round((n_rem - n_moved) / n_rem, 6) if n_rem else 1.0,
        "turfs_before": len(old_ids),
        "turfs_after": len(final),
        "turfs_kept": sorted(t for t in old_ids if t in set(final)),
        "turfs_new": sorted(work.turfs_new),
        "turfs_retired": sorted(t for t in old_ids if t not in set(final)),
        "attached": work.attached,
        "precincts": work.areas,
        "turfs": _turf_rows(work, moves, tid, in_turf, old_ids, final),
        "explanations": work.explanations,
        "turf_ids_used": sorted({*work.used_ids, *old_ids, *final}),
    }


def _turf_rows(work: _Work, moves: pd.DataFrame, tid: np.ndarray, in_turf: np.ndarray,
               old_ids: list[str], final: list[str]) -> list[dict[str, Any]]:
    """Per turf: what happened to it, doors before / done / left / after, moves to and from."""
    before_n = pd.Series(tid[in_turf]).value_counts()
    removed_n = pd.Series(tid[work.done]).value_counts()
    rows = []
    for t in sorted(set(old_ids) | set(final)):
        mine_old = moves[moves["old_turf_id"] == t]
        mine_new = moves[moves["new_turf_id"] == t]
        rows.append({
            schema.TURF_ID: t,
            "change": ("new" if t not in old_ids else "kept" if t in final else "retired"),
            "state": work.turf_state.get(t, UNTOUCHED),
            "doors_before": int(before_n.get(t, 0)),
            "doors_done": int(removed_n.get(t, 0)),
            "doors_remaining": len(mine_old),
            "doors_after": len(mine_new),
            "to": _counts(mine_old.loc[mine_old["moved"], "new_turf_id"]),
            "from": _counts(mine_new.loc[mine_new["moved"], "old_turf_id"]),
        })
    return rows


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().sort_index().items()}


# ----------------------------------------------------------------------------------------------
# nothing done
# ----------------------------------------------------------------------------------------------
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
        "removed_codes": sorted(codes), "min_fill": min_fill,
        "doors_in_turfs_before": n, "doors_removed": 0, "removed_by_result": {},
        "doors_remaining": n, "doors_kept_in_turf": n, "doors_moved": 0, "share_kept": 1.0,
        "turfs_before": len(old_ids), "turfs_after": len(old_ids), "turfs_kept": old_ids,
        "turfs_new": [], "turfs_retired": [], "attached": [], "precincts": [],
        "turfs": [{schema.TURF_ID: t, "change": "kept", "state": UNTOUCHED,
                   "doors_before": int(counts.get(t, 0)), "doors_done": 0,
                   "doors_remaining": int(counts.get(t, 0)),
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
