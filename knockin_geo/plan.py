"""The orchestrator: from doors, precincts and streets to a :class:`TurfPlan`, and its files.

``plan_turfs`` runs the stages in memory (for notebooks); ``write_plan`` writes the output
contract (``plan.gpkg`` with layers ``doors``, ``turfs``, ``routes``, ``precincts``, and
``report.json``) atomically and byte-for-byte reproducibly; ``plan.gpkg`` also holds the tables
that make it a complete plan (:mod:`knockin_geo.planfile`: :func:`~knockin_geo.planfile.read_plan`
reads it back).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from pyproj import CRS

from knockin_geo import __version__, schema
from knockin_geo._atomic import check_output_folder, move_into_place
from knockin_geo._errors import InputError
from knockin_geo.barriers import barrier_lines
from knockin_geo.crs import to_crs
from knockin_geo.export import assign_canvassers, write_exports, write_packets
from knockin_geo.gpkg import write_gpkg
from knockin_geo.maps import director_map, save_map, volunteer_page, write_maps
from knockin_geo.metrics import quality_report
from knockin_geo.model import TurfPlan
from knockin_geo.params import default_route_params, rule_params, size_unit
from knockin_geo.planfile import json_ready, plan_tables
from knockin_geo.privacy import MapLock, append_audit, apply_opt_outs, pseudonymize
from knockin_geo.rebalance import rebalance_routed, refresh_turfs, routed_figures
from knockin_geo.routing import RouteParams, empty_routes, route_turfs
from knockin_geo.snap import MAX_SNAP_M, snap_doors
from knockin_geo.streets import StreetNetwork
from knockin_geo.timing import TIMINGS_JSON, stage, timings_doc
from knockin_geo.turfs import TurfCut, TurfParams, cut_turfs
from knockin_geo.validate import join_precincts
from knockin_geo.walklist import walk_lists as write_walk_lists

logger = logging.getLogger(__name__)


#: Columns of the ``doors`` layer, in order.
DOOR_COLUMNS = (
    schema.ADDRESS_ID,
    schema.PRECINCT_ID,
    schema.TURF_ID,
    schema.SEQ,
    schema.STATUS,
    schema.HOUSENUMBER,
    schema.STREET,
    schema.UNIT,
    schema.HOUSEHOLDS,
    schema.SIDE,
    "snap_dist_m",
)


def _suggest_id(wanted: str, known: set[str]) -> str:
    """Return " (did you mean ...?)" for an unknown precinct id, or "".

    The suggestion is the id with its leading zeros (101 -> 0101), else the ids one typo away
    (one character changed, added or removed).
    """
    bare = wanted.lstrip("0")
    hits = sorted(k for k in known if k.lstrip("0") == bare and k != wanted)
    if not hits:
        hits = sorted(k for k in known if _one_edit(wanted.lower(), k.lower()))[:3]
    if not hits:
        return ""
    return " (did you mean " + " or ".join(repr(h) for h in hits) + "?)"


def _one_edit(a: str, b: str) -> bool:
    """Return whether ``b`` is ``a`` with one character changed, inserted or deleted."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def plan_turfs(
    addresses: gpd.GeoDataFrame,
    network: StreetNetwork,
    *,
    precincts: gpd.GeoDataFrame | None = None,
    params: TurfParams | None = None,
    max_snap_m: float = MAX_SNAP_M,
    universe: Iterable[str] | None = None,
    inputs: dict[str, Any] | None = None,
    route: bool = True,
    route_params: RouteParams | None = None,
    opt_outs: pd.DataFrame | None = None,
    route_workers: int | None = None,
) -> TurfPlan:
    """Snap doors to the streets and cut them into turfs, in memory.

    Parameters
    ----------
    addresses
        Doors from :func:`knockin_geo.io.read_addresses` (any CRS). When ``precincts`` is given
        and the doors have no ``precinct_id`` yet, they are joined to the precincts.
    network
        The walking network (:func:`knockin_geo.streets.load_network`); its CRS is used for all
        computations.
    precincts
        Precincts from :func:`knockin_geo.io.read_precincts`, or None to cut all doors as one
        area.
    params
        Turf parameters (default: 80 doors per turf, 10 % tolerance, seed 0).
    max_snap_m
        Doors farther than this from any walkable street stay unassigned (``no_street_nearby``).
    universe
        Precinct ids to cut; doors of other precincts get status ``not_in_universe``.
    inputs
        Description of the input files, copied into the report.
    route
        Compute the walking route of every turf (``seq`` and the ``routes`` layer).
    route_params
        Route parameters; by default the turf parameters' walking speed and minutes per door,
        and open routes starting at the end nearest the centre of all the plan's doors.
    opt_outs
        A do-not-knock list (:func:`knockin_geo.privacy.read_opt_outs`): those doors get status
        ``opted_out``, stay out of every turf and every volunteer file, and are counted.
    route_workers
        Processes that cut the areas (:func:`knockin_geo.turfs.cut_turfs`) and route the turfs
        (:func:`knockin_geo.routing.route_turfs`); None: one per core. The plan is the same
        whatever the number.

    Returns
    -------
    TurfPlan
        The plan (with the seconds each stage took in ``timings``). The inputs are not
        modified.
    """
    params = params or TurfParams()
    timings: dict[str, float] = {}
    crs = network.crs
    t0 = time.perf_counter()
    prec = to_crs(precincts, crs) if precincts is not None else None
    doors, chosen, n_opted_out = _prepared_doors(to_crs(addresses, crs), prec, universe,
                                                 opt_outs, params)
    timings["prepare"] = time.perf_counter() - t0
    snapped = _snapped(doors, network, params, max_snap_m, universe, chosen, timings)
    cut_precincts = prec if not params.cross_precincts else None
    with stage(timings, "cut"):
        cut = cut_turfs(snapped, network, precincts=cut_precincts, params=params,
                        workers=route_workers)
    extra = _report_head(crs, params, max_snap_m, inputs, universe, n_opted_out)
    out_doors, turf_table, routes = _unrouted(cut, crs)
    if route and len(turf_table):
        rp = route_params or default_route_params(out_doors, params)
        extra["route_params"] = dataclasses.asdict(rp)
        out_doors, turf_table, routes = _route(out_doors, turf_table, network, rp, params,
                                               route_workers, timings, extra)
    with stage(timings, "report"):
        turfs, report = quality_report(out_doors, turf_table, network,
                                       tolerance=params.tolerance, extra=extra,
                                       precincts=cut_precincts, rule=rule_params(params),
                                       unit=size_unit(params), routed=route)
    return TurfPlan(out_doors, turfs, routes, prec, report, params, network, timings)


