"""Benchmark the street-network loader against the plain osmnx route.

Every measurement runs in a fresh Python subprocess, so the peak RSS (``ru_maxrss`` of the child,
imports included) is clean. Seconds time the load only (imports excluded).

Methods
-------
knockin_geo            ``load_network(path, cache=False)``
knockin_geo cached     ``load_network(path)`` with a cache warmed by an earlier process
osmnx via XML          pbf -> walk-filtered OSM XML with pyosmium (refs to missing nodes dropped,
                       as ``osmconvert --drop-broken-refs`` does), then
                       ``osmnx.graph_from_xml(bidirectional=True, simplify=True, retain_all=True)``

Nodes/edges are the whole graph (all components), edges undirected.

Usage::

    .venv/bin/python benchmarks/bench_network.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = {
    "liechtenstein": ROOT / "data" / "liechtenstein" / "liechtenstein-2024-03-03.osm.pbf",
    "nantes (clipped)": ROOT / "data" / "nantes" / "osm" / "nantes_centre_2014-09.osm.pbf",
}
METHODS = ("knockin_geo", "knockin_geo cached", "osmnx via XML")


# ------------------------------------------------------------------------------------------------
# child side
# ------------------------------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _child_knockin(path: Path, cache_dir: str | None) -> dict:
    from knockin_geo.streets import load_network

    t0 = time.perf_counter()
    if cache_dir is None:
        net = load_network(path, cache=False)
    else:
        net = load_network(path, cache=True, cache_dir=cache_dir)
    seconds = time.perf_counter() - t0
    s = net.summary()
    return {
        "seconds": seconds,
        "nodes": s["nodes"],
        "edges": s["edges"],
        "largest_nodes": s["largest_component_nodes"],
        "largest_edges": s["largest_component_edges"],
        "barriers": s["barriers"],
        "from_cache": net.from_cache,
    }


def _pbf_to_walk_xml(path: Path, out: Path) -> None:
    """Walk-filtered OSM XML: ways passing osmnx's walk filter, refs to missing nodes dropped."""
    import osmium
    from osmium.filter import EntityFilter, KeyFilter

    from knockin_geo.streets import _is_walkable

    locs: dict[int, tuple[float, float]] = {}
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    fp = (
        osmium.FileProcessor(str(path))
        .with_locations()
        .with_filter(EntityFilter(osmium.osm.WAY))
        .with_filter(KeyFilter("highway"))
    )
    for w in fp:
        tags = w.tags
        if not _is_walkable(tags, tags["highway"], "walk"):
            continue
        refs = []
        for nr in w.nodes:
            loc = nr.location
            if loc.valid():
                refs.append(nr.ref)
                locs[nr.ref] = (loc.lon, loc.lat)
        if len(refs) >= 2:
            ways.append((w.id, refs, dict(tags)))
    with osmium.SimpleWriter(str(out)) as writer:
        for nid in sorted(locs):
            writer.add_node(osmium.osm.mutable.Node(id=nid, location=locs[nid]))
        for wid, refs, tags in ways:
            writer.add_way(osmium.osm.mutable.Way(id=wid, nodes=refs, tags=tags))


def _child_osmnx(path: Path) -> dict:
    import osmnx as ox

    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "walk.osm"
        t0 = time.perf_counter()
        _pbf_to_walk_xml(path, xml)
        G = ox.graph_from_xml(xml, bidirectional=True, simplify=True, retain_all=True)
        seconds = time.perf_counter() - t0
    import networkx as nx

    U = ox.convert.to_undirected(G)
    largest = max(nx.connected_components(U), key=len)
    H = U.subgraph(largest)
    return {
        "seconds": seconds,
        "nodes": U.number_of_nodes(),
        "edges": U.number_of_edges(),
        "largest_nodes": H.number_of_nodes(),
        "largest_edges": H.number_of_edges(),
        "barriers": {},
        "from_cache": False,
    }


def _child(method: str, path: Path, cache_dir: str | None) -> None:
    osmnx = method == "osmnx via XML"
    result = _child_osmnx(path) if osmnx else _child_knockin(path, cache_dir)
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


# ------------------------------------------------------------------------------------------------
# parent side
# ------------------------------------------------------------------------------------------------
def _run(method: str, path: Path, cache_dir: str | None) -> dict:
    cmd = [sys.executable, __file__, "--child", method, "--file", str(path)]
    if cache_dir is not None:
        cmd += ["--cache-dir", cache_dir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per method and file")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.file, args.cache_dir)
        return 0

    rows = []
    with tempfile.TemporaryDirectory(prefix="kg_bench_cache_") as cache_dir:
        for label, path in FILES.items():
            for method in args.methods:
                cdir = None
                if method == "knockin_geo cached":
                    cdir = cache_dir
                    warm = _run(method, path, cdir)  # fills the cache
                    assert not warm["from_cache"]
                runs = [_run(method, path, cdir) for _ in range(args.repeat)]
                if cdir is not None:
                    assert all(r["from_cache"] for r in runs)
                rows.append(
                    {
                        "method": method,
                        "file": label,
                        "seconds": statistics.median(r["seconds"] for r in runs),
                        "rss": max(r["peak_rss_mb"] for r in runs),
                        **{
                            k: runs[0][k]
                            for k in (
                                "nodes",
                                "edges",
                                "largest_nodes",
                                "largest_edges",
                                "barriers",
                            )
                        },
                    }
                )
                print(f"  done: {method} / {label}", file=sys.stderr)

    header = (
        f"{'method':<20} {'file':<18} {'median s':>9} {'peak RSS MB':>12} {'nodes':>7} "
        f"{'edges':>7} {'largest cc n/e':>15}"
    )
    print(
        f"repeat={args.repeat}, fresh subprocess per run; seconds exclude imports; "
        "RSS includes them"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        cc = f"{r['largest_nodes']}/{r['largest_edges']}"
        print(
            f"{r['method']:<20} {r['file']:<18} {r['seconds']:>9.3f} {r['rss']:>12.0f} "
            f"{r['nodes']:>7} {r['edges']:>7} {cc:>15}"
        )
    for r in rows:
        if r["method"] == "knockin_geo":
            print(f"barriers {r['file']}: {r['barriers']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
