"""Run a cut from a :class:`~knockin_geo.config.PlanConfig`: read, plan, write.

The one implementation behind ``knockin-geo cut`` (and ``recut``, ``demo``), each area of
``knockin-geo batch`` and notebooks::

    from knockin_geo.config import PlanConfig
    from knockin_geo.pipeline import run_cut

    config = PlanConfig.from_toml(Path("my_cut.toml"))
    result = run_cut(config, "plan-out")

:func:`read_inputs` reads the precincts, addresses and voter file; :func:`load_street_network`
the streets; :func:`read_privacy` the do-not-knock list, the campaign secret and the map lock;
:func:`plan_cut` plans in memory and :func:`write_cut` writes the folder.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from knockin_geo import io, streets
from knockin_geo._errors import InputError, kw
from knockin_geo.config import PlanConfig
from knockin_geo.export import read_canvassers
from knockin_geo.model import TurfPlan
from knockin_geo.plan import covered_precincts, plan_turfs, write_plan
from knockin_geo.privacy import (
    SECRET_ENV,
    FieldPolicy,
    MapLock,
    join_voters,
    load_secret,
    read_opt_outs,
    read_voter_file,
)
from knockin_geo.streets import StreetNetwork

__all__ = [
    "MAP_CODE_ENV",
    "CutResult",
    "Inputs",
    "Privacy",
    "input_files",
    "load_street_network",
    "plan_cut",
    "read_inputs",
    "read_privacy",
    "run_cut",
    "write_cut",
]

#: Environment variable holding the access code of locked maps (``lock_maps``).
MAP_CODE_ENV = "KNOCKIN_GEO_MAP_CODE"
#: Degrees added around the area downloaded from OpenStreetMap (``download``).
DOWNLOAD_MARGIN_DEG = 0.005

#: ``step("reading ...")`` wraps each long step (the CLI shows a spinner); default: nothing.
Step = Callable[[str], AbstractContextManager[Any]]
#: Loads a street network: (path, profile, cache) -> network (batch keeps them in memory).
NetworkLoader = Callable[[str, str, bool], StreetNetwork]
#: Input files by role, whose SHA-256 ``plan.gpkg`` records (:func:`input_files`).
InputFiles = Mapping[str, str | os.PathLike[str] | None]


def _key(name: str) -> str:
    """Name a setting in a message: its flag from the CLI, its key elsewhere (:func:`kw`)."""
    return kw(name, python=name)


def _no_step(_text: str) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Inputs:
    """What a cut reads: precincts (or None), doors (voters joined), the report's file names."""

    precincts: gpd.GeoDataFrame | None
    addresses: gpd.GeoDataFrame


@dataclass(frozen=True)
class Privacy:
    """The privacy inputs of a cut: do-not-knock list, campaign secret, map lock."""

    opt_outs: pd.DataFrame | None = None
    secret: bytes | None = field(default=None, repr=False)
    map_lock: MapLock | None = field(default=None, repr=False)


@dataclass
class CutResult:
    """A plan and the files written (with the stage durations, ``load`` included)."""

    plan: TurfPlan
    files: list[Path]
    timings: dict[str, float]


def read_inputs(config: PlanConfig, *, step: Step = _no_step) -> Inputs:
    """Read the precincts and addresses, and join the voter file's counts to the doors."""
    i = config.inputs
    if i.addresses is None:
        msg = f"no address file: give {_key('addresses')}"
        raise InputError(msg)
    precincts = bounds = None
    if i.precincts:
        with step(f"reading precincts {i.precincts}"):
            precincts = io.read_precincts(i.precincts, id_column=i.precinct_id,
                                          crs=i.precincts_crs)
            bounds = tuple(precincts.to_crs(4326).total_bounds)
    with step(f"reading addresses {i.addresses}"):
        addresses = io.read_addresses(i.addresses, columns=config.column_map(), crs=i.crs,
                                      encoding=i.encoding, strict=i.strict,
                                      reference_bounds=bounds)
    p = config.privacy
    if p.voters:
        with step(f"counting voters per door from {p.voters}"):
            voter_file = read_voter_file(p.voters, key=p.voters_key)
            addresses = join_voters(addresses, voter_file, key=p.voters_key,
                                    flags=p.voters_flag)
    return Inputs(precincts, addresses)