def _snapped(doors: gpd.GeoDataFrame, network: StreetNetwork, params: TurfParams,
             max_snap_m: float, universe: Iterable[str] | None, chosen: Any,
             timings: dict[str, float]) -> gpd.GeoDataFrame:
    """Snap every door to a street side (not across a barrier); mark those outside the universe.

    Every door is snapped, in the universe or not: a precinct's streets are blocked by the
    doors of its neighbours whatever is being cut, so a precinct's turfs do not depend on the
    universe.
    """
    with stage(timings, "barriers"):
        lines = barrier_lines(
            network,
            highways=params.barrier_highways,
            railways=params.railways_are_barriers,
            waterways=params.waterways_are_barriers,
        )
    with stage(timings, "snap"):
        snapped = snap_doors(doors, network, max_snap_m=max_snap_m, barrier_lines=lines)
    if universe is not None:
        # outside the universe, "not selected" is the reason, whether a street was near or not
        out_of = snapped[schema.STATUS].isin([schema.STATUS_OK, "no_street_nearby"]) & ~snapped[
            schema.PRECINCT_ID
        ].isin(chosen)
        snapped.loc[out_of, schema.STATUS] = "not_in_universe"
    return snapped


def _unrouted(
    cut: TurfCut, crs: CRS,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Return the cut's doors (no walk order yet), turf table (walk = street length), no routes."""
    out_doors = cut.doors.copy()
    out_doors[schema.SEQ] = pd.array([pd.NA] * len(out_doors), dtype="Int64")
    turf_table = cut.turfs.copy()
    turf_table["walk_m"] = turf_table["street_m"]
    return out_doors, turf_table, empty_routes(crs)


def _prepared_doors(
    doors: gpd.GeoDataFrame, prec: gpd.GeoDataFrame | None, universe: Iterable[str] | None,
    opt_outs: pd.DataFrame | None, params: TurfParams,
) -> tuple[gpd.GeoDataFrame, set[str] | None, int]:
    """Give doors their precinct; mark opted-out doors and doors without voters."""
    doors, chosen = _doors_in_areas(doors, prec, universe)
    n_opted_out = 0
    if opt_outs is not None:
        doors, n_opted_out = apply_opt_outs(doors, opt_outs)
    if params.weight_column == "voters":
        doors = _mark_doors_without_voters(doors)
    return doors, chosen, n_opted_out


def _report_head(crs: CRS, params: TurfParams, max_snap_m: float, inputs: dict[str, Any] | None,
                 universe: Iterable[str] | None, n_opted_out: int) -> dict[str, Any]:
    """Return the report's first entries: version, CRS, parameters, inputs, universe."""
    return {
        "knockin_geo_version": __version__,
        "crs": crs.to_string(),
        "params": {**dataclasses.asdict(params), "max_snap_m": max_snap_m},
        "inputs": inputs or {},
        "universe": sorted(str(u) for u in universe) if universe is not None else None,
        "opted_out": n_opted_out,
    }


def _doors_in_areas(
    doors: gpd.GeoDataFrame, prec: gpd.GeoDataFrame | None, universe: Iterable[str] | None
) -> tuple[gpd.GeoDataFrame, set[str] | None]:
    """Give every door its precinct and check that the universe names known precincts."""
    if prec is not None and schema.PRECINCT_ID not in doors.columns:
        doors = join_precincts(doors, prec)
    if schema.PRECINCT_ID not in doors.columns:
        doors[schema.PRECINCT_ID] = pd.array([pd.NA] * len(doors), dtype="string")
    if universe is None:
        return doors, None
    chosen = {str(u) for u in universe}
    known = set(doors[schema.PRECINCT_ID].dropna().astype(str))
    if prec is not None:
        known |= set(prec.index.astype(str))
    unknown = sorted(chosen - known)
    if unknown:
        msg = "the universe names precincts that are not in the data"
        raise InputError(
            msg, [f"unknown precinct id {u!r}{_suggest_id(u, known)}" for u in unknown[:50]]
        )
    return doors, chosen


def _mark_doors_without_voters(doors: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Give doors without a voter the status ``no_voters`` (balancing on voters)."""
    if "voters" not in doors.columns:
        msg = "balancing on voters needs voters per door (privacy.join_voters / --voters)"
        raise InputError(msg)
    none = (doors[schema.STATUS] == schema.STATUS_OK) & (
        pd.to_numeric(doors["voters"], errors="coerce").fillna(0) <= 0
    )
    doors.loc[none, schema.STATUS] = "no_voters"
    return doors


def _route(
    out_doors: gpd.GeoDataFrame, turf_table: gpd.GeoDataFrame, network: StreetNetwork,
    rp: RouteParams, params: TurfParams, route_workers: int | None,
    timings: dict[str, float], extra: dict[str, Any],
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Route every turf, balance minutes on the routes when cutting by minutes."""
    with stage(timings, "route"):
        routes, seq = route_turfs(out_doors, network, rp, workers=route_workers)
    if params.mode == "minutes" and params.rebalance_rounds > 0:
        with stage(timings, "rebalance"):
            out_doors, turf_table, routes, seq, extra["rebalance"] = _rebalance(
                out_doors, turf_table, routes, seq, network, rp, params, route_workers)
    out_doors[schema.SEQ] = seq
    return out_doors, routed_figures(turf_table, routes, params), routes


def _rebalance(
    doors: gpd.GeoDataFrame,
    turfs: gpd.GeoDataFrame,
    routes: gpd.GeoDataFrame,
    seq: pd.Series,
    network: StreetNetwork,
    rp: RouteParams,
    params: TurfParams,
    workers: int | None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, pd.Series, dict[str, Any]]:
    """Balance on routed minutes (:mod:`knockin_geo.rebalance`); return the updated stages."""
    rb = rebalance_routed(doors, routes, seq, network, rp, tolerance=params.tolerance,
                          rounds=params.rebalance_rounds, by_precinct=not params.cross_precincts,
                          workers=workers)
    doors = doors.copy()
    doors[schema.TURF_ID] = rb.labels
    changed = {t for m in rb.moves for t in m[:2]}
    edge_len = network.edges["length"].to_numpy(dtype=float)
    turfs = refresh_turfs(turfs, doors, changed, edge_len)
    info = {"rounds": rb.rounds, "moves": len(rb.moves),
            "doors_moved": int(sum(m[2] for m in rb.moves)), "turfs_changed": len(changed)}
    return doors, turfs, rb.routes, rb.seq, info


def doors_layer(plan: TurfPlan) -> gpd.GeoDataFrame:
    """Return the ``doors`` layer of the output contract (one row per input address).

    Parameters
    ----------
    plan
        A plan.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`DOOR_COLUMNS` and the door point, metric CRS.
    """
    d = plan.doors
    cols: dict[str, Any] = {schema.ADDRESS_ID: d.index.astype(str).to_numpy(dtype=object)}
    for c in DOOR_COLUMNS[1:]:
        if c in d.columns:
            cols[c] = d[c].to_numpy()
        else:
            cols[c] = [None] * len(d)
    frame = pd.DataFrame(cols)
    for c in (schema.PRECINCT_ID, schema.TURF_ID, schema.STATUS, schema.HOUSENUMBER,
              schema.STREET, schema.UNIT, schema.SIDE):
        frame[c] = frame[c].astype("string")
    frame[schema.SEQ] = frame[schema.SEQ].astype("Int64")
    frame[schema.HOUSEHOLDS] = frame[schema.HOUSEHOLDS].astype("Int64")
    frame["snap_dist_m"] = pd.to_numeric(frame["snap_dist_m"], errors="coerce").round(2)
    return gpd.GeoDataFrame(frame, geometry=d.geometry.to_numpy(), crs=d.crs)


def turfs_layer(plan: TurfPlan) -> gpd.GeoDataFrame:
    """Return the ``turfs`` layer of the output contract.

    Parameters
    ----------
    plan
        A plan.

    Returns
    -------
    geopandas.GeoDataFrame
        ``turf_id``, ``precinct_id``, ``doors``, ``households``, ``walk_m``, ``est_minutes``,
        ``deviation``, ``pieces``, ``barrier_crossings``, ``polsby_popper``, ``note``,
        ``locked`` (plans with hand edits only) and the footprint polygon.
    """
    t = plan.turfs
    keep = [
        schema.PRECINCT_ID, "doors", "households", "walk_m", "route_m", "est_minutes",
        "deviation", "pieces", "barrier_crossings", "polsby_popper", "note", schema.LOCKED,
    ]
    frame = t[[c for c in keep if c in t.columns]].copy()
    frame.insert(0, schema.TURF_ID, t.index.astype(str))
    frame = frame.reset_index(drop=True)
    return gpd.GeoDataFrame(frame, geometry=t.geometry.to_numpy(), crs=t.crs)


def precincts_layer(plan: TurfPlan) -> gpd.GeoDataFrame:
    """Return the ``precincts`` layer of the output contract.

    Parameters
    ----------
    plan
        A plan.

    Returns
    -------
    geopandas.GeoDataFrame
        ``precinct_id``, ``name`` (when the precincts have one) and the polygon; no rows when
        the plan has no precincts.
    """
    pr = plan.precincts
    if pr is None:
        frame = pd.DataFrame({schema.PRECINCT_ID: pd.Series([], dtype="string")})
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=plan.crs), crs=plan.crs)
    frame = pd.DataFrame({schema.PRECINCT_ID: pr.index.astype(str)})
    if schema.NAME in pr.columns:
        frame[schema.NAME] = pr[schema.NAME].astype("string").to_numpy()
    return gpd.GeoDataFrame(frame, geometry=pr.geometry.to_numpy(), crs=pr.crs)


