"""Benchmark loading the Nantes precincts + commune addresses and joining them.

Every measurement runs in a fresh Python subprocess, so the peak RSS (``ru_maxrss`` of the child,
imports included) is clean. ``load+join s`` times the work only; ``total s`` includes the imports
(wall time of the child from start to result).

Methods
-------
knockin_geo   ``read_precincts`` + ``read_addresses`` + ``prepare_inputs`` (local UTM) +
              ``join_precincts`` (status, duplicate ids, encoding detection, checks included)
geopandas     ``gpd.read_file`` + ``pd.read_csv`` + ``gpd.points_from_xy`` +
              ``gpd.sjoin(predicate="within")`` in EPSG:4326 (no checks)

Usage::

    .venv/bin/python benchmarks/bench_load.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

T_START = time.perf_counter()

ROOT = Path(__file__).resolve().parents[1]
PRECINCTS = ROOT / "data" / "nantes" / "precincts" / "bureaux_vote_nantes_2014.geojson"
ADDRESSES = ROOT / "data" / "nantes" / "addresses" / "adresses_nantes_commune_2013.csv"
METHODS = ("knockin_geo", "geopandas")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _child_knockin() -> dict:
    from knockin_geo.io import read_addresses, read_precincts
    from knockin_geo.validate import join_precincts, prepare_inputs

    t0 = time.perf_counter()
    precincts = read_precincts(PRECINCTS)
    addresses = read_addresses(ADDRESSES, reference_bounds=tuple(precincts.total_bounds))
    t1 = time.perf_counter()
    p, a, _ = prepare_inputs(precincts, addresses)
    joined = join_precincts(a, p)
    t2 = time.perf_counter()
    return {
        "read": t1 - t0,
        "join": t2 - t1,
        "precincts": len(precincts),
        "addresses": len(joined),
        "inside": int(joined["precinct_id"].notna().sum()),
    }


def _child_geopandas() -> dict:
    import geopandas as gpd
    import pandas as pd

    t0 = time.perf_counter()
    precincts = gpd.read_file(PRECINCTS)
    df = pd.read_csv(ADDRESSES)
    addresses = gpd.GeoDataFrame(
        df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs="EPSG:4326"
    )
    t1 = time.perf_counter()
    joined = gpd.sjoin(addresses, precincts, how="left", predicate="within")
    t2 = time.perf_counter()
    return {
        "read": t1 - t0,
        "join": t2 - t1,
        "precincts": len(precincts),
        "addresses": len(joined),
        "inside": int(joined["code_bv"].notna().sum()),
    }


def _child(method: str) -> None:
    result = _child_knockin() if method == "knockin_geo" else _child_geopandas()
    result["total"] = time.perf_counter() - T_START
    result["rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


def _run(method: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", method],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=METHODS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    rows = {}
    for method in METHODS:
        runs = [_run(method) for _ in range(args.repeat)]
        med = {
            k: statistics.median(r[k] for r in runs) for k in ("read", "join", "total", "rss_mb")
        }
        med.update({k: runs[0][k] for k in ("precincts", "addresses", "inside")})
        rows[method] = med
    print(f"Nantes: {PRECINCTS.name} + {ADDRESSES.name}; median of {args.repeat} fresh processes\n")
    header = f"{'':<22}" + "".join(f"{m:>14}" for m in METHODS)
    print(header)
    print("-" * len(header))
    for key, label, fmt in (
        ("read", "read s", "{:.3f}"),
        ("join", "join s", "{:.3f}"),
        ("total", "total s (w/ imports)", "{:.2f}"),
        ("rss_mb", "peak RSS MB", "{:.0f}"),
        ("precincts", "precincts", "{:,}"),
        ("addresses", "addresses", "{:,}"),
        ("inside", "inside a precinct", "{:,}"),
    ):
        print(f"{label:<22}" + "".join(f"{fmt.format(rows[m][key]):>14}" for m in METHODS))


if __name__ == "__main__":
    main()
