"""Quality report of a turf cut: coverage, balance, contiguity, barriers, walkability, compactness.

Definitions (also in ``docs/report.md``)
----------------------------------------
coverage
    Every input door is either in one turf (status ``assigned``) or unassigned with a reason.
deviation
    ``(size - target) / target`` where size is the turf's doors (households) or minutes and
    target is its precinct's mean ``W / k``.
pieces
    Connected pieces of the turf on the street network: a canvasser may walk along streets that
    carry the turf's own doors or have a side free of doors, and through street nodes, but not past
    another turf's door on the same chain (the doors' ``chain``: both sides of a quiet street,
    which the volunteer zig-zags; one side of a busy street, or of a quiet street whose two sides
    the cut gave to two turfs). 1 means contiguous.
strict_pieces, barrier_sides, barrier_crossings, polsby_popper, hull overlap, bound
    Measured by :mod:`knockin_geo.checks` from the output doors and the input street data alone
    (not the cutter's graph): strict pieces never pass another turf's door on a street side;
    a turf *spans* a barrier when the hull of its doors minus the buffered barrier lines falls into
    2+ parts holding doors (``barrier_sides``; ``barrier_crossings = barrier_sides - 1``);
    Polsby-Popper of the door hull; hull overlap between turfs of a precinct; and the bound on
    unavoidable spans (precinct sides that hold no whole number of turfs).
"""

from __future__ import annotations

import logging
import math
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from knockin_geo import checks, schema
from knockin_geo.streets import StreetNetwork

logger = logging.getLogger(__name__)

#: Margin around a turf's doors within which its connecting streets are searched, in metres.
PIECES_MARGIN_M = 300.0


def turf_pieces(
    doors: gpd.GeoDataFrame, network: StreetNetwork, *, margin_m: float = PIECES_MARGIN_M
) -> pd.Series:
    """Count the connected pieces of every turf on the street network.

    Parameters
    ----------
    doors
        Doors after cutting: ``turf_id``, ``edge``, ``offset_m``, ``side`` and ``chain``.
    network
        The street network the doors were snapped to.
    margin_m
        Streets farther than this from a turf's doors are not used to link its pieces.

    Returns
    -------
    pandas.Series
        Pieces per ``turf_id`` (1 = contiguous).
    """
    snapped = doors[(doors["edge"].to_numpy() >= 0) & doors[schema.TURF_ID].notna().to_numpy()]
    if len(snapped) == 0:
        return pd.Series([], dtype="int64", name="pieces")
    n_nodes = len(network.nodes)
    node_pos = pd.Index(network.nodes.index)
    edges = network.edges
    eu = node_pos.get_indexer(edges["u"].to_numpy())
    ev = node_pos.get_indexer(edges["v"].to_numpy())
    e = snapped["edge"].to_numpy(dtype=np.int64)
    chain = snapped["chain"].to_numpy(dtype=np.int64)
    off = snapped["offset_m"].to_numpy(dtype=float)
    turf_codes, turf_names = pd.factorize(snapped[schema.TURF_ID].astype(str), sort=True)
    n = len(snapped)
    order = np.lexsort((off, chain))
    new = np.ones(n, dtype=bool)
    new[1:] = chain[order][1:] != chain[order][:-1]
    end = np.ones(n, dtype=bool)
    end[:-1] = new[1:]
    dv = n_nodes + order  # door vertex ids, in chain order
    cont = np.flatnonzero(~new)
    side = snapped["side"].astype(str).to_numpy(dtype=object)
    left = np.zeros(len(edges), dtype=bool)
    right = np.zeros(len(edges), dtype=bool)
    left[e[side == "left"]] = True
    right[e[side == "right"]] = True
    conn = np.flatnonzero(~(left & right))
    a = np.concatenate([dv[cont - 1], dv[new], dv[end], eu[conn]])
    b = np.concatenate([dv[cont], eu[e[order][new]], ev[e[order][end]], ev[conn]])
    owner = np.concatenate([np.full(n_nodes, -1), turf_codes])
    vxy = np.vstack(
        [
            network.nodes[["x", "y"]].to_numpy(dtype=float),
            np.column_stack([shapely.get_x(snapped.geometry.to_numpy()),
                             shapely.get_y(snapped.geometry.to_numpy())]),
        ]
    )
    pieces = np.zeros(len(turf_names), dtype=np.int64)
    by_turf = pd.Series(np.arange(n)).groupby(turf_codes).indices
    window = _Window(vxy, a, b)
    for t_key, t_rows in by_turf.items():
        t, rows = cast(int, t_key), np.asarray(t_rows)
        lo = vxy[n_nodes + rows].min(axis=0) - margin_m
        hi = vxy[n_nodes + rows].max(axis=0) + margin_m
        inside = window.vertices(lo, hi)
        allowed = inside[(owner[inside] == -1) | (owner[inside] == t)]
        ea, eb = window.edges_within(allowed)
        m = sparse.coo_array((np.ones(len(ea)), (ea, eb)),
                             shape=(len(allowed), len(allowed))).tocsr()
        _, lab = csgraph.connected_components(m, directed=False)
        pieces[t] = len(np.unique(lab[np.searchsorted(allowed, n_nodes + rows)]))
    return pd.Series(pieces, index=pd.Index(turf_names, name=schema.TURF_ID), name="pieces")