def routes_layer(plan: TurfPlan) -> gpd.GeoDataFrame:
    """Return the ``routes`` layer (``turf_id``, ``length_m``, line).

    Parameters
    ----------
    plan
        A plan.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per routed turf.
    """
    r = plan.routes
    frame = r.drop(columns="geometry").copy()
    frame.insert(0, schema.TURF_ID, r.index.astype(str))
    frame = frame.reset_index(drop=True)
    return gpd.GeoDataFrame(frame, geometry=r.geometry.to_numpy(), crs=r.crs)


def write_plan(
    plan: TurfPlan, out_dir: str | os.PathLike[str], *,
    walk_lists: bool = True, maps: bool = True, exports: bool = True, lang: str = "fr",
    canvassers: pd.DataFrame | None = None, secret: bytes | None = None,
    map_code: str | MapLock | None = None, audit_log: str | os.PathLike[str] | None = None,
    field_policy: Any = None, timings: dict[str, float] | None = None,
    workers: int | None = 1, input_files: dict[str, str | os.PathLike[str] | None] | None = None,
    extra_files: Mapping[str, bytes] | None = None,
) -> list[Path]:
    """Write ``plan.gpkg``, ``report.json`` and ``walklists/`` into ``out_dir``, atomically.

    Everything goes to a temporary folder in ``out_dir``, then each file moves into place with
    one rename: an interrupted run leaves the previous outputs, never half-written files.

    Parameters
    ----------
    plan, out_dir
        The plan to write; the output folder (created if needed).
    walk_lists, maps, exports
        Also write one printable walk list per turf (``walklists/``, when routed); the
        director's ``map.html`` and one phone map per turf (``maps/``); the assignment files
        (``exports/``: CSV, GeoJSON, GPX, KML, app JSON).
    lang
        Language of the walk lists and volunteer maps (``fr`` or ``en``).
    canvassers
        Canvassers (:func:`knockin_geo.export.read_canvassers`): their packets go to ``packets/``.
    secret
        Campaign secret (:func:`knockin_geo.privacy.load_secret`): volunteer-facing exports
        carry keyed pseudonyms, not address ids; ``exports/assignments.csv`` keeps the mapping.
    map_code
        Access code locking every volunteer map (AES-GCM), or a
        :class:`~knockin_geo.privacy.MapLock`; a plain code is combined with ``secret``.
    field_policy
        A :class:`knockin_geo.privacy.FieldPolicy`: extra door columns on the walk lists
        (personal ones only when allowed explicitly).
    audit_log
        Append a record of this export (files with sha256, turfs, recipients, user, time) here.
    timings
        Filled with the plan's and each writer's seconds, written to ``timings.json`` (the one
        file that changes between identical runs); None: no ``timings.json``.
    workers
        Processes building the per-turf files; None: one per core. Same files whatever the number.
    input_files, extra_files
        The input files by role, recorded with their SHA-256 in ``plan.gpkg``
        (:func:`~knockin_geo.planfile.plan_tables`); more files to write, by name (``edits.json``).

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    InputError
        ``out_dir`` (or a folder above it) is an existing file.
    """
    extra_fields = field_policy.check(plan.doors) if field_policy is not None else ()
    if isinstance(map_code, str):
        map_code = MapLock(map_code, secret)
    out = check_output_folder(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".knockin-", dir=out))
    if timings is not None:
        timings.update(plan.timings)
    try:
        _write_tables(plan, tmp, input_files, timings, lang=lang, base=out)
        pseudonyms = _pseudonyms(plan, secret)
        _write_volunteer_files(plan, tmp, walk_lists=walk_lists, maps=maps, lang=lang,
                               extra_fields=extra_fields, map_code=map_code,
                               pseudonyms=pseudonyms, timings=timings, workers=workers)
        if exports and len(plan.turfs):
            _write_exports(plan, tmp, canvassers, pseudonyms, lang, map_code, timings, workers)
        _write_extras(tmp, extra_files, timings)
        written = move_into_place(tmp, out)
        if audit_log is not None:
            audit_export(plan, out, written, audit_log, canvassers)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_extras(tmp: Path, extra_files: Mapping[str, bytes] | None,
                  timings: dict[str, float] | None) -> None:
    """Write the caller's extra files and, when asked for, ``timings.json`` into ``tmp``."""
    for name, data in sorted((extra_files or {}).items()):
        (tmp / name).write_bytes(data)
    if timings is not None:
        (tmp / TIMINGS_JSON).write_text(timings_doc(timings), encoding="utf-8")


