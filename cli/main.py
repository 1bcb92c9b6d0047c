"""``knockin-geo``: command-line entry point, a thin layer over the public API.

Exit codes: 0 success, 2 bad input (a message on stderr, no traceback, nothing written),
1 internal error.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from knockin_geo.cli import argtypes, outdir
from rich.console import Console
from rich.table import Table
from rich.text import Text

from knockin_geo import (
    __version__,
    batch,
    canvass,
    db,
    io,
    pipeline,
    planfile,
    schema,
    streets,
    target,
    validate,
)
from knockin_geo._atomic import check_output_folder, write_text_atomic
from knockin_geo._errors import InputError, KnockinGeoError
from knockin_geo.canvass import read_calibration
from knockin_geo.config import PlanConfig, default, flag, key_names
from knockin_geo.edits import EditResult, Edits, apply_edits, holding_locks, read_edits
from knockin_geo.plan import covered_precincts
from knockin_geo.privacy import load_secret
from knockin_geo.recut import recut
from knockin_geo.sheets import frame_csv
from knockin_geo.target import SHARES_NOTE
from knockin_geo.turfs import TurfParams

logger = logging.getLogger("knockin_geo.cli")

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2


class _Console:
    """Terminal output: rich when available and stderr is a terminal, plain text otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

        # no markup: names and values from input files ("[/x]", "[bold]") are printed as they are
        self.out = Console(highlight=False, markup=False)
        self.err = Console(stderr=True, highlight=False, markup=False)

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        """Show a spinner while a long step runs, then its duration."""
        start = time.perf_counter()
        if self.quiet:
            yield
            return
        with self.err.status(f"{text}..."):
            yield

        took = f"({time.perf_counter() - start:.1f} s)"
        self.err.print(Text.assemble(("✓", "green"), f" {text} ", (took, "dim")))


def _data_dir(explicit: str | None) -> Path:
    candidates = []
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get("KNOCKIN_GEO_DATA"):
        candidates.append(Path(os.environ["KNOCKIN_GEO_DATA"]))
    candidates += [Path(__file__).resolve().parents[1] / "data", Path.cwd() / "data"]
    for c in candidates:
        if (c / "nantes" / "osm" / "nantes_centre_2014-09.osm.pbf").is_file():
            return c
    msg = (
        "cannot find the bundled sample data (data/nantes/...): run the demo from a clone of "
        "the repository, or pass --data PATH/TO/data"
    )
    raise InputError(msg)


def _step(ui: _Console) -> Any:
    """Return the console's spinner for the library's long steps (:data:`pipeline.Step`)."""
    return ui.step


def _read_inputs(args: argparse.Namespace, ui: _Console) -> tuple[Any, Any]:
    inp = pipeline.read_inputs(_config(args), step=_step(ui))
    return inp.precincts, inp.addresses


def _add_input_args(p: argparse.ArgumentParser, *, network_required: bool,
                    addresses_required: bool = True) -> None:
    g = p.add_argument_group("inputs")
    g.add_argument("--precincts", metavar="FILE",
                   help="precinct polygons (GeoJSON, GeoPackage, Shapefile...)")
    g.add_argument("--addresses", required=addresses_required, metavar="FILE",
                   help="address points (CSV, BAN, OGR layer)")
    net = g.add_mutually_exclusive_group(required=network_required)
    net.add_argument("--network", metavar="FILE",
                     help="street network: .osm.pbf, .osm, .osm.bz2 or .graphml")
    net.add_argument("--download", action="store_true",
                     help="download the walking network for the precincts' (or doors') extent "
                          "from OpenStreetMap with osmnx (needs the internet)")
    g.add_argument("--network-profile", choices=("canvass", "walk"),
                   help="which OSM ways are walked: canvass (default) also keeps the private "
                        "residential and service roads that lead to doors; walk is osmnx's "
                        "walk filter (drops access=private)")
    g.add_argument("--precinct-id", metavar="COL",
                   help="precinct id column (detected when omitted)")
    g.add_argument("--address-id", metavar="COL", help="address id column (detected when omitted)")
    g.add_argument("--addr-column", action="append", metavar="ROLE=COLUMN",
                   help="map an address role (lon, lat, x, y, housenumber, street, unit, "
                        "households, id...) to a column; repeatable")
    g.add_argument("--columns-config", metavar="TOML", help="column map file ([addresses] table)")
    g.add_argument("--crs", metavar="CRS",
                   help="CRS of projected x/y address columns (e.g. EPSG:2154)")
    g.add_argument("--precincts-crs", metavar="CRS",
                   help="CRS of the precinct file when it has none (a Shapefile without .prj)")
    g.add_argument("--encoding", metavar="ENC",
                   help="address file encoding (detected when omitted)")
    g.add_argument("--strict", action="store_true",
                   help="refuse rows with bad coordinates instead of marking them")
    g.add_argument("--no-cache", action="store_true", help="rebuild the street network")