class _Window:
    """The vertices in a box and the edges between given vertices, without a pass over all.

    A turf's pieces are counted on the streets near it: looking them up through vertices sorted
    by x and an incidence list keeps the count linear in the plan's size (a pass over every
    vertex and edge per turf made it quadratic: hours for a million doors).
    """

    def __init__(self, vxy: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        self.vxy = vxy
        self.a, self.b = a, b
        self.by_x = np.argsort(vxy[:, 0], kind="stable")
        self.xs = vxy[self.by_x, 0]
        ends = np.concatenate([a, b])
        by_end = np.argsort(ends, kind="stable")
        self.incident = by_end % len(a)  # edge ids, by end vertex
        self.start = np.searchsorted(ends[by_end], np.arange(len(vxy) + 1))
        self.mark = np.full(len(vxy), -1, dtype=np.int64)

    def vertices(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Return the sorted ids of the vertices with ``lo <= (x, y) <= hi``."""
        i = int(np.searchsorted(self.xs, lo[0], side="left"))
        j = int(np.searchsorted(self.xs, hi[0], side="right"))
        cand = self.by_x[i:j]
        y = self.vxy[cand, 1]
        return np.sort(cand[(y >= lo[1]) & (y <= hi[1])])

    def edges_within(self, verts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the edges with both ends in ``verts`` (sorted), as positions in ``verts``."""
        if not len(verts):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        lens = self.start[verts + 1] - self.start[verts]
        pos = np.repeat(self.start[verts] - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        cand = np.unique(self.incident[pos])
        self.mark[verts] = np.arange(len(verts))
        ea, eb = self.mark[self.a[cand]], self.mark[self.b[cand]]
        self.mark[verts] = -1
        keep = (ea >= 0) & (eb >= 0)
        return ea[keep], eb[keep]


def polsby_popper(geoms: np.ndarray) -> np.ndarray:
    """Return ``4 pi A / P**2`` of each geometry's convex hull (NaN when it has no area).

    Parameters
    ----------
    geoms
        Shapely geometries (typically MultiPoints of a turf's doors).

    Returns
    -------
    numpy.ndarray
        Values in [0, 1].
    """
    hull = shapely.convex_hull(geoms)
    area = shapely.area(hull)
    perim = shapely.length(shapely.boundary(hull))
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = 4 * math.pi * area / perim**2
    return np.where(area > 0, pp, np.nan)


def quality_report(
    doors: gpd.GeoDataFrame,
    turfs: gpd.GeoDataFrame,
    network: StreetNetwork,
    *,
    tolerance: float,
    extra: dict[str, Any] | None = None,
    precincts: gpd.GeoDataFrame | None = None,
    rule: checks.RuleParams | None = None,
    unit: str = "doors",
    routed: bool = False,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Compute the per-turf quality table and the overall report.

    Parameters
    ----------
    doors
        Doors after cutting (every input door, with its status).
    turfs
        Turf table from :func:`knockin_geo.turfs.cut_turfs`.
    network
        The street network (its edges' end nodes and its barrier layer are read).
    tolerance
        The balance tolerance the cut was asked for.
    extra
        Entries added at the top of the report (parameters, inputs).
    precincts
        Precinct polygons (metric CRS) for the bound on unavoidable barrier spans.
    rule
        Barrier classes of the independent barrier rule (default: the standard classes).
    unit
        What a turf's size counts, for the reasons (``doors``, ``households``, ``minutes``).
    routed
        The turfs' ``est_minutes`` are routed minutes: the report adds each precinct's spread
        of them (``minutes_by_precinct``) and, in minutes mode, says balance was read on them.

    Returns
    -------
    turfs : geopandas.GeoDataFrame
        Copy of ``turfs`` with ``pieces``, ``strict_pieces``, ``barrier_sides``,
        ``barrier_crossings``, ``within_tolerance`` and ``polsby_popper`` added.
    report : dict
        JSON-ready report: ``summary``, ``unassigned`` counts by reason, ``turfs`` (one dict per
        turf), ``problems`` (each turf that misses a target, and why) and, when routed,
        ``minutes_by_precinct``.
    """
    out = turfs.copy()
    pieces = turf_pieces(doors, network).reindex(out.index, fill_value=0)
    out["pieces"] = pieces.to_numpy(dtype=np.int64)
    indep = independent_figures(doors, network, tolerance=tolerance, precincts=precincts,
                                rule=rule or checks.RuleParams(), unit=unit)
    spans = indep["spans"].reindex(out.index.astype(str))
    strict = indep["strict"].reindex(out.index.astype(str), fill_value=0)
    out["strict_pieces"] = strict.to_numpy(dtype=np.int64)
    out["barrier_sides"] = spans["sides"].fillna(0).to_numpy(dtype=np.int64)
    out["barrier_crossings"] = np.maximum(out["barrier_sides"].to_numpy() - 1, 0)
    out["within_tolerance"] = np.abs(out["deviation"].to_numpy()) <= tolerance + 1e-9
    pp = indep["pp"].reindex(out.index.astype(str))
    out["polsby_popper"] = np.round(pp.to_numpy(dtype=float), 4)

    status_counts = doors[schema.STATUS].value_counts().sort_index()
    unassigned = {
        str(k): int(v) for k, v in status_counts.items() if k != schema.STATUS_ASSIGNED
    }
    problems = _problems(out, spans, _lonlat(spans, doors.crs), unit=unit, routed=routed)
    report: dict[str, Any] = dict(extra or {})
    report["summary"] = _round({**_summary(doors, out, spans, indep, problems),
                                **_balance_basis(out, tolerance, unit=unit, routed=routed)})
    if routed:
        report["minutes_by_precinct"] = minutes_spread(out)
    report["unassigned"] = unassigned
    report["turfs"] = [
        _round({schema.TURF_ID: str(tid), **_row_dict(row)})
        for tid, row in out.drop(columns="geometry").iterrows()
    ]
    report["problems"] = [_round(p) for p in problems]
    return out, report


def independent_figures(
    doors: gpd.GeoDataFrame,
    network: StreetNetwork,
    *,
    tolerance: float,
    precincts: gpd.GeoDataFrame | None,
    rule: checks.RuleParams,
    unit: str = "doors",
) -> dict[str, Any]:
    """Measure a cut with :mod:`knockin_geo.checks` (spans, strict pieces, PP, overlap, bound).

    Returns
    -------
    dict
        ``spans`` (per turf, with ``unavoidable`` and ``why``), ``strict``, ``pp``,
        ``overlap`` (overall share), ``sides`` (precinct sides with ``placeable``) and
        ``beyond_bound`` (areas with more spanning turfs than unplaceable sides).
    """
    bar = network.barriers
    if len(bar) and bar.crs is not None and doors.crs is not None and not bar.crs.equals(
            doors.crs):
        bar = bar.to_crs(doors.crs)
    lines = checks.rule_lines(bar, rule)
    edges = network.edges
    if edges.crs is not None and doors.crs is not None and not edges.crs.equals(doors.crs):
        edges = edges.to_crs(doors.crs)
    marks = network.crossings
    if len(marks) and marks.crs is not None and doors.crs is not None and not marks.crs.equals(
            doors.crs):
        marks = marks.to_crs(doors.crs)
    spans = checks.barrier_spans(doors, lines, buffer_m=rule.buffer_m,
                                 streets=edges.geometry.to_numpy(), marks=marks)
    sides, door_side = checks.precinct_sides(doors, lines, tolerance=tolerance,
                                             precincts=precincts, buffer_m=rule.buffer_m)
    spans = checks.explain_spans(spans, sides, door_side, doors, unit=unit)
    strict = checks.strict_pieces(doors, edges["u"].to_numpy(), edges["v"].to_numpy())
    strict_bound = checks.strict_bound(doors, edges["u"].to_numpy(), edges["v"].to_numpy(),
                                       tolerance=tolerance)
    _, overlap = checks.hull_overlap(doors)
    unplaceable = sides.groupby("area")["placeable"].apply(lambda s: int((~s).sum()))
    spanning = spans[spans["spans"]].groupby("area").size()
    beyond = (spanning.reindex(unplaceable.index, fill_value=0) - unplaceable).clip(lower=0)
    return {
        "spans": spans,
        "strict": strict,
        "strict_must_split": int(strict_bound["must_split"].sum()),
        "pp": checks.hull_polsby_popper(doors),
        "overlap": overlap,
        "sides": sides,
        "unplaceable": int(unplaceable.sum()),
        "beyond_bound": beyond[beyond > 0],
    }


def _balance_basis(
    out: pd.DataFrame, tolerance: float, *, unit: str, routed: bool
) -> dict[str, Any]:
    """Return what balance was read on, and (minutes mode, routed) the estimate's count."""
    basis: dict[str, Any] = {"balance_measured_on": (
        "routed minutes" if routed and unit == "minutes"
        else "estimated minutes" if unit == "minutes" else unit)}
    if "deviation_precut" in out:
        basis["turfs_within_tolerance_precut"] = int(
            (np.abs(out["deviation_precut"].to_numpy()) <= tolerance + 1e-9).sum())
    return basis


def minutes_spread(turfs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Return each precinct's spread of routed minutes: turfs, min, max and max / min.

    Parameters
    ----------
    turfs
        Turf table with ``precinct_id`` and routed ``est_minutes``.

    Returns
    -------
    dict
        Keyed by precinct id (``""`` when cut without precincts), sorted.
    """
    area = turfs[schema.PRECINCT_ID].astype("string").fillna("").to_numpy(dtype=object)
    minutes = pd.Series(turfs["est_minutes"].to_numpy(dtype=float), index=area)
    out: dict[str, dict[str, Any]] = {}
    for key, m in minutes.groupby(level=0, sort=True):
        lo, hi = float(m.min()), float(m.max())
        out[str(key)] = {"turfs": len(m), "min_minutes": round(lo, 1),
                         "max_minutes": round(hi, 1),
                         "ratio": round(hi / lo, 3) if lo > 0 else None}
    return out


def _lonlat(spans: pd.DataFrame, crs: Any) -> pd.DataFrame:
    """Crossing points of spanning turfs in longitude/latitude (rounded to 1e-6)."""
    pts = gpd.GeoSeries(gpd.points_from_xy(spans["cross_x"], spans["cross_y"]), crs=crs,
                        index=spans.index)
    if crs is not None:
        pts = pts.to_crs(4326)
    lon, lat = np.round(pts.x.to_numpy(), 6), np.round(pts.y.to_numpy(), 6)
    return pd.DataFrame({"lon": lon, "lat": lat}, index=spans.index)


def _crossing_entry(span: pd.Series, lonlat: pd.Series) -> dict[str, Any]:
    """Return the report's ``crossing`` of a spanning turf: where, its kind, on what, in words."""
    kind, on = str(span.get("cross_kind", "") or "barrier"), str(span.get("cross_on", ""))
    return {"lon": float(cast(float, lonlat["lon"])), "lat": float(cast(float, lonlat["lat"])),
            "kind": kind, "on": on, "label": checks.crossing_label(kind, on)}


def _problems(
    out: gpd.GeoDataFrame, spans: pd.DataFrame, crossing: pd.DataFrame, *, unit: str,
    routed: bool,
) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    on_routes = routed and unit == "minutes"
    for tid, row in out.iterrows():
        note = str(row["note"]) if pd.notna(row["note"]) else ""
        if not row["within_tolerance"]:
            problems.append(
                {
                    schema.TURF_ID: str(tid),
                    "problem": ("routed minutes outside tolerance" if on_routes
                                else "size outside tolerance"),
                    "deviation": float(row["deviation"]),
                    "why": note or ("no move of a street side to or from a neighbouring turf "
                                    "brought its route within tolerance" if on_routes
                                    else "no balanced cut of its street graph was found"),
                }
            )
        if row["pieces"] > 1:
            problems.append(
                {
                    schema.TURF_ID: str(tid),
                    "problem": f"{int(row['pieces'])} pieces on the street network",
                    "why": note or "its doors are not linked by streets of its own",
                }
            )
        if row["barrier_crossings"] > 0:
            sp = cast(pd.Series, spans.loc[str(tid)])
            problems.append(
                {
                    schema.TURF_ID: str(tid),
                    "problem": f"spans a barrier ({sp['barrier']}): its doors lie on "
                               f"{int(row['barrier_sides'])} sides",
                    "why": str(sp["why"]) + (f"; {note}" if note else ""),
                    "unavoidable": bool(sp["unavoidable"]),
                    "barrier": str(sp["barrier"]),
                    "crossing": _crossing_entry(sp, cast(pd.Series, crossing.loc[str(tid)])),
                }
            )
    return problems


def _summary(
    doors: gpd.GeoDataFrame,
    out: gpd.GeoDataFrame,
    spans: pd.DataFrame,
    indep: dict[str, Any],
    problems: list[dict[str, Any]],
) -> dict[str, Any]:
    n_turfs = len(out)
    spanning = spans["spans"].fillna(False).astype(bool)
    return {
        "doors_in": len(doors),
        "doors_assigned": int((doors[schema.STATUS] == schema.STATUS_ASSIGNED).sum()),
        "doors_unassigned": int((doors[schema.STATUS] != schema.STATUS_ASSIGNED).sum()),
        "turfs": n_turfs,
        "precincts_cut": int(out[schema.PRECINCT_ID].nunique()) if n_turfs else 0,
        "households": int(out["households"].sum()) if n_turfs else 0,
        "max_abs_deviation": float(np.abs(out["deviation"]).max()) if n_turfs else 0.0,
        "turfs_within_tolerance": int(out["within_tolerance"].sum()),
        "turfs_connected": int((out["pieces"] == 1).sum()),
        "turfs_one_piece_strict": int((out["strict_pieces"] == 1).sum()),
        "turfs_one_piece_strict_at_most": n_turfs - indep["strict_must_split"],
        "turfs_spanning_barriers": int(spanning.sum()),
        "turfs_spanning_barriers_unavoidable": int(
            spans["unavoidable"].fillna(False).astype(bool).sum()),
        "turfs_spanning_barriers_unexplained": sum(
            1 for p in problems if p.get("unavoidable") is False
        ),
        "unplaceable_sides": indep["unplaceable"],
        "precincts_beyond_bound": sorted(str(a) for a in indep["beyond_bound"].index),
        "mean_doors_per_turf": float(out["doors"].mean()) if n_turfs else 0.0,
        "mean_est_minutes": float(out["est_minutes"].mean()) if n_turfs else 0.0,
        "mean_polsby_popper": (float(np.nanmean(out["polsby_popper"]))
                               if np.isfinite(out["polsby_popper"].to_numpy(dtype=float)).any()
                               else None),
        "hull_overlap": float(indep["overlap"]),
    }


def _row_dict(row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            out[str(k)] = None
        elif isinstance(v, np.integer | int) and not isinstance(v, bool | np.bool_):
            out[str(k)] = int(v)
        elif isinstance(v, np.bool_ | bool):
            out[str(k)] = bool(v)
        elif isinstance(v, np.floating | float):
            out[str(k)] = float(v)
        else:
            out[str(k)] = str(v)
    return out


def _round(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}
