"""Benchmark the director map on a whole country: build time, HTML size, load time in Chromium.

Liechtenstein (12,497 addresses) cut by municipality at 80 doors per turf and routed; then:

* ``knockin_geo``: :func:`knockin_geo.maps.director_map` + ``save_map`` (one GeoJSON layer per
  kind, canvas renderer, Leaflet inlined);
* ``CircleMarker x n``: the naive folium way a user would otherwise write (one marker object per
  door), same doors;
* ``GeoDataFrame.explore``: geopandas' one-liner on the doors coloured by turf.

With ``--before REV`` the director map is also built by the ``knockin_geo`` of git revision REV
(extracted with ``git archive`` into a temporary folder, run in a subprocess on the same pickled
plan), so that before and after are measured in one run, on the same machine load.

Load time is measured in Debian's headless Chromium (Playwright) with the network blocked, from
navigation start until the map's layers are on screen (the ``load`` event plus one animation frame).
The two baselines load Leaflet from a CDN, so offline they cannot draw: only their build time and
size are compared.

Usage::

    .venv/bin/python benchmarks/bench_maps.py --repeat 3 --before 951fbb4
"""

from __future__ import annotations

import argparse
import io as stdio
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import folium

from knockin_geo import io, schema, streets
from knockin_geo.plan import plan_turfs

ROOT = Path(__file__).resolve().parents[1]
LI = ROOT / "data" / "liechtenstein"


def load_time(path: Path, repeat: int) -> float | None:
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        for _ in range(repeat):
            ctx = b.new_context(viewport={"width": 1300, "height": 900})
            ctx.route("http*://**/*", lambda r: r.abort())
            page = ctx.new_page()
            t = time.perf_counter()
            page.goto(path.as_uri(), wait_until="load")
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(1)))")
            times.append(time.perf_counter() - t)
            ctx.close()
        b.close()
    return statistics.median(times)


#: Run in a subprocess: build and save the director map of a pickled plan, print the seconds.
_BUILD = """
import json, pickle, sys, time
plan = pickle.load(open(sys.argv[1], "rb"))
from knockin_geo.maps import director_map, save_map
t = time.perf_counter()
save_map(director_map(plan), sys.argv[2])
print(json.dumps(time.perf_counter() - t))
"""


def build_with(source: Path, plan_file: Path, out: Path) -> float:
    """Build the director map with the ``knockin_geo`` package found in ``source``."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run([sys.executable, "-c", _BUILD, str(plan_file), str(out)], env=env,
                          capture_output=True, text=True, check=True, cwd=source)
    return float(done.stdout.strip().splitlines()[-1])


def extract(rev: str, into: Path) -> Path:
    """Extract the ``knockin_geo`` package of git revision ``rev`` into ``into``."""
    tar = subprocess.run(["git", "archive", rev, "knockin_geo"], cwd=ROOT, capture_output=True,
                         check=True).stdout
    with tarfile.open(fileobj=stdio.BytesIO(tar)) as t:
        t.extractall(into, filter="data")
    return into


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", metavar="REV",
                    help="also build the director map with the code of this git revision")
    args = ap.parse_args()
    doors = io.read_addresses(LI / "osm_addresses_liechtenstein_2024.csv")
    net = streets.load_network(LI / "liechtenstein-2024-03-03.osm.pbf")
    munis = io.read_precincts(LI / "municipalities.geojson", id_column="municipality_id")
    plan = plan_turfs(doors, net, precincts=munis)
    assigned = plan.doors[plan.doors[schema.TURF_ID].notna()]
    tmp = Path(tempfile.mkdtemp())
    rows = []

    plan_file = tmp / "plan.pkl"
    plan_file.write_bytes(pickle.dumps(plan))
    if args.before:
        old = tmp / "before.html"
        build = build_with(extract(args.before, tmp / "before"), plan_file, old)
        rows.append((f"director_map @ {args.before}", build, old.stat().st_size,
                     load_time(old, args.repeat)))
    ours = tmp / "ours.html"
    build = build_with(ROOT, plan_file, ours)
    rows.append(("director_map (this tree)", build, ours.stat().st_size,
                 load_time(ours, args.repeat)))

    wgs = assigned.to_crs(4326)
    t = time.perf_counter()
    m = folium.Map(location=[wgs.geometry.y.mean(), wgs.geometry.x.mean()], zoom_start=12)
    for pt, tid in zip(wgs.geometry, wgs[schema.TURF_ID], strict=True):
        folium.CircleMarker([pt.y, pt.x], radius=3, tooltip=str(tid)).add_to(m)
    naive = tmp / "naive.html"
    m.save(naive)
    rows.append((f"folium CircleMarker x {len(wgs)}", time.perf_counter() - t,
                 naive.stat().st_size, None))

    t = time.perf_counter()
    ex = wgs[[schema.TURF_ID, "geometry"]].explore(column=schema.TURF_ID, legend=False)
    explore = tmp / "explore.html"
    ex.save(explore)
    rows.append(("GeoDataFrame.explore", time.perf_counter() - t, explore.stat().st_size, None))

    print(f"Liechtenstein: {len(assigned):,} doors in {len(plan.turfs)} turfs, "
          f"{len(plan.routes)} routes")
    print(json.dumps({"doors": len(assigned), "turfs": len(plan.turfs)}))
    print(f"{'method':34} {'build+save s':>12} {'HTML MB':>8} {'load s (offline)':>17}")
    for name, build, size, load in rows:
        load_s = f"{load:.2f}" if load is not None else "n/a (CDN)"
        print(f"{name:34} {build:12.2f} {size / 1e6:8.2f} {load_s:>17}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