def _pseudonyms(plan: TurfPlan, secret: bytes | None) -> dict[str, str] | None:
    """Return each door's keyed pseudonym (address id -> pseudonym), or None without a secret."""
    if secret is None:
        return None
    ids = plan.doors.index.astype(str)
    return dict(zip(ids, pseudonymize(ids, secret), strict=True))


def _write_tables(plan: TurfPlan, tmp: Path,
                  input_files: dict[str, str | os.PathLike[str] | None] | None,
                  timings: dict[str, float] | None, lang: str, base: Path) -> None:
    """Write ``plan.gpkg`` (the layers and the plan tables) and ``report.json`` into ``tmp``."""
    with stage(timings, "gpkg"):
        layers = [
            ("doors", doors_layer(plan)),
            ("turfs", turfs_layer(plan)),
            ("routes", routes_layer(plan)),
        ]
        if plan.precincts is not None:
            layers.append(("precincts", precincts_layer(plan)))
        tables = plan_tables(plan, input_files, lang=lang, base=base)
        write_gpkg(tmp / "plan.gpkg", [*layers, *tables])
    with stage(timings, "report_json"):
        (tmp / "report.json").write_text(report_json(plan.report), encoding="utf-8")


def _write_volunteer_files(
    plan: TurfPlan, tmp: Path, *, walk_lists: bool, maps: bool, lang: str,
    extra_fields: Any, map_code: MapLock | None, pseudonyms: dict[str, str] | None,
    timings: dict[str, float] | None, workers: int | None,
) -> None:
    """Write the walk lists, the director's map and the phone maps into ``tmp``."""
    if len(plan.routes):
        if walk_lists:
            with stage(timings, "walk_lists"):
                write_walk_lists(plan, tmp / "walklists", lang=lang, extra_fields=extra_fields,
                                 workers=workers)
        if maps:
            with stage(timings, "maps"):
                write_maps(plan, tmp, lang=lang, map_code=map_code, door_ids=pseudonyms,
                           workers=workers)
    elif maps and len(plan.turfs):
        with stage(timings, "maps"):
            save_map(director_map(plan), tmp / "map.html")