def cmd_inspect(args: argparse.Namespace, ui: _Console) -> int:
    """Print what knockin_geo finds in the inputs."""
    precincts, addresses = _read_inputs(args, ui)
    if precincts is not None:
        with ui.step("joining addresses to precincts"):
            precincts_m, addresses_m, crs = validate.prepare_inputs(precincts, addresses)
            joined = validate.join_precincts(addresses_m, precincts_m)
    else:
        joined = addresses
    t = Table(title="Inputs", show_header=False)
    if precincts is not None:
        t.add_row("precincts", f"{len(precincts):,} from {args.precincts}")
        t.add_row("precinct id column", str(precincts.attrs.get("id_column")))
        t.add_row("precincts CRS", str(precincts.crs.to_string()))
        if precincts.attrs.get("repaired"):
            t.add_row("repaired polygons", ", ".join(precincts.attrs["repaired"]))
    t.add_row("addresses", f"{len(addresses):,} from {args.addresses}")
    t.add_row("format / encoding",
              f"{addresses.attrs.get('format')} / {addresses.attrs.get('encoding')}")
    used = addresses.attrs.get("columns_used", {})
    t.add_row("columns used", ", ".join(f"{k}={v}" for k, v in used.items()))
    t.add_row("addresses CRS", str(addresses.crs.to_string() if addresses.crs else None))
    if precincts is not None:
        inside = int(joined[schema.PRECINCT_ID].notna().sum())
        t.add_row("inside a precinct", f"{inside:,}")
        t.add_row("local metric CRS", crs.to_string())
    ui.out.print(t)
    s = Table(title="Address status")
    s.add_column("status")
    s.add_column("count", justify="right")
    s.add_column("meaning")
    for status, count in validate.status_counts(joined).items():
        s.add_row(status, f"{count:,}", schema.ADDRESS_STATUSES.get(status, ""))
    ui.out.print(s)
    bad = joined[joined[schema.STATUS] != schema.STATUS_OK]
    if len(bad):
        b = Table(title=f"Addresses not usable ({len(bad):,}; first 20)")
        for c in ("address_id", "source_row", "status", "housenumber", "street"):
            b.add_column(c)
        for aid, row in bad.head(20).iterrows():
            b.add_row(str(aid), str(row[schema.SOURCE_ROW]), str(row[schema.STATUS]),
                      str(row[schema.HOUSENUMBER]), str(row[schema.STREET]))
        ui.out.print(b)
    if args.network or getattr(args, "download", False):
        net = pipeline.load_street_network(
            _config(args), precincts if precincts is not None else addresses,
            step=_step(ui))
        summ = net.summary()
        n = Table(title="Street network", show_header=False)
        n.add_row("nodes / edges", f"{summ['nodes']:,} / {summ['edges']:,}")
        n.add_row("length", f"{summ['total_km']:.1f} km")
        n.add_row("connected components", f"{summ['components']:,}")
        n.add_row("largest component",
                  f"{summ['largest_component_nodes']:,} nodes "
                  f"({100 * summ['largest_component_share']:.1f} %)")
        n.add_row("CRS", summ["crs"])
        for kind, count in sorted(summ["barriers"].items()):
            sub = summ["barrier_subtypes"][kind]
            detail = ", ".join(f"{k} {v}" for k, v in sorted(sub.items()))
            n.add_row(f"barriers: {kind}", f"{count:,} ({detail})")
        marks = summ.get("crossings") or {}
        n.add_row("marked crossings",
                  ", ".join(f"{k} {v:,}" for k, v in marks.items()) if marks
                  else "none in the file (crossing points: where a street meets a barrier)")
        ui.out.print(n)
    return EXIT_OK


def _config(args: argparse.Namespace) -> PlanConfig:
    """Return the settings of a command's flags (``--calibration FILE``: the pace it measured)."""
    config = PlanConfig.from_flags(args)
    path = getattr(args, "calibration", None)
    if not path:
        return config
    return config.replace(**read_calibration(path))


def _add_cut_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("which doors")
    g.add_argument("--universe", metavar="IDS",
                   help="precincts to cut: comma-separated ids, @FILE (one id per line), or "
                        "'covered' (those the street network covers entirely)")
    g.add_argument("--max-snap-m", metavar="M", type=argtypes.positive,
                   help=f"largest door-to-street distance ({default('max_snap_m'):g} m)")
    g.add_argument("--voters", metavar="CSV",
                   help="voter or contact file (one row per voter with the address id of their "
                        "door): counts voters per door; its personal columns never leave")
    g.add_argument("--voters-key", metavar="COL",
                   help="voter-file column holding the door's address id "
                        f"({default('voters_key')})")
    g.add_argument("--voters-flag", action="append", metavar="COLUMN",
                   help="voter-file yes/no column carried to the doors as flag_<column>")

    g = p.add_argument_group("turf size")
    size = g.add_mutually_exclusive_group()
    size.add_argument("--doors-per-turf", metavar="N", type=argtypes.positive,
                      help=f"target doors per turf (default {TurfParams.doors_per_turf:g})")
    size.add_argument("--minutes-per-turf", metavar="MIN", type=argtypes.positive,
                      help="target minutes of work per turf")
    g.add_argument("--balance-on", choices=("households", "voters", "doors"),
                   help="what a turf's size counts: households (default), voters (needs "
                        "--voters; doors without voters are left out) or doors")
    g.add_argument("--tolerance", metavar="T", type=argtypes.open_fraction,
                   help="largest relative deviation from the precinct's mean turf "
                        f"({default('tolerance'):.2f})")
    g.add_argument("--walk-speed-kmh", metavar="KMH", type=argtypes.positive,
                   help=f"walking speed ({default('walk_speed_kmh'):g} km/h)")
    g.add_argument("--minutes-per-door", metavar="MIN", type=argtypes.non_negative,
                   help=f"minutes spent per door ({default('minutes_per_door'):g})")
    g.add_argument("--seed", metavar="S", type=argtypes.seed,
                   help="random seed (same seed, same output)")
    g.add_argument("--refine", choices=("none", "fix", "compact"),
                   help="after the cut, move doors between neighbouring turfs: fix (default) "
                        "joins a turf's stray pieces to a neighbour on the same street side, "
                        "evens out turfs beyond the tolerance and makes interleaved turfs "
                        "rounder; compact makes every turf rounder (slower); none keeps the cut "
                        "as it is")
    g.add_argument("--calibration", metavar="FILE",
                   help="progress_calibration.csv from 'knockin-geo progress --calibrate --out "
                        "DIR': its measured minutes per household replace --minutes-per-door, "
                        "and its walking pace (when measured) --walk-speed-kmh")

    g = p.add_argument_group("barriers")
    g.add_argument("--cross-precincts", action="store_true",
                   help="let turfs cross precinct boundaries")
    g.add_argument("--barriers", choices=("default", "strict"),
                   help="default: a turf crosses a busy road, railway or river only where its "
                        "side cannot hold whole turfs; strict: never (that side becomes a "
                        "small turf, flagged in the report)")
    g.add_argument("--crossing-m", metavar="M", type=argtypes.non_negative,
                   help="cost of crossing a busy street, in metres of walking "
                        f"({default('crossing_m'):g})")

    g = p.add_argument_group("routes")
    g.add_argument("--loop", action="store_true", help="routes return to their start")
    g.add_argument("--start", metavar="LON,LAT",
                   help="start every route at this point (campaign office, transit stop)")
    g.add_argument("--no-route", action="store_true", help="cut only; no routes or walk lists")
    g.add_argument("--no-rebalance", action="store_true",
                   help="minutes mode: keep the cut balanced on the estimate before routing "
                        "(by default doors move between neighbouring turfs until their routed "
                        "minutes are within tolerance)")
    g.add_argument("--workers", metavar="N", type=argtypes.count,
                   help="processes that cut the precincts, route turfs and build the walk "
                        "lists and phone maps (default: all cores; same files whatever N)")

    _add_output_args(p)
    _add_privacy_args(p)


