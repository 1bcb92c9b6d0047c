"""Batch runs: one campaign file, many areas, one output folder per area.

A *campaign* is a TOML file with a ``[defaults]`` table of cut parameters and one ``[[areas]]``
entry per area (a city, a county, a district), each with its own precincts, addresses and street
network (see ``docs/batch.md`` and ``data/campaign_example.toml``)::

    [defaults]
    doors_per_turf = 80
    seed = 0

    [[areas]]
    name = "nantes"
    precincts = "nantes/precincts/bureaux_vote_nantes_2014.geojson"
    addresses = "nantes/addresses/adresses_nantes_commune_2013.csv"
    network = "nantes/osm/nantes_centre_2014-09.osm.pbf"
    universe = "covered"

:func:`load_campaign` reads and checks the file (every problem listed at once): an area's keys
are the settings of ``knockin-geo cut`` (:class:`knockin_geo.config.PlanConfig`, privacy
included); :func:`run_campaign` plans every area with :func:`knockin_geo.pipeline.plan_cut` and
writes it with :func:`knockin_geo.pipeline.write_cut` (as ``cut`` does) into
``out_dir/<name>/``, then writes
``campaign_summary.json``, ``campaign_summary.csv`` and a campaign-wide director map
``campaign_map.html``. Areas run one after the other, in worker processes
(``workers > 1``) or on a Dask cluster (``use_dask`` / ``scheduler``); the files are the same
bytes whichever way they ran (except ``campaign_timings.json`` and each area's ``timings.json``,
which hold durations). When areas run in parallel, each routes its turfs in one process; one
after the other, each routes on all cores.

Every area folder is built in ``out_dir/.tmp-<name>~<attempt>`` (a fresh name per attempt) and
renamed into place in one step, with its audit log ``audit.jsonl`` (as ``cut`` writes it) and its
resume record ``.knockin-area.json`` (input hashes, settings, fingerprints of the secret and the
map code, package version, files)
written last: an interrupted run leaves complete areas or none, and ``resume=True`` skips the
areas whose record still matches. Worker processes die with the batch process (SIGKILL included,
see :func:`_worker_init`), and SIGTERM stops the workers at once (:func:`_stop_on_sigterm`).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import ctypes
import difflib
import hashlib
import hmac
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import folium
import numpy as np
import pyogrio
import shapely
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from knockin_geo import __version__
from knockin_geo._atomic import check_output_folder, write_text_atomic
from knockin_geo._errors import InputError, KnockinGeoError, MissingDependencyError
from knockin_geo.config import ConfigError, PlanConfig, check_values, is_path, key_names
from knockin_geo.export import read_canvassers
from knockin_geo.maps import (
    OSM_ATTRIBUTION,
    OSM_TILES,
    GeoJsonLayer,
    InlineLeaflet,
    geojson_collection,
    html_text,
    save_map,
    to_wgs84,
    turf_colors,
)
from knockin_geo.model import TurfPlan
from knockin_geo.pipeline import Privacy, frozen_gc, plan_cut, read_privacy, write_cut
from knockin_geo.plan import audit_export, report_json
from knockin_geo.sheets import Number, sheet_csv
from knockin_geo.streets import StreetNetwork, load_network
from knockin_geo.timing import TIMINGS_JSON as AREA_TIMINGS_JSON

logger = logging.getLogger(__name__)

__all__ = [
    "AreaResult",
    "AreaSpec",
    "Campaign",
    "CampaignError",
    "CampaignResult",
    "ProgressEvent",
    "Terminated",
    "load_campaign",
    "parse_campaign",
    "rich_progress",
    "run_campaign",
]

#: Resume record written last into every area folder.
RECORD_NAME = ".knockin-area.json"
#: Files written at the top of the output folder.
SUMMARY_JSON = "campaign_summary.json"
SUMMARY_CSV = "campaign_summary.csv"
TIMINGS_JSON = "campaign_timings.json"
CAMPAIGN_MAP = "campaign_map.html"
#: Above this many assigned doors in the whole campaign, the campaign map shows turfs only.
MAP_DOOR_LIMIT = 50_000
#: Street networks kept in memory per process (areas are scheduled grouped by network).
NETWORK_MEMO_SIZE = 4
#: Version of the resume record's layout.
RECORD_VERSION = 2
#: The export log of an area folder (as ``knockin-geo cut`` writes it); not in the resume record.
AUDIT_NAME = "audit.jsonl"
#: Label of the secrets' fingerprints in the resume record.
_RECORD_LABEL = b"knockin-geo batch resume record"
#: Seconds between two checks of a worker's watchdog on its parent process.
WATCHDOG_SECONDS = 0.5

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_RESERVED = {n.casefold() for n in (SUMMARY_JSON, SUMMARY_CSV, TIMINGS_JSON, CAMPAIGN_MAP)}
_TOP_KEYS = ("defaults", "areas")


class CampaignError(KnockinGeoError, RuntimeError):
    """Some areas of a campaign failed; the others were written.

    Attributes
    ----------
    result
        The :class:`CampaignResult` (failed areas have ``status == "failed"``).
    """

    def __init__(self, message: str, result: CampaignResult) -> None:
        super().__init__(message)
        self.result = result


# --------------------------------------------------------------------------------------------
# campaign description
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AreaSpec:
    """One area of a campaign: its name and its settings (input paths absolute).

    The settings are a :class:`knockin_geo.config.PlanConfig`, the same as ``knockin-geo cut``
    builds from its flags: an area is planned and written exactly as ``cut`` would.
    """

    name: str
    config: PlanConfig

    @property
    def addresses(self) -> Path:
        """The address file."""
        return Path(str(self.config.inputs.addresses))

    @property
    def network(self) -> Path:
        """The street network file."""
        return Path(str(self.config.inputs.network))

    @property
    def precincts(self) -> Path | None:
        """The precinct file, if any."""
        p = self.config.inputs.precincts
        return Path(p) if p else None

    def files(self) -> dict[str, Path]:
        """Input files by key (only those given; the secret file is not one, see the record)."""
        flat = self.config.flat()
        return {k: Path(flat[k]) for k in sorted(key_names())
                if is_path(k) and flat[k] is not None and k not in _UNHASHED_FILES}


@dataclass(frozen=True)
class Campaign:
    """A checked campaign: its areas, in the file's order (names unique)."""

    areas: tuple[AreaSpec, ...]
    source: Path | None = None

    def area(self, name: str) -> AreaSpec:
        """Return the area called ``name``."""
        for a in self.areas:
            if a.name == name:
                return a
        raise KeyError(name)


