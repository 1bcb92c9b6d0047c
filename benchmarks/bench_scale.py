"""Scaling of the whole per-area pipeline (load + join + snap + cut + route) with the number of
doors, and of batch runs with 1 vs 2 worker processes.

Data and synthetic enlargement
------------------------------
Real data: Liechtenstein (``data/liechtenstein/``: the 12,497 OSM addresses, the 2024-03-03 PBF
and the 11 municipalities as precincts), 80 doors per turf, seed 0, routes on.

1k, 10k      REAL subsets: the 1,000 / 10,000 addresses nearest the median address (projected
             EPSG:32632), real network, real municipalities.
100k, 1M     SYNTHETIC ENLARGEMENT: the real addresses, the real street network (nodes, edges,
             barriers) and the 11 real municipalities are copied k = 8 / 80 times; copy i is
             translated by (col * 30 km, row * 40 km) on a grid of ceil(sqrt(k)) columns (the
             network spans 12.7 x 26 km, so every copy is an independent real network; nothing
             touches). Node ids, edge ``u``/``v`` and way/barrier ``osmid`` are offset by
             ``i * 1e11`` (as ``bench_turfs.py`` does), address ids are prefixed ``t{i}-`` and
             precinct ids ``t{i}-``. All coordinates stay in EPSG:32632 (the network's CRS): the
             addresses are written as x/y columns, the precincts as a GeoPackage.
             x8 = 99,976 doors, 88 precincts; x80 = 999,760 doors, 880 precincts.

What is timed (one fresh subprocess per run; the street cache is warmed first)
-------------------------------------------------------------------------------
load     ``read_precincts`` + ``read_addresses`` (the CSV with all the doors) + ``load_network``
         (from knockin_geo's on-disk cache) + the in-memory tiling of the network (tiles only;
         a real 1M-door area would parse a larger PBF once, then hit the cache)
plan     ``plan_turfs``: CRS, precinct join, barriers, snapping, cutting, routing, report
write    ``write_plan`` with ``plan.gpkg`` + ``report.json`` only (no walk lists, maps or
         exports; with ``--full``, everything); skipped with ``--no-write``
peak RSS resident set size of the subprocess tree (sampled every 0.1 s with psutil when
         installed, else ``ru_maxrss`` of the process and of its largest child)

Workers (``knockin_geo.batch.run_campaign``)
--------------------------------------------
100k as 8 areas: a campaign of 8 areas, each the whole real Liechtenstein (12,497 doors, same
files; a real campaign would have 8 different cities), run with ``workers=1`` (in process) and
``workers=2`` (2 spawned processes); ``plan.gpkg`` + ``report.json`` per area (no walk lists,
maps or exports); the campaign summary and map are included.

The 1M case runs only when the extrapolation from the 100k case (``t * 10 ** exponent``, the
exponent measured between 10k and 100k) stays under ``--max-seconds`` (default 900), or with
``--force-1m``; otherwise the table shows the extrapolation.

Everything written (``--full``)
-------------------------------
``--full`` makes every run write what ``knockin-geo cut`` writes: routes in ``plan.gpkg``, walk
lists, phone maps, the director map and ``exports/`` (CSV, GeoJSON, GPX per turf, KML, app
JSON), with the per-turf files built on all cores (``write_plan(workers=None)``); the batch
areas write the same (the campaign file's defaults). The per-stage seconds of the one-area runs
are in the JSON. Peak memory is then also given as the sum of PSS over the process tree: forked
workers share the plan's pages, which a sum of RSS counts once per process.

``--only-1m`` runs only the 1M case, for real: one area of 80 tiles (``plan_turfs`` with
routing on all cores, then ``write_plan``), then the same 999,760 doors as a campaign of 80
areas (each the whole of Liechtenstein, same files) through ``knockin-geo batch`` with
``--batch-workers`` (default 1,2) processes, or a local Dask cluster with ``--dask``. The
outputs of one 1M run take about 10 GB on disk: ``--out-parent`` puts them on a disk with room.

Usage::

    .venv/bin/python benchmarks/bench_scale.py              # ~10 min on 2 cores
    .venv/bin/python benchmarks/bench_scale.py --quick      # 1k and 10k only
    .venv/bin/python benchmarks/bench_scale.py --only-1m --full --dask --batch-workers 2

Results: a table on stdout, ``benchmarks/results/scale.json`` and a log-log plot
``benchmarks/results/scale.png`` (needs matplotlib).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LI = ROOT / "data" / "liechtenstein"
ADDRESSES = LI / "osm_addresses_liechtenstein_2024.csv"
PBF = LI / "liechtenstein-2024-03-03.osm.pbf"
PRECINCTS = LI / "municipalities.geojson"
RESULTS = ROOT / "benchmarks" / "results"

DX_M, DY_M = 30_000.0, 40_000.0
ID_STEP = 10**11
CRS = "EPSG:32632"


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------
def tile_offsets(tiles: int) -> list[tuple[float, float]]:
    cols = math.ceil(math.sqrt(tiles))
    return [((i % cols) * DX_M, (i // cols) * DY_M) for i in range(tiles)]


def make_inputs(folder: Path, *, n: int | None = None, tiles: int = 1) -> dict[str, Any]:
    """Write ``addresses.csv`` (x/y, EPSG:32632) and ``precincts.gpkg`` for one case."""
    import numpy as np
    import pandas as pd
    import pyogrio
    import shapely

    from knockin_geo import io

    folder.mkdir(parents=True, exist_ok=True)
    a = io.read_addresses(ADDRESSES).to_crs(CRS)
    a = a[~a.geometry.is_empty & a.geometry.notna()]
    x, y = shapely.get_x(a.geometry.to_numpy()), shapely.get_y(a.geometry.to_numpy())
    if n is not None:
        d2 = (x - np.median(x)) ** 2 + (y - np.median(y)) ** 2
        pick = np.sort(np.argsort(d2, kind="stable")[:n])
        a, x, y = a.iloc[pick], x[pick], y[pick]
    base = pd.DataFrame({
        "address_id": a.index.astype(str),
        "housenumber": a["housenumber"].astype("string").fillna(""),
        "street": a["street"].astype("string").fillna(""),
    })
    p = io.read_precincts(PRECINCTS, id_column="municipality_id").to_crs(CRS)
    parts, precs = [], []
    for i, (ox, oy) in enumerate(tile_offsets(tiles)):
        t = base.copy()
        if tiles > 1:
            t["address_id"] = f"t{i}-" + t["address_id"]
        t["x"] = np.round(x + ox, 3)
        t["y"] = np.round(y + oy, 3)
        parts.append(t)
        q = p[[]].copy()
        q["precinct_id"] = (f"t{i}-" if tiles > 1 else "") + p.index.astype(str)
        q = q.set_geometry(p.geometry.translate(ox, oy)).reset_index(drop=True)
        precs.append(q)
    doors = pd.concat(parts, ignore_index=True)
    doors.to_csv(folder / "addresses.csv", index=False)
    prec = pd.concat(precs, ignore_index=True)
    import geopandas as gpd

    pyogrio.write_dataframe(gpd.GeoDataFrame(prec, crs=CRS), folder / "precincts.gpkg",
                            driver="GPKG")
    return {"doors": len(doors), "precincts": len(prec), "folder": str(folder), "tiles": tiles}


def tile_network(net: Any, tiles: int) -> Any:
    """Copy a StreetNetwork on the :func:`tile_offsets` grid (ids offset by ``i * 1e11``)."""
    import numpy as np
    import pandas as pd

    from knockin_geo.streets import StreetNetwork

    ids = net.nodes.index.to_numpy(dtype=np.int64)
    nodes, edges, bars = [], [], []
    for i, (ox, oy) in enumerate(tile_offsets(tiles)):
        step = i * ID_STEP
        nd = net.nodes.copy()
        nd.geometry = nd.geometry.translate(ox, oy)
        nd["x"] = nd["x"] + ox
        nd["y"] = nd["y"] + oy
        nd.index = pd.Index(ids + step, name=net.nodes.index.name)
        ed = net.edges.copy()
        ed.geometry = ed.geometry.translate(ox, oy)
        for c in ("u", "v", "osmid"):
            ed[c] = ed[c].to_numpy(dtype=np.int64) + step
        br = net.barriers.copy()
        br.geometry = br.geometry.translate(ox, oy)
        br["osmid"] = br["osmid"].to_numpy(dtype=np.int64) + step
        nodes.append(nd)
        edges.append(ed)
        bars.append(br)
    e_all = pd.concat(edges, ignore_index=True)
    e_all.index.name = net.edges.index.name
    b_all = pd.concat(bars, ignore_index=True)
    b_all.index.name = net.barriers.index.name
    return StreetNetwork(pd.concat(nodes), e_all, b_all, net.crs, f"{net.source} x{tiles}",
                         net.source_sha256)


# ------------------------------------------------------------------------------------------
# children
# ------------------------------------------------------------------------------------------
def _rss_sampler(pss: bool = False) -> tuple[threading.Event, dict[str, float]]:
    """Sample the process tree's memory: the sum of RSS (``mb``) and, with ``pss``, the sum of
    PSS (``pss_mb``: pages shared by forked workers counted once, not once per process)."""
    peak = {"mb": 0.0, "pss_mb": 0.0}
    stop = threading.Event()
    try:
        import psutil
    except ImportError:
        return stop, peak
    me = psutil.Process()

    def run() -> None:
        while not stop.is_set():
            try:
                procs = [me, *me.children(recursive=True)]
                total = shared = 0
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        if pss:
                            info = p.memory_full_info()
                            total += info.rss
                            shared += info.pss
                        else:
                            total += p.memory_info().rss
                peak["mb"] = max(peak["mb"], total / 2**20)
                peak["pss_mb"] = max(peak["pss_mb"], shared / 2**20)
            except psutil.Error:
                pass
            # reading a process's PSS walks its memory map: 11 ms of CPU for a 300 MB process,
            # so every 2 s (an area's peak lasts longer), not every 0.5 s: with six processes of
            # 300-700 MB that took up to a sixth of a core from the run it measured
            stop.wait(2.0 if pss else 0.1)

    threading.Thread(target=run, daemon=True).start()
    return stop, peak


def _ru_peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return max(own, kids)


def child_pipeline(case: dict[str, Any]) -> dict[str, Any]:
    stop, peak = _rss_sampler(pss=case.get("full", False))
    t0 = time.perf_counter()
    from knockin_geo import io
    from knockin_geo.plan import plan_turfs, write_plan
    from knockin_geo.streets import load_network
    from knockin_geo.turfs import TurfParams

    t_import = time.perf_counter() - t0
    folder = Path(case["folder"])
    t0 = time.perf_counter()
    precincts = io.read_precincts(folder / "precincts.gpkg", id_column="precinct_id")
    doors = io.read_addresses(folder / "addresses.csv", crs=CRS)
    net = load_network(PBF)
    if case["tiles"] > 1:
        net = tile_network(net, case["tiles"])
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    plan = plan_turfs(doors, net, precincts=precincts, params=TurfParams(doors_per_turf=80.0))
    t_plan = time.perf_counter() - t0
    print(f"  planned {len(doors):,} doors in {t_plan:.0f} s (load {t_load:.0f} s): "
          f"{ {k: round(v, 1) for k, v in plan.timings.items()} }", file=sys.stderr, flush=True)
    t_write = 0.0
    stages: dict[str, float] = {}
    files = written_mb = 0.0
    if case["write"]:
        full = case.get("full", False)
        with tempfile.TemporaryDirectory(dir=case.get("out_parent")) as tmp:
            t0 = time.perf_counter()
            # full: everything `knockin-geo cut` writes, per-turf files on all cores
            write_plan(plan, tmp, walk_lists=full, maps=full, exports=full, timings=stages,
                       workers=None if full else 1)
            t_write = time.perf_counter() - t0
            out = [p for p in Path(tmp).rglob("*") if p.is_file()]
            files, written_mb = len(out), sum(p.stat().st_size for p in out) / 1e6
    stop.set()
    s = plan.report["summary"]
    return {
        "doors": int(s["doors_in"]), "assigned": int(s["doors_assigned"]),
        "turfs": int(s["turfs"]), "within_tolerance": int(s["turfs_within_tolerance"]),
        "import_s": t_import, "load_s": t_load, "plan_s": t_plan, "write_s": t_write,
        "seconds": t_load + t_plan + t_write,
        "peak_rss_mb": max(peak["mb"], _ru_peak_mb()), "peak_pss_mb": peak["pss_mb"] or None,
        "files": int(files), "written_mb": written_mb,
        "stages": {k: round(v, 1) for k, v in stages.items()},
    }


def campaign_toml(areas: int, full: bool) -> str:
    """A campaign of ``areas`` areas, each the whole of Liechtenstein by municipality."""
    flags = "" if full else "walk_lists = false\nmaps = false\nexports = false\n"
    lines = [f"[defaults]\ndoors_per_turf = 80\n{flags}"]
    for i in range(areas):
        lines.append(f'[[areas]]\nname = "area{i:02d}"\nprecincts = {json.dumps(str(PRECINCTS))}'
                     f'\nprecinct_id = "municipality_id"\naddresses = '
                     f'{json.dumps(str(ADDRESSES))}\nnetwork = {json.dumps(str(PBF))}\n')
    return "\n".join(lines)


def child_batch(case: dict[str, Any]) -> dict[str, Any]:
    stop, peak = _rss_sampler(pss=case.get("full", False))
    from knockin_geo.cli.main import main as cli

    with tempfile.TemporaryDirectory(dir=case.get("out_parent")) as tmp:
        toml = Path(tmp) / "campaign.toml"
        toml.write_text(campaign_toml(case["areas"], case.get("full", False)),
                        encoding="utf-8")
        out = Path(tmp) / "out"
        # exactly `knockin-geo batch campaign.toml --out OUT --workers N [--dask]`
        args = ["-q", "batch", str(toml), "--out", str(out), "--workers", str(case["workers"])]
        if case.get("dask"):
            args.append("--dask")
        t0 = time.perf_counter()
        code = cli(args)
        seconds = time.perf_counter() - t0
        if code != 0:
            raise RuntimeError(f"knockin-geo batch exited with {code}")
        summary = json.loads((out / "campaign_summary.json").read_text())
        per_area = area_timings(out / "campaign_timings.json")
        written = [p for p in out.rglob("*") if p.is_file()]
        files, written_mb = len(written), sum(p.stat().st_size for p in written) / 1e6
    stop.set()
    tot = summary["totals"]
    return {
        "doors": int(tot["doors"]), "assigned": int(tot["assigned"]), "turfs": int(tot["turfs"]),
        "within_tolerance": int(tot["within_tolerance"]), "seconds": seconds,
        "areas_ok": sum(1 for a in summary["areas"] if a.get("status") == "ok"),
        "areas_failed": int(tot["failed"]),
        "peak_rss_mb": max(peak["mb"], _ru_peak_mb()), "peak_pss_mb": peak["pss_mb"] or None,
        "files": files, "written_mb": written_mb, **per_area,
    }


def area_timings(path: Path) -> dict[str, Any]:
    """Summarise ``campaign_timings.json`` before the outputs are deleted: seconds per area
    (median, min, max; median of the first and last quarter, to see a drift over the run) and
    the median of each stage."""
    areas = list(json.loads(path.read_text(encoding="utf-8"))["areas"].values())
    secs = [float(a["seconds"]) for a in areas if "seconds" in a]
    if not secs:
        return {}
    q = max(1, len(secs) // 4)
    stages = sorted({k for a in areas for k in a.get("stages", {})})
    return {
        "area_s": {"median": statistics.median(secs), "min": min(secs), "max": max(secs),
                   "first_quarter": statistics.median(secs[:q]),
                   "last_quarter": statistics.median(secs[-q:])},
        "stage_median_s": {k: round(statistics.median(
            [a["stages"][k] for a in areas if k in a.get("stages", {})]), 3) for k in stages},
    }


# ------------------------------------------------------------------------------------------
# parent
# ------------------------------------------------------------------------------------------
def run_child(kind: str, case: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, json.dumps(case)]
    t0 = time.perf_counter()
    try:
        # stderr streams through (progress of long runs); stdout carries the result
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": f"exit code {proc.returncode} (see the output above)"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t0
    return out


def load_avg() -> float:
    return os.getloadavg()[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="1k and 10k only")
    ap.add_argument("--no-write", action="store_true", help="do not time write_plan")
    ap.add_argument("--max-seconds", type=float, default=900.0,
                    help="run 1M only if its extrapolation is below this (900)")
    ap.add_argument("--force-1m", action="store_true", help="run 1M whatever the extrapolation")
    ap.add_argument("--skip-workers", action="store_true", help="no workers 1 vs 2 runs")
    ap.add_argument("--timeout", type=float, default=3600.0, help="per run (3600 s)")
    ap.add_argument("--full", action="store_true",
                    help="write everything `knockin-geo cut` writes (routes, walk lists, phone "
                         "maps, director map, exports), per-turf files on all cores")
    ap.add_argument("--only-1m", action="store_true",
                    help="run only the 1M case (one area, forced) and the 1M campaign")
    ap.add_argument("--batch-areas", type=int, default=None,
                    help="areas of the batch runs (8; 80 = 1M doors with --only-1m)")
    ap.add_argument("--batch-workers", default="1,2", help="batch worker counts (1,2)")
    ap.add_argument("--skip-one-area", action="store_true",
                    help="no one-area runs (the batch runs only)")
    ap.add_argument("--dask", action="store_true",
                    help="batch runs through `knockin-geo batch --dask` (dask[distributed])")
    ap.add_argument("--out-parent", default=None,
                    help="folder for the written outputs (default: the system's temp folder)")
    args = ap.parse_args()
    if args.child:
        kind, case = args.child[0], json.loads(args.child[1])
        res = child_pipeline(case) if kind == "pipeline" else child_batch(case)
        print(json.dumps(res))
        return 0

    from knockin_geo.streets import load_network

    load_network(PBF)  # warm the street cache
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmpdir:
        tmp = Path(tmpdir)
        sizes = [("1k (real subset)", 1000, 1), ("10k (real subset)", 10000, 1)]
        if not args.quick:
            sizes += [("100k (x8 tiles)", None, 8), ("1M (x80 tiles)", None, 80)]
        if args.only_1m:
            sizes = sizes[-1:]
        if args.skip_one_area:
            sizes = []
        # routing (and with --full the per-turf files) on all cores
        cores = "all" if args.full else "route: all"
        for label, n, tiles in sizes:
            row: dict[str, Any] = {"case": label, "workers": 1, "kind": "one area",
                                   "cores": cores, "full": args.full}
            if tiles == 80 and not (args.force_1m or args.only_1m):
                prev = [r for r in rows if "seconds" in r and r["kind"] == "one area"]
                if len(prev) >= 2:
                    a, b = prev[-2], prev[-1]
                    k = math.log(b["seconds"] / a["seconds"]) / math.log(b["doors"] / a["doors"])
                    est = b["seconds"] * (10 * b["doors"] / b["doors"]) ** k
                    row.update(doors=10 * b["doors"], exponent=k, extrapolated_s=est)
                    if est > args.max_seconds:
                        row["note"] = (f"not run: extrapolated {est:.0f} s > "
                                       f"--max-seconds {args.max_seconds:.0f}")
                        rows.append(row)
                        print(f"{label}: {row['note']}", flush=True)
                        continue
            info = make_inputs(tmp / f"case{len(rows)}", n=n, tiles=tiles)
            before = load_avg()
            res = run_child("pipeline", {"folder": info["folder"], "tiles": tiles,
                                         "write": not args.no_write, "full": args.full,
                                         "out_parent": args.out_parent}, args.timeout)
            row.update(res, load_before=before, load_after=load_avg())
            rows.append(row)
            print(f"{label}: {res}", flush=True)
        if not args.skip_workers and not args.quick:
            areas = args.batch_areas or (80 if args.only_1m else 8)
            size = "1M" if areas == 80 else f"{areas * 12.5:g}k"
            how = "batch --dask" if args.dask else "batch"
            for workers in (int(w) for w in args.batch_workers.split(",")):
                before = load_avg()
                res = run_child("batch", {"areas": areas, "workers": workers, "full": args.full,
                                          "dask": args.dask, "out_parent": args.out_parent},
                                args.timeout)
                row = {"case": f"{size} ({areas} areas x 12.5k, {how})", "workers": workers,
                       "kind": "batch", "full": args.full, **res, "load_before": before,
                       "load_after": load_avg()}
                rows.append(row)
                print(f"{how} workers={workers}: {res}", flush=True)
    print_table(rows)
    doc = {
        "benchmark": "bench_scale", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "rows": rows, "wall_s": time.perf_counter() - t_all,
    }
    name = "scale_1m" if args.only_1m else ("scale_full" if args.full else "scale")
    (RESULTS / f"{name}.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    plot(rows, RESULTS / f"{name}.png")
    return 0


def print_table(rows: list[dict[str, Any]]) -> None:
    head = f"{'case':32} {'doors':>9} {'wk':>3} {'turfs':>6} {'load s':>7} {'plan s':>8} " \
           f"{'write s':>8} {'total s':>8} {'doors/s':>8} {'peak RSS':>9}"
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        if "seconds" not in r:
            est = r.get("extrapolated_s")
            tail = (f"extrapolated ~{est:,.0f} s (exponent {r['exponent']:.2f}); "
                    f"{r.get('note', r.get('error', ''))}") if est else r.get("error", "")
            print(f"{r['case']:32} {r.get('doors', 0):>9,} {r['workers']:>3}  {tail}")
            continue

        def f(k: str, r: dict[str, Any] = r) -> str:
            return f"{r[k]:.1f}" if k in r else "-"

        pss = f" (PSS {r['peak_pss_mb']:,.0f} MB)" if r.get("peak_pss_mb") else ""
        print(f"{r['case']:32} {r['doors']:>9,} {r['workers']:>3} {r['turfs']:>6,} "
              f"{f('load_s'):>7} {f('plan_s'):>8} {f('write_s'):>8} {r['seconds']:>8.1f} "
              f"{r['doors'] / r['seconds']:>8,.0f} {r['peak_rss_mb']:>7,.0f} MB{pss} "
              f"load {r.get('load_before', 0):.1f}-{r.get('load_after', 0):.1f}")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    one = [r for r in rows if r["kind"] == "one area" and "seconds" in r]
    if one:
        x = [r["doors"] for r in one]
        ax1.loglog(x, [r["seconds"] for r in one], "o-", label="one area, 1 process")
        ax2.loglog(x, [r["peak_rss_mb"] for r in one], "o-", label="one area")
        ref = one[0]
        xs = [ref["doors"], max(x) * 10 if len(one) < 4 else max(x)]
        ax1.loglog(xs, [ref["seconds"] * v / ref["doors"] for v in xs], ":", color="grey",
                   label="linear from 1k")
    extra = [r for r in rows if r["kind"] == "one area" and "extrapolated_s" in r
             and "seconds" not in r]
    for r in extra:
        ax1.loglog([r["doors"]], [r["extrapolated_s"]], "x", color="C0", markersize=10,
                   label="1M extrapolated (not run)")
    for r in rows:
        if r["kind"] == "batch" and "seconds" in r:
            m = "s" if r["workers"] == 1 else "^"
            ax1.loglog([r["doors"]], [r["seconds"]], m, markersize=9,
                       label=f"8 areas, batch, {r['workers']} worker(s)")
            ax2.loglog([r["doors"]], [r["peak_rss_mb"]], m, markersize=9,
                       label=f"8 areas, {r['workers']} worker(s)")
    ax1.set(xlabel="doors", ylabel="seconds (load + plan + write)",
            title="knockin_geo pipeline time")
    ax2.set(xlabel="doors", ylabel="peak RSS (MB)", title="peak memory")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