def _add_output_args(p: argparse.ArgumentParser, *, out_required: bool = True) -> None:
    g = p.add_argument_group("outputs")
    g.add_argument("--out", required=out_required, metavar="DIR",
                   help="output folder" + ("" if out_required else
                                           " (default: --plan, with --overwrite)"))
    g.add_argument("--overwrite", action="store_true",
                   help="replace the plan already in --out (refused without it)")
    g.add_argument("--lang", choices=("fr", "en"), help="walk list language (fr)")
    g.add_argument("--no-walk-lists", action="store_true", help="no walklists/")
    g.add_argument("--no-maps", action="store_true", help="no map.html nor maps/")
    g.add_argument("--no-exports", action="store_true", help="no exports/ nor packets/")
    g.add_argument("--canvassers", metavar="CSV",
                   help="canvassers (canvasser_id, name, team, lon, lat, capacity): assign turfs "
                        "and write one packet per canvasser")
    g.add_argument("--volunteer-field", action="append", metavar="COLUMN",
                   help="also show this door column on the walk lists (e.g. voters, "
                        "flag_priority); repeatable")
    g.add_argument("--db", metavar="URL",
                   help="also write the plan into PostGIS, e.g. postgresql://user@host/campaign "
                        "(password from PGPASSWORD or ~/.pgpass, not on the command line)")
    g.add_argument("--db-schema", metavar="S", default="public", help="database schema (public)")
    g.add_argument("--db-prefix", metavar="P", default="knockin_",
                   help="table name prefix (knockin_)")
    g.add_argument("--plan-id", metavar="ID",
                   help="id of this plan in the database (derived when omitted)")


def _add_privacy_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("privacy")
    g.add_argument("--opt-outs", metavar="CSV",
                   help="do-not-knock list (address_id, or housenumber + street): those doors "
                        "stay out of every turf and volunteer file")
    g.add_argument("--allow-personal-field", action="append", metavar="COLUMN",
                   help="allow a --volunteer-field that looks personal (logged); repeatable")
    g.add_argument("--pseudonymize", action="store_true",
                   help="volunteer files carry keyed pseudonyms (HMAC-SHA256) instead of address "
                        "ids; secret from $KNOCKIN_GEO_SECRET or --secret-file")
    g.add_argument("--secret-file", metavar="FILE", help="file holding the campaign secret")
    g.add_argument("--lock-maps", action="store_true",
                   help="encrypt every volunteer map with the access code in "
                        "$KNOCKIN_GEO_MAP_CODE (opened in the browser with the code)")