def load_street_network(config: PlanConfig, extent: Any = None, *, step: Step = _no_step,
                        loader: NetworkLoader | None = None) -> StreetNetwork:
    """Load the network file, or download the streets around ``extent`` (``download``)."""
    i = config.inputs
    if i.network is None:
        if not i.download:
            msg = f"no street network: give {_key('network')} or {_key('download')}"
            raise InputError(msg)
        if extent is None or len(extent) == 0:
            msg = (f"{_key('download')} needs precincts or addresses to know which area to "
                   "download")
            raise InputError(msg)
        area = shapely.box(*extent.to_crs(4326).total_bounds).buffer(DOWNLOAD_MARGIN_DEG)
        with step("downloading the street network from OpenStreetMap"):
            return streets.download_network(area, profile=i.network_profile)
    with step(f"loading street network {i.network}"):
        if loader is not None:
            return loader(i.network, i.network_profile, i.cache)
        return streets.load_network(i.network, cache=i.cache, profile=i.network_profile)


def read_privacy(config: PlanConfig) -> Privacy:
    """Read the do-not-knock list, the secret (pseudonyms) and the map lock's access code.

    The secret comes from ``$KNOCKIN_GEO_SECRET`` or ``secret_file``; the code from
    ``$KNOCKIN_GEO_MAP_CODE``. The secret, when there is one, also keys the locked maps' salts.
    """
    p = config.privacy
    opt_outs = read_opt_outs(p.opt_outs) if p.opt_outs else None
    secret = None
    if p.pseudonymize or p.secret_file:
        secret = load_secret(key_file=p.secret_file)
    lock = None
    if p.lock_maps:
        code = os.environ.get(MAP_CODE_ENV, "")
        if len(code) < 6:
            msg = f"{_key('lock_maps')} needs an access code of 6+ characters in ${MAP_CODE_ENV}"
            raise InputError(msg)
        lock_secret = secret or (load_secret() if os.environ.get(SECRET_ENV) else None)
        lock = MapLock(code, lock_secret)
    return Privacy(opt_outs, secret, lock)


def _universe(config: PlanConfig, precincts: Any, net: StreetNetwork | None) -> list[str] | None:
    u = config.snap.universe
    if u is None:
        return None
    if u == "covered":
        if net is None:
            return None
        return covered_precincts(precincts, net)
    return list(u)


#: Whether :func:`frozen_gc` is on (for :func:`_refreeze`).
_GC_FROZEN: ContextVar[bool] = ContextVar("knockin_geo_gc_frozen", default=False)


@contextlib.contextmanager
def frozen_gc() -> Iterator[None]:
    """Keep what a cut holds until its end out of the garbage collector's full passes.

    The inputs, the street network and the plan live to the end, and each full collection
    walked all of them again (0.4 s of a Nantes cut). ``gc.freeze`` sets the objects alive now
    aside, :func:`_refreeze` those made since (after reading, before writing), and the end
    gives them back. Nothing changes when objects are frozen already (freezing does not nest).
    """
    if gc.get_freeze_count() or _GC_FROZEN.get():
        yield
        return
    token = _GC_FROZEN.set(True)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        _GC_FROZEN.reset(token)


def _refreeze() -> None:
    """Set aside the objects made since :func:`frozen_gc` began (nothing outside it)."""
    if _GC_FROZEN.get():
        gc.freeze()


def plan_cut(config: PlanConfig, *, privacy: Privacy | None = None, step: Step = _no_step,
             route_workers: int | None = None, loader: NetworkLoader | None = None) -> TurfPlan:
    """Read the inputs and plan the cut in memory (``plan.timings["load"]``: reading).

    Parameters
    ----------
    config
        The settings.
    privacy
        From :func:`read_privacy` (read here when None).
    step
        Wraps each long step (see :data:`Step`).
    route_workers
        Processes that route turfs; None: all cores (same plan whatever the number).
    loader
        Loads the street network file (default :func:`knockin_geo.streets.load_network`).
    """
    privacy = privacy if privacy is not None else read_privacy(config)
    t_load = time.perf_counter()
    inp = read_inputs(config, step=step)
    extent = inp.precincts if inp.precincts is not None else inp.addresses
    chosen = _universe(config, inp.precincts, None)
    if inp.precincts is not None and chosen is not None:
        extent = inp.precincts[inp.precincts.index.astype(str).isin(set(chosen))]
    net = load_street_network(config, extent, step=step, loader=loader)
    load_s = time.perf_counter() - t_load
    _refreeze()
    universe = _universe(config, inp.precincts, net)
    i = config.inputs
    inputs = {
        "precincts": Path(i.precincts).name if i.precincts else None,
        "addresses": Path(str(i.addresses)).name,
        "network": Path(i.network).name if i.network else "osmnx download",
        "network_sha256": net.source_sha256,
    }
    with step("snapping doors, cutting and routing turfs"):
        plan = plan_turfs(inp.addresses, net, precincts=inp.precincts, params=config.turf_params(),
                          max_snap_m=config.snap.max_snap_m, universe=universe, inputs=inputs,
                          route=config.route.route, route_params=config.route_params(net.crs),
                          opt_outs=privacy.opt_outs, route_workers=route_workers)
    stages = {"load": load_s, **plan.timings}
    plan.timings.clear()
    plan.timings.update(stages)
    return plan