# ---- parsing --------------------------------------------------------------------------------
#: Every key of ``[defaults]`` and ``[[areas]]``: the settings of ``knockin-geo cut``
#: (:func:`knockin_geo.config.key_names`), but ``download`` (an area's network is a file).
PARAM_KEYS: tuple[str, ...] = tuple(k for k in key_names() if k not in ("download",))
_SIZE_KEYS = ("doors_per_turf", "minutes_per_turf")
#: Path keys whose file is not hashed into the resume record (the secret: its fingerprint is).
_UNHASHED_FILES = ("secret_file",)


def _close(key: str, known: Sequence[str]) -> str:
    m = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {m[0]!r}?)" if m else ""


def load_campaign(path: str | os.PathLike[str]) -> Campaign:
    """Read and check a campaign TOML file.

    Parameters
    ----------
    path
        The campaign file. Relative input paths are relative to its folder.

    Returns
    -------
    Campaign
        The areas with absolute paths and their effective options.

    Raises
    ------
    InputError
        Missing or unparsable file, or any problem in it (unknown keys, missing input files,
        duplicate or unsafe area names, bad values): all listed, each naming the area and key.
    """
    p = Path(path)
    if not p.is_file():
        msg = f"campaign file not found: {p}"
        raise InputError(msg, path=str(p))
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"cannot parse campaign file {p}: {exc}"
        raise InputError(msg, path=str(p)) from exc
    return parse_campaign(doc, p.resolve().parent, source=p)


def parse_campaign(
    doc: Mapping[str, Any], base_dir: str | os.PathLike[str], *, source: Path | None = None
) -> Campaign:
    """Check a campaign given as a dict (the parsed TOML); see :func:`load_campaign`.

    Parameters
    ----------
    doc
        ``{"defaults": {...}, "areas": [{...}, ...]}``.
    base_dir
        Folder relative input paths are resolved against.
    source
        The file it came from (for messages).

    Returns
    -------
    Campaign
        The checked campaign.
    """
    base = Path(base_dir)
    problems: list[str] = []
    defaults_raw, areas_raw = _top_level(doc, problems)
    defaults = _check_table(defaults_raw, "[defaults]", base, problems, allow_name=False)
    seen: dict[str, int] = {}
    areas: list[AreaSpec] = []
    for i, raw in enumerate(areas_raw, start=1):
        name = raw.get("name")
        label = f"area {name!r}" if isinstance(name, str) else f"area #{i}"
        problems += _name_problems(name, label, i, seen)
        values = _check_table(raw, label, base, problems, allow_name=True)
        merged = {k: v for k, v in defaults.items()
                  if not (k in _SIZE_KEYS and any(s in values for s in _SIZE_KEYS))}
        merged.update(values)
        missing = [r for r in ("addresses", "network")
                   if r not in merged and r not in raw and r not in defaults_raw]
        problems += [f"{label}: key {r!r} is missing" for r in missing]
        try:
            config = PlanConfig.from_flat(merged)
            config.turf_params()
        except ConfigError as exc:
            problems += exc.lines(label)
            continue
        except InputError as exc:
            problems += [f"{label}: {msg}" for msg in exc.problems or [exc.headline]]
            continue
        if isinstance(name, str) and "addresses" in merged and "network" in merged:
            areas.append(AreaSpec(name=name, config=config))
    if problems:
        where = str(source) if source is not None else "campaign"
        msg = f"{where} has {len(problems)} problem(s)"
        raise InputError(msg, problems, path=str(source) if source else None)
    return Campaign(areas=tuple(areas), source=source)


