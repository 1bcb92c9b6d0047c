"""Our whole ``knockin-geo cut`` beside the do-it-yourself pipeline, in one process, same data.

Cases (real data, 80 doors per turf):

li        Liechtenstein by municipality: ``osm_addresses_liechtenstein_2024.csv`` (12.5k doors),
          ``municipalities.geojson`` (id ``municipality_id``), ``liechtenstein-2024-03-03.osm.pbf``.
nantes    Nantes' bureaux that the 2014 street extract covers (``--universe covered``, 22
          bureaux): ``adresses_nantes_commune_2013.csv``, ``bureaux_vote_nantes_2014.geojson``,
          ``osm/nantes_centre_2014-09.osm.pbf``.

What each side does (and writes)
--------------------------------
ours      ``knockin_geo.cli.main.main(["cut", ...])`` in this process: exactly what the command
          writes (``plan.gpkg``, ``report.json``, ``timings.json``, routes, walk lists, phone
          maps, the director map, ``exports/`` with CSV, GeoJSON, GPX per turf, KML, app JSON,
          ``audit.jsonl``). Rows: ``--workers`` all cores (the default) and 1, with the street
          cache warm (a director's second and later cuts), and all cores with ``--no-cache``
          (the very first cut: the PBF is parsed and the network built).
diy       What a data person would write with the usual libraries:

          1. ``osmnx.graph_from_xml`` (osmnx cannot read ``.pbf``: the PBF is converted to OSM
             XML once with pyosmium, OUTSIDE the timing, keeping the ways that osmnx's ``walk``
             network keeps and their nodes, so the graph is a walk graph, not every building
             outline), then ``osmnx.project_graph``;
          2. the doors (``pandas.read_csv``), joined to the precincts (``geopandas.sjoin``;
             Nantes: the same 22 covered bureaux as ours, listed outside the timing), snapped to
             their nearest graph node (``osmnx.distance.nearest_nodes``);
          3. ``KMeansConstrained`` per precinct on x/y, k = round(n / 80), sizes 0.9-1.1 x n/k,
             ``n_init=1`` (the library default, 10, is about 10x slower: 1 favours the DIY side);
          4. a nearest-neighbour door order per turf on street distances of the osmnx graph
             (``scipy.sparse.csgraph.dijkstra`` from the turf's nodes, limited to 5 km, on the
             graph's sparse matrix; networkx's own Dijkstra is far slower; pairs beyond 5 km,
             rare, fall back to the straight line);
          5. one folium map (``GeoDataFrame.explore``: turf hulls and every door coloured by
             turf) and ``assignments.csv`` (door, precinct, turf, order).

          It writes no routes along the streets, walk lists, phone maps, GPX or KML: it does
          less than ours.

The ratio is ours / diy (the issue's aim: <= 0.2 with everything we write). Each row prints the
1-minute load average before and after it: the machine is shared, and a load clearly above the
benchmark's own (about 1 to 2) inflates the times of that row.

Extra packages for the DIY side: ``pip install k-means-constrained`` (or ``pip install -e
".[bench]"``). Without it the DIY rows show ``error``.

Usage::

    .venv/bin/python benchmarks/bench_pipeline.py                  # both cases, ~5 min
    .venv/bin/python benchmarks/bench_pipeline.py --cases nantes
    .venv/bin/python benchmarks/bench_pipeline.py --no-cold        # skip the --no-cache row

Results: a table on stdout and ``benchmarks/results/pipeline.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from baselines import kmeans_constrained

ROOT = Path(__file__).resolve().parents[1]
LI = ROOT / "data" / "liechtenstein"
NANTES = ROOT / "data" / "nantes"
RESULTS = ROOT / "benchmarks" / "results"
DOORS_PER_TURF = 80
DIJKSTRA_LIMIT_M = 5000.0

CASES: dict[str, dict[str, Any]] = {
    "li": {
        "label": "Liechtenstein by municipality",
        "precincts": LI / "municipalities.geojson", "precinct_id": "municipality_id",
        "addresses": LI / "osm_addresses_liechtenstein_2024.csv",
        "network": LI / "liechtenstein-2024-03-03.osm.pbf", "universe": None,
    },
    "nantes": {
        "label": "Nantes, 22 covered bureaux",
        "precincts": NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson",
        "precinct_id": None,
        "addresses": NANTES / "addresses" / "adresses_nantes_commune_2013.csv",
        "network": NANTES / "osm" / "nantes_centre_2014-09.osm.pbf", "universe": "covered",
    },
}

#: highway values osmnx's ``walk`` network drops (osmnx 2.x ``_get_osm_filter("walk")``).
WALK_EXCLUDED = {
    "abandoned", "bus_guideway", "construction", "cycleway", "motor", "no", "planned",
    "platform", "proposed", "raceway", "razed", "motorway", "motorway_link",
}


# ------------------------------------------------------------------------------------------
# preparation (not timed)
# ------------------------------------------------------------------------------------------
def pbf_to_walk_xml(pbf: Path, xml: Path) -> dict[str, int]:
    """Write the walkable ways of ``pbf`` and their nodes as OSM XML (for ``graph_from_xml``)."""
    import osmium

    def walkable(tags: Any) -> bool:
        hw = tags.get("highway")
        return (hw is not None and hw not in WALK_EXCLUDED and tags.get("area") != "yes"
                and tags.get("foot") != "no" and tags.get("service") != "private"
                and tags.get("access") != "private")

    ways: list[int] = []
    need: set[int] = set()
    for w in osmium.FileProcessor(str(pbf), osmium.osm.WAY):
        if walkable(w.tags):
            ways.append(w.id)
            need.update(n.ref for n in w.nodes)
    keep = set(ways)
    have: set[int] = set()
    n_ways = 0
    with osmium.SimpleWriter(str(xml), overwrite=True) as out:
        for node in osmium.FileProcessor(str(pbf), osmium.osm.NODE):
            if node.id in need:
                out.add_node(node)
                have.add(node.id)
        for w in osmium.FileProcessor(str(pbf), osmium.osm.WAY):
            if w.id in keep:
                # a clipped extract (Nantes) lacks the nodes beyond the clip: osmnx refuses
                # ways that name missing nodes, so they are cut at the clip
                refs = [n.ref for n in w.nodes if n.ref in have]
                if len(refs) >= 2:
                    out.add_way(w.replace(nodes=refs))
                    n_ways += 1
    return {"nodes": len(have), "ways": n_ways, "bytes": xml.stat().st_size}


def covered_ids(case: dict[str, Any]) -> list[str] | None:
    """The precinct ids ours cuts (``covered`` resolved as the CLI does), for the DIY side."""
    if case["universe"] != "covered":
        return None
    from knockin_geo import io, streets
    from knockin_geo.plan import covered_precincts

    precincts = io.read_precincts(case["precincts"], id_column=case["precinct_id"])
    return covered_precincts(precincts, streets.load_network(case["network"]))


# ------------------------------------------------------------------------------------------
# ours
# ------------------------------------------------------------------------------------------
def run_ours(case: dict[str, Any], out: Path, *, workers: int | None, cache: bool
             ) -> dict[str, Any]:
    from knockin_geo.cli.main import main

    args = ["-q", "cut", "--precincts", str(case["precincts"]), "--addresses",
            str(case["addresses"]), "--network", str(case["network"]),
            "--doors-per-turf", str(DOORS_PER_TURF), "--out", str(out)]
    if case["precinct_id"]:
        args += ["--precinct-id", case["precinct_id"]]
    if case["universe"]:
        args += ["--universe", case["universe"]]
    if workers is not None:
        args += ["--workers", str(workers)]
    if not cache:
        args.append("--no-cache")
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the command's summary tables
        code = main(args)
    seconds = time.perf_counter() - t0
    if code != 0:
        return {"error": f"knockin-geo cut exited with {code}"}
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    stages = json.loads((out / "timings.json").read_text(encoding="utf-8"))
    files = [p for p in out.rglob("*") if p.is_file()]
    s = report["summary"]
    return {"seconds": seconds, "doors": int(s["doors_assigned"]), "turfs": int(s["turfs"]),
            "files": len(files), "mb": sum(p.stat().st_size for p in files) / 1e6,
            "stages": stages.get("stages", stages)}


# ------------------------------------------------------------------------------------------
# do it yourself
# ------------------------------------------------------------------------------------------
def diy_graph(xml: Path) -> tuple[Any, Any, np.ndarray]:
    """osmnx walk graph from the XML, projected; its sparse length matrix and node ids."""
    import networkx as nx
    import osmnx as ox

    g = ox.project_graph(ox.graph_from_xml(xml))
    d = ox.convert.to_digraph(g, weight="length")  # the shortest of parallel edges
    nodes = np.fromiter(d.nodes, dtype=np.int64, count=d.number_of_nodes())
    matrix = nx.to_scipy_sparse_array(d, nodelist=nodes.tolist(), weight="length",
                                      format="csr")
    return g, matrix, nodes


def diy_doors(case: dict[str, Any], g: Any, universe: list[str] | None) -> Any:
    """Doors with their precinct and nearest graph node."""
    import geopandas as gpd
    import osmnx as ox

    raw = pd.read_csv(case["addresses"], dtype=str)
    lon = pd.to_numeric(raw["lon"], errors="coerce")
    lat = pd.to_numeric(raw["lat"], errors="coerce")
    doors = gpd.GeoDataFrame(raw, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    doors = doors[lon.notna().to_numpy() & lat.notna().to_numpy()].to_crs(g.graph["crs"])
    precincts = gpd.read_file(case["precincts"]).to_crs(g.graph["crs"])
    pid = case["precinct_id"] or next(c for c in precincts.columns if c != "geometry")
    precincts = precincts[[pid, "geometry"]].rename(columns={pid: "precinct"})
    precincts["precinct"] = precincts["precinct"].astype(str)
    if universe is not None:
        precincts = precincts[precincts["precinct"].isin(universe)]
    doors = gpd.sjoin(doors, precincts, predicate="within", how="inner")
    doors = doors[~doors.index.duplicated()].drop(columns="index_right")
    doors["x"] = doors.geometry.x
    doors["y"] = doors.geometry.y
    doors["node"] = ox.distance.nearest_nodes(g, doors["x"].to_numpy(), doors["y"].to_numpy())
    return doors


def diy_cut(doors: Any) -> np.ndarray:
    """KMeansConstrained per precinct: turf labels ``<precinct>-<k>``."""
    labels = np.empty(len(doors), dtype=object)
    for pid, rows in doors.groupby("precinct", sort=True).indices.items():
        xy = doors[["x", "y"]].to_numpy()[rows]
        lab = kmeans_constrained(xy, max(1, round(len(rows) / DOORS_PER_TURF)))
        labels[rows] = [f"{pid}-{x:02d}" for x in lab]
    return labels


def diy_order(doors: Any, matrix: Any, nodes: np.ndarray) -> tuple[np.ndarray, float]:
    """Nearest-neighbour walk order per turf on street distances; total walk (m)."""
    from scipy.sparse import csgraph

    order = np.zeros(len(doors), dtype=np.int64)
    total = 0.0
    node_pos = pd.Series(np.arange(len(nodes)), index=nodes)
    xy = doors[["x", "y"]].to_numpy()
    for rows in doors.groupby("turf", sort=True).indices.values():
        pos = node_pos.loc[doors["node"].to_numpy()[rows]].to_numpy()
        src, inv = np.unique(pos, return_inverse=True)
        dist = csgraph.dijkstra(matrix, directed=False, indices=src, limit=DIJKSTRA_LIMIT_M)
        d = dist[inv][:, pos]
        straight = np.hypot(*(xy[rows][:, None, :] - xy[rows][None, :, :]).transpose(2, 0, 1))
        d = np.where(np.isfinite(d), d, straight)
        seen = np.zeros(len(rows), dtype=bool)
        cur = 0
        for step in range(len(rows)):
            seen[cur] = True
            order[rows[cur]] = step + 1
            if step + 1 == len(rows):
                break
            nxt = int(np.argmin(np.where(seen, np.inf, d[cur])))
            total += float(d[cur, nxt])
            cur = nxt
    return order, total


def diy_write(doors: Any, out: Path) -> int:
    """One folium map (turf hulls, doors coloured by turf) and the assignments CSV."""
    import geopandas as gpd

    out.mkdir(parents=True, exist_ok=True)
    hulls = doors.dissolve("turf").convex_hull.buffer(15)
    turfs = gpd.GeoDataFrame({"turf": hulls.index, "doors": doors.groupby("turf").size()
                              .reindex(hulls.index).to_numpy()},
                             geometry=hulls.to_numpy(), crs=doors.crs)
    m = turfs.explore(column="turf", legend=False, tooltip=["turf", "doors"],
                      style_kwds={"fillOpacity": 0.2})
    doors[["turf", "order", "geometry"]].explore(m=m, column="turf", legend=False,
                                                 marker_kwds={"radius": 3})
    m.save(out / "map.html")
    cols = [c for c in ("address_id", "addr_id") if c in doors.columns][:1]
    doors[[*cols, "precinct", "turf", "order"]].sort_values(["turf", "order"]).to_csv(
        out / "assignments.csv", index=False)
    return sum(p.stat().st_size for p in out.iterdir())


def run_diy(case: dict[str, Any], xml: Path, universe: list[str] | None, out: Path
            ) -> dict[str, Any]:
    stages: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = fn()
        stages[name] = time.perf_counter() - t0
        return value

    g, matrix, nodes = timed("graph_from_xml", lambda: diy_graph(xml))
    doors = timed("doors", lambda: diy_doors(case, g, universe))
    doors["turf"] = timed("kmeans_constrained", lambda: diy_cut(doors))
    doors["order"], walk = timed("nn_order", lambda: diy_order(doors, matrix, nodes))
    size = timed("folium_map+csv", lambda: diy_write(doors, out))
    return {"seconds": sum(stages.values()), "doors": len(doors),
            "turfs": int(doors["turf"].nunique()), "files": 2, "mb": size / 1e6,
            "stages": stages, "nn_walk_km": walk / 1000.0, "graph_nodes": len(nodes)}


# ------------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------------
def guarded(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    before = os.getloadavg()[0]
    try:
        res = fn()
    except ImportError as exc:
        res = {"error": f"missing package: {exc.name} (pip install k-means-constrained)"}
    except Exception as exc:  # a benchmark row, not a crash of the whole table
        traceback.print_exc()
        res = {"error": f"{type(exc).__name__}: {exc}"}
    res.update(load_before=before, load_after=os.getloadavg()[0])
    return res


def run_case(name: str, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    from knockin_geo import streets

    case = CASES[name]
    streets.load_network(case["network"])  # warm the street cache (the "warm" rows)
    universe = covered_ids(case)
    xml = tmp / f"{name}.osm"
    t0 = time.perf_counter()
    info = pbf_to_walk_xml(case["network"], xml)
    print(f"{name}: PBF -> walk XML {info} in {time.perf_counter() - t0:.1f} s (not timed)",
          flush=True)
    plans: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("ours, all cores", lambda: run_ours(case, tmp / f"{name}-ours", workers=None,
                                             cache=True)),
        ("diy", lambda: run_diy(case, xml, universe, tmp / f"{name}-diy")),
        ("ours, --workers 1", lambda: run_ours(case, tmp / f"{name}-ours1", workers=1,
                                               cache=True)),
    ]
    if not args.no_cold:
        plans.append(("ours, all cores, --no-cache", lambda: run_ours(
            case, tmp / f"{name}-cold", workers=None, cache=False)))
    rows = []
    for method, fn in plans:
        row = {"case": case["label"], "method": method, **guarded(fn)}
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "stages"}), flush=True)
    diy = next((r for r in rows if r["method"] == "diy" and "seconds" in r), None)
    for r in rows:
        if diy is not None and "seconds" in r:
            r["ratio"] = r["seconds"] / diy["seconds"]
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (f"{'case':31} {'method':28} {'seconds':>8} {'ratio':>6} {'doors':>6} "
            f"{'turfs':>5} {'files':>6} {'MB':>7} {'load':>10}")
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        load = f"{r['load_before']:.1f}-{r['load_after']:.1f}"
        if "seconds" not in r:
            print(f"{r['case']:31} {r['method']:28} error: {r['error']}  (load {load})")
            continue
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
        print(f"{r['case']:31} {r['method']:28} {r['seconds']:>8.1f} {ratio:>6} "
              f"{r['doors']:>6,} {r['turfs']:>5} {r['files']:>6,} {r['mb']:>7.1f} {load:>10}")
    print()
    for r in rows:
        if "stages" in r:
            parts = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items()
                              if isinstance(v, float) and v >= 0.05)
            print(f"{r['case']} / {r['method']}: {parts}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="li,nantes", help="comma-separated: li, nantes")
    ap.add_argument("--no-cold", action="store_true", help="skip the --no-cache row")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        ap.error(f"unknown case(s) {unknown}: use {sorted(CASES)}")
    import knockin_geo.cli.main  # noqa: F401 - imports out of the timings
    import osmnx  # noqa: F401

    RESULTS.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        for name in names:
            rows += run_case(name, args, Path(tmp))
    print_table(rows)
    doc = {"benchmark": "bench_pipeline", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "machine": {"python": platform.python_version(), "platform": platform.platform(),
                       "cpus": os.cpu_count()},
           "rows": rows, "wall_s": time.perf_counter() - t_all}
    (RESULTS / "pipeline.json").write_text(json.dumps(doc, indent=2, default=str),
                                           encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