def input_files(config: PlanConfig) -> dict[str, str | None]:
    """Return the files a cut is made from, by role (their hashes go into ``plan.gpkg``)."""
    i, p = config.inputs, config.privacy
    return {"addresses": i.addresses, "precincts": i.precincts, "network": i.network,
            "voters": p.voters, "opt_outs": p.opt_outs}


def write_cut(plan: TurfPlan, config: PlanConfig, out: str | os.PathLike[str], *,
              privacy: Privacy | None = None, canvassers: pd.DataFrame | None = None,
              audit_log: str | os.PathLike[str] | None = None,
              timings: dict[str, float] | None = None, workers: int | None = 1,
              inputs: InputFiles | None = None,
              extra_files: Mapping[str, bytes] | None = None) -> list[Path]:
    """Write the plan's folder as the settings ask (:func:`knockin_geo.plan.write_plan`).

    ``inputs``: the files recorded in ``plan.gpkg`` (default :func:`input_files`);
    ``extra_files``: more files for the folder, by name (``edits.json``).
    """
    privacy = privacy if privacy is not None else read_privacy(config)
    o, p = config.outputs, config.privacy
    policy = None
    if o.volunteer_field:
        policy = FieldPolicy(extra=o.volunteer_field, allow_personal=p.allow_personal_field)
    return write_plan(plan, out, walk_lists=o.walk_lists, maps=o.maps, exports=o.exports,
                      lang=o.lang, canvassers=canvassers, secret=privacy.secret,
                      map_code=privacy.map_lock, audit_log=audit_log, field_policy=policy,
                      timings=timings, workers=workers,
                      input_files=dict(inputs if inputs is not None else input_files(config)),
                      extra_files=extra_files)


def run_cut(config: PlanConfig, out: str | os.PathLike[str], *, step: Step = _no_step,
            workers: int | None = None, audit: bool = True,
            transform: Callable[[TurfPlan], TurfPlan] | None = None,
            load: Callable[[], TurfPlan] | None = None,
            inputs: InputFiles | None = None,
            extra_files: Mapping[str, bytes] | None = None) -> CutResult:
    """Read, plan and write a cut into ``out`` (what ``knockin-geo cut`` does).

    Parameters
    ----------
    config
        The settings.
    out
        Output folder.
    step
        Wraps each long step (see :data:`Step`).
    workers
        Processes that route turfs and build the walk lists and phone maps (None: all cores;
        the files are the same whatever the number).
    audit
        Append this export to ``out/audit.jsonl``.
    transform
        Applied to the plan before it is written (``recut`` re-cuts it).
    load
        Reads a written plan instead of cutting one (``recut`` from a plan file).
    inputs
        The files recorded in ``plan.gpkg`` (default :func:`input_files`).
    extra_files
        More files written into ``out`` with the plan, by name (``edits.json``).
    """
    canvassers = None
    if config.outputs.canvassers:  # read before the cut: a bad file fails fast
        canvassers = read_canvassers(config.outputs.canvassers)
    privacy = read_privacy(config)
    with frozen_gc():
        if load is not None:
            t_load = time.perf_counter()
            plan = load()
            timings = {"load": time.perf_counter() - t_load}
        else:
            plan = plan_cut(config, privacy=privacy, step=step, route_workers=workers)
            timings = {"load": plan.timings["load"]}
        if transform is not None:
            plan = transform(plan)
        _refreeze()
        with step(f"writing {out}"):
            files = write_cut(plan, config, out, privacy=privacy, canvassers=canvassers,
                              audit_log=Path(out) / "audit.jsonl" if audit else None,
                              timings=timings, workers=workers, inputs=inputs,
                              extra_files=extra_files)
    return CutResult(plan, files, timings)