def _write_exports(
    plan: TurfPlan,
    tmp: Path,
    canvassers: pd.DataFrame | None,
    pseudonyms: dict[str, str] | None,
    lang: str,
    map_code: str | MapLock | None,
    timings: dict[str, float] | None,
    workers: int | None = 1,
) -> None:
    """Write ``exports/`` (and ``packets/`` when there are canvassers) into ``tmp``."""
    with stage(timings, "exports"):
        assignment = None
        if canvassers is not None:
            assignment = assign_canvassers(plan, canvassers)
        write_exports(plan, tmp, canvassers=canvassers, assignment=assignment,
                      pseudonyms=pseudonyms, timings=timings, workers=workers)
        if assignment is None or canvassers is None:
            return

        def map_file(tid: str) -> dict[str, bytes]:
            page = volunteer_page(plan, tid, lang=lang, map_code=map_code, door_ids=pseudonyms)
            return {f"{tid}-map.html": page.encode("utf-8")}

        with stage(timings, "packets"):
            write_packets(plan, tmp, assignment, canvassers, lang=lang, extra_files=map_file,
                          workers=workers)


def audit_export(
    plan: TurfPlan,
    out: Path,
    written: list[Path],
    log: str | os.PathLike[str],
    canvassers: pd.DataFrame | None,
    *,
    shown_as: Path | None = None,
) -> None:
    """Append one audit record for the whole export, and one per canvasser packet.

    Parameters
    ----------
    plan
        The plan written.
    out
        The folder it was written into.
    written
        The files written (from :func:`write_plan`).
    log
        The audit log (JSON lines, appended to).
    canvassers
        The canvassers given to :func:`write_plan`, if any (one ``packet`` record each).
    shown_as
        Where ``out`` will be once renamed into place (a batch area built in a temporary
        folder): the paths are recorded there.
    """
    moved = (out, shown_as) if shown_as is not None else None
    turfs = plan.turfs.index.astype(str).tolist()
    append_audit(log, action="export", files=[p for p in written
                                              if "packets" not in p.relative_to(out).parts],
                 turfs=turfs, extra={"out_dir": str(shown_as or out)}, moved=moved)
    if canvassers is None:
        return
    packets = out / "packets"
    for folder in sorted(p for p in packets.iterdir() if p.is_dir()) if packets.is_dir() else []:
        files = sorted(folder.iterdir())
        mine = sorted({f.name.split(".")[0].removesuffix("-map") for f in files
                       if f.suffix in (".html", ".gpx")})
        append_audit(log, action="packet", files=files, turfs=mine, recipient=folder.name,
                     moved=moved)


def report_json(report: dict[str, Any]) -> str:
    """Serialise a report deterministically (sorted keys, fixed float format)."""
    return json.dumps(_jsonable(report), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _jsonable(obj: Any) -> Any:
    return json_ready(obj, digits=6)


def covered_precincts(precincts: gpd.GeoDataFrame, network: StreetNetwork) -> list[str]:
    """Return the ids of the precincts that lie entirely inside the street network's extent.

    A clipped OSM extract covers some precincts only in part; cutting those would strand the
    doors beyond the clip. This picks the precincts the network fully covers.

    Parameters
    ----------
    precincts
        Precinct polygons (any CRS).
    network
        The street network.

    Returns
    -------
    list of str
        Sorted precinct ids.
    """
    extent = shapely.box(*network.nodes.total_bounds)
    pr = to_crs(precincts, network.crs)
    inside = shapely.within(pr.geometry.to_numpy(), extent)
    return sorted(pr.index[inside].astype(str).tolist())