def _run_cut(config: PlanConfig, args: argparse.Namespace, ui: _Console,
             transform: Any = None, load: Any = None, inputs: Any = None,
             extra_files: Any = None) -> int:
    """Run a cut of ``config`` into ``--out`` (with the CLI's checks, database and summary)."""
    outdir.check_out(args.out, overwrite=getattr(args, "overwrite", False))
    if getattr(args, "db", None):
        with ui.step(f"checking {db.mask_url(args.db)}"):
            db.check_database(args.db)
    result = pipeline.run_cut(config, args.out, step=_step(ui),
                              workers=getattr(args, "workers", None), transform=transform,
                              load=load, inputs=inputs, extra_files=extra_files)
    if getattr(args, "verbose", 0):
        _print_timings(ui, result.timings)
    if getattr(args, "db", None):
        with ui.step(f"writing {db.mask_url(args.db)}"):
            counts = db.write_postgis(result.plan, args.db, db_schema=args.db_schema,
                                      prefix=args.db_prefix, plan_id=args.plan_id)
        ui.out.print("database: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    _print_summary(ui, result.plan.report)
    _print_written(ui, Path(args.out), result.files)
    return EXIT_OK


def _print_summary(ui: _Console, report: dict[str, Any]) -> None:
    """Print the report's figures and the turfs that miss a target."""
    summ = report["summary"]
    t = Table(title="Turfs", show_header=False)
    t.add_row("doors in", f"{summ['doors_in']:,}")
    t.add_row("assigned", f"{summ['doors_assigned']:,}")
    for reason, count in report["unassigned"].items():
        t.add_row(f"unassigned: {reason}", f"{count:,}")
    t.add_row("turfs", f"{summ['turfs']:,} in {summ['precincts_cut']:,} precincts")
    on = summ.get("balance_measured_on", "")
    t.add_row(f"within tolerance ({on})" if on else "within tolerance",
              f"{summ['turfs_within_tolerance']:,} / {summ['turfs']:,} "
              f"(max deviation {100 * summ['max_abs_deviation']:.1f} %)")
    if "turfs_within_tolerance_precut" in summ:
        t.add_row("within tolerance (estimate before routing)",
                  f"{summ['turfs_within_tolerance_precut']:,} / {summ['turfs']:,}")
    spread = report.get("minutes_by_precinct") or {}
    if spread:
        worst = max(spread.items(), key=lambda kv: (kv[1]["ratio"] or 0, kv[0]))
        t.add_row("routed minutes per turf (min-max)",
                  f"{min(v['min_minutes'] for v in spread.values()):.0f}-"
                  f"{max(v['max_minutes'] for v in spread.values()):.0f}; widest precinct "
                  f"{worst[0] or 'all'}: {worst[1]['min_minutes']:.0f}-"
                  f"{worst[1]['max_minutes']:.0f} (x{worst[1]['ratio'] or 0:.2f})")
    t.add_row("one piece (strict / passing others)",
              f"{summ['turfs_one_piece_strict']:,} / {summ['turfs_connected']:,} "
              f"of {summ['turfs']:,} (strictly at most "
              f"{summ['turfs_one_piece_strict_at_most']:,}: see docs/report.md)")
    t.add_row("spanning a barrier", f"{summ['turfs_spanning_barriers']:,} "
              f"({summ['turfs_spanning_barriers_unavoidable']} unavoidable, "
              f"{summ['turfs_spanning_barriers_unexplained']} avoidable; "
              f"{summ['unplaceable_sides']} precinct sides hold no whole turfs)")
    t.add_row("compactness", f"mean Polsby-Popper {summ['mean_polsby_popper'] or 0:.2f}, "
              f"hull overlap {100 * summ['hull_overlap']:.1f} %")
    t.add_row("mean doors / minutes" + (" (routed)" if spread else ""),
              f"{summ['mean_doors_per_turf']:.0f} / {summ['mean_est_minutes']:.0f}")
    ui.out.print(t)
    if report["problems"]:
        pt = Table(title="Turfs that miss a target, and why")
        for c in ("turf", "problem", "why"):
            pt.add_column(c)
        for prob in report["problems"]:
            pt.add_row(prob[schema.TURF_ID], prob["problem"], prob["why"])
        ui.out.print(pt)


def _print_written(ui: _Console, out_dir: Path, files: list[Path]) -> None:
    """Print the files written: top-level ones by name, folders with their count."""
    groups: dict[str, list[Path]] = {}
    for f in files:
        rel = f.relative_to(out_dir)
        groups.setdefault(rel.parts[0] if len(rel.parts) > 1 else "", []).append(rel)
    for rel in groups.pop("", []):
        ui.out.print(f"wrote {out_dir / rel}")
    for folder, items in sorted(groups.items()):
        ui.out.print(f"wrote {out_dir / folder}/ ({len(items)} files)")


def _print_timings(ui: _Console, timings: dict[str, float]) -> None:
    """Seconds per stage (also in OUT/timings.json)."""
    t = Table(title="Seconds per stage (timings.json)")
    t.add_column("stage")
    t.add_column("s", justify="right")
    for name, seconds in timings.items():
        t.add_row(name, f"{seconds:.2f}")
    ui.out.print(t)


def cmd_cut(args: argparse.Namespace, ui: _Console) -> int:
    """Cut turfs and write the output contract (``--edits``: then apply the hand edits)."""
    if not getattr(args, "edits", None):
        return _run_cut(_config(args), args, ui)
    edits = read_edits(args.edits)

    def transform(plan: Any) -> Any:
        with ui.step(f"applying the hand edits of {args.edits}"):
            result = apply_edits(plan, edits, around_locks=True, workers=args.workers)
        return _print_edits(ui, result)

    return _run_cut(_config(args), args, ui, transform=transform,
                    extra_files=_edits_file(args.edits))


def _edits_file(path: str) -> dict[str, bytes]:
    """Return the edits file applied, to copy into the plan folder as ``edits.json``."""
    return {"edits.json": Path(path).read_bytes()}


def _print_edits(ui: _Console, result: EditResult) -> Any:
    """Print one line per edit (what it did), the turfs to send again; return the edited plan."""
    for line in result.lines():
        ui.out.print(Text(line))
    alive = set(map(str, result.plan.turfs.index))
    changed = [t for t in result.touched if t in alive]
    retired = [t for t in result.touched if t not in alive]
    if changed:
        ui.out.print(Text(f"volunteer files changed: {', '.join(changed)} (send them "
                          "again; the other turfs' files are unchanged)"))
    if retired:
        ui.out.print(Text(f"turfs retired (their files are gone): {', '.join(retired)}"))
    return result.plan


def _reapply(ui: _Console, plan: Any, edits: Edits | None, workers: int | None) -> Any:
    """Apply the edits again after a re-cut (those no longer possible are reported)."""
    if edits is None:
        return plan
    with ui.step("applying the hand edits again"):
        result = apply_edits(plan, edits, strict=False, workers=workers)
    return _print_edits(ui, result)


def _plan_lang(args: argparse.Namespace) -> None:
    """Without ``--lang``, write in the language the plan's volunteer files were written in."""
    if getattr(args, "lang", None) is None:
        args.lang = planfile.recorded_lang(args.plan)


def cmd_edit(args: argparse.Namespace, ui: _Console) -> int:
    """Apply the director's hand edits to a plan folder; write the edited plan."""
    edits = read_edits(args.edits)  # a malformed file fails before the plan is read
    args.out = args.out or args.plan
    if not planfile.is_complete(Path(args.plan) / "plan.gpkg"):
        msg = (f"{args.plan} holds no complete plan (plan.gpkg written by this version's cut): "
               "cut again, then edit")
        raise InputError(msg, path=str(args.plan))
    _plan_lang(args)

    def load() -> Any:
        with ui.step(f"reading the plan {args.plan}"):
            return planfile.read_plan(args.plan, network_path=args.network,
                                      cache=not args.no_cache)

    def transform(plan: Any) -> Any:
        with ui.step(f"applying {args.edits}"):
            result = apply_edits(plan, edits, workers=args.workers)
        return _print_edits(ui, result)

    files = {"plan": str(Path(args.plan) / "plan.gpkg"), "edits": args.edits}
    return _run_cut(_config(args), args, ui, transform=transform, load=load, inputs=files,
                    extra_files=_edits_file(args.edits))



def cmd_demo(args: argparse.Namespace, ui: _Console) -> int:
    """Run the pipeline on the bundled central Nantes sample.

    Results -> priority precincts -> turfs: the 2014 first-round results score every bureau
    (mobilisation potential for the list that won, abstainers x its share); among the bureaux the
    OSM extract covers entirely, the 10 best are cut into turfs, routed and exported.
    """
    data = _data_dir(args.data)
    nantes = data / "nantes"
    out = Path(args.out)
    outdir.check_out(out, overwrite=args.overwrite, demo=True)  # its own outputs: replaced
    precincts_path = nantes / "precincts" / "bureaux_vote_nantes_2014.geojson"
    with ui.step("scoring the bureaux from the 2014 results"):
        precincts = io.read_precincts(precincts_path)
        net = streets.load_network(nantes / "osm" / "nantes_centre_2014-09.osm.pbf",
                                   cache=not args.no_cache)

        targ = argparse.Namespace(
            results=str(nantes / "results" / "municipales2014_t1_par_bureau.csv"),
            layout="auto", commune=None, score="mobilisation", support="rolland",
            choices=None, formula=None, by_voters=False, top=args.top, threshold=None,
            ids=None, among=covered_precincts(precincts, net), contest=None, party=False,
            values="auto", registered=None, results_column=None,
        )
        scored, report, universe = _targeting(targ, _Console(quiet=True), precincts)
        target.write_targeting(scored, out / "targeting", universe=universe, join_report=report)
    _print_targeting(ui, scored, report, universe)
    config = PlanConfig.from_flat({
        "precincts": str(out / "targeting" / "precincts_scored.gpkg"),
        "addresses": str(nantes / "addresses" / "adresses_nantes_commune_2013.csv"),
        "network": str(nantes / "osm" / "nantes_centre_2014-09.osm.pbf"),
        "cache": not args.no_cache, "universe": universe,
        **{k: v for k, v in (("seed", args.seed), ("doors_per_turf", args.doors_per_turf),
                             ("lang", args.lang)) if v is not None},
    })
    ui.out.print(
        f"knockin_geo demo: central Nantes, the {len(universe)} priority bureaux de "
        "vote among those the 2014 OSM extract covers entirely (data © OpenStreetMap "
        "contributors, Ville de Nantes, ODbL)"
    )
    return _run_cut(config, argparse.Namespace(out=args.out, overwrite=True), ui)


def _results_columns(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--results-column ROLE=COLUMN`` (repeatable; ``choices=A,B``) as ``read_results``' map."""
    cols: dict[str, Any] = {}
    for item in args.results_column or []:
        role, sep, col = item.partition("=")
        if not sep or not role.strip() or not col.strip():
            msg = (f"--results-column expects ROLE=COLUMN (for example precinct=code_bv), "
                   f"got {item!r}")
            raise InputError(msg)
        role = role.strip()
        cols[role] = [c.strip() for c in col.split(",")] if role == "choices" else col.strip()
    return cols or None


def _targeting(args: argparse.Namespace, ui: _Console, precincts: Any) -> tuple[Any, Any, list]:
    """Read results, join, score, pick the universe (shared by ``target`` and ``demo``)."""
    with ui.step(f"reading results {args.results}"):
        results = target.read_results(
            args.results, layout=args.layout, columns=_results_columns(args),
            contest=args.contest, by_party=args.party, values=args.values,
        )
    ind = target.indicators(results)
    if args.registered:
        ind, _ = target.add_registered(ind, target.read_registered(args.registered),
                                       commune=args.commune)
    joined, report = target.join_results(precincts, ind, commune=args.commune)
    if report["matched"] == 0:
        msg = (f"no precinct of {args.results} matches a precinct id of the map: the results "
               f"say {', '.join(map(repr, report['unmatched_results'][:3]))}, the map "
               f"{', '.join(map(repr, report['unmatched_precincts'][:3]))}; check "
               "--precinct-id, --results-column precinct=COLUMN or --commune")
        raise InputError(msg)
    choices = [c.strip() for c in args.choices.split(",")] if args.choices else None
    support = [c.strip() for c in args.support.split(",")] if args.support else None
    kind = args.score or ("formula" if args.formula else "mobilisation")
    scored = target.score(joined, kind, support=support, choices=choices,
                          formula=args.formula, by_voters=args.by_voters)
    pool = scored
    if args.among:
        keep = set(args.among)
        pool = scored[scored.index.astype(str).isin(keep)]
    ids = [x.strip() for x in args.ids.split(",")] if args.ids else None
    if args.top is None and args.threshold is None and ids is None:
        args.top = 10
    universe = target.pick_universe(pool, top=args.top, threshold=args.threshold, ids=ids)
    return scored, report, universe


def cmd_target(args: argparse.Namespace, ui: _Console) -> int:
    """Score precincts from election results and choose where to knock."""
    with ui.step(f"reading precincts {args.precincts}"):
        precincts = io.read_precincts(args.precincts, id_column=args.precinct_id,
                                      crs=args.precincts_crs)
    args.among = None
    scored, report, universe = _targeting(args, ui, precincts)
    with ui.step(f"writing {args.out}"):
        files = target.write_targeting(scored, args.out, universe=universe, join_report=report,
                                       scheme=args.scheme, k=args.classes)
    _print_targeting(ui, scored, report, universe)
    for f in files:
        ui.out.print(f"wrote {f}")
    return EXIT_OK


def _cell(value: Any, fmt: str) -> str:
    """Format a number of a summary table; "–" when it is missing."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    return format(v, fmt) if math.isfinite(v) else "–"


def _print_targeting(ui: _Console, scored: Any, report: dict, universe: list) -> None:
    t = Table(title=f"Priority: {scored.attrs.get('formulas', {}).get('score', 'score')}")
    for c in ("rank", "precinct", "name", "score", "turnout %", "registered"):
        t.add_column(c, justify="right" if c not in ("precinct", "name") else "left")
    top = scored[scored["rank"] > 0].sort_values("rank").head(10)
    for pid, row in top.iterrows():
        name = row.get("name", "")
        t.add_row(str(row["rank"]), str(pid), "" if pd.isna(name) else str(name),
                  _cell(row.get("score"), ",.3g" if abs(row["score"]) < 10 else ",.1f"),
                  _cell(100 * row.get("turnout", float("nan")), ".1f"),
                  _cell(row.get("registered"), ",.0f"))
    ui.out.print(t)
    if scored.attrs.get("values") == "shares":
        ui.out.print(SHARES_NOTE)
    reg = scored.attrs.get("registered_report")
    if reg:
        ui.out.print(f"registered voters from {reg['source']} for {reg['matched']} "
                     f"precincts; results without registered voters: "
                     f"{len(reg['results_without_registered'])}")
    ui.out.print(
        f"results joined to {report['matched']} precincts; unmatched precincts: "
        f"{len(report['unmatched_precincts'])}, unmatched result rows: "
        f"{len(report['unmatched_results'])}"
        + (f" ({', '.join(report['unmatched_results'][:10])})"
           if report["unmatched_results"] else "")
    )
    ui.out.print(f"universe ({len(universe)}): {', '.join(universe)}")


def _add_target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", default="auto",
                   help="results layout: auto, nantes, fr2024, fr2017, us_wide, us_long, csv")
    p.add_argument("--commune", help="INSEE code when results carry it and precincts do not")
    p.add_argument("--results-column", action="append", metavar="ROLE=COLUMN",
                   help="map a results role (precinct, registered, voters, expressed, choice, "
                        "votes, contest, party; choices=A,B for the vote columns) to a column; "
                        "repeatable")
    p.add_argument("--values", default="auto", choices=("auto", "counts", "shares"),
                   help="the choice columns hold vote counts or shares (percentages); "
                        "detected by default")
    p.add_argument("--contest", help="the contest (office) to score when the file holds several, "
                                     "e.g. 'President' or 'State House 70'")
    p.add_argument("--party", action="store_true",
                   help="long files: the choices are the parties, not the candidates")
    p.add_argument("--registered", metavar="FILE",
                   help="registered voters per precinct (liste électorale counts; optional "
                        "voters column), for results published as percentages")
    p.add_argument("--score", choices=("mobilisation", "persuasion", "formula"),
                   help="mobilisation = abstainers x support share (default); persuasion = "
                        "closeness of the race; formula = --formula (default when given)")
    p.add_argument("--support", help="choice(s) or party whose share measures support "
                                     "(comma-separated)")
    p.add_argument("--choices", help="the two choices (or parties) for persuasion "
                                     "(comma-separated)")
    p.add_argument("--formula", help="safe expression over indicators, e.g. "
                                     "'abstainers * share_rolland / registered'")
    p.add_argument("--by-voters", action="store_true", help="persuasion weighted by voters")
    p.add_argument("--top", type=int, help="universe: the N best precincts (default 10)")
    p.add_argument("--threshold", type=float, help="universe: precincts scoring at least this")
    p.add_argument("--ids", help="universe: these precinct ids (comma-separated)")
    p.add_argument("--scheme", default="quantiles", choices=("quantiles", "natural_breaks"),
                   help="choropleth classes")
    p.add_argument("--classes", type=int, default=5, help="number of choropleth classes")


def _secret(args: argparse.Namespace) -> bytes | None:
    if getattr(args, "secret_file", None) or os.environ.get("KNOCKIN_GEO_SECRET"):
        return load_secret(key_file=getattr(args, "secret_file", None))
    return None


def cmd_import(args: argparse.Namespace, ui: _Console) -> int:
    """Import volunteers' result files into the plan folder's results store."""
    plan = canvass.read_plan_tables(args.plan)
    store_path = Path(args.store) if args.store else Path(args.plan) / "results.csv"
    store = (canvass.read_results(store_path, plan, check_turf=False).results
             if store_path.is_file() else None)
    secret = _secret(args)
    for f in args.files:
        imp = canvass.read_results(f, plan, secret=secret, naive_tz=args.naive_tz)
        if len(imp.rejected) and not len(imp.results):
            msg = (f"every row of {f} was rejected ({len(imp.rejected)} row(s)), so nothing was "
                   f"imported: is it a results file of the plan folder {args.plan}? First "
                   "reasons")
            raise InputError(msg, imp.problems[:5], path=str(f))
        store, dup = canvass.merge_results(store, imp.results)
        ui.out.print(f"{f}: {len(imp.results)} results ({dup} already imported), "
                     f"{len(imp.rejected)} rows rejected")
        for prob in imp.problems[:20]:
            ui.out.print(f"  - {prob}")
    canvass.write_results(store, store_path)
    opt = canvass.opt_outs_from_results(store)
    if len(opt):
        write_text_atomic(Path(args.plan) / "opt_outs_from_results.csv",
                          opt[["address_id"]].to_csv(index=False))
    ui.out.print(f"wrote {store_path} ({len(store)} results, {len(opt)} do-not-contact)")
    return EXIT_OK


def cmd_progress(args: argparse.Namespace, ui: _Console) -> int:
    """Print (and optionally write) coverage and contact rates, and calibration."""
    plan = canvass.read_plan_tables(args.plan)
    path = Path(args.results) if args.results else Path(args.plan) / "results.csv"
    res = (canvass.read_results(path, plan, check_turf=False).results
           if path.is_file() else canvass.empty_results())
    tables = canvass.progress(plan, res)
    if args.calibrate:
        tables["calibration"] = canvass.calibrate(res, plan)
    for name, t in tables.items():
        ui.out.print(f"[b]{name}[/b]")
        ui.out.print(t.round(3).to_string())
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            write_text_atomic(Path(args.out) / f"progress_{name}.csv", frame_csv(t))
    return EXIT_OK


def cmd_recut(args: argparse.Namespace, ui: _Console) -> int:
    """Take the doors done out of a plan and re-cut the rest.

    From the plan folder alone (``--plan``: its ``plan.gpkg`` holds the snapping, parameters and
    street file), or, for a plan written before plan files were complete, by cutting again from
    the first cut's flags.
    """
    complete = bool(args.plan) and planfile.is_complete(Path(args.plan) / "plan.gpkg")
    if complete:
        _plan_lang(args)
    if not complete and not (args.addresses and (args.network or args.download)):
        msg = ("recut needs --plan DIR, the folder of a plan cut by this version, or the inputs "
               "and flags of the first cut (--addresses, --network...)"
               + (f": {args.plan}/plan.gpkg does not hold the snapping a re-cut needs"
                  if args.plan else ""))
        raise InputError(msg)
    if complete and (args.addresses or args.precincts):
        logging.getLogger("knockin_geo").warning(
            "%s holds the whole plan: it is re-cut as it was cut; the input flags are not read",
            args.plan)
    edits = read_edits(args.edits) if args.edits else None

    def load() -> Any:
        with ui.step(f"reading the plan {args.plan}"):
            return planfile.read_plan(args.plan, network_path=args.network,
                                      cache=not args.no_cache)

    def transform(base: Any) -> Any:
        current = (base if complete else
                   canvass.restore_plan(base, args.plan) if args.plan else base)
        res = canvass.read_results(args.results, current, secret=_secret(args),
                                   check_turf=False).results
        with ui.step("re-cutting the remaining doors"):
            rc = recut(current, res, remove=args.remove,
                       min_fill=args.min_fill if args.min_fill > 0 else None,
                       locked=holding_locks(current, edits) if edits else ())
        d = rc.diff
        ui.out.print(
            f"{d['doors_removed']} doors done; {d['doors_remaining']} remain, "
            f"{d['doors_kept_in_turf']} kept in their turf ({100 * d['share_kept']:.1f} %); "
            f"turfs kept {len(d['turfs_kept'])}, new {len(d['turfs_new'])}, "
            f"retired {len(d['turfs_retired'])}"
        )
        for e in d["explanations"]:
            ui.out.print(f"  - {e}")
        return _reapply(ui, rc.plan, edits, args.workers)

    config = _config(args)
    files: dict[str, Any] = ({"plan": str(Path(args.plan) / "plan.gpkg")} if complete
                             else dict(pipeline.input_files(config)))
    files["results"] = args.results
    if args.edits:
        files["edits"] = args.edits
    return _run_cut(config, args, ui, transform=transform, load=load if complete else None,
                    inputs=files, extra_files=_edits_file(args.edits) if args.edits else None)


def cmd_batch(args: argparse.Namespace, ui: _Console) -> int:
    """Plan every area of a campaign file, one output folder per area."""
    campaign = batch.load_campaign(args.campaign)
    outdir.check_out(args.out, overwrite=args.overwrite or args.resume, campaign=True)
    failed = None
    with contextlib.ExitStack() as stack:
        progress = None if ui.quiet else stack.enter_context(batch.rich_progress(ui.err))
        try:
            result = batch.run_campaign(campaign, args.out, workers=args.workers,
                                        scheduler=args.scheduler, use_dask=args.dask,
                                        resume=args.resume, progress=progress)
        except batch.CampaignError as exc:
            result, failed = exc.result, exc
    t = Table(title=f"Campaign: {len(result.areas)} areas")
    for c in ("area", "status", "doors", "assigned", "turfs", "within tol.", "connected"):
        t.add_column(c, justify="left" if c in ("area", "status") else "right")
    for a in result.areas:
        s = a.summary
        if a.status == "failed":
            t.add_row(a.name, Text("failed", style="red"), "", "", "", "", "")
            continue
        t.add_row(a.name, a.status, f"{s['doors']:,}", f"{s['assigned']:,}", f"{s['turfs']:,}",
                  f"{s['within_tolerance']:,}", f"{s['connected']:,}")
    ui.out.print(t)
    for f in result.files:
        ui.out.print(f"wrote {f}")
    if failed is not None:
        print(f"knockin-geo: error: {failed}", file=sys.stderr)
        inputs_only = all(a.input_error for a in result.areas if a.status == "failed")
        return EXIT_INPUT if inputs_only else EXIT_INTERNAL
    return EXIT_OK


CUT_EXAMPLES = """\
examples:
  # 80 doors per turf in two bureaux of the bundled Nantes sample, walk lists in English
  knockin-geo cut --precincts data/nantes/precincts/bureaux_vote_nantes_2014.geojson \\
      --addresses data/nantes/addresses/adresses_nantes_commune_2013.csv \\
      --network data/nantes/osm/nantes_centre_2014-09.osm.pbf \\
      --universe 0101,0301 --lang en --out plan-nantes

  # 45-minute turfs across precinct lines, routes back to a start point, replacing plan-nantes
  knockin-geo cut --precincts data/nantes/precincts/bureaux_vote_nantes_2014.geojson \\
      --addresses data/nantes/addresses/adresses_nantes_commune_2013.csv \\
      --network data/nantes/osm/nantes_centre_2014-09.osm.pbf --universe covered \\
      --minutes-per-turf 45 --cross-precincts --loop --start=-1.5536,47.2173 \\
      --out plan-nantes --overwrite
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``knockin-geo``."""
    parser = argparse.ArgumentParser(
        prog="knockin-geo",
        description="Plan door-to-door canvassing: precincts, doors and streets in, "
                    "balanced walkable turfs out.",
    )
    parser.add_argument("--version", action="version", version=f"knockin-geo {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect", help="show what is in the input files")
    _add_input_args(p, network_required=False)
    p.set_defaults(func=cmd_inspect, flags=_config_flags(p))

    p = sub.add_parser("cut", help="cut turfs and write plan.gpkg + report.json",
                       description="Cut balanced walkable turfs, route them and write the plan.",
                       epilog=CUT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_input_args(p, network_required=True)
    _add_cut_args(p)
    p.add_argument_group("hand edits").add_argument(
        "--edits", metavar="FILE",
        help="hand edits (edits.json, docs/edits.md) applied after the cut: the doors of locked "
             "turfs are taken out and the rest of their precincts cut around them; an edit that "
             "no longer applies is reported, not an error")
    p.set_defaults(func=cmd_cut, flags=_config_flags(p))

    p = sub.add_parser("target", help="score precincts from election results; pick a universe")
    p.add_argument("--precincts", required=True, help="precinct polygons")
    p.add_argument("--precinct-id", help="precinct id column (detected when omitted)")
    p.add_argument("--precincts-crs", help="CRS of the precinct file when it has none")
    p.add_argument("--results", required=True, help="results per precinct (CSV)")
    _add_target_args(p)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_target, flags=_flags(
        p, kind="--score", k="--classes", by_party="--party", columns="--results-column",
        id_column="--precinct-id", crs="--precincts-crs"))

    p = sub.add_parser("batch", help="plan every area of a campaign file (TOML), one folder each")
    p.add_argument("campaign", help="campaign file: [defaults] and [[areas]] (docs/batch.md)")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per area)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier campaign's outputs in --out (else refused, unless "
                        "--resume)")
    p.add_argument("--workers", type=argtypes.count, default=1,
                   help="areas planned at once, each in its own process (default 1)")
    p.add_argument("--resume", action="store_true",
                   help="skip the areas whose inputs, parameters and version are unchanged")
    p.add_argument("--dask", action="store_true",
                   help="run on a local Dask cluster of --workers processes (dask[distributed])")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on this Dask scheduler (tcp://host:8786); its workers must see the "
                        "input files and --out at the same paths")
    p.set_defaults(func=cmd_batch)

    _add_results_commands(sub)
    _add_demo_command(sub)
    return parser


def _add_results_commands(sub: Any) -> None:
    """``import``, ``progress`` and ``recut``: the commands that read canvass results."""
    p = sub.add_parser("import", help="import canvass results into a plan folder")
    p.add_argument("files", nargs="+",
                   help="results CSV (phone-map export, or id,result,timestamp)")
    p.add_argument("--plan", required=True, help="plan folder the results were recorded on")
    p.add_argument("--store", help="accumulated results (default PLAN/results.csv)")
    p.add_argument("--secret-file", metavar="FILE", help="campaign secret (pseudonymous ids)")
    p.add_argument("--naive-tz", type=argtypes.time_zone, default="UTC",
                   help="zone of timestamps without one (UTC)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("progress", help="coverage and contact rates per turf/precinct/canvasser")
    p.add_argument("--plan", required=True, help="plan folder")
    p.add_argument("--results", help="results file (default PLAN/results.csv)")
    p.add_argument("--calibrate", action="store_true", help="also doors per hour by area type")
    p.add_argument("--out", help="write progress_*.csv here")
    p.set_defaults(func=cmd_progress)

    p = sub.add_parser("recut", help="take the doors done out of a plan and re-cut the rest")
    _add_input_args(p, network_required=False, addresses_required=False)
    _add_cut_args(p)
    g = p.add_argument_group("re-cut")
    g.add_argument("--plan", help="plan folder the results were recorded on: alone, it is enough "
                                  "(its plan.gpkg holds the snapping, parameters and street "
                                  "file); the input flags are then not needed (--network: the "
                                  "street file, if it moved)")
    g.add_argument("--results", required=True, help="accumulated results (PLAN/results.csv)")
    g.add_argument("--remove", choices=("knocked", "contacted", "any"), default="knocked",
                   help="which doors leave the plan (default: any result but not home / "
                        "come back)")
    g.add_argument("--min-fill", type=argtypes.fraction, default=0.75,
                   help="re-balance the turfs in progress of a precinct among themselves while "
                        "their mean is at least this share of the target (0.75; 0: always)")
    g.add_argument("--edits", metavar="FILE",
                   help="hand edits (edits.json) applied again after the re-cut: a locked turf "
                        "keeps its doors (done ones too), route and walk order; an edit that no "
                        "longer applies is reported, not an error")
    p.set_defaults(func=cmd_recut, flags=_config_flags(p))
    _add_edit_command(sub)


def _add_edit_command(sub: Any) -> None:
    """``edit``: apply the director's hand edits to a plan folder."""
    p = sub.add_parser("edit", help="apply hand edits (edits.json) to a plan folder",
                       description="Apply the director's hand edits (docs/edits.md) to a plan: "
                                   "only the turfs they touch are routed again; every other "
                                   "turf's files stay the same. Refused edits: exit 2, nothing "
                                   "written.")
    g = p.add_argument_group("edit")
    g.add_argument("--plan", required=True, metavar="DIR", help="the plan folder to edit")
    g.add_argument("--edits", required=True, metavar="FILE", help="the edits file (edits.json)")
    g.add_argument("--network", metavar="FILE",
                   help="the plan's street file, if it moved (same SHA-256)")
    g.add_argument("--no-cache", action="store_true", help="rebuild the street network")
    g.add_argument("--workers", metavar="N", type=argtypes.count,
                   help="processes that route turfs and build the files (default: all cores)")
    _add_output_args(p, out_required=False)
    _add_privacy_args(p)
    p.set_defaults(func=cmd_edit, flags=_config_flags(p))


def _add_demo_command(sub: Any) -> None:
    """``demo``: the pipeline on the bundled Nantes sample."""
    p = sub.add_parser("demo", help="run on the bundled Nantes sample")
    p.add_argument("--out", default="demo-out", help="output folder (default demo-out)")
    p.add_argument("--data", help="the repository's data/ folder (found automatically)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a plan in --out that an earlier demo did not write")
    p.add_argument("--doors-per-turf", type=argtypes.positive,
                   help=f"target doors per turf ({TurfParams.doors_per_turf:g})")
    p.add_argument("--top", type=argtypes.count, default=10, help="priority bureaux to cut (10)")
    p.add_argument("--seed", type=argtypes.seed, help=f"random seed ({default('seed')})")
    p.add_argument("--no-cache", action="store_true", help="rebuild the street network")
    p.add_argument("--lang", choices=("fr", "en"), help="walk list language (fr)")
    p.set_defaults(func=cmd_demo, flags=_config_flags(p))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``knockin-geo``; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = max(logging.WARNING - 10 * args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    # the package's logger only, restored on return (main() may run inside a notebook)
    pkg_logger = logging.getLogger("knockin_geo")
    previous = pkg_logger.level
    pkg_logger.setLevel(logging.ERROR if args.quiet else level)
    try:
        return _dispatch(args)
    finally:
        pkg_logger.setLevel(previous)


def _flags(p: argparse.ArgumentParser, **renamed: str) -> dict[str, str]:
    """Python keyword -> the command's flag, for error messages (``_errors.kw``).

    A flag whose destination is the keyword maps by itself (``support`` -> ``--support``);
    ``renamed`` adds the keywords the command spells otherwise (``kind="--score"``).
    """
    out = {}
    for action in p._actions:  # argparse has no public list of its actions
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs:
            out[action.dest] = longs[0]
    return out | renamed


def _config_flags(p: argparse.ArgumentParser) -> dict[str, str]:
    """Return the flags of the settings (:mod:`knockin_geo.config`) this command has."""
    mine = set(_flags(p).values())
    return {name: flag(name) for name in key_names() if flag(name) in mine}


def _dispatch(args: argparse.Namespace) -> int:
    """Run the chosen command; map errors to exit codes."""
    ui = _Console(args.quiet)
    try:
        if getattr(args, "out", None):  # every command's --out is a folder: fail before working
            check_output_folder(args.out, flag="--out")
        return int(args.func(args, ui))
    except InputError as exc:
        print(f"knockin-geo: error: {exc.render(getattr(args, 'flags', None))}", file=sys.stderr)
        return EXIT_INPUT
    except KnockinGeoError as exc:
        print(f"knockin-geo: error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("knockin-geo: interrupted; no output was half-written", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        print(f"knockin-geo: internal error: {type(exc).__name__}: {exc} "
              "(run with -v for the traceback, and please report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