def _top_level(doc: Mapping[str, Any],
               problems: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the ``[defaults]`` table and the ``[[areas]]`` entries (problems appended)."""
    for key in doc:
        if key not in _TOP_KEYS:
            problems.append(f"unknown top-level key {key!r}{_close(key, _TOP_KEYS)}; "
                            "expected [defaults] and [[areas]]")
    defaults_raw = doc.get("defaults", {})
    if not isinstance(defaults_raw, dict):
        problems.append("[defaults] must be a table")
        defaults_raw = {}
    areas_raw = doc.get("areas", [])
    if not isinstance(areas_raw, list) or not all(isinstance(a, dict) for a in areas_raw):
        problems.append("areas must be [[areas]] tables")
        areas_raw = []
    if not areas_raw and isinstance(doc.get("areas", []), list):
        problems.append("the campaign has no [[areas]]")
    return defaults_raw, areas_raw


def _name_problems(name: Any, label: str, i: int, seen: dict[str, int]) -> list[str]:
    """Problems of an area's name (``seen``: names so far, folded, updated)."""
    if name is None:
        return [f"area #{i}: key 'name' is missing"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        return [f"{label}: key 'name' must be a folder-safe name (letters, digits, '_', '.', "
                f"'-'; not starting with '.' or '-'; at most 100 characters), got {name!r}"]
    if name.casefold() in _RESERVED:
        return [f"{label}: key 'name' {name!r} is reserved for campaign files"]
    if name.casefold() in seen:
        return [f"{label}: duplicate area name (also area #{seen[name.casefold()]}; names must "
                "be unique, ignoring case)"]
    seen[name.casefold()] = i
    return []


def _check_table(
    raw: Mapping[str, Any], label: str, base: Path, problems: list[str], *, allow_name: bool
) -> dict[str, Any]:
    """Check the keys of ``[defaults]`` or one ``[[areas]]`` entry; paths made absolute."""
    known = [*PARAM_KEYS] + (["name"] if allow_name else [])
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "name" and allow_name:
            continue
        if key not in PARAM_KEYS:
            why = (": an area's network is a file (downloads are not repeatable)"
                   if key == "download" else _close(key, known))
            problems.append(f"{label}: unknown key {key!r}{why}")
        elif is_path(key):
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{label}: key {key!r} must be a file path, got {value!r}")
                continue
            path = Path(value).expanduser()
            path = path if path.is_absolute() else base / path
            if not path.exists():
                problems.append(f"{label}: key {key!r}: file not found: {path}")
                continue
            params[key] = str(path)
        elif key == "universe" and isinstance(value, str) and value.startswith("@"):
            params[key] = "@" + str(base / Path(value[1:]).expanduser())  # absolute stays so
        else:
            params[key] = value
    checked, bad = check_values({k: v for k, v in params.items() if not is_path(k)})
    problems += [f"{label}: key {k!r}: {why}" for k, _v, why in bad]
    return {k: v for k, v in params.items() if is_path(k)} | checked


# --------------------------------------------------------------------------------------------
# results and progress
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AreaResult:
    """What happened to one area.

    Attributes
    ----------
    name
        The area.
    status
        ``ran`` (planned and written), ``skipped`` (resume: the record matched) or ``failed``.
    summary
        The area's figures (see ``docs/batch.md``); for a failed area, ``error``.
    seconds
        Wall time spent on the area in this run (0 when skipped).
    error
        The error message of a failed area.
    input_error
        Whether the failure was bad input (:class:`InputError`).
    """

    name: str
    status: Literal["ran", "skipped", "failed"]
    summary: dict[str, Any]
    seconds: float = 0.0
    error: str | None = None
    input_error: bool = False


@dataclass(frozen=True)
class CampaignResult:
    """The outcome of :func:`run_campaign`: one :class:`AreaResult` per area, sorted by name."""

    out_dir: Path
    areas: tuple[AreaResult, ...]
    seconds: float
    files: tuple[Path, ...]

    @property
    def ran(self) -> list[str]:
        """Names of the areas planned in this run."""
        return [a.name for a in self.areas if a.status == "ran"]

    @property
    def skipped(self) -> list[str]:
        """Names of the areas skipped (resume)."""
        return [a.name for a in self.areas if a.status == "skipped"]

    @property
    def failed(self) -> list[str]:
        """Names of the areas that failed."""
        return [a.name for a in self.areas if a.status == "failed"]


@dataclass(frozen=True)
class ProgressEvent:
    """Passed to the ``progress`` callback of :func:`run_campaign`.

    Attributes
    ----------
    kind
        ``begin`` (once, before any area; ``area`` is empty), then one of ``ran``, ``skipped``,
        ``failed`` per area as it finishes (in completion order), then ``end``.
    area
        The area's name.
    done, total
        Areas finished so far (skipped included) and areas in the campaign.
    doors
        Doors of this area (``doors_in``).
    doors_done
        Doors of the areas planned so far in this run (skipped areas not counted).
    elapsed
        Seconds since the run started.
    """

    kind: Literal["begin", "ran", "skipped", "failed", "end"]
    area: str
    done: int
    total: int
    doors: int = 0
    doors_done: int = 0
    elapsed: float = 0.0


ProgressCallback = Callable[[ProgressEvent], None]


@contextlib.contextmanager
def rich_progress(console: Any = None) -> Iterator[ProgressCallback]:
    """Show a rich progress bar for :func:`run_campaign` (areas done/total, doors/s, ETA).

    Parameters
    ----------
    console
        A ``rich.console.Console`` (default: stderr).

    Yields
    ------
    callable
        The ``progress`` callback to pass to :func:`run_campaign`.
    """
    con = console or Console(stderr=True, highlight=False)
    bar = Progress(
        TextColumn("[bold]areas"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"),
        console=con,
        transient=False,
    )
    state: dict[str, Any] = {}

    def callback(ev: ProgressEvent) -> None:
        if ev.kind == "begin":
            state["task"] = bar.add_task("areas", total=ev.total, rate="", last="")
            return
        if "task" not in state:
            return
        rate = f"{ev.doors_done / ev.elapsed:,.0f} doors/s" if ev.elapsed > 0 else ""
        last = {"ran": "", "skipped": " (unchanged, skipped)", "failed": " FAILED"}.get(ev.kind, "")
        bar.update(state["task"], completed=ev.done, rate=rate,
                   last=f"{ev.area}{last}" if ev.area else "")

    with bar:
        yield callback


# --------------------------------------------------------------------------------------------
# hashing, records
# --------------------------------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    """SHA-256 of an input: the file; a Shapefile with its side files; a folder's files."""
    h = hashlib.sha256()
    if path.is_dir():
        members = sorted(p for p in path.rglob("*") if p.is_file())
    elif path.suffix.lower() == ".shp":
        members = sorted(p for p in path.parent.glob(f"{glob_escape(path.stem)}.*") if p.is_file())
    else:
        members = [path]
    for m in members:
        if len(members) > 1:
            h.update(m.relative_to(path if path.is_dir() else path.parent).as_posix().encode())
            h.update(b"\0")
        with m.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def glob_escape(text: str) -> str:
    """Escape glob wildcards in a file stem."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _inputs_record(area: AreaSpec, digests: Mapping[Path, str]) -> dict[str, Any]:
    return {role: {"file": p.name, "sha256": digests[p]} for role, p in area.files().items()}


def _expected_record(area: AreaSpec, digests: Mapping[Path, str]) -> dict[str, Any]:
    """Return what an area's outputs depend on: inputs, settings, secrets, version."""
    flat = area.config.flat()
    return {
        "record_version": RECORD_VERSION,
        "area": area.name,
        "knockin_geo_version": __version__,
        "inputs": _inputs_record(area, digests),
        "params": {k: v for k, v in flat.items() if not is_path(k)},
        "privacy": _privacy_record(area),
    }


def _privacy_record(area: AreaSpec) -> dict[str, str | None]:
    """Fingerprints of the campaign secret and the map code, as they change the outputs.

    Neither reveals what it is taken from: the secret's is keyed by the secret itself; the
    code's costs a full PBKDF2 per guess, as the locked pages it would open already do.
    """
    privacy = read_privacy(area.config)
    secret = lock = None
    if privacy.secret is not None:
        secret = hmac.new(privacy.secret, _RECORD_LABEL, hashlib.sha256).hexdigest()
    if privacy.map_lock is not None:
        m = privacy.map_lock
        key = hashlib.pbkdf2_hmac("sha256", m.code.encode("utf-8"),
                                  m.salt(f"{_RECORD_LABEL.decode()}|{area.name}"), m.iterations)
        lock = hmac.new(key, _RECORD_LABEL, hashlib.sha256).hexdigest()
    return {"secret": secret, "map_lock": lock}


def _record_matches(folder: Path, expected: Mapping[str, Any]) -> bool:
    rec_path = folder / RECORD_NAME
    try:
        rec = json.loads(rec_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(rec, dict) or any(rec.get(k) != v for k, v in expected.items()):
        return False
    files = rec.get("files")
    if not isinstance(files, dict) or "report.json" not in files:
        return False
    for rel, size in files.items():
        f = folder / rel
        try:
            if not f.is_file() or f.stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------
# one area (runs in the calling process, a worker process or a Dask worker)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _AreaTask:
    area: AreaSpec
    out_dir: str
    #: routing processes inside the area: 1 when areas already run in parallel (no
    #: oversubscription), None (all cores) when they run one after the other
    route_workers: int | None = None


_NETWORKS: collections.OrderedDict[tuple[str, int, int, str, bool], StreetNetwork] = (
    collections.OrderedDict())


def _network(path: str, profile: str, cache: bool) -> StreetNetwork:
    """Load a street network once per process (LRU of :data:`NETWORK_MEMO_SIZE`)."""
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns, profile, cache)
    if key in _NETWORKS:
        _NETWORKS.move_to_end(key)
        return _NETWORKS[key]
    net = load_network(path, cache=cache, profile=profile)
    _NETWORKS[key] = net
    while len(_NETWORKS) > NETWORK_MEMO_SIZE:
        _NETWORKS.popitem(last=False)
    return net


def plan_area(area: AreaSpec, route_workers: int | None = None,
              privacy: Privacy | None = None) -> TurfPlan:
    """Read an area's inputs and plan it, exactly as ``knockin-geo cut`` does with its flags.

    Parameters
    ----------
    area
        The area.
    route_workers
        Processes that route its turfs (None: all cores); the plan is the same whatever the
        number.
    privacy
        Its privacy inputs (:func:`knockin_geo.pipeline.read_privacy`; read when None).

    Returns
    -------
    knockin_geo.model.TurfPlan
        The plan (not written; ``timings["load"]``: the seconds spent reading).
    """
    return plan_cut(area.config, privacy=privacy, route_workers=route_workers, loader=_network)


def area_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Return the figures of one area in the campaign summary, from its ``report.json``."""
    s = report.get("summary", {})
    return {
        "doors": int(s.get("doors_in", 0)),
        "assigned": int(s.get("doors_assigned", 0)),
        "turfs": int(s.get("turfs", 0)),
        "within_tolerance": int(s.get("turfs_within_tolerance", 0)),
        "connected": int(s.get("turfs_connected", 0)),
        "precincts_cut": int(s.get("precincts_cut", 0)),
        "max_abs_deviation": s.get("max_abs_deviation"),
        "mean_est_minutes": s.get("mean_est_minutes"),
        "unassigned": {str(k): int(v) for k, v in sorted(report.get("unassigned", {}).items())},
    }


def _run_area(task: _AreaTask) -> dict[str, Any]:
    """Plan one area and write its folder atomically; return a small result dict."""
    t0 = time.perf_counter()
    area = task.area
    out = Path(task.out_dir)
    # a fresh name per attempt: a folder left by a killed run (or still being deleted) is never
    # reused; _cleanup removes it
    tmp = out / f"{_TMP_PREFIX}{area.name}{_ATTEMPT_SEP}{os.getpid()}-{uuid.uuid4().hex[:12]}"
    try:
        digests = {p: file_sha256(p) for p in area.files().values()}
        canvassers = None
        if area.config.outputs.canvassers:  # read before the cut: a bad file fails fast
            canvassers = read_canvassers(area.config.outputs.canvassers)
        privacy = read_privacy(area.config)
        with frozen_gc():  # as in `cut`: what the area holds is kept out of full collections
            plan = plan_area(area, task.route_workers, privacy)
            tmp.mkdir(parents=True)
            stages: dict[str, float] = {}
            report = _write_area(plan, area, tmp, out / area.name, canvassers, stages, privacy)
        files = {  # durations excluded: the record must not change between identical runs
            f.relative_to(tmp).as_posix(): f.stat().st_size
            for f in sorted(tmp.rglob("*"))
            if f.is_file() and f.name not in (AUDIT_NAME, AREA_TIMINGS_JSON)
        }
        record = {**_expected_record(area, digests), "files": files}
        write_text_atomic(tmp / RECORD_NAME, _dumps(record))  # last: marks the folder complete
        _swap_into_place(tmp, out / area.name)
        return {"name": area.name, "status": "ran", "summary": area_summary(report),
                "seconds": time.perf_counter() - t0, "pid": os.getpid(),
                "stages": {k: round(v, 3) for k, v in stages.items()}}
    except Exception as exc:
        logger.debug("area %s failed", area.name, exc_info=True)
        return {"name": area.name, "status": "failed",
                "summary": {"error": f"{type(exc).__name__}: {exc}"},
                "error": str(exc), "input_error": isinstance(exc, InputError),
                "seconds": time.perf_counter() - t0, "pid": os.getpid()}
    finally:
        _remove(tmp)


def _write_area(plan: TurfPlan, area: AreaSpec, tmp: Path, final: Path,
                canvassers: Any, timings: dict[str, float] | None = None,
                privacy: Privacy | None = None) -> dict[str, Any]:
    """Write the plan into ``tmp`` as ``cut`` does, with the audit log of ``final`` extended.

    The previous ``audit.jsonl`` of the area is carried over and this export appended to it
    (paths as they will be once ``tmp`` is renamed to ``final``): the log is swapped into place
    with the files it records, and never loses a line. Stage durations are added to
    ``timings`` (and written to ``timings.json``) when it is given. Returns the report as JSON
    data.
    """
    written = write_cut(plan, area.config, tmp, privacy=privacy, canvassers=canvassers,
                        timings=timings)
    if (final / AUDIT_NAME).is_file():
        shutil.copyfile(final / AUDIT_NAME, tmp / AUDIT_NAME)
    audit_export(plan, tmp, written, tmp / AUDIT_NAME, canvassers, shown_as=final)
    return dict(json.loads(report_json(plan.report)))


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` (two renames; a crash in between is repaired by cleanup)."""
    old = final.parent / f".old-{final.name}"
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


_TMP_PREFIX = ".tmp-"
#: Separates an area's name from the attempt in its build folder (never in an area name).
_ATTEMPT_SEP = "~"


def _remove(path: Path) -> None:
    """Delete a file or folder tree if it exists, whatever state it is in (never raises)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _cleanup(out: Path, names: Sequence[str]) -> None:
    """Remove half-built area folders; restore an old folder orphaned between two renames.

    Build folders are ``.tmp-<name>~<attempt>`` (or ``.tmp-<name>``, written by older versions):
    any of them, for an area of the campaign, is left over from an interrupted or killed run,
    whatever it holds.
    """
    wanted = set(names)
    for entry in sorted(out.iterdir()):
        if not entry.name.startswith(_TMP_PREFIX):
            continue
        if entry.name[len(_TMP_PREFIX):].split(_ATTEMPT_SEP, 1)[0] in wanted:
            _remove(entry)
            if entry.exists() or entry.is_symlink():
                logger.warning("cannot remove the left-over build folder %s; remove it by hand",
                               entry)
    for name in names:
        old = out / f".old-{name}"
        if old.is_dir() and not old.is_symlink():
            if not (out / name).exists():
                os.replace(old, out / name)
            else:
                _remove(old)
        elif old.exists() or old.is_symlink():
            _remove(old)


# --------------------------------------------------------------------------------------------
# the campaign
# --------------------------------------------------------------------------------------------
def run_campaign(
    campaign: Campaign, out_dir: str | os.PathLike[str], *, workers: int = 1,
    scheduler: str | None = None, use_dask: bool = False, resume: bool = False,
    progress: ProgressCallback | None = None,
) -> CampaignResult:
    """Plan every area of a campaign into ``out_dir/<name>/`` and write the campaign files.

    Parameters
    ----------
    campaign
        From :func:`load_campaign`.
    out_dir
        Output folder (created if needed). Folders of areas not in the campaign are left alone.
    workers
        Areas planned at once. 1: one after the other in this process; more: a pool of that many
        worker processes (spawned), or that many Dask workers with ``use_dask``.
    scheduler
        Address of a running Dask scheduler (``tcp://host:8786``); its workers must see the
        input files and ``out_dir`` at the same paths.
    use_dask
        Run on a local Dask cluster of ``workers`` single-threaded worker processes.
    resume
        Skip the areas whose folder holds a complete resume record matching the current inputs
        (SHA-256), effective parameters and package version.
    progress
        Called in this process with a :class:`ProgressEvent` as areas finish. An exception it
        raises (e.g. ``KeyboardInterrupt``) stops the run: areas already finished stay, no
        half-built area is left.

    Returns
    -------
    CampaignResult
        One result per area, sorted by name.

    Raises
    ------
    InputError
        ``workers`` is not a whole number >= 1, or ``out_dir`` is an existing file.
    CampaignError
        Some areas failed (the others are written, and the campaign files list the failures);
        ``exc.result`` has the details.
    Terminated
        SIGTERM arrived (run from the main thread, SIGTERM not handled by the caller): the
        workers are killed, half-built areas removed, complete areas kept.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        msg = f"workers must be a whole number >= 1, got {workers!r}"
        raise InputError(msg)
    t_start = time.perf_counter()
    out = check_output_folder(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [a.name for a in campaign.areas]
    _cleanup(out, names)
    total = len(campaign.areas)
    tracker = _Tracker(total, t_start, progress)
    tracker.emit("begin")
    todo = _areas_to_run(campaign, out, resume=resume, finished=tracker.finished)
    # group areas sharing a network so that each worker loads it once
    todo.sort(key=lambda a: (str(a.network), a.name))
    # areas in parallel: one routing process each, or the cores would be oversubscribed
    on_dask = bool(use_dask or scheduler)
    parallel = on_dask or (workers > 1 and len(todo) > 1)
    tasks = [_AreaTask(a, str(out), 1 if parallel else None) for a in todo]
    with _stop_on_sigterm():
        try:
            if tasks:
                _run_tasks(tasks, workers, scheduler, on_dask, tracker.finished)
        finally:
            _cleanup(out, names)
    ordered = tuple(tracker.results[n] for n in sorted(tracker.results))
    files = _write_campaign_files(out, campaign, ordered)
    seconds = time.perf_counter() - t_start
    mode = ("dask " + (scheduler or f"LocalCluster x{workers}")) if on_dask \
        else (f"processes x{workers}" if workers > 1 else "sequential")
    _write_timings(out, tracker.timings, mode=mode, workers=workers, seconds=seconds)
    result = CampaignResult(out_dir=out, areas=ordered, seconds=seconds,
                            files=(*files, out / TIMINGS_JSON))
    tracker.emit("end")
    _raise_if_failed(result, total)
    return result


def _raise_if_failed(result: CampaignResult, total: int) -> None:
    """Raise :class:`CampaignError` listing the failed areas, if any (the others are written)."""
    if result.failed:
        lines = [f"{a.name}: {a.error}" for a in result.areas if a.status == "failed"]
        msg = (f"{len(result.failed)} of {total} area(s) failed (the others are written):\n"
               + "\n".join(f"  - {line}" for line in lines))
        raise CampaignError(msg, result)


class _Tracker:
    """Collect the areas' results and timings as they finish, and report progress events."""

    def __init__(self, total: int, t_start: float, progress: ProgressCallback | None) -> None:
        self.total = total
        self.t_start = t_start
        self.progress = progress
        self.results: dict[str, AreaResult] = {}
        self.timings: dict[str, dict[str, Any]] = {}
        self.done = 0
        self.doors_done = 0

    def emit(self, kind: str, area: str = "", doors: int = 0) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(kind, area, self.done, self.total, doors,  # type: ignore[arg-type]
                                        self.doors_done, time.perf_counter() - self.t_start))

    def finished(self, res: dict[str, Any]) -> None:
        name = res["name"]
        area_res = AreaResult(name=name, status=res["status"], summary=res["summary"],
                              seconds=float(res.get("seconds", 0.0)), error=res.get("error"),
                              input_error=bool(res.get("input_error", False)))
        self.results[name] = area_res
        self.timings[name] = {"status": res["status"], "seconds": round(area_res.seconds, 3),
                              "pid": res.get("pid")}
        if "stages" in res:
            self.timings[name]["stages"] = res["stages"]
        self.done += 1
        doors = int(area_res.summary.get("doors", 0))
        if res["status"] == "ran":
            self.doors_done += doors
        self.emit(res["status"], name, doors)


def _areas_to_run(campaign: Campaign, out: Path, *, resume: bool,
                  finished: Callable[[dict[str, Any]], None]) -> list[AreaSpec]:
    """Return the areas to plan, by name; with ``resume``, report the up-to-date ones skipped.

    Decided in this process: the inputs are hashed once each, even when areas share them.
    """
    digests: dict[Path, str] = {}
    todo: list[AreaSpec] = []
    for area in sorted(campaign.areas, key=lambda a: a.name):
        if resume:
            for p in area.files().values():
                if p not in digests:
                    digests[p] = file_sha256(p)
            folder = out / area.name
            if _record_matches(folder, _expected_record(area, digests)):
                report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
                finished({"name": area.name, "status": "skipped",
                          "summary": area_summary(report), "seconds": 0.0})
                continue
        todo.append(area)
    return todo


def _run_tasks(tasks: list[_AreaTask], workers: int, scheduler: str | None, on_dask: bool,
               finished: Callable[[dict[str, Any]], None]) -> None:
    """Run the areas on Dask, in worker processes, or one after the other in this process."""
    if on_dask:
        _run_dask(tasks, workers, scheduler, finished)
    elif workers > 1 and len(tasks) > 1:
        _run_processes(tasks, workers, finished)
    else:
        for t in tasks:
            finished(_run_area(t))


def _write_timings(out: Path, timings: Mapping[str, dict[str, Any]], *, mode: str,
                   workers: int, seconds: float) -> None:
    timing_doc = {
        "note": "durations of the last run; the only campaign file that changes between runs",
        "mode": mode,
        "workers": workers,
        "seconds": round(seconds, 3),
        "areas": dict(sorted(timings.items())),
    }
    write_text_atomic(out / TIMINGS_JSON, _dumps(timing_doc))


def _run_processes(tasks: list[_AreaTask], workers: int,
                   finished: Callable[[dict[str, Any]], None]) -> None:
    """Run the areas in a pool of spawned worker processes that die with this one.

    The pool's workers are ordinary (non-daemonic) processes: nothing in multiprocessing stops
    them when this process is killed, and an orphan would go on writing areas while a resume
    starts. So each worker kills itself when this process dies (:func:`_worker_init`), and a
    :class:`Terminated` (SIGTERM) or any error here kills the running workers before returning.
    A ``KeyboardInterrupt`` lets the running areas finish (Ctrl-C reaches the workers too).
    """
    ctx = multiprocessing.get_context("spawn")
    # workers are spawned by submit() in this (the main) thread, which lives as long as the
    # process: PR_SET_PDEATHSIG fires when the thread that started a worker ends
    pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx,
                                  initializer=_worker_init, initargs=(os.getpid(),))
    stop_now = False
    try:
        futures = [pool.submit(_run_area, t) for t in tasks]
        for fut in cf.as_completed(futures):
            finished(fut.result())
    except KeyboardInterrupt:
        raise
    except BaseException:
        stop_now = True
        raise
    finally:
        if stop_now:
            _kill_workers(pool)
        # wait for running areas (each finishes or cleans up its own folder), drop the rest
        pool.shutdown(wait=True, cancel_futures=True)


def _kill_workers(pool: Any) -> None:
    """Kill the pool's worker processes now and wait until they are gone."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.kill()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(timeout=10)
    logger.info("stopped %d worker process(es)", len(procs))


def _worker_init(parent_pid: int) -> None:
    """Pool initializer: make this worker die with the batch process ``parent_pid``.

    On Linux the kernel sends SIGKILL to the worker when its parent dies, whatever killed it
    (``prctl(PR_SET_PDEATHSIG)``). Everywhere, a watchdog thread checks every
    :data:`WATCHDOG_SECONDS` that the parent is still the one that started the worker, and
    ends the worker at once otherwise (a killed parent's children are re-parented).
    """
    _set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the signal was set
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True,
                     name="knockin-geo-parent-watchdog").start()


def _set_parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    pr_set_pdeathsig = 1  # <linux/prctl.h>
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        ok = False
    if not ok:
        logger.debug("prctl(PR_SET_PDEATHSIG) is unavailable: the watchdog thread only")
    return ok


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCHDOG_SECONDS)
    os._exit(1)  # no clean-up: the next run removes the half-built folder


class Terminated(SystemExit):
    """Raised in the main thread by SIGTERM during :func:`run_campaign`.

    A :class:`SystemExit` with code 143 (128 + SIGTERM), as the default action would give: the
    workers are killed, the half-built areas removed, and the process ends unless a caller
    catches it. Complete areas stay; ``resume=True`` goes on from there.
    """


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while a campaign runs.

    Only in the main thread, and only when SIGTERM has its default action (a caller's own
    handler is left alone). The previous handler is restored on exit.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return
    raised: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if raised:  # a second SIGTERM during the clean-up: keep cleaning up
            return
        raised.append(signum)
        logger.warning("terminated (signal %d): stopping the workers; complete areas stay, "
                       "run again with --resume / resume=True", signum)
        raise Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_dask(tasks: list[_AreaTask], workers: int, scheduler: str | None,
              finished: Callable[[dict[str, Any]], None]) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        msg = 'running on Dask needs dask.distributed: pip install "dask[distributed]"'
        raise MissingDependencyError(msg) from exc
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    futures = []
    try:
        futures = [client.submit(_run_area, t, key=f"knockin-area-{t.area.name}-{uuid.uuid4().hex}",
                                 pure=False) for t in tasks]
        for fut in as_completed(futures):
            finished(fut.result())
    finally:
        with contextlib.suppress(Exception):
            client.cancel(futures)
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------------------------
# campaign files
# --------------------------------------------------------------------------------------------
def _write_campaign_files(out: Path, campaign: Campaign,
                          areas: Sequence[AreaResult]) -> list[Path]:
    reasons = sorted({r for a in areas for r in a.summary.get("unassigned", {})})
    rows = []
    totals = {"doors": 0, "assigned": 0, "turfs": 0, "within_tolerance": 0, "connected": 0,
              "precincts_cut": 0}
    unassigned_tot: dict[str, int] = dict.fromkeys(reasons, 0)
    for a in areas:
        row = {"area": a.name, "status": "failed" if a.status == "failed" else "ok",
               **{k: v for k, v in a.summary.items()}}
        rows.append(row)
        if a.status != "failed":
            for k in totals:
                totals[k] += int(a.summary.get(k, 0))
            for r, n in a.summary.get("unassigned", {}).items():
                unassigned_tot[r] += int(n)
    doc = {
        "campaign": campaign.source.name if campaign.source is not None else None,
        "knockin_geo_version": __version__,
        "areas": rows,
        "totals": {**totals, "areas": len(areas),
                   "failed": sum(a.status == "failed" for a in areas),
                   "unassigned": unassigned_tot},
    }
    written = [write_text_atomic(out / SUMMARY_JSON, _dumps(doc))]
    header = ["area", "status", "doors", "assigned", "turfs", "within_tolerance", "connected",
              "precincts_cut", "max_abs_deviation", "mean_est_minutes",
              *[f"unassigned_{r}" for r in reasons], "error"]
    table = (
        [row["area"], row["status"], *[_csv_value(row.get(k)) for k in header[2:10]],
         *[row.get("unassigned", {}).get(r, 0) for r in reasons], row.get("error", "")]
        for row in rows
    )
    # for people: the error text comes from input files (neutralised like every such cell)
    written.append(write_text_atomic(out / SUMMARY_CSV, sheet_csv(header, table)))
    ok = [a.name for a in areas if a.status != "failed"]
    if ok:
        written.append(campaign_map(out, ok, areas))
    return written


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return Number(f"{v:.6g}")
    return v if isinstance(v, int | bool) else str(v)


def campaign_map(out: Path, names: Sequence[str], areas: Sequence[AreaResult] = ()) -> Path:
    """Write ``out/campaign_map.html``: one layer of turfs (and doors) per area, offline.

    The turfs and doors are read from each area's ``plan.gpkg``. Doors are drawn only when the
    whole campaign has at most :data:`MAP_DOOR_LIMIT` assigned doors (each area's own
    ``map.html`` always has them).

    Parameters
    ----------
    out
        The campaign output folder.
    names
        Areas to draw (their folders must be complete).
    areas
        Their results (for the door counts); read from ``report.json`` when omitted.

    Returns
    -------
    pathlib.Path
        The map file.
    """
    counts = {a.name: int(a.summary.get("assigned", 0)) for a in areas}
    for n in names:
        if n not in counts:
            rep = json.loads((out / n / "report.json").read_text(encoding="utf-8"))
            counts[n] = area_summary(rep)["assigned"]
    with_doors = sum(counts[n] for n in names) <= MAP_DOOR_LIMIT
    layers = [layer for n in sorted(names)
              if (layer := _area_layer(out / n / "plan.gpkg", n, with_doors)) is not None]
    if layers:
        b = np.array([tw.total_bounds for _, tw, _ in layers])
        minx, miny = b[:, 0].min(), b[:, 1].min()
        maxx, maxy = b[:, 2].max(), b[:, 3].max()
    else:
        minx, miny, maxx, maxy = -10.0, 35.0, 30.0, 60.0
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], tiles=None,
                   control_scale=True, prefer_canvas=True, zoom_start=6)
    m.default_js = []
    m.default_css = []
    m.add_child(InlineLeaflet())
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    folium.TileLayer(OSM_TILES, attr=OSM_ATTRIBUTION, name="OpenStreetMap (online)",
                     overlay=True, show=False).add_to(m)
    for n, tw, doors in layers:
        _add_area_layer(m, n, tw, doors)
    folium.LayerControl(collapsed=False).add_to(m)
    return save_map(m, out / CAMPAIGN_MAP)


def _area_layer(
    gpkg: Path, name: str, with_doors: bool
) -> tuple[str, Any, Any] | None:
    """Read an area's turfs (and doors) in WGS 84, coloured; None when it has no turf."""
    turfs = pyogrio.read_dataframe(gpkg, layer="turfs")
    if len(turfs) == 0:
        return None
    turfs = turfs.set_index("turf_id", drop=False)
    colors = turf_colors(turfs)
    turfs["color"] = [colors[str(t)] for t in turfs.index]
    turfs["area"] = name
    doors = None
    if with_doors:
        d = pyogrio.read_dataframe(gpkg, layer="doors", columns=["turf_id", "seq"])
        d = d[d["turf_id"].notna()].copy()
        d["color"] = [colors.get(str(t), "#333") for t in d["turf_id"]]
        doors = to_wgs84(d)
    return name, to_wgs84(turfs), doors


def _add_area_layer(m: folium.Map, name: str, tw: Any, doors: Any) -> None:
    """Add an area's layer (turfs, doors if any) and its name label to the campaign map."""
    props = ["area", "turf_id", "precinct_id", "doors", "est_minutes", "deviation", "color"]
    # names and ids come from input: escaped (layer names and tooltips are HTML)
    group = folium.FeatureGroup(name=html_text(f"{name}: {len(tw)} turfs"))
    cols = [p for p in props if p in tw.columns]
    GeoJsonLayer(
        geojson_collection(tw, cols),
        style_function=lambda f: {
            "color": f["properties"]["color"], "weight": 2,
            "fillColor": f["properties"]["color"], "fillOpacity": 0.3,
        },
        tooltip=folium.GeoJsonTooltip([c for c in cols if c != "color"]),
    ).add_to(group)
    if doors is not None and len(doors):
        GeoJsonLayer(
            geojson_collection(doors, ["turf_id", "seq", "color"]),
            marker=folium.CircleMarker(radius=2, weight=1, fill=True, fill_opacity=0.9),
            style_function=lambda f: {
                "color": f["properties"]["color"], "fillColor": f["properties"]["color"],
            },
        ).add_to(group)
    group.add_to(m)
    c = shapely.centroid(shapely.box(*tw.total_bounds))
    folium.Marker(
        [c.y, c.x],
        tooltip=html_text(name),
        icon=folium.DivIcon(
            html='<div style="font:700 13px sans-serif;text-shadow:0 0 3px #fff">'
                 f"{html_text(name)}</div>",
            icon_size=(120, 18), icon_anchor=(60, 9),
        ),
    ).add_to(m)
